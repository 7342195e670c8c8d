"""Several lesion classes (ischaemic core and penumbra) from the dataset's label table to Slicer's segments.

Sources of truth besides the code: the synthetic perfusion cohort's own masks and label table (tissue fate drawn
first), MONAI's Dice, Slicer's segmentation storage node (slicer-core) reading the ``.seg.nrrd`` we write, and
hand-computed cases.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import TINY_NETWORK, run_cli

MAPS = ("tmax", "cbf", "cbv", "mtt")
#: small perfusion phantoms (the maps' grid), quick to prepare
SMALL = {"size_xyz": (112, 128, 24), "spacing_mm": (1.75, 1.75, 5.0)}


@pytest.fixture(scope="module")
def perfusion(tmp_path_factory) -> tuple[Path, Path]:
    """Three synthetic perfusion cases (mask 1 core, 2 penumbra, label table beside it) and their preparation."""
    from lesionseg.preprocess import PrepareConfig, prepare_dataset
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("classes")
    write_cohort(root / "data", 3, modalities=MAPS, seed=5, **SMALL)
    prepare_dataset(root / "data", root / "prepared", PrepareConfig(size=64, negatives=1.0, context_slices=1))
    return root / "data", root / "prepared"


@pytest.fixture(scope="module")
def two_class_run(perfusion, tmp_path_factory) -> Path:
    """A tiny two-class model: 2 folds of 2 epochs at 64 x 64, validated every epoch (quality is not the point)."""
    from lesionseg.train import TrainConfig, train_run

    config = TrainConfig(**TINY_NETWORK, epochs=2, folds=2, batch_size=8, lr=2e-3, optimiser="adam", device="cpu",
                         num_threads=1, curriculum="none", val_every=1, augmentation={"enabled": False},
                         starter_if_fits=False)
    run = tmp_path_factory.mktemp("two_class") / "run"
    train_run(perfusion[1], run, config)
    return run


def _class_volumes_ml(labels: np.ndarray, voxel_mm3: float, count: int) -> list[float]:
    return [float(np.count_nonzero(labels == k)) * voxel_mm3 / 1000.0 for k in range(1, count + 1)]


def test_prepare_takes_the_classes_from_the_label_table_and_each_keeps_its_volume(perfusion):
    from lesionseg.data import discover
    from lesionseg.preprocess import PreparedDataset

    data, prepared_root = perfusion
    prepared = PreparedDataset(prepared_root)
    classes = prepared.config.classes
    assert [entry["name"] for entry in classes] == ["core", "penumbra"]
    assert [entry["value"] for entry in classes] == [1, 2]
    assert "SCT^52674009^Ischemia" in classes[1]["terminology"]  # the penumbra is ischaemic, not yet infarcted
    assert "SCT^55641003^Infarct" in classes[0]["terminology"]
    for case in discover(data):
        mask = sitk.ReadImage(str(case.mask))
        native = _class_volumes_ml(sitk.GetArrayFromImage(mask), float(np.prod(mask.GetSpacing())), 2)
        arrays = prepared.arrays(case.case_id)
        assert set(np.unique(arrays.masks)) <= {0, 1, 2}
        grid = prepared.record(case.case_id).grid
        voxel_mm3 = grid.pixel_mm ** 2 * grid.geometry.spacing[2]
        stored = _class_volumes_ml(arrays.masks, voxel_mm3, 2)
        # the core is written last, so it keeps its volume to within one prepared voxel per lesion
        # (mask_resampling's guarantee); the penumbra loses at most the voxels the core claims at their border
        counter = sitk.ConnectedComponentImageFilter()
        counter.FullyConnectedOn()
        counter.Execute(mask == 1)
        tolerance_ml = (counter.GetObjectCount() + 1) * voxel_mm3 / 1000.0
        assert abs(stored[0] - native[0]) <= tolerance_ml, (case.case_id, stored, native)
        assert stored[1] <= native[1] + 2 * voxel_mm3 / 1000.0
        assert stored[1] >= 0.6 * native[1], (case.case_id, stored, native)


def test_class_labels_take_the_most_probable_lesion_class_where_any_lesion_is_likely():
    from lesionseg.train.validate import class_labels

    softmax = np.array([[[0.9, 0.2, 0.3, 0.1]],   # background
                        [[0.05, 0.5, 0.3, 0.3]],  # core
                        [[0.05, 0.3, 0.4, 0.6]]], np.float32)[None]  # penumbra; (1, 3, 1, 4)
    lesion, labels = class_labels(softmax, threshold=0.5)
    np.testing.assert_allclose(lesion[0, 0], [0.1, 0.8, 0.7, 0.9], atol=1e-6)
    assert labels[0, 0].tolist() == [0, 1, 2, 2]


def test_validation_scores_each_class_as_monai_does(perfusion):
    """measure() with a class map: per-class Dice on the prepared stacks equals MONAI's Dice of the same masks."""
    import torch
    from monai.metrics import compute_dice
    from scipy import ndimage

    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train.slices import SliceArrays
    from lesionseg.train.validate import measure

    prepared = PreparedDataset(perfusion[1])
    case_id = prepared.case_ids[0]
    arrays = prepared.arrays(case_id)
    rows = prepared.case_slices(case_id)
    sliced = SliceArrays(arrays.images, arrays.masks, arrays.brains, rows)
    predicted = arrays.masks.copy()  # the penumbra eroded, a band of it called core
    penumbra = predicted == 2
    eroded = ndimage.binary_erosion(penumbra, iterations=1)
    predicted[penumbra & ~eroded] = 1
    result = measure((predicted > 0).astype(np.float32), sliced, prepared, labels=predicted, full=False)
    row = result.cases[0]
    for value, name in ((1, "core"), (2, "penumbra")):
        expected = compute_dice(torch.as_tensor(predicted == value)[None, None].float(),
                                torch.as_tensor(arrays.masks == value)[None, None].float()).item()
        assert row[f"dice_{name}"] == pytest.approx(expected, abs=1e-6)
    assert row["dice"] == pytest.approx((row["dice_core"] + row["dice_penumbra"]) / 2)
    assert row["dice_lesion"] == pytest.approx(1.0)  # what is lesion did not change
    assert "val_dice_core" in result.summary()


def test_a_two_class_model_lists_its_classes_and_segments_one_value_per_class(perfusion, two_class_run, tmp_path):
    from lesionseg.bundle import load_bundle
    from lesionseg.data import discover
    from lesionseg.infer import Predictor

    manifest = load_bundle(two_class_run / "model.lsb").manifest
    assert manifest["network"]["out_channels"] == 3
    assert [(label["name"], label["value"]) for label in manifest["labels"]] == [
        ("background", 0), ("core", 1), ("penumbra", 2)]
    log = json.loads((two_class_run / "fold_0" / "log.json").read_text())
    assert {"val_dice_core", "val_dice_penumbra"} <= set(log[-1])
    predictor = Predictor(two_class_run / "model.lsb", device="cpu", backend="torch")
    case = discover(perfusion[0])[0]
    prediction = predictor.predict({name: case.channels[name] for name in predictor.channels}, case_id=case.case_id)
    values = sitk.GetArrayFromImage(prediction.labelmap)
    assert set(np.unique(values)) <= {0, 1, 2}
    voxel_ml = float(np.prod(prediction.labelmap.GetSpacing())) / 1000.0
    assert prediction.class_volumes_ml["core"] == pytest.approx(np.count_nonzero(values == 1) * voxel_ml)
    assert sum(prediction.class_volumes_ml.values()) == pytest.approx(prediction.lesion_volume_ml, rel=1e-6, abs=1e-9)


def test_test_time_augmentation_reaches_the_class_shares(two_class_run):
    """With TTA the shares average a slice and its anterior-posterior flip, so flipping the input flips the shares
    exactly; without TTA a network's shares have no such symmetry (and the two differ)."""
    from lesionseg.infer import Predictor

    predictor = Predictor(two_class_run / "model.lsb", device="cpu", backend="torch")
    planes = int(predictor.bundle.manifest["network"]["in_channels"])
    inputs = np.random.default_rng(3).normal(size=(4, planes, 64, 64)).astype(np.float32)
    flipped = np.ascontiguousarray(inputs[..., ::-1, :])
    plain_shares = predictor.class_shares(inputs, both_sides=False)
    assert not np.allclose(predictor.class_shares(flipped, both_sides=False)[..., ::-1, :], plain_shares, atol=1e-4)
    predictor.tta = True
    shares = predictor.class_shares(inputs, both_sides=True)
    np.testing.assert_allclose(predictor.class_shares(flipped, both_sides=True)[..., ::-1, :], shares, atol=1e-5)
    assert not np.allclose(shares, plain_shares, atol=1e-4)


def test_two_class_outputs_open_in_slicer_as_two_named_coloured_segments(perfusion, two_class_run, tmp_path,
                                                                          slicer_scene):
    slicer, scene, _ = slicer_scene
    import vtk

    from lesionseg.data import discover

    case = discover(perfusion[0])[1]
    out = tmp_path / "case.seg.nrrd"
    inputs = [f"{name}={case.channels[name]}" for name in MAPS]
    result = run_cli("segment", two_class_run / "model.lsb", *inputs, "-o", out, "--backend", "torch",
                     "--progress", "none")
    assert result.returncode == 0, result.stderr
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(out))
    assert storage.ReadData(node)
    segmentation = node.GetSegmentation()
    segments = [segmentation.GetNthSegment(i) for i in range(segmentation.GetNumberOfSegments())]
    assert [s.GetName() for s in segments] == ["core", "penumbra"]
    np.testing.assert_allclose(segments[0].GetColor(), (0.851, 0.2, 0.18), atol=0.01)  # red
    np.testing.assert_allclose(segments[1].GetColor(), (0.949, 0.851, 0.2), atol=0.01)  # yellow
    tag = vtk.reference("")
    assert segments[1].GetTag("TerminologyEntry", tag) and "52674009" in str(tag)


def test_evaluate_scores_each_class_of_a_segmented_dataset(perfusion, two_class_run, tmp_path):
    data = perfusion[0]
    out = tmp_path / "masks"
    result = run_cli("segment", two_class_run / "model.lsb", data, "-o", out, "--backend", "torch", "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert (out / "sub-strokecase0001.tsv").is_file()  # the label table beside each NIfTI mask
    assert "core" in (out / "segment.log").read_text()
    from lesionseg.report import evaluate_predictions

    evaluation = evaluate_predictions(out, data)
    assert evaluation.classes == {1: "core", 2: "penumbra"}
    assert all("core_dice" in row and "penumbra_dice" in row for row in evaluation.rows)


# ---- bad input ---------------------------------------------------------------------------------------------


def test_a_multi_label_mask_without_its_table_is_refused_with_a_sentence(perfusion, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(perfusion[0], data)
    for table in data.rglob("*_msk.tsv"):
        table.unlink()
    result = run_cli("prepare", data, tmp_path / "prepared", "--progress", "none")
    assert result.returncode == 2
    assert "multi-label mask" in result.stderr and "Traceback" not in result.stderr


def test_a_mask_label_its_table_does_not_list_is_refused(perfusion, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(perfusion[0], data)
    mask_path = next(data.rglob("sub-strokecase0002_ses-0001_msk.nii.gz"))
    mask = sitk.ReadImage(str(mask_path))
    array = sitk.GetArrayFromImage(mask)
    array[array == 2] = 7
    changed = sitk.GetImageFromArray(array)
    changed.CopyInformation(mask)
    sitk.WriteImage(changed, str(mask_path))
    result = run_cli("prepare", data, tmp_path / "prepared", "--progress", "none")
    assert result.returncode == 3  # the other cases are prepared; this one is listed with its reason
    assert "sub-strokecase0002" in result.stdout and "label(s) 7" in result.stdout
    assert "does not list (the table lists 1, 2)" in result.stdout


def test_binary_only_training_options_are_refused_for_two_classes(perfusion, tmp_path):
    result = run_cli("train", perfusion[1], tmp_path / "run", "--loss", "dice_bce", "--epochs", "1",
                     "--from-scratch", "--progress", "none")
    assert result.returncode == 2
    assert "2 lesion classes (core, penumbra)" in result.stderr and "dice_bce" in result.stderr


def test_a_bundle_of_another_class_count_does_not_fit_the_dataset(perfusion, two_class_run):
    from lesionseg.bundle import load_bundle
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train import TrainConfig
    from lesionseg.train.finetune import fit_problem

    manifest = dict(load_bundle(two_class_run / "model.lsb").manifest)
    config = TrainConfig(**TINY_NETWORK)  # as the run was trained (no neighbouring slices)
    assert fit_problem(manifest, config, PreparedDataset(perfusion[1])) is None
    binary = {**manifest, "network": {**manifest["network"], "out_channels": 2},
              "labels": [{"name": "background", "value": 0}, {"name": "Stroke lesion", "value": 1}]}
    problem = fit_problem(binary, config, PreparedDataset(perfusion[1]))
    assert problem is not None and "1 class(es) (Stroke lesion)" in problem and "2 (core, penumbra)" in problem


def test_a_dataset_mixing_label_tables_is_refused(perfusion, tmp_path):
    from lesionseg.data import discover
    from lesionseg.errors import DatasetError

    data = tmp_path / "data"
    shutil.copytree(perfusion[0], data)
    table = next(data.rglob("sub-strokecase0003_ses-0001_msk.tsv"))
    table.write_text(table.read_text().replace("penumbra", "oligaemia"))
    with pytest.raises(DatasetError, match="different label tables"):
        discover(data)


@pytest.mark.usefixtures("slicer_module_folders")
def test_the_inference_panel_gets_one_segment_per_class_with_the_bundles_colours(two_class_run):
    """What the Inference panel's logic hands to its results loader: the bundle's own classes, values and colours."""
    from LesionSegInferenceLib import BundleCatalog, MemorySettings

    entry = BundleCatalog(MemorySettings()).entry(two_class_run / "model.lsb")
    assert entry.ok, entry.error
    segments = entry.segment_labels
    assert [(s.name, s.value) for s in segments] == [("core", 1), ("penumbra", 2)]
    np.testing.assert_allclose(segments[0].color, (0.851, 0.2, 0.18), atol=0.01)
    np.testing.assert_allclose(segments[1].color, (0.949, 0.851, 0.2), atol=0.01)
    assert "52674009" in segments[1].terminology


def test_the_run_report_shows_each_class_and_summarises_it_over_the_folds(two_class_run, tmp_path):
    import csv
    import statistics

    from lesionseg.report import write_run_report

    page = Path(write_run_report(two_class_run, tmp_path / "report")).read_text(encoding="utf-8")
    assert "<th>dice_core</th>" in page and "<th>dice_penumbra</th>" in page  # the cases table
    folds = list(csv.DictReader((two_class_run / "folds.csv").open(encoding="utf-8")))
    values = [float(row["val_dice_core"]) for row in folds]
    expected = f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"  # the fold table's summary row
    assert f"<td>{expected}</td>" in page
