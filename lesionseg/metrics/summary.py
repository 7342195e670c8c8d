"""Summaries over many cases or slices: mean and median of each metric, and counts of empty masks.

Because empty masks get documented finite values instead of NaN (see :mod:`lesionseg.metrics.surface`),
every record enters every average; the summary also says how many records had an empty prediction or an
empty truth, so a reader knows how many worst-case values the averages contain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: Metrics summarised when present in the records (others are ignored).
SUMMARISED_METRICS: tuple[str, ...] = (
    "dice",
    "hd_mm",
    "hd95_mm",
    "assd_mm",
    "abs_volume_difference_ml",
    "lesion_f1",
    "abs_lesion_count_difference",
    "detection_rate",
)


def summarize(records: Iterable[Any], metrics: Sequence[str] = SUMMARISED_METRICS) -> dict[str, Any]:
    """Mean and median of each metric over records, plus the counts of empty masks.

    Args:
        records: :class:`~lesionseg.metrics.evaluate.CaseMetrics` / ``SliceMetrics`` objects, or flat
            dicts such as their ``to_dict()``.
        metrics: names of the metrics to summarise; a metric that is absent from the records, or ``None``
            in a record (a detection rate without lesion slices), is skipped for that record.

    Returns:
        ``{"n": ..., "n_empty_prediction": ..., "n_empty_truth": ..., "<metric>_mean": ...,
        "<metric>_median": ..., "<metric>_n": ...}``; mean and median are ``None`` for a metric without
        any value.
    """
    rows = [r if isinstance(r, dict) else r.to_dict() for r in records]
    summary: dict[str, Any] = {
        "n": len(rows),
        "n_empty_prediction": sum(bool(r.get("empty_prediction", False)) for r in rows),
        "n_empty_truth": sum(bool(r.get("empty_truth", False)) for r in rows),
    }
    for name in metrics:
        values = np.array([float(r[name]) for r in rows if r.get(name) is not None], dtype=float)
        if not any(name in r for r in rows):
            continue
        summary[f"{name}_n"] = int(values.size)
        summary[f"{name}_mean"] = float(values.mean()) if values.size else None
        summary[f"{name}_median"] = float(np.median(values)) if values.size else None
    return summary
