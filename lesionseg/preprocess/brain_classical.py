"""The classical brain extraction pipelines, one for MRI and one for CT (used by
:mod:`lesionseg.preprocess.brain`, which chooses the method, works on a coarse grid and checks the volume).

MRI (FLAIR, T1, DWI; classical). Every threshold comes from the image itself (Otsu's method, or ratios
to the image's own tissue level), so a scaled image (any positive factor) gives the same mask; every
radius is in millimetres, converted to voxels per axis, so thick slices (1x1x3 mm, 1x1x5 mm) work:

1. Gaussian smoothing (sigma 1 mm) against noise.
2. Parenchyma core: Otsu threshold of the smoothed image (dark = air, bone, CSF; bright = tissue),
   erosion by 3 mm to cut thin bridges to the scalp, the largest connected component, reconstruction
   back inside the thresholded mask, hole filling (ventricles, sulci).
3. CSF rim. Inside the skull the parenchyma is wrapped in CSF, darker than tissue but brighter than
   bone. Intensities are divided by the local mean of the core (normalised Gaussian convolution, sigma
   15 mm), which removes a smooth bias field. The skull is located as the minimum of the mean intensity
   against distance outside the core (searched over 0-10 mm). Over the dark voxels between the core and
   that distance (CSF, bone and partial volumes), a two-threshold Otsu split is taken; its lower
   threshold separates bone from CSF. The core grows, through connected voxels and no further than the
   skull, into the voxels above it.
4. Clean-up: closing (2 mm), hole filling, opening (2 mm), the largest component.

It needs the skull to be darker than the CSF next to it (true of FLAIR, T1 and DWI; not of T2 or ADC,
whose CSF is bright: extract on FLAIR or DWI and use that mask for ADC). When CSF and bone have about
the same intensity, the rim step finds little and the mask ends near the brain surface (on the phantom's
weakest-contrast FLAIR, CSF 0.17 and bone 0.14 of white matter with 1.7 % noise, Dice 0.96).

CT (classical; after the first step of Muschelli et al.'s head-CT recipe): median filter (1 mm radius,
which keeps edges where a Gaussian would spread 1000 HU of bone over the CSF next to it), threshold
0-100 HU (brain and CSF, not bone, not air), cut where the skull is open (the foramen magnum joins the
intracranial CSF to the neck's soft tissue, which is in the window too: see
:mod:`lesionseg.preprocess.skull_openings`), erosion by 3 mm, the largest component, reconstruction
back inside the threshold (this drops the scalp and neck soft tissue, which pass the threshold but lie
outside the skull), hole filling, closing (2 mm). Then a partial-volume edge: a voxel that is 10 % bone
already exceeds 100 HU, so the mask grows (at most one voxel size, through connected voxels) into the
voxels below the midpoint between the CSF at its edge and the skull's level (see
:func:`_ct_partial_volume_edge`). Before any of it, a CT whose values are not Hounsfield units is refused and
a CT whose skull was already removed is recognised, its brain being its non-background voxels
(:mod:`lesionseg.preprocess.ct_input`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lesionseg.preprocess.skull_openings import cut_at_skull_openings

SMOOTHING_MM = 1.0
CORE_EROSION_MM = 3.0
SHELL_MM = 10.0
CLEANUP_MM = 2.0
BIAS_SCALE_MM = 15.0
CT_RANGE_HU = (0.0, 100.0)
#: whether the CT pipeline cuts the window at the skull's openings (:mod:`lesionseg.preprocess.skull_openings`;
#: False: the pipeline of before, for benchmarks/bench_ct_brain.py's comparison)
SKULL_BASE_GUARD = True
#: CT uses the coarse working grid from a 2-fold reduction in voxels (MRI from 4-fold): on a 1.2 x 1.2 x 1 mm CT
#: (5.7 million voxels, blocks of 1 x 1 x 2) it took 11-13 s instead of 26-35 s on one shared core, Dice to the
#: truth 0.997 instead of 0.983
CT_MIN_REDUCTION = 2


def _radius(image: sitk.Image, mm: float) -> list[int]:
    """A morphology radius in mm as voxels per axis (x, y, z); at least 1 voxel along every axis."""
    return [max(1, int(round(mm / s))) for s in image.GetSpacing()]


def _largest_component(mask: sitk.Image) -> sitk.Image:
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    return sitk.Cast(labels == 1, sitk.sitkUInt8)


def _open_to_largest(mask: sitk.Image, radius_mm: float) -> sitk.Image:
    """Erode, keep the largest component, and reconstruct it inside the original mask (no shape loss)."""
    radius = _radius(mask, radius_mm)
    eroded = sitk.BinaryErode(mask, radius, sitk.sitkBall, 0, 1)
    if not np.any(sitk.GetArrayViewFromImage(eroded)):
        return eroded
    core = _largest_component(eroded)
    return sitk.Cast(sitk.BinaryReconstructionByDilation(core, mask), sitk.sitkUInt8)


def _fill(mask: sitk.Image) -> sitk.Image:
    return sitk.Cast(sitk.BinaryFillhole(mask, fullyConnected=False, foregroundValue=1), sitk.sitkUInt8)


def _otsu_thresholds(values: np.ndarray, count: int = 1) -> list[float]:
    """Otsu's ``count`` thresholds of a 1D sample (SimpleITK's multi-Otsu filter on a one-row image)."""
    image = sitk.GetImageFromArray(values.astype(np.float32).reshape(1, 1, -1))
    otsu = sitk.OtsuMultipleThresholdsImageFilter()
    otsu.SetNumberOfThresholds(count)
    otsu.SetNumberOfHistogramBins(256)
    otsu.Execute(image)
    return [float(t) for t in otsu.GetThresholds()]


def _smoothed(image: sitk.Image) -> sitk.Image:
    return sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), SMOOTHING_MM)


def _radial_profile(values: np.ndarray, distance: np.ndarray,
                    step_mm: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` in shells ``step_mm`` thick at distance (0, SHELL_MM] outside a mask.

    Returns:
        (outer distance of each shell in mm, mean value in it), for the shells holding voxels.
    """
    inside = (distance > 0) & (distance <= SHELL_MM)
    bins = np.minimum((distance[inside] / step_mm).astype(int), int(SHELL_MM / step_mm) - 1)
    sums = np.bincount(bins, weights=values[inside], minlength=int(SHELL_MM / step_mm))
    counts = np.bincount(bins, minlength=int(SHELL_MM / step_mm))
    edges = step_mm * (np.arange(len(sums)) + 1)
    keep = counts > 0
    return edges[keep], sums[keep] / counts[keep]


def _parenchyma_level(smooth: sitk.Image, core: sitk.Image) -> sitk.Image:
    """The local mean of the core (normalised Gaussian convolution, sigma 15 mm), float32 on the image's grid.

    MRI bias fields vary by tens of percent over the head but slowly; relative to the parenchyma next to
    it, CSF and bone keep the same levels all round the head, so one threshold separates them.
    """
    weight = sitk.Cast(core, sitk.sitkFloat32)
    numerator = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(smooth * weight, BIAS_SCALE_MM))
    denominator = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(weight, BIAS_SCALE_MM))
    reference = numerator / np.maximum(denominator, 1e-3)
    positive = reference[sitk.GetArrayViewFromImage(core) > 0]
    floor = max(float(np.median(positive)) * 1e-3, 1e-12) if positive.size else 1e-12
    level = sitk.GetImageFromArray(np.maximum(reference, floor).astype(np.float32))
    level.CopyInformation(smooth)
    return level


@dataclass
class EdgeRule:
    """What decides a voxel at the mask's edge, as the pipeline found it on its own grid (for
    :mod:`lesionseg.preprocess.brain_edges`, which applies it at full resolution).

    Attributes:
        modality: ``"mri"`` or ``"ct"``.
        threshold: MRI: a voxel is in when its smoothed value divided by ``level`` exceeds it (the CSF rim's
            bone/CSF threshold), or, without ``level``, when its smoothed value does (the tissue threshold).
        level: MRI: the local parenchyma level (float32 image, any grid), or None.
        midpoint: CT: the partial-volume edge's HU limit (see :func:`_ct_partial_volume_edge`), None when
            that step found no skull.
        limit: MRI with ``level``: where the rim may reach on the pipeline's grid, ``(z, y, x)`` booleans (the
            core and the voxels no further out than the skull), or None.
    """

    modality: str
    threshold: float | None = None
    level: sitk.Image | None = None
    midpoint: float | None = None
    limit: np.ndarray | None = None


def classical_mri(image: sitk.Image) -> tuple[sitk.Image, EdgeRule]:
    """The MRI pipeline of the module docstring; returns a uint8 mask (possibly empty) and its edge rule."""
    smooth = _smoothed(image)
    values = sitk.GetArrayViewFromImage(smooth)
    if float(values.max()) <= float(values.min()):
        return sitk.Cast(smooth * 0, sitk.sitkUInt8), EdgeRule("mri", float(values.max()))
    tissue_threshold = _otsu_thresholds(values.ravel()[:: max(1, values.size // 2_000_000)])[0]
    tissue = sitk.Cast(smooth > tissue_threshold, sitk.sitkUInt8)
    core = _fill(_open_to_largest(tissue, CORE_EROSION_MM))
    core_array = sitk.GetArrayViewFromImage(core).astype(bool)
    tissue_rule = EdgeRule("mri", tissue_threshold)
    if not core_array.any():
        return core, tissue_rule
    # Distance (mm) outside the core, positive outside.
    distance = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        core, insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
    # Intensities relative to the local parenchyma level, which takes out a smooth bias field.
    level = _parenchyma_level(smooth, core)
    relative = values / sitk.GetArrayViewFromImage(level)
    # The skull is where the mean intensity around the core is lowest; the CSF rim lies inside it.
    edges, means = _radial_profile(relative, distance)
    skull_mm = float(edges[int(np.argmin(means))]) if len(edges) else 0.0
    shell = (distance > 0) & (distance <= skull_mm) & (values < tissue_threshold)
    if skull_mm < 1.0 or np.count_nonzero(shell) < 100:
        return clean_up(core), tissue_rule
    dark_threshold = _otsu_thresholds(relative[shell], 2)[0]
    candidate = core_array | ((distance > 0) & (distance <= skull_mm) & (relative > dark_threshold))
    candidate_image = sitk.GetImageFromArray(candidate.astype(np.uint8))
    candidate_image.CopyInformation(image)
    rim = sitk.Cast(sitk.BinaryReconstructionByDilation(core, candidate_image), sitk.sitkUInt8)
    return clean_up(rim), EdgeRule("mri", dark_threshold, level, limit=core_array | (distance <= skull_mm))


def clean_up(mask: sitk.Image) -> sitk.Image:
    radius = _radius(mask, CLEANUP_MM)
    closed = _fill(sitk.BinaryMorphologicalClosing(mask, radius, sitk.sitkBall, 1))
    opened = sitk.BinaryMorphologicalOpening(closed, radius, sitk.sitkBall, 0, 1)
    if not np.any(sitk.GetArrayViewFromImage(opened)):
        return sitk.Cast(opened, sitk.sitkUInt8)
    return _largest_component(opened)


def ct_median_radius(spacing_xyz: tuple[float, ...]) -> list[int]:
    """The CT median filter's radius in voxels per axis (x, y, z) for voxels of ``spacing_xyz`` mm: 1 mm, 0 along
    axes coarser than 2 mm."""
    return [int(round(SMOOTHING_MM / s)) for s in spacing_xyz]


def classical_ct(image: sitk.Image) -> tuple[sitk.Image, EdgeRule]:
    """The CT pipeline of the module docstring; returns a uint8 mask (possibly empty) and its edge rule."""
    hu = sitk.Cast(image, sitk.sitkFloat32)
    # A median (not a Gaussian) keeps the skull edge where it is: a Gaussian spreads 1000 HU of bone
    # over the CSF next to it, which then fails the 100 HU test and the mask shrinks by a millimetre.
    smooth = sitk.Median(hu, ct_median_radius(image.GetSpacing()))
    low, high = CT_RANGE_HU
    window = sitk.Cast((smooth >= low) & (smooth <= high), sitk.sitkUInt8)
    if SKULL_BASE_GUARD:
        window = cut_at_skull_openings(window)
    brain = _fill(_open_to_largest(window, CORE_EROSION_MM))
    if not np.any(sitk.GetArrayViewFromImage(brain)):
        return brain, EdgeRule("ct")
    radius = _radius(brain, CLEANUP_MM)
    brain = _fill(sitk.BinaryMorphologicalClosing(brain, radius, sitk.sitkBall, 1))
    grown, midpoint = _ct_partial_volume_edge(brain, hu)
    return grown, EdgeRule("ct", midpoint=midpoint)


def _ct_partial_volume_edge(brain: sitk.Image, hu: sitk.Image) -> tuple[sitk.Image, float | None]:
    """Add the voxels just outside the mask that are more CSF than bone.

    A voxel that is 10 % bone already exceeds 100 HU, so the 0-100 HU mask stops short of the skull by
    up to a voxel (more across thick slices cutting the skull obliquely). The mask grows, through
    connected voxels and at most one voxel size (the largest spacing) out, into voxels whose HU lies
    between 0 and the midpoint between the CSF at the mask's edge and the bone around it (the 90th
    percentile of the voxels above 100 HU within 10 mm): those voxels are mostly CSF.

    Returns:
        The grown mask and the midpoint in HU (None, and the mask unchanged, without an edge or a skull).
    """
    values = sitk.GetArrayViewFromImage(hu)
    inside = sitk.GetArrayViewFromImage(brain).astype(bool)
    distance = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(
        brain, insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
    edge = inside & (distance >= -2.0)
    bone = (distance > 0.0) & (distance <= 10.0) & (values > CT_RANGE_HU[1])
    if not edge.any() or np.count_nonzero(bone) < 100:
        return brain, None
    # The skull's level: a high percentile, because thick slices leave few voxels of pure bone.
    midpoint = 0.5 * (float(np.median(values[edge])) + float(np.percentile(values[bone], 90)))
    reach = max(hu.GetSpacing())
    candidate = inside | ((distance <= reach) & (values < midpoint) & (values >= CT_RANGE_HU[0]))
    candidate_image = sitk.GetImageFromArray(candidate.astype(np.uint8))
    candidate_image.CopyInformation(brain)
    return sitk.Cast(sitk.BinaryReconstructionByDilation(brain, candidate_image), sitk.sitkUInt8), midpoint
