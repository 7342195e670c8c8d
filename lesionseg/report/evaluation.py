"""Evaluate a folder of predictions against the truth, case by case (``lesionseg evaluate PRED TRUTH``).

PRED is a folder of masks named ``<case_id>.<ext>`` (``.nii.gz``, ``.seg.nrrd``, any format
:func:`lesionseg.io.read_mask` reads; what ``lesionseg segment`` writes) or a dataset whose masks are the
predictions. TRUTH is a dataset (any layout :func:`lesionseg.data.discover` reads) or a folder of masks
named by case id. Cases are matched by case id; truth cases without a prediction (``missing``) and
predictions without a truth (``extra``) are listed, never silently dropped.

Each pair must share one grid (size, spacing, origin, direction; :func:`lesionseg.io.geometry_difference`):
a prediction on another grid is an error naming both files. A Slicer ``.seg.nrrd``, whose stored grid may
be cropped to its segments, is first resampled onto the other mask's grid by physical position.

Multi-label masks (e.g. 1 core, 2 penumbra) are scored per class (:mod:`lesionseg.metrics.multiclass`): the
class names come from the truth's label table (:func:`lesionseg.data.label_table.find_label_table`; the
prediction's when the truth has none), and each row gains ``<class>_<metric>`` columns; the overall columns
then score every non-zero label as lesion (core and penumbra together: the hypoperfused region). A mask that
holds several labels without a table naming them is refused (one sentence, exit 2). Binary masks are scored
as before. Multi-label masks are read from label images (NIfTI, NRRD, ...), not from ``.seg.nrrd``.
"""

from __future__ import annotations

import csv
import io as text_io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lesionseg.errors import DatasetError, GeometryError, InputFileError, LesionSegError
from lesionseg.io import image_extension, strip_image_extension, write_text_atomic
from lesionseg.progress import ProgressCallback, ignore_progress

#: Per-case columns, in the order written to the CSV.
CASE_COLUMNS: tuple[str, ...] = (
    "case_id", "dice", "hd_mm", "hd95_mm", "assd_mm", "volume_truth_ml", "volume_prediction_ml",
    "abs_volume_difference_ml", "lesions_truth", "lesions_prediction", "abs_lesion_count_difference",
    "lesion_tp", "lesion_fn", "lesion_fp", "lesion_f1", "detection_rate", "lesion_slices", "detected_slices",
    "false_positive_slices", "empty_prediction", "empty_truth", "connectivity", "prediction", "truth",
)


@dataclass
class MaskSource:
    """One case's mask file, and an image on the same grid for the overlays when known.

    Attributes:
        mask: the mask file.
        channels: the case's channel images (from a dataset), or {} for a plain folder of masks.
        label, segment: which label value / ``.seg.nrrd`` segment to take (from the dataset's metadata).
        table: the label table of a multi-label mask, or None.
    """

    mask: Path
    channels: dict[str, Path] = field(default_factory=dict)
    label: int | None = None
    segment: str | None = None
    table: Any = None  # the mask's LabelTable when one is found (lesionseg.data.label_table)


def _mask_files(folder: Path) -> dict[str, Path]:
    """``case_id -> file`` for every image file directly in ``folder`` (hidden files skipped)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or image_extension(path) is None:
            continue
        case_id = strip_image_extension(path)
        if case_id in found:
            raise DatasetError(f"{folder} holds two masks for case {case_id}: {found[case_id].name} and {path.name}; "
                               "keep one.")
        found[case_id] = path
    return found


def _dataset_masks(path: Path) -> dict[str, MaskSource]:
    from lesionseg.data import discover
    from lesionseg.data.label_table import find_label_table

    root = path if path.is_dir() else path.parent
    return {case.case_id: MaskSource(case.mask, dict(case.channels), case.metadata.get("label"),
                                     case.metadata.get("segment"), find_label_table(case.mask, root))
            for case in discover(path, validate=False) if case.mask is not None}


def _folder_masks(files: dict[str, Path], folder: Path) -> dict[str, MaskSource]:
    from lesionseg.data.label_table import find_label_table

    return {case_id: MaskSource(file, table=find_label_table(file, folder)) for case_id, file in files.items()}


def collect_masks(path: str | os.PathLike, role: str) -> dict[str, MaskSource]:
    """The masks of a folder of ``<case_id>`` files or of a dataset, by case id.

    Args:
        path: the folder (or a CSV manifest).
        role: ``"prediction"`` (a folder with image files directly in it is read as a folder of masks,
            before trying the dataset layouts) or ``"truth"`` (dataset layouts first, then a folder of masks).

    Raises:
        InputFileError: the path does not exist.
        DatasetError: neither a dataset nor a folder of masks; no mask at all; two files for one case.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"the {role} path {path} does not exist.")
    files = _mask_files(path) if path.is_dir() else {}
    if role == "prediction" and files:
        return _folder_masks(files, path)
    try:
        masks = _dataset_masks(path)
    except LesionSegError as error:
        if files:
            return _folder_masks(files, path)
        raise DatasetError(f"the {role} path {path} is neither a folder of <case_id> mask files nor a dataset "
                           f"({str(error).rstrip('.')}).") from None
    if not masks:
        raise DatasetError(f"the {role} dataset {path} has no case with a lesion mask.")
    return masks


@dataclass
class EvaluationResult:
    """Metrics of every matched case and what could not be matched.

    Attributes:
        rows: one flat dict per case (see :data:`CASE_COLUMNS`), sorted by case id.
        summary: :func:`lesionseg.metrics.summarize` of the rows (mean, median, counts of empty masks).
        missing: truth case ids without a prediction; extra: prediction case ids without a truth.
        sources: case id -> (prediction source, truth source) of each evaluated case.
        classes: class value -> name of multi-label masks (their rows have ``<class>_<metric>`` columns), or {}.
    """

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    missing: list[str]
    extra: list[str]
    sources: dict[str, tuple[MaskSource, MaskSource]]
    classes: dict[int, str] = field(default_factory=dict)


def read_pair(prediction: MaskSource, truth: MaskSource) -> tuple[Any, Any]:
    """Read a prediction and its truth as uint8 0/1 images on one grid.

    Raises:
        GeometryError: the two grids differ (naming both files); InputFileError: an unreadable file.
    """
    from lesionseg.io import geometry_difference, read_mask

    truth_seg = image_extension(truth.mask) == ".seg.nrrd"
    prediction_seg = image_extension(prediction.mask) == ".seg.nrrd"
    if truth_seg and not prediction_seg:
        predicted = read_mask(prediction.mask)
        reference = read_mask(truth.mask, reference=predicted, label=truth.label, segment=truth.segment)
    else:
        reference = read_mask(truth.mask, label=truth.label, segment=truth.segment)
        predicted = read_mask(prediction.mask, reference=reference if prediction_seg else None)
    difference = geometry_difference(predicted, reference)
    if difference is not None:
        raise GeometryError(f"the prediction {prediction.mask} is not on the grid of its truth {truth.mask} "
                            f"({difference}); resample the prediction onto the truth's grid first.")
    return predicted, reference


def read_labelled_pair(prediction: MaskSource, truth: MaskSource) -> tuple[Any, Any, dict[int, str] | None]:
    """Read a prediction and its truth on one grid, as label images when they are multi-label.

    Multi-label: either mask holds more than one non-zero value, or the truth's (else the prediction's) label
    table lists more than one class. Then the images keep their values and the class names are returned;
    otherwise this is :func:`read_pair` (0/1 masks, names None).

    Raises:
        DatasetError: a multi-label mask without a label table naming its classes.
        GeometryError, InputFileError: as :func:`read_pair`.
    """
    import numpy as np
    import SimpleITK as sitk

    from lesionseg.io import binarise_mask, geometry_difference, read_image

    if truth.label is not None or ".seg.nrrd" in (image_extension(truth.mask), image_extension(prediction.mask)):
        return (*read_pair(prediction, truth), None)
    reference, predicted = read_image(truth.mask), read_image(prediction.mask)
    values = {}
    for role, image, path in (("truth", reference, truth.mask), ("prediction", predicted, prediction.mask)):
        array = sitk.GetArrayViewFromImage(image)
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)) or np.any(array < 0):
            raise InputFileError(f"the {role} {path} must hold whole-number labels >= 0.")
        values[role] = [int(v) for v in np.unique(array) if v != 0]
    table = truth.table or prediction.table
    multi = (len(values["truth"]) > 1 or len(values["prediction"]) > 1
             or (table is not None and len(table.labels) > 1))
    if not multi:
        reference, predicted = binarise_mask(reference, truth.mask), binarise_mask(predicted, prediction.mask)
    elif table is None:
        many = truth.mask if len(values["truth"]) > 1 else prediction.mask
        found = ", ".join(str(v) for v in sorted(set(values["truth"]) | set(values["prediction"])))
        raise DatasetError(f"{many} holds several labels ({found}) "
                           f"but no label table names them; write {label_table_path_of(truth.mask)} (BIDS dseg.tsv: "
                           "index, name, color) or 'labels' in the dataset's dataset.json.")
    difference = geometry_difference(predicted, reference)
    if difference is not None:
        raise GeometryError(f"the prediction {prediction.mask} is not on the grid of its truth {truth.mask} "
                            f"({difference}); resample the prediction onto the truth's grid first.")
    if not multi:
        return predicted, reference, None
    cast = [sitk.Cast(image, sitk.sitkUInt16) for image in (predicted, reference)]
    return cast[0], cast[1], table.names()


def label_table_path_of(mask: Path) -> Path:
    """Where the label table of ``mask`` goes (:func:`lesionseg.data.label_table.label_table_path`)."""
    from lesionseg.data.label_table import label_table_path

    return label_table_path(mask)


def evaluate_predictions(prediction_path: str | os.PathLike, truth_path: str | os.PathLike,
                         connectivity: int | str = 26, progress: ProgressCallback = ignore_progress) -> EvaluationResult:
    """Match predictions to truth by case id and compute every case metric (:mod:`lesionseg.metrics`).

    Args:
        prediction_path: folder of ``<case_id>`` masks, or a dataset.
        truth_path: dataset, or folder of ``<case_id>`` masks.
        connectivity: lesion connectivity: 26 (ISLES'22, default), 18, 6 (ATLAS v2.0) or their names.
        progress: receives ``{"event": "progress", "stage": "evaluate", "done", "total"}`` per case.

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        DatasetError: no case in common; GeometryError: a pair on different grids; InputFileError: an
            unreadable file.
    """
    import SimpleITK as sitk

    from lesionseg.metrics import evaluate_case, resolve_connectivity, spacing_from_image, summarize
    from lesionseg.metrics.summary import SUMMARISED_METRICS

    resolve_connectivity(connectivity, 3)  # a bad value fails before any file is read
    predictions = collect_masks(prediction_path, "prediction")
    truths = collect_masks(truth_path, "truth")
    common = sorted(set(predictions) & set(truths))
    missing = sorted(set(truths) - set(predictions))
    extra = sorted(set(predictions) - set(truths))
    if not common:
        raise DatasetError(f"no case id of {prediction_path} matches one of {truth_path} (predictions: "
                           f"{', '.join(sorted(predictions)[:3])}...; truth: {', '.join(sorted(truths)[:3])}...); "
                           "name each prediction <case_id>.nii.gz.")
    from lesionseg.metrics import CLASS_METRICS, class_columns, class_row, class_slug, evaluate_classes

    rows, sources, classes = [], {}, {}
    for done, case_id in enumerate(common):
        progress({"event": "progress", "stage": "evaluate", "done": done, "total": len(common), "message": case_id})
        predicted, reference, names = read_labelled_pair(predictions[case_id], truths[case_id])
        labels_pred, labels_truth = sitk.GetArrayViewFromImage(predicted), sitk.GetArrayViewFromImage(reference)
        spacing = spacing_from_image(reference)
        metrics = evaluate_case(labels_pred > 0, labels_truth > 0, spacing, connectivity)
        row = {"case_id": case_id, **metrics.to_dict(), "prediction": str(predictions[case_id].mask),
               "truth": str(truths[case_id].mask)}
        columns = list(CASE_COLUMNS)
        if names:
            classes.update(names)
            row.update(class_row(evaluate_classes(labels_pred, labels_truth, spacing, names, connectivity), names))
            columns += class_columns(names)
        rows.append({column: row.get(column) for column in columns})
        sources[case_id] = (predictions[case_id], truths[case_id])
    progress({"event": "progress", "stage": "evaluate", "done": len(common), "total": len(common)})
    per_class = [f"{class_slug(name)}_{metric}" for _, name in sorted(classes.items()) for metric in CLASS_METRICS]
    return EvaluationResult(rows, summarize(rows, SUMMARISED_METRICS + tuple(per_class)), missing, extra, sources,
                            dict(sorted(classes.items())))


def metrics_csv_text(rows: list[dict[str, Any]]) -> str:
    """The per-case rows as CSV text (floats with up to 10 significant digits, None empty); per-class columns
    of multi-label masks follow :data:`CASE_COLUMNS`."""
    buffer = text_io.StringIO()
    extra = [key for key in dict.fromkeys(key for row in rows for key in row) if key not in CASE_COLUMNS]
    writer = csv.DictWriter(buffer, fieldnames=list(CASE_COLUMNS) + extra, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if value is None or (isinstance(value, float) and not math.isfinite(value))
                               else format(value, ".10g") if isinstance(value, float) else value)
                         for key, value in row.items()})
    return buffer.getvalue()


def write_metrics_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the per-case metrics as CSV, atomically; returns the path."""
    path = Path(path)
    write_text_atomic(path, metrics_csv_text(rows))
    return path
