"""Damaged copies of a lesion mask, to measure what the refinement tools repair.

Kinds of damage (``DAMAGE_KINDS``), each drawn from a seeded generator:

- ``erode`` / ``dilate``: the mask shrunk / grown by ``voxels`` voxels IN-PLANE, i.e. on each axial slice
  (numpy axis 0) with a disk of that radius: the way an annotator's outline errs on thick-slice scans
  (a 3D erosion by 2 voxels of 3-5 mm slices would remove whole 6-10 mm slabs);
- ``holes``: balls of radius ``voxels`` in-plane voxels (in mm, so about one slice thick on thick-slice
  scans) removed around random mask voxels until ``fraction`` of the mask is gone;
- ``islands``: balls of the same radius added around random brain voxels at least ``island_distance_mm``
  from the mask, until their volume reaches ``fraction`` of the mask's.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from skimage.morphology import disk

from lesionseg.errors import ParameterError
from lesionseg.refine._checks import array_spacing, mask_array, same_grid, to_mask_image
from lesionseg.refine.morphology import outside_distance_mm

DAMAGE_KINDS = ("erode", "dilate", "holes", "islands")


def _in_plane(mask: np.ndarray, voxels: int, grow: bool) -> np.ndarray:
    structure = disk(voxels).astype(bool)[None]  # (1, 2r+1, 2r+1): each axial slice on its own
    if grow:
        return ndimage.binary_dilation(mask, structure=structure)
    return ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _ball(shape: tuple[int, ...], centre: np.ndarray, radius_mm: float,
          spacing: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    """The box around ``centre`` and, inside it, the voxels within ``radius_mm`` (a ball in mm)."""
    reach = np.ceil(radius_mm / spacing).astype(int)
    box = tuple(slice(max(c - r, 0), min(c + r + 1, n)) for c, r, n in zip(centre, reach, shape))
    grids = np.ogrid[box]
    distance2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing))
    return box, distance2 <= radius_mm**2


def degrade_mask(mask: sitk.Image, kind: str, *, seed: int = 0, brain: sitk.Image | None = None, voxels: int = 2,
                 fraction: float = 0.3, island_distance_mm: float = 10.0) -> sitk.Image:
    """A damaged copy of ``mask`` (see the module docstring).

    Args:
        mask: 0/1 lesion mask.
        kind: one of :data:`DAMAGE_KINDS`.
        seed: seed of the random draws (holes and islands).
        brain: brain mask on the same grid (needed for ``islands``).
        voxels: erosion/dilation radius and blob radius, in in-plane voxels.
        fraction: holes remove, islands add, about this fraction of the mask's volume.
        island_distance_mm: islands are centred at least this far from the mask.

    Returns:
        uint8 0/1 mask on the same grid.

    Raises:
        ParameterError: an unknown kind, an empty mask, or ``islands`` without a brain mask.
    """
    if kind not in DAMAGE_KINDS:
        raise ParameterError(f"damage kind must be one of {', '.join(DAMAGE_KINDS)}, not {kind!r}.")
    if int(voxels) < 1 or not 0 < fraction < 1:
        raise ParameterError(f"voxels must be >= 1 and fraction in (0, 1), not {voxels!r} and {fraction!r}.")
    array = mask_array(mask)
    spacing = array_spacing(mask)
    if kind in ("erode", "dilate"):
        return to_mask_image(_in_plane(array, int(voxels), kind == "dilate"), mask)
    rng = np.random.default_rng(seed)
    radius_mm = float(voxels) * float(min(spacing[1:]))
    result = array.copy()
    target = fraction * np.count_nonzero(array)
    if kind == "holes":
        deep = array & ndimage.binary_erosion(array, structure=disk(1).astype(bool)[None])
        candidates = np.argwhere(deep if deep.any() else array)
        while np.count_nonzero(array & ~result) < target:
            box, ball = _ball(array.shape, candidates[rng.integers(len(candidates))], radius_mm, spacing)
            result[box] &= ~ball
        return to_mask_image(result, mask)
    if brain is None:
        raise ParameterError("islands need the brain mask (they are added inside the brain).")
    same_grid(mask, brain, "the brain mask", "the mask")
    brain_array = mask_array(brain, "the brain mask")
    far = brain_array & (outside_distance_mm(array, spacing) >= island_distance_mm)
    candidates = np.argwhere(far)
    if len(candidates) == 0:
        raise ParameterError(f"the brain has no voxel {island_distance_mm:g} mm away from the mask for islands.")
    while np.count_nonzero(result & ~array) < target:
        box, ball = _ball(array.shape, candidates[rng.integers(len(candidates))], radius_mm, spacing)
        result[box] |= ball & brain_array[box]
    return to_mask_image(result, mask)
