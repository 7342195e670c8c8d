"""Overlap and volume metrics: Dice, lesion volume in mL, absolute volume difference.

Masks are numpy arrays, bool or 0/1, 2D ``(y, x)`` or 3D ``(z, y, x)``; ``spacing`` is in mm per voxel in
the same axis order as the array. Conventions follow the ISLES'22 evaluation (see METRICS-NOTES.md):
Dice of two empty masks is 1.0, and the absolute volume difference uses the voxel volume from the spacing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lesionseg.errors import ParameterError
from lesionseg.metrics._checks import SpacingLike, as_binary, as_binary_pair, check_spacing


def dice(prediction: Any, truth: Any) -> float:
    """Dice coefficient ``2 |P ∩ T| / (|P| + |T|)``.

    Args:
        prediction: predicted mask, bool or 0/1, any of ``(y, x)`` / ``(z, y, x)``.
        truth: reference mask of the same shape.

    Returns:
        Dice in [0, 1]; 1.0 when both masks are empty, 0.0 when exactly one is empty.

    Raises:
        ParameterError: a mask is not binary.
        GeometryError: the shapes differ.
    """
    pred, ref = as_binary_pair(prediction, truth)
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(ref))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(pred & ref)) / total


def voxel_volume_ml(spacing: SpacingLike) -> float:
    """Volume of one voxel in mL (1 mL = 1000 mm³).

    Args:
        spacing: 3 values, mm per voxel in array axis order ``(z, y, x)``.

    Returns:
        The voxel volume in mL.

    Raises:
        ParameterError: spacing is not three finite positive numbers.
    """
    sz, sy, sx = check_spacing(spacing, 3)
    return sz * sy * sx / 1000.0


def lesion_volume_ml(mask: Any, spacing: SpacingLike) -> float:
    """Volume of a 3D mask in mL.

    Args:
        mask: 3D ``(z, y, x)`` mask, bool or 0/1.
        spacing: mm per voxel ``(z, y, x)``.

    Returns:
        The number of foreground voxels times the voxel volume, in mL.

    Raises:
        ParameterError: the mask is not 3D and binary, or the spacing is invalid.
    """
    array = as_binary(mask, "mask")
    if array.ndim != 3:
        raise ParameterError(f"mask must be 3D (z, y, x) to have a volume in mL; got shape {array.shape}.")
    return int(np.count_nonzero(array)) * voxel_volume_ml(spacing)


def absolute_volume_difference_ml(prediction: Any, truth: Any, spacing: SpacingLike) -> float:
    """Absolute volume difference ``|V(truth) - V(prediction)|`` in mL (ISLES'22).

    Args:
        prediction: 3D ``(z, y, x)`` predicted mask.
        truth: 3D reference mask of the same shape.
        spacing: mm per voxel ``(z, y, x)``.

    Returns:
        The absolute difference of the two volumes in mL.

    Raises:
        ParameterError: masks not 3D and binary, or invalid spacing.
        GeometryError: the shapes differ.
    """
    pred, ref = as_binary_pair(prediction, truth)
    if pred.ndim != 3:
        raise ParameterError(f"masks must be 3D (z, y, x) for a volume in mL; got shape {pred.shape}.")
    difference = abs(int(np.count_nonzero(ref)) - int(np.count_nonzero(pred)))
    return difference * voxel_volume_ml(spacing)
