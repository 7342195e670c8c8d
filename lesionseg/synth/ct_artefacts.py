"""CT beam hardening of the phantom (the ``beam_hardening`` case option).

Polychromatic X-rays harden through the skull, and reconstructions without a perfect correction show brain
next to the inner table brighter than deeper brain (a few HU over the first 1-2 cm), and often a *cupping*
of the whole cranium (its centre darker than its periphery). The phantom adds, inside the intracranial
volume (weighted by its partial-volume fraction, before noise):

- a brightening ``amplitude * exp(-depth / length)`` with ``depth`` the distance (mm) inside the skull's
  inner surface, amplitude 3-8 HU and length 5-10 mm (so it fades within about 1-2 cm);
- in half of the cases a cupping term ``cupping * (1 - depth / 60 mm)^2`` (0 deeper than 60 mm) with
  cupping 1-4 HU.

The draws depend only on the case's generator; the field is recorded under
``parameters["variety"]["beam_hardening"]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

CUPPING_DEPTH_MM = 60.0


@dataclass
class BeamHardening:
    """Drawn beam-hardening parameters (HU and mm)."""

    amplitude_hu: float
    length_mm: float
    cupping_hu: float

    def to_dict(self) -> dict:
        return asdict(self)


def draw_beam_hardening(rng: np.random.Generator) -> BeamHardening:
    """Draw one case's beam hardening (see the module docstring)."""
    amplitude = float(rng.uniform(3.0, 8.0))
    length = float(rng.uniform(5.0, 10.0))
    cupping = float(rng.uniform(1.0, 4.0)) if rng.uniform() < 0.5 else 0.0
    return BeamHardening(amplitude, length, cupping)


def beam_hardening_offset(model: BeamHardening, depth_mm: np.ndarray, intracranial: np.ndarray) -> np.ndarray:
    """The additive HU field of a case's beam hardening.

    Args:
        model: The drawn parameters.
        depth_mm: Distance inside the skull's inner surface (mm, positive inside; the phantom's ``skull_inner``
            implicit function), float32 (z, y, x).
        intracranial: Intracranial fraction of each voxel (tissue labels 3-7), float32 (z, y, x) in [0, 1].

    Returns:
        float32 (z, y, x) in HU, 0 outside the cranium.
    """
    depth = np.maximum(depth_mm, 0.0)
    field = model.amplitude_hu * np.exp(-depth / model.length_mm)
    if model.cupping_hu > 0.0:
        field += model.cupping_hu * np.clip(1.0 - depth / CUPPING_DEPTH_MM, 0.0, 1.0) ** 2
    return (field * intracranial).astype(np.float32)
