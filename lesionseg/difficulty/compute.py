"""Difficulty metrics of every lesion slice of a prepared dataset: :func:`compute_difficulty`.

Metric names (what ``--metric`` takes) and the table columns they fill:

- ``area`` -> ``area_mm2``: the native lesion area of the slice (see :mod:`.area`);
- ``contrast`` -> ``contrast_fisher`` and ``contrast_valid``: the Fisher contrast on the prepared slice
  (see :mod:`.contrast`), on one channel: by default the reference channel (the first channel unless
  ``prepare --reference`` chose another);
- ``gradient`` needs a trained model and comes with the trainer; ``human`` comes from annotators' ratings.
  Both are table columns that :func:`compute_difficulty` cannot compute.

Only lesion slices (``has_lesion`` in ``slices.csv``, i.e. lesion on the native grid) get a row. A lesion
slice whose lesion vanished when resized to S x S has no lesion pixels on the prepared slice: its contrast
is not measurable (0.0, ``contrast_valid`` 0), its area is still the native one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lesionseg.difficulty.area import slice_areas_mm2
from lesionseg.difficulty.contrast import (
    MIN_HEALTHY_PIXELS,
    MIN_LESION_PIXELS,
    check_contrast_options,
    measure_contrast,
)
from lesionseg.difficulty.table import DifficultyTable
from lesionseg.errors import DatasetError, ParameterError
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress

if TYPE_CHECKING:
    from lesionseg.preprocess import PreparedDataset

LOG = logging.getLogger(__name__)

#: Metrics computed from the data: name -> table column.
METRICS: dict[str, str] = {"area": "area_mm2", "contrast": "contrast_fisher"}
#: Metrics that exist as table columns but are not computed here, with the reason.
OTHER_METRICS: dict[str, str] = {
    "gradient": "is not available in 'lesionseg difficulty' yet: it needs a trained model (--bundle) and comes "
                "with the trainer",
    "human": "is not computed: it comes from annotators' ratings (a 'human' column of easy/medium/hard in the "
             "table)",
}


def resolve_metrics(names: Sequence[str] | str) -> list[str]:
    """Check metric names (``area``, ``contrast``, or their column names) and return them canonical.

    Args:
        names: a list of names or a comma-separated string.

    Returns:
        The canonical names (keys of :data:`METRICS`), in the order given, without repeats.

    Raises:
        ParameterError: an empty list, an unknown name (listing the valid ones) or a metric that cannot
            be computed here (saying why).
    """
    if isinstance(names, str):
        names = [part.strip() for part in names.split(",")]
    columns = {column: name for name, column in METRICS.items()}
    resolved: list[str] = []
    for raw in names:
        name = str(raw).strip().lower()
        if not name:
            continue
        name = columns.get(name, name)
        if name in OTHER_METRICS:
            raise ParameterError(f"metric {name!r} {OTHER_METRICS[name]}; choose among {', '.join(METRICS)}.")
        if name not in METRICS:
            raise ParameterError(f"unknown difficulty metric {raw!r}; choose among {', '.join(METRICS)}.")
        if name not in resolved:
            resolved.append(name)
    if not resolved:
        raise ParameterError(f"no difficulty metric given; choose among {', '.join(METRICS)}.")
    return resolved


def _channel_index(prepared: PreparedDataset, channel: str | None) -> int:
    channels = prepared.channels
    if channel is None:
        reference = prepared.config.reference
        return channels.index(reference) if reference in channels else 0
    if channel not in channels:
        raise ParameterError(
            f"channel {channel!r} is not in {prepared.root}; its channels are {', '.join(channels)}."
        )
    return channels.index(channel)


def compute_difficulty(prepared: PreparedDataset, metrics: Sequence[str] | str, *, channel: str | None = None,
                       margin_px: int = 0, min_lesion_pixels: int = MIN_LESION_PIXELS,
                       min_healthy_pixels: int = MIN_HEALTHY_PIXELS, progress: ProgressCallback | None = None,
                       cancel: CancelFlag | None = None) -> DifficultyTable:
    """Compute difficulty metrics for every lesion slice of a prepared dataset.

    Args:
        prepared: the prepared dataset (``lesionseg.preprocess.PreparedDataset``).
        metrics: metric names (see :data:`METRICS`), a list or a comma-separated string.
        channel: the channel contrast is measured on (default: the reference channel).
        margin_px: contrast: healthy pixels within this many pixels of the lesion are left out.
        min_lesion_pixels, min_healthy_pixels: contrast: below these counts F is not measurable (0.0).
        progress: receives ``{"event": "progress", "stage": "difficulty", "done", "total"}`` per case and a
            ``warning`` event when some slices' contrast could not be measured.
        cancel: checked between cases.

    Returns:
        A :class:`DifficultyTable`, one row per lesion slice in ``slices.csv`` order.

    Raises:
        ParameterError: an unknown metric or channel, or a bad contrast option.
        DatasetError: no lesion slice, or an inconsistent prepared folder.
        CancelledError: when ``cancel`` is set.
    """
    names = resolve_metrics(metrics)
    progress = progress or ignore_progress
    rows = [row for row in prepared.slices if row["has_lesion"]]
    if not rows:
        raise DatasetError(
            f"{prepared.root} has no lesion slices ({len(prepared.slices)} slices, none with has_lesion = 1); "
            "difficulty is measured on lesion slices, so prepare a dataset whose cases have lesion masks."
        )
    metric_values: dict[str, np.ndarray] = {}
    flags: dict[str, np.ndarray] = {}
    if "area" in names:
        metric_values["area_mm2"] = slice_areas_mm2(prepared, rows)
    if "contrast" in names:
        index = _channel_index(prepared, channel)
        check_contrast_options("auto", margin_px, min_lesion_pixels, min_healthy_pixels)
        where = {(row["case_id"], row["slice_index"]): position for position, row in enumerate(rows)}
        contrast = np.zeros(len(rows))
        valid = np.zeros(len(rows), dtype=bool)
        case_ids = list(dict.fromkeys(row["case_id"] for row in rows))
        progress({"event": "progress", "stage": "difficulty", "done": 0, "total": len(case_ids)})
        for done, case_id in enumerate(case_ids, start=1):
            if cancel is not None:
                cancel.raise_if_cancelled()
            case_rows = prepared.case_slices(case_id)
            arrays = prepared.arrays(case_id)
            if len(arrays.masks) != len(case_rows) or len(arrays.images) != len(case_rows):
                raise DatasetError(f"{prepared.root}: case {case_id} has {len(arrays.masks)} prepared slices but "
                                   f"{len(case_rows)} rows in slices.csv; prepare it again.")
            for array_index, row in enumerate(case_rows):
                if not row["has_lesion"]:
                    continue
                try:
                    measured = measure_contrast(
                        arrays.images[array_index, index], arrays.masks[array_index], arrays.brains[array_index],
                        margin_px=margin_px, min_lesion_pixels=min_lesion_pixels,
                        min_healthy_pixels=min_healthy_pixels)
                except ParameterError as error:  # options were checked above: this is the data's fault
                    raise DatasetError(
                        f"{prepared.root}: case {case_id} slice {row['slice_index']}: {error}"
                    ) from error
                position = where[(case_id, row["slice_index"])]
                contrast[position], valid[position] = measured.value, measured.valid
            progress({"event": "progress", "stage": "difficulty", "done": done, "total": len(case_ids)})
        metric_values["contrast_fisher"] = contrast
        flags["contrast_valid"] = valid
        invalid = int((~valid).sum())
        if invalid:
            message = (f"the contrast of {invalid} of {len(rows)} lesion slices could not be measured (fewer than "
                       f"{min_lesion_pixels} lesion or {min_healthy_pixels} healthy pixels) and is set to 0.0 "
                       "(contrast_valid = 0)")
            LOG.info(message)
            progress({"event": "warning", "stage": "difficulty", "message": message})
    return DifficultyTable([row["case_id"] for row in rows], [row["slice_index"] for row in rows],
                           metric_values, flags)
