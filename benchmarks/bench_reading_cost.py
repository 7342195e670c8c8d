"""Benchmark: what each extra reading costs per case (lesionseg.bundle.slice_size).

A cpu-preset bundle reads a new scan at its training size and at finer sizes (``AUTO_SCALES`` times it: 128, 160
and 192 pixels at 128). This times ``Predictor.predict`` on the same cases read at the first one, two, ... of those
sizes, the model loaded once per
variant, the variants interleaved case by case so that the machine's noise falls on all of them alike, and
prints the median seconds per case and the ratio to one reading.

Run: ``.venv/bin/python benchmarks/bench_reading_cost.py --bundle W/run-base-0/model.lsb --held-out W/heldout
--cases 5 --threads 2``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from lesionseg.bundle import read_manifest
from lesionseg.bundle.slice_size import scaled_reading_sizes
from lesionseg.data import discover
from lesionseg.infer import Predictor
from lesionseg.models import size_multiple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True, help="a 2D bundle (e.g. cpu preset, 128 pixels)")
    parser.add_argument("--held-out", type=Path, required=True, help="a folder of cases")
    parser.add_argument("--cases", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = discover(args.held_out)[: args.cases]
    manifest = read_manifest(args.bundle)
    size = int(manifest["preprocessing"]["size"])
    multiple = size_multiple(manifest["network"]["name"], **manifest["network"].get("kwargs", {}))
    sizes = scaled_reading_sizes(size, "auto", multiple)
    predictors = {"+".join(map(str, sizes[:count])): Predictor(args.bundle, device="cpu", backend="torch",
                                                               slice_sizes=sizes[:count])
                  for count in range(1, len(sizes) + 1)}
    channel = manifest["reference_channel"]
    first = cases[0]
    for predictor in predictors.values():  # warm-up
        predictor.predict({channel: first.channels[channel]}, side="auto", case_id=first.case_id)
    seconds: dict[str, list[float]] = {name: [] for name in predictors}
    for case in cases:
        for name, predictor in predictors.items():
            began = time.perf_counter()
            predictor.predict({channel: case.channels[channel]}, side="auto", case_id=case.case_id)
            seconds[name].append(time.perf_counter() - began)
    base = float(np.median(seconds[str(size)]))
    print(f"bench_reading_cost: {len(cases)} cases of {args.held_out.name}, {args.threads} threads, --side auto, "
          f"PyTorch; median seconds per case (interleaved)")
    for name, values in seconds.items():
        median = float(np.median(values))
        print(f"  {name + ' px':<22} {median:6.2f} s   x{median / base:.2f} of one reading")


if __name__ == "__main__":
    main()
