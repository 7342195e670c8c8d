"""Benchmark: a network trained on core and penumbra against the clinical threshold rule, on the same cases.

Both arms read the same held-out synthetic perfusion cases (:mod:`lesionseg.synth.perfusion`: tissue fate
drawn first, then Tmax/CBF/CBV/MTT made from it with overlap and noise, so that the rule is an imperfect
baseline) through the product's own commands, with nothing from the phantom's truth:

- ``network``: ``lesionseg prepare`` on the training cases (their masks' label table makes it prepare two
  lesion classes), ``lesionseg train --minutes M`` with the machine's defaults (the FLAIR starter does not
  fit a two-class perfusion model, so it trains from scratch), ``lesionseg segment`` on the held-out cases;
- ``threshold``: ``lesionseg threshold-perfusion`` (core = rCBF < 30 % of the other hemisphere's tissue
  median, penumbra = Tmax > 6 s minus core), brain mask and mid-sagittal plane from the maps.

Both are scored by ``lesionseg evaluate``'s code (:func:`lesionseg.report.evaluate_predictions`), per class.
Printed: per case the core and penumbra Dice of both, then each class's mean, standard deviation, lesion-wise
F1 and absolute volume difference. The held-out cohort (seed 0) is the one ``bench_perfusion_baseline.py``
scores with the phantom's own brain mask and plane.

Run: ``.venv/bin/python benchmarks/bench_perfusion_network.py --work W --minutes 10 [--train-cases 20]
[--held-out 10] [--seed 0] [--log FILE]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_budget import lesion

from lesionseg.report import evaluate_predictions
from lesionseg.synth import write_cohort

MAPS = ("tmax", "cbf", "cbv", "mtt")
TRAIN_SEED, HELD_OUT_SEED = 9100, 0
PARTIAL_OK = (0, 3)  # exit 3: some cases failed, the others were done (and are scored)


def cohort(root: Path, count: int, seed: int) -> None:
    if not (root / "dataset_description.json").exists():
        write_cohort(root, count, modalities=MAPS, seed=seed, workers=2)


def per_class(evaluation, name: str) -> dict[str, list[float]]:
    """Per-case values of one class's metrics (``<class>_<metric>`` columns), by metric name, in case order."""
    rows = sorted(evaluation.rows, key=lambda row: row["case_id"])
    return {key: [float(row[f"{name}_{key}"]) for row in rows]
            for key in ("dice", "lesion_f1", "abs_volume_difference_ml")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder (cohorts and runs are kept)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--train-cases", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=10)
    parser.add_argument("--seed", default="0", help="training seed")
    parser.add_argument("--train-options", default="", help="extra lesionseg train options (one string)")
    parser.add_argument("--log", type=Path, help="append the result as a JSON line")
    args = parser.parse_args()
    work = args.work
    cohort(work / "train", args.train_cases, TRAIN_SEED)
    cohort(work / "heldout", args.held_out, HELD_OUT_SEED)
    if not (work / "prepared" / "prepare.json").exists():
        lesion(["prepare", str(work / "train"), str(work / "prepared"), "--workers", "2", "--progress", "none"],
               PARTIAL_OK)
    run = work / f"run-{args.seed}"
    train_s = lesion(["train", str(work / "prepared"), str(run), "--minutes", f"{args.minutes:g}", "--seed", args.seed,
                      "--progress", "none", *args.train_options.split()], PARTIAL_OK)
    segment_s = lesion(["segment", str(run / "model.lsb"), str(work / "heldout"), "-o",
                        str(work / f"network-{args.seed}"), "--progress", "none"], PARTIAL_OK)
    if not (work / "threshold" / "summary.csv").exists():
        lesion(["threshold-perfusion", str(work / "heldout"), "-o", str(work / "threshold")], PARTIAL_OK)
    arms = {"network": evaluate_predictions(work / f"network-{args.seed}", work / "heldout"),
            "threshold": evaluate_predictions(work / "threshold", work / "heldout")}
    print(f"{args.train_cases} training and {args.held_out} held-out synthetic perfusion cases; network trained "
          f"{train_s / 60:.1f} min (budget {args.minutes:g}, seed {args.seed}), held-out cases segmented in "
          f"{segment_s:.0f} s")
    values = {arm: {name: per_class(evaluation, name) for name in ("core", "penumbra")}
              for arm, evaluation in arms.items()}
    cases = sorted(row["case_id"] for row in arms["network"].rows)
    print(f"{'case':<20} {'core net':>9} {'core rule':>9} {'pen. net':>9} {'pen. rule':>9}")
    for index, case_id in enumerate(cases):
        print(f"{case_id:<20} {values['network']['core']['dice'][index]:9.3f} "
              f"{values['threshold']['core']['dice'][index]:9.3f} {values['network']['penumbra']['dice'][index]:9.3f} "
              f"{values['threshold']['penumbra']['dice'][index]:9.3f}")
    summary = {}
    for arm in arms:
        for name in ("core", "penumbra"):
            for key, numbers in values[arm][name].items():
                summary[f"{arm} {name} {key}"] = (float(np.mean(numbers)), float(np.std(numbers)))
                print(f"{arm:<9} {name:<8} {key:<25} mean {np.mean(numbers):.3f}  sd {np.std(numbers):.3f}")
    if args.log:
        with args.log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"minutes_budget": args.minutes, "minutes_wall": train_s / 60, "seed": args.seed,
                                     "train_options": args.train_options, "summary": summary,
                                     "cases": {arm: values[arm] for arm in values}}) + "\n")


if __name__ == "__main__":
    main()
