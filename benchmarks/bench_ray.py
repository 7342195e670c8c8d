"""Benchmark: a synthetic cohort through ``lesionseg segment --engine ray`` (Ray actors, one model each)
against the single-process batch, both as the whole command (start-up, Ray's start, model loads, reading,
writing), run one after the other and alternating when repeated.

It checks that both give voxel-equal masks and the same ``summary.csv`` (every column but ``seconds``), and
prints the throughput ratio (single-process time / Ray time: above 1 when Ray is faster). The bundle is an
untrained network of the default architecture (timing does not depend on the weights); the side is given
(one orientation), as in ``bench_segment.py``.

``--threads N`` is the cores the run may use: the single process gets N torch threads, a local Ray gets
``--workers`` CPUs (one thread per actor). Pin the cores with ``taskset``; on one core, Ray's actors share it
and the ratio is about 1 or below (Ray's start and a model load per actor are the cost, nothing is gained).

Run: ``taskset -c 0,1 .venv/bin/python benchmarks/bench_ray.py --threads 2 [--cases 20] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def untrained_bundle(path: Path, size: int) -> Path:
    """The default 2D U-Net, untrained, for FLAIR slices of ``size`` x ``size``."""
    import torch

    from lesionseg.bundle import make_manifest, save_bundle
    from lesionseg.models import build_network, network_config
    from lesionseg.preprocess import PrepareConfig

    torch.manual_seed(0)
    network = build_network("unet2d", 1, 2)
    manifest = make_manifest(
        network_config=network_config("unet2d", 1, 2), channels=["flair"], reference_channel="flair",
        expected_spacing_mm=[1.0, 1.0, 3.0], preprocessing=PrepareConfig(size=size, channels=["flair"]).to_dict(),
        members=[{"fold": None, "validation": {}}],
        provenance={"train_config": {}, "curriculum": {}, "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 0}, "fold_metrics": []},
        name="benchmark", description="untrained, for timing")
    return save_bundle(path, manifest, [network.state_dict()])


def run_segment(bundle: Path, data: Path, out: Path, work: Path, threads: int, extra: list[str]) -> float:
    """Wall time of one ``lesionseg segment`` command (Ray's files kept under ``work``)."""
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), RAY_TMPDIR=str(work / "ray"),
               RAY_USAGE_STATS_ENABLED="0")
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "lesionseg", "segment", str(bundle), str(data), "-o", str(out),
                             "--side", "left", "--device", "cpu", "--progress", "none", *extra],
                            capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"lesionseg segment {' '.join(extra)} exited {result.returncode}:\n{result.stderr}")
    return seconds


def summary(folder: Path) -> tuple[list[dict[str, str]], list[float]]:
    """``summary.csv`` rows without ``seconds``, and the ``seconds``."""
    with (folder / "summary.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows], [float(row["seconds"]) for row in rows]


def same_masks(first: Path, second: Path, case_ids: list[str]) -> bool:
    for case_id in case_ids:
        a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{case_id}.nii.gz"))) for folder in (first, second))
        if not np.array_equal(a, b):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="cores the run may use (default 1)")
    parser.add_argument("--size", default="192,224,48", help="case size in voxels x,y,z (default 192,224,48)")
    parser.add_argument("--slice-size", type=int, default=192, help="the network's slice size (default 192)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each engine, alternating (default 1)")
    args = parser.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SystemExit("Ray is not installed: pip install -c constraints.txt -e '.[ray]'")
    from lesionseg.synth import write_cohort

    size = tuple(int(value) for value in args.size.split(","))
    work = Path(tempfile.mkdtemp(prefix="lesionseg-bench-ray-"))
    try:
        bundle = untrained_bundle(work / "model.lsb", args.slice_size)
        began = time.perf_counter()
        write_cohort(work / "data", args.cases, seed=5, size_xyz=size)
        print(f"{args.cases} synthetic FLAIR cases of {'x'.join(map(str, size))} voxels written in "
              f"{time.perf_counter() - began:.0f} s; network slices {args.slice_size}x{args.slice_size}, side given; "
              f"{args.threads} thread(s) for the single process, {args.workers} Ray actors of 1 thread")
        times: dict[str, list[float]] = {"single process": [], "ray": []}
        engines = {"single process": [], "ray": ["--engine", "ray", "--workers", str(args.workers)]}
        for _ in range(args.repeats):
            for name, extra in engines.items():
                times[name].append(run_segment(bundle, work / "data", work / name.replace(" ", "_"), work,
                                               args.threads, extra))
        local_rows, local_seconds = summary(work / "single_process")
        ray_rows, ray_seconds = summary(work / "ray")
        ids = [row["case_id"] for row in local_rows if row["status"] == "ok"]
        print(f"same summary.csv (all columns but seconds): {local_rows == ray_rows}; "
              f"voxel-equal masks: {same_masks(work / 'single_process', work / 'ray', ids)} ({len(ids)} cases ok)")
        for name, seconds in (("single process", local_seconds), ("ray", ray_seconds)):
            wall = min(times[name])
            print(f"  {name:>14}: {wall:6.1f} s for the command ({args.cases / wall * 60:5.1f} cases/min); median "
                  f"{float(np.median(seconds)):.2f} s per case in summary.csv (runs: "
                  f"{', '.join(f'{t:.1f}' for t in times[name])} s)")
        print("  (a Ray case's seconds include its wait for the actor's model: each actor holds two cases)")
        ratio = min(times["single process"]) / min(times["ray"])
        print(f"throughput ratio ray / single process: x{ratio:.2f} (above 1: Ray is faster)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
