"""Segmentation losses by name (MONAI's where MONAI has them).

Names (see :data:`LOSSES`): ``ce_dice`` (default, the curriculum paper's cross-entropy + Dice),
``gdice_ce``, ``dice_bce``, ``lovasz``, ``boundary_nll`` and ``f1``. Every loss takes
``(logits (B, C, ...), target labels (B, 1, ...))`` and has a ``per_sample`` method returning ``(B,)``
(see :mod:`lesionseg.losses.base`).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from lesionseg.errors import ParameterError
from lesionseg.losses.base import SegmentationLoss

DEFAULT_LOSS = "ce_dice"


@dataclass(frozen=True)
class LossSpec:
    """What a loss name means: a one-line description and the class (``module:Class``) implementing it."""

    description: str
    target: str

    def load(self) -> type:
        """The loss class (imported on first use)."""
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


LOSSES: dict[str, LossSpec] = {
    "ce_dice": LossSpec("cross-entropy + Dice (MONAI DiceCELoss), the curriculum paper's loss; options batch_dice, "
                        "lambda_blob (a lesion-wise Dice term: each lesion counts alike)",
                        "lesionseg.losses.dice_ce:CEDiceLoss"),
    "gdice_ce": LossSpec("generalised Dice (MONAI GeneralizedDiceLoss) + cross-entropy",
                         "lesionseg.losses.dice_ce:GDiceCELoss"),
    "dice_bce": LossSpec("Dice + binary cross-entropy on the lesion channel (MONAI DiceCELoss, sigmoid)",
                         "lesionseg.losses.dice_ce:DiceBCELoss"),
    "lovasz": LossSpec("Lovász-softmax (Berman et al. 2018), hand-written: MONAI has none",
                       "lesionseg.losses.lovasz:LovaszSoftmaxLoss"),
    "boundary_nll": LossSpec("pixel-wise NLL with weight 10 on the band dilation minus erosion (3x3) of the truth; "
                             "options band_weight, lambda_dice (an added soft Dice term), batch_dice",
                             "lesionseg.losses.boundary:BoundaryWeightedNLLLoss"),
    "f1": LossSpec("a base loss + alpha x (1 - lesion-wise F1 estimated by a frozen CNN), alpha 0.2",
                   "lesionseg.losses.f1_loss:F1TermLoss"),
}


def _class_of(name: str) -> type:
    return LOSSES[name].load()


def loss_keywords(name: str) -> tuple[str, ...]:
    """The keyword arguments the loss ``name`` accepts (including ``per_sample``)."""
    if name not in LOSSES:
        raise ParameterError(f"loss {name!r} is unknown; choose one of {', '.join(LOSSES)}.")
    return tuple(p for p in inspect.signature(_class_of(name).__init__).parameters if p != "self")


def build_loss(name: str = DEFAULT_LOSS, **kwargs: Any) -> SegmentationLoss:
    """Build a loss by name.

    Args:
        name: a key of :data:`LOSSES`.
        **kwargs: the loss's keywords (see each class; all take ``per_sample``). ``f1`` needs
            ``estimator=`` a file written by ``lesionseg train-f1-estimator``.

    Returns:
        A :class:`~lesionseg.losses.base.SegmentationLoss`: ``loss(logits, target)`` and
        ``loss.per_sample(logits, target) -> (B,)``.

    Raises:
        ParameterError: unknown name (the valid ones are listed), unknown keyword (the accepted ones
            are listed) or a bad value.
    """
    if not isinstance(name, str) or name not in LOSSES:
        raise ParameterError(f"loss {name!r} is unknown; choose one of {', '.join(LOSSES)}.")
    keywords = loss_keywords(name)
    unknown = sorted(set(kwargs) - set(keywords))
    if unknown:
        raise ParameterError(f"loss {name!r} does not take {', '.join(unknown)}; "
                             f"its keywords are {', '.join(keywords)}.")
    return _class_of(name)(**kwargs)
