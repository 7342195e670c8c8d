"""Preparing a whole dataset: cases in parallel, unchanged cases skipped, every file written atomically.

A batch never dies of one case: a case that cannot be prepared (an unreadable file, a missing channel or
mask, a failed brain extraction or registration, ...) is listed with its reason in ``prepare.json``
(``failed``) and the others are prepared; ``lesionseg prepare`` then exits 3. Running ``prepare`` again
into the same folder prepares only the cases that failed or are missing (the others are up to date and
skipped).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from lesionseg import __version__
from lesionseg.data import Case, discover
from lesionseg.errors import DatasetError, LesionSegError, ParameterError
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


def _is_up_to_date(out: Path, case: Case, fingerprint: str) -> tuple[list[dict[str, Any]], str | None] | None:
    """The stored slice rows of a case prepared with the same inputs and parameters (and the channel its
    mask was carried from, if any), else None."""
    arrays, record_path = case_paths(out, case.case_id)
    if not (arrays.is_file() and record_path.is_file()):
        return None
    try:
        stored = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if stored.get("inputs", {}).get("fingerprint") != fingerprint or stored["inputs"].get("rows") is None:
        return None
    return stored["inputs"]["rows"], (stored.get("steps", {}).get("mask_transfer") or {}).get("from_channel")


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
    stored = _is_up_to_date(out, case, fingerprint)
    if stored is not None:
        rows, mask_from = stored
        return {"case_id": case.case_id, "rows": rows, "skipped": True, "slices": len(rows), "mask_from": mask_from}
    prepared = prepare_case(case, config, training=True)
    mask_from = prepared.record.steps.get("mask_transfer", {}).get("from_channel")
    prepared.record.inputs = {
        "channels": {name: str(path) for name, path in case.channels.items()},
        "mask": str(case.mask) if case.mask else None,
        "fingerprint": fingerprint,
        "rows": prepared.rows,
    }
    if mask_from is not None:
        prepared.record.inputs["mask_drawn_on"] = {"channel": mask_from, "path": str(case.channels[mask_from])}
    arrays_path, record_path = case_paths(out, case.case_id)
    write_case_arrays(arrays_path, prepared.images, prepared.masks, prepared.brains, prepared.context)
    prepared.record.save(record_path)  # written last: a record marks a complete case
    return {"case_id": case.case_id, "rows": prepared.rows, "skipped": False, "slices": len(prepared.rows),
            "mask_from": mask_from}


class NothingPreparedError(LesionSegError):
    """Every case of a dataset failed; the message lists them with their reasons.

    Attributes:
        failures: one ``{"case_id", "patient_id", "reason"}`` per case.
    """

    def __init__(self, message: str, failures: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.failures = list(failures or [])

    def __reduce__(self):
        return (type(self), (str(self), self.failures))


def _check_case(case: Case, channels: list[str], class_values: list[int] | None = None) -> None:
    """What can be checked before preparing: readable headers, the channels and the mask present, the
    mask on a channel's grid and of one label (see :func:`lesionseg.data.validate_case`)."""
    from lesionseg.data import validate_case

    missing = [name for name in channels if name not in case.channels]
    if missing:
        raise DatasetError(f"case {case.case_id} has no {', '.join(missing)} channel (it has {', '.join(case.channels)}).")
    if case.mask is None:
        raise DatasetError(f"case {case.case_id} has no lesion mask; prepare makes training data and needs one.")
    from lesionseg.data import PERFUSION_CHANNELS
    from lesionseg.data.sidecar import map_units

    for name in channels:  # a perfusion map without its units is refused before anything is computed
        if name in PERFUSION_CHANNELS:
            map_units(case.channels[name], name)
    validate_case(case, class_values=class_values)


def _previous_failures(out: Path) -> set[str]:
    """The cases that the last run into ``out`` listed as failed (none when there was no such run)."""
    try:
        info = json.loads((out / "prepare.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return set()
    return {str(entry.get("case_id")) for entry in info.get("failed", []) if isinstance(entry, dict)}


def _nothing_prepared(failures: list[dict[str, str]]) -> NothingPreparedError:
    if len(failures) == 1:
        return NothingPreparedError(failures[0]["reason"], failures)
    shown = "; ".join(entry["reason"] for entry in failures[:5])
    more = f"; and {len(failures) - 5} more" if len(failures) > 5 else ""
    return NothingPreparedError(f"none of the {len(failures)} cases could be prepared: {shown}{more}.", failures)


def prepare_dataset(dataset: str | os.PathLike | list[Case], out: str | os.PathLike, config: PrepareConfig, *,
                    workers: int = 1, progress: ProgressCallback = ignore_progress,
                    cancel: CancelFlag | None = None,
                    revisions_dir: str | os.PathLike | None = None, classes: str = "auto") -> dict[str, Any]:
    """Prepare every case of a dataset that can be prepared into ``out`` (see :mod:`lesionseg.preprocess.prepared`).

    Cases are checked first (headers, channels, mask; all of them, before anything is written), then
    prepared, ``workers`` at a time in separate processes. A case that fails either step is reported
    (a ``warning`` progress event, and ``failed`` in ``prepare.json`` with its reason) and the others go on.
    ``prepare.json`` and ``slices.csv`` are written at the end and list the prepared cases only, so a
    failed or cancelled run leaves complete case files only; re-running skips the cases whose inputs and
    parameters are unchanged, so it prepares only the failed and missing ones.

    ``config.mask_revision`` picks each case's mask among its revisions (``original``, ``latest`` or an id,
    see :mod:`lesionseg.data.revisions`), kept under ``revisions_dir`` or the dataset's derivatives; the
    revision used is recorded per case in ``prepare.json``.

    ``classes="auto"`` (default): when ``config.classes`` is unset and the masks come with a label table of two
    or more classes (:func:`lesionseg.data.label_table.dataset_classes`), those classes are prepared (masks
    as class indices, see :attr:`PrepareConfig.classes`); ``"binary"`` keeps one lesion class (a multi-label
    mask is then refused unless its cases pick one label).

    Returns:
        A summary: number of cases prepared, slices, lesion slices, how many were skipped (up to date),
        ``failed`` (how many failed), ``failures`` (``{"case_id", "patient_id", "reason"}`` each) and
        ``retried`` (cases listed as failed by the previous run into ``out`` and tried again).

    Raises:
        NothingPreparedError: no case could be prepared (nothing is written); its message names the
            case(s) and reasons.
        LesionSegError: bad parameters or no cases at all; CancelledError when cancelled.
    """
    if workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {workers}.")
    out = Path(out)
    from_revisions = config.mask_revision != "original"
    cases = list(dataset) if isinstance(dataset, list) else discover(dataset, validate=False)
    if not cases:
        raise DatasetError("there are no cases to prepare.")
    if from_revisions:
        from lesionseg.data.revisions import resolve_case_masks

        cases = resolve_case_masks(cases, config.mask_revision, revisions_dir,
                                   dataset=None if isinstance(dataset, list) else dataset)
    if classes not in ("auto", "binary"):
        raise ParameterError(f"classes must be 'auto' or 'binary', not {classes!r}.")
    if classes == "auto" and config.classes is None:
        from lesionseg.data.label_table import dataset_classes

        config.classes = dataset_classes(cases, None if isinstance(dataset, list) else dataset)
    class_values = [entry["value"] for entry in config.classes] if config.classes else None
    channels = list(config.channels or cases[0].channel_names)
    config.channels = channels
    config.reference = config.reference_channel(channels)
    config.validate()
    failed: dict[str, str] = {}

    def fail(case: Case, error: LesionSegError) -> None:
        failed[case.case_id] = str(error) if case.case_id in str(error) else f"case {case.case_id}: {error}"
        progress({"event": "warning", "stage": "prepare", "message": failed[case.case_id]})

    ready = []
    for case in cases:
        try:
            _check_case(case, channels, class_values)
        except LesionSegError as error:
            fail(case, error)
        else:
            ready.append(case)
    previously_failed = _previous_failures(out)
    results: dict[str, dict[str, Any]] = {}
    total = len(cases)

    def report(case: Case) -> None:
        progress({"event": "progress", "stage": "prepare", "done": len(results) + len(failed), "total": total,
                  "message": case.case_id})

    progress({"event": "progress", "stage": "prepare", "done": len(failed), "total": total})
    if workers == 1:
        for case in ready:
            if cancel:
                cancel.raise_if_cancelled()
            try:
                results[case.case_id] = prepare_one(case, config, out)
            except LesionSegError as error:
                fail(case, error)
            report(case)
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending = {pool.submit(prepare_one, case, config, out, threads): case for case in ready}
            while pending:
                done, _ = wait(list(pending), timeout=0.5, return_when=FIRST_EXCEPTION)
                for future in done:
                    case = pending.pop(future)
                    error = future.exception()
                    if isinstance(error, LesionSegError):
                        fail(case, error)
                    elif error is not None:  # an internal error: stop, as for one worker
                        for other in pending:
                            other.cancel()
                        raise error
                    else:
                        results[case.case_id] = future.result()
                    report(case)
                if cancel and cancel.is_cancelled:
                    for other in pending:
                        other.cancel()
                    cancel.raise_if_cancelled()
    prepared = [case for case in cases if case.case_id in results]
    failures = [{"case_id": c.case_id, "patient_id": c.patient_id, "reason": failed[c.case_id]}
                for c in cases if c.case_id in failed]
    if not prepared:
        raise _nothing_prepared(failures)
    rows = [row for case in prepared for row in results[case.case_id]["rows"]]
    case_list = [{"case_id": c.case_id, "patient_id": c.patient_id, "slices": results[c.case_id]["slices"],
                  "mask_revision": c.metadata.get("mask_revision", "original"),
                  "mask_from": results[c.case_id].get("mask_from")} for c in prepared]
    sources: dict[str, Any] = {"channels": channels}
    if not isinstance(dataset, list):
        sources["dataset"] = str(Path(dataset).resolve())
    if revisions_dir is not None:
        sources["revisions_dir"] = str(Path(revisions_dir).resolve())
    sources["failed"] = failures
    write_dataset_index(out, config, rows, case_list, sources)
    return {
        "cases": len(prepared),
        "slices": len(rows),
        "lesion_slices": sum(1 for row in rows if row["has_lesion"]),
        "skipped": sum(1 for result in results.values() if result["skipped"]),
        "failed": len(failures),
        "failures": failures,
        "retried": sum(1 for case in cases if case.case_id in previously_failed),
    }
