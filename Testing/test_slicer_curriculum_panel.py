"""The Curriculum panel as a Slicer user meets it (issue 16, items 7, 11, 12 and 13), outside the application.

Item 7: its settings, with the training-time fields of Parameters.py (preset, training time, starter), go to the
scene's parameter node and come back from a saved scene. Item 11: List cases checks the cases in a worker thread
with per-case progress and Cancel. Item 12: a node cached by the refinement section is not reused after the scene
is cleared, though its ID is. Item 13 (and every panel): each ``connect("signal(...)")`` names a signal the widget's
class has, from a table of the Qt, CTK and Slicer classes' signals.
"""

from __future__ import annotations

import ast
import re
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from test_slicer_refinement import dilated_dataset  # noqa: F401 - a fixture
from test_slicer_scene_state import _load_scene, _save_scene

REPO = Path(__file__).resolve().parents[1]
MODULES = ("LesionSegInference", "LesionSegCurriculum")

pytestmark = pytest.mark.usefixtures("slicer_module_folders")


# ----------------------------------------------------------------------------- 7. settings in the parameter node
def test_the_curriculum_settings_and_training_time_fields_survive_a_saved_scene(slicer_scene, tmp_path):
    from LesionSegCurriculumLib import DifficultyParameters, PrepareParameters, TrainParameters
    from LesionSegCurriculumLib.SceneState import CurriculumPanelState, parameter_node, restore_panel, store_panel

    slicer, scene, _ = slicer_scene
    state = CurriculumPanelState(
        PrepareParameters(dataset=str(tmp_path / "data"), output=str(tmp_path / "prepared"), preset="cpu", size=128,
                          negatives=None),
        DifficultyParameters(prepared=str(tmp_path / "prepared"), metrics=["contrast"], groups=4),
        TrainParameters(prepared=str(tmp_path / "prepared"), run=str(tmp_path / "run"), preset="cpu", minutes=7.5,
                        epochs=40, starter=False, network="unet2d", loss=None, curriculum="anti",
                        metrics=["area", "contrast"], groups=4, batch_size=12, folds=None, all_data=True,
                        device="cpu", patch_size="", resume=True),
        revisions_path=str(tmp_path / "revisions"), review_bundle_path=str(tmp_path / "m.lsb"), author="ann")
    store_panel(parameter_node(scene), state)
    fresh = _load_scene(slicer, _save_scene(scene, tmp_path / "saved"))
    restored = restore_panel(parameter_node(fresh))
    assert restored.train.arguments() == state.train.arguments()  # what Train would run, option for option
    assert restored.prepare.arguments() == state.prepare.arguments()
    assert restored.difficulty.arguments() == state.difficulty.arguments()
    assert (restored.train.preset, restored.train.minutes, restored.train.starter) == ("cpu", 7.5, False)
    assert (restored.revisions_path, restored.review_bundle_path, restored.author) == (
        state.revisions_path, state.review_bundle_path, "ann")
    nodes = [fresh.GetNthNodeByClass(i, "vtkMRMLScriptedModuleNode")
             for i in range(fresh.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode"))]
    assert [node.GetAttribute("ModuleName") for node in nodes] == ["LesionSegCurriculum"]
    assert restore_panel(parameter_node(slicer.vtkMRMLScene())).train.minutes == 15.0  # an empty scene: defaults
    fresh.Clear(1)


def test_the_panel_binds_the_training_time_fields_and_stores_every_change():
    """Static: the panel has the preset, training-time and starter controls and passes them to TrainParameters;
    its settings are stored on every change (updateButtons) unless they are being restored."""
    source = (REPO / "LesionSegCurriculum" / "LesionSegCurriculum.py").read_text(encoding="utf-8")
    names = _ui_classes("LesionSegCurriculum")
    assert (names["presetComboBox"], names["minutesSpinBox"], names["starterCheckBox"]) == (
        "QComboBox", "QDoubleSpinBox", "QCheckBox")
    train = re.search(r"def trainParameters\(self\):(.*?)\n    def ", source, re.S).group(1)
    for binding in ("preset=self.ui.presetComboBox.currentData", "starter=self.ui.starterCheckBox.checked",
                    "minutes=float(self.ui.minutesSpinBox.value)"):
        assert binding in train
    update = re.search(r"def updateButtons\(self, \*_args\):(.*?)\n    def ", source, re.S).group(1)
    assert "if not self.restoring:\n            storePanel(self)" in update
    assert "self.restoreFromScene()" in source and "EndImportEvent" in source


# ----------------------------------------------------------------------------- 11. listing in the background
class _Case:
    def __init__(self, case_id, mask=True):
        self.case_id, self.patient_id, self.channels, self.mask = case_id, f"p-{case_id}", ("flair",), mask or None


def test_list_cases_checks_the_cases_in_a_worker_thread_with_progress(tmp_path):
    from LesionSegCurriculumLib import CurriculumLogic

    cases = [_Case(f"c{index}") for index in range(5)]
    checked_on = []
    release = threading.Event()

    def validate(case):
        checked_on.append(threading.current_thread())
        release.wait(5)

    logic = CurriculumLogic(discover=lambda root, validate: cases)
    progress, finished = [], []
    began = time.perf_counter()
    listing = logic.start_listing(str(tmp_path), on_progress=progress.append, on_finished=finished.append,
                                  validate_case=validate)
    assert time.perf_counter() - began < 0.5 and logic.running  # the GUI thread is free at once
    release.set()
    result = listing.wait(10)
    assert threading.main_thread() not in checked_on and len(checked_on) == 5
    assert [(state.checked, state.total) for state in progress] == [(index, 5) for index in range(1, 6)]
    assert progress[-1].message == "Checked 5 of 5 cases (c4)."
    assert finished == [result] and result.ok and [row.case_id for row in result.rows] == [c.case_id for c in cases]
    assert not logic.running


def test_list_cases_can_be_cancelled_and_a_bad_case_is_named(tmp_path):
    from LesionSegCurriculumLib import CurriculumLogic

    from lesionseg.errors import DatasetError

    cases = [_Case(f"c{index}") for index in range(50)]
    gate = threading.Event()
    logic = CurriculumLogic(discover=lambda root, validate: cases)
    listing = logic.start_listing(str(tmp_path), validate_case=lambda case: gate.wait(5))
    logic.cancel()
    gate.set()
    result = listing.wait(10)
    assert result.cancelled and len(result.rows) < 50

    def bad(case):
        if case.case_id == "c3":
            raise DatasetError("case c3: the mask is not on the FLAIR's grid.")

    result = logic.start_listing(str(tmp_path), validate_case=bad).wait(10)
    assert not result.ok and result.error == "Case c3: the mask is not on the FLAIR's grid." and result.rows == []


def test_list_cases_on_a_real_dataset_gives_the_rows_of_the_blocking_listing(synthetic_dataset):
    from LesionSegCurriculumLib import CurriculumLogic

    logic = CurriculumLogic()
    result = logic.start_listing(str(synthetic_dataset)).wait(120)
    assert result.ok and result.rows == logic.list_cases(str(synthetic_dataset))


def test_the_panel_never_lists_cases_on_the_gui_thread():
    source = (REPO / "LesionSegCurriculum" / "LesionSegCurriculum.py").read_text(encoding="utf-8")
    handler = re.search(r"def onListCasesButton\(self\):(.*?)\n    def ", source, re.S).group(1)
    assert "list_cases(" not in handler and "startListing(self)" in handler
    helpers = (REPO / "LesionSegCurriculum" / "LesionSegCurriculumWidgets" / "PanelState.py").read_text(encoding="utf-8")
    assert "logic.start_listing(" in helpers and "widget.listingTimer.start()" in helpers


# ----------------------------------------------------------------------------- 12. no stale node after Close Scene
def test_a_cached_volume_is_not_reused_after_the_scene_is_cleared(slicer_scene, dilated_dataset):  # noqa: F811
    from LesionSegCurriculumLib import RefinementLogic

    slicer, scene, _ = slicer_scene
    dataset, case_id, _truth = dilated_dataset
    logic = RefinementLogic(str(dataset), scene=scene)
    proposal = logic.propose(case_id, "cleanup")
    first = logic.show(proposal).volume
    old_id = first.GetID()
    scene.Clear(0)  # Close Scene
    stranger = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "someone else's volume")
    assert stranger.GetID() == old_id and not scene.IsNodePresent(first)  # the ID is reused
    shown = logic.show(proposal)
    assert scene.IsNodePresent(shown.volume) and shown.volume is not first and shown.volume is not stranger
    assert scene.IsNodePresent(shown.change)
    logic.forget_scene()
    assert logic.shown is None and logic._volumes == {}


# ----------------------------------------------------------------------------- 13. every connect() names a real signal
#: Signals of the widget classes the panels connect to, with their inherited ones (Qt 5 documentation; CTK:
#: Libs/Widgets/ctkPathLineEdit.h, ctkSliderWidget.h, ctkCollapsibleButton.h; Slicer: Libs/MRML/Widgets/
#: qMRMLNodeComboBox.h, qMRMLWidget.h).
_ABSTRACT_BUTTON = {"clicked()", "clicked(bool)", "toggled(bool)", "pressed()", "released()"}
SIGNALS = {
    "QPushButton": _ABSTRACT_BUTTON,
    "QCheckBox": _ABSTRACT_BUTTON | {"stateChanged(int)"},
    "QComboBox": {"currentIndexChanged(int)", "currentIndexChanged(QString)", "currentTextChanged(QString)",
                  "activated(int)", "editTextChanged(QString)", "highlighted(int)"},
    "QSpinBox": {"valueChanged(int)", "valueChanged(QString)", "textChanged(QString)", "editingFinished()"},
    "QDoubleSpinBox": {"valueChanged(double)", "valueChanged(QString)", "textChanged(QString)", "editingFinished()"},
    "QLineEdit": {"textChanged(QString)", "textEdited(QString)", "editingFinished()", "returnPressed()"},
    "QListWidget": {"currentRowChanged(int)", "itemSelectionChanged()", "currentTextChanged(QString)",
                    "itemClicked(QListWidgetItem*)", "itemDoubleClicked(QListWidgetItem*)"},
    "QTableWidget": {"cellClicked(int,int)", "cellDoubleClicked(int,int)", "cellChanged(int,int)",
                     "currentCellChanged(int,int,int,int)", "itemSelectionChanged()"},
    "ctkPathLineEdit": {"currentPathChanged(QString)", "validInputChanged(bool)"},
    "ctkSliderWidget": {"valueChanged(double)", "valueIsChanging(double)", "decimalsChanged(int)"},
    "ctkCollapsibleButton": _ABSTRACT_BUTTON | {"contentsCollapsed(bool)"},
    "qMRMLNodeComboBox": {"currentNodeChanged(vtkMRMLNode*)", "currentNodeChanged(bool)",
                          "currentNodeIDChanged(QString)", "nodeActivated(vtkMRMLNode*)", "nodeAdded(vtkMRMLNode*)",
                          "nodeAddedByUser(vtkMRMLNode*)", "nodeAboutToBeRemoved(vtkMRMLNode*)",
                          "mrmlSceneChanged(vtkMRMLScene*)"},
    "QTimer": {"timeout()"},
}


def _ui_classes(module: str) -> dict[str, str]:
    root = ElementTree.parse(REPO / module / "Resources" / "UI" / f"{module}.ui").getroot()
    return {widget.get("name"): widget.get("class") for widget in root.iter("widget")}


def _connect_call(node) -> tuple[str, str] | None:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return ast.unparse(node.func.value), node.args[0].value
    return None


def _connections(path: Path):
    """``(widget names, signal, line)`` of each ``<receiver>.connect("<signal>", ...)`` call: the receiver's ui name,
    or, for a loop variable of ``for x in (self.ui.a, self.ui.b):``, the names that loop gives it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_loops = set()
    for loop in ast.walk(tree):
        if isinstance(loop, ast.For) and isinstance(loop.target, ast.Name) and isinstance(loop.iter, ast.Tuple):
            names = {element.attr for element in loop.iter.elts if isinstance(element, ast.Attribute)}
            for node in ast.walk(loop):
                found = _connect_call(node)
                if found and found[0] == loop.target.id:
                    in_loops.add(id(node))
                    yield names, found[1], node.lineno
    for node in ast.walk(tree):
        found = _connect_call(node)
        if found is None or id(node) in in_loops:
            continue
        receiver, signal = found
        if receiver.startswith(("self.ui.", "ui.")):
            yield {receiver.rsplit(".", 1)[1]}, signal, node.lineno
        elif receiver.endswith("Timer"):
            yield {"QTimer"}, signal, node.lineno
        elif receiver == "selector":  # the per-channel volume selectors made in code
            yield {"qMRMLNodeComboBox"}, signal, node.lineno
        elif receiver == "slicer.app":
            assert signal == "startupCompleted()", f"{path.name}:{node.lineno}"


@pytest.mark.parametrize("module", MODULES)
def test_every_connected_signal_exists_on_its_widgets_class(module):
    classes = _ui_classes(module)
    folder = REPO / module
    files = [folder / f"{module}.py", *sorted((folder / f"{module}Widgets").glob("*.py"))]
    checked = 0
    for path in files:
        for widgets, signal, line in _connections(path):
            for name in widgets:
                widget_class = name if name in SIGNALS else classes.get(name)
                assert widget_class in SIGNALS, f"{path.name}:{line}: no signal table for {name} ({widget_class})"
                assert signal in SIGNALS[widget_class], (
                    f"{path.name}:{line}: {name} is a {widget_class}, which has no signal {signal}")
                checked += 1
    assert checked >= 10  # the parser found the connections (a guard: no wrong signal existed before)


def test_the_training_chart_switches_the_layout_once_per_training():
    """Static: the plot layout is shown by ShowChartInLayout only on the first chart of a training (the flag is
    reset when Train starts); later epochs only change the chart of the plot view."""
    helpers = (REPO / "LesionSegCurriculum" / "LesionSegCurriculumWidgets" / "PanelState.py").read_text(encoding="utf-8")
    chart = re.search(r"def showChart\(widget, chart\):(.*?)\n\n\ndef ", helpers, re.S).group(1)
    assert "if not widget.chartShown" in chart and "widget.chartShown = True" in chart
    assert "SetPlotChartNodeID(chart.GetID())" in chart
    source = (REPO / "LesionSegCurriculum" / "LesionSegCurriculum.py").read_text(encoding="utf-8")
    train = re.search(r"def onTrainButton\(self\):(.*?)\n    def ", source, re.S).group(1)
    assert "self.chartShown = False" in train
    training_chart = re.search(r"def showTrainingChart\(self, \*_args\):(.*?)\n    def ", source, re.S).group(1)
    assert "ShowChartInLayout" not in training_chart and "showChart(self, chart)" in training_chart


@pytest.mark.parametrize("module", MODULES)
def test_path_fields_remember_their_paths_and_handlers_end_in_a_known_state(module):
    """Static (item 13 and 10): path fields add chosen paths to their history; job handlers catch every exception
    (not only LesionSegError/OSError), so the panel never stays busy after a failure."""
    folder = REPO / module
    code = "".join(path.read_text(encoding="utf-8") for path in
                   [folder / f"{module}.py", *sorted((folder / f"{module}Widgets").glob("*.py"))])
    assert "addCurrentPathToHistory()" in code
    assert "except (LesionSegError, OSError)" not in code
    assert code.count("except Exception as error") >= 2
    help_text = (folder / f"{module}.py").read_text(encoding="utf-8")
    assert "<a href=" in help_text or "DOCUMENTATION_URL" in help_text


def test_the_smaller_items_of_the_issue():
    """Static (item 13): every control that changes a job's settings refreshes the buttons; torch is not imported
    when the Inference panel is set up (devices are detected after the dependency check); after Apply the lesion
    is shown in 3D and the output selector holds the new segmentation."""
    curriculum = (REPO / "LesionSegCurriculum" / "LesionSegCurriculum.py").read_text(encoding="utf-8")
    refreshed = set()
    for names, signal, _line in _connections(REPO / "LesionSegCurriculum" / "LesionSegCurriculum.py"):
        refreshed |= names
    for name in ("areaCheckBox", "contrastCheckBox", "sizeSpinBox", "negativesSpinBox", "foldsSpinBox", "epochsSpinBox",
                 "groupsSpinBox", "batchSizeSpinBox", "minutesSpinBox", "presetComboBox", "starterCheckBox",
                 "metricComboBox", "lossComboBox", "deviceComboBox", "reviewBundlePathLineEdit", "revisionsPathLineEdit",
                 "authorLineEdit"):
        assert name in refreshed, f"{name} changes nothing on the panel"
    assert "self.updateButtons" in curriculum
    inference = (REPO / "LesionSegInference" / "LesionSegInference.py").read_text(encoding="utf-8")
    helpers = (REPO / "LesionSegInference" / "LesionSegInferenceWidgets" / "PanelState.py").read_text(encoding="utf-8")
    fill = re.search(r"def fillDeviceList\(widget\):(.*?)\n\n\ndef ", helpers, re.S).group(1)
    assert fill.index("if not widget.devicesDetected:") < fill.index("return") < fill.index("detect_devices()")
    setup = re.search(r"def setup\(self\):(.*?)\n    def ", inference, re.S).group(1)
    assert "detect_devices" not in setup and "import torch" not in inference
    outcome = re.search(r"def showOutcome\(self, outcome\):(.*?)\n    def ", inference, re.S).group(1)
    assert "CreateClosedSurfaceRepresentation()" in outcome
    assert "outputSegmentationSelector.setCurrentNode(result.segmentation_node)" in outcome
