"""The skull base of the phantom (the ``skull_base`` case option): the foramen magnum and the petrous ridges.

Without it the phantom's skull is a closed shell around the brain, and the soft tissue of the neck starts
below that shell; real head CT differs where most classical brain extractions fail, at the skull base:

- the *foramen magnum*: an elliptic opening (semi-axes 13-17 mm left-right, 15-19 mm anterior-posterior,
  its centre 10-20 mm posterior of the brain centre) through the bottom of the skull, where the intracranial
  CSF meets the soft tissue of the neck (20-50 HU, inside a 0-100 HU brain window) with no bone between;
- two *petrous ridges*: dense bone wedges (ellipsoids of semi-axes 20-26 x 4-6 x 6-9 mm, running from the
  back of each side forwards to the midline at 35-45 degrees) that rise from the floor of the skull into the
  bottom of the cranium, between the temporal lobe and the cerebellum, with CSF (1 mm) around them.

The intracranial truth (labels 3-7, ``SynthCase.brain_mask``) is inside the skull's inner surface: it
excludes the ridges, and at the foramen magnum it ends on the inner surface continued across the opening
(the neck below is soft tissue, label 1). Everything is in head-frame millimetres (warped coordinates),
so the skull base moves with the head and its displacement field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: CSF (mm) kept between a petrous ridge and the brain.
RIDGE_CSF_MM = 1.0


@dataclass
class SkullBase:
    """Drawn skull-base shapes (head frame, mm; angles in degrees)."""

    foramen_semi_axes: tuple[float, float]  # x (left-right), y (anterior-posterior)
    foramen_y: float  # centre, posterior of the brain centre
    ridge_centre: tuple[float, float, float]  # the left ridge's centre (x > 0); the right one is its mirror
    ridge_semi_axes: tuple[float, float, float]  # along the ridge, across it, vertical
    ridge_angle_deg: float  # angle of the ridge's long axis from the left-right axis

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def draw_skull_base(rng: np.random.Generator, brain_axes: tuple[float, float, float, float]) -> SkullBase:
    """Draw a skull base for a brain of semi-axes ``brain_axes`` (x, y, z above, z below the centre; mm)."""
    u = rng.uniform
    ax, _, _, az_bottom = brain_axes
    return SkullBase(
        foramen_semi_axes=(float(u(13.0, 17.0)), float(u(15.0, 19.0))),
        foramen_y=float(u(10.0, 20.0)),
        ridge_centre=(float(0.45 * ax), float(u(4.0, 10.0)), float(-u(0.68, 0.78) * az_bottom)),
        ridge_semi_axes=(float(u(20.0, 26.0)), float(u(4.0, 6.0)), float(u(6.0, 9.0))),
        ridge_angle_deg=float(u(35.0, 45.0)),
    )


def _ridge_phi(base: SkullBase, xd, yd, zd) -> np.ndarray:
    """Radial signed distance (mm, positive inside) to the nearer of the two ridges (mirror images in x)."""
    cx, cy, cz = base.ridge_centre
    a, b, c = base.ridge_semi_axes
    angle = np.deg2rad(base.ridge_angle_deg)
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    dx, dy, dz = np.abs(xd) - cx, yd - cy, zd - cz  # |x|: both sides at once
    along = dx * cos - dy * sin  # the long axis runs from lateral-posterior to medial-anterior
    across = dx * sin + dy * cos
    rho = np.sqrt((along / a) ** 2 + (across / b) ** 2 + (dz / c) ** 2)
    r = np.sqrt(along * along + across * across + dz * dz)
    return (r / np.maximum(rho, 1e-4) - r).astype(np.float32)


def apply_skull_base(base: SkullBase, skull_inner: np.ndarray, skull_outer: np.ndarray, parenchyma: np.ndarray,
                     xd, yd, zd, az_bottom: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The skull's inner and outer surfaces and the parenchyma with the skull base cut in.

    Args:
        base: The drawn skull base.
        skull_inner, skull_outer, parenchyma: Implicit functions (mm, positive inside) without it.
        xd, yd, zd: Warped head-frame coordinates of the points (mm).
        az_bottom: The brain's semi-axis below its centre (mm).

    Returns:
        ``(skull_inner, skull_outer, parenchyma)`` with the ridges (bone) and the foramen magnum (no bone).
    """
    ridge = _ridge_phi(base, xd, yd, zd)
    inner = np.minimum(skull_inner, -ridge)
    outer = np.maximum(skull_outer, ridge)
    rx, ry = base.foramen_semi_axes
    rho = np.sqrt((xd / rx) ** 2 + ((yd - base.foramen_y) / ry) ** 2)
    hole = np.minimum(0.5 * (rx + ry) * (1.0 - rho), -0.5 * az_bottom - zd)  # only through the skull's floor
    outer = np.maximum(inner, np.minimum(outer, -hole))
    return inner, outer, np.minimum(parenchyma, -ridge - RIDGE_CSF_MM)
