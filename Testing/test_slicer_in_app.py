"""What a Slicer user meets in the application, checked outside it (issue 16).

No Slicer application runs here. Each check either runs the modules' logic on real MRML classes (slicer-core),
or, where only the application could show a fault, reads the sources against facts taken from Slicer's own
sources (noted beside each table) so that the fault would have been caught.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CURRICULUM = REPO / "LesionSegCurriculum"
INFERENCE = REPO / "LesionSegInference"

pytestmark = pytest.mark.usefixtures("slicer_module_folders")


def _run(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run a snippet in a fresh Python (module names faked there stay there), from the repository root."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


# ----------------------------------------------------------------------------- 4. Slicer's algorithms in Slicer
def test_refine_tools_find_slicers_algorithms_under_the_applications_module_names():
    """In Slicer, vtkITK is the top-level module ``vtkITK`` and GrowCut comes from the top-level compiled module
    ``vtkSlicerSegmentationsModuleLogicPython`` (which Slicer copies into ``slicer``); the slicer-core names do not
    exist there. Stage exactly that and the resolver must still pick Slicer's backend."""
    pytest.importorskip("slicer_core")
    result = _run("""
        import sys, types
        import slicer_core.vtkITK as wheel_itk
        from slicer_core.vtkSlicerSegmentationsModuleLogic import vtkImageGrowCutSegment
        # The application's names: top-level vtkITK and Segmentations logic modules; slicer-core's hidden.
        application_itk = types.ModuleType("vtkITK")
        application_itk.__dict__.update({k: v for k, v in vars(wheel_itk).items() if k.startswith("vtkITK")})
        application_logic = types.ModuleType("vtkSlicerSegmentationsModuleLogicPython")
        application_logic.vtkImageGrowCutSegment = vtkImageGrowCutSegment
        sys.modules.update({"vtkITK": application_itk, "vtkSlicerSegmentationsModuleLogicPython": application_logic,
                            "slicer_core": None, "slicer_core.vtkITK": None,
                            "slicer_core.vtkSlicerSegmentationsModuleLogic": None})
        import numpy as np
        from lesionseg.refine import slicer_algorithms as algorithms
        assert algorithms.resolve_backend("auto") == "slicer", algorithms.resolve_backend("auto")
        assert algorithms.slicer_naming() == "application"
        assert algorithms._modules()["vtkITK"] is application_itk
        seeds = np.zeros((5, 9, 9), np.uint8); seeds[2, 4, 4] = 1; seeds[:, 0, :] = 2
        labels = algorithms.grow_cut(np.ones((5, 9, 9), np.float32), seeds)
        assert labels[2, 4, 5] in (1, 2)
        mask = np.zeros((5, 9, 9), bool); mask[2, 3:6, 3:6] = True; mask[2, 0, 0] = True
        islands = algorithms.island_labels(mask)
        assert islands.max() == 2 and (islands == 1).sum() == 9
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_refine_tools_still_find_slicer_core_outside_slicer():
    pytest.importorskip("slicer_core")
    result = _run("""
        from lesionseg.refine import slicer_algorithms as algorithms
        assert algorithms.resolve_backend("auto") == "slicer"
        print(algorithms.slicer_naming())
    """)
    assert result.returncode == 0 and result.stdout.strip() == "slicer-core", result.stderr[-2000:]


# ----------------------------------------------------------------------------- 9. torch for Slicer's NumPy 2
def test_torch_bound_admits_only_wheels_built_for_numpy_2():
    """Slicer 5.10 ships NumPy 2.0.2. torch wheels before 2.3 are NumPy-1 builds, and 2.4.0's Windows wheels
    were still NumPy-1 builds (pytorch/pytorch#131668, fixed in 2.4.1): the bound must refuse those."""
    from LesionSegInferenceLib.InstallLogic import TORCH_REQUIREMENT, requirement_status

    def admitted(version):
        return requirement_status(f"torch{TORCH_REQUIREMENT}", lambda name: version).satisfied

    assert [version for version in ("2.1.2", "2.2.0", "2.2.2", "2.3.1", "2.4.0") if admitted(version)] == []
    assert all(admitted(version) for version in ("2.4.1", "2.5.1", "2.6.0", "2.13.0"))


def test_the_package_and_the_slicer_install_ask_for_the_same_torch():
    """One bound for torch: the package's dependency in pyproject.toml is the one the Slicer install asks for."""
    import re

    from LesionSegInferenceLib.InstallLogic import TORCH_REQUIREMENT

    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")  # tomllib is Python 3.11+; we support 3.10
    dependencies = text.split("\ndependencies = [", 1)[1].split("\n]", 1)[0]
    assert re.findall(r'"(torch[^"]*)"', dependencies) == [f"torch{TORCH_REQUIREMENT}"]


# ----------------------------------------------------------------------------- 2. the effect uses the editor's images
@functools.lru_cache(maxsize=1)
def _phantom():
    """A small synthetic FLAIR case (a few-days-old, bright lesion) and a rough mask: its truth dilated."""
    import SimpleITK as sitk

    from lesionseg.refine import degrade_mask
    from lesionseg.synth import make_case

    case = make_case(1, seed=4, size_xyz=(112, 128, 28), spacing_mm=(1.75, 1.75, 5.0), lesion_age=(0.5, 1.0))
    image = sitk.Cast(case.channels["flair"], sitk.sitkFloat32)
    truth = sitk.Cast(case.lesion_mask, sitk.sitkUInt8)
    return image, degrade_mask(truth, "dilate")


def test_the_effect_refines_the_selected_segment_by_id_not_by_name(slicer_scene):
    """Two segments named alike: the one whose ID is selected is refined (by name, the first would be)."""
    import SimpleITK as sitk
    from LesionSegCurriculumLib.EffectTools import refine_segment

    from lesionseg.mrml import segmentation_node_from_labelmap, volume_node_from_image
    from lesionseg.refine.tools import call_tool

    slicer, scene, logic = slicer_scene
    image, rough = _phantom()
    volume = volume_node_from_image(scene, image, "flair")
    decoy = sitk.Image(rough)
    decoy[:] = 0
    decoy[5:9, 5:9, 2:4] = 1  # (x, y, z) a small box far from the lesion
    segmentation = segmentation_node_from_labelmap(scene, decoy, volume)
    segmentation_node_from_labelmap(scene, rough, volume, node=segmentation, name=None)
    segments = segmentation.GetSegmentation()
    ids = [segments.GetNthSegmentID(index) for index in range(segments.GetNumberOfSegments())]
    names = [segments.GetSegment(segment_id).GetName() for segment_id in ids]
    if len(ids) < 2:  # the helper reused the segment: add a second one of the same name by hand
        second = slicer.vtkSegment()
        second.SetName(names[0])
        segments.AddSegment(second)
        ids = [segments.GetNthSegmentID(index) for index in range(segments.GetNumberOfSegments())]
        from lesionseg.mrml import oriented_image_from_image

        assert slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
            oriented_image_from_image(rough), segmentation, ids[1],
            slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
        names = [segments.GetSegment(segment_id).GetName() for segment_id in ids]
    assert len(set(names)) == 1 and len(ids) == 2
    result = refine_segment(segmentation, ids[1], volume, "cleanup")
    expected = call_tool("cleanup", image, rough)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result.mask), sitk.GetArrayFromImage(expected))


def test_the_effect_works_on_the_editors_grid_with_the_volume_under_a_transform(slicer_scene):
    """The source volume moved 10 mm by a transform and the segment drawn where the lesion is shown: the refined
    segment is what the tool gives on the plain image and mask, moved the same 10 mm (the volume node's own grid,
    which ignores the transform, would put the mask 10 mm off the lesion)."""
    import SimpleITK as sitk
    import vtk
    from LesionSegCurriculumLib.EffectTools import refine_labelmap, refine_segment

    from lesionseg.mrml import (
        image_from_oriented_image,
        oriented_image_from_image,
        segmentation_node_from_labelmap,
        volume_node_from_image,
    )
    from lesionseg.refine.tools import call_tool

    slicer, scene, _logic = slicer_scene
    image, rough = _phantom()
    volume = volume_node_from_image(scene, image, "flair")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(2, 3, 10.0)  # 10 mm superior = 2 slices of 5 mm
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
    transform.SetMatrixTransformToParent(shift)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    shown = sitk.Image(rough)
    shown.SetOrigin(tuple(np.add(rough.GetOrigin(), (0.0, 0.0, 10.0))))  # LPS z = RAS S
    moved_image = sitk.Image(image)
    moved_image.CopyInformation(shown)
    plain = volume_node_from_image(scene, moved_image, "where it is shown")
    segmentation = segmentation_node_from_labelmap(scene, shown, plain, name="drawn")
    segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
    expected = call_tool("intensity", image, rough)
    result = refine_segment(segmentation, segment_id, volume, "intensity")
    assert result.added_ml + result.removed_ml > 0.1  # the tool did change the rough mask
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result.mask), sitk.GetArrayFromImage(expected))
    np.testing.assert_allclose(result.mask.GetOrigin(), np.add(image.GetOrigin(), (0.0, 0.0, 10.0)))
    # The editor's labelmap of a segment may cover only part of the source image (its own extent).
    source = oriented_image_from_image(image, dtype=np.float32)
    lesion_box = sitk.LabelShapeStatisticsImageFilter()
    lesion_box.Execute(rough)
    x, y, z, dx, dy, dz = lesion_box.GetBoundingBox(1)
    cropped = oriented_image_from_image(rough[x - 2:x + dx + 2, y - 2:y + dy + 2, max(z - 1, 0):z + dz + 1])
    partial = refine_labelmap(source, cropped, "intensity")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(partial.mask), sitk.GetArrayFromImage(expected))
    back = image_from_oriented_image(partial.labelmap)
    assert back.GetSize() == image.GetSize() and np.allclose(back.GetOrigin(), image.GetOrigin())


# ----------------------------------------------------------------------------- 1. the effect never fails silently
def test_the_effect_checks_dependencies_first_and_every_failure_becomes_a_sentence():
    from LesionSegCurriculumLib.EffectTools import apply_effect

    from lesionseg.errors import ParameterError

    calls = []

    def refine():
        calls.append("refine")
        return None

    outcome = apply_effect(refine, lambda: (False, "LesionSeg needs scikit-image (not installed); apply again."))
    assert outcome.failed and calls == [] and "scikit-image" in outcome.message

    def missing():
        raise ModuleNotFoundError("No module named 'skimage'", name="skimage")

    outcome = apply_effect(missing, lambda: (True, ""))
    assert outcome.failed and "scikit-image" in outcome.message and "install" in outcome.message

    def refused():
        raise ParameterError("the segment 'Stroke lesion' is empty; draw the lesion roughly first, then refine it.")

    outcome = apply_effect(refused)
    assert outcome.failed and outcome.message.startswith("The segment 'Stroke lesion' is empty")

    def crashed():
        raise RuntimeError("vtkITK threw")

    outcome = apply_effect(crashed)
    assert outcome.failed and "RuntimeError: vtkITK threw" in outcome.message and "crashed" in outcome.details

    def checker_crashed():
        raise OSError("pip is missing")

    outcome = apply_effect(refine, checker_crashed)
    assert outcome.failed and "pip is missing" in outcome.message and calls == []


def _effect_source() -> str:
    return (CURRICULUM / "LesionSegCurriculumWidgets" / "SegmentEditorEffect.py").read_text(encoding="utf-8")


def test_the_effect_file_uses_the_editors_images_checks_dependencies_and_shows_errors():
    """Static: what only the running editor could show. The effect reads the editor's images and the selected
    segment's ID (never looks a segment up by name), runs the dependency check, and shows failures in a dialog."""
    tree = ast.parse(_effect_source())
    calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute)}
    assert {"sourceVolumeImageData", "selectedSegmentLabelmap", "GetSelectedSegmentID", "errorDisplay",
            "saveStateForUndo", "modifySelectedSegmentByLabelmap", "ensure"} <= calls
    assert not {"GetSegmentIdBySegmentName", "GetSourceVolumeNode", "GetMasterVolumeNode"} & calls
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert {"apply_effect", "refine_labelmap"} <= names and "refine_segment" not in names
    handlers = [node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler)]
    assert handlers == []  # every failure goes through apply_effect, none is swallowed here


#: The methods qSlicerSegmentEditorScriptedEffect calls on the Python effect, with the positional arguments it
#: passes (Modules/Loadable/Segmentations/EditorEffects/qSlicerSegmentEditorScriptedEffect.cxx, Slicer 5.10:
#: declareMethod(...) and the PyTuple_New(n) argument tuples).
EDITOR_CALLS = {"icon": 0, "helpText": 0, "clone": 0, "activate": 0, "deactivate": 0, "setupOptionsFrame": 0,
                "createCursor": 1, "processInteractionEvents": 3, "processViewNodeEvents": 3, "setMRMLDefaults": 0,
                "referenceGeometryChanged": 0, "sourceVolumeNodeChanged": 0, "masterVolumeNodeChanged": 0,
                "layoutChanged": 0, "interactionNodeModified": 1, "updateGUIFromMRML": 0, "updateMRMLFromGUI": 0,
                "cleanup": 0}


def test_every_effect_method_the_editor_calls_takes_the_arguments_it_passes():
    effect = next(node for node in ast.parse(_effect_source()).body
                  if isinstance(node, ast.ClassDef) and node.name == "SegmentEditorEffect")
    for method in (node for node in effect.body if isinstance(node, ast.FunctionDef) and node.name in EDITOR_CALLS):
        positional = [argument.arg for argument in method.args.args][1:]
        required = len(positional) - len(method.args.defaults)
        passed = EDITOR_CALLS[method.name]
        assert required <= passed and (len(positional) >= passed or method.args.vararg), (
            f"{method.name}{tuple(positional)} cannot take the {passed} arguments the editor passes")
    defined = {node.name for node in effect.body if isinstance(node, ast.FunctionDef)}
    # the abstract base gives only __init__, register and cleanup; these the editor needs from every effect
    assert {"clone", "icon", "helpText", "setupOptionsFrame"} <= defined


# ----------------------------------------------------------------------------- 8. the Widgets package exports the effect
def test_registration_finds_the_effect_class_in_the_widgets_package_not_a_reloaded_file():
    """``setPythonSource(path)`` takes the folder name of ``path`` as the module name and the file's base name
    (+ "Effect") as the class, and looks ``sys.modules[module].<class>`` up before loading the file *as that module*
    (qSlicerSegmentEditorScriptedEffect.cxx). The module file imports the Widgets package at load, so the lookup
    must find the class there. Replayed here with stand-ins for the application's modules."""
    source = (CURRICULUM / "LesionSegCurriculum.py").read_text(encoding="utf-8")
    register = next(node for node in ast.parse(source).body
                    if isinstance(node, ast.FunctionDef) and node.name == "registerSegmentEditorEffect")
    parts = [node.value for node in ast.walk(register) if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and node.value.endswith(("Widgets", ".py"))]
    folder, file_name = parts[0], parts[1]
    class_name = Path(file_name).stem if Path(file_name).stem.endswith("Effect") else Path(file_name).stem + "Effect"
    result = _run(f"""
        import sys, types
        sys.path[:0] = {[str(CURRICULUM), str(INFERENCE)]!r}
        qt = types.ModuleType("qt"); slicer = types.ModuleType("slicer")
        effects = types.ModuleType("SegmentEditorEffects")
        class AbstractScriptedSegmentEditorEffect:
            def __init__(self, scriptedEffect): self.scriptedEffect = scriptedEffect
        effects.AbstractScriptedSegmentEditorEffect = AbstractScriptedSegmentEditorEffect
        sys.modules.update(qt=qt, slicer=slicer, SegmentEditorEffects=effects)
        import {folder}                      # what the module file's imports do at load
        module = sys.modules.get({folder!r})
        found = getattr(module, {class_name!r}, None)
        assert isinstance(found, type) and issubclass(found, AbstractScriptedSegmentEditorEffect), found
        assert module.__file__.endswith("__init__.py")
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


# ----------------------------------------------------------------------------- 6. the Extensions Index checks
#: What the Extensions Index's checks read from a submitted repository (Slicer/ExtensionsIndex,
#: scripts/check_description_files.py): the top-level CMakeLists.txt as text, the icon address from
#: ``set(EXTENSION_ICONURL "<url>" )`` and the screenshot addresses from ``set(EXTENSION_SCREENSHOTURLS "<urls>")``
#: (no space before the parenthesis), each fetched as an image; a licence file under one of these names at the
#: root; the project name not starting with "Slicer"; the repository's name starting with "Slicer".
ICON_URL = re.compile(r'set\s*\(EXTENSION_ICONURL\s*"([^"]+)"[ ]*\)', re.IGNORECASE)
SCREENSHOT_URLS = re.compile(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', re.IGNORECASE)
LICENSE_NAMES = ("LICENSE", "LICENCE", "License.txt", "license.txt", "LICENSE.txt", "COPYING", "COPYING.txt")
#: The raw-file address of a file on the repository's main branch (the form the submission template asks for).
RAW_URL = re.compile(r"https://raw\.githubusercontent\.com/(?P<owner>[^/]+)/(?P<repo>[^/]+)/main/(?P<path>\S+)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _cmake_set(text: str, name: str) -> str | None:
    match = re.search(rf'set\s*\({name}\s+"([^"]*)"', text)
    return match.group(1) if match else None


def test_extensions_index_checks_that_can_run_here():
    text = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert any((REPO / name).is_file() for name in LICENSE_NAMES), "no licence file at the repository root"
    licence = next(REPO / name for name in LICENSE_NAMES if (REPO / name).is_file()).read_text(encoding="utf-8")
    assert licence.startswith("BSD 3-Clause License")
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license\s*=\s*"BSD-3-Clause"', pyproject, re.MULTILINE)  # one licence for both
    project = re.search(r"project\s*\(\s*([^\s)]+)", text).group(1)
    assert project == "LesionSeg" and not project.lower().startswith("slicer")
    homepage = _cmake_set(text, "EXTENSION_HOMEPAGE")
    assert homepage and homepage.startswith("https://github.com/") and "$" not in homepage
    owner, repository = homepage.rstrip("/").split("/")[-2:]
    assert repository.startswith("Slicer")
    for name in ("EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_DEPENDS"):
        assert (_cmake_set(text, name) or "").strip(), f"{name} is empty"
    assert "BSD 3-Clause" in _cmake_set(text, "EXTENSION_DESCRIPTION")
    icon = ICON_URL.search(text)
    screenshots = SCREENSHOT_URLS.search(text)
    assert icon and screenshots, "the checker's patterns find no icon or screenshot address"
    urls = [icon.group(1).strip(), *screenshots.group(1).split()]
    assert len(urls) >= 2
    for url in urls:
        match = RAW_URL.fullmatch(url)
        assert match, f"{url} is not a literal https raw-file address of the main branch"
        assert (match["owner"], match["repo"]) == (owner, repository), url
        path = REPO / match["path"]
        assert path.is_file(), f"{url} names {match['path']}, which does not exist"
        assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{match['path']} is not a PNG"


def test_the_screenshot_is_drawn_from_the_product_by_a_kept_script():
    """The screenshot is the starter model's result on the Sample Data case, drawn by a script in the repository
    with the report's overlay code (not a mock-up); a wide image as the Extensions Manager shows it."""
    from PIL import Image

    script = (REPO / "Resources" / "Screenshots" / "make_screenshots.py").read_text(encoding="utf-8")
    for used in ("make_sample_case", "Predictor(starter_bundle_path()", "plot_overlays"):
        assert used in script
    with Image.open(REPO / "Resources" / "Screenshots" / "LesionSegInference.png") as image:
        assert image.width >= 800 and image.height >= 300


# ----------------------------------------------------------------------------- 5. self-tests on the index's machines
def test_self_test_readiness_names_what_is_missing_and_never_installs(tmp_path):
    from LesionSegInferenceLib.SelfTest import self_test_readiness

    requirements = REPO / "Resources" / "requirements.txt"
    factory = {"monai": None, "scikit-image": None, "tqdm": None, "matplotlib": None, "torch": None}
    ready, reason = self_test_readiness(requirements, version_of=lambda name: factory.get(name.lower()))
    assert not ready and "PyTorch is not installed" in reason and "testing mode" in reason
    everything = {"monai": "1.5.0", "scikit-image": "0.24.0", "tqdm": "4.66.0", "matplotlib": "3.9.0",
                  "torch": "2.6.0"}
    assert self_test_readiness(requirements, version_of=lambda name: everything.get(name.lower())) == (True, "")
    no_monai = dict(everything, monai=None)
    ready, reason = self_test_readiness(requirements, version_of=lambda name: no_monai.get(name.lower()))
    assert not ready and "monai (not installed)" in reason


def test_the_light_self_tests_pass_without_torch_monai_or_scikit_image(tmp_path):
    """What the module tests run before the end-to-end part, in a Python where torch, MONAI and scikit-image
    cannot be imported (the index's factory machines)."""
    result = _run(f"""
        import sys
        sys.modules.update(torch=None, monai=None, skimage=None)
        sys.path[:0] = {[str(CURRICULUM), str(INFERENCE)]!r}
        import lesionseg
        from LesionSegInferenceLib import InferenceLogic, InferenceParameters
        ok, message = InferenceLogic.check_lesionseg()
        assert ok, message
        ok, reason = InferenceLogic().validate(InferenceParameters())
        assert not ok and "Choose a model bundle" in reason
        from LesionSegCurriculumLib import CurriculumLogic, TrainParameters
        from lesionseg.errors import InputFileError
        logic = CurriculumLogic()
        assert not logic.validate_dataset_path("")[0]
        try:
            logic.list_cases({str(tmp_path / "none")!r})
        except InputFileError:
            pass
        else:
            raise AssertionError("no error for a missing dataset")
        ok, reason = TrainParameters(prepared="x", run="y").validate()
        assert not ok and "click Prepare first" in reason
        print("ok")
    """)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.parametrize("module", ("LesionSegInference", "LesionSegCurriculum"))
def test_module_self_tests_skip_what_needs_torch_instead_of_failing(module):
    """Static: the end-to-end test method raises unittest.SkipTest when ``self_test_readiness`` says no (as the
    index's ctest runs each test method on its own), runTest turns that skip into a message, and no test asserts
    that the dependency check succeeded."""
    source = (REPO / module / f"{module}.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    test_class = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == f"{module}Test")
    methods = {node.name: node for node in test_class.body if isinstance(node, ast.FunctionDef)}
    end_to_end = [method for name, method in methods.items() if name.startswith("test_")
                  and "self_test_readiness" in ast.unparse(method)]
    assert len(end_to_end) == 1
    body = ast.unparse(end_to_end[0])
    assert "raise unittest.SkipTest(reason)" in body and "ensure()" not in body
    assert "except unittest.SkipTest" in ast.unparse(methods["runTest"])
    assert not re.search(r"ensure\(\)\s*\n\s*self\.assertTrue", source)


# ----------------------------------------------------------------------------- Sample Data
def test_the_sample_data_case_is_made_once_and_loads_as_a_flair_volume(slicer_scene, tmp_path):
    """The entry's file is made by lesionseg.synth on first use (no download), reused afterwards, and loads through
    Slicer's own volume reader; its node name holds "flair", so the Inference panel fills the FLAIR channel."""
    import SimpleITK as sitk
    from LesionSegInferenceLib.SampleData import SAMPLE_NODE_NAME, ensure_sample, make_sample_case

    slicer, scene, _ = slicer_scene
    files = ensure_sample(tmp_path)
    stamp = files.flair.stat().st_mtime_ns
    assert ensure_sample(tmp_path) == files and files.flair.stat().st_mtime_ns == stamp  # not made again
    case = make_sample_case()
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(files.truth))) > 0,
                          sitk.GetArrayFromImage(case.lesion_mask) > 0)
    assert sitk.GetArrayFromImage(case.lesion_mask).sum() > 0
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(files.flair))
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", SAMPLE_NODE_NAME)
    assert storage.ReadData(volume)
    assert volume.GetImageData().GetDimensions() == case.channels["flair"].GetSize()
    assert "flair" in SAMPLE_NODE_NAME.lower()


def test_the_sample_data_entry_is_registered_with_the_sample_data_modules_own_arguments():
    """Static: ``SampleDataLogic.registerCustomSampleDataSource`` (Modules/Scripted/SampleData/SampleData.py, Slicer
    5.10) takes these keywords; the custom downloader is called with the source and must load the volume."""
    accepted = {"category", "sampleName", "uris", "fileNames", "nodeNames", "customDownloader", "thumbnailFileName",
                "loadFileTypes", "loadFiles", "loadFileProperties", "checksums", "loadFileType"}
    source = (INFERENCE / "LesionSegInferenceWidgets" / "SampleDataEntry.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "registerCustomSampleDataSource")
    keywords = {keyword.arg for keyword in call.keywords}
    assert keywords <= accepted and {"sampleName", "customDownloader", "category"} <= keywords
    assert "loadVolume" in source and "ensure_sample" in source and "http" not in source
    module = (INFERENCE / "LesionSegInference.py").read_text(encoding="utf-8")
    assert 'slicer.app.connect("startupCompleted()", registerSampleData)' in module


# ----------------------------------------------------------------------------- Segment a folder
class _FakeFolderRun:
    """Stands in for ``lesionseg segment BUNDLE DATASET -o OUT``: the command is read by the real CLI parser, every
    case of the dataset gets a mask on its FLAIR's grid (a box), the last case fails, per-case progress events are
    printed as the real job prints them, and the exit code is 3 (some cases failed)."""

    def __init__(self):
        self.namespaces = []

    def start(self, args, on_line, on_finished, *, env=None, cwd=None):
        import json

        import SimpleITK as sitk
        from test_slicer_logic import _Handle

        from lesionseg.cli import build_parser
        from lesionseg.data import discover
        from lesionseg.infer.outputs import output_path

        namespace = build_parser().parse_args(args[3:])
        self.namespaces.append(namespace)
        cases = discover(Path(namespace.inputs[0]), validate=False)
        namespace.out.mkdir(parents=True, exist_ok=True)
        rows = []
        for done, case in enumerate(cases, start=1):
            if done == len(cases):
                rows.append(f"{case.case_id},,,0.10,failed: the FLAIR holds NaN voxels")
            else:
                scan = sitk.ReadImage(str(case.channels["flair"]))
                mask = sitk.Image(scan.GetSize(), sitk.sitkUInt8)
                mask.CopyInformation(scan)
                mask[10:20, 12:22, 3:6] = 1
                sitk.WriteImage(mask, str(output_path(namespace.out, case.case_id, namespace.format)))
                rows.append(f"{case.case_id},{done:.4f},1,0.50,ok")
            (namespace.out / "summary.csv").write_text(
                "case_id,lesion_ml,lesion_count,seconds,status\n" + "\n".join(rows) + "\n", encoding="utf-8")
            on_line(json.dumps({"event": "progress", "stage": "segment", "done": done, "total": len(cases),
                                "message": case.case_id}))
        on_line(json.dumps({"event": "done", "stage": "segment", "cases": len(cases), "failed": 1}))
        on_finished(3)
        handle = _Handle()
        handle.done.set()
        return handle


def test_segment_a_folder_runs_the_batch_in_the_background_and_loads_a_chosen_case(slicer_scene, synthetic_dataset,
                                                                                     tmp_path):
    import SimpleITK as sitk
    from LesionSegInferenceLib import InferenceLogic
    from LesionSegInferenceLib.FolderRun import FolderRunParameters, load_case_result, read_summary
    from test_slicer_logic import _write_bundle

    from lesionseg.errors import InputFileError
    from lesionseg.mrml import mask_from_segmentation_node

    slicer, scene, _ = slicer_scene
    bundle = _write_bundle(tmp_path / "flair.lsb")
    out = tmp_path / "masks"
    parameters = FolderRunParameters(bundle_path=str(bundle), input_folder=str(synthetic_dataset),
                                     output_folder=str(out), device="cpu", threshold=0.4, skip_existing=True)
    assert parameters.validate() == (True, "")
    fake = _FakeFolderRun()
    progress, finished = [], []
    InferenceLogic(scene, launcher=fake).start_folder(parameters, on_progress=lambda p: progress.append(
        (p.fraction, p.message)), on_finished=finished.append)
    namespace = fake.namespaces[0]
    assert (namespace.inputs, namespace.out, namespace.format) == ([str(synthetic_dataset)], out, "nrrd")
    assert (namespace.threshold, namespace.skip_existing, namespace.device) == (0.4, True, "cpu")
    rows = read_summary(out)
    assert progress[:4] == [(done / 4, row.case_id) for done, row in enumerate(rows, start=1)]
    assert finished[0].state == "partial"
    assert [row.ok for row in rows] == [True, True, True, False] and rows[3].status.startswith("failed: ")
    assert rows[0].cells == (rows[0].case_id, "1.00", "1", "ok")
    volume, segmentation = load_case_result(scene, synthetic_dataset, out, rows[1].case_id, "flair")
    loaded = sitk.GetArrayFromImage(mask_from_segmentation_node(scene, segmentation, reference_volume=volume))
    assert loaded.sum() == 10 * 10 * 3 and volume.GetName() == f"{rows[1].case_id} flair"
    with pytest.raises(InputFileError, match="has no mask"):
        load_case_result(scene, synthetic_dataset, out, rows[3].case_id)
    assert not FolderRunParameters(bundle_path=str(bundle), input_folder=str(synthetic_dataset),
                                   output_folder=str(synthetic_dataset)).validate()[0]


def test_the_folder_section_is_in_the_panel_and_wired():
    """Static: the panel has the section's controls, and its handlers start the background job and end idle."""
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(INFERENCE / "Resources" / "UI" / "LesionSegInference.ui").getroot()
    classes = {widget.get("name"): widget.get("class") for widget in root.iter("widget")}
    assert {classes[name] for name in ("folderInputPathLineEdit", "folderOutputPathLineEdit")} == {"ctkPathLineEdit"}
    assert (classes["folderRunButton"], classes["folderTableWidget"], classes["folderLoadButton"]) == (
        "QPushButton", "QTableWidget", "QPushButton")
    section = (INFERENCE / "LesionSegInferenceWidgets" / "FolderSection.py").read_text(encoding="utf-8")
    assert "logic.start_folder(" in section and "load_case_result(" in section and "logic.cancel()" in section
    assert "FolderSection(self)" in (INFERENCE / "LesionSegInference.py").read_text(encoding="utf-8")
