"""``lesionseg demo [OUT]``: the whole pipeline on the built-in synthetic cohort, with the defaults a user gets.

Synthesise a FLAIR cohort; discover it; prepare the training cases with the machine's preset (on a CPU:
128 x 128 slices, every brain slice, one neighbouring slice on each side); compute the contrast difficulty
and plot it; train a curriculum model and a no-curriculum model for the same few minutes each with the
trainer's time budget (``--minutes``: it measures its pace and plans the epochs, so the curriculum, whose
early epochs are shorter, gets more of them), both fine-tuned from the shipped starter model when it fits;
segment the held-out cases with both; evaluate them against their masks (Dice and lesion-wise F1); write
the report of the curriculum run and the evaluation pages. Everything lands in OUT (default
``demo-output``); the last lines say which HTML pages to open.
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
    parser.add_argument("--size", type=int, help="prepared slice size (default: the preset's, 128 on a CPU)")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time per model (default 3)")
    parser.add_argument("--epochs", type=int, help="epochs per model, the same for both, instead of a time")
    parser.add_argument("--lesion-age", default="0.5,1",
                        help="the cohort's lesion ages LOW,HIGH (default 0.5,1: FLAIR a few days after the stroke; "
                             "0,1 adds hyperacute lesions that FLAIR barely shows)")
    parser.add_argument("--from-scratch", action="store_true", help="do not start from the starter model")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="(default auto)")
    parser.set_defaults(func=run)


def _step(number: int, text: str) -> float:
    print(f"[{number}] {text}", flush=True)
    return time.perf_counter()


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lesionseg.cli.common import parse_float_pair
    from lesionseg.data import discover
    from lesionseg.difficulty import compute_difficulty, write_difficulty
    from lesionseg.report.difficulty_plots import plot_difficulty
    from lesionseg.errors import ParameterError
    from lesionseg.infer import Predictor, segment_cases
    from lesionseg.preprocess import PrepareConfig, PreparedDataset, prepare_dataset
    from lesionseg.report import evaluate_predictions, write_evaluation_report, write_run_report
    from lesionseg.synth import write_cohort
    from lesionseg.train import TrainConfig, train_run
    from lesionseg.train.presets import get_preset

    if args.held_out < 1 or args.cases - args.held_out < 3:
        raise ParameterError("--cases must leave at least 3 training cases after --held-out (at least 1).")
    if args.epochs is None and not args.minutes > 0:
        raise ParameterError(f"--minutes must be a positive number of minutes, not {args.minutes!r}.")
    lesion_age = parse_float_pair(args.lesion_age, "--lesion-age")
    if not 0.0 <= lesion_age[0] <= lesion_age[1] <= 1.0:
        raise ParameterError(f"--lesion-age must be LOW,HIGH with 0 <= LOW <= HIGH <= 1, not {args.lesion_age!r}.")
    preset = get_preset("auto", args.device)
    out = args.out
    dataset = out / "dataset"
    began = _step(1, f"synthesising {args.cases} FLAIR cases (lesion ages {args.lesion_age}) into {dataset}")
    if not (dataset / "dataset_description.json").exists():
        write_cohort(dataset, args.cases, modalities=("flair",), seed=args.seed, lesion_age=lesion_age)
    cases = discover(dataset, require_masks=True)
    training, held_out = cases[: -args.held_out], cases[-args.held_out:]
    print(f"    {len(cases)} cases ({time.perf_counter() - began:.0f} s): {len(training)} for training, "
          f"{len(held_out)} held out ({', '.join(c.case_id for c in held_out)})")

    prepare_values = {**preset.prepare_values(), **({"size": args.size} if args.size else {})}
    began = _step(2, f"preparing the training cases ({preset.name} preset: {prepare_values['size']} px, "
                     f"{prepare_values['context_slices']} neighbouring slice(s) on each side)")
    prepared_root = out / "prepared"
    summary = prepare_dataset(training, prepared_root, PrepareConfig(seed=args.seed, **prepare_values))
    print(f"    {summary['slices']} slices, {summary['lesion_slices']} with lesion ({time.perf_counter() - began:.0f} s)")

    _step(3, "difficulty: lesion area and Fisher contrast per lesion slice")
    prepared = PreparedDataset(prepared_root)
    table = compute_difficulty(prepared, ["area", "contrast"])
    write_difficulty(table, out / "difficulty.csv")
    plots = plot_difficulty(table, out / "difficulty_plots")
    print(f"    {len(table)} lesion slices; histograms: {', '.join(str(p) for p in plots)}")

    runs = {}
    base = {**preset.train_values(), "device": args.device, "seed": args.seed,
            "difficulty_csv": str(out / "difficulty.csv"), "starter_if_fits": preset.starter and not args.from_scratch,
            "rehearsal": 0}  # the demo's difficulty table (shared by both runs) has no rows for rehearsal cases
    if args.epochs is None:
        base["minutes"] = args.minutes
    else:
        base["epochs"] = args.epochs

    def say(event: dict) -> None:
        if event.get("event") == "message":
            print(f"    {event['message']}", flush=True)

    for number, curriculum in ((4, "vanilla"), (5, "none")):
        length = f"~{args.minutes:g} min" if args.epochs is None else f"{args.epochs} epochs"
        began = _step(number, f"training with curriculum '{curriculum}' ({length})")
        run_dir = out / f"run-{curriculum}"
        result = train_run(prepared_root, run_dir, TrainConfig.from_dict({**base, "curriculum": curriculum}),
                           progress=say)
        runs[curriculum] = result
        fold = result.results[0]
        print(f"    {fold.epochs_run} epochs of '{curriculum}', {fold.iterations} iterations, validation Dice "
              f"{_validation_dice(fold)} ({(time.perf_counter() - began) / 60:.1f} min)")

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

    print("\nvalidation and held-out results, curriculum vs none:")
    print("  curriculum   validation Dice   held-out Dice   held-out lesion F1   false lesions/case   epochs")
    for curriculum, (result, evaluation) in runs.items():
        fold = result.results[0]
        held = _mean(evaluation.summary.get("dice_mean"))
        f1 = _mean(evaluation.summary.get("lesion_f1_mean"))
        false = float(np.mean([row["lesion_fp"] for row in evaluation.rows]))
        print(f"  {curriculum:<10}   {_validation_dice(fold):<5}             {held:.3f}"
              f"           {f1:.3f}                {false:.1f}                  {fold.epochs_run}")
    print(f"\nopen {report} (the run report) and {pages['vanilla']} (the held-out evaluation)")
    return 0


def _validation_dice(fold) -> str:
    """The model's validation Dice to 3 decimals, or "none" for a model trained on every case."""
    value = fold.validation.get("val_dice") if fold.validation else None
    return "none" if value is None else f"{value:.3f}"


def _mean(value) -> float:
    return float("nan") if value is None else float(value)
