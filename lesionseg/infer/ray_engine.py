"""Segmenting a dataset on a Ray cluster: ``lesionseg segment BUNDLE DATASET -o OUT --engine ray``.

One model per actor: each Ray actor loads the bundle once and takes up to :data:`CASES_PER_ACTOR` cases at
a time in threads, so that one case is read (or written) while the network computes another; the network
itself runs one case at a time per actor. Actors are CPU actors (one core each) unless GPU actors are asked
for (``device="cuda"``) or the cluster has GPUs (``device="auto"``); their number is ``workers``, else one
per CPU (or GPU) of the cluster. The per-case work is the single-process batch's own
(:func:`lesionseg.infer.batch.segment_case`), so both write the same files.

Nothing lost, nothing written twice: an actor whose process dies is restarted by Ray (loading the bundle
again) and its cases are retried; a case tried :data:`MAX_ATTEMPTS` times (each with Ray's own retry) whose
worker died every time is failed with that reason. Each output is written under a temporary name in its folder and renamed into place (the mask
last); then the case's summary row is recorded in ``OUT/.lesionseg-ray/<case>.json``, and a retried case
whose record is on disk is not segmented or written again. At the end ``summary.csv`` and ``segment.log`` are
built from the records on disk, in the dataset's order (the single-process batch's columns and rows; only
``seconds`` differs), and the records are removed.

The cluster: without ``address`` a local Ray is started on this machine (``workers`` CPUs when given) and
stopped at the end; with one (``auto``, or ``HOST:6379`` of ``ray start --head``) the batch joins that cluster.
Every node must have lesionseg (with this Ray) installed and see the bundle, the dataset and OUT at the same
paths (a shared file system). Ray itself is an optional extra: ``pip install 'lesionseg[ray]'``.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import threading
from collections import Counter, deque
from dataclasses import replace
from pathlib import Path
from typing import Any

from lesionseg.data import Case
from lesionseg.errors import LesionSegError, ParameterError
from lesionseg.infer.batch import (
    BatchOutputs,
    BatchResult,
    CaseOutcome,
    check_dicom_seg,
    model_name,
    read_case,
    segment_case,
    skipped_row,
    write_log,
    write_summary,
)
from lesionseg.infer.outputs import DICOM_SEG_FORMAT
from lesionseg.infer.predictor import Predictor
from lesionseg.io import write_json_atomic

LOG = logging.getLogger(__name__)
#: the ``pip install`` that adds Ray
RAY_EXTRA = "pip install 'lesionseg[ray]'"
#: cases an actor holds at once: one computes while the other is read or written
CASES_PER_ACTOR = 2
#: times a case is tried when its worker process dies under it (each death restarts the actor)
MAX_ATTEMPTS = 3
#: Ray's own retries of an actor's tasks after a restart, within one of the attempts above
RAY_TASK_RETRIES = 1
#: the folder in OUT where actors record each finished case's summary row (removed at the end)
RECORDS_FOLDER = ".lesionseg-ray"
#: object store of a local Ray started here: cases and summary rows only travel through it
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 ** 2
#: test hook: a folder; the first actor to reach a case exits (``os._exit``) before writing it, and the first
#: to have written one exits after (each once, marked by a file ``before``/``after`` holding the case id)
EXIT_HOOK_VARIABLE = "LESIONSEG_RAY_TEST_EXIT"


def ray_module():
    """The ``ray`` module, or ParameterError naming the ``pip install`` that adds it."""
    try:
        import ray
    except ImportError as error:
        raise ParameterError(f"--engine ray needs Ray, which is not installed here; {RAY_EXTRA} adds it.") from error
    return ray


class _OneAtATime:
    """A predictor whose ``predict`` runs one call at a time: the actor's threads share one model, and read
    and write their cases around it."""

    def __init__(self, predictor: Predictor) -> None:
        self._predictor = predictor
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._predictor.predict(*args, **kwargs)


class CaseWorker:
    """One Ray actor: the bundle loaded once, cases segmented into the batch's outputs.

    Args:
        bundle: the bundle's absolute path (the same on every node).
        options: the :class:`Predictor` keyword arguments (device, tta, batch_size, threshold, ...).
        outputs: where and how cases are written.
        threads: torch threads (the actor's CPUs).
        exit_hook: the test hook's folder (see :data:`EXIT_HOOK_VARIABLE`), or None.
    """

    def __init__(self, bundle: str, options: dict[str, Any], outputs: BatchOutputs, threads: int,
                 exit_hook: str | None = None) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.outputs = outputs
        self.records = outputs.out / RECORDS_FOLDER
        self.exit_hook = Path(exit_hook) if exit_hook else None
        self.error = ""
        self.predictor: _OneAtATime | None = None
        try:
            self.predictor = _OneAtATime(Predictor(bundle, **options))
        except LesionSegError as error:  # said by ready(), so that the driver stops with the sentence
            self.error = str(error)

    def ready(self) -> dict[str, str]:
        """Where the actor runs and, when it could not load the bundle, why."""
        import socket

        device = str(self.predictor.device) if self.predictor is not None else ""
        return {"node": socket.gethostname(), "device": device, "error": self.error}

    def segment(self, case: Case) -> dict[str, Any]:
        """Segment one case (or return its record when a previous attempt finished it); returns the record
        ``{"row": summary row, "log": lines, "error": reason or ""}``."""
        record = read_record(self.records, case.case_id)
        if record is not None:
            return record
        if self.predictor is None:
            raise RuntimeError(f"the bundle could not be loaded: {self.error}")
        self._exit_once("before", case)
        predictor = self.predictor
        outcome = segment_case(predictor, case, lambda: read_case(predictor, case), self.outputs)  # type: ignore[arg-type]
        record = {"row": outcome.row, "log": outcome.log, "error": outcome.error}
        write_json_atomic(self.records / f"{case.case_id}.json", record)
        self._exit_once("after", case)
        return record

    def _exit_once(self, stage: str, case: Case) -> None:
        """The test hook: end this process abruptly, once per stage across all actors."""
        if self.exit_hook is None:
            return
        try:
            descriptor = os.open(self.exit_hook / stage, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(descriptor, case.case_id.encode("utf-8"))
        os.close(descriptor)
        os._exit(1)


def read_record(records: Path, case_id: str) -> dict[str, Any] | None:
    """A case's record written by an actor in this run, or None."""
    try:
        return json.loads((records / f"{case_id}.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _absolute(case: Case) -> Case:
    """The case with absolute channel paths (actors do not run in this process's folder)."""
    return replace(case, channels={name: Path(os.path.abspath(path)) for name, path in case.channels.items()})


def _lost_row(case_id: str, reason: str) -> CaseOutcome:
    row = {"case_id": case_id, "lesion_ml": "", "lesion_count": "", "seconds": "", "status": f"failed: {reason}"}
    return CaseOutcome(row, [f"{case_id}: failed: {reason}"], reason)


def _remove_stray_temporaries(folder: Path | None, case_ids: list[str]) -> None:
    """Remove temporaries of this batch's outputs left by a worker killed while writing."""
    if folder is None or not folder.is_dir():
        return
    for case_id in case_ids:
        for pattern in (f".tmp-{glob.escape(case_id)}-*", f".tmp-{glob.escape(case_id)}_*", f".tmp-{glob.escape(case_id)}.*"):
            for stray in folder.glob(pattern):
                stray.unlink(missing_ok=True)


def _start(ray: Any, address: str | None, workers: int | None) -> None:
    """Join the cluster at ``address``, or start a local Ray (``workers`` CPUs when given)."""
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        options["address"] = address
    else:
        options["object_store_memory"] = LOCAL_OBJECT_STORE_BYTES
        if workers:
            options["num_cpus"] = workers
        # Ray lowers its workers' priority (nice +15) by default; the actors do this command's work, so they
        # keep the command's own priority, as the single-process batch does
        os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        ray.init(**options)
    except ConnectionError as error:
        raise ParameterError(f"--address {address}: no Ray cluster answers there ({error}); start one with "
                             "'ray start --head' or leave --address out to start a local Ray.") from error
    except (OSError, RuntimeError) as error:  # e.g. a temporary folder whose socket paths are too long
        if address:
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ParameterError(f"a local Ray could not start ({first}); RAY_TMPDIR chooses the folder where it "
                             "keeps its files.") from error


def _actor_plan(resources: dict[str, float], device: str, workers: int | None, cases: int) -> tuple[int, float, float, str]:
    """(actors, CPUs per actor, GPUs per actor, the actors' torch device) for the cluster's resources."""
    gpus = float(resources.get("GPU", 0.0))
    cpus = float(resources.get("CPU", 1.0))
    if device == "cuda" and gpus <= 0:
        raise ParameterError("--device cuda: the Ray cluster has no GPU; use --device auto or cpu.")
    use_gpu = gpus > 0 and device in ("auto", "cuda")
    count = workers or max(1, int(gpus if use_gpu else cpus))
    count = max(1, min(count, cases))
    cpu_share = min(1.0, cpus / count)  # more actors than CPUs share them (else some would never start)
    gpu_share = min(1.0, gpus / count) if use_gpu else 0.0
    actor_device = "cuda" if use_gpu else ("mps" if device == "mps" else "cpu")
    return count, cpu_share, gpu_share, actor_device


def segment_cases_ray(predictor: Predictor, cases: list[Case], out: Path, *, output_format: str = "nii.gz",
                      prob_dir: Path | None = None, side: str = "auto", skip_existing: bool = False,
                      address: str | None = None, workers: int | None = None, device: str = "auto",
                      predictor_options: dict[str, Any] | None = None) -> BatchResult:
    """Segment every case into ``out`` on Ray actors (see the module docstring); never stops on one bad case.

    Args:
        predictor: the bundle loaded here, which checks the bundle and the options before the cluster is
            used; the actors load ``predictor.path`` themselves.
        cases, out, output_format, prob_dir, side, skip_existing: as :func:`lesionseg.infer.segment_cases`.
        address: a Ray cluster's address (``auto``, ``HOST:PORT``); None starts a local Ray.
        workers: the number of actors (default: the cluster's CPUs, or GPUs for GPU actors).
        device: "auto" (GPU actors when the cluster has GPUs), "cpu", "cuda" or "mps".
        predictor_options: the actors' other :class:`Predictor` arguments; default: the loaded predictor's
            tta, batch size, threshold, smallest lesion, hole filling and backend.

    Returns:
        The summary rows (status "ok", "skipped" or "failed: <sentence>"), as the single-process batch.

    Raises:
        ParameterError: Ray missing, no cluster at ``address``, ``workers`` < 1, or an actor that cannot load
            the bundle (a path its node does not see).
    """
    ray = ray_module()
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers must be at least 1, not {workers}.")
    if output_format == DICOM_SEG_FORMAT:
        check_dicom_seg(predictor, cases)
    out = Path(os.path.abspath(out))
    prob_dir = Path(os.path.abspath(prob_dir)) if prob_dir is not None else None
    outputs = BatchOutputs(out, output_format, prob_dir, side, model_name(predictor))
    options = dict(predictor_options or {"tta": predictor.tta, "batch_size": predictor.batch_size,
                                         "threshold": predictor.threshold, "min_lesion_mm3": predictor.min_lesion_mm3,
                                         "fill_holes": predictor.fill_holes,
                                         "backend": predictor.requested_backend,
                                         "slice_sizes": predictor.requested_slice_sizes,
                                         "reading_agreement": predictor.reading_agreement})
    out.mkdir(parents=True, exist_ok=True)
    records = out / RECORDS_FOLDER
    shutil.rmtree(records, ignore_errors=True)  # a previous run's records say nothing about this one
    records.mkdir()
    skipped = {case.case_id for case in cases if skip_existing and outputs.mask_path(case.case_id).is_file()}
    todo = [_absolute(case) for case in cases if case.case_id not in skipped]
    total = len(cases)
    predictor.progress({"event": "progress", "stage": "segment", "done": len(skipped), "total": total})
    failures: dict[str, CaseOutcome] = {}
    if todo:
        _start(ray, address, workers)
        try:
            failures = _run(ray, predictor, todo, outputs, options, workers, device, done=len(skipped), total=total)
        finally:
            ray.shutdown()
    outcomes = []
    for case in cases:
        if case.case_id in skipped:
            outcomes.append(CaseOutcome(skipped_row(case.case_id), []))
            continue
        record = read_record(records, case.case_id)
        if record is not None and record["row"]["status"] == "ok" and not outputs.mask_path(case.case_id).is_file():
            record = None  # a record without its mask: not done
        if record is not None:
            outcomes.append(CaseOutcome(record["row"], record["log"], record["error"]))
        else:
            outcomes.append(failures.get(case.case_id) or _lost_row(case.case_id, "no worker finished it"))
    _remove_stray_temporaries(out, [case.case_id for case in todo])
    _remove_stray_temporaries(prob_dir, [case.case_id for case in todo])
    write_summary(out, [outcome.row for outcome in outcomes])
    write_log(out, [line for outcome in outcomes for line in outcome.log])
    shutil.rmtree(records, ignore_errors=True)
    return BatchResult([outcome.row for outcome in outcomes])


def _run(ray: Any, predictor: Predictor, todo: list[Case], outputs: BatchOutputs, options: dict[str, Any],
         workers: int | None, device: str, *, done: int, total: int) -> dict[str, CaseOutcome]:
    """Dispatch ``todo`` over the actors until every case has an answer; returns the cases that failed
    because their worker kept dying (the others' records are on disk)."""
    count, cpu_share, gpu_share, actor_device = _actor_plan(ray.cluster_resources(), device, workers, len(todo))
    actor_class = ray.remote(CaseWorker).options(
        num_cpus=cpu_share, num_gpus=gpu_share, max_restarts=-1, max_task_retries=RAY_TASK_RETRIES,
        max_concurrency=CASES_PER_ACTOR)
    exit_hook = os.environ.get(EXIT_HOOK_VARIABLE) or None
    actors = [actor_class.remote(str(Path(os.path.abspath(predictor.path))), dict(options, device=actor_device),
                                 outputs, max(1, int(cpu_share)), exit_hook) for _ in range(count)]
    for answer in ray.get([actor.ready.remote() for actor in actors]):
        if answer["error"]:
            raise ParameterError(f"a Ray worker on {answer['node']} cannot load the bundle: {answer['error']} "
                                 "(every node must see the bundle, the dataset and OUT at the same paths).")
    LOG.info("segmenting %d cases on %d Ray actors (%s)", len(todo), count, actor_device)
    queue = deque(todo)
    attempts: Counter[str] = Counter()
    load = [0] * count
    in_flight: dict[Any, tuple[int, Case]] = {}
    failures: dict[str, CaseOutcome] = {}

    def submit() -> None:
        while queue:
            index = min(range(count), key=load.__getitem__)
            if load[index] >= CASES_PER_ACTOR:
                return
            case = queue.popleft()
            in_flight[actors[index].segment.remote(case)] = (index, case)
            load[index] += 1

    submit()
    while in_flight:
        if predictor.cancel:
            predictor.cancel.raise_if_cancelled()
        finished, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
        for reference in finished:
            index, case = in_flight.pop(reference)
            load[index] -= 1
            try:
                record = ray.get(reference)
            except ray.exceptions.RayActorError as error:
                attempts[case.case_id] += 1
                if attempts[case.case_id] < MAX_ATTEMPTS:
                    LOG.warning("%s: its Ray worker stopped; trying again", case.case_id)
                    queue.appendleft(case)
                    continue
                last = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                reason = f"its Ray worker process died each of the {MAX_ATTEMPTS} times it was tried (last: {last})"
                failures[case.case_id] = _lost_row(case.case_id, reason)
                record = {"error": reason}
            done += 1
            if record["error"]:
                predictor.progress({"event": "warning", "message": f"{case.case_id}: {record['error']}"})
            predictor.progress({"event": "progress", "stage": "segment", "done": done, "total": total,
                                "message": case.case_id})
        submit()
    for actor in actors:
        ray.kill(actor)
    return failures
