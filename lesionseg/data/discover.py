"""Find the cases of a dataset, whatever its layout, and check them."""

from __future__ import annotations

import os
from pathlib import Path

from lesionseg.data.bids import discover_bids, looks_like_bids
from lesionseg.data.case import Case
from lesionseg.data.isles24 import discover_isles24, looks_like_isles24
from lesionseg.data.manifest import discover_manifest
from lesionseg.data.nnunet import discover_nnunet, looks_like_nnunet
from lesionseg.data.validation import validate_case
from lesionseg.errors import DatasetError, InputFileError

LAYOUTS = ("isles24", "bids", "nnunet", "manifest")


def detect_layout(root: Path) -> tuple[str, Path]:
    """The layout of ``root`` and the path to read it from.

    ``root`` may be a CSV manifest, a folder holding exactly one CSV manifest (``*.csv`` with a
    ``case_id`` column), an nnU-Net raw dataset folder, an ISLES'24 tree (checked before the other BIDS-like
    trees: see :func:`lesionseg.data.isles24.looks_like_isles24`) or a BIDS-like tree (ISLES'22, ATLAS v2.0).

    Raises:
        InputFileError: the path does not exist or is empty.
        DatasetError: no known layout.
    """
    if not root.exists():
        raise InputFileError(f"{root} does not exist.")
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "manifest", root
        raise DatasetError(f"{root} is a file but not a CSV manifest; give a dataset folder or a .csv manifest.")
    if not any(root.iterdir()):
        raise InputFileError(f"{root} is an empty folder; it holds no dataset.")
    if looks_like_nnunet(root):
        return "nnunet", root
    if looks_like_isles24(root):
        return "isles24", root
    if looks_like_bids(root):
        return "bids", root
    manifests = [p for p in sorted(root.glob("*.csv")) if _has_case_id_column(p)]
    if len(manifests) == 1:
        return "manifest", manifests[0]
    raise DatasetError(
        f"{root} is not a dataset LesionSeg recognises: expected sub-*/ folders (ISLES'22, ISLES'24, ATLAS v2.0 BIDS), "
        "an nnU-Net raw dataset (dataset.json, imagesTr/) or a CSV manifest with a case_id column."
    )


def _has_case_id_column(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            header = handle.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return "case_id" in [column.strip() for column in header.split(",")]


def discover(root: str | os.PathLike, *, validate: bool = True, allow_unaligned_channels: bool = True,
             require_masks: bool = False) -> list[Case]:
    """Find and check every case of a dataset.

    Args:
        root: a dataset folder (ISLES'22 public or flat layout, ISLES'24, ATLAS v2.0, nnU-Net v2 raw) or a CSV
            manifest.
        validate: check each case's files (see :func:`validate_case`); the first bad case raises.
        allow_unaligned_channels: accept channels on different grids (the default: prepare registers them);
            False refuses them (``lesionseg cases --require-aligned``).
        require_masks: refuse cases without a lesion mask (training needs them).

    Returns:
        The cases sorted by case id.

    Raises:
        InputFileError, DatasetError, GeometryError: with one sentence naming the file or case.
    """
    root = Path(root)
    layout, location = detect_layout(root)
    if layout == "isles24":
        cases = discover_isles24(location)
    elif layout == "bids":
        cases = discover_bids(location)
    elif layout == "nnunet":
        cases = discover_nnunet(location)
    else:
        cases = discover_manifest(location)
    if not cases:
        raise DatasetError(f"{root} holds no cases (no image files with a recognised channel name were found).")
    cases.sort(key=lambda case: case.case_id)
    class_values = None
    if validate:  # masks with a label table of several classes are checked against it, not as one label
        from lesionseg.data.label_table import dataset_classes

        classes = dataset_classes(cases, root if layout != "manifest" else None)
        class_values = [entry["value"] for entry in classes] if classes else None
    for case in cases:
        if require_masks and case.mask is None:
            raise DatasetError(f"case {case.case_id} in {root} has no lesion mask; training needs a mask for every case.")
        if validate:
            validate_case(case, allow_unaligned_channels=allow_unaligned_channels, class_values=class_values)
    return cases


def select_channels(cases: list[Case], channels: list[str]) -> list[Case]:
    """Keep only the named channels (in that order) of each case; a case lacking one is an error."""
    selected = []
    for case in cases:
        missing = [name for name in channels if name not in case.channels]
        if missing:
            raise DatasetError(
                f"case {case.case_id} has no {', '.join(repr(m) for m in missing)} channel "
                f"(it has {', '.join(case.channels)})."
            )
        selected.append(Case(case.case_id, case.patient_id, {n: case.channels[n] for n in channels}, case.mask,
                             dict(case.metadata)))
    return selected
