"""Fitting the Gaussian naive Bayes baseline (``lesionseg train PREPARED RUN --model gnb``).

The classifier is :class:`lesionseg.models.gnb.GaussianNaiveBayes`; its features (each prepared channel's
intensity and its local means at :data:`SCALES_MM`, the mirrored differences included when the dataset was
prepared with ``--mirror-difference``) are computed by the same module at fitting and at inference.

Fit (a few lines of NumPy rather than scikit-learn's ``GaussianNB``: the fit is a per-class mean and
variance, and this keeps scikit-learn out of the core and out of Slicer's Python; the tests check it
against ``GaussianNB``), from the training cases' brain voxels:

- **Class balance.** Lesion voxels are about 1 % of the brain. Every lesion voxel is used; background voxels
  are a seeded random sample of about :data:`BACKGROUND_SAMPLE` voxels (a sample within a class leaves its
  mean and variance unbiased, and the fit takes a second instead of minutes). The priors are the classes'
  true frequencies in whole brains: the prepared slices hold every lesion slice but only a fraction
  (``prepare --negatives``) of the lesion-free ones, so a lesion-free slice's voxels count
  (lesion-free brain slices) / (those kept) times, as in the background sample's probabilities.
- **Variance smoothing** as ``GaussianNB``: ``1e-9`` times the largest feature variance added to every
  variance.
- **Threshold.** Naive Bayes treats the intensity and its local means as independent although they are
  strongly correlated, so its posteriors are overconfident (log-odds of +-40 are common); the bundle's
  threshold is the one of :data:`THRESHOLDS` with the highest mean per-case Dice on the training cases (the
  metric the evaluation reports; the background sample weighted as the voxels it stands for). The pooled
  voxel Dice chose thresholds at the grid's edge (posterior 1 - 1e-6) that a few very bright training
  lesions dominated, and missed the fainter held-out lesions (``benchmarks/bench_gnb.py``: mean held-out
  Dice 0.12 with the mirrored difference). The same post-processing (brain mask, smallest lesion) follows
  at inference.

Folds as for the networks (:func:`lesionseg.train.run.plan_folds`): one classifier per fold, validated on
its held-out cases with the same metrics (:func:`lesionseg.train.validate.measure`); the bundle holds one
member per fold. It writes ``RUN/train_config.json``, ``RUN/folds.csv``, ``RUN/fold_<i>/val_cases.csv``
and ``RUN/model.lsb`` like the trainer.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lesionseg.errors import DatasetError
from lesionseg.preprocess import PreparedDataset
from lesionseg.progress import ProgressCallback, ignore_progress
from lesionseg.train.config import TrainConfig

#: local-mean scales: Gaussian filters of these full widths at half maximum, mm
SCALES_MM = (3.0, 9.0)
#: background voxels sampled for the fit (all lesion voxels are used)
BACKGROUND_SAMPLE = 200_000
#: GaussianNB's default variance smoothing (fraction of the largest feature variance)
VAR_SMOOTHING = 1e-9
#: the thresholds tried on the training voxels: log-odds -4 .. 14 in steps of 0.25 (posteriors 0.018 ..
#: 1 - 8e-7, still distinct from 1 in float32), since naive Bayes' posteriors crowd near 0 and 1
THRESHOLDS = tuple(float(1.0 / (1.0 + np.exp(-t))) for t in np.arange(-4.0, 14.01, 0.25))
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass
class GnbFit:
    """A fitted classifier: ``means``/``variances`` (classes x features), ``priors`` (classes), ``threshold``."""

    means: np.ndarray
    variances: np.ndarray
    priors: np.ndarray
    threshold: float
    lesion_voxels: int
    background_voxels: int


def fit_gaussian_nb(features: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                    classes: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class weighted means, variances (+ GaussianNB's smoothing) and priors.

    Args:
        features: (V, F) per-voxel features.
        labels: (V,) class of each voxel, 0 .. classes - 1.
        weights: (V,) how many voxels each one stands for (default 1).
        classes: K.

    Returns:
        ``(means (K, F), variances (K, F), priors (K,))``.

    Raises:
        DatasetError: a class without voxels.
    """
    features = np.asarray(features, dtype=np.float64)
    weights = np.ones(len(features)) if weights is None else np.asarray(weights, dtype=np.float64)
    means, variances, totals = [], [], []
    for k in range(classes):
        chosen = labels == k
        if not chosen.any():
            raise DatasetError(f"the training voxels hold no voxel of class {k}; the classifier needs lesion and "
                               "background voxels.")
        w = weights[chosen]
        mean = np.average(features[chosen], axis=0, weights=w)
        means.append(mean)
        variances.append(np.average((features[chosen] - mean) ** 2, axis=0, weights=w))
        totals.append(w.sum())
    epsilon = VAR_SMOOTHING * float(np.var(features, axis=0).max())
    return np.array(means), np.array(variances) + epsilon, np.array(totals) / np.sum(totals)


def pixel_mm_of(prepared: PreparedDataset, case_ids: list[str]) -> float:
    """The median prepared pixel size (mm) of the cases."""
    return float(np.median([prepared.record(c).grid.pixel_mm for c in case_ids]))


def _negative_weight(prepared: PreparedDataset, case_id: str) -> float:
    """How many lesion-free brain slices each kept lesion-free slice of a case stands for (>= 1)."""
    step = prepared.record(case_id).steps.get("slices") or {}
    kept, lesion, brain = step.get("negatives"), step.get("lesion"), step.get("brain")
    if not kept or lesion is None or brain is None:
        return 1.0
    return max(1.0, (brain - lesion) / kept)


def _case_features(model: Any, images: np.ndarray) -> np.ndarray:
    """Per-voxel features (N, F, S, S) of a case's prepared slices (N, C, S, S)."""
    import torch

    with torch.inference_mode():
        return model.features(torch.as_tensor(images, dtype=torch.float32)).numpy()


def collect_voxels(prepared: PreparedDataset, case_ids: list[str], model: Any, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fitting voxels of the cases: every lesion voxel and a background sample, inside the brain.

    Returns:
        ``(features (V, F), labels (V,), weights (V,), cases (V,))``: a voxel's weight is how many brain
        voxels it stands for (the negative-slice correction, divided by its sampling probability for
        background); ``cases`` is the index of its case in ``case_ids``.
    """
    weighted_background = 0.0
    per_case = []
    for case_id in case_ids:
        arrays = prepared.arrays(case_id)
        slice_weight = np.where([row["has_lesion"] for row in prepared.case_slices(case_id)], 1.0,
                                _negative_weight(prepared, case_id))
        background = (arrays.brains > 0) & (arrays.masks == 0)
        weighted_background += float((background.reshape(len(background), -1).sum(axis=1) * slice_weight).sum())
        per_case.append((case_id, slice_weight))
    rate = min(1.0, BACKGROUND_SAMPLE / max(weighted_background, 1.0))  # sampling probability per unit weight
    rng = np.random.default_rng(seed)
    features, labels, weights, cases = [], [], [], []
    for index, (case_id, slice_weight) in enumerate(per_case):
        arrays = prepared.arrays(case_id)
        brain = arrays.brains > 0
        lesion = brain & (arrays.masks > 0)
        voxel_weight = np.broadcast_to(slice_weight[:, None, None], brain.shape)
        probability = np.minimum(1.0, rate * voxel_weight)
        sampled = brain & ~lesion & (rng.random(brain.shape) < probability)
        if not (lesion.any() or sampled.any()):
            continue
        values = np.moveaxis(_case_features(model, arrays.images), 1, -1)  # (N, S, S, F)
        for chosen, label, weight in ((lesion, 1, voxel_weight[lesion]),
                                      (sampled, 0, voxel_weight[sampled] / probability[sampled])):
            features.append(values[chosen])
            labels.append(np.full(int(chosen.sum()), label, np.int64))
            weights.append(weight)
            cases.append(np.full(int(chosen.sum()), index, np.int64))
    return np.concatenate(features), np.concatenate(labels), np.concatenate(weights), np.concatenate(cases)


def best_threshold(posteriors: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                   cases: np.ndarray | None = None) -> float:
    """The threshold of :data:`THRESHOLDS` with the highest mean per-case Dice (weighted voxel counts).

    Args:
        posteriors, labels, weights: per voxel (V,): lesion posterior, class, voxels it stands for.
        cases: (V,) the case index of each voxel; None: all one case (the pooled voxel Dice).
    """
    lesion = labels == 1
    cases = np.zeros(len(labels), np.int64) if cases is None else np.asarray(cases, np.int64)
    count = int(cases.max()) + 1 if len(cases) else 1
    with_lesion = np.bincount(cases, lesion.astype(float), minlength=count) > 0  # Dice is defined for these
    scores = []
    for threshold in THRESHOLDS:
        positive = posteriors >= threshold
        true_positive = np.bincount(cases, weights * (positive & lesion), minlength=count)
        false = np.bincount(cases, weights * (positive != lesion), minlength=count)
        scores.append(np.mean((2 * true_positive / np.maximum(2 * true_positive + false, 1e-12))[with_lesion]))
    return THRESHOLDS[int(np.argmax(scores))]


def gnb_kwargs(fit: GnbFit, sigmas_px: list[float], pixel_mm: float, feature_list: list[str]) -> dict[str, Any]:
    """The network keywords (JSON) of a fitted classifier."""
    return {"means": fit.means.tolist(), "variances": fit.variances.tolist(), "priors": fit.priors.tolist(),
            "sigmas_px": [float(s) for s in sigmas_px], "scales_mm": list(SCALES_MM), "pixel_mm": float(pixel_mm),
            "features": feature_list}


def fit_gnb(prepared: PreparedDataset, case_ids: list[str], seed: int = 0,
            pixel_mm: float | None = None) -> tuple[GnbFit, dict[str, Any]]:
    """Fit the classifier on the brain voxels of ``case_ids``.

    Args:
        prepared, case_ids: the training cases.
        seed: of the background sample.
        pixel_mm: the prepared pixel size the scales are converted with (default: the cases' median).

    Returns:
        The fit and the network configuration's keywords (for :func:`lesionseg.models.network_config`).
    """
    import torch

    from lesionseg.models.gnb import GaussianNaiveBayes, feature_names

    channels = prepared.array_channels
    pixel_mm = pixel_mm_of(prepared, case_ids) if pixel_mm is None else float(pixel_mm)
    sigmas_px = [scale / FWHM_PER_SIGMA / pixel_mm for scale in SCALES_MM]
    count = len(channels) * (1 + len(sigmas_px))
    placeholder = GaussianNaiveBayes(len(channels), 2, means=np.zeros((2, count)), variances=np.ones((2, count)),
                                     priors=[0.5, 0.5], sigmas_px=sigmas_px)  # computes the features only
    features, labels, weights, cases = collect_voxels(prepared, case_ids, placeholder, seed)
    means, variances, priors = fit_gaussian_nb(features, labels, weights)
    model = GaussianNaiveBayes(len(channels), 2, means=means, variances=variances, priors=priors, sigmas_px=sigmas_px)
    with torch.inference_mode():
        logits = model.log_posteriors(torch.as_tensor(features, dtype=torch.float32).T[None, :, :, None])
        posteriors = torch.softmax(logits, dim=1)[0, 1, :, 0].numpy()
    fit = GnbFit(means, variances, priors, best_threshold(posteriors, labels, weights, cases),
                 int((labels == 1).sum()), int((labels == 0).sum()))
    return fit, gnb_kwargs(fit, sigmas_px, pixel_mm, feature_names(channels, SCALES_MM))


def train_gnb(prepared_root: str | os.PathLike, run_dir: str | os.PathLike, config: TrainConfig, *,
              progress: ProgressCallback = ignore_progress) -> Any:
    """Fit one classifier per fold (or one on all data) and write the run folder (see the module docstring).

    Returns:
        A :class:`lesionseg.train.run.RunSummary` (its results carry no weights history).
    """
    from lesionseg.bundle import make_manifest, redact_paths, save_bundle
    from lesionseg.models import build_network_from_config, network_config
    from lesionseg.train.loop import FoldResult
    from lesionseg.train.run import (BUNDLE_NAME, RunSummary, _write_csv, median_spacing_mm, plan_folds,
                                     training_data_provenance)
    from lesionseg.train.slices import load_slices, select_rows
    from lesionseg.train.validate import measure, predict_probabilities

    prepared = PreparedDataset(prepared_root)
    run_dir = Path(run_dir)
    if not any(row["has_lesion"] for row in prepared.slices):
        raise DatasetError(f"{prepared.root} has no lesion slices; the classifier needs cases with lesions.")
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "train_config.json")
    channels = prepared.array_channels
    pixel_mm = pixel_mm_of(prepared, prepared.case_ids)  # one feature definition for every member
    results, configs, rows, thresholds = [], [], [], []
    for fold, training, validation in plan_folds(config, prepared):
        began = time.perf_counter()
        fit, kwargs = fit_gnb(prepared, training, seed=config.seed + (fold or 0), pixel_mm=pixel_mm)
        net_config = network_config("gnb", len(channels), 2, **kwargs)
        model = build_network_from_config(net_config).eval()
        fit_seconds = time.perf_counter() - began
        summary: dict[str, float] = {}
        val_cases: list[dict[str, Any]] = []
        if validation:
            arrays = load_slices(prepared, select_rows(prepared, validation), 0)
            probabilities = predict_probabilities(model, arrays.images, device="cpu", multiple=1, minimum=1)
            measured = measure(probabilities * (arrays.brains > 0), arrays, prepared, threshold=fit.threshold,
                               full=False)
            summary, val_cases = measured.summary(), measured.cases
        summary = {key: value for key, value in summary.items() if math.isfinite(value)}
        name = "all data" if fold is None else f"fold {fold}"
        progress({"event": "message", "message": f"gnb {name}: fitted on {len(training)} cases "
                                                 f"({fit.lesion_voxels} lesion and {fit.background_voxels} background "
                                                 f"voxels) in {fit_seconds:.1f} s, threshold {fit.threshold:g}"
                                                 + (f", validation Dice {summary['val_dice']:.3f}"
                                                    if "val_dice" in summary else "")})
        folder = run_dir / (f"fold_{fold}" if fold is not None else "all_data")
        folder.mkdir(parents=True, exist_ok=True)
        if val_cases:
            _write_csv(folder / "val_cases.csv", val_cases)
        rows.append({"fold": "all" if fold is None else fold, "train_cases": len(training),
                     "lesion_voxels": fit.lesion_voxels, "background_voxels": fit.background_voxels,
                     "threshold": fit.threshold, "fit_s": round(fit_seconds, 3), **summary})
        results.append(FoldResult(fold, model.state_dict(), summary, val_cases, [], [], np.zeros(0), [], 0, 0,
                                  seconds=fit_seconds))
        configs.append(net_config)
        thresholds.append(fit.threshold)
    _write_csv(run_dir / "folds.csv", rows)
    # one network configuration for the bundle: the members share the feature definition; each member's
    # numbers are in its weights (buffers), the first member's also in the manifest as JSON
    members = [{"fold": r.fold, "validation": r.validation} for r in results]
    provenance = {
        "train_config": redact_paths(config.to_dict()),
        "curriculum": {"name": "none"},
        **training_data_provenance(prepared),
        "fold_metrics": [{"fold": m["fold"], **m["validation"]} for m in members],
        "gnb_members": [{"fold": r.fold, **{k: c["kwargs"][k] for k in ("means", "variances", "priors")}}
                        for r, c in zip(results, configs)],
    }
    preprocessing = prepared.config.to_dict()
    preprocessing["context_slices"] = 0
    manifest = make_manifest(
        network_config=configs[0], channels=prepared.channels, reference_channel=prepared.config.reference
        or prepared.channels[0], expected_spacing_mm=median_spacing_mm(prepared),
        preprocessing=preprocessing, members=members, provenance=provenance, name=run_dir.name,
        description="voxel-wise Gaussian naive Bayes (classical baseline) on "
                    + ", ".join(configs[0]["kwargs"]["features"]),
        threshold=float(np.median(thresholds)))
    bundle = save_bundle(run_dir / BUNDLE_NAME, manifest, [r.state_dict for r in results],
                         case_ids=prepared.case_ids)
    return RunSummary(run_dir, bundle, results)
