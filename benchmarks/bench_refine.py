"""Benchmark: what the refinement tools repair, on synthetic cases with damaged masks; fill between slices,
mask transfer and the review queue.

1. Tools (``intensity``, ``grow``): for each case (default grid 192 x 224 x 48 voxels of 1 x 1 x 3 mm),
   the true mask is damaged four ways (:func:`lesionseg.refine.degrade_mask`: eroded and dilated by
   2 voxels in-plane; holes removing and islands adding ``--fraction`` of the lesion's volume) and each
   tool, with its default parameters, refines the damaged mask. Reported per tool and damage: mean Dice
   with the truth before and after, mean and worst change, and how many cases the tool left unchanged
   because the lesion is not distinct on the image (about half of the phantom's cases have faint lesions
   by design).
2. Fill between slices: the largest lesion of each case on a 1 mm slice grid, drawn on every third slice
   (and on its last slice), filled by Slicer's interpolator and by the shape-based fallback; Dice.
3. Transfer: the mask carried from the FLAIR to a CT moved by a known rigid transform (rigid registration,
   ``--affine`` adds the affine stage); mean distance (mm) over the lesion between the recovered and the
   true transform, and the centroid distance.
4. Review queue: the cases copied under new names with masks damaged to different degrees (no synthetic
   metadata), ranked without a model (or with ``--bundle``); Spearman correlation between rank and true Dice.

Run: ``.venv/bin/python benchmarks/bench_refine.py [--cases 10] [--parts tools,fill,transfer,queue]
[--bundle B --lesion-age 0.5,1 --seed 1]`` (the queue's cases are cohort ``seed + 100``: with a bundle trained
by ``bench_train_quality.py`` on cohort 100, use another ``--seed`` so that the model has not seen them).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lesionseg.metrics import dice
from lesionseg.preprocess.brain import extract_brain
from lesionseg.refine import DAMAGE_KINDS, degrade_mask, fill_between_slices, grow_from_seeds, refine_intensity
from lesionseg.synth import make_case

TOOLS = {"intensity": refine_intensity, "grow": grow_from_seeds}


def tools_part(args) -> None:
    results = {(tool, kind): [] for tool in TOOLS for kind in DAMAGE_KINDS}
    seconds = {tool: [] for tool in TOOLS}
    for index in range(1, args.cases + 1):
        case = make_case(index, seed=args.seed)
        image, truth = case.channels["flair"], sitk.GetArrayFromImage(case.lesion_mask)
        brain = extract_brain(image, "mri")
        for kind in DAMAGE_KINDS:
            damaged = degrade_mask(case.lesion_mask, kind, seed=index, brain=brain, fraction=args.fraction)
            before = dice(sitk.GetArrayFromImage(damaged), truth)
            for name, tool in TOOLS.items():
                details: dict = {}
                start = time.perf_counter()
                refined = tool(image, damaged, brain=brain, details=details)
                seconds[name].append(time.perf_counter() - start)
                after = dice(sitk.GetArrayFromImage(refined), truth)
                results[(name, kind)].append((before, after, bool(details.get("changed"))))
    print(f"\n1. tools: {args.cases} cases (seed {args.seed}), damage fraction {args.fraction:g} for holes/islands")
    header = ("tool", "damage", "Dice before", "after", "mean change", "worst", "unchanged")
    print(f"{header[0]:<10} {header[1]:<8} " + " ".join(f"{h:>{w}}" for h, w in zip(header[2:], (11, 7, 12, 7, 10))))
    for (name, kind), rows in results.items():
        values = np.array([(b, a) for b, a, _ in rows])
        change = values[:, 1] - values[:, 0]
        unchanged = sum(1 for *_, changed in rows if not changed)
        print(f"{name:<10} {kind:<8} {values[:, 0].mean():11.3f} {values[:, 1].mean():7.3f} {change.mean():+12.3f} "
              f"{change.min():+7.3f} {unchanged:>6}/{len(rows)}")
    for name, values in seconds.items():
        print(f"{name}: median {statistics.median(values):.2f} s per run")


def fill_part(args) -> None:
    print("\n2. fill between slices: largest lesion, 1 mm slices, drawn every third slice plus its last slice")
    scores = {"slicer": [], "sitk": []}
    for index in range(1, args.cases + 1):
        case = make_case(index, seed=args.seed, size_xyz=(192, 224, 144), spacing_mm=(1.0, 1.0, 1.0), noise=False,
                         bias=False)
        instances = sitk.GetArrayFromImage(case.lesion_instances)
        labels, counts = np.unique(instances[instances > 0], return_counts=True)
        truth = instances == labels[np.argmax(counts)]
        drawn_slices = np.flatnonzero(truth.any(axis=(1, 2)))
        keep = np.unique(np.r_[np.arange(drawn_slices[0], drawn_slices[-1] + 1, 3), drawn_slices[-1]])
        sparse = np.zeros_like(truth)
        sparse[keep] = truth[keep]
        mask = sitk.GetImageFromArray(sparse.astype(np.uint8))
        mask.CopyInformation(case.lesion_mask)
        row = []
        for backend in scores:
            filled = sitk.GetArrayFromImage(fill_between_slices(mask, backend=backend)) != 0
            scores[backend].append(dice(filled, truth))
            row.append(f"{backend} {scores[backend][-1]:.3f}")
        print(f"  case {index}: {len(drawn_slices)} slices, {int(truth.sum())} voxels, "
              f"drawn {dice(sparse, truth):.3f}; " + ", ".join(row))
    for backend, values in scores.items():
        print(f"  {backend}: mean {np.mean(values):.3f}, worst {np.min(values):.3f}")


def transfer_part(args) -> None:
    from lesionseg.preprocess.registration import mean_distance_mm
    from lesionseg.refine import carry_mask

    stages = ("rigid", "affine") if args.affine else ("rigid",)
    print(f"\n3. transfer FLAIR -> CT moved by up to {args.degrees:g} deg / {args.mm:g} mm ({' + '.join(stages)})")
    for index in range(1, min(args.cases, 6) + 1):
        case = make_case(index, seed=args.seed, modalities=("flair", "ct"), misalignment=(args.degrees, args.mm))
        inverse = case.transforms["ct"].GetInverse()
        ct = case.channels["ct"]
        indicator = sitk.Cast(case.lesion_mask, sitk.sitkFloat32)
        truth = sitk.Cast(sitk.Resample(indicator, ct, inverse, sitk.sitkLinear, 0.0, sitk.sitkFloat32) >= 0.5,
                          sitk.sitkUInt8)
        details: dict = {}
        start = time.perf_counter()
        carried = carry_mask(case.lesion_mask, case.channels["flair"], ct, stages=stages, details=details)
        elapsed = time.perf_counter() - start
        spacing = np.array(ct.GetSpacing()[::-1])
        centre = [np.argwhere(sitk.GetArrayFromImage(m) != 0).mean(axis=0) * spacing for m in (carried, truth)]
        print(f"  case {index}: transform error {mean_distance_mm(details['_transform'], inverse, truth):.2f} mm, "
              f"centroid {np.linalg.norm(centre[0] - centre[1]):.2f} mm, Dice "
              f"{dice(sitk.GetArrayFromImage(carried), sitk.GetArrayFromImage(truth)):.3f}, {elapsed:.1f} s")


def shown(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def queue_part(args) -> None:
    from scipy.stats import spearmanr

    from lesionseg.io import write_image
    from lesionseg.refine import review_queue

    damages = [None, ("erode", 1, 0.3), ("dilate", 1, 0.3), ("holes", 2, 0.2), ("islands", 2, 0.3),
               ("dilate", 2, 0.3), ("holes", 2, 0.5), ("islands", 2, 0.8), ("erode", 2, 0.3), ("dilate", 3, 0.3)]
    rng = np.random.default_rng(args.seed)
    truth_dice, damage_of = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "renamed"
        for index in range(1, args.cases + 1):
            case = make_case(index, seed=args.seed + 100, lesion_age=args.lesion_age)
            name = f"sub-anon{rng.integers(10**6):06d}"
            damage = damages[(index - 1) % len(damages)]
            mask = case.lesion_mask
            if damage:
                brain = extract_brain(case.channels["flair"], "mri")
                mask = degrade_mask(mask, damage[0], seed=index, brain=brain, voxels=damage[1], fraction=damage[2])
            write_image(case.channels["flair"], root / name / "ses-0001" / "anat" / f"{name}_ses-0001_FLAIR.nii.gz")
            write_image(mask, root / "derivatives" / name / "ses-0001" / f"{name}_ses-0001_msk.nii.gz")
            damage_of[name] = " ".join(str(part) for part in damage) if damage else "none"
            truth_dice[name] = dice(sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(case.lesion_mask))
        start = time.perf_counter()
        queue = review_queue(root, bundle=args.bundle, tta=True, device="cpu")
        elapsed = time.perf_counter() - start
    rho = spearmanr([e.rank for e in queue], [truth_dice[e.case_id] for e in queue]).statistic
    model = f"with {args.bundle}" if args.bundle else "without a model"
    print(f"\n4. review queue {model}, {len(queue)} renamed cases: Spearman(rank, true Dice) = {rho:.3f} "
          f"({elapsed:.1f} s)")
    names = ("estimated_dice_loss", "intensity_misfit", "model_disagreement", "shape_irregularity", "model_unseen",
             "model_uncertainty", "difficulty")
    print("  rank  true Dice  attention  " + "  ".join(f"{n.split('_')[-1][:8]:>8}" for n in names) + "  damage")
    for entry in queue:
        print(f"  {entry.rank:>4}  {truth_dice[entry.case_id]:9.3f}  {entry.attention:9.3f}  "
              + "  ".join(f"{shown(entry.measures[n]):>8}" for n in names) + f"  {damage_of[entry.case_id]}")
    worst = min(truth_dice.values())
    print(f"  the worst mask (true Dice {worst:.3f}) is at rank "
          f"{next(e.rank for e in queue if truth_dice[e.case_id] == worst)}; true Dice of the first five: "
          + ", ".join(f"{truth_dice[e.case_id]:.3f}" for e in queue[:5]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.5, help="holes/islands damage as a fraction of volume")
    parser.add_argument("--degrees", type=float, default=10.0)
    parser.add_argument("--mm", type=float, default=10.0)
    parser.add_argument("--affine", action="store_true", help="transfer: add the affine stage to the rigid one")
    parser.add_argument("--parts", default="tools,fill,transfer,queue")
    parser.add_argument("--bundle", help="queue: a model bundle for the model measures")
    parser.add_argument("--lesion-age", type=lambda text: tuple(float(v) for v in text.split(",")), default=(0.0, 1.0),
                        help="queue: the cases' lesion-age range (lesionseg synth --lesion-age), e.g. 0.5,1 to match "
                             "a bundle trained on such a cohort")
    args = parser.parse_args()
    parts = {"tools": tools_part, "fill": fill_part, "transfer": transfer_part, "queue": queue_part}
    for name in args.parts.split(","):
        parts[name](args)


if __name__ == "__main__":
    main()
