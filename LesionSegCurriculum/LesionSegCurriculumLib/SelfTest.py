"""What the curriculum module's self-test does, as a function of a scene, so pytest runs it too (slicer-core).

Inside Slicer, ``LesionSegCurriculumTest`` calls :func:`run_curriculum_self_test` with ``slicer.mrmlScene``:
a small synthetic cohort is written, its cases listed, prepared at 64 x 64, its difficulty measured and
shown (table and histograms), and a tiny 2-fold curriculum run trained for one epoch on the CPU (the paper
preset, with a tiny network), all through :class:`~.Logic.CurriculumLogic` and background jobs;
:func:`check_outcome` lists what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from LesionSegInferenceLib.SelfTest import TINY_NETWORK_KWARGS, TINY_SLICE_SIZE, write_synthetic_dataset

from .Logic import CurriculumLogic
from .Parameters import DifficultyParameters, PrepareParameters, TrainParameters

CASES = 4


@dataclass
class CurriculumOutcome:
    """What the self-test produced.

    Attributes:
        cases: the listed case rows.
        difficulty: the difficulty display (table node and charts).
        charts: metric -> training chart node.
        bundle: the trained bundle, None when training failed.
        errors: the jobs' error sentences.
    """

    cases: list[Any] = field(default_factory=list)
    difficulty: Any = None
    charts: dict[str, Any] = field(default_factory=dict)
    bundle: Path | None = None
    errors: list[str] = field(default_factory=list)


def tiny_train_parameters(prepared: Path, run: Path, difficulty_csv: Path | None = None) -> TrainParameters:
    """A 2-fold, one-epoch curriculum run of a narrow U-Net on the CPU (the paper preset: every fold, from
    scratch, epochs instead of a time), validated at its epoch."""
    return TrainParameters(
        prepared=str(prepared), run=str(run), preset="paper", minutes=0, epochs=1, starter=False, network="unet2d",
        network_kwargs=dict(TINY_NETWORK_KWARGS), curriculum="vanilla", metrics=["area", "contrast"], groups=1,
        batch_size=8, folds=2, device="cpu", difficulty_csv=str(difficulty_csv or ""),
        extra=["--no-augment", "--threads", "1", "--val-every", "1"])


def run_curriculum_self_test(scene, folder: str | os.PathLike, *, launcher=None, python: str | None = None,
                             on_log: Callable[[str], None] | None = None) -> CurriculumOutcome:
    """List, prepare, measure difficulty and train on a synthetic cohort through the module's logic."""
    folder = Path(folder)
    data = write_synthetic_dataset(folder / "data", cases=CASES)
    logic = CurriculumLogic(scene=scene, launcher=launcher, python=python)
    outcome = CurriculumOutcome(cases=logic.list_cases(data))

    prepared = folder / "prepared"
    result = logic.prepare(PrepareParameters(str(data), str(prepared), preset="paper", size=TINY_SLICE_SIZE,
                                             negatives=0.3),
                           on_log=on_log, wait=True).result
    if not result.ok:
        outcome.errors.append(f"prepare: {result.error}")
        return outcome
    difficulty = DifficultyParameters(str(prepared), groups=3)
    result = logic.measure_difficulty(difficulty, on_log=on_log, wait=True).result
    if not result.ok:
        outcome.errors.append(f"difficulty: {result.error}")
        return outcome
    outcome.difficulty = logic.show_difficulty(difficulty.csv_path, groups=difficulty.groups)

    parameters = tiny_train_parameters(prepared, folder / "run", difficulty.csv_path)
    result = logic.train(parameters, on_log=on_log, wait=True).result
    if not result.ok:
        outcome.errors.append(f"train: {result.error}")
        return outcome
    outcome.charts = logic.update_charts()
    outcome.bundle = logic.bundle_of(result, parameters)
    return outcome


def check_outcome(outcome: CurriculumOutcome) -> list[str]:
    """What is wrong with the self-test's outcome (an empty list when nothing is)."""
    problems = list(outcome.errors)
    if len(outcome.cases) != CASES or not all(row.has_mask for row in outcome.cases):
        problems.append(f"{len(outcome.cases)} cases were listed, {CASES} with masks were written")
    if outcome.difficulty is None or outcome.difficulty.rows == 0:
        problems.append("no difficulty table was shown")
    elif set(outcome.difficulty.charts) != {"area_mm2", "contrast_fisher"}:
        problems.append(f"difficulty histograms for {sorted(outcome.difficulty.charts)}, not area and contrast")
    if set(outcome.charts) != {"loss", "val_dice"}:
        problems.append(f"training charts for {sorted(outcome.charts)}, not loss and val_dice")
    if outcome.bundle is None:
        problems.append("no bundle was written")
    else:
        from lesionseg.bundle import model_card, read_manifest

        card = model_card(read_manifest(outcome.bundle))
        if card["members"] != 2 or card["channels"] != ["flair"]:
            problems.append(f"the bundle has {card['members']} members and channels {card['channels']}, "
                            "not 2 and ['flair']")
    return problems
