"""A coarse working grid (about 2 mm) for the steps whose answer does not need every native voxel.

Brain extraction and the mid-plane search look at the whole head, and on a 512 x 512 x 300 CT (0.45 x
0.45 x 0.5 mm, 78 million voxels) their filters cost a minute and a half at full resolution. On a grid of
about 2 mm they cost a few hundred times less; what they return is then mapped back: the mid-plane is a
plane in physical space and needs nothing, the brain mask is upsampled and refined at full resolution in a
band around its boundary (:mod:`lesionseg.preprocess.brain`).

The coarse grid is made by block averaging (SimpleITK's ``BinShrink``: each coarse voxel is the mean of an
``fx x fy x fz`` block of native voxels, which is the anti-aliased downsampling a linear resampler would
need a Gaussian for), with integer factors ``floor(target / spacing)`` per axis, so that every coarse voxel
covers whole native voxels and a coarse index ``c`` covers native indices ``c * f`` to ``c * f + f - 1``.
Axes already coarser than the target are kept. Where the grid would shrink by less than
``MIN_REDUCTION`` in voxel count (a 1 x 1 x 3 mm FLAIR becomes 2 x 2 x 3 mm: 4 times fewer voxels), the
native grid is used as it is.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

#: the target spacing of the working grid, mm
COARSE_SPACING_MM = 2.0
#: the smallest reduction in voxel count for which the coarse grid is used
MIN_REDUCTION = 4


def shrink_factors(spacing: tuple[float, ...], target_mm: float | None = COARSE_SPACING_MM,
                   min_reduction: int = MIN_REDUCTION,
                   size: tuple[int, ...] | None = None) -> tuple[int, int, int] | None:
    """Integer block sizes (x, y, z) that bring ``spacing`` (mm) close to ``target_mm`` without exceeding it.

    Args:
        spacing: the native spacing (x, y, z) in mm.
        target_mm: the working spacing; None: no coarse grid.
        min_reduction: the smallest reduction in voxel count worth a coarse grid.
        size: the native size (x, y, z); a block never exceeds it (a single slice stays one slice).

    Returns:
        The factors, or None when ``target_mm`` is None or the voxel count would drop by less than
        ``min_reduction`` (then the native grid is the working grid).
    """
    if target_mm is None:
        return None
    limits = size if size is not None else (10 ** 9,) * len(spacing)
    factors = tuple(max(1, min(int(n), int(math.floor(float(target_mm) / float(s) + 1e-6))))
                    for s, n in zip(spacing, limits))
    if int(np.prod(factors)) < min_reduction:
        return None
    return factors  # type: ignore[return-value]


def shrink(image: sitk.Image, factors: tuple[int, int, int]) -> sitk.Image:
    """The float32 block average of ``image`` over ``factors`` (x, y, z) native voxels (SimpleITK's BinShrink).

    The result has ``floor(size / factors)`` voxels, spacing ``spacing * factors``, the same direction, and
    its origin at the centre of the first block; native voxels past the last whole block are left out.
    """
    source = image if image.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(image, sitk.sitkFloat32)
    return sitk.BinShrink(source, [int(f) for f in factors])


def upsample(coarse: sitk.Image, reference: sitk.Image, *, linear: bool = False,
             pixel_type: int | None = None) -> sitk.Image:
    """``coarse`` resampled onto ``reference``'s grid (SimpleITK's resampler; nearest neighbour or linear).

    Args:
        coarse: an image on a coarse grid (e.g. from :func:`shrink`).
        reference: the grid to map onto (size, spacing, origin, direction; its voxels are not read).
        linear: linear interpolation (a smooth field) instead of nearest neighbour (a label).
        pixel_type: output pixel type (default: the coarse image's).
    """
    interpolator = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
    output = coarse.GetPixelID() if pixel_type is None else pixel_type
    return sitk.Resample(coarse, reference, sitk.Transform(), interpolator, 0.0, output)


def block_bounds(coarse_mask: np.ndarray, factors: tuple[int, int, int], native_size_zyx: tuple[int, int, int],
                 margin: int = 0) -> tuple[slice, slice, slice] | None:
    """The native index box ``(z, y, x)`` slices covering every non-zero voxel of a coarse ``(z, y, x)`` mask,
    widened by ``margin`` native voxels and clipped to the native grid; None for an empty mask."""
    indices = np.argwhere(coarse_mask)
    if indices.size == 0:
        return None
    factors_zyx = np.array(factors[::-1])
    low = indices.min(axis=0) * factors_zyx - margin
    high = (indices.max(axis=0) + 1) * factors_zyx + margin
    size = np.array(native_size_zyx)
    low, high = np.maximum(low, 0), np.minimum(high, size)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))  # type: ignore[return-value]
