"""Per-case options for heavily varied synthetic cohorts (:func:`varied_case_options`).

Models trained on the phantom are judged on real scans nobody here sees (FLAIR-like, 3-5 mm slices, some
stored obliquely, lesions from tiny to 25+ mL, bright large subacute lesions). A recipe turns a cohort
seed and a case index into :func:`~lesionseg.synth.make_case` options, so every case of a cohort gets its
own grid, pose, lesion pattern and contrast; the modalities stay the caller's choice. Use it with
``write_cohort(out, n, seed=seed, case_options_fn=lambda i: varied_case_options(seed, i))``.

Recipes:

- ``"starter"`` (training): slice thickness 1-6 mm, in-plane 0.8-1.2 mm, a field of view of about
  220 x 240 x 180 mm (x, y, z) holding at most ``MAX_VOXELS`` voxels where an in-plane spacing up to
  1.2 mm allows it (thin-slice cases get coarser in-plane spacing; 1 mm slices may still need about 7.5
  million); oblique storage (up to 20 degrees) in 40 % of cases; head tilt (up to 12 degrees) in 60 %;
  a head shift (up to 8 mm) and turn (up to 12 degrees) in 70 %; skull-stripped in 25 %;
  ``lesion_pattern="mixed"``; lesion age 0-1; lesion contrast x0.7-1.5; look-alikes in 50 %; random
  tissue contrast in 30 %.
- ``"heldout"`` (a stand-in for the unseen evaluation scans): lesion age 0.5-1; a territorial infarct
  (8-120 mL) in 36 % of cases, otherwise the default pattern (1-5 lesions) or, in 12 %, an embolic shower;
  slices 3-5 mm; oblique storage (up to 20 degrees) in 50 %; head tilt (up to 10 degrees) in 50 %; skull
  kept; look-alikes in 50 %; each modality's own contrast.
- ``"ct_heldout"`` (a stand-in for unseen non-contrast head CT; use with ``modalities=("ct",)``): lesions 2-8 HU
  below their tissue (``ct_lesion_hu``), noise sigma 3-6 HU, 5 mm slices, every third case (index divisible
  by 3) stored obliquely (up to 20 degrees, as a gantry tilt), head tilt (up to 10 degrees) in 50 %, the
  skull base (foramen magnum, petrous ridges) always, beam hardening always, thick skulls (9-14 mm) in 30 %,
  look-alikes (old infarcts: CSF-dense cavities) in 50 %; lesion patterns as ``"heldout"``.
- ``"ct_starter"`` (CT training, more varied): 1 mm slices in 25 % of cases, else 2-5 mm; lesions from
  barely visible to clear (2-15 HU below their tissue), noise sigma 2-8 HU (low-dose scans at the top);
  oblique storage (up to 20 degrees) in 40 %, head tilt (up to 12 degrees) in 60 %, a head shift and turn in
  70 %; the skull base always; beam hardening in 80 %; thick skulls (9-14 mm) in 30 %; look-alikes in 50 %;
  ``lesion_pattern="mixed"``.

The CT recipes' options are valid for MRI channels too (the CT-only options then change nothing but the
anatomy: the skull base and the skull's thickness).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lesionseg.errors import ParameterError

RECIPES: tuple[str, ...] = ("starter", "heldout", "ct_heldout", "ct_starter")
MAX_VOXELS = 6_000_000
_FOV_MM = (220.0, 240.0, 180.0)  # x, y, z
_RECIPE_KEY = {"starter": 0x57A7, "heldout": 0x4E1D, "ct_heldout": 0xC7E1, "ct_starter": 0xC757}
THICK_SKULL_MM = (9.0, 14.0)


def _grid(rng: np.random.Generator, thickness_range: tuple[float, float]) -> dict[str, Any]:
    """Spacing and size: in-plane 0.8-1.2 mm, a drawn slice thickness, FOV about 220 x 240 x 180 mm."""
    thickness = float(rng.uniform(*thickness_range))
    in_plane = float(rng.uniform(0.8, 1.2))
    fov = [f * float(rng.uniform(0.96, 1.04)) for f in _FOV_MM]
    thickness = round(thickness, 3)

    def size_for(step: float) -> tuple[int, int, int]:
        return tuple(int(np.ceil(f / s)) for f, s in zip(fov, (step, step, thickness)))

    in_plane = round(in_plane, 3)
    while np.prod(size_for(in_plane)) > MAX_VOXELS and in_plane < 1.2:  # thin slices: coarser in-plane
        in_plane = min(1.2, round(in_plane * 1.01 + 0.001, 3))
    return {"size_xyz": size_for(in_plane), "spacing_mm": (in_plane, in_plane, thickness)}


def _pose(rng: np.random.Generator, shift_mm: float, turn_deg: float) -> tuple:
    shift = tuple(round(float(v), 2) for v in rng.uniform(-shift_mm, shift_mm, 3))
    return (shift, round(float(rng.uniform(-turn_deg, turn_deg)), 2))


def varied_case_options(seed: int, index: int, recipe: str = "starter") -> dict[str, Any]:
    """The :func:`~lesionseg.synth.make_case` options of case ``index`` of a varied cohort.

    Args:
        seed: The cohort seed (whole number >= 0).
        index: The 1-based case index.
        recipe: ``"starter"`` (varied training cohort), ``"heldout"``, ``"ct_heldout"`` or ``"ct_starter"``
            (see the module docstring).

    Returns:
        Options (no modalities): ``size_xyz``, ``spacing_mm`` (mm, x, y, z), ``head_pose``, ``oblique_deg``,
        ``head_tilt_deg``, ``skull``, ``lesion_pattern``, ``lesion_age``, ``lesion_contrast``,
        ``distractors``, ``tissue_contrast``; the CT recipes also ``ct_lesion_hu``, ``ct_noise_hu``,
        ``beam_hardening``, ``skull_thickness_mm``, ``skull_base``. The same (seed, index, recipe) always
        gives the same dict.

    Raises:
        ParameterError: An unknown recipe or a bad seed or index.
    """
    if recipe not in RECIPES:
        raise ParameterError(f"recipe must be one of {', '.join(RECIPES)}, not {recipe!r}.")
    for name, value, least in (("seed", seed, 0), ("index", index, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ParameterError(f"{name} must be a whole number >= {least}, not {value!r}.")
    rng = np.random.default_rng([int(seed), int(index), _RECIPE_KEY[recipe]])
    u = rng.uniform
    if recipe == "starter":
        options = _grid(rng, (1.0, 6.0))
        options.update(
            head_pose=_pose(rng, 8.0, 12.0) if u() < 0.7 else None,
            oblique_deg=20.0 if u() < 0.4 else None,
            head_tilt_deg=12.0 if u() < 0.6 else None,
            skull=bool(u() >= 0.25),
            lesion_pattern="mixed",
            lesion_age=(0.0, 1.0),
            lesion_contrast=(0.7, 1.5),
            distractors=bool(u() < 0.5),
            tissue_contrast="random" if u() < 0.3 else None,
        )
        return options
    if recipe.startswith("ct_"):
        return _ct_options(rng, int(index), recipe)
    options = _grid(rng, (3.0, 5.0))
    draw = u()
    pattern = "territorial" if draw < 0.36 else ("embolic" if draw < 0.48 else "default")
    options.update(
        head_pose=_pose(rng, 6.0, 10.0) if u() < 0.7 else None,
        oblique_deg=20.0 if u() < 0.5 else None,
        head_tilt_deg=10.0 if u() < 0.5 else None,
        skull=True,
        lesion_pattern=pattern,
        lesion_age=(0.5, 1.0),
        lesion_contrast=None,
        distractors=bool(u() < 0.5),
        tissue_contrast=None,
    )
    return options


def _pattern(rng: np.random.Generator) -> str:
    """The held-out lesion pattern: territorial 36 %, embolic 12 %, else the default."""
    draw = rng.uniform()
    return "territorial" if draw < 0.36 else ("embolic" if draw < 0.48 else "default")


def _ct_options(rng: np.random.Generator, index: int, recipe: str) -> dict[str, Any]:
    """The options of the CT recipes (see the module docstring)."""
    u = rng.uniform
    if recipe == "ct_heldout":
        options = _grid(rng, (5.0, 5.0))
        options.update(
            head_pose=_pose(rng, 6.0, 10.0) if u() < 0.7 else None,
            oblique_deg=20.0 if index % 3 == 0 else None,
            head_tilt_deg=10.0 if u() < 0.5 else None,
            lesion_pattern=_pattern(rng),
            ct_lesion_hu=(2.0, 8.0),
            ct_noise_hu=(3.0, 6.0),
            beam_hardening=True,
        )
    else:
        options = _grid(rng, (1.0, 1.0) if u() < 0.25 else (2.0, 5.0))
        options.update(
            head_pose=_pose(rng, 8.0, 12.0) if u() < 0.7 else None,
            oblique_deg=20.0 if u() < 0.4 else None,
            head_tilt_deg=12.0 if u() < 0.6 else None,
            lesion_pattern="mixed",
            ct_lesion_hu=(2.0, 15.0),
            ct_noise_hu=(2.0, 8.0),
            beam_hardening=bool(u() < 0.8),
        )
    options.update(
        skull=True,
        lesion_age=(0.5, 1.0),
        lesion_contrast=None,
        tissue_contrast=None,
        skull_thickness_mm=THICK_SKULL_MM if u() < 0.3 else None,
        skull_base=True,
        distractors=bool(u() < 0.5),
    )
    return options
