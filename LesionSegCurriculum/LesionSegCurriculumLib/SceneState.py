"""The Curriculum panel's settings in the scene's parameter node, saved with the scene.

The panel's fields are those of :class:`~.Parameters.PrepareParameters`, :class:`~.Parameters.DifficultyParameters`
and :class:`~.Parameters.TrainParameters` that it shows, among them the training-time fields (preset, training time
in minutes, starter model), and the refinement section's folders. They are stored with
``LesionSegInferenceLib.ParameterNode`` (the format of Slicer's ``parameterNodeWrapper``); a field left at "the
preset's" (None) is stored as empty text, and lists (metrics) as comma-separated text, so that a scene saved by one
version reads in another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from LesionSegInferenceLib.ParameterNode import BOOL, FLOAT, INT, STR, Field, ParameterStore, module_parameter_node

from .Parameters import DifficultyParameters, PrepareParameters, TrainParameters
from .Presets import DEFAULT_EPOCHS, DEFAULT_GROUPS, DEFAULT_MINUTES

MODULE_NAME = "LesionSegCurriculum"

FIELDS = {
    "datasetPath": Field(STR, ""),
    "preparedPath": Field(STR, ""),
    "runPath": Field(STR, ""),
    "preset": Field(STR, "auto"),
    "minutes": Field(FLOAT, DEFAULT_MINUTES),
    "epochs": Field(INT, DEFAULT_EPOCHS),
    "starter": Field(BOOL, True),
    "size": Field(STR, ""),
    "negatives": Field(STR, ""),
    "brainExtraction": Field(STR, "auto"),
    "difficultyMetrics": Field(STR, "area,contrast"),
    "trainMetrics": Field(STR, "contrast"),
    "groups": Field(INT, DEFAULT_GROUPS),
    "curriculum": Field(STR, ""),
    "network": Field(STR, ""),
    "loss": Field(STR, ""),
    "folds": Field(STR, ""),
    "allData": Field(BOOL, False),
    "batchSize": Field(STR, ""),
    "device": Field(STR, "auto"),
    "patchSize": Field(STR, ""),
    "resume": Field(BOOL, False),
    "revisionsPath": Field(STR, ""),
    "reviewBundlePath": Field(STR, ""),
    "author": Field(STR, ""),
}


@dataclass
class CurriculumPanelState:
    """What the panel shows: the three jobs' settings and the refinement section's folders."""

    prepare: PrepareParameters = field(default_factory=PrepareParameters)
    difficulty: DifficultyParameters = field(default_factory=DifficultyParameters)
    train: TrainParameters = field(default_factory=TrainParameters)
    revisions_path: str = ""
    review_bundle_path: str = ""
    author: str = ""


def _text(value) -> str:
    return "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def _number(text: str, kind=int):
    text = (text or "").strip()
    if not text:
        return None
    try:
        return kind(float(text)) if kind is int else kind(text)
    except ValueError:
        return None


def parameter_node(scene):
    """The Curriculum module's parameter node in ``scene`` (made when there is none)."""
    return module_parameter_node(scene, MODULE_NAME)


def store_panel(node, state: CurriculumPanelState) -> None:
    """Write the panel's settings into the parameter node."""
    prepare, difficulty, train = state.prepare, state.difficulty, state.train
    ParameterStore(node, FIELDS).write(
        datasetPath=prepare.dataset, preparedPath=prepare.output or train.prepared, runPath=train.run,
        preset=train.preset, minutes=float(train.minutes or 0.0), epochs=int(train.epochs), starter=bool(train.starter),
        size=_text(prepare.size), negatives=_text(prepare.negatives), brainExtraction=prepare.brain_extraction,
        difficultyMetrics=",".join(difficulty.metrics),
        trainMetrics=",".join(train.metrics), groups=int(difficulty.groups), curriculum=train.curriculum or "",
        network=train.network or "", loss=train.loss or "", folds=_text(train.folds), allData=bool(train.all_data),
        batchSize=_text(train.batch_size), device=train.device, patchSize=train.patch_size or "",
        resume=bool(train.resume), revisionsPath=state.revisions_path, reviewBundlePath=state.review_bundle_path,
        author=state.author)


def restore_panel(node) -> CurriculumPanelState:
    """The panel's settings as the parameter node holds them (defaults for those it does not hold)."""
    values = ParameterStore(node, FIELDS).read()
    prepare = PrepareParameters(dataset=values["datasetPath"], output=values["preparedPath"], preset=values["preset"],
                                size=_number(values["size"]), negatives=_number(values["negatives"], float),
                                brain_extraction=values["brainExtraction"] or "auto")
    difficulty = DifficultyParameters(prepared=values["preparedPath"], groups=values["groups"],
                                      metrics=[m for m in values["difficultyMetrics"].split(",") if m])
    train = TrainParameters(
        prepared=values["preparedPath"], run=values["runPath"], preset=values["preset"], minutes=values["minutes"],
        epochs=values["epochs"], starter=values["starter"], network=values["network"] or None,
        loss=values["loss"] or None, curriculum=values["curriculum"] or None,
        metrics=[m for m in values["trainMetrics"].split(",") if m], groups=values["groups"],
        batch_size=_number(values["batchSize"]), folds=_number(values["folds"]), all_data=values["allData"],
        device=values["device"], patch_size=values["patchSize"], resume=values["resume"])
    return CurriculumPanelState(prepare, difficulty, train, values["revisionsPath"], values["reviewBundlePath"],
                                values["author"])
