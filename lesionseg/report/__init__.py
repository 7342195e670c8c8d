"""Reports a researcher opens: one HTML page with its PNG figures beside it (relative links, works offline).

Public API:
    write_run_report: the report of a training run (configuration, folds, cases, difficulty, curves,
        performance against difficulty, overlays, comparison with a second run).
    evaluate_predictions, EvaluationResult, collect_masks, write_metrics_csv: predictions against truth,
        matched by case id (``lesionseg evaluate``).
    write_evaluation_report: the HTML page of an evaluation.
    overlay_rgb, OverlaySample, make_sample, plot_overlays: TP red / FN blue / FP green overlays with Dice.
    plot_difficulty, plot_metric: histograms of difficulty metrics with their curriculum groups (the paper's Fig. 1).

matplotlib is used through its object API on an Agg canvas only (no global backend switch).
"""

from lesionseg.report.difficulty_plots import plot_difficulty, plot_metric
from lesionseg.report.evaluation import (
    CASE_COLUMNS,
    EvaluationResult,
    MaskSource,
    collect_masks,
    evaluate_predictions,
    metrics_csv_text,
    write_metrics_csv,
)
from lesionseg.report.evaluation_page import write_evaluation_report
from lesionseg.report.overlay import FN_COLOUR, FP_COLOUR, TP_COLOUR, OverlaySample, make_sample, overlay_rgb, plot_overlays
from lesionseg.report.run_report import write_run_report

__all__ = [
    "CASE_COLUMNS", "FN_COLOUR", "FP_COLOUR", "TP_COLOUR", "EvaluationResult", "MaskSource", "OverlaySample",
    "collect_masks", "evaluate_predictions", "make_sample", "metrics_csv_text", "overlay_rgb", "plot_difficulty",
    "plot_metric", "plot_overlays",
    "write_evaluation_report", "write_metrics_csv", "write_run_report",
]
