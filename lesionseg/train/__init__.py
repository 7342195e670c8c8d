"""The trainer: folds, curriculum schedules, augmentation, checkpoints, logs, the gradient difficulty.

Public API:
    TrainConfig: every option of a run (saved as train_config.json).
    train_run: train the folds / one fold / all data and write the run folder and its bundle.
    FoldTrainer, FoldResult: one model's training.

The names are imported on first use (PEP 562), so that importing a light submodule such as
``lesionseg.train.presets`` (the command line's parsers do) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lesionseg.lazy import lazy_names

if TYPE_CHECKING:
    from lesionseg.train.config import TrainConfig
    from lesionseg.train.loop import FoldResult, FoldTrainer
    from lesionseg.train.run import RunSummary, train_run

#: public name -> the submodule that defines it
_HOMES = {"TrainConfig": "config", "FoldResult": "loop", "FoldTrainer": "loop", "RunSummary": "run",
          "train_run": "run"}

__all__ = ["FoldResult", "FoldTrainer", "RunSummary", "TrainConfig", "train_run"]


__getattr__, __dir__ = lazy_names('lesionseg.train', _HOMES, __all__, globals())
