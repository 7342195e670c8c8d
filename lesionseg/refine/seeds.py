"""Seeds for grow-from-seeds given as points or as a label image (what the command line accepts).

Points are in RAS millimetres, the coordinates Slicer shows (ITK works in LPS: x and y change sign). A
point becomes a ball of ``radius_mm`` on the image's grid.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import ParameterError
from lesionseg.refine._checks import check_mm, same_grid

LESION_LABEL, BACKGROUND_LABEL = 1, 2


def parse_point(text: str, option: str) -> tuple[float, float, float]:
    """``"12.5,-30,4"`` -> (12.5, -30.0, 4.0); ParameterError naming the option otherwise."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ParameterError(f"{option} must be three numbers R,A,S in mm (as Slicer shows them), not {text!r}.")
    return values


def points_to_mask(points_ras: list[tuple[float, float, float]], reference: sitk.Image, radius_mm: float,
                   what: str) -> sitk.Image | None:
    """A 0/1 mask on ``reference``'s grid with a ball of ``radius_mm`` around each RAS point (None: no points).

    Raises:
        ParameterError: a point outside the image.
    """
    if not points_ras:
        return None
    radius_mm = check_mm(radius_mm, "the seed radius")
    array = np.zeros(reference.GetSize()[::-1], dtype=np.uint8)
    spacing = np.asarray(reference.GetSpacing()[::-1])
    size = np.asarray(reference.GetSize())
    for point in points_ras:
        lps = (-point[0], -point[1], point[2])
        index = np.asarray(reference.TransformPhysicalPointToContinuousIndex(lps))  # (x, y, z)
        if np.any(index < -0.5) or np.any(index > size - 0.5):
            corners = [reference.TransformIndexToPhysicalPoint([int(c) for c in corner])
                       for corner in ((0, 0, 0), tuple(int(n) - 1 for n in size))]
            extent = " to ".join("(" + ", ".join(f"{v:.1f}" for v in (-c[0], -c[1], c[2])) + ")" for c in corners)
            raise ParameterError(f"{what} point ({', '.join(f'{v:g}' for v in point)}) mm RAS lies outside the image, "
                                 f"which spans {extent} mm RAS.")
        centre = np.round(index[::-1]).astype(int)  # (z, y, x)
        reach = np.ceil(radius_mm / spacing).astype(int)
        box = tuple(slice(max(c - r, 0), min(c + r + 1, n)) for c, r, n in zip(centre, reach, array.shape))
        grids = np.ogrid[box]
        distance2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing))
        array[box][distance2 <= max(radius_mm, 0.0) ** 2] = 1
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(reference)
    return mask


def split_seed_labels(seeds: sitk.Image, reference: sitk.Image,
                      name: str) -> tuple[sitk.Image | None, sitk.Image | None]:
    """A seed label image (1 = lesion, 2 = background) -> (lesion mask, background mask), None when absent.

    Raises:
        GeometryError: the seeds are not on the image's grid.
        ParameterError: labels other than 0, 1 and 2, or no seed at all.
    """
    same_grid(reference, seeds, name)
    array = sitk.GetArrayFromImage(seeds)
    unknown = sorted(set(np.unique(array).tolist()) - {0, LESION_LABEL, BACKGROUND_LABEL})
    if unknown:
        raise ParameterError(f"{name} holds labels {unknown}; seeds are 1 (lesion) and 2 (background).")
    if not np.any(array):
        raise ParameterError(f"{name} holds no seed (all voxels are 0).")
    masks = []
    for label in (LESION_LABEL, BACKGROUND_LABEL):
        part = (array == label).astype(np.uint8)
        if part.any():
            image = sitk.GetImageFromArray(part)
            image.CopyInformation(reference)
            masks.append(image)
        else:
            masks.append(None)
    return masks[0], masks[1]
