"""Resumable checkpoints, written atomically: a crash or a cancel loses at most the epoch in progress.

A checkpoint holds plain data only (tensors, numbers, strings, lists, dicts) and is read with
``torch.load(weights_only=True)``: the model and optimiser state dicts, the learning-rate scheduler's
state, the epoch just finished, the self-paced schedule's state, the training history, the best model
so far, and torch's random state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lesionseg.errors import InputFileError
from lesionseg.io import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically."""
    import torch

    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (plain data only; no code is unpickled)."""
    import pickle

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputFileError(f"{path} does not exist; there is nothing to resume.") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise InputFileError(f"{path} is not a readable LesionSeg checkpoint ({str(error).splitlines()[0][:160]}).") from error
