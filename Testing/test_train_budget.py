"""Training by time: the plan (hand-counted cases), a real budgeted run, and the budget's bad input."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from conftest import TINY_NETWORK, run_cli
from lesionseg.errors import ParameterError
from lesionseg.train.budget import FIXED_RESERVE_S, MAX_VALIDATION_SHARE, SAFETY_SHARE, plan_budget


def _steps(per_epoch: int, side: int = 64):
    return lambda epochs: [(per_epoch, side)] * epochs


def test_plan_fills_the_budget_with_whole_epochs_and_keeps_the_reserve():
    # 100 s budget, 4 s spent; reserve = 3 + 6 + final validation 2 = 11 s -> 85 s; validation 1 s a pass:
    # share 0.12 * 85 = 10.2 s -> 8 validations (the most allowed) cost 8 s -> 77 s for training.
    # Epochs of 10 steps at 0.5 s = 5 s: 15 epochs (75 s) fit, 16 (80 s) do not.
    plan = plan_budget(budget_s=100.0, setup_s=4.0, seconds_per_step={64: 0.5}, epoch_steps=_steps(10),
                       min_epochs=6, validation_s_per_case=[0.5, 0.5], final_validation_s=2.0)
    assert plan.reserve_s == pytest.approx(FIXED_RESERVE_S + SAFETY_SHARE * 100 + 2.0)
    assert plan.epochs == 15 and plan.planned_steps == 150
    assert plan.val_every == 2 and plan.validations == 8  # ceil(15 / 8) = 2 -> epochs 2, 4, ..., 14, 15
    assert plan.validation_cases == 2 and not plan.notes
    total = plan.setup_s + plan.planned_train_s + plan.planned_validation_s + plan.reserve_s
    assert total <= 100.0


def test_a_short_budget_validates_on_fewer_cases_and_says_so():
    # validation share: 0.12 * (60 - 1 - 3 - 3.6 - 3) = 5.93 s; three passes over 4, 3 or 2 cases of 1 s
    # (12, 9, 6 s) do not fit in it, over one case (3 s) they do
    plan = plan_budget(budget_s=60.0, setup_s=1.0, seconds_per_step={64: 0.1}, epoch_steps=_steps(5),
                       min_epochs=1, validation_s_per_case=[1.0] * 4, final_validation_s=3.0)
    available = 60.0 - 1.0 - (FIXED_RESERVE_S + SAFETY_SHARE * 60 + 3.0)
    assert 3 * 1.0 * 2 > MAX_VALIDATION_SHARE * available >= 3 * 1.0
    assert plan.validation_cases == 1 and "1 of the 4 validation cases" in plan.notes[0]


def test_the_steps_of_each_epoch_come_from_the_schedule_and_the_crop_costs():
    # a size curriculum: the first half of the epochs on 32 px crops at a quarter of the cost
    def steps(epochs):
        return [(4, 32 if e < epochs // 2 else 64) for e in range(epochs)]

    plan = plan_budget(budget_s=200.0, setup_s=0.0, seconds_per_step={32: 0.25, 64: 1.0}, epoch_steps=steps,
                       min_epochs=2, validation_s_per_case=[], final_validation_s=0.0)
    # no validation: 200 - 3 - 12 = 185 s; E epochs cost 4 * (0.25 * floor(E/2) + 1.0 * ceil(E/2))
    cost = lambda e: 4 * (0.25 * (e // 2) + 1.0 * (e - e // 2))  # noqa: E731
    assert cost(plan.epochs) <= 185.0 < cost(plan.epochs + 1)
    assert plan.validations == 0


def test_a_budget_too_short_for_the_least_run_names_the_least_time():
    with pytest.raises(ParameterError, match=r"--minutes 0.1 is too short.*give at least --minutes 1\.\d") as error:
        plan_budget(budget_s=6.0, setup_s=2.0, seconds_per_step={64: 1.0}, epoch_steps=_steps(10), min_epochs=6,
                    validation_s_per_case=[1.0], final_validation_s=1.5)
    # least run: 2 s set-up + 60 steps x 1 s + 1 s validation + reserve (3 + 0.36 + 1.5) -> 67.9 s -> 1.2 min
    assert "--minutes 1.2" in str(error.value)


@pytest.mark.slow
def test_a_budgeted_run_ends_in_time_keeps_the_best_checkpoint_and_reaches_every_group(tiny_prepared, tmp_path):
    from lesionseg.bundle import load_bundle
    from lesionseg.train import TrainConfig, train_run

    minutes = 0.75
    config = TrainConfig(**TINY_NETWORK, minutes=minutes, folds=3, fold=0, batch_size=8, lr=2e-3, optimiser="adam",
                         lr_schedule="cosine", device="cpu", num_threads=1, metrics=["area"], groups=3,
                         augmentation={"enabled": False})
    began = time.monotonic()
    summary = train_run(tiny_prepared, tmp_path / "run", config)
    elapsed = time.monotonic() - began
    assert elapsed <= 60 * minutes * 1.10
    result = summary.results[0]
    plan = json.loads((tmp_path / "run" / "fold_0" / "budget.json").read_text())
    # the plan fits the budget: the run ends at its planned last epoch, or the deadline cuts its last few. The
    # tolerance is in time, not epochs: an epoch of this tiny run lasts about 0.3 s, so a 1-2 s stall on a shared
    # machine costs several (a run here planned 136 and ran 134); at most 5 % of the plan (about 2 s of 45)
    cut = plan["epochs"] - result.epochs_run
    assert plan["epochs"] >= 3 and 0 <= cut <= max(1, math.ceil(0.05 * plan["epochs"]))
    assert cut == 0 or result.stopped_at_deadline
    # every group entered: the last epoch trains on every training slice, and 3 sizes of active set appear
    history = result.history
    assert history[-1]["active_slices"] == len(result.train_rows)
    assert len({record["active_slices"] for record in history}) == 3
    # the bundle holds the best validated weights: its validation Dice is the history's best
    dices = [record["val_dice"] for record in history if "val_dice" in record]
    # every planned validation ran; when the deadline cut the last epochs, their validations (the final one and
    # those planned every val_every epochs among the cut ones) did not
    assert plan["validation_cases"] == 2
    missed = plan["validations"] - len(dices)
    assert missed == 0 or (result.stopped_at_deadline and 1 <= missed <= 1 + cut // plan["val_every"])
    assert result.validation["val_dice"] == pytest.approx(max(dices), abs=1e-9)
    assert result.best_epoch == max(r["epoch"] for r in history if r.get("val_dice") == max(dices))
    bundle = load_bundle(summary.bundle)
    kept = bundle.networks[0].state_dict()
    assert all(np.array_equal(kept[k].numpy(), v.numpy()) for k, v in result.state_dict.items())
    summary_file = json.loads((tmp_path / "run" / "budget.json").read_text())
    assert summary_file["budget_s"] == 60 * minutes and summary_file["spent_s"] <= 60 * minutes * 1.10


def test_bad_budgets_exit_2_with_one_sentence(tiny_prepared, tmp_path):
    zero = run_cli("train", tiny_prepared, tmp_path / "zero", "--minutes", "0", "--context", "0")
    assert zero.returncode == 2 and "--minutes must be a positive number" in zero.stderr
    both = run_cli("train", tiny_prepared, tmp_path / "both", "--minutes", "2", "--epochs", "3")
    assert both.returncode == 2 and "either --minutes" in both.stderr
    short = run_cli("train", tiny_prepared, tmp_path / "short", "--minutes", "0.02", "--context", "0",
                    "--model", "unet2d", "--network-kwargs", json.dumps(TINY_NETWORK["network_kwargs"]),
                    "--threads", "1", "--progress", "none")
    assert short.returncode == 2, short.stderr[-2000:]
    assert "too short" in short.stderr and "give at least --minutes" in short.stderr
    assert len(short.stderr.strip().splitlines()) == 1


def test_a_revised_plan_follows_the_measured_pace_until_its_last_epochs():
    from lesionseg.train.budget import replan_epochs

    common = dict(seconds_per_step={64: 0.5}, epoch_steps=_steps(10), validations=4, validation_s=1.0, min_epochs=2)
    # 4 epochs done; 120 s left. E epochs leave (E - 4) x 5 s of steps and 4 (E - 4) / E validations of 1 s:
    # E = 27 costs 115 + 3.4 s, E = 28 costs 120 + 3.4 s
    assert replan_epochs(done_epochs=4, current_epochs=10, remaining_s=120.0, **common) == 27
    # a change within the tolerance (5 %) keeps the plan; one beyond it does not
    assert replan_epochs(done_epochs=4, current_epochs=26, remaining_s=120.0, **common) is None
    assert replan_epochs(done_epochs=4, current_epochs=25, remaining_s=120.0, **common) == 27
    # late in the run the plan is still revised (6 of 10 done: E - 6 epochs of 5 s and their validations
    # fit 120 s up to E = 29, which costs 115 + 3.2 s) ...
    assert replan_epochs(done_epochs=6, current_epochs=10, remaining_s=120.0, **common) == 29
    # ... but not in its last 15 % (9 of 10 done), however wrong it is
    assert replan_epochs(done_epochs=9, current_epochs=10, remaining_s=120.0, **common) is None
    # slower than planned: fewer epochs, never fewer than one more than done
    assert replan_epochs(done_epochs=4, current_epochs=20, remaining_s=10.0, **common) == 5


def test_the_revised_plan_s_pace_is_that_of_the_recent_epochs():
    """A run whose first epochs were slow (another process busy beside it) plans with the pace it has now."""
    from lesionseg.train.budget import PACE_WINDOW, measured_pace

    # (step seconds, other seconds, steps, crop side): 10 slow epochs of 0.18 s per step, then 12 of 0.14 s
    epochs = [(1.8, 0.2, 10, 64)] * 10 + [(1.4, 0.1, 10, 64)] * 12
    assert PACE_WINDOW <= 12
    pace, overhead = measured_pace(epochs, {64: 0.5, 96: 1.0})
    assert pace[64] == pytest.approx(0.14) and overhead == pytest.approx(0.1)
    # a side not trained yet keeps the probe's pace, scaled as the measured side was (0.14 / 0.5)
    assert pace[96] == pytest.approx(1.0 * 0.14 / 0.5)
    # within the window one slow epoch raises the figure (the mean, above the median): cautious, never below
    pace, _ = measured_pace(epochs[:-1] + [(3.0, 0.1, 10, 64)], {64: 0.5})
    assert pace[64] == pytest.approx((0.14 * (PACE_WINDOW - 1) + 0.30) / PACE_WINDOW)
    # no epoch yet: the probe
    assert measured_pace([], {64: 0.5}) == ({64: 0.5}, 0.0)


def test_a_revised_curriculum_keeps_the_groups_that_entered_and_delays_none_into_the_past():
    from lesionseg.curriculum import continued_schedule, vanilla_schedule

    groups = np.repeat(np.arange(6), 5)
    planned = vanilla_schedule(groups, total_epochs=40)  # entries floor(40 x (0, 1/8, 1/4, 17/40, 3/5, 4/5))
    assert planned.start_epochs == (0, 5, 10, 17, 24, 32)
    longer = vanilla_schedule(groups, total_epochs=80)
    assert longer.start_epochs == (0, 10, 20, 34, 48, 64)
    # revised after epoch 12 of 40: groups 0-2 had entered (0, 5, 10) and stay; the others follow the longer plan
    revised = continued_schedule(planned, longer, last_epoch=12)
    assert revised.start_epochs == (0, 5, 10, 34, 48, 64) and revised.total_epochs == 80
    assert revised.active_count(12) == planned.active_count(12) == 15
    # a shorter plan after epoch 12: group 3 would have entered at floor(20 x 17/40) = 8, in the past: next epoch
    shorter = vanilla_schedule(groups, total_epochs=20)
    assert continued_schedule(planned, shorter, last_epoch=12).start_epochs == (0, 5, 10, 13, 13, 16)


def test_a_revised_cosine_goes_on_from_the_factor_it_had_reached_to_the_floor_at_the_new_total():
    import math

    from lesionseg.train.optim import COSINE_FLOOR, CosineSteps, cosine_factor

    schedule = CosineSteps(100)
    assert schedule(30) == pytest.approx(cosine_factor(30, 100))
    before = schedule(60)
    schedule.continue_to(60, 200)  # 140 more steps instead of 40
    assert schedule(60) == pytest.approx(before, abs=1e-12)
    # progress 0.6 at step 60, then linear to 1 at step 200: at step 130 it is 0.8
    expected = COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * 0.8))
    assert schedule(130) == pytest.approx(expected, abs=1e-12)
    assert schedule(200) == pytest.approx(COSINE_FLOOR) == schedule(260)
    factors = [schedule(step) for step in range(60, 201)]
    assert all(b <= a + 1e-12 for a, b in zip(factors, factors[1:]))
