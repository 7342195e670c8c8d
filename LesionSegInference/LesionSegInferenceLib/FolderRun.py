"""The panel's "Segment a folder": every case of a dataset folder, in the background, then a chosen case loaded.

The job is the headless batch (``lesionseg segment BUNDLE DATASET -o OUT``, as ``Scripts/segment_batch.py`` runs
it): one mask per case in the output folder, ``summary.csv`` (a failed case with its reason; the others go on) and
``segment.log``. Its per-case progress events drive the panel's progress bar; :func:`read_summary` gives the rows
of the panel's table; :func:`load_case_result` puts a case's scan and its mask into the scene (the mask is on the
grid of the bundle's reference channel, which is the volume loaded).

Nothing here imports Qt or the Slicer application; ``lesionseg`` is imported inside the functions.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .Parameters import DEFAULT_MIN_LESION_MM3, validate_segment_options

#: The mask format of a folder run started from the panel (NRRD: Slicer reads it as it is).
FOLDER_OUTPUT_FORMAT = "nrrd"


@dataclass
class FolderRunParameters:
    """A folder run: the bundle, the dataset folder (any layout ``lesionseg cases`` reads), the output folder and
    the panel's options (as for one volume)."""

    bundle_path: str = ""
    input_folder: str = ""
    output_folder: str = ""
    device: str = "auto"
    side: str = "auto"
    tta: bool = False
    threshold: float | None = None
    min_lesion_mm3: float = DEFAULT_MIN_LESION_MM3
    fill_holes: bool = True
    skip_existing: bool = False

    def validate(self) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, reason)``: one sentence naming the folder or option and what to do."""
        bundle = Path(str(self.bundle_path or "").strip()).expanduser()
        source = Path(str(self.input_folder or "").strip()).expanduser()
        target = Path(str(self.output_folder or "").strip()).expanduser()
        if not str(self.bundle_path or "").strip():
            return False, "Choose a model bundle above first."
        if not bundle.is_file():
            return False, f"The model bundle {bundle} does not exist; choose another one above."
        if not str(self.input_folder or "").strip():
            return False, "Choose the dataset folder to segment."
        if not source.exists():
            return False, f"The dataset folder {source} does not exist; choose an existing one."
        if not str(self.output_folder or "").strip():
            return False, "Choose the folder where the masks and summary.csv will be written."
        if target.resolve() == source.resolve():
            return False, "The output folder must not be the dataset folder; choose another, e.g. an empty one."
        return validate_segment_options(self.device, self.side, self.threshold, self.min_lesion_mm3)

    def arguments(self) -> list[str]:
        """The ``lesionseg segment`` arguments (without ``--progress``)."""
        from .Logic import InferenceLogic

        return InferenceLogic.batch_arguments(
            self.bundle_path, self.input_folder, self.output_folder, device=self.device, side=self.side, tta=self.tta,
            threshold=self.threshold, min_lesion_mm3=self.min_lesion_mm3, fill_holes=self.fill_holes,
            output_format=FOLDER_OUTPUT_FORMAT, skip_existing=self.skip_existing)


@dataclass(frozen=True)
class FolderCaseRow:
    """One line of ``summary.csv``: the case, its lesion volume (mL) and count, seconds, and its status ("ok",
    "skipped" or "failed: <reason>")."""

    case_id: str
    lesion_ml: float | None
    lesion_count: int | None
    seconds: float | None
    status: str

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped")

    @property
    def cells(self) -> tuple[str, ...]:
        """The row as the panel's table shows it."""
        volume = "" if self.lesion_ml is None else f"{self.lesion_ml:.2f}"
        count = "" if self.lesion_count is None else str(self.lesion_count)
        return (self.case_id, volume, count, self.status)


FOLDER_COLUMNS = ("Case", "Lesion (mL)", "Lesions", "Status")


def _number(text: str, kind=float):
    try:
        return kind(text) if str(text).strip() else None
    except ValueError:
        return None


def read_summary(output_folder: str | Path) -> list[FolderCaseRow]:
    """The rows of a folder run's ``summary.csv`` ([] when it has not written one yet).

    Raises:
        InputFileError: the file is not a summary (its columns are not those ``lesionseg segment`` writes).
    """
    from lesionseg.errors import InputFileError

    path = Path(output_folder) / "summary.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"case_id", "lesion_ml", "lesion_count", "seconds", "status"} <= set(reader.fieldnames or []):
            raise InputFileError(f"{path} is not the summary of a segmentation run (columns {reader.fieldnames}).")
        return [FolderCaseRow(row["case_id"], _number(row["lesion_ml"]), _number(row["lesion_count"], int),
                              _number(row["seconds"]), row["status"]) for row in reader]


def load_case_result(scene, input_folder: str | Path, output_folder: str | Path, case_id: str,
                     reference_channel: str = "") -> tuple[Any, Any]:
    """Load one case of a folder run: its scan (the bundle's reference channel) and its mask as a segmentation.

    Args:
        scene: the MRML scene.
        input_folder: the dataset folder that was segmented.
        output_folder: the run's output folder.
        case_id: the case to load.
        reference_channel: the bundle's reference channel (default: the case's first channel).

    Returns:
        ``(volume node, segmentation node)``.

    Raises:
        LesionSegError: no such case, no mask for it (it failed or is not done), or the mask is not on the scan's
            grid; one sentence naming the case.
    """
    from lesionseg.data import discover
    from lesionseg.errors import DatasetError, InputFileError
    from lesionseg.infer.outputs import output_path
    from lesionseg.io import read_image
    from lesionseg.mrml import segmentation_node_from_labelmap, volume_node_from_image

    cases = {case.case_id: case for case in discover(Path(input_folder), validate=False)}
    case = cases.get(case_id)
    if case is None:
        raise DatasetError(f"the dataset {input_folder} has no case {case_id}.")
    mask_path = output_path(Path(output_folder), case_id, FOLDER_OUTPUT_FORMAT)
    if not mask_path.is_file():
        raise InputFileError(f"case {case_id} has no mask in {output_folder} (it failed or is not done yet; see "
                             "its status).")
    channel = next((name for name in case.channels if name.lower() == reference_channel.lower()),
                   next(iter(case.channels)))
    volume = volume_node_from_image(scene, read_image(case.channels[channel]), f"{case_id} {channel}")
    mask = read_image(mask_path)
    segmentation = segmentation_node_from_labelmap(scene, mask, volume, name=f"{case_id} lesion")
    return volume, segmentation
