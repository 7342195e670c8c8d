"""Input checks shared by the metric functions: binary masks of one shape, spacing in array axis order.

Every metric takes numpy masks (2D ``(y, x)`` or 3D ``(z, y, x)``, bool or 0/1) and a ``spacing`` in
millimetres per voxel **in the same axis order as the array** (so ``(z, y, x)`` for a volume taken from
SimpleITK with ``GetArrayFromImage``). There is no default spacing: a silent voxel size of 1 would give
distances in voxels labelled as millimetres. :func:`spacing_from_image` converts SimpleITK's ``(x, y, z)``
spacing into array order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lesionseg.errors import GeometryError, ParameterError

SpacingLike = Sequence[float] | np.ndarray


def as_binary(mask: Any, name: str) -> np.ndarray:
    """Return ``mask`` as a bool array, refusing anything that is not a 0/1 (or bool) mask.

    Args:
        mask: array-like of bool or numbers that are all 0 or 1, 2D ``(y, x)`` or 3D ``(z, y, x)``.
        name: the argument's name, used in the error message.

    Returns:
        A bool numpy array of the same shape (a view when ``mask`` is already bool).

    Raises:
        ParameterError: the array is not 2D or 3D, or holds values other than 0 and 1 (e.g. probabilities).
    """
    array = np.asarray(mask)
    if array.ndim not in (2, 3):
        raise ParameterError(
            f"{name} must be a 2D (y, x) or 3D (z, y, x) mask; got an array of shape {array.shape}."
        )
    if array.dtype == bool:
        return array
    if not np.issubdtype(array.dtype, np.number):
        raise ParameterError(f"{name} must be a numeric or bool mask; got dtype {array.dtype}.")
    bad = (array != 0) & (array != 1)
    if bad.any():
        example = array[bad].flat[0]
        raise ParameterError(
            f"{name} must be a binary mask with values 0 and 1; found the value {example!r} "
            "(threshold probabilities or select one label first)."
        )
    return array == 1


def as_binary_pair(prediction: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert a (prediction, truth) pair of masks that must share one grid.

    Args:
        prediction: predicted mask, bool or 0/1, 2D ``(y, x)`` or 3D ``(z, y, x)``.
        truth: reference mask of the same shape.

    Returns:
        ``(prediction, truth)`` as bool arrays.

    Raises:
        ParameterError: a mask is not binary or not 2D/3D.
        GeometryError: the two shapes differ.
    """
    pred = as_binary(prediction, "prediction")
    ref = as_binary(truth, "truth")
    if pred.shape != ref.shape:
        raise GeometryError(
            f"prediction and truth must have the same shape; got {pred.shape} and {ref.shape}."
        )
    return pred, ref


def check_spacing(spacing: SpacingLike | None, ndim: int) -> tuple[float, ...]:
    """Validate a voxel spacing given in array axis order.

    Args:
        spacing: millimetres per voxel along each array axis, ``(z, y, x)`` for 3D or ``(y, x)`` for 2D.
        ndim: the number of array dimensions the spacing must match.

    Returns:
        The spacing as a tuple of floats.

    Raises:
        ParameterError: spacing is missing, has the wrong length, or holds a value that is not a finite
            positive number.
    """
    if spacing is None:
        raise ParameterError(
            "spacing is required (mm per voxel in array axis order, (z, y, x) for volumes); "
            "read it from the image with lesionseg.metrics.spacing_from_image(image)."
        )
    try:
        values = tuple(float(s) for s in np.asarray(spacing, dtype=float).ravel())
        shape_ok = np.asarray(spacing).ndim == 1
    except (TypeError, ValueError) as error:
        raise ParameterError(f"spacing must be a sequence of numbers; got {spacing!r}.") from error
    if not shape_ok or len(values) != ndim:
        raise ParameterError(
            f"spacing must have one value per array axis ({ndim} for a {ndim}D mask, in array order); "
            f"got {spacing!r}."
        )
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ParameterError(f"spacing values must be finite and positive (mm); got {spacing!r}.")
    return values


def spacing_from_image(image: Any) -> tuple[float, ...]:
    """Return a SimpleITK image's spacing in numpy array axis order.

    SimpleITK reports spacing as ``(x, y, z)``; ``SimpleITK.GetArrayFromImage`` returns ``(z, y, x)``
    arrays, so the spacing is reversed to match the array.

    Args:
        image: a ``SimpleITK.Image``.

    Returns:
        The spacing in mm, ``(z, y, x)`` for a 3D image, ``(y, x)`` for a 2D image.
    """
    return tuple(float(s) for s in reversed(image.GetSpacing()))


def image_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length of the image diagonal in mm, ``sqrt(sum((shape * spacing)^2))``.

    This is the documented worst-case distance used when one of the two masks is empty.

    Args:
        shape: array shape.
        spacing: mm per voxel in the same axis order.

    Returns:
        The diagonal length in mm.
    """
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))
