"""Training one model (one fold): epochs over the curriculum's active slices, validation, checkpoints.

The loop is plain PyTorch: no DataLoader workers (the slices are in memory and augmentation is seeded per
slice and epoch), so a resumed run replays exactly what an uninterrupted run does.

A 3D network trains on patches instead of slices (:mod:`lesionseg.train.volumes`): each epoch's samples
are ``patches_per_volume`` fresh patches of every training case (the "none" schedule over them: each
once per epoch, shuffled, sharded across DDP ranks like slices), and validation predicts whole cases with
a sliding window. Everything else (optimiser, checkpoints, resume, logs, progress, cancel) is shared.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lesionseg.errors import ParameterError
from lesionseg.preprocess import PreparedDataset
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress
from lesionseg.train.batching import epoch_batches, planned_iterations
from lesionseg.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from lesionseg.train.config import TrainConfig
from lesionseg.train.curriculum_setup import build_schedule
from lesionseg.train.distributed import DistInfo, barrier, broadcast
from lesionseg.train.logs import EpochLog
from lesionseg.train.slices import SliceDataset, load_slices
from lesionseg.train.validate import ValidationResult, validate


@dataclass
class FoldResult:
    """What training one model produced.

    Attributes:
        fold: the fold number (None for an all-data model).
        state_dict: the weights kept (the best validated epoch, or the last one without validation).
        validation: the validation summary of those weights ({} without validation).
        val_cases, val_slices: per-case and per-slice validation metrics of those weights.
        history: one record per epoch.
        slice_losses: mean training loss of each training row over the epochs it was trained on (NaN if
            never active); the cheap estimate of the gradient difficulty.
        train_rows: the training rows (same order as ``slice_losses``).
        iterations: optimiser steps taken; epochs_run: epochs completed; best_epoch: epoch of the weights.
    """

    fold: int | None
    state_dict: dict
    validation: dict[str, float]
    val_cases: list[dict[str, Any]]
    val_slices: list[dict[str, Any]]
    history: list[dict[str, Any]]
    slice_losses: np.ndarray
    train_rows: list[dict[str, Any]]
    iterations: int
    epochs_run: int
    best_epoch: int | None = None
    visits: list[list[int]] = field(default_factory=list)


def config_fingerprint(config: TrainConfig, train_rows: list[dict[str, Any]]) -> str:
    """Hash of the configuration and the training slices: a checkpoint only resumes the same run."""
    ignored = {"device", "num_threads", "log_iterations", "checkpoint_every", "epochs", "early_stopping"}
    if not config.is_3d:  # options 2D training ignores (and that checkpoints of older versions lack)
        ignored |= {"patch_size", "patches_per_volume", "min_lesion_patch_fraction"}
    settings = {key: value for key, value in config.to_dict().items() if key not in ignored}
    keys = [(row["case_id"], row["slice_index"]) for row in train_rows]
    return hashlib.sha256(json.dumps([settings, keys], sort_keys=True, default=str).encode()).hexdigest()[:16]


def encoder_parameter_names(network_name: str, network) -> list[str]:
    """Names of the encoder's parameters (for ``freeze_encoder``)."""
    import re

    names = [name for name, _ in network.named_parameters()]
    if network_name in ("unet2d", "basic_unet", "unet3d", "unet2plus1d"):
        pattern = re.compile(r"^(conv_0|down_\d+)\.")
    elif network_name in ("monai_unet", "res_unet"):
        pattern = re.compile(r"(^model\.0\.|submodule\.0\.)")  # MONAI UNet: the down path of each level
    else:
        raise ParameterError(f"--freeze-encoder is not available for network {network_name!r}.")
    chosen = [name for name in names if pattern.search(name)]
    if not chosen:
        raise ParameterError(f"--freeze-encoder found no encoder parameters in network {network_name!r}.")
    return chosen


def _make_optimiser(config: TrainConfig, parameters):
    import torch

    if config.optimiser == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimiser == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def _make_lr_schedule(config: TrainConfig, optimiser):
    import torch

    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs, eta_min=config.lr * 0.01)
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimiser, step_size=max(1, (2 * config.epochs) // 3), gamma=0.1)
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="max", factor=0.5, patience=2)
    return None


def make_augmentation(config: TrainConfig):
    """The augmentation callable ``(sample, seed) -> sample`` (``lesionseg.train.augment``), None when off;
    for a 3D network the patch augmentation (flip, bias field, noise: see the module's docstring)."""
    if config.augmentation.get("enabled") is False:
        return None
    from lesionseg.train.augment import AugmentConfig, build_augmentation

    return build_augmentation(AugmentConfig.from_dict(config.augmentation), config.seed,
                              spatial_dims=3 if config.is_3d else 2)


class FoldTrainer:
    """Trains one model on ``train_rows`` and validates it on ``val_rows`` (see :class:`FoldResult`).

    Args:
        config: the training configuration.
        prepared: the prepared dataset.
        train_rows, val_rows: slice rows (``prepared.slices`` entries); ``val_rows`` may be empty.
        table: the difficulty table (needed by the vanilla and anti curricula).
        folder: the fold's output folder (log, checkpoint).
        fold: the fold number, or None.
        progress, cancel: progress events and the cancel flag.
        dist: the distributed set-up (single process by default).
        resume: continue from ``folder/checkpoint.pt`` when present.
        initial_state: weights to start from (fine-tuning).
    """

    def __init__(self, config: TrainConfig, prepared: PreparedDataset, train_rows: list[dict[str, Any]],
                 val_rows: list[dict[str, Any]], table, folder: Path, *, fold: int | None = None,
                 progress: ProgressCallback = ignore_progress, cancel: CancelFlag | None = None,
                 dist: DistInfo | None = None, resume: bool = False, initial_state: dict | None = None,
                 record_visits: bool = False) -> None:
        self.config = config
        self.prepared = prepared
        self.train_rows = list(train_rows)
        self.val_rows = list(val_rows)
        self.table = table
        self.folder = Path(folder)
        self.fold = fold
        self.progress = progress
        self.cancel = cancel
        self.dist = dist or DistInfo()
        self.resume = resume
        self.initial_state = initial_state
        self.record_visits = record_visits

    # ---- set-up -------------------------------------------------------------------------------------
    def _setup(self):
        import torch

        from lesionseg.device import check_precision, resolve_device
        from lesionseg.losses import build_loss
        from lesionseg.models import build_network, min_size, size_multiple

        config = self.config
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.device = resolve_device(config.device)
        if self.dist.active and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        check_precision(config.precision, self.device)
        torch.manual_seed(config.seed + (self.fold or 0))
        channels = len(self.prepared.channels) or int(self.prepared.arrays(self.train_rows[0]["case_id"]).images.shape[1])
        self.network = build_network(config.network, channels, 2, **config.network_kwargs).to(self.device)
        if self.initial_state is not None:
            self.network.load_state_dict(self.initial_state)
        if config.freeze_encoder:
            frozen = set(encoder_parameter_names(config.network, self.network))
            for name, parameter in self.network.named_parameters():
                parameter.requires_grad_(name not in frozen)
        self.multiple = size_multiple(config.network, **config.network_kwargs)
        # 3D patches already have a size the network takes (TrainConfig checks it): no padding
        self.minimum = 0 if config.is_3d else min_size(config.network, **config.network_kwargs)
        self.loss = build_loss(config.loss, **config.loss_kwargs).to(self.device)
        self.model = self.network
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(
                self.network, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        trainable = [p for p in self.network.parameters() if p.requires_grad]
        self.optimiser = _make_optimiser(config, trainable)
        self.lr_schedule = _make_lr_schedule(config, self.optimiser)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.val_arrays = load_slices(self.prepared, self.val_rows) if self.val_rows else None
        if config.is_3d:
            self._setup_patches()
        else:
            self.train_arrays = load_slices(self.prepared, self.train_rows)
            self.dataset = SliceDataset(self.train_arrays, make_augmentation(config),
                                        seed=config.seed + 7919 * (self.fold or 0))
            self.schedule = build_schedule(self.train_rows, self.table, config)
        from lesionseg.curriculum import CurriculumSampler

        self.sampler = CurriculumSampler(self.schedule, seed=config.seed + 104729 * (self.fold or 0), shuffle=True,
                                         num_replicas=self.dist.world_size, rank=self.dist.rank)
        self.log = EpochLog(self.folder, enabled=self.dist.is_main)
        self.fingerprint = config_fingerprint(config, self.train_rows)

    def _setup_patches(self) -> None:
        """3D: the training cases as volumes, the epoch's patches, and the "none" schedule over them."""
        from lesionseg.curriculum import make_schedule
        from lesionseg.train.volumes import PatchDataset, load_volumes

        config = self.config
        volumes = load_volumes(self.prepared, self.train_rows, config.patch_size)
        self.val_volumes = load_volumes(self.prepared, self.val_rows, config.patch_size) if self.val_rows else None
        self.dataset = PatchDataset(volumes, config.patch_size, config.patches_per_volume,
                                    config.min_lesion_patch_fraction, make_augmentation(config),
                                    seed=config.seed + 7919 * (self.fold or 0))
        self.schedule = make_schedule("none", n_slices=len(self.dataset), total_epochs=config.epochs)

    # ---- one epoch ----------------------------------------------------------------------------------
    def _batch(self, indices: list[int]):
        import torch

        items = [self.dataset[i] for i in indices]
        images = torch.stack([item["image"] for item in items]).to(self.device)
        masks = torch.stack([item["mask"] for item in items]).to(self.device)
        return images, masks

    def _self_paced_update(self, epoch: int) -> None:
        """Report the current model's loss on the slices a self-paced schedule is waiting for."""
        import torch

        from lesionseg.models.padding import forward_padded

        pending = self.schedule.pending_indices()
        if epoch >= self.schedule.all_from_epoch or pending.size == 0:
            return
        self.network.eval()
        losses = []
        with torch.inference_mode():
            for start in range(0, pending.size, self.config.batch_size):
                chunk = pending[start:start + self.config.batch_size]
                images = torch.as_tensor(self.train_arrays.images[chunk], device=self.device)
                masks = torch.as_tensor(self.train_arrays.masks[chunk][:, None].astype(np.int64), device=self.device)
                logits = forward_padded(self.network, images, self.multiple, self.minimum)
                losses.append(self.loss.per_sample(logits.float(), masks).cpu().numpy())
        self.network.train()
        self.schedule.update(pending, np.clip(np.concatenate(losses), 0.0, None))

    def _train_epoch(self, epoch: int, state: dict[str, Any]) -> float:
        from lesionseg.device import autocast
        from lesionseg.models.padding import forward_padded

        if not self.schedule.is_fixed:
            self._self_paced_update(epoch)
        self.dataset.set_epoch(epoch)
        batches = epoch_batches(self.sampler, epoch, self.config.batch_size)
        if self.record_visits:
            state["visits"].append([i for batch in batches for i in batch])
        self.network.train()
        total, count = 0.0, 0
        for batch in batches:
            if self.cancel:
                self.cancel.raise_if_cancelled()
            images, masks = self._batch(batch)
            self.optimiser.zero_grad(set_to_none=True)
            with autocast(self.config.precision, self.device):
                logits = forward_padded(self.model, images, self.multiple, self.minimum)
            per_sample = self.loss.per_sample(logits.float(), masks)
            loss = self.loss.training_loss(logits.float(), masks, per_sample)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimiser)
                self.scaler.update()
            else:
                loss.backward()
                self.optimiser.step()
            values = per_sample.detach().cpu().numpy()
            if self.config.is_3d:  # a patch's loss goes to every training slice it covers
                self.dataset.add_losses(batch, values, state["loss_sum"], state["loss_count"])
            else:
                state["loss_sum"][batch] += values
                state["loss_count"][batch] += 1
            total += float(loss.detach()) * len(batch)
            count += len(batch)
            state["iterations"] += 1
            if self.config.log_iterations and state["iterations"] % self.config.log_iterations == 0:
                self.progress({"event": "iteration", "fold": self.fold, "epoch": epoch,
                               "iteration": state["iterations"], "loss": float(loss.detach())})
        if not math.isfinite(total):
            raise ParameterError(f"training diverged at epoch {epoch} (the loss is not finite); lower --lr.")
        return total / count if count else float("nan")

    # ---- the whole run --------------------------------------------------------------------------------
    def _checkpoint_state(self, epoch: int, state: dict[str, Any]) -> dict[str, Any]:
        import torch

        return {
            "fingerprint": self.fingerprint, "epoch": epoch,
            "model": self.network.state_dict(), "optimiser": self.optimiser.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict() if self.lr_schedule is not None else None,
            "schedule": self.schedule.state_dict() if hasattr(self.schedule, "state_dict") else None,
            "history": state["history"], "best": state["best"], "iterations": state["iterations"],
            "loss_sum": torch.as_tensor(state["loss_sum"]), "loss_count": torch.as_tensor(state["loss_count"]),
            "torch_rng": torch.get_rng_state(), "since_best": state["since_best"],
        }

    def _restore(self, checkpoint: dict[str, Any], state: dict[str, Any]) -> int:
        import torch

        if checkpoint.get("fingerprint") != self.fingerprint:
            raise ParameterError(f"{self.folder / CHECKPOINT_NAME} belongs to a run with other settings or data; "
                                 "start a new run folder, or resume with the same options.")
        self.network.load_state_dict(checkpoint["model"])
        self.optimiser.load_state_dict(checkpoint["optimiser"])
        if self.lr_schedule is not None and checkpoint.get("lr_schedule"):
            self.lr_schedule.load_state_dict(checkpoint["lr_schedule"])
        if checkpoint.get("schedule") and hasattr(self.schedule, "load_state_dict"):
            self.schedule.load_state_dict(checkpoint["schedule"])
        torch.set_rng_state(checkpoint["torch_rng"])
        state.update(history=list(checkpoint["history"]), best=checkpoint["best"], iterations=int(checkpoint["iterations"]),
                     loss_sum=checkpoint["loss_sum"].numpy().copy(), loss_count=checkpoint["loss_count"].numpy().copy(),
                     since_best=int(checkpoint["since_best"]))
        return int(checkpoint["epoch"]) + 1

    def _validate(self) -> ValidationResult | None:
        if self.val_arrays is None:
            return None
        result = None
        if self.dist.is_main and self.config.is_3d:
            from lesionseg.train.volumes import validate_volumes

            result = validate_volumes(self.network, self.val_volumes, self.val_arrays, self.prepared,
                                      patch_size=self.config.patch_size, device=self.device,
                                      precision=self.config.precision, batch_size=self.config.batch_size)
        elif self.dist.is_main:
            result = validate(self.network, self.val_arrays, self.prepared, device=self.device,
                              precision=self.config.precision, batch_size=self.config.batch_size,
                              multiple=self.multiple, minimum=self.minimum)
        barrier(self.dist)
        return broadcast(self.dist, result)

    def run(self) -> FoldResult:
        """Train (or resume) and return the result; raises CancelledError when cancelled."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._setup()
        config = self.config
        n = len(self.train_rows)
        state: dict[str, Any] = {"history": [], "best": None, "iterations": 0, "since_best": 0, "visits": [],
                                 "loss_sum": np.zeros(n), "loss_count": np.zeros(n)}
        start_epoch = 0
        checkpoint_path = self.folder / CHECKPOINT_NAME
        if self.resume and checkpoint_path.is_file():
            start_epoch = self._restore(load_checkpoint(checkpoint_path), state)
        planned = planned_iterations(self.schedule, config.batch_size, self.dist.world_size) if self.schedule.is_fixed else None
        started = time.monotonic()
        iterations_at_start = state["iterations"]
        last_validation: ValidationResult | None = None
        epoch = start_epoch - 1
        for epoch in range(start_epoch, config.epochs):
            if self.cancel:
                self.cancel.raise_if_cancelled()
            epoch_start = time.monotonic()
            mean_loss = self._train_epoch(epoch, state)
            record: dict[str, Any] = {"epoch": epoch, "iterations": state["iterations"],
                                      "active_slices": int(self.schedule.active_count(epoch)), "loss": mean_loss,
                                      "lr": float(self.optimiser.param_groups[0]["lr"])}
            if config.is_3d:  # every slice of the training cases; the epoch's samples are patches
                record.update(active_slices=n, patches=len(self.dataset),
                              lesion_patch_fraction=self.dataset.lesion_fraction)
            validated = (epoch + 1) % config.val_every == 0 or epoch == config.epochs - 1
            if validated:
                result = self._validate()
                if result is not None:
                    last_validation = result
                    summary = result.summary()
                    record.update(summary)
                    best = state["best"]
                    if best is None or summary["val_dice"] >= best["dice"]:
                        state["best"] = {"dice": summary["val_dice"], "epoch": epoch,
                                         "state_dict": copy.deepcopy(self.network.state_dict())}
                        state["since_best"] = 0
                    else:
                        state["since_best"] += 1
            if self.lr_schedule is not None:
                if config.lr_schedule == "plateau":
                    if validated and "val_dice" in record:
                        self.lr_schedule.step(record["val_dice"])
                else:
                    self.lr_schedule.step()
            record["seconds"] = time.monotonic() - epoch_start
            state["history"].append(record)
            self.log.write(state["history"])
            done = state["iterations"] - iterations_at_start
            elapsed = time.monotonic() - started
            if planned is not None and done:
                eta = elapsed / done * max(planned - state["iterations"], 0)
            else:
                eta = elapsed / (epoch - start_epoch + 1) * (config.epochs - epoch - 1)
            self.progress({"event": "epoch", "fold": self.fold, "epochs": config.epochs, **record, "eta_s": eta})
            last = epoch == config.epochs - 1
            stop = bool(config.early_stopping and state["since_best"] >= config.early_stopping)
            if self.dist.is_main and ((epoch + 1) % config.checkpoint_every == 0 or last or stop):
                save_checkpoint(checkpoint_path, self._checkpoint_state(epoch, state))
            barrier(self.dist)
            if stop:
                self.progress({"event": "message", "message": f"early stopping at epoch {epoch} (best epoch "
                                                              f"{state['best']['epoch']})"})
                break
        best = state["best"]
        if best is not None and self.val_arrays is not None:
            weights = best["state_dict"]
            if last_validation is None or best["epoch"] != epoch:
                self.network.load_state_dict(weights)
                last_validation = self._validate()
        else:
            weights = self.network.state_dict()
        with np.errstate(invalid="ignore", divide="ignore"):
            slice_losses = state["loss_sum"] / state["loss_count"]
        return FoldResult(
            fold=self.fold, state_dict={k: v.detach().cpu() for k, v in weights.items()},
            validation=last_validation.summary() if last_validation else {},
            val_cases=last_validation.cases if last_validation else [],
            val_slices=last_validation.slices if last_validation else [],
            history=state["history"], slice_losses=slice_losses, train_rows=self.train_rows,
            iterations=state["iterations"], epochs_run=epoch + 1,
            best_epoch=best["epoch"] if best else None, visits=state["visits"],
        )
