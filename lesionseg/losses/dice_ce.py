"""Region losses from MONAI: cross-entropy + Dice, generalised Dice + cross-entropy, Dice + BCE.

The batch value is MONAI's own loss; the per-sample value uses the same MONAI loss with
``reduction="none"`` plus a per-sample mean of the cross-entropy, so that its mean over the batch equals
the batch value (MONAI's ``batch=False``: Dice is computed per sample, then averaged).
Inputs follow :mod:`lesionseg.losses.base` (logits ``(B, C, ...)``, target labels ``(B, 1, ...)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss, GeneralizedDiceLoss

from lesionseg.errors import ParameterError
from lesionseg.losses.base import (
    SegmentationLoss, lesion_logit, lesion_probability, mean_per_sample, non_negative_option, true_or_false_option,
)
from lesionseg.losses.blob import blob_dice_losses


def _cross_entropy_per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return mean_per_sample(F.cross_entropy(logits, target[:, 0].long(), reduction="none"))


class CEDiceLoss(SegmentationLoss):
    """Cross-entropy + Dice on the softmax (MONAI ``DiceCELoss(to_onehot_y=True, softmax=True)``).

    Args:
        include_background: include the background channel in the Dice (MONAI's default, True).
        lambda_dice: weight of the Dice term.
        lambda_ce: weight of the cross-entropy term.
        smooth_nr: constant added to the Dice numerator.
        smooth_dr: constant added to the Dice denominator.
        batch_dice: compute the Dice over the whole batch as one volume (MONAI ``batch=True``, as nnU-Net
            does for 2D) instead of per slice and then averaged. Per-slice Dice is 1 on every lesion-free
            slice unless the prediction is exactly empty, and noisy on slices with a few lesion pixels; the
            batch Dice weighs every lesion pixel of the batch alike. The per-sample values (slice losses,
            self-paced learning) stay per slice, so their mean is then not the batch value.
        lambda_blob: weight of the lesion-wise Dice term (:mod:`lesionseg.losses.blob`: each connected lesion
            of the batch counts alike, so small lesions are not left out); 0 (default) leaves it out.
        per_sample: see :class:`~lesionseg.losses.base.SegmentationLoss`.
    """

    name = "ce_dice"

    def __init__(self, include_background: bool = True, lambda_dice: float = 1.0, lambda_ce: float = 1.0,
                 smooth_nr: float = 1e-5, smooth_dr: float = 1e-5, batch_dice: bool = False,
                 lambda_blob: float = 0.0, per_sample: bool = False) -> None:
        super().__init__(per_sample)
        self.lambda_dice = non_negative_option(lambda_dice, "lambda_dice", self.name)
        self.lambda_ce = non_negative_option(lambda_ce, "lambda_ce", self.name)
        self.lambda_blob = non_negative_option(lambda_blob, "lambda_blob", self.name)
        true_or_false_option(batch_dice, "batch_dice", self.name)
        # a batch Dice, or a lesion-wise term averaged over the batch's lesions, is not the mean of per-sample values
        self.per_sample_mean_is_batch = not batch_dice and not self.lambda_blob
        options = dict(include_background=include_background, to_onehot_y=True, softmax=True,
                       smooth_nr=smooth_nr, smooth_dr=smooth_dr)
        self.monai_loss = DiceCELoss(**options, lambda_dice=self.lambda_dice, lambda_ce=self.lambda_ce,
                                     batch=batch_dice)
        self.dice_none = DiceLoss(**options, reduction="none")

    def _batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.monai_loss(logits, target)
        if self.lambda_blob:  # the mean over every lesion of the batch
            sums, counts = blob_dice_losses(lesion_probability(logits), target)
            loss = loss + self.lambda_blob * sums.sum() / counts.sum().clamp(min=1.0)
        return loss

    def _per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        dice = mean_per_sample(self.dice_none(logits, target))  # (B, C, 1, 1) -> mean over classes
        loss = self.lambda_dice * dice + self.lambda_ce * _cross_entropy_per_sample(logits, target)
        if self.lambda_blob:  # the mean over the sample's lesions (0 without lesions)
            sums, counts = blob_dice_losses(lesion_probability(logits), target)
            loss = loss + self.lambda_blob * sums / counts.clamp(min=1.0)
        return loss


class GDiceCELoss(SegmentationLoss):
    """Generalised Dice (MONAI ``GeneralizedDiceLoss``, class weights 1/volume²) + cross-entropy.

    MONAI has no generalised-Dice + CE loss in one class, so the two MONAI/PyTorch terms are added here.

    Args:
        include_background: include the background class in the generalised Dice.
        w_type: MONAI's class weighting, ``"square"`` (1/volume², Sudre et al. 2017), ``"simple"`` or
            ``"uniform"``.
        lambda_gdice: weight of the generalised Dice term.
        lambda_ce: weight of the cross-entropy term.
        per_sample: see :class:`~lesionseg.losses.base.SegmentationLoss`.
    """

    name = "gdice_ce"

    def __init__(self, include_background: bool = True, w_type: str = "square", lambda_gdice: float = 1.0,
                 lambda_ce: float = 1.0, per_sample: bool = False) -> None:
        super().__init__(per_sample)
        if w_type not in ("square", "simple", "uniform"):
            raise ParameterError(f"loss {self.name!r}: w_type must be square, simple or uniform, not {w_type!r}.")
        self.lambda_gdice = non_negative_option(lambda_gdice, "lambda_gdice", self.name)
        self.lambda_ce = non_negative_option(lambda_ce, "lambda_ce", self.name)
        options = dict(include_background=include_background, to_onehot_y=True, softmax=True, w_type=w_type)
        self.gdice_mean = GeneralizedDiceLoss(**options, reduction="mean")
        self.gdice_none = GeneralizedDiceLoss(**options, reduction="none")

    def _batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target[:, 0].long())
        return self.lambda_gdice * self.gdice_mean(logits, target) + self.lambda_ce * ce

    def _per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        gdice = mean_per_sample(self.gdice_none(logits, target))  # (B, 1, 1, 1)
        return self.lambda_gdice * gdice + self.lambda_ce * _cross_entropy_per_sample(logits, target)


class DiceBCELoss(SegmentationLoss):
    """Dice + binary cross-entropy on the lesion channel.

    The lesion logit is ``logits[:, 1] - logits[:, 0]`` (its sigmoid is the softmax lesion probability),
    or the only channel of single-channel logits. MONAI ``DiceCELoss(sigmoid=True)`` on that one channel
    is exactly Dice (on the sigmoid) + ``BCEWithLogits``.

    Args:
        lambda_dice: weight of the Dice term.
        lambda_bce: weight of the binary cross-entropy term.
        smooth_nr: constant added to the Dice numerator.
        smooth_dr: constant added to the Dice denominator.
        per_sample: see :class:`~lesionseg.losses.base.SegmentationLoss`.
    """

    name = "dice_bce"
    min_channels = 1

    def __init__(self, lambda_dice: float = 1.0, lambda_bce: float = 1.0, smooth_nr: float = 1e-5,
                 smooth_dr: float = 1e-5, per_sample: bool = False) -> None:
        super().__init__(per_sample)
        self.lambda_dice = non_negative_option(lambda_dice, "lambda_dice", self.name)
        self.lambda_bce = non_negative_option(lambda_bce, "lambda_bce", self.name)
        options = dict(sigmoid=True, smooth_nr=smooth_nr, smooth_dr=smooth_dr)
        self.monai_loss = DiceCELoss(**options, lambda_dice=self.lambda_dice, lambda_ce=self.lambda_bce)
        self.dice_none = DiceLoss(**options, reduction="none")

    def _batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.monai_loss(lesion_logit(logits), (target > 0).to(logits.dtype))

    def _per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logit, truth = lesion_logit(logits), (target > 0).to(logits.dtype)
        dice = mean_per_sample(self.dice_none(logit, truth))
        bce = mean_per_sample(F.binary_cross_entropy_with_logits(logit, truth, reduction="none"))
        return self.lambda_dice * dice + self.lambda_bce * bce
