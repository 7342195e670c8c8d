"""Benchmark: the slice sizes a trained 2D bundle reads new scans at (lesionseg.bundle.slice_size).

The cpu preset trains on 128-pixel slices (about 1.4 mm pixels over the brain's extent plus its margin). This
scores bundles on held-out cases read at several slice sizes with the same weights, alone and combined (``128+160``:
each voxel keeps the larger probability of the two readings and a lesion of that maximum is kept when the
readings' mean confirms it, what a cpu-preset MRI bundle does), side by side:
per-case Dice and lesion-wise F1 (means), false and missed lesions per case, the volume ratio of every lesion
over 10 mL, the faint bin of ``bench_budget.py`` when given, and seconds per case. The missed lesions are
listed by size (mm3) at each reading, so that one sees which lesions a finer reading finds.

Bundles come from ``bench_budget.py`` / ``bench_template_anatomy.py`` runs (``RUN/model.lsb``); held-out cases
from their work folders (``W/heldout``, ``W/faint``).

Run: ``.venv/bin/python benchmarks/bench_inference_size.py --bundle p0=W/run-base-0/model.lsb
--held-out W/heldout --faint W/faint --readings 128,160,128+160``; ``--readings 128+160 --agreements 0.5,0.9,1``
scores the combined reading at several reading agreements (which of the maximum's lesions the readings' mean
confirms). ``--readings default`` reads as the bundle does by default; ``--thresholds 0.5,0.4,0.3`` scores each
reading at these probability thresholds instead of the bundle's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.data import discover
from lesionseg.infer import Predictor
from lesionseg.metrics import dice, lesion_volume_ratios, lesionwise_counts, spacing_from_image


def score(bundle: Path, cases, sizes: list[int] | None, agreement: float | None = None,
          threshold: float | None = None) -> dict:
    """Means over ``cases`` read at ``sizes`` pixels (None: the bundle's default readings; combined, lesions kept at
    ``agreement``: the Predictor's ``reading_agreement``, None its default) at ``threshold`` (None: the bundle's),
    and the sizes (mm3) of the missed truth lesions."""
    predictor = Predictor(bundle, device="cpu", backend="torch", slice_sizes=sizes, reading_agreement=agreement,
                          threshold=threshold)
    rows, missed = [], []
    began = time.perf_counter()
    for case in cases:
        channel = predictor.channels[0]
        prediction = predictor.predict({channel: case.channels[channel]}, side="auto", case_id=case.case_id)
        truth_image = case.read_mask()
        truth = sitk.GetArrayFromImage(truth_image) > 0
        predicted = sitk.GetArrayFromImage(prediction.labelmap) > 0
        counts = lesionwise_counts(predicted, truth)
        voxel_mm3 = float(np.prod(truth_image.GetSpacing()))
        labels, count = ndimage.label(truth, np.ones((3, 3, 3)))
        for index in range(1, count + 1):
            component = labels == index
            if not (component & predicted).any():
                missed.append(round(float(component.sum()) * voxel_mm3))
        large = lesion_volume_ratios(predicted, truth, spacing_from_image(truth_image), min_truth_ml=10.0)
        rows.append({"dice": dice(predicted, truth), "f1": counts.f1, "fp": counts.fp, "fn": counts.fn,
                     "ratios": [v.ratio for v in large]})
    seconds = (time.perf_counter() - began) / max(len(cases), 1)
    ratios = [r for row in rows for r in row["ratios"]]
    return {"dice": float(np.mean([r["dice"] for r in rows])), "f1": float(np.mean([r["f1"] for r in rows])),
            "fp": float(np.mean([r["fp"] for r in rows])), "fn": float(np.mean([r["fn"] for r in rows])),
            "ratios": ratios, "in_range": sum(0.8 <= r <= 1.25 for r in ratios), "seconds": seconds,
            "missed": sorted(missed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--held-out", type=Path, required=True, help="a folder of held-out cases")
    parser.add_argument("--faint", type=Path, help="a second folder reported on its own (bench_budget's faint bin)")
    parser.add_argument("--readings", default="128,160,128+160",
                        help="readings, comma-separated; each a slice size in pixels or sizes joined by +")
    parser.add_argument("--agreements", default="",
                        help="combined readings are scored at each of these reading agreements (fractions of the "
                             "threshold the readings' mean must reach in a lesion; 0.5 with two readings keeps every "
                             "lesion of their maximum), comma-separated; default: the Predictor's")
    parser.add_argument("--thresholds", default="",
                        help="probability thresholds, comma-separated; default: the bundle's")
    args = parser.parse_args()
    agreements = [float(value) for value in args.agreements.split(",") if value] or [None]
    thresholds = [float(value) for value in args.thresholds.split(",") if value] or [None]
    readings = [None if item == "default" else [int(size) for size in item.split("+")]
                for item in args.readings.split(",")]
    held_out = discover(args.held_out)
    faint = discover(args.faint) if args.faint else []
    print(f"bench_inference_size: {len(held_out)} held-out cases ({args.held_out.name})"
          + (f", {len(faint)} faint" if faint else "") + f"; readings {args.readings}")
    for name, _, path in (item.partition("=") for item in args.bundle):
        bundle = Path(path)
        for sizes, agreement, threshold in ((sizes, agreement, threshold) for sizes in readings
                                            for agreement in (agreements if sizes and len(sizes) > 1 else [None])
                                            for threshold in thresholds):
            result = score(bundle, held_out, sizes, agreement, threshold)
            shown = ("default" if sizes is None else "+".join(map(str, sizes)) + " px") + (
                "" if agreement is None else f", agreement {agreement:g}") + (
                "" if threshold is None else f", threshold {threshold:g}")
            line = (f"{name:>8} read at {shown:>10}: Dice {result['dice']:.3f}, lesion F1 {result['f1']:.3f}, "
                    f"{result['fp']:.2f} false and {result['fn']:.2f} missed lesions per case; lesions > 10 mL "
                    f"{result['in_range']}/{len(result['ratios'])} in 0.8-1.25 ("
                    + " ".join(f"{r:.2f}" for r in result["ratios"]) + f"); {result['seconds']:.2f} s per case")
            if faint:
                dim = score(bundle, faint, sizes, agreement, threshold)
                line += f"; faint Dice {dim['dice']:.3f}, F1 {dim['f1']:.3f}"
            print(line, flush=True)
            print(f"{'':>8}   missed (mm3): " + " ".join(str(v) for v in result["missed"]), flush=True)

if __name__ == "__main__":
    main()
