"""Benchmark: ``segment`` end to end against the predictor's own network calls; time per case with the model
loaded once; one 512 x 512 x 300 CT-like volume.

The bundles are built here from untrained networks of the default architecture (the paper's 5-level 2D
U-Net, slices of 192 x 192): timing does not depend on the weights. Single-channel, no registration, no
test-time augmentation, side given (one orientation), as the issue asks.

Run: ``.venv/bin/python benchmarks/bench_segment.py [--cases 10] [--skip-ct]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

from lesionseg.bundle import make_manifest, save_bundle
from lesionseg.data import discover
from lesionseg.infer import Predictor, segment_cases
from lesionseg.models import build_network, network_config
from lesionseg.preprocess import PrepareConfig
from lesionseg.synth import make_case, write_cohort


def untrained_bundle(path: Path, channel: str, size: int = 192) -> Path:
    import torch

    torch.manual_seed(0)
    network = build_network("unet2d", 1, 2)
    manifest = make_manifest(
        network_config=network_config("unet2d", 1, 2), channels=[channel], reference_channel=channel,
        expected_spacing_mm=[1.0, 1.0, 3.0], preprocessing=PrepareConfig(size=size, channels=[channel]).to_dict(),
        members=[{"fold": None, "validation": {}}],
        provenance={"train_config": {}, "curriculum": {}, "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 0}, "fold_metrics": []},
        name="benchmark", description="untrained, for timing")
    return save_bundle(path, manifest, [network.state_dict()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10)
    parser.add_argument("--skip-ct", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lesionseg-bench-segment-"))
    try:
        bundle = untrained_bundle(work / "flair.lsb", "flair")
        write_cohort(work / "data", args.cases, seed=5)
        cases = discover(work / "data")
        predictor = Predictor(bundle, device="cpu")
        image = sitk.ReadImage(str(cases[0].channels["flair"]), sitk.sitkFloat32)
        predictor.predict({"flair": image}, side="left")  # warm-up
        began = time.perf_counter()
        prediction = predictor.predict({"flair": image}, side="left")
        total = time.perf_counter() - began
        network = prediction.timings["network"]
        print(f"one 192x224x48 FLAIR case ({len(prediction.record.slice_indices)} brain slices at 192x192):")
        print(f"  end to end {total:.2f} s; network calls {network:.2f} s -> ratio x{total / network:.2f} "
              f"(the issue asks <= x2)")
        print(f"  preprocessing {prediction.timings['preprocess']:.2f} s ({100 * prediction.timings['preprocess'] / total:.0f} %),"
              f" postprocessing {prediction.timings['postprocess']:.2f} s, reading {prediction.timings['read']:.2f} s")
        began = time.perf_counter()
        result = segment_cases(predictor, cases, work / "out", side="left")
        elapsed = time.perf_counter() - began
        seconds = [float(row["seconds"]) for row in result.rows]
        print(f"{len(cases)} cases with the model loaded once: {elapsed:.1f} s, {elapsed / len(cases):.2f} s per case "
              f"(median {statistics.median(seconds):.2f} s; reading overlaps computing)")
        if not args.skip_ct:
            ct_bundle = untrained_bundle(work / "ct.lsb", "ct")
            began = time.perf_counter()
            ct = make_case(1, seed=6, modalities=("ct",), size_xyz=(512, 512, 300), spacing_mm=(0.45, 0.45, 0.5),
                           noise=True, bias=False)
            print(f"512x512x300 CT-like volume synthesised in {time.perf_counter() - began:.0f} s")
            ct_predictor = Predictor(ct_bundle, device="cpu")
            began = time.perf_counter()
            ct_prediction = ct_predictor.predict({"ct": ct.channels["ct"]}, side="left")
            total = time.perf_counter() - began
            print(f"  segmented in {total:.1f} s: preprocessing {ct_prediction.timings['preprocess']:.1f} s, "
                  f"network {ct_prediction.timings['network']:.1f} s ({len(ct_prediction.record.slice_indices)} slices), "
                  f"post-processing {ct_prediction.timings['postprocess']:.1f} s; ratio to network "
                  f"x{total / ct_prediction.timings['network']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
