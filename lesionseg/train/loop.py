"""Training one model (one fold): epochs over the curriculum's active slices, validation, checkpoints.

The loop is plain PyTorch: no DataLoader workers (the slices are in memory and augmentation is seeded per
slice and epoch), so a resumed run replays exactly what an uninterrupted run does.

A 3D network trains on patches instead of slices (:mod:`lesionseg.train.volumes`): each epoch's samples
are ``patches_per_volume`` fresh patches of every training case (the "none" schedule over them: each
once per epoch, shuffled, sharded across DDP ranks like slices), and validation predicts whole cases with
a sliding window. Everything else (optimiser, checkpoints, resume, logs, progress, cancel) is shared.

A network that has a ``training_losses(images, masks) -> (loss, per_sample)`` method (``detect_segment``: its
detection and box-mask losses) supplies its own loss: the trainer calls it instead of the configured loss, in the
step and for the self-paced schedule's losses; ``per_sample`` ``(B,)`` feeds the schedule and
``slice_losses.csv`` as the configured loss's would. Everything else (sampler, budget, validation on its
forward's logits, checkpoints) is shared.

With a time budget (``budget_s``, from ``--minutes``), the trainer measures its pace and plans its epochs
and validations before training (:mod:`lesionseg.train.budget`), validates lightly while it trains, stops
at its deadline if the pace drifts, and validates the kept weights fully at the end.
"""

from __future__ import annotations

import copy
import dataclasses
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
from lesionseg.train.budget import BudgetPlan
from lesionseg.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from lesionseg.train.config import TrainConfig
from lesionseg.train.crops import crop_batch, epoch_crop_size
from lesionseg.train.curriculum_setup import build_schedule
from lesionseg.train.distributed import DistInfo, barrier, broadcast
from lesionseg.train.finetune import widen_state_dict
from lesionseg.train.fold_budget import BudgetedTraining
from lesionseg.train.logs import EpochLog
from lesionseg.train.optim import encoder_parameter_names, make_lr_schedule, make_optimiser
from lesionseg.train.slices import SliceDataset, load_slices
from lesionseg.train.validate import ValidationResult, validate

#: a budgeted run writes its resumable checkpoint at most this often (seconds), and at its end
BUDGET_CHECKPOINT_S = 30.0
#: training options added after checkpoints were first written, with the value that means "as before"
_NEWER_DEFAULTS = {"context_slices": 0, "size_curriculum": [], "starter_if_fits": False, "channel_map": {},
                   "finetune_lr": None, "adversarial": 0.0}


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
        plan: the budget plan (:class:`lesionseg.train.budget.BudgetPlan` as a dict) of a budgeted run.
        seconds: wall time of the model's training, set-up and final validation included.
        stopped_at_deadline: a budgeted run reached its deadline before its planned epochs.
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
    plan: dict[str, Any] | None = None
    seconds: float = 0.0
    stopped_at_deadline: bool = False


def config_fingerprint(config: TrainConfig, train_rows: list[dict[str, Any]]) -> str:
    """Hash of the configuration and the training slices: a checkpoint only resumes the same run."""
    ignored = {"device", "num_threads", "log_iterations", "checkpoint_every", "epochs", "early_stopping", "minutes",
               "preset"}
    if not config.is_3d:  # options 2D training ignores (and that checkpoints of older versions lack)
        ignored |= {"patch_size", "patches_per_volume", "min_lesion_patch_fraction"}
    settings = {key: value for key, value in config.to_dict().items()
                if key not in ignored and not (key in _NEWER_DEFAULTS and value == _NEWER_DEFAULTS[key])}
    keys = [(row["case_id"], row["slice_index"]) for row in train_rows]
    return hashlib.sha256(json.dumps([settings, keys], sort_keys=True, default=str).encode()).hexdigest()[:16]


def make_augmentation(config: TrainConfig):
    """The augmentation callable ``(sample, seed) -> sample`` (``lesionseg.train.augment``), None when off;
    for a 3D network the patch augmentation (flip, bias field, noise: see the module's docstring)."""
    if config.augmentation.get("enabled") is False:
        return None
    from lesionseg.train.augment import AugmentConfig, build_augmentation

    return build_augmentation(AugmentConfig.from_dict(config.augmentation), config.seed,
                              spatial_dims=3 if config.is_3d else 2)


class FoldTrainer(BudgetedTraining):
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
        budget_s: a time budget in seconds for this model (set-up included); None: ``config.epochs`` epochs.
    """

    def __init__(self, config: TrainConfig, prepared: PreparedDataset, train_rows: list[dict[str, Any]],
                 val_rows: list[dict[str, Any]], table, folder: Path, *, fold: int | None = None,
                 progress: ProgressCallback = ignore_progress, cancel: CancelFlag | None = None,
                 dist: DistInfo | None = None, resume: bool = False, initial_state: dict | None = None,
                 record_visits: bool = False, budget_s: float | None = None) -> None:
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
        self.budget_s = budget_s
        self.plan: BudgetPlan | None = None
        self.deadline: float | None = None

    # ---- set-up -------------------------------------------------------------------------------------
    def _setup_model(self) -> None:
        """Device, network, loss, optimiser and the data (everything but the schedules)."""
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
        channels = len(self.prepared.array_channels) or int(self.prepared.arrays(self.train_rows[0]["case_id"]).images.shape[1])
        channels *= 2 * config.context_slices + 1
        self.network = build_network(config.network, channels, self.prepared.config.n_outputs(),
                                     **config.network_kwargs).to(self.device)
        if self.initial_state is not None:  # widened when the run adds input planes (mirrored differences)
            self.network.load_state_dict(widen_state_dict(self.initial_state, self.network.state_dict()))
        if config.freeze_encoder:
            frozen = set(encoder_parameter_names(config.network, self.network))
            for name, parameter in self.network.named_parameters():
                parameter.requires_grad_(name not in frozen)
        self.multiple = size_multiple(config.network, **config.network_kwargs)
        # 3D patches already have a size the network takes (TrainConfig checks it): no padding
        self.minimum = 0 if config.is_3d else min_size(config.network, **config.network_kwargs)
        self.loss = build_loss(config.loss, **config.loss_kwargs).to(self.device)
        self.model = self.network
        if self.dist.active and hasattr(self.network, "training_losses"):
            raise ParameterError(f"--model {config.network} trains in one process (its losses are not computed "
                                 "through a forward pass that torchrun's DistributedDataParallel sees); run it "
                                 "without torchrun.")
        if self.dist.active:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(
                self.network, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        trainable = [p for p in self.network.parameters() if p.requires_grad]
        if self.initial_state is not None and config.finetune_lr is not None:
            config = dataclasses.replace(config, lr=config.finetune_lr)  # what the schedules start from, too
            self.config = config
        self.optimiser = make_optimiser(config, trainable)
        self.critic = None
        if config.adversarial:
            if self.dist.active:
                raise ParameterError("--adversarial trains its critic in one process; run it without torchrun.")
            from lesionseg.train.adversarial import AdversarialCritic

            self.critic = AdversarialCritic(channels, config.adversarial, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.val_arrays = load_slices(self.prepared, self.val_rows, config.context_slices) if self.val_rows else None
        self.val_training = self.val_arrays  # what validation uses while training (a budget may take fewer cases)
        if config.is_3d:
            self._setup_patches()
        else:
            self.train_arrays = load_slices(self.prepared, self.train_rows, config.context_slices)
            self.dataset = SliceDataset(self.train_arrays, make_augmentation(config),
                                        seed=config.seed + 7919 * (self.fold or 0))

    def _setup_patches(self) -> None:
        """3D: the training cases as volumes and the epoch's patches."""
        from lesionseg.train.volumes import PatchDataset, load_volumes

        config = self.config
        volumes = load_volumes(self.prepared, self.train_rows, config.patch_size)
        self.val_volumes = load_volumes(self.prepared, self.val_rows, config.patch_size) if self.val_rows else None
        self.dataset = PatchDataset(volumes, config.patch_size, config.patches_per_volume,
                                    config.min_lesion_patch_fraction, make_augmentation(config),
                                    seed=config.seed + 7919 * (self.fold or 0))

    def _build_schedule(self, epochs: int):
        from lesionseg.curriculum import make_schedule

        if self.config.is_3d:
            return make_schedule("none", n_slices=len(self.dataset), total_epochs=epochs)
        return build_schedule(self.train_rows, self.table, dataclasses.replace(self.config, epochs=epochs))

    def _crop_side(self, epoch: int, epochs: int, floor: int | None = None) -> int:
        """The crop side of an epoch (the slice size without a size curriculum; 0 for 3D patches), at least
        ``floor`` (default: a revised plan's, so that crops never shrink back)."""
        if self.config.is_3d:
            return 0
        if floor is None:
            floor = self.plan.crop_floor if self.plan is not None else 0
        return max(floor, epoch_crop_size(epoch, epochs, self.config.size_curriculum, self.prepared.size,
                                          self.multiple, max(self.minimum, 16)))

    def _setup_schedule(self) -> None:
        """The schedule, the sampler, the learning-rate schedule, the log and the fingerprint."""
        from lesionseg.curriculum import CurriculumSampler, with_start_epochs

        config = self.config
        self.schedule = self._build_schedule(config.epochs)
        if self.plan is not None:  # a resumed run whose plan was revised keeps the revised entry epochs
            self.schedule = with_start_epochs(self.schedule, self.plan.group_starts)
        self.sampler = CurriculumSampler(self.schedule, seed=config.seed + 104729 * (self.fold or 0), shuffle=True,
                                         num_replicas=self.dist.world_size, rank=self.dist.rank)
        total = planned_iterations(self.schedule, config.batch_size, self.dist.world_size) \
            if self.schedule.is_fixed else None
        self.lr_schedule, self.lr_per_step = make_lr_schedule(config, self.optimiser, total)
        self.log = EpochLog(self.folder, enabled=self.dist.is_main)
        self.fingerprint = config_fingerprint(config, self.train_rows)

    # ---- one step, one epoch --------------------------------------------------------------------------
    def _batch(self, indices: list[int]):
        import torch

        items = [self.dataset[i] for i in indices]
        images = torch.stack([item["image"] for item in items]).to(self.device)
        masks = torch.stack([item["mask"] for item in items]).to(self.device)
        return images, masks

    def _step(self, indices: list[int], side: int, rng: np.random.Generator):
        """One optimiser step on the dataset items ``indices``, cropped to ``side`` pixels; returns the step's
        loss and the per-sample losses."""
        from lesionseg.device import autocast
        from lesionseg.models.padding import forward_padded

        images, masks = self._batch(indices)
        if side and side < images.shape[-1]:
            images, masks = crop_batch(images, masks, side, rng)
        self.optimiser.zero_grad(set_to_none=True)
        own_losses = getattr(self.network, "training_losses", None)
        with autocast(self.config.precision, self.device):
            if own_losses is not None:  # a network with losses of its own (detect_segment: boxes and box masks)
                loss, per_sample = own_losses(images, masks)
            else:
                logits = forward_padded(self.model, images, self.multiple, self.minimum)
        if own_losses is None:
            per_sample = self.loss.per_sample(logits.float(), masks)
            loss = self.loss.training_loss(logits.float(), masks, per_sample)
        probability = None
        if self.critic is not None:  # the segmenter is rewarded when the critic takes its mask for a true one
            from lesionseg.losses.base import lesion_probability

            probability = lesion_probability(logits.float())[:, None]
            loss = loss + self.critic.segmenter_term(images, probability)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimiser)
            self.scaler.update()
        else:
            loss.backward()
            self.optimiser.step()
        if self.critic is not None:
            self.critic.step(images, probability, masks)
        return loss, per_sample

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
                own_losses = getattr(self.network, "training_losses", None)
                if own_losses is not None:  # the loss the network trains on (eval mode: repeatable)
                    losses.append(own_losses(images, masks)[1].float().cpu().numpy())
                    continue
                logits = forward_padded(self.network, images, self.multiple, self.minimum)
                losses.append(self.loss.per_sample(logits.float(), masks).cpu().numpy())
        self.network.train()
        self.schedule.update(pending, np.clip(np.concatenate(losses), 0.0, None))

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _train_epoch(self, epoch: int, state: dict[str, Any]) -> float:
        if not self.schedule.is_fixed:
            self._self_paced_update(epoch)
        self.dataset.set_epoch(epoch)
        batches = epoch_batches(self.sampler, epoch, self.config.batch_size)
        if self.record_visits:
            state["visits"].append([i for batch in batches for i in batch])
        self.network.train()
        side = self._crop_side(epoch, self.config.epochs)
        total, count = 0.0, 0
        for number, batch in enumerate(batches):
            if self.cancel:
                self.cancel.raise_if_cancelled()
            rng = np.random.default_rng((self.config.seed, self.fold or 0, epoch, number, 0xC409))
            loss, per_sample = self._step(batch, side, rng)
            if self.lr_per_step:
                self.lr_schedule.step()
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
            if not self.dist.active and self._past_deadline():
                state["deadline_hit"] = True
                break
        if not math.isfinite(total):
            raise ParameterError(f"training diverged at epoch {epoch} (the loss is not finite); lower --lr.")
        return total / count if count else float("nan")

    # ---- validation and checkpoints ---------------------------------------------------------------------
    def _validate_arrays(self, arrays, full: bool) -> ValidationResult:
        if self.config.is_3d:
            from lesionseg.train.volumes import load_volumes, validate_volumes

            volumes = self.val_volumes if arrays is self.val_arrays else load_volumes(
                self.prepared, arrays.rows, self.config.patch_size)
            return validate_volumes(self.network, volumes, arrays, self.prepared, patch_size=self.config.patch_size,
                                    device=self.device, precision=self.config.precision,
                                    batch_size=self.config.batch_size, full=full)
        return validate(self.network, arrays, self.prepared, device=self.device, precision=self.config.precision,
                        batch_size=self.config.batch_size, multiple=self.multiple, minimum=self.minimum, full=full)

    def _validate(self, final: bool = False) -> ValidationResult | None:
        """A validation pass on the main rank, shared with the others: while training, on the cases and with
        the metrics the budget allows; ``final``: every case, every metric."""
        if self.val_arrays is None:
            return None
        result = None
        if self.dist.is_main:
            full = final or self.plan is None
            result = self._validate_arrays(self.val_arrays if full else self.val_training, full=full)
        barrier(self.dist)
        return broadcast(self.dist, result)

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
            "critic": self.critic.state_dict() if self.critic is not None else None,
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
        if self.critic is not None and checkpoint.get("critic"):
            self.critic.load_state_dict(checkpoint["critic"])
        state.update(history=list(checkpoint["history"]), best=checkpoint["best"], iterations=int(checkpoint["iterations"]),
                     loss_sum=checkpoint["loss_sum"].numpy().copy(), loss_count=checkpoint["loss_count"].numpy().copy(),
                     since_best=int(checkpoint["since_best"]))
        return int(checkpoint["epoch"]) + 1

    def _checkpoint_due(self, epoch: int, state: dict[str, Any]) -> bool:
        """Every ``checkpoint_every`` epochs; in a budgeted run, at most every :data:`BUDGET_CHECKPOINT_S`
        seconds too (its many short epochs would otherwise spend their time writing checkpoints)."""
        if (epoch + 1) % self.config.checkpoint_every:
            return False
        return self.plan is None or time.monotonic() - state["checkpointed_at"] >= BUDGET_CHECKPOINT_S

    def _keep_if_best(self, epoch: int, result: ValidationResult, state: dict[str, Any]) -> None:
        dice = result.summary()["val_dice"]
        best = state["best"]
        if best is None or dice >= best["dice"]:
            full = self.plan is None  # a budgeted run validates lightly while training
            state["best"] = {"dice": dice, "epoch": epoch, "state_dict": copy.deepcopy(self.network.state_dict()),
                             "full": full, "cases": result.cases if full else [],
                             "slices": result.slices if full else []}
            state["since_best"] = 0
        else:
            state["since_best"] += 1

    # ---- the whole run --------------------------------------------------------------------------------
    def run(self) -> FoldResult:
        """Train (or resume) and return the result; raises CancelledError when cancelled."""
        started = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._setup_model()
        if self.budget_s is not None:
            self._plan_budget(started)
        self._setup_schedule()
        config = self.config
        n = len(self.train_rows)
        state: dict[str, Any] = {"history": [], "best": None, "iterations": 0, "since_best": 0, "visits": [],
                                 "loss_sum": np.zeros(n), "loss_count": np.zeros(n), "deadline_hit": False,
                                 "train_seconds": [], "checkpointed_at": time.monotonic()}
        start_epoch = 0
        checkpoint_path = self.folder / CHECKPOINT_NAME
        if self.resume and checkpoint_path.is_file():
            start_epoch = self._restore(load_checkpoint(checkpoint_path), state)
        planned = planned_iterations(self.schedule, config.batch_size, self.dist.world_size) if self.schedule.is_fixed else None
        loop_started = time.monotonic()
        iterations_at_start = state["iterations"]
        epoch = start_epoch - 1
        while epoch + 1 < self.config.epochs:
            epoch += 1
            config = self.config  # a budgeted run may revise its epochs after its first ones
            if self.cancel:
                self.cancel.raise_if_cancelled()
            epoch_start = time.monotonic()
            steps_before = state["iterations"]
            mean_loss = self._train_epoch(epoch, state)
            step_seconds = time.monotonic() - epoch_start
            validation_seconds = 0.0
            if self.dist.active and self.deadline is not None:  # ranks stop together, at an epoch's end
                state["deadline_hit"] = bool(broadcast(self.dist, self._past_deadline()))
            record: dict[str, Any] = {"epoch": epoch, "iterations": state["iterations"],
                                      "active_slices": int(self.schedule.active_count(epoch)), "loss": mean_loss,
                                      "lr": float(self.optimiser.param_groups[0]["lr"])}
            if config.size_curriculum:
                record["crop_size"] = self._crop_side(epoch, config.epochs)
            if self.critic is not None:
                record.update(self.critic.epoch_means())
            if config.is_3d:  # every slice of the training cases; the epoch's samples are patches
                record.update(active_slices=n, patches=len(self.dataset),
                              lesion_patch_fraction=self.dataset.lesion_fraction)
            validated = ((epoch + 1) % config.val_every == 0 or epoch == config.epochs - 1) and not state["deadline_hit"]
            if validated:
                validation_began = time.monotonic()
                result = self._validate()
                validation_seconds = time.monotonic() - validation_began
                if result is not None:
                    record.update(result.summary())
                    self._keep_if_best(epoch, result, state)
            if self.lr_schedule is not None and not self.lr_per_step:
                if config.lr_schedule == "plateau":
                    if validated and "val_dice" in record:
                        self.lr_schedule.step(record["val_dice"])
                else:
                    self.lr_schedule.step()
            record["seconds"] = time.monotonic() - epoch_start
            state["history"].append(record)
            self.log.write(state["history"])
            done = state["iterations"] - iterations_at_start
            elapsed = time.monotonic() - loop_started
            if planned is not None and done:
                eta = elapsed / done * max(planned - state["iterations"], 0)
            else:
                eta = elapsed / (epoch - start_epoch + 1) * (config.epochs - epoch - 1)
            self.progress({"event": "epoch", "fold": self.fold, "epochs": config.epochs, **record, "eta_s": eta})
            last = epoch == config.epochs - 1
            stop = bool(config.early_stopping and state["since_best"] >= config.early_stopping) or state["deadline_hit"]
            if self.dist.is_main and (self._checkpoint_due(epoch, state) or last or stop):
                save_checkpoint(checkpoint_path, self._checkpoint_state(epoch, state))
                state["checkpointed_at"] = time.monotonic()
            barrier(self.dist)
            # the epoch's cost but its validation (checkpoints and logs included): the pace a revised plan uses
            state["train_seconds"].append((step_seconds, time.monotonic() - epoch_start - validation_seconds - step_seconds,
                                           state["iterations"] - steps_before, self._crop_side(epoch, config.epochs)))
            if state["deadline_hit"]:
                self.progress({"event": "message", "message": f"the time budget ran out at epoch {epoch} of "
                                                              f"{config.epochs}; keeping the best model so far"})
                break
            if self.plan is not None and not stop:
                self._revise_plan(epoch, state)
                planned = planned_iterations(self.schedule, self.config.batch_size, self.dist.world_size) \
                    if self.schedule.is_fixed else None
            if stop:
                self.progress({"event": "message", "message": f"early stopping at epoch {epoch} (best epoch "
                                                              f"{state['best']['epoch']})"})
                break
        return self._finish(state, epoch, started)

    def _finish(self, state: dict[str, Any], epoch: int, started: float) -> FoldResult:
        """The kept weights (the best validated, else the last) and their full validation."""
        best = state["best"]
        validation: ValidationResult | None = None
        if best is not None and self.val_arrays is not None:
            weights = best["state_dict"]
            if best.get("full"):
                validation = ValidationResult(best["cases"], best["slices"])
            else:
                self.network.load_state_dict(weights)
                validation = self._validate(final=True)
        else:
            weights = self.network.state_dict()
            if self.val_arrays is not None:  # a budgeted run stopped before its first validation
                validation = self._validate(final=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            slice_losses = state["loss_sum"] / state["loss_count"]
        return FoldResult(
            fold=self.fold, state_dict={k: v.detach().cpu() for k, v in weights.items()},
            validation=validation.summary() if validation else {},
            val_cases=validation.cases if validation else [],
            val_slices=validation.slices if validation else [],
            history=state["history"], slice_losses=slice_losses, train_rows=self.train_rows,
            iterations=state["iterations"], epochs_run=epoch + 1,
            best_epoch=best["epoch"] if best else None, visits=state["visits"],
            plan=self.plan.to_dict() if self.plan else None, seconds=time.monotonic() - started,
            stopped_at_deadline=bool(state["deadline_hit"]),
        )
