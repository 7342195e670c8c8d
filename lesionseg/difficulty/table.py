"""The per-slice difficulty table: one row per lesion slice, in memory and as a CSV file.

::

    case_id,slice_index,area_mm2,contrast_fisher,contrast_valid
    sub-strokecase0001,12,153.125,2.41,1
    ...

Columns: ``case_id`` and ``slice_index`` (the slice's index along the prepared grid's slice axis, as in
``slices.csv``), then one column per difficulty metric among :data:`METRIC_COLUMNS` (``area_mm2``,
``contrast_fisher``, ``gradient``, ``human``), then flag columns (``contrast_valid``: 1 when F could be
measured, 0 when the slice had too few pixels and got the documented value 0.0). Every metric value is a
finite number; ``human`` may also hold the ratings ``easy``/``medium``/``hard``, read as the scores 0/1/2
of :func:`lesionseg.difficulty.scales.rating_scores` and written back as those scores. Other columns are ignored
(with a warning) so that a table annotated in a spreadsheet still reads.
"""

from __future__ import annotations

import csv
import io as text_io
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lesionseg.difficulty.scales import HUMAN_RATINGS
from lesionseg.errors import DatasetError, InputFileError, ParameterError
from lesionseg.io import write_text_atomic

if TYPE_CHECKING:
    from lesionseg.preprocess import PreparedDataset

LOG = logging.getLogger(__name__)

KEY_COLUMNS: tuple[str, ...] = ("case_id", "slice_index")
#: Difficulty metric columns, in the order they are written.
METRIC_COLUMNS: tuple[str, ...] = ("area_mm2", "contrast_fisher", "gradient", "human")
#: 0/1 flag columns, in the order they are written.
FLAG_COLUMNS: tuple[str, ...] = ("contrast_valid",)


@dataclass
class DifficultyTable:
    """Difficulty metrics of lesion slices.

    Attributes:
        case_ids: the case of each row.
        slice_indices: the slice index of each row (int64), as in ``slices.csv``.
        metrics: metric column name (see :data:`METRIC_COLUMNS`) -> float64 values, one per row, finite.
        flags: flag column name (see :data:`FLAG_COLUMNS`) -> bool values, one per row.
        source: the file it was read from, if any.

    Raises:
        ParameterError: columns of different lengths, unknown column names, NaN or infinite values, or a
            (case_id, slice_index) pair that appears twice.
    """

    case_ids: list[str]
    slice_indices: np.ndarray
    metrics: dict[str, np.ndarray]
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    source: Path | None = None

    def __post_init__(self) -> None:
        self.case_ids = [str(c) for c in self.case_ids]
        self.slice_indices = np.asarray(self.slice_indices, dtype=np.int64).reshape(-1)
        n = len(self.case_ids)
        if self.slice_indices.size != n:
            raise ParameterError(
                f"a difficulty table needs one slice index per case id ({n}), not {self.slice_indices.size}."
            )
        for kind, columns, known in (("metric", self.metrics, METRIC_COLUMNS), ("flag", self.flags, FLAG_COLUMNS)):
            for name in list(columns):
                if name not in known:
                    raise ParameterError(f"unknown difficulty {kind} column {name!r}; known: {', '.join(known)}.")
                values = np.asarray(columns[name], dtype=bool if kind == "flag" else np.float64).reshape(-1)
                if values.size != n:
                    raise ParameterError(f"difficulty column {name!r} has {values.size} values for {n} rows.")
                if kind == "metric" and not np.all(np.isfinite(values)):
                    bad = int(np.flatnonzero(~np.isfinite(values))[0])
                    raise ParameterError(
                        f"difficulty column {name!r} holds {values[bad]} for case {self.case_ids[bad]} slice "
                        f"{self.slice_indices[bad]}; every lesion slice needs a finite value."
                    )
                columns[name] = values
        self.metrics = {name: self.metrics[name] for name in METRIC_COLUMNS if name in self.metrics}
        self.flags = {name: self.flags[name] for name in FLAG_COLUMNS if name in self.flags}
        keys = self.keys
        if len(set(keys)) != n:
            twice = next(key for key, count in Counter(keys).items() if count > 1)
            raise ParameterError(f"case {twice[0]} slice {twice[1]} appears twice in the difficulty table.")

    def __len__(self) -> int:
        return len(self.case_ids)

    @property
    def keys(self) -> list[tuple[str, int]]:
        """``(case_id, slice_index)`` of each row."""
        return list(zip(self.case_ids, (int(i) for i in self.slice_indices)))

    @property
    def metric_names(self) -> list[str]:
        """The metric columns present, in :data:`METRIC_COLUMNS` order."""
        return list(self.metrics)

    def join(self, prepared: PreparedDataset, *, strict: bool = True) -> np.ndarray:
        """Line the rows up with the slices of a prepared dataset.

        Args:
            prepared: the prepared dataset the table was computed on.
            strict: require a row for every lesion slice of ``prepared``.

        Returns:
            An int64 array with one entry per row of ``prepared.slices``: the table row of that slice, or
            -1 for a lesion-free slice (and, when not ``strict``, for a lesion slice without a row). E.g.
            ``rows = table.join(prepared); area = table.metrics["area_mm2"][rows[rows >= 0]]``.

        Raises:
            DatasetError: a row that is not a lesion slice of ``prepared``, or (strict) a lesion slice
                without a row.
        """
        where = {key: position for position, key in enumerate(self.keys)}
        rows = np.full(len(prepared.slices), -1, dtype=np.int64)
        name = self.source or "the difficulty table"
        for position, row in enumerate(prepared.slices):
            key = (row["case_id"], int(row["slice_index"]))
            found = where.pop(key, None)
            if found is None:
                if strict and row["has_lesion"]:
                    raise DatasetError(
                        f"{name} has no row for lesion slice {key[1]} of case {key[0]} of {prepared.root}; "
                        "it was computed on another prepared dataset, run 'lesionseg difficulty' again."
                    )
                continue
            if not row["has_lesion"]:
                raise DatasetError(
                    f"{name} has a row for case {key[0]} slice {key[1]}, which has no lesion in {prepared.root}."
                )
            rows[position] = found
        if where:
            case_id, index = next(iter(where))
            raise DatasetError(
                f"{name} has a row for case {case_id} slice {index}, which is not a slice of {prepared.root} "
                f"({len(where)} such row(s)); it belongs to another prepared dataset."
            )
        return rows

    def to_csv_text(self) -> str:
        """The table as CSV text (see the module docstring)."""
        buffer = text_io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*KEY_COLUMNS, *self.metrics, *self.flags])
        for position, (case_id, index) in enumerate(self.keys):
            writer.writerow([case_id, index,
                             *(format(float(values[position]), ".10g") for values in self.metrics.values()),
                             *(int(values[position]) for values in self.flags.values())])
        return buffer.getvalue()


def write_difficulty(table: DifficultyTable, path: str | os.PathLike) -> Path:
    """Write a difficulty table as CSV, atomically; returns the path."""
    path = Path(path)
    write_text_atomic(path, table.to_csv_text())
    return path


def _metric_value(text: str, column: str, path: Path, line: int) -> float:
    cleaned = text.strip()
    if column == "human" and cleaned.lower() in HUMAN_RATINGS:
        return float(HUMAN_RATINGS.index(cleaned.lower()))
    try:
        value = float(cleaned)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = repr(text) if cleaned else "an empty value"
        raise DatasetError(
            f"{path}, line {line}: column '{column}' holds {shown}, not a finite number; every lesion slice needs "
            "a value (recompute the table with 'lesionseg difficulty' or remove the row)."
        )
    return value


def read_difficulty(path: str | os.PathLike) -> DifficultyTable:
    """Read and validate a difficulty table written by :func:`write_difficulty` (or by hand).

    Args:
        path: the CSV file.

    Returns:
        The table, with ``source`` set to ``path``.

    Raises:
        InputFileError: the file does not exist or cannot be read.
        DatasetError: a missing key column, no metric column, or a bad value, naming the file, the column
            and the line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(f"{path} does not exist; write it with 'lesionseg difficulty'.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path} cannot be read as a CSV text file ({error}).") from error
    reader = csv.DictReader(text_io.StringIO(text))
    header = [name.strip() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [name for name in KEY_COLUMNS if name not in header]
    if missing:
        raise DatasetError(f"{path} has no {' or '.join(repr(m) for m in missing)} column; a difficulty table "
                           f"needs {', '.join(KEY_COLUMNS)} and at least one of {', '.join(METRIC_COLUMNS)}.")
    metrics = [name for name in METRIC_COLUMNS if name in header]
    flags = [name for name in FLAG_COLUMNS if name in header]
    if not metrics:
        raise DatasetError(
            f"{path} has no difficulty column; expected at least one of {', '.join(METRIC_COLUMNS)}."
        )
    ignored = [name for name in header if name not in (*KEY_COLUMNS, *METRIC_COLUMNS, *FLAG_COLUMNS)]
    if ignored:
        LOG.warning("%s: ignoring unknown column(s) %s", path, ", ".join(ignored))
    case_ids: list[str] = []
    indices: list[int] = []
    values: dict[str, list[float]] = {name: [] for name in metrics}
    flag_values: dict[str, list[bool]] = {name: [] for name in flags}
    seen: dict[tuple[str, int], int] = {}
    for line, row in enumerate(reader, start=2):
        if None in row:
            raise DatasetError(f"{path}, line {line}: more values than columns.")
        case_id = (row.get("case_id") or "").strip()
        if not case_id:
            raise DatasetError(f"{path}, line {line}: column 'case_id' is empty.")
        try:
            index = int((row.get("slice_index") or "").strip())
        except ValueError:
            raise DatasetError(f"{path}, line {line}: column 'slice_index' holds {row.get('slice_index')!r}, "
                               "not a whole number.") from None
        if (case_id, index) in seen:
            raise DatasetError(f"{path}, line {line}: case {case_id} slice {index} already appears on line "
                               f"{seen[(case_id, index)]}.")
        seen[(case_id, index)] = line
        case_ids.append(case_id)
        indices.append(index)
        for name in metrics:
            values[name].append(_metric_value(row.get(name) or "", name, path, line))
        for name in flags:
            flag = (row.get(name) or "").strip()
            if flag not in ("0", "1"):
                raise DatasetError(f"{path}, line {line}: column '{name}' holds {flag!r}, not 0 or 1.")
            flag_values[name].append(flag == "1")
    if not case_ids:
        raise DatasetError(f"{path} has a header but no rows; it lists no lesion slice.")
    return DifficultyTable(case_ids, np.asarray(indices), {k: np.asarray(v) for k, v in values.items()},
                           {k: np.asarray(v, dtype=bool) for k, v in flag_values.items()}, source=path)
