"""Boundary-weighted negative log-likelihood: weight 10 on a band around the lesion border, 1 elsewhere.

The band is the binary dilation minus the binary erosion of the truth with a full 3x3 structuring element
(3x3x3 in 3D, the same full neighbourhood): one ring of pixels just outside the lesion plus its one-pixel
inner border, i.e. a band two pixels wide straddling the boundary (the "3-pixel" of the description is
the structuring element's side). A 10x10 square gives the 12x12 square minus the 8x8 square: 80 pixels.

The loss of a sample is the mean over its pixels of ``w * NLL`` with ``NLL = -log softmax(logits)[truth]``
(a pixel-weight map as in Ronneberger et al.'s U-Net, not normalised by the sum of the weights), so the
mean of the per-sample values equals the batch loss.

The published loss has no region term. On slices where lesions are a few per cent of the pixels it learns no
lesion from scratch in a short CPU run (10 minutes of ``res_unet``: held-out Dice 0.001,
``benchmarks/results/adversarial.txt``), so ``lambda_dice`` adds MONAI's soft Dice on the softmax
(``DiceLoss(to_onehot_y=True, softmax=True)``, per sample, or over the batch with ``batch_dice``); 0 keeps
the published form.

The morphology is done with max-pooling on the tensor (so it runs on the training device without a copy
to the CPU; SciPy's ``binary_dilation``/``binary_erosion`` give the same band and the tests check it).
Outside the image counts as neither lesion nor background: a lesion cut by the image edge has no band
along that edge (SciPy's ``border_value=0`` for the dilation, ``border_value=1`` for the erosion).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from lesionseg.errors import ParameterError
from lesionseg.losses.base import SegmentationLoss, mean_per_sample, non_negative_option, true_or_false_option


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    """Binary dilation of a float 0/1 ``(B, 1, ...)`` tensor with the full 3x3 (3x3x3) element."""
    pool = F.max_pool2d if mask.dim() == 4 else F.max_pool3d
    return pool(mask, kernel_size=3, stride=1, padding=1)


def boundary_band(target: torch.Tensor) -> torch.Tensor:
    """The boundary band of a label tensor: dilation minus erosion of ``target > 0``.

    Args:
        target: ``(B, 1, H, W)`` or ``(B, 1, Z, Y, X)`` labels (lesion = any value > 0).

    Returns:
        A bool tensor of the same shape, True on the band.
    """
    if target.dim() not in (4, 5) or target.shape[1] != 1:
        raise ParameterError(f"boundary_band needs a (B, 1, H, W) or (B, 1, Z, Y, X) target, "
                             f"got {tuple(target.shape)}.")
    mask = (target > 0).float()
    dilated = _dilate(mask)
    eroded = 1.0 - _dilate(1.0 - mask)
    return (dilated - eroded) > 0.5


class BoundaryWeightedNLLLoss(SegmentationLoss):
    """Pixel-wise NLL of the softmax with weight ``band_weight`` on the boundary band, 1 elsewhere.

    Args:
        band_weight: weight on the band (10, as published).
        lambda_dice: weight of an added soft Dice term (0, as published, leaves it out).
        batch_dice: the Dice term over the whole batch as one volume (MONAI ``batch=True``) instead of per
            sample; the per-sample values then keep the per-sample Dice, so their mean is not the batch value.
        per_sample: see :class:`~lesionseg.losses.base.SegmentationLoss`.
    """

    name = "boundary_nll"

    def __init__(self, band_weight: float = 10.0, lambda_dice: float = 0.0, batch_dice: bool = False,
                 per_sample: bool = False) -> None:
        super().__init__(per_sample)
        band_weight = float(band_weight)
        if not band_weight > 0.0:
            raise ParameterError(f"loss 'boundary_nll': band_weight must be > 0, not {band_weight!r}.")
        self.band_weight = band_weight
        self.lambda_dice = non_negative_option(lambda_dice, "lambda_dice", self.name)
        true_or_false_option(batch_dice, "batch_dice", self.name)
        self.per_sample_mean_is_batch = not (self.lambda_dice and batch_dice)
        options = dict(to_onehot_y=True, softmax=True)
        self.dice_batch = DiceLoss(**options, batch=batch_dice)
        self.dice_none = DiceLoss(**options, reduction="none")

    def weights(self, target: torch.Tensor) -> torch.Tensor:
        """The weight map ``(B, 1, ...)``: ``band_weight`` on the band, 1 elsewhere."""
        return 1.0 + (self.band_weight - 1.0) * boundary_band(target).float()

    def _weighted_nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(logits, target[:, 0].long(), reduction="none")
        return mean_per_sample(self.weights(target)[:, 0].to(nll.dtype) * nll)

    def _batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self._weighted_nll(logits, target).mean()
        if self.lambda_dice:
            loss = loss + self.lambda_dice * self.dice_batch(logits, target)
        return loss

    def _per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self._weighted_nll(logits, target)
        if self.lambda_dice:
            loss = loss + self.lambda_dice * mean_per_sample(self.dice_none(logits, target))
        return loss
