"""The common interface of the segmentation losses: batch and per-sample values, input checks.

Input convention (all losses): ``loss(logits, target)`` with

- ``logits``: float ``(B, C, H, W)`` or ``(B, C, Z, Y, X)``, the network's raw outputs (no softmax), C
  classes (2: background, lesion);
- ``target``: ``(B, 1, H, W)`` or ``(B, 1, Z, Y, X)`` integer class labels (0 background, 1 lesion),
  MONAI's ``to_onehot_y`` convention; float tensors holding 0/1 are accepted.

``loss(logits, target)`` returns the batch loss (a scalar). ``loss.per_sample(logits, target)`` returns
one value per sample, shape ``(B,)``, which the trainer records per slice (self-paced curriculum, gradient
difficulty). A loss constructed with ``per_sample=True`` returns that ``(B,)`` vector from its call too.
:attr:`SegmentationLoss.per_sample_mean_is_batch` says whether the mean of the per-sample values equals
the batch loss (true for every loss here except ``lovasz`` with ``per_image=False``).
"""

from __future__ import annotations

import torch
from torch import nn

from lesionseg.errors import ParameterError


def check_inputs(logits: torch.Tensor, target: torch.Tensor, name: str, min_channels: int = 2) -> None:
    """Check the shapes of ``(logits, target)`` against the convention above.

    Raises:
        ParameterError: wrong ranks, a target with more than one channel, spatial shapes or batch sizes
            that differ, non-float logits, or fewer channels than the loss needs.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ParameterError(f"loss {name!r} takes two tensors (logits, target).")
    if logits.dim() not in (4, 5):
        raise ParameterError(f"loss {name!r}: logits must be (B, C, H, W) or (B, C, Z, Y, X), got shape "
                             f"{tuple(logits.shape)}.")
    if not torch.is_floating_point(logits):
        raise ParameterError(f"loss {name!r}: logits must be a float tensor, got {logits.dtype}.")
    expected = (logits.shape[0], 1, *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ParameterError(f"loss {name!r}: target must have shape {expected} (class labels in one channel) "
                             f"for logits of shape {tuple(logits.shape)}; got {tuple(target.shape)}.")
    if logits.shape[1] < min_channels:
        raise ParameterError(f"loss {name!r} needs logits with at least {min_channels} channels (classes); "
                             f"got {logits.shape[1]}.")


def lesion_logit(logits: torch.Tensor) -> torch.Tensor:
    """The lesion-vs-background logit, ``(B, 1, *spatial)``.

    With 2 channels it is ``logits[:, 1] - logits[:, 0]``, whose sigmoid is exactly the softmax lesion
    probability; with 1 channel it is that channel.
    """
    if logits.shape[1] == 1:
        return logits
    if logits.shape[1] == 2:
        return logits[:, 1:2] - logits[:, 0:1]
    raise ParameterError(f"a binary (lesion) loss needs 1 or 2 logit channels; got {logits.shape[1]}.")


def lesion_probability(logits: torch.Tensor) -> torch.Tensor:
    """The lesion probability ``(B, *spatial)``: the softmax summed over the lesion channels 1.. (channel 1
    alone for background/lesion; any lesion class for several), or the sigmoid of a single channel."""
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return torch.softmax(logits, dim=1)[:, 1:].sum(dim=1)


def non_negative_option(value: float, label: str, name: str) -> float:
    """``value`` as a float, or ParameterError naming the loss ``name`` and its option ``label`` when below 0."""
    value = float(value)
    if not value >= 0.0:
        raise ParameterError(f"loss {name!r}: {label} must be >= 0, not {value!r}.")
    return value


def true_or_false_option(value: object, label: str, name: str) -> bool:
    """``value`` when it is a bool, else ParameterError naming the loss ``name`` and its option ``label``."""
    if not isinstance(value, bool):
        raise ParameterError(f"loss {name!r}: {label} must be true or false, not {value!r}.")
    return value


def mean_per_sample(values: torch.Tensor) -> torch.Tensor:
    """Average everything but the batch axis: ``(B, ...) -> (B,)``."""
    return values.reshape(values.shape[0], -1).mean(dim=1)


class SegmentationLoss(nn.Module):
    """Base class: subclasses implement ``_batch`` and ``_per_sample`` on checked inputs.

    Args:
        per_sample: when True, calling the loss returns the ``(B,)`` per-sample values instead of the
            batch scalar.
    """

    #: Registry name (set by subclasses).
    name: str = "loss"
    #: Fewest logit channels the loss accepts.
    min_channels: int = 2
    #: Whether ``per_sample(...).mean()`` equals the batch loss.
    per_sample_mean_is_batch: bool = True

    def __init__(self, per_sample: bool = False) -> None:
        super().__init__()
        self.returns_per_sample = bool(per_sample)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The batch loss (scalar), or the ``(B,)`` per-sample losses when built with ``per_sample=True``."""
        check_inputs(logits, target, self.name, self.min_channels)
        if self.returns_per_sample:
            return self._per_sample(logits, target)
        return self._batch(logits, target)

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One loss value per sample, shape ``(B,)``."""
        check_inputs(logits, target, self.name, self.min_channels)
        return self._per_sample(logits, target)

    def training_loss(self, logits: torch.Tensor, target: torch.Tensor,
                      per_sample: torch.Tensor | None = None) -> torch.Tensor:
        """The scalar a training step minimises: the mean of the ``(B,)`` per-sample values when that is the
        batch loss (``per_sample``, when the caller already has them, is reused), else the batch loss itself
        (a batch Dice is not the mean of per-sample Dice values)."""
        if self.per_sample_mean_is_batch:
            return (per_sample if per_sample is not None else self.per_sample(logits, target)).mean()
        return self(logits, target)

    def _batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self._per_sample(logits, target).mean()

    def _per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError
