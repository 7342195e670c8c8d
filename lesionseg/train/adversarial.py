"""Adversarial training: a critic that tells true lesion masks from the segmenter's, given the image.

The residual-network report this product implements trains its segmenter against an adversarial critic:
besides the segmentation loss, the segmenter is rewarded when the critic takes its predicted mask for a true
one. A per-pixel loss judges each pixel alone; the critic judges the whole shape in its image context, so the
term pushes predictions towards the shapes of real lesions (no speckle, no rim without its interior).

- The critic is MONAI's ``PatchDiscriminator`` (2D, three strided 4x4 convolutions of 16, 32 and 64 channels
  then a 128-channel one, instance normalisation, LeakyReLU 0.2), fed the image channels and the lesion
  mask (predicted or true, 0/1): each of its output pixels judges a patch of the slice (about 70 pixels
  across), as in the pix2pix "PatchGAN" critic (Isola et al., CVPR 2017).
- The segmenter's term: ``weight * BCE(critic(image, m), "true")``, averaged over the critic's output pixels and
  the batch, added to the segmentation loss. ``m`` is the predicted 0/1 mask (the softmax lesion probability
  ``p`` at 0.5) with ``p``'s gradient passed straight through (forward ``m``, backward identity), so the
  gradient reaches the segmenter. Shown ``p`` itself, the critic told predictions from true masks by their
  soft values alone, and a res_unet trained from scratch against it collapsed to empty masks (held-out Dice
  0.000 twice, ``benchmarks/results/adversarial.txt``); shown ``m`` it must judge shapes, and the same run
  trains on every seed (three seeds: Dice 0.551 +- 0.013 against 0.553 +- 0.007 without the critic).
- After each segmenter step, one critic step: ``(BCE(critic(image, truth), "true") + BCE(critic(image, m),
  "predicted")) / 2`` with ``m`` detached, on its own Adam (2e-4, betas 0.5 and 0.999: the usual settings of
  convolutional GANs, Radford et al., ICLR 2016).

Weight 0 (the default) means no critic. The critic works on 2D slices and in one process (under ``torchrun``
each rank would train a critic of its own): the trainer refuses the other cases.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lesionseg.train.config import check_adversarial_weight

#: the critic's Adam settings
CRITIC_LR = 2e-4
CRITIC_BETAS = (0.5, 0.999)
#: the smallest slice side the critic judges (its four 4x4 convolutions leave a 2 x 2 grid of patches at 32
#: pixels); smaller crops (an early size-curriculum epoch on a tiny slice) train without the critic
MIN_SIDE = 32


def build_critic(image_channels: int) -> nn.Module:
    """MONAI's 2D ``PatchDiscriminator`` for ``image_channels`` image planes plus one mask plane."""
    from monai.networks.nets import PatchDiscriminator

    return PatchDiscriminator(spatial_dims=2, channels=16, in_channels=image_channels + 1, out_channels=1,
                              num_layers_d=3, norm="INSTANCE")


class AdversarialCritic:
    """The critic, its optimiser and the epoch's running means of both losses.

    Args:
        image_channels: the segmenter's input planes (channels x neighbouring slices).
        weight: the weight of the segmenter's term (> 0).
        device: where the critic runs (the segmenter's device).
    """

    def __init__(self, image_channels: int, weight: float, device: torch.device) -> None:
        self.weight = check_adversarial_weight(weight)
        self.critic = build_critic(image_channels).to(device)
        self.optimiser = torch.optim.Adam(self.critic.parameters(), lr=CRITIC_LR, betas=CRITIC_BETAS)
        self._criterion = nn.BCEWithLogitsLoss()
        self._sums = {"critic_loss": 0.0, "adversarial_loss": 0.0}
        self._count = 0

    def _judge(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The critic's patch logits ``(B, 1, h, w)`` for images ``(B, C, H, W)`` and a mask ``(B, 1, H, W)``."""
        return self.critic(torch.cat([images, mask], dim=1))[-1]

    @staticmethod
    def _as_mask(lesion_probability: torch.Tensor) -> torch.Tensor:
        """The prediction as the critic sees it: the 0/1 mask at 0.5, with the probability's gradient passed
        straight through (forward: the mask; backward: identity)."""
        hard = (lesion_probability >= 0.5).to(lesion_probability.dtype)
        return hard + lesion_probability - lesion_probability.detach()

    def segmenter_term(self, images: torch.Tensor, lesion_probability: torch.Tensor) -> torch.Tensor:
        """``weight * BCE(critic(image, m), true)``: a scalar to add to the segmentation loss.

        Args:
            images: (B, C, H, W) the segmenter's input.
            lesion_probability: (B, 1, H, W) the softmax lesion probability (with its gradient).
        """
        if min(images.shape[-2:]) < MIN_SIDE:
            return images.new_zeros(())
        logits = self._judge(images, self._as_mask(lesion_probability))
        term = self._criterion(logits, torch.ones_like(logits))
        self._sums["adversarial_loss"] += float(term.detach())
        return self.weight * term

    def step(self, images: torch.Tensor, lesion_probability: torch.Tensor, truth: torch.Tensor) -> float:
        """One critic step on true masks against the (detached) predictions; returns the critic's loss.

        Args:
            images: (B, C, H, W).
            lesion_probability: (B, 1, H, W) the segmenter's probabilities (detached here).
            truth: (B, 1, H, W) 0/1 lesion labels.
        """
        if min(images.shape[-2:]) < MIN_SIDE:
            return float("nan")
        self.optimiser.zero_grad(set_to_none=True)
        real = self._judge(images, truth.float())
        fake = self._judge(images, self._as_mask(lesion_probability.detach()))
        loss = 0.5 * (self._criterion(real, torch.ones_like(real)) + self._criterion(fake, torch.zeros_like(fake)))
        loss.backward()
        self.optimiser.step()
        self._sums["critic_loss"] += float(loss.detach())
        self._count += 1
        return float(loss.detach())

    def epoch_means(self) -> dict[str, float]:
        """The critic's and the segmenter's adversarial loss averaged over the steps since the last call."""
        means = {key: value / self._count for key, value in self._sums.items()} if self._count else {}
        self._sums = dict.fromkeys(self._sums, 0.0)
        self._count = 0
        return means

    def state_dict(self) -> dict[str, Any]:
        """The critic's weights and optimiser (for a resumable checkpoint)."""
        return {"critic": self.critic.state_dict(), "optimiser": self.optimiser.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.critic.load_state_dict(state["critic"])
        self.optimiser.load_state_dict(state["optimiser"])
