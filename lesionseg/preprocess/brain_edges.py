"""The classical brain extraction on a coarse grid, refined at full resolution at the mask's edge.

A head CT of 512 x 512 x 300 voxels (0.45 x 0.45 x 0.5 mm) holds 78 million voxels; the classical pipelines
of :mod:`lesionseg.preprocess.brain` (a median filter, erosions, closings and distance maps in millimetres)
take over a minute on it, although the mask's inside and outside are decided long before the last
millimetre. Here:

1. The image is block-averaged onto a grid of about 2 mm (:mod:`lesionseg.preprocess.coarse`) and the same
   pipeline runs there; besides the coarse mask it returns the rule that decided its edge
   (:class:`~lesionseg.preprocess.brain.EdgeRule`): CT's 0-100 HU window of the median and its
   partial-volume midpoint, MRI's CSF-rim threshold relative to the local parenchyma level.
2. The coarse mask, eroded by one coarse voxel (the sure inside) and dilated by two (the band's outer
   limit: block averaging mixes bone into the outermost CSF, so the coarse CT mask stops up to a coarse voxel
   short), is mapped onto the native grid (each native voxel takes its block's value, which is what
   nearest-neighbour resampling gives between these grids); everything below happens in the native voxels
   of the band's bounding box.
3. In the band the native voxels are tested with the same rule at full resolution, and the mask is the sure
   inside grown through the band's voxels that pass (connected, as the full pipeline's reconstruction).
   CT: the median of the 1-mm box lies in 0-100 HU (computed exactly and cheaply by counting: the median
   of n values is at most t when at least (n + 1) / 2 of them are), then the partial-volume edge: the mask
   grows by at most the largest voxel size into voxels from 0 HU up to the midpoint between the CSF at its
   edge and the skull around it (both read from the band's native voxels). MRI: the smoothed (1 mm) value
   divided by the local parenchyma level (computed coarse, interpolated linearly: it varies over 15 mm)
   above the CSF/bone threshold, no further out than the skull found on the coarse grid; then the
   pipeline's clean-up (closing, hole filling, opening, the largest component) at full resolution.

The CT's closing (2 mm) is not repeated at full resolution: against the skull's smooth inner surface it
changes nothing at the edge. Accuracy against the full-resolution pipeline on the synthetic heads (Dice of
the masks, the mid-plane) is in ``benchmarks/bench_preprocess_speed.py``.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.preprocess.brain_classical import (
    CT_RANGE_HU,
    SMOOTHING_MM,
    EdgeRule,
    classical_ct,
    classical_mri,
    clean_up,
    ct_median_radius,
)
from lesionseg.preprocess.coarse import block_bounds, shrink, upsample

#: the band around the coarse mask's edge, in coarse voxels: inwards, outwards
BAND_INSIDE = 1
BAND_OUTSIDE = 2


def coarse_then_refined(image: sitk.Image, modality: str, factors: tuple[int, int, int]) -> sitk.Image:
    """The classical mask of ``image``, computed on a coarse grid and refined at its edge (module docstring).

    Args:
        image: the channel on its native grid (MRI in any units, CT in Hounsfield units).
        modality: ``"mri"`` or ``"ct"``.
        factors: block sizes (x, y, z) of the coarse grid (:func:`lesionseg.preprocess.coarse.shrink_factors`).

    Returns:
        A uint8 0/1 mask on ``image``'s grid (empty when the coarse pipeline found nothing).
    """
    coarse = shrink(image, factors)
    mask, rule = classical_ct(coarse) if modality == "ct" else classical_mri(coarse)
    native = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        return _on_grid(native, image)
    ball = sitk.sitkBall
    inside_c = sitk.GetArrayFromImage(sitk.BinaryErode(mask, [BAND_INSIDE] * 3, ball, 0, 1)).astype(bool)
    outside_c = sitk.GetArrayFromImage(sitk.BinaryDilate(mask, [BAND_OUTSIDE] * 3, ball, 0, 1)).astype(bool)
    margin = _filter_margin(image, modality)
    box = block_bounds(outside_c, factors, native.shape, margin=max(margin) + 1)
    inside = blocks_on_native(inside_c, factors, box)
    band = blocks_on_native(outside_c, factors, box) & ~inside
    if modality == "ct":
        refined = _refine_ct(sitk.GetArrayViewFromImage(image)[box], image.GetSpacing(), inside, band)
    else:
        crop = image[box[2], box[1], box[0]]  # SimpleITK slices (x, y, z); keeps the geometry
        if rule.limit is not None:  # the rim stops at the skull, as on the coarse grid
            band &= blocks_on_native(rule.limit, factors, box)
        refined = _refine_mri(crop, inside, band, rule)
    native[box] = refined
    return _on_grid(native, image)


def blocks_on_native(coarse: np.ndarray, factors: tuple[int, int, int],
                     box: tuple[slice, slice, slice]) -> np.ndarray:
    """A coarse ``(z, y, x)`` array on the native voxels of ``box``: native voxel ``n`` takes coarse voxel
    ``n // f`` (the block it was averaged into; what nearest-neighbour resampling gives on these grids),
    the last one past the last whole block."""
    index = [np.minimum(np.arange(b.start, b.stop) // f, n - 1)
             for b, f, n in zip(box, factors[::-1], coarse.shape)]
    return coarse[np.ix_(*index)]


def _on_grid(array: np.ndarray, image: sitk.Image) -> sitk.Image:
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(image)
    return mask


def _filter_margin(image: sitk.Image, modality: str) -> list[int]:
    """Native voxels (x, y, z) a filter reaches beyond the band: the CT median's radius, 3 sigma of MRI's."""
    if modality == "ct":
        spacing = image.GetSpacing()
        return [max(r, int(np.ceil(max(spacing) / s))) for r, s in zip(ct_median_radius(spacing), spacing)]
    return [int(np.ceil(3.0 * SMOOTHING_MM / s)) for s in image.GetSpacing()]


def _reconstruct(seed: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The voxels of ``candidate`` or ``seed`` connected (faces) to ``seed`` (SimpleITK's reconstruction by
    dilation); boolean ``(z, y, x)`` arrays."""
    grown = sitk.BinaryReconstructionByDilation(sitk.GetImageFromArray(seed.view(np.uint8)),
                                                sitk.GetImageFromArray((candidate | seed).view(np.uint8)))
    return sitk.GetArrayFromImage(grown).view(bool)


def median_in_window(values: np.ndarray, radius_xyz: list[int], low: float, high: float,
                     where: np.ndarray | None = None) -> np.ndarray:
    """Whether the median of each voxel's box of ``2 r + 1`` voxels per axis lies in ``[low, high]``.

    The same answer as ``low <= sitk.Median(values, radius) <= high`` (a box neighbourhood, the border
    replicated), without sorting: the median of n (odd) values is at most ``high`` when at least
    ``(n + 1) / 2`` of them are, and at least ``low`` when fewer than ``(n + 1) / 2`` lie below ``low``. Both
    counts come from one box filter (the count below ``low`` weighted by 1024, above the largest count).

    Args:
        values: ``(z, y, x)`` array.
        radius_xyz: the box's radius per axis (x, y, z), in voxels.
        low, high: the window.
        where: a boolean ``(z, y, x)`` array: only these voxels are decided (the others are False).
    """
    size = [2 * int(r) + 1 for r in radius_xyz[::-1]]
    count = int(np.prod(size))
    if count >= 1024:
        raise ValueError(f"the median box holds {count} voxels; at most 1023 are supported")
    needed = (count + 1) // 2
    coded = (values <= high).astype(np.float32)
    coded[values < low] += 1024.0
    means = ndimage.uniform_filter(coded, size, mode="nearest")
    chosen = means if where is None else means[where]
    sums = np.rint(chosen.astype(np.float64) * count).astype(np.int64)
    below_low, not_above_high = np.divmod(sums, 1024)
    decided = (not_above_high >= needed) & (below_low < needed)
    if where is None:
        return decided
    result = np.zeros(values.shape, bool)
    result[where] = decided
    return result


def _refine_ct(values: np.ndarray, spacing_xyz: tuple[float, ...], inside: np.ndarray,
               band: np.ndarray) -> np.ndarray:
    """The CT edge in the band, at full resolution: ``values`` (HU) and the masks are ``(z, y, x)`` crops."""
    low, high = CT_RANGE_HU
    radius = ct_median_radius(spacing_xyz)
    mask = _reconstruct(inside, median_in_window(values, radius, low, high, where=band))
    edge = mask & band
    bone = band & ~mask & (values > high)
    if not edge.any() or np.count_nonzero(bone) < 100:
        return mask.view(np.uint8)
    # as the full pipeline: the midpoint between the CSF inside the edge and the skull's level around it
    midpoint = 0.5 * (float(np.median(values[edge])) + float(np.percentile(values[bone], 90)))
    near = within_reach(mask, spacing_xyz, max(spacing_xyz)) & band
    candidate = near & (values < midpoint) & (values >= low)
    return _reconstruct(mask, candidate).view(np.uint8)


def within_reach(mask: np.ndarray, spacing_xyz: tuple[float, ...], reach_mm: float) -> np.ndarray:
    """Voxels whose centre lies within ``reach_mm`` of a centre of ``mask`` (``(z, y, x)``), the mask included
    (the full pipeline's ``distance <= reach`` on a distance map), by shifting the mask once per offset."""
    spacing = np.array(spacing_xyz[::-1], dtype=float)
    steps = [int(np.floor(reach_mm / s + 1e-9)) for s in spacing]
    near = mask.copy()
    for offset in np.ndindex(*[2 * k + 1 for k in steps]):
        shift = np.array(offset) - steps
        if not shift.any() or float(np.sum((shift * spacing) ** 2)) > reach_mm ** 2 + 1e-9:
            continue
        target = tuple(slice(max(d, 0), n + min(d, 0)) for d, n in zip(shift, mask.shape))
        source = tuple(slice(max(-d, 0), n + min(-d, 0)) for d, n in zip(shift, mask.shape))
        near[target] |= mask[source]
    return near


def _refine_mri(crop: sitk.Image, inside: np.ndarray, band: np.ndarray, rule: EdgeRule) -> np.ndarray:
    smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(crop, sitk.sitkFloat32), SMOOTHING_MM)
    values = sitk.GetArrayViewFromImage(smooth)
    if rule.level is not None:
        level = sitk.GetArrayViewFromImage(upsample(rule.level, crop, linear=True, pixel_type=sitk.sitkFloat32))
        passes = values > rule.threshold * np.maximum(level, 1e-12)
    else:
        passes = values > rule.threshold
    mask = _reconstruct(inside, band & passes)
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.CopyInformation(crop)
    return sitk.GetArrayFromImage(clean_up(image))
