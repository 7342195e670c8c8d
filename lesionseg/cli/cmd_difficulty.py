"""``lesionseg difficulty PREPARED --metric area,contrast --out difficulty.csv [--plot DIR]``.

Computes per-slice difficulty metrics of a prepared dataset (one row per lesion slice) and optionally
draws their histograms with the curriculum group boundaries. With ``--table FILE`` instead of ``--out``,
an existing table (e.g. one with ``gradient`` or ``human`` columns) is validated against PREPARED and
plotted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lesionseg.errors import ParameterError
from lesionseg.progress import PROGRESS_MODES, make_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "difficulty", help="per-slice difficulty metrics (lesion area, Fisher contrast) and their histograms",
        description="Measure the difficulty of every lesion slice of a prepared dataset: lesion area in mm² "
                    "(native pixel spacing) and the Fisher contrast F = (mu_h - mu_l)^2 / (s_h^2 + s_l^2) between "
                    "the lesion and the healthy brain of its hemisphere (0.0 when a slice has too few pixels to "
                    "measure it, flagged contrast_valid = 0). Writes one CSV row per lesion slice; --plot draws "
                    "a histogram per metric with the boundaries of the curriculum's equal-size groups.",
    )
    parser.add_argument("prepared", type=Path, help="prepared dataset folder (from 'lesionseg prepare')")
    parser.add_argument("--metric",
                        help="comma-separated metrics: area, contrast, gradient (needs --bundle) (default "
                             "area,contrast); with --table, the columns to plot (default all)")
    parser.add_argument("--out", type=Path, help="difficulty table to write (CSV)")
    parser.add_argument("--table", type=Path,
                        help="instead of computing, read this difficulty table, check it against PREPARED "
                             "and plot it")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="folder for one histogram PNG per metric")
    parser.add_argument("--groups", type=int, default=6,
                        help="number of equal-size difficulty groups drawn on the plots (default 6)")
    parser.add_argument("--channel", help="channel the contrast is measured on (default: the reference channel)")
    parser.add_argument("--margin", type=int, default=0,
                        help="leave healthy pixels within this many pixels of the lesion out of the contrast "
                             "(default 0)")
    parser.add_argument("--min-lesion-pixels", type=int, default=5,
                        help="fewer lesion pixels on a prepared slice: contrast not measurable, 0.0 (default 5)")
    parser.add_argument("--min-healthy-pixels", type=int, default=20,
                        help="fewer healthy pixels in the lesion's hemisphere: contrast 0.0 (default 20)")
    gradient = parser.add_argument_group(
        "gradient difficulty (--metric gradient)",
        "The converged model of --bundle is retrained on all lesion slices, --repeats times in a shuffled "
        "order; each slice's loss is recorded just before and just after each of its updates. Its score is "
        "the share of its loss the retraining removes (loss before its first update minus after its last, "
        "over the first), averaged over the repeats and normalised to [0, 1]: 1 = easy.")
    gradient.add_argument("--bundle", type=Path, help="a trained model bundle: the converged model the protocol retrains")
    gradient.add_argument("--gradient-epochs", type=int, default=2, help="retraining epochs per repeat (default 2)")
    gradient.add_argument("--repeats", type=int, default=5, help="repeats with a shuffled order (default 5)")
    gradient.add_argument("--lr", type=float, help="learning rate of the retraining (default: the bundle's)")
    gradient.add_argument("--batch-size", type=int, help="batch size of the retraining (default: the bundle's)")
    gradient.add_argument("--gradient-measure", default="retraining",
                          help="retraining (default): the share of each slice's loss the retraining removes; step: "
                               "the literal published reading, the mean loss decrease of each slice's own updates")
    gradient.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="(default auto)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display (default bar)")
    parser.set_defaults(func=run)


def _split_gradient(text: str | None) -> tuple[str | None, bool]:
    """Take ``gradient`` out of a --metric list: (the other metrics or None, whether gradient was asked)."""
    if text is None:
        return None, False
    parts = [p.strip() for p in text.split(",") if p.strip()]
    wanted = "gradient" in (p.lower() for p in parts)
    rest = [p for p in parts if p.lower() != "gradient"]
    return (",".join(rest) if rest else None), wanted


def _table_columns(text: str | None, available: list[str]) -> list[str]:
    """Columns of an existing table named by ``--metric`` (metric names or column names; None: all)."""
    from lesionseg.difficulty import METRIC_COLUMNS, METRICS

    if text is None:
        return list(available)
    columns = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        column = METRICS.get(part, part)
        if column not in METRIC_COLUMNS:
            raise ParameterError(f"--metric: unknown metric {part!r}; choose among {', '.join(METRIC_COLUMNS)}.")
        if column not in available:
            raise ParameterError(f"--metric: the table has no {column!r} column (it has {', '.join(available)}).")
        columns.append(column)
    return columns


def _summary(table, volumes: dict[str, float] | None) -> list[str]:
    import numpy as np

    lines = []
    for name, values in table.metrics.items():
        q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
        lines.append(f"  {name}: median {q[2]:.4g} (quartiles {q[1]:.4g}-{q[3]:.4g}, range {q[0]:.4g}-{q[4]:.4g})")
    if "contrast_valid" in table.flags:
        invalid = int((~table.flags["contrast_valid"]).sum())
        if invalid:
            lines.append(f"  {invalid} slice(s) had too few lesion or healthy pixels: contrast set to 0.0 "
                         "(contrast_valid = 0)")
    if volumes:
        values = np.array(list(volumes.values()))
        lines.append(f"  lesion volume per case: median {np.median(values):.3g} mL (range {values.min():.3g}-"
                     f"{values.max():.3g} mL)")
    return lines


def _with_gradient(table, prepared, args: argparse.Namespace, progress, keep: bool):
    """The table with a ``gradient`` column (and without the area column computed only for its rows)."""
    from lesionseg.difficulty import DifficultyTable
    from lesionseg.train.gradient import gradient_for_prepared

    result = gradient_for_prepared(prepared, args.bundle, measure=args.gradient_measure,
                                   epochs=args.gradient_epochs, repeats=args.repeats,
                                   lr=args.lr, batch_size=args.batch_size, device=args.device, progress=progress)
    keys = [(row["case_id"], int(row["slice_index"])) for row in result.rows]
    if keys != table.keys:
        raise ParameterError("the gradient difficulty and the other metrics do not cover the same lesion slices.")
    metrics = dict(table.metrics) if keep else {}
    metrics["gradient"] = result.score
    return DifficultyTable(table.case_ids, table.slice_indices, metrics, dict(table.flags) if keep else {},
                           table.source)


def run(args: argparse.Namespace) -> int:
    from lesionseg.difficulty import (
        case_volumes_ml,
        compute_difficulty,
        read_difficulty,
        resolve_metrics,
        write_difficulty,
    )
    from lesionseg.report.difficulty_plots import plot_difficulty
    from lesionseg.preprocess import PreparedDataset

    if (args.out is None) == (args.table is None):
        raise ParameterError(
            "give either --out FILE (compute a difficulty table) or --table FILE (plot an existing one)."
        )
    if args.groups < 1:
        raise ParameterError(f"--groups must be at least 1, not {args.groups}.")
    wants_gradient = False
    if args.table is None:
        others, wants_gradient = _split_gradient(args.metric)
        if wants_gradient and args.bundle is None:
            raise ParameterError("--metric gradient needs --bundle (the converged model whose retraining is measured).")
        if wants_gradient and (args.gradient_epochs < 1 or args.repeats < 1):
            raise ParameterError("--gradient-epochs and --repeats must be at least 1.")
        if wants_gradient:
            from lesionseg.train.gradient import MEASURES

            if args.gradient_measure not in MEASURES:
                raise ParameterError(f"--gradient-measure must be one of {', '.join(MEASURES)}, "
                                     f"not {args.gradient_measure!r}.")
        metrics = resolve_metrics(others) if others else ([] if wants_gradient else resolve_metrics("area,contrast"))
    prepared = PreparedDataset(args.prepared)
    progress = make_progress(args.progress)
    if args.table is not None:
        table = read_difficulty(args.table)
        table.join(prepared)
        columns = _table_columns(args.metric, table.metric_names)
        volumes = None
        heading = (f"{args.table}: {len(table)} lesion slices of {len(set(table.case_ids))} cases, "
                   f"consistent with {args.prepared}")
    else:
        table = compute_difficulty(prepared, metrics or ["area"], channel=args.channel, margin_px=args.margin,
                                   min_lesion_pixels=args.min_lesion_pixels,
                                   min_healthy_pixels=args.min_healthy_pixels, progress=progress)
        if wants_gradient:
            table = _with_gradient(table, prepared, args, progress, keep=bool(metrics))
        columns = table.metric_names
        volumes = case_volumes_ml(prepared) if "area" in metrics else None
    if args.plot is not None and len(table) < args.groups:
        raise ParameterError(
            f"--groups {args.groups} is more than the {len(table)} lesion slices; use --groups {len(table)} or fewer."
        )
    if args.out is not None:
        write_difficulty(table, args.out)
        heading = (f"wrote the difficulty of {len(table)} lesion slices of {len(set(table.case_ids))} cases to "
                   f"{args.out}")
    plots = plot_difficulty(table, args.plot, metrics=columns, groups=args.groups) if args.plot is not None else []
    if args.progress == "jsonl":
        progress({"event": "done", "stage": "difficulty", "rows": len(table), "columns": columns,
                  "out": str(args.out) if args.out else None, "plots": [str(p) for p in plots]})
    else:
        print(heading)
        print("\n".join(_summary(table, volumes)))
        for path in plots:
            print(f"  plot: {path}")
    return 0
