"""Compare two training runs metric by metric: the paper's one-tailed Mann-Whitney U with its marks, and
the paired Wilcoxon signed-rank test when both runs validated the same cases.

The hypothesis tested is always "run A is better than run B": larger for Dice and detection rate
(``alternative="greater"``), smaller for distances (``"less"``), see :data:`BETTER`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lesionseg.errors import ParameterError
from lesionseg.stats.rank_tests import mann_whitney, significance_mark, wilcoxon_paired
from lesionseg.stats.runs import RunData

#: Which direction is better for each metric: "higher" or "lower".
BETTER: dict[str, str] = {"dice": "higher", "detection_rate": "higher", "lesion_f1": "higher",
                          "hd_mm": "lower", "hd95_mm": "lower", "assd_mm": "lower",
                          "abs_volume_difference_ml": "lower", "abs_lesion_count_difference": "lower"}
#: Levels at which runs are compared, and the default metrics of each.
LEVELS: dict[str, tuple[str, ...]] = {
    "case": ("dice", "hd_mm", "hd95_mm", "detection_rate"),
    "fold": ("dice", "hd_mm", "hd95_mm", "detection_rate"),
    "slice": ("dice", "hd_mm", "hd95_mm"),
}


def _column(level: str, metric: str) -> str:
    """The column holding ``metric`` at ``level`` (folds.csv prefixes its validation means with ``val_``)."""
    return f"val_{metric}" if level == "fold" else metric


@dataclass(frozen=True)
class ComparisonRow:
    """One metric compared between run A and run B.

    Attributes:
        level: ``"case"``, ``"fold"`` or ``"slice"``.
        metric: the metric name (``dice``, ``hd_mm``, ...).
        better: ``"higher"`` or ``"lower"``; alternative: the one-sided alternative used ("A is better").
        n_a, n_b: values per run; mean_a, mean_b, median_a, median_b: their summaries.
        u, p, mark: the Mann-Whitney U of A, its one-tailed p-value and the paper's mark.
        effect: P(A better than B) for a random pair (ties count one half).
        wilcoxon_p, wilcoxon_mark: the paired test's p-value when both runs have the same ids, else None / "".
        n_pairs: pairs in the paired test (0 when it was not done).
    """

    level: str
    metric: str
    better: str
    alternative: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    median_a: float
    median_b: float
    u: float
    p: float
    mark: str
    effect: float
    wilcoxon_p: float | None
    wilcoxon_mark: str
    n_pairs: int


def compare_runs(a: RunData, b: RunData, level: str = "case", metrics: Sequence[str] | None = None) -> list[ComparisonRow]:
    """One-tailed Mann-Whitney U (and paired Wilcoxon when possible) of run A against run B.

    Args:
        a: the run expected to be better (e.g. curriculum training).
        b: the baseline (e.g. classical training).
        level: compare per ``"case"`` (``val_cases.csv``), per ``"fold"`` (``folds.csv``) or per ``"slice"``
            (``val_slices.csv``).
        metrics: the metrics (default :data:`LEVELS` [level]); a metric neither run has is skipped.

    Returns:
        One :class:`ComparisonRow` per metric that both runs have. The paired Wilcoxon test is done per
        case and per slice when both runs hold exactly the same ids (the same cases validated once each,
        as K-fold cross-validation on one dataset does); otherwise its fields are None / "".

    Raises:
        ParameterError: an unknown level or a metric without a known better direction.
    """
    if level not in LEVELS:
        raise ParameterError(f"level must be one of {', '.join(LEVELS)}, not {level!r}.")
    rows = []
    for metric in metrics or LEVELS[level]:
        if metric not in BETTER:
            raise ParameterError(f"the better direction of metric {metric!r} is unknown; "
                                 f"known: {', '.join(BETTER)}.")
        values_a, values_b = a.values(level, _column(level, metric)), b.values(level, _column(level, metric))
        if not values_a or not values_b:
            continue
        alternative = "greater" if BETTER[metric] == "higher" else "less"
        test = mann_whitney(list(values_a.values()), list(values_b.values()), alternative=alternative)
        wilcoxon_p, n_pairs = None, 0
        if level != "fold" and set(values_a) == set(values_b):
            paired = wilcoxon_paired(values_a, values_b, alternative=alternative)
            wilcoxon_p, n_pairs = paired.p, paired.n
        effect = test.effect if alternative == "greater" else 1.0 - test.effect
        array_a, array_b = np.fromiter(values_a.values(), float), np.fromiter(values_b.values(), float)
        rows.append(ComparisonRow(
            level=level, metric=metric, better=BETTER[metric], alternative=alternative,
            n_a=test.n_a, n_b=test.n_b, mean_a=float(array_a.mean()), mean_b=float(array_b.mean()),
            median_a=float(np.median(array_a)), median_b=float(np.median(array_b)),
            u=test.u, p=test.p, mark=test.mark, effect=effect,
            wilcoxon_p=wilcoxon_p, wilcoxon_mark=significance_mark(wilcoxon_p), n_pairs=n_pairs,
        ))
    return rows
