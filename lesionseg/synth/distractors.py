"""Lesion look-alikes that are NOT acute lesions: white-matter hyperintensities and an old infarct.

With the ``distractors`` case option a case gets, from its own random stream:

- 2 to 8 white-matter hyperintensity (WMH) look-alikes: periventricular caps (flat ellipsoids, semi-axes
  3-6 x 3-6 x 1.5-3 mm, 0.5-4 mm outside a lateral ventricle, more than 5 mm
  from the midline) and deep punctate spots (radius 1.5-3.5 mm,
  more than 3 mm deep in white matter, more than 6 mm from the ventricles), clipped to white matter and
  deep nuclei; mildly bright on FLAIR (+10 % to +40 % over the tissue);
- in 35 % of cases an old chronic infarct: a blob-union cavity of nominal radius 5-12 mm in a territory
  (tissue replaced by CSF, so it is CSF-dark on FLAIR, T1, DWI and CT and bright on ADC), wrapped in a
  gliotic rim 1-2.5 mm thick, bright on FLAIR (+20 % to +50 %).

They keep at least 2 mm (plus their own size) away from the acute lesions, and rendering leaves them out
of any voxel whose centre is in an acute lesion, so the lesion mask never covers one. They are rendered
only in MRI channels (the old infarct's cavity also on CT, as CSF). Their truth is the label image
``SynthCase.distractor_labels``: 1 WMH look-alike, 2 old-infarct cavity, 3 its rim (voxel centres).
The tissue labels still show the healthy anatomy under them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lesionseg.synth.geometry import Affine, Grid
from lesionseg.synth.lesions import (
    SIDES, TERRITORIES, LesionSpec, TerritoryParams, random_rotation, lesion_phi, place_lesion,
)
from lesionseg.synth.phantom import Anatomy, Structures, evaluate_structures, fraction, ramp_width

OLD_INFARCT_PROBABILITY = 0.35
_SEARCH_BOX_MM = ((-60.0, -75.0, -35.0), (60.0, 75.0, 55.0))  # head frame, holds the deep white matter
# Relative change of the replaced tissue per unit of drawn gain, per modality: (WMH, old-infarct rim).
RESPONSE: dict[str, tuple[float, float]] = {
    "flair": (1.0, 1.0), "t1": (-0.4, -0.3), "dwi": (0.3, 0.2), "adc": (0.3, 0.3), "ct": (0.0, 0.0),
}


@dataclass
class DistractorSpec:
    """One look-alike (head frame, mm).

    Attributes:
        kind: ``"cap"``, ``"punctate"`` (WMH look-alikes) or ``"old_infarct"``.
        centre: (3,) centre; axes: (3,) semi-axes; rotation: (3, 3) columns = ellipsoid axes.
        gain: FLAIR relative brightening of the WMH, or of the old infarct's rim.
        rim_mm: Rim thickness (old infarct only).
        cavity: The old infarct's cavity as a lesion shape (old infarct only).
    """

    kind: str
    centre: np.ndarray
    axes: np.ndarray
    rotation: np.ndarray
    gain: float
    rim_mm: float = 0.0
    cavity: LesionSpec | None = None

    def head_box(self) -> np.ndarray:
        """Corners (8, 3) of a head-frame box that holds it (with its rim)."""
        if self.cavity is not None:
            corners = self.cavity.head_box()
            middle = corners.mean(axis=0)
            return middle + (corners - middle) + np.sign(corners - middle) * self.rim_mm
        reach = float(self.axes.max()) + 1.0
        return np.array([self.centre + reach * np.array([x, y, z]) for x in (-1, 1) for y in (-1, 1)
                         for z in (-1, 1)])

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "centre_mm": [float(v) for v in self.centre], "gain": self.gain}
        if self.cavity is None:
            out["semi_axes_mm"] = [float(v) for v in self.axes]
        else:
            out.update(side=self.cavity.side, territory=self.cavity.territory, radius_mm=self.cavity.radius_mm,
                       rim_mm=self.rim_mm)
        return out


def _ellipsoid(spec: DistractorSpec, qx, qy, qz) -> np.ndarray:
    d = np.stack([qx - spec.centre[0], qy - spec.centre[1], qz - spec.centre[2]], axis=-1)
    local = d @ spec.rotation  # coordinates along the ellipsoid's axes
    rho = np.sqrt(((local / spec.axes) ** 2).sum(axis=-1))
    r = np.sqrt((d * d).sum(axis=-1))
    return (r / np.maximum(rho, 1e-4) - r).astype(np.float32)


def _acute_phi(lesions, tp, qx, qy, qz, s: Structures) -> np.ndarray:
    """The largest acute-lesion implicit function at the points (-100 without lesions)."""
    out = np.full(np.shape(qx), -100.0, np.float32)
    for spec in lesions:
        out = np.maximum(out, lesion_phi(spec, tp, qx, qy, qz, s.xd, s.yd, s.zd, s.tissue, s.deep))
    return out


def draw_distractors(rng: np.random.Generator, anatomy: Anatomy, tp: TerritoryParams,
                     lesions: list[LesionSpec]) -> list[DistractorSpec]:
    """Draw the look-alikes of one case (see the module docstring).

    Args:
        rng: The case's distractor generator (its own stream; consumed in a fixed order).
        anatomy: The case's head.
        tp: The case's territory boundaries.
        lesions: The acute lesions, kept clear of.

    Returns:
        The :class:`DistractorSpec` list (WMH look-alikes first, then the old infarct if any).
    """
    low, high = (np.array(c) for c in _SEARCH_BOX_MM)
    points = rng.uniform(low, high, size=(8000, 3))
    qx, qy, qz = (points[:, i].astype(np.float32) for i in range(3))
    s = evaluate_structures(anatomy, qx, qy, qz, anatomy.fields_at_points(qx, qy, qz))
    acute = _acute_phi(lesions, tp, qx, qy, qz, s)
    # Caps hug the lateral ventricles (not the third ventricle or the temporal horns' floor).
    pools = {"cap": (s.ventricles > -4.0) & (s.ventricles < -0.5) & (s.deep > 0.5) & (np.abs(qx) > 5.0)
             & (qz > -8.0),
             "punctate": (s.white > 3.0) & (s.ventricles < -6.0)}
    out = []
    for _ in range(int(rng.integers(2, 9))):
        kind = "cap" if rng.uniform() < 0.5 else "punctate"
        if kind == "cap":
            axes = np.array([rng.uniform(3.0, 6.0), rng.uniform(3.0, 6.0), rng.uniform(1.5, 3.0)])
        else:
            axes = rng.uniform(1.5, 3.5) * rng.uniform(0.8, 1.2, size=3)
        rotation, gain = random_rotation(rng), float(rng.uniform(0.1, 0.4))
        pool = np.flatnonzero(pools[kind] & (acute < -(axes.max() + 2.0)))
        if pool.size:
            out.append(DistractorSpec(kind, points[pool[int(rng.integers(pool.size))]], axes, rotation, gain))
    if rng.uniform() < OLD_INFARCT_PROBABILITY:
        for _attempt in range(5):
            side = str(rng.choice(SIDES))
            territory = str(rng.choice(TERRITORIES, p=(0.2, 0.55, 0.25)))
            radius = float(np.exp(rng.uniform(np.log(5.0), np.log(12.0))))
            rim_mm, gain = float(rng.uniform(1.0, 2.5)), float(rng.uniform(0.2, 0.5))
            cavity = place_lesion(rng, anatomy, tp, side, territory, radius)
            if cavity is None:
                continue
            corners = cavity.head_box()
            samples = rng.uniform(corners.min(axis=0), corners.max(axis=0), size=(3000, 3))
            sx, sy, sz = (samples[:, i].astype(np.float32) for i in range(3))
            ss = evaluate_structures(anatomy, sx, sy, sz, anatomy.fields_at_points(sx, sy, sz))
            inside = lesion_phi(cavity, tp, sx, sy, sz, ss.xd, ss.yd, ss.zd, ss.tissue) > -rim_mm
            if not np.any(_acute_phi(lesions, tp, sx, sy, sz, ss)[inside] > -2.0):
                out.append(DistractorSpec("old_infarct", cavity.centres[0], cavity.axes[0], cavity.rotations[0],
                                          gain, rim_mm, cavity))
                break
    return out


@dataclass
class DistractorMaps:
    """The look-alikes sampled on a grid, arrays (z, y, x).

    Attributes:
        wmh: WMH look-alike fraction times its FLAIR gain (float32; gains add where two overlap).
        cavity: Old-infarct cavity fraction (float32).
        rim: Rim fraction times its FLAIR gain (float32).
        labels: Truth labels at voxel centres (uint8): 1 WMH look-alike, 2 cavity, 3 rim.
    """

    wmh: np.ndarray
    cavity: np.ndarray
    rim: np.ndarray
    labels: np.ndarray

    def for_channel(self, modality: str, randomised: bool, lesion_contrast: float) -> "ChannelDistractors":
        """What one channel adds (see :func:`channel_response`)."""
        return ChannelDistractors(self, *channel_response(modality, randomised, lesion_contrast))


@dataclass
class ChannelDistractors:
    """The look-alikes as one channel shows them; :meth:`apply` is called by ``modalities.render``."""

    maps: DistractorMaps
    wmh_response: float  # relative change of the replaced tissue per unit of drawn WMH gain
    rim_response: float  # the same for the old infarct's rim

    def apply(self, image: np.ndarray, params, fractions: dict[int, np.ndarray]) -> None:
        """Add the look-alikes to a noise-free channel image in place (before bias and noise).

        The cavity replaces tissue by the channel's CSF value; WMH and rim change the replaced tissue's
        value by ``response x gain`` (relative).
        """
        m = self.maps
        mask = (m.wmh > 0) | (m.cavity > 0) | (m.rim > 0)
        if not np.any(mask):
            return
        v = params.tissue_values
        f4, f5, f7 = fractions[4][mask], fractions[5][mask], fractions[7][mask]
        tissue = f4 + f5 + f7
        replaced = (v[4] * f4 + v[5] * f5 + v[7] * f7) / np.maximum(tissue, 1e-6)
        change = np.minimum(m.cavity[mask], tissue) * (v[3] - replaced)
        change += replaced * (self.wmh_response * m.wmh[mask] + self.rim_response * m.rim[mask])
        image[mask] += change.astype(np.float32)


def sample_distractors(grid: Grid, index_to_head: Affine, head_to_physical: Affine, structures: Structures,
                       specs: list[DistractorSpec], tp: TerritoryParams, lesion_fraction: np.ndarray,
                       instances: np.ndarray) -> DistractorMaps:
    """Rasterise the look-alikes on a grid, in small boxes, outside every acute-lesion voxel.

    Args:
        grid: The grid.
        index_to_head: Voxel index -> head frame (mm) for this acquisition.
        head_to_physical: Head frame -> physical (mm).
        structures: The phantom's structures on the grid.
        specs: The drawn look-alikes.
        tp: The territory boundaries.
        lesion_fraction: The acute lesions' fraction (z, y, x); the look-alikes fill only the rest.
        instances: Acute lesion labels at voxel centres (z, y, x); those voxels get no look-alike.

    Returns:
        The :class:`DistractorMaps`.
    """
    shape = grid.shape_zyx
    wmh, cavity, rim = (np.zeros(shape, np.float32) for _ in range(3))
    labels = np.zeros(shape, np.uint8)
    floor = 0.25 * min(grid.spacing_mm)
    for spec in specs:
        box = grid.index_box(head_to_physical.apply(spec.head_box()))
        if box is None:
            continue
        bx, by, bz = grid.coordinates(index_to_head, box)
        tissue = np.minimum(structures.parenchyma[box], -structures.ventricles[box])  # Structures.tissue
        deep = np.minimum(structures.white[box], -structures.ventricles[box])  # Structures.deep
        free = (1.0 - lesion_fraction[box]) * (instances[box] == 0)
        if spec.cavity is None:
            phi = np.minimum(_ellipsoid(spec, bx, by, bz), deep)
            frac = fraction(phi, ramp_width(phi, floor)) * free
            wmh[box] += spec.gain * frac
            labels[box] = np.where((phi > 0) & (free > 0), np.uint8(1), labels[box])
            continue
        phi = lesion_phi(spec.cavity, tp, bx, by, bz, structures.xd[box], structures.yd[box], structures.zd[box],
                         tissue)
        outer = np.minimum(phi + spec.rim_mm, tissue)
        inner_frac = fraction(phi, ramp_width(phi, floor)) * free
        outer_frac = fraction(outer, ramp_width(outer, floor)) * free
        cavity[box] = np.maximum(cavity[box], inner_frac)
        rim[box] += spec.gain * np.maximum(outer_frac - inner_frac, 0.0)
        labels[box] = np.where((outer > 0) & (free > 0), np.uint8(3), labels[box])
        labels[box] = np.where((phi > 0) & (free > 0), np.uint8(2), labels[box])
    return DistractorMaps(wmh, cavity, rim, labels)


def channel_response(modality: str, randomised: bool, lesion_contrast: float) -> tuple[float, float]:
    """The (WMH, rim) relative change per unit of drawn gain for one channel.

    From ``RESPONSE`` (FLAIR 1, T1 negative, DWI and ADC mild, CT 0); on a channel with random tissue
    contrast, the look-alikes follow the lesion's polarity with FLAIR's size.
    """
    if randomised and modality != "ct":
        sign = 1.0 if lesion_contrast >= 0 else -1.0
        return sign * RESPONSE["flair"][0], sign * RESPONSE["flair"][1]
    return RESPONSE.get(modality, (0.0, 0.0))
