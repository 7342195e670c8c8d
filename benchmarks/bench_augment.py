"""Benchmark: the cost of training augmentation per batch of 12 slices of 1 x 192 x 192, on versus off.

Only the transforms are timed (plus stacking the batch into tensors), not the network. "On" is the
default :class:`~lesionseg.train.augment.AugmentConfig` (each transform with its own probability);
"every transform" forces all six to run on every slice (the worst case); then each transform alone at
probability 1. Torch runs on one thread by default, as in a DataLoader worker.

Run: ``.venv/bin/python benchmarks/bench_augment.py [--batches 20] [--threads 1]``. Timings on a shared
2-core machine are noisy; compare the numbers of one run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lesionseg.train.augment import AugmentConfig, build_augmentation

PROBABILITIES = ("flip_prob", "rotate_prob", "elastic_prob", "bias_prob", "motion_prob", "noise_prob")


def make_batch(rng: np.random.Generator, size: int = 192, count: int = 12) -> list[dict]:
    """Slices like prepared ones: z-scored head with a lesion on the patient's left (columns >= size/2)."""
    yy, xx = np.mgrid[:size, :size]
    head = ((yy - size / 2) / (0.42 * size)) ** 2 + ((xx - size / 2) / (0.34 * size)) ** 2 < 1
    samples = []
    for _ in range(count):
        row, column = rng.uniform(0.3, 0.7) * size, rng.uniform(0.55, 0.75) * size
        lesion = ((yy - row) ** 2 + (xx - column) ** 2 < (0.06 * size) ** 2).astype(np.int64)
        image = np.where(head, 1.0, -1.5) + 0.8 * lesion + rng.normal(0, 0.1, (size, size))
        samples.append({"image": image[None].astype(np.float32), "mask": lesion[None]})
    return samples


def seconds_per_batch(augment, samples: list[dict], batches: int) -> float:
    def run() -> None:
        out = [augment(sample) for sample in samples]
        torch.stack([torch.as_tensor(o["image"]) for o in out])
        torch.stack([torch.as_tensor(o["mask"]) for o in out])

    run()  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        run()
    return (time.perf_counter() - start) / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches timed per setting (default 20)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a DataLoader worker)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    samples = make_batch(np.random.default_rng(0))
    off = seconds_per_batch(build_augmentation({"enabled": False}), samples, args.batches)
    on = seconds_per_batch(build_augmentation(AugmentConfig(), seed=0), samples, args.batches)
    always = build_augmentation({name: 1.0 for name in PROBABILITIES}, seed=0)
    every = seconds_per_batch(always, samples, args.batches)
    print(f"batch of 12 x 1 x 192 x 192, torch threads {args.threads}, {args.batches} batches per setting")
    print(f"augmentation off:                 {1000 * off:8.1f} ms per batch")
    print(f"augmentation on (defaults):       {1000 * on:8.1f} ms per batch  (x{on / off:.0f} of off; "
          f"{1000 * (on - off) / 12:.1f} ms per slice)")
    print(f"every transform on every slice:   {1000 * every:8.1f} ms per batch  (x{every / on:.1f} of defaults)")
    for name in PROBABILITIES:
        alone = {other: 0.0 for other in PROBABILITIES}
        alone[name] = 1.0
        cost = seconds_per_batch(build_augmentation(alone, seed=0), samples, max(3, args.batches // 4))
        print(f"  {name.replace('_prob', ''):8s} alone, always:     {1000 * cost:8.1f} ms per batch")


if __name__ == "__main__":
    main()
