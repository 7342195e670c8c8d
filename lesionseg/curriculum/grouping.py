"""Grouping slices by difficulty: K groups by equal-size quantiles or equal metric steps; rank averaging.

Group 0 is always the easiest. Which end of a metric is easy is given per metric (``easy="high"`` or
``"low"``); the defaults of the curriculum paper, :data:`EASY_DIRECTIONS`, and the scale of human ratings
(:func:`rating_scores`) describe the metrics and live with them in :mod:`lesionseg.difficulty.scales`
(re-exported here).

Methods:

- ``"quantile"`` (the paper's choice): slices sorted from easiest to hardest and cut into K groups of
  equal size; when K does not divide N, the first ``N mod K`` groups get one slice more, so sizes differ by
  at most one. Equal metric values are ordered by a stable secondary key (``tie_key``, ascending; by
  default the slice order), so the same input always gives the same groups.
- ``"step"`` (the alternative the paper found unstable): the metric range is cut into K equal steps;
  groups can be very unequal or empty when the metric is skewed (lesion areas are). A value on an inner
  boundary goes to the harder group; the extreme hardest value goes to group K-1. When all values are
  equal every slice is in group 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from lesionseg.difficulty.scales import EASY_DIRECTIONS, HUMAN_RATINGS, rating_scores  # noqa: F401 (re-exported)
from lesionseg.errors import ParameterError

GROUPING_METHODS: tuple[str, ...] = ("quantile", "step")


def _values(values: Any, name: str) -> np.ndarray:
    """Return a 1D float array without NaN or inf, or raise ParameterError."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ParameterError(
            f"{name} must be numbers, one per slice; could not read {values!r:.80}."
        ) from error
    if array.ndim != 1:
        raise ParameterError(
            f"{name} must be a 1D sequence with one value per slice; got shape {array.shape}."
        )
    bad = ~np.isfinite(array)
    if bad.any():
        raise ParameterError(
            f"{name} has {int(bad.sum())} missing or infinite value(s) (first at slice "
            f"{int(np.flatnonzero(bad)[0])}); compute the metric for every slice or drop those slices."
        )
    return array


def _check_easy(easy: str, name: str = "easy") -> None:
    if easy not in ("high", "low"):
        raise ParameterError(
            f"{name} must be 'high' or 'low' (which end of the metric is easy); got {easy!r}."
        )


def difficulty_order(values: Any, easy: str = "high", tie_key: Any = None) -> np.ndarray:
    """Slice indices sorted from easiest to hardest, ties ordered by ``tie_key`` (then slice order).

    Args:
        values: one difficulty metric value per slice.
        easy: ``"high"`` if large values are easy, ``"low"`` if small values are easy.
        tie_key: optional secondary key per slice (numbers or strings such as slice ids), ascending.

    Returns:
        A permutation of ``range(len(values))``.

    Raises:
        ParameterError: NaN/inf values, a bad ``easy``, or a ``tie_key`` of the wrong length.
    """
    array = _values(values, "values")
    _check_easy(easy)
    primary = -array if easy == "high" else array
    if tie_key is None:
        return np.argsort(primary, kind="stable")
    keys = np.asarray(tie_key)
    if keys.shape != array.shape:
        raise ParameterError(
            f"tie_key must have one entry per slice ({array.size}); got shape {keys.shape}."
        )
    # lexsort sorts by the last key first; slice order breaks ties left after tie_key (stable sort).
    return np.lexsort((keys, primary))


def assign_groups(
    values: Any,
    k: int = 6,
    method: str = "quantile",
    easy: str = "high",
    tie_key: Any = None,
) -> np.ndarray:
    """Assign each slice to one of ``k`` difficulty groups, 0 = easiest.

    Args:
        values: one difficulty metric value per slice (no NaN).
        k: number of groups (the paper uses 6).
        method: ``"quantile"`` (equal-size groups) or ``"step"`` (equal steps of the metric).
        easy: ``"high"`` if large values are easy, ``"low"`` if small values are easy.
        tie_key: optional secondary key for equal values (``"quantile"`` only), ascending.

    Returns:
        An int array with one group number in ``0..k-1`` per slice.

    Raises:
        ParameterError: NaN values, unknown method or direction, ``k < 1``, or fewer slices than groups.
    """
    array = _values(values, "values")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k (the number of difficulty groups) must be an integer >= 1; got {k!r}.")
    if method not in GROUPING_METHODS:
        raise ParameterError(f"method must be one of {GROUPING_METHODS}; got {method!r}.")
    _check_easy(easy)
    if array.size < k:
        raise ParameterError(f"cannot split {array.size} slice(s) into k={k} groups; use k <= {array.size}.")
    groups = np.empty(array.size, dtype=np.int64)
    if method == "quantile":
        order = difficulty_order(array, easy, tie_key)
        for group, members in enumerate(np.array_split(order, k)):
            groups[members] = group
        return groups
    difficulty = -array if easy == "high" else array
    low, high = float(difficulty.min()), float(difficulty.max())
    if high == low:
        groups[:] = 0
        return groups
    inner_edges = low + (high - low) * np.arange(1, k) / k
    groups[:] = np.searchsorted(inner_edges, difficulty, side="right")
    return groups


def group_sizes(groups: Any, k: int | None = None) -> np.ndarray:
    """Number of slices in each group.

    Args:
        groups: group number per slice.
        k: number of groups (default: the largest group number + 1).

    Returns:
        An int array of length ``k``.
    """
    array = np.asarray(groups, dtype=np.int64)
    length = int(array.max()) + 1 if k is None else k
    return np.bincount(array, minlength=length)


def combine_by_rank(
    metric_columns: Mapping[str, Any], easy_directions: Mapping[str, str] | None = None
) -> np.ndarray:
    """Combine several difficulty metrics into one score by averaging their difficulty ranks.

    Each metric is ranked from easiest (rank 1) to hardest (rank N), equal values sharing their average
    rank; the ranks are averaged across metrics. Low combined values are easy, so group the result with
    ``assign_groups(score, easy="low")``.

    Args:
        metric_columns: metric name -> one value per slice (all the same length).
        easy_directions: metric name -> ``"high"`` or ``"low"``; names missing here fall back to
            :data:`EASY_DIRECTIONS`.

    Returns:
        The mean difficulty rank per slice (float, 1 = easiest on every metric).

    Raises:
        ParameterError: no metric, columns of different lengths, NaN values, or a metric whose direction
            is unknown.
    """
    if not metric_columns:
        raise ParameterError("combine_by_rank needs at least one metric column.")
    directions = {**EASY_DIRECTIONS, **dict(easy_directions or {})}
    ranks = []
    length = None
    for name, column in metric_columns.items():
        array = _values(column, f"metric {name!r}")
        if length is not None and array.size != length:
            raise ParameterError(
                f"metric {name!r} has {array.size} values but the other metrics have {length}."
            )
        length = array.size
        if name not in directions:
            raise ParameterError(
                f"the easy direction of metric {name!r} is unknown; pass easy_directions={{{name!r}: "
                "'high' or 'low'}."
            )
        _check_easy(directions[name], f"easy direction of {name!r}")
        ranks.append(rankdata(-array if directions[name] == "high" else array, method="average"))
    return np.mean(ranks, axis=0)
