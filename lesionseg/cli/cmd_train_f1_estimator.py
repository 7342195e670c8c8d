"""``lesionseg train-f1-estimator [PREPARED] -o FILE``: train the lesion-wise F1 estimator of the ``f1`` loss.

The truth masks come from a prepared dataset (every ``masks`` slice of ``PREPARED/cases/*.npz``) or, with
no dataset, from random lesion-like masks (smooth noise thresholded into blobs), so the command works on
its own. It prints the estimator's mean absolute error on held-out pairs next to a constant predictor's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lesionseg.errors import ParameterError
from lesionseg.progress import PROGRESS_MODES, make_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-f1-estimator", help="train the CNN that estimates lesion-wise F1 (for the f1 loss)",
        description="Train a small CNN to estimate the lesion-wise F1 (ISLES'22 rules) of a (probability, truth) "
                    "pair, from degraded predictions of truth masks, and report its error on held-out pairs.",
    )
    parser.add_argument("prepared", type=Path, nargs="?",
                        help="prepared dataset folder (from 'lesionseg prepare'); "
                             "omitted: random lesion-like masks")
    parser.add_argument("-o", "--output", type=Path, required=True, help="estimator file to write (.pt)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    parser.add_argument("--pairs", type=int, default=4000,
                        help="number of (prediction, truth) pairs (default 4000)")
    parser.add_argument("--size", type=int, default=64,
                        help="side of the estimator's inputs in pixels (default 64)")
    parser.add_argument("--masks", type=int, default=400,
                        help="number of random masks when no dataset is given (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="bar", help="progress display (default bar)")
    parser.set_defaults(func=run)


def _prepared_masks(root: Path):
    """All mask slices of a prepared dataset, ``(N, S, S)`` uint8."""
    import numpy as np

    from lesionseg.errors import DatasetError
    from lesionseg.preprocess.prepared import PreparedDataset

    dataset = PreparedDataset(root)
    stacks = [dataset.arrays(case_id).masks for case_id in dataset.case_ids]
    stacks = [stack for stack in stacks if stack.size]
    if not stacks:
        raise DatasetError(f"{root} holds no mask slices to train the F1 estimator on.")
    return np.concatenate(stacks).astype(np.uint8)


def run(args: argparse.Namespace) -> int:
    for option, value, low in (("--epochs", args.epochs, 1), ("--pairs", args.pairs, 10), ("--size", args.size, 16),
                               ("--masks", args.masks, 5)):
        if value < low:
            raise ParameterError(f"{option} must be at least {low}, not {value}.")
    import numpy as np

    from lesionseg.losses.f1_estimator import random_lesion_masks, save_f1_estimator, train_f1_estimator

    if args.prepared is not None:
        masks = _prepared_masks(args.prepared)
        source = f"{len(masks)} mask slices of {args.prepared}"
    else:
        masks = random_lesion_masks(args.masks, args.size, np.random.default_rng(args.seed))
        source = f"{len(masks)} random lesion-like masks"
    progress = make_progress(args.progress)
    model, report = train_f1_estimator(masks, epochs=args.epochs, seed=args.seed, device=args.device,
                                       progress=progress, n_pairs=args.pairs, size=args.size)
    report["source"] = source
    save_f1_estimator(model, args.output, report)
    if args.progress == "jsonl":
        progress({"event": "done", "stage": "f1-estimator", "output": str(args.output), **report})
    else:
        print(f"trained on {report['train_pairs']} pairs from {source} in {report['seconds']:.1f} s")
        print(f"held-out MAE {report['held_out_mae']:.3f} on {report['held_out_pairs']} pairs "
              f"(constant predictor {report['baseline_value']:.2f}: MAE {report['baseline_mae']:.3f})")
        print(f"wrote {args.output}")
    return 0

