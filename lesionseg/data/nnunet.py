"""nnU-Net v2 raw datasets: ``dataset.json``, ``imagesTr/{case}_{XXXX}.<ending>``, ``labelsTr/{case}.<ending>``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lesionseg.data.case import Case
from lesionseg.data.channels import channel_or_lower
from lesionseg.errors import DatasetError


def looks_like_nnunet(root: Path) -> bool:
    """Whether ``root`` is an nnU-Net raw dataset folder."""
    return (root / "dataset.json").is_file() and ((root / "imagesTr").is_dir() or (root / "imagesTs").is_dir())


def read_dataset_json(root: Path) -> dict:
    """Parse ``dataset.json``, with a clear error when it is not valid JSON or lacks channel names."""
    path = root / "dataset.json"
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not valid JSON ({error}).") from error
    names = description.get("channel_names") or description.get("modality")
    if not isinstance(names, dict) or not names:
        raise DatasetError(f"{path} has no 'channel_names' (e.g. {{\"0\": \"FLAIR\"}}).")
    return description


def discover_nnunet(root: Path) -> list[Case]:
    """Find the cases of an nnU-Net v2 raw dataset (training cases with labels, test cases without).

    Channel names come from ``channel_names`` in ``dataset.json`` (``"FLAIR"`` -> ``flair``, ``"CT"`` ->
    ``ct``). Each case is its own patient (nnU-Net has no patient notion).

    Raises:
        DatasetError: malformed ``dataset.json`` or a case missing one of the declared channels.
    """
    description = read_dataset_json(root)
    names = description.get("channel_names") or description.get("modality")
    ending = description.get("file_ending", ".nii.gz")
    channel_by_index = {int(index): channel_or_lower(str(label)) for index, label in names.items()}
    pattern = re.compile(rf"^(?P<case>.+)_(?P<index>\d{{4}}){re.escape(ending)}$")
    cases = []
    for images_folder, labels_folder in (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")):
        found: dict[str, dict[int, Path]] = {}
        for path in sorted((root / images_folder).glob(f"*{ending}")):
            match = pattern.match(path.name)
            if match:
                found.setdefault(match.group("case"), {})[int(match.group("index"))] = path
        for case_id, files in sorted(found.items()):
            missing = sorted(set(channel_by_index) - set(files))
            if missing:
                raise DatasetError(
                    f"{root / images_folder}: case {case_id} lacks channel file(s) "
                    + ", ".join(f"{case_id}_{index:04d}{ending}" for index in missing) + "."
                )
            channels = {channel_by_index[index]: files[index] for index in sorted(channel_by_index)}
            label = root / labels_folder / f"{case_id}{ending}"
            cases.append(Case(case_id, case_id, channels, label if label.is_file() else None,
                              {"layout": "nnunet", "split": images_folder[-2:]}))
    return cases
