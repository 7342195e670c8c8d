"""Benchmark: a model worth using after M minutes on this CPU, trained with the defaults on a few cases.

What a clinician does with ten of their own scans: ``lesionseg prepare`` and ``lesionseg train --minutes M``
with nothing else (the preset of the machine), then ``segment`` on unseen scans. The scans are synthetic,
drawn by :func:`lesionseg.synth.variety.varied_case_options` with the ``heldout`` recipe: lesion ages 0.5-1
(FLAIR a few days after the stroke), several lesions per case, some over 10 mL, 3-5 mm slices, half of them
stored obliquely. The training cases come from one cohort seed, the held-out cases from another; a second
held-out bin has lesion ages 0-0.5 (FLAIR contrast +5-15 %, barely visible) and is reported on its own.

Arms (``--arm NAME=OPTIONS``, repeated): extra ``lesionseg train`` options, e.g. ``scratch=--from-scratch``,
``none=--curriculum none``, ``size=--size-curriculum 0.5,0.75,1``; the default arm ``starter`` adds nothing.
Each arm runs once per seed (``--seeds``). ``--zero-shot`` first scores the shipped starter model as it is
(no training; the CT starter with ``--modality ct``), to stand beside the arms that fine-tune it.

Printed per run: wall minutes (training), per-case Dice and lesion-wise F1 on the held-out cases (mean),
false and missed lesions per case, the volume ratio (predicted/true) of every held-out lesion over 10 mL,
and the faint bin's means. ``--log FILE`` appends each finished run as a JSON line (commit it under
``benchmarks/results/``).

``--modality ct`` does the same on CT: both cohorts from the ``ct_heldout`` recipe (lesions 2-8 HU below their
tissue, noise sigma 3-6 HU, 5 mm slices, a third stored obliquely), no faint bin; ``--prepare-options`` passes
options to ``lesionseg prepare`` (e.g. ``--ct-windows brain,stroke``), with their own work folder.

Run: ``.venv/bin/python benchmarks/bench_budget.py --work W --minutes 15 --train-cases 10 --held-out 20
--faint 6 --arm starter= --arm scratch=--from-scratch --seeds 0 --log benchmarks/results/budget.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lesionseg.data import discover
from lesionseg.infer import Predictor
from lesionseg.metrics import dice, lesion_volume_ratios, lesionwise_counts, spacing_from_image
from lesionseg.starter import starter_bundle_path
from lesionseg.synth import write_cohort
from lesionseg.synth.variety import varied_case_options

TRAIN_SEED, HELD_OUT_SEED, FAINT_SEED = 7100, 7200, 7300


def write_varied(root: Path, count: int, seed: int, lesion_age: tuple[float, float] | None, workers: int,
                 modality: str = "flair") -> None:
    """A cohort of the ``heldout`` recipe (``ct_heldout`` for CT; lesion ages overridden when given), written once."""
    if (root / "dataset_description.json").exists():
        return
    recipe = "ct_heldout" if modality == "ct" else "heldout"

    def options(index: int) -> dict:
        values = varied_case_options(seed, index, recipe=recipe)
        if lesion_age is not None:
            values["lesion_age"] = lesion_age
        return values

    write_cohort(root, count, modalities=(modality,), seed=seed, workers=workers, case_options_fn=options)


def lesion(command: list[str], accept: tuple[int, ...] = (0,)) -> float:
    """Run ``python -m lesionseg COMMAND`` (exit on an exit code not in ``accept``); its wall seconds."""
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "lesionseg", *command], capture_output=True, text=True)
    if result.returncode not in accept:
        sys.exit(f"lesionseg {' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - began


#: the preset's prepare values and the ``lesionseg prepare`` option that overrides each
PREPARE_OPTION = {"size": "--size", "negatives": "--negatives", "context_slices": "--context-slices",
                  "brain_margin_mm": "--brain-margin", "antialias": "--antialias"}


def stale_prepare_values(prepared: Path, prepare_options: str) -> list[str]:
    """What a reused prepared folder holds that ``lesionseg prepare`` would no longer make by default.

    A work folder's ``prepared`` is reused across runs; when a default changed since it was made (e.g. anti-aliasing),
    the arms would measure the old defaults. Values the ``--prepare-options`` set themselves are not compared.
    Returns one ``name: stored -> default`` text per differing value (empty when the folder is current).
    """
    from lesionseg.train.presets import get_preset

    given = shlex.split(prepare_options)
    if any(option.startswith("--preset") for option in given):
        return []
    stored = json.loads((prepared / "prepare.json").read_text(encoding="utf-8"))["config"]
    stale = []
    for name, default in get_preset("auto").prepare_values().items():
        if any(option.split("=")[0] == PREPARE_OPTION.get(name) for option in given):
            continue
        value = stored.get(name, False if isinstance(default, bool) else None)  # older folders lack newer keys
        if value != default:
            stale.append(f"{name}: {value} -> {default}")
    return stale


def prepare_once(train: Path, prepared: Path, prepare_options: str = "", workers: int = 1) -> Path:
    """``lesionseg prepare`` of the training cases into ``prepared`` unless a current one is there already.

    Exits naming the values when the folder there was made with other defaults (:func:`stale_prepare_values`).
    """
    if not (prepared / "prepare.json").exists():
        seconds = lesion(["prepare", str(train), str(prepared), "--workers", str(workers), "--progress", "none",
                          *shlex.split(prepare_options)])
        print(f"prepared {len(discover(train))} training cases in {seconds:.0f} s", flush=True)
    stale = stale_prepare_values(prepared, prepare_options)
    if stale:
        sys.exit(f"{prepared} was prepared with other values than today's defaults ({'; '.join(stale)}): delete it "
                 "to prepare again, or pass those values in --prepare-options.")
    return prepared


def evaluate(bundle: Path, cases, modality: str = "flair") -> list[dict]:
    """Per held-out case: Dice, lesion-wise counts and the volume ratios of its lesions over 10 mL."""
    predictor = Predictor(bundle, device="cpu")
    rows = []
    for case in cases:
        prediction = predictor.predict({modality: case.channels[modality]}, side="auto", case_id=case.case_id)
        truth_image = case.read_mask()
        truth = sitk.GetArrayFromImage(truth_image) > 0
        predicted = sitk.GetArrayFromImage(prediction.labelmap) > 0
        counts = lesionwise_counts(predicted, truth)
        large = lesion_volume_ratios(predicted, truth, spacing_from_image(truth_image), min_truth_ml=10.0)
        rows.append({"case_id": case.case_id, "dice": dice(predicted, truth), "f1": counts.f1, "fp": counts.fp,
                     "fn": counts.fn, "tp": counts.tp, "seconds": sum(prediction.timings.values()),
                     "large": [[round(v.truth_ml, 2), round(v.predicted_ml, 2), round(v.ratio, 3)] for v in large]})
    return rows


def summary(rows: list[dict]) -> dict:
    ratios = [item[2] for row in rows for item in row["large"]]
    return {"dice": float(np.mean([r["dice"] for r in rows])), "f1": float(np.mean([r["f1"] for r in rows])),
            "fp_per_case": float(np.mean([r["fp"] for r in rows])), "fn_per_case": float(np.mean([r["fn"] for r in rows])),
            "large_ratios": ratios, "large_in_range": sum(0.8 <= r <= 1.25 for r in ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder (cohorts and prepared data are kept)")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--train-cases", type=int, default=10)
    parser.add_argument("--held-out", type=int, default=20)
    parser.add_argument("--faint", type=int, default=6, help="held-out cases of lesion ages 0-0.5 (own bin)")
    parser.add_argument("--arm", action="append", default=[], metavar="NAME=OPTIONS")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log", type=Path, help="append each run's results to this JSON-lines file")
    parser.add_argument("--zero-shot", action="store_true", help="score the shipped starter model untrained first")
    parser.add_argument("--modality", choices=("flair", "ct"), default="flair")
    parser.add_argument("--prepare-options", default="", help="extra options of lesionseg prepare")
    args = parser.parse_args()
    if args.modality == "ct":
        args.faint = 0  # the faint bin is FLAIR's (lesion ages 0-0.5)
    arms = [arm.partition("=") for arm in (args.arm or ([] if args.zero_shot else ["starter="]))]
    work = args.work
    write_varied(work / "train", args.train_cases, TRAIN_SEED, None, args.workers, args.modality)
    write_varied(work / "heldout", args.held_out, HELD_OUT_SEED, None, args.workers, args.modality)
    if args.faint:
        write_varied(work / "faint", args.faint, FAINT_SEED, (0.0, 0.5), args.workers)
    prepared = prepare_once(work / "train", work / "prepared", args.prepare_options, args.workers)
    held_out = discover(work / "heldout")
    faint = discover(work / "faint") if args.faint else []
    runs = [("zero-shot", "", "0")] if args.zero_shot else []
    runs += [(name, options, seed) for name, _, options in arms for seed in args.seeds.split(",")]
    for name, options, seed in runs:
        if name == "zero-shot":
            bundle = starter_bundle_path("ct") if args.modality == "ct" else starter_bundle_path()
            seconds, budget = 0.0, None
        else:
            run = work / f"run-{name}-{seed}"
            command = ["train", str(prepared), str(run), "--minutes", f"{args.minutes:g}", "--seed", seed,
                       "--progress", "none", *shlex.split(options)]
            seconds = lesion(command)
            bundle, budget = run / "model.lsb", json.loads((run / "budget.json").read_text())
        rows = evaluate(bundle, held_out, args.modality)
        faint_rows = evaluate(bundle, faint) if faint else []
        result = {"arm": name, "options": options, "modality": args.modality, "prepare_options": args.prepare_options,
                  "seed": int(seed), "minutes_budget": args.minutes,
                  "minutes_wall": seconds / 60, "budget": budget,
                  "held_out": summary(rows), "faint": summary(faint_rows) if faint_rows else None,
                  "cases": rows, "faint_cases": faint_rows}
        held = result["held_out"]
        print(f"{name:>10} seed {seed}: {seconds / 60:.1f} min; held-out Dice {held['dice']:.3f}, lesion F1 "
              f"{held['f1']:.3f}, {held['fp_per_case']:.1f} false and {held['fn_per_case']:.1f} missed lesions "
              f"per case; lesions > 10 mL: {len(held['large_ratios'])}, ratios "
              + " ".join(f"{r:.2f}" for r in held["large_ratios"])
              + (f"; faint bin Dice {result['faint']['dice']:.3f}, F1 {result['faint']['f1']:.3f}"
                 if faint_rows else ""), flush=True)
        if args.log:
            args.log.parent.mkdir(parents=True, exist_ok=True)
            with args.log.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
