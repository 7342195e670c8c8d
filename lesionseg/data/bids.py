"""Discovery of BIDS-like trees: ISLES'22 (public and flat layouts) and ATLAS v2.0.

File names are ``sub-<label>[_ses-<label>][_<key>-<value>...]_<suffix>.nii[.gz]``. The suffix names the
channel (``FLAIR``, ``dwi``, ``adc``, ``T1w``, ``ct``/``ncct``, matched case-insensitively) or marks a
lesion mask (``msk`` as in ISLES'22, ``mask`` with ``desc-*lesion`` as in ATLAS v2.0). Datatype folders
(``anat/``, ``dwi/``) and a ``rawdata/`` prefix are optional; ISLES'22 keeps masks under ``derivatives/``.
Folders of LesionSeg's own derivatives (``derivatives/lesionseg*``) are not read as data.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from lesionseg.data.case import Case
from lesionseg.data.channels import canonical_channel
from lesionseg.errors import DatasetError

_NAME = re.compile(r"^(?P<stem>sub-[A-Za-z0-9]+(?:_[A-Za-z0-9]+-[A-Za-z0-9]+)*)_(?P<suffix>[A-Za-z0-9]+)\.nii(?:\.gz)?$",
                   re.IGNORECASE)
_MASK_SUFFIXES = {"msk", "mask", "lesion", "roi"}


def _entities(stem: str) -> dict[str, str]:
    parts = stem.split("_")
    return {part.split("-", 1)[0].lower(): part.split("-", 1)[1] for part in parts}


def _is_own_derivative(path: Path, root: Path) -> bool:
    return any(part.lower().startswith("lesionseg") for part in path.relative_to(root).parts[:-1])


def _is_lesion_mask(suffix: str, entities: dict[str, str]) -> bool:
    if suffix not in _MASK_SUFFIXES:
        return False
    description = entities.get("desc", "").lower()
    label = entities.get("label", "").lower()
    # ATLAS: label-L_desc-T1lesion_mask; ISLES: _msk. A brain mask (desc-brain_mask) is not a lesion.
    return suffix == "msk" or "lesion" in description or (not description and label in ("", "l", "lesion"))


def looks_like_bids(root: Path) -> bool:
    """Whether ``root`` holds ``sub-*`` folders (directly or under ``rawdata/``)."""
    return any(p.is_dir() for p in root.glob("sub-*")) or any(p.is_dir() for p in root.glob("rawdata/sub-*"))


def discover_bids(root: Path) -> list[Case]:
    """Find the cases of an ISLES'22- or ATLAS-like tree under ``root``.

    A case is a (subject, session); its id is ``sub-X`` when the subject has one session, else
    ``sub-X_ses-Y``. Its patient id is ``sub-X``.

    Raises:
        DatasetError: two files claim the same channel or mask of one case.
    """
    channels: dict[tuple[str, str], dict[str, Path]] = defaultdict(dict)
    masks: dict[tuple[str, str], Path] = {}
    for path in sorted(root.rglob("sub-*.nii*")):
        if not path.is_file() or _is_own_derivative(path, root):
            continue
        match = _NAME.match(path.name)
        if not match:
            continue
        entities = _entities(match.group("stem"))
        key = (entities["sub"], entities.get("ses", ""))
        suffix = match.group("suffix").lower()
        if _is_lesion_mask(suffix, entities):
            if key in masks and masks[key] != path:
                raise DatasetError(f"{path} and {masks[key]} are both lesion masks of sub-{key[0]}; keep one.")
            masks[key] = path
            continue
        if "derivatives" in (part.lower() for part in path.relative_to(root).parts):
            continue  # derived images (brain masks, registered copies) are not input channels
        channel = canonical_channel(suffix)
        if channel is None:
            continue
        if channel in channels[key]:
            raise DatasetError(
                f"{path} and {channels[key][channel]} are both the '{channel}' channel of sub-{key[0]}; keep one."
            )
        channels[key][channel] = path
    sessions_per_subject: dict[str, int] = defaultdict(int)
    for subject, _session in channels:
        sessions_per_subject[subject] += 1
    cases = []
    for (subject, session), found in sorted(channels.items()):
        case_id = f"sub-{subject}" if sessions_per_subject[subject] == 1 or not session else f"sub-{subject}_ses-{session}"
        layout = "atlas2" if "t1w" in found and len(found) == 1 else "isles22"
        metadata = {"layout": layout, "session": session or None}
        cases.append(Case(case_id, f"sub-{subject}", dict(_ordered(found)), masks.get((subject, session)), metadata))
    return cases


def _ordered(found: dict[str, Path]) -> list[tuple[str, Path]]:
    """Channels in a stable conventional order (DWI, ADC, FLAIR, T1w, ..., then the rest by name)."""
    order = ["dwi", "adc", "flair", "t1w", "t2w", "ct", "cta", "tmax", "ttp", "cbf", "cbv", "mtt"]
    return sorted(found.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0]))
