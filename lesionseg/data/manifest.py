"""CSV manifests: one row per case with ``case_id``, optional ``patient_id``, one column per channel, ``mask``
(and optionally ``brain_mask``, a user-supplied brain mask that preparation uses instead of extracting one).

Paths may be absolute or relative to the CSV file's folder. Columns other than these are kept as metadata.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lesionseg.data.case import Case
from lesionseg.data.channels import channel_or_lower
from lesionseg.errors import DatasetError

RESERVED_COLUMNS = {"case_id", "patient_id", "mask", "label", "brain_mask"}
#: metadata columns that are not channels
METADATA_COLUMNS = {"split", "notes", "age", "sex", "site", "lesion_ml", "onset_hours"}


def discover_manifest(csv_path: Path) -> list[Case]:
    """Read the cases listed in a CSV manifest.

    Raises:
        DatasetError: no ``case_id`` column, no channel columns, duplicate case ids, or an empty row.
    """
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip() for name in (reader.fieldnames or [])]
            rows = [{(key or "").strip(): (value or "").strip() for key, value in row.items()} for row in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{csv_path} is not a readable CSV file ({error}).") from error
    if "case_id" not in columns:
        raise DatasetError(f"{csv_path} has no 'case_id' column (columns: {', '.join(columns) or 'none'}).")
    channel_columns = [c for c in columns if c.lower() not in RESERVED_COLUMNS | METADATA_COLUMNS]
    if not channel_columns:
        raise DatasetError(f"{csv_path} has no channel columns (e.g. 'flair'), only: {', '.join(columns)}.")
    base = csv_path.parent
    cases = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        case_id = row.get("case_id", "")
        if not case_id:
            raise DatasetError(f"{csv_path}, line {line}: the case_id is empty.")
        if case_id in seen:
            raise DatasetError(f"{csv_path}, line {line}: case_id {case_id} appears twice.")
        seen.add(case_id)
        channels = {}
        for column in channel_columns:
            if not row.get(column):
                raise DatasetError(f"{csv_path}, line {line}: case {case_id} has no path in column '{column}'.")
            channels[channel_or_lower(column)] = _resolve(base, row[column])
        mask = _resolve(base, row["mask"]) if row.get("mask") else None
        metadata = {"layout": "manifest"}
        metadata.update({c: row[c] for c in columns if c.lower() in METADATA_COLUMNS and row.get(c)})
        if row.get("brain_mask"):
            metadata["brain_mask"] = _resolve(base, row["brain_mask"])
        if row.get("label"):
            metadata["label"] = int(row["label"])
        cases.append(Case(case_id, row.get("patient_id") or case_id, channels, mask, metadata))
    return cases


def _resolve(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path)
