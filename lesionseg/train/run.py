"""A training run: folds (or one fold, or all data), the ensemble bundle, the fold metrics table.

Layout of ``RUN``::

    RUN/train_config.json      the configuration
    RUN/difficulty.csv         the difficulty table the curriculum used (when it used one)
    RUN/fold_<i>/              log.csv, log.json, checkpoint.pt, val_cases.csv, val_slices.csv,
                               slice_losses.csv (mean training loss per slice: the cheap gradient estimate)
    RUN/all_data/              the same for an --all-data model
    RUN/rehearsal/             the synthetic cases of the starter's recipe trained on beside the dataset's
                               (fine-tuning a starter; lesionseg.train.rehearsal)
    RUN/folds.csv              one row per trained model: validation Dice, HD95, detection rate, epochs
    RUN/budget.json            with --minutes: the budget, how it was split between the models, planned
                               against actual seconds (each model's plan is in its folder's budget.json)
    RUN/model.lsb              the bundle (one member per trained model: an ensemble for --folds K)
"""

from __future__ import annotations

import csv
import hashlib
import io as text_io
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lesionseg.data import Case, folds as make_folds
from lesionseg.errors import DatasetError, ParameterError
from lesionseg.io import write_json_atomic, write_text_atomic
from lesionseg.preprocess import PreparedDataset
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress
from lesionseg.train.config import TrainConfig
from lesionseg.train.distributed import finish, init_distributed
from lesionseg.train.loop import FoldResult, FoldTrainer
from lesionseg.train.rehearsal import REHEARSAL_PREFIX
from lesionseg.train.slices import case_lesion_volumes_ml, select_rows

BUNDLE_NAME = "model.lsb"
COMPUTABLE_METRICS = ("area", "contrast")
#: seconds of a budgeted run kept for writing the bundle after the last model
BUNDLE_RESERVE_S = 2.0


@dataclass
class RunSummary:
    """What a run produced: the bundle path and one result per trained model."""

    run_dir: Path
    bundle: Path | None
    results: list[FoldResult]

    @property
    def mean_dice(self) -> float:
        values = [r.validation.get("val_dice") for r in self.results if r.validation]
        return float(np.mean(values)) if values else float("nan")


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    columns = columns or (list(rows[0]) if rows else [])
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ("" if isinstance(v, float) and not math.isfinite(v) else v) for key, v in row.items()})
    write_text_atomic(path, buffer.getvalue())


def difficulty_for(config: TrainConfig, prepared: PreparedDataset, run_dir: Path | None, progress: ProgressCallback):
    """The difficulty table the curriculum needs: read from ``--difficulty`` or computed (area, contrast)."""
    from lesionseg.difficulty import compute_difficulty, read_difficulty, write_difficulty

    if config.curriculum not in ("vanilla", "anti"):
        return None
    if config.difficulty_csv:
        table = read_difficulty(config.difficulty_csv)
        table.join(prepared)  # refuses a table made on another prepared dataset
    else:
        missing = [m for m in config.metrics if m not in COMPUTABLE_METRICS]
        if missing:
            raise ParameterError(
                f"--metric {','.join(missing)} cannot be computed by train; give a table that has it with "
                "--difficulty (e.g. 'lesionseg difficulty PREPARED --metric gradient --bundle B --out table.csv')."
            )
        table = compute_difficulty(prepared, config.metrics, progress=progress)
    if run_dir is not None:
        write_difficulty(table, run_dir / "difficulty.csv")
    return table


def eligible_cases(volumes_ml: dict[str, float], min_lesion_ml: float) -> list[str]:
    """The case ids (in ``volumes_ml``'s order, from :func:`case_lesion_volumes_ml`) whose lesion volume reaches
    ``min_lesion_ml``: the cases a model may train on."""
    return [case_id for case_id, volume in volumes_ml.items() if volume >= min_lesion_ml]


def apply_hold_out_rule(config: TrainConfig, prepared: PreparedDataset) -> tuple[TrainConfig, str | None]:
    """The configuration to train and, when it differs from ``config``, the sentence that says why.

    With fewer eligible cases than ``config.hold_out_min_cases`` (and folds asked for), one model is trained
    on every case instead (``all_data``; no validation, the final weights kept). 2D networks only: the rule
    was measured on slice training; a 3D run keeps its folds.
    """
    if config.all_data or not config.hold_out_min_cases or config.is_3d:
        return config, None
    count = len(eligible_cases(case_lesion_volumes_ml(prepared), config.min_lesion_ml))
    if count >= config.hold_out_min_cases:
        return config, None
    changed = replace(config, all_data=True, fold=None)
    return changed, (f"{count} training cases, fewer than {config.hold_out_min_cases}: one model on all of them, "
                     "without a validation hold-out (its final weights are kept; give --fold or --folds to "
                     "hold cases out)")


def with_rehearsal(config: TrainConfig, prepared: PreparedDataset, source, own_cases: int, run_dir: Path, dist,
                   progress: ProgressCallback) -> tuple[PreparedDataset, Any]:
    """The data a run trains on: ``prepared``, plus the rehearsal cases when it gets some
    (:mod:`lesionseg.train.rehearsal`; made by the main process, in ``RUN/rehearsal``), and the rehearsal plan
    (None without). A rehearsal that cannot be made is left out with a message; the run goes on."""
    from lesionseg.errors import LesionSegError
    from lesionseg.preprocess import PreparedUnion
    from lesionseg.train.distributed import broadcast
    from lesionseg.train.rehearsal import make_rehearsal, plan_rehearsal

    plan, note = plan_rehearsal(config, source.starter if source else None, source.manifest if source else None,
                                own_cases)
    if note and dist.is_main:
        progress({"event": "message", "message": note})
    if plan is None:
        return prepared, None
    folder = run_dir / "rehearsal"
    problem, rehearsal = None, None
    if dist.is_main:
        try:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            rehearsal = make_rehearsal(plan, prepared.config, folder,
                                       workers=max(1, min(2, config.num_threads or cores)), progress=progress)
        except LesionSegError as error:
            problem = str(error)
    problem = broadcast(dist, problem)  # every process trains on the same data
    try:
        if problem is None and rehearsal is None:  # the other processes read what the main one made
            rehearsal = PreparedDataset(folder / "prepared")
        union = PreparedUnion(prepared, {REHEARSAL_PREFIX: rehearsal}) if rehearsal is not None else None
    except LesionSegError as error:
        problem, union = str(error), None
    if union is None:
        if dist.is_main:
            progress({"event": "message", "message": f"training without rehearsal: {problem}"})
        return prepared, None
    return union, plan


def plan_folds(config: TrainConfig, prepared: PreparedDataset) -> list[tuple[int | None, list[str], list[str]]]:
    """(fold, training case ids, validation case ids) for each model to train."""
    volumes = case_lesion_volumes_ml(prepared)
    case_ids = prepared.case_ids
    eligible = eligible_cases(volumes, config.min_lesion_ml)
    if not eligible:
        raise DatasetError(f"no case of {prepared.root} has a lesion of at least {config.min_lesion_ml:g} mL "
                           "(--min-lesion-ml); lower the threshold.")
    if config.all_data:
        return [(None, eligible, [])]
    patient_of = {row["case_id"]: row["patient_id"] for row in prepared.slices}
    cases = [Case(c, patient_of[c], {}) for c in case_ids]
    fold_ids = make_folds(cases, k=config.folds, seed=config.seed, lesion_volumes_ml=volumes)
    wanted = range(config.folds) if config.fold is None else [config.fold]
    plans = []
    for fold in wanted:
        validation = fold_ids[fold]
        training = [c for c in eligible if c not in set(validation)]
        if not training:
            raise DatasetError(f"fold {fold} has no training case left after --min-lesion-ml.")
        plans.append((fold, training, validation))
    return plans


def data_fingerprint(prepared: PreparedDataset) -> str:
    """A hash of the prepared slices (case ids, slice indices, lesion pixels): identifies the training data
    without writing any patient identifier into the bundle."""
    digest = hashlib.sha256()
    for row in prepared.slices:
        digest.update(f"{row['case_id']}|{row['slice_index']}|{row['lesion_pixels']}\n".encode())
    return digest.hexdigest()


def training_data_provenance(prepared: PreparedDataset) -> dict[str, Any]:
    """What a bundle's provenance says of its training data: ``data_fingerprint``, ``training_data`` (cases,
    slices, lesion slices, lesion volumes in mL) and ``brain_extraction`` (see :func:`brain_extraction_summary`)."""
    volumes = list(case_lesion_volumes_ml(prepared).values())
    return {
        "data_fingerprint": data_fingerprint(prepared),
        "training_data": {"cases": len(prepared.case_ids), "slices": len(prepared.slices),
                          "lesion_slices": sum(1 for row in prepared.slices if row["has_lesion"]),
                          "lesion_volume_ml": {"median": float(np.median(volumes)), "min": float(np.min(volumes)),
                                               "max": float(np.max(volumes))}},
        "brain_extraction": brain_extraction_summary(prepared),
    }


def median_spacing_mm(prepared: PreparedDataset) -> list[float]:
    """The median native voxel spacing (x, y, z) of the prepared cases, in mm: a bundle's expected spacing."""
    spacings = np.array([prepared.record(c).native.spacing for c in prepared.case_ids])
    return [float(v) for v in np.median(spacings, axis=0)]


def brain_extraction_summary(prepared: PreparedDataset) -> dict[str, Any]:
    """The brain extraction of the training cases: the method asked for and how many cases each method made
    (from the case records; ``"unrecorded"`` for cases prepared before records named the method)."""
    used: dict[str, int] = {}
    for case_id in prepared.case_ids:
        step = prepared.record(case_id).steps.get("brain_extraction") or {}
        method = str(step.get("method", "unrecorded"))
        if step.get("requested") is None and method == prepared.config.brain_extraction:
            method = "unrecorded"  # older records held the requested method only
        used[method] = used.get(method, 0) + 1
    return {"requested": prepared.config.brain_extraction, "used": dict(sorted(used.items()))}


def write_bundle(run_dir: Path, config: TrainConfig, prepared: PreparedDataset, results: list[FoldResult],
                 extra_provenance: dict[str, Any] | None = None) -> Path:
    """Write ``RUN/model.lsb`` with one member per trained model (``extra_provenance``: the preset, the time
    budget, the bundle it was fine-tuned from)."""
    from lesionseg.bundle import make_manifest, redact_paths, save_bundle
    from lesionseg.bundle.slice_size import reading_agreement_for
    from lesionseg.models import network_config

    channels = prepared.channels or list(prepared.config.channels or [])
    reading_sizes = reading_sizes_of(config, prepared)
    members = [{"fold": r.fold, "validation": {k: v for k, v in r.validation.items() if math.isfinite(v)}}
               for r in results]
    provenance = {
        "train_config": redact_paths(config.to_dict()),
        "curriculum": {"name": config.curriculum, "metrics": config.metrics, "groups": config.groups,
                       "grouping": config.grouping, "epochs": config.epochs},
        **training_data_provenance(prepared),
        "fold_metrics": [{"fold": m["fold"], **m["validation"]} for m in members],
        "preset": config.preset,
        **(extra_provenance or {}),
    }
    preprocessing = prepared.config.to_dict()
    preprocessing["context_slices"] = config.context_slices  # the network's input depth (<= what was prepared)
    manifest = make_manifest(
        network_config=network_config(config.network, len(prepared.array_channels) * (2 * config.context_slices + 1),
                                      prepared.config.n_outputs(), **config.network_kwargs),
        channels=channels, reference_channel=prepared.config.reference or channels[0],
        expected_spacing_mm=median_spacing_mm(prepared),
        preprocessing=preprocessing, members=members, provenance=provenance,
        name=run_dir.name, description=(f"{config.network} trained on 3D patches" if config.is_3d else
                                        f"{config.network} trained with the {config.curriculum} curriculum"),
        patch_size=list(config.patch_size) if config.is_3d else None, labels=prepared.config.bundle_labels(),
        reading_sizes=reading_sizes, reading_agreement=reading_agreement_for(channels) if reading_sizes else None,
    )
    return save_bundle(run_dir / BUNDLE_NAME, manifest, [r.state_dict for r in results], case_ids=prepared.case_ids)


def reading_sizes_of(config: TrainConfig, prepared: PreparedDataset) -> list[int] | None:
    """The slice sizes (pixels) the bundle reads new scans at: the prepared size, then its scales by
    ``config.inference_scale`` (:mod:`lesionseg.bundle.slice_size`) that differ from it; None when none does and
    for 3D networks (the training size alone)."""
    from lesionseg.bundle.slice_size import scaled_reading_sizes
    from lesionseg.models import size_multiple

    if config.is_3d:
        return None
    sizes = scaled_reading_sizes(prepared.size, config.inference_scale,
                                 size_multiple(config.network, **config.network_kwargs))
    return sizes if len(sizes) > 1 else None


def _fold_folder(run_dir: Path, fold: int | None) -> Path:
    return run_dir / (f"fold_{fold}" if fold is not None else "all_data")


def _write_fold_tables(folder: Path, result: FoldResult) -> None:
    if result.val_cases:
        _write_csv(folder / "val_cases.csv", result.val_cases)
    if result.val_slices:
        _write_csv(folder / "val_slices.csv", result.val_slices)
    rows = [{"case_id": row["case_id"], "slice_index": row["slice_index"], "has_lesion": int(row["has_lesion"]),
             "mean_loss": float(loss)} for row, loss in zip(result.train_rows, result.slice_losses)]
    _write_csv(folder / "slice_losses.csv", rows)


def write_budget_summary(run_dir: Path, config: TrainConfig, results: list[FoldResult], spent_s: float) -> dict:
    """``RUN/budget.json``: the budget, each model's share, planned and actual seconds (returned too)."""
    summary = {"minutes": config.minutes, "budget_s": 60.0 * float(config.minutes), "spent_s": spent_s, "models": [
        {"fold": "all" if r.fold is None else r.fold, "budget_s": r.plan["budget_s"] if r.plan else None,
         "planned_epochs": r.plan["epochs"] if r.plan else None, "epochs_run": r.epochs_run,
         "planned_train_s": r.plan["planned_train_s"] if r.plan else None,
         "planned_validations": r.plan["validations"] if r.plan else None, "actual_s": r.seconds,
         "stopped_at_deadline": r.stopped_at_deadline, "notes": r.plan["notes"] if r.plan else []}
        for r in results]}
    write_json_atomic(run_dir / "budget.json", summary)
    return summary


#: losses that treat the output as lesion against background only (a lesion logit or lesion-wise terms)
BINARY_ONLY_LOSSES = ("dice_bce", "f1")


def check_lesion_classes(config: TrainConfig, prepared: PreparedDataset) -> None:
    """Refuse, with a sentence, what cannot train a model of several lesion classes (data prepared with
    ``classes``): binary-only losses and loss terms, the adversarial critic, the naive Bayes baseline,
    detect-then-segment and 3D networks. Nothing to check for one lesion class."""
    classes = prepared.config.classes
    if not classes:
        return
    names = ", ".join(entry["name"] for entry in classes)
    what = None
    if config.loss in BINARY_ONLY_LOSSES:
        what = f"the {config.loss} loss is lesion-against-background only (use ce_dice, gdice_ce, lovasz or boundary_nll)"
    elif float(config.loss_kwargs.get("lambda_blob", 0.0) or 0.0) > 0:
        what = "the lesion-wise term lambda_blob counts lesions of one class only (leave it at 0)"
    elif config.adversarial:
        what = "the adversarial critic judges one lesion mask (--adversarial 0)"
    elif config.network == "gnb":
        what = "the naive Bayes baseline has one lesion class"
    elif config.network == "detect_segment":
        what = "detect_segment finds boxes of one lesion class (prepare with --classes binary)"
    elif config.is_3d:
        what = f"3D networks ({config.network}) are trained for one lesion class here; use a 2D network"
    if what:
        raise ParameterError(f"{prepared.root} was prepared with {len(classes)} lesion classes ({names}), but {what}.")


def train_run(prepared_root: str | os.PathLike, run_dir: str | os.PathLike, config: TrainConfig, *,
              resume: bool = False, progress: ProgressCallback = ignore_progress, cancel: CancelFlag | None = None,
              record_visits: bool = False) -> RunSummary:
    """Train the models a configuration asks for and write the run folder (see the module docstring).

    Raises:
        LesionSegError: bad input (no lesion slices, unknown names, a difficulty table of other data...).
        CancelledError: when ``cancel`` is set; the checkpoints let ``resume=True`` continue.
    """
    import torch

    from lesionseg.models import FITTED_NETWORKS
    from lesionseg.train.finetune import finetune_source

    run_started = time.monotonic()
    prepared = PreparedDataset(prepared_root)
    check_lesion_classes(config, prepared)
    if config.network in FITTED_NETWORKS:  # fitted in one pass, not trained (the Gaussian naive Bayes baseline)
        from lesionseg.train.gnb import train_gnb

        return train_gnb(prepared_root, run_dir, config, progress=progress)
    run_dir = Path(run_dir)
    if not any(row["has_lesion"] for row in prepared.slices):
        raise DatasetError(f"{prepared.root} has no lesion slices; training needs cases with lesions.")
    if not config.is_3d:
        prepared.require_context(config.context_slices)
    config, hold_out_note = apply_hold_out_rule(config, prepared)
    dist = init_distributed(use_cuda=torch.cuda.is_available() and config.device in ("auto", "cuda"))
    try:
        if dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            config.save(run_dir / "train_config.json")
            if hold_out_note:
                progress({"event": "message", "message": hold_out_note})
        source = finetune_source(config, prepared, progress if dist.is_main else None)
        initial_state = source.state_dict if source else None
        plans = plan_folds(config, prepared)
        training_data, rehearsal = with_rehearsal(config, prepared, source, len(plans[0][1]), run_dir, dist,
                                                  progress)
        if rehearsal is not None:  # the synthetic cases train in every model, and are never validated on
            extra_ids = training_data.extra_case_ids(REHEARSAL_PREFIX)
            plans = [(fold, training + extra_ids, validation) for fold, training, validation in plans]
        table = difficulty_for(config, training_data, run_dir if dist.is_main else None, progress)
        results = []
        budget_s = None if config.minutes is None else 60.0 * config.minutes
        for number, (fold, training, validation) in enumerate(plans):
            folder = _fold_folder(run_dir, fold)
            fold_budget = None
            if budget_s is not None:  # an equal share of what is left for each model still to train
                left = budget_s - (time.monotonic() - run_started) - BUNDLE_RESERVE_S
                fold_budget = max(left, 0.0) / (len(plans) - number)
            synthetic = sum(case_id.startswith(REHEARSAL_PREFIX) for case_id in training) if rehearsal else 0
            cases = f"{len(training) - synthetic} cases" + (f" and {synthetic} rehearsal cases" if synthetic else "")
            progress({"event": "message", "message": f"training {'fold ' + str(fold) if fold is not None else 'on all data'}: "
                                                     f"{cases}, validation {len(validation)} cases"})
            trainer = FoldTrainer(config, training_data, select_rows(training_data, training),
                                  select_rows(prepared, validation),
                                  table, folder, fold=fold, progress=progress, cancel=cancel, dist=dist, resume=resume,
                                  initial_state=initial_state, record_visits=record_visits, budget_s=fold_budget)
            result = trainer.run()
            results.append(result)
            if dist.is_main:
                _write_fold_tables(folder, result)
            if record_visits:  # test aid: the dataset indices each rank trained on, epoch by epoch
                import json

                (folder / f"visits_rank{dist.rank}.json").write_text(json.dumps(result.visits))
        bundle = None
        if dist.is_main:
            _write_csv(run_dir / "folds.csv", [{
                "fold": "all" if r.fold is None else r.fold, "train_slices": len(r.train_rows),
                "epochs": r.epochs_run, "iterations": r.iterations, "best_epoch": r.best_epoch, **r.validation,
            } for r in results])
            extra = {"finetuned_from": source.provenance() if source else None,
                     "rehearsal": rehearsal.to_dict() if rehearsal else None}
            if budget_s is not None:
                extra["budget"] = write_budget_summary(run_dir, config, results, time.monotonic() - run_started)
            bundle = write_bundle(run_dir, config, prepared, results, extra)
            if budget_s is not None:
                spent = time.monotonic() - run_started
                progress({"event": "message", "message": f"the run took {spent / 60:.1f} of its {config.minutes:g} "
                                                         "minutes"})
        return RunSummary(run_dir, bundle, results)
    finally:
        finish(dist)
