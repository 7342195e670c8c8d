"""Intensity-guided boundary refinement: re-decide the voxels near the mask's boundary from their intensity.

The lesion and healthy-tissue levels come from :mod:`.distributions` (the two distributions of the Fisher
contrast, measured around the mask). Each connected component of the mask is judged on its own against
the tissue around it: one that does not stand out (a stray stroke over healthy tissue) is removed; for the
others, within ``band_mm`` of the boundary (on both sides), a voxel inside the brain is lesion when its
lightly smoothed intensity is past the component's threshold: the add threshold (half the contrast, where
a voxel half filled with lesion lies) for a voxel the mask does not hold, the lower keep threshold (a
quarter of the contrast) for one it holds. Voxels deeper inside the mask than the band stay lesion, voxels
farther outside stay background, and added voxels must connect to kept ones (no new islands). The band
covers small holes and small islands entirely, so they are re-decided too; the voxels a component encloses
(:func:`lesionseg.refine.morphology.fill_holes`, in 3D and slice by slice) are re-decided however far from
its outline they lie, with the add threshold: a model that outlines a lesion and misses its interior
draws a rim, whose bright interior becomes lesion and a dark one (a ventricle the outline went round)
stays out.

When the healthy tissue around the lesion often looks like lesion (more than ``max_lookalike`` of it lies
past the midpoint between the two levels: a faint lesion, or one as bright as the cortex), the mask is
returned unchanged and ``details["reason"]`` says why: intensity cannot say where such a boundary is. What
the mask encloses and the lesion's own continuation past a too-small outline are not healthy tissue and
do not count (:mod:`.distributions`).

Defaults (one set for every kind of damage): band 4 mm, healthy shell 10 mm, smoothing sigma 0.7 mm on
MRI and 2 mm on CT, ``max_lookalike`` 5 %. Backend: NumPy/SciPy only (Slicer has no
intensity-classification effect of this kind); components are 26-connected (SciPy).
"""

from __future__ import annotations

import logging

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.errors import ParameterError
from lesionseg.refine._checks import POLARITIES, check_choice, check_mm, pad_box, to_mask_image
from lesionseg.refine.morphology import fill_holes, inside_distance_mm, keep_touching, outside_distance_mm
from lesionseg.refine.tools.common import MODALITIES, SMOOTHING_MM, prepare_region
from lesionseg.refine.tools.distributions import (
    KEEP_FRACTION, decide_components, fit_intensity_model, label_components,
)

LOGGER = logging.getLogger(__name__)

#: Defaults, the same for every kind of damage (eroded, dilated, holes, islands).
DEFAULTS = {"band_mm": 4.0, "context_mm": 10.0, "smoothing_mm": None, "max_lookalike": 0.05,
            "polarity": "auto"}


def smooth(image: np.ndarray, spacing: np.ndarray, sigma_mm: float) -> np.ndarray:
    """Gaussian smoothing with a sigma in mm (per axis in voxels from the spacing); 0 = unchanged."""
    if sigma_mm <= 0:
        return image
    return ndimage.gaussian_filter(image, sigma=[sigma_mm / s for s in spacing], mode="nearest")


def _candidates(own: np.ndarray, mask: np.ndarray, spacing: np.ndarray, band_mm: float) -> np.ndarray:
    """The voxels re-decided around one component: its band and the voxels it encloses.

    Args:
        own: bool ``(z, y, x)``, the component.
        mask: bool ``(z, y, x)``, the whole mask (other components are not this one's to add).
        spacing: mm ``(z, y, x)``.
        band_mm: the band's half-width on each side of the boundary.

    Returns:
        bool ``(z, y, x)``: the component's voxels within ``band_mm`` of its boundary, the voxels outside the
        mask within ``band_mm`` of it, and the voxels outside the mask it encloses, however deep: an outline
        that missed a lesion's interior says nothing about it, and the image decides.
    """
    inner = own & (inside_distance_mm(own, spacing) <= band_mm)
    outer = ~mask & (outside_distance_mm(own, spacing) <= band_mm)
    return inner | outer | (fill_holes(own, spacing) & ~mask)


def refine_intensity(image: sitk.Image, mask: sitk.Image, *, brain: sitk.Image | None = None,
                     modality: str = "mri", band_mm: float = DEFAULTS["band_mm"],
                     context_mm: float = DEFAULTS["context_mm"],
                     smoothing_mm: float | None = DEFAULTS["smoothing_mm"],
                     max_lookalike: float = DEFAULTS["max_lookalike"], keep_fraction: float = KEEP_FRACTION,
                     polarity: str = DEFAULTS["polarity"],
                     details: dict | None = None) -> sitk.Image:
    """Refine a lesion mask's boundary from the image's intensities (see the module docstring).

    Args:
        image: the scan (any scalar pixel type).
        mask: the current lesion mask, 0/1 on the scan's grid.
        brain: brain mask on the scan's grid; None extracts it (classical method for ``modality``).
        modality: ``"mri"`` or ``"ct"``, for brain extraction.
        band_mm: voxels within this distance of the mask's boundary are re-decided.
        context_mm: thickness of the healthy-tissue shell beyond the band.
        smoothing_mm: Gaussian sigma (mm) applied to the image before deciding (noise); None: by modality,
            0.7 mm for MRI, 2 mm for CT.
        max_lookalike: when more than this fraction of the healthy tissue around the lesion looks like
            lesion (lies past the midpoint between the two levels), intensity cannot tell them apart and
            the mask is returned unchanged.
        keep_fraction: a voxel the mask holds stays lesion past this fraction of the lesion's contrast
            (0.25: the drawn mask counts as evidence; 0.5: the image alone decides, as for added voxels).
        polarity: ``"bright"`` (FLAIR, DWI), ``"dark"`` (CT, ADC) or ``"auto"`` (from the data).
        details: when a dict is given, it receives what was decided (model, voxel counts, reason).

    Returns:
        uint8 0/1 mask on the scan's grid.

    Raises:
        GeometryError: mask or brain mask on another grid.
        ParameterError: an empty mask or a bad parameter.
        PreprocessingError: no brain found when ``brain`` is None.
    """
    band_mm = check_mm(band_mm, "band_mm", allow_zero=False)
    context_mm = check_mm(context_mm, "context_mm", allow_zero=False)
    check_choice(modality, "modality", MODALITIES)
    smoothing_mm = check_mm(SMOOTHING_MM[modality] if smoothing_mm is None else smoothing_mm, "smoothing_mm")
    max_lookalike = check_mm(max_lookalike, "max_lookalike")
    if not 0.0 < float(keep_fraction) <= 1.0:
        raise ParameterError(f"keep_fraction must lie in (0, 1], not {keep_fraction!r}.")
    check_choice(polarity, "polarity", POLARITIES)
    region = prepare_region(image, mask, brain, modality, band_mm + context_mm + 2 * smoothing_mm)
    info = details if details is not None else {}
    info.update({"tool": "intensity", "backend": "numpy"})
    smoothed = smooth(region.image, region.spacing, smoothing_mm)
    model = fit_intensity_model(smoothed, region.mask, region.brain, region.spacing, band_mm=band_mm,
                                context_mm=context_mm, polarity=polarity)
    if model is None or model.lookalike > max_lookalike:
        reason = ("too few lesion or healthy voxels to measure the two distributions" if model is None else
                  f"the lesion is not distinct on this image: {100 * model.lookalike:.0f} % of the healthy tissue "
                  f"around it looks like lesion (more than {100 * max_lookalike:g} %; Fisher ratio {model.fisher:.2f})")
        info.update({"changed": False, "reason": reason, "model": model.to_dict() if model else None})
        LOGGER.warning("intensity refinement left the mask unchanged: %s", reason)
        return to_mask_image(region.full_mask, mask)
    labels, count = label_components(region.mask)
    decisions = decide_components(smoothed, labels, count, region.brain, region.spacing, model, band_mm=band_mm,
                                  context_mm=context_mm, keep_fraction=float(keep_fraction))
    result = np.zeros_like(region.mask)
    boxes = ndimage.find_objects(labels)
    for decision in decisions:
        if not decision.is_lesion:
            continue  # it does not stand out from the tissue around it: not lesion
        box = pad_box(boxes[decision.label - 1], band_mm, region.spacing, labels.shape)
        own = labels[box] == decision.label
        candidates = _candidates(own, region.mask[box], region.spacing, band_mm)
        values = model.sign * smoothed[box]
        threshold = np.where(own, model.sign * decision.keep_threshold, model.sign * decision.add_threshold)
        decided = (own & ~candidates) | (candidates & region.brain[box] & (values > threshold))
        result[box] |= keep_touching(decided, decided & own)  # additions must connect to kept voxels
    full = region.paste(result)
    info.update({"changed": True, "model": model.to_dict(), "components": len(decisions),
                 "components_removed": sum(not d.is_lesion for d in decisions),
                 "added_voxels": int(np.count_nonzero(full & ~region.full_mask)),
                 "removed_voxels": int(np.count_nonzero(region.full_mask & ~full))})
    return to_mask_image(full, mask)
