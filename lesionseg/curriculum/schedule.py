"""Epoch schedules: which slices are trained on at each epoch, and the iteration count before training.

Every schedule answers ``active_indices(epoch)``: the sorted dataset indices trained on in that epoch
(epochs count from 0 to ``total_epochs - 1``). The kinds:

- vanilla curriculum (:func:`vanilla_schedule`): groups enter easiest first at :func:`vanilla_epochs`;
  with 6 groups over 200 epochs at 0, 25, 50, 85, 120, 160 (the paper adds a group after 25, 25, 35, 35
  and 40 epochs);
- anti-curriculum (:func:`anti_curriculum_schedule`): the same epochs, hardest group first;
- none (:func:`no_curriculum_schedule`): every slice from epoch 0;
- self-paced learning (:class:`~lesionseg.curriculum.self_paced.SelfPacedSchedule`): slices enter when
  the current model's loss on them falls under a growing threshold; its length is only known as it runs.

For the fixed schedules :func:`iterations` gives the total number of optimiser steps before training.
With 4416 slices and batch 12 (368 iterations per epoch) that is 73,600 over 200 epochs without a
curriculum, and 46,675 with the vanilla curriculum over 6 equal groups of 736 (the paper reports about
47,000).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from lesionseg.errors import ParameterError

#: The paper's epochs at which each of its 6 groups enters, over 200 epochs.
PAPER_START_EPOCHS: tuple[int, ...] = (0, 25, 50, 85, 120, 160)
PAPER_TOTAL_EPOCHS = 200
SCHEDULE_NAMES: tuple[str, ...] = ("vanilla", "anti", "none", "self_paced")


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def vanilla_epochs(total_epochs: int = PAPER_TOTAL_EPOCHS, k: int = 6) -> list[int]:
    """Epochs at which each of ``k`` groups enters (easiest first), scaled from the paper's pattern.

    The paper's start epochs as fractions of training are 0, 1/8, 1/4, 17/40, 3/5, 4/5 for groups 0..5.
    For ``k = 6`` group ``i`` enters at ``floor(PAPER_START_EPOCHS[i] * total_epochs / 200)``. For another
    ``k`` the same curve is sampled at ``i / (k - 1)`` with linear interpolation between the paper's
    points (so the first group starts at 0 and the last at 4/5 of training), then scaled and rounded
    down the same way. Exact rational arithmetic avoids off-by-one rounding.

    Args:
        total_epochs: number of epochs of the whole training.
        k: number of groups.

    Returns:
        ``k`` non-decreasing start epochs, the first one 0.

    Raises:
        ParameterError: ``total_epochs`` or ``k`` is not an integer >= 1.
    """
    total = _check_positive_int(total_epochs, "total_epochs")
    k = _check_positive_int(k, "k")
    paper = [Fraction(b, PAPER_TOTAL_EPOCHS) for b in PAPER_START_EPOCHS]
    if k == len(paper):
        fractions = paper
    elif k == 1:
        fractions = [Fraction(0)]
    else:
        fractions = []
        last = len(paper) - 1
        for i in range(k):
            position = Fraction(i * last, k - 1)
            j = min(int(position), last - 1)
            fractions.append(paper[j] + (paper[j + 1] - paper[j]) * (position - j))
    return [math.floor(f * total) for f in fractions]


class Schedule(ABC):
    """Which dataset indices are active at each epoch.

    Attributes:
        n_slices: size of the dataset the indices refer to.
        total_epochs: number of epochs; valid epochs are ``0 .. total_epochs - 1``.
        is_fixed: True when the active set of every epoch is known before training (so that
            :func:`iterations` can count the steps).
    """

    n_slices: int
    total_epochs: int
    is_fixed: bool = True

    @abstractmethod
    def active_indices(self, epoch: int) -> np.ndarray:
        """Sorted int64 dataset indices trained on at ``epoch``."""

    def active_count(self, epoch: int) -> int:
        """Number of active slices at ``epoch``."""
        return int(self.active_indices(epoch).size)

    def check_epoch(self, epoch: int) -> int:
        """Return ``epoch`` as an int, or raise ParameterError if it is outside ``0..total_epochs-1``."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or not (
            0 <= epoch < self.total_epochs
        ):
            raise ParameterError(f"epoch must be an integer in 0..{self.total_epochs - 1}; got {epoch!r}.")
        return int(epoch)


class GroupSchedule(Schedule):
    """A fixed schedule that adds whole difficulty groups at given epochs.

    Args:
        groups: group number per dataset index, ``0`` = easiest, ``k - 1`` = hardest.
        start_epochs: epoch at which the i-th group *in training order* enters (non-decreasing, first 0).
        total_epochs: number of epochs.
        hardest_first: training order is hardest group first (anti-curriculum) instead of easiest first.
        k: number of groups (default: ``len(start_epochs)``); groups may be empty.

    Raises:
        ParameterError: groups outside ``0..k-1``, or start epochs that are not non-decreasing from 0 and
            below ``total_epochs``.
    """

    def __init__(
        self,
        groups: Any,
        start_epochs: Sequence[int],
        total_epochs: int,
        hardest_first: bool = False,
        k: int | None = None,
    ) -> None:
        self.total_epochs = _check_positive_int(total_epochs, "total_epochs")
        starts = [int(s) for s in start_epochs]
        k = len(starts) if k is None else _check_positive_int(k, "k")
        if len(starts) != k:
            raise ParameterError(f"start_epochs needs one epoch per group ({k}); got {len(starts)}.")
        decreasing = any(b < a for a, b in zip(starts, starts[1:]))
        if starts[0] != 0 or decreasing or starts[-1] >= self.total_epochs:
            raise ParameterError(
                f"start_epochs must start at 0, never decrease and stay below total_epochs="
                f"{self.total_epochs}; got {starts}."
            )
        array = np.asarray(groups)
        if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
            raise ParameterError("groups must be a non-empty 1D array of integer group numbers.")
        if array.min() < 0 or array.max() >= k:
            raise ParameterError(f"group numbers must lie in 0..{k - 1}; got {array.min()}..{array.max()}.")
        self.groups = array.astype(np.int64)
        self.n_slices = int(array.size)
        self.k = k
        self.hardest_first = bool(hardest_first)
        self.start_epochs = tuple(starts)
        self.training_order = tuple(range(k - 1, -1, -1)) if hardest_first else tuple(range(k))

    def active_groups(self, epoch: int) -> tuple[int, ...]:
        """Group numbers trained on at ``epoch``, in the order they entered."""
        epoch = self.check_epoch(epoch)
        return tuple(g for g, start in zip(self.training_order, self.start_epochs) if start <= epoch)

    def active_indices(self, epoch: int) -> np.ndarray:
        """Sorted int64 dataset indices of the groups active at ``epoch``."""
        return np.flatnonzero(np.isin(self.groups, self.active_groups(epoch))).astype(np.int64)

    def __repr__(self) -> str:
        order = "hardest first" if self.hardest_first else "easiest first"
        return (
            f"GroupSchedule(n_slices={self.n_slices}, k={self.k}, start_epochs={list(self.start_epochs)}, "
            f"total_epochs={self.total_epochs}, {order})"
        )


def _group_count(groups: Any, k: int | None) -> int:
    if k is not None:
        return _check_positive_int(k, "k")
    array = np.asarray(groups)
    if array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ParameterError("groups must be a non-empty 1D array of integer group numbers.")
    return int(array.max()) + 1


def vanilla_schedule(
    groups: Any, total_epochs: int = PAPER_TOTAL_EPOCHS, k: int | None = None
) -> GroupSchedule:
    """The vanilla curriculum: easiest group first, one group more at each of :func:`vanilla_epochs`.

    Args:
        groups: group number per dataset index (0 = easiest), e.g. from ``assign_groups``.
        total_epochs: number of epochs.
        k: number of groups (default: largest group number + 1).

    Returns:
        A :class:`GroupSchedule`.
    """
    k = _group_count(groups, k)
    return GroupSchedule(groups, vanilla_epochs(total_epochs, k), total_epochs, hardest_first=False, k=k)


def anti_curriculum_schedule(
    groups: Any, total_epochs: int = PAPER_TOTAL_EPOCHS, k: int | None = None
) -> GroupSchedule:
    """The anti-curriculum: the vanilla epochs, but the hardest group first.

    Args:
        groups: group number per dataset index (0 = easiest).
        total_epochs: number of epochs.
        k: number of groups (default: largest group number + 1).

    Returns:
        A :class:`GroupSchedule` with ``hardest_first=True``.
    """
    k = _group_count(groups, k)
    return GroupSchedule(groups, vanilla_epochs(total_epochs, k), total_epochs, hardest_first=True, k=k)


def no_curriculum_schedule(n_slices: int, total_epochs: int = PAPER_TOTAL_EPOCHS) -> GroupSchedule:
    """Classical training: every slice from epoch 0.

    Args:
        n_slices: dataset size.
        total_epochs: number of epochs.

    Returns:
        A :class:`GroupSchedule` with a single group.
    """
    n = _check_positive_int(n_slices, "n_slices")
    return GroupSchedule(np.zeros(n, dtype=np.int64), [0], total_epochs, k=1)


def continued_schedule(current: Schedule, rescaled: Schedule, last_epoch: int) -> Schedule:
    """A schedule whose length was revised after ``last_epoch`` (0-based), keeping its past.

    A time-budgeted run that finds more (or less) time than planned rescales its curriculum to the new
    length; groups that had entered by ``last_epoch`` must not leave again (a longer run scales their entry
    epochs later), and the groups still waiting enter no earlier than the next epoch.

    Args:
        current: the schedule trained so far.
        rescaled: the same curriculum built for the new length.
        last_epoch: the last epoch trained (0-based).

    Returns:
        For two :class:`GroupSchedule` of the same groups: ``rescaled``'s length and order, the entry epochs
        of the groups entered by ``last_epoch`` kept and the others ``max(rescaled entry, last_epoch + 1)``;
        otherwise ``rescaled`` itself (a self-paced schedule has no entry epochs).

    Raises:
        ParameterError: the new length does not reach past ``last_epoch + 1``.
    """
    if not (isinstance(current, GroupSchedule) and isinstance(rescaled, GroupSchedule)) \
            or current.k != rescaled.k or current.hardest_first != rescaled.hardest_first:
        return rescaled
    if rescaled.total_epochs <= last_epoch + 1:
        raise ParameterError(f"a revised schedule needs more than {last_epoch + 1} epochs; got {rescaled.total_epochs}.")
    starts = [old if old <= last_epoch else max(new, last_epoch + 1)
              for old, new in zip(current.start_epochs, rescaled.start_epochs)]
    return GroupSchedule(current.groups, starts, rescaled.total_epochs, hardest_first=current.hardest_first, k=current.k)


def with_start_epochs(schedule: Schedule, start_epochs: Sequence[int] | None) -> Schedule:
    """``schedule`` with other entry epochs (a revised plan's, on resume); unchanged when None or not a
    :class:`GroupSchedule`."""
    if start_epochs is None or not isinstance(schedule, GroupSchedule):
        return schedule
    return GroupSchedule(schedule.groups, start_epochs, schedule.total_epochs, hardest_first=schedule.hardest_first,
                         k=schedule.k)


def batches_per_rank(n_active: int, batch_size: int, drop_last: bool = False, num_replicas: int = 1) -> int:
    """Number of batches every rank runs in an epoch with ``n_active`` slices.

    The active slices are dealt to ``num_replicas`` ranks so that each slice goes to exactly one rank;
    the shares differ by at most one slice, the smallest being ``n_active // num_replicas``. To keep
    ranks in step (DistributedDataParallel needs the same number of steps everywhere), every rank runs
    the batch count of the smallest share; see ``CurriculumSampler`` for what this leaves out.

    Args:
        n_active: active slices in the epoch.
        batch_size: slices per batch on each rank.
        drop_last: drop an incomplete last batch (like ``torch.utils.data.DataLoader``).
        num_replicas: number of ranks.

    Returns:
        The common number of batches per rank.
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    num_replicas = _check_positive_int(num_replicas, "num_replicas")
    share = int(n_active) // num_replicas
    return share // batch_size if drop_last else -(-share // batch_size)


def iterations(
    schedule: Schedule, batch_size: int, drop_last: bool = False, num_replicas: int = 1
) -> int:
    """Total number of optimiser steps of a fixed schedule (per rank), known before training.

    Args:
        schedule: a fixed schedule (``schedule.is_fixed``).
        batch_size: slices per batch on each rank.
        drop_last: drop an incomplete last batch of each epoch.
        num_replicas: number of DistributedDataParallel ranks.

    Returns:
        The sum over epochs of :func:`batches_per_rank`.

    Raises:
        ParameterError: the schedule is self-paced, whose length is only known as it runs.
    """
    if not schedule.is_fixed:
        raise ParameterError(
            "the number of iterations of a self-paced schedule is only known as it runs; "
            "count the batches during training instead."
        )
    return sum(
        batches_per_rank(schedule.active_count(e), batch_size, drop_last, num_replicas)
        for e in range(schedule.total_epochs)
    )


def iterations_for_groups(
    group_sizes: Sequence[int],
    start_epochs: Sequence[int],
    total_epochs: int,
    batch_size: int,
    drop_last: bool = False,
    num_replicas: int = 1,
) -> int:
    """Total steps of a group schedule from the group sizes alone (no dataset needed).

    Args:
        group_sizes: slices per group, in training order.
        start_epochs: epoch at which each group (in training order) enters.
        total_epochs: number of epochs.
        batch_size: slices per batch on each rank.
        drop_last: drop an incomplete last batch of each epoch.
        num_replicas: number of ranks.

    Returns:
        The total number of steps per rank.

    Raises:
        ParameterError: the two sequences differ in length.
    """
    if len(group_sizes) != len(start_epochs):
        raise ParameterError(
            f"group_sizes ({len(group_sizes)}) and start_epochs ({len(start_epochs)}) must have equal length."
        )
    total = _check_positive_int(total_epochs, "total_epochs")
    count = 0
    for epoch in range(total):
        active = sum(int(n) for n, start in zip(group_sizes, start_epochs) if start <= epoch)
        count += batches_per_rank(active, batch_size, drop_last, num_replicas)
    return count


def make_schedule(
    name: str,
    groups: Any = None,
    total_epochs: int = PAPER_TOTAL_EPOCHS,
    n_slices: int | None = None,
    **self_paced_options: Any,
) -> Schedule:
    """Build a schedule by name, for configuration files and the command line.

    Args:
        name: ``"vanilla"``, ``"anti"``, ``"none"`` or ``"self_paced"``.
        groups: group number per dataset index (needed by ``"vanilla"`` and ``"anti"``).
        total_epochs: number of epochs.
        n_slices: dataset size (needed by ``"none"`` and ``"self_paced"`` when ``groups`` is not given).
        **self_paced_options: keyword arguments of ``SelfPacedSchedule`` (``growth``, ``threshold_0``...).

    Returns:
        The schedule.

    Raises:
        ParameterError: unknown name, or the groups / dataset size the schedule needs are missing.
    """
    if name not in SCHEDULE_NAMES:
        raise ParameterError(f"schedule must be one of {SCHEDULE_NAMES}; got {name!r}.")
    if self_paced_options and name != "self_paced":
        raise ParameterError(f"options {sorted(self_paced_options)} only apply to the 'self_paced' schedule.")
    if name in ("vanilla", "anti"):
        if groups is None:
            raise ParameterError(f"the {name!r} schedule needs the difficulty group of every slice.")
        build = vanilla_schedule if name == "vanilla" else anti_curriculum_schedule
        return build(groups, total_epochs)
    size = n_slices if n_slices is not None else (None if groups is None else int(np.asarray(groups).size))
    if size is None:
        raise ParameterError(f"the {name!r} schedule needs n_slices (the dataset size).")
    if name == "none":
        return no_curriculum_schedule(size, total_epochs)
    from lesionseg.curriculum.self_paced import SelfPacedSchedule  # imports this module: import here

    return SelfPacedSchedule(size, total_epochs, **self_paced_options)
