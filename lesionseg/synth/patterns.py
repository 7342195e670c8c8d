"""Lesion patterns of the phantom: how many lesions a case has, where, and how large.

Patterns (the ``lesion_pattern`` case option):

- ``"default"``: :func:`~lesionseg.synth.lesions.draw_lesions`, 1 to 5 blob-union lesions of nominal
  radius 2-11 mm (the first at least 4 mm) in one hemisphere; unchanged since the first cohorts.
- ``"territorial"``: one large infarct filling a drawn part of one arterial territory (MCA 60 %, PCA 25 %,
  ACA 15 %), total volume drawn log-uniformly in 8-120 mL and capped at 85 % of the territory's tissue
  (so ACA and PCA infarcts stay below their territory's size). It is a large blob union clipped by the
  territory: its rough edge runs a few mm inside the territory's boundary (so the lesion stays inside it)
  and it follows the cortex, sulci and ventricles like any lesion. Its size is found by bisection on the
  blob scale against a Monte-Carlo estimate of the clipped volume, so the clipping cannot make it small.
  Plus 0 to 2 small satellites (radius 2-5 mm) in the same hemisphere.
- ``"embolic"``: a shower of 4 to 15 small lesions (radius 1.5-5 mm, the first 3-5 mm) over several
  territories of one hemisphere, or of both hemispheres in 30 % of cases.
- ``"lacunar"``: 1 to 3 small deep lesions (radius 2-7 mm, the first at least 3 mm) confined to white
  matter and deep grey nuclei (never cortex, CSF or ventricles), mostly in the MCA territory.
- ``"mixed"``: each case draws one of the four above with probabilities ``MIXED_PROBABILITY``, from its
  own random stream, so a case that draws ``"default"`` is the same as with ``lesion_pattern="default"``.

Per-lesion contrast factors vary more in the new patterns (0.6-1.4 for satellites, emboli and lacunes,
0.85-1.2 for a territorial infarct) than in the default one (0.8-1.2). A territorial infarct's
``radius_mm`` is the equivalent-sphere radius of its clipped volume. Everything is drawn in head-frame millimetres; nothing depends on the grid.
"""

from __future__ import annotations

import numpy as np

from lesionseg.synth.fields import smooth_noise
from lesionseg.synth.lesions import (
    SIDES, TERRITORIES, LesionSpec, TerritoryParams, blob_shape, blob_union, draw_lesions, place_lesion,
    side_phi, territory_phi,
)
from lesionseg.synth.phantom import BRAIN_BOX_MM, Anatomy, evaluate_structures

PATTERNS: tuple[str, ...] = ("default", "territorial", "embolic", "lacunar", "mixed")
MIXED_PROBABILITY: dict[str, float] = {"default": 0.4, "territorial": 0.25, "embolic": 0.2, "lacunar": 0.15}
TERRITORIAL_VOLUME_ML = (8.0, 120.0)
_TERRITORIAL_CAP = 0.85  # at most this fraction of the territory's tissue
_TERRITORIAL_TERRITORY_P = (0.15, 0.6, 0.25)  # ACA, MCA, PCA
_SCATTER_TERRITORY_P = (0.25, 0.45, 0.30)
_LACUNAR_TERRITORY_P = (0.1, 0.75, 0.15)
_VOLUME_POINTS = 80000  # Monte-Carlo points over one hemisphere's box (about 27 mm³ each)


def choose_pattern(rng: np.random.Generator, pattern: str) -> str:
    """The pattern a case uses: ``pattern`` itself, or for ``"mixed"`` one drawn from ``rng``."""
    if pattern != "mixed":
        return pattern
    names = tuple(MIXED_PROBABILITY)
    return str(rng.choice(names, p=[MIXED_PROBABILITY[n] for n in names]))


def draw_pattern(rng: np.random.Generator, pattern: str, anatomy: Anatomy,
                 tp: TerritoryParams) -> list[LesionSpec]:
    """Draw the lesions of one case for a (non-mixed) pattern.

    Args:
        rng: The case's lesion generator (consumed in a fixed order).
        pattern: One of ``PATTERNS`` except ``"mixed"`` (see :func:`choose_pattern`).
        anatomy: The case's head.
        tp: The case's territory boundaries.

    Returns:
        The lesions, the largest first for ``"territorial"``.
    """
    if pattern == "default":
        return draw_lesions(rng, anatomy, tp)
    if pattern == "territorial":
        return draw_territorial(rng, anatomy, tp)
    if pattern == "embolic":
        return _draw_scattered(rng, anatomy, tp, count=int(rng.integers(4, 16)), both_p=0.3, main_side_p=0.6,
                               radius_mm=(1.5, 5.0), first_radius_mm=(3.0, 5.0), kind="focal",
                               territory_p=_SCATTER_TERRITORY_P)
    if pattern == "lacunar":
        return _draw_scattered(rng, anatomy, tp, count=1 + int(rng.choice(3, p=(0.5, 0.3, 0.2))), both_p=1.0,
                               main_side_p=0.7, radius_mm=(2.0, 7.0), first_radius_mm=(3.0, 7.0), kind="lacunar",
                               territory_p=_LACUNAR_TERRITORY_P)
    raise ValueError(f"unknown lesion pattern {pattern!r}")


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _small_min_volume(radius: float) -> float:
    """Smallest kept volume (mm³) of a small lesion: 50 mm³, or a quarter of its nominal sphere."""
    return min(50.0, 0.25 * 4.0 / 3.0 * np.pi * radius ** 3)


def _draw_scattered(rng, anatomy, tp, count: int, both_p: float, main_side_p: float, radius_mm, first_radius_mm,
                    kind: str, territory_p) -> list[LesionSpec]:
    """Several small lesions over territories of one hemisphere (both with probability ``both_p``)."""
    main = str(rng.choice(SIDES))
    other = "right" if main == "left" else "left"
    both = bool(rng.uniform() < both_p)
    lesions = []
    for number in range(count):
        side = other if both and rng.uniform() >= main_side_p else main
        territory = str(rng.choice(TERRITORIES, p=territory_p))
        radius = _log_uniform(rng, *(first_radius_mm if number == 0 else radius_mm))
        spec = place_lesion(rng, anatomy, tp, side, territory, radius, kind=kind,
                            min_volume_mm3=_small_min_volume(radius), contrast_range=(0.6, 1.4),
                            roughness=0.15 if kind == "lacunar" else 0.3)
        if spec is not None:
            lesions.append(spec)
    return lesions


def hemisphere_box(side: str) -> np.ndarray:
    """Head-frame box (2, 3) of one hemisphere's brain (low and high corners, mm)."""
    low, high = (np.array(c, np.float64) for c in BRAIN_BOX_MM)
    if side == "left":
        low[0] = 0.0
    else:
        high[0] = 0.0
    return np.stack([low, high])


def draw_territorial(rng: np.random.Generator, anatomy: Anatomy, tp: TerritoryParams) -> list[LesionSpec]:
    """One large territorial infarct (8-120 mL, capped by its territory) and 0 to 2 small satellites."""
    side = str(rng.choice(SIDES))
    territory = str(rng.choice(TERRITORIES, p=_TERRITORIAL_TERRITORY_P))
    target_mm3 = 1000.0 * _log_uniform(rng, *TERRITORIAL_VOLUME_ML)
    lesions = [territorial_infarct(rng, anatomy, tp, side, territory, target_mm3)]
    for _ in range(int(rng.choice(3, p=(0.4, 0.35, 0.25)))):
        radius = _log_uniform(rng, 2.0, 5.0)
        satellite = place_lesion(rng, anatomy, tp, side, str(rng.choice(TERRITORIES, p=_SCATTER_TERRITORY_P)),
                                 radius, min_volume_mm3=_small_min_volume(radius), contrast_range=(0.6, 1.4))
        if satellite is not None:
            lesions.append(satellite)
    return lesions


def territorial_infarct(rng: np.random.Generator, anatomy: Anatomy, tp: TerritoryParams, side: str, territory: str,
                        target_mm3: float, centre: np.ndarray | None = None) -> LesionSpec:
    """One blob-union region of about ``target_mm3`` (capped by its territory) filling part of a territory.

    Args:
        rng: The lesions' generator (consumed in a fixed order).
        anatomy: The case's head.
        tp: The case's territory boundaries.
        side: ``"left"`` or ``"right"``.
        territory: One of ``TERRITORIES``.
        target_mm3: Wanted volume after clipping (mm³); at most 85 % of the territory's tissue is used.
        centre: Head-frame centre (mm) of the blobs; None draws one deep inside the territory's tissue.

    Returns:
        The ``"territorial"`` :class:`LesionSpec`; its ``radius_mm`` is the equivalent-sphere radius of the
        clipped volume reached.
    """
    box = hemisphere_box(side)
    points = rng.uniform(box[0], box[1], size=(_VOLUME_POINTS, 3))
    point_mm3 = float(np.prod(box[1] - box[0])) / _VOLUME_POINTS
    qx, qy, qz = (points[:, i].astype(np.float32) for i in range(3))
    s = evaluate_structures(anatomy, qx, qy, qz, anatomy.fields_at_points(qx, qy, qz))
    territory_inside = territory_phi(tp, territory, s.xd, s.yd, s.zd)
    inside = np.minimum(territory_inside, side_phi(side, qx))
    allowed = (inside > 0) & (s.tissue > 0)
    target_mm3 = min(target_mm3, _TERRITORIAL_CAP * np.count_nonzero(allowed) * point_mm3)
    if centre is None:
        deep_inside = np.flatnonzero(allowed & (inside > 8.0))
        pool = deep_inside if deep_inside.size else np.flatnonzero(allowed)
        centre = points[pool[int(rng.integers(pool.size))]]
    unit_centres, unit_axes, rotations = blob_shape(rng, np.zeros(3), 1.0)
    roughness_mm = float(rng.uniform(1.5, 3.0))
    extent = tuple((box[1] - box[0]) / 2.0 + 8.0)
    middle = tuple((box[1] + box[0]) / 2.0)
    rough = smooth_noise(rng, extent, 2.0, float(rng.uniform(3.0, 6.0)), middle)
    texture = smooth_noise(rng, extent, 4.0, 8.0, middle)
    spec = LesionSpec(side, territory, 0.0, centre + unit_centres, unit_axes, rotations, roughness_mm, rough,
                      texture, float(rng.uniform(0.85, 1.2)), "territorial", roughness_mm, box)

    # Bisection on the blob scale: the clipped volume grows with it (Monte-Carlo estimate on the points).
    px, py, pz = qx[allowed], qy[allowed], qz[allowed]
    t_in = territory_inside[allowed]
    rough_at = roughness_mm * rough.sample_points(px, py, pz)

    def volume(scale: float) -> float:
        spec.centres, spec.axes = centre + scale * unit_centres, scale * unit_axes
        core = np.minimum(blob_union(spec, px, py, pz), t_in - roughness_mm)
        return np.count_nonzero(np.minimum(core + rough_at, t_in) > 0) * point_mm3

    low, high = np.log(2.0), np.log(250.0)
    for _ in range(28):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if volume(float(np.exp(mid))) < target_mm3 else (low, mid)
    achieved = volume(float(np.exp(high)))
    spec.radius_mm = float((3.0 * achieved / (4.0 * np.pi)) ** (1.0 / 3.0))
    return spec
