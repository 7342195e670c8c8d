"""The lesion-wise F1 term: a base loss plus ``alpha * (1 - F1 estimate)`` from a frozen estimator.

Kamraoui et al. add ``alpha x (1 - estimated lesion-wise F1)`` (alpha 0.2) to a Dice loss; the estimate
comes from a small CNN (:class:`~lesionseg.losses.f1_estimator.F1Estimator`) trained beforehand on
(probability, truth) pairs and frozen: its weights never change, but the gradient flows through it to the
segmentation network's lesion probability.

The estimator sees ``(lesion probability, truth)`` resized to the size it was trained on
(:func:`~lesionseg.losses.f1_pairs.resize_pair`). For 3D inputs ``(B, C, Z, Y, X)`` each axial slice is
estimated and the estimates of a sample are averaged: a per-slice approximation of the volume's F1
(the estimator is 2D).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from lesionseg.errors import ParameterError
from lesionseg.losses.base import SegmentationLoss, lesion_probability, non_negative_option
from lesionseg.losses.f1_estimator import F1Estimator, load_f1_estimator
from lesionseg.losses.f1_pairs import resize_pair


class F1TermLoss(SegmentationLoss):
    """``base(logits, target) + alpha * (1 - F1_estimate)``.

    Args:
        estimator: an :class:`F1Estimator` or the path of a file from :func:`save_f1_estimator`.
        alpha: weight of the F1 term (0.2, as published).
        base: name of the base loss (default ``"ce_dice"``; not ``"f1"``).
        base_kwargs: keywords of the base loss.
        per_sample: see :class:`~lesionseg.losses.base.SegmentationLoss`.

    Raises:
        ParameterError: no estimator, a negative alpha, or a bad base loss.
        InputFileError: the estimator file cannot be read.
    """

    name = "f1"

    def __init__(self, estimator: F1Estimator | str | os.PathLike | None = None, alpha: float = 0.2,
                 base: str = "ce_dice", base_kwargs: Mapping[str, Any] | None = None,
                 per_sample: bool = False) -> None:
        super().__init__(per_sample)
        from lesionseg.losses.registry import build_loss

        if estimator is None:
            raise ParameterError("loss 'f1' needs estimator=<file from 'lesionseg train-f1-estimator'>.")
        if not isinstance(estimator, F1Estimator):
            estimator, _ = load_f1_estimator(estimator)
        alpha = non_negative_option(alpha, "alpha", self.name)
        if base == "f1":
            raise ParameterError("loss 'f1': the base loss cannot itself be 'f1'.")
        self.alpha = alpha
        self.base = build_loss(base, **dict(base_kwargs or {}))
        self.min_channels = self.base.min_channels
        self.per_sample_mean_is_batch = self.base.per_sample_mean_is_batch
        self.estimator = estimator.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "F1TermLoss":
        """Switch the base loss's mode; the estimator stays frozen in eval mode."""
        super().train(mode)
        self.estimator.eval()
        return self

    def estimate(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The estimated lesion-wise F1 per sample, ``(B,)``, differentiable with respect to ``logits``."""
        probability = lesion_probability(logits)  # (B, *spatial)
        truth = target[:, 0] > 0
        if probability.dim() == 4:  # 3D: one estimate per axial slice, averaged per sample
            batch, depth = probability.shape[:2]
            pair = resize_pair(probability.flatten(0, 1), truth.flatten(0, 1), self.estimator.size)
            return self.estimator(pair).view(batch, depth).mean(dim=1)
        return self.estimator(resize_pair(probability, truth, self.estimator.size))

    def _per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.base.per_sample(logits, target) + self.alpha * (1.0 - self.estimate(logits, target))

    def _batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.base(logits, target) + self.alpha * (1.0 - self.estimate(logits, target).mean())
