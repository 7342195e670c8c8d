"""Discovery of the ISLES'24 layout: acute CT (NCCT, CTA, CT perfusion and its maps) with follow-up masks.

The challenge's README and its Zenodo archive spell the tree differently; both are read:

- the raw data under ``raw_data/`` (Zenodo) or ``rawdata/`` (README); sessions ``ses-01``/``ses-02``
  (Zenodo) or ``ses-0001``/``ses-0002`` (README);
- the acute session holds ``sub-X_ses-01_ncct.nii.gz``, ``_cta``, ``_ctp`` (4D CT perfusion) and
  ``perfusion-maps/sub-X_ses-01_{tmax,mtt,cbf,cbv}.nii.gz``; the raw maps are on the CT-perfusion grid,
  the raw CTA on its own;
- ``derivatives/sub-X/ses-01/`` holds the same images already on the NCCT grid, named
  ``..._space-ncct_cta``, ``perfusion-maps/..._space-ncct_tmax`` and so on, plus vessel masks
  (``_lvo-msk``, ``_cow-msk``: not lesions);
- ``derivatives/sub-X/ses-02/`` holds the follow-up MRI on the NCCT grid (``_space-ncct_dwi``, ``_adc``)
  and the final infarct, ``..._space-ncct_lesion-msk.nii.gz``.

A case is a subject (``case_id`` = ``patient_id`` = ``sub-X``): its channels come from the acute session
(the one with the NCCT), its mask from the follow-up session (the next one; a mask of the acute session
is used only when there is no follow-up mask). Channels: ``ct`` (the raw NCCT, the reference grid),
``cta``, and the maps ``tmax``, ``mtt``, ``cbf``, ``cbv`` (``ttp`` when present); for each the
``space-ncct`` derivative is taken when there is one, otherwise the raw image, which ``prepare`` registers
onto the NCCT. ``case.metadata`` records the layout, the sessions, each channel's grid
(``channel_space``: ``"ncct"`` or the raw grid it was acquired on), the channels that need registering
(``register_onto_ct``), the 4D CT perfusion series, the follow-up MRI and the vessel masks (none of
which are channels: the 4D series is not a volume, and the follow-up MRI shows the answer).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from lesionseg.data.case import Case
from lesionseg.errors import DatasetError

_RAW_FOLDERS = ("raw_data", "rawdata")
_NAME = re.compile(
    r"^sub-(?P<subject>[A-Za-z0-9]+)_ses-(?P<session>[A-Za-z0-9]+)"
    r"(?P<entities>(?:_[A-Za-z0-9]+-[A-Za-z0-9]+)*?)_(?P<suffix>[A-Za-z0-9-]+)\.nii(?:\.gz)?$",
    re.IGNORECASE)
#: suffix (lower case) -> channel name, for the acute session's volumes
_CHANNELS = {"ncct": "ct", "ct": "ct", "cta": "cta", "tmax": "tmax", "mtt": "mtt", "cbf": "cbf", "cbv": "cbv",
             "ttp": "ttp"}
_PERFUSION = ("tmax", "mtt", "cbf", "cbv", "ttp")
_FOLLOW_UP = {"dwi": "dwi", "adc": "adc", "flair": "flair"}
_LESION_MASKS = ("lesion-msk", "lesion-mask", "msk")
_OTHER_MASKS = ("lvo-msk", "cow-msk")
#: channel order of an ISLES'24 case: the NCCT (reference) first
_ORDER = ("ct", "cta", "tmax", "mtt", "cbf", "cbv", "ttp")


@dataclass(frozen=True)
class _File:
    path: Path
    subject: str
    session: str
    suffix: str
    space: str | None
    derivative: bool


def _session_number(label: str) -> tuple[int, str]:
    """``"01"`` and ``"0001"`` sort (and compare) as session 1."""
    return (int(label), label) if label.isdigit() else (10**9, label)


def _scan(root: Path) -> list[_File]:
    files = []
    for path in sorted(root.rglob("sub-*.nii*")):
        parts = [part.lower() for part in path.relative_to(root).parts[:-1]]
        if not path.is_file() or any(part.startswith("lesionseg") for part in parts):
            continue
        match = _NAME.match(path.name)
        if not match:
            continue
        entities = dict(part.split("-", 1) for part in match.group("entities").strip("_").split("_") if part)
        files.append(_File(path, match.group("subject"), match.group("session"), match.group("suffix").lower(),
                           entities.get("space", None) and entities["space"].lower(), "derivatives" in parts))
    return files


def looks_like_isles24(root: Path) -> bool:
    """Whether ``root`` is an ISLES'24 tree: a ``raw_data/sub-*`` folder, or an ``rawdata/`` or ``sub-*`` tree
    whose sessions hold ``perfusion-maps/`` or ``*_ctp`` series, or ``derivatives`` with ``space-ncct`` files."""
    if any(p.is_dir() for p in root.glob("raw_data/sub-*")):
        return True
    for base in (root, root / "rawdata"):
        if any(p.is_dir() for p in base.glob("sub-*/ses-*/perfusion-maps")):
            return True
        if any(base.glob("sub-*/ses-*/*_ctp.nii*")):
            return True
    return any(root.glob("derivatives/sub-*/ses-*/*_space-ncct_*.nii*")) or \
        any(root.glob("derivatives/sub-*/ses-*/perfusion-maps/*_space-ncct_*.nii*"))


def discover_isles24(root: Path) -> list[Case]:
    """Find the cases of an ISLES'24 tree (either spelling; see the module docstring).

    Raises:
        DatasetError: a subject without an NCCT, or whose perfusion maps (or CTA, or CT perfusion) have no NCCT
            of the same session, or two files claiming one channel or mask of a case; the sentence names the
            subject and the files.
    """
    by_subject: dict[str, list[_File]] = defaultdict(list)
    for found in _scan(root):
        by_subject[found.subject].append(found)
    return [_case(subject, by_subject[subject]) for subject in sorted(by_subject)]


def _unique(files: list[_File], what: str, case_id: str) -> _File | None:
    if len(files) > 1:
        listed = " and ".join(str(f.path) for f in files[:2])
        raise DatasetError(f"case {case_id}: {listed} are both the {what}; keep one.")
    return files[0] if files else None


def _case(subject: str, files: list[_File]) -> Case:
    case_id = f"sub-{subject}"
    sessions = sorted({f.session for f in files}, key=_session_number)
    ncct_sessions = [s for s in sessions if any(f.suffix in ("ncct", "ct") and not f.derivative and f.session == s
                                                for f in files)]
    acute_volumes = [f for f in files if (f.suffix in _CHANNELS or f.suffix == "ctp") and f.suffix not in ("ncct", "ct")]
    orphans = sorted({f.session for f in acute_volumes} - set(ncct_sessions), key=_session_number)
    if orphans:
        session = orphans[0]
        kinds = sorted({f.suffix for f in acute_volumes if f.session == session})
        raise DatasetError(
            f"case {case_id}: ses-{session} holds {', '.join(kinds)} but no NCCT of the same session "
            f"({case_id}_ses-{session}_ncct.nii.gz); without it the maps cannot be put on a CT grid: add the "
            "NCCT or move the case out of the dataset.")
    if not ncct_sessions:
        found = sorted({f.path.name for f in files})[:3]
        raise DatasetError(
            f"case {case_id}: no NCCT ({case_id}_ses-01_ncct.nii.gz) in any session, only {', '.join(found)}"
            f"{' ...' if len(files) > 3 else ''}; an ISLES'24 case is read from its acute NCCT: add it or move the "
            "subject out of the dataset.")
    acute = ncct_sessions[0]
    later = [s for s in sessions if _session_number(s) > _session_number(acute)]
    follow_up = later[0] if later else None
    channels, spaces, to_register = {}, {}, []
    in_acute = [f for f in files if f.session == acute]
    reference = _unique([f for f in in_acute if f.suffix in ("ncct", "ct") and not f.derivative],
                        "NCCT of the acute session", case_id)
    channels["ct"], spaces["ct"] = reference.path, "ncct"
    for channel in _ORDER[1:]:
        candidates = [f for f in in_acute if _CHANNELS.get(f.suffix) == channel]
        on_ncct = _unique([f for f in candidates if f.derivative and f.space == "ncct"],
                          f"'{channel}' on the NCCT grid", case_id)
        raw = _unique([f for f in candidates if not f.derivative], f"raw '{channel}'", case_id)
        chosen = on_ncct or raw
        if chosen is None:
            continue
        channels[channel] = chosen.path
        spaces[channel] = "ncct" if chosen is on_ncct else ("ctp" if channel in _PERFUSION else channel)
        if chosen is not on_ncct:
            to_register.append(channel)
    mask_sessions = [s for s in (follow_up, acute) if s is not None]
    mask = None
    for session in mask_sessions:
        masks = [f for f in files if f.session == session and f.suffix in _LESION_MASKS]
        on_ncct = [f for f in masks if f.space == "ncct"]
        found = _unique(on_ncct or masks, f"lesion mask of ses-{session}", case_id)
        if found is not None:
            mask = found
            break
    metadata: dict = {
        "layout": "isles24", "session": acute, "acute_session": acute, "follow_up_session": follow_up,
        "channel_space": spaces, "register_onto_ct": to_register,
        "mask_session": mask.session if mask else None, "mask_space": (mask.space or "raw") if mask else None,
    }
    ctp = [f for f in in_acute if f.suffix == "ctp"]
    if ctp:
        metadata["ctp"] = str(min(ctp, key=lambda f: (not (f.derivative and f.space == "ncct"), str(f.path))).path)
    if follow_up is not None:
        later_images = {}
        for f in files:
            if f.session == follow_up and f.suffix in _FOLLOW_UP:
                current = later_images.get(_FOLLOW_UP[f.suffix])
                if current is None or (f.space == "ncct" and current[1] != "ncct"):
                    later_images[_FOLLOW_UP[f.suffix]] = (str(f.path), f.space or "raw")
        if later_images:
            metadata["follow_up_images"] = {name: path for name, (path, _space) in sorted(later_images.items())}
    vessel_masks = {f.suffix: str(f.path) for f in files if f.suffix in _OTHER_MASKS}
    if vessel_masks:
        metadata["vessel_masks"] = dict(sorted(vessel_masks.items()))
    return Case(case_id, case_id, channels, mask.path if mask else None, metadata)
