"""An epoch's batches on each rank: every active slice once, the same number of batches on every rank.

The curriculum sampler gives the epoch's active slices, shuffled with (seed, epoch), and rank r's share
(every R-th of them). DistributedDataParallel needs the same number of steps on every rank, so each share
is cut into ``ceil(ceil(active / R) / batch)`` batches of nearly equal size (sizes differ by at most one)
instead of full batches plus a remainder: every active slice is visited exactly once per epoch, on one
rank, whatever the count. With one rank this is ``ceil(active / batch)`` batches.
"""

from __future__ import annotations

import math

import numpy as np

from lesionseg.curriculum import CurriculumSampler, Schedule


def batches_for(active_count: int, batch_size: int, num_replicas: int = 1) -> int:
    """Number of batches each rank runs in an epoch with ``active_count`` active slices."""
    if active_count <= 0:
        return 0
    return math.ceil(math.ceil(active_count / num_replicas) / batch_size)


def epoch_batches(sampler: CurriculumSampler, epoch: int, batch_size: int) -> list[list[int]]:
    """This rank's batches (lists of dataset indices) for ``epoch``."""
    sampler.set_epoch(epoch)
    share = sampler.epoch_indices()
    total = sampler.schedule.active_count(epoch)
    count = batches_for(total, batch_size, sampler.num_replicas)
    if count == 0:
        return []
    return [chunk.tolist() for chunk in np.array_split(share, count)]


def planned_iterations(schedule: Schedule, batch_size: int, num_replicas: int = 1, start_epoch: int = 0) -> int:
    """Optimiser steps per rank from ``start_epoch`` to the end of a fixed schedule, known before training."""
    return sum(batches_for(schedule.active_count(epoch), batch_size, num_replicas)
               for epoch in range(start_epoch, schedule.total_epochs))
