"""The gradient difficulty of each lesion slice (the curriculum paper's third metric).

Protocol: start from a converged model; retrain it on all lesion slices for a few epochs, R times
(``repeats``) with a freshly shuffled order each time (and fresh optimiser state, from the converged
weights). At every iteration, each slice of the batch gets its loss just before and just after the
optimiser step (both measured in evaluation mode, without gradients); its decrease (before - after) is
recorded. A slice's score is its decrease averaged over all the iterations it took part in, over epochs
and repeats, then min-max normalised to [0, 1] over the slices: 1 = the largest decrease = easy.

The cheap estimate (:func:`loss_based_estimate`) reuses what an ordinary training run records anyway: each
slice's mean training loss over the epochs it was active (``slice_losses.csv``); low loss = easy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lesionseg.errors import DatasetError
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress
from lesionseg.train.slices import SliceArrays


@dataclass
class GradientResult:
    """Per-slice gradient difficulty.

    Attributes:
        rows: the lesion slice rows, in input order.
        mean_decrease: mean loss decrease per slice (loss units).
        score: normalised score in [0, 1], high = easy.
        steps: with ``record_steps``, one dict per (iteration, slice): repeat, epoch, iteration, row,
            before, after.
    """

    rows: list[dict[str, Any]]
    mean_decrease: np.ndarray
    score: np.ndarray
    steps: list[dict[str, Any]] = field(default_factory=list)


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
        logits = forward_padded(network, images, multiple, minimum)
        values = loss.per_sample(logits.float(), masks)
    return values.detach().cpu().numpy()


def gradient_difficulty(arrays: SliceArrays, network, state_dict: dict, *, loss_name: str = "ce_dice",
                        loss_kwargs: dict | None = None, optimiser: str = "rmsprop", lr: float = 1e-4,
                        epochs: int = 2, repeats: int = 5, batch_size: int = 12, seed: int = 0,
                        multiple: int = 16, minimum: int = 0, device=None, record_steps: bool = False,
                        progress: ProgressCallback = ignore_progress, cancel: CancelFlag | None = None) -> GradientResult:
    """Run the gradient-difficulty protocol (see the module docstring) on the lesion slices of ``arrays``.

    Args:
        arrays: slices in memory (lesion-free rows are ignored).
        network: the network (its architecture); ``state_dict`` holds the converged weights.
        loss_name, loss_kwargs, optimiser, lr: the training loss and optimiser of the retraining.
        epochs, repeats, batch_size, seed: the protocol's size and randomness.
        multiple, minimum: padding the network needs (``lesionseg.models.size_multiple``/``min_size``).
        device: torch device (default CPU).
        record_steps: keep every (slice, iteration) measurement in ``result.steps``.
    """
    import torch

    from lesionseg.losses import build_loss
    from lesionseg.models.padding import forward_padded
    from lesionseg.train.loop import _make_optimiser
    from lesionseg.train.config import TrainConfig

    device = device or torch.device("cpu")
    lesion = np.flatnonzero([bool(row["has_lesion"]) for row in arrays.rows])
    if lesion.size == 0:
        raise DatasetError("the gradient difficulty needs lesion slices; none were given.")
    loss = build_loss(loss_name, **(loss_kwargs or {})).to(device)
    network = network.to(device)
    settings = TrainConfig(optimiser=optimiser, lr=lr, batch_size=batch_size)
    decrease_sum = np.zeros(lesion.size)
    decrease_count = np.zeros(lesion.size)
    steps: list[dict[str, Any]] = []
    total = repeats * epochs
    for repeat in range(repeats):
        network.load_state_dict(state_dict)
        optimiser_ = _make_optimiser(settings, [p for p in network.parameters() if p.requires_grad])
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
                network.train()
                optimiser_.zero_grad(set_to_none=True)
                logits = forward_padded(network, images, multiple, minimum)
                batch_loss = loss.per_sample(logits.float(), masks).mean()
                batch_loss.backward()
                optimiser_.step()
                after = _per_sample_loss(network, loss, images, masks, multiple, minimum)
                decrease_sum[chosen] += before - after
                decrease_count[chosen] += 1
                if record_steps:
                    steps += [{"repeat": repeat, "epoch": epoch, "iteration": iteration, "row": int(r),
                               "before": float(b), "after": float(a)} for r, b, a in zip(rows, before, after)]
            progress({"event": "progress", "stage": "gradient difficulty", "done": repeat * epochs + epoch + 1,
                      "total": total})
    mean_decrease = decrease_sum / np.maximum(decrease_count, 1)
    return GradientResult([arrays.rows[i] for i in lesion], mean_decrease, normalise_high_easy(mean_decrease), steps)


def loss_based_estimate(mean_losses: np.ndarray) -> np.ndarray:
    """The cheap estimate from an ordinary run's per-slice mean training losses: normalised, high = easy
    (low loss). Slices never trained on (NaN) get the median score."""
    values = np.asarray(mean_losses, dtype=float)
    known = np.isfinite(values)
    filled = np.where(known, values, np.median(values[known]) if known.any() else 0.0)
    return 1.0 - normalise_high_easy(filled)


def gradient_for_prepared(prepared, bundle_path, *, epochs: int = 2, repeats: int = 5, lr: float | None = None,
                          batch_size: int | None = None, seed: int = 0, device: str = "auto",
                          progress: ProgressCallback = ignore_progress, cancel: CancelFlag | None = None) -> GradientResult:
    """The gradient difficulty of every lesion slice of a prepared dataset, from a bundle's first member.

    The retraining uses the bundle's training loss and optimiser, and its learning rate and batch size
    unless ``lr``/``batch_size`` are given. Rows come in ``slices.csv`` order (lesion slices only).
    """
    from lesionseg.bundle import load_state_dicts, read_manifest
    from lesionseg.device import resolve_device
    from lesionseg.models import build_network_from_config, min_size, size_multiple
    from lesionseg.train.slices import load_slices

    manifest = read_manifest(bundle_path)
    settings = manifest.get("provenance", {}).get("train_config", {}) or {}
    network_config = manifest["network"]
    network = build_network_from_config(network_config)
    keywords = dict(network_config.get("kwargs", {}))
    arrays = load_slices(prepared, [row for row in prepared.slices if row["has_lesion"]])
    return gradient_difficulty(
        arrays, network, load_state_dicts(bundle_path)[0], loss_name=settings.get("loss", "ce_dice"),
        loss_kwargs=settings.get("loss_kwargs") or {}, optimiser=settings.get("optimiser", "rmsprop"),
        lr=float(lr if lr is not None else settings.get("lr", 1e-4)),
        batch_size=int(batch_size if batch_size is not None else settings.get("batch_size", 12)),
        epochs=epochs, repeats=repeats, seed=seed, multiple=size_multiple(network_config["name"], **keywords),
        minimum=min_size(network_config["name"], **keywords), device=resolve_device(device),
        progress=progress, cancel=cancel)
