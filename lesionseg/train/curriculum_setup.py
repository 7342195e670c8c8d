"""From a training configuration and difficulty metrics to the schedule of a fold's training slices.

Lesion slices are grouped by difficulty (one metric, or several combined by rank average) into K groups.
Lesion-free slices (the negatives that teach the network to say "nothing here") have no difficulty: they
are dealt evenly, in a seeded order, over the K groups, so that every stage of the curriculum keeps the
dataset's ratio of lesion to lesion-free slices.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lesionseg.curriculum import (
    EASY_DIRECTIONS,
    Schedule,
    SelfPacedSchedule,
    assign_groups,
    combine_by_rank,
    make_schedule,
)
from lesionseg.errors import DatasetError, ParameterError
from lesionseg.train.config import TrainConfig

#: difficulty metric name (``--metric``) -> difficulty table column
METRIC_COLUMN = {"area": "area_mm2", "contrast": "contrast_fisher", "gradient": "gradient", "human": "human"}


def lesion_slice_scores(rows: list[dict[str, Any]], table, metrics: list[str]) -> tuple[np.ndarray, str]:
    """One difficulty score per lesion row and its easy direction ("high" or "low").

    Args:
        rows: training rows (only those with ``has_lesion`` are scored).
        table: a :class:`lesionseg.difficulty.DifficultyTable`.
        metrics: metric names; several are combined by rank average (low = easy).

    Raises:
        DatasetError: a lesion row without a value, or a metric the table lacks.
    """
    where = {key: position for position, key in enumerate(table.keys)}
    lesion_rows = [row for row in rows if row["has_lesion"]]
    positions = []
    for row in lesion_rows:
        key = (row["case_id"], int(row["slice_index"]))
        if key not in where:
            raise DatasetError(f"the difficulty table has no row for case {key[0]} slice {key[1]}; "
                               "compute it again on this prepared dataset.")
        positions.append(where[key])
    columns = {}
    for metric in metrics:
        column = METRIC_COLUMN[metric]
        if column not in table.metrics:
            source = table.source or "the difficulty table"
            raise DatasetError(f"{source} has no '{column}' column for --metric {metric}.")
        columns[column] = table.metrics[column][positions]
    if len(columns) == 1:
        column, values = next(iter(columns.items()))
        return values, EASY_DIRECTIONS[column]
    return combine_by_rank(columns), "low"


def slice_groups(rows: list[dict[str, Any]], table, config: TrainConfig) -> np.ndarray:
    """The difficulty group of every training row (0 = easiest), negatives dealt over the groups."""
    lesion = np.array([bool(row["has_lesion"]) for row in rows])
    if not lesion.any():
        raise DatasetError("the training slices hold no lesion slice; a curriculum needs lesion slices.")
    scores, easy = lesion_slice_scores(rows, table, config.metrics)
    k = min(config.groups, int(lesion.sum()))
    tie_key = np.arange(int(lesion.sum()))
    groups = np.zeros(len(rows), dtype=np.int64)
    groups[lesion] = assign_groups(scores, k=k, method=config.grouping, easy=easy, tie_key=tie_key)
    negatives = np.flatnonzero(~lesion)
    order = np.random.default_rng(config.seed).permutation(negatives.size)
    groups[negatives[order]] = np.arange(negatives.size) % k
    return groups


def build_schedule(rows: list[dict[str, Any]], table, config: TrainConfig) -> Schedule:
    """The schedule of a fold's training rows for ``config.curriculum``.

    ``table`` (a DifficultyTable) is needed by "vanilla" and "anti" only.
    """
    n = len(rows)
    if config.curriculum == "none":
        return make_schedule("none", n_slices=n, total_epochs=config.epochs)
    if config.curriculum == "spl":
        return SelfPacedSchedule(n, total_epochs=config.epochs, growth=config.spl_growth)
    if table is None:
        raise ParameterError(f"the {config.curriculum!r} curriculum needs difficulty metrics (--difficulty or --metric).")
    groups = slice_groups(rows, table, config)
    return make_schedule(config.curriculum, groups=groups, total_epochs=config.epochs)
