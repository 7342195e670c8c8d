"""Logic of the LesionSegInference module: a segmentation run from the panel's settings to nodes in the scene.

A run: validate the inputs (:mod:`.Validation`), write the input volumes to a work folder
(``lesionseg.mrml.image_from_volume_node`` + ``lesionseg.io.write_image``), run ``lesionseg segment`` in a
background process (:class:`~.Process.BackgroundJob`, launcher injected), and on completion load the
labelmap, probability map, brain mask and lesion table into the scene (:mod:`.Results`). The threshold
slider re-thresholds in memory; lesion rows give the points the slice views jump to. The headless batch
(a dataset folder -> masks and ``summary.csv``) runs the same command, blocking.

Nothing here imports Qt or needs the Slicer application. ``lesionseg`` is imported inside the methods
that need it, so that the module still loads (and can tell the user what is missing) when the package or
its dependencies are not installed yet. With a launcher whose callbacks come on another thread (the plain
:class:`~.Process.SubprocessLauncher`), use the blocking :meth:`InferenceLogic.process`: results are then
loaded on the caller's thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .BundleCatalog import BundleCatalog, BundleEntry
from .JobProgress import JobProgress, JobResult
from .Parameters import InferenceParameters
from .Process import BackgroundJob, Launcher
from .Results import (
    InferenceResult,
    SegmentEditedError,
    jump_target,
    load_results,
    output_files,
    rethreshold,
    segment_labels,
)
from .Validation import validate_run

#: Input volumes are written uncompressed: the job reads them once, soon after.
INPUT_SUFFIX = ".nrrd"


@dataclass
class RunOutcome:
    """How a panel run ended.

    Attributes:
        state: "succeeded", "failed" or "cancelled".
        error: the sentence for the user when it failed ("" otherwise).
        job: the background job's result (None when the job never started).
        result: the nodes in the scene when it succeeded.
    """

    state: str
    error: str = ""
    job: JobResult | None = None
    result: InferenceResult | None = None


@dataclass
class PostprocessOutcome:
    """What :meth:`InferenceLogic.postprocess` did: state "updated", "no result" or "edited", and a sentence."""

    state: str
    message: str = ""


class InferenceLogic:
    """Segments the stroke lesion of volumes in a scene with a model bundle, in a background process.

    Args:
        scene: the MRML scene (``slicer.mrmlScene`` in the application; a ``vtkMRMLScene`` in tests).
        launcher: how jobs are started (default: :class:`~.Process.SubprocessLauncher`; the panel passes
            ``SlicerLaunchers.default_launcher()`` so callbacks arrive on the GUI thread).
        python: the interpreter of the jobs (default: PythonSlicer in Slicer, else this Python).
        catalog: the bundle catalog (default: one with in-memory settings).
        work_root: where work folders are made (default: the system's temporary folder).
        keep_files: keep each run's work folder (inputs and outputs) instead of deleting it.
    """

    def __init__(self, scene=None, *, launcher: Launcher | None = None, python: str | None = None,
                 catalog: BundleCatalog | None = None, work_root: str | os.PathLike | None = None,
                 keep_files: bool = False) -> None:
        self.scene = scene
        self.launcher = launcher
        self.python = python
        self.catalog = catalog or BundleCatalog()
        self.work_root = work_root
        self.keep_files = keep_files
        self.job: BackgroundJob | None = None
        self.result: InferenceResult | None = None
        self.available_devices: tuple[str, ...] | None = None

    # ---- checks -----------------------------------------------------------------------------------------
    @staticmethod
    def check_lesionseg() -> tuple[bool, str]:
        """Whether the ``lesionseg`` package imports in this Python.

        Returns:
            ``(True, "lesionseg <version>")`` or ``(False, reason)`` when the package cannot be imported.
        """
        try:
            import lesionseg
        except ImportError as error:
            return False, (
                f"The lesionseg package cannot be imported ({error}); reinstall the LesionSeg extension."
            )
        return True, f"lesionseg {lesionseg.__version__}"

    def bundle_entry(self, bundle_path: str) -> BundleEntry | None:
        """The catalog entry of a bundle path (None when no path is given)."""
        return self.catalog.entry(bundle_path) if (bundle_path or "").strip() else None

    def validate(self, parameters: InferenceParameters) -> tuple[bool, str]:
        """Check that a run could start with these parameters (see :mod:`.Validation`).

        Returns:
            ``(True, "")`` or ``(False, reason)``: one sentence that names the input and what to do.
        """
        return validate_run(parameters, self.bundle_entry(parameters.bundle_path), self.available_devices)

    @property
    def running(self) -> bool:
        """True while a job runs."""
        return self.job is not None and self.job.running

    # ---- building the job ----------------------------------------------------------------------------------
    @staticmethod
    def segment_arguments(parameters: InferenceParameters, inputs: dict[str, Path], folder: Path) -> list[str]:
        """The ``lesionseg segment`` arguments of one case (without ``--progress``).

        Args:
            parameters: the run's settings.
            inputs: channel -> input image file, in the bundle's channel order.
            folder: the work folder, where the outputs go (names of :func:`~.Results.output_files`).
        """
        files = output_files(folder)
        arguments = [str(parameters.bundle_path), *(f"{channel}={path}" for channel, path in inputs.items()),
                     "-o", str(files["labelmap"]), "--prob", str(files["probability"]),
                     "--lesions", str(files["lesions"]), "--brain-out", str(files["brain"]),
                     "--device", parameters.device, "--side", parameters.side,
                     "--min-lesion-mm3", f"{parameters.min_lesion_mm3:g}"]
        if parameters.tta:
            arguments.append("--tta")
        if parameters.threshold is not None:
            arguments += ["--threshold", f"{parameters.threshold:g}"]
        if not parameters.fill_holes:
            arguments.append("--no-fill-holes")
        return arguments

    @staticmethod
    def batch_arguments(bundle: str | os.PathLike, input_folder: str | os.PathLike, output_folder: str | os.PathLike,
                        *, device: str = "auto", side: str = "auto", tta: bool = False, threshold: float | None = None,
                        min_lesion_mm3: float | None = None, fill_holes: bool = True, output_format: str = "nii.gz",
                        prob_folder: str | os.PathLike | None = None, skip_existing: bool = False) -> list[str]:
        """The ``lesionseg segment`` arguments of a dataset folder -> a folder of masks and ``summary.csv``."""
        arguments = [str(bundle), str(input_folder), "-o", str(output_folder), "--device", device, "--side", side,
                     "--format", output_format]
        if tta:
            arguments.append("--tta")
        if threshold is not None:
            arguments += ["--threshold", f"{threshold:g}"]
        if min_lesion_mm3 is not None:
            arguments += ["--min-lesion-mm3", f"{min_lesion_mm3:g}"]
        if not fill_holes:
            arguments.append("--no-fill-holes")
        if prob_folder is not None:
            arguments += ["--prob", str(prob_folder)]
        if skip_existing:
            arguments.append("--skip-existing")
        return arguments

    def write_inputs(self, parameters: InferenceParameters, folder: Path) -> dict[str, Path]:
        """Write the bundle's channels from their volume nodes into ``folder`` (voxels and geometry).

        Returns:
            channel -> written file, in the bundle's channel order.
        """
        from lesionseg.io import write_image
        from lesionseg.mrml import image_from_volume_node

        entry = self.bundle_entry(parameters.bundle_path)
        written = {}
        for channel in entry.channels:
            path = folder / f"{channel}{INPUT_SUFFIX}"
            write_image(image_from_volume_node(parameters.input_volumes[channel]), path, compress=False)
            written[channel] = path
        return written

    def _prepare(self, parameters: InferenceParameters) -> tuple[Path, list[str]]:
        from lesionseg.errors import ParameterError

        if self.running:
            raise ParameterError("a segmentation is already running; wait for it or cancel it first.")
        ok, reason = self.validate(parameters)
        if not ok:
            raise ParameterError(reason)
        folder = Path(tempfile.mkdtemp(prefix="lesionseg-segment-", dir=self.work_root))
        try:
            inputs = self.write_inputs(parameters, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return folder, self.segment_arguments(parameters, inputs, folder)

    # ---- running ----------------------------------------------------------------------------------------
    def start(self, parameters: InferenceParameters, *, on_progress: Callable[[JobProgress], None] | None = None,
              on_log: Callable[[str], None] | None = None,
              on_finished: Callable[[RunOutcome], None] | None = None) -> BackgroundJob:
        """Start a run in the background; the results are loaded into the scene when the job ends.

        Args:
            parameters: the run's settings (validated first).
            on_progress: receives the job's :class:`JobProgress` after each event.
            on_log: receives each log line of the job.
            on_finished: receives the :class:`RunOutcome` once the results are in the scene (or it failed).

        Returns:
            The running job.

        Raises:
            ParameterError: the inputs are not valid (the sentence of :meth:`validate`) or a run is going on.
        """
        folder, arguments = self._prepare(parameters)

        def finished(job_result: JobResult) -> None:
            outcome = self._complete(parameters, folder, job_result)
            if on_finished is not None:
                on_finished(outcome)

        self.job = BackgroundJob("segment", arguments, launcher=self.launcher, python=self.python,
                                 on_progress=on_progress, on_log=on_log, on_finished=finished)
        self.job.start()
        return self.job

    def process(self, parameters: InferenceParameters, *, on_progress: Callable[[JobProgress], None] | None = None,
                on_log: Callable[[str], None] | None = None) -> InferenceResult:
        """Run to the end and load the results (for scripts and self-tests); blocks.

        Returns:
            The :class:`InferenceResult`.

        Raises:
            ParameterError: invalid inputs.
            LesionSegError: the job failed or was cancelled (its sentence).
        """
        from lesionseg.errors import LesionSegError

        folder, arguments = self._prepare(parameters)
        self.job = BackgroundJob("segment", arguments, launcher=self.launcher, python=self.python,
                                 on_progress=on_progress, on_log=on_log)
        job_result = self.job.start(waitForCompletion=True)
        outcome = self._complete(parameters, folder, job_result)
        if outcome.state != "succeeded":
            raise LesionSegError(outcome.error)
        return outcome.result

    def cancel(self) -> None:
        """Stop the running job (its whole process tree); the outcome will be "cancelled"."""
        if self.job is not None:
            self.job.cancel()

    def _complete(self, parameters: InferenceParameters, folder: Path, job_result: JobResult) -> RunOutcome:
        """Load a finished job's results into the scene and remove its work folder."""
        from lesionseg.errors import LesionSegError

        try:
            if job_result.state == "cancelled":
                return RunOutcome("cancelled", "The segmentation was cancelled.", job_result)
            if not job_result.ok:
                return RunOutcome("failed", _sentence(job_result.error or "the segmentation failed"), job_result)
            entry = self.bundle_entry(parameters.bundle_path)
            reference = parameters.input_volumes[entry.reference_channel or entry.channels[0]]
            threshold = entry.threshold if parameters.threshold is None else parameters.threshold
            warnings = list(self.job.progress.warnings) if self.job is not None else []
            try:
                self.result = load_results(self.scene, folder, reference, threshold=threshold,
                                           min_lesion_mm3=parameters.min_lesion_mm3,
                                           fill_holes=parameters.fill_holes,
                                           output_node=parameters.output_segmentation, previous=self.result,
                                           warnings=warnings, bundle_path=str(parameters.bundle_path),
                                           labels=entry.segment_labels or segment_labels(entry.labels))
            except LesionSegError as error:
                return RunOutcome("failed", _sentence(f"The results could not be loaded: {error}"), job_result)
            self.save_state(parameters)
            return RunOutcome("succeeded", "", job_result, self.result)
        finally:
            if not self.keep_files:
                shutil.rmtree(folder, ignore_errors=True)

    # ---- after a run ------------------------------------------------------------------------------------
    def rethreshold(self, threshold: float, *, min_lesion_mm3: float | None = None,
                    fill_holes: bool | None = None, replace_edits: bool = False) -> InferenceResult:
        """Update the last result's segment for another threshold, without running the network again.

        Raises:
            ParameterError: there is no result yet, or the threshold is outside (0, 1).
            SegmentEditedError: the segment was edited since LesionSeg wrote it (see :meth:`postprocess`).
        """
        from lesionseg.errors import ParameterError

        if self.result is None:
            raise ParameterError("there is no segmentation to re-threshold yet; click Apply first.")
        return rethreshold(self.scene, self.result, threshold, min_lesion_mm3=min_lesion_mm3, fill_holes=fill_holes,
                           replace_edits=replace_edits)

    def result_for(self, parameters: InferenceParameters) -> InferenceResult | None:
        """The last result when the panel's bundle and reference volume are the ones that made it, else None.

        The post-processing controls belong to that result only: after another bundle or input is chosen they
        describe the next run, and moving them must not touch the previous result.
        """
        result = self.result
        if result is None or self.scene is None or not self.scene.IsNodePresent(result.segmentation_node):
            return None
        if str(parameters.bundle_path) != result.bundle_path:
            return None
        if result.reference_volume not in (parameters.input_volumes or {}).values():
            return None
        return result

    def postprocess(self, parameters: InferenceParameters, *, replace_edits: bool = False) -> PostprocessOutcome:
        """Apply the panel's threshold, smallest lesion and hole filling to the result they belong to.

        Args:
            parameters: the panel's settings (bundle, inputs and post-processing options).
            replace_edits: the user agreed to replace manual edits of the segment.

        Returns:
            What happened: "updated", "no result" (no result of this bundle and input: nothing changes) or
            "edited" (the segment was edited since LesionSeg wrote it: nothing changes; ask the user, then call
            again with ``replace_edits=True``).

        Raises:
            ParameterError: an option out of range, or the result's segment was deleted.
        """
        result = self.result_for(parameters)
        if result is None:
            return PostprocessOutcome("no result")
        entry = self.bundle_entry(parameters.bundle_path)
        threshold = parameters.threshold if parameters.threshold is not None else (
            entry.threshold if entry is not None and entry.ok else result.threshold)
        try:
            self.rethreshold(threshold, min_lesion_mm3=parameters.min_lesion_mm3, fill_holes=parameters.fill_holes,
                             replace_edits=replace_edits)
        except SegmentEditedError as error:
            return PostprocessOutcome("edited", f"{str(error)[:1].upper()}{str(error)[1:]} Replace the edits with "
                                                "the re-thresholded result? The Segment Editor's Undo cannot "
                                                "bring them back.")
        self.save_state(parameters)
        return PostprocessOutcome("updated", result.summary())

    # ---- the scene's parameter node ------------------------------------------------------------------------
    def parameter_node(self):
        """The module's parameter node in the scene (made when there is none), saved with the scene."""
        from .ParameterNode import module_parameter_node
        from .SceneState import MODULE_NAME

        return module_parameter_node(self.scene, MODULE_NAME)

    def save_state(self, parameters: InferenceParameters | None = None) -> None:
        """Keep the panel's settings (when given) and the current result (when there is one) in the scene's
        parameter node. A result is never erased here: one that a scene holds stays until another replaces it."""
        from .SceneState import store_panel, store_result

        node = self.parameter_node()
        if parameters is not None:
            store_panel(node, parameters)
        if self.result is not None:
            store_result(node, self.result)

    def restore_state(self) -> InferenceParameters:
        """Read the panel's settings back from the scene's parameter node and reconnect the result it names
        (``self.result``; None when it names none or one of its nodes is gone).

        Returns:
            The stored settings (defaults for those the node does not hold).
        """
        from .SceneState import restore_panel, restore_result

        node = self.parameter_node()
        self.result = restore_result(self.scene, node)
        return restore_panel(node)

    def dicom_export_readiness(self) -> tuple[bool, str]:
        """Whether the last result can be exported as a DICOM SEG (see :mod:`.DicomSegExport`): ``(True, "")`` or
        ``(False, reason)``."""
        from .DicomSegExport import export_readiness

        return export_readiness(self.result, self.scene)

    def export_dicom_seg(self, path: str | os.PathLike, file_for_instance: Callable[[str], str]) -> Path:
        """Write the last result's lesion segment as a DICOM SEG referring to its volume's DICOM series.

        Args:
            path: the ``.dcm`` file to write.
            file_for_instance: SOP Instance UID -> file (``slicer.dicomDatabase.fileForInstance`` in Slicer).

        Raises:
            LesionSegError: no result, a volume not loaded from DICOM, files gone, highdicom missing.
        """
        from .DicomSegExport import export_dicom_seg

        return export_dicom_seg(self.result, path, file_for_instance)

    def jump_target(self, row_index: int) -> tuple[float, float, float]:
        """The world RAS point (mm) of a lesion of the last result (see :func:`.Results.jump_target`)."""
        if self.result is None:
            raise IndexError("there is no lesion table yet.")
        return jump_target(self.result, row_index)

    def start_folder(self, parameters, *, on_progress: Callable[[JobProgress], None] | None = None,
                     on_log: Callable[[str], None] | None = None,
                     on_finished: Callable[[JobResult], None] | None = None) -> BackgroundJob:
        """Segment every case of a dataset folder in the background (the panel's "Segment a folder").

        Args:
            parameters: a :class:`~.FolderRun.FolderRunParameters` (validated first).
            on_progress: receives the job's progress after each case (``done`` of ``total`` cases).
            on_log, on_finished: as for :meth:`start`; the result's state is "partial" when some cases failed.

        Raises:
            ParameterError: invalid parameters, or a run is going on.
        """
        from lesionseg.errors import ParameterError

        if self.running:
            raise ParameterError("a segmentation is already running; wait for it or cancel it first.")
        ok, reason = parameters.validate()
        if not ok:
            raise ParameterError(reason)
        self.job = BackgroundJob("segment", parameters.arguments(), launcher=self.launcher, python=self.python,
                                 on_progress=on_progress, on_log=on_log, on_finished=on_finished)
        self.job.start()
        return self.job

    # ---- headless batch ---------------------------------------------------------------------------------
    def segment_dataset(self, bundle: str | os.PathLike, input_folder: str | os.PathLike,
                        output_folder: str | os.PathLike, *, on_progress: Callable[[JobProgress], None] | None = None,
                        on_log: Callable[[str], None] | None = None, **options: Any) -> JobResult:
        """Segment every case of a dataset folder into ``output_folder`` (masks, ``summary.csv``); blocks.

        Args:
            bundle, input_folder, output_folder: as ``lesionseg segment BUNDLE INPUT -o OUT``.
            on_progress, on_log: as for :meth:`start`.
            **options: the keyword options of :meth:`batch_arguments`.

        Returns:
            The job's result: state "succeeded", "partial" (exit code 3: some cases failed) or "failed".
        """
        arguments = self.batch_arguments(bundle, input_folder, output_folder, **options)
        self.job = BackgroundJob("segment", arguments, launcher=self.launcher, python=self.python,
                                 on_progress=on_progress, on_log=on_log)
        return self.job.start(waitForCompletion=True)


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def channel_volume_names(entry: BundleEntry, volumes: Sequence[Any]) -> dict[str, Any]:
    """A first guess of which loaded volume is which channel: a volume whose name contains the channel
    name (case-insensitive), else None; the reference channel falls back to the first volume.

    Args:
        entry: the chosen bundle.
        volumes: the scalar volume nodes of the scene, in scene order.
    """
    chosen: dict[str, Any] = {}
    for channel in entry.channels:
        match = next((volume for volume in volumes if channel.lower() in (volume.GetName() or "").lower()
                      and volume not in chosen.values()), None)
        chosen[channel] = match
    reference = entry.reference_channel or (entry.channels[0] if entry.channels else "")
    if reference and chosen.get(reference) is None:
        chosen[reference] = next((volume for volume in volumes if volume not in chosen.values()), None)
    return chosen
