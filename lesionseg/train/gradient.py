"""The gradient difficulty of each lesion slice (the curriculum paper's third metric).

Protocol: start from a converged model; retrain it on all lesion slices for a few epochs, R times
(``repeats``) with a freshly shuffled order each time (and fresh optimiser state, from the converged
weights). At every iteration, each slice of the batch gets its loss just before and just after the
optimiser step (both measured in evaluation mode, without gradients); both are recorded
(``record_steps`` keeps every record, ``mean_decrease`` their mean decrease before - after).

Turning the records into a score, high = easy (``measure``):

- ``"retraining"`` (default): in each repeat, the decrease of the slice's loss from just before its first
  update to just after its last one, relative to the first: (before_first - after_last) / before_first,
  i.e. the share of its loss that the retraining removed; averaged over the repeats.
- ``"step"``: the literal reading, the decrease before - after of each of the slice's own updates,
  averaged over epochs and repeats.

Either is then min-max normalised to [0, 1] over the slices: 1 = the largest decrease = easy.

Why ``"retraining"`` is the default: near convergence the per-step decrease ranks hard slices as easy. A
slice the model has not fitted (a faint or tiny lesion) keeps a high loss and a large gradient that
dominates its batch's update, so that update lowers its own loss most, and the easy slices, with little
loss left, lose little. Dividing each step's decrease by the loss before it, or ranking it within its
batch, does not undo this. Over the whole retraining, on the other hand, an easy slice also profits from
the updates on the other slices (what it needs is what they teach), while a hard slice's own progress is
partly undone by the updates that follow it: the share of its loss that the retraining removes separates
the two. Measured (``benchmarks/bench_gradient.py``, ``Testing/test_gradient_difficulty.py``):

- 64x64 slices with a hard subset (tiny lesions, faint or invisible) among large bright ones, a small U-Net
  trained on all of them, retrained with Adam or RMSprop: once the easy slices were fitted (training loss
  below 0.2), ``"step"`` scored the hard subset *higher* than the easy one (one-tailed Mann-Whitney p =
  0.8-1 for "easy > hard" in all 9 such runs; dividing by the loss before, or ranking within the batch,
  did not separate them either: p >= 0.07). ``"retraining"`` scored it lower: p <= 0.0015 in 18 of 19
  runs over 300-900 training iterations (benchmark: mean score easy 0.47, hard 0.08, p = 3e-5); the
  exception, p = 0.28, was Adam on a model trained until the hard slices were half memorised (loss easy
  0.017, hard 0.16; RMSprop on the same model: p = 0.0014).
- synthetic FLAIR cohort (8 cases, 90 lesion slices at 64x64, a model whose per-slice training losses
  follow lesion area, Spearman +0.97): Spearman of the score with area and Fisher contrast +0.49 and +0.45
  (retrained with Adam) or +0.67 and +0.48 (RMSprop) for ``"retraining"``; -0.12 and -0.20 or +0.12 and
  -0.00 for ``"step"``. With the cheap estimate: +0.51 or +0.68 against -0.10 or +0.12.

Retraining from a fresh initialisation instead of the converged weights ranks the 64x64 hard subset as hard
with either measure, but on the cohort its scores were uncorrelated with area, contrast and the cheap
estimate (|Spearman| <= 0.11): two epochs from scratch are too short to learn the lesions. It is not
offered.

The cheap estimate (:func:`loss_based_estimate`) reuses what an ordinary training run records anyway: each
slice's mean training loss over the epochs it was active (``slice_losses.csv``); low loss = easy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lesionseg.errors import DatasetError, ParameterError
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress
from lesionseg.train.slices import SliceArrays

#: How the recorded losses become a score (see the module docstring); the first is the default.
MEASURES = ("retraining", "step")


@dataclass
class GradientResult:
    """Per-slice gradient difficulty.

    Attributes:
        rows: the lesion slice rows, in input order.
        mean_decrease: mean loss decrease per update of the slice, before - after (loss units).
        retraining_decrease: mean over the repeats of (before its first update - after its last) / before
            its first update.
        score: normalised score in [0, 1], high = easy, from ``measure``.
        steps: with ``record_steps``, one dict per (iteration, slice): repeat, epoch, iteration, row,
            before, after.
        measure: the measure the score comes from (:data:`MEASURES`).
    """

    rows: list[dict[str, Any]]
    mean_decrease: np.ndarray
    retraining_decrease: np.ndarray
    score: np.ndarray
    steps: list[dict[str, Any]] = field(default_factory=list)
    measure: str = MEASURES[0]


def normalise_high_easy(values: np.ndarray) -> np.ndarray:
    """Min-max normalisation to [0, 1]; all-equal values give 0.5 each."""
    values = np.asarray(values, dtype=float)
    low, high = float(np.min(values)), float(np.max(values))
    if high - low <= 0:
        return np.full(values.shape, 0.5)
    return (values - low) / (high - low)


def _per_sample_loss(network, loss, images, masks, multiple: int, minimum: int):
    import torch

    from lesionseg.models.padding import forward_padded

    network.eval()
    with torch.no_grad():
        own_losses = getattr(network, "training_losses", None)  # a network with its own losses (detect_segment)
        if own_losses is not None:
            return own_losses(images, masks)[1].float().cpu().numpy()
        logits = forward_padded(network, images, multiple, minimum)
        values = loss.per_sample(logits.float(), masks)
    return values.detach().cpu().numpy()


def _step(network, loss, optimiser, images, masks, multiple: int, minimum: int) -> None:
    """One training step, minimising what the trainer minimises (``SegmentationLoss.training_loss``)."""
    from lesionseg.models.padding import forward_padded

    network.train()
    optimiser.zero_grad(set_to_none=True)
    own_losses = getattr(network, "training_losses", None)
    if own_losses is not None:  # what the trainer minimises for such a network (lesionseg.train.loop)
        own_losses(images, masks)[0].backward()
    else:
        logits = forward_padded(network, images, multiple, minimum)
        loss.training_loss(logits.float(), masks).backward()
    optimiser.step()


def gradient_difficulty(arrays: SliceArrays, network, state_dict: dict, *, measure: str = MEASURES[0],
                        loss_name: str = "ce_dice", loss_kwargs: dict | None = None,
                        optimiser: str = "rmsprop", lr: float = 1e-4, epochs: int = 2, repeats: int = 5,
                        batch_size: int = 12, seed: int = 0, multiple: int = 16, minimum: int = 0,
                        device=None, record_steps: bool = False, progress: ProgressCallback = ignore_progress,
                        cancel: CancelFlag | None = None) -> GradientResult:
    """Run the gradient-difficulty protocol (see the module docstring) on the lesion slices of ``arrays``.

    Args:
        arrays: slices in memory (lesion-free rows are ignored).
        network: the network (its architecture); ``state_dict`` holds the converged weights.
        measure: ``"retraining"`` (default) or ``"step"``: what the score is made of (module docstring).
        loss_name, loss_kwargs, optimiser, lr: the training loss and optimiser of the retraining.
        epochs, repeats, batch_size, seed: the protocol's size and randomness.
        multiple, minimum: padding the network needs (``lesionseg.models.size_multiple``/``min_size``).
        device: torch device (default CPU).
        record_steps: keep every (slice, iteration) measurement in ``result.steps``.
    """
    import torch

    from lesionseg.losses import build_loss
    from lesionseg.train.config import TrainConfig
    from lesionseg.train.optim import make_optimiser

    if measure not in MEASURES:
        raise ParameterError(f"the gradient difficulty's measure must be one of {', '.join(MEASURES)}, "
                             f"not {measure!r}.")
    device = device or torch.device("cpu")
    lesion = np.flatnonzero([bool(row["has_lesion"]) for row in arrays.rows])
    if lesion.size == 0:
        raise DatasetError("the gradient difficulty needs lesion slices; none were given.")
    loss = build_loss(loss_name, **(loss_kwargs or {})).to(device)
    network = network.to(device)
    settings = TrainConfig(optimiser=optimiser, lr=lr, batch_size=batch_size)
    decrease_sum = np.zeros(lesion.size)
    decrease_count = np.zeros(lesion.size)
    retraining_sum = np.zeros(lesion.size)
    retraining_count = np.zeros(lesion.size)
    steps: list[dict[str, Any]] = []
    total = repeats * epochs
    for repeat in range(repeats):
        network.load_state_dict(state_dict)
        optimiser_ = make_optimiser(settings, [p for p in network.parameters() if p.requires_grad])
        first_before = np.full(lesion.size, np.nan)
        last_after = np.full(lesion.size, np.nan)
        for epoch in range(epochs):
            order = np.random.default_rng((seed, repeat, epoch)).permutation(lesion.size)
            for iteration, start in enumerate(range(0, order.size, batch_size)):
                if cancel:
                    cancel.raise_if_cancelled()
                chosen = order[start:start + batch_size]
                rows = lesion[chosen]
                images = torch.as_tensor(arrays.images[rows], dtype=torch.float32, device=device)
                masks = torch.as_tensor(arrays.masks[rows][:, None].astype(np.int64), device=device)
                before = _per_sample_loss(network, loss, images, masks, multiple, minimum)
                _step(network, loss, optimiser_, images, masks, multiple, minimum)
                after = _per_sample_loss(network, loss, images, masks, multiple, minimum)
                decrease_sum[chosen] += before - after
                decrease_count[chosen] += 1
                first_before[chosen] = np.where(np.isnan(first_before[chosen]), before, first_before[chosen])
                last_after[chosen] = after
                if record_steps:
                    steps += [{"repeat": repeat, "epoch": epoch, "iteration": iteration, "row": int(r),
                               "before": float(b), "after": float(a)} for r, b, a in zip(rows, before, after)]
            progress({"event": "progress", "stage": "gradient difficulty", "done": repeat * epochs + epoch + 1,
                      "total": total})
        seen = np.isfinite(first_before)
        share = (first_before[seen] - last_after[seen]) / np.maximum(first_before[seen], 1e-12)
        retraining_sum[seen] += share
        retraining_count[seen] += 1
    mean_decrease = decrease_sum / np.maximum(decrease_count, 1)
    retraining_decrease = retraining_sum / np.maximum(retraining_count, 1)
    score = normalise_high_easy(retraining_decrease if measure == "retraining" else mean_decrease)
    return GradientResult([arrays.rows[i] for i in lesion], mean_decrease, retraining_decrease, score, steps,
                          measure)


def loss_based_estimate(mean_losses: np.ndarray) -> np.ndarray:
    """The cheap estimate from an ordinary run's per-slice mean training losses: normalised, high = easy
    (low loss). Slices never trained on (NaN) get the median score."""
    values = np.asarray(mean_losses, dtype=float)
    known = np.isfinite(values)
    filled = np.where(known, values, np.median(values[known]) if known.any() else 0.0)
    return 1.0 - normalise_high_easy(filled)


def gradient_for_prepared(prepared, bundle_path, *, measure: str = MEASURES[0], epochs: int = 2,
                          repeats: int = 5, lr: float | None = None, batch_size: int | None = None,
                          seed: int = 0, device: str = "auto", record_steps: bool = False,
                          progress: ProgressCallback = ignore_progress,
                          cancel: CancelFlag | None = None) -> GradientResult:
    """The gradient difficulty of every lesion slice of a prepared dataset, from a bundle's first member.

    The retraining uses the bundle's training loss and optimiser, and its learning rate and batch size
    unless ``lr``/``batch_size`` are given. Rows come in ``slices.csv`` order (lesion slices only).
    """
    from lesionseg.bundle import load_state_dicts, read_manifest
    from lesionseg.device import resolve_device
    from lesionseg.models import build_network_from_config, min_size, size_multiple
    from lesionseg.train.slices import load_slices

    manifest = read_manifest(bundle_path)
    prepared.require_mirror_difference(manifest.get("preprocessing", {}).get("mirror_difference") is True,
                                       str(bundle_path))
    settings = manifest.get("provenance", {}).get("train_config", {}) or {}
    network_config = manifest["network"]
    network = build_network_from_config(network_config)
    keywords = dict(network_config.get("kwargs", {}))
    context_slices = int(manifest.get("preprocessing", {}).get("context_slices", 0) or 0)
    arrays = load_slices(prepared, [row for row in prepared.slices if row["has_lesion"]], context_slices)
    return gradient_difficulty(
        arrays, network, load_state_dicts(bundle_path)[0], measure=measure,
        loss_name=settings.get("loss", "ce_dice"), loss_kwargs=settings.get("loss_kwargs") or {},
        optimiser=settings.get("optimiser", "rmsprop"),
        lr=float(lr if lr is not None else settings.get("lr", 1e-4)),
        batch_size=int(batch_size if batch_size is not None else settings.get("batch_size", 12)),
        epochs=epochs, repeats=repeats, seed=seed, multiple=size_multiple(network_config["name"], **keywords),
        minimum=min_size(network_config["name"], **keywords), device=resolve_device(device),
        record_steps=record_steps, progress=progress, cancel=cancel)
