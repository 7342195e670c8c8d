"""Label tables of multi-label masks: which value is which class, with its name and colour.

Where a mask's table is found (:func:`find_label_table`), first match wins:

1. a BIDS look-up table beside the mask: the mask's name with ``.tsv`` for its image extension
   (``sub-X_ses-0001_msk.nii.gz`` -> ``sub-X_ses-0001_msk.tsv``), as ``_dseg.tsv`` accompanies ``_dseg.nii.gz``;
2. a ``dseg.tsv`` in the mask's folder or any folder above it up to the dataset root (BIDS inheritance);
3. the ``labels`` of an nnU-Net ``dataset.json`` at the dataset root (``{"background": 0, "core": 1, ...}``).

The TSV has BIDS's ``dseg.tsv`` columns: ``index`` and ``name`` (required), ``color`` (``#rrggbb``, optional;
a default palette otherwise). Value 0 is the background and is not listed as a class.
"""

from __future__ import annotations

import csv
import io as text_io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lesionseg.errors import DatasetError
from lesionseg.io import image_extension, strip_image_extension, write_text_atomic
from lesionseg.labels import SegmentLabel

#: colours of classes whose table gives none (red, yellow, blue, green, ...), RGB in 0..1
DEFAULT_COLOURS: tuple[tuple[float, float, float], ...] = (
    (0.85, 0.2, 0.18), (0.95, 0.85, 0.2), (0.2, 0.45, 0.85), (0.3, 0.7, 0.3), (0.7, 0.35, 0.8))


@dataclass(frozen=True)
class LabelTable:
    """The classes of a multi-label mask (background 0 excluded), by increasing value."""

    labels: tuple[SegmentLabel, ...]

    def names(self) -> dict[int, str]:
        """value -> name."""
        return {label.value: label.name for label in self.labels}

    def name_of(self, value: int) -> str | None:
        return self.names().get(int(value))

    def to_tsv(self) -> str:
        """The table as BIDS ``dseg.tsv`` text (index, name, color)."""
        buffer = text_io.StringIO()
        writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "name", "color"])
        for label in self.labels:
            writer.writerow([label.value, label.name, "#" + "".join(f"{round(255 * c):02x}" for c in label.color)])
        return buffer.getvalue()

    @classmethod
    def from_names(cls, names: dict[int, str], colours: dict[int, tuple[float, float, float]] | None = None
                   ) -> "LabelTable":
        """A table from value -> name (and optional value -> RGB colour in 0..1); value 0 is dropped."""
        colours = colours or {}
        values = sorted(v for v in names if int(v) != 0)
        return cls(tuple(SegmentLabel(str(names[v]), int(v),
                                      colours.get(v, DEFAULT_COLOURS[i % len(DEFAULT_COLOURS)]))
                         for i, v in enumerate(values)))


def label_table_path(mask_path: str | os.PathLike) -> Path:
    """Where a mask's own table goes: its name with ``.tsv`` for its image extension."""
    path = Path(mask_path)
    stem = strip_image_extension(path) if image_extension(path) else path.stem
    return path.with_name(stem + ".tsv")


def write_label_table(mask_path: str | os.PathLike, table: LabelTable) -> Path:
    """Write ``table`` beside the mask (:func:`label_table_path`), atomically; returns the path."""
    path = label_table_path(mask_path)
    write_text_atomic(path, table.to_tsv())
    return path


def _colour(text: str, path: Path) -> tuple[float, float, float]:
    value = text.strip().lstrip("#")
    if len(value) != 6:
        raise DatasetError(f"{path}: colour {text!r} is not #rrggbb.")
    try:
        return tuple(int(value[i:i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]
    except ValueError:
        raise DatasetError(f"{path}: colour {text!r} is not #rrggbb.") from None


def read_label_table(path: str | os.PathLike) -> LabelTable:
    """Read a BIDS ``dseg.tsv``-style table (columns ``index``, ``name``, optional ``color``).

    Raises:
        DatasetError: a missing column, a non-integer index, a repeated index or a bad colour.
    """
    path = Path(path)
    rows = list(csv.DictReader(text_io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t"))
    if not rows or "index" not in rows[0] or "name" not in rows[0]:
        raise DatasetError(f"{path} must be a tab-separated table with 'index' and 'name' columns.")
    names, colours = {}, {}
    for row in rows:
        try:
            value = int(str(row["index"]).strip())
        except ValueError:
            raise DatasetError(f"{path}: index {row['index']!r} is not a whole number.") from None
        if value in names:
            raise DatasetError(f"{path}: index {value} is listed twice.")
        names[value] = str(row["name"]).strip()
        if row.get("color"):
            colours[value] = _colour(row["color"], path)
    return LabelTable.from_names(names, colours)


def find_label_table(mask_path: str | os.PathLike, root: str | os.PathLike | None = None) -> LabelTable | None:
    """The label table of a mask (see the module docstring for where it is looked for), or None.

    Args:
        mask_path: the mask file.
        root: the dataset root (the highest folder searched for ``dseg.tsv`` and for ``dataset.json``);
            None: the mask's folder only.
    """
    mask_path = Path(mask_path)
    own = label_table_path(mask_path)
    if own.is_file():
        return read_label_table(own)
    top = Path(root).resolve() if root is not None else mask_path.parent.resolve()
    folder = mask_path.parent.resolve()
    while True:
        if (folder / "dseg.tsv").is_file():
            return read_label_table(folder / "dseg.tsv")
        if folder == top or folder.parent == folder or top not in folder.parents:
            break
        folder = folder.parent
    description = top / "dataset.json"
    if description.is_file():
        try:
            labels = json.loads(description.read_text(encoding="utf-8")).get("labels")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            labels = None
        if isinstance(labels, dict) and all(isinstance(v, int) for v in labels.values()):
            return LabelTable.from_names({value: name for name, value in labels.items()})
    return None


def table_classes(table: LabelTable) -> list[dict[str, Any]]:
    """A table's classes as :attr:`lesionseg.preprocess.PrepareConfig.classes` entries (class order = value order),
    with the terminology of the classes LesionSeg knows by name (:func:`lesionseg.labels.known_label`)."""
    from lesionseg.labels import known_label

    entries = []
    for label in table.labels:
        label = known_label(label)
        entry: dict[str, Any] = {"name": label.name, "value": label.value, "color": [float(c) for c in label.color]}
        if label.terminology:
            entry["terminology"] = label.terminology
        entries.append(entry)
    return entries


def dataset_classes(cases: Sequence[Any], root: str | os.PathLike | None = None) -> list[dict[str, Any]] | None:
    """The lesion classes of a dataset whose masks have a label table of two or more classes, else None.

    Every case with a mask must then find the same table (same values and names); a dataset that mixes
    tables, or masks with and without one, is refused.

    Args:
        cases: the dataset's cases (:class:`lesionseg.data.Case`).
        root: the dataset folder (where ``dseg.tsv`` and ``dataset.json`` are looked for); None: each mask's
            own folder.

    Raises:
        DatasetError: masks whose tables differ.
    """
    first: tuple[Any, LabelTable | None] | None = None
    for case in cases:
        if case.mask is None or image_extension(case.mask) == ".seg.nrrd":
            continue
        table = find_label_table(case.mask, root)
        key = None if table is None or len(table.labels) < 2 else tuple((l.value, l.name) for l in table.labels)
        if first is None:
            first = (key, table)
        elif key != first[0]:
            raise DatasetError(f"the masks of case {case.case_id} and of the first case have different label tables "
                               "(or one has none); a dataset's masks must share one table of classes.")
    if first is None or first[0] is None:
        return None
    return table_classes(first[1])
