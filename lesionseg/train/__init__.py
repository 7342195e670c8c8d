"""The trainer: folds, curriculum schedules, augmentation, checkpoints, logs, the gradient difficulty.

Public API:
    TrainConfig: every option of a run (saved as train_config.json).
    train_run: train the folds / one fold / all data and write the run folder and its bundle.
    FoldTrainer, FoldResult: one model's training.
"""

from lesionseg.train.config import TrainConfig
from lesionseg.train.loop import FoldResult, FoldTrainer
from lesionseg.train.run import RunSummary, train_run

__all__ = ["FoldResult", "FoldTrainer", "RunSummary", "TrainConfig", "train_run"]
