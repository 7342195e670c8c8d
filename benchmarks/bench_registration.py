"""Benchmark: registration error and time on synthetic cases misaligned by known rigid transforms.

For each case (default grid 192 x 224 x 48 voxels of 1 x 1 x 3 mm), the DWI and CT acquisitions are
moved by rigid transforms drawn up to ``--degrees`` about each axis and ``--mm`` along each axis, then
registered onto the FLAIR (rigid + affine, and optionally the deformable stage). The error is the mean
distance (mm) over the phantom's brain voxels between the recovered and the true transform. Brain
extraction is timed on the FLAIR and the CT of each case too.

Run: ``.venv/bin/python benchmarks/bench_registration.py [--cases 4] [--deformable]``. Timings on a shared
2-core machine are noisy; compare the numbers of one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import SimpleITK as sitk

from lesionseg.preprocess.brain import extract_brain
from lesionseg.preprocess.registration import mean_distance_mm, register
from lesionseg.synth import make_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="192,224,48", help="grid size x,y,z in voxels")
    parser.add_argument("--spacing", default="1,1,3", help="voxel size x,y,z in mm")
    parser.add_argument("--degrees", type=float, default=10.0)
    parser.add_argument("--mm", type=float, default=10.0)
    parser.add_argument("--deformable", action="store_true", help="add the B-spline stage")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    spacing = tuple(float(v) for v in args.spacing.split(","))
    errors: dict[str, list[float]] = {"dwi": [], "ct": []}
    seconds: dict[str, list[float]] = {"dwi": [], "ct": [], "brain_flair": [], "brain_ct": []}
    stages = "rigid+affine+bspline" if args.deformable else "rigid+affine"
    print(f"grid {'x'.join(map(str, size))} of {'x'.join(f'{s:g}' for s in spacing)} mm, misalignment up to "
          f"{args.degrees:g} deg / {args.mm:g} mm per axis, {stages}")
    for index in range(1, args.cases + 1):
        case = make_case(index, seed=args.seed, modalities=("flair", "dwi", "ct"), size_xyz=size,
                         spacing_mm=spacing, misalignment=(args.degrees, args.mm))
        for name, modality in (("flair", "mri"), ("ct", "ct")):
            start = time.perf_counter()
            extract_brain(case.channels[name], modality)
            seconds[f"brain_{name}"].append(time.perf_counter() - start)
        for channel in ("dwi", "ct"):
            truth = case.transforms[channel]
            start = time.perf_counter()
            result = register(case.channels["flair"], case.channels[channel], deformable=args.deformable,
                              case_id=case.case_id, channel=channel, fixed_channel="flair")
            seconds[channel].append(time.perf_counter() - start)
            before = mean_distance_mm(sitk.Transform(), truth, case.brain_mask)
            errors[channel].append(mean_distance_mm(result.transform, truth, case.brain_mask))
            rejected = result.record["affine_rejected"]
            print(f"{case.case_id} {channel:>3} -> flair: {before:5.1f} mm before, "
                  f"{errors[channel][-1]:.2f} mm after, {seconds[channel][-1]:.1f} s "
                  f"{result.record['seconds']}"
                  + (f" (affine rejected: {rejected})" if rejected else ""), flush=True)
    for channel in ("dwi", "ct"):
        print(f"{channel} -> flair: mean error {statistics.mean(errors[channel]):.2f} mm (max "
              f"{max(errors[channel]):.2f}), {statistics.median(seconds[channel]):.1f} s median per "
              "registration")
    for name in ("flair", "ct"):
        print(f"brain extraction {name}: {statistics.median(seconds[f'brain_{name}']):.1f} s median")


if __name__ == "__main__":
    main()
