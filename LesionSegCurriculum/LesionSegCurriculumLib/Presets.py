"""The presets of ``lesionseg prepare`` and ``lesionseg train``, as the panel needs them without torch.

``lesionseg.train.presets`` holds the table (what a run uses when the user says nothing); importing it loads
``lesionseg.train``, which imports torch, so the values the panel shows and checks are written out here and a
test checks that they match: the names, each preset's preparation values, training time, neighbouring slices
and starter choice.

A panel field left at "the preset's" is None or blank text (:func:`given` says which); the helpers below read
the fields a user may type and check the preset and the neighbouring slices.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: ``lesionseg prepare|train --preset`` (``lesionseg.train.presets.PRESET_NAMES``).
PRESET_NAMES: tuple[str, ...] = ("auto", "cpu", "gpu", "paper")
PRESET_LABELS: dict[str, str] = {
    "auto": "Automatic (gpu with a GPU, else cpu)",
    "cpu": "CPU: minutes on a laptop (128 px, 2.5D, small U-Net)",
    "gpu": "GPU: the CPU recipe at 192 px, wider U-Net",
    "paper": "Paper: the published settings (200 epochs, 5 folds)",
}
#: Each preset's preparation values (``Preset.prepare``: slice size, lesion-free fraction, neighbouring slices,
#: the margin around the brain that the slices frame, None for the whole field of view; anti-aliasing before resampling).
PRESET_PREPARE: dict[str, dict[str, Any]] = {
    "cpu": {"size": 128, "negatives": 1.0, "context_slices": 1, "brain_margin_mm": 10.0, "antialias": True},
    "gpu": {"size": 192, "negatives": 1.0, "context_slices": 1, "brain_margin_mm": 10.0, "antialias": True},
    "paper": {"size": 192, "negatives": 0.1, "context_slices": 0, "brain_margin_mm": None},
}
#: Each preset's training time in minutes (``Preset.minutes``; None: it trains a number of epochs).
PRESET_MINUTES: dict[str, float | None] = {"cpu": 15.0, "gpu": 15.0, "paper": None}
#: Each preset's neighbouring slices given to the network (``Preset.train["context_slices"]``).
PRESET_TRAIN_CONTEXT: dict[str, int] = {"cpu": 1, "gpu": 1, "paper": 0}
#: Whether each preset fine-tunes from the shipped starter model when it fits (``Preset.starter``).
PRESET_STARTER: dict[str, bool] = {"cpu": True, "gpu": False, "paper": False}
#: The panel's default training time: the cpu preset's.
DEFAULT_MINUTES: float = float(PRESET_MINUTES["cpu"])
#: Epochs when no time is given (the paper's 200; ``lesionseg.train.TrainConfig.epochs``).
DEFAULT_EPOCHS: int = 200
#: Difficulty groups when not given (``lesionseg.train.TrainConfig.groups``; the paper's 6).
DEFAULT_GROUPS: int = 6
#: ``--context``: neighbouring slices on each side, 0..4 (``lesionseg.preprocess.PrepareConfig``).
MAX_CONTEXT: int = 4


def preset_value(table: dict[str, Any], preset: str) -> Any:
    """A preset's value in one of the tables above; for ``auto`` the value cpu and gpu share (the device
    decides between them), None when they differ or the name is unknown."""
    if preset == "auto":
        values = {json.dumps(table.get(name), sort_keys=True) for name in ("cpu", "gpu")}
        return table.get("cpu") if len(values) == 1 else None
    return table.get(preset)


def preset_minutes(preset: str) -> float:
    """The training time to show when the user picks ``preset``: its minutes, 0 (epochs) for ``paper``."""
    minutes = preset_value(PRESET_MINUTES, preset)
    return float(minutes) if minutes is not None else 0.0


def given(value: Any) -> bool:
    """False for "the preset's": None or a blank string."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def whole_number(value: Any) -> int | None:
    """A whole number from an int, a whole float or its text; None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def finite_number(value: Any) -> float | None:
    """A finite number from a number or its text; None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def check_preset(preset: Any) -> tuple[bool, str]:
    """``(ok, reason)``: the preset is one of :data:`PRESET_NAMES`."""
    if preset not in PRESET_NAMES:
        return False, f"The preset {preset!r} is not one of {', '.join(PRESET_NAMES)}; choose one of those."
    return True, ""


def check_context(context: Any, preset: str) -> tuple[bool, str]:
    """``(ok, reason)``: the neighbouring slices are the preset's (not given) or a whole number 0..4."""
    if not given(context):
        return True, ""
    value = whole_number(context)
    if value is None or not 0 <= value <= MAX_CONTEXT:
        usual = preset_value(PRESET_TRAIN_CONTEXT, preset)
        hint = f" (the {preset} preset uses {usual})" if usual is not None else ""
        return False, (f"The number of neighbouring slices {context!r} must be a whole number from 0 to "
                       f"{MAX_CONTEXT}{hint}.")
    return True, ""
