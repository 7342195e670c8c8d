"""Benchmark: which lesions of the template CT heads could be seen at all, and which the CT models find.

The CT counterpart of ``bench_detectability.py`` on real brain anatomy (``template_cohort.py``, the MNI152
template with a skull; the held-out heads of ``bench_template_anatomy.py --modality ct``, seed 8200). Per truth
lesion (26-connected component of the stored mask):

- its measured contrast: the noiseless head without lesions minus the noiseless head with them, averaged over
  the lesion's voxels (HU; the drawn 2-8 HU diluted by partial volume in 5 mm slices);
- the ideal observer's d' = contrast / noise sigma x sqrt(voxels), divided by sqrt(4 pi s^2) for the noise's
  correlation (white noise filtered by a Gaussian of s pixels, then scaled to sigma: a mean over many voxels
  has 4 pi s^2 times the variance white noise of that sigma would give it); searching a head needs about 5;
- the tissue it lies in (the larger of the template's grey and white matter maps over it);
- whether each ``--bundle`` touches it with a predicted lesion.

Then the mean per-case Dice of an observer that segments exactly every lesion of d' >= X and nothing else.

Run: ``python benchmarks/bench_template_detectability.py --cases 20 --bundle starter=starter --bundle ft=RUN/model.lsb``
(about 2 minutes per case on two cores: each head is drawn twice without noise).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

import template_cohort as cohort
from bench_template_anatomy import HELD_OUT_SEED

D_PRIME_BINS = ((0, 3), (3, 5), (5, 8), (8, 12), (12, 20), (20, np.inf))


def lesion_table(template: cohort.Template, seed: int, index: int) -> tuple[list[dict], object, object]:
    """The truth lesions of held-out head ``index`` with their measured contrast, d' and tissue; and the head's
    CT and mask images (the same draws as :func:`template_cohort.make_template_ct_case`)."""
    image, mask, parameters = cohort.make_template_ct_case(template, seed, index)
    # the case's noiseless signal with and without its lesions, through the generator's own steps
    rng = np.random.default_rng([seed, index, 7])
    fraction, depth = cohort._lesions(rng, template, cohort.CT_LESION_HU, large_probability=0.0)
    twin = copy.deepcopy(rng)  # the head without lesions draws the same skull, tissue levels and beam hardening
    hu, reference, padded_fraction = cohort._ct_head(rng, template, fraction, depth, cohort.CT_LESION_HU)
    hu_clear, _, _ = cohort._ct_head(twin, template, np.zeros_like(fraction), depth, cohort.CT_LESION_HU)
    fine, subdivisions, _ = cohort._acquisition_grid(rng, template, bool(rng.random() < 1 / 3), in_plane_range=(0.7, 1.0),
                                                     thickness_range=(5.0, 5.0), extent_mm=(240.0, 260.0, 190.0))
    warp = cohort._warp(rng, template, 0.0, np.random.default_rng([seed, index, 8]))

    def acquired(array: np.ndarray, outside: float = 0.0) -> np.ndarray:
        return cohort._acquire(array, reference, fine, warp, subdivisions, outside=outside)

    contrast_map = acquired(hu_clear, -1000.0) - acquired(hu, -1000.0)
    grey = acquired(np.pad(template.grey, cohort._CT_PAD_MM))
    white = acquired(np.pad(template.white, cohort._CT_PAD_MM))
    truth = acquired(padded_fraction) >= 0.5
    if not np.array_equal(truth, sitk.GetArrayFromImage(mask) > 0):  # the steps above must be the generator's
        raise RuntimeError(f"head {index}: the replayed draws no longer give the generator's mask; "
                           "bring lesion_table in line with template_cohort.make_template_ct_case.")
    labels, count = ndimage.label(truth, np.ones((3, 3, 3)))
    sigma = parameters["noise_hu"]
    correlation = np.sqrt(4 * np.pi * parameters["noise_correlation_px"] ** 2)
    voxel_ml = float(np.prod(mask.GetSpacing())) / 1000.0
    lesions = []
    for label in range(1, count + 1):
        inside = labels == label
        contrast = float(contrast_map[inside].mean())
        lesions.append({"label": label, "voxels": int(inside.sum()), "ml": float(inside.sum() * voxel_ml),
                        "contrast_hu": contrast, "d_prime": contrast / sigma * np.sqrt(inside.sum()) / correlation,
                        "tissue": "grey" if grey[inside].mean() > white[inside].mean() else "white"})
    return lesions, image, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=PATH",
                        help="a bundle to score (PATH 'starter': the shipped CT starter)")
    args = parser.parse_args()
    from lesionseg.infer.predictor import Predictor
    from lesionseg.starter import starter_bundle_path

    template = cohort.load_template()
    predictors = {name: Predictor(starter_bundle_path("ct") if path == "starter" else Path(path), device="cpu")
                  for name, _, path in (entry.partition("=") for entry in args.bundle)}
    rows, per_case = [], []
    for index in range(args.cases):
        lesions, image, mask = lesion_table(template, HELD_OUT_SEED, index)
        truth = sitk.GetArrayFromImage(mask) > 0
        labels, _ = ndimage.label(truth, np.ones((3, 3, 3)))
        for name, predictor in predictors.items():
            predicted = sitk.GetArrayFromImage(predictor.predict({"ct": image}, case_id=f"case{index}").labelmap) > 0
            for lesion in lesions:
                lesion[name] = bool(predicted[labels == lesion["label"]].any())
        rows += lesions
        per_case.append(lesions)
        print(f"case {index + 1:02d}: " + "; ".join(
            f"{lesion['ml']:.2f} mL {lesion['tissue']} {lesion['contrast_hu']:.1f} HU d' {lesion['d_prime']:.1f}"
            + "".join(f" {name}={'found' if lesion[name] else '-'}" for name in predictors) for lesion in lesions),
            flush=True)
    names = list(predictors)
    print(f"{len(rows)} truth lesions in {args.cases} heads; median {np.median([r['ml'] for r in rows]):.2f} mL, "
          f"measured contrast median {np.median([r['contrast_hu'] for r in rows]):.1f} HU")
    print(f"{'d-prime':>8} {'lesions':>8} {'grey':>5}" + "".join(f" {name + ' found':>14}" for name in names))
    for low, high in D_PRIME_BINS:
        chosen = [r for r in rows if low <= r["d_prime"] < high]
        print(f"{low:>3}-{'inf' if high == np.inf else high:<4} {len(chosen):>8} "
              f"{sum(r['tissue'] == 'grey' for r in chosen):>5}"
              + "".join(f" {sum(r[name] for r in chosen):>11}/{len(chosen):<2}" for name in names))
    for tissue in ("grey", "white"):
        chosen = [r for r in rows if r["tissue"] == tissue and r["d_prime"] >= 5]
        print(f"lesions of d' >= 5 in {tissue} matter: {len(chosen)}"
              + "".join(f", {name} found {sum(r[name] for r in chosen)}" for name in names))
    print("mean per-case Dice of an observer that segments exactly every lesion of d' >= X and nothing else:")
    for threshold in (0, 3, 5, 8, 12):
        dice = []
        for lesions in per_case:
            total = sum(r["voxels"] for r in lesions)
            kept = sum(r["voxels"] for r in lesions if r["d_prime"] >= threshold)
            dice.append(2 * kept / (kept + total) if total else 1.0)
        print(f"  X = {threshold:>4}: {np.mean(dice):.3f}")


if __name__ == "__main__":
    main()
