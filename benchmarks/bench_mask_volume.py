"""Benchmark: how much lesion volume preparation keeps, one threshold at 0.5 against one per lesion.

Embolic showers (several lesions of 0.05-1 mL) on FLAIR phantoms stored obliquely (up to 16 degrees, 5 mm
slices) are prepared as ``prepare`` does (cpu preset: 128 px framing the brain with a 10 mm margin); the
lesion mask is then put on the prepared grid twice, by linear interpolation thresholded at 0.5 (what
``preprocess/grid.py`` did before) and with each lesion keeping its volume
(:mod:`lesionseg.preprocess.mask_resampling`). For each case: the truth volume on the native grid, each
rule's volume as a share of it, the Dice of each rule mapped back onto the native grid (``invert``, as the
issue measured it) and the lesions of 5 voxels or more that a rule loses (no voxel of the prepared mask
within reach of the lesion).

Run: ``.venv/bin/python benchmarks/bench_mask_volume.py [--cases 8] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import cKDTree

from lesionseg.io import Geometry
from lesionseg.preprocess import PrepareConfig
from lesionseg.preprocess.grid import sample_onto_grid
from lesionseg.preprocess.invert import invert
from lesionseg.preprocess.pipeline import prepare_images
from lesionseg.synth import make_case

FULL = np.ones((3, 3, 3), bool)


def physical_points(geometry: Geometry, indices_zyx: np.ndarray) -> np.ndarray:
    direction = np.array(geometry.direction).reshape(3, 3)
    return np.array(geometry.origin) + (indices_zyx[:, ::-1] * np.array(geometry.spacing)) @ direction.T


def lost_lesions(truth: np.ndarray, truth_geometry: Geometry, stack: np.ndarray, grid: Geometry) -> int:
    labels, count = ndimage.label(truth, structure=FULL)
    found = np.argwhere(stack > 0)
    if found.size == 0:
        return int(sum(1 for k in range(1, count + 1) if np.count_nonzero(labels == k) >= 5))
    tree = cKDTree(physical_points(grid, found.astype(float)))
    reach = 0.5 * np.linalg.norm(grid.spacing) + 0.5 * np.linalg.norm(truth_geometry.spacing)
    lost = 0
    for label in range(1, count + 1):
        voxels = np.argwhere(labels == label)
        if len(voxels) >= 5 and tree.query(physical_points(truth_geometry, voxels.astype(float)))[0].min() > reach:
            lost += 1
    return lost


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print("case                obl(deg) lesions truth_mL | 0.5 threshold: vol%  Dice lost | per lesion: vol%  Dice lost  s")
    shares = {False: [], True: []}
    for index in range(1, args.cases + 1):
        case = make_case(index, seed=args.seed, modalities=("flair",), size_xyz=(160, 192, 28),
                         spacing_mm=(1.2, 1.2, 5.0), lesion_pattern="embolic", oblique_deg=16.0)
        config = PrepareConfig(size=128, negatives=0.0, brain_margin_mm=10.0)
        prepared = prepare_images({"flair": case.channels["flair"]}, config, case_id=case.case_id,
                                  lesion=case.lesion_mask, training=True)
        record = prepared.record
        grid = record.grid
        truth = sitk.GetArrayFromImage(case.lesion_mask) > 0
        truth_geometry = Geometry.of(case.lesion_mask)
        truth_ml = truth.sum() * np.prod(truth_geometry.spacing) / 1000.0
        results = {}
        for keep in (False, True):
            tic = time.perf_counter()
            stack = sample_onto_grid(case.lesion_mask, grid, is_mask=True, keep_lesion_volumes=keep)
            seconds = time.perf_counter() - tic
            volume = stack.sum() * np.prod(grid.geometry.spacing) / 1000.0
            all_slices = list(range(grid.n_slices))
            record.slice_indices, record.flipped = all_slices, [False] * len(all_slices)
            native = sitk.GetArrayFromImage(invert(stack.astype(np.float32), record, kind="label")) > 0
            results[keep] = (volume / truth_ml, dice(native, truth),
                             lost_lesions(truth, truth_geometry, stack, grid.geometry), seconds)
            shares[keep].append(volume / truth_ml)
        count = ndimage.label(truth, structure=FULL)[1]
        angle = case.parameters["variety"]["oblique_angle_deg"]
        old, new = results[False], results[True]
        print(f"{case.case_id}  {angle:8.1f} {count:7d} {truth_ml:8.3f} | {100 * old[0]:18.1f} {old[1]:5.2f} {old[2]:4d} | "
              f"{100 * new[0]:15.1f} {new[1]:5.2f} {new[2]:4d} {new[3]:4.2f}", flush=True)
    for keep, name in ((False, "0.5 threshold"), (True, "per lesion")):
        values = 100 * np.array(shares[keep])
        print(f"{name}: volume kept {values.min():.1f}-{values.max():.1f} % (mean {values.mean():.1f} %)")


if __name__ == "__main__":
    main()
