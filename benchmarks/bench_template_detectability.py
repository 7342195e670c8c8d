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
- whether each ``--bundle`` touches it with a predicted lesion, and its peak probability there.

Then the mean per-case Dice of an observer that segments exactly every lesion of d' >= X and nothing else (of
all lesions, and of those outside grey matter). The tables and the observer are ``bench_detectability.py``'s
(``print_bins``, ``observer_dice``).

Run: ``python benchmarks/bench_template_detectability.py --cases 20 --bundle starter=starter --bundle ft=RUN/model.lsb``
(about 2 minutes per case on two cores: each head is drawn twice without noise).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import SimpleITK as sitk

import template_cohort as cohort
from bench_detectability import D_PRIME_EDGES, OBSERVER_THRESHOLDS, VOLUME_EDGES_ML, observer_dice, print_bins
from bench_template_anatomy import HELD_OUT_SEED
from lesionseg.metrics.lesionwise import label_lesions


def lesion_table(template: cohort.Template, seed: int, index: int) -> tuple[dict, sitk.Image]:
    """Held-out head ``index`` (the same draws as :func:`template_cohort.make_template_ct_case`): its truth
    ``{"truth": (z, y, x) bool, "components": its 26-connected lesions labelled, "rows": one dict per lesion with
    "label", "voxels", "ml", "contrast_hu", "d_prime" and "tissue"}`` and its CT image (HU)."""
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
    labels, count = label_lesions(truth, 26)
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
    return {"truth": truth, "components": labels, "rows": lesions}, image


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
    rows, cases = [], []
    for index in range(args.cases):
        case, image = lesion_table(template, HELD_OUT_SEED, index)
        for name, predictor in predictors.items():
            prediction = predictor.predict({"ct": image}, case_id=f"case{index}")
            predicted = sitk.GetArrayFromImage(prediction.labelmap) > 0
            probability = sitk.GetArrayFromImage(prediction.probabilities)
            for lesion in case["rows"]:
                inside = case["components"] == lesion["label"]
                lesion[f"{name} found"] = bool(predicted[inside].any())
                lesion[f"{name} peak"] = float(probability[inside].max())
        rows += case["rows"]
        cases.append(case)
        print(f"case {index + 1:02d}: " + "; ".join(
            f"{lesion['ml']:.2f} mL {lesion['tissue']} {lesion['contrast_hu']:.1f} HU d' {lesion['d_prime']:.1f}"
            + "".join(f" {name}={'found' if lesion[f'{name} found'] else '-'}" for name in predictors)
            for lesion in case["rows"]), flush=True)
    names = list(predictors)
    print(f"{len(rows)} truth lesions in {args.cases} heads; median {np.median([r['ml'] for r in rows]):.2f} mL, "
          f"measured contrast median {np.median([r['contrast_hu'] for r in rows]):.1f} HU")
    print_bins(rows, names, "d_prime", D_PRIME_EDGES, ("d-prime", "median mL", "ml", ".2f"))
    print("by volume (mL):")
    print_bins(rows, names, "ml", VOLUME_EDGES_ML, ("mL", "median d", "d_prime", ".1f"))
    for tissue in ("grey", "white"):
        chosen = [r for r in rows if r["tissue"] == tissue and r["d_prime"] >= 5]
        print(f"lesions of d' >= 5 in {tissue} matter: {len(chosen)}"
              + "".join(f", {name} found {sum(r[f'{name} found'] for r in chosen)}" for name in names))
    print("mean per-case Dice of an observer that segments exactly every lesion of d' >= X and nothing else "
          "(all lesions; those outside grey matter only):")
    for threshold in OBSERVER_THRESHOLDS:
        print(f"  X = {threshold:>4g}: {observer_dice(cases, threshold):.3f}; "
              f"{observer_dice(cases, threshold, lambda r: r['tissue'] != 'grey'):.3f}")

if __name__ == "__main__":
    main()
