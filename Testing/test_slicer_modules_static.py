"""The Slicer modules outside Slicer: their Python compiles, their panels hold the widgets the code uses,
and their logic runs without Qt (on real MRML nodes from slicer-core where a node is needed).
"""

from __future__ import annotations

import ast
import py_compile
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
MODULES = ("LesionSegInference", "LesionSegCurriculum")
#: Modules that need the Slicer application (or Qt) and must not be imported by Lib files at load time.
APPLICATION_MODULES = {"qt", "ctk", "slicer", "vtk", "PythonQt", "__main__"}
#: The package supports Python 3.10+ (Slicer 5.10, the minimum, runs 3.12): module files must parse as 3.10.
SLICER_MIN_PYTHON = (3, 10)


def _module_python_files(module: str) -> list[Path]:
    folder = REPO / module
    return [folder / f"{module}.py", *sorted((folder / f"{module}Lib").glob("*.py")),
            *sorted((folder / f"{module}Widgets").glob("*.py"))]


def _lib_files(module: str) -> list[Path]:
    return sorted((REPO / module / f"{module}Lib").glob("*.py"))


pytestmark = pytest.mark.usefixtures("slicer_module_folders")


# ----------------------------------------------------------------------------- Python sources
@pytest.mark.parametrize("module", MODULES)
def test_module_files_compile_as_python_3_10(module, tmp_path):
    for path in _module_python_files(module):
        py_compile.compile(str(path), cfile=str(tmp_path / (path.name + "c")), doraise=True)
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=SLICER_MIN_PYTHON)


@pytest.mark.parametrize("module", MODULES)
def test_lib_files_import_nothing_from_the_application_at_load_time(module):
    for path in _lib_files(module):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level_imports = set()
        for node in tree.body:  # only statements run when the file is imported
            if isinstance(node, ast.Import):
                top_level_imports |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                top_level_imports.add(node.module.split(".")[0])
        forbidden = top_level_imports & (APPLICATION_MODULES | {"lesionseg"})
        assert not forbidden, f"{path.relative_to(REPO)} imports {sorted(forbidden)} at load time"


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    assert name in classes, f"class {name} is missing"
    return classes[name]


@pytest.mark.parametrize("module", MODULES)
def test_module_file_declares_metadata_widget_and_self_test(module):
    source = (REPO / module / f"{module}.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    metadata = _class(tree, module)
    assigned = {
        target.attr
        for node in ast.walk(metadata)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)
        and target.value.attr == "parent"
    }
    assert {"title", "categories", "contributors", "helpText", "acknowledgementText"} <= assigned
    assert [base.id for base in metadata.bases] == ["ScriptedLoadableModule"]
    widget = _class(tree, f"{module}Widget")
    assert "ScriptedLoadableModuleWidget" in [getattr(base, "id", None) for base in widget.bases]
    assert f'"UI/{module}.ui"' in source
    test = _class(tree, f"{module}Test")
    assert "runTest" in {node.name for node in test.body if isinstance(node, ast.FunctionDef)}
    texts = REPO / module / f"{module}Lib" / "Texts.py"  # where a module may keep its panel's texts
    cited = source + (texts.read_text(encoding="utf-8") if texts.is_file() else "")
    for author in ("Moreau", "Lhermitte", "Kamraoui"):
        assert author in cited, f"the acknowledgement of {module} does not cite {author}"


# ----------------------------------------------------------------------------- panels (.ui files)
def _ui(module: str) -> ElementTree.Element:
    return ElementTree.parse(REPO / module / "Resources" / "UI" / f"{module}.ui").getroot()


def _ui_names_used(module: str) -> set[str]:
    used = set()
    for path in _module_python_files(module):
        used |= set(re.findall(r"self\.ui\.(\w+)", path.read_text(encoding="utf-8")))
    return used


@pytest.mark.parametrize("module", MODULES)
def test_panel_holds_every_widget_the_code_uses(module):
    root = _ui(module)
    top = root.find("widget")
    assert root.findtext("class") == module
    assert (top.get("class"), top.get("name")) == ("qMRMLWidget", module)
    names = {widget.get("name") for widget in root.iter("widget")}
    used = _ui_names_used(module)
    assert used, f"{module}.py uses no self.ui widgets"
    assert used <= names, f"{module}.ui lacks {sorted(used - names)}"


@pytest.mark.parametrize("module", MODULES)
def test_panel_declares_custom_widgets_and_gives_mrml_widgets_the_scene(module):
    root = _ui(module)
    classes = {widget.get("class") for widget in root.iter("widget")}
    declared = {custom.findtext("class") for custom in root.iter("customwidget")}
    assert {name for name in classes if not name.startswith("Q")} <= declared
    connected = {
        connection.findtext("receiver")
        for connection in root.iter("connection")
        if connection.findtext("sender") == module
        and connection.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        and connection.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    mrml_widgets = {
        widget.get("name") for widget in root.iter("widget") if widget.get("class").startswith("qMRML")
    } - {module}
    assert mrml_widgets <= connected, f"MRML widgets without a scene: {sorted(mrml_widgets - connected)}"


#: The controls the issue asks for, by panel: widget name -> class.
PANEL_CONTROLS = {
    "LesionSegInference": {
        "bundleFolderLineEdit": "ctkPathLineEdit", "bundleListWidget": "QListWidget",
        "modelCardTextEdit": "QPlainTextEdit", "researchNoticeLabel": "QLabel", "channelsWidget": "QWidget",
        "deviceComboBox": "QComboBox", "sideComboBox": "QComboBox", "ttaCheckBox": "QCheckBox",
        "thresholdSliderWidget": "ctkSliderWidget", "minLesionSpinBox": "QDoubleSpinBox",
        "fillHolesCheckBox": "QCheckBox", "outputSegmentationSelector": "qMRMLNodeComboBox",
        "applyButton": "QPushButton", "progressBar": "QProgressBar", "lesionVolumeLabel": "QLabel",
        "lesionTableWidget": "QTableWidget", "showProbabilityCheckBox": "QCheckBox",
        "showBrainMaskCheckBox": "QCheckBox", "logTextEdit": "QPlainTextEdit",
    },
    "LesionSegCurriculum": {
        "datasetPathLineEdit": "ctkPathLineEdit", "casesTableWidget": "QTableWidget",
        "preparedPathLineEdit": "ctkPathLineEdit", "prepareButton": "QPushButton",
        "difficultyButton": "QPushButton", "histogramComboBox": "QComboBox", "runPathLineEdit": "ctkPathLineEdit",
        "metricComboBox": "QComboBox", "curriculumComboBox": "QComboBox", "groupsSpinBox": "QSpinBox",
        "epochsSpinBox": "QSpinBox", "networkComboBox": "QComboBox", "lossComboBox": "QComboBox",
        "foldsSpinBox": "QSpinBox", "allDataCheckBox": "QCheckBox", "resumeCheckBox": "QCheckBox",
        "trainButton": "QPushButton", "chartComboBox": "QComboBox", "openInInferenceButton": "QPushButton",
        "progressBar": "QProgressBar", "logTextEdit": "QPlainTextEdit",
        # the refinement section: queue, proposed change, accept/reject, rating, next case
        "revisionsPathLineEdit": "ctkPathLineEdit", "reviewBundlePathLineEdit": "ctkPathLineEdit",
        "reviewQueueButton": "QPushButton", "queueTableWidget": "QTableWidget", "refineToolComboBox": "QComboBox",
        "proposeButton": "QPushButton", "acceptButton": "QPushButton", "rejectButton": "QPushButton",
        "ratingComboBox": "QComboBox", "markReviewedButton": "QPushButton", "flagButton": "QPushButton",
        "nextCaseButton": "QPushButton",
    },
}
#: Sections of each panel (collapsible group boxes), in order.
PANEL_SECTIONS = {
    "LesionSegInference": ["modelCollapsibleButton", "inputsCollapsibleButton", "optionsCollapsibleButton",
                           "outputsCollapsibleButton", "resultsCollapsibleButton", "folderCollapsibleButton",
                           "logCollapsibleButton"],
    "LesionSegCurriculum": ["datasetCollapsibleButton", "prepareCollapsibleButton", "difficultyCollapsibleButton",
                            "trainingCollapsibleButton", "refineCollapsibleButton", "logCollapsibleButton"],
}


@pytest.mark.parametrize("module", MODULES)
def test_panels_have_the_controls_the_issue_asks_for(module):
    widgets = {w.get("name"): w.get("class") for w in _ui(module).iter("widget")}
    missing = {name: cls for name, cls in PANEL_CONTROLS[module].items() if widgets.get(name) != cls}
    assert not missing, f"{module}.ui lacks (or has another class for) {missing}"
    sections = [w.get("name") for w in _ui(module).iter("widget") if w.get("class") == "ctkCollapsibleButton"]
    assert sections == PANEL_SECTIONS[module]


@pytest.mark.parametrize("module", MODULES)
def test_panel_widget_names_are_unique_and_form_rows_are_placed(module):
    """Qt Designer rules that a hand-edited .ui can break: one name per widget or layout (the module finds its
    widgets by name), and every item of a grid or form layout with a row and a column."""
    root = _ui(module)
    names = [element.get("name") for element in root.iter() if element.tag in ("widget", "layout", "spacer")]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    assert not duplicated, f"{module}.ui names these twice: {duplicated}"
    for layout in root.iter("layout"):
        if layout.get("class") in ("QFormLayout", "QGridLayout"):
            for item in layout.findall("item"):
                assert item.get("row") is not None and item.get("column") is not None, layout.get("name")
    research = [w for w in root.iter("widget") if w.get("name") == "researchNoticeLabel"]
    if module == "LesionSegInference":
        assert "not for clinical decisions" in ElementTree.tostring(research[0], encoding="unicode")


def _imported_names(path: Path, package: str) -> set[str]:
    """Names a file imports from ``package`` (``from package import a, b``), anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == package
            for alias in node.names}


@pytest.mark.parametrize("module", MODULES)
def test_module_files_import_only_what_the_libs_provide(module):
    """The module files cannot run here (they need Qt); what they import from the Libs must exist."""
    import importlib

    for path in [REPO / module / f"{module}.py"]:
        for package in ("LesionSegInferenceLib", "LesionSegCurriculumLib", "LesionSegInferenceLib.InstallLogic",
                        "LesionSegInferenceLib.SlicerLaunchers", "LesionSegInferenceLib.SelfTest",
                        "LesionSegCurriculumLib.SelfTest"):
            names = _imported_names(path, package)
            if names:
                lib = importlib.import_module(package)
                absent = sorted(name for name in names if not hasattr(lib, name))
                assert not absent, f"{path.name} imports {absent} from {package}, which has none"


@pytest.mark.parametrize("module", MODULES)
def test_widget_code_holds_no_science(module):
    """The module file calls the Lib: from lesionseg it imports only the error classes (to catch them)."""
    tree = ast.parse((REPO / module / f"{module}.py").read_text(encoding="utf-8"))
    from_lesionseg = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lesionseg":
            from_lesionseg.add(node.module)
        elif isinstance(node, ast.Import):
            from_lesionseg |= {alias.name for alias in node.names if alias.name.split(".")[0] == "lesionseg"}
    assert from_lesionseg <= {"lesionseg", "lesionseg.errors"}, from_lesionseg
    for forbidden in ("SimpleITK", "numpy", "torch", "monai"):
        assert forbidden not in {alias.name.split(".")[0] for node in ast.walk(tree)
                                 if isinstance(node, ast.Import) for alias in node.names}
    lines = (REPO / module / f"{module}.py").read_text(encoding="utf-8").count("\n")
    assert lines < 500, f"{module}.py has {lines} lines; move logic into {module}Lib"


# ----------------------------------------------------------------------------- logic without Qt
def test_lib_logic_imports_and_validates_without_qt_or_slicer():
    """In a fresh interpreter where Qt, CTK, VTK and Slicer cannot be imported at all."""
    script = textwrap.dedent(
        """
        import importlib.abc, sys
        BLOCKED = {"qt", "ctk", "slicer", "vtk", "PythonQt"}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is blocked in this test")
                return None

        sys.meta_path.insert(0, Block())
        sys.path[:0] = sys.argv[1:]
        from LesionSegInferenceLib import InferenceLogic, InferenceParameters
        from LesionSegCurriculumLib import CurriculumLogic, TrainParameters
        ok, reason = InferenceLogic().validate(InferenceParameters())
        assert not ok and "Choose a model bundle" in reason, reason
        ok, reason = CurriculumLogic.validate_dataset_path("")
        assert not ok and "dataset folder" in reason, reason
        ok, reason = TrainParameters().validate()
        assert not ok and "prepared dataset" in reason, reason
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script, *(str(REPO / m) for m in MODULES)],
                            capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_curriculum_lib_finds_the_inference_lib_beside_it():
    """With only the Curriculum module's folder on the path (the Inference module not loaded yet), its Lib
    imports the Inference module's Lib from the sibling folder, not a copy."""
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import LesionSegCurriculumLib, LesionSegInferenceLib; "
              "print(LesionSegInferenceLib.__file__)")
    result = subprocess.run([sys.executable, "-c", script, str(REPO / "LesionSegCurriculum")], capture_output=True,
                            text=True, encoding="utf-8", errors="replace", timeout=120, cwd=str(REPO / "Testing"))
    assert result.returncode == 0, result.stderr
    expected = REPO / "LesionSegInference" / "LesionSegInferenceLib" / "__init__.py"
    assert Path(result.stdout.strip()).resolve() == expected.resolve()
    copies = [path for path in (REPO / "LesionSegCurriculum").rglob("*.py")
              if path.name in ("Process.py", "JobProgress.py", "ProcessTree.py", "SlicerLaunchers.py")]
    assert not copies


def test_inference_logic_reports_the_lesionseg_version():
    import lesionseg
    from LesionSegInferenceLib import InferenceLogic

    assert InferenceLogic.check_lesionseg() == (True, f"lesionseg {lesionseg.__version__}")


def test_extension_resources_are_found_in_source_and_installed_layouts(tmp_path):
    from LesionSegInferenceLib import REQUIREMENTS_FILE_NAME, TERMINOLOGY_FILE_NAME, find_extension_resource

    # Source tree: the module folder's parent holds Resources/.
    found = find_extension_resource(REPO / "LesionSegInference", TERMINOLOGY_FILE_NAME)
    assert found == REPO / "Resources" / TERMINOLOGY_FILE_NAME
    assert find_extension_resource(REPO / "LesionSegInference", REQUIREMENTS_FILE_NAME).is_file()
    # Installed: module files and Resources/ share the scripted-modules folder; that copy comes first.
    scripted = tmp_path / "lib" / "qt-scripted-modules"
    (scripted / "Resources").mkdir(parents=True)
    (scripted / "Resources" / TERMINOLOGY_FILE_NAME).write_text("{}")
    (tmp_path / "lib" / "Resources").mkdir()
    (tmp_path / "lib" / "Resources" / TERMINOLOGY_FILE_NAME).write_text("{}")
    installed = scripted / "Resources" / TERMINOLOGY_FILE_NAME
    assert find_extension_resource(scripted, TERMINOLOGY_FILE_NAME) == installed
    assert find_extension_resource(scripted, "absent.json") is None


# ----------------------------------------------------------------------------- curriculum logic
def _write_manifest_dataset(root: Path) -> None:
    """Two patients: p1 has two sessions with DWI and ADC and masks, p2 one session without a mask."""
    root.mkdir()
    rows = ["case_id,patient_id,dwi,adc,mask"]
    for index, (case_id, patient_id, with_mask) in enumerate(
            [("p1-s1", "p1", True), ("p1-s2", "p1", True), ("p2-s1", "p2", False)]):
        reference = sitk.GetImageFromArray(np.full((3, 4, 5), index, np.int16))
        reference.SetSpacing((1.0, 1.0, 2.0))
        for channel in ("dwi", "adc"):
            sitk.WriteImage(reference, str(root / f"{case_id}_{channel}.nii.gz"))
        mask_name = ""
        if with_mask:
            mask = sitk.GetImageFromArray((np.arange(60).reshape(3, 4, 5) % 7 == 0).astype(np.uint8))
            mask.CopyInformation(reference)
            mask_name = f"{case_id}_mask.nii.gz"
            sitk.WriteImage(mask, str(root / mask_name))
        rows.append(f"{case_id},{patient_id},{case_id}_dwi.nii.gz,{case_id}_adc.nii.gz,{mask_name}")
    (root / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_curriculum_logic_lists_the_cases_of_a_dataset(tmp_path):
    from LesionSegCurriculumLib import CaseRow, CurriculumLogic

    _write_manifest_dataset(tmp_path / "dataset")
    rows = CurriculumLogic().list_cases(tmp_path / "dataset")
    assert rows == [
        CaseRow("p1-s1", "p1", ("dwi", "adc"), True),
        CaseRow("p1-s2", "p1", ("dwi", "adc"), True),
        CaseRow("p2-s1", "p2", ("dwi", "adc"), False),
    ]
    assert rows[0].channels_text == "dwi, adc"
    assert CurriculumLogic.summarize(rows) == "3 cases of 2 patients, 2 with a lesion mask."
    assert CurriculumLogic.summarize(rows[:1]) == "1 case of 1 patient, 1 with a lesion mask."


def test_curriculum_logic_reports_bad_datasets_as_lesionseg_errors(tmp_path):
    from LesionSegCurriculumLib import CurriculumLogic

    from lesionseg.errors import DatasetError, InputFileError

    logic = CurriculumLogic()
    assert logic.validate_dataset_path("") == (False, "Choose a dataset folder (or a CSV manifest).")
    ok, reason = logic.validate_dataset_path(tmp_path / "absent")
    assert not ok and "absent" in reason
    with pytest.raises(InputFileError, match="absent"):
        logic.list_cases(tmp_path / "absent")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError):
        logic.list_cases(tmp_path / "notes")


def test_curriculum_logic_passes_the_validate_flag_to_discover(tmp_path):
    from LesionSegCurriculumLib import CurriculumLogic

    from lesionseg.data.case import Case

    calls = []

    def fake_discover(root, validate):
        calls.append((root, validate))
        return [Case("b", "q", {"flair": root / "b.nii.gz"}), Case("a", "p", {"ct": root / "a.nii.gz"}, root)]

    rows = CurriculumLogic(discover=fake_discover).list_cases(str(tmp_path), validate=False)
    assert calls == [(tmp_path, False)]
    assert [(row.case_id, row.channels, row.has_mask) for row in rows] == [("b", ("flair",), False),
                                                                          ("a", ("ct",), True)]


def test_the_segment_editor_effect_is_registered_and_complete():
    """The effect file the module registers exists, defines the effect class with the methods the editor calls,
    and hands its result to the editor (so masking and undo apply)."""
    module_source = (REPO / "LesionSegCurriculum" / "LesionSegCurriculum.py").read_text(encoding="utf-8")
    assert '"startupCompleted()", registerSegmentEditorEffect' in module_source
    assert 'os.path.join(MODULE_FOLDER, "LesionSegCurriculumWidgets", "SegmentEditorEffect.py")' in module_source
    path = REPO / "LesionSegCurriculum" / "LesionSegCurriculumWidgets" / "SegmentEditorEffect.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    effect = _class(tree, "SegmentEditorEffect")
    assert [getattr(base, "id", None) for base in effect.bases] == ["AbstractScriptedSegmentEditorEffect"]
    methods = {node.name for node in effect.body if isinstance(node, ast.FunctionDef)}
    assert {"__init__", "clone", "icon", "helpText", "setupOptionsFrame", "onApply"} <= methods
    source = path.read_text(encoding="utf-8")
    assert "saveStateForUndo()" in source and "modifySelectedSegmentByLabelmap(" in source
    cmake = (REPO / "LesionSegCurriculum" / "CMakeLists.txt").read_text(encoding="utf-8")
    for file in sorted((REPO / "LesionSegCurriculum" / "LesionSegCurriculumWidgets").glob("*.py")):
        assert f"${{MODULE_NAME}}Widgets/{file.name}" in cmake, f"CMakeLists.txt does not install {file.name}"
