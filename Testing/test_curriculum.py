"""Tests of lesionseg.curriculum: grouping, schedules, iteration counts and the sampler.

Expected values are worked out by hand from the paper's schedule (groups enter at 0, 25, 50, 85, 120 and
160 of 200 epochs; batch 12) and from small hand-made metric columns."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from torch.utils.data import BatchSampler

from lesionseg.curriculum import (
    CurriculumSampler,
    SelfPacedSchedule,
    anti_curriculum_schedule,
    assign_groups,
    combine_by_rank,
    group_sizes,
    iterations,
    iterations_for_groups,
    make_schedule,
    no_curriculum_schedule,
    rating_scores,
    vanilla_epochs,
    vanilla_schedule,
)
from lesionseg.errors import ParameterError

PAPER_STARTS = [0, 25, 50, 85, 120, 160]

# --------------------------------------------------------------------------------------------------
# Grouping


@pytest.mark.parametrize("n", [6, 37, 100, 4416])
def test_quantile_groups_have_equal_sizes_and_are_ordered(n):
    values = np.random.default_rng(n).lognormal(3.0, 1.0, n)
    groups = assign_groups(values, k=6, method="quantile", easy="high")
    sizes = group_sizes(groups, 6)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 1
    for g in range(5):  # high = easy: every value of a group >= every value of the next (harder) group
        assert values[groups == g].min() >= values[groups == g + 1].max()
    low = assign_groups(values, k=6, easy="low")
    for g in range(5):
        assert values[low == g].max() <= values[low == g + 1].min()


def test_ties_are_broken_by_the_secondary_key():
    values = [1, 1, 1, 1, 2, 2]
    # easy=high: the two 2s first (slice order), then the 1s in slice order
    assert assign_groups(values, k=3).tolist() == [1, 1, 2, 2, 0, 0]
    # a tie key reverses the order among equal values (ascending key)
    assert assign_groups(values, k=3, tie_key=[6, 5, 4, 3, 2, 1]).tolist() == [2, 2, 1, 1, 0, 0]
    ids = ["s3", "s1", "s2", "s0", "s9", "s8"]
    assert assign_groups(values, k=3, tie_key=ids).tolist() == [2, 1, 2, 1, 0, 0]


def test_step_groups_use_equal_metric_steps():
    values = np.arange(11.0)  # 0..10, steps of 2 for k=5; boundary values go to the harder group
    assert assign_groups(values, k=5, method="step", easy="low").tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    high = assign_groups(values, k=5, method="step", easy="high")
    assert high.tolist() == [4, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0]
    skewed = [1, 1, 1, 1, 1, 1, 1, 100]  # unequal, with empty groups: why the paper found it unstable
    groups = assign_groups(skewed, k=4, method="step", easy="high")
    assert groups.tolist() == [3] * 7 + [0]
    assert group_sizes(groups, 4).tolist() == [1, 0, 0, 7]


def test_combine_by_rank_hand_example():
    columns = {"area_mm2": [10.0, 20.0, 30.0], "contrast_fisher": [0.5, 0.1, 0.3]}
    # difficulty ranks (1 = easiest): area (high easy) 3, 2, 1; contrast (high easy) 1, 3, 2
    assert combine_by_rank(columns).tolist() == [2.0, 2.5, 1.5]
    assert combine_by_rank(columns, {"area_mm2": "low"}).tolist() == [1.0, 2.5, 2.5]
    human = rating_scores(["Hard", "easy", "medium"])
    assert human.tolist() == [2.0, 0.0, 1.0]
    assert combine_by_rank({"human": human}).tolist() == [3.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"values": [1.0, float("nan"), 2.0], "k": 2}, "missing"),
        ({"values": [1.0, 2.0, 3.0], "k": 2, "method": "kmeans"}, "method"),
        ({"values": [1.0, 2.0, 3.0], "k": 0}, "k"),
        ({"values": [1.0, 2.0, 3.0], "k": 6}, "cannot split 3"),
        ({"values": [1.0, 2.0, 3.0], "k": 2, "easy": "large"}, "easy"),
        ({"values": [1.0, 2.0, 3.0], "k": 2, "tie_key": [1, 2]}, "tie_key"),
    ],
)
def test_grouping_bad_input(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        assign_groups(**kwargs)


def test_combine_and_ratings_bad_input():
    with pytest.raises(ParameterError, match="easy direction"):
        combine_by_rank({"mystery": [1.0, 2.0]})
    with pytest.raises(ParameterError, match="values but"):
        combine_by_rank({"area_mm2": [1.0, 2.0], "gradient": [1.0]})
    with pytest.raises(ParameterError, match="not one of"):
        rating_scores(["easy", "trivial"])


# --------------------------------------------------------------------------------------------------
# Schedules


def test_vanilla_epochs_paper_and_scaled():
    assert vanilla_epochs(200) == PAPER_STARTS
    assert vanilla_epochs(100) == [0, 12, 25, 42, 60, 80]  # 12.5, 42.5 rounded down
    assert vanilla_epochs(150) == [0, 18, 37, 63, 90, 120]  # 18.75, 37.5, 63.75 rounded down
    assert vanilla_epochs(200, k=1) == [0]
    assert vanilla_epochs(200, k=11) == [0, 12, 25, 37, 50, 67, 85, 102, 120, 140, 160]  # paper points kept
    with pytest.raises(ParameterError, match="total_epochs"):
        vanilla_epochs(0)


def test_vanilla_and_anti_curriculum_activate_groups_at_boundaries():
    groups = np.repeat(np.arange(6), 5)
    vanilla = vanilla_schedule(groups, 200)
    anti = anti_curriculum_schedule(groups, 200)
    first_epoch_with = {g: min(e for e in range(200) if g in vanilla.active_groups(e)) for g in range(6)}
    assert list(first_epoch_with.values()) == PAPER_STARTS
    assert vanilla.active_groups(24) == (0,) and vanilla.active_groups(25) == (0, 1)
    assert vanilla.active_groups(160) == (0, 1, 2, 3, 4, 5)
    assert anti.active_groups(0) == (5,) and anti.active_groups(50) == (5, 4, 3)
    assert anti.active_indices(0).tolist() == list(range(25, 30))
    assert no_curriculum_schedule(30, 200).active_count(0) == 30
    with pytest.raises(ParameterError, match="epoch"):
        vanilla.active_indices(200)


def test_paper_iteration_counts():
    # Without curriculum: 4416 slices / batch 12 = 368 steps per epoch, 200 epochs.
    assert iterations_for_groups([4416], [0], 200, 12) == 73_600
    # Six groups of 736: 736, 1472, ..., 4416 active slices -> 62, 123, 184, 246, 307, 368 steps per epoch
    # (ceil(n / 12)) for 25, 25, 35, 35, 40, 40 epochs.
    by_hand = 62 * 25 + 123 * 25 + 184 * 35 + 246 * 35 + 307 * 40 + 368 * 40
    assert by_hand == 46_675
    assert iterations_for_groups([736] * 6, PAPER_STARTS, 200, 12) == by_hand
    groups = np.repeat(np.arange(6), 736)
    assert iterations(vanilla_schedule(groups, 200), 12) == by_hand
    assert iterations(no_curriculum_schedule(4416, 200), 12) == 73_600


def test_make_schedule_by_name():
    groups = np.repeat(np.arange(6), 2)
    assert make_schedule("vanilla", groups, 200).active_count(0) == 2
    assert make_schedule("anti", groups, 200).active_groups(0) == (5,)
    assert make_schedule("none", groups, 200).active_count(0) == 12
    assert isinstance(make_schedule("self_paced", n_slices=12, growth=1.2), SelfPacedSchedule)
    with pytest.raises(ParameterError, match="schedule must be one of"):
        make_schedule("reverse", groups)
    with pytest.raises(ParameterError, match="needs the difficulty group"):
        make_schedule("vanilla")


# --------------------------------------------------------------------------------------------------
# Sampler


def test_vanilla_sampler_visits_exactly_the_scheduled_slices():
    rng = np.random.default_rng(3)
    groups = rng.permutation(np.repeat(np.arange(6), 10))  # 60 slices, group order unrelated to index
    sampler = CurriculumSampler(vanilla_schedule(groups, 200), seed=11)
    orders = []
    for epoch in range(200):
        sampler.set_epoch(epoch)
        yielded = list(sampler)
        stage = sum(start <= epoch for start in PAPER_STARTS)  # number of groups active (by hand)
        expected = sorted(i for i in range(60) if groups[i] < stage)
        assert sorted(yielded) == expected and len(yielded) == len(expected) == len(sampler)
        orders.append(yielded)
    assert orders[0] != sorted(orders[0])  # shuffled within the active set
    assert orders[170] != orders[171]  # a new order each epoch
    replay = CurriculumSampler(vanilla_schedule(groups, 200), seed=11)
    replay.set_epoch(171)
    assert list(replay) == orders[171]  # reproducible from seed and epoch


def test_two_ranks_partition_the_active_set():
    groups = np.repeat(np.arange(6), 17)  # 102 slices: odd-sized active sets occur
    schedule = vanilla_schedule(groups, 200)
    ranks = [CurriculumSampler(schedule, seed=5, num_replicas=2, rank=r) for r in range(2)]
    for epoch in (0, 30, 90, 199):
        shares = []
        for sampler in ranks:
            sampler.set_epoch(epoch)
            shares.append(list(sampler))
        assert not set(shares[0]) & set(shares[1])
        assert sorted(shares[0] + shares[1]) == schedule.active_indices(epoch).tolist()
        assert abs(len(shares[0]) - len(shares[1])) <= 1


def test_ranks_with_batch_size_stay_in_step_without_duplicates():
    # 25 active slices at epoch 0 over 2 ranks with batch 4: shares 13 and 12 would need 4 and 3 batches;
    # both ranks run 3 batches, the larger share leaves one slice out this epoch.
    groups = np.repeat(np.arange(2), 25)
    schedule = vanilla_schedule(groups, 10, k=2)
    ranks = [CurriculumSampler(schedule, seed=0, num_replicas=2, rank=r, batch_size=4) for r in range(2)]
    batches = [list(BatchSampler(s, 4, drop_last=False)) for s in ranks]
    assert [len(b) for b in batches] == [3, 3] == [s.num_batches() for s in ranks]
    visited = [i for rank in batches for batch in rank for i in batch]
    assert len(visited) == len(set(visited)) == 24
    assert set(visited) <= set(schedule.active_indices(0).tolist())


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("num_replicas", [1, 2, 3])
def test_precomputed_iterations_equal_what_the_sampler_yields(drop_last, num_replicas):
    rng = np.random.default_rng(num_replicas)
    groups = assign_groups(rng.random(151), k=6)
    schedules = (
        vanilla_schedule(groups, 60),
        anti_curriculum_schedule(groups, 60),
        no_curriculum_schedule(151, 60),
    )
    for schedule in schedules:
        expected = iterations(schedule, 12, drop_last=drop_last, num_replicas=num_replicas)
        for rank in range(num_replicas):
            sampler = CurriculumSampler(
                schedule, seed=1, num_replicas=num_replicas, rank=rank, batch_size=12, drop_last=drop_last
            )
            counted = 0
            for epoch in range(60):
                sampler.set_epoch(epoch)
                counted += len(list(BatchSampler(sampler, 12, drop_last=drop_last)))
            assert counted == expected


def test_paper_sized_run_yields_the_precomputed_count():
    groups = np.repeat(np.arange(6), 736)
    sampler = CurriculumSampler(vanilla_schedule(groups, 200), seed=0)
    counted = 0
    for epoch in range(200):
        sampler.set_epoch(epoch)
        counted += len(list(BatchSampler(sampler, 12, drop_last=False)))
    assert counted == 46_675


def test_sampler_bad_rank():
    with pytest.raises(ParameterError, match="rank"):
        CurriculumSampler(no_curriculum_schedule(10, 5), num_replicas=2, rank=2)


# --------------------------------------------------------------------------------------------------
# Self-paced learning


def test_self_paced_threshold_grows_and_includes_everything():
    spl = SelfPacedSchedule(10, total_epochs=10, growth=2.0, threshold_0=0.25, all_from_fraction=1.0)
    losses = np.arange(1, 11) / 10  # 0.1, 0.2, ..., 1.0
    spl.update(np.arange(10), losses)
    assert spl.active_indices(0).tolist() == [0, 1]  # <= 0.25
    assert spl.active_indices(1).tolist() == [0, 1, 2, 3, 4]  # <= 0.5
    spl.update([0], [5.0])  # an active slice whose loss rises stays in (keep_active)
    assert spl.active_indices(2).tolist() == list(range(10))  # <= 1.0
    assert spl.threshold(3) == pytest.approx(2.0)
    with pytest.raises(ParameterError, match="only known as it runs"):
        iterations(spl, 12)


def test_self_paced_reevaluates_without_keep_active_and_forces_all_at_the_end():
    spl = SelfPacedSchedule(4, total_epochs=10, growth=1.5, threshold_0=1.0, keep_active=False)
    spl.update([0, 1, 2, 3], [0.5, 0.9, 100.0, 200.0])
    assert spl.active_indices(0).tolist() == [0, 1]
    spl.update([0], [3.0])
    assert spl.active_indices(1).tolist() == [1]  # 3.0 > 1.5: slice 0 left again
    assert spl.all_from_epoch == 8
    assert spl.active_indices(8).tolist() == [0, 1, 2, 3]  # forced from 80 % of training on


def test_self_paced_automatic_start_minimum_and_resume():
    spl = SelfPacedSchedule(6, total_epochs=20, growth=1.1, min_active=2)
    with pytest.raises(RuntimeError, match="update"):
        spl.active_indices(0)
    spl.update(range(6), [3.0, 1.0, 2.0, 6.0, 5.0, 4.0])
    assert spl.active_indices(0).tolist() == [0, 1, 2]  # median 3.5 by default
    assert spl.threshold_0 == pytest.approx(3.5)
    tight = SelfPacedSchedule(6, total_epochs=20, threshold_0=0.1, min_active=2)
    tight.update(range(6), [3.0, 1.0, 2.0, 6.0, 5.0, 4.0])
    assert tight.active_indices(0).tolist() == [1, 2]  # none under 0.1: the two lowest losses
    restored = SelfPacedSchedule(6, total_epochs=20, growth=1.1, min_active=2)
    restored.load_state_dict(json.loads(json.dumps(spl.state_dict())))
    assert restored.active_indices(1).tolist() == spl.active_indices(1).tolist()
    sampler = CurriculumSampler(spl, seed=0)
    sampler.set_epoch(1)
    assert sorted(sampler) == spl.active_indices(1).tolist()
    with pytest.raises(ParameterError, match="finite"):
        spl.update([0], [float("nan")])


def test_importing_curriculum_does_not_import_torch():
    code = "import sys, lesionseg.curriculum, lesionseg.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", errors="replace", check=True)
    assert out.stdout.strip() == "False"
