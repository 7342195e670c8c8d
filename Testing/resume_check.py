"""Shared check of ``--resume``: a run stopped at an epoch boundary and resumed ends as an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
import torch

from lesionseg.errors import CancelledError
from lesionseg.progress import CancelFlag


def stop_after_epoch_1_and_resume(make_trainer: Callable, folder: Path):
    """Run ``make_trainer(folder, progress=..., cancel=...)`` until it is cancelled at the end of epoch 1,
    check that the stopped run's log ends at epoch 1, then resume it to its end.

    Returns:
        The resumed run's result.
    """
    cancel = CancelFlag()

    def stop_after_epoch_1(event):
        if event.get("event") == "epoch" and event["epoch"] == 1:
            cancel.cancel()

    with pytest.raises(CancelledError):
        make_trainer(folder, progress=stop_after_epoch_1, cancel=cancel).run()
    assert json.loads((folder / "log.json").read_text(encoding="utf-8"))[-1]["epoch"] == 1
    return make_trainer(folder, resume=True).run()


def assert_same_run(straight, resumed) -> None:
    """The same iterations, best epoch and bit-identical weights."""
    assert resumed.iterations == straight.iterations and resumed.best_epoch == straight.best_epoch
    for key, value in straight.state_dict.items():
        assert torch.equal(value, resumed.state_dict[key]), key
