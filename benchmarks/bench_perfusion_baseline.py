"""Benchmark: the clinical threshold rule for core and penumbra on synthetic perfusion cases.

A cohort of perfusion cases (:mod:`lesionseg.synth.perfusion`: tissue fate drawn first, Tmax/CBF/CBV/MTT made
from it with overlap and noise) is written to a temporary folder; the threshold rule
(:mod:`lesionseg.infer.perfusion_threshold`: core = CBF < 30 % of the contralateral tissue median, penumbra =
Tmax > 6 s minus core, in brain tissue, components under 10 mm³ removed) segments each case from the written
maps, with the phantom's intracranial mask as the brain mask and its true mid-sagittal plane; the predictions
are then scored by ``lesionseg evaluate``'s own code (:func:`lesionseg.report.evaluate_predictions`), per class.
Printed: per-case Dice of core and penumbra, then the mean, standard deviation, minimum and maximum of each
class's Dice and lesion-wise F1 and the volumes. This is the baseline a network must match on core.

Run: ``.venv/bin/python benchmarks/bench_perfusion_baseline.py [--cases 10] [--seed 0] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lesionseg.infer.perfusion_threshold import threshold_perfusion
from lesionseg.io import read_image, read_mask, write_image
from lesionseg.preprocess.midplane import Midplane
from lesionseg.report import evaluate_predictions
from lesionseg.synth import write_cohort

CLASSES = ("core", "penumbra")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="SimpleITK threads (default 1)")
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        root, predictions = Path(folder) / "cohort", Path(folder) / "threshold"
        files = write_cohort(root, args.cases, modalities=("tmax", "cbf", "cbv", "mtt"), seed=args.seed)
        made = time.perf_counter()
        for case in files:
            maps = {name: read_image(path, pixel_type=sitk.sitkFloat32) for name, path in case.channels.items()}
            truth = json.loads(case.truth.read_text())
            midplane = Midplane(tuple(truth["midplane"]["point_mm"]), tuple(truth["midplane"]["normal"]))
            result = threshold_perfusion(maps["tmax"], maps["cbf"], maps["cbv"], read_mask(case.brain_mask),
                                         midplane)
            write_image(result.labels, predictions / f"{case.case_id}.nii.gz")
        segmented = time.perf_counter()
        evaluation = evaluate_predictions(predictions, root)
        scored = time.perf_counter()
    print(f"{args.cases} synthetic perfusion cases (seed {args.seed}, 192 x 224 x 48 at 1 x 1 x 3 mm), threshold rule "
          f"rCBF < 30 % of the contralateral tissue median (core), Tmax > 6 s minus core (penumbra)")
    print(f"classes from the label table: {evaluation.classes}")
    print(f"{'case':<20} {'core Dice':>9} {'pen. Dice':>9} {'core mL':>8} {'pred':>7} {'pen. mL':>8} {'pred':>7}")
    for row in evaluation.rows:
        print(f"{row['case_id']:<20} {row['core_dice']:9.3f} {row['penumbra_dice']:9.3f} "
              f"{row['core_volume_truth_ml']:8.1f} {row['core_volume_prediction_ml']:7.1f} "
              f"{row['penumbra_volume_truth_ml']:8.1f} {row['penumbra_volume_prediction_ml']:7.1f}")
    for name in CLASSES:
        for metric in ("dice", "lesion_f1", "abs_volume_difference_ml"):
            values = np.array([row[f"{name}_{metric}"] for row in evaluation.rows], float)
            print(f"{name:<9} {metric:<25} mean {values.mean():.3f}  sd {values.std(ddof=1):.3f}  "
                  f"min {values.min():.3f}  max {values.max():.3f}")
    overall = np.array([row["dice"] for row in evaluation.rows], float)
    print(f"hypoperfused region (core + penumbra) Dice mean {overall.mean():.3f}  sd {overall.std(ddof=1):.3f}")
    print(f"time: cohort {made - start:.1f} s, threshold rule {segmented - made:.1f} s, evaluation "
          f"{scored - segmented:.1f} s ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
