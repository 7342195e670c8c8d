"""Progress events and cancellation shared by every long-running job.

A job reports through a callback that takes one event, a plain ``dict`` that is JSON-serialisable and
always has an ``"event"`` key, e.g. ``{"event": "progress", "stage": "prepare", "done": 3, "total": 20}``
or ``{"event": "epoch", "epoch": 4, "epochs": 200, "loss": 0.31}``. The command line turns events into a
progress bar (``--progress bar``, the default), one JSON object per line on stdout (``--progress jsonl``,
what the Slicer modules read), or nothing (``--progress none``). A job checks a :class:`CancelFlag` between
units of work and raises :class:`~lesionseg.errors.CancelledError` when it is set.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from typing import Any, Callable, Literal

from lesionseg.errors import CancelledError, ParameterError

ProgressEvent = dict[str, Any]
ProgressCallback = Callable[[ProgressEvent], None]
ProgressMode = Literal["bar", "jsonl", "none"]
PROGRESS_MODES: tuple[str, ...] = ("bar", "jsonl", "none")


def ignore_progress(event: ProgressEvent) -> None:
    """A progress callback that does nothing (the default for library calls)."""


class CancelFlag:
    """A thread-safe flag that a caller sets to ask a running job to stop at its next check."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop."""
        self._event.set()

    @property
    def is_cancelled(self) -> bool:
        """Whether :meth:`cancel` has been called."""
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`CancelledError` when the flag is set; call it between units of work."""
        if self._event.is_set():
            raise CancelledError("cancelled on request")


def _json_default(value: Any) -> Any:
    """Make numpy scalars and paths serialisable; non-finite floats become null."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class JsonLinesProgress:
    """Prints each event as one JSON object per line on a stream (stdout by default), flushed at once."""

    def __init__(self, stream=None) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def __call__(self, event: ProgressEvent) -> None:
        record = {"time_s": round(time.monotonic() - self._start, 3), **_finite(dict(event))}
        line = json.dumps(record, default=_json_default)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class BarProgress:
    """Shows ``progress`` events as a tqdm bar on stderr and other events as short log lines."""

    def __init__(self, stream=None) -> None:
        self._stream = stream or sys.stderr
        self._bars: dict[str, Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        kind = event.get("event")
        stage = str(event.get("stage", kind))
        if kind == "progress" and "total" in event:
            bar = self._bars.get(stage)
            if bar is None or bar.total != event["total"]:
                if bar is not None:
                    bar.close()
                bar = tqdm(total=event["total"], desc=stage, file=self._stream, leave=True)
                self._bars[stage] = bar
            bar.n = int(event.get("done", 0))
            if event.get("message"):
                bar.set_postfix_str(str(event["message"])[:60], refresh=False)
            bar.refresh()
            if bar.n >= bar.total:
                bar.close()
                del self._bars[stage]
        elif kind in ("message", "warning"):
            print(f"{kind}: {event.get('message', '')}", file=self._stream, flush=True)
        elif kind == "epoch":
            fields = ", ".join(
                f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                for key, value in event.items()
                if key not in ("event", "stage")
            )
            print(f"epoch: {fields}", file=self._stream, flush=True)


def make_progress(mode: str) -> ProgressCallback:
    """Return the progress callback for a ``--progress`` mode: ``bar``, ``jsonl`` or ``none``."""
    if mode == "bar":
        return BarProgress()
    if mode == "jsonl":
        return JsonLinesProgress()
    if mode == "none":
        return ignore_progress
    raise ParameterError(f"--progress must be one of {', '.join(PROGRESS_MODES)}, not {mode!r}.")
