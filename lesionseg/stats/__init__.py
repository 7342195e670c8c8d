"""Statistics between runs and against difficulty: rank tests, signed R², mean ± sd over folds.

Public API:
    mann_whitney, MannWhitneyResult: unpaired Mann-Whitney U (one-tailed by default), SciPy's.
    wilcoxon_paired, WilcoxonResult: paired Wilcoxon signed-rank test per case (same case ids required).
    significance_mark, SIGNIFICANCE_MARKS: the curriculum paper's marks *** p < 0.01, ** p < 0.05, * p < 0.08.
    r2_with_sign, SignedR2: R² of a least-squares line with the sign of Pearson's r (0.0 and a note when
        undefined, never NaN).
    join_slices, JoinedSlices, r2_table, R2Row: the paper's Table 1 from per-slice performance and a
        difficulty table.
    fold_summary, MeanSD: mean ± sample standard deviation (ddof = 1).
    read_run, RunData: the tables of a training run folder.
    compare_runs, ComparisonRow: two runs compared per case, fold or slice.
    analyse_run, RunAnalysis: the R² table of a run's validation slices against its difficulty table.
"""

from lesionseg.stats.analysis import RunAnalysis, analyse_run
from lesionseg.stats.compare import BETTER, LEVELS, ComparisonRow, compare_runs
from lesionseg.stats.correlation import (
    DEFAULT_PERFORMANCE,
    MIN_POINTS,
    JoinedSlices,
    R2Row,
    SignedR2,
    join_slices,
    r2_table,
    r2_with_sign,
)
from lesionseg.stats.rank_tests import (
    ALTERNATIVES,
    SIGNIFICANCE_MARKS,
    MannWhitneyResult,
    WilcoxonResult,
    mann_whitney,
    significance_mark,
    wilcoxon_paired,
)
from lesionseg.stats.runs import RunData, read_csv_rows, read_run
from lesionseg.stats.summary import MeanSD, fold_summary

__all__ = [
    "ALTERNATIVES", "BETTER", "DEFAULT_PERFORMANCE", "LEVELS", "MIN_POINTS", "SIGNIFICANCE_MARKS",
    "ComparisonRow", "JoinedSlices", "MannWhitneyResult", "MeanSD", "R2Row", "RunAnalysis", "RunData", "SignedR2",
    "WilcoxonResult", "analyse_run", "compare_runs", "fold_summary", "join_slices", "mann_whitney", "r2_table", "r2_with_sign",
    "read_csv_rows", "read_run", "significance_mark", "wilcoxon_paired",
]
