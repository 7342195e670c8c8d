"""``lesionseg demo [OUT]``: run the whole pipeline on the built-in synthetic cohort.

For now it synthesises a small cohort, discovers it and prints it; later stages are added as they land.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the pipeline end to end on synthetic data",
        description="Synthesise a small cohort and run the pipeline on it, printing what each stage did.",
    )
    parser.add_argument("out", type=Path, nargs="?", default=Path("demo-output"), help="work folder (default demo-output)")
    parser.add_argument("--cases", type=int, default=12, help="number of synthetic cases (default 12)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionseg.data import discover, folds
    from lesionseg.synth import write_cohort

    dataset = args.out / "dataset"
    start = time.perf_counter()
    print(f"[1] synthesising {args.cases} FLAIR cases into {dataset} ...")
    write_cohort(dataset, args.cases, modalities=("flair",), seed=args.seed)
    print(f"    done in {time.perf_counter() - start:.1f} s")
    print("[2] discovering and checking the cases ...")
    cases = discover(dataset, require_masks=True)
    fold_ids = folds(cases, k=min(5, len(cases)), seed=args.seed)
    fold_of = {case_id: index for index, ids in enumerate(fold_ids) for case_id in ids}
    for case in cases:
        print(f"    {case.case_id}  channels {','.join(case.channels)}  fold {fold_of[case.case_id]}")
    print(f"    {len(cases)} cases, {len(fold_ids)} patient-level folds")
    return 0
