"""Benchmark: preprocessing's share of a segmentation, and a fresh process's start-up (issue 17, builds 2-3).

Three parts, each comparing two variants in one run (the machine is shared: read the ratios):

1. **Accuracy of the coarse working grid.** On synthetic heads with skull (``lesionseg.synth``; MRI and
   CT-like, thin and thick slices, a turned and shifted head, the 512 x 512 x 300 CT), brain extraction and
   the mid-plane search on the native grid (``working_spacing_mm=None``, what earlier versions did) and on
   the ~2 mm working grid (the default): Dice of the coarse-then-refined mask against the native one and
   both against the phantom's intracranial mask, the mid-plane's angle and offset difference (offset: the
   largest distance between the two planes over the brain) when it too is searched on block-averaged volumes
   (which the pipeline does not do: on the 512 x 512 x 300 CT the plane moved by more than 1 degree / 1 mm),
   and the time of each.
2. **Where a case's time goes.** One 512 x 512 x 300 CT-like volume (0.45 x 0.45 x 0.5 mm) and one
   192 x 224 x 48 FLAIR case, each read from a NIfTI file through ``Predictor.predict`` (``--side auto``,
   the default) and written: reading, the preprocessing's sub-steps (brain extraction, mid-plane,
   slicing grid, resampling, normalisation...), network, post-processing, writing; native vs working
   grid, run alternately. The FLAIR case uses the shipped starter bundle. No CT bundle ships, so a bundle
   with the starter's architecture and preprocessing for channel ``ct`` and random weights is made here
   (its last layer biased to background, so that post-processing sees a small lesion as with a real
   model, not a random half of the head).
3. **Start-up.** In fresh processes: ``python -m lesionseg --help`` (and whether torch was imported), and
   the command the Slicer Inference module runs in its child process (``python -m lesionseg segment BUNDLE
   flair=IN.nrrd -o ... --progress jsonl``, as ``LesionSegInferenceLib.Logic.segment_arguments`` builds
   it) from launch to the first network call (a hook stops the child at the first ``torch.nn.Module``
   call), with the slowest imports (``-X importtime``). ``--baseline DIR`` runs the same commands on another
   copy of the package too, alternately: DIR holds the package folder ``lesionseg`` (e.g.
   ``git archive <commit> lesionseg | tar -x -C DIR``).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_preprocess_speed.py [--threads N] [--baseline DIR]``
(``--skip-accuracy``, ``--skip-cases``, ``--skip-startup``, ``--repeats N``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import SimpleITK as sitk

from lesionseg.preprocess.brain import run_brain_extraction
from lesionseg.preprocess.midplane import Midplane, estimate_midplane
from lesionseg.preprocess.orientation import axial_frame
from lesionseg.synth import make_case

CT_SIZE = (512, 512, 300)
CT_SPACING = (0.45, 0.45, 0.5)
VARIANTS = (("native", None), ("2 mm", 2.0))


# ---- 1. accuracy ---------------------------------------------------------------------------------------------
def _heads() -> list[tuple[str, str, str, dict[str, Any], int]]:
    """(label, channel, modality, make_case options, index) of each head."""
    return [
        ("flair 1x1x3", "flair", "mri", {}, 1),
        ("t1 1x1x3", "t1", "mri", {}, 2),
        ("flair 0.6x0.6x5", "flair", "mri", {"size_xyz": (384, 384, 28), "spacing_mm": (0.6, 0.6, 5.0)}, 3),
        ("flair turned 8 deg, shifted", "flair", "mri", {"head_pose": [[6.0, -4.0, 2.0], 8.0]}, 4),
        ("flair oblique 15 deg, tilted", "flair", "mri", {"oblique_deg": 15.0, "head_tilt_deg": 10.0}, 5),
        ("dwi 2x2x2 (no coarse grid)", "dwi", "mri", {"size_xyz": (112, 112, 72), "spacing_mm": (2.0, 2.0, 2.0)}, 7),
        ("ct 1x1x3", "ct", "ct", {}, 8),
        ("ct 0.5x0.5x5", "ct", "ct", {"size_xyz": (384, 448, 29), "spacing_mm": (0.5, 0.5, 5.0)}, 9),
        ("ct turned 6 deg, 0.7x0.7x1", "ct", "ct", {"size_xyz": (274, 320, 144), "spacing_mm": (0.7, 0.7, 1.0),
                                                    "head_pose": [[-5.0, 3.0, 0.0], -6.0]}, 10),
        ("ct 512x512x300 0.45x0.45x0.5", "ct", "ct", {"size_xyz": CT_SIZE, "spacing_mm": CT_SPACING}, 1),
    ]


@functools.lru_cache(maxsize=None)
def head_case(index: int, channel: str, options: str):
    """One synthetic head (cached: the 512 x 512 x 300 CT takes minutes to synthesise)."""
    return make_case(index, seed=7, modalities=(channel,), **json.loads(options))


def dice(a: sitk.Image, b: sitk.Image) -> float:
    x = sitk.GetArrayViewFromImage(a) > 0
    y = sitk.GetArrayViewFromImage(b) > 0
    return float(2.0 * np.count_nonzero(x & y) / max(np.count_nonzero(x) + np.count_nonzero(y), 1))


def plane_differences(a: Midplane, b: Midplane, brain: sitk.Image) -> tuple[float, float]:
    """(angle between the normals in degrees, largest distance between the planes over the brain in mm)."""
    cosine = abs(float(np.dot(a.normal, b.normal)))
    angle = float(np.degrees(np.arccos(min(1.0, cosine))))
    indices = np.argwhere(sitk.GetArrayViewFromImage(brain) > 0)[::97, ::-1].astype(float)  # (n, 3) x, y, z
    direction = np.array(brain.GetDirection()).reshape(3, 3)
    points = np.array(brain.GetOrigin()) + (indices * np.array(brain.GetSpacing())) @ direction.T
    offset = float(np.abs(a.signed_distance(points) - b.signed_distance(points)).max()) if len(points) else 0.0
    return angle, offset


def accuracy(limit: int) -> list[dict[str, Any]]:
    print("\n1. Brain extraction and mid-plane: native grid vs the ~2 mm working grid (refined at the mask's edge)")
    print(f"{'head':<30} {'Dice 2mm/native':>15} {'Dice native/truth':>17} {'Dice 2mm/truth':>14} "
          f"{'plane deg':>9} {'plane mm':>8} {'native s':>8} {'2mm s':>6} {'x faster':>8}")
    rows = []
    for label, channel, modality, options, index in _heads()[: limit or None]:
        case = head_case(index, channel, json.dumps(options))
        image, truth = case.channels[channel], case.brain_mask
        frame = axial_frame(image).geometry
        results = {}
        for name, spacing in VARIANTS:  # native first: a cold cache, if anything, slows the baseline
            began = time.perf_counter()
            mask = run_brain_extraction(image, modality, method="classical", working_spacing_mm=spacing).mask
            plane = estimate_midplane(image, mask, frame, spacing)
            results[name] = (mask, plane, time.perf_counter() - began)
        (native, native_plane, native_s), (coarse, coarse_plane, coarse_s) = results["native"], results["2 mm"]
        angle, offset = plane_differences(native_plane, coarse_plane, native)
        row = {"head": label, "dice_vs_native": dice(coarse, native), "dice_native_truth": dice(native, truth),
               "dice_coarse_truth": dice(coarse, truth), "angle_deg": angle, "offset_mm": offset,
               "native_s": native_s, "coarse_s": coarse_s}
        rows.append(row)
        print(f"{label:<30} {row['dice_vs_native']:15.4f} {row['dice_native_truth']:17.4f} "
              f"{row['dice_coarse_truth']:14.4f} {angle:9.2f} {offset:8.2f} {native_s:8.1f} {coarse_s:6.1f} "
              f"{native_s / coarse_s:8.1f}", flush=True)
    print(f"worst: Dice to the native mask {min(r['dice_vs_native'] for r in rows):.4f} (goal >= 0.99), plane "
          f"{max(r['angle_deg'] for r in rows):.2f} deg / {max(r['offset_mm'] for r in rows):.2f} mm "
          "(goal <= 1 deg / 1 mm)")
    return rows


# ---- 2. stages -----------------------------------------------------------------------------------------------
class StageClock:
    """Seconds spent in named functions, by wrapping them where the pipeline looks them up."""

    #: (module, attribute, stage)
    TARGETS = (
        ("lesionseg.preprocess.brain", "run_brain_extraction", "brain extraction"),
        ("lesionseg.preprocess.pipeline", "register_channels", "registration"),
        ("lesionseg.preprocess.pipeline", "axial_frame", "axial frame"),
        ("lesionseg.preprocess.pipeline", "estimate_midplane", "mid-plane"),
        ("lesionseg.preprocess.grid", "brain_extent_mm", "slicing grid"),
        ("lesionseg.preprocess.pipeline", "prepared_grid", "slicing grid"),
        ("lesionseg.preprocess.pipeline", "sample_onto_grid", "resampling onto the grid"),
        ("lesionseg.preprocess.normalise", "window_ct", "normalisation"),
        ("lesionseg.preprocess.normalise", "normalise_mri", "normalisation"),
        ("lesionseg.preprocess.context", "gather_context", "neighbour slices"),
        ("lesionseg.preprocess", "invert", "post: back to the native grid"),
        ("lesionseg.infer.postprocess", "lesion_mask", "post: threshold and clean-up"),
        ("lesionseg.infer.lesions", "lesion_table", "post: lesion table"),
    )

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def installed(self) -> Iterator["StageClock"]:
        import importlib

        saved = []
        for module_name, attribute, stage in self.TARGETS:
            module = importlib.import_module(module_name)
            original = getattr(module, attribute)
            saved.append((module, attribute, original))
            setattr(module, attribute, self._timed(original, stage))
        try:
            yield self
        finally:
            for module, attribute, original in reversed(saved):
                setattr(module, attribute, original)

    def _timed(self, function: Callable, stage: str) -> Callable:
        @functools.wraps(function)
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - began
        return timed


def random_ct_bundle(path: Path) -> Path:
    """A bundle with the starter's network and preprocessing for channel ``ct`` and random weights (seed 0),
    its last layer biased to background."""
    import torch

    from lesionseg.bundle import make_manifest, read_manifest, save_bundle
    from lesionseg.models import build_network_from_config
    from lesionseg.preprocess import PrepareConfig
    from lesionseg.starter import starter_bundle_path

    starter = read_manifest(starter_bundle_path())
    torch.manual_seed(0)
    network = build_network_from_config(starter["network"])
    last_bias = [p for name, p in network.named_parameters() if name.endswith("bias") and p.shape[0] == 2][-1]
    with torch.no_grad():
        last_bias[0] += 8.0
    settings = dict(starter["preprocessing"], channels=["ct"], reference="ct")
    manifest = make_manifest(
        network_config=starter["network"], channels=["ct"], reference_channel="ct",
        expected_spacing_mm=list(CT_SPACING), preprocessing=PrepareConfig.from_dict(settings).to_dict(),
        members=[{"fold": None, "validation": {}}],
        provenance={"train_config": {}, "curriculum": {}, "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 0}, "fold_metrics": []},
        name="random-ct", description="random weights with the starter's architecture, for timing only")
    return save_bundle(path, manifest, [network.state_dict()])


def one_case(predictor, path: Path, channel: str, spacing: float | None, out: Path) -> dict[str, float]:
    """Seconds per stage of one case read from ``path``, segmented and written to ``out``."""
    from lesionseg.infer import write_labelmap

    predictor.config.working_spacing_mm = spacing
    clock = StageClock()
    began = time.perf_counter()
    with clock.installed():
        prediction = predictor.predict({channel: path}, side="auto", case_id=path.stem)
    written = time.perf_counter()
    write_labelmap(prediction.labelmap, out)
    ended = time.perf_counter()
    stages = {"read": prediction.timings["read"]}
    preprocess = prediction.timings["preprocess"]
    for stage, seconds in clock.seconds.items():
        if not stage.startswith("post"):
            stages[f"  {stage}"] = seconds
    stages["  (rest of preprocessing)"] = preprocess - sum(v for k, v in stages.items() if k.startswith("  "))
    stages["preprocess"] = preprocess
    stages["network"] = prediction.timings["network"]
    for stage, seconds in clock.seconds.items():
        if stage.startswith("post"):
            stages[f"  {stage[6:]}"] = seconds
    stages["postprocess"] = prediction.timings["postprocess"]
    stages["write (.nii.gz labelmap)"] = ended - written
    stages["end to end"] = ended - began
    stages["slices"] = float(len(prediction.record.slice_indices))
    return stages


def stage_table(title: str, predictor, path: Path, channel: str, work: Path, repeats: int) -> None:
    print(f"\n{title}")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in VARIANTS}
    for repeat in range(repeats):
        order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
        for name, spacing in order:
            runs[name].append(one_case(predictor, path, channel, spacing, work / f"mask-{channel}.nii.gz"))
    stages = list(runs["2 mm"][0])
    print(f"{'stage (median of ' + str(repeats) + ')':<40} {'native s':>9} {'2 mm s':>8} {'ratio':>7}")
    for stage in stages:
        before = statistics.median(r.get(stage, 0.0) for r in runs["native"])
        after = statistics.median(r.get(stage, 0.0) for r in runs["2 mm"])
        if stage == "slices":
            print(f"{'brain slices (x2 orientations, side auto)':<40} {before:9.0f} {after:8.0f}")
            continue
        ratio = f"{before / after:7.1f}" if after > 1e-3 else ""
        print(f"{stage:<40} {before:9.2f} {after:8.2f} {ratio}", flush=True)


def cases(work: Path, repeats: int) -> None:
    from lesionseg.infer import Predictor
    from lesionseg.io import write_image
    from lesionseg.starter import starter_bundle_path

    print("\n2. Where a case's time goes (Predictor.predict with --side auto, reading a file, writing the mask)")
    flair = make_case(3, seed=11, modalities=("flair",))
    flair_path = write_image(flair.channels["flair"], work / "flair.nii.gz")
    predictor = Predictor(starter_bundle_path(), device="cpu")
    predictor.predict({"flair": flair_path}, side="auto")  # warm-up: first-call costs are not the case's
    stage_table("192x224x48 FLAIR (1x1x3 mm), starter bundle, model loaded once:", predictor, flair_path, "flair",
                work, repeats)
    began = time.perf_counter()
    ct = head_case(1, "ct", json.dumps({"size_xyz": CT_SIZE, "spacing_mm": CT_SPACING}))  # part 1's, if it ran
    ct_path = write_image(ct.channels["ct"], work / "ct.nii.gz")
    print(f"\n(512x512x300 CT-like volume ready and written in {time.perf_counter() - began:.0f} s; "
          f"{ct_path.stat().st_size / 1e6:.0f} MB)")
    ct_predictor = Predictor(random_ct_bundle(work / "ct.lsb"), device="cpu")
    stage_table("512x512x300 CT (0.45x0.45x0.5 mm), random bundle with the starter's architecture (128 px, 2.5D), "
                "model loaded once:", ct_predictor, ct_path, "ct", work, max(1, repeats // 2))


# ---- 3. start-up ---------------------------------------------------------------------------------------------
#: run first in every child: with LESIONSEG_BENCH_PACKAGE set, ``lesionseg`` is imported from that folder (an
#: editable install's finder would otherwise win over PYTHONPATH)
PRELUDE = r"""
import importlib.machinery, os, sys
_BASE = os.environ.get("LESIONSEG_BENCH_PACKAGE")
class _Package:
    def find_spec(self, name, path=None, target=None):
        if _BASE and name == "lesionseg":
            return importlib.machinery.PathFinder.find_spec(name, [_BASE])
        return None
sys.meta_path.insert(0, _Package())
"""

#: then, for the first network call: stop the child at its first ``torch.nn.Module`` call
FIRST_CALL_HOOK = PRELUDE + r"""
import time
T0 = float(os.environ["LESIONSEG_BENCH_T0"])
class _Hook:
    def find_spec(self, name, path, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec("torch")
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            def first_call(*args, **kwargs):
                sys.stderr.write(f"FIRST_NETWORK_CALL {time.time() - T0:.4f}\n")
                sys.stderr.flush()
                os._exit(0)
            module.nn.Module.__call__ = first_call
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Hook())
import runpy
sys.argv = ["lesionseg"] + sys.argv[1:]
runpy.run_module("lesionseg", run_name="__main__", alter_sys=True)
"""

#: ``python -m lesionseg --help`` through the prelude
HELP = PRELUDE + r"""
import runpy
sys.argv = ["lesionseg", "--help"]
runpy.run_module("lesionseg", run_name="__main__", alter_sys=True)
"""


def _environment(package: Path | None, threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("LESIONSEG_BENCH_PACKAGE", None)
    if package is not None:
        env["LESIONSEG_BENCH_PACKAGE"] = str(package.resolve())
    return env


def _timed_run(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(env, LESIONSEG_BENCH_T0=repr(time.time()))
    began = time.perf_counter()
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - began, result


def _first_call(result: subprocess.CompletedProcess) -> float:
    for line in result.stderr.splitlines():
        if line.startswith("FIRST_NETWORK_CALL"):
            return float(line.split()[1])
    raise RuntimeError(f"the child never called the network:\n{result.stderr[-3000:]}")


def _slowest_imports(stderr: str, count: int = 8) -> list[tuple[float, str]]:
    """The top-level packages with the largest cumulative import time (s) in ``-X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
            if cumulative.isdigit() and not name.startswith(" ") and "." not in name.strip():
                rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:count]


def startup(work: Path, repeats: int, threads: int, baseline: Path | None) -> None:
    from lesionseg.io import write_image
    from lesionseg.starter import starter_bundle_path

    print("\n3. Start-up in fresh processes (seconds from launch; median of "
          f"{repeats}; OMP_NUM_THREADS={threads})")
    case = make_case(2, seed=11, modalities=("flair",))
    volume = write_image(case.channels["flair"], work / "input.nrrd", compress=False)
    child = [str(starter_bundle_path()), f"flair={volume}", "-o", str(work / "lesion.nrrd"), "--prob",
             str(work / "probability.nrrd"), "--lesions", str(work / "lesions.json"), "--brain-out",
             str(work / "brain.nrrd"), "--device", "auto", "--side", "auto", "--min-lesion-mm3", "10",
             "--progress", "jsonl"]
    packages = [("this checkout", None)] + ([("baseline " + baseline.name, baseline)] if baseline else [])
    check = PRELUDE + ("import lesionseg.cli as c; c.build_parser(); assert c.__file__.startswith(_BASE or '')\n"
                       "print(sorted(m for m in ('torch', 'monai', 'scipy', 'SimpleITK') if m in sys.modules))")
    results: dict[str, dict[str, list[float]]] = {name: {"help": [], "first": []} for name, _ in packages}
    for repeat in range(repeats):
        for name, package in packages if repeat % 2 == 0 else packages[::-1]:
            env = _environment(package, threads)
            seconds, result = _timed_run([sys.executable, "-c", HELP], env)
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-2000:])
            results[name]["help"].append(seconds)
            _, result = _timed_run([sys.executable, "-c", FIRST_CALL_HOOK, "segment", *child], env)
            results[name]["first"].append(_first_call(result))
    for name, package in packages:
        env = _environment(package, threads)
        imported = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True,
                                  check=True).stdout.strip()
        _, traced = _timed_run([sys.executable, "-X", "importtime", "-c", FIRST_CALL_HOOK, "segment", *child], env)
        print(f"{name}: `lesionseg --help` {statistics.median(results[name]['help']):.2f} s (the parser imports "
              f"{imported}); the Slicer child `lesionseg segment ... --progress jsonl` (starter bundle, "
              f"192x224x48 FLAIR .nrrd) to its first network call "
              f"{statistics.median(results[name]['first']):.2f} s")
        print("  slowest imports on the way (cumulative s): "
              + ", ".join(f"{module} {seconds:.2f}" for seconds, module in _slowest_imports(traced.stderr)))
    if baseline is not None:
        base = results[packages[1][0]]
        here = results[packages[0][0]]
        print(f"ratio baseline / this checkout: --help x{statistics.median(base['help']) / statistics.median(here['help']):.2f}, "
              f"first network call x{statistics.median(base['first']) / statistics.median(here['first']):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for torch, SimpleITK and the child processes (default 1: a shared machine)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant (default 2; the CT half)")
    parser.add_argument("--heads", type=int, default=0, help="part 1: only the first N heads (0: all)")
    parser.add_argument("--baseline", type=Path, help="part 3: a copy of the package to compare start-up with")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-cases", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch and "
          f"{sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()} SimpleITK thread(s), OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; load average at the start: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    work = Path(tempfile.mkdtemp(prefix="lesionseg-bench-preprocess-"))
    try:
        if not args.skip_accuracy:
            accuracy(args.heads)
        if not args.skip_cases:
            cases(work, args.repeats)
        if not args.skip_startup:
            startup(work, max(3, args.repeats), args.threads, args.baseline)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
