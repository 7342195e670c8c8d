"""Self-paced learning: a slice enters training when the current model's loss on it is low enough.

The schedule keeps the latest loss the trainer reported for each slice and a threshold that grows
geometrically with the epoch:

    threshold(epoch) = threshold_0 * growth ** epoch

A slice is active at an epoch when its latest loss is at or under that epoch's threshold. By default
(``keep_active=True``) a slice that has entered stays in, so the active set only grows, like the other
curricula; with ``keep_active=False`` it is re-judged every epoch (classical self-paced learning).

Parameters and their defaults:

- ``threshold_0``: given, or (default) fixed at the first call of :meth:`SelfPacedSchedule.active_indices`
  as the ``start_fraction`` quantile (default 0.5) of the losses reported so far, so that about that
  fraction of the slices starts; this avoids having to know the scale of the loss.
- ``growth``: the factor per epoch (default 1.1, i.e. +10 % per epoch; the threshold doubles in about
  7 epochs).
- ``all_from_fraction``: from epoch ``floor(all_from_fraction * total_epochs)`` on every slice is active
  (default 0.8, the point where the paper's vanilla curriculum adds its last group), so training always
  ends on the whole dataset even if some losses stay high.
- ``min_active``: at least this many slices (the lowest losses) are active (default 1), so an epoch is
  never empty.

How a trainer drives it: before epoch 0, compute the loss of the initial model on every slice and pass it
to :meth:`SelfPacedSchedule.update`; at the start of each later epoch, evaluate the slices of
:meth:`SelfPacedSchedule.pending_indices` (those not yet active; all slices when ``keep_active=False``)
and ``update`` them; then ``set_epoch`` on the sampler. With DistributedDataParallel every rank must make
the same updates (gather the losses first). Because the active sets depend on the losses, the number of
iterations is only known as training runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lesionseg.curriculum.schedule import Schedule, _check_positive_int
from lesionseg.errors import ParameterError


class SelfPacedSchedule(Schedule):
    """A schedule whose active slices follow the model's per-slice losses.

    Args:
        n_slices: dataset size.
        total_epochs: number of epochs.
        growth: factor (> 1) by which the threshold grows each epoch.
        threshold_0: threshold at epoch 0 (a loss value, > 0); None = the ``start_fraction`` quantile of
            the losses reported before the first ``active_indices`` call.
        start_fraction: quantile used for the automatic ``threshold_0``, in (0, 1].
        all_from_fraction: fraction of training after which all slices are active, in (0, 1]
            (1 = never forced).
        min_active: smallest number of active slices (the lowest losses).
        keep_active: once a slice is active it stays active.

    Raises:
        ParameterError: a parameter is out of range.
    """

    is_fixed = False

    def __init__(
        self,
        n_slices: int,
        total_epochs: int = 200,
        growth: float = 1.1,
        threshold_0: float | None = None,
        start_fraction: float = 0.5,
        all_from_fraction: float = 0.8,
        min_active: int = 1,
        keep_active: bool = True,
    ) -> None:
        self.n_slices = _check_positive_int(n_slices, "n_slices")
        self.total_epochs = _check_positive_int(total_epochs, "total_epochs")
        if not (math.isfinite(growth) and growth > 1.0):
            raise ParameterError(f"growth must be a number > 1 (threshold factor per epoch); got {growth!r}.")
        if threshold_0 is not None and not (math.isfinite(threshold_0) and threshold_0 > 0):
            raise ParameterError(f"threshold_0 must be a positive loss value or None; got {threshold_0!r}.")
        if not 0.0 < start_fraction <= 1.0:
            raise ParameterError(f"start_fraction must be in (0, 1]; got {start_fraction!r}.")
        if not 0.0 < all_from_fraction <= 1.0:
            raise ParameterError(f"all_from_fraction must be in (0, 1]; got {all_from_fraction!r}.")
        self.min_active = _check_positive_int(min_active, "min_active")
        if self.min_active > self.n_slices:
            raise ParameterError(f"min_active ({min_active}) cannot exceed n_slices ({n_slices}).")
        self.growth = float(growth)
        self.threshold_0 = None if threshold_0 is None else float(threshold_0)
        self.start_fraction = float(start_fraction)
        self.all_from_fraction = float(all_from_fraction)
        self.keep_active = bool(keep_active)
        self.losses = np.full(self.n_slices, np.nan)
        self._entered = np.zeros(self.n_slices, dtype=bool)

    @property
    def all_from_epoch(self) -> int:
        """First epoch at which every slice is active regardless of its loss."""
        if self.all_from_fraction >= 1.0:
            return self.total_epochs
        return math.floor(self.all_from_fraction * self.total_epochs)

    def update(self, slice_ids: Any, losses: Any) -> None:
        """Record the current model's loss on some slices (the latest value per slice is kept).

        Args:
            slice_ids: dataset indices.
            losses: one finite, non-negative loss per index.

        Raises:
            ParameterError: lengths differ, an index is out of range, or a loss is not finite and >= 0.
        """
        ids = np.asarray(slice_ids, dtype=np.int64).ravel()
        values = np.asarray(losses, dtype=float).ravel()
        if ids.shape != values.shape:
            raise ParameterError(f"update got {ids.size} slice ids but {values.size} losses.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_slices):
            raise ParameterError(
                f"slice ids must lie in 0..{self.n_slices - 1}; got {ids.min()}..{ids.max()}."
            )
        if not np.all(np.isfinite(values) & (values >= 0)):
            raise ParameterError("losses passed to update must be finite and non-negative.")
        self.losses[ids] = values

    def threshold(self, epoch: int) -> float | None:
        """The loss threshold at ``epoch``; None until ``threshold_0`` is known."""
        epoch = self.check_epoch(epoch)
        if self.threshold_0 is None:
            return None
        return self.threshold_0 * self.growth**epoch

    def pending_indices(self) -> np.ndarray:
        """Slices whose loss the trainer should report before the next epoch (not yet active)."""
        if not self.keep_active:
            return np.arange(self.n_slices, dtype=np.int64)
        return np.flatnonzero(~self._entered).astype(np.int64)

    def active_indices(self, epoch: int) -> np.ndarray:
        """Sorted dataset indices active at ``epoch`` (see the module docstring for the rule).

        Raises:
            RuntimeError: no loss has been reported yet (the trainer must call :meth:`update` first).
        """
        epoch = self.check_epoch(epoch)
        if epoch >= self.all_from_epoch:
            self._entered[:] = True
            return np.arange(self.n_slices, dtype=np.int64)
        known = np.isfinite(self.losses)
        if not known.any():
            raise RuntimeError(
                "SelfPacedSchedule.active_indices was called before any loss was reported; call "
                "update(slice_ids, losses) with the current model's loss on every slice first."
            )
        if self.threshold_0 is None:
            value = float(np.quantile(self.losses[known], self.start_fraction))
            # A zero quantile would never grow; fall back to the smallest positive loss, or 1.
            positive = self.losses[known][self.losses[known] > 0]
            self.threshold_0 = value if value > 0 else (float(positive.min()) if positive.size else 1.0)
        limit = self.threshold_0 * self.growth**epoch
        active = known & (self.losses <= limit)
        if self.keep_active:
            active |= self._entered
        if np.count_nonzero(active) < self.min_active:
            order = np.argsort(np.where(known, self.losses, np.inf), kind="stable")
            active[order[: self.min_active]] = True
        if self.keep_active:
            self._entered = active.copy()
        return np.flatnonzero(active).astype(np.int64)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: the losses, the entered slices and the threshold (JSON-friendly)."""
        return {
            "losses": [None if math.isnan(v) else float(v) for v in self.losses],
            "entered": [int(i) for i in np.flatnonzero(self._entered)],
            "threshold_0": self.threshold_0,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`.

        Raises:
            ParameterError: the state is for a dataset of a different size.
        """
        losses = state["losses"]
        if len(losses) != self.n_slices:
            raise ParameterError(
                f"the saved self-paced state has {len(losses)} slices but this dataset has {self.n_slices}."
            )
        self.losses = np.array([np.nan if v is None else float(v) for v in losses], dtype=float)
        self._entered = np.zeros(self.n_slices, dtype=bool)
        self._entered[np.asarray(state["entered"], dtype=np.int64)] = True
        self.threshold_0 = state["threshold_0"]
