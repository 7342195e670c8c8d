"""Logic of the LesionSegCurriculum module: cases, preparation, difficulty and curriculum training.

Listing a dataset's cases calls ``lesionseg.data.discover``; preparing, measuring difficulty and training
run ``lesionseg prepare``, ``lesionseg difficulty`` and ``lesionseg train`` in a background process
(``LesionSegInferenceLib.BackgroundJob``, the launcher injected), one job at a time. Training's epoch events
feed :class:`~.TrainingCurves.TrainingCurves`, drawn as loss and Dice charts; a finished difficulty table
is shown as a table and histograms (:mod:`.Difficulty`).

Nothing here imports Qt or needs the Slicer application. ``lesionseg`` is imported inside the methods
that need it, so that the module still loads (and can say what is missing) when the package or its
dependencies are not installed yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from LesionSegInferenceLib import BackgroundJob, JobProgress, JobResult

from .Difficulty import DifficultyDisplay, show_difficulty
from .Parameters import METRIC_COLUMNS, DifficultyParameters, PrepareParameters, TrainParameters
from .TrainingCurves import TrainingCurves

#: ``discover(root, validate=...) -> list[Case]``, the signature of ``lesionseg.data.discover``.
DiscoverFunction = Callable[..., Sequence[Any]]


@dataclass(frozen=True)
class CaseRow:
    """One line of the panel's case list.

    Attributes:
        case_id: the case's id, unique within the dataset.
        patient_id: cases of one patient share it (folds never split a patient).
        channels: channel names in the dataset's order (``flair``, ``dwi``, ...).
        has_mask: whether the case has a lesion mask (training needs one).
    """

    case_id: str
    patient_id: str
    channels: tuple[str, ...]
    has_mask: bool

    @property
    def channels_text(self) -> str:
        """The channel names as the list shows them, e.g. ``"dwi, adc"``."""
        return ", ".join(self.channels)


def _case_row(case) -> CaseRow:
    return CaseRow(case.case_id, case.patient_id, tuple(case.channels), case.mask is not None)


class CurriculumLogic:
    """Lists a dataset's cases, and prepares, measures and trains in background processes.

    Args:
        discover: the case finder, ``lesionseg.data.discover`` when None (tests may pass another).
        scene: the MRML scene for tables and charts (``slicer.mrmlScene`` in the application).
        launcher: how jobs are started (default: ``SubprocessLauncher``; the panel passes
            ``SlicerLaunchers.default_launcher()`` so callbacks arrive on the GUI thread).
        python: the interpreter of the jobs (default: PythonSlicer in Slicer, else this Python).
    """

    def __init__(self, discover: DiscoverFunction | None = None, *, scene=None, launcher=None,
                 python: str | None = None) -> None:
        self._discover = discover
        self.scene = scene
        self.launcher = launcher
        self.python = python
        self.job: BackgroundJob | None = None
        self.command = ""
        self.curves = TrainingCurves()
        self.charts: dict[str, Any] = {}
        self.charts_stale = False
        self.difficulty: DifficultyDisplay | None = None
        self.listing = None

    @staticmethod
    def validate_dataset_path(dataset_path: str | os.PathLike) -> tuple[bool, str]:
        """Check that a dataset path was given and exists, before anything reads it.

        Args:
            dataset_path: a dataset folder (ISLES'22, ISLES'24, ATLAS v2.0, nnU-Net raw) or a CSV manifest.

        Returns:
            ``(True, "")`` or ``(False, reason)`` with one sentence naming the path.
        """
        text = str(dataset_path or "").strip()
        if not text:
            return False, "Choose a dataset folder (or a CSV manifest)."
        path = Path(text).expanduser()
        if not path.exists():
            return False, f"The dataset folder '{path}' does not exist."
        return True, ""

    def list_cases(self, dataset_path: str | os.PathLike, validate: bool = True) -> list[CaseRow]:
        """The cases of a dataset, as rows for the panel's case list.

        Args:
            dataset_path: a dataset folder or a CSV manifest.
            validate: also check each case's files (readable images, channels and mask on one grid).

        Returns:
            One row per case, sorted by case id (the order ``lesionseg.data.discover`` returns).

        Raises:
            lesionseg.errors.InputFileError: the path is empty or does not exist.
            lesionseg.errors.LesionSegError: the dataset cannot be read; the message names the file or case.
        """
        ok, reason = self.validate_dataset_path(dataset_path)
        if not ok:
            from lesionseg.errors import InputFileError

            raise InputFileError(reason)
        discover = self._discover
        if discover is None:
            from lesionseg.data.discover import discover
        cases = discover(Path(str(dataset_path).strip()).expanduser(), validate=validate)
        return [_case_row(case) for case in cases]

    def start_listing(self, dataset_path: str | os.PathLike, *, on_progress=None, on_finished=None,
                      validate_case: Callable[[Any], None] | None = None):
        """List and check a dataset's cases in a worker thread (the panel's List cases); see :mod:`.CaseListing`.

        The panel polls the returned listing from a timer; :meth:`running` is True until it has ended.

        Raises:
            lesionseg.errors.InputFileError: the path is empty or does not exist.
            lesionseg.errors.ParameterError: a job or another listing is running.
        """
        from lesionseg.errors import InputFileError, ParameterError

        from .CaseListing import CaseListing

        ok, reason = self.validate_dataset_path(dataset_path)
        if not ok:
            raise InputFileError(reason)
        if self.running:
            raise ParameterError("a job is running; wait for it or cancel it before listing cases.")
        self.listing = CaseListing(dataset_path, _case_row, discover=self._discover, validate_case=validate_case,
                                   on_progress=on_progress, on_finished=on_finished)
        self.listing.start()
        return self.listing

    @staticmethod
    def summarize(rows: Sequence[CaseRow]) -> str:
        """One sentence about a case list, e.g. ``"12 cases of 10 patients, 11 with a lesion mask."``."""
        patients = len({row.patient_id for row in rows})
        masks = sum(row.has_mask for row in rows)
        case_word = "case" if len(rows) == 1 else "cases"
        patient_word = "patient" if patients == 1 else "patients"
        return f"{len(rows)} {case_word} of {patients} {patient_word}, {masks} with a lesion mask."

    # ---- jobs -----------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a job (or the case listing) runs."""
        return (self.job is not None and self.job.running) or (self.listing is not None and self.listing.running)

    def _start(self, command: str, parameters, on_progress, on_log, on_finished, wait: bool) -> BackgroundJob:
        from lesionseg.errors import ParameterError

        if self.running:
            raise ParameterError(f"a {self.command} job is running; wait for it or cancel it first.")
        ok, reason = parameters.validate()
        if not ok:
            raise ParameterError(reason)
        self.command = command
        self.job = BackgroundJob(command, parameters.arguments(), launcher=self.launcher, python=self.python,
                                 on_progress=on_progress, on_log=on_log,
                                 on_finished=None if wait else on_finished)
        result = self.job.start(waitForCompletion=wait)
        if wait and on_finished is not None:
            on_finished(result)
        return self.job

    def prepare(self, parameters: PrepareParameters, *, on_progress: Callable[[JobProgress], None] | None = None,
                on_log: Callable[[str], None] | None = None,
                on_finished: Callable[[JobResult], None] | None = None, wait: bool = False) -> BackgroundJob:
        """Run ``lesionseg prepare`` (in the background, or to the end when ``wait``).

        Raises:
            ParameterError: invalid parameters (the sentence of ``validate``) or a job is already running.
        """
        return self._start("prepare", parameters, on_progress, on_log, on_finished, wait)

    @staticmethod
    def prepare_outcome(result: JobResult) -> tuple[str, str]:
        """What a finished ``prepare`` says to the user: one status sentence and the details.

        A partial run (exit 3: some cases could not be prepared) is an outcome to report, not an error:
        the prepared cases can be trained on, and preparing again retries only the failed ones.

        Returns:
            ``(sentence, details)``; details lists each failed case with its reason ("" when none failed).
        """
        summary = result.summary or {}
        failures = summary.get("failures") or []
        prepared = summary.get("cases")
        slices = summary.get("slices")
        done = (f"Prepared {prepared} case{'' if prepared == 1 else 's'}" if prepared is not None else "Prepared")
        if slices is not None:
            done += f" ({slices} slices, {summary.get('lesion_slices', 0)} with lesion)"
        if result.state != "partial":
            return done + ".", ""
        failed = summary.get("failed", len(failures))
        sentence = (f"{done}; {failed} case{'' if failed == 1 else 's'} could not be prepared (listed in "
                    "prepare.json). Training uses the prepared cases; Prepare again retries only the failed ones.")
        details = "\n".join(f"{item.get('case_id', '?')}: {item.get('reason', '')}" for item in failures)
        return sentence, details

    def measure_difficulty(self, parameters: DifficultyParameters, *,
                           on_progress: Callable[[JobProgress], None] | None = None,
                           on_log: Callable[[str], None] | None = None,
                           on_finished: Callable[[JobResult], None] | None = None,
                           wait: bool = False) -> BackgroundJob:
        """Run ``lesionseg difficulty`` into ``parameters.csv_path``; show it with :meth:`show_difficulty`."""
        return self._start("difficulty", parameters, on_progress, on_log, on_finished, wait)

    def train(self, parameters: TrainParameters, *, on_progress: Callable[[JobProgress], None] | None = None,
              on_log: Callable[[str], None] | None = None, on_finished: Callable[[JobResult], None] | None = None,
              wait: bool = False) -> BackgroundJob:
        """Run ``lesionseg train``; its epochs feed :attr:`curves` (a resumed run's earlier epochs first).

        The settings the user left at the preset's are not passed (the CLI's preset decides, see
        :class:`~.Parameters.TrainParameters`); what the preset does with the others (``parameters.notes()``)
        goes to ``on_log`` first. With a training time, the trainer's plan (``JobProgress.plan``, and the
        planned epochs in ``JobProgress.epochs``) arrives before the first epoch; ``on_progress`` is called
        after the curves are updated, so it can redraw the charts.
        """
        if on_log is not None and parameters.validate()[0]:
            for note in parameters.notes():
                on_log(note)
        self.curves.clear()
        self.charts_stale = True
        if parameters.resume:
            self.curves.read_run(parameters.run)

        def progress(state: JobProgress) -> None:
            if self.curves.add_progress(state):
                self.charts_stale = True
            if on_progress is not None:
                on_progress(state)

        return self._start("train", parameters, progress, on_log, on_finished, wait)

    def review_queue(self, parameters, *, on_progress: Callable[[JobProgress], None] | None = None,
                     on_log: Callable[[str], None] | None = None,
                     on_finished: Callable[[JobResult], None] | None = None, wait: bool = False) -> BackgroundJob:
        """Run ``lesionseg review-queue`` into ``parameters.queue_csv`` (``Refinement.ReviewQueueParameters``);
        read it with ``Refinement.read_queue``."""
        return self._start("review-queue", parameters, on_progress, on_log, on_finished, wait)

    def cancel(self) -> None:
        """Stop the running job (its whole process tree; a cancelled training can be resumed) or listing."""
        if self.job is not None:
            self.job.cancel()
        if self.listing is not None:
            self.listing.cancel()

    # ---- results in the scene ------------------------------------------------------------------------------
    def show_difficulty(self, csv_path: str | os.PathLike, groups: int = 6) -> DifficultyDisplay:
        """The difficulty table and its histograms in the scene (refilled on each call)."""
        self.difficulty = show_difficulty(self.scene, csv_path, groups, previous=self.difficulty)
        return self.difficulty

    def update_charts(self) -> dict[str, Any]:
        """Redraw the loss and Dice charts from :attr:`curves`; returns metric -> chart node."""
        self.charts = self.curves.charts(self.scene, previous=self.charts)
        self.charts_stale = False
        return self.charts

    @staticmethod
    def bundle_of(result: JobResult, parameters: TrainParameters) -> Path | None:
        """The bundle a finished training wrote (from its summary, else ``RUN/model.lsb``), or None."""
        if not result.ok:
            return None
        written = Path(str(result.summary.get("bundle") or parameters.bundle_path))
        return written if written.is_file() else None

    @staticmethod
    def difficulty_table_for(prepared: str | os.PathLike, metrics: Sequence[str]) -> str:
        """``<prepared>/difficulty.csv`` when it holds every metric a training asks for, else "".

        Training measures the difficulty itself when given no table; a table measured before (the
        panel's Measure difficulty) saves that work when it has the columns of the chosen metrics.
        """
        import csv

        path = Path(str(prepared or "")).expanduser() / "difficulty.csv"
        if not path.is_file() or not metrics or any(metric not in METRIC_COLUMNS for metric in metrics):
            return ""
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        return str(path) if all(METRIC_COLUMNS[metric] in header for metric in metrics) else ""
