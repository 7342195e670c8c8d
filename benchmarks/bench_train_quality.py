"""Benchmark: does a CPU training of at most ~10 minutes reach a per-case Dice of 0.7 on held-out synthetic
FLAIR cases, with and without the curriculum?

Synthesises a FLAIR cohort, prepares it (S = 128 by default), trains on all cases but the held-out ones
with a time budget per run (epochs are chosen from a short timing run so that the run fits), segments the
held-out cases with the predictor on their native grid, and prints the per-case Dice (mean and spread over
seeds) and the iterations each run used.

Run: ``.venv/bin/python benchmarks/bench_train_quality.py [--curricula vanilla,none] [--seeds 0,1,2]
[--minutes 10] [--cases 20] [--held-out 4] [--size 128]``.

``--min-lesion-age 0.6`` (with e.g. ``--cases 48``) is a diagnostic: it keeps only the phantom's cases whose
lesions are clearly brighter than tissue (read from the phantom's own metadata, which the product never
reads), to separate what the trainer learns from what the subtle half of the cohort hides.
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


def lesion_age(data: Path, case_id: str) -> float:
    """The phantom's lesion age of a case (0 hyperacute, faint on FLAIR; 1 late, bright), from its metadata."""
    path = next((data / "derivatives" / "lesionseg-synth" / case_id).rglob("*_synth.json"))
    return float(json.loads(path.read_text(encoding="utf-8"))["parameters"]["lesion_age"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curricula", default="vanilla,none")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per run")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--network", choices=sorted(NETWORKS), default="monai_unet",
                        help="monai_unet (MONAI UNet, widths 16-256: fast on a CPU) or unet2d (the paper's, 16-256)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--negatives", type=float, default=1.0,
                        help="fraction of lesion-free brain slices kept for training (default all: the model must "
                             "learn to say 'nothing here' on every slice it will see)")
    parser.add_argument("--min-lesion-age", type=float, default=0.0,
                        help="keep only phantom cases whose lesion age is at least this (0..1; FLAIR contrast grows "
                             "with age: 0.6 keeps lesions about +30 %% brighter and more). A diagnostic that reads "
                             "the phantom's metadata: it shows what the trainer does when the lesions are visible")
    parser.add_argument("--work", type=Path, help="keep the work folder here (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="lesionseg-bench-quality-"))
    results = {}
    try:
        data = work / "data"
        if not data.exists():
            write_cohort(data, args.cases, modalities=("flair",), seed=100)
        cases = discover(data)
        if args.min_lesion_age > 0:
            cases = [case for case in cases if lesion_age(data, case.case_id) >= args.min_lesion_age]
            print(f"{len(cases)} cases with lesion age >= {args.min_lesion_age:g} (phantom metadata)")
        held_out, training = cases[-args.held_out:], cases[:-args.held_out]
        prepared_root = work / (f"prepared{args.size}-negatives{args.negatives:g}"
                                + (f"-age{args.min_lesion_age:g}" if args.min_lesion_age > 0 else ""))
        if not (prepared_root / "prepare.json").exists():
            prepare_dataset(training, prepared_root, PrepareConfig(size=args.size, negatives=args.negatives))
        prepared = PreparedDataset(prepared_root)
        print(f"{len(training)} training cases ({len(prepared.slices)} slices), {len(held_out)} held out; "
              f"budget {args.minutes:g} min per run; {args.network}, {args.threads or 'default'} thread(s)")
        for curriculum in args.curricula.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                base = dict(**NETWORKS[args.network], all_data=True, batch_size=12, lr=args.lr, optimiser="adam",
                            device="cpu", curriculum=curriculum, metrics=["contrast"], seed=seed,
                            num_threads=args.threads)
                probe = work / f"probe-{curriculum}-{seed}"
                began = time.perf_counter()
                train_run(prepared_root, probe, TrainConfig(**base, epochs=2))
                per_epoch = (time.perf_counter() - began) / 2
                shutil.rmtree(probe)
                epochs = max(4, int(args.minutes * 60 / per_epoch))
                run = work / f"run-{curriculum}-{seed}"
                began = time.perf_counter()
                summary = train_run(prepared_root, run, TrainConfig(**base, epochs=epochs))
                minutes = (time.perf_counter() - began) / 60
                scores = held_out_dice(summary.bundle, held_out)
                results[(curriculum, seed)] = {"dice": scores, "iterations": summary.results[0].iterations,
                                               "epochs": epochs, "minutes": minutes}
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
