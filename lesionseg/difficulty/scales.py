"""How each difficulty metric reads: which end is easy, and the scale of human ratings.

These describe the metrics of :mod:`lesionseg.difficulty` (its table's columns); the curriculum groups slices
by them (:mod:`lesionseg.curriculum`, which imports them from here and re-exports them).

- ``area_mm2``: high = easy (large lesions are easy);
- ``contrast_fisher``: high = easy (a lesion that stands out from the healthy hemisphere is easy);
- ``gradient``: high = easy (a large normalised loss decrease while retraining = easy);
- ``human``: low = easy, after converting the ratings with :func:`rating_scores`
  (``"easy"`` 0 < ``"medium"`` 1 < ``"hard"`` 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lesionseg.errors import ParameterError

#: Which end of each difficulty metric is easy.
EASY_DIRECTIONS: dict[str, str] = {
    "area_mm2": "high",
    "contrast_fisher": "high",
    "gradient": "high",
    "human": "low",
}

#: Human difficulty ratings from easiest to hardest; their scores are the positions in this tuple.
HUMAN_RATINGS: tuple[str, ...] = ("easy", "medium", "hard")


def rating_scores(ratings: Sequence[str]) -> np.ndarray:
    """Convert human ratings ``"easy"``/``"medium"``/``"hard"`` to scores 0/1/2 (low = easy).

    Args:
        ratings: one rating per slice (case-insensitive).

    Returns:
        A float array of scores.

    Raises:
        ParameterError: a rating is not one of :data:`HUMAN_RATINGS`.
    """
    scores = []
    for index, rating in enumerate(ratings):
        key = str(rating).strip().lower()
        if key not in HUMAN_RATINGS:
            raise ParameterError(f"rating {rating!r} of slice {index} is not one of {HUMAN_RATINGS}.")
        scores.append(HUMAN_RATINGS.index(key))
    return np.asarray(scores, dtype=float)
