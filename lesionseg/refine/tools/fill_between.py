"""Fill between slices: complete a lesion drawn on a few slices by interpolating the slices between them.

Slicer's "Fill between slices" effect (``vtkITKMorphologicalContourInterpolator``, the morphological
contour interpolation of Albu et al. 2008) when slicer-core is installed; otherwise shape-based
interpolation (Raya and Udupa 1990): between two drawn slices, the signed distance maps of the two
outlines are blended linearly and the lesion is where the blend is negative. Neither extrapolates: slices
before the first and after the last drawn slice stay empty, and drawn slices are kept exactly as drawn
(only empty slices between drawn ones are filled).

The slice axis is, by default (``axis="auto"``), the one along which the drawing has gaps (empty slices
between drawn ones); when several have, the axis with the thickest slices.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.errors import ParameterError
from lesionseg.refine import slicer_algorithms
from lesionseg.refine._checks import array_spacing, mask_array, to_mask_image

AXES = {"auto": None, "z": 0, "y": 1, "x": 2}


def drawn_slices(mask: np.ndarray, axis: int) -> np.ndarray:
    """Indices of the slices across numpy ``axis`` that hold part of the mask."""
    others = tuple(a for a in range(3) if a != axis)
    return np.flatnonzero(mask.any(axis=others))


def choose_axis(mask: np.ndarray, spacing: np.ndarray) -> int:
    """The numpy axis along which the drawing has gaps (ties: the thickest slices)."""
    gapped = []
    for axis in range(3):
        drawn = drawn_slices(mask, axis)
        if len(drawn) >= 2 and np.any(np.diff(drawn) > 1):
            gapped.append(axis)
    candidates = gapped or [0, 1, 2]
    return max(candidates, key=lambda a: (spacing[a], -a))


def _signed_distance(plane: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    inside = ndimage.distance_transform_edt(plane, sampling=spacing)
    outside = ndimage.distance_transform_edt(~plane, sampling=spacing)
    return outside - inside


def _shape_based(mask: np.ndarray, axis: int, spacing: np.ndarray) -> np.ndarray:
    moved = np.moveaxis(mask, axis, 0).copy()
    in_plane = np.delete(spacing, axis)
    drawn = drawn_slices(moved, 0)
    for first, last in zip(drawn[:-1], drawn[1:]):
        if last - first < 2:
            continue
        below = _signed_distance(moved[first], in_plane)
        above = _signed_distance(moved[last], in_plane)
        for index in range(first + 1, last):
            weight = (index - first) / (last - first)
            moved[index] = (1.0 - weight) * below + weight * above < 0
    return np.moveaxis(moved, 0, axis)


def fill_between_slices(mask: sitk.Image, *, axis: str = "auto", backend: str = "auto",
                        details: dict | None = None) -> sitk.Image:
    """Fill the empty slices between drawn slices of a lesion mask (see the module docstring).

    Args:
        mask: 0/1 mask drawn on some slices.
        axis: ``"auto"``, or the image axis across which slices were drawn: ``"z"`` (axial on an axial
            scan), ``"y"`` or ``"x"`` (image axes, i.e. the mask's index k, j, i).
        backend: ``"auto"``, ``"slicer"`` or ``"sitk"``.
        details: when a dict is given, it receives the axis, the drawn slices and the backend.

    Returns:
        uint8 0/1 mask on the same grid.

    Raises:
        ParameterError: an empty mask, a mask drawn on only one slice, or a bad option.
    """
    if axis not in AXES:
        raise ParameterError(f"axis must be one of {', '.join(AXES)}, not {axis!r}.")
    used = slicer_algorithms.resolve_backend(backend)
    array = mask_array(mask)
    spacing = array_spacing(mask)
    chosen = choose_axis(array, spacing) if axis == "auto" else AXES[axis]
    drawn = drawn_slices(array, chosen)
    name = "zyx"[chosen]
    if len(drawn) < 2:
        raise ParameterError(f"the mask is drawn on only one slice across axis {name} (slice {int(drawn[0])}); "
                             "draw the lesion on at least two slices to fill between them.")
    if used == "slicer":
        interpolated = slicer_algorithms.interpolate_contours(array, chosen)
    else:
        interpolated = _shape_based(array, chosen, spacing)
    # only the empty slices between drawn ones change (the interpolator may also touch a drawn slice where a
    # region has no partner on its neighbours)
    empty = np.ones(array.shape[chosen], dtype=bool)
    empty[drawn] = False
    empty[: drawn[0]] = empty[drawn[-1] + 1:] = False
    shape = [1, 1, 1]
    shape[chosen] = -1
    result = array | (interpolated & empty.reshape(shape))
    info = details if details is not None else {}
    info.update({"tool": "fill-between", "backend": used, "axis": name, "drawn_slices": [int(i) for i in drawn],
                 "added_voxels": int(np.count_nonzero(result & ~array))})
    return to_mask_image(result, mask)
