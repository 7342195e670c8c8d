"""The Inference panel's result in the scene (issue 16, items 3 and 7), on real MRML classes (slicer-core).

Item 3: the post-processing controls act only on the result of the bundle and input they belong to, find its
segment by ID, and never replace a segment the user has edited without asking. Item 7: the panel's settings and
its result are kept in a vtkMRMLScriptedModuleNode in the format of Slicer's parameterNodeWrapper, saved with a
segmented case, and a fresh scene loaded from the files restores them; the threshold logic finds the result again.
The job is the stand-in of test_slicer_logic.py (its probability map is made of boxes whose voxel counts are known).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from test_slicer_logic import (
    HALO_A,
    LESION_A,
    LESION_B,
    FakeSegment,
    _box_mask,
    _brain,
    _parameters,
    _probability,
    _volume,
    _write_bundle,
)

pytestmark = pytest.mark.usefixtures("slicer_module_folders")


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("bundles")
    return _write_bundle(folder / "flair.lsb"), _write_bundle(folder / "other.lsb", threshold=0.6)


def _segment(result) -> np.ndarray:
    from lesionseg.mrml import mask_from_segment

    return sitk.GetArrayFromImage(mask_from_segment(result.segmentation_node, result.segment_id,
                                                    result.reference_volume))


def _draw(slicer, result, array: np.ndarray, segment_id: str | None = None) -> None:
    """What a Segment Editor stroke does in the end: the segment's voxels replaced."""
    from lesionseg.mrml import oriented_image_from_image

    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(result.labelmap)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    assert logic.SetBinaryLabelmapToSegment(oriented_image_from_image(image), result.segmentation_node,
                                            segment_id or result.segment_id, logic.MODE_REPLACE)


def _run(scene, bundle, tmp_path, **options):
    from LesionSegInferenceLib import InferenceLogic

    flair = _volume(scene, "FLAIR")
    logic = InferenceLogic(scene, launcher=FakeSegment(), work_root=tmp_path)
    parameters = _parameters(bundle, {"flair": flair}, threshold=0.5, **options)
    logic.process(parameters)
    return logic, parameters


# ----------------------------------------------------------------------------- 3. controls act on their own result
def test_choosing_another_bundle_leaves_the_previous_result_alone(slicer_scene, two_bundles, tmp_path):
    from dataclasses import replace

    _, scene, _ = slicer_scene
    flair_bundle, other_bundle = two_bundles
    logic, parameters = _run(scene, flair_bundle, tmp_path)
    before = _segment(logic.result)
    assert np.array_equal(before, _box_mask(LESION_A, LESION_B))
    # the panel now shows another bundle (its threshold, 0.6): the slider's change must not rewrite the result
    outcome = logic.postprocess(replace(parameters, bundle_path=str(other_bundle), threshold=0.6))
    assert outcome.state == "no result"
    assert np.array_equal(_segment(logic.result), before) and logic.result.threshold == 0.5
    # ... nor after another input volume is chosen
    other_volume = _volume(scene, "FLAIR 2")
    assert logic.postprocess(replace(parameters, input_volumes={"flair": other_volume}, threshold=0.25)).state == \
        "no result"
    # back on the bundle and volume that made it: the controls act on it again
    outcome = logic.postprocess(replace(parameters, threshold=0.25))
    assert outcome.state == "updated"
    assert np.array_equal(_segment(logic.result), _box_mask(LESION_A, HALO_A, LESION_B))


def test_a_segment_edited_by_hand_is_not_replaced_without_the_users_agreement(slicer_scene, two_bundles, tmp_path):
    from dataclasses import replace

    slicer, scene, _ = slicer_scene
    logic, parameters = _run(scene, two_bundles[0], tmp_path)
    edited = _box_mask(LESION_A, LESION_B)
    edited[0:2, 40:44, 30:34] = 1  # a lesion the user added
    _draw(slicer, logic.result, edited)
    for change in ({"threshold": 0.25}, {"min_lesion_mm3": 0.0}, {"fill_holes": False}):
        outcome = logic.postprocess(replace(parameters, **change))
        assert outcome.state == "edited" and "Replace the edits" in outcome.message
        assert np.array_equal(_segment(logic.result), edited)  # untouched
    outcome = logic.postprocess(replace(parameters, threshold=0.25), replace_edits=True)  # the user agreed
    assert outcome.state == "updated"
    assert np.array_equal(_segment(logic.result), _box_mask(LESION_A, HALO_A, LESION_B))


def test_the_controls_update_the_segment_they_wrote_by_id_not_another_of_the_same_name(slicer_scene, two_bundles,
                                                                                       tmp_path):
    from dataclasses import replace

    slicer, scene, _ = slicer_scene
    logic, parameters = _run(scene, two_bundles[0], tmp_path)
    segmentation = logic.result.segmentation_node.GetSegmentation()
    lesion_id = logic.result.segment_id
    segment = segmentation.GetSegment(lesion_id)
    segment.SetName("Stroke lesion (model)")  # renamed by the user ...
    twin = segmentation.AddEmptySegment("", "Stroke lesion")  # ... and a hand-drawn one of the old name added
    hand = np.zeros_like(_box_mask(LESION_A))
    hand[1:3, 5:8, 5:8] = 1
    _draw(slicer, logic.result, hand, segment_id=twin)
    assert logic.postprocess(replace(parameters, threshold=0.25)).state == "updated"
    assert logic.result.segment_id == lesion_id
    assert np.array_equal(_segment(logic.result), _box_mask(LESION_A, HALO_A, LESION_B))
    from lesionseg.mrml import mask_from_segment

    twin_mask = mask_from_segment(logic.result.segmentation_node, twin, logic.result.reference_volume)
    assert np.array_equal(sitk.GetArrayFromImage(twin_mask), hand)


# ----------------------------------------------------------------------------- 7. the parameter node
def test_the_parameter_node_holds_values_as_the_parameter_node_wrapper_stores_them(slicer_scene):
    """The wrapper's serialisers (Base/Python/slicer/parameterNodeWrapper/serializers.py): str/int/float as text,
    bool "True"/"False", a node as an empty parameter plus a node reference of the same name, a dict as a list of
    (key, value) tuples: ``name.len``, ``name.<i>.0``, ``name.<i>.1``."""
    from LesionSegInferenceLib.ParameterNode import BOOL, FLOAT, NODE, NODE_DICT, STR, Field, ParameterStore

    slicer, scene, _ = slicer_scene
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    volumes = [_volume(scene, name) for name in ("DWI", "ADC")]
    store = ParameterStore(node, {"path": Field(STR, ""), "threshold": Field(FLOAT, 0.5), "tta": Field(BOOL),
                                  "output": Field(NODE), "inputs": Field(NODE_DICT, {})})
    store.write(path="m.lsb", threshold=0.25, tta=True, output=volumes[0],
                inputs={"dwi": volumes[0], "adc": volumes[1]})
    assert [node.GetParameter(name) for name in ("path", "threshold", "tta", "output")] == ["m.lsb", "0.25", "True",
                                                                                             ""]
    assert node.GetNodeReferenceID("output") == volumes[0].GetID()
    assert [node.GetParameter(name) for name in ("inputs.len", "inputs.0.0", "inputs.1.0")] == ["2", "dwi", "adc"]
    assert node.GetNodeReferenceID("inputs.1.1") == volumes[1].GetID()
    assert store.read() == {"path": "m.lsb", "threshold": 0.25, "tta": True, "output": volumes[0],
                            "inputs": {"dwi": volumes[0], "adc": volumes[1]}}
    store.write(inputs={"flair": volumes[1]})  # a shorter dict forgets the pairs beyond it
    assert node.GetParameter("inputs.len") == "1" and not node.GetNodeReferenceID("inputs.1.1")
    with pytest.raises(KeyError, match="unknown parameter"):
        store.write(nonsense=1)


def _save_scene(scene, folder: Path) -> Path:
    """Write every storable node's data beside a .mrml file, as Slicer's Save does (each storage node's default
    format), then the scene file."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(index)
        if not node.IsA("vtkMRMLStorableNode") or not node.GetSaveWithScene():
            continue
        if node.GetStorageNode() is None and not node.AddDefaultStorageNode():
            continue
        storage = node.GetStorageNode()
        if storage is None:
            continue
        path = folder / f"{node.GetID()}.{storage.GetDefaultWriteFileExtension()}"
        storage.SetFileName(str(path))
        assert storage.WriteData(node), f"could not write {node.GetName()}"
    mrml = folder / "scene.mrml"
    scene.SetURL(str(mrml))
    scene.SetRootDirectory(str(folder))
    assert scene.Commit(str(mrml))
    return mrml


def _load_scene(slicer, mrml: Path):
    scene = slicer.vtkMRMLScene()
    slicer.vtkSlicerSegmentationsModuleLogic().SetMRMLScene(scene)
    scene.SetURL(str(mrml))
    scene.SetRootDirectory(str(mrml.parent))
    assert scene.Import()
    return scene


def test_a_saved_scene_restores_the_panel_and_reconnects_the_result(slicer_scene, two_bundles, tmp_path):
    from dataclasses import replace

    from LesionSegInferenceLib import InferenceLogic

    slicer, scene, _ = slicer_scene
    logic, parameters = _run(scene, two_bundles[0], tmp_path, device="cpu", side="left", tta=True,
                             min_lesion_mm3=12.5, fill_holes=True)
    logic.postprocess(replace(parameters, threshold=0.25))  # the user moved the slider before saving
    saved = _segment(logic.result)
    mrml = _save_scene(scene, tmp_path / "saved")

    fresh = _load_scene(slicer, mrml)
    restored_logic = InferenceLogic(fresh, launcher=FakeSegment(), work_root=tmp_path)
    restored = restored_logic.restore_state()
    assert (restored.bundle_path, restored.device, restored.side, restored.tta) == (
        str(two_bundles[0]), "cpu", "left", True)
    assert (restored.threshold, restored.min_lesion_mm3, restored.fill_holes) == (0.25, 12.5, True)
    assert list(restored.input_volumes) == ["flair"] and restored.input_volumes["flair"].GetName() == "FLAIR"
    assert restored.input_volumes["flair"].GetScene() is fresh
    result = restored_logic.result
    assert result is not None and result.segmentation_node.GetScene() is fresh
    assert result.bundle_path == str(two_bundles[0]) and result.threshold == 0.25
    assert np.array_equal(_segment(result), saved)
    assert [row["hemisphere"] for row in result.lesions] == ["left", "right"]  # from the saved table
    # the threshold logic acts on the reloaded result ...
    assert restored_logic.postprocess(replace(restored, threshold=0.7)).state == "updated"
    assert np.array_equal(_segment(result), _box_mask(LESION_A))
    # ... and still recognises a manual edit made after reloading
    edited = _box_mask(LESION_A, LESION_B)
    _draw(slicer, result, edited)
    assert restored_logic.postprocess(replace(restored, threshold=0.25)).state == "edited"
    fresh.Clear(1)


def test_a_scene_without_the_result_nodes_restores_the_panel_only(slicer_scene, two_bundles, tmp_path):
    from LesionSegInferenceLib import InferenceLogic

    slicer, scene, _ = slicer_scene
    logic, parameters = _run(scene, two_bundles[0], tmp_path)
    scene.RemoveNode(logic.result.segmentation_node)
    fresh_logic = InferenceLogic(scene)
    restored = fresh_logic.restore_state()
    assert fresh_logic.result is None and restored.bundle_path == str(two_bundles[0])


# ----------------------------------------------------------------------------- one segment per label of the bundle
def test_a_bundle_with_two_labels_gets_one_segment_each_and_the_slider_touches_the_lesions_only(slicer_scene,
                                                                                                tmp_path):
    """A multi-class bundle (labels "Stroke lesion" = 1 and "Old infarct" = 2): the job's labelmap becomes two
    segments, both bound by ID in the result and the parameter node; re-thresholding rewrites the lesion's segment
    from its probabilities and leaves the other label's segment as the job wrote it."""
    import json

    from LesionSegInferenceLib import InferenceLogic
    from LesionSegInferenceLib.Results import load_results, output_files, segment_labels
    from LesionSegInferenceLib.SceneState import restore_result

    from lesionseg.mrml import image_from_volume_node, mask_from_segment

    _, scene, _ = slicer_scene
    flair = _volume(scene, "FLAIR")
    files = output_files(tmp_path)
    values = _box_mask(LESION_A, LESION_B).astype(np.uint8)
    old = np.zeros_like(values)
    old[8:10, 40:44, 4:8] = 1  # an old infarct, outside the lesion boxes
    values[old > 0] = 2
    geometry = image_from_volume_node(flair)
    for array, path in ((values, files["labelmap"]), (_probability(), files["probability"]), (_brain(), files["brain"])):
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(geometry)
        sitk.WriteImage(image, str(path))
    files["lesions"].write_text(json.dumps([]), encoding="utf-8")
    labels = segment_labels(["Stroke lesion", "Old infarct"])
    assert [(label.name, label.value) for label in labels] == [("Stroke lesion", 1), ("Old infarct", 2)]
    result = load_results(scene, tmp_path, flair, threshold=0.5, min_lesion_mm3=10.0, fill_holes=True,
                          bundle_path="two.lsb", labels=labels)
    assert set(result.segment_ids) == {"Stroke lesion", "Old infarct"}
    node = result.segmentation_node

    def segment(name):
        return sitk.GetArrayFromImage(mask_from_segment(node, result.segment_ids[name], flair))

    assert np.array_equal(segment("Stroke lesion"), _box_mask(LESION_A, LESION_B))
    assert np.array_equal(segment("Old infarct"), old)
    logic = InferenceLogic(scene)
    logic.result = result
    logic.rethreshold(0.25)
    assert np.array_equal(segment("Stroke lesion"), _box_mask(LESION_A, HALO_A, LESION_B))
    assert np.array_equal(segment("Old infarct"), old)
    logic.save_state()
    restored = restore_result(scene, logic.parameter_node())
    assert restored.segment_ids == result.segment_ids and restored.segment_id == result.segment_ids["Stroke lesion"]
    assert [(label.name, label.value) for label in restored.labels] == [("Stroke lesion", 1), ("Old infarct", 2)]

    # a class whose value is not its position (a label table of 1 and 4): the scene keeps the value, so the restored
    # result exports and re-writes the class with it even when the bundle ("two.lsb" here) can no longer be read
    from lesionseg.labels import SegmentLabel

    logic.result.labels = [labels[0], SegmentLabel("Old infarct", 4, labels[1].color)]
    logic.save_state()
    restored = restore_result(scene, logic.parameter_node())
    assert [(label.name, label.value) for label in restored.labels] == [("Stroke lesion", 1), ("Old infarct", 4)]
    assert restored.labels[0].terminology == labels[0].terminology  # the lesion keeps its SNOMED CT entry
