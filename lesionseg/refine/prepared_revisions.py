"""Whether a prepared dataset was made from the mask revisions a training run asks for.

``lesionseg prepare --mask-revision`` bakes each case's chosen mask into the prepared slices and records
the revision id per case in ``prepare.json``. Training cannot swap masks in prepared slices, so
``lesionseg train --mask-revision`` checks that record against the revision store instead: a mask refined
after ``prepare`` (``latest`` has moved on) is reported, never trained on silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lesionseg.errors import DatasetError
from lesionseg.data.revisions import ORIGINAL, RevisionStore


def check_prepared_revisions(prepared: str | os.PathLike, wanted: str,
                             revisions_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Check that every case of a prepared dataset used the mask revision ``wanted``.

    Args:
        prepared: the folder written by ``lesionseg prepare``.
        wanted: ``original``, ``latest`` or a revision id (``rev-0003`` or ``3``).
        revisions_dir: where the revisions live (default: as recorded by ``prepare``, else the dataset's
            ``derivatives/lesionseg/revisions``).

    Returns:
        ``{case_id: revision id}`` as prepared (and as wanted).

    Raises:
        DatasetError: a case was prepared from another revision than ``wanted`` resolves to now, or the
            dataset the slices came from is no longer where ``prepare`` read it.
        ParameterError: ``wanted`` is not a revision of some case.
    """
    from lesionseg.preprocess.prepared import PreparedDataset

    info: dict[str, Any] = PreparedDataset(prepared).info
    used = {entry["case_id"]: str(entry.get("mask_revision", ORIGINAL)) for entry in info.get("cases", [])}
    rerun = f"run 'lesionseg prepare' again with --mask-revision {wanted} (unchanged cases are skipped)"
    if wanted == ORIGINAL:
        refined = sorted(case_id for case_id, revision in used.items() if revision != ORIGINAL)
        if refined:
            raise DatasetError(f"{prepared} was prepared from refined masks (case {refined[0]} uses "
                               f"{used[refined[0]]}), not the original ones; {rerun}.")
        return used
    dataset = info.get("dataset")
    if not dataset or not Path(dataset).exists():
        raise DatasetError(f"{prepared} does not record a dataset folder that still exists, so its mask revisions "
                           f"cannot be checked; {rerun}.")
    from lesionseg.data import discover

    root = revisions_dir if revisions_dir is not None else info.get("revisions_dir")
    cases = {case.case_id: case for case in discover(dataset, validate=False)}
    for case_id, revision in used.items():
        case = cases.get(case_id)
        if case is None:
            raise DatasetError(f"case {case_id} of {prepared} is no longer in {dataset}; {rerun}.")
        current = RevisionStore.for_case(case, dataset=dataset, revisions_dir=root).resolve(wanted)
        if current != revision:
            raise DatasetError(f"case {case_id} was prepared from mask {revision}, but --mask-revision {wanted} "
                               f"is {current} now; {rerun}.")
    return used
