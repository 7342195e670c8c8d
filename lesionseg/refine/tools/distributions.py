"""The lesion and healthy-tissue intensities that the intensity and grow tools decide with.

They are the two distributions of the Fisher contrast (:mod:`lesionseg.difficulty.contrast`), measured in
3D around the current mask instead of on one prepared slice, and per lesion:

- healthy: the brain between ``band_mm`` and ``band_mm + context_mm`` from the mask (around one
  component of the mask, for that component's model). The Fisher contrast of the difficulty table takes
  the whole hemisphere of a slice; the tissue around a lesion is what its boundary separates it from,
  and it follows slow intensity changes (MRI bias field) that a hemisphere-wide average does not.
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
distinct on the image at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from lesionseg.refine._checks import pad_box
from lesionseg.refine.morphology import inside_distance_mm, outside_distance_mm

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
    # The lesion and its surroundings: the larger components (at least a quarter of the largest). Small
    # scattered components (stray strokes, specks) would bring the tissue of the whole brain into the
    # healthy sample; each is judged on its own by decide_components.
    labels, count = label_components(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    core = np.isin(labels, 1 + np.flatnonzero(sizes >= CORE_FRACTION * sizes.max()))
    depth = inside_distance_mm(core, spacing)
    # its interior (deeper than the band), or its deeper half when it is too thin to have one
    lesion = core & (depth > min(band_mm, 0.5 * float(depth.max())))
    distance = outside_distance_mm(core, spacing)
    healthy = brain & ~mask & (distance > band_mm) & (distance <= band_mm + context_mm)
    if np.count_nonzero(healthy) < MIN_SAMPLE_VOXELS or np.count_nonzero(lesion) < MIN_SAMPLE_VOXELS:
        return None
    healthy_values = image[healthy]
    mu_l, s_l = robust_stats(image[lesion])
    mu_h, s_h = robust_stats(healthy_values)
    side = polarity if polarity != "auto" else ("bright" if mu_l >= mu_h else "dark")
    variance = s_l * s_l + s_h * s_h
    wrong_side = (side == "bright" and mu_l <= mu_h) or (side == "dark" and mu_l >= mu_h)
    fisher = 0.0 if wrong_side or variance <= 0 else (mu_h - mu_l) ** 2 / variance
    sign = 1.0 if side == "bright" else -1.0
    lookalike = 1.0 if wrong_side else float(np.mean(sign * (healthy_values - (mu_l + mu_h) / 2.0) > 0))
    return IntensityModel(mu_l, s_l, mu_h, s_h, side, float(fisher), lookalike, int(np.count_nonzero(lesion)),
                          int(healthy_values.size))


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
    context_mm`` around it (other components excluded). Its contrast is its interior's median minus that
    level when it has an interior; a small component takes the whole mask's contrast. Thresholds are the
    intensities of a voxel holding a fraction of lesion (partial volume): :data:`ADD_FRACTION` (one
    half: the boundary where the lesion fraction is 0.5) to add a voxel, :data:`KEEP_FRACTION` (one
    quarter) to keep a voxel the annotator drew: the drawn mask is evidence too, and a lesion's own
    texture and fainter parts lie below its median.

    A component is lesion when its level (interior median, or upper quartile on the lesion's side for a
    small one) stands out from its surroundings by at least :data:`KEEP_FRACTION` of the whole mask's
    contrast; a small component must also pass the whole mask's keep threshold, and its thresholds are the
    stricter of its local ones and the whole mask's (a speck next to a sulcus sees CSF around it).
    ``keep_fraction`` replaces :data:`KEEP_FRACTION` for the keep thresholds (0.5 judges the drawn voxels
    by the image alone).
    """
    mask = labels > 0
    sign = model.sign
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
        distance = outside_distance_mm(own, spacing)
        shell = brain[box] & ~mask[box] & (distance > band_mm) & (distance <= band_mm + context_mm)
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
