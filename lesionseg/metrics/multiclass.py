"""Metrics of multi-label masks, class by class (e.g. 1 ischaemic core, 2 penumbra).

Each class is scored as its own binary mask (``prediction == value`` against ``truth == value``) with every
metric of :func:`lesionseg.metrics.evaluate_case`: Dice, surface distances, volumes, lesion-wise F1 of that
class's components. This is what MONAI's ``DiceMetric`` computes on one-hot masks without the background
channel, and what the ISLES and BraTS evaluations report per region.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from lesionseg.errors import GeometryError, ParameterError
from lesionseg.metrics._checks import SpacingLike
from lesionseg.metrics.evaluate import CaseMetrics, evaluate_case

#: per-class metrics, as ``<class>_<metric>`` columns of an evaluation (see :func:`class_columns`)
CLASS_METRICS: tuple[str, ...] = ("dice", "hd95_mm", "volume_truth_ml", "volume_prediction_ml",
                                  "abs_volume_difference_ml", "lesion_f1")


def as_label_array(mask: Any, name: str) -> np.ndarray:
    """A label mask as a non-negative integer array (whole-number values only).

    Raises:
        ParameterError: fractional or negative values (probabilities, or a signed image).
    """
    array = np.asarray(mask)
    if array.dtype == bool:
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.number):
        raise ParameterError(f"{name} must be a numeric label mask; got dtype {array.dtype}.")
    if not np.issubdtype(array.dtype, np.integer):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            raise ParameterError(f"{name} must hold whole-number labels; found {array[bad].flat[0]!r}.")
    if (array < 0).any():
        raise ParameterError(f"{name} must hold labels >= 0; found {array.min()!r}.")
    return array.astype(np.int64, copy=False)


def class_slug(name: str) -> str:
    """A class name as a column prefix: lower case, runs of other characters as ``_`` (``"Ischaemic core"`` ->
    ``ischaemic_core``)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "class"


def class_columns(names: dict[int, str]) -> list[str]:
    """The per-class columns of an evaluation, class by class in value order."""
    return [f"{class_slug(names[value])}_{metric}" for value in sorted(names) for metric in CLASS_METRICS]


def evaluate_classes(prediction: Any, truth: Any, spacing: SpacingLike, names: dict[int, str],
                     connectivity: int | str = 26) -> dict[int, CaseMetrics]:
    """Every case metric for each class of a multi-label prediction against its truth.

    Args:
        prediction: 3D ``(z, y, x)`` label mask (0 background, class values).
        truth: label mask of the same shape.
        spacing: mm per voxel in array order ``(z, y, x)``.
        names: class value -> name (background 0 excluded); every non-zero value of either mask must be one.
        connectivity: lesion connectivity (see :func:`lesionseg.metrics.evaluate_case`).

    Returns:
        class value -> :class:`CaseMetrics` of that class.

    Raises:
        ParameterError: a value that is not a listed class, or non-label masks.
        GeometryError: the shapes differ.
    """
    pred, ref = as_label_array(prediction, "prediction"), as_label_array(truth, "truth")
    if pred.shape != ref.shape:
        raise GeometryError(f"prediction and truth must have the same shape; got {pred.shape} and {ref.shape}.")
    for array, role in ((ref, "truth"), (pred, "prediction")):
        unknown = sorted(set(np.unique(array).tolist()) - set(names) - {0})
        if unknown:
            raise ParameterError(f"the {role} holds label {unknown[0]}, which is not among the classes "
                                 f"{', '.join(f'{v} {n}' for v, n in sorted(names.items()))}.")
    return {value: evaluate_case(pred == value, ref == value, spacing, connectivity) for value in sorted(names)}


def class_row(metrics: dict[int, CaseMetrics], names: dict[int, str]) -> dict[str, Any]:
    """The per-class metrics as flat ``<class>_<metric>`` columns (:func:`class_columns`)."""
    row: dict[str, Any] = {}
    for value, result in metrics.items():
        flat = result.to_dict()
        for metric in CLASS_METRICS:
            row[f"{class_slug(names[value])}_{metric}"] = flat[metric]
    return row
