"""Curriculum learning: difficulty groups, epoch schedules and a PyTorch sampler.

- :mod:`.grouping`: ``assign_groups`` (K equal-size quantile groups or K equal metric steps, 0 = easiest),
  ``combine_by_rank`` (several metrics -> one mean difficulty rank), easy directions per metric.
- :mod:`.schedule`: the vanilla curriculum (groups enter at 0, 25, 50, 85, 120, 160 of 200 epochs,
  scaled for other lengths), the anti-curriculum, no curriculum, and ``iterations`` (total steps before
  training).
- :mod:`.self_paced`: self-paced learning driven by the trainer's per-slice losses.
- :mod:`.sampler`: ``CurriculumSampler``, the only part that needs torch (imported on first use).
"""

from typing import Any

from lesionseg.curriculum.grouping import (
    EASY_DIRECTIONS,
    GROUPING_METHODS,
    HUMAN_RATINGS,
    assign_groups,
    combine_by_rank,
    difficulty_order,
    group_sizes,
    rating_scores,
)
from lesionseg.curriculum.schedule import (
    PAPER_START_EPOCHS,
    PAPER_TOTAL_EPOCHS,
    SCHEDULE_NAMES,
    GroupSchedule,
    Schedule,
    anti_curriculum_schedule,
    batches_per_rank,
    continued_schedule,
    iterations,
    iterations_for_groups,
    make_schedule,
    no_curriculum_schedule,
    vanilla_epochs,
    vanilla_schedule,
    with_start_epochs,
)
from lesionseg.curriculum.self_paced import SelfPacedSchedule

__all__ = [
    "EASY_DIRECTIONS",
    "GROUPING_METHODS",
    "HUMAN_RATINGS",
    "PAPER_START_EPOCHS",
    "PAPER_TOTAL_EPOCHS",
    "SCHEDULE_NAMES",
    "CurriculumSampler",
    "GroupSchedule",
    "Schedule",
    "SelfPacedSchedule",
    "anti_curriculum_schedule",
    "assign_groups",
    "batches_per_rank",
    "combine_by_rank",
    "continued_schedule",
    "difficulty_order",
    "group_sizes",
    "iterations",
    "iterations_for_groups",
    "make_schedule",
    "no_curriculum_schedule",
    "rating_scores",
    "vanilla_epochs",
    "vanilla_schedule",
    "with_start_epochs",
]


def __getattr__(name: str) -> Any:
    # The sampler subclasses torch.utils.data.Sampler; importing torch only when it is asked for keeps
    # grouping and schedules usable (and fast to import) without torch.
    if name == "CurriculumSampler":
        from lesionseg.curriculum.sampler import CurriculumSampler

        return CurriculumSampler
    raise AttributeError(f"module 'lesionseg.curriculum' has no attribute {name!r}")
