"""Benchmark: preparing one 192 x 224 x 48 FLAIR case, with and without a second channel to register,
and the speed-up of 2 workers over 1 on a small cohort.

Run: ``.venv/bin/python benchmarks/bench_prepare.py [--cases 4] [--repeats 2]``. Prints seconds and
ratios; timings on a shared 2-core machine are noisy, so compare the numbers of one run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from lesionseg.data import discover
from lesionseg.preprocess import PrepareConfig, prepare_case, prepare_dataset
from lesionseg.synth import write_cohort


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4, help="cases for the worker comparison (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of the single-case timings (best of)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lesionseg-bench-prepare-"))
    try:
        write_cohort(work / "flair", args.cases, modalities=("flair",), seed=0)
        write_cohort(work / "two", 1, modalities=("flair", "dwi"), seed=0, misalignment=(5.0, 5.0))
        flair_case = discover(work / "flair")[0]
        two_case = discover(work / "two", allow_unaligned_channels=True)[0]
        one_channel = best_of(args.repeats, lambda: prepare_case(flair_case, PrepareConfig()))
        two_channels = best_of(args.repeats, lambda: prepare_case(
            two_case, PrepareConfig(channels=["flair", "dwi"], reference="flair")))
        print(f"prepare one 192x224x48 FLAIR case:                 {one_channel:6.2f} s")
        print(f"prepare one case, FLAIR + DWI registered onto it:   {two_channels:6.2f} s "
              f"(x{two_channels / one_channel:.2f}; registration {two_channels - one_channel:.2f} s)")
        timings = {}
        for workers in (1, 2):
            out = work / f"prepared-{workers}"
            start = time.perf_counter()
            prepare_dataset(work / "flair", out, PrepareConfig(), workers=workers)
            timings[workers] = time.perf_counter() - start
            shutil.rmtree(out)
        print(f"prepare {args.cases} cases, 1 worker:                    {timings[1]:6.2f} s "
              f"({timings[1] / args.cases:.2f} s per case)")
        print(f"prepare {args.cases} cases, 2 workers:                   {timings[2]:6.2f} s")
        print(f"speed-up of 2 workers over 1:                       x{timings[1] / timings[2]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
