"""Benchmark: the gradient difficulty's full protocol, its cheap estimate, and a deliberately hard subset.

The protocol (``lesionseg.train.gradient``) records each slice's loss just before and just after each of
its updates while a converged model is retrained. Printed for each run, all normalised so that high = easy:

- ``retraining (score)``: the default measure, (loss before the slice's first update - after its last) /
  before, averaged over the repeats;
- ``step (literal)``: ``measure="step"``, the mean per-update decrease before - after;
- ``step, relative``: the per-update decrease divided by the loss before it, averaged;
- ``step rank``: the rank of the slice's decrease among the slices of its batch (0 = smallest, 1 = largest),
  averaged;
- ``retraining, absolute``: before the first update - after the last, averaged over the repeats.

Besides the converged start, the same protocol from a fresh initialisation (one seeded initialisation of
the same network) is printed for the record.

1. A synthetic FLAIR cohort is prepared and a model trained (no curriculum); the run records each slice's
   mean training loss (the cheap estimate). The protocol (R repeats x 2 epochs) then scores every lesion
   slice, with the bundle's optimiser and with RMSprop at 1e-4 (the paper's). Printed: the Spearman rank
   correlation of each score with the cheap estimate, lesion area and Fisher contrast (all high = easy, so a
   sensible score correlates positively).
2. A set of 64 x 64 slices with a deliberately hard subset (invisible, tiny lesions) among easy ones (large,
   bright lesions), a small U-Net trained on all of them (the converged model): each score's mean on each
   subset and a one-tailed Mann-Whitney test (easy > hard), and each subset's mean loss before and after
   the protocol's updates.

Run: ``.venv/bin/python benchmarks/bench_gradient.py [--cases 8] [--size 64] [--epochs 60] [--repeats 5]
[--hard-iterations 600] [--skip-cohort] [--threads N]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu, spearmanr

from lesionseg.difficulty import compute_difficulty
from lesionseg.preprocess import PrepareConfig, PreparedDataset, prepare_dataset
from lesionseg.synth import write_cohort
from lesionseg.synth.disks import disk_slices
from lesionseg.train import TrainConfig, train_run
from lesionseg.train.gradient import (
    GradientResult,
    gradient_difficulty,
    loss_based_estimate,
    normalise_high_easy,
)
from lesionseg.train.slices import SliceArrays, load_slices

NETWORK = {"network": "unet2d", "network_kwargs": {"features": [8, 16, 32, 64, 128]}}


def candidate_scores(result: GradientResult) -> dict[str, np.ndarray]:
    """The default score and the alternatives (module docstring), per slice of ``result.rows``."""
    steps = result.steps
    row = np.array([s["row"] for s in steps])
    before = np.array([s["before"] for s in steps])
    after = np.array([s["after"] for s in steps])
    repeat = np.array([s["repeat"] for s in steps])
    _, batch_id = np.unique([(s["repeat"], s["epoch"], s["iteration"]) for s in steps], axis=0,
                            return_inverse=True)
    batch_id = batch_id.ravel()
    rank = np.full(len(steps), 0.5)
    for b in np.unique(batch_id):
        chosen = np.flatnonzero(batch_id == b)
        if chosen.size > 1:
            rank[chosen] = np.argsort(np.argsort((before - after)[chosen])) / (chosen.size - 1)
    relative = (before - after) / np.maximum(before, 1e-12)
    values = []
    for r in sorted(set(row.tolist())):  # result.rows are the lesion rows in input (= array) order
        mine = row == r
        absolute = [before[mine & (repeat == q)][0] - after[mine & (repeat == q)][-1]
                    for q in np.unique(repeat[mine])]
        values.append((relative[mine].mean(), rank[mine].mean(), float(np.mean(absolute))))
    values = np.array(values)
    return {"retraining (score)": normalise_high_easy(result.retraining_decrease),
            "step (literal)": normalise_high_easy(result.mean_decrease),
            "step, relative": normalise_high_easy(values[:, 0]),
            "step rank": normalise_high_easy(values[:, 1]),
            "retraining, absolute": normalise_high_easy(values[:, 2])}


def fresh_weights(network, seed: int = 0) -> dict:
    """A seeded fresh initialisation of ``network``'s architecture (the global random state is restored)."""
    import copy

    import torch

    clone = copy.deepcopy(network)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
    return {k: v.detach().clone() for k, v in clone.state_dict().items()}


def cohort_part(args, work: Path) -> None:
    from lesionseg.bundle import load_state_dicts, read_manifest
    from lesionseg.models import build_network_from_config, min_size, size_multiple

    write_cohort(work / "data", args.cases, seed=7)
    prepare_dataset(work / "data", work / "prepared", PrepareConfig(size=args.size, negatives=0.0))
    prepared = PreparedDataset(work / "prepared")
    config = TrainConfig(**NETWORK, epochs=args.epochs, all_data=True, batch_size=8, lr=1e-3, optimiser="adam",
                         curriculum="none", device="cpu", augmentation={"enabled": False},
                         num_threads=args.threads or 0)
    started = time.time()
    summary = train_run(work / "prepared", work / "run", config)
    fold = summary.results[0]
    cheap = loss_based_estimate(fold.slice_losses)
    cheap_by_key = {(r["case_id"], r["slice_index"]): c for r, c in zip(fold.train_rows, cheap)}
    table = compute_difficulty(prepared, ["area", "contrast"])
    area = table.metrics["area_mm2"]
    contrast = table.metrics["contrast_fisher"]
    cheap_scores = np.array([cheap_by_key[k] for k in table.keys])
    print(f"cohort: {args.cases} cases, {len(table.keys)} lesion slices at {args.size}x{args.size}; model trained "
          f"{args.epochs} epochs ({fold.iterations} iterations, {time.time() - started:.0f} s); protocol "
          f"{args.repeats} repeats x 2 epochs, batch 8")
    print(f"  cheap estimate: Spearman with area {spearmanr(cheap_scores, area)[0]:+.3f}, with contrast "
          f"{spearmanr(cheap_scores, contrast)[0]:+.3f}")
    manifest = read_manifest(summary.bundle)
    network_config = manifest["network"]
    keywords = dict(network_config.get("kwargs", {}))
    network = build_network_from_config(network_config)
    arrays = load_slices(prepared, [row for row in prepared.slices if row["has_lesion"]])
    assert [(r["case_id"], r["slice_index"]) for r in arrays.rows] == table.keys
    converged = load_state_dicts(summary.bundle)[0]
    runs = [("converged, Adam 1e-3 (the bundle's)", converged, "adam", 1e-3),
            ("converged, RMSprop 1e-4 (the paper's)", converged, "rmsprop", 1e-4),
            ("fresh initialisation, Adam 1e-3", fresh_weights(network), "adam", 1e-3)]
    for label, weights, optimiser, lr in runs:
        started = time.time()
        result = gradient_difficulty(arrays, network, weights, optimiser=optimiser, lr=lr, epochs=2,
                                     repeats=args.repeats, batch_size=8, record_steps=True,
                                     multiple=size_multiple(network_config["name"], **keywords),
                                     minimum=min_size(network_config["name"], **keywords))
        print(f"  {label} ({time.time() - started:.0f} s): Spearman with  cheap estimate   area  contrast")
        for name, score in candidate_scores(result).items():
            print(f"    {name:22s}                  {spearmanr(score, cheap_scores)[0]:+.3f}  "
                  f"{spearmanr(score, area)[0]:+.3f}    {spearmanr(score, contrast)[0]:+.3f}")


def hard_subset(seed: int = 0, n_easy: int = 24, n_hard: int = 8, size: int = 64) -> SliceArrays:
    """Easy slices (bright lesions of radius 7-10) then hard ones (invisible lesions of radius 1.5-2.5)."""
    images, masks, rows = disk_slices(seed, n_easy, n_hard, size=size, hard_contrast=0.0)
    return SliceArrays(images, masks, np.ones_like(masks), rows)


def hard_subset_part(args) -> None:
    import torch

    from lesionseg.losses import build_loss
    from lesionseg.models import build_network

    arrays = hard_subset()
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    network = build_network("unet2d", 1, 2, features=[4, 8, 16, 32, 64])
    loss = build_loss("ce_dice")
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    x = torch.as_tensor(arrays.images)
    y = torch.as_tensor(arrays.masks[:, None].astype(np.int64))
    started = time.time()
    for _ in range(args.hard_iterations):
        batch = rng.choice(len(arrays.rows), 8, replace=False)
        optimiser.zero_grad()
        loss(network(x[batch]), y[batch]).backward()
        optimiser.step()
    state = {k: v.clone() for k, v in network.state_dict().items()}
    network.eval()
    with torch.no_grad():
        trained = loss.per_sample(network(x), y).numpy()
    hard = np.array([r["hard"] for r in arrays.rows])
    print(f"hard subset: {int((~hard).sum())} easy slices (bright, large lesions), {int(hard.sum())} hard (invisible, "
          f"tiny); model trained {args.hard_iterations} iterations ({time.time() - started:.0f} s): mean loss easy "
          f"{trained[~hard].mean():.3f}, hard {trained[hard].mean():.3f}")
    for label, weights in (("converged", state), ("fresh initialisation", fresh_weights(network))):
        result = gradient_difficulty(arrays, network, weights, optimiser="adam", lr=1e-3, epochs=2,
                                     repeats=args.repeats, batch_size=8, record_steps=True)
        steps_hard = np.array([arrays.rows[s["row"]]["hard"] for s in result.steps])
        before = np.array([s["before"] for s in result.steps])
        after = np.array([s["after"] for s in result.steps])
        print(f"  {label}: mean loss before -> after an update: easy {before[~steps_hard].mean():.4f} -> "
              f"{after[~steps_hard].mean():.4f}, hard {before[steps_hard].mean():.4f} -> "
              f"{after[steps_hard].mean():.4f}")
        for name, score in candidate_scores(result).items():
            test = mannwhitneyu(score[~hard], score[hard], alternative="greater")
            separated = "every hard below every easy" if score[hard].max() < score[~hard].min() else ""
            print(f"    {name:22s} mean score (high = easy): easy {score[~hard].mean():.3f}, hard "
                  f"{score[hard].mean():.3f}; Mann-Whitney (easy > hard) p = {test.pvalue:.2g} {separated}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hard-iterations", type=int, default=600)
    parser.add_argument("--skip-cohort", action="store_true", help="run only the hard-subset part")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="lesionseg-bench-gradient-"))
    try:
        if not args.skip_cohort:
            cohort_part(args, work)
        hard_subset_part(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
