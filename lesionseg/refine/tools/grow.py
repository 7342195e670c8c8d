"""Grow from seeds: lesion seeds inside the mask (or the user's strokes), background seeds outside a margin,
and GrowCut on the image decides every voxel in between.

Seeds:

- lesion: the mask shrunk by ``erosion_mm`` (a thin component, which the shrinking would erase, keeps
  its deeper half), restricted to voxels that look like lesion (past the keep threshold of
  :mod:`.distributions`), and only in the components that stand out from their surroundings (a stray
  speck of the mask seeds nothing); or the voxels of ``lesion_seeds`` when given;
- background: brain voxels farther than ``margin_mm`` from the mask, the lesion seeds, what the mask
  encloses and (when the lesion is distinct) the lesion's continuation past the outline
  (:func:`.distributions.not_healthy`): those are GrowCut's to decide, however far from the outline (a
  model's rim around a lesion's missed interior, or a too-small outline, must not seed the lesion they
  missed as background); everything outside the brain, the components that do not stand out, the crop's
  two outer layers, and the voxels of ``background_seeds`` when given.

Editable intensity range (the Segment Editor's masking option of the same name): only voxels past the
keep threshold (voxels of the mask) or the add threshold (the others) of :mod:`.distributions` may become
lesion; the others are left out of the growing. Without it GrowCut, whose cost is the sum of intensity
steps along a path, lets a bright lesion claim the partial-volume ring around it (about one voxel, which
is much of a small lesion's volume).

Backends: Slicer's ``vtkImageGrowCutSegment`` (the Segment Editor's "Grow from seeds", run on the image as
it is) and ``vtkITKImageMargin`` (its "Margin") when slicer-core is installed; otherwise a geodesic race
from the same seeds on the gradient magnitude (scikit-image's ``MCP_Geometric``) and a SimpleITK
distance-map margin. The intensity levels are measured on the lightly smoothed image, inside the box around
the mask.

As with the intensity tool, when the lesion is not distinct from the tissue around it (see
``max_lookalike``; what the mask encloses and the lesion's continuation past a too-small outline are not
that tissue, :mod:`.distributions`), the mask is returned unchanged unless the user gave lesion seeds
(then GrowCut runs without an editable intensity range). With lesion strokes and no mask, the background
seeds are the outside of the brain, the background strokes and the faces of a box
``STROKES_ONLY_PADDING_MM`` around the strokes (a margin around a small stroke would put background seeds
inside the lesion).
"""

from __future__ import annotations

import logging

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.errors import ParameterError
from lesionseg.refine import slicer_algorithms
from lesionseg.refine._checks import (
    POLARITIES, array_spacing, bounding_box, check_choice, check_mm, image_array, mask_array, pad_box, same_grid,
    to_mask_image,
)
from lesionseg.refine import morphology
from lesionseg.refine.morphology import inside_distance_mm
from lesionseg.refine.tools.common import MODALITIES, SMOOTHING_MM, Region, brain_array
from lesionseg.refine.tools.distributions import (
    ADD_FRACTION, KEEP_FRACTION, decide_components, fit_intensity_model, label_components, not_healthy,
)
from lesionseg.refine.tools.intensity import smooth

LOGGER = logging.getLogger(__name__)

#: Defaults, the same for every kind of damage.
DEFAULTS = {"erosion_mm": 4.0, "margin_mm": 4.0, "context_mm": 10.0, "smoothing_mm": None, "max_lookalike": 0.05,
            "polarity": "auto"}
LESION, BACKGROUND = 1, 2
#: with lesion strokes and no mask, GrowCut runs in a box this far around the strokes, whose faces (with the
#: outside of the brain and the background strokes) are the background seeds
STROKES_ONLY_PADDING_MM = 30.0


def _geodesic_race(intensity: np.ndarray, seeds: np.ndarray, editable: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """scikit-image fallback for GrowCut: each voxel takes the seed label it is geodesically closest to.

    GrowCut's cost of a path is the sum of the absolute intensity steps along it; here the cost of a
    voxel is the image's gradient magnitude (the intensity step per mm) times the distance travelled
    (``skimage.graph.MCP_Geometric`` with the voxel spacing), which is the same race in the continuum.
    Voxels outside the editable range cannot be crossed.
    """
    from skimage.graph import MCP_Geometric

    gradient = ndimage.gaussian_gradient_magnitude(intensity.astype(np.float64), sigma=0.5, mode="nearest")
    costs = gradient / (np.median(gradient) or 1.0) + 1e-3
    costs[~editable & (seeds == 0)] = np.inf
    cumulative = []
    for label in (LESION, BACKGROUND):
        starts = np.argwhere(seeds == label)
        if len(starts) == 0:
            cumulative.append(np.full(seeds.shape, np.inf))
            continue
        cost, _ = MCP_Geometric(costs, sampling=tuple(float(s) for s in spacing)).find_costs(starts)
        cumulative.append(cost)
    return np.where(cumulative[0] < cumulative[1], LESION, BACKGROUND).astype(np.uint8)


def _seed_array(seeds: sitk.Image | None, image: sitk.Image, name: str) -> np.ndarray | None:
    if seeds is None:
        return None
    same_grid(image, seeds, name)
    array = mask_array(seeds, name, allow_empty=True)
    if not array.any():
        raise ParameterError(f"{name} is empty; draw at least one stroke or leave it out.")
    return array


def grow_from_seeds(image: sitk.Image, mask: sitk.Image | None, *, lesion_seeds: sitk.Image | None = None,
                    background_seeds: sitk.Image | None = None, brain: sitk.Image | None = None,
                    modality: str = "mri", erosion_mm: float = DEFAULTS["erosion_mm"],
                    margin_mm: float = DEFAULTS["margin_mm"], context_mm: float = DEFAULTS["context_mm"],
                    smoothing_mm: float | None = DEFAULTS["smoothing_mm"],
                    max_lookalike: float = DEFAULTS["max_lookalike"], polarity: str = DEFAULTS["polarity"],
                    backend: str = "auto", details: dict | None = None) -> sitk.Image:
    """Re-segment the lesion by GrowCut from seeds derived from the mask (see the module docstring).

    Args:
        image: the scan.
        mask: the current lesion mask on the scan's grid (may be None or empty when ``lesion_seeds`` is
            given).
        lesion_seeds: optional user strokes (non-zero = lesion) on the scan's grid; they replace the seeds
            taken from the mask.
        background_seeds: optional user strokes marking background.
        brain: brain mask on the scan's grid; None extracts it (classical method for ``modality``).
        modality: ``"mri"`` or ``"ct"``, for brain extraction.
        erosion_mm: lesion seeds lie deeper than this inside the mask.
        margin_mm: background seeds lie farther than this outside the mask.
        context_mm: thickness of the healthy-tissue shell used to measure the intensities.
        smoothing_mm: Gaussian sigma (mm) applied to the image first; None: 0.7 mm for MRI, 2 mm for CT.
        max_lookalike: see :func:`lesionseg.refine.tools.intensity.refine_intensity`.
        polarity: ``"bright"``, ``"dark"`` or ``"auto"``.
        backend: ``"auto"``, ``"slicer"`` (Slicer's GrowCut and Margin) or ``"sitk"``.
        details: when a dict is given, it receives what was decided.

    Returns:
        uint8 0/1 mask on the scan's grid.

    Raises:
        GeometryError: mask, seeds or brain mask on another grid.
        ParameterError: no mask and no seeds, empty seeds, or a bad parameter.
        PreprocessingError: no brain found when ``brain`` is None.
    """
    erosion_mm = check_mm(erosion_mm, "erosion_mm")
    margin = check_mm(margin_mm, "margin_mm", allow_zero=False)
    context_mm = check_mm(context_mm, "context_mm", allow_zero=False)
    check_choice(modality, "modality", MODALITIES)
    smoothing_mm = check_mm(SMOOTHING_MM[modality] if smoothing_mm is None else smoothing_mm, "smoothing_mm")
    max_lookalike = check_mm(max_lookalike, "max_lookalike")
    check_choice(polarity, "polarity", POLARITIES)
    used = slicer_algorithms.resolve_backend(backend)
    user_lesion = _seed_array(lesion_seeds, image, "the lesion seeds")
    user_background = _seed_array(background_seeds, image, "the background seeds")
    if mask is not None:
        same_grid(image, mask, "the mask")
    current = mask_array(mask, "the mask", allow_empty=user_lesion is not None) if mask is not None else None
    if current is None and user_lesion is None:
        raise ParameterError("grow from seeds needs a mask or lesion seeds; there is nothing to grow from.")
    reference = mask if mask is not None else lesion_seeds
    full_mask = current if current is not None else np.zeros(user_lesion.shape, dtype=bool)
    outline = full_mask | (user_lesion if user_lesion is not None else False)
    pixels = image_array(image)
    spacing = array_spacing(image)
    brain_full = brain_array(image, brain, modality)
    strokes_only = not full_mask.any()
    padding = margin + context_mm + 2 * smoothing_mm
    # strokes alone say nothing of the lesion's extent: look farther, and take no background near them
    box = bounding_box(outline, STROKES_ONLY_PADDING_MM if strokes_only else padding, spacing)
    region = Region(pixels[box], full_mask[box], brain_full[box], spacing, box, full_mask)
    outline_box = outline[box]
    info = details if details is not None else {}
    info.update({"tool": "grow", "backend": used})
    smoothed = smooth(region.image, spacing, smoothing_mm)
    model = None if strokes_only else fit_intensity_model(smoothed, region.mask, region.brain, spacing, band_mm=margin,
                                                          context_mm=context_mm, polarity=polarity)
    distinct = model is not None and model.lookalike <= max_lookalike
    if user_lesion is None and not distinct:
        reason = ("too few lesion or healthy voxels to measure the two distributions" if model is None else
                  f"the lesion is not distinct on this image: {100 * model.lookalike:.0f} % of the healthy tissue "
                  f"around it looks like lesion (more than {100 * max_lookalike:g} %)")
        info.update({"changed": False, "reason": reason, "model": model.to_dict() if model else None})
        LOGGER.warning("grow from seeds left the mask unchanged: %s", reason)
        return to_mask_image(full_mask, reference)
    seeds = np.zeros(region.mask.shape, dtype=np.uint8)
    rejected = np.zeros_like(region.mask)
    # Slicer's "editable intensity range": a voxel may be lesion only past a threshold (the keep level for
    # voxels of the mask, the stricter add level for the others), like the intensity tool
    threshold = np.where(region.mask, keep_level(model), add_level(model)) if distinct else None
    if user_lesion is not None:
        lesion = user_lesion[box]
    else:
        lesion = _mask_seeds(smoothed, region, model, margin, context_mm, erosion_mm, used, rejected, threshold)
    if not lesion.any():
        info.update({"changed": True, "reason": "no part of the mask looks like lesion", "model": model.to_dict()})
        return to_mask_image(region.paste(np.zeros_like(region.mask)), reference)
    if strokes_only:
        background = ~region.brain
    else:
        lesion_side = _lesion_side(smoothed, outline_box | lesion, region, model if distinct else None,
                                   margin, context_mm)
        near = morphology.margin_mm(lesion_side, spacing, margin, used)
        background = (region.brain & ~near) | ~region.brain | rejected
    if user_background is not None:
        background |= user_background[box]
    seeds[background] = BACKGROUND
    seeds[lesion] = LESION  # user strokes win over the automatic background
    # the box's two outer layers are background: Slicer's GrowCut does not propagate from the outermost one
    faces = np.ones(seeds.shape, dtype=bool)
    faces[2:-2, 2:-2, 2:-2] = False
    seeds[faces & (seeds == 0)] = BACKGROUND
    editable = np.ones(seeds.shape, dtype=bool) if threshold is None else model.sign * (smoothed - threshold) > 0
    editable |= lesion
    if used == "slicer":
        labels = slicer_algorithms.grow_cut(region.image, np.where(editable, seeds, 0), excluded=~editable)
    else:
        labels = _geodesic_race(smoothed, seeds, editable, spacing)
    labels[~editable] = BACKGROUND
    result = (labels == LESION) & region.brain
    full = region.paste(result)
    info.update({"changed": True, "model": model.to_dict() if model else None,
                 "lesion_seed_voxels": int(np.count_nonzero(seeds == LESION)),
                 "background_seed_voxels": int(np.count_nonzero(seeds == BACKGROUND)),
                 "added_voxels": int(np.count_nonzero(full & ~full_mask)),
                 "removed_voxels": int(np.count_nonzero(full_mask & ~full))})
    return to_mask_image(full, reference)


def _lesion_side(smoothed: np.ndarray, outline: np.ndarray, region: Region, model, band_mm: float,
                 context_mm: float) -> np.ndarray:
    """What no background seed may hold (bool ``(z, y, x)``): the outline, what it encloses and, with the
    model of a distinct lesion (None otherwise), the lesion's continuation past it."""
    if model is None:
        return morphology.fill_holes(outline, region.spacing)
    return not_healthy(smoothed, outline, region.brain, region.spacing, model, band_mm=band_mm,
                       context_mm=context_mm)


def keep_level(model) -> float:
    """The whole mask's keep threshold (see :mod:`.distributions`)."""
    return model.healthy_level + model.sign * KEEP_FRACTION * model.contrast


def add_level(model) -> float:
    """The whole mask's add threshold (see :mod:`.distributions`)."""
    return model.healthy_level + model.sign * ADD_FRACTION * model.contrast


def _mask_seeds(smoothed: np.ndarray, region: Region, model, band_mm: float, context_mm: float, erosion_mm: float,
                backend: str, rejected: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Lesion seeds from the mask: its shrunk core (or the deeper half of thin components) where it looks
    like lesion, in the components that stand out. ``rejected`` receives the components that do not;
    ``threshold`` receives each component's own keep / add thresholds around it."""
    labels, count = label_components(region.mask)
    decisions = decide_components(smoothed, labels, count, region.brain, region.spacing, model, band_mm=band_mm,
                                  context_mm=context_mm)
    core = morphology.margin_mm(region.mask, region.spacing, -erosion_mm, backend) if erosion_mm > 0 else region.mask
    seeds = np.zeros_like(region.mask)
    boxes = ndimage.find_objects(labels)
    for decision in decisions:
        own_box = boxes[decision.label - 1]
        own = labels[own_box] == decision.label
        if not decision.is_lesion:
            rejected[own_box] |= own
            continue
        near_box = pad_box(own_box, band_mm, region.spacing, labels.shape)
        near_own = labels[near_box] == decision.label
        outside = labels[near_box] == 0
        threshold[near_box][near_own] = decision.keep_threshold
        threshold[near_box][outside] = decision.add_threshold
        inner = own & core[own_box]
        if not inner.any():  # a thin component: its deeper half
            depth = inside_distance_mm(own, region.spacing)
            inner = own & (depth >= 0.5 * float(depth.max()))
        looks = model.sign * (smoothed[own_box] - decision.keep_threshold) > 0
        seeds[own_box] |= inner & looks
    return seeds
