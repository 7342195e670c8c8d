"""Benchmark: the Gaussian naive Bayes baseline (``train --model gnb``) with and without the mirrored difference.

Writes a synthetic FLAIR cohort of the ``heldout`` recipe (:mod:`lesionseg.synth.variety`: 3-5 mm slices,
oblique storage and head tilt in half of the cases, territorial infarcts, look-alikes), prepares it twice
with the cpu preset's preparation (128 x 128 slices framed on the brain, every lesion-free slice, one
neighbour on each side), once with ``--mirror-difference``; fits the classifier on the first ``--train``
cases (``--all-data``: one model) and segments the next ``--test`` cases with the predictor on their native
grid (the path of ``lesionseg segment``: preprocessing, the classifier, threshold, brain mask, smallest
lesion), and prints per-case Dice and lesion-wise F1 (:func:`lesionseg.metrics.evaluate_case`), their mean
and standard deviation, and the fit time (the whole ``train_gnb`` call: features, fit, threshold, bundle).

Run: ``.venv/bin/python benchmarks/bench_gnb.py [--train 10] [--test 10] [--seed 7] [--threads 1] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=10, help="training cases (default 10)")
    parser.add_argument("--test", type=int, default=10, help="held-out cases (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="cohort seed (default 7)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and SimpleITK (default 1)")
    parser.add_argument("--out", type=Path, help="work folder (kept; default: a temporary one, removed)")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import SimpleITK as sitk
    import torch

    from lesionseg.data import discover
    from lesionseg.infer import Predictor
    from lesionseg.metrics import evaluate_case
    from lesionseg.preprocess import PrepareConfig, prepare_dataset
    from lesionseg.synth import write_cohort
    from lesionseg.synth.variety import varied_case_options
    from lesionseg.train import TrainConfig
    from lesionseg.train.gnb import train_gnb
    from lesionseg.train.presets import get_preset

    torch.set_num_threads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    work = args.out or Path(tempfile.mkdtemp(prefix="bench_gnb_"))
    total = args.train + args.test
    began = time.perf_counter()
    if not ((work / "data").is_dir() and len(discover(work / "data")) == total):  # a kept --out is reused
        write_cohort(work / "data", total, modalities=("flair",), seed=args.seed,
                     case_options_fn=lambda i: varied_case_options(args.seed, i, "heldout"))
    cases = discover(work / "data")
    training, testing = cases[:args.train], cases[args.train:total]
    print(f"cohort: {total} heldout-recipe FLAIR cases (seed {args.seed}) in {time.perf_counter() - began:.0f} s; "
          f"{args.threads} thread(s)")
    settings = get_preset("cpu").prepare_values()
    results = {}
    for variant, mirror in (("intensities + local means", False), ("+ mirrored difference", True)):
        prepared = work / ("prepared_mirror" if mirror else "prepared")
        began = time.perf_counter()
        prepare_dataset(training, prepared, PrepareConfig(**settings, mirror_difference=mirror))
        prepare_s = time.perf_counter() - began
        run = work / ("run_mirror" if mirror else "run")
        began = time.perf_counter()
        summary = train_gnb(prepared, run, TrainConfig(network="gnb", all_data=True, curriculum="none",
                                                       context_slices=0))
        fit_s = time.perf_counter() - began
        predictor = Predictor(summary.bundle, device="cpu")
        rows = []
        began = time.perf_counter()
        for case in testing:
            prediction = predictor.predict(dict(case.channels), case_id=case.case_id)
            truth_image = case.read_mask()
            truth = sitk.GetArrayFromImage(truth_image) > 0
            metrics = evaluate_case(sitk.GetArrayFromImage(prediction.labelmap) > 0, truth,
                                    truth_image.GetSpacing()[::-1])
            rows.append((case.case_id, float(truth.sum() * np.prod(truth_image.GetSpacing()) / 1000.0),
                         metrics.dice, metrics.lesionwise.f1))
        segment_s = time.perf_counter() - began
        features = summary.results[0].state_dict["means"].shape[1]
        threshold = predictor.threshold
        results[variant] = rows
        print(f"\n{variant}: {features} features; prepare {prepare_s:.0f} s ({args.train} cases), "
              f"fit {fit_s:.1f} s, threshold {threshold:g}, segment {segment_s / len(testing):.1f} s per case")
        print(f"  {'case':<28} {'truth mL':>8} {'Dice':>6} {'lesion F1':>9}")
        for case_id, volume, dice, f1 in rows:
            print(f"  {case_id:<28} {volume:8.2f} {dice:6.3f} {f1:9.3f}")
        dices = [row[2] for row in rows]
        f1s = [row[3] for row in rows]
        print(f"  mean Dice {statistics.mean(dices):.3f} (sd {statistics.stdev(dices):.3f}), "
              f"mean lesion F1 {statistics.mean(f1s):.3f} (sd {statistics.stdev(f1s):.3f})")
    print("\nsummary (held-out cases, mean ± sd):")
    for variant, rows in results.items():
        dices, f1s = [row[2] for row in rows], [row[3] for row in rows]
        print(f"  {variant:<28} Dice {statistics.mean(dices):.3f} ± {statistics.stdev(dices):.3f}   "
              f"lesion F1 {statistics.mean(f1s):.3f} ± {statistics.stdev(f1s):.3f}")
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
