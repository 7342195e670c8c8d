"""The presets in the Slicer panels, without Qt: the mirrored preset table, the training time, the fields left to
the preset, the trainer's budget plan in the progress, and the starter model in the Inference panel's list.

Expected values come from ``lesionseg.train.presets``, the real ``lesionseg`` argument parser and the CLI's own
``build_config``, or from bundles written here, never from the code under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("slicer_module_folders")


def _parse(command: str, arguments):
    from lesionseg.cli import build_parser

    return build_parser().parse_args([command, *arguments])


def _prepared(folder: Path, context: int | None = None) -> Path:
    """A folder that passes for a prepared dataset; with ``context``, its prepare.json says so."""
    folder.mkdir(parents=True)
    (folder / "slices.csv").write_text("case_id,patient_id,slice_index,flipped,lesion_pixels,lesion_area_mm2,has_lesion\n")
    if context is not None:
        (folder / "prepare.json").write_text(json.dumps({"config": {"size": 128, "context_slices": context}}))
    return folder


# ----------------------------------------------------------------------------- the mirrored table
def test_the_panels_preset_table_is_lesionsegs():
    from lesionseg.preprocess import PrepareConfig
    from lesionseg.train.config import TrainConfig
    from lesionseg.train.presets import PRESET_NAMES, PRESETS

    import LesionSegCurriculumLib as curriculum
    from LesionSegCurriculumLib import Presets

    assert Presets.PRESET_NAMES == PRESET_NAMES == curriculum.Parameters.PRESET_NAMES
    assert set(Presets.PRESET_LABELS) == set(PRESET_NAMES)
    assert set(PRESETS) == set(PRESET_NAMES) - {"auto"}
    for name, preset in PRESETS.items():
        assert Presets.PRESET_PREPARE[name] == preset.prepare, name
        assert Presets.PRESET_MINUTES[name] == preset.minutes, name
        assert Presets.PRESET_TRAIN_CONTEXT[name] == preset.train["context_slices"], name
        assert Presets.PRESET_STARTER[name] == preset.starter, name
        assert preset.train.get("curriculum") == "vanilla", name  # the panel's "preset's schedule" for 2D networks
    assert Presets.DEFAULT_MINUTES == PRESETS["cpu"].minutes == curriculum.TrainParameters().minutes
    assert Presets.DEFAULT_EPOCHS == PRESETS["paper"].train["epochs"] == TrainConfig.__dataclass_fields__["epochs"].default
    assert Presets.DEFAULT_GROUPS == TrainConfig.__dataclass_fields__["groups"].default
    assert Presets.DEFAULT_GROUPS == PRESETS["paper"].train["groups"]
    PrepareConfig(context_slices=Presets.MAX_CONTEXT)
    with pytest.raises(Exception, match="from 0 to 4"):
        PrepareConfig(context_slices=Presets.MAX_CONTEXT + 1)
    assert Presets.preset_minutes("paper") == 0.0 and Presets.preset_minutes("auto") == PRESETS["cpu"].minutes


# ----------------------------------------------------------------------------- arguments the CLI reads
TRAIN_CASES = {
    "the preset decides": ({}, {"preset": "auto", "minutes": 15.0, "epochs": None, "network": None, "loss": None,
                                "curriculum": None, "groups": None, "batch_size": None, "folds": None,
                                "all_data": False, "context_slices": None, "size_curriculum": None,
                                "from_scratch": False, "finetune_from": None, "channel_map": None}),
    "a time": ({"minutes": 2.5}, {"minutes": 2.5, "epochs": None}),
    "epochs instead of a time": ({"minutes": 0, "epochs": 7}, {"minutes": None, "epochs": 7}),
    "a blank time": ({"minutes": "", "epochs": 9}, {"minutes": None, "epochs": 9}),
    "no time": ({"minutes": None, "epochs": 11}, {"minutes": None, "epochs": 11}),
    "starter off": ({"starter": False}, {"from_scratch": True, "finetune_from": None}),
    "paper with a time": ({"preset": "paper"}, {"preset": "paper", "minutes": 15.0, "from_scratch": True}),
    "paper's epochs": ({"preset": "paper", "minutes": 0}, {"minutes": None, "epochs": 200, "from_scratch": True}),
    "blank choices": ({"network": "", "loss": "  ", "curriculum": "", "size_curriculum": " "},
                      {"network": None, "loss": None, "curriculum": None, "size_curriculum": None}),
    "everything given": ({"preset": "gpu", "network": "monai_unet", "loss": "dice_bce", "curriculum": "spl",
                          "groups": 3, "batch_size": 4, "folds": 3, "context": 0, "size_curriculum": "0.5, 0.75, 1"},
                         {"preset": "gpu", "network": "monai_unet", "loss": "dice_bce", "curriculum": "spl",
                          "groups": 3, "batch_size": 4, "folds": 3, "context_slices": 0,
                          "size_curriculum": "0.5,0.75,1"}),
    "size curriculum off": ({"size_curriculum": "OFF"}, {"size_curriculum": "off"}),
    "a bundle to fine-tune": ({"finetune": "starter", "starter": False, "channel_map": "ct = flair"},
                              {"finetune_from": "starter", "from_scratch": False, "channel_map": "ct=flair"}),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_arguments_pass_what_is_given_and_leave_the_rest_to_the_preset(tmp_path, case):
    from LesionSegCurriculumLib import TrainParameters

    fields, expected = TRAIN_CASES[case]
    train = TrainParameters(str(_prepared(tmp_path / "prep")), str(tmp_path / "run"), **fields)
    assert train.validate() == (True, "")
    arguments = train.arguments()
    namespace = _parse("train", arguments)
    assert {key: getattr(namespace, key) for key in expected} == expected
    assert ("--minutes" in arguments) == (expected.get("minutes", 15.0) is not None)
    if "--minutes" in arguments:
        assert arguments[arguments.index("--minutes") + 1] == f"{train.minutes:g}"  # 15 -> "--minutes 15"


def test_the_clis_configuration_of_the_panels_arguments_follows_the_preset(tmp_path):
    """What ``lesionseg train`` makes of the arguments (its own build_config), on a machine without a GPU."""
    from lesionseg.cli.cmd_train import build_config
    from lesionseg.train.presets import PRESETS

    from LesionSegCurriculumLib import TrainParameters

    prepared = _prepared(tmp_path / "prep")

    def config(**fields):
        train = TrainParameters(str(prepared), str(tmp_path / "run"), device="cpu", **fields)
        return build_config(_parse("train", train.arguments()))

    cpu = PRESETS["cpu"].train
    default = config(preset="cpu")
    assert (default.network, default.network_kwargs, default.optimiser) == (
        cpu["network"], cpu["network_kwargs"], cpu["optimiser"])
    assert (default.minutes, default.starter_if_fits, default.folds, default.fold) == (15.0, True, 5, 0)
    assert (default.context_slices, default.batch_size) == (1, 12)
    assert config(preset="cpu", starter=False).starter_if_fits is False
    assert config(preset="cpu", folds=3).folds == 3 and config(preset="cpu", all_data=True).all_data
    paper = config(preset="paper", minutes=0)
    assert (paper.network, paper.epochs, paper.minutes, paper.optimiser, paper.fold) == ("unet2d", 200, None, "rmsprop", None)
    assert paper.starter_if_fits is False and paper.context_slices == 0
    timed = config(preset="paper", minutes=30, starter=True)  # the user's choice: the paper's recipe for 30 minutes
    assert (timed.minutes, timed.network, timed.starter_if_fits) == (30.0, "unet2d", False)
    epochs = config(preset="cpu", minutes=0, epochs=12)
    assert (epochs.minutes, epochs.epochs) == (None, 12)


def test_folds_given_with_the_cpu_preset_train_every_fold(tmp_path):
    from lesionseg.cli.cmd_train import build_config

    from LesionSegCurriculumLib import TrainParameters

    train = TrainParameters(str(_prepared(tmp_path / "prep")), str(tmp_path / "run"), preset="cpu", folds=3,
                            device="cpu")
    config = build_config(_parse("train", train.arguments()))
    assert (config.folds, config.fold) == (3, None)


def test_a_resumed_run_passes_only_the_resume_and_the_device(tmp_path):
    from LesionSegCurriculumLib import TrainParameters

    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text("{}")
    train = TrainParameters(str(_prepared(tmp_path / "prep")), str(run), resume=True, preset="paper", minutes=3,
                            starter=False, context=2, network="res_unet", device="cpu")
    assert train.validate() == (True, "")
    assert train.arguments() == [str(tmp_path / "prep"), str(run), "--resume", "--device", "cpu"]
    namespace = _parse("train", train.arguments())
    assert (namespace.resume, namespace.minutes, namespace.from_scratch, namespace.preset) == (True, None, False, "auto")
    assert train.notes() == ["The run continues with the settings it was started with."]


PREPARE_CASES = {
    "the preset decides": ({}, {"preset": "auto", "size": None, "negatives": None, "context_slices": None}),
    "paper": ({"preset": "paper"}, {"preset": "paper", "size": None, "negatives": None, "context_slices": None}),
    "given": ({"preset": "cpu", "size": 96, "negatives": 0.5, "context": 2},
              {"preset": "cpu", "size": 96, "negatives": 0.5, "context_slices": 2}),
    "blank is the preset's": ({"size": "", "negatives": None, "context": " "},
                              {"size": None, "negatives": None, "context_slices": None}),
    "no neighbours": ({"context": 0}, {"context_slices": 0}),
}


@pytest.mark.parametrize("case", list(PREPARE_CASES))
def test_prepare_arguments_pass_what_is_given_and_leave_the_rest_to_the_preset(tmp_path, case):
    from LesionSegCurriculumLib import PrepareParameters

    (tmp_path / "data").mkdir()
    fields, expected = PREPARE_CASES[case]
    prepare = PrepareParameters(str(tmp_path / "data"), str(tmp_path / "prep"), **fields)
    assert prepare.validate() == (True, "")
    namespace = _parse("prepare", prepare.arguments())
    assert {key: getattr(namespace, key) for key in expected} == expected


def test_the_batch_scripts_options_become_the_same_arguments(tmp_path):
    """``train_batch.py`` (headless Slicer) builds its settings with the panel's dataclasses."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_batch", REPO / "LesionSegCurriculum" / "Scripts" / "train_batch.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    prepared = str(_prepared(tmp_path / "prep"))

    def namespace(*options):
        training = script.train_parameters(script.parser().parse_args(["--prepared", prepared, "--run", "r", *options]))
        assert training.validate() == (True, "")
        return _parse("train", training.arguments())

    default = namespace()
    assert (default.preset, default.minutes, default.epochs, default.network, default.folds) == ("auto", 15.0, None, None, None)
    paper = namespace("--preset", "paper")
    assert (paper.minutes, paper.epochs, paper.from_scratch) == (None, 200, True)
    assert (namespace("--preset", "paper", "--minutes", "8").minutes, namespace("--epochs", "12").epochs) == (8.0, 12)
    assert namespace("--from-scratch", "--context", "0").from_scratch and namespace("--context", "0").context_slices == 0
    with pytest.raises(SystemExit):
        script.parser().parse_args(["--prepared", prepared, "--run", "r", "--minutes", "5", "--epochs", "3"])


# ----------------------------------------------------------------------------- refusals and notes
BAD_TRAINING = {
    "negative time": ({"minutes": -5}, "training time -5 must be a positive number of minutes, or 0"),
    "time not a number": ({"minutes": "soon"}, "training time 'soon' must be a positive number of minutes"),
    "unknown preset": ({"preset": "fast"}, "preset 'fast' is not one of auto, cpu, gpu, paper"),
    "too many neighbours": ({"context": 5}, "neighbouring slices 5 must be a whole number from 0 to 4"),
    "negative neighbours": ({"context": -1}, "must be a whole number from 0 to 4"),
    "half a neighbour": ({"context": 1.5}, "must be a whole number from 0 to 4"),
    "tiny crops": ({"size_curriculum": "0.1,1"}, "between 0.25 and 1 ending at 1"),
    "crops not ending at 1": ({"size_curriculum": "0.5,0.75"}, "between 0.25 and 1 ending at 1"),
    "3D with neighbours": ({"network": "unet3d", "context": 1}, "are for 2D networks"),
    "absent bundle": ({"finetune": "absent.lsb"}, "to fine-tune does not exist"),
    "channel map without pairs": ({"channel_map": "ct"}, "must be NEW=OLD pairs"),
    "no batch": ({"batch_size": 0}, "batch size 0 must be 1 or more"),
    "bad device": ({"device": "tpu"}, "device 'tpu' is not one of"),
}


@pytest.mark.parametrize("case", list(BAD_TRAINING))
def test_bad_training_settings_are_refused_with_one_sentence(tmp_path, monkeypatch, case):
    from LesionSegCurriculumLib import TrainParameters

    monkeypatch.chdir(tmp_path)
    _prepared(tmp_path / "prep")
    train = TrainParameters("prep", "run")
    assert train.validate() == (True, "")
    changes, expected = BAD_TRAINING[case]
    for key, value in changes.items():
        setattr(train, key, value)
    ok, reason = train.validate()
    assert not ok and expected in reason, reason
    assert reason.endswith(".") and reason.count(". ") == 0


def test_a_dataset_prepared_with_fewer_neighbours_than_the_training_uses_is_refused(tmp_path):
    from LesionSegCurriculumLib import TrainParameters

    flat = _prepared(tmp_path / "flat", context=0)  # e.g. prepared with the paper preset
    ok, reason = TrainParameters(str(flat), str(tmp_path / "run"), preset="cpu").validate()
    assert not ok and "holds 0 neighbouring slice(s)" in reason and "the cpu preset's 2.5D input uses 1" in reason
    assert TrainParameters(str(flat), str(tmp_path / "run"), preset="paper").validate() == (True, "")
    assert TrainParameters(str(flat), str(tmp_path / "run"), context=0).validate() == (True, "")
    deep = _prepared(tmp_path / "deep", context=1)
    ok, reason = TrainParameters(str(deep), str(tmp_path / "run"), context=2).validate()
    assert not ok and "holds 1 neighbouring slice(s)" in reason and "set the neighbouring slices to 1" in reason
    assert TrainParameters(str(deep), str(tmp_path / "run")).validate() == (True, "")


def test_bad_preparation_settings_are_refused_with_one_sentence(tmp_path, monkeypatch):
    from LesionSegCurriculumLib import PrepareParameters

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for changes, expected in (({"preset": "quick"}, "preset 'quick' is not one of"),
                              ({"context": 7}, "neighbouring slices 7 must be a whole number from 0 to 4"),
                              ({"size": "big"}, "slice size 'big' must be between 16 and 1024"),
                              ({"negatives": -0.1}, "must be between 0 and 1")):
        ok, reason = PrepareParameters("data", "prep", **changes).validate()
        assert not ok and expected in reason and reason.endswith("."), reason


def test_the_paper_preset_trains_from_scratch_and_says_so(tmp_path):
    from LesionSegCurriculumLib import TrainParameters

    train = TrainParameters(str(_prepared(tmp_path / "prep")), str(tmp_path / "run"))
    assert train.notes() == []
    train.apply_preset("paper")  # what the panel does when the user picks it: the published epochs
    assert (train.minutes, train.epochs, train.validate()) == (0.0, 200, (True, ""))
    assert train.notes() == ["The paper preset trains from scratch, as published; the starter model is used by "
                             "the cpu preset."]
    assert "--from-scratch" in train.arguments() and "--epochs" in train.arguments()
    train.minutes = 20  # a time with the paper's recipe: allowed, and said
    assert train.validate() == (True, "")
    assert any("replaced by a training time of 20 minutes" in note for note in train.notes())
    train.apply_preset("cpu")
    assert train.minutes == 15.0 and train.notes() == [] and "--from-scratch" not in train.arguments()


# ----------------------------------------------------------------------------- the budget plan in the progress
class _Lines:
    """A launcher whose job prints some lines and ends with code 0."""

    def __init__(self, lines) -> None:
        self.lines, self.calls = list(lines), []

    def start(self, args, on_line, on_finished, *, env=None, cwd=None):
        import threading

        self.calls.append(args)
        for line in self.lines:
            on_line(line)
        on_finished(0)

        class Handle:
            pid = 1
            done = threading.Event()

            def kill_tree(self) -> None:
                pass

            def wait(self, timeout=None) -> bool:
                return True

        handle = Handle()
        handle.done.set()
        return handle


def _jsonl(*events) -> list[str]:
    import io

    from lesionseg.progress import JsonLinesProgress

    stream = io.StringIO()
    writer = JsonLinesProgress(stream)
    for event in events:
        writer(event)
    return stream.getvalue().splitlines()


PLAN_0 = ("fold 0: 15.0 min planned as 40 epochs (400 steps of 1.20 s: 8.0 min), 8 validation(s) (1.0 min), "
          "set-up 12 s, reserve 30 s")
PLAN_ALL = "all data: 2.5 min planned as 7 epochs (70 steps of 1.00 s: 1.2 min), 1 validation(s) (0.1 min)"


def test_the_trainers_messages_are_the_ones_the_progress_reads():
    source = "".join((REPO / "lesionseg" / "train" / name).read_text(encoding="utf-8")
                     for name in ("loop.py", "fold_budget.py"))
    assert 'f"{name}: {plan.budget_s / 60:.1f} min planned as {plan.epochs} epochs' in source
    assert 'f"the time budget ran out at epoch' in source


def test_progress_shows_the_plan_and_the_planned_epochs():
    from LesionSegInferenceLib import ProgressParser

    parser = ProgressParser()
    for line in _jsonl({"event": "message", "message": "fine-tuning from the starter model"},
                       {"event": "message", "message": PLAN_0}):
        parser.feed(line)
    state = parser.progress
    assert (state.plan, state.message, state.epochs, state.epoch, state.fold, state.fraction) == (
        PLAN_0, PLAN_0, 40, None, 0, 0.0)
    parser.feed(_jsonl({"event": "epoch", "fold": 0, "epoch": 9, "epochs": 40, "loss": 0.5, "eta_s": 300.0})[0])
    state = parser.progress
    assert (state.fraction, state.epoch, state.epochs, state.message) == (10 / 40, 9, 40, "epoch 10/40 of fold 0")
    assert state.plan == PLAN_0
    parser.feed(_jsonl({"event": "message", "message": "the time budget ran out at epoch 31 of 40; keeping the best "
                                                       "model so far"})[0])
    assert parser.progress.fraction == 1.0 and parser.progress.epoch == 9
    parser.feed(_jsonl({"event": "message", "message": PLAN_ALL})[0])
    state = parser.progress
    assert (state.epochs, state.epoch, state.fold, state.fraction, state.plan) == (7, None, None, 0.0, PLAN_ALL)
    parser.feed(_jsonl({"event": "message", "message": "training fold 1: 3 cases, validation 1 cases"})[0])
    assert parser.progress.plan == PLAN_ALL and parser.progress.epochs == 7  # other messages keep the plan


def test_a_timed_training_job_feeds_the_curves_and_logs_the_presets_notes(slicer_scene, tmp_path):
    from LesionSegCurriculumLib import CurriculumLogic, TrainParameters

    _, scene, _ = slicer_scene
    lines = _jsonl({"event": "message", "message": PLAN_0},
                   {"event": "epoch", "fold": 0, "epoch": 0, "epochs": 40, "loss": 0.9},
                   {"event": "epoch", "fold": 0, "epoch": 1, "epochs": 40, "loss": 0.7})
    launcher = _Lines(lines)
    logic = CurriculumLogic(scene=scene, launcher=launcher)
    seen, logged = [], []
    parameters = TrainParameters(str(_prepared(tmp_path / "prep")), str(tmp_path / "run"), preset="paper",
                                 minutes=5, device="cpu")
    job = logic.train(parameters, on_progress=seen.append, on_log=logged.append, wait=True)
    assert job.result.ok
    arguments = launcher.calls[0][launcher.calls[0].index("train"):]
    assert arguments[arguments.index("--minutes") + 1] == "5" and "--from-scratch" in arguments
    assert [state.epochs for state in seen] == [40, 40, 40] and seen[0].fraction == 0.0
    assert seen[-1].fraction == pytest.approx(2 / 40)
    assert logic.curves.curves("loss") == {"fold 0": ([1, 2], [0.9, 0.7])}
    assert logged[:2] == parameters.notes() and len(logged) >= 2


# ----------------------------------------------------------------------------- the starter in the Inference list
def _write_bundle(path: Path, *, name: str, description: str = "", made_by=None, context: int = 0) -> Path:
    """A real (untrained) one-member FLAIR bundle, 2.5D with ``context`` neighbours on each side."""
    from lesionseg.bundle import make_manifest, save_bundle
    from lesionseg.models import build_network_from_config, network_config

    config = network_config("unet2d", 2 * context + 1, features=[4, 4, 8, 8, 16])
    provenance = {"train_config": {"lr": 1e-3}, "curriculum": {"kind": "vanilla"}, "data_fingerprint": "0" * 64,
                  "training_data": {"cases": 60, "slices": 900, "lesion_slices": 300}, "fold_metrics": []}
    if made_by is not None:
        provenance["made_by"] = made_by
    manifest = make_manifest(
        network_config=config, channels=["flair"], reference_channel="flair", expected_spacing_mm=[1.0, 1.0, 3.0],
        preprocessing={"size": 128, "lesion_side": "left", "context_slices": context},
        members=[{"fold": 0, "validation": {"val_dice": 0.5}}], provenance=provenance, name=name,
        description=description)
    return save_bundle(path, manifest, [build_network_from_config(config).state_dict()])


MADE_BY = {"script": "scripts/make_starter.py", "seed": 7, "minutes": 30,
           "cohorts": {"varied": {"cases": 40, "seed": 1007, "recipe": "starter"},
                       "hard": {"cases": 20, "seed": 2007, "recipe": "starter"}},
           "log": "lesionseg/starter/starter.log"}
DESCRIPTION = "starter model trained on synthetic data only (FLAIR-like, 2.5D); fine-tune it on your scans"


@pytest.fixture(scope="module")
def starter_bundle(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("package")
    return _write_bundle(folder / "starter.lsb", name="starter", description=DESCRIPTION, made_by=MADE_BY, context=1)


def _starter_at(monkeypatch, path: Path | None, others: dict | None = None) -> None:
    """The package's FLAIR starter stands at ``path`` (None: absent), its other starters at ``others``."""
    import lesionseg.starter
    from lesionseg.errors import BundleError

    def starter_bundle_path() -> Path:
        if path is None:
            raise BundleError("the starter model is not part of this installation.")
        return path

    monkeypatch.setattr(lesionseg.starter, "starter_bundle_path", starter_bundle_path)
    monkeypatch.setattr(lesionseg.starter, "available_starters", lambda: dict(others or {}))


def test_the_ct_starter_follows_the_flair_one_on_its_own_line(tmp_path, monkeypatch, starter_bundle):
    from LesionSegInferenceLib import BundleCatalog
    from LesionSegInferenceLib.BundleCatalog import OTHER_STARTER_LABELS

    ct_starter = _write_bundle(tmp_path / "ct_starter.lsb", name="ct_starter")
    mine = _write_bundle(tmp_path / "mine.lsb", name="mine")
    _starter_at(monkeypatch, starter_bundle, {"flair": starter_bundle, "ct": ct_starter})
    entries = BundleCatalog().entries(tmp_path)  # the CT starter's folder: listed once, as the CT starter
    assert [entry.path for entry in entries] == [starter_bundle, ct_starter, mine]
    assert entries[1].label == OTHER_STARTER_LABELS["ct"] == "CT starter model (synthetic data; fine-tune on your CT scans)"
    assert entries[2].label == "mine (flair) - mine.lsb"
    _starter_at(monkeypatch, None, {"ct": tmp_path / "gone.lsb"})  # listed only when its file is there
    assert [entry.path for entry in BundleCatalog().entries(tmp_path)] == [ct_starter, mine]


def test_the_starter_is_listed_first_whatever_folder_is_chosen(tmp_path, monkeypatch, starter_bundle):
    from LesionSegInferenceLib import RESEARCH_NOTICE, STARTER_LABEL, BundleCatalog

    _starter_at(monkeypatch, starter_bundle)
    mine = _write_bundle(tmp_path / "models" / "mine.lsb", name="mine")
    catalog = BundleCatalog()
    entries = catalog.entries()  # no folder chosen yet
    assert [(entry.path, entry.starter) for entry in entries] == [(starter_bundle, True)]
    starter = entries[0]
    assert starter.label == STARTER_LABEL == "Starter model (synthetic data; fine-tune on your scans)"
    assert starter.ok and starter.channels == ["flair"] and starter.card["made_by"] == MADE_BY
    card = starter.card_text()
    assert f"Model: starter - {DESCRIPTION}" in card and card.endswith(RESEARCH_NOTICE)
    assert ("Made by scripts/make_starter.py (seed 7, 30 minutes) from synthetic cohorts varied (40 cases), "
            "hard (20 cases); log lesionseg/starter/starter.log") in card
    assert card.splitlines().index(next(line for line in card.splitlines() if line.startswith("Made by"))) < \
        card.splitlines().index(next(line for line in card.splitlines() if line.startswith("Created")))
    catalog.folder = tmp_path / "models"
    entries = catalog.entries()
    assert [entry.path for entry in entries] == [starter_bundle, mine]
    assert not entries[1].starter and entries[1].label == "mine (flair) - mine.lsb"
    assert "Made by" not in entries[1].card_text() and entries[1].card["made_by"] is None
    # the package's own folder chosen: the starter once, first
    _write_bundle(starter_bundle.parent / "other.lsb", name="other")
    assert [entry.path.name for entry in catalog.entries(starter_bundle.parent)] == ["starter.lsb", "other.lsb"]
    assert catalog.entry(starter_bundle).starter  # chosen again from the remembered path: still the starter


def test_without_the_starter_nothing_is_listed_for_it(tmp_path, monkeypatch, starter_bundle):
    from LesionSegInferenceLib import BundleCatalog, shipped_starter_path

    mine = _write_bundle(tmp_path / "mine.lsb", name="mine")
    _starter_at(monkeypatch, None)
    catalog = BundleCatalog()
    assert catalog.entries() == [] and catalog.starter() is None and shipped_starter_path() is None
    assert [entry.path for entry in catalog.entries(tmp_path)] == [mine]
    _starter_at(monkeypatch, tmp_path / "gone" / "starter.lsb")  # a path without its file
    assert catalog.entries() == [] and [entry.path for entry in catalog.entries(tmp_path)] == [mine]
    assert not catalog.entry(mine).starter


def test_the_real_package_starter_is_listed_exactly_when_it_is_installed():
    import lesionseg.starter

    from LesionSegInferenceLib import BundleCatalog, shipped_starter_path

    path = Path(lesionseg.starter.__file__).with_name(lesionseg.starter.STARTER_FILE)
    assert shipped_starter_path() == (path if path.is_file() else None)
    listed = [entry.path for entry in BundleCatalog().entries() if entry.starter]
    assert listed == ([path] if path.is_file() else [])


def test_listing_the_starter_imports_no_torch(starter_bundle):
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "sys.path[:0] = [sys.argv[1]]\n"
        "import lesionseg.starter\n"
        "assert 'torch' not in sys.modules, 'lesionseg.starter imported torch'\n"
        "lesionseg.starter.starter_bundle_path = lambda: Path(sys.argv[2])\n"
        "lesionseg.starter.available_starters = lambda: {'flair': Path(sys.argv[2])}\n"
        "from LesionSegInferenceLib import BundleCatalog\n"
        "entries = BundleCatalog().entries()\n"
        "assert [entry.starter for entry in entries] == [True] and entries[0].ok, entries\n"
        "assert 'torch' not in sys.modules, 'listing imported torch'\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(REPO / "LesionSegInference"), str(starter_bundle)],
                            capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
