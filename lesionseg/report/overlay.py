"""Overlays of a prediction on its truth over the image: true positives red, false negatives blue, false
positives green, each panel titled with its Dice.

Arrays are 2D ``(y, x)`` slices shown with row 0 at the top (``imshow``'s default), i.e. in voxel order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lesionseg.errors import ParameterError
from lesionseg.metrics import dice
from lesionseg.report.figures import new_figure, save_figure

#: RGB of each overlay class (red, blue, green).
TP_COLOUR = (1.0, 0.0, 0.0)
FN_COLOUR = (0.0, 0.25, 1.0)
FP_COLOUR = (0.0, 0.85, 0.0)
#: Weight of the class colour over the grey image.
ALPHA = 0.6


def _grey(image: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """The image scaled to [0, 1] between its 1st and 99th percentiles (black when there is none)."""
    if image is None:
        return np.zeros(shape, dtype=float)
    values = np.asarray(image, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(shape, dtype=float)
    low, high = np.percentile(finite, [1.0, 99.0])
    if high <= low:
        return np.zeros(shape, dtype=float)
    return np.clip((np.nan_to_num(values, nan=low) - low) / (high - low), 0.0, 1.0)


def overlay_rgb(image: np.ndarray | None, prediction: np.ndarray, truth: np.ndarray,
                alpha: float = ALPHA) -> np.ndarray:
    """Colour a slice: TP red, FN blue, FP green, blended over the grey image.

    Args:
        image: the ``(y, x)`` image, or None for a black background.
        prediction: the ``(y, x)`` predicted mask (bool or 0/1).
        truth: the ``(y, x)`` reference mask.
        alpha: weight of the class colour (1.0 = opaque).

    Returns:
        ``(y, x, 3)`` float RGB in [0, 1].

    Raises:
        ParameterError: the arrays are not 2D or their shapes differ.
    """
    predicted, reference = np.asarray(prediction) > 0, np.asarray(truth) > 0
    if predicted.ndim != 2 or predicted.shape != reference.shape or (
            image is not None and np.shape(image) != predicted.shape):
        raise ParameterError(f"an overlay needs 2D arrays of one shape; got prediction {predicted.shape}, truth "
                             f"{reference.shape}" + (f", image {np.shape(image)}" if image is not None else "") + ".")
    # Blended here rather than with skimage.color.label2rgb, which also dims the unlabelled background by
    # (1 - alpha): the anatomy around a lesion must stay as bright as in the image.
    grey = _grey(image, predicted.shape)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for mask, colour in ((predicted & reference, TP_COLOUR), (reference & ~predicted, FN_COLOUR),
                         (predicted & ~reference, FP_COLOUR)):
        rgb[mask] = (1.0 - alpha) * rgb[mask] + alpha * np.asarray(colour)
    return rgb


@dataclass
class OverlaySample:
    """One slice to show.

    Attributes:
        label: what the slice is (e.g. ``"sub-01, slice 12 (fold 0)"``).
        image: ``(y, x)`` image or None; prediction, truth: ``(y, x)`` masks.
        dice: the slice's Dice (computed from the masks by :func:`make_sample`).
    """

    label: str
    image: np.ndarray | None
    prediction: np.ndarray
    truth: np.ndarray
    dice: float


def make_sample(label: str, image: np.ndarray | None, prediction: np.ndarray, truth: np.ndarray) -> OverlaySample:
    """An :class:`OverlaySample` with the Dice of ``prediction`` against ``truth`` (``lesionseg.metrics.dice``)."""
    predicted, reference = np.asarray(prediction) > 0, np.asarray(truth) > 0
    return OverlaySample(label, None if image is None else np.asarray(image, float), predicted, reference,
                         dice(predicted, reference))


def plot_overlays(samples: Sequence[OverlaySample], path: str | os.PathLike, columns: int = 3,
                  title: str | None = None) -> Path:
    """Draw the samples in a grid, each titled with its label and Dice, with a colour legend.

    Args:
        samples: the slices (at least one).
        path: the PNG to write.
        columns: panels per row.
        title: a heading above the grid.

    Raises:
        ParameterError: no sample.
    """
    from matplotlib.patches import Patch

    if not samples:
        raise ParameterError("an overlay figure needs at least one slice.")
    columns = max(1, min(columns, len(samples)))
    rows = -(-len(samples) // columns)
    figure = new_figure(4.0 * columns, 4.4 * rows + 0.6, layout="constrained")
    for position, sample in enumerate(samples):
        axes = figure.add_subplot(rows, columns, position + 1)
        axes.imshow(overlay_rgb(sample.image, sample.prediction, sample.truth), interpolation="nearest")
        axes.set_title(f"{sample.label}\nslice Dice {sample.dice:.3f}", fontsize=9)
        axes.set_axis_off()
    legend = [Patch(color=TP_COLOUR, label="true positive"), Patch(color=FN_COLOUR, label="false negative (missed)"),
              Patch(color=FP_COLOUR, label="false positive")]
    figure.legend(handles=legend, loc="outside lower center", ncol=3, frameon=False, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=11)
    return save_figure(figure, path)
