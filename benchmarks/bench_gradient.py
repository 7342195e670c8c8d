"""Benchmark: the gradient difficulty's full protocol, its cheap estimate, and a deliberately hard subset.

1. A synthetic FLAIR cohort is prepared and a model trained (no curriculum); the run records each slice's
   mean training loss (the cheap estimate). The full protocol (R repeats x E epochs of retraining from the
   trained weights) then scores every lesion slice. Printed: the Spearman rank correlation between the two,
   and of each with lesion area and Fisher contrast.
2. A set of 64 x 64 slices with a deliberately hard subset (invisible, tiny lesions) among easy ones (large,
   bright lesions): the protocol's mean score of each subset (high = easy) and a Mann-Whitney test.

Run: ``.venv/bin/python benchmarks/bench_gradient.py [--cases 8] [--size 96] [--epochs 20] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu, spearmanr

from lesionseg.difficulty import compute_difficulty
from lesionseg.preprocess import PrepareConfig, PreparedDataset, prepare_dataset
from lesionseg.synth import write_cohort
from lesionseg.train import TrainConfig, train_run
from lesionseg.train.gradient import gradient_difficulty, gradient_for_prepared, loss_based_estimate
from lesionseg.train.slices import SliceArrays

NETWORK = {"network": "unet2d", "network_kwargs": {"features": [8, 16, 32, 64, 128]}}


def cohort_part(args, work: Path) -> None:
    write_cohort(work / "data", args.cases, seed=7)
    prepare_dataset(work / "data", work / "prepared", PrepareConfig(size=args.size, negatives=0.0))
    prepared = PreparedDataset(work / "prepared")
    config = TrainConfig(**NETWORK, epochs=args.epochs, all_data=True, batch_size=8, lr=1e-3, optimiser="adam",
                         curriculum="none", device="cpu", augmentation={"enabled": False})
    summary = train_run(work / "prepared", work / "run", config)
    fold = summary.results[0]
    cheap = loss_based_estimate(fold.slice_losses)
    cheap_by_key = {(r["case_id"], r["slice_index"]): c for r, c in zip(fold.train_rows, cheap)}
    full = gradient_for_prepared(prepared, summary.bundle, epochs=2, repeats=args.repeats, device="cpu")
    keys = [(r["case_id"], r["slice_index"]) for r in full.rows]
    cheap_scores = np.array([cheap_by_key[k] for k in keys])
    table = compute_difficulty(prepared, ["area", "contrast"])
    area = table.metrics["area_mm2"]
    contrast = table.metrics["contrast_fisher"]
    print(f"cohort: {args.cases} cases, {len(keys)} lesion slices at {args.size}x{args.size}; model trained "
          f"{args.epochs} epochs ({fold.iterations} iterations); protocol {args.repeats} repeats x 2 epochs")
    print(f"  Spearman(full protocol, cheap estimate) = {spearmanr(full.score, cheap_scores)[0]:+.3f}")
    print(f"  Spearman(full protocol, area)           = {spearmanr(full.score, area)[0]:+.3f}")
    print(f"  Spearman(full protocol, contrast)       = {spearmanr(full.score, contrast)[0]:+.3f}")
    print(f"  Spearman(cheap estimate, area)          = {spearmanr(cheap_scores, area)[0]:+.3f}")
    print(f"  Spearman(cheap estimate, contrast)      = {spearmanr(cheap_scores, contrast)[0]:+.3f}")


def hard_subset_part(args) -> None:
    import torch

    from lesionseg.losses import build_loss
    from lesionseg.models import build_network

    rng = np.random.default_rng(0)
    size, n_easy, n_hard = 64, 24, 8
    yy, xx = np.mgrid[:size, :size]
    images, masks, rows = [], [], []
    for index in range(n_easy + n_hard):
        hard = index >= n_easy
        cy, cx = rng.integers(20, 44, 2)
        radius = rng.uniform(1.5, 2.5) if hard else rng.uniform(7, 10)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius).astype(np.uint8)
        image = rng.normal(0, 1, (size, size)).astype(np.float32) + (0.0 if hard else 3.0) * mask
        images.append(image[None])
        masks.append(mask)
        rows.append({"case_id": f"s{index}", "slice_index": index, "has_lesion": True, "hard": hard})
    arrays = SliceArrays(np.stack(images), np.stack(masks), np.ones((len(rows), size, size), np.uint8), rows)
    torch.manual_seed(0)
    network = build_network("unet2d", 1, 2, features=[4, 8, 16, 32, 64])
    loss = build_loss("ce_dice")
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    x = torch.as_tensor(arrays.images)
    y = torch.as_tensor(arrays.masks[:, None].astype(np.int64))
    for _ in range(args.hard_iterations):
        batch = rng.choice(len(rows), 8, replace=False)
        optimiser.zero_grad()
        loss(network(x[batch]), y[batch]).backward()
        optimiser.step()
    state = {k: v.clone() for k, v in network.state_dict().items()}
    result = gradient_difficulty(arrays, network, state, optimiser="adam", lr=1e-3, epochs=2,
                                 repeats=args.repeats, batch_size=8)
    hard = np.array([r["hard"] for r in result.rows])
    test = mannwhitneyu(result.score[~hard], result.score[hard], alternative="greater")
    print(f"hard subset: {n_easy} easy slices (bright, large lesions), {n_hard} hard (invisible, tiny); model "
          f"trained {args.hard_iterations} iterations")
    print(f"  mean score (high = easy): easy {result.score[~hard].mean():.3f}, hard {result.score[hard].mean():.3f};"
          f" one-tailed Mann-Whitney (easy > hard) p = {test.pvalue:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hard-iterations", type=int, default=150)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lesionseg-bench-gradient-"))
    try:
        cohort_part(args, work)
        hard_subset_part(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
