"""The optimiser, the learning-rate schedule and the encoder's parameters (for ``freeze_encoder``)."""

from __future__ import annotations

import math
import re

from lesionseg.errors import ParameterError
from lesionseg.train.config import TrainConfig

#: the cosine schedule ends at this fraction of the learning rate
COSINE_FLOOR = 0.01


def make_optimiser(config: TrainConfig, parameters):
    """RMSprop (the paper's), Adam or SGD with the configuration's learning rate and weight decay."""
    import torch

    if config.optimiser == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimiser == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def cosine_factor(step: int, total_steps: int) -> float:
    """The cosine schedule's factor on the learning rate after ``step`` of ``total_steps`` steps: 1 at the
    start, :data:`COSINE_FLOOR` at the end (and after it)."""
    return _cosine(min(max(step, 0), total_steps) / max(total_steps, 1))


def _cosine(progress: float) -> float:
    """The cosine factor at ``progress`` (0..1) of the schedule."""
    return COSINE_FLOOR + (1.0 - COSINE_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * progress))


class CosineSteps:
    """The per-step cosine factor as a callable object (``LambdaLR`` saves its attributes in checkpoints).

    A budgeted run that revises its plan re-points it with :meth:`continue_to`: from the revision on, the
    cosine goes on from the factor it had reached to the floor at the new total, with no jump.
    """

    def __init__(self, total: int) -> None:
        self.total = int(total)
        self.anchor_step = 0  # the step of the last revision, and the schedule's progress (0..1) there
        self.anchor_progress = 0.0

    def progress(self, step: int) -> float:
        """The schedule's progress (0 at the start, 1 at the end) after ``step`` steps."""
        remaining = max(self.total - self.anchor_step, 1)
        share = min(max(step - self.anchor_step, 0), remaining) / remaining
        return self.anchor_progress + (1.0 - self.anchor_progress) * share

    def continue_to(self, step: int, total: int) -> None:
        """Keep the factor of ``step`` and reach the floor at ``total`` steps instead."""
        self.anchor_progress = self.progress(step)
        self.anchor_step, self.total = int(step), max(int(total), int(step) + 1)

    def __call__(self, step: int) -> float:
        return _cosine(self.progress(step))


def set_total_steps(lr_schedule, total_steps: int, at_step: int) -> None:
    """Point a per-step cosine schedule at a new total after ``at_step`` steps (a revised plan), keeping the
    factor reached; other schedules are left alone."""
    for function in getattr(lr_schedule, "lr_lambdas", []):
        if isinstance(function, CosineSteps):
            function.continue_to(at_step, total_steps)


def make_lr_schedule(config: TrainConfig, optimiser, total_steps: int | None = None):
    """The learning-rate schedule and whether it steps per optimiser step (True) or per epoch (False).

    ``cosine`` follows the planned optimiser steps when they are known (``total_steps``: a curriculum's
    early epochs are short, so a per-epoch cosine would spend its high rates on few steps), else the epochs;
    ``step`` multiplies by 0.1 at two thirds of the epochs; ``plateau`` halves after 2 validations without a
    better Dice; ``constant`` is None.
    """
    import torch

    if config.lr_schedule == "cosine":
        if total_steps:
            return torch.optim.lr_scheduler.LambdaLR(optimiser, CosineSteps(total_steps)), True
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs,
                                                          eta_min=config.lr * COSINE_FLOOR), False
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimiser, step_size=max(1, (2 * config.epochs) // 3), gamma=0.1), False
    if config.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="max", factor=0.5, patience=2), False
    return None, False


def encoder_parameter_names(network_name: str, network) -> list[str]:
    """Names of the encoder's parameters (for ``freeze_encoder``).

    Raises:
        ParameterError: a network whose encoder is not known, or none found.
    """
    names = [name for name, _ in network.named_parameters()]
    if network_name in ("unet2d", "basic_unet", "unet3d", "unet2plus1d"):
        pattern = re.compile(r"^(conv_0|down_\d+)\.")
    elif network_name == "detect_segment":
        pattern = re.compile(r"^(stem|encoder)\.")  # the down path; the decoder, heads and mask head train
    elif network_name in ("monai_unet", "res_unet"):
        pattern = re.compile(r"(^model\.0\.|submodule\.0\.)")  # MONAI UNet: the down path of each level
    else:
        raise ParameterError(f"--freeze-encoder is not available for network {network_name!r}.")
    chosen = [name for name in names if pattern.search(name)]
    if not chosen:
        raise ParameterError(f"--freeze-encoder found no encoder parameters in network {network_name!r}.")
    return chosen
