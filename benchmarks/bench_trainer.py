"""Benchmark: the trainer's throughput against a bare forward+backward loop, augmentation's cost, and bf16.

All on the same network, batch and slices (a synthetic cohort prepared at --size): the bare loop is
``zero_grad; loss(net(x), y).backward(); step`` on in-memory tensors; the trainer is ``FoldTrainer`` with no
curriculum, no validation and augmentation off (then on). Slices per second are measured over the
training epochs only (set-up excluded). The issue asks for the trainer at >= 85 % of the bare rate.

Run: ``.venv/bin/python benchmarks/bench_trainer.py [--size 128] [--epochs 3] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lesionseg.device import autocast
from lesionseg.losses import build_loss
from lesionseg.models import build_network
from lesionseg.preprocess import PrepareConfig, PreparedDataset, prepare_dataset
from lesionseg.synth import write_cohort
from lesionseg.train import FoldTrainer, TrainConfig
from lesionseg.train.slices import load_slices

NETWORK = {"network": "unet2d", "network_kwargs": {"features": [16, 32, 64, 128, 256]}}


def bare_rate(arrays, batch_size: int, iterations: int, precision: str = "fp32") -> float:
    torch.manual_seed(0)
    network = build_network(NETWORK["network"], arrays.images.shape[1], 2, **NETWORK["network_kwargs"])
    loss = build_loss("ce_dice")
    optimiser = torch.optim.RMSprop(network.parameters(), lr=1e-4)
    images = torch.as_tensor(arrays.images)
    masks = torch.as_tensor(arrays.masks[:, None].astype(np.int64))
    order = np.random.default_rng(0).permutation(len(images))
    device = torch.device("cpu")
    for warm in range(2):
        batch = order[warm * batch_size:(warm + 1) * batch_size]
        optimiser.zero_grad()
        loss(network(images[batch]), masks[batch]).backward()
        optimiser.step()
    began = time.perf_counter()
    seen = 0
    for step in range(iterations):
        batch = order[(step * batch_size) % len(order):][:batch_size]
        optimiser.zero_grad()
        with autocast(precision, device):
            logits = network(images[batch])
        loss(logits.float(), masks[batch]).backward()
        optimiser.step()
        seen += len(batch)
    return seen / (time.perf_counter() - began)


def trainer_rate(prepared: PreparedDataset, folder: Path, epochs: int, batch_size: int, augment: bool,
                 precision: str = "fp32") -> tuple[float, int]:
    config = TrainConfig(**NETWORK, epochs=epochs, batch_size=batch_size, curriculum="none", all_data=True,
                         device="cpu", precision=precision,
                         augmentation={} if augment else {"enabled": False})
    rows = list(prepared.slices)
    result = FoldTrainer(config, prepared, rows, [], None, folder).run()
    history = result.history[1:]  # the first epoch includes one-off warm-up
    slices = sum(record["active_slices"] for record in history)
    return slices / sum(record["seconds"] for record in history), result.iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="lesionseg-bench-trainer-"))
    try:
        write_cohort(work / "data", args.cases, seed=3)
        prepare_dataset(work / "data", work / "prepared", PrepareConfig(size=args.size, negatives=0.2))
        prepared = PreparedDataset(work / "prepared")
        arrays = load_slices(prepared, list(prepared.slices))
        n = len(arrays.rows)
        iterations = (args.epochs - 1) * -(-n // args.batch_size)
        print(f"{n} slices of 1x{args.size}x{args.size}, batch {args.batch_size}, {torch.get_num_threads()} threads")
        trainer, _ = trainer_rate(prepared, work / "run", args.epochs, args.batch_size, augment=False)
        bare = bare_rate(arrays, args.batch_size, iterations)
        augmented, _ = trainer_rate(prepared, work / "run-aug", args.epochs, args.batch_size, augment=True)
        print(f"bare forward+backward loop:        {bare:7.2f} slices/s")
        print(f"trainer, augmentation off:         {trainer:7.2f} slices/s  ({100 * trainer / bare:.0f} % of bare)")
        print(f"trainer, augmentation on:          {augmented:7.2f} slices/s  (augmentation costs "
              f"{100 * (1 - augmented / trainer):.0f} % of the trainer's rate)")
        try:
            bf16 = bare_rate(arrays, args.batch_size, iterations, precision="bf16")
            print(f"bare loop in bf16 (CPU autocast):  {bf16:7.2f} slices/s  (x{bf16 / bare:.2f} against fp32)")
        except (RuntimeError, ValueError) as error:
            print(f"bf16 on this CPU: not available ({error})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
