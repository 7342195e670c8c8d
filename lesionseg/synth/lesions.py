"""Arterial territories and ischemic lesions of the phantom.

Territories (per hemisphere, in the warped head frame so that they follow the anatomy; the hemisphere
itself is decided by the side of the exact mid-sagittal plane, head-frame x = 0, +x = patient's left):

- PCA (posterior cerebral artery): the occipital lobe (behind a drawn coronal plane) and the
  infero-medial temporal region (below z = -5 mm, behind y = 5 mm, within 40 mm of the midline);
- ACA (anterior cerebral artery): the parasagittal strip (within a drawn distance of the midline) above
  a drawn axial plane, in front of the PCA territory;
- MCA (middle cerebral artery): the rest of the hemisphere (lateral convexity, insula, basal ganglia).

Territory label table (``TERRITORY_LABELS``), defined over the brain mask: 1 left ACA, 2 left MCA,
3 left PCA, 4 right ACA, 5 right MCA, 6 right PCA, 0 outside the brain mask.

A lesion is a union of 2 to 4 randomly rotated ellipsoids (a main blob and satellites) whose surface is
roughened by smooth local noise, intersected with its territory, its hemisphere and the brain tissue
(grey matter, white matter or deep nuclei; never CSF or ventricles). The result is non-convex. Its
centre is drawn uniformly inside the territory's tissue; a draw whose lesion would lose more than half
of its volume to those intersections, or keep less than 0.05 mL, is redrawn. The first lesion of a case
has a nominal radius of at least 4 mm, so that every case has a visible lesion (:func:`draw_lesions`, the
``"default"`` lesion pattern; :func:`place_lesion` places one such lesion and is shared with the other
patterns). All of it is defined in continuous head-frame coordinates, so a case's lesions do not depend
on the image grid.

Lesion kinds (``LesionSpec.kind``): ``"focal"`` as above; ``"lacunar"`` is clipped to white matter and
deep nuclei instead of all tissue; ``"territorial"`` draws its rough edge a few mm inside its territory
and is then clipped by it, so that it can fill most of the territory (see
:mod:`lesionseg.synth.patterns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from lesionseg.synth.fields import LatticeField, smooth_noise
from lesionseg.synth.phantom import Anatomy, evaluate_structures

TERRITORIES: tuple[str, ...] = ("ACA", "MCA", "PCA")
SIDES: tuple[str, ...] = ("left", "right")
TERRITORY_LABELS: dict[int, str] = {
    1: "left ACA", 2: "left MCA", 3: "left PCA", 4: "right ACA", 5: "right MCA", 6: "right PCA",
}
_TERRITORY_PROBABILITY = (0.2, 0.55, 0.25)  # ACA, MCA, PCA
_LESION_COUNT_PROBABILITY = (0.3, 0.25, 0.2, 0.15, 0.1)  # 1 .. 5 lesions
_RADIUS_RANGE_MM = (2.0, 11.0)  # nominal equivalent radius, drawn log-uniformly
_MAIN_RADIUS_RANGE_MM = (4.0, 11.0)  # the first lesion of a case, so that every case has a visible one
_MIN_VOLUME_MM3 = 50.0


@dataclass
class TerritoryParams:
    """Drawn boundaries of the territories (warped head frame, mm)."""

    pca_front_y: float
    aca_half_width: float
    aca_floor_z: float


@dataclass
class LesionSpec:
    """One drawn lesion (head frame, mm)."""

    side: str
    territory: str
    radius_mm: float
    centres: np.ndarray  # (n, 3) blob centres, the first is the lesion's centre
    axes: np.ndarray  # (n, 3) blob semi-axes
    rotations: np.ndarray  # (n, 3, 3) blob orientations (columns = blob axes in the head frame)
    roughness_mm: float
    roughness: LatticeField
    texture: LatticeField  # internal heterogeneity of the lesion's contrast, unit std
    contrast_factor: float  # this lesion's contrast relative to the case's
    kind: str = "focal"  # "focal" (blobs in tissue), "territorial" (see patterns), "lacunar" (deep tissue)
    core_margin_mm: float = 0.0  # territorial: how far inside the territory the rough edge is drawn (mm)
    limit_box: np.ndarray | None = None  # optional (2, 3) head-frame box (low, high) that holds the lesion

    def head_box(self) -> np.ndarray:
        """Corners (8, 3) of a head-frame box that holds the lesion."""
        reach = self.axes.max(axis=1)[:, None] + 3.0 * self.roughness_mm
        low = (self.centres - reach).min(axis=0)
        high = (self.centres + reach).max(axis=0)
        if self.limit_box is not None:
            low, high = np.maximum(low, self.limit_box[0]), np.minimum(high, self.limit_box[1])
        return np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1])
                         for z in (low[2], high[2])])

    def to_dict(self) -> dict:
        return {"side": self.side, "territory": self.territory, "radius_mm": self.radius_mm,
                "blob_count": int(len(self.centres)), "contrast_factor": self.contrast_factor,
                "kind": self.kind}


def draw_territories(rng: np.random.Generator) -> TerritoryParams:
    """Draw the territory boundaries of one case."""
    return TerritoryParams(float(rng.uniform(34.0, 46.0)), float(rng.uniform(16.0, 24.0)),
                           float(rng.uniform(-2.0, 8.0)))


def territory_phi(tp: TerritoryParams, name: str, xd, yd, zd) -> np.ndarray:
    """Implicit function (mm, positive inside) of a territory, for either hemisphere."""
    ax = np.abs(xd)
    pca = np.maximum(yd - tp.pca_front_y, np.minimum(np.minimum(-5.0 - zd, yd - 5.0), 40.0 - ax))
    if name == "PCA":
        return pca
    aca = np.minimum(np.minimum(tp.aca_half_width - ax, zd - tp.aca_floor_z), -pca)
    if name == "ACA":
        return aca
    return np.minimum(-pca, -aca)


def side_phi(side: str, qx) -> np.ndarray:
    """Implicit function of a hemisphere: head-frame x (unwarped) towards that side."""
    return qx if side == "left" else -qx


def territory_label_array(tp: TerritoryParams, qx, xd, yd, zd, brain: np.ndarray) -> np.ndarray:
    """Territory labels (uint8, table ``TERRITORY_LABELS``) at grid points inside ``brain``."""
    labels = np.zeros(brain.shape, np.uint8)
    where = np.flatnonzero(brain)
    x, y, z = xd.ravel()[where], yd.ravel()[where], zd.ravel()[where]
    codes = np.zeros(where.size, np.uint8)
    for code, name in enumerate(TERRITORIES, start=1):
        codes[territory_phi(tp, name, x, y, z) > 0] = code
    codes[(codes > 0) & (qx.ravel()[where] <= 0)] += 3
    labels.ravel()[where] = codes
    return labels


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation matrix (the generator is passed positionally: SciPy renamed it)."""
    return Rotation.random(None, rng).as_matrix()


def blob_phi(spec: LesionSpec, qx, qy, qz) -> np.ndarray:
    """Implicit function (mm, positive inside) of the lesion's roughened blob union, before clipping."""
    return blob_union(spec, qx, qy, qz) + spec.roughness_mm * spec.roughness.sample_points(qx, qy, qz)


def blob_union(spec: LesionSpec, qx, qy, qz) -> np.ndarray:
    """Implicit function (mm, positive inside) of the union of the lesion's smooth ellipsoids."""
    out = None
    for centre, axes, rot in zip(spec.centres, spec.axes, spec.rotations):
        dx, dy, dz = qx - centre[0], qy - centre[1], qz - centre[2]
        lx = rot[0, 0] * dx + rot[1, 0] * dy + rot[2, 0] * dz
        ly = rot[0, 1] * dx + rot[1, 1] * dy + rot[2, 1] * dz
        lz = rot[0, 2] * dx + rot[1, 2] * dy + rot[2, 2] * dz
        rho = np.sqrt((lx / axes[0]) ** 2 + (ly / axes[1]) ** 2 + (lz / axes[2]) ** 2)
        r = np.sqrt(dx * dx + dy * dy + dz * dz)
        phi = r / np.maximum(rho, 1e-4) - r
        out = phi if out is None else np.maximum(out, phi)
    return out


def lesion_phi(spec: LesionSpec, tp: TerritoryParams, qx, qy, qz, xd, yd, zd, tissue,
               deep=None) -> np.ndarray:
    """Implicit function of the lesion: blobs within territory, hemisphere and tissue.

    Args:
        spec: The lesion.
        tp: The case's territory boundaries.
        qx, qy, qz: Head-frame points (mm).
        xd, yd, zd: The warped head-frame coordinates at those points.
        tissue: Implicit function of grey/white matter and deep nuclei at the points (``Structures.tissue``).
        deep: Implicit function of white matter and deep nuclei (``Structures.deep``); needed only for a
            ``"lacunar"`` lesion, which it clips instead of ``tissue``.

    Returns:
        float32 array (mm, positive inside) of the points' shape.
    """
    territory = territory_phi(tp, spec.territory, xd, yd, zd)
    if spec.kind == "territorial":
        # The rough edge is drawn inside the territory, then clipped by it: the lesion can fill most of it.
        core = np.minimum(blob_union(spec, qx, qy, qz), territory - spec.core_margin_mm)
        phi = np.minimum(core + spec.roughness_mm * spec.roughness.sample_points(qx, qy, qz), territory)
    else:
        phi = np.minimum(blob_phi(spec, qx, qy, qz), territory)
    phi = np.minimum(phi, side_phi(spec.side, qx))
    return np.minimum(phi, deep if spec.kind == "lacunar" else tissue)


def blob_shape(rng: np.random.Generator, centre: np.ndarray, radius: float):
    """Blob centres (n, 3), semi-axes (n, 3) and rotations (n, 3, 3) of a lesion of nominal radius (mm)."""
    count = 2 + int(rng.integers(0, 3))  # at least one satellite, so that the union is not convex
    centres, axes, rotations = [centre], [radius * rng.uniform(0.6, 1.3, size=3)], [random_rotation(rng)]
    for _ in range(count - 1):
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        centres.append(centre + radius * rng.uniform(0.6, 1.2) * direction)
        axes.append(radius * rng.uniform(0.35, 0.75, size=3))
        rotations.append(random_rotation(rng))
    return np.array(centres), np.array(axes), np.array(rotations)


def _phi_at_points(anatomy, tp, spec, points):
    """The lesion function and the bare blob function at head-frame points (n, 3)."""
    qx, qy, qz = (points[:, i].astype(np.float32) for i in range(3))
    s = evaluate_structures(anatomy, qx, qy, qz, anatomy.fields_at_points(qx, qy, qz))
    blobs = blob_phi(spec, qx, qy, qz)
    deep = s.deep if spec.kind == "lacunar" else None
    phi = lesion_phi(spec, tp, qx, qy, qz, s.xd, s.yd, s.zd, s.tissue, deep)
    return phi, blobs


def place_lesion(rng: np.random.Generator, anatomy: Anatomy, tp: TerritoryParams, side: str, territory: str,
                 radius: float, kind: str = "focal", min_volume_mm3: float = _MIN_VOLUME_MM3,
                 contrast_range: tuple[float, float] = (0.8, 1.2), roughness: float = 0.3) -> LesionSpec | None:
    """Place one blob-union lesion of nominal radius ``radius`` (mm) in a territory of one hemisphere.

    Its centre is drawn uniformly inside the territory's tissue (for ``kind="lacunar"``: its white matter
    and deep nuclei); a draw whose lesion would lose more than half of its volume to the clipping, or
    keep less than ``min_volume_mm3``, is redrawn (at most 40 times; the best draw is kept).

    Args:
        rng: The lesions' random generator (consumed in a fixed order).
        anatomy: The case's head.
        tp: The case's territory boundaries.
        side: ``"left"`` or ``"right"``.
        territory: One of ``TERRITORIES``.
        radius: Nominal equivalent radius in mm.
        kind: ``"focal"`` or ``"lacunar"``.
        min_volume_mm3: Smallest volume kept (mm³).
        contrast_range: Range of the lesion's contrast factor.
        roughness: Surface roughness amplitude relative to the radius.

    Returns:
        The :class:`LesionSpec`, or None when no draw kept enough volume.
    """
    ax, ay, az_top, az_bot = anatomy.params.brain_axes
    sign = 1.0 if side == "left" else -1.0
    best, best_ratio = None, -1.0
    for _attempt in range(40):
        candidates = np.column_stack([
            sign * rng.uniform(0.0, ax, 256), rng.uniform(-ay, ay, 256), rng.uniform(-az_bot, az_top, 256)
        ])
        qx, qy, qz = (candidates[:, i].astype(np.float32) for i in range(3))
        s = evaluate_structures(anatomy, qx, qy, qz, anatomy.fields_at_points(qx, qy, qz))
        inside = np.minimum(territory_phi(tp, territory, s.xd, s.yd, s.zd), side_phi(side, qx))
        if kind == "lacunar":
            ok = np.flatnonzero((inside > min(3.0, radius / 2)) & (s.deep > min(2.0, radius / 3)))
        else:
            ok = np.flatnonzero((inside > min(3.0, radius / 2)) & (s.tissue > 0))
        if ok.size == 0:
            continue
        centre = candidates[ok[0]]
        centres, axes, rotations = blob_shape(rng, centre, radius)
        roughness_mm = roughness * radius
        reach = float(np.max(np.linalg.norm(centres - centre, axis=1)) + axes.max() + 4 * roughness_mm)
        local = (reach,) * 3
        rough = smooth_noise(rng, local, max(0.5, radius / 5), max(1.0, radius / 2.5), tuple(centre))
        texture = smooth_noise(rng, local, max(0.5, radius / 4), max(1.5, radius / 2), tuple(centre))
        spec = LesionSpec(side, territory, radius, centres, axes, rotations, roughness_mm, rough, texture,
                          float(rng.uniform(*contrast_range)), kind)
        box = spec.head_box()
        samples = rng.uniform(box.min(axis=0), box.max(axis=0), size=(3000, 3))
        phi, blobs = _phi_at_points(anatomy, tp, spec, samples)
        kept, total = np.count_nonzero(phi > 0), np.count_nonzero(blobs > 0)
        ratio = kept / max(total, 1)
        volume = kept / len(samples) * float(np.prod(box.max(axis=0) - box.min(axis=0)))
        if volume >= min_volume_mm3 and ratio > best_ratio:
            best, best_ratio = spec, ratio
        if volume >= min_volume_mm3 and ratio >= 0.5:
            break
    return best


def draw_lesions(rng: np.random.Generator, anatomy: Anatomy, tp: TerritoryParams) -> list[LesionSpec]:
    """Draw the lesions of one case (the ``"default"`` pattern): count, hemisphere (one per case),
    territories, shapes.

    Args:
        rng: Random generator used only for the lesions (consumed in a fixed order).
        anatomy: The case's head, used to place the lesions inside tissue.
        tp: The case's territory boundaries.

    Returns:
        One :class:`LesionSpec` per lesion (1 to 5).
    """
    count = 1 + int(rng.choice(len(_LESION_COUNT_PROBABILITY), p=_LESION_COUNT_PROBABILITY))
    side = str(rng.choice(SIDES))
    lesions = []
    for number in range(count):
        territory = str(rng.choice(TERRITORIES, p=_TERRITORY_PROBABILITY))
        radius_range = _MAIN_RADIUS_RANGE_MM if number == 0 else _RADIUS_RANGE_MM
        radius = float(np.exp(rng.uniform(*np.log(radius_range))))
        spec = place_lesion(rng, anatomy, tp, side, territory, radius)
        if spec is not None:
            lesions.append(spec)
    return lesions
