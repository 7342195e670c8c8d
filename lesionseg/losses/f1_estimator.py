"""A small CNN that estimates the lesion-wise F1 of a (probability, truth) pair (Kamraoui et al.).

Trained on degraded predictions of truth masks (:func:`~lesionseg.losses.f1_pairs.make_f1_pairs`), then
frozen and used by the ``f1`` loss as ``alpha * (1 - estimate)``: a differentiable stand-in for the
lesion-wise F1, which is not differentiable itself (thresholding, connected components).

Saved as one ``torch.save`` file holding only plain types and tensors (a state dict, a JSON-like config
and the training report), read back with ``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lesionseg.errors import InputFileError, ParameterError
from lesionseg.losses.f1_pairs import check_masks, make_f1_pairs, random_lesion_masks, resize_masks, resize_pair

__all__ = [
    "F1Estimator",
    "load_f1_estimator",
    "make_f1_pairs",
    "random_lesion_masks",
    "resize_pair",
    "save_f1_estimator",
    "train_f1_estimator",
]

FILE_FORMAT = "lesionseg-f1-estimator"
FILE_VERSION = 1


class F1Estimator(nn.Module):
    """Estimate lesion-wise F1 from a lesion probability map and a truth mask.

    Four 3x3 convolutions (the last three strided, 8x downsampling), global average and max pooling of
    the last features, and a two-layer head with a sigmoid. No normalisation layers, so train and eval
    modes compute the same thing.

    Args:
        size: side of the square inputs it was trained on (the F1 loss resizes its inputs to it).
        width: channels of the first convolution (then 2x, 4x, 4x).

    Shapes: input ``(B, 2, H, W)`` (channel 0 lesion probability in [0, 1], channel 1 truth 0/1),
    output ``(B,)`` in [0, 1].
    """

    def __init__(self, size: int = 64, width: int = 16) -> None:
        super().__init__()
        if size < 16 or width < 1:
            raise ParameterError(f"F1Estimator needs size >= 16 and width >= 1, got size={size}, width={width}.")
        self.size = int(size)
        self.width = int(width)
        w = self.width
        self.features = nn.Sequential(
            nn.Conv2d(2, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Linear(8 * w, 4 * w), nn.ReLU(inplace=True), nn.Linear(4 * w, 1))

    def config(self) -> dict[str, int]:
        """The constructor arguments (stored with the weights)."""
        return {"size": self.size, "width": self.width}

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        features = self.features(pair)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return torch.sigmoid(self.head(pooled)[:, 0])


def _mae(model: F1Estimator, inputs: torch.Tensor, f1: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    with torch.no_grad():
        estimates = torch.cat([model(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)])
    return float((estimates - f1).abs().mean())


def train_f1_estimator(
    masks: np.ndarray,
    *,
    epochs: int = 30,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[dict[str, Any]], None] | None = None,
    n_pairs: int = 4000,
    size: int = 64,
    width: int = 16,
    held_out_fraction: float = 0.2,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    cancel: Any = None,
) -> tuple[F1Estimator, dict[str, Any]]:
    """Train an :class:`F1Estimator` on pairs made from ``masks`` and measure it on held-out pairs.

    The masks are resized to ``size`` (:func:`~lesionseg.losses.f1_pairs.resize_masks`) and split into
    training and held-out masks (``held_out_fraction`` of them, at least one, when there are 5 or more;
    otherwise the pairs themselves are split), so the held-out error is measured on masks never seen in
    training. The loss is the mean squared error; Adam.

    Args:
        masks: ``(N, H, W)`` truth masks, 0/1.
        epochs: passes over the training pairs.
        seed: seeds the pairs, the split and the weights.
        device: torch device for training.
        progress: optional callback; receives ``progress`` events while pairs are made and one
            ``{"event": "epoch", "stage": "f1-estimator", "epoch", "epochs", "loss", "held_out_mae"}`` per epoch.
        n_pairs: number of pairs in all (training + held out).
        size: side of the estimator's inputs.
        width: first-layer width of the estimator.
        held_out_fraction: fraction of the masks (or pairs) held out.
        batch_size: training batch size.
        learning_rate: Adam's learning rate.
        cancel: optional :class:`lesionseg.progress.CancelFlag`, checked between epochs.

    Returns:
        ``(model, report)``: the trained model (eval mode, on the CPU) and a dict with ``held_out_mae``,
        ``baseline_mae`` (a constant predictor: the median training F1), ``baseline_value``,
        ``train_pairs``, ``held_out_pairs``, ``held_out_f1_mean``, ``epochs``, ``size``, ``seconds``.

    Raises:
        ParameterError: bad masks or a non-positive count.
        CancelledError: ``cancel`` was set.
    """
    truths = check_masks(masks)
    for label, value in (("epochs", epochs), ("n_pairs", n_pairs), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ParameterError(f"{label} must be at least 1, not {value}.")
    if not 0.0 < held_out_fraction < 1.0:
        raise ParameterError(f"held_out_fraction must be between 0 and 1, not {held_out_fraction}.")
    if n_pairs < 10:
        raise ParameterError(f"n_pairs must be at least 10 to hold some out, not {n_pairs}.")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    truths = resize_masks(truths, size)
    order = rng.permutation(len(truths))
    n_held_pairs = max(1, int(round(n_pairs * held_out_fraction)))
    if len(truths) >= 5:
        n_held_masks = max(1, int(round(len(truths) * held_out_fraction)))
        train_x, train_y = make_f1_pairs(truths[order[n_held_masks:]], n_pairs - n_held_pairs, rng, progress)
        held_x, held_y = make_f1_pairs(truths[order[:n_held_masks]], n_held_pairs, rng)
    else:
        inputs, f1 = make_f1_pairs(truths, n_pairs, rng, progress)
        train_x, train_y = inputs[n_held_pairs:], f1[n_held_pairs:]
        held_x, held_y = inputs[:n_held_pairs], f1[:n_held_pairs]

    torch.manual_seed(seed)
    model = F1Estimator(size=size, width=width).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    train_inputs, train_f1 = torch.from_numpy(train_x).to(device), torch.from_numpy(train_y).to(device)
    held_inputs, held_f1 = torch.from_numpy(held_x).to(device), torch.from_numpy(held_y).to(device)
    generator = torch.Generator().manual_seed(seed)
    loss_value = float("nan")
    for epoch in range(int(epochs)):
        if cancel is not None:
            cancel.raise_if_cancelled()
        model.train()
        total, count = 0.0, 0
        for batch in torch.randperm(len(train_inputs), generator=generator).split(batch_size):
            estimate = model(train_inputs[batch.to(device)])
            loss = torch.mean((estimate - train_f1[batch.to(device)]) ** 2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
            count += len(batch)
        loss_value = total / count
        if progress is not None:
            progress({"event": "epoch", "stage": "f1-estimator", "epoch": epoch + 1, "epochs": int(epochs),
                      "loss": loss_value, "held_out_mae": _mae(model, held_inputs, held_f1)})
    baseline = float(np.median(train_y))
    report = {
        "held_out_mae": _mae(model, held_inputs, held_f1),
        "baseline_mae": float(np.abs(held_y - baseline).mean()),
        "baseline_value": baseline,
        "train_pairs": int(len(train_y)),
        "held_out_pairs": int(len(held_y)),
        "held_out_f1_mean": float(held_y.mean()),
        "final_train_mse": loss_value,
        "epochs": int(epochs),
        "size": int(size),
        "seed": int(seed),
        "seconds": round(time.perf_counter() - start, 2),
    }
    model = model.cpu().eval()
    return model, report


def save_f1_estimator(model: F1Estimator, path: str | os.PathLike, report: dict[str, Any] | None = None) -> None:
    """Write the estimator (state dict + config + optional report) to ``path``, atomically."""
    from lesionseg.io import atomic_path

    payload = {
        "format": FILE_FORMAT, "version": FILE_VERSION, "config": model.config(),
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "report": dict(report or {}),
    }
    with atomic_path(Path(path)) as temporary:
        torch.save(payload, temporary)


def load_f1_estimator(path: str | os.PathLike) -> tuple[F1Estimator, dict[str, Any]]:
    """Read an estimator written by :func:`save_f1_estimator`; returns ``(model in eval mode, report)``.

    Raises:
        InputFileError: the file is missing, unreadable, or not an F1 estimator file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path} does not exist; train one with 'lesionseg train-f1-estimator'.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types (pickle, zip, runtime) for a bad file
        raise InputFileError(f"{path} is not a readable F1 estimator file ({type(error).__name__}).") from error
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise InputFileError(f"{path} is not an F1 estimator file written by lesionseg.")
    if int(payload.get("version", 0)) > FILE_VERSION:
        raise InputFileError(f"{path} was written by a newer lesionseg (version {payload['version']}).")
    try:
        model = F1Estimator(**payload["config"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise InputFileError(f"{path} holds an F1 estimator that does not fit ({error}).") from error
    return model.eval(), dict(payload.get("report", {}))
