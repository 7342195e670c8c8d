"""Rank tests between two sets of results: unpaired Mann-Whitney U and the paired Wilcoxon signed-rank test.

The curriculum paper compares curriculum and classical training with a one-tailed, unpaired Mann-Whitney
U test and marks its tables *** p < 0.01, ** p < 0.05, * p < 0.08 (:func:`significance_mark`). Both tests
are SciPy's (``scipy.stats.mannwhitneyu``, ``scipy.stats.wilcoxon``); this module checks the input, names
the direction of the alternative and adds an effect size.

Direction: ``alternative="greater"`` is the hypothesis that values of ``a`` tend to be larger than those of
``b`` (for Dice: ``a`` is better); ``"less"`` the opposite (for a distance: ``a`` is better).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lesionseg.errors import ParameterError

ALTERNATIVES: tuple[str, ...] = ("greater", "less", "two-sided")
#: (upper bound on p, mark), tightest first: the curriculum paper's marks.
SIGNIFICANCE_MARKS: tuple[tuple[float, str], ...] = ((0.01, "***"), (0.05, "**"), (0.08, "*"))


def significance_mark(p: float | None) -> str:
    """The paper's mark for a p-value: ``"***"`` (p < 0.01), ``"**"`` (p < 0.05), ``"*"`` (p < 0.08), else ``""``.

    Args:
        p: a p-value in [0, 1], or None (no test) which gives ``""``.

    Raises:
        ParameterError: p is NaN or outside [0, 1].
    """
    if p is None:
        return ""
    if not (isinstance(p, (int, float, np.floating)) and 0.0 <= float(p) <= 1.0):
        raise ParameterError(f"a p-value must be a number between 0 and 1, not {p!r}.")
    for bound, mark in SIGNIFICANCE_MARKS:
        if p < bound:
            return mark
    return ""


def _sample(values: Any, name: str) -> np.ndarray:
    """A 1D float array of finite values, or ParameterError naming the sample."""
    try:
        array = np.asarray(list(values), dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ParameterError(f"sample {name} must be a list of numbers, not {values!r}.") from None
    if array.size == 0:
        raise ParameterError(f"sample {name} is empty; a rank test needs at least one value per sample.")
    if not np.all(np.isfinite(array)):
        bad = array[~np.isfinite(array)][0]
        raise ParameterError(f"sample {name} holds {bad}; every value must be a finite number.")
    return array


def _alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ParameterError(f"alternative must be one of {', '.join(ALTERNATIVES)}, not {alternative!r}.")
    return alternative


@dataclass(frozen=True)
class MannWhitneyResult:
    """An unpaired Mann-Whitney U test of ``a`` against ``b``.

    Attributes:
        u: U of sample ``a``: the number of pairs (a_i, b_j) with a_i > b_j, ties counting one half
            (SciPy's statistic; U of ``b`` is ``n_a * n_b - u``).
        p: the p-value for ``alternative``.
        n_a, n_b: sample sizes.
        alternative: ``"greater"`` (a tends to be larger), ``"less"`` or ``"two-sided"``.
        effect: the common-language effect size ``u / (n_a * n_b)`` = P(a > b) + P(a = b) / 2 for a random
            pair; 0.5 = no difference.
        method: ``"exact"`` or ``"asymptotic"`` (normal approximation with tie and continuity correction),
            or ``"all equal"`` when every value is the same (p = 1, no ranks to compare).
    """

    u: float
    p: float
    n_a: int
    n_b: int
    alternative: str
    effect: float
    method: str

    @property
    def rank_biserial(self) -> float:
        """The rank-biserial correlation ``2 * effect - 1`` in [-1, 1] (positive: a tends to be larger)."""
        return 2.0 * self.effect - 1.0

    @property
    def mark(self) -> str:
        """The paper's significance mark of :attr:`p`."""
        return significance_mark(self.p)


def mann_whitney(a: Sequence[float], b: Sequence[float], alternative: str = "greater",
                 method: str = "auto") -> MannWhitneyResult:
    """Unpaired Mann-Whitney U test (``scipy.stats.mannwhitneyu``), one-tailed by default.

    Args:
        a: the first sample (e.g. per-case Dice of the curriculum run).
        b: the second sample (e.g. per-case Dice of the classical run).
        alternative: ``"greater"`` (H1: values of a tend to be larger), ``"less"`` or ``"two-sided"``.
        method: SciPy's ``"auto"`` (exact for small samples without ties, else asymptotic), ``"exact"`` or
            ``"asymptotic"``.

    Returns:
        A :class:`MannWhitneyResult`. When every value of both samples is equal, p is 1.0 and U is
        ``n_a * n_b / 2`` (documented; SciPy's normal approximation has zero variance there).

    Raises:
        ParameterError: an empty sample, a non-finite value, or an unknown alternative or method.
    """
    from scipy import stats

    x, y = _sample(a, "a"), _sample(b, "b")
    alternative = _alternative(alternative)
    if method not in ("auto", "exact", "asymptotic"):
        raise ParameterError(f"method must be auto, exact or asymptotic, not {method!r}.")
    n_a, n_b = int(x.size), int(y.size)
    if np.all(x == x[0]) and np.all(y == x[0]):
        return MannWhitneyResult(n_a * n_b / 2.0, 1.0, n_a, n_b, alternative, 0.5, "all equal")
    result = stats.mannwhitneyu(x, y, alternative=alternative, method=method)
    u = float(result.statistic)
    used = method
    if method == "auto":  # SciPy's rule: exact when both samples are small and there are no ties
        tied = np.unique(np.concatenate([x, y])).size < n_a + n_b
        used = "exact" if min(n_a, n_b) <= 8 and not tied else "asymptotic"
    return MannWhitneyResult(u, float(result.pvalue), n_a, n_b, alternative, u / (n_a * n_b), used)


@dataclass(frozen=True)
class WilcoxonResult:
    """A paired Wilcoxon signed-rank test of the differences ``a - b``.

    Attributes:
        statistic: SciPy's statistic: W+ (the sum of the ranks of the positive differences) for a one-sided
            test, min(W+, W-) for a two-sided one.
        p: the p-value for ``alternative``.
        n: number of pairs; n_nonzero: pairs whose difference is not zero (zero differences are dropped,
            Wilcoxon's own rule, SciPy's ``zero_method="wilcox"``).
        alternative: ``"greater"`` (H1: a - b tends to be positive), ``"less"`` or ``"two-sided"``.
        median_difference: the median of ``a - b``.
        ids: the pair identifiers (case ids) in the order used, when the samples were mappings.
    """

    statistic: float
    p: float
    n: int
    n_nonzero: int
    alternative: str
    median_difference: float
    ids: tuple[str, ...] = ()

    @property
    def mark(self) -> str:
        """The paper's significance mark of :attr:`p`."""
        return significance_mark(self.p)


def _pairs(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Line up two paired samples: mappings by key (the same keys required), sequences by position."""
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ParameterError("paired samples must both be mappings (case id -> value) or both be sequences.")
    if isinstance(a, Mapping):
        only_a = sorted(set(map(str, a)) - set(map(str, b)))
        only_b = sorted(set(map(str, b)) - set(map(str, a)))
        if only_a or only_b:
            parts = []
            if only_a:
                parts.append(f"{len(only_a)} only in a (e.g. {only_a[0]})")
            if only_b:
                parts.append(f"{len(only_b)} only in b (e.g. {only_b[0]})")
            raise ParameterError(f"a paired test needs the same case ids in both samples, but {len(only_a) + len(only_b)} "
                                 f"are unpaired: {'; '.join(parts)}.")
        ids = tuple(sorted(map(str, a)))
        lookup_a = {str(k): v for k, v in a.items()}
        lookup_b = {str(k): v for k, v in b.items()}
        return (_sample([lookup_a[i] for i in ids], "a"), _sample([lookup_b[i] for i in ids], "b"), ids)
    x, y = _sample(a, "a"), _sample(b, "b")
    if x.size != y.size:
        raise ParameterError(f"a paired test needs samples of equal length, not {x.size} and {y.size}.")
    return x, y, ()


def wilcoxon_paired(a: Mapping[str, float] | Sequence[float], b: Mapping[str, float] | Sequence[float],
                    alternative: str = "greater") -> WilcoxonResult:
    """Paired Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) of ``a - b``, one-tailed by default.

    Args:
        a: values per case, as a mapping case id -> value (paired by id) or a sequence (paired by position).
        b: the other run's values, of the same kind.
        alternative: ``"greater"`` (H1: a - b tends to be positive), ``"less"`` or ``"two-sided"``.

    Returns:
        A :class:`WilcoxonResult`. When every difference is zero, the statistic is 0 and p is 1.0
        (documented; there is nothing to rank).

    Raises:
        ParameterError: mappings with different case ids (naming how many and one of them), sequences of
            different lengths, a non-finite value, or an unknown alternative.
    """
    from scipy import stats

    x, y, ids = _pairs(a, b)
    alternative = _alternative(alternative)
    differences = x - y
    nonzero = int(np.count_nonzero(differences))
    median = float(np.median(differences))
    if nonzero == 0:
        return WilcoxonResult(0.0, 1.0, int(x.size), 0, alternative, median, ids)
    result = stats.wilcoxon(differences, alternative=alternative, zero_method="wilcox")
    p = float(result.pvalue)
    if not math.isfinite(p):  # cannot happen with non-zero differences; refuse to pass a NaN on silently
        raise ParameterError(f"the Wilcoxon test gave no p-value for {x.size} pairs.")
    return WilcoxonResult(float(result.statistic), p, int(x.size), nonzero, alternative, median, ids)
