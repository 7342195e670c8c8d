"""The lesion and healthy-tissue intensities that the intensity and grow tools decide with.

They are the two distributions of the Fisher contrast (:mod:`lesionseg.difficulty.contrast`), measured in
3D around the current mask instead of on one prepared slice, and per lesion:

- healthy: the brain between ``band_mm`` and ``band_mm + context_mm`` from the mask (around one
  component of the mask, for that component's model). The Fisher contrast of the difficulty table takes
  the whole hemisphere of a slice; the tissue around a lesion is what its boundary separates it from,
  and it follows slow intensity changes (MRI bias field) that a hemisphere-wide average does not.
  Two kinds of voxel in that shell are not healthy tissue and are set aside (:func:`not_healthy`): those
  the mask encloses (:func:`lesionseg.refine.morphology.fill_holes`, in 3D and slice by slice: a model
  that outlines a lesion and misses its interior draws a rim), and the lesion's continuation past a
  too-small outline (voxels nearer the lesion level than the healthy level, clearly outside the healthy
  distribution, connected through such voxels to the mask's larger components, within the shell's reach;
  :func:`lesion_continuation`). Both are the lesion the mask missed: counted as healthy, they made an
  under-segmented lesion look "not distinct", and the tools refused exactly the masks that needed them
  most. Tissue as bright as the lesion and touching it cannot be told from the lesion's continuation by
  intensity: it is set aside too (the intensity tool then moves the boundary into it by at most
  ``band_mm``).
- lesion: the mask's interior (voxels deeper than ``band_mm``), where a rough outline is still surely
  lesion; for a component too small to have an interior, its upper quartile on the lesion's side (its
  brightest quarter for a bright lesion), which partial volume and a too-large outline affect least.

Summaries are robust: median, and the median absolute deviation scaled to a standard deviation
(x 1.4826); the shell around a lesion also holds CSF and sulci, whose dark voxels would otherwise widen the
healthy distribution and drag its mean.

Decisions (see :func:`decide_components`): thresholds are the intensities of voxels holding a fraction of
lesion (partial volume): half the contrast to add a voxel, the boundary where a voxel is half lesion; a
quarter to keep a voxel the annotator drew (the drawn mask is evidence too, and a lesion's texture and
fainter parts lie below its median). The polarity (lesion brighter or darker than healthy tissue:
FLAIR/DWI hyperintense, CT/ADC hypodense) is given or read from the data. ``F = (mu_h - mu_l)² / (s_h² +
s_l²)`` and ``lookalike``, the share of healthy tissue past the midpoint, say whether the lesion is
distinct on the image at all: tissue like the lesion that is not connected to it, a faint lesion's
surroundings (its continuation cannot be told from the healthy tissue's spread), and tissue past the
midpoint but far beyond the lesion's own level (CSF around a dark CT lesion) still count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from lesionseg.refine._checks import pad_box
from lesionseg.refine.morphology import fill_holes, inside_distance_mm, outside_distance_mm

#: fewer interior voxels than this: a component's lesion level comes from its upper quartile
MIN_INTERIOR_VOXELS = 20
#: components at least this fraction of the largest one's volume make the whole mask's model
CORE_FRACTION = 0.25
#: fewer voxels than this in a sample: no model
MIN_SAMPLE_VOXELS = 5
#: a voxel outside the mask becomes lesion past this fraction of the contrast (partial volume 0.5)
ADD_FRACTION = 0.5
#: a voxel of the mask stays lesion past this fraction of the contrast; a component whose own contrast is
#: under this fraction of the whole mask's does not stand out from its surroundings: it is not lesion
KEEP_FRACTION = 0.25
#: a voxel outside the mask continues the lesion only when it also lies farther than this many healthy
#: standard deviations from the healthy level (past 3, a Gaussian holds 0.13 % of its voxels): for a faint
#: lesion none does, and healthy tissue that happens to look like it is never explained away
CONTINUATION_SD = 3.0


def robust_stats(values: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 x median absolute deviation (the standard deviation of a Gaussian sample)."""
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


@dataclass(frozen=True)
class IntensityModel:
    """The whole mask's lesion and healthy distributions.

    Attributes:
        lesion_level, lesion_sd, healthy_level, healthy_sd: robust summaries (image units).
        polarity: ``"bright"`` (lesion above healthy) or ``"dark"``.
        fisher: ``(mu_h - mu_l)² / (s_h² + s_l²)`` with the robust summaries; 0 when the lesion is on the
            wrong side for the given polarity.
        lookalike: the fraction of the healthy sample past the midpoint between the two levels, i.e.
            healthy tissue that looks like lesion (1 when the lesion is on the wrong side).
        lesion_voxels, healthy_voxels: sample sizes.
        enclosed_voxels: voxels the mask encloses (never healthy tissue; the tools re-decide them).
        continuation_voxels: voxels of the healthy shell left out as the lesion's continuation.
    """

    lesion_level: float
    lesion_sd: float
    healthy_level: float
    healthy_sd: float
    polarity: str
    fisher: float
    lookalike: float
    lesion_voxels: int
    healthy_voxels: int
    enclosed_voxels: int = 0
    continuation_voxels: int = 0

    @property
    def sign(self) -> float:
        """+1 for a bright lesion, -1 for a dark one."""
        return 1.0 if self.polarity == "bright" else -1.0

    @property
    def threshold(self) -> float:
        """The midpoint between the lesion and healthy levels."""
        return (self.lesion_level + self.healthy_level) / 2.0

    @property
    def contrast(self) -> float:
        """Lesion level minus healthy level, times :attr:`sign` (> 0 when the lesion is visible)."""
        return self.sign * (self.lesion_level - self.healthy_level)

    def to_dict(self) -> dict:
        """JSON-ready summary (for a revision's provenance)."""
        return {key: (round(value, 6) if isinstance(value, float) else value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class ComponentDecision:
    """What the model says about one connected component of the mask.

    Attributes:
        label: the component's label in the labelled mask.
        healthy_level, lesion_level: the median of its surroundings and its own lesion level.
        is_lesion: whether it stands out from its surroundings (see :func:`decide_components`).
        keep_threshold: a voxel of the mask near it stays lesion past this intensity.
        add_threshold: a voxel outside the mask near it becomes lesion past this intensity.
    """

    label: int
    healthy_level: float
    lesion_level: float
    is_lesion: bool
    keep_threshold: float
    add_threshold: float


def fit_intensity_model(image: np.ndarray, mask: np.ndarray, brain: np.ndarray, spacing: np.ndarray, *,
                        band_mm: float, context_mm: float, polarity: str = "auto") -> IntensityModel | None:
    """The whole mask's model: the interior of its larger components against the healthy shell around them.

    The shell is measured from the larger components with their holes filled, and leaves out what is not
    healthy tissue (:func:`not_healthy`): first fitted on the shell without the mask and what it encloses,
    the model then finds the lesion's continuation, and is fitted again without it.

    Args:
        image: float ``(z, y, x)``.
        mask: bool ``(z, y, x)``, the current lesion mask.
        brain: bool ``(z, y, x)``.
        spacing: mm ``(z, y, x)``.
        band_mm: the uncertain band around the mask's boundary.
        context_mm: thickness of the healthy shell beyond the band.
        polarity: ``"bright"``, ``"dark"`` or ``"auto"``.

    Returns:
        The model, or None when a sample has fewer than :data:`MIN_SAMPLE_VOXELS` voxels.
    """
    core = lesion_core(mask)
    depth = inside_distance_mm(core, spacing)
    # its interior (deeper than the band), or its deeper half when it is too thin to have one
    lesion = core & (depth > min(band_mm, 0.5 * float(depth.max())))
    # the shell starts band_mm past the outline with its holes filled: from a rim, the whole interior is
    # the lesion's side of the boundary, however deep
    filled = fill_holes(mask, spacing)
    outline = fill_holes(core, spacing)
    distance = outside_distance_mm(outline, spacing)
    around = brain & (distance <= band_mm + context_mm)
    shell = around & ~filled & (distance > band_mm)
    if np.count_nonzero(shell) < MIN_SAMPLE_VOXELS or np.count_nonzero(lesion) < MIN_SAMPLE_VOXELS:
        return None
    lesion_values = image[lesion]
    first = _summarise(lesion_values, image[shell], polarity)
    continuation = shell & lesion_continuation(image, outline, around, first)
    healthy = shell & ~continuation
    if np.count_nonzero(healthy) < MIN_SAMPLE_VOXELS:
        return None
    # the side found on the first sample: leaving lesion-like voxels out only moves the healthy level away
    return _summarise(lesion_values, image[healthy], first.polarity,
                      enclosed_voxels=int(np.count_nonzero(filled & ~mask)),
                      continuation_voxels=int(np.count_nonzero(continuation)))


def lesion_core(mask: np.ndarray) -> np.ndarray:
    """The mask's larger components (bool ``(z, y, x)``): at least :data:`CORE_FRACTION` of the largest.

    They are the lesion the model describes; small scattered components (stray strokes, specks) would
    bring the tissue of the whole brain into its samples, and each is judged on its own by
    :func:`decide_components`.
    """
    labels, count = label_components(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    return np.isin(labels, 1 + np.flatnonzero(sizes >= CORE_FRACTION * sizes.max()))


def _summarise(lesion_values: np.ndarray, healthy_values: np.ndarray, polarity: str, *,
               enclosed_voxels: int = 0, continuation_voxels: int = 0) -> IntensityModel:
    """The model of two samples (1D arrays of image values); polarity ``"auto"`` reads the side from them."""
    mu_l, s_l = robust_stats(lesion_values)
    mu_h, s_h = robust_stats(healthy_values)
    side = polarity if polarity != "auto" else ("bright" if mu_l >= mu_h else "dark")
    variance = s_l * s_l + s_h * s_h
    wrong_side = (side == "bright" and mu_l <= mu_h) or (side == "dark" and mu_l >= mu_h)
    fisher = 0.0 if wrong_side or variance <= 0 else (mu_h - mu_l) ** 2 / variance
    sign = 1.0 if side == "bright" else -1.0
    lookalike = 1.0 if wrong_side else float(np.mean(sign * (healthy_values - (mu_l + mu_h) / 2.0) > 0))
    return IntensityModel(mu_l, s_l, mu_h, s_h, side, float(fisher), lookalike, int(lesion_values.size),
                          int(healthy_values.size), enclosed_voxels, continuation_voxels)


def lesion_continuation(image: np.ndarray, outline: np.ndarray, where: np.ndarray,
                        model: IntensityModel) -> np.ndarray:
    """The lesion past a too-small outline: voxels of ``where`` outside ``outline`` that look like the lesion
    and are connected to the outline through voxels that do (face connectivity).

    A voxel looks like the lesion when it lies within ``reach`` of the lesion level, ``reach`` the smaller
    of half the contrast (nearer the lesion level than the healthy level) and the contrast less
    :data:`CONTINUATION_SD` healthy standard deviations (not in the healthy distribution's tail). Both
    sides of the lesion level count, so a brighter interior does and tissue far beyond the lesion (CSF
    around a dark CT lesion) does not. For a faint lesion (contrast under twice :data:`CONTINUATION_SD`
    healthy sds) ``reach`` shrinks, and to nothing under :data:`CONTINUATION_SD`: its surroundings are
    never explained away, so a lesion whose surroundings look like it stays "not distinct". Face
    connectivity, and ``where`` (the brain near the lesion), keep the noise of healthy tissue near the
    lesion's level (grey matter beside a faint lesion) from spreading it through the brain.

    Args:
        image: float ``(z, y, x)``, as the model was measured on.
        outline: bool ``(z, y, x)``, the lesion's outline with its holes filled (:func:`lesion_core`).
        where: bool ``(z, y, x)``, where the continuation may lie (the brain near the outline).
        model: the lesion and healthy levels.

    Returns:
        bool ``(z, y, x)``, outside ``outline``.
    """
    reach = min(0.5 * model.contrast, model.contrast - CONTINUATION_SD * model.healthy_sd)
    if reach <= 0:
        return np.zeros(outline.shape, dtype=bool)
    like = where & (np.abs(image - model.lesion_level) < reach)
    labels, _ = ndimage.label(like | outline)
    touching = np.unique(labels[outline])
    return np.isin(labels, touching[touching > 0]) & ~outline


def not_healthy(image: np.ndarray, mask: np.ndarray, brain: np.ndarray, spacing: np.ndarray,
                model: IntensityModel, *, band_mm: float, context_mm: float) -> np.ndarray:
    """Voxels that no healthy sample may hold (bool ``(z, y, x)``): the mask, what it encloses, and the
    lesion's continuation within ``band_mm + context_mm`` of its larger components (the region a model
    looks at; :func:`lesion_continuation`).

    Args:
        image: float ``(z, y, x)``; mask, brain: bool ``(z, y, x)``; spacing: mm ``(z, y, x)``.
        model: the lesion and healthy levels.
        band_mm, context_mm: as for :func:`fit_intensity_model`.
    """
    outline = fill_holes(lesion_core(mask), spacing)
    around = brain & (outside_distance_mm(outline, spacing) <= band_mm + context_mm)
    return fill_holes(mask, spacing) | lesion_continuation(image, outline, around, model)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of a mask (a lesion outlined slice by slice touches diagonally)."""
    return ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))


def _level(healthy: float, contrast: float, fraction: float, sign: float) -> float:
    """The intensity a voxel holding ``fraction`` of lesion has: healthy level + fraction x contrast."""
    return healthy + sign * fraction * contrast


def decide_components(image: np.ndarray, labels: np.ndarray, count: int, brain: np.ndarray, spacing: np.ndarray,
                      model: IntensityModel, *, band_mm: float, context_mm: float,
                      keep_fraction: float = KEEP_FRACTION) -> list[ComponentDecision]:
    """Decide, for each component of the mask, whether it is lesion and where its boundary lies.

    A component's healthy level is the median of the brain in a shell ``band_mm`` to ``band_mm +
    context_mm`` around it (with its holes filled), without what is not healthy tissue: other components,
    the voxels the mask encloses and the lesion's continuation (:func:`not_healthy`). Its contrast is its
    interior's median minus that level when it has an interior; a small component takes the whole mask's
    contrast. Thresholds are the intensities of a voxel holding a fraction of lesion (partial volume):
    :data:`ADD_FRACTION` (one half: the boundary where the lesion fraction is 0.5) to add a voxel,
    :data:`KEEP_FRACTION` (one quarter) to keep a voxel the annotator drew: the drawn mask is evidence
    too, and a lesion's own texture and fainter parts lie below its median.

    A component is lesion when its level (interior median, or upper quartile on the lesion's side for a
    small one) stands out from its surroundings by at least :data:`KEEP_FRACTION` of the whole mask's
    contrast; a small component must also pass the whole mask's keep threshold, and its thresholds are the
    stricter of its local ones and the whole mask's (a speck next to a sulcus sees CSF around it).
    ``keep_fraction`` replaces :data:`KEEP_FRACTION` for the keep thresholds (0.5 judges the drawn voxels
    by the image alone).
    """
    mask = labels > 0
    sign = model.sign
    aside = not_healthy(image, mask, brain, spacing, model, band_mm=band_mm, context_mm=context_mm)
    decisions = []
    slices = ndimage.find_objects(labels)
    global_keep = _level(model.healthy_level, model.contrast, keep_fraction, sign)
    global_add = _level(model.healthy_level, model.contrast, ADD_FRACTION, sign)
    stricter = max if sign > 0 else min
    for label in range(1, count + 1):
        if slices[label - 1] is None:
            continue
        box = pad_box(slices[label - 1], band_mm + context_mm, spacing, labels.shape)
        own = labels[box] == label
        distance = outside_distance_mm(fill_holes(own, spacing), spacing)
        shell = brain[box] & ~aside[box] & (distance > band_mm) & (distance <= band_mm + context_mm)
        values = image[box]
        healthy = float(np.median(values[shell])) if np.count_nonzero(shell) >= MIN_SAMPLE_VOXELS \
            else model.healthy_level
        interior = own & (inside_distance_mm(own, spacing) > band_mm)
        if np.count_nonzero(interior) >= MIN_INTERIOR_VOXELS:
            level = float(np.median(values[interior]))
            contrast = sign * (level - healthy)
            keep = _level(healthy, contrast, keep_fraction, sign)
            add = _level(healthy, contrast, ADD_FRACTION, sign)
            is_lesion = contrast >= KEEP_FRACTION * model.contrast
        else:
            level = float(np.quantile(values[own], 0.75 if sign > 0 else 0.25))
            keep = stricter(_level(healthy, model.contrast, keep_fraction, sign), global_keep)
            add = stricter(_level(healthy, model.contrast, ADD_FRACTION, sign), global_add)
            is_lesion = (sign * (level - healthy) >= KEEP_FRACTION * model.contrast
                         and sign * (level - _level(model.healthy_level, model.contrast, KEEP_FRACTION, sign)) > 0)
        decisions.append(ComponentDecision(label, healthy, level, bool(is_lesion), keep, add))
    return decisions
