"""Benchmark: where the time of ``segment`` goes, and what each speed change buys, as ratios from one run.

Rows (each a function in ``ROWS``; a row is added by writing one more and listing it):

- ``network``: the network alone on the same prepared slices of one 192 x 224 x 48 FLAIR case, with the
  default bundle (the shipped starter model: MONAI U-Net 16-256 with batch norm, 2.5D, 128 px): eager fp32
  at batch 16 (today) against other batch sizes, bf16 (autocast; autocast with bf16 weights), channels_last,
  ``torch.compile`` (CPU inductor, after its warm-up, which is reported) and ONNX Runtime. Each variant is
  timed in turn, interleaved, and compared on the slices of 5 synthetic cases: the largest probability
  difference and the Dice of the thresholded slices against eager fp32.
- ``side``: ``--side auto`` with two full passes (today) against reading the mirrored orientation only where
  it can change the result (:func:`lesionseg.infer.sides.read_other_side`): network time, slices read,
  Dice of the final masks on the 5 cases.
- ``case``: one case from reading the NIfTI file to writing the mask, the model loaded once, ``--side auto``:
  before (PyTorch, two full passes) and after (the default: ``--backend auto``, the mirrored pass where
  needed), interleaved over the 5 cases; each stage; end to end over the network calls of the same slices.
- ``startup``: a fresh process: importing lesionseg's inference (torch, MONAI), loading the bundle (and the
  ONNX session), the first case.
- ``nnunet``: nnU-Net v2's 2D predictor on the same case (reading to writing, model loaded once), in its own
  virtual environment (below), with a plan written here for this image and untrained weights: per case, with
  and without its default mirroring, and the ratio to ours.
- ``paper``: the earlier rows on an untrained paper U-Net at 192 px, one side given: end to end over the
  network, time per case of a 10-case batch.
- ``ct``: one 512 x 512 x 300 CT-like volume with a skull base, thick skull and beam hardening, segmented by
  the default (``cpu`` preset) network and slices with the starter's weights (``--skip-ct`` leaves it out;
  preprocessing's own benchmark is ``benchmarks/bench_preprocess_speed.py``).
- ``sliding3d``: the 3D path, MONAI's sliding window of an untrained ``unet3d`` over the central 32 x 128 x 128
  voxels of one FLAIR volume in 16 x 64 x 64 windows: batch 4 at overlap 0.5 (today) against batch 1, 2 and 8, overlap 0.25, bf16 autocast and
  ``channels_last_3d``; each against today's probabilities and masks.

nnU-Net's environment (kept apart: it pins other versions; PyPI's torchvision is a CUDA build that fails to
import here, and nnU-Net's predictor does not need it, so it is left out)::

    python3 -m venv /tmp/nnunet-venv
    /tmp/nnunet-venv/bin/pip install torch==2.13.0
    /tmp/nnunet-venv/bin/pip install -c constraints.txt nnunetv2
    /tmp/nnunet-venv/bin/pip uninstall -y torchvision   # only if something pulled it in

Run: ``.venv/bin/python benchmarks/bench_segment.py [--threads 1] [--cases 5] [--rows network,side,case,...]
[--nnunet-python /tmp/nnunet-venv/bin/python] [--skip-ct]``. The figures printed are from one run; on a
machine shared with other work, only the ratios mean something.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import SimpleITK as sitk

HERE = Path(__file__).resolve().parent
FLAIR_SIZE = (192, 224, 48)


@dataclass
class Context:
    """What the rows share: the options, a work folder, the default bundle and the 5 FLAIR cases on disk."""

    args: argparse.Namespace
    work: Path
    bundle: Path
    cases: list[Path]
    results: dict[str, Any] = field(default_factory=dict)


def dice(first: np.ndarray, second: np.ndarray) -> float:
    """Dice of two boolean arrays; 1.0 when both are empty."""
    total = int(first.sum()) + int(second.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(first, second).sum()) / total


def median_time(function: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def interleaved_times(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each call, ``repeats`` rounds of every call in turn (interleaved, so that a change in the
    machine's load falls on all of them alike)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            began = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - began)
    return times


def prepared_slices(predictor: Any, image_path: Path) -> np.ndarray:
    """The network input (N, C, S, S) of one case, as the predictor prepares it (as-is orientation)."""
    from lesionseg.preprocess import prepare_images

    image = sitk.ReadImage(str(image_path), sitk.sitkFloat32)
    prepared = prepare_images({predictor.config.reference: image}, predictor.config, case_id=image_path.name,
                              training=False, side=None)
    return prepared.network_input(predictor.config.context_slices)


# ---- rows -------------------------------------------------------------------------------------------------
def row_network(context: Context) -> None:
    import torch

    from lesionseg.infer import Predictor
    from lesionseg.infer.backend import TorchSlices, choose_backend

    predictor = _today(Predictor(context.bundle, device="cpu", backend="torch"))
    slices = [prepared_slices(predictor, path) for path in context.cases]
    first = slices[0]
    networks, device = predictor.bundle.networks, predictor.device
    multiple, minimum = predictor.multiple, predictor.minimum

    def batched(runner: Callable[[np.ndarray], np.ndarray], batch: int) -> Callable[[np.ndarray], np.ndarray]:
        def run(stack: np.ndarray) -> np.ndarray:
            return np.concatenate([runner(stack[i:i + batch]) for i in range(0, len(stack), batch)])
        return run

    eager = TorchSlices(networks, device, multiple, minimum)
    variants: dict[str, Callable[[np.ndarray], np.ndarray]] = {"eager fp32, batch 16 (today)": batched(eager, 16)}
    for batch in (4, 8, 32, len(first)):
        variants[f"eager fp32, batch {batch}"] = batched(eager, batch)
    variants["bf16 autocast"] = batched(TorchSlices(networks, device, multiple, minimum, bf16=True), 16)
    variants["bf16 autocast + bf16 weights"] = batched(
        TorchSlices(networks, device, multiple, minimum, bf16=True, bf16_weights=True), 16)
    variants["channels_last"] = batched(TorchSlices([copy.deepcopy(n) for n in networks], device, multiple,
                                                    minimum, channels_last=True), 16)
    notes: list[str] = []
    if not context.args.no_compile:
        compiled = TorchSlices([torch.compile(copy.deepcopy(n)) for n in networks], device, multiple, minimum)
        began = time.perf_counter()
        try:
            for batch in (16, len(first) % 16 or 16):
                compiled(first[:batch])
            notes.append(f"torch.compile warm-up (two batch shapes): {time.perf_counter() - began:.1f} s")
            variants["torch.compile (inductor)"] = batched(compiled, 16)
        except Exception as error:  # noqa: BLE001 - a benchmark row says why it is missing
            notes.append(f"torch.compile failed: {str(error).splitlines()[0][:150]}")
    began = time.perf_counter()
    onnx, warnings = choose_backend("onnx", [copy.deepcopy(n) for n in networks], bundle_path=context.bundle,
                                    device=device, spatial_dims=2, channels=first.shape[1], size=first.shape[-1],
                                    multiple=multiple, minimum=minimum, cache_dir=context.work / "onnx-cache")
    if onnx.name == "onnx":
        notes.append(f"ONNX export + check (first use of a bundle): {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        choose_backend("onnx", [copy.deepcopy(n) for n in networks], bundle_path=context.bundle,
                       device=device, spatial_dims=2, channels=first.shape[1], size=first.shape[-1],
                       multiple=multiple, minimum=minimum, cache_dir=context.work / "onnx-cache")
        notes.append(f"ONNX from the cache (every later Predictor): {time.perf_counter() - began:.2f} s")
        variants["ONNX Runtime, batch 16"] = batched(onnx, 16)
        variants[f"ONNX Runtime, batch {len(first)}"] = batched(onnx, len(first))
    else:
        notes.append(f"ONNX Runtime: not measured ({'; '.join(warnings)})")

    for run in variants.values():  # warm-up (oneDNN primitive caches)
        run(first[:16])
    times = interleaved_times({name: functools.partial(run, first) for name, run in variants.items()},
                              context.args.repeats)
    reference = [variants["eager fp32, batch 16 (today)"](stack) for stack in slices]
    threshold = predictor.threshold
    base = statistics.median(times["eager fp32, batch 16 (today)"])
    print(f"\n[network] the network alone on the {len(first)} prepared slices ({first.shape[1]} x {first.shape[-1]}"
          f" x {first.shape[-1]}) of one 192x224x48 FLAIR case; median of {context.args.repeats} interleaved runs;"
          f" outputs against eager fp32 on the slices of {len(slices)} cases")
    print(f"  {'variant':34s} {'s/case':>7s} {'x fp32':>7s} {'max |dp|':>9s} {'Dice':>7s}")
    summary = {}
    for name, run in variants.items():
        seconds = statistics.median(times[name])
        outputs = [run(stack) for stack in slices]
        difference = max(float(np.abs(o - r).max()) for o, r in zip(outputs, reference))
        masks = [(np.concatenate(outputs) >= threshold), (np.concatenate(reference) >= threshold)]
        agreement = dice(*masks)
        summary[name] = {"seconds": seconds, "ratio": seconds / base, "max_dp": difference, "dice": agreement}
        print(f"  {name:34s} {seconds:7.3f} {seconds / base:7.2f} {difference:9.2g} {agreement:7.4f}")
    for note in notes:
        print(f"  {note}")
    context.results["network"] = summary


def _today(predictor: Any) -> Any:
    """Give ``predictor`` today's runner: eager PyTorch in the default memory layout, two full passes."""
    import torch

    from lesionseg.infer.backend import TorchSlices

    for network in predictor.bundle.networks:
        network.to(memory_format=torch.contiguous_format)
    predictor.runner = TorchSlices(predictor.bundle.networks, predictor.device, predictor.multiple,
                                   predictor.minimum)
    predictor.mirror_stride = 1
    return predictor


def _auto_side_run(predictor: Any, path: Path) -> tuple[Any, float, tuple[int, int]]:
    prediction = predictor.predict({"flair": path}, side="auto", case_id=path.name)
    return prediction, prediction.timings["network"], predictor.slices_read


def row_side(context: Context) -> None:
    from lesionseg.infer import Predictor

    full_reader = Predictor(context.bundle, device="cpu", backend="torch")
    full_reader.mirror_stride = 1
    reader = Predictor(context.bundle, device="cpu", backend="torch")
    reader.mirror_stride = 2  # the sampling option (the default is 1: two full passes)
    for predictor in (full_reader, reader):
        _auto_side_run(predictor, context.cases[0])  # warm-up
    print(f"\n[side] --side auto on {len(context.cases)} cases (PyTorch, channels_last): two full passes (today) "
          f"against sampling every second slice (mirror_stride 2, not the default) and reading the rest only in "
          f"the orientations that can change the result")
    print(f"  {'case':28s} {'slices':>6s} {'read as-is+mirrored':>19s} {'network before':>14s} {'after':>6s} "
          f"{'ratio':>6s} {'Dice':>7s} {'lesion mL':>9s}")
    ratios, dices = [], []
    for path in context.cases:
        full, full_seconds, _ = _auto_side_run(full_reader, path)
        needed, needed_seconds, read = _auto_side_run(reader, path)
        agreement = dice(sitk.GetArrayFromImage(full.labelmap) > 0, sitk.GetArrayFromImage(needed.labelmap) > 0)
        count = len(full.record.slice_indices)
        ratios.append(needed_seconds / full_seconds)
        dices.append(agreement)
        print(f"  {path.name[:28]:28s} {count:6d} {f'{read[0]}+{read[1]}':>19s} {full_seconds:14.2f} "
              f"{needed_seconds:6.2f} {needed_seconds / full_seconds:6.2f} {agreement:7.4f} "
              f"{full.lesion_volume_ml:9.2f}")
    print(f"  network time after/before: median x{statistics.median(ratios):.2f}; lowest Dice {min(dices):.4f}")
    context.results["side"] = {"ratios": ratios, "dice": dices}


def _case_once(predictor: Any, path: Path, out: Path) -> dict[str, Any]:
    from lesionseg.infer import write_labelmap

    began = time.perf_counter()
    prediction = predictor.predict({"flair": path}, side="auto", case_id=path.name)
    written = time.perf_counter()
    write_labelmap(prediction.labelmap, out)
    stages: dict[str, Any] = dict(prediction.timings)
    stages["write"] = time.perf_counter() - written
    stages["total"] = time.perf_counter() - began
    stages["mask"] = prediction.labelmap
    return stages


def row_case(context: Context) -> None:
    import cProfile
    import io
    import pstats

    from lesionseg.infer import Predictor

    cache = context.work / "onnx-cache"
    variants = {"before: torch, two full passes (today)": _today(Predictor(context.bundle, device="cpu",
                                                                            backend="torch")),
                "after: torch channels_last, sides as needed": Predictor(context.bundle, device="cpu",
                                                                         backend="torch")}
    onnx = Predictor(context.bundle, device="cpu", backend="auto", cache_dir=cache)
    if onnx.backend == "onnx":
        variants["after: ONNX Runtime, sides as needed"] = onnx
    out = context.work / "case-out"
    out.mkdir(exist_ok=True)
    for predictor in variants.values():  # warm-up
        _case_once(predictor, context.cases[0], out / "warm.nii.gz")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(context.args.case_repeats):
        for path in context.cases:
            for number, (name, predictor) in enumerate(variants.items()):
                runs[name].append(_case_once(predictor, path, out / f"{number}-{path.name}"))
    stages = ("read", "preprocess", "network", "postprocess", "write", "total")
    print(f"\n[case] one 192x224x48 FLAIR case from reading to writing, model loaded once, --side auto; median over "
          f"{len(context.cases)} cases x {context.args.case_repeats} (interleaved); seconds")
    print(f"  {'':44s} " + " ".join(f"{stage:>10s}" for stage in stages) + f" {'total/network':>13s}")
    medians = {}
    for name in variants:
        medians[name] = {stage: statistics.median(run[stage] for run in runs[name]) for stage in stages}
        ratio = statistics.median(run["total"] / run["network"] for run in runs[name])
        print(f"  {name:44s} " + " ".join(f"{medians[name][stage]:10.3f}" for stage in stages) + f" {ratio:13.2f}")
    names = list(variants)
    before = names[0]
    for name in names[1:]:
        agreement = min(dice(sitk.GetArrayFromImage(b["mask"]) > 0, sitk.GetArrayFromImage(a["mask"]) > 0)
                        for b, a in zip(runs[before], runs[name]))
        print(f"  {name.split(':')[1].strip()}: per case x{medians[name]['total'] / medians[before]['total']:.2f} "
              f"of before, network x{medians[name]['network'] / medians[before]['network']:.2f}; masks against "
              f"before: lowest Dice {agreement:.4f} over {len(runs[name])} runs")
    best = min(medians[name]["total"] for name in names[1:])
    print(f"  goal <= 2 s per case: {'met' if best <= 2.0 else 'not met'} ({best:.2f} s); preprocessing is "
          f"{100 * medians[names[1]]['preprocess'] / medians[names[1]]['total']:.0f} % of it")
    profile = cProfile.Profile()  # where preprocessing goes: one case, the default variant
    profile.enable()
    variants[names[1]].predict({"flair": context.cases[0]}, side="auto")
    profile.disable()
    report = io.StringIO()
    pstats.Stats(profile, stream=report).sort_stats("cumulative").print_stats(r"lesionseg/preprocess/.*\.py", 10)
    rows = [line for line in report.getvalue().splitlines()
            if "lesionseg/preprocess/" in line and line.strip()[:1].isdigit()]
    print("  preprocessing, one case (cProfile, cumulative seconds; profiling adds overhead):")
    for line in rows[:10]:
        parts = line.split()
        where = parts[-1].split("lesionseg/preprocess/")[-1]
        print(f"    {float(parts[3]):7.2f}  {where}")
    context.results["case"] = medians


STARTUP_SCRIPT = """
import json, sys, time
began = time.perf_counter()
from lesionseg.infer import Predictor, write_labelmap
imported = time.perf_counter()
predictor = Predictor(sys.argv[1], device="cpu", cache_dir=sys.argv[4])
loaded = time.perf_counter()
prediction = predictor.predict({"flair": sys.argv[2]}, side="auto")
write_labelmap(prediction.labelmap, sys.argv[3])
done = time.perf_counter()
print(json.dumps({"import": imported - began, "load": loaded - imported, "first_case": done - loaded,
                  "backend": predictor.backend}))
"""


def row_startup(context: Context) -> None:
    environment = dict(os.environ, OMP_NUM_THREADS=str(context.args.threads),
                       MKL_NUM_THREADS=str(context.args.threads))
    results = []
    for _ in range(2):
        began = time.perf_counter()
        finished = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT, str(context.bundle), str(context.cases[0]),
                                   str(context.work / "startup.nii.gz"), str(context.work / "onnx-cache")],
                                  capture_output=True, text=True, env=environment, check=True)
        wall = time.perf_counter() - began
        results.append({**json.loads(finished.stdout.strip().splitlines()[-1]), "wall": wall})
    last = results[-1]
    print(f"\n[startup] a fresh process (the ONNX export cached): interpreter + imports + bundle + first case "
          f"{last['wall']:.2f} s: importing lesionseg.infer {last['import']:.2f} s, loading the bundle (backend "
          f"{last['backend']}; this is where MONAI, the rest of torch and ONNX Runtime are imported) "
          f"{last['load']:.2f} s, first case {last['first_case']:.2f} s")
    context.results["startup"] = last


def row_nnunet(context: Context) -> None:
    python = context.args.nnunet_python
    if not python:
        print("\n[nnunet] skipped: give --nnunet-python (see the module docstring for its environment)")
        return
    environment = dict(os.environ, OMP_NUM_THREADS=str(context.args.threads),
                       MKL_NUM_THREADS=str(context.args.threads))
    environment.pop("PYTHONPATH", None)
    rows = {}
    for mirroring in (False, True):
        command = [python, str(HERE / "nnunet_timing.py"), str(context.cases[0]), str(context.work / "nnunet"),
                   "--repeats", str(context.args.case_repeats + 1), "--threads", str(context.args.threads)]
        if mirroring:
            command.append("--mirroring")
        finished = subprocess.run(command, capture_output=True, text=True, env=environment)
        if finished.returncode != 0:
            print(f"\n[nnunet] failed: {finished.stderr.strip().splitlines()[-1] if finished.stderr else '?'}")
            return
        rows[mirroring] = json.loads(finished.stdout.strip().splitlines()[-1])
    case = context.results.get("case", {})
    ours = min((stages["total"] for name, stages in case.items() if name.startswith("after")), default=None)
    print(f"\n[nnunet] nnU-Net v2 {rows[False]['version']} 2D predictor on the same case (reading to writing, model "
          f"loaded once; plan {rows[False]['plan']}; untrained weights)")
    for mirroring, row in rows.items():
        label = "with mirroring (its default)" if mirroring else "without mirroring"
        ratio = f"; ours after/nnU-Net x{ours / row['per_case']:.2f}" if ours else ""
        print(f"  {label:30s} {row['per_case']:.2f} s per case (median of {len(row['times']) - 1} after a warm-up)"
              f"{ratio}")
    context.results["nnunet"] = rows


def untrained_bundle(path: Path, channel: str, size: int = 192, preset: str | None = None,
                     weights_of: Path | None = None) -> Path:
    """A bundle for timing: the paper's U-Net at ``size`` px, or the network, slice size and neighbouring
    slices of a preset (e.g. ``"cpu"``, the default on this machine); untrained, or with the weights of the
    bundle ``weights_of`` (same network), for post-processing that sees a trained model's sparse output
    instead of an untrained one's noise."""
    import torch

    from lesionseg.bundle import make_manifest, save_bundle
    from lesionseg.models import build_network, network_config
    from lesionseg.preprocess import PrepareConfig
    from lesionseg.train.presets import PRESETS

    torch.manual_seed(0)
    name, kwargs, prepare = "unet2d", {}, {"size": size}
    if preset is not None:
        values = PRESETS[preset].train_values()
        name, kwargs, prepare = values["network"], values["network_kwargs"], PRESETS[preset].prepare_values()
    planes = 2 * int(prepare.get("context_slices", 0)) + 1
    network = build_network(name, planes, 2, **kwargs)
    if weights_of is not None:
        from lesionseg.bundle import load_state_dicts

        network.load_state_dict(load_state_dicts(weights_of)[0])
    manifest = make_manifest(
        network_config=network_config(name, planes, 2, **kwargs), channels=[channel], reference_channel=channel,
        expected_spacing_mm=[1.0, 1.0, 3.0], preprocessing=PrepareConfig(**prepare, channels=[channel]).to_dict(),
        members=[{"fold": None, "validation": {}}],
        provenance={"train_config": {}, "curriculum": {}, "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 0}, "fold_metrics": []},
        name="benchmark", description="untrained, for timing")
    return save_bundle(path, manifest, [network.state_dict()])


def row_paper(context: Context) -> None:
    from lesionseg.data import discover
    from lesionseg.infer import Predictor, segment_cases
    from lesionseg.synth import write_cohort

    bundle = untrained_bundle(context.work / "paper.lsb", "flair")
    write_cohort(context.work / "paper-data", context.args.paper_cases, seed=5)
    cases = discover(context.work / "paper-data")
    predictor = Predictor(bundle, device="cpu", backend="torch")
    image = sitk.ReadImage(str(cases[0].channels["flair"]), sitk.sitkFloat32)
    predictor.predict({"flair": image}, side="left")  # warm-up
    began = time.perf_counter()
    prediction = predictor.predict({"flair": image}, side="left")
    total = time.perf_counter() - began
    network = prediction.timings["network"]
    print(f"\n[paper] untrained paper U-Net (32-512) at 192 px, side given, PyTorch: one case "
          f"({len(prediction.record.slice_indices)} slices) end to end {total:.2f} s, network {network:.2f} s -> "
          f"x{total / network:.2f}")
    began = time.perf_counter()
    segment_cases(predictor, cases, context.work / "paper-out", side="left")
    elapsed = time.perf_counter() - began
    print(f"  {len(cases)} cases with the model loaded once: {elapsed / len(cases):.2f} s per case")


def row_ct(context: Context) -> None:
    from lesionseg.infer import Predictor
    from lesionseg.synth import make_case
    from lesionseg.synth.variety import THICK_SKULL_MM

    # the default network and slices, with the starter's weights (trained, though not on HU: its output is
    # sparse as a trained model's is, which post-processing's time depends on; its masks are not the point)
    ct_bundle = untrained_bundle(context.work / "ct.lsb", "ct", preset="cpu", weights_of=context.bundle)
    began = time.perf_counter()
    # with a skull base (foramen magnum, petrous ridges), a thick skull and beam hardening: the head a CT brain
    # extraction must cut at the skull's openings (benchmarks/bench_ct_brain.py --big measures its mask)
    ct = make_case(1, seed=6, modalities=("ct",), size_xyz=(512, 512, 300), spacing_mm=(0.45, 0.45, 0.5),
                   noise=True, bias=False, skull_base=True, skull_thickness_mm=THICK_SKULL_MM, beam_hardening=True)
    print(f"\n[ct] 512x512x300 CT-like volume with a skull base synthesised in {time.perf_counter() - began:.0f} s")
    ct_predictor = Predictor(ct_bundle, device="cpu", backend="torch")
    began = time.perf_counter()
    ct_prediction = ct_predictor.predict({"ct": ct.channels["ct"]}, side="left")
    total = time.perf_counter() - began
    print(f"  segmented in {total:.1f} s: preprocessing {ct_prediction.timings['preprocess']:.1f} s, "
          f"network {ct_prediction.timings['network']:.1f} s ({len(ct_prediction.record.slice_indices)} slices), "
          f"post-processing {ct_prediction.timings['postprocess']:.1f} s; ratio to network "
          f"x{total / ct_prediction.timings['network']:.2f}")


class _Bf16Autocast:
    """A network called under bfloat16 autocast (CPU: oneDNN's bf16 kernels), for the 3D row."""

    def __init__(self, network: Any) -> None:
        self.network = network

    def __call__(self, windows: Any) -> Any:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.network(windows).float()


def row_sliding3d(context: Context) -> None:
    """The 3D path: MONAI's sliding window over a whole volume with ``unet3d`` (untrained, seeded; the
    README's patch 16 x 64 x 64), today's settings against batch sizes, less overlap, bf16 and channels_last_3d."""
    import torch

    from lesionseg.models import build_network
    from lesionseg.models.sliding import sliding_window_probabilities

    torch.manual_seed(0)
    network = build_network("unet3d", 1, 2).eval()
    patch = (16, 64, 64)
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(context.cases[0]), sitk.sitkFloat32))  # (z, y, x)
    # the central 32 x 128 x 128 voxels: 27 windows (a whole case's 150 take minutes per variant on one core)
    start = [(n - c) // 2 for n, c in zip(array.shape, (32, 128, 128))]
    array = array[start[0]:start[0] + 32, start[1]:start[1] + 128, start[2]:start[2] + 128]
    volume = ((array - array.mean()) / (array.std() + 1e-6))[None].astype(np.float32)  # (1, Z, Y, X)
    channels_last = copy.deepcopy(network).to(memory_format=torch.channels_last_3d)
    variants: dict[str, Callable[[], np.ndarray]] = {
        "batch 4, overlap 0.5 (today)": lambda: sliding_window_probabilities([network], volume, patch, batch_size=4),
    }
    for batch in (1, 2, 8):
        variants[f"batch {batch}"] = (lambda b=batch: sliding_window_probabilities([network], volume, patch,
                                                                                   batch_size=b))
    variants["overlap 0.25 (other windows)"] = lambda: sliding_window_probabilities([network], volume, patch,
                                                                                     batch_size=4, overlap=0.25)
    variants["bf16 autocast"] = lambda: sliding_window_probabilities([_Bf16Autocast(network)], volume, patch,
                                                                     batch_size=4)
    variants["channels_last_3d"] = lambda: sliding_window_probabilities([channels_last], volume, patch, batch_size=4)
    repeats = min(context.args.repeats, 3)
    outputs = {name: run() for name, run in variants.items()}  # also the warm-up
    times = interleaved_times(variants, repeats)
    reference = outputs["batch 4, overlap 0.5 (today)"]
    # an untrained network's probabilities hover around one value: the masks compared are its upper half, a
    # mask as large as it can be, so any voxel a variant changes shows in the Dice
    threshold = float(np.median(reference))
    base = statistics.median(times["batch 4, overlap 0.5 (today)"])
    print(f"\n[sliding3d] unet3d (16-256, untrained) over one {volume.shape[1]}x{volume.shape[2]}x{volume.shape[3]} "
          f"volume in {patch[0]}x{patch[1]}x{patch[2]} windows (MONAI sliding window, Gaussian blend); median of "
          f"{repeats} interleaved runs; masks at the reference's median probability")
    print(f"  {'variant':34s} {'s/case':>7s} {'x today':>7s} {'max |dp|':>9s} {'Dice':>7s}")
    summary = {}
    for name in variants:
        seconds = statistics.median(times[name])
        difference = float(np.abs(outputs[name] - reference).max())
        agreement = dice(outputs[name] >= threshold, reference >= threshold)
        summary[name] = {"seconds": seconds, "ratio": seconds / base, "max_dp": difference, "dice": agreement}
        print(f"  {name:34s} {seconds:7.2f} {seconds / base:7.2f} {difference:9.2g} {agreement:7.4f}")
    context.results["sliding3d"] = summary


ROWS: dict[str, Callable[[Context], None]] = {
    "network": row_network, "side": row_side, "case": row_case, "startup": row_startup, "nnunet": row_nnunet,
    "paper": row_paper, "ct": row_ct, "sliding3d": row_sliding3d,
}


def flair_cases(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` synthetic 192 x 224 x 48 FLAIR cases (1 x 1 x 3 mm) written as NIfTI files."""
    from lesionseg.synth import make_case

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(1, count + 1):
        case = make_case(index, seed=seed, size_xyz=FLAIR_SIZE)
        path = folder / f"{case.case_id}_flair.nii.gz"
        sitk.WriteImage(case.channels["flair"], str(path))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch / ONNX Runtime threads (default 1)")
    parser.add_argument("--cases", type=int, default=5, help="synthetic FLAIR cases compared (default 5)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs of each network variant")
    parser.add_argument("--case-repeats", type=int, default=2, help="interleaved runs over the cases (case row)")
    parser.add_argument("--paper-cases", type=int, default=10)
    parser.add_argument("--rows", default="network,side,case,startup,nnunet,paper,ct,sliding3d",
                        help=f"comma-separated rows among {', '.join(ROWS)}")
    parser.add_argument("--skip-ct", action="store_true", help="leave out the CT row")
    parser.add_argument("--no-compile", action="store_true", help="leave out torch.compile (its warm-up is long)")
    parser.add_argument("--nnunet-python", help="the python of nnU-Net's virtual environment (see above)")
    parser.add_argument("--bundle", type=Path, help="the bundle (default: the shipped starter model)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    from lesionseg.starter import starter_bundle_path

    torch.set_num_threads(args.threads)
    rows = [name.strip() for name in args.rows.split(",") if name.strip()]
    unknown = [name for name in rows if name not in ROWS]
    if unknown:
        parser.error(f"unknown rows {', '.join(unknown)}; choose among {', '.join(ROWS)}")
    if args.skip_ct and "ct" in rows:
        rows.remove("ct")
    work = Path(tempfile.mkdtemp(prefix="lesionseg-bench-segment-"))
    try:
        bundle = args.bundle or starter_bundle_path()
        print(f"bench_segment: torch {torch.__version__}, {args.threads} thread(s), bundle {Path(bundle).name}, "
              f"{args.cases} synthetic 192x224x48 FLAIR cases (seed {args.seed})")
        context = Context(args, work, Path(bundle), flair_cases(work / "flair", args.cases, args.seed))
        for name in rows:
            ROWS[name](context)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
