"""The prepared dataset on disk, the one layout that difficulty, training and analysis read.

::

    OUT/prepare.json          parameters, lesionseg version, channels, cases
    OUT/slices.csv            one row per slice: case_id, patient_id, slice_index, flipped,
                              lesion_pixels, lesion_area_mm2, has_lesion
    OUT/cases/<case_id>.npz   images (N, C, S, S) float32 (C: the channels, then with --mirror-difference
                              each one's mirrored difference, :attr:`PreparedDataset.array_channels`), masks (N, S, S) uint8, brains (N, S, S) uint8,
                              and with k context slices ``context`` (N, C, 2k, S, S) float32 (the
                              neighbours of each slice, :mod:`lesionseg.preprocess.context`)
    OUT/cases/<case_id>.json  the preparation record (see :class:`PrepareRecord`)

Rows of ``slices.csv`` for a case are in the order of that case's arrays (increasing slice_index).
"""

from __future__ import annotations

import csv
import io as text_io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lesionseg.errors import DatasetError, InputFileError
from lesionseg.io import atomic_path, write_json_atomic, write_text_atomic
from lesionseg.preprocess.config import PrepareConfig
from lesionseg.preprocess.record import PrepareRecord

SLICE_COLUMNS = ("case_id", "patient_id", "slice_index", "flipped", "lesion_pixels", "lesion_area_mm2", "has_lesion")


@dataclass(frozen=True)
class CaseArrays:
    """A prepared case's arrays: images (N, C, S, S) float32, masks and brains (N, S, S) uint8, and the
    neighbouring slices (N, C, 2k, S, S) float32 (None when the dataset was prepared without them)."""

    images: np.ndarray
    masks: np.ndarray
    brains: np.ndarray
    context: np.ndarray | None = None


def case_paths(out: Path, case_id: str) -> tuple[Path, Path]:
    """The ``.npz`` and ``.json`` paths of a prepared case."""
    return out / "cases" / f"{case_id}.npz", out / "cases" / f"{case_id}.json"


def write_case_arrays(path: Path, images: np.ndarray, masks: np.ndarray, brains: np.ndarray,
                      context: np.ndarray | None = None) -> None:
    """Write a case's arrays as a compressed ``.npz``, atomically (``context`` only when given)."""
    arrays = {"images": images.astype(np.float32), "masks": masks.astype(np.uint8), "brains": brains.astype(np.uint8)}
    if context is not None:
        arrays["context"] = context.astype(np.float32)
    with atomic_path(path) as temporary:
        with temporary.open("wb") as handle:
            np.savez_compressed(handle, **arrays)


def format_slice_rows(rows: list[dict[str, Any]]) -> str:
    """``slices.csv`` text for the given rows."""
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SLICE_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "flipped": int(row["flipped"]), "has_lesion": int(row["has_lesion"]),
                         "lesion_area_mm2": f"{row['lesion_area_mm2']:.6g}"})
    return buffer.getvalue()


def write_dataset_index(out: Path, config: PrepareConfig, rows: list[dict[str, Any]], cases: list[dict[str, Any]],
                        extra: dict[str, Any] | None = None) -> None:
    """Write ``slices.csv`` and then ``prepare.json`` (the latter last: its presence marks completion)."""
    from lesionseg import __version__

    write_text_atomic(out / "slices.csv", format_slice_rows(rows))
    write_json_atomic(out / "prepare.json", {"lesionseg_version": __version__, "config": config.to_dict(),
                                             "cases": cases, **(extra or {})})


class PreparedDataset:
    """Read access to a prepared dataset folder.

    Attributes:
        root: the folder.
        info: the parsed ``prepare.json``.
        config: the :class:`PrepareConfig` used.
        slices: one dict per slice (typed: ints, floats, bools), in file order.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        index = self.root / "prepare.json"
        if not self.root.is_dir():
            raise InputFileError(f"{self.root} is not a folder; give the folder written by 'lesionseg prepare'.")
        if not index.is_file():
            raise DatasetError(f"{self.root} is not a prepared dataset (no prepare.json); run 'lesionseg prepare' first.")
        try:
            self.info = json.loads(index.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DatasetError(f"{index} is not valid JSON ({error}).") from error
        self.config = PrepareConfig.from_dict(self.info.get("config", {}))
        self.slices = self._read_slices(self.root / "slices.csv")
        self._arrays = lru_cache(maxsize=64)(self._load_arrays)

    @staticmethod
    def _read_slices(path: Path) -> list[dict[str, Any]]:
        if not path.is_file():
            raise DatasetError(f"{path} is missing; the prepared dataset is incomplete.")
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        typed = []
        for line, row in enumerate(rows, start=2):
            try:
                typed.append({
                    "case_id": row["case_id"], "patient_id": row["patient_id"],
                    "slice_index": int(row["slice_index"]), "flipped": row["flipped"] in ("1", "True", "true"),
                    "lesion_pixels": int(row["lesion_pixels"]), "lesion_area_mm2": float(row["lesion_area_mm2"]),
                    "has_lesion": row["has_lesion"] in ("1", "True", "true"),
                })
            except (KeyError, ValueError) as error:
                raise DatasetError(f"{path}, line {line}: malformed row ({error}).") from error
        return typed

    @property
    def case_ids(self) -> list[str]:
        """Case ids in file order."""
        return list(dict.fromkeys(row["case_id"] for row in self.slices))

    @property
    def channels(self) -> list[str]:
        return list(self.info.get("channels") or self.config.channels or [])

    @property
    def size(self) -> int:
        return int(self.config.size)

    @property
    def array_channels(self) -> list[str]:
        """The names along the arrays' channel axis: the channels' planes (a CT channel's windows), then their
        mirrored differences when prepared with them (:meth:`PrepareConfig.input_planes`)."""
        return self.config.input_planes(self.channels)

    def require_mirror_difference(self, wanted: bool, source: str) -> None:
        """Refuse a model whose input has (``wanted``) or lacks the mirrored-difference channels of this dataset.

        Raises:
            DatasetError: one sentence naming ``source`` (the bundle) and what to prepare.
        """
        if bool(wanted) and not self.config.mirror_difference:
            raise DatasetError(f"{source} takes the mirrored-hemisphere difference channels but {self.root} was "
                               "prepared without them; prepare the dataset again with --mirror-difference.")
        if not wanted and self.config.mirror_difference:
            raise DatasetError(f"{source} takes no mirrored-hemisphere difference channels but {self.root} was "
                               "prepared with them; prepare the dataset again without --mirror-difference.")

    @property
    def context_slices(self) -> int:
        """Neighbouring slices stored on each side of every slice (0 for datasets of older versions)."""
        return int(self.config.context_slices)

    def require_context(self, context_slices: int) -> None:
        """Refuse a network input with more neighbours than were prepared, saying to prepare again.

        Raises:
            DatasetError: the dataset holds fewer than ``context_slices`` neighbours on each side.
        """
        if context_slices > self.context_slices:
            raise DatasetError(
                f"{self.root} holds {self.context_slices} neighbouring slice(s) on each side, but this training "
                f"uses {context_slices} (2.5D input); prepare the dataset again with this version "
                f"('lesionseg prepare DATASET {self.root} --context {context_slices}'), or train with "
                f"--context {self.context_slices}.")

    def case_slices(self, case_id: str) -> list[dict[str, Any]]:
        """The rows of one case (in array order)."""
        return [row for row in self.slices if row["case_id"] == case_id]

    def _load_arrays(self, case_id: str) -> CaseArrays:
        path, _ = case_paths(self.root, case_id)
        try:
            with np.load(path) as data:
                context = data["context"] if "context" in data.files else None
                return CaseArrays(data["images"], data["masks"], data["brains"], context)
        except FileNotFoundError:
            raise DatasetError(f"{path} is missing; the prepared dataset is incomplete.") from None
        except (OSError, ValueError, KeyError) as error:
            raise DatasetError(f"{path} is not a readable prepared case ({error}).") from error

    def arrays(self, case_id: str) -> CaseArrays:
        """The arrays of one case (cached)."""
        return self._arrays(case_id)

    def record(self, case_id: str) -> PrepareRecord:
        """The preparation record of one case."""
        return PrepareRecord.load(case_paths(self.root, case_id)[1])
