"""``lesionseg report RUN [--prepared P] [--compare RUN2] [--out DIR]``: the HTML report of a training run."""

from __future__ import annotations

import argparse
from pathlib import Path

from lesionseg.errors import ParameterError
from lesionseg.progress import PROGRESS_MODES, make_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="HTML report of a training run (tables, curves, difficulty, overlays, comparison)",
        description="Write RUN/report/index.html with its PNG figures beside it: the configuration, per-fold and "
                    "per-case validation tables, difficulty distributions with the curriculum group boundaries, "
                    "training and validation curves, performance against each difficulty metric (scatter, line, "
                    "signed R²), overlays of validation slices (with --prepared) and, with --compare, one-tailed "
                    "Mann-Whitney U tests of RUN against RUN2 with the marks *** p < 0.01, ** p < 0.05, * p < 0.08.",
    )
    parser.add_argument("run", type=Path, help="run folder written by 'lesionseg train'")
    parser.add_argument("--prepared", type=Path,
                        help="the prepared dataset the run was trained on (needed for the overlays)")
    parser.add_argument("--compare", type=Path, metavar="RUN2",
                        help="a second run (e.g. classical training); RUN is tested as the better one")
    parser.add_argument("--difficulty", type=Path, help="difficulty table to use instead of RUN/difficulty.csv")
    parser.add_argument("--out", type=Path, metavar="DIR", help="report folder (default RUN/report)")
    parser.add_argument("--samples", type=int, default=2, help="validation cases shown per fold (default 2)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display (default bar)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionseg.report import write_run_report

    if args.samples < 1:
        raise ParameterError(f"--samples must be at least 1, not {args.samples}.")
    index = write_run_report(args.run, args.out, prepared=args.prepared, compare=args.compare,
                             difficulty=args.difficulty, samples_per_fold=args.samples,
                             progress=make_progress(args.progress))
    print(f"report: {index}")
    return 0
