"""``lesionseg analyse RUN [--difficulty CSV]``: signed R² between per-slice performance and each difficulty metric."""

from __future__ import annotations

import argparse
import csv
import io as text_io
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyse", help="R² (with sign) of per-slice Dice and HD against each difficulty metric",
        description="The curriculum paper's Table 1 for a cross-validated run: for each difficulty metric, the R² "
                    "of the least-squares line of the per-slice validation Dice and Hausdorff distance on the "
                    "metric, with the sign of Pearson's r (negative: performance falls as the metric grows). "
                    "Slices whose contrast was not measurable are left out of the contrast row; a constant "
                    "variable gives R² 0 with a note. Printed and written to RUN/analysis.csv.",
    )
    parser.add_argument("run", type=Path, help="run folder written by 'lesionseg train' (with fold_<i>/val_slices.csv)")
    parser.add_argument("--difficulty", type=Path, help="difficulty table (default RUN/difficulty.csv)")
    parser.add_argument("--metric", help="comma-separated difficulty columns (default: all of the table)")
    parser.add_argument("--performance", default="dice,hd_mm",
                        help="comma-separated per-slice columns of val_slices.csv (default dice,hd_mm)")
    parser.add_argument("--out", type=Path, help="CSV to write (default RUN/analysis.csv)")
    parser.set_defaults(func=run)


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    return names or None


def format_table(analysis, performance: list[str]) -> str:
    """The R² table as aligned text, with the notes of undefined cells below it."""
    header = f"{'difficulty metric':<20}{'slices':>8}" + "".join(f"{'R² ' + p:>14}" for p in performance)
    lines = [f"signed R² = sign(r) r² of a least-squares line; {len(analysis.joined.keys)} validation slices, "
             f"difficulty table {analysis.difficulty_path}", header]
    notes = []
    for row in analysis.rows:
        cells = []
        for column in performance:
            cell = row.cells[column]
            cells.append(f"{cell.r2:.3f}*" if cell.note else f"{cell.r2:+.3f} ")
            if cell.note:
                notes.append(f"* {row.metric} / {column}: {cell.note}; R² set to 0")
        lines.append(f"{row.metric:<20}{row.n:>8}" + "".join(f"{c:>14}" for c in cells))
    return "\n".join(lines + notes)


def analysis_csv_text(analysis) -> str:
    """One CSV row per difficulty metric (see :meth:`lesionseg.stats.R2Row.to_dict`)."""
    records = [row.to_dict() for row in analysis.rows]
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["metric"], lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: format(v, ".6g") if isinstance(v, float) else v for k, v in record.items()})
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    from lesionseg.io import write_text_atomic
    from lesionseg.stats import analyse_run

    performance = _names(args.performance) or ["dice", "hd_mm"]
    analysis = analyse_run(args.run, args.difficulty, metrics=_names(args.metric), performance=performance)
    out = args.out or args.run / "analysis.csv"
    write_text_atomic(out, analysis_csv_text(analysis))
    print(format_table(analysis, performance))
    print(f"written: {out}")
    return 0
