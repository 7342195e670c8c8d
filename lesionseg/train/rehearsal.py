"""Rehearsal: cases of the starter's own synthetic recipe mixed into the training cases of a run that fine-tunes it.

A starter model (:mod:`lesionseg.starter`) has seen lesions of every size and contrast on varied heads. Fine-tuned
for hundreds of epochs on a user's few scans, it forgets what those scans do not show: trained on 7 template-anatomy
cases whose lesions were all bright, a model missed the fainter lesions of held-out cases and the less bright parts
of large ones, while models trained on varied synthetic cases found them (``benchmarks/results/rehearsal.txt``).
Rehearsal keeps part of the starter's world in every epoch: a few cases of the recipe the starter was made on
(``provenance.made_by.cohorts`` of its manifest, :func:`lesionseg.synth.variety.varied_case_options`) are drawn
with lesions the scan shows (ages 0.5-1, :data:`LESION_AGE`), prepared with the run's own settings, and trained on
beside the user's cases, never validated on.

Measured over three seeds (15 minutes, one core each, ``benchmarks/results/rehearsal.txt``): on template anatomy
(real brain anatomy, training lesions all bright), held-out Dice 0.658 +- 0.006 -> 0.702 +- 0.027 (every seed
gains), lesion F1 0.816 -> 0.812; on the phantom, whose training cases are already varied, Dice 0.764 -> 0.769 and
lesion F1 0.726 -> 0.711 (seeds -0.04, -0.04, +0.03). Rehearsing the recipe's whole age range (hyperacute lesions
too) did worse on every figure (template 0.692 / 0.796, phantom F1 0.665: confident false lesions on look-alikes);
on CT it changed nothing (0.319 -> 0.326). So the fast presets rehearse (``auto``); ``--rehearsal 0`` turns it off.

They are made once per run in ``RUN/rehearsal/`` (only the prepared slices are kept; a resumed run reuses them) and
their time counts against ``--minutes``: about 3 s per case on one core. The bundle's provenance records the count,
recipe and seed; its training-data summary counts the user's cases only.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lesionseg.errors import ParameterError
from lesionseg.preprocess import PrepareConfig, PreparedDataset
from lesionseg.progress import ProgressCallback, ignore_progress
from lesionseg.train.config import TrainConfig

#: the case id prefix of rehearsal cases in the run's tables (slice_losses.csv, difficulty.csv)
REHEARSAL_PREFIX = "rehearsal-"
#: "auto" draws as many rehearsal cases as the run trains on of its own, at most this many
MAX_AUTO_CASES = 16
#: the rehearsal cohort's seed is this plus the run's seed (another cohort than the starter's own)
SEED_OFFSET = 7_000_000
#: the lesion ages (0 hyperacute .. 1 late subacute, :func:`lesionseg.synth.modalities.draw_lesion_age`) of the
#: rehearsal cases: lesions the scan shows. The starter's recipe spans 0-1; its hyperacute cases show lesions at
#: +5-15 % on FLAIR, and rehearsing them beside a user's scans taught the fine-tuned model to call faint look-alikes
#: lesion (one seed: phantom lesion F1 0.730 -> 0.676 with ages 0-1, 0.741 with 0.5-1; template gain kept).
LESION_AGE = (0.5, 1.0)


@dataclass(frozen=True)
class RehearsalPlan:
    """The rehearsal cohort of a run: ``cases`` cases of ``recipe`` drawn with ``seed``, one ``modality`` channel,
    lesion ages limited to ``lesion_age`` (low, high) in [0, 1]."""

    cases: int
    recipe: str
    modality: str
    seed: int
    lesion_age: tuple[float, float] = LESION_AGE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def starter_recipe(manifest: dict[str, Any], modality: str) -> str | None:
    """The synthetic recipe a starter was made on for ``modality`` (its manifest's ``made_by`` cohorts), or None."""
    cohorts = ((manifest.get("provenance") or {}).get("made_by") or {}).get("cohorts") or {}
    entry = cohorts.get(modality)
    return entry.get("recipe") if isinstance(entry, dict) else None


def plan_rehearsal(config: TrainConfig, starter_modality: str | None, starter_manifest: dict[str, Any] | None,
                   own_cases: int) -> tuple[RehearsalPlan | None, str | None]:
    """The rehearsal a run gets, and a sentence for the log when it gets none although it could have.

    Args:
        config: ``config.rehearsal``: ``"auto"`` (as many cases as ``own_cases``, at most :data:`MAX_AUTO_CASES`,
            when the run starts from a shipped starter; none otherwise), a number of cases, or 0 (none).
        starter_modality: the shipped starter the run starts from (``flair`` or ``ct``); None when it starts
            from scratch or from another bundle.
        starter_manifest: that starter's manifest.
        own_cases: the run's own training cases (of its first model).

    Raises:
        ParameterError: a number of cases was asked for but the run does not start from a shipped starter (or
            a user's difficulty table is given, which has no rows for the synthetic cases).
    """
    asked = config.rehearsal
    if asked == 0:
        return None, None
    explicit = asked != "auto"
    why_not = None
    if starter_modality is None or starter_manifest is None:
        why_not = "the run does not start from a shipped starter model (--finetune starter, or the preset's default)"
    elif config.difficulty_csv:
        why_not = f"the difficulty table {config.difficulty_csv} has no rows for its synthetic cases"
    elif config.is_3d:
        why_not = "3D networks train on whole prepared volumes"
    recipe = None if why_not else starter_recipe(starter_manifest, starter_modality)
    if why_not is None and recipe is None:
        why_not = "the starter's manifest does not say which synthetic recipe made it"
    if why_not:
        if explicit:
            raise ParameterError(f"--rehearsal {asked} mixes cases of the starter's synthetic recipe into training, "
                                 f"but {why_not}; leave it at auto or 0.")
        return None, (f"no rehearsal: {why_not}" if starter_modality is not None else None)
    count = int(asked) if explicit else max(1, min(int(own_cases), MAX_AUTO_CASES))
    return RehearsalPlan(count, recipe, starter_modality, SEED_OFFSET + int(config.seed)), None


def rehearsal_case_options(plan: RehearsalPlan, index: int) -> dict[str, Any]:
    """The :func:`lesionseg.synth.make_case` options of rehearsal case ``index``: the recipe's, with the plan's lesion
    ages."""
    from lesionseg.synth.variety import varied_case_options

    return {**varied_case_options(plan.seed, index, plan.recipe), "lesion_age": tuple(plan.lesion_age)}


def rehearsal_prepare_config(config: PrepareConfig, modality: str) -> PrepareConfig:
    """The run's preparation settings for the synthetic cases: the same grid, normalisation and slices; their own
    one channel; every mask as written (one lesion class)."""
    return replace(config, channels=[modality], reference=None, classes=None, mask_revision="original")


def make_rehearsal(plan: RehearsalPlan, prepare_config: PrepareConfig, folder: Path, *, workers: int = 1,
                   progress: ProgressCallback = ignore_progress) -> PreparedDataset:
    """Draw, write and prepare the rehearsal cases in ``folder`` (reused when it already holds the same ones).

    Args:
        plan: from :func:`plan_rehearsal`.
        prepare_config: the run's prepared dataset's settings (:func:`rehearsal_prepare_config` adapts them).
        folder: ``RUN/rehearsal``; ``prepared/`` is kept, the written images are removed once prepared.
        workers: processes drawing and preparing cases.

    Returns:
        The prepared rehearsal cases.
    """
    from lesionseg.preprocess import prepare_dataset
    from lesionseg.synth import write_cohort

    config = rehearsal_prepare_config(prepare_config, plan.modality)
    wanted = {"plan": plan.to_dict(), "prepare": config.to_dict()}
    spec, prepared = folder / "rehearsal.json", folder / "prepared"
    if spec.is_file() and (prepared / "prepare.json").is_file():
        try:
            if json.loads(spec.read_text(encoding="utf-8")) == json.loads(json.dumps(wanted)):
                return PreparedDataset(prepared)
        except json.JSONDecodeError:
            pass
    shutil.rmtree(folder, ignore_errors=True)
    began = time.monotonic()
    raw = folder / "cases"
    write_cohort(raw, plan.cases, modalities=(plan.modality,), seed=plan.seed, workers=workers,
                 case_options_fn=lambda index: rehearsal_case_options(plan, index))
    # the synthetic heads' warnings (e.g. a brain volume outside the usual range) are not the user's business
    prepare_dataset(raw, prepared, config, workers=workers, classes="binary")
    shutil.rmtree(raw, ignore_errors=True)
    spec.write_text(json.dumps(wanted, indent=1), encoding="utf-8")
    rehearsal = PreparedDataset(prepared)
    progress({"event": "message", "message": f"rehearsal: {plan.cases} synthetic cases of the starter's recipe "
                                             f"'{plan.recipe}' ({len(rehearsal.slices)} slices) made in "
                                             f"{time.monotonic() - began:.0f} s"})
    return rehearsal
