"""Tests of lesionseg.curriculum.budget: step counts from the slice count alone, and epochs within a budget."""

from __future__ import annotations

import numpy as np
import pytest

from lesionseg.curriculum import assign_groups, make_schedule
from lesionseg.curriculum.budget import epochs_within_budget, planned_steps
from lesionseg.errors import ParameterError
from lesionseg.train.batching import planned_iterations


@pytest.mark.parametrize("curriculum", ["vanilla", "anti", "none"])
@pytest.mark.parametrize("n_slices, batch_size, epochs", [(97, 12, 9), (600, 8, 40), (13, 4, 6)])
def test_planned_steps_equal_the_trainers_count(curriculum, n_slices, batch_size, epochs):
    # the trainer's own count: quantile groups of a difficulty metric, the named schedule, its batches
    values = np.random.default_rng(n_slices).random(n_slices)
    groups = assign_groups(values, k=6)
    schedule = make_schedule(curriculum, groups=groups, total_epochs=epochs, n_slices=n_slices)
    assert planned_steps(curriculum, epochs, n_slices, batch_size) == planned_iterations(schedule, batch_size)


def test_a_curriculum_gets_more_epochs_in_the_same_time():
    n_slices, batch_size, pace = 600, 12, 0.1  # 50 steps per plain epoch, 5 s each
    plain = epochs_within_budget(240.0, pace, "none", n_slices, batch_size)
    curriculum = epochs_within_budget(240.0, pace, "vanilla", n_slices, batch_size)
    assert plain == 48  # 48 x 50 steps x 0.1 s = 240 s exactly
    assert curriculum > plain
    for name, epochs in (("none", plain), ("vanilla", curriculum)):  # the most that fit, not fewer
        assert planned_steps(name, epochs, n_slices, batch_size) * pace <= 240.0
        assert planned_steps(name, epochs + 1, n_slices, batch_size) * pace > 240.0
    assert epochs_within_budget(1.0, pace, "vanilla", n_slices, batch_size) == 6  # every group enters


def test_what_cannot_be_planned_is_refused():
    with pytest.raises(ParameterError, match="spl"):
        planned_steps("spl", 10, 100, 8)
    with pytest.raises(ParameterError, match="positive"):
        epochs_within_budget(60.0, 0.0, "none", 100, 8)
