"""Listing and checking a dataset's cases off the GUI thread, with per-case progress and Cancel.

Checking a case reads its images and mask (``lesionseg.data.validate_case``); on a dataset of hundreds of cases
that takes minutes, so the panel must not do it on the GUI thread. :class:`CaseListing` finds the cases (which
only lists files) and then checks them one by one in a worker thread; its events wait in a queue until the
panel's timer calls :meth:`CaseListing.poll`, which hands them over on the GUI thread (Qt widgets and MRML
nodes are touched there only). :meth:`CaseListing.wait` runs it to the end for scripts and tests.

Nothing here imports Qt or the Slicer application.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


@dataclass
class ListingProgress:
    """How far the check has got: ``checked`` of ``total`` cases, the last one checked."""

    checked: int
    total: int
    case_id: str = ""

    @property
    def fraction(self) -> float:
        return self.checked / self.total if self.total else 0.0

    @property
    def message(self) -> str:
        return f"Checked {self.checked} of {self.total} cases" + (f" ({self.case_id})." if self.case_id else ".")


@dataclass
class ListingResult:
    """The end of a listing: the rows, or the sentence naming the case or file that stopped it."""

    rows: list[Any] = field(default_factory=list)
    error: str = ""
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.error and not self.cancelled


class CaseListing:
    """Find a dataset's cases and check each one in a worker thread.

    Args:
        dataset: the dataset folder or CSV manifest (already checked to exist).
        make_row: case -> the panel's row (``Logic.CaseRow``).
        discover: ``discover(root, validate=False)`` (default ``lesionseg.data.discover``).
        validate_case: checks one case, raising ``LesionSegError`` (default ``lesionseg.data.validate_case``).
        on_progress: receives a :class:`ListingProgress` after each case (from :meth:`poll`).
        on_finished: receives the :class:`ListingResult` (from :meth:`poll`).
    """

    def __init__(self, dataset: str | Path, make_row: Callable[[Any], Any], *,
                 discover: Callable[..., Sequence[Any]] | None = None,
                 validate_case: Callable[[Any], None] | None = None,
                 on_progress: Callable[[ListingProgress], None] | None = None,
                 on_finished: Callable[[ListingResult], None] | None = None) -> None:
        self.dataset = Path(str(dataset).strip()).expanduser()
        self.make_row = make_row
        self._discover = discover
        self._validate = validate_case
        self.on_progress = on_progress
        self.on_finished = on_finished
        self._events: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.result: ListingResult | None = None

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`poll` has delivered the result."""
        return self._thread is not None and self.result is None

    def start(self) -> None:
        """Start the worker thread; returns at once."""
        self._thread = threading.Thread(target=self._work, name="lesionseg-case-listing", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop after the case being checked (the result is then "cancelled")."""
        self._cancel.set()

    def poll(self) -> bool:
        """Deliver the events waiting in the queue (call it on the GUI thread); True while the listing runs."""
        while True:
            try:
                kind, value = self._events.get_nowait()
            except queue.Empty:
                return self.running
            if kind == "progress" and self.on_progress is not None:
                self.on_progress(value)
            elif kind == "finished":
                self.result = value
                if self.on_finished is not None:
                    self.on_finished(value)
                return False

    def wait(self, timeout: float | None = None) -> ListingResult:
        """Run to the end (starting it if needed) and deliver every event; for scripts and tests."""
        if self._thread is None:
            self.start()
        self._thread.join(timeout)
        self.poll()
        return self.result

    def _work(self) -> None:
        try:
            from lesionseg.errors import LesionSegError

            discover = self._discover
            validate = self._validate
            if discover is None or validate is None:
                from lesionseg.data import discover as found_discover
                from lesionseg.data import validate_case as found_validate

                discover, validate = discover or found_discover, validate or found_validate
            try:
                cases = list(discover(self.dataset, validate=False))
                rows = []
                for index, case in enumerate(cases):
                    if self._cancel.is_set():
                        self._events.put(("finished", ListingResult(rows, cancelled=True)))
                        return
                    validate(case)
                    rows.append(self.make_row(case))
                    self._events.put(("progress", ListingProgress(index + 1, len(cases), case.case_id)))
            except LesionSegError as error:
                text = str(error).strip()
                self._events.put(("finished", ListingResult(error=text[:1].upper() + text[1:])))
                return
            self._events.put(("finished", ListingResult(rows)))
        except Exception as error:  # anything else must still end the listing, with a sentence
            self._events.put(("finished", ListingResult(
                error=f"Listing the cases of {self.dataset} failed ({type(error).__name__}: {error}).")))
