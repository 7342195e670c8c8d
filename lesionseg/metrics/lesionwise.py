"""Lesion-wise detection counts and F1, and the absolute lesion count difference.

A lesion is a connected component of a mask. Conventions, by name (see METRICS-NOTES.md):

- ``"isles22"`` (the default): components at 26-connectivity (3D; 8 in 2D). A truth component that
  overlaps the prediction in at least one voxel is a true positive (TP), otherwise a false negative (FN);
  a predicted component that touches no truth voxel is a false positive (FP). There is no one-to-one
  matching: one predicted blob over two truth lesions gives 2 TP, and a truth lesion split into two
  predicted pieces gives 1 TP and no FP. ``F1 = TP / (TP + (FP + FN) / 2)``; both masks empty -> 1.0.
- ``"atlas2"``: the same any-overlap rules with 6-connectivity (4 in 2D), as ATLAS v2.0's scorer labels
  components (SciPy's default structure). Two lesions touching only at a corner or an edge are then two
  lesions.

The connectivity can also be given as a number: 6, 18 or 26 for 3D masks, 4 or 8 for 2D masks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from lesionseg.errors import ParameterError
from lesionseg.metrics._checks import as_binary, as_binary_pair, check_spacing

#: Named conventions -> connectivity for 3D masks (2D masks use the face / full equivalent).
LESIONWISE_CONVENTIONS: dict[str, int] = {"isles22": 26, "atlas2": 6}

# connectivity -> (array rank, scipy "connectivity" rank of generate_binary_structure)
_CONNECTIVITY_RANK: dict[tuple[int, int], int] = {
    (3, 6): 1,
    (3, 18): 2,
    (3, 26): 3,
    (2, 4): 1,
    (2, 8): 2,
}
_FULL = {2: 8, 3: 26}
_FACE = {2: 4, 3: 6}


def resolve_connectivity(connectivity: int | str, ndim: int) -> int:
    """Turn a connectivity number or convention name into a connectivity valid for ``ndim``.

    Args:
        connectivity: 6, 18 or 26 (3D), 4 or 8 (2D), or a name in :data:`LESIONWISE_CONVENTIONS`
            (``"isles22"`` = full connectivity, ``"atlas2"`` = face connectivity, in 2D or 3D).
        ndim: 2 or 3.

    Returns:
        The connectivity as a number of neighbours.

    Raises:
        ParameterError: unknown name, or a number that does not exist for that dimension.
    """
    if isinstance(connectivity, str):
        key = connectivity.lower()
        if key not in LESIONWISE_CONVENTIONS:
            raise ParameterError(
                f"connectivity convention {connectivity!r} is unknown; use one of "
                f"{sorted(LESIONWISE_CONVENTIONS)} or a number (6, 18, 26 in 3D; 4, 8 in 2D)."
            )
        return _FULL[ndim] if LESIONWISE_CONVENTIONS[key] == 26 else _FACE[ndim]
    if (ndim, connectivity) not in _CONNECTIVITY_RANK:
        allowed = sorted(c for (d, c) in _CONNECTIVITY_RANK if d == ndim)
        raise ParameterError(
            f"connectivity must be one of {allowed} for {ndim}D masks (or 'isles22' / 'atlas2'); "
            f"got {connectivity!r}."
        )
    return int(connectivity)


def label_lesions(mask: Any, connectivity: int | str = 26) -> tuple[np.ndarray, int]:
    """Label the connected components (lesions) of a mask.

    Args:
        mask: bool or 0/1 mask, ``(y, x)`` or ``(z, y, x)``.
        connectivity: see :func:`resolve_connectivity`.

    Returns:
        ``(labels, count)``: an int32 array with 0 for background and 1..count for the lesions.

    Raises:
        ParameterError: the mask is not binary, or the connectivity is invalid for its dimension.
    """
    array = as_binary(mask, "mask")
    neighbours = resolve_connectivity(connectivity, array.ndim)
    structure = ndimage.generate_binary_structure(array.ndim, _CONNECTIVITY_RANK[(array.ndim, neighbours)])
    labels, count = ndimage.label(array, structure=structure)
    return labels.astype(np.int32, copy=False), int(count)


@dataclass(frozen=True)
class LesionwiseCounts:
    """Lesion-wise counts between a prediction and a truth mask.

    Attributes:
        tp: truth lesions overlapping the prediction.
        fn: truth lesions not touched by the prediction.
        fp: predicted lesions touching no truth voxel.
        f1: ``tp / (tp + (fp + fn) / 2)``; 1.0 when both masks are empty.
        n_truth: number of truth lesions (``tp + fn``).
        n_prediction: number of predicted lesions.
        connectivity: the connectivity used (number of neighbours).
    """

    tp: int
    fn: int
    fp: int
    f1: float
    n_truth: int
    n_prediction: int
    connectivity: int

    @property
    def count_difference(self) -> int:
        """Absolute lesion count difference ``|n_truth - n_prediction|``."""
        return abs(self.n_truth - self.n_prediction)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields (and the count difference) as a plain dict."""
        return {**asdict(self), "count_difference": self.count_difference}


def lesionwise_counts(prediction: Any, truth: Any, connectivity: int | str = 26) -> LesionwiseCounts:
    """Lesion-wise TP, FN, FP and F1 with any-overlap detection (ISLES'22 rules).

    Args:
        prediction: predicted mask, bool or 0/1, ``(y, x)`` or ``(z, y, x)``.
        truth: reference mask of the same shape.
        connectivity: 6/18/26 (3D), 4/8 (2D), or ``"isles22"`` (default, 26) / ``"atlas2"`` (6).

    Returns:
        A :class:`LesionwiseCounts`.

    Raises:
        ParameterError: a mask is not binary or the connectivity is invalid.
        GeometryError: the shapes differ.
    """
    pred, ref = as_binary_pair(prediction, truth)
    neighbours = resolve_connectivity(connectivity, pred.ndim)
    truth_labels, n_truth = label_lesions(ref, neighbours)
    pred_labels, n_pred = label_lesions(pred, neighbours)
    # A truth lesion is detected when any of its voxels is predicted; a predicted lesion is a false
    # positive when none of its voxels is truth. Counting the distinct labels under the other mask gives
    # both without looping over components.
    tp = int(np.unique(truth_labels[pred & ref]).size)
    pred_touching = int(np.unique(pred_labels[pred & ref]).size)
    fn = n_truth - tp
    fp = n_pred - pred_touching
    if tp + fn + fp == 0:
        f1 = 1.0
    else:
        f1 = tp / (tp + (fp + fn) / 2.0)
    return LesionwiseCounts(tp, fn, fp, float(f1), n_truth, n_pred, neighbours)


def lesion_count_difference(prediction: Any, truth: Any, connectivity: int | str = 26) -> int:
    """Absolute difference of the numbers of lesions, ``|#truth - #prediction|`` (ISLES'22).

    Args:
        prediction: predicted mask, bool or 0/1.
        truth: reference mask of the same shape.
        connectivity: see :func:`resolve_connectivity` (default 26).

    Returns:
        The absolute count difference.

    Raises:
        ParameterError: a mask is not binary or the connectivity is invalid.
        GeometryError: the shapes differ.
    """
    pred, ref = as_binary_pair(prediction, truth)
    return abs(label_lesions(ref, connectivity)[1] - label_lesions(pred, connectivity)[1])


@dataclass(frozen=True)
class LesionVolume:
    """One truth lesion's volume and the volume the prediction gives it.

    Attributes:
        truth_ml: the truth lesion's volume (mL).
        predicted_ml: the volume of the predicted lesions that overlap it (mL; 0 when it is missed). A predicted
            lesion that overlaps several truth lesions counts whole for each.
        ratio: ``predicted_ml / truth_ml`` (1 = the right size).
    """

    truth_ml: float
    predicted_ml: float
    ratio: float


def lesion_volume_ratios(prediction: Any, truth: Any, spacing: Any, min_truth_ml: float = 0.0,
                         connectivity: int | str = 26) -> list[LesionVolume]:
    """Per truth lesion of at least ``min_truth_ml``: its volume and the predicted volume found for it.

    This is what "the lesion was found whole" means for a large lesion: a model that marks only a lesion's
    rim detects it (lesion-wise F1 counts it as found) but gives it a ratio well under 1.

    Args:
        prediction: predicted mask, bool or 0/1, ``(z, y, x)``.
        truth: reference mask of the same shape.
        spacing: mm per voxel in ``(z, y, x)`` order.
        min_truth_ml: smaller truth lesions are left out.
        connectivity: see :func:`resolve_connectivity`.

    Returns:
        One :class:`LesionVolume` per kept truth lesion, largest first.
    """
    pred, ref = as_binary_pair(prediction, truth)
    voxel_ml = float(np.prod(check_spacing(spacing, pred.ndim))) / 1000.0
    truth_labels, n_truth = label_lesions(ref, connectivity)
    pred_labels, _ = label_lesions(pred, connectivity)
    pred_sizes = np.bincount(pred_labels.ravel())
    truth_sizes = np.bincount(truth_labels.ravel(), minlength=n_truth + 1)
    volumes = []
    for label in range(1, n_truth + 1):
        truth_ml = float(truth_sizes[label]) * voxel_ml
        if truth_ml < min_truth_ml:
            continue
        touching = np.unique(pred_labels[truth_labels == label])
        touching = touching[touching > 0]
        predicted_ml = float(pred_sizes[touching].sum()) * voxel_ml
        volumes.append(LesionVolume(truth_ml, predicted_ml, predicted_ml / truth_ml))
    return sorted(volumes, key=lambda item: -item.truth_ml)
