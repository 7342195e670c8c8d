"""Measuring a trainer's pace before a budgeted run: seconds per optimiser step and per validation pass.

The probe runs real steps (the run's network, loss, optimiser, augmentation and batch size) on a seeded
sample of the training slices, at each crop side the run will use, and times the steps after the first
:data:`WARMUP_STEPS` (memory allocation, oneDNN's first-call set-up); the weights, the optimiser's state
and torch's random state are restored afterwards, so a budgeted run trains exactly as a run given the
planned epochs would. Validation is timed on one case (the whole pass: network and metrics) and scaled
to the others by their slice counts.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Callable

import numpy as np

#: steps timed per crop side, after the warm-up steps
TIMED_STEPS = 4
#: untimed first steps
WARMUP_STEPS = 2


def measure_step_seconds(step: Callable[[list[int], int], None], n_slices: int, batch_size: int,
                         sides: list[int], seed: int, state_owners: list) -> dict[int, float]:
    """Median seconds per step at each crop side.

    Args:
        step: runs one optimiser step on the given dataset indices at a crop side.
        n_slices: training slices to draw batches from.
        batch_size: slices per step.
        sides: crop sides to time (pixels).
        seed: seeds the batches' draw.
        state_owners: objects with ``state_dict``/``load_state_dict`` (network, optimiser) restored after.

    Returns:
        Crop side -> seconds per step.
    """
    import torch

    saved = [copy.deepcopy(owner.state_dict()) for owner in state_owners]
    rng_state = torch.get_rng_state()
    rng = np.random.default_rng((seed, 0x9ACE))
    pace = {}
    try:
        for side in sides:
            durations = []
            for number in range(WARMUP_STEPS + TIMED_STEPS):
                indices = rng.choice(n_slices, size=min(batch_size, n_slices), replace=False).tolist()
                began = time.perf_counter()
                step(indices, side)
                if number >= WARMUP_STEPS:
                    durations.append(time.perf_counter() - began)
            pace[side] = statistics.median(durations)
    finally:
        for owner, state in zip(state_owners, saved):
            owner.load_state_dict(state)
        torch.set_rng_state(rng_state)
    return pace


def validation_seconds_per_case(validate_case: Callable[[str], None], case_slices: dict[str, int]) -> list[float]:
    """Seconds of one validation pass over each case: one case timed, the others scaled by slice count.

    Args:
        validate_case: validates one case (network and metrics).
        case_slices: validation case -> its number of validation slices, in validation order.

    Returns:
        Seconds per case, in ``case_slices`` order (empty without validation cases).
    """
    if not case_slices:
        return []
    first = next(iter(case_slices))
    began = time.perf_counter()
    validate_case(first)
    seconds_per_slice = (time.perf_counter() - began) / max(case_slices[first], 1)
    return [seconds_per_slice * count for count in case_slices.values()]
