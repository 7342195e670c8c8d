"""Perfusion cases of the phantom: tissue fate (ischaemic core inside a hypoperfused region) and the maps.

Tissue fate is drawn FIRST, as geometry, and the maps are made from it afterwards, so that the clinical
threshold rule (core = relative CBF < 30 %, penumbra = Tmax > 6 s minus core) is an imperfect baseline and
not the definition of the truth:

- the hypoperfused region is a territorial region of 20-150 mL in one arterial territory (MCA 70 %, ACA and
  PCA 15 % each), drawn with :func:`~lesionseg.synth.patterns.territorial_infarct`;
- the core is a second territorial region around the same centre, 10-60 % of that volume; the core wins
  where the two overlap, the rest of the hypoperfused region is penumbra. Both are clipped to grey and white
  matter and deep nuclei (never CSF), like every lesion of the phantom.

Fate labels (``FATE_LABELS``): 0 healthy (oligaemic tissue included), 1 core, 2 penumbra.

Maps (``PERFUSION_MAPS`` and their units, ``PERFUSION_UNITS``): Tmax (s), CBF (mL/100 g/min), CBV (mL/100 g)
and MTT (s, from the central volume theorem MTT = 60 CBV / CBF). Healthy values per case are drawn from the
ranges reported for CT and MR perfusion of adults (grey matter CBF 45-65, white matter 18-26; grey CBV
3.5-5, white 1.6-2.4; Tmax about 0-2 s), mixed by partial volume from the tissue fractions; CSF and
ventricles have almost no blood (CBF 1-4, CBV 0.1-0.4) and every map is 0 outside the intracranial mask, as
perfusion software writes them. Inside the hypoperfused region the values depend on the depth (mm) from
the region's edge and on smooth random fields, with the overlap of real perfusion:

- core: relative CBF (to the healthy tissue value) from about 0.28 at its edge to 0.12 in its depth, spread
  0.06 by a smooth field, so the rim often sits above 30 %; relative CBV 0.75 down to 0.4; Tmax 10-13 s;
- penumbra: relative CBF from 0.8 at its outer edge to 0.45 near the core; CBV preserved (1.05 +- 0.15);
  Tmax from 6.5 s at its edge to 10 s in depth, spread 1.2 s, so part of its rim is under 6 s;
- oligaemia: a shell of 8-16 mm of healthy fate around the region with Tmax falling from about 5.5 s to
  normal and CBF reduced by up to 15 %, so that part of it is over 6 s.

Then every map gets voxel noise (CBF and CBV multiplicative 12 %, Tmax additive 0.7 s). Smooth fields are
lattices in head-frame mm (:func:`draw_fields`); depths are Euclidean distance transforms in mm on the
image grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from lesionseg.synth.fields import LatticeField, smooth_noise
from lesionseg.synth.lesions import SIDES, TERRITORIES, LesionSpec, TerritoryParams
from lesionseg.synth.patterns import territorial_infarct
from lesionseg.synth.phantom import BRAIN_BOX_MM, Anatomy

#: The perfusion maps the phantom makes, in the order of their stream codes.
PERFUSION_MAPS: tuple[str, ...] = ("tmax", "cbf", "cbv", "mtt")
#: Units written in each map's JSON sidecar (``"Units"``, BIDS style).
PERFUSION_UNITS: dict[str, str] = {"tmax": "s", "cbf": "mL/100g/min", "cbv": "mL/100g", "mtt": "s"}
#: Tissue-fate label table of a perfusion case's mask: value -> (name, RGB colour in 0..1).
FATE_LABELS: dict[int, tuple[str, tuple[float, float, float]]] = {
    1: ("core", (0.85, 0.2, 0.18)),
    2: ("penumbra", (0.95, 0.85, 0.2)),
}


def fate_label_table():
    """:data:`FATE_LABELS` as a :class:`lesionseg.data.label_table.LabelTable` (written beside a two-class mask)."""
    from lesionseg.data.label_table import LabelTable

    return LabelTable.from_names({v: n for v, (n, _) in FATE_LABELS.items()},
                                 {v: c for v, (_, c) in FATE_LABELS.items()})


HYPOPERFUSED_VOLUME_ML = (20.0, 150.0)
CORE_FRACTION = (0.1, 0.6)
_TERRITORY_P = (0.15, 0.7, 0.15)  # ACA, MCA, PCA
_FIELD_STEP_MM = 4.0


def draw_tissue_fate(rng: np.random.Generator, anatomy: Anatomy, tp: TerritoryParams) -> list[LesionSpec]:
    """Draw the hypoperfused region and the core inside it (the ``"perfusion"`` lesion pattern).

    Args:
        rng: The case's lesion generator (consumed in a fixed order).
        anatomy: The case's head.
        tp: The case's territory boundaries.

    Returns:
        ``[hypoperfused, core]``: two ``"territorial"`` specs in one territory of one hemisphere; rasterised in
        this order, the core wins where they overlap (instance 2 = core, instance 1 = penumbra).
    """
    side = str(rng.choice(SIDES))
    territory = str(rng.choice(TERRITORIES, p=_TERRITORY_P))
    target = 1000.0 * float(np.exp(rng.uniform(*np.log(HYPOPERFUSED_VOLUME_ML))))
    region = territorial_infarct(rng, anatomy, tp, side, territory, target)
    region_mm3 = 4.0 / 3.0 * np.pi * region.radius_mm ** 3
    core_mm3 = float(rng.uniform(*CORE_FRACTION)) * region_mm3
    core = territorial_infarct(rng, anatomy, tp, side, territory, core_mm3, centre=region.centres[0].copy())
    return [region, core]


def fate_from_instances(instances: np.ndarray) -> np.ndarray:
    """Fate labels (uint8: 0 healthy, 1 core, 2 penumbra) from the instances of ``[region, core]``."""
    fate = np.zeros(instances.shape, np.uint8)
    fate[instances == 1] = 2
    fate[instances == 2] = 1
    return fate


@dataclass
class PerfusionParams:
    """Drawn healthy values and hypoperfusion shape of one perfusion case (units of ``PERFUSION_UNITS``)."""

    cbf: dict[int, float]  # tissue label -> healthy CBF
    cbv: dict[int, float]  # tissue label -> healthy CBV
    tmax_healthy: float  # mean Tmax of healthy tissue (s)
    penumbra_depth_mm: float  # depth over which penumbra goes from its edge values to its deep values
    core_depth_mm: float
    oligaemia_mm: float  # width of the oligaemic shell around the hypoperfused region
    cbf_noise: float = 0.12  # multiplicative
    cbv_noise: float = 0.12
    tmax_noise_s: float = 0.7

    def to_dict(self) -> dict:
        out = asdict(self)
        out["cbf"] = {str(k): v for k, v in self.cbf.items()}
        out["cbv"] = {str(k): v for k, v in self.cbv.items()}
        return out


def draw_perfusion(rng: np.random.Generator) -> PerfusionParams:
    """Draw a case's healthy perfusion values (tissue labels of ``TISSUE_LABELS``) and shape widths."""
    u = rng.uniform
    csf_cbf, csf_cbv = u(1.0, 4.0), u(0.1, 0.4)
    cbf = {3: csf_cbf, 4: u(45.0, 65.0), 5: u(18.0, 26.0), 6: csf_cbf, 7: u(40.0, 55.0)}
    cbv = {3: csf_cbv, 4: u(3.5, 5.0), 5: u(1.6, 2.4), 6: csf_cbv, 7: u(3.0, 4.2)}
    return PerfusionParams({k: float(v) for k, v in cbf.items()}, {k: float(v) for k, v in cbv.items()},
                           float(u(0.6, 1.4)), float(u(6.0, 12.0)), float(u(3.0, 6.0)), float(u(8.0, 16.0)))


def draw_fields(rng: np.random.Generator) -> list[LatticeField]:
    """Three smooth unit-variance fields in head-frame mm (healthy variation, then two spreads).

    Lattices over the brain box (one point every 4 mm), like the rest of the phantom: a case's maps do not
    depend on the grid they are sampled on, except through partial volume and the depth maps.
    """
    low, high = (np.array(c, np.float64) for c in BRAIN_BOX_MM)
    half, middle = tuple((high - low) / 2.0 + 8.0), tuple((high + low) / 2.0)
    return [smooth_noise(rng, half, _FIELD_STEP_MM, sigma, middle) for sigma in (12.0, 6.0, 8.0)]


def _depth(mask: np.ndarray, spacing_zyx, inside: bool) -> np.ndarray:
    """Distance (mm) to the mask's edge: of voxels inside it (``inside``) or outside it."""
    return ndimage.distance_transform_edt(mask if inside else ~mask, sampling=spacing_zyx).astype(np.float32)


def render_perfusion(params: PerfusionParams, fractions: dict[int, np.ndarray], fate: np.ndarray,
                     brain: np.ndarray, hemisphere: np.ndarray, spacing_zyx, fields: list[np.ndarray],
                     rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    """Make the Tmax, CBF, CBV and MTT maps of a case from its tissue and its tissue fate.

    Args:
        params: The case's drawn values (:func:`draw_perfusion`).
        fractions: Tissue fractions by label (z, y, x), summing to 1 (partial volume).
        fate: uint8 (z, y, x): 0 healthy, 1 core, 2 penumbra.
        brain: bool (z, y, x) intracranial mask; the maps are 0 outside it.
        hemisphere: bool (z, y, x), True in the affected hemisphere (the oligaemic shell stays in it).
        spacing_zyx: Voxel spacing in mm, array order.
        fields: The three fields of :func:`draw_fields` sampled on the grid (z, y, x each).
        rng: The case's perfusion noise generator, or None for noise-free maps.

    Returns:
        float32 maps (z, y, x) by name (``PERFUSION_MAPS``), in ``PERFUSION_UNITS``.
    """
    shape = fate.shape
    healthy, spread_a, spread_b = fields
    tmax_healthy, cbf_local = healthy, -healthy  # slower arrival where flow is lower
    tmax_spread, cbf_spread, cbv_spread = spread_a, spread_b, -spread_a
    core, penumbra = fate == 1, fate == 2
    region = core | penumbra
    tmax = params.tmax_healthy + 0.4 * tmax_healthy
    r_cbf = np.exp(0.08 * cbf_local)
    r_cbv = np.ones(shape, np.float32)
    if region.any():
        # work in the region's bounding box grown by the oligaemic shell: the distance maps are the cost
        margin = [int(np.ceil((params.oligaemia_mm + 2.0) / s)) for s in spacing_zyx]
        where = np.argwhere(region)
        box = tuple(slice(max(0, lo - m), min(n, hi + m + 1))
                    for lo, hi, m, n in zip(where.min(axis=0), where.max(axis=0), margin, shape))
        c, p, r = core[box], penumbra[box], region[box]
        depth_p = np.clip(_depth(r, spacing_zyx, True) / params.penumbra_depth_mm, 0.0, 1.0)
        depth_c = np.clip(_depth(c, spacing_zyx, True) / params.core_depth_mm, 0.0, 1.0)
        outside = _depth(r, spacing_zyx, False)
        shell = (~r) & (outside <= params.oligaemia_mm) & brain[box] & hemisphere[box]
        closeness = np.where(shell, 1.0 - outside / params.oligaemia_mm, 0.0).astype(np.float32)
        t, rc, rv = tmax[box], r_cbf[box], r_cbv[box]
        ts, cs, vs = tmax_spread[box], cbf_spread[box], cbv_spread[box]
        t_olig = t + (5.5 - t) * closeness + 0.8 * ts * closeness
        t[:] = np.where(shell, t_olig, t)
        rc[:] = np.where(shell, rc * (1.0 - 0.15 * closeness), rc)
        t[:] = np.where(p, 6.5 + 3.5 * depth_p + 1.2 * ts, t)
        rc[:] = np.where(p, 0.8 - 0.35 * depth_p + 0.08 * cs, rc)
        rv[:] = np.where(p, 1.05 + 0.15 * vs, rv)
        t[:] = np.where(c, 10.0 + 3.0 * depth_c + 1.5 * ts, t)
        rc[:] = np.where(c, 0.28 - 0.16 * depth_c + 0.06 * cs, rc)
        rv[:] = np.where(c, 0.75 - 0.35 * depth_c + 0.1 * vs, rv)
    r_cbf = np.clip(r_cbf, 0.02, 1.5)
    r_cbv = np.clip(r_cbv, 0.1, 2.0)
    cbf = np.zeros(shape, np.float32)
    cbv = np.zeros(shape, np.float32)
    for label in (3, 4, 5, 6, 7):
        tissue = label in (4, 5, 7)  # CSF and ventricles keep their (near-zero) values
        cbf += fractions[label] * (params.cbf[label] * (r_cbf if tissue else 1.0))
        cbv += fractions[label] * (params.cbv[label] * (r_cbv if tissue else 1.0))
    if rng is not None:
        cbf *= 1.0 + params.cbf_noise * rng.standard_normal(shape, dtype=np.float32)
        cbv *= 1.0 + params.cbv_noise * rng.standard_normal(shape, dtype=np.float32)
        tmax = tmax + params.tmax_noise_s * rng.standard_normal(shape, dtype=np.float32)
    cbf = np.maximum(cbf, 0.0)
    cbv = np.maximum(cbv, 0.0)
    tmax = np.clip(tmax, 0.0, 30.0)
    mtt = np.clip(60.0 * cbv / np.maximum(cbf, 1.0), 0.0, 30.0)
    maps = {"tmax": tmax, "cbf": cbf, "cbv": cbv, "mtt": mtt}
    return {name: np.where(brain, maps[name], 0.0).astype(np.float32) for name in PERFUSION_MAPS}
