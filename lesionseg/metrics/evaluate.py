"""All metrics of a case, and per-slice metrics of a stack, as small records.

``evaluate_case`` works on one 3D ``(z, y, x)`` pair of masks with its spacing in the same order;
``evaluate_case_images`` does the same from two ``SimpleITK.Image`` masks, reading and checking their
geometry; ``evaluate_slices`` gives one record per lesion slice of a stack (the curriculum paper's
per-slice Dice and Hausdorff distances, computed in 2D with the in-plane spacing).

Empty masks never produce NaN: see :mod:`lesionseg.metrics.surface` for the worst-case distance (the
image diagonal in mm) and the ``empty_prediction`` / ``empty_truth`` flags that let a caller count them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lesionseg.errors import GeometryError, ParameterError
from lesionseg.metrics._checks import SpacingLike, as_binary_pair, check_spacing, spacing_from_image
from lesionseg.metrics.detection import DetectionResult, detection_rate
from lesionseg.metrics.lesionwise import LesionwiseCounts, lesionwise_counts
from lesionseg.metrics.overlap import dice, voxel_volume_ml
from lesionseg.metrics.surface import surface_distances


@dataclass(frozen=True)
class SliceMetrics:
    """Metrics of one 2D slice, distances in mm with the in-plane spacing.

    Attributes:
        slice_index: position of the slice along axis 0 of the stack.
        dice: Dice coefficient.
        hd_mm: Hausdorff distance.
        hd95_mm: max of the two directed 95th percentiles.
        assd_mm: average symmetric surface distance.
        empty_prediction: nothing predicted on this slice (the distances are then the slice diagonal).
        worst_case_mm: the slice diagonal in mm.
    """

    slice_index: int
    dice: float
    hd_mm: float
    hd95_mm: float
    assd_mm: float
    empty_prediction: bool
    worst_case_mm: float

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class CaseMetrics:
    """All metrics of one 3D case.

    Attributes:
        dice: Dice coefficient (1.0 when both masks are empty).
        hd_mm, hd95_mm, assd_mm: surface distances in mm (0 both empty; the diagonal if one is empty).
        empty_prediction, empty_truth: which mask, if any, is empty.
        worst_case_mm: the image diagonal in mm.
        volume_truth_ml, volume_prediction_ml: volumes in mL.
        abs_volume_difference_ml: ``|volume_truth_ml - volume_prediction_ml|``.
        lesionwise: lesion-wise TP/FN/FP/F1 and counts.
        abs_lesion_count_difference: ``|#truth lesions - #predicted lesions|``.
        detection: slice-level detection along axis 0 (z).
    """

    dice: float
    hd_mm: float
    hd95_mm: float
    assd_mm: float
    empty_prediction: bool
    empty_truth: bool
    worst_case_mm: float
    volume_truth_ml: float
    volume_prediction_ml: float
    abs_volume_difference_ml: float
    lesionwise: LesionwiseCounts
    abs_lesion_count_difference: int
    detection: DetectionResult

    def to_dict(self) -> dict[str, Any]:
        """Return a flat dict (one level, JSON/CSV friendly) of every metric."""
        flat = {k: v for k, v in asdict(self).items() if k not in ("lesionwise", "detection")}
        lesion = self.lesionwise
        flat.update(
            lesion_tp=lesion.tp,
            lesion_fn=lesion.fn,
            lesion_fp=lesion.fp,
            lesion_f1=lesion.f1,
            lesions_truth=lesion.n_truth,
            lesions_prediction=lesion.n_prediction,
            connectivity=lesion.connectivity,
            detection_rate=self.detection.rate,
            lesion_slices=self.detection.lesion_slices,
            detected_slices=self.detection.detected_slices,
            false_positive_slices=self.detection.false_positive_slices,
        )
        return flat


def evaluate_case(
    prediction: Any, truth: Any, spacing: SpacingLike, connectivity: int | str = 26
) -> CaseMetrics:
    """Compute every case-level metric of a 3D prediction against its truth.

    Args:
        prediction: 3D ``(z, y, x)`` predicted mask, bool or 0/1.
        truth: reference mask of the same shape.
        spacing: mm per voxel in array order ``(z, y, x)`` (use :func:`spacing_from_image` for SimpleITK
            images, whose own ``GetSpacing()`` is ``(x, y, z)``).
        connectivity: lesion connectivity, 6/18/26 or ``"isles22"`` (26, default) / ``"atlas2"`` (6).

    Returns:
        A :class:`CaseMetrics`.

    Raises:
        ParameterError: masks not 3D and binary, invalid spacing or connectivity.
        GeometryError: the shapes differ.
    """
    pred, ref = as_binary_pair(prediction, truth)
    if pred.ndim != 3:
        raise ParameterError(f"evaluate_case needs 3D (z, y, x) masks; got shape {pred.shape}.")
    sampling = check_spacing(spacing, 3)
    distances = surface_distances(pred, ref, sampling)
    voxel_ml = voxel_volume_ml(sampling)
    volume_truth = int(np.count_nonzero(ref)) * voxel_ml
    volume_pred = int(np.count_nonzero(pred)) * voxel_ml
    lesions = lesionwise_counts(pred, ref, connectivity)
    return CaseMetrics(
        dice=dice(pred, ref),
        hd_mm=distances.hd_mm,
        hd95_mm=distances.hd95_mm,
        assd_mm=distances.assd_mm,
        empty_prediction=distances.empty_prediction,
        empty_truth=distances.empty_truth,
        worst_case_mm=distances.worst_case_mm,
        volume_truth_ml=volume_truth,
        volume_prediction_ml=volume_pred,
        abs_volume_difference_ml=abs(volume_truth - volume_pred),
        lesionwise=lesions,
        abs_lesion_count_difference=lesions.count_difference,
        detection=detection_rate(pred, ref),
    )


def _check_same_grid(prediction: Any, truth: Any, tolerance: float) -> None:
    """Raise GeometryError unless two SimpleITK images share size, spacing, origin and direction."""
    checks = (
        ("size", prediction.GetSize(), truth.GetSize()),
        ("spacing", prediction.GetSpacing(), truth.GetSpacing()),
        ("origin", prediction.GetOrigin(), truth.GetOrigin()),
        ("direction", prediction.GetDirection(), truth.GetDirection()),
    )
    for name, a, b in checks:
        if len(a) != len(b) or not np.allclose(a, b, rtol=0.0, atol=tolerance):
            raise GeometryError(
                f"the prediction and truth images must share one grid, but their {name} differs: "
                f"{tuple(a)} vs {tuple(b)} (resample the prediction onto the truth first)."
            )


def evaluate_case_images(
    prediction: Any, truth: Any, connectivity: int | str = 26, tolerance: float = 1e-4
) -> CaseMetrics:
    """:func:`evaluate_case` on two 3D ``SimpleITK.Image`` masks, spacing read from the truth image.

    Args:
        prediction: predicted mask image (values 0/1).
        truth: reference mask image on the same grid.
        connectivity: see :func:`evaluate_case`.
        tolerance: largest allowed difference in spacing, origin (mm) and direction cosines.

    Returns:
        A :class:`CaseMetrics`.

    Raises:
        GeometryError: the two images do not share size, spacing, origin and direction.
        ParameterError: the images are not 3D binary masks.
    """
    import SimpleITK as sitk

    _check_same_grid(prediction, truth, tolerance)
    return evaluate_case(
        sitk.GetArrayViewFromImage(prediction),
        sitk.GetArrayViewFromImage(truth),
        spacing_from_image(truth),
        connectivity,
    )


def _per_slice_spacing(spacing: SpacingLike, n_slices: int) -> np.ndarray:
    """Turn the accepted spacing forms into an ``(n_slices, 2)`` array of in-plane (y, x) spacings."""
    array = np.asarray(spacing, dtype=float) if spacing is not None else None
    if array is not None and array.ndim == 2:
        if array.shape != (n_slices, 2):
            raise ParameterError(
                f"per-slice spacing must have shape ({n_slices}, 2) (one (y, x) pair per slice); "
                f"got {array.shape}."
            )
        for row in array:
            check_spacing(row, 2)
        return array
    if array is not None and array.ndim == 1 and array.size == 3:
        in_plane = check_spacing(array, 3)[1:]
    elif array is not None and array.ndim == 1 and array.size != 2:
        raise ParameterError(
            "spacing of a slice stack must be (z, y, x), (y, x) or one (y, x) row per slice; "
            f"got {spacing!r}."
        )
    else:
        in_plane = check_spacing(spacing, 2)
    return np.tile(np.asarray(in_plane, dtype=float), (n_slices, 1))


def evaluate_slices(prediction: Any, truth: Any, spacing: SpacingLike) -> list[SliceMetrics]:
    """Per-slice Dice, HD, HD95 and ASSD for every lesion slice of a stack (slices along axis 0).

    Args:
        prediction: 3D ``(slice, y, x)`` predicted mask, bool or 0/1.
        truth: reference mask of the same shape.
        spacing: one of ``(z, y, x)`` (a volume's spacing; only ``(y, x)`` is used), ``(y, x)`` (the same
            in-plane spacing for every slice), or an array of shape ``(n_slices, 2)`` with each slice's
            ``(y, x)`` pixel size (prepared slices resized to a common size have different ones).

    Returns:
        One :class:`SliceMetrics` per slice whose truth is non-empty, in slice order. Slices without
        truth are left out (see :func:`detection_rate` for predictions on them).

    Raises:
        ParameterError: masks not 3D and binary, or invalid spacing.
        GeometryError: the shapes differ.
    """
    pred, ref = as_binary_pair(prediction, truth)
    if pred.ndim != 3:
        raise ParameterError(f"evaluate_slices needs a (slice, y, x) stack; got shape {pred.shape}.")
    spacings = _per_slice_spacing(spacing, pred.shape[0])
    records = []
    for index in np.flatnonzero(ref.reshape(ref.shape[0], -1).any(axis=1)):
        distances = surface_distances(pred[index], ref[index], tuple(spacings[index]))
        records.append(
            SliceMetrics(
                slice_index=int(index),
                dice=dice(pred[index], ref[index]),
                hd_mm=distances.hd_mm,
                hd95_mm=distances.hd95_mm,
                assd_mm=distances.assd_mm,
                empty_prediction=distances.empty_prediction,
                worst_case_mm=distances.worst_case_mm,
            )
        )
    return records

