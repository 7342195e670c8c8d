"""What a run uses when the user says nothing: one table of recipes, read by the CLI, the demo and both panels.

A preset fixes the preparation (slice size, lesion-free slices, neighbouring slices) and the training
(network, optimiser, schedule, loss, time budget, whether to start from the shipped starter model). Options
the user gives override it; ``--preset`` picks another row.

- ``cpu`` (the default without a GPU): the recipe measured best on a 2-core laptop CPU for a budget of
  minutes (``benchmarks/bench_budget.py``): 128 x 128 slices framing the brain with a 10 mm margin (about
  1.5 mm pixels instead of 2 mm for the whole field of view), every brain slice, one neighbouring slice on
  each side (2.5D input), MONAI's U-Net with 16..256 channels (0.2 s per step of 12 slices here,
  7 times faster than the paper's U-Net at these widths) with batch normalisation (MONAI's default, instance
  normalisation, normalises each slice by its own statistics, so a lesion that fills much of a slice lowers
  its own features: the model then marks its rim and misses its interior; from scratch on 8 cases for 8
  minutes, held-out Dice 0.603 against 0.540), Adam 1e-3 with a cosine schedule over the
  planned steps, cross-entropy + batch Dice, zoom and intensity augmentation, 15 minutes, one model (fold 0
  of 5: its validation cases pick the checkpoint; with fewer than :data:`HOLD_OUT_MIN_CASES` cases, one model
  on all of them and its final weights), fine-tuned from the starter model when it fits (at a learning rate
  of 1e-4: against 3e-4, over two seeds, held-out Dice on real anatomy 0.796 -> 0.816 with its large faint
  infarcts kept more whole, the phantom level, ``benchmarks/results/template-anatomy.txt``), with rehearsal
  of the starter's recipe (:mod:`lesionseg.train.rehearsal`: as many synthetic cases of lesions the scan
  shows as the run's own, at most 16). Over three seeds (``benchmarks/results/rehearsal.txt``)
  rehearsal raised held-out Dice on real anatomy (the MNI152 template) from 0.658 +- 0.006 to 0.702 +- 0.027 at
  a lesion F1 of 0.812 against 0.816, and left the phantom level (Dice 0.769 against 0.764, lesion F1 0.711 against
  0.726); ``--rehearsal 0`` turns it off.
- ``gpu`` (the default with CUDA or MPS): the same recipe at 192 x 192 with 32..512 channels.
- ``paper``: the published settings exactly (Moreau et al., ISBI 2023): 192 x 192 slices, 10 % of the
  lesion-free slices, no neighbours, the 5-level U-Net with 32..512 features, RMSprop 1e-4 (constant),
  cross-entropy + Dice, batch 12, 200 epochs, 5 folds, the vanilla curriculum on contrast in 6 groups, no
  time budget, trained from scratch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from lesionseg.errors import ParameterError

PRESET_NAMES = ("auto", "cpu", "gpu", "paper")


@dataclass(frozen=True)
class Preset:
    """One row of the table.

    Attributes:
        name: the preset's name (``cpu``, ``gpu``, ``paper``).
        description: one line for help texts and the report.
        prepare: :class:`lesionseg.preprocess.PrepareConfig` values (size, negatives, context_slices).
        train: :class:`lesionseg.train.TrainConfig` values.
        minutes: the training time when the user gives neither ``--minutes`` nor ``--epochs`` (None: epochs).
        starter: fine-tune from the shipped starter model when it fits the run.
    """

    name: str
    description: str
    prepare: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    minutes: float | None = None
    starter: bool = False

    def prepare_values(self) -> dict[str, Any]:
        """A copy of the preparation values (callers may change it)."""
        return copy.deepcopy(self.prepare)

    def train_values(self) -> dict[str, Any]:
        """A copy of the training values, with the preset's name (recorded in the run and the bundle)."""
        return {**copy.deepcopy(self.train), "preset": self.name}


#: the augmentation of the fast presets: the default transforms plus zoom and intensity changes (scale,
#: shift, gamma, blur, low resolution), so that a few training cases show lesions and tissue at more sizes
#: and contrasts than they hold (nnU-Net's default augmentation does the same)
FAST_AUGMENTATION: dict[str, Any] = {"zoom_prob": 0.3, "scale_prob": 0.3, "shift_prob": 0.2, "gamma_prob": 0.3,
                                     "blur_prob": 0.1, "lowres_prob": 0.1}

#: the fast presets train one model on every case (no validation hold-out, the final weights kept) when the
#: dataset has fewer cases than this. Measured on 10 training cases (benchmarks/results/all-data-seeds.txt): 2 held
#: out for validation (fold 0 of 5) against all 10 trained on, 15 minutes from the starter, 20 held-out cases, three
#: seeds: Dice 0.735 +- 0.018 against 0.756 +- 0.018, lesion F1 0.690 +- 0.055 against 0.717 +- 0.013, and every
#: lesion over 10 mL within 0.8-1.25 of its volume only in the all-data runs. Where the line lies between 10 and
#: the datasets on which a hold-out pays is a judgement, not a measurement: at 20 cases a fifth held out is 4
#: cases, enough to choose a checkpoint on.
HOLD_OUT_MIN_CASES = 20

_FAST_TRAIN: dict[str, Any] = {
    "network": "monai_unet", "network_kwargs": {"channels": [16, 32, 64, 128, 256], "norm": "batch"},
    "optimiser": "adam", "lr": 1e-3, "lr_schedule": "cosine",
    "loss": "ce_dice", "loss_kwargs": {"batch_dice": True},
    "batch_size": 12, "curriculum": "vanilla", "metrics": ["contrast"], "context_slices": 1,
    "folds": 5, "fold": 0, "hold_out_min_cases": HOLD_OUT_MIN_CASES, "augmentation": FAST_AUGMENTATION,
    "finetune_lr": 1e-4, "rehearsal": "auto",
}

PRESETS: dict[str, Preset] = {
    "cpu": Preset(
        name="cpu",
        description="measured best on a laptop CPU in minutes: 128 px (read at 128, 160 and 192), 2.5D, small U-Net, Adam + cosine",
        prepare={"size": 128, "negatives": 1.0, "context_slices": 1, "brain_margin_mm": 10.0, "antialias": True},
        # 128-pixel slices (about 1.4 mm pixels) train fast; new MRI scans are read at 128 and at 160 (about
        # 1.1 mm, where small lesions keep their contrast), CT at 128 (lesionseg.bundle.slice_size). The gpu preset's 192
        # pixels are already about 1 mm: it reads at its training size.
        train={**_FAST_TRAIN, "inference_scale": "auto"},
        minutes=15.0,
        starter=True,
    ),
    "gpu": Preset(
        name="gpu",
        description="the CPU recipe at 192 px with a wider U-Net, for a GPU",
        prepare={"size": 192, "negatives": 1.0, "context_slices": 1, "brain_margin_mm": 10.0, "antialias": True},
        train={**_FAST_TRAIN, "network_kwargs": {"channels": [32, 64, 128, 256, 512], "norm": "batch"}},
        minutes=15.0,
        starter=False,
    ),
    "paper": Preset(
        name="paper",
        description="the published settings (Moreau et al., ISBI 2023): 192 px, U-Net 32-512, RMSprop 1e-4, "
                    "200 epochs, 5 folds",
        prepare={"size": 192, "negatives": 0.1, "context_slices": 0, "brain_margin_mm": None},
        train={"network": "unet2d", "network_kwargs": {}, "optimiser": "rmsprop", "lr": 1e-4,
               "lr_schedule": "constant", "loss": "ce_dice", "loss_kwargs": {}, "batch_size": 12, "epochs": 200,
               "curriculum": "vanilla", "metrics": ["contrast"], "groups": 6, "grouping": "quantile",
               "context_slices": 0, "folds": 5, "fold": None, "size_curriculum": [], "augmentation": {}},
        minutes=None,
        starter=False,
    ),
}


def auto_preset_name(device: str = "auto") -> str:
    """``gpu`` when the device choice resolves to a GPU (CUDA or MPS), else ``cpu``."""
    from lesionseg.device import resolve_device

    try:
        resolved = resolve_device(device)
    except ParameterError:
        return "cpu"
    return "cpu" if resolved.type == "cpu" else "gpu"


def get_preset(name: str | None = "auto", device: str = "auto") -> Preset:
    """The preset called ``name`` (``auto`` or None: by the device, see :func:`auto_preset_name`).

    Raises:
        ParameterError: an unknown name, naming the choices.
    """
    chosen = auto_preset_name(device) if name in (None, "auto") else name
    if chosen not in PRESETS:
        raise ParameterError(f"--preset must be one of {', '.join(PRESET_NAMES)}, not {name!r}.")
    return PRESETS[chosen]
