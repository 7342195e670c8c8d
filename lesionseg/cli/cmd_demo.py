"""``lesionseg demo [OUT]``: the whole pipeline on the built-in synthetic cohort.

Synthesise a FLAIR cohort; discover it; prepare the training cases (S = 128 on a CPU); compute the
contrast difficulty and plot it; train a curriculum model and a no-curriculum model for the same few
minutes each (a curriculum's early epochs are shorter, so it gets more epochs: equal time, not equal
epochs, is the fair comparison); segment the held-out cases with both; evaluate them against their
masks; write the report of the curriculum run and the evaluation pages. Everything lands in OUT
(default ``demo-output``); the last lines say which HTML pages to open.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the pipeline end to end on synthetic data",
        description="Synthesise a cohort, prepare it, compute difficulty, train a curriculum and a plain model, "
                    "segment held-out cases, evaluate them and write the reports.",
    )
    parser.add_argument("out", type=Path, nargs="?", default=Path("demo-output"), help="work folder (default demo-output)")
    parser.add_argument("--cases", type=int, default=16, help="synthetic cases (default 16)")
    parser.add_argument("--held-out", type=int, default=4, help="cases kept for segmentation and evaluation (default 4)")
    parser.add_argument("--size", type=int, default=128, help="prepared slice size (default 128)")
    parser.add_argument("--minutes", type=float, default=4.0, help="training time per model (default 4)")
    parser.add_argument("--epochs", type=int, help="epochs per model, the same for both (default: as many as "
                                                   "--minutes allows each model)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="(default auto)")
    parser.set_defaults(func=run)


def _step(number: int, text: str) -> float:
    print(f"[{number}] {text}", flush=True)
    return time.perf_counter()


def _seconds_per_step(prepared_root: Path, probe: Path, config) -> tuple[float, int]:
    """Train ``config`` (a short plain run) in ``probe``; its seconds per optimiser step (setup and validation
    included, so the budget errs short) and its number of training slices."""
    from lesionseg.train import train_run

    began = time.perf_counter()
    fold = train_run(prepared_root, probe, config).results[0]
    return (time.perf_counter() - began) / max(1, fold.iterations), len(fold.train_rows)


def run(args: argparse.Namespace) -> int:
    from lesionseg.curriculum.budget import epochs_within_budget
    from lesionseg.data import discover
    from lesionseg.difficulty import compute_difficulty, plot_difficulty, write_difficulty
    from lesionseg.errors import ParameterError
    from lesionseg.infer import Predictor, segment_cases
    from lesionseg.preprocess import PrepareConfig, PreparedDataset, prepare_dataset
    from lesionseg.report import evaluate_predictions, write_evaluation_report, write_run_report
    from lesionseg.synth import write_cohort
    from lesionseg.train import TrainConfig, train_run

    if args.held_out < 1 or args.cases - args.held_out < 3:
        raise ParameterError("--cases must leave at least 3 training cases after --held-out (at least 1).")
    out = args.out
    dataset = out / "dataset"
    began = _step(1, f"synthesising {args.cases} FLAIR cases into {dataset}")
    if not (dataset / "dataset_description.json").exists():
        write_cohort(dataset, args.cases, modalities=("flair",), seed=args.seed)
    cases = discover(dataset, require_masks=True)
    training, held_out = cases[: -args.held_out], cases[-args.held_out:]
    print(f"    {len(cases)} cases ({time.perf_counter() - began:.0f} s): {len(training)} for training, "
          f"{len(held_out)} held out ({', '.join(c.case_id for c in held_out)})")

    began = _step(2, f"preparing the training cases at {args.size}x{args.size}")
    prepared_root = out / "prepared"
    summary = prepare_dataset(training, prepared_root, PrepareConfig(size=args.size, negatives=0.1, seed=args.seed))
    print(f"    {summary['slices']} slices, {summary['lesion_slices']} with lesion ({time.perf_counter() - began:.0f} s)")

    _step(3, "difficulty: lesion area and Fisher contrast per lesion slice")
    prepared = PreparedDataset(prepared_root)
    table = compute_difficulty(prepared, ["area", "contrast"])
    write_difficulty(table, out / "difficulty.csv")
    plots = plot_difficulty(table, out / "difficulty_plots")
    print(f"    {len(table)} lesion slices; histograms: {', '.join(str(p) for p in plots)}")

    runs = {}
    base = dict(network="unet2d", network_kwargs={"features": [16, 32, 64, 128, 256]}, folds=4, fold=0,
                batch_size=12, lr=1e-3, optimiser="adam", device=args.device, seed=args.seed, val_every=2,
                metrics=["contrast"], difficulty_csv=str(out / "difficulty.csv"))
    pace = None
    for number, curriculum in ((4, "vanilla"), (5, "none")):
        began = _step(number, f"training with curriculum '{curriculum}' (fold 0 of 4, ~{args.minutes:g} min)")
        epochs = args.epochs
        if epochs is None:  # time two plain epochs once, then fit each model's steps to the budget
            if pace is None:
                pace = _seconds_per_step(prepared_root, out / "probe", TrainConfig(**base, curriculum="none", epochs=2))
            epochs = epochs_within_budget(args.minutes * 60, pace[0], curriculum, pace[1], base["batch_size"])
            print(f"    {pace[0]:.2f} s per step, {pace[1]} training slices: {epochs} epochs of '{curriculum}'")
        run_dir = out / f"run-{curriculum}"
        result = train_run(prepared_root, run_dir, TrainConfig(**base, curriculum=curriculum, epochs=epochs))
        runs[curriculum] = result
        fold = result.results[0]
        print(f"    validation Dice {fold.validation.get('val_dice', float('nan')):.3f} after {fold.iterations} "
              f"iterations ({(time.perf_counter() - began) / 60:.1f} min)")

    _step(6, "segmenting the held-out cases with both models, evaluating them")
    pages = {}
    for curriculum, result in runs.items():
        predictor = Predictor(result.bundle, device=args.device)
        segmentation = out / f"segment-{curriculum}"
        segment_cases(predictor, held_out, segmentation, side="auto")
        evaluation = evaluate_predictions(segmentation, dataset)
        pages[curriculum] = write_evaluation_report(evaluation, out / f"evaluation-{curriculum}")
        runs[curriculum] = (result, evaluation)

    _step(7, "writing the report of the curriculum run")
    report = write_run_report(out / "run-vanilla", prepared=prepared_root, compare=out / "run-none")

    print("\nvalidation and held-out Dice, curriculum vs none:")
    print("  curriculum   validation Dice   held-out Dice (mean)   iterations")
    for curriculum, (result, evaluation) in runs.items():
        fold = result.results[0]
        held = evaluation.summary.get("dice_mean")
        held = float("nan") if held is None else held
        print(f"  {curriculum:<10}   {fold.validation.get('val_dice', float('nan')):.3f}             "
              f"{held:.3f}                  {fold.iterations}")
    print(f"\nopen {report} (the run report) and {pages['vanilla']} (the held-out evaluation)")
    return 0
