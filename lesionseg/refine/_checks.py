"""Input checks shared by the refinement tools: one grid, binary non-empty masks, sizes in millimetres.

Arrays taken from SimpleITK are indexed ``(z, y, x)``; :func:`array_spacing` gives the spacing in that
order. Every tool refuses an image and a mask on different grids (:class:`GeometryError`), a mask that is
empty (:class:`ParameterError`, there is nothing to refine) and sizes that are not finite and >= 0.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import GeometryError, ParameterError
from lesionseg.io.geometry import geometry_difference

#: Lesions are bright on these channels and dark on the others we know (FLAIR hyperintense, CT hypodense).
BRIGHT_CHANNELS = frozenset({"flair", "dwi", "t2w"})
DARK_CHANNELS = frozenset({"ct", "adc", "t1w"})
POLARITIES = ("auto", "bright", "dark")


def expected_polarity(channel: str | None) -> str:
    """``"bright"`` / ``"dark"`` for channels whose lesions have a known sign of contrast, else ``"auto"``."""
    name = (channel or "").lower()
    if name in BRIGHT_CHANNELS:
        return "bright"
    if name in DARK_CHANNELS:
        return "dark"
    return "auto"


def array_spacing(image: sitk.Image) -> np.ndarray:
    """The spacing of ``image`` in mm in numpy axis order ``(z, y, x)``."""
    return np.asarray(image.GetSpacing()[::-1], dtype=float)


def same_grid(reference: sitk.Image, other: sitk.Image, what: str, reference_name: str = "the image") -> None:
    """Raise :class:`GeometryError` unless ``other`` lies on ``reference``'s grid.

    Args:
        reference: the image defining the grid.
        other: the mask (or seed image, brain mask) to check.
        what: how ``other`` is named in the message, e.g. ``"the mask"``.
        reference_name: how ``reference`` is named.
    """
    if reference.GetDimension() != 3 or other.GetDimension() != 3:
        raise GeometryError(f"{what} and {reference_name} must both be 3D volumes.")
    difference = geometry_difference(reference, other)
    if difference is not None:
        raise GeometryError(f"{what} is not on the grid of {reference_name} ({difference}); "
                            "resample it onto that grid (or carry it over with the transfer tool) first.")


def mask_array(mask: sitk.Image, what: str = "the mask", *, allow_empty: bool = False) -> np.ndarray:
    """A binary mask as a bool array ``(z, y, x)``.

    Raises:
        ParameterError: NaN values, or an empty mask when ``allow_empty`` is False.
    """
    array = sitk.GetArrayFromImage(mask)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ParameterError(f"{what} holds NaN or infinite values; a mask holds 0 and 1.")
    binary = np.asarray(array) != 0
    if not allow_empty and not binary.any():
        raise ParameterError(f"{what} is empty; there is nothing to refine (draw seeds or a rough mask first).")
    return binary


def image_array(image: sitk.Image, what: str = "the image") -> np.ndarray:
    """A scalar image as a float32 array ``(z, y, x)``; refuses NaN/infinite voxels and vector images."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ParameterError(f"{what} has {image.GetNumberOfComponentsPerPixel()} values per voxel; "
                             "a scalar volume is needed.")
    array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"{what} holds NaN or infinite voxels; replace them before refining.")
    return array


def to_mask_image(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A uint8 0/1 SimpleITK mask from a ``(z, y, x)`` array, on ``reference``'s grid."""
    image = sitk.GetImageFromArray(np.asarray(array, dtype=bool).astype(np.uint8))
    image.CopyInformation(reference)
    return image


def check_mm(value: float, name: str, *, allow_zero: bool = True) -> float:
    """A size in mm (or mm³) that must be finite and >= 0 (> 0 when ``allow_zero`` is False)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name} must be a number, not {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} must be a finite number {bound}, not {value!r}.")
    return value


def check_choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    """``value`` when it is one of ``choices``; ParameterError listing them otherwise."""
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


def pad_box(box: tuple[slice, ...], padding_mm: float, spacing: np.ndarray,
            shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A box (tuple of slices) grown by ``padding_mm`` on every side, clipped to ``shape``."""
    grown = []
    for axis, (part, size) in enumerate(zip(box, shape)):
        pad = int(math.ceil(padding_mm / spacing[axis])) + 1
        grown.append(slice(max(part.start - pad, 0), min(part.stop + pad, size)))
    return tuple(grown)


def bounding_box(mask: np.ndarray, padding_mm: float, spacing: np.ndarray) -> tuple[slice, ...]:
    """The bounding box of a non-empty ``mask`` grown by ``padding_mm`` on every side (clipped to the array).

    Tools work inside this box: the work is proportional to the lesion's neighbourhood, not the scan.
    """
    where = np.nonzero(mask)
    box = tuple(slice(int(w.min()), int(w.max()) + 1) for w in where)
    return pad_box(box, padding_mm, spacing, mask.shape)
