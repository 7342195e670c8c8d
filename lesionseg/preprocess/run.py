"""Preparing a whole dataset: cases in parallel, unchanged cases skipped, every file written atomically."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from lesionseg import __version__
from lesionseg.data import Case, discover
from lesionseg.errors import DatasetError, ParameterError
from lesionseg.preprocess.config import PrepareConfig
from lesionseg.preprocess.prepared import case_paths, write_case_arrays, write_dataset_index
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress


def _file_stamp(path: Path | None) -> Any:
    if path is None:
        return None
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def case_fingerprint(case: Case, config: PrepareConfig) -> str:
    """A hash of a case's input files (path, size, modification time), the parameters and the version."""
    inputs = {
        "channels": {name: _file_stamp(path) for name, path in case.channels.items()},
        "mask": _file_stamp(case.mask),
        "brain_mask": _file_stamp(case.metadata.get("brain_mask")),
        "config": config.to_dict(),
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _is_up_to_date(out: Path, case: Case, fingerprint: str) -> list[dict[str, Any]] | None:
    """The stored slice rows of a case prepared with the same inputs and parameters, else None."""
    arrays, record_path = case_paths(out, case.case_id)
    if not (arrays.is_file() and record_path.is_file()):
        return None
    try:
        stored = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if stored.get("inputs", {}).get("fingerprint") != fingerprint:
        return None
    return stored.get("inputs", {}).get("rows")


def prepare_one(case: Case, config: PrepareConfig, out: Path, threads: int = 0) -> dict[str, Any]:
    """Prepare one case and write its ``.npz`` and ``.json`` (skipped when up to date).

    Returns:
        ``{"case_id", "rows", "skipped", "slices"}``.
    """
    from lesionseg.preprocess.pipeline import prepare_case

    if threads:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    fingerprint = case_fingerprint(case, config)
    rows = _is_up_to_date(out, case, fingerprint)
    if rows is not None:
        return {"case_id": case.case_id, "rows": rows, "skipped": True, "slices": len(rows)}
    prepared = prepare_case(case, config, training=True)
    prepared.record.inputs = {
        "channels": {name: str(path) for name, path in case.channels.items()},
        "mask": str(case.mask) if case.mask else None,
        "fingerprint": fingerprint,
        "rows": prepared.rows,
    }
    arrays_path, record_path = case_paths(out, case.case_id)
    write_case_arrays(arrays_path, prepared.images, prepared.masks, prepared.brains, prepared.context)
    prepared.record.save(record_path)  # written last: a record marks a complete case
    return {"case_id": case.case_id, "rows": prepared.rows, "skipped": False, "slices": len(prepared.rows)}


def prepare_dataset(dataset: str | os.PathLike | list[Case], out: str | os.PathLike, config: PrepareConfig, *,
                    workers: int = 1, progress: ProgressCallback = ignore_progress,
                    cancel: CancelFlag | None = None,
                    revisions_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Prepare every case of a dataset into ``out`` (see :mod:`lesionseg.preprocess.prepared`).

    Cases are checked first (all of them, before anything is written), then prepared, ``workers`` at a
    time in separate processes. ``prepare.json`` and ``slices.csv`` are written at the end, so a failed
    or cancelled run leaves complete case files only; re-running skips the cases whose inputs and
    parameters are unchanged.

    ``config.mask_revision`` picks each case's mask among its revisions (``original``, ``latest`` or an id,
    see :mod:`lesionseg.data.revisions`), kept under ``revisions_dir`` or the dataset's derivatives; the
    revision used is recorded per case in ``prepare.json``.

    Returns:
        A summary: number of cases, slices, lesion slices, how many were skipped.

    Raises:
        LesionSegError: bad input, naming the case; CancelledError when cancelled.
    """
    if workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {workers}.")
    out = Path(out)
    from_revisions = config.mask_revision != "original"
    cases = list(dataset) if isinstance(dataset, list) else discover(
        dataset, allow_unaligned_channels=bool(config.registration), require_masks=not from_revisions)
    if not cases:
        raise DatasetError("there are no cases to prepare.")
    if from_revisions:
        from lesionseg.data.revisions import resolve_case_masks

        cases = resolve_case_masks(cases, config.mask_revision, revisions_dir,
                                   dataset=None if isinstance(dataset, list) else dataset)
    channels = list(config.channels or cases[0].channel_names)
    config.channels = channels
    config.reference = config.reference_channel(channels)
    config.validate()
    for case in cases:
        missing = [name for name in channels if name not in case.channels]
        if missing:
            raise DatasetError(f"case {case.case_id} has no {', '.join(missing)} channel (it has {', '.join(case.channels)}).")
        if case.mask is None:
            raise DatasetError(f"case {case.case_id} has no lesion mask; prepare makes training data and needs one.")
    results: dict[str, dict[str, Any]] = {}
    total = len(cases)
    progress({"event": "progress", "stage": "prepare", "done": 0, "total": total})
    if workers == 1:
        for case in cases:
            if cancel:
                cancel.raise_if_cancelled()
            results[case.case_id] = prepare_one(case, config, out)
            progress({"event": "progress", "stage": "prepare", "done": len(results), "total": total,
                      "message": case.case_id})
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending = {pool.submit(prepare_one, case, config, out, threads): case for case in cases}
            while pending:
                done, _ = wait(list(pending), timeout=0.5, return_when=FIRST_EXCEPTION)
                for future in done:
                    case = pending.pop(future)
                    error = future.exception()
                    if error is not None:
                        for other in pending:
                            other.cancel()
                        raise error
                    results[case.case_id] = future.result()
                    progress({"event": "progress", "stage": "prepare", "done": len(results), "total": total,
                              "message": case.case_id})
                if cancel and cancel.is_cancelled:
                    for other in pending:
                        other.cancel()
                    cancel.raise_if_cancelled()
    rows = [row for case in cases for row in results[case.case_id]["rows"]]
    case_list = [{"case_id": c.case_id, "patient_id": c.patient_id, "slices": results[c.case_id]["slices"],
                  "mask_revision": c.metadata.get("mask_revision", "original")} for c in cases]
    sources = {"channels": channels}
    if not isinstance(dataset, list):
        sources["dataset"] = str(Path(dataset).resolve())
    if revisions_dir is not None:
        sources["revisions_dir"] = str(Path(revisions_dir).resolve())
    write_dataset_index(out, config, rows, case_list, sources)
    return {
        "cases": len(cases),
        "slices": len(rows),
        "lesion_slices": sum(1 for row in rows if row["has_lesion"]),
        "skipped": sum(1 for result in results.values() if result["skipped"]),
    }
