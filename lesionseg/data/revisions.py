"""Revisions of a case's lesion mask: refinement never overwrites, every result is a new revision.

The store is data: ``prepare`` and ``train`` resolve ``--mask-revision`` through it (so it sits beneath
:mod:`lesionseg.preprocess`), the annotators' tools of :mod:`lesionseg.refine` write revisions into it, and
comparing two revisions (:func:`lesionseg.refine.diff_revisions`, which needs the metrics) is theirs too.

Layout (one folder per case)::

    <dataset>/derivatives/lesionseg/revisions/<case_id>/    (or <--revisions DIR>/<case_id>/)
        rev-0001.nii.gz, rev-0002.nii.gz, ...   uint8 0/1 masks on the original mask's grid
        log.json                                the revisions and their provenance, in order
        review.json                             review marks and ratings (see lesionseg.refine.ratings)
        .lock                                   the folder's lock (see lesionseg.io.locking)

``original`` is the dataset's own mask: it is read where it is and never copied or written. ``latest`` is
the last revision in the log (``original`` when there is none). A revision's entry records the tool, its
parameters, the source revision, the time (UTC), the author and a comment when given, what the tool
reported, the lesionseg version and the SHA-256 of the mask file, checked on every read.

Crash safety: under the folder's lock, a write cleans up files the log does not list (left by a crash),
writes the new mask atomically (complete under its final name or absent), then rewrites the log
atomically. A revision listed in the log therefore always exists complete, and a process killed at any
point loses at most the revision it was writing; the next write removes its orphan file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.data.case import Case
from lesionseg.data.locations import dataset_root_of, revisions_root
from lesionseg.errors import DatasetError, GeometryError, ParameterError
from lesionseg.io import Geometry, geometry_difference, read_geometry, write_image, write_json_atomic
from lesionseg.io.locking import LOCK_NAME, folder_lock

LOG_NAME = "log.json"
LOG_FORMAT = "lesionseg-mask-revisions"
LOG_VERSION = 1
ORIGINAL = "original"
LATEST = "latest"
#: test hook: seconds to sleep between writing a revision's mask and its log entry (crash tests)
PAUSE_ENVIRONMENT = "LESIONSEG_TEST_PAUSE_BEFORE_LOG"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _jsonable(details: dict[str, Any] | None) -> dict[str, Any]:
    """Tool details without private keys (``_transform``...) and with plain JSON values."""
    clean = {key: value for key, value in (details or {}).items() if not str(key).startswith("_")}
    return json.loads(json.dumps(clean, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


@dataclass
class Revision:
    """One revision of a case's mask and its provenance.

    Attributes:
        id: ``rev-0001``, ``rev-0002``, ... (``original`` for the dataset's mask, which has no entry).
        file: the mask file's name in the case's revision folder.
        tool: what made it (``intensity``, ``grow``, ``cleanup``, ``fill-between``, ``transfer``,
            ``restore``, ``import``, ``manual``...).
        parameters: the tool's parameters.
        source: the revision it was made from (``original`` or an id; None for an import from nothing).
        created: ISO 8601 time, UTC.
        author, comment: as given.
        sha256: of the mask file.
        voxels, volume_ml: the lesion's size.
        details: what the tool reported (thresholds, seeds, registration record...).
        lesionseg_version: the version that wrote it.
    """

    id: str
    file: str
    tool: str
    parameters: dict[str, Any]
    source: str | None
    created: str
    author: str | None
    comment: str | None
    sha256: str
    voxels: int
    volume_ml: float
    details: dict[str, Any] = field(default_factory=dict)
    lesionseg_version: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Revision":
        known = {name: data.get(name) for name in cls.__dataclass_fields__}
        known["parameters"] = known["parameters"] or {}
        known["details"] = known["details"] or {}
        return cls(**known)


def _revision_number(name: str) -> int | None:
    if name.startswith("rev-") and name[4:].isdigit():
        return int(name[4:])
    return None


class RevisionStore:
    """The revisions of one case's mask (see the module docstring).

    Args:
        folder: the case's revision folder (created on the first write).
        case_id: the case, named in messages.
        original: the dataset's mask file, or None for a case without one.
        reference: the grid every revision must be on; default: the original mask's grid.
        read_original: how to read the original mask (default: :func:`lesionseg.io.read_mask`).
    """

    def __init__(self, folder: str | os.PathLike, case_id: str, original: Path | None, *,
                 reference: Geometry | None = None, read_original=None) -> None:
        self.folder = Path(folder)
        self.case_id = case_id
        self.original = Path(original) if original is not None else None
        self._reference = reference
        self._read_original = read_original

    @classmethod
    def for_case(cls, case: Case, *, dataset: str | os.PathLike | None = None,
                 revisions_dir: str | os.PathLike | None = None) -> "RevisionStore":
        """The store of a discovered case (``dataset`` default: found from the case's paths)."""
        root = revisions_root(dataset if dataset is not None else dataset_root_of(case), revisions_dir)
        channel = case.metadata.get("mask_channel") or next(iter(case.channels))
        grid = read_geometry(case.channels[channel])
        reference = read_geometry(case.mask) if case.mask is not None and not str(case.mask).endswith(".seg.nrrd") \
            else grid
        return cls(root / case.case_id, case.case_id, case.mask, reference=reference,
                   read_original=lambda: case.read_mask(reference=grid.reference_image()))

    # --- reading ----------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_NAME

    def _read_log(self) -> dict[str, Any]:
        if not self.log_path.is_file():
            return {"format": LOG_FORMAT, "version": LOG_VERSION, "case_id": self.case_id, "revisions": []}
        try:
            log = json.loads(self.log_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DatasetError(f"{self.log_path} is not a readable revision log ({error}).") from error
        if not isinstance(log, dict) or log.get("format") != LOG_FORMAT or not isinstance(log.get("revisions"), list):
            raise DatasetError(f"{self.log_path} is not a LesionSeg revision log.")
        if int(log.get("version", 0)) > LOG_VERSION:
            raise DatasetError(f"{self.log_path} was written by a newer LesionSeg (log version {log['version']}); "
                               "update LesionSeg to read it.")
        return log

    def revisions(self) -> list[Revision]:
        """The revisions in the order they were made (``original`` not included)."""
        return [Revision.from_dict(entry) for entry in self._read_log()["revisions"]]

    def ids(self) -> list[str]:
        """``original`` (when the case has a mask) then every revision id."""
        return ([ORIGINAL] if self.original is not None else []) + [r.id for r in self.revisions()]

    def resolve(self, name: str) -> str:
        """The revision id meant by ``name``: ``original``, ``latest``, ``rev-0003`` or ``3``.

        Raises:
            ParameterError: an unknown revision, naming the ones there are.
        """
        text = str(name).strip()
        ids = self.ids()
        if text == LATEST:
            if not ids:
                raise ParameterError(f"case {self.case_id} has no mask and no revision yet.")
            return ids[-1]
        if text.isdigit():
            text = f"rev-{int(text):04d}"
        if text not in ids:
            shown = ", ".join(ids) if ids else "none"
            raise ParameterError(f"case {self.case_id} has no revision {name!r}; it has: {shown}.")
        return text

    def get(self, name: str) -> Revision | None:
        """The log entry of a revision (None for ``original``)."""
        wanted = self.resolve(name)
        return next((r for r in self.revisions() if r.id == wanted), None)

    def path(self, name: str) -> Path:
        """The mask file of a revision (``original``: the dataset's own file)."""
        wanted = self.resolve(name)
        if wanted == ORIGINAL:
            return self.original
        return self.folder / self.get(wanted).file

    def reference(self) -> Geometry | None:
        """The grid revisions must be on."""
        if self._reference is None and self.original is not None:
            self._reference = Geometry.of(self.read(ORIGINAL))
        return self._reference

    def read(self, name: str) -> sitk.Image:
        """Read a revision as a uint8 0/1 mask; a revision's file is checked against its SHA-256.

        Raises:
            ParameterError: an unknown revision.
            DatasetError: a revision file that is missing or was changed since it was written.
        """
        from lesionseg.io import read_mask

        wanted = self.resolve(name)
        if wanted == ORIGINAL:
            return self._read_original() if self._read_original else read_mask(self.original)
        revision = self.get(wanted)
        path = self.folder / revision.file
        if not path.is_file():
            raise DatasetError(f"{path} ({wanted} of case {self.case_id}) is missing; the revision folder was "
                               "changed by hand.")
        if _sha256(path) != revision.sha256:
            raise DatasetError(f"{path} ({wanted} of case {self.case_id}) was changed after it was written "
                               "(its SHA-256 differs from the log); restore it from a backup or use another revision.")
        return read_mask(path)

    # --- writing ----------------------------------------------------------------------------------

    def clean_orphans(self) -> list[Path]:
        """Remove files a crash left behind (masks not in the log, temporary files); returns them.

        Call with the folder's lock held (the writing methods do).
        """
        if not self.folder.is_dir():
            return []
        listed = {r.file for r in self.revisions()}
        removed = []
        for path in self.folder.iterdir():
            name = path.name
            unlisted_mask = _revision_number(name.split(".")[0]) is not None and name not in listed
            orphan = name.startswith(".tmp-") or unlisted_mask
            if orphan and path.is_file() and name != LOCK_NAME:
                path.unlink()
                removed.append(path)
        return removed

    def add(self, mask: sitk.Image, *, tool: str, source: str | None, parameters: dict[str, Any] | None = None,
            author: str | None = None, comment: str | None = None, details: dict[str, Any] | None = None,
            mask_name: str = "the new mask") -> Revision:
        """Store ``mask`` as a new revision (see the module docstring for the crash-safe order).

        Args:
            mask: 0/1 mask on the case's grid.
            tool: what made it.
            source: the revision it was made from (``original``, ``latest`` or an id), or None.
            parameters: the tool's parameters (JSON values).
            author, comment: free text.
            details: what the tool reported (keys starting with ``_`` are not stored).
            mask_name: how the mask is named in error messages (e.g. its file).

        Returns:
            The new revision's entry.

        Raises:
            GeometryError: a mask on another grid than the case's.
            ParameterError: an unknown source revision, a mask that is not 0/1.
        """
        from lesionseg import __version__

        source_id = self.resolve(source) if source is not None else None
        reference = self.reference()
        if reference is not None:
            difference = geometry_difference(reference, mask) if mask.GetDimension() == 3 else "not a 3D volume"
            if difference is not None:
                raise GeometryError(f"{mask_name} is not on the grid of case {self.case_id}'s mask ({difference}); "
                                    "resample it onto that grid (or carry it over with the transfer tool) first.")
        array = sitk.GetArrayFromImage(mask)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ParameterError(f"{mask_name} holds NaN or infinite values; a mask holds 0 and 1.")
        array = array != 0
        binary = sitk.GetImageFromArray(array.astype(np.uint8))
        binary.CopyInformation(mask)
        with folder_lock(self.folder):
            self.clean_orphans()
            log = self._read_log()
            numbers = [_revision_number(entry["id"]) or 0 for entry in log["revisions"]]
            revision_id = f"rev-{max(numbers, default=0) + 1:04d}"
            path = self.folder / f"{revision_id}.nii.gz"
            write_image(binary, path)
            pause = os.environ.get(PAUSE_ENVIRONMENT)
            if pause:
                time.sleep(float(pause))
            voxels = int(np.count_nonzero(array))
            revision = Revision(revision_id, path.name, tool, _jsonable(parameters), source_id, _now(), author, comment,
                                _sha256(path), voxels, voxels * float(np.prod(mask.GetSpacing())) / 1000.0,
                                _jsonable(details), __version__)
            log["revisions"].append(asdict(revision))
            log["case_id"] = self.case_id
            log["original"] = str(self.original) if self.original is not None else None
            write_json_atomic(self.log_path, log)
        return revision

    def restore(self, name: str, *, author: str | None = None, comment: str | None = None) -> Revision:
        """Make a revision current again: a new revision with its exact content (nothing is deleted)."""
        wanted = self.resolve(name)
        return self.add(self.read(wanted), tool="restore", source=wanted, parameters={"restored": wanted},
                        author=author, comment=comment)


def resolve_mask(case: Case, revision: str, revisions_dir: str | os.PathLike | None = None, *,
                 dataset: str | os.PathLike | None = None) -> Path:
    """The mask file to use for a case: ``original``, ``latest`` or a revision id.

    ``latest`` of a case without revisions is its original mask.

    Args:
        case: a discovered case.
        revision: ``original``, ``latest``, ``rev-0003`` or ``3``.
        revisions_dir: the ``--revisions DIR`` folder, when the revisions are kept outside the dataset.
        dataset: the dataset folder (default: found from the case's paths).

    Returns:
        The path of the mask file (the dataset's own file for ``original``). A revision's file is checked
        against its SHA-256 first.

    Raises:
        ParameterError: an unknown revision.
        DatasetError: the case has neither a mask nor revisions, or a revision file was damaged.
    """
    store = RevisionStore.for_case(case, dataset=dataset, revisions_dir=revisions_dir)
    if not store.ids():
        raise DatasetError(f"case {case.case_id} has no lesion mask and no revision.")
    wanted = store.resolve(revision)
    if wanted != ORIGINAL:
        store.read(wanted)  # verifies the file against the log
    return store.path(wanted)


def resolve_case_masks(cases: list[Case], revision: str, revisions_dir: str | os.PathLike | None = None, *,
                       dataset: str | os.PathLike | None = None) -> list[Case]:
    """Copies of ``cases`` whose ``mask`` is the chosen revision (see :func:`resolve_mask`).

    ``original`` returns the cases unchanged. A case given a revision gets ``metadata["mask_revision"]``.
    """
    if revision == ORIGINAL:
        return list(cases)
    resolved = []
    for case in cases:
        path = resolve_mask(case, revision, revisions_dir, dataset=dataset)
        metadata = dict(case.metadata)
        if path != case.mask:  # a revision is a 0/1 mask: the original's label or segment choice no longer applies
            metadata.pop("label", None)
            metadata.pop("segment", None)
            metadata["mask_revision"] = path.name.split(".")[0]
        else:
            metadata["mask_revision"] = ORIGINAL
        resolved.append(Case(case.case_id, case.patient_id, dict(case.channels), path, metadata))
    return resolved
