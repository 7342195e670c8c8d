"""``lesionseg.stats``: rank tests against SciPy and hand-counted cases, signed R², mean ± sd, run comparison."""

from __future__ import annotations

import math
import statistics
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from lesionseg.difficulty import DifficultyTable
from lesionseg.errors import DatasetError, ParameterError
from lesionseg.stats import (
    RunData,
    compare_runs,
    fold_summary,
    join_slices,
    mann_whitney,
    r2_table,
    r2_with_sign,
    significance_mark,
    wilcoxon_paired,
)

RNG = np.random.default_rng(2023)
SAMPLES = [
    (RNG.normal(0.75, 0.1, 12), RNG.normal(0.65, 0.1, 15)),   # large enough for the normal approximation
    (np.array([0.81, 0.77, 0.9, 0.62]), np.array([0.55, 0.7, 0.61])),  # small, no ties: exact
    (np.array([1.0, 2.0, 2.0, 3.0, 5.0]), np.array([2.0, 2.0, 4.0, 0.5])),  # ties: asymptotic
]


# --- Mann-Whitney U -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", SAMPLES)
@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_mann_whitney_matches_scipy(a, b, alternative):
    result = mann_whitney(a, b, alternative=alternative)
    expected = scipy_stats.mannwhitneyu(a, b, alternative=alternative)
    assert result.u == pytest.approx(float(expected.statistic))
    assert result.p == pytest.approx(float(expected.pvalue))
    assert (result.n_a, result.n_b) == (len(a), len(b))


def test_mann_whitney_u_and_exact_p_counted_by_hand():
    # a = 3, 5, 8 against b = 1, 4, 6, 7: pairs with a > b: 3>1 (1), 5>1,4 (2), 8>all four (4) -> U = 7.
    # Under H0 the 35 = C(7, 3) rank sets are equally likely; U counts partitions of U into at most 3 parts
    # of at most 4: 1,1,2,3,4,4,5,4,4,3,2,1,1 for U = 0..12, so P(U >= 7) = (4+4+3+2+1+1) / 35 = 15/35.
    result = mann_whitney([3, 5, 8], [1, 4, 6, 7], alternative="greater")
    assert result.u == 7
    assert result.p == pytest.approx(15 / 35)
    assert result.method == "exact"
    assert result.effect == pytest.approx(7 / 12)
    # complete separation of 3 and 3 values: only 1 of C(6, 3) = 20 rank sets gives U = 9
    separated = mann_whitney([4, 5, 6], [1, 2, 3], alternative="greater")
    assert separated.u == 9 and separated.p == pytest.approx(1 / 20)
    assert mann_whitney([1, 2, 3], [4, 5, 6], alternative="less").p == pytest.approx(1 / 20)


def test_mann_whitney_counts_ties_as_one_half():
    # a = 1, 2, 2, 3 against b = 2, 2, 4: 1 beats none; each 2 ties two 2s (2 x 0.5); 3 beats both 2s -> U = 4
    result = mann_whitney([1, 2, 2, 3], [2, 2, 4], alternative="two-sided")
    assert result.u == 4
    assert result.method == "asymptotic"
    assert result.rank_biserial == pytest.approx(2 * 4 / 12 - 1)


def test_mann_whitney_all_equal_is_p_one_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = mann_whitney([0.0, 0.0, 0.0], [0.0, 0.0], alternative="greater")
    assert result.p == 1.0 and result.u == 3.0 and result.effect == 0.5 and result.method == "all equal"


@pytest.mark.parametrize("a, b, alternative", [([], [1.0], "greater"), ([1.0, math.nan], [1.0], "greater"),
                                               ([1.0], [2.0], "bigger")])
def test_mann_whitney_refuses_bad_samples(a, b, alternative):
    with pytest.raises(ParameterError):
        mann_whitney(a, b, alternative=alternative)


@pytest.mark.parametrize("p, mark", [(0.0, "***"), (0.0099, "***"), (0.01, "**"), (0.0499, "**"), (0.05, "*"),
                                     (0.0799, "*"), (0.08, ""), (0.5, ""), (None, "")])
def test_significance_marks_are_the_papers(p, mark):
    assert significance_mark(p) == mark


@pytest.mark.parametrize("p", [math.nan, -0.1, 1.5, "0.01"])
def test_significance_mark_refuses_non_p_values(p):
    with pytest.raises(ParameterError):
        significance_mark(p)


# --- Wilcoxon signed-rank -------------------------------------------------------------------------------------

@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_wilcoxon_pairs_by_case_id_and_matches_scipy(alternative):
    ids = [f"case{i:02d}" for i in range(14)]
    a = RNG.normal(0.7, 0.1, len(ids))
    b = a - RNG.normal(0.03, 0.05, len(ids))
    shuffled = list(reversed(ids))  # b given in another order: pairing must be by id, not by position
    result = wilcoxon_paired(dict(zip(ids, a)), {i: b[ids.index(i)] for i in shuffled}, alternative=alternative)
    expected = scipy_stats.wilcoxon(a, b, alternative=alternative)
    assert result.p == pytest.approx(float(expected.pvalue))
    assert result.statistic == pytest.approx(float(expected.statistic))
    assert result.n == len(ids) and result.ids == tuple(sorted(ids))


def test_wilcoxon_hand_case():
    # differences 1, 2, 3, 4 all positive: W+ = 1+2+3+4 = 10, reached by 1 of the 2^4 sign patterns
    result = wilcoxon_paired([2, 4, 6, 8], [1, 2, 3, 4], alternative="greater")
    assert result.statistic == 10 and result.p == pytest.approx(1 / 16) and result.median_difference == 2.5


def test_wilcoxon_refuses_unpaired_case_ids():
    with pytest.raises(ParameterError, match=r"only in a \(e\.g\. c\).*only in b \(e\.g\. d\)"):
        wilcoxon_paired({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 2.0, "d": 3.0})
    with pytest.raises(ParameterError, match="equal length"):
        wilcoxon_paired([1.0, 2.0], [1.0])


def test_wilcoxon_all_zero_differences_is_p_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = wilcoxon_paired({"x": 0.5, "y": 0.7}, {"x": 0.5, "y": 0.7})
    assert result.p == 1.0 and result.n_nonzero == 0


# --- signed R² ------------------------------------------------------------------------------------------------

def test_signed_r2_hand_case():
    # x = 1, 2, 3; y = 1, 3, 2: cov = 1, var x = var y = 2 -> r = 0.5, R² = 0.25; y reversed -> r = -0.5
    assert r2_with_sign([1, 2, 3], [1, 3, 2]).r2 == pytest.approx(0.25)
    negative = r2_with_sign([1, 2, 3], [3, 1, 2])
    assert negative.r2 == pytest.approx(-0.25) and negative.sign == -1


def test_signed_r2_matches_scipy_and_a_least_squares_fit():
    x = RNG.uniform(10, 500, 40)
    y = 0.9 - 0.001 * x + RNG.normal(0, 0.08, 40)
    result = r2_with_sign(x, y)
    r, p = scipy_stats.pearsonr(x, y)
    assert result.r == pytest.approx(r) and result.p == pytest.approx(p)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    r2_fit = 1 - np.sum(residual ** 2) / np.sum((y - y.mean()) ** 2)
    assert result.r2 == pytest.approx(-r2_fit) and result.sign == -1
    assert (result.slope, result.intercept) == pytest.approx((slope, intercept))


def test_signed_r2_of_a_constant_is_documented_zero_not_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = r2_with_sign([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], "area", "dice")
    assert result.r2 == 0.0 and result.sign == 0 and not result.defined and "dice is constant" in result.note
    with pytest.raises(ParameterError):
        r2_with_sign([1.0, 2.0], [1.0, 2.0])  # fewer than three pairs


def _table() -> DifficultyTable:
    return DifficultyTable(case_ids=["a", "a", "b", "b", "c"], slice_indices=[1, 2, 1, 2, 7],
                           metrics={"area_mm2": [10.0, 20.0, 30.0, 40.0, 50.0],
                                    "contrast_fisher": [0.0, 1.0, 2.0, 0.5, 3.0]},
                           flags={"contrast_valid": [False, True, True, True, True]})


def test_r2_table_joins_by_slice_and_leaves_unmeasured_contrast_out():
    rows = [{"case_id": "b", "slice_index": "2", "dice": "0.6", "hd_mm": "9"},
            {"case_id": "a", "slice_index": "1", "dice": "0.2", "hd_mm": "30"},
            {"case_id": "a", "slice_index": "2", "dice": "0.4", "hd_mm": "21"},
            {"case_id": "b", "slice_index": "1", "dice": "0.5", "hd_mm": "10"}]
    table = {row.metric: row for row in r2_table(rows, _table())}
    area = [40.0, 10.0, 20.0, 30.0]
    dice = [0.6, 0.2, 0.4, 0.5]
    r = scipy_stats.pearsonr(area, dice)[0]
    assert table["area_mm2"].cells["dice"].r2 == pytest.approx(np.sign(r) * r * r)
    assert table["area_mm2"].n == 4 and table["area_mm2"].excluded == 0
    contrast = table["contrast_fisher"]  # (a, 1) has contrast_valid 0: left out
    assert contrast.n == 3 and contrast.excluded == 1
    r = scipy_stats.pearsonr([0.5, 1.0, 2.0], [9.0, 21.0, 10.0])[0]
    assert contrast.cells["hd_mm"].r2 == pytest.approx(np.sign(r) * r * r)
    record = contrast.to_dict()
    assert record["n_slices"] == 3 and record["r2_hd_mm"] == pytest.approx(np.sign(r) * r * r)


def test_r2_table_refuses_a_slice_the_difficulty_table_does_not_have():
    with pytest.raises(DatasetError, match="no row for case z slice 3"):
        join_slices([{"case_id": "z", "slice_index": 3, "dice": 0.5, "hd_mm": 2.0}], _table())


def test_r2_table_cell_with_too_few_valid_slices_is_noted():
    rows = [{"case_id": "a", "slice_index": 1, "dice": 0.1, "hd_mm": 1.0},
            {"case_id": "a", "slice_index": 2, "dice": 0.2, "hd_mm": 3.0},
            {"case_id": "b", "slice_index": 1, "dice": 0.4, "hd_mm": 2.0}]
    contrast = {row.metric: row for row in r2_table(rows, _table())}["contrast_fisher"]
    assert contrast.n == 2 and contrast.cells["dice"].r2 == 0.0 and "only 2" in contrast.cells["dice"].note


# --- mean ± sd ------------------------------------------------------------------------------------------------

def test_fold_summary_is_mean_and_sample_sd():
    values = [0.61, 0.72, 0.68, 0.80, 0.66]
    summary = fold_summary(values + [None])
    assert summary.mean == pytest.approx(statistics.mean(values))
    assert summary.sd == pytest.approx(statistics.stdev(values))  # n - 1 in the denominator
    assert summary.n == 5
    assert summary.format(2) == f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
    single = fold_summary([0.5])
    assert single.sd is None and single.format() == "0.500 (n = 1)"
    with pytest.raises(ParameterError):
        fold_summary([])
    with pytest.raises(ParameterError):
        fold_summary([0.5, math.inf])


# --- comparing runs -------------------------------------------------------------------------------------------

def _run(name: str, dice: list[float], hd: list[float], fold_dice: list[float]) -> RunData:
    cases = [{"fold": str(i % 3), "case_id": f"c{i}", "dice": d, "hd_mm": h} for i, (d, h) in enumerate(zip(dice, hd))]
    folds = [{"fold": i, "val_dice": d} for i, d in enumerate(fold_dice)]
    return RunData(Path(name), {}, folds, {}, val_cases=cases)


def test_compare_runs_tests_that_a_is_better_in_each_metrics_direction():
    a = _run("curriculum", [0.8, 0.75, 0.9, 0.7, 0.85, 0.6], [5, 7, 3, 9, 4, 12], [0.8, 0.78, 0.74])
    b = _run("classical", [0.6, 0.65, 0.7, 0.5, 0.72, 0.55], [9, 8, 6, 15, 7, 20], [0.65, 0.6, 0.62])
    rows = {row.metric: row for row in compare_runs(a, b, level="case", metrics=["dice", "hd_mm"])}
    dice_a, dice_b = [r["dice"] for r in a.val_cases], [r["dice"] for r in b.val_cases]
    assert rows["dice"].p == pytest.approx(scipy_stats.mannwhitneyu(dice_a, dice_b, alternative="greater").pvalue)
    hd_a, hd_b = [r["hd_mm"] for r in a.val_cases], [r["hd_mm"] for r in b.val_cases]
    assert rows["hd_mm"].alternative == "less"
    assert rows["hd_mm"].p == pytest.approx(scipy_stats.mannwhitneyu(hd_a, hd_b, alternative="less").pvalue)
    assert rows["dice"].wilcoxon_p == pytest.approx(
        scipy_stats.wilcoxon(dice_a, dice_b, alternative="greater").pvalue)  # same case ids: paired test too
    assert rows["dice"].mark == significance_mark(rows["dice"].p)
    folds = compare_runs(a, b, level="fold", metrics=["dice"])
    assert folds[0].p == pytest.approx(1 / 20) and folds[0].wilcoxon_p is None  # 3 vs 3 fully separated
    with pytest.raises(ParameterError):
        compare_runs(a, b, level="patient")
