"""A fold trainer's time budget: the pace probe, the plan, the deadline and the revisions of the plan.

:class:`BudgetedTraining` is the part of :class:`lesionseg.train.loop.FoldTrainer` that a ``budget_s`` turns
on (see :mod:`lesionseg.train.budget` for the planning rules). It uses the trainer's attributes: ``config``,
``dataset``, ``network``, ``optimiser``, ``val_arrays``, ``folder``, ``dist``, ``progress``, and its
``_step``, ``_crop_side``, ``_build_schedule`` and ``_validate_arrays``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import numpy as np

from lesionseg.train.batching import batches_for
from lesionseg.train.budget import (FIXED_RESERVE_S, SAFETY_SHARE, BudgetPlan, measured_pace, plan_budget,
                                    replan_epochs)
from lesionseg.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from lesionseg.train.distributed import broadcast
from lesionseg.train.optim import set_total_steps
from lesionseg.train.validate import subset

BUDGET_FILE = "budget.json"


class BudgetedTraining:
    """Planning a fold's epochs within its time budget (a mix-in of ``FoldTrainer``)."""

    plan: BudgetPlan | None
    planned_validations: int
    deadline: float | None
    budget_s: float | None

    def _epoch_steps(self, epochs: int, after_epoch: int | None = None) -> list[tuple[int, int]]:
        """(optimiser steps, crop side) of each epoch of a run of ``epochs`` (a self-paced schedule counts as
        every slice, its most); with ``after_epoch``, of the run revised to ``epochs`` after that epoch."""
        schedule, floor = self._revised_schedule(epochs, after_epoch)
        counts = [schedule.active_count(e) if schedule.is_fixed else schedule.n_slices for e in range(epochs)]
        return [(batches_for(count, self.config.batch_size, self.dist.world_size),
                 self._crop_side(e, epochs, floor)) for e, count in enumerate(counts)]

    def _revised_schedule(self, epochs: int, after_epoch: int | None):
        """The schedule of ``epochs`` epochs and the least crop side, the past up to ``after_epoch`` kept (see
        :func:`lesionseg.curriculum.continued_schedule`)."""
        from lesionseg.curriculum import continued_schedule

        schedule = self._build_schedule(epochs)
        if after_epoch is None:
            return schedule, self.plan.crop_floor if self.plan is not None else 0
        current_side = self._crop_side(after_epoch, self.config.epochs)
        return continued_schedule(self.schedule, schedule, after_epoch), current_side

    def _plan_budget(self, started: float) -> None:
        """Measure the pace, plan the epochs and validations (or reload the plan on resume), set the deadline."""
        from lesionseg.train.pace import measure_step_seconds, validation_seconds_per_case

        path = self.folder / BUDGET_FILE
        if self.resume and path.is_file() and (self.folder / CHECKPOINT_NAME).is_file():
            plan = BudgetPlan.from_dict(json.loads(path.read_text(encoding="utf-8")))
            spent = plan.setup_s + sum(r.get("seconds", 0.0) for r in load_checkpoint(self.folder / CHECKPOINT_NAME)
                                       ["history"])
            remaining = max(plan.budget_s - spent, FIXED_RESERVE_S)
        else:
            plan = None
            sides = sorted({self._crop_side(e, 100) for e in range(100)})

            def step(indices: list[int], side: int) -> None:
                self._step(indices, side, np.random.default_rng(0))

            # every rank steps (a distributed step synchronises the ranks); the main rank's pace plans
            pace = measure_step_seconds(step, len(self.dataset), self.config.batch_size, sides, self.config.seed,
                                        [self.network, self.optimiser])
            if self.dist.is_main:
                per_case = []
                if self.val_arrays is not None:
                    counts = {}
                    for row in self.val_arrays.rows:
                        counts[row["case_id"]] = counts.get(row["case_id"], 0) + 1
                    per_case = validation_seconds_per_case(
                        lambda case: self._validate_arrays(subset(self.val_arrays, [case]), full=False), counts)
                curriculum_groups = self.config.groups if self.config.curriculum in ("vanilla", "anti") else 1
                plan = plan_budget(budget_s=self.budget_s, setup_s=time.monotonic() - started, seconds_per_step=pace,
                                   epoch_steps=self._epoch_steps, min_epochs=max(1, curriculum_groups),
                                   validation_s_per_case=per_case,
                                   final_validation_s=sum(per_case) * 1.5)
                from lesionseg.io import write_json_atomic

                write_json_atomic(path, plan.to_dict())
            plan = broadcast(self.dist, plan)
            remaining = plan.budget_s - plan.setup_s
        self.plan = plan
        self.planned_validations = plan.validations  # what revisions aim at
        self.deadline = time.monotonic() + remaining - plan.final_validation_s - FIXED_RESERVE_S
        self.config = dataclasses.replace(self.config, epochs=plan.epochs, val_every=plan.val_every)
        if self.val_arrays is not None:
            cases = list(dict.fromkeys(row["case_id"] for row in self.val_arrays.rows))[:plan.validation_cases]
            self.val_training = subset(self.val_arrays, cases)
        name = "all data" if self.fold is None else f"fold {self.fold}"
        steps = ", ".join(f"{seconds:.2f} s at {side} px" if side else f"{seconds:.2f} s"
                          for side, seconds in plan.seconds_per_step.items())
        self.progress({"event": "message", "message": (
            f"{name}: {plan.budget_s / 60:.1f} min planned as {plan.epochs} epochs ({plan.planned_steps} steps of "
            f"{steps}: {plan.planned_train_s / 60:.1f} min), {plan.validations} validation(s) "
            f"({plan.planned_validation_s / 60:.1f} min), set-up {plan.setup_s:.0f} s, reserve {plan.reserve_s:.0f} s"
            + "".join(f"; {note}" for note in plan.notes))})

    def _revise_plan(self, epoch: int, state: dict[str, Any]) -> None:
        """After an early epoch of a budgeted run: plan again from the measured pace (see
        :func:`lesionseg.train.budget.replan_epochs`); a new length rebuilds the schedules."""
        if self.dist.active:
            return
        # per epoch: seconds of its steps, seconds of the rest but validation (checkpoint, log), steps, crop side
        seconds_per_step, overhead_s = measured_pace(state["train_seconds"], self.plan.seconds_per_step)
        remaining = (self.deadline - time.monotonic()) * (1.0 - SAFETY_SHARE)
        epochs = replan_epochs(done_epochs=epoch + 1, current_epochs=self.config.epochs, remaining_s=remaining,
                               seconds_per_step=seconds_per_step,
                               epoch_steps=lambda count: self._epoch_steps(count, after_epoch=epoch),
                               validations=self.planned_validations, validation_s=self.plan.validation_s,
                               epoch_overhead_s=overhead_s,
                               min_epochs=self.config.groups if self.config.curriculum in ("vanilla", "anti") else 1)
        if epochs is None:
            return
        wanted = self.planned_validations
        val_every = max(1, -(-epochs // max(wanted, 1))) if wanted else epochs
        # the validations the revised run does: those done, then every val_every-th epoch and the last
        done_validations = sum("val_dice" in record for record in state["history"])
        future_validations = sum((e + 1) % val_every == 0 or e == epochs - 1 for e in range(epoch + 1, epochs)) \
            if wanted else 0
        self.progress({"event": "message", "message": (
            f"the measured pace ({', '.join(f'{v:.2f} s at {k} px' for k, v in seconds_per_step.items())} per step) "
            f"differs from the probe's: {self.config.epochs} epochs revised to {epochs}")})
        future_steps = sum(n for n, _ in self._epoch_steps(epochs, after_epoch=epoch)[epoch + 1:])
        self.schedule, floor = self._revised_schedule(epochs, epoch)
        self.config = dataclasses.replace(self.config, epochs=epochs, val_every=val_every)
        self.plan.notes.append(f"revised from {self.plan.epochs} to {epochs} epochs after epoch {epoch + 1} "
                               "(measured pace)")
        self.plan.epochs, self.plan.val_every, self.plan.crop_floor = epochs, val_every, floor
        self.plan.validations = done_validations + future_validations
        self.plan.group_starts = list(getattr(self.schedule, "start_epochs", [])) or None
        self.sampler.schedule = self.schedule
        if self.schedule.is_fixed and self.lr_per_step:
            set_total_steps(self.lr_schedule, state["iterations"] + future_steps, at_step=state["iterations"])
        if self.dist.is_main:
            from lesionseg.io import write_json_atomic

            write_json_atomic(self.folder / BUDGET_FILE, self.plan.to_dict())
