"""Benchmark: the same held-out heads at their own in-plane voxels and at 0.45 mm, read with and without
anti-aliasing (lesionseg.preprocess.antialias).

``bench_budget.py``'s held-out cases (the ``heldout`` recipe, 0.8-1.2 mm in-plane) are drawn again with the same
seed and 0.45 mm in-plane voxels (a 512-matrix FLAIR; same slices, lesions and contrasts), and each bundle
reads the first ``--cases`` cases of both cohorts: as it was trained (``asis``), or with anti-aliasing forced
``on`` or ``off``. Printed per row: mean per-case Dice and lesion F1.

Run: ``.venv/bin/python benchmarks/bench_antialias.py --work W --held-out W/heldout --bundle plain=RUN/model.lsb=asis
--bundle plain-aa=RUN/model.lsb=on --bundle trained-aa=RUN2/model.lsb=asis``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from bench_budget import HELD_OUT_SEED

from lesionseg.data import discover
from lesionseg.infer import Predictor
from lesionseg.metrics import lesionwise_counts
from lesionseg.synth import write_cohort
from lesionseg.synth.variety import varied_case_options


def write_fine_cohort(root: Path, count: int, pixel_mm: float) -> None:
    """The held-out recipe's first ``count`` cases with ``pixel_mm`` in-plane voxels, the field of view kept."""
    if (root / "dataset_description.json").exists():
        return

    def options(index: int) -> dict:
        values = varied_case_options(HELD_OUT_SEED, index, recipe="heldout")
        (sx, sy, sz), (nx, ny, nz) = values["spacing_mm"], values["size_xyz"]
        values["spacing_mm"] = (pixel_mm, pixel_mm, sz)
        values["size_xyz"] = (math.ceil(nx * sx / pixel_mm), math.ceil(ny * sy / pixel_mm), nz)
        return values

    write_cohort(root, count, modalities=("flair",), seed=HELD_OUT_SEED, workers=1, case_options_fn=options)


def score(predictor: Predictor, cases: list) -> tuple[float, float]:
    """Mean per-case Dice and lesion-wise F1 of ``predictor`` on ``cases``."""
    dice, f1 = [], []
    for case in cases:
        prediction = predictor.predict({"flair": case.channels["flair"]}, side="auto", case_id=case.case_id)
        truth = sitk.GetArrayFromImage(case.read_mask()) > 0
        mask = sitk.GetArrayFromImage(prediction.labelmap) > 0
        dice.append(2 * (mask & truth).sum() / max(mask.sum() + truth.sum(), 1))
        f1.append(lesionwise_counts(mask, truth).f1)
    return float(np.mean(dice)), float(np.mean(f1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder (the fine cohort is kept there)")
    parser.add_argument("--held-out", type=Path, required=True, help="bench_budget.py's held-out cohort")
    parser.add_argument("--bundle", action="append", required=True, metavar="NAME=PATH=asis|on|off")
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--pixel", type=float, default=0.45, help="in-plane voxel of the fine cohort (mm)")
    parser.add_argument("--slice-sizes", help="read every bundle at these sizes (e.g. 128,160; default: its own)")
    args = parser.parse_args()
    fine = args.work / f"heldout-{args.pixel:g}mm"
    write_fine_cohort(fine, args.cases, args.pixel)
    cohorts = {"own voxels": discover(args.held_out)[:args.cases], f"{args.pixel:g} mm": discover(fine)[:args.cases]}
    for spec in args.bundle:
        name, path, mode = spec.split("=")
        sizes = [int(size) for size in args.slice_sizes.split(",")] if args.slice_sizes else None
        predictor = Predictor(path, device="cpu", slice_sizes=sizes)
        if mode != "asis":
            predictor.config = dataclasses.replace(predictor.config, antialias=mode == "on")
        for cohort, cases in cohorts.items():
            dice, f1 = score(predictor, cases)
            print(f"{name:>12s} anti-aliasing {'on ' if predictor.config.antialias else 'off'} ({mode:4s}) "
                  f"{cohort:>10s}: Dice {dice:.3f}, lesion F1 {f1:.3f} ({len(cases)} cases)", flush=True)


if __name__ == "__main__":
    main()
