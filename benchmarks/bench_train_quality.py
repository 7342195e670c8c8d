"""Benchmark: does a CPU training of at most ~10 minutes reach a per-case Dice of 0.7 on held-out synthetic
FLAIR cases, with and without the curriculum?

Synthesises a FLAIR cohort, prepares it (S = 128 by default), trains on all cases but the held-out ones
with a time budget per run, segments the held-out cases with the predictor on their native grid, and prints
the per-case Dice (mean and spread over seeds) and the iterations each run used.

The budget: each run is given ``--minutes`` (``TrainConfig.minutes``): the trainer measures its own pace and
plans the largest number of epochs whose steps (counted from its schedule: the vanilla curriculum trains on
fewer slices in its early epochs, so it gets more epochs) fit (:mod:`lesionseg.train.budget`). The printed
minutes are the measured wall time of each whole run (difficulty, training, bundle).

``--lesion-age 0.5,1`` synthesises the cohort with ``lesionseg synth --lesion-age 0.5,1`` (FLAIR a few days
after the stroke, as the curriculum paper's day-6 FLAIR); the default 0,1 includes hyperacute lesions that
FLAIR barely shows (+5 to +15 % over the tissue, for about half of the cases).

``--extra-cases M`` adds M training cases synthesised after the ``--cases`` ones; the held-out cases (the last
``--held-out`` of the first ``--cases``) stay the same, so runs with and without them compare on one test set.

Run: ``.venv/bin/python benchmarks/bench_train_quality.py [--curricula vanilla,none] [--seeds 0,1,2]
[--minutes 10] [--cases 20] [--held-out 4] [--extra-cases 0] [--size 128] [--lesion-age 0,1]``; the issue's
figure: ``--cases 60 --held-out 8 --extra-cases 120 --lesion-age 0.5,1 --batch-dice --lr-schedule cosine``.
``benchmarks/bench_budget.py`` measures the defaults a user gets on a few cases.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lesionseg.data import discover
from lesionseg.infer import Predictor
from lesionseg.metrics import dice
from lesionseg.preprocess import PrepareConfig, PreparedDataset, prepare_dataset
from lesionseg.synth import write_cohort
from lesionseg.train import TrainConfig, train_run

NETWORKS = {
    "monai_unet": {"network": "monai_unet", "network_kwargs": {"channels": [16, 32, 64, 128, 256]}},
    "monai_unet_small": {"network": "monai_unet", "network_kwargs": {"channels": [8, 16, 32, 64, 128]}},
    "unet2d": {"network": "unet2d", "network_kwargs": {"features": [16, 32, 64, 128, 256]}},
}


def held_out_dice(bundle: Path, cases) -> list[float]:
    predictor = Predictor(bundle, device="cpu")
    scores = []
    for case in cases:
        prediction = predictor.predict({"flair": case.channels["flair"]}, side="auto", case_id=case.case_id)
        truth = sitk.GetArrayFromImage(case.read_mask()) > 0
        scores.append(dice(sitk.GetArrayFromImage(prediction.labelmap) > 0, truth))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curricula", default="vanilla,none")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per run")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--extra-cases", type=int, default=0,
                        help="more training cases, synthesised after the --cases ones (case i depends only on the "
                             "cohort seed and i, so the held-out cases stay the same as without them)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--network", choices=sorted(NETWORKS), default="monai_unet",
                        help="monai_unet (MONAI UNet, widths 16-256: fast on a CPU) or unet2d (the paper's, 16-256)")
    parser.add_argument("--workers", type=int, default=1, help="processes for preparing the cases")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--negatives", type=float, default=1.0,
                        help="fraction of lesion-free brain slices kept for training (default all: the model must "
                             "learn to say 'nothing here' on every slice it will see)")
    parser.add_argument("--lesion-age", default="0,1",
                        help="the synthetic cohort's lesion-age range (lesionseg synth --lesion-age); 0.5,1 is FLAIR a "
                             "few days after the stroke")
    parser.add_argument("--bias-correction", choices=("none", "n4"), default="none",
                        help="prepare's MRI bias-field correction")
    parser.add_argument("--lr-schedule", default="constant", help="TrainConfig.lr_schedule")
    parser.add_argument("--no-augment", action="store_true", help="augmentation off")
    parser.add_argument("--batch-dice", action="store_true", help="ce_dice with the Dice over the whole batch")
    parser.add_argument("--tag", default="", help="prefix of the run folders (to keep runs of several settings)")
    parser.add_argument("--work", type=Path, help="keep the work folder here (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="lesionseg-bench-quality-"))
    results = {}
    try:
        data = work / "data"
        lesion_age = tuple(float(v) for v in args.lesion_age.split(","))
        if not data.exists():
            write_cohort(data, args.cases + args.extra_cases, modalities=("flair",), seed=100, lesion_age=lesion_age,
                         workers=args.workers)
        cases = discover(data)[:args.cases + args.extra_cases]
        first_held_out = args.cases - args.held_out
        held_out = cases[first_held_out:args.cases]
        training = cases[:first_held_out] + cases[args.cases:]
        extra = f"-extra{args.extra_cases}" if args.extra_cases else ""
        prepared_root = work / f"prepared{args.size}-negatives{args.negatives:g}-{args.bias_correction}{extra}"
        if not (prepared_root / "prepare.json").exists():
            prepare_dataset(training, prepared_root, PrepareConfig(size=args.size, negatives=args.negatives,
                                                                   bias_correction=args.bias_correction),
                            workers=args.workers)
        prepared = PreparedDataset(prepared_root)
        n_slices = len(prepared.slices)
        loss = {"loss": "ce_dice", "loss_kwargs": {"batch_dice": True}} if args.batch_dice else {}
        common = dict(**NETWORKS[args.network], **loss, all_data=True, batch_size=12, lr=args.lr, optimiser="adam",
                      lr_schedule=args.lr_schedule, device="cpu",
                      augmentation={"enabled": False} if args.no_augment else {}, metrics=["contrast"], num_threads=args.threads)
        print(f"lesion age {args.lesion_age}; {len(training)} training cases ({n_slices} slices), {len(held_out)} "
              f"held out; budget {args.minutes:g} min per run; {args.network}, {args.threads or 'default'} "
              f"thread(s)", flush=True)
        for curriculum in args.curricula.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                run = work / f"run-{args.tag}{curriculum}-{seed}"
                shutil.rmtree(run, ignore_errors=True)
                began = time.perf_counter()
                summary = train_run(prepared_root, run, TrainConfig(**common, curriculum=curriculum, seed=seed,
                                                                    minutes=args.minutes))
                minutes = (time.perf_counter() - began) / 60
                scores = held_out_dice(summary.bundle, held_out)
                iterations = summary.results[0].iterations
                epochs = summary.results[0].epochs_run
                results[(curriculum, seed)] = {"dice": scores, "iterations": iterations, "epochs": epochs,
                                               "minutes": minutes}
                print(f"{curriculum:>8} seed {seed}: {epochs} epochs, {summary.results[0].iterations} iterations, "
                      f"{minutes:.1f} min; held-out Dice " + " ".join(f"{s:.3f}" for s in scores)
                      + f" (mean {np.mean(scores):.3f})", flush=True)
        print("\ncurriculum   mean Dice (over seeds)   sd     iterations")
        for curriculum in args.curricula.split(","):
            means = [np.mean(v["dice"]) for (c, _), v in results.items() if c == curriculum]
            iterations = [v["iterations"] for (c, _), v in results.items() if c == curriculum]
            spread = statistics.stdev(means) if len(means) > 1 else 0.0
            print(f"{curriculum:>10}   {np.mean(means):.3f}                  {spread:.3f}  {int(np.mean(iterations))}")
        (work / "quality.json").write_text(json.dumps({f"{c}-{s}": v for (c, s), v in results.items()}, indent=2))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
