"""The logic of the two Slicer modules, without Qt: real MRML nodes from slicer-core, real bundles, the real
``lesionseg`` argument parser, and jobs run by a stand-in launcher or by the real command in a subprocess.

Expected values come from the synthetic inputs built here (voxel counts of boxes times the voxel volume,
box centres carried to physical points by SimpleITK), from the CLI's own parser, or from lesionseg's
registries, never from the code under test.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("slicer_module_folders")


# ----------------------------------------------------------------------------- data made here
#: The reference grid: (x, y, z) voxels of 1.5 x 1.2 x 4 mm, oblique (30 degrees about z).
SIZE_XYZ = (40, 48, 12)
SPACING = (1.5, 1.2, 4.0)
VOXEL_ML = 1.5 * 1.2 * 4.0 / 1000.0
ANGLE = np.deg2rad(30.0)
DIRECTION = (np.cos(ANGLE), -np.sin(ANGLE), 0.0, np.sin(ANGLE), np.cos(ANGLE), 0.0, 0.0, 0.0, 1.0)
#: Boxes (z, y, x slices) of the stand-in probability map.
LESION_A = np.s_[3:7, 10:18, 6:14]      # 0.9: 4 x 8 x 8 = 256 voxels, with a hole at HOLE
HOLE = (5, 14, 10)                      # 0.1, enclosed in A
HALO_A = np.s_[3:7, 18:22, 6:14]        # 0.3, next to A: 4 x 4 x 8 = 128 voxels
LESION_B = np.s_[5:9, 28:34, 24:30]     # 0.6: 4 x 6 x 6 = 144 voxels
SPECK = (8, 40, 10)                     # 0.95, one voxel: 7.2 mm3, below the 10 mm3 minimum
OUTSIDE = (0, 0, 0)                     # 0.99, outside the brain
BRAIN = np.s_[1:11, 4:44, 4:36]


def _image(array_zyx: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array_zyx)
    image.SetSpacing(SPACING)
    image.SetOrigin((-30.0, -28.0, -20.0))
    image.SetDirection(DIRECTION)
    return image


def _probability() -> np.ndarray:
    probability = np.zeros(SIZE_XYZ[::-1], np.float32)
    probability[HALO_A] = 0.3
    probability[LESION_A] = 0.9
    probability[HOLE] = 0.1
    probability[LESION_B] = 0.6
    probability[SPECK] = 0.95
    probability[OUTSIDE] = 0.99
    return probability


def _brain() -> np.ndarray:
    brain = np.zeros(SIZE_XYZ[::-1], np.uint8)
    brain[BRAIN] = 1
    return brain


def _box_mask(*boxes) -> np.ndarray:
    mask = np.zeros(SIZE_XYZ[::-1], np.uint8)
    for box in boxes:
        mask[box] = 1
    return mask


def _box_centre_ras(box) -> tuple[float, float, float]:
    """The centre of a box of voxels as a RAS point (SimpleITK gives LPS; R = -L, A = -P)."""
    z, y, x = ((part.start + part.stop - 1) / 2 for part in box)
    lps = _image(np.zeros(SIZE_XYZ[::-1], np.uint8)).TransformContinuousIndexToPhysicalPoint((x, y, z))
    return (-lps[0], -lps[1], lps[2])


def _flair() -> sitk.Image:
    rng = np.random.default_rng(3)
    return _image(rng.integers(0, 900, SIZE_XYZ[::-1]).astype(np.int16))


def _write_bundle(path: Path, channels=("flair",), threshold: float = 0.4) -> Path:
    """A real (untrained) two-member bundle with the given input channels."""
    from lesionseg.bundle import make_manifest, save_bundle
    from lesionseg.models import build_network_from_config, network_config

    config = network_config("unet2d", len(channels), features=[4, 4, 8, 8, 16])
    manifest = make_manifest(
        network_config=config, channels=list(channels), reference_channel=channels[0],
        expected_spacing_mm=list(SPACING), preprocessing={"size": 64, "lesion_side": "left"},
        members=[{"fold": 0, "validation": {"val_dice": 0.61}}, {"fold": 1, "validation": {"val_dice": 0.71}}],
        provenance={"train_config": {"lr": 1e-4}, "curriculum": {"kind": "vanilla"}, "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 12, "slices": 300, "lesion_slices": 120,
                                      "lesion_volume_ml": {"median": 4.0, "min": 0.5, "max": 40.0}},
                    "fold_metrics": []},
        name=path.stem, description="a test model", threshold=threshold)
    network = build_network_from_config(config)
    return save_bundle(path, manifest, [network.state_dict(), network.state_dict()])


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> Path:
    """A folder: flair.lsb (FLAIR), multi.lsb (DWI + ADC), broken.lsb (not a zip), run/model.lsb (FLAIR)."""
    folder = tmp_path_factory.mktemp("bundles")
    _write_bundle(folder / "flair.lsb")
    _write_bundle(folder / "multi.lsb", channels=("dwi", "adc"), threshold=0.5)
    (folder / "broken.lsb").write_bytes(b"not a bundle")
    _write_bundle(folder / "run" / "model.lsb")
    (folder / "notes.txt").write_text("not a bundle either")
    return folder


def _volume(scene, name: str, image: sitk.Image | None = None):
    from lesionseg.mrml import volume_node_from_image

    return volume_node_from_image(scene, image if image is not None else _flair(), name)


# ----------------------------------------------------------------------------- the bundle catalog
@pytest.fixture
def no_starter(monkeypatch):
    """This installation without the shipped starter models (listed first when present; see
    test_slicer_presets.py)."""
    import lesionseg.starter
    from lesionseg.errors import BundleError

    def absent():
        raise BundleError("the starter model is not part of this installation.")

    monkeypatch.setattr(lesionseg.starter, "starter_bundle_path", absent)
    monkeypatch.setattr(lesionseg.starter, "available_starters", dict)


def test_catalog_lists_bundles_with_their_model_cards_and_remembers_the_folder(bundles, no_starter):
    from LesionSegInferenceLib import RESEARCH_NOTICE, BundleCatalog, MemorySettings

    settings = MemorySettings()
    catalog = BundleCatalog(settings)
    assert catalog.entries() == []  # no folder chosen yet
    catalog.folder = bundles
    assert settings.values == {"LesionSeg/BundleFolder": str(bundles)}
    entries = catalog.entries()
    assert [entry.path.relative_to(bundles).as_posix() for entry in entries] == [
        "broken.lsb", "flair.lsb", "multi.lsb", "run/model.lsb"]
    broken, flair, multi, run = entries
    assert not broken.ok and "broken.lsb" in broken.error and broken.label == "broken.lsb (cannot be read)"
    assert broken.error.endswith(".")
    assert flair.ok and flair.channels == ["flair"] and flair.threshold == 0.4
    assert (multi.channels, multi.reference_channel, multi.threshold) == (["dwi", "adc"], "dwi", 0.5)
    assert multi.label == "multi (dwi, adc) - multi.lsb"
    card = multi.card_text()
    assert card.endswith(RESEARCH_NOTICE) and "not for clinical decisions" in RESEARCH_NOTICE
    assert "Input channels: dwi, adc" in card and "12 cases" in card
    assert multi.card["validation"]["val_dice"]["mean"] == pytest.approx((0.61 + 0.71) / 2)
    assert multi.card["expected_spacing_mm"] == list(SPACING)
    catalog.last_bundle = run.path
    assert BundleCatalog(settings).last_bundle == str(run.path)  # a new panel finds both again
    assert BundleCatalog(settings).folder == str(bundles)
    assert catalog.entries(bundles / "absent") == [] and catalog.entries("") == []


def test_catalog_reads_a_bundle_again_when_its_file_changes(tmp_path, no_starter):
    from LesionSegInferenceLib import BundleCatalog

    catalog = BundleCatalog()
    path = _write_bundle(tmp_path / "model.lsb")
    assert catalog.entry(path).channels == ["flair"]
    assert catalog.entry(path) is catalog.entry(path)  # cached
    _write_bundle(tmp_path / "model.lsb", channels=("dwi", "adc", "flair"))
    assert catalog.entry(path).channels == ["dwi", "adc", "flair"]
    missing = catalog.entry(tmp_path / "gone.lsb")
    assert not missing.ok and "does not exist" in missing.error


# ----------------------------------------------------------------------------- devices
def test_devices_list_the_cpu_and_only_the_gpus_torch_finds(monkeypatch):
    import torch

    from LesionSegInferenceLib import available_device_choices, detect_devices

    options = {option.choice: option for option in detect_devices()}
    assert list(options) == ["auto", "cpu", "cuda", "mps"]
    assert options["cuda"].available == torch.cuda.is_available()
    assert options["cpu"].available and options["auto"].available

    class Properties:
        name = "Test GPU 9000"
        total_memory = 8 * 1024**3

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Properties())
    options = {option.choice: option for option in detect_devices()}
    assert options["cuda"].available and options["cuda"].label.endswith("Test GPU 9000, 8.0 GB")
    assert "NVIDIA" in options["auto"].label
    assert "cuda" in available_device_choices(list(options.values()))
    Properties.total_memory = 2 * 1024**3
    small = {option.choice: option for option in detect_devices()}["cuda"]
    assert "2.0 GB" in small.label and "little memory" in small.label


# ----------------------------------------------------------------------------- validation
def _parameters(bundle: Path, volumes: dict, **options):
    from LesionSegInferenceLib import InferenceParameters

    return InferenceParameters(bundle_path=str(bundle), input_volumes=volumes, **options)


def test_validation_accepts_volumes_on_one_grid(slicer_scene, bundles):
    from LesionSegInferenceLib import InferenceLogic

    _, scene, _ = slicer_scene
    logic = InferenceLogic(scene)
    dwi, adc = _volume(scene, "DWI"), _volume(scene, "ADC")
    assert logic.validate(_parameters(bundles / "multi.lsb", {"dwi": dwi, "adc": adc})) == (True, "")
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Mine")
    flair = _volume(scene, "FLAIR")
    for device in ("auto", "cpu"):
        ok = logic.validate(_parameters(bundles / "flair.lsb", {"flair": flair}, device=device, side="left",
                                        threshold=0.3, output_segmentation=segmentation))
        assert ok == (True, "")


BAD_INPUTS = {
    "no bundle": "Choose a model bundle (.lsb)",
    "missing bundle": "does not exist",
    "broken bundle": "'broken.lsb' cannot be read",
    "no volume for a channel": "Select an input volume for the 'adc' channel.",
    "labelmap": "'dwi' volume 'Lesion' is a labelmap",
    "volume without voxels": "'Empty' has no voxels",
    "colour volume": "'Photo' has 3 values per voxel",
    "one volume twice": "'DWI' is selected for both the 'dwi' and the 'adc' channels",
    "different spacing": "'adc' volume 'ADC 5 mm' is not on the grid of the 'dwi' volume 'DWI' (spacing",
    "different transforms": "under different transforms; harden the transforms",
    "output not a segmentation": "is not a segmentation",
    "threshold outside (0, 1)": "threshold 1.2 must lie strictly between 0 and 1",
    "unknown side": "side 'up' is not one of auto, left, right",
    "device not on this computer": "is not available on this computer; choose Automatic or CPU",
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_validation_refuses_bad_input_before_a_process_starts(slicer_scene, bundles, case):
    import vtk

    from LesionSegInferenceLib import InferenceLogic

    slicer, scene, _ = slicer_scene
    dwi, adc = _volume(scene, "DWI"), _volume(scene, "ADC")
    bundle, volumes, options = bundles / "multi.lsb", {"dwi": dwi, "adc": adc}, {}
    if case == "no bundle":
        bundle = " "
    elif case == "missing bundle":
        bundle = bundles / "absent.lsb"
    elif case == "broken bundle":
        bundle = bundles / "broken.lsb"
    elif case == "no volume for a channel":
        volumes["adc"] = None
    elif case == "labelmap":
        volumes["dwi"] = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "Lesion")
    elif case == "volume without voxels":
        volumes["adc"] = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Empty")
    elif case == "colour volume":
        photo = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "Photo")
        image = vtk.vtkImageData()
        image.SetDimensions(4, 5, 6)
        image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 3)
        photo.SetAndObserveImageData(image)
        volumes["adc"] = photo
    elif case == "one volume twice":
        volumes["adc"] = dwi
    elif case == "different spacing":
        other = _flair()
        other.SetSpacing((1.5, 1.2, 5.0))
        volumes["adc"] = _volume(scene, "ADC 5 mm", other)
    elif case == "different transforms":
        transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "Shift")
        adc.SetAndObserveTransformNodeID(transform.GetID())
    elif case == "output not a segmentation":
        options["output_segmentation"] = _volume(scene, "NotASegmentation")
    elif case == "threshold outside (0, 1)":
        options["threshold"] = 1.2
    elif case == "unknown side":
        options["side"] = "up"
    elif case == "device not on this computer":
        options["device"] = "cuda"
    logic = InferenceLogic(scene)
    logic.available_devices = ("auto", "cpu")
    ok, reason = logic.validate(_parameters(bundle, volumes, **options))
    assert not ok
    assert BAD_INPUTS[case] in reason
    assert reason.endswith(".") and "\n" not in reason


def test_channels_are_guessed_from_volume_names(slicer_scene, bundles):
    from LesionSegInferenceLib import BundleCatalog, channel_volume_names

    _, scene, _ = slicer_scene
    t1, adc_map, dwi_b1000 = _volume(scene, "T1"), _volume(scene, "patient ADC map"), _volume(scene, "DWI b1000")
    entry = BundleCatalog().entry(bundles / "multi.lsb")
    assert channel_volume_names(entry, [t1, adc_map, dwi_b1000]) == {"dwi": dwi_b1000, "adc": adc_map}
    # no name matches: the reference channel takes the first volume, the others stay empty for the user
    assert channel_volume_names(entry, [t1]) == {"dwi": t1, "adc": None}


# ----------------------------------------------------------------------------- a stand-in for `lesionseg segment`
class _Handle:
    def __init__(self, pid: int = 4242) -> None:
        self.pid = pid
        self.done = threading.Event()
        self.killed = False
        self.on_finished = None

    def kill_tree(self) -> None:
        self.killed = True
        self.on_finished(-9)
        self.done.set()

    def wait(self, timeout=None) -> bool:
        return self.done.wait(timeout)


class FakeSegment:
    """Parses the job's command line with the real CLI parser, checks the inputs it was given, and writes
    the outputs a real ``lesionseg segment`` writes (from :func:`_probability`), or fails, or hangs."""

    def __init__(self, *, error: str = "", hang: bool = False) -> None:
        self.error = error
        self.hang = hang
        self.namespaces = []
        self.inputs = []

    def start(self, args, on_line, on_finished, *, env=None, cwd=None):
        from lesionseg.cli import build_parser
        from lesionseg.io import read_image

        assert args[1:4] == ["-m", "lesionseg", "segment"] and args[-2:] == ["--progress", "jsonl"]
        namespace = build_parser().parse_args(args[3:])
        self.namespaces.append(namespace)
        self.inputs.append({item.partition("=")[0]: read_image(item.partition("=")[2]) for item in namespace.inputs})
        handle = _Handle()
        handle.on_finished = on_finished
        if self.hang:
            return handle
        if self.error:
            on_line(f"lesionseg segment: error: {self.error}")
            on_finished(2)
            handle.done.set()
            return handle
        reference = next(iter(self.inputs[-1].values()))
        probability = sitk.GetImageFromArray(_probability())
        probability.CopyInformation(reference)
        labelmap = sitk.GetImageFromArray(_box_mask(LESION_A, LESION_B))  # what threshold 0.5 makes of it
        labelmap.CopyInformation(reference)
        brain = sitk.GetImageFromArray(_brain())
        brain.CopyInformation(reference)
        sitk.WriteImage(probability, str(namespace.prob))
        sitk.WriteImage(labelmap, str(namespace.out))
        sitk.WriteImage(brain, str(namespace.brain_out))
        lesions = [
            {"lesion": 1, "volume_ml": 256 * VOXEL_ML, "voxels": 256, "hemisphere": "left",
             "centroid_ras_mm": list(_box_centre_ras(LESION_A)), "mean_probability": 0.9},
            {"lesion": 2, "volume_ml": 144 * VOXEL_ML, "voxels": 144, "hemisphere": "right",
             "centroid_ras_mm": list(_box_centre_ras(LESION_B)), "mean_probability": 0.6},
        ]
        namespace.lesions.write_text(json.dumps(lesions))
        on_line(json.dumps({"event": "progress", "stage": "network", "done": 1, "total": 1, "message": "case"}))
        on_line(json.dumps({"event": "warning", "message": "the voxel size is far from the training data's"}))
        on_line(json.dumps({"event": "done", "stage": "segment", "lesions": 2}))
        on_finished(0)
        handle.done.set()
        return handle


def _segment_array(scene, result, volume) -> np.ndarray:
    from lesionseg.mrml import mask_from_segmentation_node

    return sitk.GetArrayFromImage(mask_from_segmentation_node(scene, result.segmentation_node, "Stroke lesion", volume))


def test_a_run_writes_the_volumes_builds_the_command_and_loads_every_result(slicer_scene, bundles, tmp_path):
    from lesionseg.io import geometry_difference
    from lesionseg.mrml import geometry_of_volume_node, image_from_volume_node

    from LesionSegInferenceLib import InferenceLogic

    slicer, scene, _ = slicer_scene
    flair = _volume(scene, "FLAIR")
    fake = FakeSegment()
    logic = InferenceLogic(scene, launcher=fake, work_root=tmp_path)
    progress = []
    result = logic.process(_parameters(bundles / "flair.lsb", {"flair": flair}, device="cpu", side="right",
                                       tta=True, threshold=0.5, min_lesion_mm3=12.5, fill_holes=False),
                           on_progress=progress.append)

    # the command, read back by the CLI's own parser
    namespace = fake.namespaces[0]
    assert (namespace.command, namespace.bundle) == ("segment", bundles / "flair.lsb")
    assert (namespace.device, namespace.side, namespace.tta, namespace.threshold) == ("cpu", "right", True, 0.5)
    assert (namespace.min_lesion_mm3, namespace.no_fill_holes, namespace.progress) == (12.5, True, "jsonl")
    assert [item.partition("=")[0] for item in namespace.inputs] == ["flair"]
    # the volume written for the job: the node's voxels, and its grid in LPS (R and A negated by hand)
    written = fake.inputs[0]["flair"]
    assert np.array_equal(sitk.GetArrayFromImage(written), slicer.util.arrayFromVolume(flair))
    origin_ras = flair.GetOrigin()
    assert np.allclose(written.GetOrigin(), (-origin_ras[0], -origin_ras[1], origin_ras[2]))
    assert np.allclose(written.GetSpacing(), SPACING) and np.allclose(written.GetDirection(), DIRECTION)

    # the results in the scene
    assert np.array_equal(_segment_array(scene, result, flair), _box_mask(LESION_A, LESION_B))
    assert result.segmentation_node.GetName() == "FLAIR lesion"
    probability = image_from_volume_node(result.probability_node)
    assert geometry_difference(probability, geometry_of_volume_node(flair)) is None
    assert np.allclose(sitk.GetArrayFromImage(probability), _probability())
    assert result.brain_node.IsA("vtkMRMLLabelMapVolumeNode")
    assert np.array_equal(slicer.util.arrayFromVolume(result.brain_node), _brain())
    assert result.lesion_volume_ml == pytest.approx(400 * VOXEL_ML)
    assert result.summary() == f"2 lesions, {400 * VOXEL_ML:.2f} mL in all (threshold 0.50)."
    table = result.table_node.GetTable()
    assert table.GetNumberOfRows() == 2
    volumes = table.GetColumnByName("volume_ml")
    assert [volumes.GetValue(row) for row in range(2)] == pytest.approx([256 * VOXEL_ML, 144 * VOXEL_ML])
    assert result.table_node.GetColumnUnitLabel("volume_ml") == "mL"
    assert result.warnings == ["the voxel size is far from the training data's"]
    assert progress and progress[-1].fraction == 1.0
    assert list(tmp_path.iterdir()) == []  # the work folder is gone


def test_the_threshold_slider_updates_the_segment_without_a_network(slicer_scene, bundles, tmp_path):
    from LesionSegInferenceLib import InferenceLogic

    from lesionseg.errors import ParameterError

    _, scene, _ = slicer_scene
    flair = _volume(scene, "FLAIR")
    fake = FakeSegment()
    logic = InferenceLogic(scene, launcher=fake, work_root=tmp_path)
    logic.process(_parameters(bundles / "flair.lsb", {"flair": flair}, threshold=0.5))

    # 0.25: A grows by its halo (256 + 128 voxels), B stays; the speck (7.2 mm3) and the voxel outside the
    # brain are removed; hemispheres come from the job's lesions they overlap
    result = logic.rethreshold(0.25)
    assert len(fake.namespaces) == 1  # no second job
    assert np.array_equal(_segment_array(scene, result, flair), _box_mask(LESION_A, HALO_A, LESION_B))
    assert [row["volume_ml"] for row in result.lesions] == pytest.approx([384 * VOXEL_ML, 144 * VOXEL_ML])
    assert [row["hemisphere"] for row in result.lesions] == ["left", "right"]
    assert result.table_node.GetTable().GetNumberOfRows() == 2

    # 0.7: only A, its hole filled; the centroid is the box's centre
    result = logic.rethreshold(0.7)
    assert np.array_equal(_segment_array(scene, result, flair), _box_mask(LESION_A))
    assert result.lesion_volume_ml == pytest.approx(256 * VOXEL_ML)
    assert logic.jump_target(0) == pytest.approx(_box_centre_ras(LESION_A), abs=0.006)  # table: 0.01 mm
    with pytest.raises(IndexError):
        logic.jump_target(1)
    assert logic.rethreshold(0.7, fill_holes=False).lesions[0]["voxels"] == 255
    assert logic.rethreshold(0.7, min_lesion_mm3=2000.0).lesions == []  # A is 1843.2 mm3

    result = logic.rethreshold(0.97, min_lesion_mm3=10.0)
    assert result.lesions == [] and result.lesion_volume_ml == 0.0
    assert not _segment_array(scene, result, flair).any()
    assert result.segmentation_node.GetSegmentation().GetNumberOfSegments() == 1
    with pytest.raises(ParameterError, match="strictly between 0 and 1"):
        logic.rethreshold(1.5)


def test_lesions_jump_through_the_volumes_transform(slicer_scene, bundles, tmp_path):
    import vtk

    from LesionSegInferenceLib import InferenceLogic

    _, scene, _ = slicer_scene
    flair = _volume(scene, "FLAIR")
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "Shift")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 10.0)
    matrix.SetElement(1, 3, -20.0)
    matrix.SetElement(2, 3, 30.0)
    transform.SetMatrixTransformToParent(matrix)
    flair.SetAndObserveTransformNodeID(transform.GetID())
    logic = InferenceLogic(scene, launcher=FakeSegment(), work_root=tmp_path)
    result = logic.process(_parameters(bundles / "flair.lsb", {"flair": flair}))
    assert result.segmentation_node.GetTransformNodeID() == transform.GetID()
    r, a, s = _box_centre_ras(LESION_B)
    assert logic.jump_target(1) == pytest.approx((r + 10.0, a - 20.0, s + 30.0), abs=1e-6)


def test_a_second_run_reuses_its_nodes_and_keeps_other_segments(slicer_scene, bundles, tmp_path):
    from lesionseg.mrml import segment_names

    from LesionSegInferenceLib import InferenceLogic

    _, scene, _ = slicer_scene
    flair = _volume(scene, "FLAIR")
    logic = InferenceLogic(scene, launcher=FakeSegment(), work_root=tmp_path)
    first = logic.process(_parameters(bundles / "flair.lsb", {"flair": flair}))
    first.segmentation_node.GetSegmentation().AddEmptySegment("other", "Other")
    counts = {kind: scene.GetNumberOfNodesByClass(kind) for kind in
              ("vtkMRMLScalarVolumeNode", "vtkMRMLTableNode", "vtkMRMLSegmentationNode")}
    second = logic.process(_parameters(bundles / "flair.lsb", {"flair": flair},
                                       output_segmentation=first.segmentation_node))
    assert second.segmentation_node is first.segmentation_node
    assert sorted(segment_names(second.segmentation_node)) == ["Other", "Stroke lesion"]
    assert (second.probability_node, second.table_node, second.brain_node) == (
        first.probability_node, first.table_node, first.brain_node)
    assert {kind: scene.GetNumberOfNodesByClass(kind) for kind in counts} == counts


def test_a_failed_or_cancelled_job_leaves_the_scene_alone(slicer_scene, bundles, tmp_path):
    from LesionSegInferenceLib import InferenceLogic

    from lesionseg.errors import LesionSegError, ParameterError

    _, scene, _ = slicer_scene
    flair = _volume(scene, "FLAIR")
    nodes = scene.GetNumberOfNodes()
    logic = InferenceLogic(scene, launcher=FakeSegment(error="the bundle x.lsb is damaged."), work_root=tmp_path)
    with pytest.raises(LesionSegError, match=r"^The bundle x\.lsb is damaged\.$"):
        logic.process(_parameters(bundles / "flair.lsb", {"flair": flair}))
    assert scene.GetNumberOfNodes() == nodes and logic.result is None
    assert list(tmp_path.iterdir()) == []

    outcomes = []
    logic = InferenceLogic(scene, launcher=FakeSegment(hang=True), work_root=tmp_path)
    job = logic.start(_parameters(bundles / "flair.lsb", {"flair": flair}), on_finished=outcomes.append)
    assert logic.running and job.state == "running"
    with pytest.raises(ParameterError, match="already running"):
        logic.start(_parameters(bundles / "flair.lsb", {"flair": flair}))
    logic.cancel()
    assert [outcome.state for outcome in outcomes] == ["cancelled"] and not logic.running
    assert scene.GetNumberOfNodes() == nodes
    with pytest.raises(ParameterError, match="Select an input volume for the 'flair' channel"):
        logic.start(_parameters(bundles / "flair.lsb", {}))


def test_start_reports_the_outcome_with_the_results(slicer_scene, bundles, tmp_path):
    from LesionSegInferenceLib import InferenceLogic

    _, scene, _ = slicer_scene
    flair = _volume(scene, "FLAIR")
    outcomes = []
    logic = InferenceLogic(scene, launcher=FakeSegment(), work_root=tmp_path)
    logic.start(_parameters(bundles / "flair.lsb", {"flair": flair}), on_finished=outcomes.append)
    (outcome,) = outcomes
    assert (outcome.state, outcome.error, outcome.job.returncode) == ("succeeded", "", 0)
    assert outcome.result is logic.result and len(outcome.result.lesions) == 2


def test_batch_arguments_are_those_of_lesionseg_segment(tmp_path):
    from lesionseg.cli import build_parser

    from LesionSegInferenceLib import InferenceLogic

    arguments = InferenceLogic.batch_arguments("m.lsb", tmp_path, tmp_path / "out", device="cpu", tta=True,
                                               threshold=0.35, min_lesion_mm3=0.0, fill_holes=False,
                                               output_format="seg", prob_folder=tmp_path / "prob",
                                               skip_existing=True)
    namespace = build_parser().parse_args(["segment", *arguments])
    assert (namespace.bundle, namespace.inputs, namespace.out) == (Path("m.lsb"), [str(tmp_path)], tmp_path / "out")
    assert (namespace.device, namespace.tta, namespace.threshold, namespace.min_lesion_mm3) == ("cpu", True, 0.35, 0.0)
    assert (namespace.format, namespace.prob, namespace.skip_existing, namespace.no_fill_holes) == (
        "seg", tmp_path / "prob", True, True)
    defaults = build_parser().parse_args(["segment", *InferenceLogic.batch_arguments("m.lsb", "in", "out")])
    assert (defaults.threshold, defaults.min_lesion_mm3, defaults.tta, defaults.side) == (None, None, False, "auto")


# ----------------------------------------------------------------------------- dependencies
def _requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("# what lesionseg needs\nmonai>=1.4,<1.7\n\nscikit-image>=0.21  # images\nnumpy>=1.24\n"
                    "SimpleITK>=2.3\ntorch>=2.2\ntqdm>=4.60,<5\n", encoding="utf-8")
    return path


class _Versions(dict):
    def __call__(self, name):
        return self.get(name.lower())


def test_install_logic_finds_what_is_missing_and_never_touches_slicers_packages(tmp_path):
    from LesionSegInferenceLib import InstallLogic

    versions = _Versions({"monai": "1.3.0", "scikit-image": "0.22.0", "numpy": "1.26.4", "simpleitk": "2.4.0",
                          "torch": "2.5.1", "tqdm": None})
    install = InstallLogic(_requirements(tmp_path), version_of=versions)
    assert install.requirements() == ["monai>=1.4,<1.7", "scikit-image>=0.21", "tqdm>=4.60,<5"]
    assert [status.describe() for status in install.missing()] == [
        "monai 1.3.0 (needs >=1.4,<1.7)", "tqdm (not installed)"]
    assert install.constraints() == ["numpy==1.26.4", "simpleitk==2.4.0", "torch==2.5.1"]


def test_install_logic_asks_first_never_installs_in_testing_mode_and_pins_slicers_packages(tmp_path):
    from LesionSegInferenceLib import InstallLogic

    def fresh():
        return _Versions({"monai": None, "scikit-image": "0.22.0", "numpy": "1.26.4", "simpleitk": "2.4.0",
                          "torch": "2.5.1", "tqdm": "4.66.0"})

    calls = []

    def installer(arguments):
        constraints = Path(arguments[arguments.index("-c") + 1]).read_text(encoding="utf-8").split()
        calls.append((arguments[:arguments.index("-c")], constraints))
        versions["monai"] = "1.5.0"

    versions = fresh()
    ok, reason = InstallLogic(_requirements(tmp_path), installer=installer, confirm=lambda q: True, testing=True,
                              version_of=versions).ensure()
    assert not ok and "monai (not installed)" in reason and "testing mode" in reason and calls == []
    questions = []
    ok, reason = InstallLogic(_requirements(tmp_path), installer=installer, version_of=versions,
                              confirm=lambda q: questions.append(q) or False).ensure()
    assert not ok and "accept the installation" in reason and calls == []
    assert "monai (not installed)" in questions[0] and "NumPy and SimpleITK are kept" in questions[0]
    ok, message = InstallLogic(_requirements(tmp_path), installer=installer, confirm=lambda q: True,
                               version_of=versions, work_folder=tmp_path).ensure()
    assert (ok, message) == (True, "Installed monai>=1.4,<1.7.")
    assert calls == [(["monai>=1.4,<1.7"], ["numpy==1.26.4", "simpleitk==2.4.0", "torch==2.5.1"])]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["requirements.txt"]  # constraints removed

    def failing(arguments):
        import subprocess

        raise subprocess.CalledProcessError(1, ["pip", "install", *arguments])

    versions = fresh()
    ok, reason = InstallLogic(_requirements(tmp_path), installer=failing, confirm=lambda q: True,
                              version_of=versions).ensure()
    assert not ok and reason.startswith("Installing monai (not installed) failed")


def test_install_logic_gets_torch_from_the_pytorch_extension_only(tmp_path):
    from LesionSegInferenceLib import InstallLogic
    from LesionSegInferenceLib.InstallLogic import TORCH_REQUIREMENT

    versions = _Versions({"monai": "1.5.0", "scikit-image": "0.22.0", "tqdm": "4.66.0", "torch": None})
    asked = []

    def torch_installer(requirement):
        asked.append(requirement)
        versions["torch"] = "2.6.0"

    ok, reason = InstallLogic(_requirements(tmp_path), version_of=versions).ensure()
    assert not ok and "install the PyTorch extension from the Extensions Manager" in reason
    ok, message = InstallLogic(_requirements(tmp_path), version_of=versions, torch_installer=torch_installer).ensure()
    assert (ok, message, asked) == (True, "Installed PyTorch.", [TORCH_REQUIREMENT])
    versions["torch"] = "2.0.1"  # too old: reported, never replaced here
    ok, reason = InstallLogic(_requirements(tmp_path), version_of=versions, torch_installer=torch_installer).ensure()
    assert not ok and "torch 2.0.1 is older" in reason and asked == [TORCH_REQUIREMENT]


def test_the_extensions_requirements_are_met_here():
    from LesionSegInferenceLib import InstallLogic

    install = InstallLogic(REPO / "Resources" / "requirements.txt")
    assert install.requirements() and install.missing() == [] and install.torch_status().satisfied


# ----------------------------------------------------------------------------- batch script helpers
def test_batch_script_helpers_tolerate_the_separator_and_pass_exit_codes_on():
    from LesionSegInferenceLib import JobProgress, JobResult
    from LesionSegInferenceLib.BatchScript import exit_code, format_progress, script_arguments

    assert script_arguments(["s.py", "--", "--bundle", "b"]) == ["--bundle", "b"]
    assert script_arguments(["s.py", "--bundle", "b"]) == ["--bundle", "b"]
    assert [exit_code(JobResult(state, code)) for state, code in (
        ("succeeded", 0), ("failed", 2), ("partial", 3), ("failed", 1), ("cancelled", -9), ("failed", 127))] == [
        0, 2, 3, 1, 130, 1]
    line = format_progress(JobProgress(fraction=0.4, stage="segment", message="sub-02"))
    assert line == "[ 40%] segment: sub-02"
    epoch = JobProgress(fraction=0.5, message="epoch 1/2 of fold 0", epoch=0, metrics={"loss": 1.25, "lr": 0.1})
    assert format_progress(epoch, "train") == "[ 50%] train: epoch 1/2 of fold 0 (loss 1.25)"


# ----------------------------------------------------------------------------- curriculum parameters
def _parse(command: str, arguments):
    from lesionseg.cli import build_parser

    return build_parser().parse_args([command, *arguments])


def test_curriculum_choices_are_lesionsegs(tmp_path):
    from lesionseg.difficulty import METRICS
    from lesionseg.losses.registry import LOSSES
    from lesionseg.models.registry import NETWORKS, spatial_dims
    from lesionseg.train.config import CURRICULA, DEFAULT_PATCH_SIZE, DIFFICULTY_METRICS

    import LesionSegCurriculumLib as lib

    assert set(lib.NETWORKS) == set(NETWORKS) and lib.NETWORKS[0] == "unet2d"
    assert set(lib.VOLUME_NETWORKS) == {name for name in NETWORKS if spatial_dims(name) == 3}
    assert lib.DEFAULT_PATCH_SIZE == DEFAULT_PATCH_SIZE
    assert set(lib.LOSSES) == set(LOSSES) and lib.LOSSES[0] == "ce_dice"
    assert lib.CURRICULA == CURRICULA and set(lib.TRAIN_METRICS) == set(DIFFICULTY_METRICS)
    assert set(lib.DATA_METRICS) == set(METRICS)
    assert {name: lib.Parameters.METRIC_COLUMNS[name] for name in METRICS} == METRICS


def _prepared(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "slices.csv").write_text("case_id,patient_id,slice_index,flipped,lesion_pixels,lesion_area_mm2,has_lesion\n")
    return folder


def test_curriculum_arguments_are_those_of_the_cli(tmp_path):
    from LesionSegCurriculumLib import DifficultyParameters, PrepareParameters, TrainParameters

    (tmp_path / "data").mkdir()
    prepare = PrepareParameters(str(tmp_path / "data"), str(tmp_path / "prep"), size=96, negatives=0.25,
                                channels=["dwi", "adc"], workers=2)
    assert prepare.validate() == (True, "")
    namespace = _parse("prepare", prepare.arguments())
    assert (namespace.dataset, namespace.out, namespace.size, namespace.negatives) == (
        tmp_path / "data", tmp_path / "prep", 96, 0.25)
    assert (namespace.channels, namespace.workers, namespace.preset, namespace.context_slices) == (
        "dwi,adc", 2, "auto", None)

    prepared = _prepared(tmp_path / "prep")
    difficulty = DifficultyParameters(str(prepared), metrics=["area"], groups=4)
    namespace = _parse("difficulty", difficulty.arguments())
    assert (namespace.metric, str(namespace.out), namespace.groups) == ("area", str(prepared / "difficulty.csv"), 4)

    train = TrainParameters(str(prepared), str(tmp_path / "run"), network="res_unet", network_kwargs={"dropout": 0.1},
                            loss="lovasz", curriculum="anti", metrics=["area", "contrast"], groups=3, minutes=0,
                            epochs=30, batch_size=6, folds=4, device="cpu", patch_size="32,64,64",
                            extra=["--threads", "2"])
    assert train.validate() == (True, "")
    namespace = _parse("train", train.arguments())
    assert (namespace.network, json.loads(namespace.network_kwargs), namespace.loss) == (
        "res_unet", {"dropout": 0.1}, "lovasz")
    assert (namespace.curriculum, namespace.metric, namespace.groups, namespace.epochs) == ("anti", "area,contrast", 3, 30)
    assert (namespace.minutes, namespace.preset) == (None, "auto")
    assert (namespace.batch_size, namespace.folds, namespace.all_data, namespace.device) == (6, 4, False, "cpu")
    assert (namespace.num_threads, namespace.resume) == (2, False)
    assert namespace.patch_size is None  # a 2D network: no patch size, whatever the field holds
    train.all_data = True
    assert _parse("train", train.arguments()).all_data is True
    volume = TrainParameters(str(prepared), str(tmp_path / "run3d"), network="unet3d", metrics=[],
                             patch_size=" 32, 64,48")  # the curriculum left to the preset: none for a 3D network
    assert volume.validate() == (True, "")
    assert _parse("train", volume.arguments()).patch_size == "32,64,48"
    volume.patch_size = ""
    assert _parse("train", volume.arguments()).patch_size == "16,64,64"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "train_config.json").write_text("{}")
    train.resume = True
    namespace = _parse("train", train.arguments())
    assert (namespace.resume, namespace.device, namespace.network, namespace.epochs) == (True, "cpu", None, None)
    assert (namespace.minutes, namespace.from_scratch, namespace.preset) == (None, False, "auto")  # as saved


BAD_SETTINGS = {
    "prepare: no dataset": ("prepare", {"dataset": ""}, "Choose a dataset folder"),
    "prepare: missing dataset": ("prepare", {"dataset": "absent"}, "does not exist"),
    "prepare: no output": ("prepare", {"output": ""}, "Choose the folder where the prepared slices"),
    "prepare: output is the dataset": ("prepare", {"output": "data"}, "must not be the dataset folder"),
    "prepare: tiny slices": ("prepare", {"size": 8}, "between 16 and 1024"),
    "prepare: unknown preset": ("prepare", {"preset": "fast"}, "preset 'fast' is not one of auto, cpu, gpu, paper"),
    "prepare: negatives above 1": ("prepare", {"negatives": 1.5}, "must be between 0 and 1"),
    "prepare: too much context": ("prepare", {"context": 5}, "must be a whole number from 0 to 4"),
    "difficulty: not prepared": ("difficulty", {"prepared": "data"}, "click Prepare first"),
    "difficulty: no metric": ("difficulty", {"metrics": []}, "Tick at least one difficulty metric"),
    "train: no run folder": ("train", {"run": ""}, "Choose a run folder"),
    "train: run exists": ("train", {"run": "old"}, "already holds a training run; tick Resume"),
    "train: nothing to resume": ("train", {"resume": True}, "holds no run to resume"),
    "train: unknown network": ("train", {"network": "vit"}, "network 'vit' is not one of"),
    "train: no metric": ("train", {"metrics": []}, "Choose the difficulty metric"),
    "train: zero epochs": ("train", {"minutes": 0, "epochs": 0}, "epochs 0 must be 1 or more"),
    "train: more groups than epochs": ("train", {"minutes": 0, "groups": 8, "epochs": 5}, "8 groups cannot each enter"),
    "train: one fold": ("train", {"folds": 1}, "needs 2 folds or more"),
    "train: 3D with a curriculum": ("train", {"network": "unet3d", "curriculum": "vanilla"},
                                    "trains on patches without a curriculum"),
    "train: patch not of 16s": ("train", {"network": "unet2plus1d", "curriculum": "none", "patch_size": "16,60,64"},
                                "must be three whole numbers Z,Y,X"),
    "train: patch of two numbers": ("train", {"network": "unet3d", "curriculum": "none", "patch_size": "32,64"},
                                    "must be three whole numbers Z,Y,X"),
    "train: one-voxel patch": ("train", {"network": "unet3d", "curriculum": "none", "patch_size": "16,16,16"},
                               "not all 16"),
    "train: missing table": ("train", {"difficulty_csv": "absent.csv"}, "does not exist; compute it first"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_curriculum_settings_are_refused_with_what_to_do(tmp_path, case, monkeypatch):
    from LesionSegCurriculumLib import DifficultyParameters, PrepareParameters, TrainParameters

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    _prepared(tmp_path / "prep")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "train_config.json").write_text("{}")
    kind, changes, expected = BAD_SETTINGS[case]
    base = {"prepare": PrepareParameters("data", "prep2"), "difficulty": DifficultyParameters("prep"),
            "train": TrainParameters("prep", "new")}[kind]
    assert base.validate() == (True, "")
    for key, value in changes.items():
        setattr(base, key, value)
    ok, reason = base.validate()
    assert not ok and expected in reason and reason.endswith(".")


# ----------------------------------------------------------------------------- curriculum views
def test_training_curves_from_events_and_fold_logs_become_charts(slicer_scene, tmp_path):
    from LesionSegCurriculumLib import TrainingCurves
    from LesionSegInferenceLib import JobProgress

    _, scene, _ = slicer_scene
    run = tmp_path / "run"
    for fold, losses in ((0, [1.0, 0.8]), (1, [1.1, 0.9])):
        (run / f"fold_{fold}").mkdir(parents=True)
        records = [{"epoch": epoch, "loss": loss, "val_dice": None if epoch == 0 else 0.3 + fold / 10}
                   for epoch, loss in enumerate(losses)]
        (run / f"fold_{fold}" / "log.json").write_text(json.dumps(records))
    curves = TrainingCurves()
    assert curves.read_run(run) == 2
    assert curves.curves("loss") == {"fold 0": ([1, 2], [1.0, 0.8]), "fold 1": ([1, 2], [1.1, 0.9])}
    assert curves.curves("val_dice") == {"fold 0": ([2], [0.3]), "fold 1": ([2], [0.4])}
    # a live event: epoch 2 of fold 1 (counted from 0), then the same event again (no change)
    event = JobProgress(epoch=2, epochs=3, fold=1, metrics={"loss": 0.7, "val_dice": float("nan"), "lr": 0.1})
    assert curves.add_progress(event) and not curves.add_progress(event)
    assert not curves.add_progress(JobProgress(message="no epoch yet"))
    assert curves.curves("loss")["fold 1"] == ([1, 2, 3], [1.1, 0.9, 0.7])

    charts = curves.charts(scene)
    assert set(charts) == {"loss", "val_dice"}
    assert charts["loss"].GetNumberOfPlotSeriesNodes() == 2
    nodes = scene.GetNumberOfNodes()
    assert curves.charts(scene, previous=charts)["loss"] is charts["loss"]
    assert scene.GetNumberOfNodes() == nodes  # redrawing replaces the series, it does not pile them up
    series = charts["loss"].GetNthPlotSeriesNode(1)
    table = series.GetTableNode().GetTable()
    assert [table.GetColumnByName(series.GetYColumnName()).GetValue(i) for i in range(3)] == [1.1, 0.9, 0.7]


def _difficulty_csv(path: Path) -> list[float]:
    areas = [10.0, 200.0, 35.0, 80.0, 150.0, 5.0, 60.0, 120.0, 95.0, 20.0, 45.0, 175.0]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", "slice_index", "area_mm2", "contrast_fisher", "contrast_valid"])
        for index, area in enumerate(areas):
            writer.writerow([f"case{index % 3}", index, area, area / 100.0, int(index % 4 != 0)])
    return areas


def test_difficulty_table_and_histograms_by_curriculum_group(slicer_scene, tmp_path):
    from LesionSegCurriculumLib import CurriculumLogic

    _, scene, _ = slicer_scene
    areas = _difficulty_csv(tmp_path / "difficulty.csv")
    logic = CurriculumLogic(scene=scene)
    display = logic.show_difficulty(tmp_path / "difficulty.csv", groups=3)
    assert display.rows == 12 and set(display.charts) == {"area_mm2", "contrast_fisher"}
    table = display.table_node.GetTable()
    assert [table.GetColumnByName("area_mm2").GetValue(i) for i in range(12)] == areas
    assert [table.GetColumnByName("contrast_valid").GetValue(i) for i in range(12)] == [
        float(i % 4 != 0) for i in range(12)]
    assert display.group_sizes["area_mm2"] == [4, 4, 4]
    chart = display.charts["area_mm2"]
    assert chart.GetNumberOfPlotSeriesNodes() == 3
    histogram = chart.GetNthPlotSeriesNode(0).GetTableNode().GetTable()
    counts = {name: sum(histogram.GetColumnByName(name).GetValue(i) for i in range(histogram.GetNumberOfRows()))
              for name in ("group 1 (easiest)", "group 2", "group 3 (hardest)")}
    assert counts == {"group 1 (easiest)": 4, "group 2": 4, "group 3 (hardest)": 4}
    # a large lesion is easy: the four largest areas fill the easiest group's bins
    centres = [histogram.GetColumnByName("bin centre").GetValue(i) for i in range(histogram.GetNumberOfRows())]
    easiest = [c for i, c in enumerate(centres) if histogram.GetColumnByName("group 1 (easiest)").GetValue(i)]
    assert min(easiest) > sorted(areas)[-5]
    nodes = scene.GetNumberOfNodes()
    again = logic.show_difficulty(tmp_path / "difficulty.csv", groups=2)
    assert again.group_sizes["area_mm2"] == [6, 6] and again.table_node is display.table_node
    assert scene.GetNumberOfNodes() == nodes - 2  # one bar series fewer per chart, nothing left behind


def test_training_reuses_a_measured_difficulty_table_only_when_it_has_the_metrics(tmp_path):
    from LesionSegCurriculumLib import CurriculumLogic

    _difficulty_csv(tmp_path / "difficulty.csv")
    table = str(tmp_path / "difficulty.csv")
    assert CurriculumLogic.difficulty_table_for(tmp_path, ["area", "contrast"]) == table
    assert CurriculumLogic.difficulty_table_for(tmp_path, ["gradient"]) == ""
    assert CurriculumLogic.difficulty_table_for(tmp_path / "elsewhere", ["area"]) == ""


class _FinishAt:
    """A launcher whose job ends at once with a code (and optional output lines)."""

    def __init__(self, code: int = 0, lines=()) -> None:
        self.code, self.lines, self.calls = code, list(lines), []

    def start(self, args, on_line, on_finished, *, env=None, cwd=None):
        self.calls.append(args)
        for line in self.lines:
            on_line(line)
        on_finished(self.code)
        handle = _Handle()
        handle.done.set()
        return handle


def test_curriculum_jobs_run_the_cli_and_a_resumed_run_starts_with_its_history(slicer_scene, tmp_path):
    from LesionSegCurriculumLib import CurriculumLogic, TrainParameters

    from lesionseg.errors import ParameterError

    _, scene, _ = slicer_scene
    prepared = _prepared(tmp_path / "prep")
    run = tmp_path / "run"
    (run / "fold_0").mkdir(parents=True)
    (run / "train_config.json").write_text("{}")
    (run / "fold_0" / "log.json").write_text(json.dumps([{"epoch": 0, "loss": 0.9}, {"epoch": 1, "loss": 0.8}]))
    epoch = json.dumps({"event": "epoch", "fold": 0, "epoch": 2, "epochs": 4, "loss": 0.7})
    launcher = _FinishAt(0, [epoch])
    logic = CurriculumLogic(scene=scene, launcher=launcher)
    finished = []
    job = logic.train(TrainParameters(str(prepared), str(run), resume=True, device="cpu"),
                      on_finished=finished.append, wait=True)
    assert launcher.calls[0][3:7] == ["train", str(prepared), str(run), "--resume"]
    assert job.result.ok and finished == [job.result]
    assert logic.curves.curves("loss") == {"fold 0": ([1, 2, 3], [0.9, 0.8, 0.7])}
    assert set(logic.update_charts()) == {"loss"} and not logic.charts_stale
    with pytest.raises(ParameterError, match="click Prepare first"):
        logic.train(TrainParameters(str(tmp_path), str(run), resume=True))
    assert len(launcher.calls) == 1  # refused before a process starts



def test_a_partial_prepare_is_reported_with_its_failed_cases_not_as_an_error(slicer_scene, tmp_path):
    """Exit 3 (some cases failed) is an outcome: the sentence says how many were prepared and failed,
    the details name each failed case with its reason; exit 0 says only what was prepared."""
    from LesionSegCurriculumLib import CurriculumLogic, PrepareParameters

    _, scene, _ = slicer_scene
    (tmp_path / "data").mkdir()
    parameters = PrepareParameters(str(tmp_path / "data"), str(tmp_path / "prep"))
    failures = [{"case_id": "sub-02", "reason": "case sub-02: the file is truncated."},
                {"case_id": "sub-03", "reason": "case sub-03: no brain was found."}]
    done = {"event": "done", "stage": "prepare", "cases": 2, "slices": 40, "lesion_slices": 9, "failed": 2,
            "failures": failures}
    outcomes = {}
    for code, summary in ((3, done), (0, {**done, "failed": 0, "failures": []})):
        logic = CurriculumLogic(scene=scene, launcher=_FinishAt(code, [json.dumps(summary)]))
        job = logic.prepare(parameters, wait=True)
        outcomes[code] = (job.result.state, *logic.prepare_outcome(job.result))
    state, sentence, details = outcomes[3]
    assert state == "partial"
    assert sentence.startswith("Prepared 2 cases (40 slices, 9 with lesion); 2 cases could not be prepared")
    assert details.splitlines() == ["sub-02: case sub-02: the file is truncated.",
                                    "sub-03: case sub-03: no brain was found."]
    assert outcomes[0] == ("succeeded", "Prepared 2 cases (40 slices, 9 with lesion).", "")

# ----------------------------------------------------------------------------- the self-tests, end to end
@pytest.mark.slow
def test_inference_self_test_trains_a_tiny_bundle_and_segments_a_synthetic_volume(slicer_scene, tmp_path):
    """What LesionSegInferenceTest runs inside Slicer: real prepare, train and segment jobs."""
    from lesionseg.io import geometry_difference
    from lesionseg.mrml import geometry_of_volume_node

    from LesionSegInferenceLib.SelfTest import run_inference_self_test

    _, scene, _ = slicer_scene
    result, problems = run_inference_self_test(scene, tmp_path)
    assert problems == []
    volume = result.reference_volume
    assert volume.GetName() == "LesionSeg self-test FLAIR"
    assert (tmp_path / "bundle" / "run" / "model.lsb").is_file()
    reference = result.segmentation_node.GetSegmentation().GetConversionParameter("Reference image geometry")
    assert reference  # set from the volume
    assert geometry_difference(result.probabilities, geometry_of_volume_node(volume)) is None
    brain = sitk.GetArrayViewFromImage(result.brain)
    assert 0 <= result.lesion_volume_ml <= brain.sum() * np.prod(volume.GetSpacing()) / 1000.0
    assert [entry.name for entry in tmp_path.iterdir() if entry.name.startswith("lesionseg-segment")] == []


@pytest.mark.slow
def test_curriculum_self_test_prepares_measures_and_trains_a_synthetic_cohort(slicer_scene, tmp_path):
    """What LesionSegCurriculumTest runs inside Slicer: real prepare, difficulty and train jobs."""
    from LesionSegCurriculumLib.SelfTest import check_outcome, run_curriculum_self_test

    _, scene, _ = slicer_scene
    outcome = run_curriculum_self_test(scene, tmp_path)
    assert check_outcome(outcome) == []
    with (tmp_path / "prepared" / "slices.csv").open(encoding="utf-8") as handle:
        lesion_slices = sum(int(row["has_lesion"]) for row in csv.DictReader(handle))
    assert outcome.difficulty.rows == lesion_slices > 0
    assert outcome.charts["loss"].GetNumberOfPlotSeriesNodes() == 2  # one curve per fold
    assert outcome.bundle == tmp_path / "run" / "model.lsb"
    assert [path.name for path in sorted((tmp_path / "run").glob("fold_*/log.json"))] == ["log.json", "log.json"]
