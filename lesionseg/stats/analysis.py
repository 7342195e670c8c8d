"""The difficulty analysis of a run (the curriculum paper's Table 1): per-slice validation performance of
every fold against each difficulty metric, as signed R².

The per-slice performance is the union of the folds' ``val_slices.csv`` (each lesion slice of a case is
validated by the one fold that held the case out); the difficulty table is the run's ``difficulty.csv``
or one given explicitly (e.g. with a ``gradient`` or ``human`` column). A slice on which nothing was
predicted enters with Dice 0 and, as its distances, the slice diagonal in mm (the documented worst case of
:mod:`lesionseg.metrics`), so missed slices weigh on the fit instead of dropping out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lesionseg.errors import DatasetError
from lesionseg.stats.correlation import DEFAULT_PERFORMANCE, JoinedSlices, R2Row, join_slices, r2_table
from lesionseg.stats.runs import RunData, read_run


@dataclass
class RunAnalysis:
    """The R² table of a run and the joined data behind it.

    Attributes:
        rows: one :class:`R2Row` per difficulty metric.
        joined: the per-slice performance lined up with the difficulty metrics.
        difficulty_path: the difficulty table used.
    """

    rows: list[R2Row]
    joined: JoinedSlices
    difficulty_path: Path


def analyse_run(run: RunData | str | os.PathLike, difficulty: str | os.PathLike | None = None,
                metrics: Sequence[str] | None = None,
                performance: Sequence[str] = DEFAULT_PERFORMANCE) -> RunAnalysis:
    """R² with sign between per-slice validation performance and each difficulty metric.

    Args:
        run: a run folder or an already read :class:`RunData`.
        difficulty: a difficulty table (default: the run's ``difficulty.csv``).
        metrics: the difficulty columns (default: all of the table).
        performance: the performance columns of ``val_slices.csv`` (default Dice and HD).

    Returns:
        A :class:`RunAnalysis`.

    Raises:
        InputFileError: not a run folder; DatasetError: no ``val_slices.csv`` in any fold, no difficulty
            table, or a table computed on another prepared dataset (a validation slice without a row).
    """
    from lesionseg.difficulty import read_difficulty

    data = run if isinstance(run, RunData) else read_run(run)
    if not data.val_slices:
        raise DatasetError(f"{data.root} has no fold with a val_slices.csv (an all-data run or an unfinished one); "
                           "the analysis needs the per-slice validation of a cross-validated run.")
    path = Path(difficulty) if difficulty is not None else data.difficulty_path
    if path is None:
        raise DatasetError(f"{data.root} has no difficulty.csv (its curriculum used none); give a table made by "
                           "'lesionseg difficulty' with --difficulty.")
    table = read_difficulty(path)
    joined = join_slices(data.val_slices, table, performance, source=f"the val_slices.csv of {data.root}")
    return RunAnalysis(r2_table(joined, metrics=metrics, performance=performance), joined, path)
