"""``lesionseg evaluate PRED TRUTH [--out metrics.csv] [--report DIR]``: predictions against the truth, per case."""

from __future__ import annotations

import argparse
from pathlib import Path

from lesionseg.progress import PROGRESS_MODES, make_progress

#: Exit code when some truth cases have no prediction (the lesionseg convention for a partial batch).
EXIT_MISSING = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate predicted masks against the truth (Dice, HD, HD95, ASSD, volume, lesion-wise F1)",
        description="Match predicted masks to truth masks by case id and compute per case: Dice, Hausdorff distance "
                    "and its 95th percentile, ASSD (mm), absolute volume difference (mL), absolute lesion count "
                    "difference, lesion-wise F1 (ISLES'22 rules) and the slice detection rate; then the mean and "
                    "median of each. PRED is a folder of <case_id>.nii.gz / .seg.nrrd masks or a dataset; TRUTH "
                    "is a dataset (any layout 'cases' reads) or a folder of <case_id> masks. Truth cases without a "
                    "prediction are listed and make the exit code 3 (unless --allow-missing).",
    )
    parser.add_argument("prediction", type=Path, help="folder of predicted masks named <case_id>.<ext>, or a dataset")
    parser.add_argument("truth", type=Path, help="dataset folder or CSV manifest, or a folder of <case_id> masks")
    parser.add_argument("--out", type=Path, help="write the per-case metrics to this CSV file")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write an HTML page (tables, Dice bars, worst/best overlays) into DIR")
    parser.add_argument("--connectivity", default="26",
                        help="lesion connectivity: 26 (ISLES'22, default), 18, 6 (ATLAS v2.0), isles22 or atlas2")
    parser.add_argument("--allow-missing", action="store_true",
                        help="exit 0 even when some truth cases have no prediction (they are still listed)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display (default bar)")
    parser.set_defaults(func=run)


def _connectivity(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text.strip()


def format_summary(result) -> str:
    """The summary lines printed after an evaluation."""
    summary = result.summary
    lines = [f"evaluated {summary['n']} cases ({summary['n_empty_prediction']} with an empty prediction, "
             f"{summary['n_empty_truth']} with an empty truth)"]
    for name, label in (("dice", "Dice"), ("hd_mm", "HD (mm)"), ("hd95_mm", "HD95 (mm)"), ("assd_mm", "ASSD (mm)"),
                        ("abs_volume_difference_ml", "|volume difference| (mL)"),
                        ("abs_lesion_count_difference", "|lesion count difference|"),
                        ("lesion_f1", "lesion-wise F1"), ("detection_rate", "detection rate")):
        mean, median = summary.get(f"{name}_mean"), summary.get(f"{name}_median")
        if mean is not None:
            lines.append(f"  {label:<28} mean {mean:9.4f}   median {median:9.4f}")
    for value, name in getattr(result, "classes", {}).items():
        from lesionseg.metrics import class_slug

        parts = []
        for metric, label in (("dice", "Dice"), ("lesion_f1", "lesion F1"), ("volume_truth_ml", "truth mL"),
                              ("volume_prediction_ml", "predicted mL")):
            mean = summary.get(f"{class_slug(name)}_{metric}_mean")
            parts.append(f"{label} {mean:.4f}" if mean is not None else f"{label} -")
        lines.append(f"  class {value} {name:<20} mean " + ", ".join(parts))
    if result.missing:
        lines.append(f"missing: {len(result.missing)} truth case(s) without a prediction: {', '.join(result.missing)}")
    if result.extra:
        lines.append(f"extra: {len(result.extra)} prediction(s) without a truth, ignored: {', '.join(result.extra)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import sys

    from lesionseg.report import evaluate_predictions, write_evaluation_report, write_metrics_csv

    result = evaluate_predictions(args.prediction, args.truth, connectivity=_connectivity(args.connectivity),
                                  progress=make_progress(args.progress))
    if args.out:
        write_metrics_csv(result.rows, args.out)
    page = write_evaluation_report(result, args.report) if args.report else None
    print(format_summary(result))
    if args.out:
        print(f"per-case metrics: {args.out}")
    if page:
        print(f"report: {page}")
    if result.missing and not args.allow_missing:
        print(f"lesionseg evaluate: {len(result.missing)} truth case(s) have no prediction (first: "
              f"{result.missing[0]}); use --allow-missing to accept that.", file=sys.stderr)
        return EXIT_MISSING
    return 0
