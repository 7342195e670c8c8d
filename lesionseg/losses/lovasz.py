"""Lovász-softmax loss (Berman, Triki and Blaschko, CVPR 2018), written here because MONAI has none.

For each class ``c`` the pixel errors ``m_i = |y_i(c) - p_i(c)|`` (one-hot truth ``y``, softmax ``p``) are
sorted in decreasing order and the loss is ``sum_i m_(i) g_i``, where ``g`` is the gradient of the Lovász
extension of the Jaccard loss at the sorted truth: with ``J_k = 1 - |y ∩ first k| / |y ∪ first k|``
evaluated on the sorted truth (intersection ``|y| - cumsum(y)``, union ``|y| + cumsum(1 - y)``),
``g_1 = J_1`` and ``g_k = J_k - J_(k-1)``. The loss averages over the classes present in the truth
(``classes="present"``, the paper's default) or over all classes.

With ``per_image=True`` (the default here) the loss is computed per image and averaged, so the mean of
:meth:`per_sample` equals the batch loss; with ``per_image=False`` the batch is flattened into one set of
pixels (the paper's batch variant) and the per-sample values are still computed per image.
"""

from __future__ import annotations

import torch

from lesionseg.errors import ParameterError
from lesionseg.losses.base import SegmentationLoss


def lovasz_jaccard_gradient(truth_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss for a truth vector sorted by decreasing error.

    Args:
        truth_sorted: ``(P,)`` float 0/1, the truth of one class ordered by decreasing error.

    Returns:
        ``(P,)`` the weights ``g`` (they sum to the Jaccard loss of predicting every pixel).
    """
    total = truth_sorted.sum()
    intersection = total - truth_sorted.cumsum(0)
    union = total + (1.0 - truth_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_softmax_flat(probabilities: torch.Tensor, labels: torch.Tensor,
                        classes: str = "present") -> torch.Tensor:
    """Lovász-softmax of one set of pixels.

    Args:
        probabilities: ``(P, C)`` softmax probabilities.
        labels: ``(P,)`` integer class labels.
        classes: ``"present"`` (classes in ``labels`` only) or ``"all"``.

    Returns:
        The scalar loss (0 when there are no pixels).
    """
    if probabilities.numel() == 0:
        return probabilities.sum() * 0.0
    losses = []
    for c in range(probabilities.shape[1]):
        truth = (labels == c).to(probabilities.dtype)
        if classes == "present" and not bool(truth.any()):
            continue
        errors = (truth - probabilities[:, c]).abs()
        errors_sorted, order = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_jaccard_gradient(truth[order])))
    return torch.stack(losses).mean()


class LovaszSoftmaxLoss(SegmentationLoss):
    """Lovász-softmax loss on the softmax of the logits.

    Args:
        per_image: compute per image and average (default), or over the flattened batch.
        classes: ``"present"`` (default) or ``"all"``.
        per_sample: see :class:`~lesionseg.losses.base.SegmentationLoss`.
    """

    name = "lovasz"

    def __init__(self, per_image: bool = True, classes: str = "present", per_sample: bool = False) -> None:
        super().__init__(per_sample)
        if classes not in ("present", "all"):
            raise ParameterError(f"loss 'lovasz': classes must be 'present' or 'all', not {classes!r}.")
        self.per_image = bool(per_image)
        self.classes = classes
        self.per_sample_mean_is_batch = self.per_image

    @staticmethod
    def _flatten(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, ...)`` logits and ``(B, 1, ...)`` labels -> ``(B, P, C)`` probabilities, ``(B, P)`` labels."""
        probabilities = torch.softmax(logits, dim=1).flatten(2).transpose(1, 2)
        return probabilities, target.flatten(1).long()

    def _per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probabilities, labels = self._flatten(logits, target)
        return torch.stack([lovasz_softmax_flat(p, y, self.classes) for p, y in zip(probabilities, labels)])

    def _batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.per_image:
            return self._per_sample(logits, target).mean()
        probabilities, labels = self._flatten(logits, target)
        return lovasz_softmax_flat(probabilities.reshape(-1, probabilities.shape[-1]), labels.reshape(-1),
                                   self.classes)
