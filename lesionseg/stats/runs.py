"""Read the tables of a training run folder (written by ``lesionseg train``, see :mod:`lesionseg.train.run`).

::

    RUN/train_config.json   RUN/folds.csv   RUN/difficulty.csv (when the curriculum used one)
    RUN/fold_<i>/log.csv, val_cases.csv, val_slices.csv   (RUN/all_data/ for an all-data model)

CSV cells are typed on reading: integers and floats become numbers, ``True``/``False`` booleans, an
empty cell ``None`` (the trainer writes non-finite values and epochs without validation as empty).
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lesionseg.errors import DatasetError, InputFileError

_FOLD_FOLDER = re.compile(r"^fold_(\d+)$")


def typed_cell(text: str | None) -> Any:
    """A CSV cell as None (empty), bool (``True``/``False``), int, float or the text itself."""
    if text is None:
        return None
    cleaned = text.strip()
    if cleaned == "":
        return None
    if cleaned in ("True", "False", "true", "false"):
        return cleaned.lower() == "true"
    for kind in (int, float):
        try:
            return kind(cleaned)
        except ValueError:
            pass
    return cleaned


#: Columns kept as text (an id such as ``0001`` must not become the number 1).
TEXT_COLUMNS: tuple[str, ...] = ("case_id", "patient_id")


def read_csv_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV file with typed cells (see :func:`typed_cell`; :data:`TEXT_COLUMNS` stay text).

    Raises:
        InputFileError: the file cannot be read or is not UTF-8 text.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [{key: (value if key in TEXT_COLUMNS else typed_cell(value))
                     for key, value in row.items() if key is not None}
                    for row in csv.DictReader(handle)]
    except (OSError, UnicodeDecodeError) as error:
        raise InputFileError(f"{path} cannot be read as a CSV table ({error}).") from error


@dataclass
class RunData:
    """The tables of a training run.

    Attributes:
        root: the run folder.
        config: ``train_config.json`` as a dict ({} when absent).
        folds: rows of ``folds.csv`` (fold, train_slices, epochs, ..., val_dice, val_hd95_mm, ...).
        fold_dirs: fold name (``"0"``, ``"1"``, ..., or ``"all"``) -> its folder, in fold order.
        logs: fold name -> rows of its ``log.csv`` (one per epoch).
        val_cases: rows of every fold's ``val_cases.csv``, each with its ``fold`` added.
        val_slices: rows of every fold's ``val_slices.csv``, each with its ``fold`` added.
    """

    root: Path
    config: dict[str, Any]
    folds: list[dict[str, Any]]
    fold_dirs: dict[str, Path]
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    val_cases: list[dict[str, Any]] = field(default_factory=list)
    val_slices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The run folder's name."""
        return self.root.name

    @property
    def difficulty_path(self) -> Path | None:
        """``RUN/difficulty.csv`` when it exists."""
        path = self.root / "difficulty.csv"
        return path if path.is_file() else None

    @property
    def bundle_path(self) -> Path | None:
        """``RUN/model.lsb`` when it exists."""
        path = self.root / "model.lsb"
        return path if path.is_file() else None

    def values(self, level: str, column: str) -> dict[str, float]:
        """One metric per case (``level="case"``), per fold (``"fold"``) or per slice (``"slice"``).

        Returns:
            id -> value (case id; fold name; ``"case_id:slice_index"``); rows without a value are left out.
        """
        if level == "case":
            rows, key = self.val_cases, lambda r: str(r["case_id"])
        elif level == "slice":
            rows, key = self.val_slices, lambda r: f"{r['case_id']}:{r['slice_index']}"
        elif level == "fold":
            rows, key = self.folds, lambda r: str(r["fold"])
        else:
            raise ValueError(f"unknown level {level!r}")
        return {key(r): float(r[column]) for r in rows if r.get(column) is not None}


def _fold_sort_key(name: str) -> tuple[int, int]:
    return (1, 0) if name == "all" else (0, int(name))


def read_run(path: str | os.PathLike) -> RunData:
    """Read a run folder's configuration and tables.

    Args:
        path: the run folder given to ``lesionseg train``.

    Returns:
        A :class:`RunData`; folds without ``val_cases.csv`` / ``val_slices.csv`` (an all-data model)
        contribute no validation rows.

    Raises:
        InputFileError: the folder does not exist or is not a run folder (no ``folds.csv`` and no
            ``fold_<i>/`` or ``all_data/`` folder).
        DatasetError: ``train_config.json`` is not valid JSON.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputFileError(f"{root} is not a folder; give a run folder written by 'lesionseg train'.")
    fold_dirs: dict[str, Path] = {}
    for child in root.iterdir():
        match = _FOLD_FOLDER.match(child.name)
        if child.is_dir() and match:
            fold_dirs[match.group(1)] = child
        elif child.is_dir() and child.name == "all_data":
            fold_dirs["all"] = child
    fold_dirs = {name: fold_dirs[name] for name in sorted(fold_dirs, key=_fold_sort_key)}
    folds_csv = root / "folds.csv"
    if not folds_csv.is_file() and not fold_dirs:
        raise InputFileError(f"{root} is not a training run folder (no folds.csv and no fold_<i>/ folder); "
                             "give a folder written by 'lesionseg train'.")
    config: dict[str, Any] = {}
    config_path = root / "train_config.json"
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DatasetError(f"{config_path} is not valid JSON ({error}).") from error
    run = RunData(root, config, read_csv_rows(folds_csv) if folds_csv.is_file() else [], fold_dirs)
    for name, folder in fold_dirs.items():
        if (folder / "log.csv").is_file():
            run.logs[name] = read_csv_rows(folder / "log.csv")
        for table, rows in (("val_cases.csv", run.val_cases), ("val_slices.csv", run.val_slices)):
            if (folder / table).is_file():
                rows.extend({"fold": name, **row} for row in read_csv_rows(folder / table))
    return run
