"""Segmentation losses by name (MONAI's where MONAI has them) and the lesion-wise F1 estimator.

``build_loss(name, **kwargs)`` gives a loss taking ``(logits (B, C, ...), target labels (B, 1, ...))``;
see :mod:`.registry` for the names and :mod:`.base` for the input convention and per-sample values.
"""

from lesionseg.losses.base import SegmentationLoss, lesion_probability
from lesionseg.losses.boundary import BoundaryWeightedNLLLoss, boundary_band
from lesionseg.losses.dice_ce import CEDiceLoss, DiceBCELoss, GDiceCELoss
from lesionseg.losses.f1_estimator import (
    F1Estimator,
    load_f1_estimator,
    make_f1_pairs,
    random_lesion_masks,
    save_f1_estimator,
    train_f1_estimator,
)
from lesionseg.losses.f1_loss import F1TermLoss
from lesionseg.losses.lovasz import LovaszSoftmaxLoss
from lesionseg.losses.registry import DEFAULT_LOSS, LOSSES, LossSpec, build_loss, loss_keywords

__all__ = [
    "DEFAULT_LOSS",
    "LOSSES",
    "BoundaryWeightedNLLLoss",
    "CEDiceLoss",
    "DiceBCELoss",
    "F1Estimator",
    "F1TermLoss",
    "GDiceCELoss",
    "LossSpec",
    "LovaszSoftmaxLoss",
    "SegmentationLoss",
    "boundary_band",
    "build_loss",
    "lesion_probability",
    "load_f1_estimator",
    "loss_keywords",
    "make_f1_pairs",
    "random_lesion_masks",
    "save_f1_estimator",
    "train_f1_estimator",
]
