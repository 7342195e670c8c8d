"""Slice-level detection rate, the curriculum paper's detection metric.

Detection rate = (lesion slices on which the prediction is non-empty) / (lesion slices), where a lesion
slice is a slice whose truth is non-empty. Slices run along axis 0 of a ``(z, y, x)`` stack (a volume or a
stack of prepared 2D slices). When there is no lesion slice at all the rate is undefined: it is returned
as ``None`` (never NaN) and ``lesion_slices == 0`` says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lesionseg.errors import ParameterError
from lesionseg.metrics._checks import as_binary_pair


@dataclass(frozen=True)
class DetectionResult:
    """Slice-level detection counts.

    Attributes:
        lesion_slices: slices whose truth is non-empty.
        detected_slices: lesion slices whose prediction is non-empty.
        rate: ``detected_slices / lesion_slices``, or ``None`` when there is no lesion slice.
        false_positive_slices: slices without truth on which something is predicted.
        total_slices: number of slices (length of axis 0).
    """

    lesion_slices: int
    detected_slices: int
    rate: float | None
    false_positive_slices: int
    total_slices: int

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict."""
        return asdict(self)


def detection_rate(prediction: Any, truth: Any) -> DetectionResult:
    """Detection rate over a stack of slices (axis 0).

    Args:
        prediction: 3D ``(slice, y, x)`` predicted mask, bool or 0/1.
        truth: reference mask of the same shape.

    Returns:
        A :class:`DetectionResult`; ``rate`` is ``None`` when no slice contains a lesion.

    Raises:
        ParameterError: the masks are not 3D and binary.
        GeometryError: the shapes differ.
    """
    pred, ref = as_binary_pair(prediction, truth)
    if pred.ndim != 3:
        raise ParameterError(
            f"detection_rate needs a stack of slices (slice, y, x); got shape {pred.shape}."
        )
    has_truth = ref.reshape(ref.shape[0], -1).any(axis=1)
    has_pred = pred.reshape(pred.shape[0], -1).any(axis=1)
    lesion_slices = int(np.count_nonzero(has_truth))
    detected = int(np.count_nonzero(has_truth & has_pred))
    rate = detected / lesion_slices if lesion_slices else None
    false_positive = int(np.count_nonzero(~has_truth & has_pred))
    return DetectionResult(lesion_slices, detected, rate, false_positive, int(pred.shape[0]))
