"""Smoothing a native volume before it is sampled onto a coarser prepared grid (anti-aliasing).

The prepared grid's pixels are often coarser than the scan's: 128 pixels over a brain's 180 mm are 1.4 mm,
and a CT's in-plane voxels are 0.4-0.5 mm (a clinical FLAIR's often 0.45-0.9 mm). Linear interpolation then
reads each prepared pixel from the 2 x 2 native voxels nearest its centre and skips the rest: the noise of
the native voxels passes nearly unaveraged, and detail finer than the grid aliases. On a CT, whose
infarcts are 2-8 HU below their tissue under 3-6 HU of noise, that average is what makes them visible.

So, before the linear resampling, each native axis is smoothed by a Gaussian of standard deviation
``(target - source) / 2`` mm, where ``source`` is the axis's spacing and ``target`` the prepared grid's
spacing along that axis's direction; an axis at least as fine as the grid is left alone. It is the rule
scikit-image's ``resize(anti_aliasing=True)`` uses (sigma = (factor - 1) / 2 source voxels). SimpleITK's
resampler has no anti-aliasing of its own, hence this step. The smoothing runs on the box of the native
volume that the grid reads (plus the kernel's reach), not on the whole field of view.
"""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

#: how far (standard deviations) the box read for smoothing reaches beyond the grid: DiscreteGaussian's
#: kernel, truncated where its tail is under 1 %, reaches less far, so the grid never sees the box's edge
KERNEL_REACH_SIGMAS = 3.0
#: an axis whose sigma is under this fraction of its spacing is not smoothed (the kernel would be ~[0, 1, 0])
MIN_SIGMA_VOXELS = 0.2


def target_spacing_mm(image: sitk.Image, grid_geometry) -> np.ndarray:
    """The prepared grid's spacing (mm) that each of the image's axes (x, y, z) is sampled at: the spacing of the
    grid axis nearest to it in direction. A scan stored obliquely keeps its in-plane axes on the grid's
    in-plane pixels (a 15 degree tilt does not make them count as partly 5 mm slices), and its slice axis on the
    grid's slices, which are the scan's own."""
    image_axes = np.asarray(image.GetDirection(), float).reshape(3, 3)  # columns: image axes in LPS
    grid_axes = np.asarray(grid_geometry.direction, float).reshape(3, 3)
    alignment = np.abs(image_axes.T @ grid_axes)  # (image axis, grid axis): |cos| of the angle between them
    return np.asarray(grid_geometry.spacing, float)[np.argmax(alignment, axis=1)]


def antialias_sigmas_mm(image: sitk.Image, grid_geometry) -> list[float]:
    """The Gaussian's standard deviation (mm) along each image axis (x, y, z); 0 where the axis is not coarser
    than the grid, or only so slightly that the kernel would change nothing."""
    source = np.asarray(image.GetSpacing(), float)
    sigmas = np.maximum(target_spacing_mm(image, grid_geometry) - source, 0.0) / 2.0
    sigmas[sigmas < MIN_SIGMA_VOXELS * source] = 0.0
    return [float(s) for s in sigmas]


def _read_box(image: sitk.Image, grid_geometry, transform: sitk.Transform | None,
              margin_voxels: np.ndarray) -> tuple[list[int], list[int]] | None:
    """The index box (x, y, z) of ``image`` holding the grid's corners (through ``transform``) plus margins;
    None when it is the whole image."""
    size = np.asarray(grid_geometry.size, float)
    reference = grid_geometry.reference_image(sitk.sitkUInt8)
    corners = []
    for corner in itertools.product(*[(-0.5, s - 0.5) for s in size]):
        point = reference.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
        if transform is not None:
            point = transform.TransformPoint(point)
        corners.append(image.TransformPhysicalPointToContinuousIndex(point))
    corners = np.asarray(corners)
    extent = np.asarray(image.GetSize())
    low = np.clip(np.floor(corners.min(axis=0) - margin_voxels), 0, extent - 1).astype(int)
    high = np.clip(np.ceil(corners.max(axis=0) + margin_voxels), 0, extent - 1).astype(int)
    if np.all(low == 0) and np.all(high == extent - 1):
        return None
    return [int(v) for v in low], [int(v) for v in high - low + 1]


def smooth_for_grid(image: sitk.Image, grid_geometry, transform: sitk.Transform | None = None, *,
                    sigmas_mm: list[float] | None = None) -> sitk.Image:
    """``image`` smoothed for sampling onto ``grid_geometry`` (see the module docstring): the part of it the
    grid reads, same spacing, origin and direction as the image there; ``image`` itself when no axis needs it.

    Args:
        image: a native scalar volume (any pixel type; the result is float32).
        grid_geometry: the prepared grid (:class:`lesionseg.io.Geometry`).
        transform: maps grid points to ``image`` points, as given to the resampler (registration), or None.
        sigmas_mm: :func:`antialias_sigmas_mm` of the same image and grid when the caller has it already.
    """
    sigmas = np.asarray(antialias_sigmas_mm(image, grid_geometry) if sigmas_mm is None else sigmas_mm, float)
    if not sigmas.any():
        return image
    spacing = np.asarray(image.GetSpacing(), float)
    box = _read_box(image, grid_geometry, transform, np.ceil(KERNEL_REACH_SIGMAS * sigmas / spacing) + 2)
    region = image if box is None else sitk.RegionOfInterest(image, box[1], box[0])
    region = sitk.Cast(region, sitk.sitkFloat32)
    return sitk.DiscreteGaussian(region, [float(s * s) for s in sigmas], 64, 0.01, True)
