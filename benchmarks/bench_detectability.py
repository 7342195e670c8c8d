"""Benchmark: which lesions can be seen at all, and which a model finds (CT's small hypodense lesions, FLAIR's misses).

A lesion of ``n`` voxels that changes them by ``c`` (HU on CT) under white Gaussian noise of ``sigma``, is
seen by an ideal observer who knows its shape and place with the signal-to-noise ratio

    d' = c / sigma * sqrt(n)

(the matched filter's output over its standard deviation). An observer who must also search the brain for it
(about 10^5 independent places) needs d' of about 5 to keep false alarms under one per head (the Rose
criterion). This benchmark draws the held-out cases of ``bench_budget.py`` (its seed; the ``ct_heldout``
recipe with ``--modality ct``, ``heldout`` for FLAIR), takes every truth lesion (a 26-connected component of
the stored mask, as lesion-wise F1 counts it), its voxel count ``n``, its contrast ``c`` (the mean change the
lesion makes to its voxels, measured on the case drawn without noise against the same case without lesions:
on CT the recipe's 2-8 HU, diluted where a voxel is partly CSF) and the case's noise ``sigma``, and prints, by
bins of d':

- how many truth lesions fall in the bin and their volumes (and the same by bins of volume);
- the fraction each given bundle finds (at least one predicted voxel on it, the lesion-wise F1 rule) and its
  highest probability there (median over the bin; the predictor's probability map, the largest of its readings,
  so a lesion can peak above the threshold and still be dropped when the readings' mean does not confirm it);
- the same by bins of the lesion's relative change, fragments apart (its mean change over the median of the
  lesion-free parenchyma: grey and white matter and the deep nuclei): on FLAIR, where noise is low and d' is
  large for almost every lesion, what separates a lesion from the case's white-matter hyperintensity look-alikes
  (+10-40 % over their tissue) is its brightness, not its d';
- the fragments: truth lesions under the 10 mm3 that post-processing keeps of a predicted lesion
  (``DEFAULT_MIN_LESION_MM3``), found only when a larger predicted lesion reaches them;
- the lesions of d' >= 8 by the tissue they replaced, and how many each bundle finds;
- each bundle's false lesions (predicted 26-connected components that touch no truth voxel) by what they lie
  on: one of the case's look-alikes that are not in the lesion mask (``distractors``: white-matter
  hyperintensities, an old infarct's cavity or gliotic rim; the generator's own label image) or, when they touch
  none, the tissue under most of their voxels;
- (FLAIR: with Rician noise, d' is the Gaussian approximation, close at these signal levels);
- the mean per-case Dice an observer reaches that segments exactly every lesion of d' at least X and nothing
  else (the truth masks alone; an upper bound for any method with that sensitivity), and the same for one that
  never finds a lesion of the cortex.

d' counts noise only: a lesion of the cortex (3 mm of grey matter in a 5 mm slice, between CSF and white
matter) also sits in the clutter of the ribbon's partial volumes, whose brightness varies by more than the
lesion's change, so its d' overstates how plain it is.

Run: ``.venv/bin/python benchmarks/bench_detectability.py --modality ct --cases 20 --bundle starter=starter
--bundle ft=RUN/model.lsb``; on a training cohort instead of the held-out one, e.g. ``--recipe ct_starter
--seed 20262206`` (the CT starter's first cohort).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lesionseg.infer import Predictor
from lesionseg.infer.postprocess import DEFAULT_MIN_LESION_MM3
from lesionseg.metrics import dice
from lesionseg.metrics.lesionwise import label_lesions
from lesionseg.starter import starter_bundle_path
from lesionseg.synth import make_case
from lesionseg.synth.phantom import TISSUE_LABELS
from lesionseg.synth.variety import RECIPES, varied_case_options

HELD_OUT_SEED = 7200  # bench_budget.py's held-out cohort
CORTEX = TISSUE_LABELS[4]
VOLUME_EDGES_ML = (0.0, 0.1, 0.3, 1.0, 10.0, np.inf)
D_PRIME_EDGES = (0.0, 3.0, 5.0, 8.0, 12.0, 20.0, np.inf)
#: bins of the relative change (FLAIR's look-alikes: +0.10 to +0.40 over their tissue)
RELATIVE_EDGES = (0.0, 0.15, 0.25, 0.4, 1.0, np.inf)
#: the parenchyma's tissue labels (cortical grey matter, white matter, deep grey matter)
PARENCHYMA_LABELS = (4, 5, 7)
#: per modality: the bench_budget recipe, and the option that draws the same case with lesions that change nothing
RECIPE = {"ct": "ct_heldout", "flair": "heldout"}
NO_LESION = {"ct": {"ct_lesion_hu": (0.0, 0.0)}, "flair": {"lesion_contrast": (0.0, 0.0)}}


def lesion_change(index: int, options: dict, modality: str,
                  seed: int = HELD_OUT_SEED) -> tuple[np.ndarray, float]:
    """The lesions' own change of the case's image, (z, y, x) in its units: the noiseless case minus the same
    without lesions; and the lesion-free case's parenchyma median (``PARENCHYMA_LABELS``, same units). ``seed``:
    the cohort's.

    Both are drawn with the same seed and options but no noise, the second with every lesion's change 0
    (``NO_LESION``: each option has its own random draws, so the anatomy and lesions stay the same), which
    takes each voxel's partial volume of lesion into account.
    """
    with_lesions = make_case(index, seed, modalities=(modality,), **{**options, "noise": False})
    without = make_case(index, seed, modalities=(modality,),
                        **{**options, "noise": False, **NO_LESION[modality]})
    lesion_free = sitk.GetArrayFromImage(without.channels[modality]).astype(np.float64)
    parenchyma = np.isin(sitk.GetArrayFromImage(without.tissue_labels), PARENCHYMA_LABELS)
    change = sitk.GetArrayFromImage(with_lesions.channels[modality]).astype(np.float64) - lesion_free
    return change, float(np.median(lesion_free[parenchyma]))


def commonest_tissue(tissues: np.ndarray, inside: np.ndarray) -> str:
    """The name of the tissue label (``TISSUE_LABELS``) under most voxels of ``inside``; both ``(z, y, x)``."""
    return TISSUE_LABELS[int(np.argmax(np.bincount(tissues[inside], minlength=len(TISSUE_LABELS))))]


def truth_lesions(case, change: np.ndarray, modality: str, tissues: np.ndarray,
                  voxel_ml: float, parenchyma_median: float) -> tuple[np.ndarray, list[dict]]:
    """The case's truth components (26-connected) with their voxel count, tissue, contrast, relative change, d'
    and whether they are fragments.

    The contrast is the size of the mean of ``change`` (:func:`lesion_change`) over the component: what the
    lesion does to its voxels after partial volume (a lesion of the cortex shares its voxels with CSF); the
    relative change is that size over ``parenchyma_median``. A fragment is under ``DEFAULT_MIN_LESION_MM3``.
    ``tissues``: the case's tissue labels, ``(z, y, x)``; ``voxel_ml``: the volume of one voxel.
    """
    sigma = float(case.parameters["modalities"][modality]["noise_sigma"])
    components, count = label_lesions(sitk.GetArrayFromImage(case.lesion_mask) > 0)
    rows = []
    for label in range(1, count + 1):
        inside = components == label
        voxels = int(inside.sum())
        contrast = float(abs(change[inside].mean()))
        tissue = commonest_tissue(tissues, inside)
        rows.append({"label": label, "voxels": voxels, "ml": voxels * voxel_ml, "contrast": contrast,
                     "tissue": tissue, "sigma": sigma, "d_prime": contrast / sigma * np.sqrt(voxels),
                     "relative": contrast / parenchyma_median,
                     "fragment": voxels * voxel_ml * 1000.0 < DEFAULT_MIN_LESION_MM3})
    return components, rows


#: the look-alike labels of ``SynthCase.distractor_labels`` (lesionseg.synth.distractors), as printed
LOOK_ALIKES = {1: "white-matter hyperintensity look-alike", 2: "old infarct (cavity)", 3: "old infarct (gliotic rim)"}


def false_lesions(predicted: np.ndarray, probability: np.ndarray, truth: np.ndarray, tissues: np.ndarray,
                  look_alikes: np.ndarray, voxel_ml: float) -> list[dict]:
    """The predicted lesions that touch no truth voxel, each with its volume (mL), peak probability and what it
    lies on: the look-alike label it overlaps most (:data:`LOOK_ALIKES`), else the commonest tissue under it.

    Args:
        predicted, probability, truth: ``(z, y, x)`` arrays on the case's grid (0/1, [0, 1], 0/1).
        tissues, look_alikes: the case's tissue labels and look-alike labels (0 where none), same grid.
        voxel_ml: the volume of one voxel.
    """
    components, count = label_lesions(predicted)
    rows = []
    for label in range(1, count + 1):
        inside = components == label
        if truth[inside].any():
            continue
        under = np.bincount(look_alikes[inside], minlength=len(LOOK_ALIKES) + 1)
        if under[1:].any():
            what = LOOK_ALIKES[int(np.argmax(under[1:])) + 1]
        else:
            what = commonest_tissue(tissues, inside)
        rows.append({"ml": int(inside.sum()) * voxel_ml, "peak": float(probability[inside].max()), "on": what})
    return rows


def print_bins(lesions: list[dict], names: list[str], key: str, edges, columns: tuple[str, str, str, str]) -> None:
    """One line per bin of ``lesions[key]`` between consecutive ``edges``: the bin, its lesion count, the median of
    another value, and per reading how many it found and its median peak probability there.

    ``columns``: the bin's heading, the other value's heading, the other value's key and its format.
    """
    bin_heading, other_heading, other_key, other_format = columns
    header = f"  {bin_heading:>10} {'lesions':>8} {other_heading:>10}"
    print(header + "".join(f" {name + ' found':>14} {'peak p':>8}" for name in names))
    for low, high in zip(edges[:-1], edges[1:]):
        chosen = [r for r in lesions if low <= r[key] < high]
        other = np.median([r[other_key] for r in chosen]) if chosen else 0.0
        line = f"  {f'{low:g}-{high:g}':>10} {len(chosen):>8} {other:>10{other_format}}"
        for name in names:
            found = sum(r[f"{name} found"] for r in chosen)
            peak = np.median([r[f"{name} peak"] for r in chosen]) if chosen else 0.0
            line += f" {f'{found}/{len(chosen)}':>14} {peak:>8.3f}"
        print(line)


#: the d' thresholds of the observer's Dice
OBSERVER_THRESHOLDS = (0.0, 3.0, 5.0, 8.0, 12.0)


def observer_dice(cases: list[dict], threshold: float, keep: Callable[[dict], bool] = lambda row: True) -> float:
    """The mean per-case Dice of an observer that segments exactly the lesions of d' >= ``threshold`` that ``keep``
    accepts, and nothing else. ``cases``: ``{"truth": (z, y, x) bool, "components": its labelled lesions,
    "rows": one dict per lesion with "label", "d_prime" and what ``keep`` reads}``."""
    scores = []
    for item in cases:
        labels = [row["label"] for row in item["rows"] if row["d_prime"] >= threshold and keep(row)]
        scores.append(dice(np.isin(item["components"], labels), item["truth"]))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", choices=sorted(RECIPE), default="ct")
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--recipe", choices=RECIPES, help="the cohort's recipe (default: the modality's held-out "
                        "one; e.g. ct_starter with the starter's cohort seed, to see what a bundle learnt on its own "
                        "training heads)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="the cohort's seed (default: "
                        "bench_budget.py's held-out cohort)")
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=PATH|starter[@SIZES]",
                        help="a bundle to score (starter: the shipped starter of the modality), read at its "
                             "default sizes or at SIZES pixels (e.g. @192 or @128+160)")
    parser.add_argument("--sides", default="auto", help="comma-separated sides to read each bundle with: auto, "
                        "truth (the hemisphere of the case's lesions, as a user who knows it would say)")
    args = parser.parse_args()
    bundles = {}
    for item in args.bundle:
        name, _, path = item.partition("=")
        path, _, sizes = path.partition("@")
        bundle = starter_bundle_path(args.modality) if path == "starter" else Path(path)
        bundles[name] = Predictor(bundle, device="cpu",
                                  slice_sizes=[int(size) for size in sizes.split("+")] if sizes else None)
    sides = args.sides.split(",")
    readings = [(f"{name}/{side}" if len(sides) > 1 else name, predictor, side)
                for name, predictor in bundles.items() for side in sides]

    lesions, cases = [], []
    false_found: dict[str, list[dict]] = {name: [] for name, _, _ in readings}
    for index in range(1, args.cases + 1):
        options = varied_case_options(args.seed, index, recipe=args.recipe or RECIPE[args.modality])
        case = make_case(index, args.seed, modalities=(args.modality,), **options)
        tissues = sitk.GetArrayFromImage(case.tissue_labels)
        look_alikes = (np.zeros_like(tissues) if case.distractor_labels is None
                       else sitk.GetArrayFromImage(case.distractor_labels))
        voxel_ml = float(np.prod(case.lesion_mask.GetSpacing())) / 1000.0
        change, parenchyma_median = lesion_change(index, options, args.modality, args.seed)
        components, rows = truth_lesions(case, change, args.modality, tissues, voxel_ml, parenchyma_median)
        truth = components > 0
        lesion_sides = [info.side for info in case.lesions]
        truth_side = max(set(lesion_sides), key=lesion_sides.count) if lesion_sides else "auto"
        for name, predictor, side in readings:
            prediction = predictor.predict({args.modality: case.channels[args.modality]},
                                           side=truth_side if side == "truth" else side, case_id=case.case_id)
            predicted = sitk.GetArrayFromImage(prediction.labelmap) > 0
            probability = sitk.GetArrayFromImage(prediction.probabilities)
            for row in rows:
                inside = components == row["label"]
                row[f"{name} found"] = bool(predicted[inside].any())
                row[f"{name} peak"] = float(probability[inside].max())
            false_found[name] += false_lesions(predicted, probability, truth, tissues, look_alikes, voxel_ml)
        lesions += rows
        cases.append({"truth": truth, "components": components, "rows": rows})
        print(f"{case.case_id}: {len(rows)} lesions, noise sigma {rows[0]['sigma'] if rows else 0:.1f}, "
              f"d' " + " ".join(f"{r['d_prime']:.1f}" for r in rows), flush=True)

    print(f"\n{len(lesions)} truth lesions in {len(cases)} cases; by the ideal observer's d' (contrast / sigma x "
          "sqrt(voxels)):")
    names = [name for name, _, _ in readings]
    print_bins(lesions, names, "d_prime", D_PRIME_EDGES, ("d-prime", "median mL", "ml", ".2f"))
    print("\nby volume (mL):")
    print_bins(lesions, names, "ml", VOLUME_EDGES_ML, ("mL", "median d", "d_prime", ".1f"))

    whole = [r for r in lesions if not r["fragment"]]
    print(f"\nby relative change (over the lesion-free parenchyma's median), the {len(whole)} lesions of at least "
          f"{DEFAULT_MIN_LESION_MM3:g} mm3:")
    print_bins(whole, names, "relative", RELATIVE_EDGES, ("relative", "median mL", "ml", ".2f"))
    fragments = [r for r in lesions if r["fragment"]]
    print(f"fragments (under {DEFAULT_MIN_LESION_MM3:g} mm3): {len(fragments)};"
          + "".join(f" {name} found {sum(r[f'{name} found'] for r in fragments)}" for name in names))

    print("\nlesions of d' >= 8 (plain to an ideal observer) by the tissue they replaced (the commonest):")
    clear = [r for r in lesions if r["d_prime"] >= 8.0]
    for tissue in sorted({r["tissue"] for r in clear}):
        chosen = [r for r in clear if r["tissue"] == tissue]
        line = f"  {tissue:<36} {len(chosen):>3} lesions, median {np.median([r['ml'] for r in chosen]):.2f} mL,"
        line += f" median d' {np.median([r['d_prime'] for r in chosen]):.1f}:"
        line += "".join(f" {name} found {sum(r[f'{name} found'] for r in chosen)}" for name in names)
        print(line)

    print(f"\nfalse lesions (touching no truth voxel) in {len(cases)} cases, by what they lie on:")
    for name in names:
        rows = false_found[name]
        print(f"  {name}: {len(rows)}")
        for what in sorted({r["on"] for r in rows}):
            chosen = [r for r in rows if r["on"] == what]
            print(f"    {what:<40} {len(chosen):>3}, median {np.median([r['ml'] for r in chosen]) * 1000:.0f} mm3, "
                  f"median peak p {np.median([r['peak'] for r in chosen]):.2f}")

    print("\nmean per-case Dice of an observer that segments exactly every lesion of d' >= X and nothing else "
          "(all lesions; those outside the cortex only):")
    for threshold in OBSERVER_THRESHOLDS:
        print(f"  X = {threshold:>4g}: {observer_dice(cases, threshold):.3f}; "
              f"{observer_dice(cases, threshold, lambda r: r['tissue'] != CORTEX):.3f}")


if __name__ == "__main__":
    main()
