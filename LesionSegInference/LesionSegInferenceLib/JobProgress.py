"""Reading a ``lesionseg <command> --progress jsonl`` job's output lines into progress and an outcome.

The job prints one JSON object per line on stdout, each with an ``"event"`` key (see
``lesionseg.progress``): ``progress`` (``stage``, ``done``, ``total``, ``message``), ``epoch`` (``epoch``
counted from 0, ``epochs``, ``fold``, the epoch's metrics such as ``loss`` and ``val_dice``),
``iteration``, ``message``, ``warning`` and a final ``done`` with the job's summary. A training given a time
(``--minutes``) plans its epochs per model and says so in a message (``"fold 0: 15.0 min planned as 40
epochs (...)"``) before its first epoch; its epoch events then carry the planned total. Anything else is a
log line; among them the CLI's error sentence ``lesionseg <command>: error: <sentence>`` (exit code 2).
The exit codes are those of ``lesionseg.cli``: 0 done, 1 internal error, 2 bad input, 3 a batch in which
some cases failed, 130 cancelled.

This file imports neither Qt nor Slicer nor lesionseg, so it is tested with plain Python.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3
EXIT_CANCELLED = 130

#: The CLI's one-sentence error on stderr.
ERROR_LINE = re.compile(r"^lesionseg [\w-]+: error: (?P<sentence>.+)$")
#: Epoch-event keys that are bookkeeping rather than metrics.
_NOT_METRICS = {"event", "stage", "epoch", "epochs", "fold", "time_s", "eta_s", "iterations", "seconds"}
#: A training's time-budget plan (``lesionseg.train.loop``): "<fold N|all data>: M min planned as E epochs (...)".
PLAN_MESSAGE = re.compile(r"^(?:fold (?P<fold>\d+)|all data): [\d.]+ min planned as (?P<epochs>\d+) epochs")
#: A model whose time ran out before its planned epochs: it is finished.
BUDGET_SPENT_MESSAGE = re.compile(r"^the time budget ran out at epoch")
#: How many log lines a job keeps (the last ones; enough for a traceback).
LOG_LINES_KEPT = 200


@dataclass(frozen=True)
class JobProgress:
    """Where a job stands, after the events read so far.

    Attributes:
        fraction: 0..1 done in the current stage (progress: done / total; epoch: (epoch + 1) / epochs),
            None before the first measurable event.
        stage: the current stage ("prepare", "train", ...), "" when unknown.
        message: the latest human message (a case id, "epoch 3/200 of fold 1", a warning).
        epoch: the last finished epoch (from 0), None before any.
        epochs: the planned number of epochs (with a time budget: the trainer's plan, known from its plan
            message, before the first epoch).
        fold: the fold being trained, None for all data or other jobs.
        plan: the trainer's latest time-budget plan sentence ("" when it trains a number of epochs).
        metrics: the last epoch's metrics (e.g. loss, lr, val_dice), numbers only.
        eta_s: estimated seconds left, when the job says.
        warnings: every warning message so far.
        events: number of JSON events read.
    """

    fraction: float | None = None
    stage: str = ""
    message: str = ""
    epoch: int | None = None
    epochs: int | None = None
    fold: int | None = None
    plan: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    eta_s: float | None = None
    warnings: tuple[str, ...] = ()
    events: int = 0


@dataclass(frozen=True)
class JobResult:
    """How a job ended.

    Attributes:
        state: "succeeded", "partial" (exit 3: some cases failed), "failed" or "cancelled".
        returncode: the process exit code (negative: killed by that signal on POSIX).
        error: one sentence for the user when it failed ("" otherwise).
        summary: the payload of the final ``done`` event (e.g. cases, slices, bundle path), {} if none.
        log: the last log lines (non-JSON output, stderr included).
    """

    state: str
    returncode: int
    error: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    log: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the job did all it was asked."""
        return self.state == "succeeded"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class ProgressParser:
    """Turns output lines into events and a :class:`JobProgress`; remembers the error sentence and the log."""

    def __init__(self) -> None:
        self.progress = JobProgress()
        self.summary: dict[str, Any] = {}
        self.error = ""
        self.log: deque[str] = deque(maxlen=LOG_LINES_KEPT)

    def feed(self, line: str) -> dict[str, Any] | None:
        """Read one output line.

        Args:
            line: a line of the job's stdout or stderr (with or without its newline).

        Returns:
            The event (a dict with an "event" key) when the line is a JSON event, else None (the line is
            kept in the log, and remembered as the error when it is the CLI's error sentence).
        """
        text = line.rstrip("\r\n")
        event = self._event(text)
        if event is None:
            if text.strip():
                self.log.append(text)
                match = ERROR_LINE.match(text.strip())
                if match:
                    self.error = match.group("sentence").strip()
            return None
        self.progress = self._apply(self.progress, event)
        return event

    @staticmethod
    def _event(text: str) -> dict[str, Any] | None:
        if not text.startswith("{"):
            return None
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            return None
        return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None

    def _apply(self, state: JobProgress, event: dict[str, Any]) -> JobProgress:
        kind = event["event"]
        changes: dict[str, Any] = {"events": state.events + 1}
        if "stage" in event:
            changes["stage"] = str(event["stage"])
        if kind == "progress":
            done, total = _number(event.get("done")), _number(event.get("total"))
            if done is not None and total:
                changes["fraction"] = min(max(done / total, 0.0), 1.0)
            if event.get("message"):
                changes["message"] = str(event["message"])
        elif kind == "epoch":
            epoch, epochs = _number(event.get("epoch")), _number(event.get("epochs"))
            if epoch is not None:
                changes["epoch"] = int(epoch)
            if epochs:
                changes["epochs"] = int(epochs)
                if epoch is not None:
                    changes["fraction"] = min(max((epoch + 1) / epochs, 0.0), 1.0)
            changes["fold"] = event.get("fold") if isinstance(event.get("fold"), int) else None
            changes["eta_s"] = _number(event.get("eta_s"))
            changes["metrics"] = {key: float(value) for key, value in event.items()
                                  if key not in _NOT_METRICS and _number(value) is not None}
            changes["message"] = _epoch_message(changes.get("epoch"), changes.get("epochs"), changes["fold"])
        elif kind in ("message", "warning"):
            changes["message"] = str(event.get("message", ""))
            if kind == "warning":
                changes["warnings"] = state.warnings + (changes["message"],)
            else:
                changes.update(_plan_changes(changes["message"]))
        elif kind == "done":
            changes["fraction"] = 1.0
            self.summary = {key: value for key, value in event.items() if key not in ("event", "time_s")}
        return replace(state, **changes)

    def result(self, returncode: int, cancelled: bool = False) -> JobResult:
        """The outcome of the job from its exit code and what was read.

        Args:
            returncode: the exit code (negative for a signal on POSIX).
            cancelled: the user cancelled (the exit code of a killed process says nothing more).
        """
        log = tuple(self.log)
        if returncode == EXIT_OK:  # even when Cancel came too late to stop it: the work is done
            return JobResult("succeeded", returncode, "", dict(self.summary), log)
        if cancelled or returncode == EXIT_CANCELLED:
            return JobResult("cancelled", returncode, "", dict(self.summary), log)
        if returncode == EXIT_PARTIAL:
            error = self.error or "some cases failed; see the log for which and why."
            return JobResult("partial", returncode, error, dict(self.summary), log)
        if self.error:
            error = self.error
        elif returncode == EXIT_INTERNAL:
            last = log[-1] if log else "no output"
            error = f"lesionseg stopped on an internal error ({last}); the log has the details."
        elif returncode < 0:
            error = f"lesionseg was stopped by signal {-returncode}."
        else:
            error = f"lesionseg exited with code {returncode}."
        return JobResult("failed", returncode, error, dict(self.summary), log)


def _plan_changes(message: str) -> dict[str, Any]:
    """What a training's message says of its epochs: a new model's plan (its epochs, none done yet), or a
    model finished early because its time ran out."""
    planned = PLAN_MESSAGE.match(message)
    if planned:
        fold = planned.group("fold")
        return {"plan": message, "epochs": int(planned.group("epochs")), "epoch": None, "fraction": 0.0,
                "fold": int(fold) if fold is not None else None, "eta_s": None}
    if BUDGET_SPENT_MESSAGE.match(message):
        return {"fraction": 1.0, "eta_s": 0.0}
    return {}


def _epoch_message(epoch: int | None, epochs: int | None, fold: int | None) -> str:
    if epoch is None:
        return ""
    text = f"epoch {epoch + 1}" + (f"/{epochs}" if epochs else "")
    return text + (f" of fold {fold}" if fold is not None else "")
