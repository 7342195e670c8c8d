"""Rehearsal: synthetic cases of the starter's recipe trained on beside a run's own cases, never validated on."""

from __future__ import annotations

import csv
import html
from dataclasses import replace

import numpy as np
import pytest

from conftest import TINY_NETWORK, run_cli
from lesionseg.errors import DatasetError, ParameterError

STARTER_MADE_BY = {"script": "scripts/make_starter.py", "seed": 1,
                   "cohorts": {"flair": {"cases": 64, "seed": 2, "recipe": "starter"}}}


def _config(**values):
    from lesionseg.train import TrainConfig

    return TrainConfig(**{**TINY_NETWORK, "context_slices": 1, "all_data": True, "epochs": 1, **values})


@pytest.fixture(scope="module")
def stand_in_starter(tiny_prepared, tmp_path_factory):
    """A tiny 2.5D bundle whose manifest says it was made like the shipped FLAIR starter (the 'starter' recipe)."""
    from lesionseg.bundle import read_manifest, save_bundle
    from lesionseg.bundle.archive import load_state_dicts
    from lesionseg.train import train_run

    folder = tmp_path_factory.mktemp("rehearsal_starter")
    config = _config(batch_size=8, device="cpu", num_threads=1, curriculum="none", augmentation={"enabled": False})
    bundle = train_run(tiny_prepared, folder / "run", config).bundle
    manifest = read_manifest(bundle)
    manifest["provenance"]["made_by"] = STARTER_MADE_BY
    return save_bundle(folder / "starter.lsb", manifest, load_state_dicts(bundle))


def test_the_plan_follows_the_starter_and_the_count_asked_for():
    from lesionseg.train.rehearsal import MAX_AUTO_CASES, SEED_OFFSET, plan_rehearsal

    manifest = {"provenance": {"made_by": STARTER_MADE_BY}}
    plan, note = plan_rehearsal(_config(rehearsal="auto", seed=3), "flair", manifest, own_cases=7)
    assert (plan.cases, plan.recipe, plan.modality, plan.seed, note) == (7, "starter", "flair", SEED_OFFSET + 3, None)
    assert plan_rehearsal(_config(rehearsal="auto"), "flair", manifest, own_cases=50)[0].cases == MAX_AUTO_CASES
    assert plan_rehearsal(_config(rehearsal=5), "flair", manifest, own_cases=50)[0].cases == 5
    assert plan_rehearsal(_config(rehearsal=0), "flair", manifest, own_cases=7) == (None, None)
    # from scratch or another bundle: auto means none, silently; a number asked for is refused with the reason
    assert plan_rehearsal(_config(rehearsal="auto"), None, None, own_cases=7) == (None, None)
    with pytest.raises(ParameterError, match=r"--rehearsal 4 .* does not start from a shipped starter model"):
        plan_rehearsal(_config(rehearsal=4), None, None, own_cases=7)
    # a starter whose manifest does not name its recipe, or a user's difficulty table: none, and the log says why
    plan, note = plan_rehearsal(_config(rehearsal="auto"), "flair", {"provenance": {}}, own_cases=7)
    assert plan is None and "does not say which synthetic recipe made it" in note
    plan, note = plan_rehearsal(_config(rehearsal="auto", difficulty_csv="table.csv"), "flair", manifest, 7)
    assert plan is None and "table.csv has no rows for its synthetic cases" in note


def test_rehearsal_cases_are_the_recipe_s_with_lesions_the_scan_shows():
    """The starter's recipe spans lesion ages 0-1; rehearsal keeps its cases but for their ages (0.5-1, where the
    FLAIR contrast is +16 % or more, :func:`flair_contrast`), and a resumed run recognises the same plan."""
    import json

    from lesionseg.synth.modalities import flair_contrast
    from lesionseg.synth.variety import varied_case_options
    from lesionseg.train.rehearsal import LESION_AGE, RehearsalPlan, rehearsal_case_options

    plan = RehearsalPlan(cases=12, recipe="starter", modality="flair", seed=7_000_003)
    assert plan.lesion_age == LESION_AGE == (0.5, 1.0)
    assert flair_contrast(LESION_AGE[0]) > 0.15 > 0.05 == pytest.approx(flair_contrast(0.0))
    recipe_ages = set()
    for index in range(1, plan.cases + 1):  # write_cohort numbers cases from 1
        options, recipe = rehearsal_case_options(plan, index), varied_case_options(plan.seed, index, "starter")
        recipe_ages.add(recipe.pop("lesion_age"))
        assert options.pop("lesion_age") == LESION_AGE and options == recipe
    assert recipe_ages == {(0.0, 1.0)}  # so the limit is the plan's doing
    assert RehearsalPlan(**json.loads(json.dumps(plan.to_dict()))).to_dict() == json.loads(json.dumps(plan.to_dict()))


@pytest.mark.parametrize("value", [-1, 1.5, True, "many"])
def test_a_bad_rehearsal_count_is_refused_naming_the_option(value):
    with pytest.raises(ParameterError, match="--rehearsal must be auto or a whole number of cases"):
        _config(rehearsal=value)


def test_the_union_reads_each_case_from_the_dataset_that_holds_it(tiny_prepared):
    from lesionseg.preprocess import PreparedDataset, PreparedUnion

    main, extra = PreparedDataset(tiny_prepared), PreparedDataset(tiny_prepared)
    union = PreparedUnion(main, {"x-": extra})
    first = main.case_ids[0]
    assert len(union.slices) == 2 * len(main.slices)
    assert union.case_ids == main.case_ids + ["x-" + c for c in main.case_ids]
    assert union.extra_case_ids("x-") == ["x-" + c for c in main.case_ids]
    assert {row["patient_id"] for row in union.case_slices("x-" + first)} == {"x-" + main.case_slices(first)[0]["patient_id"]}
    np.testing.assert_array_equal(union.arrays("x-" + first).images, extra.arrays(first).images)
    assert union.record("x-" + first).to_dict() == extra.record(first).to_dict()
    assert union.root == main.root and union.config == main.config

    other = PreparedDataset(tiny_prepared)
    other.config = replace(other.config, size=32)
    with pytest.raises(DatasetError, match=r"its slice size \(32\) differ from .*'s \(64\)"):
        PreparedUnion(main, {"x-": other})
    with pytest.raises(DatasetError, match="needs a case id prefix"):
        PreparedUnion(main, {"": extra})  # the ids would clash


def test_a_run_from_the_starter_trains_on_the_rehearsal_cases_and_validates_on_its_own(
        tiny_prepared, stand_in_starter, tmp_path, monkeypatch):
    from lesionseg.bundle import read_manifest
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train import train_run
    from lesionseg.train.rehearsal import REHEARSAL_PREFIX, SEED_OFFSET

    monkeypatch.setattr("lesionseg.starter.starter_bundle_path", lambda modality="flair": stand_in_starter)
    messages = []
    config = _config(all_data=False, folds=3, fold=0, rehearsal=2, seed=1, finetune_from="starter", batch_size=8,
                     device="cpu", num_threads=1, curriculum="vanilla", metrics=["area"],
                     augmentation={"enabled": False})
    run = tmp_path / "run"
    summary = train_run(tiny_prepared, run, config, progress=messages.append)
    own = set(PreparedDataset(tiny_prepared).case_ids)

    rehearsal = PreparedDataset(run / "rehearsal" / "prepared")
    assert len(rehearsal.case_ids) == 2 and rehearsal.size == 64 and rehearsal.context_slices == 1
    with (run / "fold_0" / "slice_losses.csv").open(encoding="utf-8") as handle:
        trained = {row["case_id"] for row in csv.DictReader(handle)}
    with (run / "fold_0" / "val_cases.csv").open(encoding="utf-8") as handle:
        validated = {row["case_id"] for row in csv.DictReader(handle)}
    assert {REHEARSAL_PREFIX + c for c in rehearsal.case_ids} <= trained
    assert validated and validated <= own and not validated & trained
    assert any("training fold 0: 4 cases and 2 rehearsal cases, validation 2 cases" in m.get("message", "")
               for m in messages)

    provenance = read_manifest(summary.bundle)["provenance"]
    assert provenance["rehearsal"] == {"cases": 2, "recipe": "starter", "modality": "flair", "seed": SEED_OFFSET + 1,
                                       "lesion_age": [0.5, 1.0]}
    assert provenance["training_data"]["cases"] == len(own)  # the user's cases only

    # the run report says what was rehearsed
    from lesionseg.report.run_report import write_run_report

    text = html.unescape(write_run_report(run, tmp_path / "report").read_text(encoding="utf-8"))
    assert f"2 synthetic cases of the starter's recipe 'starter' (seed {SEED_OFFSET + 1}, lesion ages 0.5-1)" in text

    # the same plan again reuses the cases made (a resumed run does not draw them anew)
    from lesionseg.train.rehearsal import make_rehearsal, plan_rehearsal

    made = (run / "rehearsal" / "rehearsal.json").stat().st_mtime_ns
    plan, _ = plan_rehearsal(config, "flair", read_manifest(stand_in_starter), 4)
    make_rehearsal(plan, PreparedDataset(tiny_prepared).config, run / "rehearsal")
    assert (run / "rehearsal" / "rehearsal.json").stat().st_mtime_ns == made


def test_rehearsal_asked_for_from_scratch_exits_2_with_one_sentence(tiny_prepared, tmp_path):
    result = run_cli("train", tiny_prepared, tmp_path / "run", "--from-scratch", "--rehearsal", "3", "--epochs", "1",
                     "--context", "1", "--progress", "none")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "--rehearsal 3" in message and "does not start from a shipped starter model" in message
    bad = run_cli("train", tiny_prepared, tmp_path / "run2", "--rehearsal", "some", "--progress", "none")
    assert bad.returncode == 2 and "--rehearsal must be auto or a whole number of cases" in bad.stderr
