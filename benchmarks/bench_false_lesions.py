"""Benchmark: where a model's false lesions come from, and what post-processing would remove them.

Segments the cases of a dataset with a bundle (``side=auto``, the default post-processing) and describes
every predicted lesion (26-connected component): its volume, its peak and mean probability, whether it
touches a true lesion (true positive) or not (false positive), whether it lies in a slice holding true
lesion, in the hemisphere of the case's lesions, and how far it is from the brain mask's edge. Then it
prints, for a grid of post-processing rules (smallest lesion in mm³, least peak probability), the mean
lesion-wise F1 and Dice they would give, so that a rule is chosen on evidence (use a dataset other than
the one the numbers are reported on).

Run: ``.venv/bin/python benchmarks/bench_false_lesions.py --bundle RUN/model.lsb --data DATASET [--cases 20]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.data import discover
from lesionseg.infer import Predictor
from lesionseg.metrics import dice, lesionwise_counts


def components(prediction: np.ndarray, probabilities: np.ndarray, truth: np.ndarray, brain: np.ndarray,
               voxel_mm3: float, spacing_zyx: tuple[float, float, float]) -> list[dict]:
    """One row per predicted lesion: volume, probabilities, truth overlap, slice and edge position."""
    labels, count = ndimage.label(prediction, structure=np.ones((3, 3, 3), bool))
    truth_slices = truth.reshape(truth.shape[0], -1).any(axis=1)
    depth = ndimage.distance_transform_edt(brain, sampling=spacing_zyx)
    rows = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        own = labels[box] == label
        values = probabilities[box][own]
        rows.append({"volume_mm3": float(own.sum() * voxel_mm3), "peak": float(values.max()),
                     "mean": float(values.mean()), "true": bool(truth[box][own].any()),
                     "in_lesion_slice": bool(truth_slices[box[0]].any()),
                     "depth_mm": float(depth[box][own].max())})
    return rows


def apply_rule(prediction: np.ndarray, probabilities: np.ndarray, voxel_mm3: float, min_mm3: float,
               min_peak: float) -> np.ndarray:
    """The prediction without its components smaller than ``min_mm3`` or whose peak is under ``min_peak``."""
    labels, count = ndimage.label(prediction, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return prediction
    sizes = np.bincount(labels.ravel())[1:] * voxel_mm3
    peaks = ndimage.maximum(probabilities, labels, index=np.arange(1, count + 1))
    keep = np.concatenate([[False], (sizes >= min_mm3) & (np.asarray(peaks) >= min_peak)])
    return keep[labels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=20)
    args = parser.parse_args()
    predictor = Predictor(args.bundle, device="cpu", min_lesion_mm3=0.0)
    rows, cases = [], []
    for case in discover(args.data)[:args.cases]:
        result = predictor.predict({"flair": case.channels["flair"]}, side="auto", case_id=case.case_id)
        reference = case.read_mask()
        truth = sitk.GetArrayFromImage(reference) > 0
        prediction = sitk.GetArrayFromImage(result.labelmap) > 0
        probabilities = sitk.GetArrayFromImage(result.probabilities)
        brain = sitk.GetArrayFromImage(result.brain_mask) > 0
        spacing = reference.GetSpacing()[::-1]
        voxel = float(np.prod(spacing))
        found = components(prediction, probabilities, truth, brain, voxel, spacing)
        rows += [{**row, "case": case.case_id} for row in found]
        cases.append((truth, prediction, probabilities, voxel))
        counts = lesionwise_counts(prediction, truth)
        print(f"{case.case_id}: Dice {dice(prediction, truth):.3f}, {counts.tp} found, {counts.fn} missed, "
              f"{counts.fp} false lesions", flush=True)
    false = [row for row in rows if not row["true"]]
    true = [row for row in rows if row["true"]]
    print(f"\n{len(true)} predicted lesions touch a true lesion, {len(false)} do not "
          f"({len(false) / max(len(cases), 1):.1f} per case)")
    for name, group in (("true", true), ("false", false)):
        if not group:
            continue
        volume = np.array([row["volume_mm3"] for row in group])
        peak = np.array([row["peak"] for row in group])
        print(f"  {name:>5}: volume mm³ median {np.median(volume):.0f} (quartiles {np.percentile(volume, 25):.0f}-"
              f"{np.percentile(volume, 75):.0f}); peak probability median {np.median(peak):.2f}; "
              f"{np.mean([row['in_lesion_slice'] for row in group]):.0%} in a slice with true lesion; depth in the "
              f"brain median {np.median([row['depth_mm'] for row in group]):.1f} mm")
    print("\nrule (smallest mm³, least peak): mean lesion F1, mean Dice")
    for min_mm3 in (10.0, 30.0, 60.0):
        for min_peak in (0.5, 0.7, 0.85):
            f1s, dices = [], []
            for truth, prediction, probabilities, voxel in cases:
                kept = apply_rule(prediction, probabilities, voxel, min_mm3, min_peak)
                f1s.append(lesionwise_counts(kept, truth).f1)
                dices.append(dice(kept, truth))
            print(f"  {min_mm3:>4.0f} mm³, peak >= {min_peak:.2f}: F1 {np.mean(f1s):.3f}, Dice {np.mean(dices):.3f}")


if __name__ == "__main__":
    main()
