"""Epochs that fit a time budget: giving a curriculum run and a plain run the same time, not the same epochs.

A curriculum trains on a growing share of the slices, so an epoch of its early training is shorter than a
plain epoch; comparing runs of equal epochs gives the curriculum fewer optimiser steps. These functions
count the steps of a run from the slice count alone (the slices dealt to near-equal groups, which is how
the ``vanilla`` and ``anti`` curricula group them by difficulty quantiles) and find the most epochs whose
steps fit a budget at a measured pace.
"""

from __future__ import annotations

import numpy as np

from lesionseg.curriculum.schedule import batches_per_rank, iterations_for_groups, vanilla_epochs
from lesionseg.errors import ParameterError

#: curricula whose steps can be counted from the slice count alone (``spl`` depends on the losses)
COUNTABLE_CURRICULA = ("vanilla", "anti", "none")


def planned_steps(curriculum: str, total_epochs: int, n_slices: int, batch_size: int, groups: int = 6) -> int:
    """Optimiser steps of a single-process run.

    Args:
        curriculum: ``vanilla``, ``anti`` (the same groups entering at the same epochs, hardest first) or
            ``none`` (every slice every epoch).
        total_epochs: epochs of the run.
        n_slices: training slices.
        batch_size: slices per step.
        groups: difficulty groups of the curriculum.

    Returns:
        The number of steps (incomplete last batches count as a step).

    Raises:
        ParameterError: a curriculum whose steps depend on training (``spl``) or an unknown name.
    """
    if curriculum not in COUNTABLE_CURRICULA:
        raise ParameterError(f"the steps of curriculum {curriculum!r} cannot be counted ahead; "
                             f"use one of {', '.join(COUNTABLE_CURRICULA)}.")
    if curriculum == "none":
        return total_epochs * batches_per_rank(n_slices, batch_size)
    sizes = [len(part) for part in np.array_split(np.arange(n_slices), groups)]  # easiest group first
    if curriculum == "anti":  # the hardest group enters first
        sizes = sizes[::-1]
    return iterations_for_groups(sizes, vanilla_epochs(total_epochs, groups), total_epochs, batch_size)


def epochs_within_budget(budget_s: float, seconds_per_step: float, curriculum: str, n_slices: int,
                         batch_size: int, groups: int = 6) -> int:
    """The most epochs whose steps (:func:`planned_steps`) take at most ``budget_s`` seconds at
    ``seconds_per_step``; at least ``groups`` epochs, so that every group of a curriculum enters.

    Raises:
        ParameterError: a budget or pace that is not positive, or a curriculum :func:`planned_steps` refuses.
    """
    if not budget_s > 0 or not seconds_per_step > 0:
        raise ParameterError(f"the budget ({budget_s} s) and the pace ({seconds_per_step} s per step) must be "
                             "positive.")
    epochs = groups
    while planned_steps(curriculum, epochs + 1, n_slices, batch_size, groups) * seconds_per_step <= budget_s:
        epochs += 1
    return epochs
