"""R² with the sign of the correlation between per-slice performance and each difficulty metric (the
curriculum paper's Table 1).

The correlation is Pearson's r of the least-squares line of performance on the metric
(``scipy.stats.linregress``); R² of that line is r², reported with the sign of r: ``signed R² = sign(r) r²``,
so -0.30 means that performance falls as the metric grows and the line explains 30 % of the variance.

Undefined cases never become NaN: when either variable is constant over the slices there is no
correlation to measure, and the result is R² = 0.0 with sign 0 and a ``note`` saying which variable was
constant; a table cell with fewer than :data:`MIN_POINTS` slices gets the same value and a note.

Slices whose Fisher contrast could not be measured (``contrast_valid`` = 0 in the difficulty table, value
0.0 by convention) are left out of the contrast row, since 0.0 there is a flag, not a contrast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lesionseg.difficulty import DifficultyTable
from lesionseg.errors import DatasetError, ParameterError

#: Fewest (metric, performance) pairs for which a line is fitted.
MIN_POINTS = 3
#: Performance columns of the paper's Table 1 (Dice and Hausdorff distance per slice).
DEFAULT_PERFORMANCE: tuple[str, ...] = ("dice", "hd_mm")
#: Difficulty metric column -> the flag column that marks its valid values.
VALIDITY_FLAGS: dict[str, str] = {"contrast_fisher": "contrast_valid"}


@dataclass(frozen=True)
class SignedR2:
    """R² of a least-squares line with the sign of the correlation.

    Attributes:
        r2: signed R² = sign(r) * r², in [-1, 1]; 0.0 when undefined (see ``note``).
        sign: +1, -1, or 0 (no correlation, or undefined).
        r: Pearson's r (0.0 when undefined).
        p: two-sided p-value of r = 0 (SciPy's t-test of the slope); 1.0 when undefined.
        slope, intercept: the line ``y = slope * x + intercept`` (slope 0 and intercept mean(y) when
            undefined).
        n: the number of pairs.
        note: empty when defined; otherwise why R² is set to 0.0 (e.g. "dice is constant").
    """

    r2: float
    sign: int
    r: float
    p: float
    slope: float
    intercept: float
    n: int
    note: str = ""

    @property
    def defined(self) -> bool:
        """Whether a correlation could be measured."""
        return not self.note


def _undefined(x: np.ndarray, y: np.ndarray, note: str) -> SignedR2:
    intercept = float(np.mean(y)) if y.size else 0.0
    return SignedR2(0.0, 0, 0.0, 1.0, 0.0, intercept, int(x.size), note)


def r2_with_sign(x: Sequence[float], y: Sequence[float], x_name: str = "x", y_name: str = "y") -> SignedR2:
    """Signed R² of the least-squares line of ``y`` on ``x`` (Pearson's r, ``scipy.stats.linregress``).

    Args:
        x: the difficulty metric per slice.
        y: the performance per slice (same length).
        x_name, y_name: names used in the note of an undefined result.

    Returns:
        A :class:`SignedR2`. A constant ``x`` or ``y`` gives r2 0.0, sign 0 and a note naming it.

    Raises:
        ParameterError: lengths differ, a value is not finite, or fewer than :data:`MIN_POINTS` pairs.
    """
    from scipy import stats

    xs = np.asarray(x, dtype=float).reshape(-1)
    ys = np.asarray(y, dtype=float).reshape(-1)
    if xs.size != ys.size:
        raise ParameterError(f"{x_name} and {y_name} need one value each per slice, not {xs.size} and {ys.size}.")
    if xs.size < MIN_POINTS:
        raise ParameterError(f"a line needs at least {MIN_POINTS} ({x_name}, {y_name}) pairs, not {xs.size}.")
    for name, values in ((x_name, xs), (y_name, ys)):
        if not np.all(np.isfinite(values)):
            raise ParameterError(f"{name} holds {values[~np.isfinite(values)][0]}; every value must be finite.")
    constant = [name for name, values in ((x_name, xs), (y_name, ys)) if np.ptp(values) == 0]
    if constant:
        verb = " are" if len(constant) > 1 else " is"
        return _undefined(xs, ys, " and ".join(constant) + verb + " constant over the slices")
    fit = stats.linregress(xs, ys)
    r = float(np.clip(fit.rvalue, -1.0, 1.0))
    sign = int(np.sign(r))
    return SignedR2(sign * r * r, sign, r, float(fit.pvalue), float(fit.slope), float(fit.intercept), int(xs.size))


@dataclass
class JoinedSlices:
    """Per-slice performance lined up with the difficulty table.

    Attributes:
        keys: ``(case_id, slice_index)`` of each joined slice.
        performance: performance column -> values (one per key).
        metrics: difficulty column -> values (one per key).
        valid: difficulty column -> bool mask of the slices whose value is a measurement (see the module
            docstring); all True for metrics without a validity flag.
    """

    keys: list[tuple[str, int]]
    performance: dict[str, np.ndarray]
    metrics: dict[str, np.ndarray]
    valid: dict[str, np.ndarray] = field(default_factory=dict)

    def pairs(self, metric: str, performance: str) -> tuple[np.ndarray, np.ndarray]:
        """The (metric, performance) values of the slices where the metric is valid."""
        keep = self.valid[metric]
        return self.metrics[metric][keep], self.performance[performance][keep]


def _number(row: Mapping[str, Any], column: str, where: str) -> float:
    value = row.get(column)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise DatasetError(f"{where}: column '{column}' holds {value!r}, not a finite number.")
    return number


def join_slices(per_slice: Iterable[Mapping[str, Any]], difficulty: DifficultyTable,
                performance: Sequence[str] = DEFAULT_PERFORMANCE, source: str = "the per-slice table") -> JoinedSlices:
    """Join per-slice performance rows (``val_slices.csv``) to a difficulty table by (case_id, slice_index).

    Args:
        per_slice: rows with ``case_id``, ``slice_index`` and each performance column (numbers or text).
        difficulty: the difficulty table of the same prepared dataset.
        performance: the performance columns to take.
        source: the rows' origin, as named in errors.

    Returns:
        A :class:`JoinedSlices` in the order of ``per_slice``.

    Raises:
        DatasetError: a slice without a row in the difficulty table (it was computed on other data), a
            missing or non-numeric performance value, or no slices at all.
    """
    where = {key: position for position, key in enumerate(difficulty.keys)}
    table_name = difficulty.source or "the difficulty table"
    keys, rows, values = [], [], {name: [] for name in performance}
    for line, row in enumerate(per_slice, start=2):
        try:
            key = (str(row["case_id"]), int(float(row["slice_index"])))
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"{source}, row {line}: needs a case_id and an integer slice_index.") from None
        if key not in where:
            raise DatasetError(f"{table_name} has no row for case {key[0]} slice {key[1]} of {source}; it was "
                               "computed on another prepared dataset (run 'lesionseg difficulty' on this one).")
        keys.append(key)
        rows.append(where[key])
        for name in performance:
            values[name].append(_number(row, name, f"{source}, row {line}"))
    if not keys:
        raise DatasetError(f"{source} holds no slices to analyse.")
    index = np.asarray(rows, dtype=np.int64)
    metrics = {name: column[index] for name, column in difficulty.metrics.items()}
    valid = {}
    for name in metrics:
        flag = VALIDITY_FLAGS.get(name)
        valid[name] = (difficulty.flags[flag][index] if flag in difficulty.flags
                       else np.ones(index.size, dtype=bool))
    return JoinedSlices(keys, {name: np.asarray(v, dtype=float) for name, v in values.items()}, metrics, valid)


@dataclass(frozen=True)
class R2Row:
    """One row of the paper's Table 1: a difficulty metric against each performance column.

    Attributes:
        metric: the difficulty column (``area_mm2``, ``contrast_fisher``, ...).
        n: slices used (slices with a valid value of the metric).
        excluded: slices left out because the metric was not measurable there.
        cells: performance column -> :class:`SignedR2`.
    """

    metric: str
    n: int
    excluded: int
    cells: dict[str, SignedR2]

    def to_dict(self) -> dict[str, Any]:
        """A flat record: metric, n_slices, excluded_slices, then ``r2_<perf>``, ``r_<perf>``, ``p_<perf>`` per
        performance column, and ``note`` (why a cell is undefined, empty otherwise)."""
        record: dict[str, Any] = {"metric": self.metric, "n_slices": self.n, "excluded_slices": self.excluded}
        notes = []
        for column, cell in self.cells.items():
            record.update({f"r2_{column}": cell.r2, f"r_{column}": cell.r, f"p_{column}": cell.p})
            if cell.note:
                notes.append(f"{cell.note} (R² of {column} set to 0)")
        record["note"] = "; ".join(notes)
        return record


def r2_table(per_slice: Iterable[Mapping[str, Any]] | JoinedSlices, difficulty: DifficultyTable | None = None,
             metrics: Sequence[str] | None = None,
             performance: Sequence[str] = DEFAULT_PERFORMANCE) -> list[R2Row]:
    """The R² table: rows = difficulty metrics, columns = signed R² of each performance column.

    Args:
        per_slice: per-slice performance rows (``val_slices.csv`` of every fold), or an already
            :class:`JoinedSlices` (then ``difficulty`` is not needed).
        difficulty: the difficulty table, joined by (case_id, slice_index).
        metrics: the difficulty columns (default: every metric column of the table).
        performance: the performance columns (default Dice and Hausdorff distance).

    Returns:
        One :class:`R2Row` per metric. A cell with fewer than :data:`MIN_POINTS` slices, or a constant
        variable, has R² 0.0, sign 0 and a note.

    Raises:
        ParameterError: a metric the table does not have.
        DatasetError: as :func:`join_slices`.
    """
    if isinstance(per_slice, JoinedSlices):
        joined = per_slice
    else:
        if difficulty is None:
            raise ParameterError("r2_table needs the difficulty table to join the per-slice rows to.")
        joined = join_slices(per_slice, difficulty, performance)
    names = list(metrics) if metrics else list(joined.metrics)
    missing = [name for name in names if name not in joined.metrics]
    if missing:
        raise ParameterError(f"the difficulty table has no {missing[0]!r} column "
                             f"(it has {', '.join(joined.metrics) or 'none'}).")
    rows = []
    for metric in names:
        keep = joined.valid[metric]
        cells = {}
        for column in performance:
            x, y = joined.pairs(metric, column)
            if x.size < MIN_POINTS:
                cells[column] = _undefined(x, y, f"only {x.size} slice(s) with a valid {metric}")
            else:
                cells[column] = r2_with_sign(x, y, metric, column)
        rows.append(R2Row(metric, int(keep.sum()), int((~keep).sum()), cells))
    return rows
