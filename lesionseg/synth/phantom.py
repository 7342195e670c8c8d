"""The head phantom's anatomy: drawn shape parameters, implicit surfaces, tissue fractions and labels.

Every structure is an implicit function ``phi`` of head-frame coordinates (mm; see
:mod:`lesionseg.synth.geometry`), positive inside and close to a signed distance in mm near its surface:

- the brain's outer (pial) surface is an egg-shaped ellipsoid (wider posteriorly, flatter below); the
  extra-axial CSF, the skull and the scalp are shells of drawn thickness outside it, measured along rays
  from the head-frame origin; a neck (vertical elliptic cylinder of soft tissue) hangs below;
- the cortex is a grey-matter ribbon of drawn thickness under the pial surface and along every CSF space
  that cuts into the brain: sulci (zero sheets of a smooth random field that is constant along rays, so
  that sulci run perpendicular to the surface), the interhemispheric fissure down to the corpus callosum,
  and the Sylvian fissures (tilted sheets from the lateral surface in to the insula);
- white matter is the parenchyma deeper than the cortical thickness; lateral and third ventricles (CSF)
  and deep grey nuclei (caudate, putamen, thalamus) are ellipsoids carved out of it.

The anatomy is mirror-symmetric about the head frame's x = 0 plane (the mid-sagittal plane) except for
small drawn asymmetries: an asymmetric part of the smooth displacement field (about 0.5 mm), per-side
ventricle widths, and the sulcal pattern. A smooth random displacement field (a few mm, 30 mm correlation
length) warps the whole head between cases.

Partial volume: a voxel's tissue fraction is ``clip(0.5 + phi / w, 0, 1)`` where ``w`` is the sum over
the grid axes of ``|phi(next voxel) - phi(previous voxel)| / 2``, i.e. the width of the voxel box
projected on the surface normal. This is the exact fraction for a planar surface under a linear ramp
model, needs no supersampling, and follows anisotropic spacing (thick slices blur top and bottom
surfaces, not side walls).

Tissue label table (``TISSUE_LABELS``), given at voxel centres (fraction >= 0.5):
0 air, 1 soft tissue (scalp, neck), 2 bone (skull), 3 CSF (extra-axial, sulcal, fissures),
4 cortical grey matter, 5 white matter, 6 ventricles, 7 deep grey matter.
The lesion is not a tissue label: ``tissue_labels`` shows the tissue that the lesion replaced.
The brain mask is the intracranial volume: every voxel centre inside the inner surface of the skull,
i.e. labels 3 to 7 (CSF around and inside the brain, grey and white matter, ventricles, deep nuclei).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lesionseg.synth.fields import LatticeField, lattice_points, smooth_noise, taper
from lesionseg.synth.skull_base import SkullBase, apply_skull_base

TISSUE_LABELS: dict[int, str] = {
    0: "air",
    1: "soft tissue (scalp, neck)",
    2: "bone (skull)",
    3: "CSF (extra-axial, sulcal, fissures)",
    4: "cortical grey matter",
    5: "white matter",
    6: "ventricles",
    7: "deep grey matter",
}
BRAIN_LABELS: tuple[int, ...] = (3, 4, 5, 6, 7)
PARENCHYMA_LABELS: tuple[int, ...] = (4, 5, 7)

# Extent (mm, half sizes x, y, z) of the head-frame lattices; the head fits inside with margin.
_HEAD_HALF_EXTENT = (128.0, 144.0, 128.0)
_BRAIN_HALF_EXTENT = (94.0, 108.0, 80.0)
# Head-frame box (low, high corners in mm) that holds the deep structures whatever the draw (their
# extent for the largest brain plus 12 mm for the displacement field).
DEEP_BOX_MM = ((-45.0, -42.0, -31.0), (45.0, 44.0, 33.0))
# Head-frame box that holds the brain (largest axes plus the displacement margin).
BRAIN_BOX_MM = ((-84.0, -100.0, -60.0), (84.0, 100.0, 70.0))


@dataclass
class AnatomyParams:
    """Drawn shape parameters of one phantom head (mm unless stated)."""

    brain_axes: tuple[float, float, float, float]  # x, y, z above and z below the centre
    posterior_widening: float  # relative widening of the x axis towards the back
    csf_thickness: float
    skull_thickness: float
    scalp_thickness: float
    atrophy: float  # 0..1, widens CSF spaces and ventricles
    cortex_thickness: float
    sulcal_depth: float
    sulcal_width: float
    fissure_width: float
    callosum_top_z: float
    sylvian: tuple[float, float, float]  # z at y = 0, slope dz/dy, distance of the insula from the midline
    ventricle_width: tuple[float, float]  # left (x > 0), right (x < 0)
    ventricle_length: float
    ventricle_height: float
    deep_grey_scale: float
    displacement_mm: float
    asymmetry_mm: float


@dataclass
class Anatomy:
    """A drawn phantom head: its parameters and smooth random fields (head frame)."""

    params: AnatomyParams
    displacement: tuple[LatticeField, LatticeField, LatticeField]
    folding: LatticeField  # sulcal field in mm, constant along rays from the origin
    skull_base: SkullBase | None = None  # the foramen magnum and petrous ridges (``skull_base`` option)

    def fields_at_points(self, qx, qy, qz) -> dict[str, np.ndarray]:
        """The smooth fields read at scattered head-frame points (mm)."""
        names = ("ux", "uy", "uz")
        out = {n: f.sample_points(qx, qy, qz) for n, f in zip(names, self.displacement)}
        out["fold"] = self.folding.sample_points(qx, qy, qz)
        return out

    def lattices(self) -> dict[str, LatticeField]:
        return {"ux": self.displacement[0], "uy": self.displacement[1], "uz": self.displacement[2],
                "fold": self.folding}


def draw_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one head: shape parameters, a smooth displacement field and a sulcal pattern.

    Args:
        rng: Random generator used only for the anatomy (consumed in a fixed order).

    Returns:
        The drawn :class:`Anatomy`.
    """
    u = rng.uniform
    atrophy = float(u(0.0, 1.0)) ** 2  # most heads young-looking, a few markedly atrophic
    ventricle_width = 3.0 + 3.5 * atrophy
    params = AnatomyParams(
        brain_axes=(float(u(62, 69)), float(u(78, 86)), float(u(50, 57)), float(u(40, 47))),
        posterior_widening=float(u(0.03, 0.10)),
        csf_thickness=float(u(1.5, 2.5) + 2.0 * atrophy),
        skull_thickness=float(u(5.0, 8.0)),
        scalp_thickness=float(u(4.0, 7.0)),
        atrophy=atrophy,
        cortex_thickness=float(u(2.4, 3.2)),
        sulcal_depth=float(u(9.0, 14.0)),
        sulcal_width=float(1.2 + 1.6 * atrophy),
        fissure_width=float(2.0 + 2.0 * atrophy),
        callosum_top_z=float(u(16.0, 22.0)),
        sylvian=(float(u(-6.0, 2.0)), float(u(0.3, 0.6)), float(u(34.0, 40.0))),
        ventricle_width=tuple(float(ventricle_width * s) for s in u(0.88, 1.12, size=2)),
        ventricle_length=float(u(20.0, 25.0)),
        ventricle_height=float(u(5.0, 7.5)),
        deep_grey_scale=float(u(0.9, 1.1)),
        displacement_mm=float(u(1.0, 2.5)),
        asymmetry_mm=float(u(0.3, 0.7)),
    )
    displacement = _symmetric_displacement(rng, params.displacement_mm, params.asymmetry_mm)
    folding = _radial_folding(rng, params)
    return Anatomy(params, displacement, folding)


#: ranges drawn by :func:`vary_cortex` (mm): cortex thickness, sulcal depth, sulcal width, gyral scale
VARIED_CORTEX_MM = {"cortex_thickness": (2.0, 3.4), "sulcal_depth": (10.0, 22.0), "sulcal_width": (0.8, 2.5),
                    "gyral_scale": (2.5, 5.0)}


def vary_cortex(anatomy: Anatomy, rng: np.random.Generator) -> None:
    """Redraw the head's cortical folding from wider ranges than :func:`draw_anatomy` (in place).

    :func:`draw_anatomy` folds the cortex in a shallow shell (sulci 9-14 mm deep under a 2.4-3.2 mm ribbon), so
    every head has a large homogeneous white-matter core under a regular grey rim. Real brains vary more:
    sulci of 10-25 mm and more (the insula lies about 30 mm under the lateral surface), cortex 2-4 mm thick,
    narrow or wide gyri and tight or open sulci. This draws those (``VARIED_CORTEX_MM``) and a new sulcal
    pattern from ``rng``; everything else about the head is kept.
    """
    u = rng.uniform
    ranges = VARIED_CORTEX_MM
    p = anatomy.params
    p.cortex_thickness = float(u(*ranges["cortex_thickness"]))
    p.sulcal_depth = float(u(*ranges["sulcal_depth"]))
    p.sulcal_width = float(u(*ranges["sulcal_width"]) + 1.6 * p.atrophy)
    anatomy.folding = _radial_folding(rng, p, float(u(*ranges["gyral_scale"])))


def _symmetric_displacement(rng, amplitude_mm: float, asymmetry_mm: float):
    """A smooth displacement field, mirror-symmetric about x = 0 plus a small asymmetric part."""
    components = []
    for axis in range(3):
        base = smooth_noise(rng, _HEAD_HALF_EXTENT, 8.0, 28.0)
        extra = smooth_noise(rng, _HEAD_HALF_EXTENT, 8.0, 28.0)
        mirrored = base.values[:, :, ::-1]
        # x component odd in x, y and z components even, so the warp commutes with the mirror.
        sym = 0.5 * (base.values - mirrored) if axis == 0 else 0.5 * (base.values + mirrored)
        sym /= max(float(sym.std()), 1e-6)
        values = amplitude_mm * sym + asymmetry_mm * extra.values
        components.append(taper(LatticeField(values.astype(np.float32), base.origin_mm, 8.0), 24.0))
    return tuple(components)


def _radial_folding(rng, params: AnatomyParams, gyral_scale_mm: float = 3.0) -> LatticeField:
    """A sulcal field constant along rays: noise on the brain ellipsoid, extended radially, in mm.

    ``gyral_scale_mm`` is the correlation length of the noise on the unit-scaled ellipsoid's sheet (its
    lattice is 2 mm): smaller values give narrower, more numerous gyri."""
    sheet = smooth_noise(rng, (76.0, 94.0, 64.0), 2.0, gyral_scale_mm)
    # A little 3D noise makes the sulci bend instead of running straight along rays.
    folding = smooth_noise(rng, _BRAIN_HALF_EXTENT, 2.5, 5.0)
    x, y, z = lattice_points(folding)
    ax, ay, az_top, az_bot = params.brain_axes
    rho = np.sqrt((x / ax) ** 2 + (y / ay) ** 2 + (z / np.where(z > 0, az_top, az_bot)) ** 2)
    rho = np.maximum(rho, 1e-3)
    values = sheet.sample_points(x / rho, y / rho, z / rho) + 0.4 * folding.values
    # Scale to mm: divide by the mean gradient magnitude in the cortical shell, so |value| ~ distance.
    grads = np.gradient(values, folding.spacing_mm)
    grad = np.sqrt(sum(g * g for g in grads))
    shell = (rho > 0.75) & (rho < 1.0)
    values = values / max(float(grad[shell].mean()), 1e-6)
    # Outside the lattice (never inside the brain) the field reads as "far from any sulcus".
    return LatticeField(values.astype(np.float32), folding.origin_mm, folding.spacing_mm, outside=100.0)


def _ellipsoid_phi(x, y, z, centre, axes):
    """Radial signed distance (mm, positive inside) to an axis-aligned ellipsoid."""
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    rho = np.sqrt((dx / axes[0]) ** 2 + (dy / axes[1]) ** 2 + (dz / axes[2]) ** 2)
    r = np.sqrt(dx * dx + dy * dy + dz * dz)
    return r / np.maximum(rho, 1e-4) - r


@dataclass
class Structures:
    """Implicit functions (mm, positive inside) of the phantom at a set of points, and derived data."""

    xd: np.ndarray  # warped head-frame coordinates (territories use these)
    yd: np.ndarray
    zd: np.ndarray
    pial: np.ndarray
    skull_inner: np.ndarray
    skull_outer: np.ndarray
    head: np.ndarray
    parenchyma: np.ndarray
    white: np.ndarray
    ventricles: np.ndarray
    deep_grey: np.ndarray
    fold: np.ndarray

    @property
    def tissue(self) -> np.ndarray:
        """Where a lesion may be: grey or white matter or deep nuclei, not CSF or ventricles."""
        return np.minimum(self.parenchyma, -self.ventricles)

    @property
    def deep(self) -> np.ndarray:
        """Deep tissue (white matter and deep grey nuclei; no cortex, CSF or ventricles), where lacunes lie."""
        return np.minimum(self.white, -self.ventricles)


def evaluate_structures(
    anatomy: Anatomy, qx, qy, qz, fields: dict[str, np.ndarray], deep_box=None
) -> Structures:
    """Evaluate every implicit surface at head-frame points.

    Args:
        anatomy: The drawn head.
        qx, qy, qz: Head-frame coordinates (mm), float32 arrays of one shape.
        fields: The anatomy's smooth fields read at the same points (keys ``ux, uy, uz, fold``).
        deep_box: For points on a grid, an optional (z, y, x) slice box outside which the deep structures
            (ventricles, deep grey nuclei) are known to be absent (see ``DEEP_HALF_EXTENT``); it only
            saves time.

    Returns:
        The :class:`Structures` at those points.
    """
    p = anatomy.params
    xd, yd, zd = qx + fields["ux"], qy + fields["uy"], qz + fields["uz"]
    ax, ay, az_top, az_bot = p.brain_axes
    ax_eff = ax * (1.0 + p.posterior_widening * np.clip(yd / ay, -1.0, 1.0))
    az_eff = np.where(zd > 0, np.float32(az_top), np.float32(az_bot))
    rho = np.sqrt((xd / ax_eff) ** 2 + (yd / ay) ** 2 + (zd / az_eff) ** 2)
    r = np.sqrt(xd * xd + yd * yd + zd * zd)
    radius = r / np.maximum(rho, 1e-4)
    pial = radius - r
    skull_inner = pial + p.csf_thickness
    skull_outer = skull_inner + p.skull_thickness
    head_ball = skull_outer + p.scalp_thickness
    neck = np.minimum(
        48.0 * (1.0 - np.sqrt((xd / 48.0) ** 2 + ((yd - 12.0) / 56.0) ** 2)), -25.0 - zd
    )
    head = np.maximum(head_ball, neck)

    fold = fields["fold"]
    sulci = np.minimum(p.sulcal_width / 2 - np.abs(fold), p.sulcal_depth - pial)
    floor_z = p.callosum_top_z - 3.0 * np.maximum(np.abs(yd - 2.0) - 36.0, 0.0)
    fissure = np.minimum(p.fissure_width / 2 - np.abs(xd), zd - floor_z)
    syl_z0, syl_slope, insula_x = p.sylvian
    sylvian = np.minimum(
        np.minimum(p.sulcal_width / 2 - np.abs(zd - (syl_z0 + syl_slope * yd)), np.abs(xd) - insula_x),
        np.minimum(yd + 30.0, 28.0 - yd),
    )
    inner_csf = np.maximum(np.maximum(sulci, fissure), sylvian)
    parenchyma = np.minimum(pial, -inner_csf)
    if anatomy.skull_base is not None:
        skull_inner, skull_outer, parenchyma = apply_skull_base(anatomy.skull_base, skull_inner, skull_outer,
                                                                parenchyma, xd, yd, zd, az_bot)
    white = parenchyma - p.cortex_thickness

    # Deep structures in coordinates scaled to a reference brain, so they follow the brain's size.
    box = deep_box if deep_box is not None else tuple(slice(None) for _ in np.shape(qx))
    xs, ys, zs = xd[box] * (66.0 / ax), yd[box] * (82.0 / ay), zd[box] * (54.0 / az_top)
    ventricles = np.full(np.shape(qx), -100.0, np.float32)
    deep_grey = np.full(np.shape(qx), -100.0, np.float32)
    ventricles[box] = _ventricles(p, xs, ys, zs)
    deep_grey[box] = _deep_grey(p, xs, ys, zs)
    return Structures(xd, yd, zd, pial, skull_inner, skull_outer, head, parenchyma, white, ventricles,
                      deep_grey, fold)


def _ventricles(p: AnatomyParams, x, y, z):
    """Lateral ventricles (curved bodies, atria, temporal horns) and the third ventricle."""
    length, height = p.ventricle_length, p.ventricle_height
    out = _ellipsoid_phi(x, y, z, (0.0, 4.0, 0.0), (1.0 + 1.5 * p.atrophy, 12.0, 8.0))
    ax = np.abs(x)
    for side, width in ((1.0, p.ventricle_width[0]), (-1.0, p.ventricle_width[1])):
        sx = x if side > 0 else -x
        # Body: an ellipsoid whose centre line sags at both ends (a flat "C").
        zb = z + 0.012 * (y + 2.0) ** 2
        body = _ellipsoid_phi(sx, y, zb, (1.5 + width, -2.0, 12.0), (width, length, height))
        atrium = _ellipsoid_phi(sx, y, z, (6.0 + width, 20.0, 4.0), (0.9 * width + 1.0, 9.0, 9.0))
        temporal = _ellipsoid_phi(sx, y, z, (26.0, 2.0, -14.0), (0.5 * width + 1.0, 14.0, 3.0))
        side_phi = np.maximum(np.maximum(body, atrium), temporal)
        out = np.maximum(out, np.where(side * x >= 0, side_phi, -ax))
    return out


def _deep_grey(p: AnatomyParams, x, y, z):
    """Caudate heads, putamina and thalami (symmetric, scaled by one drawn factor)."""
    s = p.deep_grey_scale
    ax = np.abs(x)
    width = max(p.ventricle_width)
    caudate = _ellipsoid_phi(ax, y, z, (4.5 + 2.0 * width, -16.0, 11.0), (4.0 * s, 8.0 * s, 7.0 * s))
    putamen = _ellipsoid_phi(ax, y, z, (23.0, -4.0, 2.0), (4.5 * s, 13.0 * s, 8.0 * s))
    thalamus = _ellipsoid_phi(ax, y, z, (10.0, 10.0, 2.0), (7.0 * s, 12.0 * s, 8.0 * s))
    return np.maximum(np.maximum(caudate, putamen), thalamus)


def ramp_width(phi: np.ndarray, floor: float) -> np.ndarray:
    """Width (mm of phi) of a voxel projected on the surface normal: sum of half central differences.

    Args:
        phi: Implicit function on a grid, shape (nz, ny, nx).
        floor: Smallest width returned (avoids division by zero where phi is flat).

    Returns:
        float32 array of phi's shape.
    """
    width = np.zeros_like(phi)
    for axis in range(3):
        diff = np.diff(phi, axis=axis)
        np.abs(diff, out=diff)
        # Central difference |phi[i+1] - phi[i-1]| / 2 approximated by the mean of the two one-sided ones.
        lead = [slice(None)] * 3
        lag = [slice(None)] * 3
        lead[axis] = slice(1, None)
        lag[axis] = slice(None, -1)
        width[tuple(lead)] += 0.5 * diff
        width[tuple(lag)] += 0.5 * diff
    np.maximum(width, floor, out=width)
    return width


def fraction(phi: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Partial-volume fraction ``clip(0.5 + phi / width, 0, 1)`` (float32)."""
    out = phi / width
    out += 0.5
    np.clip(out, 0.0, 1.0, out=out)
    return out


@dataclass
class TissueMaps:
    """Soft (partial-volume) maps of nested regions on a grid, each float32 (nz, ny, nx) in [0, 1].

    ``head >= skull_outer >= skull_inner >= parenchyma >= white`` hold voxel-wise; ``ventricles`` and
    ``deep_grey`` are fractions of the white-matter region (the ventricle wins where both are present).
    """

    head: np.ndarray
    skull_outer: np.ndarray
    skull_inner: np.ndarray
    parenchyma: np.ndarray
    white: np.ndarray
    ventricles: np.ndarray
    deep_grey: np.ndarray

    def fractions(self) -> dict[int, np.ndarray]:
        """Fraction of each tissue label (keys of ``TISSUE_LABELS``); they sum to 1."""
        inner = self.white
        vent = inner * self.ventricles
        dgm = inner * (1.0 - self.ventricles) * self.deep_grey
        return {
            0: 1.0 - self.head,
            1: self.head - self.skull_outer,
            2: self.skull_outer - self.skull_inner,
            3: self.skull_inner - self.parenchyma,
            4: self.parenchyma - inner,
            5: inner - vent - dgm,
            6: vent,
            7: dgm,
        }


def tissue_maps(s: Structures, spacing_mm) -> TissueMaps:
    """Partial-volume maps of the structures evaluated on a grid (see the module docstring)."""
    floor = 0.25 * min(spacing_mm)
    w_radial = ramp_width(s.pial, floor)
    head = fraction(s.head, w_radial)
    skull_outer = np.minimum(fraction(s.skull_outer, w_radial), head)
    skull_inner = np.minimum(fraction(s.skull_inner, w_radial), skull_outer)
    w_par = ramp_width(s.parenchyma, floor)
    parenchyma = np.minimum(fraction(s.parenchyma, w_par), skull_inner)
    white = np.minimum(fraction(s.white, w_par), parenchyma)
    ventricles = fraction(s.ventricles, ramp_width(s.ventricles, floor))
    deep_grey = fraction(s.deep_grey, ramp_width(s.deep_grey, floor))
    return TissueMaps(head, skull_outer, skull_inner, parenchyma, white, ventricles, deep_grey)


def tissue_label_array(s: Structures) -> np.ndarray:
    """Tissue labels (uint8, table ``TISSUE_LABELS``) at the points, decided at the points themselves."""
    labels = np.zeros(s.head.shape, np.uint8)
    labels[s.head > 0] = 1
    labels[s.skull_outer > 0] = 2
    inside = s.skull_inner > 0
    labels[inside] = 3
    par = inside & (s.parenchyma > 0)
    labels[par] = 4
    white = par & (s.white > 0)
    labels[white] = 5
    labels[white & (s.deep_grey > 0)] = 7
    labels[white & (s.ventricles > 0)] = 6
    return labels


def params_dict(anatomy: Anatomy) -> dict:
    """The drawn anatomy parameters as a JSON-ready dict."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(anatomy.params).items()}
