"""The HTML page of an evaluation (``lesionseg evaluate PRED TRUTH --report DIR``).

Sections: summary (mean and median of each metric, empty predictions, missing and extra cases), the
per-case table, a per-case Dice bar chart, and overlays of the worst and the best case on their most
lesioned axial slice (TP red, FN blue, FP green, with the slice Dice), on a channel of the case when the
dataset gives one on the mask's grid, on black otherwise. Slices are axis 0 (z) of the SimpleITK arrays,
shown in voxel order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lesionseg.io import write_text_atomic
from lesionseg.report import html
from lesionseg.report.evaluation import CASE_COLUMNS, EvaluationResult, MaskSource, read_pair, write_metrics_csv
from lesionseg.report.figures import plot_case_bars
from lesionseg.report.overlay import make_sample, plot_overlays

#: Columns of the page's per-case table (the CSV has them all).
PAGE_COLUMNS = ("case_id", "dice", "hd_mm", "hd95_mm", "assd_mm", "abs_volume_difference_ml",
                "abs_lesion_count_difference", "lesion_f1", "detection_rate", "empty_prediction")
SUMMARY_METRICS = ("dice", "hd_mm", "hd95_mm", "assd_mm", "abs_volume_difference_ml", "abs_lesion_count_difference",
                   "lesion_f1", "detection_rate")


def _background(sources: tuple[MaskSource, MaskSource], grid) -> np.ndarray | None:
    """The first channel of the case (truth dataset first) that lies on the mask's grid, as (z, y, x)."""
    import SimpleITK as sitk

    from lesionseg.errors import LesionSegError
    from lesionseg.io import geometry_difference, read_geometry, read_image

    for source in (sources[1], sources[0]):
        for path in source.channels.values():
            try:
                if geometry_difference(read_geometry(path), grid) is None:
                    return sitk.GetArrayFromImage(read_image(path, pixel_type=sitk.sitkFloat32))
            except LesionSegError:
                continue
    return None


def _overlay_samples(result: EvaluationResult) -> list:
    import SimpleITK as sitk

    ordered = sorted(result.rows, key=lambda row: row["dice"])
    chosen = [("worst", ordered[0])] + ([("best", ordered[-1])] if len(ordered) > 1 else [])
    samples = []
    for kind, row in chosen:
        sources = result.sources[row["case_id"]]
        predicted_image, truth_image = read_pair(*sources)
        predicted = sitk.GetArrayFromImage(predicted_image) > 0
        truth = sitk.GetArrayFromImage(truth_image) > 0
        counts = truth.reshape(truth.shape[0], -1).sum(axis=1)
        if not counts.any():
            counts = predicted.reshape(predicted.shape[0], -1).sum(axis=1)
        index = int(np.argmax(counts))
        image = _background(sources, truth_image)
        samples.append(make_sample(f"{kind} case: {row['case_id']} (case Dice {row['dice']:.3f})\naxial slice {index}",
                                   None if image is None else image[index], predicted[index], truth[index]))
    return samples


def _summary(result: EvaluationResult) -> str:
    summary = result.summary
    rows = [[name, summary.get(f"{name}_mean"), summary.get(f"{name}_median"), summary.get(f"{name}_n")]
            for name in SUMMARY_METRICS if f"{name}_n" in summary]
    parts = [html.paragraph(f"{summary['n']} cases evaluated; {summary['n_empty_prediction']} with an empty "
                            f"prediction, {summary['n_empty_truth']} with an empty truth. Distances of an empty "
                            "prediction are the image diagonal (the documented worst case), so every case enters "
                            "every mean."),
             html.table(("metric", "mean", "median", "cases"), rows)]
    if result.missing:
        parts.append(html.note(f"{len(result.missing)} truth case(s) have no prediction and are not in the "
                               f"tables: {', '.join(result.missing)}."))
    if result.extra:
        parts.append(html.note(f"{len(result.extra)} prediction(s) have no truth and were ignored: "
                               f"{', '.join(result.extra)}."))
    return "".join(parts)


def write_evaluation_report(result: EvaluationResult, out_dir: str | os.PathLike,
                            title: str = "LesionSeg evaluation") -> Path:
    """Write ``OUT_DIR/index.html``, its PNG figures and ``metrics.csv``.

    Args:
        result: from :func:`lesionseg.report.evaluation.evaluate_predictions`.
        out_dir: the folder (created).
        title: the page title.

    Returns:
        The path of ``index.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_metrics_csv(result.rows, out / "metrics.csv")
    ordered = sorted(result.rows, key=lambda row: -row["dice"])
    bars = plot_case_bars([r["case_id"] for r in ordered], [r["dice"] for r in ordered], out / "case_dice.png",
                          title="Dice per case")
    overlays = plot_overlays(_overlay_samples(result), out / "overlays.png", columns=2)
    sections = [
        ("summary", "Summary", _summary(result)),
        ("cases", "Cases", html.paragraph(f"Every metric of every case is in {csv_path.name} "
                                          f"({len(CASE_COLUMNS)} columns).")
         + html.table(PAGE_COLUMNS, [[row.get(c) for c in PAGE_COLUMNS] for row in result.rows], scroll=True)),
        ("dice", "Dice per case", html.figure(bars.name, "Dice of each case, best first; dashed: the mean.")),
        ("overlays", "Worst and best case",
         html.figure(overlays.name, "The most lesioned axial slice of the worst and the best case: true positives "
                                    "red, false negatives (missed lesion) blue, false positives green; the slice "
                                    "Dice under each title.")),
    ]
    index = out / "index.html"
    write_text_atomic(index, html.page(title, sections))
    return index
