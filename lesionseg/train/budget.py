"""Training by time: from a budget in seconds and a measured pace to the epochs, validations and schedules.

``lesionseg train --minutes M`` gives the whole run M minutes. Each model (fold) gets an equal share of
what is left when it starts. A model's trainer then

1. measures its own pace (:meth:`FoldTrainer._measure_pace <lesionseg.train.loop.FoldTrainer>`): a few
   optimiser steps at each crop size of the size curriculum (warm-up steps excluded; the weights, the
   optimiser and the random state are restored afterwards, so the probe changes nothing), and one
   validation pass over one validation case, scaled to the validation slices;
2. plans (:func:`plan_budget`): validation gets at most :data:`MAX_VALIDATION_SHARE` of the time (fewer
   validations, then fewer validation cases when even three passes over all of them would cost more), a
   reserve covers the final full validation of the kept weights and the bundle, and the epochs are the
   most whose steps fit the rest, counted from the run's own schedule (a curriculum's early epochs hold
   fewer slices, a size curriculum's early steps cost less). The curriculum's group entry epochs and the
   learning-rate schedule then follow the planned length;
3. stops at its deadline if the pace drifts (the model kept is then the best validated so far).

A budget that cannot hold the least run (``min_epochs``: one epoch, or one per curriculum group) is refused
with the least time that would do.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Callable

from lesionseg.errors import ParameterError

#: validation may take at most this share of a model's training time
MAX_VALIDATION_SHARE = 0.12
#: at most this many validations in a budgeted run (enough to pick a checkpoint)
MAX_VALIDATIONS = 8
#: the plan leaves this share of the budget unused against pace noise (measured: about 7 % run to run)
SAFETY_SHARE = 0.06
#: seconds kept for writing checkpoints and the bundle
FIXED_RESERVE_S = 3.0


@dataclass
class BudgetPlan:
    """What a model's time budget was planned into (saved as ``budget.json`` in the fold's folder).

    Attributes:
        budget_s: the model's budget in seconds, from the start of its set-up.
        setup_s: seconds spent before planning (loading slices, building the network, the pace probe).
        seconds_per_step: measured seconds per optimiser step, by crop side in pixels.
        validation_s: planned seconds of one validation pass over the chosen validation cases.
        final_validation_s: planned seconds of the final full validation (all validation cases).
        validation_cases: validation cases used during training (the first ones; all of them at the end).
        epochs, val_every, validations: the plan.
        planned_steps, planned_train_s, planned_validation_s, reserve_s: its parts.
        notes: sentences for the log (fewer validation cases, ...).
        group_starts: after a revision, the curriculum's entry epochs (the past kept; None: as built).
        crop_floor: after a revision, the least crop side of a size curriculum (its crops never shrink back).
    """

    budget_s: float
    setup_s: float
    seconds_per_step: dict[int, float]
    validation_s: float
    final_validation_s: float
    validation_cases: int
    epochs: int
    val_every: int
    validations: int
    planned_steps: int
    planned_train_s: float
    planned_validation_s: float
    reserve_s: float
    notes: list[str] = field(default_factory=list)
    group_starts: list[int] | None = None
    crop_floor: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["seconds_per_step"] = {str(k): v for k, v in self.seconds_per_step.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "BudgetPlan":
        values = dict(data)
        values["seconds_per_step"] = {int(k): float(v) for k, v in values.get("seconds_per_step", {}).items()}
        return cls(**values)


def least_minutes(seconds: float) -> float:
    """``seconds`` as minutes rounded up to a tenth (what the user is told to give)."""
    return math.ceil(seconds / 6.0) / 10.0


def plan_budget(*, budget_s: float, setup_s: float, seconds_per_step: dict[int, float],
                epoch_steps: Callable[[int], list[tuple[int, int]]], min_epochs: int,
                validation_s_per_case: list[float], final_validation_s: float,
                max_epochs: int = 100_000) -> BudgetPlan:
    """Plan a model's epochs and validations within its budget.

    Args:
        budget_s: the model's whole budget (seconds), set-up included.
        setup_s: seconds already spent (set-up and the probe).
        seconds_per_step: seconds per optimiser step by crop side (pixels).
        epoch_steps: for a run of E epochs, each epoch's (steps, crop side), from the run's real schedule.
        min_epochs: the least run (every curriculum group must enter).
        validation_s_per_case: planned seconds of one validation pass over each validation case, in the
            order they would be dropped last to first (empty: the run does not validate).
        final_validation_s: planned seconds of the full validation of the kept weights at the end.
        max_epochs: upper bound of the search.

    Returns:
        The :class:`BudgetPlan`.

    Raises:
        ParameterError: the budget cannot hold ``min_epochs`` epochs, naming the least ``--minutes``.
    """
    def train_seconds(epochs: int) -> tuple[int, float]:
        steps = epoch_steps(epochs)
        return sum(n for n, _ in steps), sum(n * seconds_per_step[side] for n, side in steps)

    validates = bool(validation_s_per_case)
    reserve = FIXED_RESERVE_S + SAFETY_SHARE * budget_s + (final_validation_s if validates else 0.0)
    available = budget_s - setup_s - reserve
    notes: list[str] = []
    cases, validation_s, validations = len(validation_s_per_case), 0.0, 0
    least_steps, least_train = train_seconds(min_epochs)
    if validates:
        allowed = MAX_VALIDATION_SHARE * max(available, 0.0)
        # all cases if three passes fit, else the most cases of which one pass fits a third of the share
        while cases > 1 and 3 * sum(validation_s_per_case[:cases]) > allowed:
            cases -= 1
        validation_s = sum(validation_s_per_case[:cases])
        validations = int(min(MAX_VALIDATIONS, max(1, allowed // max(validation_s, 1e-9))))
        if cases < len(validation_s_per_case):
            notes.append(f"validation during training uses {cases} of the {len(validation_s_per_case)} validation "
                         "cases (the budget is short); the kept model is validated on all of them at the end")
    needed = setup_s + least_train + validation_s + reserve
    if needed > budget_s:
        raise ParameterError(
            f"--minutes {budget_s / 60:g} is too short for this run: its least training ({min_epochs} epoch(s), "
            f"{least_steps} steps at the measured pace) with one validation takes about {needed:.0f} s here; "
            f"give at least --minutes {least_minutes(needed)}.")
    train_available = available - validations * validation_s
    while validations > 1 and train_seconds(min_epochs)[1] > train_available:
        validations -= 1
        train_available = available - validations * validation_s
    low, high = min_epochs, min_epochs
    while high < max_epochs and train_seconds(high)[1] <= train_available:  # grow, then bisect
        low, high = high, min(max_epochs, high * 2)
    if train_seconds(high)[1] <= train_available:
        low = high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if train_seconds(middle)[1] <= train_available else (low, middle)
    epochs = low
    steps, train_s = train_seconds(epochs)
    val_every = max(1, math.ceil(epochs / validations)) if validates else epochs
    validations = math.ceil(epochs / val_every) if validates else 0
    return BudgetPlan(budget_s=budget_s, setup_s=setup_s, seconds_per_step=dict(seconds_per_step),
                      validation_s=validation_s, final_validation_s=final_validation_s if validates else 0.0,
                      validation_cases=cases, epochs=epochs, val_every=val_every, validations=validations,
                      planned_steps=steps, planned_train_s=train_s, planned_validation_s=validations * validation_s,
                      reserve_s=reserve, notes=notes)


#: the plan is revised while at most this share of its epochs is done (a revision keeps the curriculum's past
#: and continues the learning rate from where it is, so late ones are safe; the last epochs are left alone)
REPLAN_WITHIN = 0.85
#: ... and only when the revised epochs differ from the planned ones by more than this share (45 s of a
#: 15-minute run: a run that trained 15 % short, because its first epochs were slow, lost 2 of its 15 minutes)
REPLAN_TOLERANCE = 0.05
#: the pace a revision plans with is measured over the most recent epochs, at most this many of each crop side
#: (a pace measured over the whole run keeps the slowness of its first epochs, e.g. while another process
#: prepared data beside it: 0.18 s per step in the first tenth of a run, 0.14 s after)
PACE_WINDOW = 8


def measured_pace(epochs: list[tuple[float, float, int, int]], probe: dict[int, float]) -> tuple[dict[int, float], float]:
    """The pace of a run's recent epochs, for :func:`replan_epochs`.

    Args:
        epochs: per finished epoch, in order: (seconds of its steps, seconds of the rest but validation,
            steps, crop side in pixels).
        probe: the probe's seconds per step by crop side; a side not trained yet keeps the probe's pace
            scaled by the median ratio of measured to probed pace on the sides trained.

    Returns:
        Seconds per step by crop side (the larger of the median and the mean over each side's last
        :data:`PACE_WINDOW` epochs: a cautious figure when a few steps were slow) and the median seconds an epoch
        costs besides its steps over the last :data:`PACE_WINDOW` epochs.
    """
    pace: dict[int, list[float]] = {}
    for seconds, _, steps, side in epochs:
        if steps:
            pace.setdefault(side, []).append(seconds / steps)
    seen = {side: max(statistics.median(values[-PACE_WINDOW:]), statistics.fmean(values[-PACE_WINDOW:]))
            for side, values in pace.items()}
    known = [seen[side] / probe[side] for side in seen if side in probe]
    ratio = statistics.median(known) if known else 1.0
    overheads = [overhead for _, overhead, _, _ in epochs[-PACE_WINDOW:]]
    return ({side: seen.get(side, value * ratio) for side, value in probe.items()},
            statistics.median(overheads) if overheads else 0.0)


def replan_epochs(*, done_epochs: int, current_epochs: int, remaining_s: float, seconds_per_step: dict[int, float],
                  epoch_steps: Callable[[int], list[tuple[int, int]]], validations: int, validation_s: float,
                  min_epochs: int, epoch_overhead_s: float = 0.0, max_epochs: int = 100_000) -> int | None:
    """The epochs a budgeted run should have, from the pace measured on its first epochs.

    The probe before training times a few steps; on a busy machine (or after the first epochs settle the
    caches) the real pace can differ by a factor. After each early epoch the trainer measures its real
    seconds per step and asks again how many epochs fit: the epochs still to come (counted from the
    schedule of the new length) and their share of the validations must fit the time left.

    Args:
        done_epochs: epochs finished.
        current_epochs: the planned epochs.
        remaining_s: seconds left for training and validation (the reserve already taken off).
        seconds_per_step: the measured pace by crop side.
        epoch_steps: as for :func:`plan_budget`.
        validations: the planned number of validations over the whole run.
        validation_s: seconds of one validation pass.
        min_epochs: the least run.
        epoch_overhead_s: seconds each epoch costs besides its steps and validation (checkpoint, log); the
            early epochs of a curriculum are short, so counting it in the steps' pace would misjudge the
            long later ones.
        max_epochs: upper bound of the search.

    Returns:
        The new number of epochs, or None to keep the plan (the run is in its last 15 %, or the change is within
        :data:`REPLAN_TOLERANCE`).
    """
    if done_epochs > REPLAN_WITHIN * current_epochs or done_epochs < 1:
        return None

    def fits(epochs: int) -> bool:
        future = epoch_steps(epochs)[done_epochs:]
        seconds = sum(n * seconds_per_step[side] for n, side in future) + len(future) * epoch_overhead_s
        future_validations = validations * (epochs - done_epochs) / max(epochs, 1)
        return seconds + future_validations * validation_s <= remaining_s

    low = max(min_epochs, done_epochs + 1)
    if not fits(low):
        return low if low != current_epochs else None
    high = low
    while high < max_epochs and fits(high):
        low, high = high, min(max_epochs, high * 2)
    if fits(high):
        low = high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    if abs(low - current_epochs) <= REPLAN_TOLERANCE * current_epochs:
        return None
    return low
