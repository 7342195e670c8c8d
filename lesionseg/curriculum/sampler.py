"""A PyTorch ``Sampler`` that yields the active slices of each epoch, shuffled, optionally sharded.

Shuffling: the active indices of the epoch are permuted with ``numpy.random.default_rng((seed, epoch))``,
the same permutation on every rank, so a run (and any one epoch of it) can be replayed.

Sharding for DistributedDataParallel: rank ``r`` of ``R`` takes positions ``r, r + R, r + 2R, ...`` of the
shuffled active set. The ranks' shares are disjoint and together are the whole active set, each slice
once, never padded with duplicates; they differ in size by at most one (ranks ``>= n mod R`` get one
fewer). DDP needs every rank to run the same number of steps, so when ``batch_size`` is given each rank
yields only as many slices as fill the common number of batches
(:func:`~lesionseg.curriculum.schedule.batches_per_rank`, the batch count of the smallest share).
This leaves out at most one slice per rank, and only in epochs where the larger shares would need one
more batch than the smaller ones; as the permutation changes every epoch, a different slice is left out
each time. Every yielded slice is yielded exactly once per epoch. With ``num_replicas = 1`` nothing is
left out (except what ``drop_last`` drops, as a ``DataLoader`` would).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch.utils.data

from lesionseg.curriculum.schedule import Schedule, _check_positive_int, batches_per_rank
from lesionseg.errors import ParameterError


class CurriculumSampler(torch.utils.data.Sampler[int]):
    """Yields the dataset indices a schedule makes active at the current epoch.

    Args:
        schedule: the schedule (its indices refer to the dataset the ``DataLoader`` wraps).
        seed: base seed of the per-epoch shuffle.
        shuffle: shuffle within the active set (False: ascending index order, for validation).
        num_replicas: number of DDP ranks.
        rank: this process's rank, ``0 .. num_replicas - 1``.
        batch_size: the ``DataLoader``'s batch size; when given, every rank yields the same number of
            batches (see the module docstring). None: each rank yields its whole share.
        drop_last: the ``DataLoader``'s ``drop_last``, used with ``batch_size``.

    Raises:
        ParameterError: ``rank`` outside ``0..num_replicas-1`` or a non-positive count.
    """

    def __init__(
        self,
        schedule: Schedule,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        batch_size: int | None = None,
        drop_last: bool = False,
    ) -> None:
        self.schedule = schedule
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.num_replicas = _check_positive_int(num_replicas, "num_replicas")
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
            raise ParameterError(f"rank must be an integer in 0..{num_replicas - 1}; got {rank!r}.")
        self.rank = int(rank)
        self.batch_size = None if batch_size is None else _check_positive_int(batch_size, "batch_size")
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose active slices the next iteration yields.

        Raises:
            ParameterError: the epoch is outside the schedule.
        """
        self.schedule.check_epoch(epoch)
        self.epoch = int(epoch)

    def epoch_indices(self) -> np.ndarray:
        """This rank's dataset indices for the current epoch, in the order they are yielded."""
        active = self.schedule.active_indices(self.epoch)
        if self.shuffle:
            active = active[np.random.default_rng((self.seed, self.epoch)).permutation(active.size)]
        share = active[self.rank :: self.num_replicas]
        if self.batch_size is not None:
            common = batches_per_rank(active.size, self.batch_size, self.drop_last, self.num_replicas)
            share = share[: common * self.batch_size]
        return share

    def num_batches(self) -> int:
        """Batches per rank in the current epoch (needs ``batch_size``), equal on every rank.

        Raises:
            ParameterError: the sampler was built without ``batch_size``.
        """
        if self.batch_size is None:
            raise ParameterError("num_batches needs the sampler's batch_size; pass batch_size=... .")
        active = self.schedule.active_count(self.epoch)
        return batches_per_rank(active, self.batch_size, self.drop_last, self.num_replicas)

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices().tolist())

    def __len__(self) -> int:
        return int(self.epoch_indices().size)
