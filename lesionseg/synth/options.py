"""Validation of the synthetic cohort's options, with one-sentence errors naming the option."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from lesionseg.errors import ParameterError
from lesionseg.synth.modalities import MODALITIES
from lesionseg.synth.patterns import PATTERNS
from lesionseg.synth.perfusion import PERFUSION_MAPS

CASE_OPTION_DEFAULTS: dict[str, Any] = {
    "size_xyz": (192, 224, 48),
    "spacing_mm": (1.0, 1.0, 3.0),
    "misalignment": None,
    "head_pose": None,
    "noise": True,
    "bias": True,
    "lesion_age": (0.0, 1.0),
    "lesion_pattern": "default",
    "lesion_contrast": None,
    "oblique_deg": None,
    "head_tilt_deg": None,
    "skull": True,
    "tissue_contrast": None,
    "distractors": False,
    "ct_lesion_hu": None,
    "ct_noise_hu": None,
    "beam_hardening": False,
    "skull_thickness_mm": None,
    "skull_base": False,
    "varied_cortex": False,
}
#: Largest accepted values: lesion-contrast multiplier, oblique storage angle and head tilt (degrees).
MAX_LESION_CONTRAST = 4.0
MAX_OBLIQUE_DEG = 45.0
MAX_HEAD_TILT_DEG = 30.0
TISSUE_CONTRASTS: tuple[str, ...] = ("random",)
#: Largest accepted CT lesion offset and CT noise sigma (HU), and the accepted skull thickness range (mm).
MAX_CT_LESION_HU = 40.0
MAX_CT_NOISE_HU = 30.0
SKULL_THICKNESS_LIMITS_MM = (2.0, 16.0)


def check_options(modalities, index: int = 1, seed: int = 0, **options) -> tuple[str, ...]:
    """Validate a case's options (those of ``make_case``); returns the modality names in lower case.

    Args:
        modalities: Channel names (a single name is accepted too).
        index: The 1-based case number.
        seed: The cohort seed (a whole number >= 0).
        **options: Any of ``CASE_OPTION_DEFAULTS``.

    Raises:
        ParameterError: An unknown option or an unusable value.
    """
    unknown = sorted(set(options) - set(CASE_OPTION_DEFAULTS))
    if unknown:
        raise ParameterError(
            f"unknown synthetic case option {unknown[0]!r}; use some of {', '.join(CASE_OPTION_DEFAULTS)}."
        )
    if not _is_whole(seed) or seed < 0:
        raise ParameterError(f"seed must be a whole number >= 0, not {seed!r}.")
    if not _is_whole(index) or index < 1:
        raise ParameterError(f"index must be a whole number >= 1 (case numbers start at 1), not {index!r}.")
    merged = CASE_OPTION_DEFAULTS | options
    try:
        return _check(modalities, **merged)
    except (TypeError, ValueError) as error:  # e.g. a number where a tuple belongs
        raise ParameterError(
            f"a synthetic case option is malformed ({error}); see make_case's arguments."
        ) from error


def _is_whole(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def _check(modalities, size_xyz, spacing_mm, misalignment, head_pose, noise, bias, lesion_age, lesion_pattern,
           lesion_contrast, oblique_deg, head_tilt_deg, skull, tissue_contrast, distractors, ct_lesion_hu,
           ct_noise_hu, beam_hardening, skull_thickness_mm, skull_base, varied_cortex) -> tuple[str, ...]:
    names = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    mods = tuple(str(m).lower() for m in names)
    if not mods or any(m not in MODALITIES for m in mods) or len(set(mods)) != len(mods):
        raise ParameterError(
            f"modalities must be distinct names among {', '.join(MODALITIES)}, not {names!r}."
        )
    if len(size_xyz) != 3 or any(int(n) != n or n < 8 for n in size_xyz):
        raise ParameterError(f"size_xyz must be three whole voxel counts of at least 8, not {size_xyz!r}.")
    if len(spacing_mm) != 3 or any(not float(s) > 0 for s in spacing_mm):
        raise ParameterError(f"spacing_mm must be three positive spacings in mm, not {spacing_mm!r}.")
    if misalignment is not None and (len(misalignment) != 2 or any(not float(v) >= 0 for v in misalignment)):
        raise ParameterError(
            f"misalignment must be None or (max_degrees, max_mm) >= 0, not {misalignment!r}."
        )
    if head_pose is not None:
        shift, rotation = head_pose
        if len(shift) != 3 or any(abs(float(v)) > 50 for v in shift) or not abs(float(rotation)) <= 45:
            raise ParameterError(
                "head_pose must be None or ((dx, dy, dz) within 50 mm, degrees within 45), "
                f"not {head_pose!r}."
            )
    for name, flag in (("noise", noise), ("bias", bias), ("skull", skull), ("distractors", distractors),
                       ("beam_hardening", beam_hardening), ("skull_base", skull_base),
                       ("varied_cortex", varied_cortex)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ParameterError(f"{name} must be True or False, not {flag!r}.")
    low, high = (float(v) for v in lesion_age)
    if not 0.0 <= low <= high <= 1.0:
        raise ParameterError(f"lesion_age must be a range (low, high) with 0 <= low <= high <= 1, not {lesion_age!r}.")
    _check_variety(lesion_pattern, lesion_contrast, oblique_deg, head_tilt_deg, tissue_contrast)
    for name, value, limits in (("ct_lesion_hu", ct_lesion_hu, (0.0, MAX_CT_LESION_HU)),
                                ("ct_noise_hu", ct_noise_hu, (0.0, MAX_CT_NOISE_HU)),
                                ("skull_thickness_mm", skull_thickness_mm, SKULL_THICKNESS_LIMITS_MM)):
        _check_range(name, value, limits)
    perfusion = [m for m in mods if m in PERFUSION_MAPS]
    if perfusion and lesion_pattern != "default":
        raise ParameterError(f"a case with perfusion maps ({', '.join(perfusion)}) draws its own tissue fate (core "
                             f"inside a hypoperfused region), so lesion_pattern must stay 'default', "
                             f"not {lesion_pattern!r}.")
    return mods


def _check_range(name: str, value, limits: tuple[float, float]) -> None:
    """``value`` is None or a range ``(low, high)`` with ``limits[0] <= low <= high <= limits[1]``."""
    if value is None:
        return
    pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    numbers_ = [_number(v) for v in pair]
    if len(numbers_) != 2 or None in numbers_ or not limits[0] <= numbers_[0] <= numbers_[1] <= limits[1]:
        raise ParameterError(f"{name} must be None or a range (low, high) with {limits[0]:g} <= low <= high <= "
                             f"{limits[1]:g}, not {value!r}.")


def _number(value) -> float | None:
    """A real number as float, or None for anything else (bools, strings, NaN)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _check_variety(lesion_pattern, lesion_contrast, oblique_deg, head_tilt_deg, tissue_contrast) -> None:
    """The options that make a cohort varied (see make_case), one sentence per bad value."""
    if not isinstance(lesion_pattern, str) or lesion_pattern not in PATTERNS:
        raise ParameterError(f"lesion_pattern must be one of {', '.join(PATTERNS)}, not {lesion_pattern!r}.")
    if lesion_contrast is not None:
        pair = tuple(lesion_contrast) if isinstance(lesion_contrast, (tuple, list)) else ()
        values = [_number(v) for v in pair]
        if len(values) != 2 or None in values or not 0.0 <= values[0] <= values[1] <= MAX_LESION_CONTRAST:
            raise ParameterError(
                f"lesion_contrast must be None or a multiplier range (low, high) with "
                f"0 <= low <= high <= {MAX_LESION_CONTRAST:g}, not {lesion_contrast!r}.")
    for name, value, largest in (("oblique_deg", oblique_deg, MAX_OBLIQUE_DEG),
                                 ("head_tilt_deg", head_tilt_deg, MAX_HEAD_TILT_DEG)):
        number = _number(value)
        if value is not None and (number is None or not 0.0 <= number <= largest):
            raise ParameterError(f"{name} must be None or a maximum angle in degrees between 0 and {largest:g}, "
                                 f"not {value!r}.")
    if tissue_contrast is not None and tissue_contrast not in TISSUE_CONTRASTS:
        raise ParameterError(f"tissue_contrast must be None (each modality's own model) or 'random', "
                             f"not {tissue_contrast!r}.")
