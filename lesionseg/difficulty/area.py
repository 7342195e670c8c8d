"""Lesion size: area per slice in mm² (native pixel spacing) and lesion volume per case in mL.

Areas are measured on the native axial frame, not on the resized S x S slices: preparation counts each
slice's lesion pixels on the native grid and writes ``lesion_pixels`` and ``lesion_area_mm2`` (pixels x
native in-plane pixel area) to ``slices.csv``. :func:`slice_areas_mm2` reads those and checks them
against each case's record (``grid.frame_pixel_mm``), so a prepared folder whose index and records
disagree is refused instead of giving wrong areas. A case's volume is the sum of its lesion slices' areas
times the slice thickness (``grid.geometry.spacing[2]``), which equals the native mask's voxel count times
the voxel volume for an axial acquisition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lesionseg.errors import DatasetError, ParameterError

if TYPE_CHECKING:
    from lesionseg.preprocess import PreparedDataset

#: Relative tolerance between ``lesion_area_mm2`` of slices.csv and pixels x record pixel area
#: (slices.csv stores 6 significant digits).
AREA_RTOL = 1e-5


def _positive_spacing(pixel_spacing_mm: Sequence[float]) -> tuple[float, float]:
    try:
        sx, sy = (float(v) for v in pixel_spacing_mm)
    except (TypeError, ValueError):
        raise ParameterError(
            f"pixel_spacing_mm must be two numbers (sx, sy) in mm, not {pixel_spacing_mm!r}."
        ) from None
    if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0):
        raise ParameterError(f"pixel_spacing_mm must be two positive finite numbers in mm, not {(sx, sy)!r}.")
    return sx, sy


def lesion_area_mm2(mask_or_pixels: np.ndarray | int, pixel_spacing_mm: Sequence[float]) -> float:
    """Lesion area of one slice in mm².

    Args:
        mask_or_pixels: a 2D mask ``(H, W)`` (nonzero = lesion) or the number of lesion pixels.
        pixel_spacing_mm: in-plane pixel size ``(sx, sy)`` in mm (the native spacing, not the resized one).

    Returns:
        ``N * sx * sy`` where N is the number of lesion pixels.

    Raises:
        ParameterError: a mask that is not 2D, a negative or fractional count, or a bad spacing.
    """
    sx, sy = _positive_spacing(pixel_spacing_mm)
    if isinstance(mask_or_pixels, np.ndarray) and mask_or_pixels.ndim > 0:
        if mask_or_pixels.ndim != 2:
            raise ParameterError(f"the lesion mask must be one 2D slice (H, W), not shape {mask_or_pixels.shape}.")
        pixels = int(np.count_nonzero(mask_or_pixels))
    else:
        value = mask_or_pixels.item() if isinstance(mask_or_pixels, np.ndarray) else mask_or_pixels
        if isinstance(value, bool) or not float(value).is_integer() or value < 0:
            raise ParameterError(f"the lesion pixel count must be a whole number >= 0, not {mask_or_pixels!r}.")
        pixels = int(value)
    return pixels * sx * sy


def case_lesion_volume_ml(slice_areas_mm2: Sequence[float] | np.ndarray, slice_thickness_mm: float) -> float:
    """Lesion volume of a case in mL: the sum of its slices' lesion areas times the slice thickness.

    Args:
        slice_areas_mm2: lesion area of each slice in mm² (slices without lesion may be left out).
        slice_thickness_mm: distance between slices in mm.

    Returns:
        ``sum(areas) * thickness / 1000`` (1 mL = 1000 mm³).

    Raises:
        ParameterError: a negative or non-finite area, or a thickness that is not positive.
    """
    areas = np.asarray(slice_areas_mm2, dtype=float).ravel()
    if areas.size and (not np.all(np.isfinite(areas)) or areas.min() < 0):
        raise ParameterError("slice_areas_mm2 must be finite numbers >= 0 (mm²).")
    thickness = float(slice_thickness_mm)
    if not (math.isfinite(thickness) and thickness > 0):
        raise ParameterError(f"slice_thickness_mm must be a positive number of mm, not {slice_thickness_mm!r}.")
    return float(areas.sum()) * thickness / 1000.0


def slice_areas_mm2(prepared: PreparedDataset, rows: Sequence[dict[str, Any]]) -> np.ndarray:
    """The native lesion areas (mm²) of some rows of ``slices.csv``, checked against the cases' records.

    Args:
        prepared: the prepared dataset.
        rows: rows of ``prepared.slices``.

    Returns:
        One area per row, float64.

    Raises:
        DatasetError: an area that is not lesion_pixels x the record's native pixel area.
    """
    pixel_area: dict[str, float] = {}
    areas = np.empty(len(rows), dtype=float)
    for position, row in enumerate(rows):
        case_id = row["case_id"]
        if case_id not in pixel_area:
            sx, sy = prepared.record(case_id).grid.frame_pixel_mm
            pixel_area[case_id] = lesion_area_mm2(1, (sx, sy))
        expected = row["lesion_pixels"] * pixel_area[case_id]
        stored = float(row["lesion_area_mm2"])
        if not math.isclose(stored, expected, rel_tol=AREA_RTOL, abs_tol=1e-9):
            raise DatasetError(
                f"{prepared.root / 'slices.csv'}: case {case_id} slice {row['slice_index']} has lesion_area_mm2 "
                f"{stored:g} but {row['lesion_pixels']} pixels x {pixel_area[case_id]:g} mm² (from its record) = "
                f"{expected:g}; the prepared folder is inconsistent, prepare it again."
            )
        areas[position] = stored
    return areas


def case_volumes_ml(prepared: PreparedDataset) -> dict[str, float]:
    """Lesion volume of every case of a prepared dataset in mL (0.0 for a case without lesion slices).

    Uses the native areas of ``slices.csv`` (checked against the records) and each record's slice
    thickness. Every native lesion slice is kept by ``prepare``, so this is the native mask's volume.
    """
    volumes = {}
    for case_id in prepared.case_ids:
        rows = [row for row in prepared.case_slices(case_id) if row["has_lesion"]]
        thickness = prepared.record(case_id).grid.geometry.spacing[2]
        volumes[case_id] = case_lesion_volume_ml(slice_areas_mm2(prepared, rows), thickness)
    return volumes
