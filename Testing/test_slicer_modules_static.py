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
    return [folder / f"{module}.py", *sorted((folder / f"{module}Lib").glob("*.py"))]


def _lib_files(module: str) -> list[Path]:
    return sorted((REPO / module / f"{module}Lib").glob("*.py"))


@pytest.fixture(scope="module", autouse=True)
def _module_folders_on_path():
    """Make ``<Module>Lib`` importable as Slicer does (the module folders are on ``sys.path``)."""
    added = [str(REPO / module) for module in MODULES if str(REPO / module) not in sys.path]
    sys.path[:0] = added
    yield
    for entry in added:
        sys.path.remove(entry)


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
    for author in ("Moreau", "Lhermitte", "Kamraoui"):
        assert author in source, f"the acknowledgement of {module} does not cite {author}"


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


def test_panels_have_the_controls_later_issues_build_on():
    inference = {w.get("name"): w.get("class") for w in _ui("LesionSegInference").iter("widget")}
    assert inference["inputVolumeSelector"] == "qMRMLNodeComboBox"
    assert inference["bundlePathLineEdit"] == "ctkPathLineEdit"
    assert inference["deviceComboBox"] == "QComboBox"
    assert inference["applyButton"] == "QPushButton"
    assert inference["progressBar"] == "QProgressBar"
    curriculum = {w.get("name"): w.get("class") for w in _ui("LesionSegCurriculum").iter("widget")}
    assert curriculum["datasetPathLineEdit"] == "ctkPathLineEdit"
    assert curriculum["casesTableWidget"] == "QTableWidget"
    assert {curriculum["prepareButton"], curriculum["trainButton"]} == {"QPushButton"}
    assert curriculum["progressBar"] == "QProgressBar"
    assert curriculum["logTextEdit"] == "QPlainTextEdit"


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
        from LesionSegCurriculumLib import CurriculumLogic
        ok, reason = InferenceLogic().validate(InferenceParameters())
        assert not ok and "input volume" in reason, reason
        ok, reason = CurriculumLogic.validate_dataset_path("")
        assert not ok and "dataset folder" in reason, reason
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script, *(str(REPO / m) for m in MODULES)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ----------------------------------------------------------------------------- inference validation
@pytest.fixture()
def mrml():
    """slicer-core's ``slicer`` module and a fresh scene (real MRML classes, no application)."""
    slicer = pytest.importorskip("slicer")
    scene = slicer.vtkMRMLScene()
    yield slicer, scene
    scene.Clear(1)


def _volume(slicer, scene, node_class: str, name: str, components: int | None = 1):
    import vtk

    node = scene.AddNewNodeByClass(node_class, name)
    if components is not None:
        image = vtk.vtkImageData()
        image.SetDimensions(4, 5, 6)
        image.AllocateScalars(vtk.VTK_SHORT, components)
        node.SetAndObserveImageData(image)
    return node


@pytest.fixture()
def bundle_file(tmp_path) -> Path:
    path = tmp_path / "model.lsbundle"
    path.write_bytes(b"not read by validation")
    return path


def test_inference_validation_accepts_a_grey_level_volume_and_a_bundle_file(mrml, bundle_file):
    from LesionSegInferenceLib import DEVICE_CHOICES, InferenceLogic, InferenceParameters

    slicer, scene = mrml
    volume = _volume(slicer, scene, "vtkMRMLScalarVolumeNode", "FLAIR")
    for device in DEVICE_CHOICES:
        assert InferenceLogic().validate(InferenceParameters(volume, str(bundle_file), device)) == (True, "")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no volume", "Select an input volume"),
        ("volume without voxels", "'Empty' has no voxels"),
        ("labelmap", "'Lesion' is a labelmap"),
        ("colour volume", "'Photo' has 3 values per voxel"),
        ("no bundle", "Choose a model bundle file"),
        ("missing bundle", "does not exist"),
        ("bundle is a folder", "is a folder"),
        ("unknown device", "'tpu' is not one of auto, cpu, cuda, mps"),
    ],
)
def test_inference_validation_names_what_is_wrong(mrml, bundle_file, case, expected):
    from LesionSegInferenceLib import InferenceLogic, InferenceParameters

    slicer, scene = mrml
    volume = _volume(slicer, scene, "vtkMRMLScalarVolumeNode", "FLAIR")
    bundle, device = str(bundle_file), "auto"
    if case == "no volume":
        volume = None
    elif case == "volume without voxels":
        volume = _volume(slicer, scene, "vtkMRMLScalarVolumeNode", "Empty", components=None)
    elif case == "labelmap":
        volume = _volume(slicer, scene, "vtkMRMLLabelMapVolumeNode", "Lesion")
    elif case == "colour volume":
        volume = _volume(slicer, scene, "vtkMRMLVectorVolumeNode", "Photo", components=3)
    elif case == "no bundle":
        bundle = "   "
    elif case == "missing bundle":
        bundle = str(bundle_file.with_name("absent.lsbundle"))
    elif case == "bundle is a folder":
        bundle = str(bundle_file.parent)
    elif case == "unknown device":
        device = "tpu"
    ok, reason = InferenceLogic().validate(InferenceParameters(volume, bundle, device))
    assert not ok
    assert expected in reason
    assert reason.endswith(".") and "\n" not in reason


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
