"""Training pairs for the lesion-wise F1 estimator: degraded soft predictions and their true F1.

From a truth mask, a prediction is made by a random mix of the errors a segmentation network makes:
lesions dropped (false negatives), blobs added (false positives), erosion or dilation, a lesion split by
a cut, two lesions joined by a bridge, a small shift, now and then an empty or a perfect prediction. It is
then made soft: blurred, passed through a sigmoid of random steepness around 0.5 and jittered with smooth
noise, so the estimator sees probabilities like a network's. The target is the TRUE lesion-wise F1 of
that soft prediction thresholded at 0.5 against the truth, computed by :func:`lesionseg.metrics.lesionwise_counts`
with the ISLES'22 convention (any-overlap detection, 8-connectivity in 2D).

Masks are ``(N, H, W)`` arrays, axes ``(slice, y, x)``, 1 = lesion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.draw import ellipse, line

from lesionseg.errors import ParameterError
from lesionseg.metrics import label_lesions, lesionwise_counts

_SQUARE = np.ones((3, 3), dtype=bool)


def check_masks(masks: Any, name: str = "masks") -> np.ndarray:
    """Return ``masks`` as a bool ``(N, H, W)`` array, refusing other shapes and non-binary values."""
    array = np.asarray(masks)
    if array.ndim != 3 or min(array.shape) < 1:
        raise ParameterError(f"{name} must be an (N, H, W) stack of 2D masks, got shape {array.shape}.")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ParameterError(f"{name} must hold only 0 and 1 (lesion masks).")
    return array.astype(bool)


def resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(N, H, W)`` masks to ``(N, size, size)`` keeping every lesion.

    Area interpolation (the mean of the covered pixels) then ``> 0``: a lesion smaller than one output
    pixel still leaves one pixel, at the price of lesions growing by up to a pixel. The F1 loss resizes
    its truth the same way (:func:`resize_pair`).
    """
    if masks.shape[1:] == (size, size):
        return masks.astype(bool)
    tensor = torch.from_numpy(masks.astype(np.float32))[:, None]
    return (F.interpolate(tensor, size=(size, size), mode="area")[:, 0] > 0).numpy()


def resize_pair(probability: torch.Tensor, truth: torch.Tensor, size: int) -> torch.Tensor:
    """Stack ``(B, H, W)`` probability and truth into the estimator's ``(B, 2, size, size)`` input.

    The probability is area-interpolated (differentiable), the truth area-interpolated then ``> 0`` as in
    :func:`resize_masks`.
    """
    pair = torch.stack([probability, truth.to(probability.dtype)], dim=1)
    if pair.shape[-2:] == (size, size):
        return pair
    pair = F.interpolate(pair, size=(size, size), mode="area")
    return torch.cat([pair[:, :1], (pair[:, 1:] > 0).to(pair.dtype)], dim=1)


def random_lesion_masks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random lesion-like masks: smooth Gaussian noise thresholded into a few blobs.

    Args:
        n: number of masks.
        size: side in pixels.
        rng: random generator.

    Returns:
        ``(n, size, size)`` uint8, each with at least one lesion (1 to about 8 blobs covering 0.5-8 %).
    """
    if n < 1 or size < 8:
        raise ParameterError(f"random_lesion_masks needs n >= 1 and size >= 8, got n={n}, size={size}.")
    masks = np.zeros((n, size, size), dtype=np.uint8)
    for index in range(n):
        sigma = rng.uniform(0.03, 0.09) * size
        field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
        fraction = rng.uniform(0.005, 0.08)
        mask = field > np.quantile(field, 1.0 - fraction)
        if not mask.any():
            mask[np.unravel_index(np.argmax(field), field.shape)] = True
        masks[index] = mask
    return masks


def _degrade(truth: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """A binary prediction with random segmentation errors from a binary truth."""
    size_y, size_x = truth.shape
    roll = rng.random()
    if roll < 0.05:
        return np.zeros_like(truth)
    prediction = truth.copy()
    if roll < 0.15:
        return prediction
    if count and rng.random() < 0.5:  # drop lesions
        dropped = np.flatnonzero(rng.random(count) < rng.uniform(0.1, 0.8)) + 1
        prediction[np.isin(labels, dropped)] = False
    if rng.random() < 0.4:  # erode or dilate
        iterations = int(rng.integers(1, 3))
        operation = ndimage.binary_erosion if rng.random() < 0.5 else ndimage.binary_dilation
        prediction = operation(prediction, _SQUARE, iterations=iterations)
    if prediction.any() and rng.random() < 0.25:  # split one lesion with a straight cut through it
        components, _ = ndimage.label(prediction, _SQUARE)
        ys, xs = np.nonzero(prediction)
        pick = int(rng.integers(ys.size))
        lesion = components == components[ys[pick], xs[pick]]
        width = int(rng.integers(1, 3))
        cut = np.zeros_like(prediction)
        if rng.random() < 0.5:
            cut[ys[pick]:ys[pick] + width, :] = True
        else:
            cut[:, xs[pick]:xs[pick] + width] = True
        prediction &= ~(cut & lesion)
    predicted_labels, predicted_count = ndimage.label(prediction, _SQUARE)
    if predicted_count >= 2 and rng.random() < 0.3:  # merge two lesions with a bridge
        first, second = rng.choice(predicted_count, size=2, replace=False) + 1
        a = np.argwhere(predicted_labels == first)[int(rng.integers(np.sum(predicted_labels == first)))]
        b = np.argwhere(predicted_labels == second)[int(rng.integers(np.sum(predicted_labels == second)))]
        bridge = np.zeros_like(prediction)
        bridge[line(int(a[0]), int(a[1]), int(b[0]), int(b[1]))] = True
        prediction |= ndimage.binary_dilation(bridge, _SQUARE)
    if rng.random() < 0.5:  # false-positive blobs
        for _ in range(int(rng.integers(1, 4))):
            radius = rng.uniform(1.0, max(2.0, min(size_y, size_x) / 10.0), size=2)
            rows, cols = ellipse(rng.uniform(0, size_y), rng.uniform(0, size_x), radius[0], radius[1],
                                 shape=prediction.shape, rotation=rng.uniform(0, np.pi))
            prediction[rows, cols] = True
    if rng.random() < 0.3:  # a small shift
        offset = rng.integers(-2, 3, size=2)
        prediction = ndimage.shift(prediction.astype(np.uint8), offset, order=0, cval=0).astype(bool)
    return prediction


def _soften(prediction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A probability map from a binary prediction: blur, sigmoid of random steepness, smooth noise."""
    blurred = ndimage.gaussian_filter(prediction.astype(np.float32), rng.uniform(0.3, 1.5))
    steepness = rng.uniform(3.0, 15.0)
    noise = ndimage.gaussian_filter(rng.standard_normal(prediction.shape).astype(np.float32), rng.uniform(0.7, 2.0))
    noise *= rng.uniform(0.0, 0.08) / max(float(noise.std()), 1e-6)
    probability = 1.0 / (1.0 + np.exp(-steepness * (blurred - 0.5))) + noise
    return np.clip(probability, 0.0, 1.0).astype(np.float32)


def make_f1_pairs(masks: np.ndarray, n_pairs: int, rng: np.random.Generator,
                  progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Degraded soft predictions of random masks with their true lesion-wise F1.

    Args:
        masks: ``(N, H, W)`` truth masks (0/1 or bool).
        n_pairs: number of pairs to make (masks are drawn with replacement).
        rng: random generator.
        progress: optional callback receiving ``{"event": "progress", "stage": "f1-pairs", ...}``.

    Returns:
        ``inputs`` ``(n_pairs, 2, H, W)`` float32 (channel 0 the lesion probability, channel 1 the truth)
        and ``f1`` ``(n_pairs,)`` float32, the ISLES'22 lesion-wise F1 of ``inputs[:, 0] >= 0.5``
        against ``inputs[:, 1]`` (8-connectivity).

    Raises:
        ParameterError: masks not an (N, H, W) binary stack, or ``n_pairs < 1``.
    """
    truths = check_masks(masks)
    if n_pairs < 1:
        raise ParameterError(f"n_pairs must be at least 1, not {n_pairs}.")
    labelled = {}
    inputs = np.zeros((n_pairs, 2, *truths.shape[1:]), dtype=np.float32)
    f1 = np.zeros(n_pairs, dtype=np.float32)
    step = max(1, n_pairs // 20)
    for index in range(n_pairs):
        pick = int(rng.integers(truths.shape[0]))
        if pick not in labelled:
            labelled[pick] = label_lesions(truths[pick], "isles22")
        labels, count = labelled[pick]
        probability = _soften(_degrade(truths[pick], labels, count, rng), rng)
        inputs[index, 0] = probability
        inputs[index, 1] = truths[pick]
        f1[index] = lesionwise_counts(probability >= 0.5, truths[pick], "isles22").f1
        if progress is not None and ((index + 1) % step == 0 or index + 1 == n_pairs):
            progress({"event": "progress", "stage": "f1-pairs", "done": index + 1, "total": n_pairs})
    return inputs, f1
