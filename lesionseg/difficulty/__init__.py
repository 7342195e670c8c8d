"""Per-slice difficulty metrics for curriculum learning: lesion area and Fisher contrast.

Public API:
    lesion_area_mm2, case_lesion_volume_ml: area of one slice (native spacing) and volume of a case.
    slice_areas_mm2, case_volumes_ml: the same for a prepared dataset, checked against its records.
    fisher_contrast, measure_contrast: F = (mu_h - mu_l)² / (s_h² + s_l²) on one prepared slice, the
        healthy tissue taken from the lesion's hemisphere; 0.0 (``INVALID_CONTRAST``) when unmeasurable.
    compute_difficulty: every lesion slice of a prepared dataset -> DifficultyTable.
    DifficultyTable, read_difficulty, write_difficulty: the table and its CSV file (validated on read).
    EASY_DIRECTIONS, HUMAN_RATINGS, rating_scores: which end of each metric is easy; the human rating scale.

The histograms of the metrics with their curriculum groups are drawn by :mod:`lesionseg.report.difficulty_plots`.

Metric names (``METRICS``): ``area`` -> column ``area_mm2``, ``contrast`` -> ``contrast_fisher`` (and the
flag ``contrast_valid``).
"""

from lesionseg.difficulty.area import case_lesion_volume_ml, case_volumes_ml, lesion_area_mm2, slice_areas_mm2
from lesionseg.difficulty.compute import METRICS, OTHER_METRICS, compute_difficulty, resolve_metrics
from lesionseg.difficulty.contrast import (
    INVALID_CONTRAST,
    MIN_HEALTHY_PIXELS,
    MIN_LESION_PIXELS,
    ContrastMeasurement,
    fisher_contrast,
    healthy_region,
    lesion_hemisphere,
    measure_contrast,
)
from lesionseg.difficulty.scales import EASY_DIRECTIONS, HUMAN_RATINGS, rating_scores
from lesionseg.difficulty.table import (
    FLAG_COLUMNS,
    METRIC_COLUMNS,
    DifficultyTable,
    read_difficulty,
    write_difficulty,
)

__all__ = [
    "EASY_DIRECTIONS",
    "FLAG_COLUMNS",
    "HUMAN_RATINGS",
    "INVALID_CONTRAST",
    "METRICS",
    "METRIC_COLUMNS",
    "MIN_HEALTHY_PIXELS",
    "MIN_LESION_PIXELS",
    "OTHER_METRICS",
    "ContrastMeasurement",
    "DifficultyTable",
    "case_lesion_volume_ml",
    "case_volumes_ml",
    "compute_difficulty",
    "fisher_contrast",
    "healthy_region",
    "lesion_area_mm2",
    "lesion_hemisphere",
    "measure_contrast",
    "rating_scores",
    "read_difficulty",
    "resolve_metrics",
    "slice_areas_mm2",
    "write_difficulty",
]

