"""Normalisation of perfusion maps (Tmax, TTP, MTT, CBF, CBV): physiological ranges, not the MRI z-score.

A perfusion map is a physical quantity, so its scale must survive normalisation: a z-score would map a
case with a large hypoperfusion and a case with none to the same spread and erase what Tmax > 6 s means.

- Time maps (``tmax``, ``mtt``, ``ttp``) are converted to seconds, clipped to ``TIME_RANGES_S`` and divided
  by a fixed scale (``TIME_SCALE_S``): 10 s for Tmax and MTT, so 0.6 is the clinical 6 s in every case;
  30 s for TTP, whose zero is the injection and varies more.
- Flow and volume maps (``cbf``, ``cbv``) are converted to mL/100 g/min and mL/100 g, clipped to
  ``FLOW_RANGES`` and divided by their **median over the brain mask** (1.0 = the case's typical brain
  tissue, the 0.3 of relative CBF is the core threshold's scale). Absolute CBF and CBV differ between
  scanners, software and deconvolution methods by factors of two, so only relative values travel. The
  whole-brain median rather than the contralateral hemisphere: it needs no guess of the affected side (a
  wrong guess at inference would rescale the map), and the median stays in healthy tissue as long as less
  than half of the brain is hypoperfused. The relative map is clipped to [0, ``MAX_RELATIVE``].

Units come from the map's JSON sidecar (:func:`lesionseg.data.sidecar.map_units`); the reader attaches them to
the image as metadata (``UNITS_METADATA_KEY``) so that they travel with the voxels to this step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.errors import PreprocessingError

TIME_MAPS = frozenset({"tmax", "mtt", "ttp"})
FLOW_MAPS = frozenset({"cbf", "cbv"})
#: metadata key of a SimpleITK image that holds a perfusion map's units (set when the map is read)
UNITS_METADATA_KEY = "lesionseg_units"
TIME_RANGES_S = {"tmax": (0.0, 20.0), "mtt": (0.0, 20.0), "ttp": (0.0, 60.0)}
TIME_SCALE_S = {"tmax": 10.0, "mtt": 10.0, "ttp": 30.0}
FLOW_RANGES = {"cbf": (0.0, 150.0), "cbv": (0.0, 15.0)}  # mL/100 g/min, mL/100 g
MAX_RELATIVE = 4.0
#: accepted spellings (lower case, no spaces) -> factor to the standard unit
_UNITS = {
    "time": {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3, "milliseconds": 1e-3},
    "cbf": {"ml/100g/min": 1.0, "ml/min/100g": 1.0, "ml/(100g*min)": 1.0, "ml/100g/s": 60.0},
    "cbv": {"ml/100g": 1.0, "ml/100ml": 1.0},
}
STANDARD_UNITS = {"time": "s", "cbf": "mL/100g/min", "cbv": "mL/100g"}


def _kind(channel: str) -> str:
    return "time" if channel in TIME_MAPS else channel


def unit_factor(channel: str, units: str, *, case_id: str = "") -> float:
    """The factor from ``units`` to the channel's standard unit (s, mL/100 g/min, mL/100 g).

    Raises:
        PreprocessingError: units this map cannot be in (e.g. "%" or "a.u." for CBF).
    """
    kind = _kind(channel)
    factor = _UNITS[kind].get(units.strip().lower().replace(" ", ""))
    if factor is None:
        prefix = f"case {case_id}: " if case_id else ""
        raise PreprocessingError(f"{prefix}the {channel} map is in {units!r}, which cannot be converted to "
                                 f"{STANDARD_UNITS[kind]}; give it in one of {', '.join(sorted(_UNITS[kind]))}.")
    return factor


def normalise_perfusion(image: sitk.Image, brain_mask: sitk.Image, channel: str, units: str, *,
                        case_id: str = "") -> tuple[sitk.Image, dict[str, Any]]:
    """Normalise one perfusion map (see the module docstring).

    Args:
        image: the map (any scalar type), in ``units``.
        brain_mask: 0/1 mask on the image's grid (used by CBF and CBV for their median).
        channel: ``tmax``, ``mtt``, ``ttp``, ``cbf`` or ``cbv``.
        units: the map's units from its sidecar.
        case_id: named in errors.

    Returns:
        ``(float32 image on the input's grid, record)``; the record says what was done (for prepare.json).

    Raises:
        PreprocessingError: unknown units, or a CBF/CBV whose brain median is not positive.
    """
    factor = unit_factor(channel, units, case_id=case_id)
    array = sitk.GetArrayFromImage(image).astype(np.float64) * factor
    record: dict[str, Any] = {"kind": "perfusion", "units": units, "factor_to_standard": factor}
    if channel in TIME_MAPS:
        low, high = TIME_RANGES_S[channel]
        out = np.clip(array, low, high) / TIME_SCALE_S[channel]
        record.update(clip_s=[low, high], scale_s=TIME_SCALE_S[channel])
    else:
        low, high = FLOW_RANGES[channel]
        np.clip(array, low, high, out=array)
        inside = sitk.GetArrayViewFromImage(brain_mask) != 0
        median = float(np.median(array[inside])) if inside.any() else 0.0
        if not median > 0.0:
            prefix = f"case {case_id}: " if case_id else ""
            raise PreprocessingError(f"{prefix}the {channel} map's median in the brain is {median:g}, so it "
                                     "cannot be made relative; check the map and the brain mask.")
        out = np.clip(array / median, 0.0, MAX_RELATIVE)
        record.update(clip=[low, high], reference="brain median", reference_value=median,
                      max_relative=MAX_RELATIVE)
    result = sitk.GetImageFromArray(out.astype(np.float32))
    result.CopyInformation(image)
    return result, record


def maps_brain_mask(*maps: sitk.Image) -> sitk.Image:
    """uint8 0/1: where any map holds a finite non-zero value, the largest 26-connected part, holes filled per
    axial slice (array axis 0)."""
    inside = np.zeros(sitk.GetArrayViewFromImage(maps[0]).shape, bool)
    for image in maps:
        values = sitk.GetArrayViewFromImage(image)
        inside |= np.isfinite(values) & (values != 0)
    labels, count = ndimage.label(inside, structure=np.ones((3, 3, 3), bool))
    if count > 1:
        inside = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    for index in range(inside.shape[0]):
        inside[index] = ndimage.binary_fill_holes(inside[index])
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(maps[0])
    return mask
