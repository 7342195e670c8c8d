"""Benchmark: classical CT brain extraction on the varied synthetic CT cohort (issue 19, item 3).

Every case is a head of the phantom in Hounsfield units with the skull base (foramen magnum, petrous ridges):
cases of the ``ct_heldout`` and ``ct_starter`` recipes (:func:`lesionseg.synth.variety.varied_case_options`:
5 mm and 1-5 mm slices, gantry tilt stored obliquely, tilted heads, thick skulls, beam hardening, low-dose
noise), and named hard heads (1 mm slices, a thick skull, oblique and tilted, a 0.5 x 0.5 x 5 mm scan). For
each: Dice of the classical mask against the phantom's intracranial mask (``SynthCase.brain_mask``), the
volume error in mL (mask minus truth) and the seconds of brain extraction (generation not counted).
``--compare`` also runs the pipeline without its skull-base guard (``lesionseg.preprocess.brain_classical.
SKULL_BASE_GUARD = False``, the pipeline of before; the guard is
:mod:`lesionseg.preprocess.skull_openings`), on the same cases in the same run, for the time per case
before and after.

``--big`` runs instead one 512 x 512 x 300 CT (0.45 x 0.45 x 0.5 mm, the speed issue's size) with a skull base and a
thick skull: a phantom made at 0.9 x 0.9 x 1 mm (generating 78 million voxels directly needs more memory than
this machine spares), resampled linearly onto the fine grid (its truth by nearest neighbour); with and without
the guard, alternately, twice each.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ct_brain.py [--heldout 6] [--starter 6]
[--threads 1] [--compare] [--big]``. Timings on a shared machine are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.preprocess import brain_classical as brain_module
from lesionseg.preprocess.brain import run_brain_extraction
from lesionseg.synth import make_case
from lesionseg.synth.variety import THICK_SKULL_MM, varied_case_options

SEED = 19


def _cases(heldout: int, starter: int) -> list[tuple[str, dict[str, Any], int]]:
    """(label, make_case options, index) of each benchmark head."""
    named = [
        ("1x1x1 thick skull", {"size_xyz": (176, 200, 150), "spacing_mm": (1.2, 1.2, 1.0),
                               "skull_thickness_mm": THICK_SKULL_MM, "skull_base": True}, 101),
        ("1x1x5 oblique 20, tilted 10", {"size_xyz": (200, 220, 36), "spacing_mm": (1.0, 1.0, 5.0),
                                         "oblique_deg": 20.0, "head_tilt_deg": 10.0, "skull_base": True}, 102),
        ("0.5x0.5x5 thick skull", {"size_xyz": (440, 480, 36), "spacing_mm": (0.5, 0.5, 5.0),
                                   "skull_thickness_mm": THICK_SKULL_MM, "skull_base": True,
                                   "beam_hardening": True}, 103),
    ]
    cases = [(f"ct_heldout #{i}", varied_case_options(SEED, i, "ct_heldout"), i) for i in range(1, heldout + 1)]
    cases += [(f"ct_starter #{i}", varied_case_options(SEED, i, "ct_starter"), i) for i in range(1, starter + 1)]
    return cases + named


def _dice(mask: sitk.Image, truth: sitk.Image) -> float:
    a = sitk.GetArrayViewFromImage(mask) > 0
    b = sitk.GetArrayViewFromImage(truth) > 0
    return float(2.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1))


def _volume_ml(mask: sitk.Image) -> float:
    return float(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) * float(np.prod(mask.GetSpacing())) / 1000.0


def _run(image: sitk.Image, guard: bool) -> tuple[sitk.Image | None, float, str]:
    """The classical mask (None when refused), the seconds it took, and a note."""
    brain_module.SKULL_BASE_GUARD = guard
    started = time.perf_counter()
    try:
        result = run_brain_extraction(image, "ct", method="classical")
    except Exception as error:  # a refused case is a row of the table, not the end of the benchmark
        return None, time.perf_counter() - started, type(error).__name__
    finally:
        brain_module.SKULL_BASE_GUARD = True
    return result.mask, time.perf_counter() - started, result.warning and "warning" or ""


def _big_ct() -> None:
    """The 512 x 512 x 300 CT of the module docstring, with and without the guard, alternately."""
    case = make_case(7, SEED, modalities=("ct",), size_xyz=(256, 256, 150), spacing_mm=(0.9, 0.9, 1.0),
                     skull_base=True, skull_thickness_mm=THICK_SKULL_MM, beam_hardening=True, ct_noise_hu=(4.0, 4.0))
    reference = sitk.Image([512, 512, 300], sitk.sitkInt16)
    reference.SetSpacing((0.45, 0.45, 0.5))
    reference.SetOrigin(tuple(o - 0.225 for o in case.channels["ct"].GetOrigin()))
    image = sitk.Resample(case.channels["ct"], reference, sitk.Transform(), sitk.sitkLinear, -1000, sitk.sitkInt16)
    truth = sitk.Resample(case.brain_mask, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    del case
    print(f"512 x 512 x 300 CT at 0.45 x 0.45 x 0.5 mm, truth {_volume_ml(truth):.0f} mL")
    for guard in (True, False, True, False):
        mask, seconds, note = _run(image, guard)
        dice = "refused" if mask is None else f"{_dice(mask, truth):.3f}"
        print(f"{'guard' if guard else 'no guard':8s}: Dice {dice}, {seconds:.1f} s {note}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", type=int, default=6, help="cases of the ct_heldout recipe (default 6)")
    parser.add_argument("--starter", type=int, default=6, help="cases of the ct_starter recipe (default 6)")
    parser.add_argument("--no-named", action="store_true", help="leave out the named hard heads")
    parser.add_argument("--threads", type=int, default=1, help="SimpleITK threads (default 1)")
    parser.add_argument("--compare", action="store_true", help="also run without the skull-base guard")
    parser.add_argument("--big", action="store_true", help="only the 512 x 512 x 300 CT, with and without the guard")
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    if args.big:
        _big_ct()
        return
    print(f"SimpleITK threads {args.threads}; Dice against SynthCase.brain_mask; seconds of brain extraction")
    cases = _cases(args.heldout, args.starter)
    if args.no_named:
        cases = [c for c in cases if c[0].startswith("ct_")]
    variants = [("guard", True)] + ([("no guard", False)] if args.compare else [])
    header = f"{'case':32s} {'grid':>22s} {'truth mL':>9s}"
    for name, _ in variants:
        header += f" | {name:>8s} Dice {'dV mL':>7s} {'s':>6s}"
    print(header)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in variants}
    for label, options, index in cases:
        case = make_case(index, SEED, modalities=("ct",), **options)
        image, truth = case.channels["ct"], case.brain_mask
        truth_ml = _volume_ml(truth)
        grid = "x".join(str(n) for n in image.GetSize()) + " @" + "x".join(f"{s:g}" for s in image.GetSpacing())
        row = f"{label:32s} {grid:>22s} {truth_ml:9.0f}"
        for name, guard in variants:
            mask, seconds, note = _run(image, guard)
            if mask is None:
                results[name].append((0.0, seconds))
                row += f" | {'refused':>8s} {note[:12]:>12s} {seconds:6.1f}"
                continue
            dice = _dice(mask, truth)
            results[name].append((dice, seconds))
            row += f" | {dice:13.3f} {_volume_ml(mask) - truth_ml:7.0f} {seconds:6.1f}"
        print(row, flush=True)
    for name, rows in results.items():
        dices = [d for d, _ in rows]
        seconds = [s for _, s in rows]
        print(f"{name}: Dice min {min(dices):.3f}, mean {statistics.mean(dices):.3f}; cases >= 0.95: "
              f"{sum(d >= 0.95 for d in dices)}/{len(dices)}; seconds per case mean {statistics.mean(seconds):.2f}")


if __name__ == "__main__":
    main()
