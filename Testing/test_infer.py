"""Inference: geometry back to each input's own grid, Slicer's .seg.nrrd, batches, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import SMALL_PHANTOM, run_cli
from lesionseg.infer import Predictor
from lesionseg.io import read_image, write_image
from lesionseg.metrics import dice
from lesionseg.synth import make_case, write_case


@pytest.fixture(scope="module")
def phantom():
    return make_case(3, seed=21, **SMALL_PHANTOM)


def reoriented(image: sitk.Image, code: str) -> sitk.Image:
    return sitk.DICOMOrient(image, code)


def oblique(image: sitk.Image, degrees: float = 12.0, is_mask: bool = False) -> sitk.Image:
    turn = sitk.Euler3DTransform()
    turn.SetRotation(np.radians(2.0), 0.0, np.radians(degrees))  # tilted 2 degrees: 5 mm slices cross
    direction = np.array(turn.GetMatrix()).reshape(3, 3) @ np.array(image.GetDirection()).reshape(3, 3)
    grid = sitk.Image(image.GetSize(), image.GetPixelID())
    grid.SetSpacing(image.GetSpacing())
    grid.SetDirection(direction.ravel().tolist())
    centre = np.array(image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()]))
    grid.SetOrigin(centre - direction @ ((np.array(image.GetSize()) - 1) / 2 * np.array(image.GetSpacing())))
    return sitk.Resample(image, grid, sitk.Transform(), sitk.sitkNearestNeighbor if is_mask else sitk.sitkLinear, 0.0)


def respaced_phantom():
    """The same head acquired on another grid (1.4 x 1.4 x 4 mm): the phantom is drawn in millimetres, so
    its truth is exact on any grid (no resampled, jagged truth)."""
    case = make_case(3, seed=21, size_xyz=(140, 160, 35), spacing_mm=(1.4, 1.4, 4.0))
    return case.channels["flair"], case.brain_mask


def centre_mm(mask_zyx: np.ndarray, grid: sitk.Image) -> np.ndarray:
    """The centroid of a boolean ``(z, y, x)`` mask on ``grid``, as a physical point (LPS, mm)."""
    index_xyz = np.argwhere(mask_zyx).mean(axis=0)[::-1]
    return np.array(grid.TransformContinuousIndexToPhysicalPoint(index_xyz.tolist()))


def same_grid(first: sitk.Image, second: sitk.Image) -> bool:
    return (first.GetSize() == second.GetSize() and np.allclose(first.GetSpacing(), second.GetSpacing(), atol=1e-9)
            and np.allclose(first.GetOrigin(), second.GetOrigin(), atol=1e-9)
            and np.allclose(first.GetDirection(), second.GetDirection(), atol=1e-9))


@pytest.fixture(scope="module")
def brain_bundle(tmp_path_factory) -> Path:
    """A tiny model trained to segment the BRAIN of small phantoms (a large, easy target it learns in seconds):
    a model whose masks are good, so that geometry errors would show as lost overlap."""
    from conftest import TINY_NETWORK
    from lesionseg.preprocess import PrepareConfig, prepare_dataset
    from lesionseg.train import TrainConfig, train_run

    root = tmp_path_factory.mktemp("brain_model")
    for index in (1, 2, 4, 5):
        case = make_case(index, seed=23, **SMALL_PHANTOM)
        case.lesion_mask = case.brain_mask
        write_case(case, root / "data")
    prepare_dataset(root / "data", root / "prepared", PrepareConfig(size=64, negatives=0.0))
    config = TrainConfig(**TINY_NETWORK, epochs=6, all_data=True, batch_size=8, lr=3e-3, optimiser="adam",
                         device="cpu", num_threads=1, curriculum="none", augmentation={"enabled": False})
    return train_run(root / "prepared", root / "run", config).bundle


@pytest.mark.slow
def test_reoriented_oblique_and_respaced_copies_come_back_on_their_own_grid(brain_bundle, phantom):
    """Each copy's mask is on exactly its own grid and overlays its own truth as well as the unmodified
    case's does (the model segments the brain: see ``brain_bundle``)."""
    predictor = Predictor(brain_bundle, device="cpu")
    original = phantom.channels["flair"]
    base = predictor.predict({"flair": original}, side="left")
    base_dice = dice(sitk.GetArrayFromImage(base.labelmap) > 0, sitk.GetArrayFromImage(phantom.brain_mask) > 0)
    assert base_dice > 0.8  # a model whose masks mean something
    copies = {"LPI": (reoriented(original, "LPI"), reoriented(phantom.brain_mask, "LPI")),
              "oblique": (oblique(original), oblique(phantom.brain_mask, is_mask=True)),
              "respaced": respaced_phantom()}
    for name, (image, truth) in copies.items():
        prediction = predictor.predict({"flair": image}, side="left")
        assert same_grid(prediction.labelmap, image) and same_grid(prediction.probabilities, image), name
        own = dice(sitk.GetArrayFromImage(prediction.labelmap) > 0, sitk.GetArrayFromImage(truth) > 0)
        if name == "respaced":  # another acquisition of the phantom (exact truth): as good as the original
            assert abs(own - base_dice) <= 0.02, (name, own, base_dice)
            continue
        # A resampled copy: the model sees an interpolated image, so its mask may lose a little overlap (0.021
        # Dice for the oblique copy on one CPU, under 0.02 on another). What must not happen is a geometry
        # error. The reference is the unmodified case's mask carried onto the copy's grid by SimpleITK's
        # nearest-neighbour resampler: the copy's mask must score better than that reference shifted by one
        # slice (0.93 here), and its centre must lie within half the smallest voxel side of the reference's
        # (a one-voxel shift in-plane moves it 1.75 mm; the model's own differences moved it 0.4 mm).
        carried = sitk.GetArrayFromImage(sitk.Resample(base.labelmap, image, sitk.Transform(),
                                                       sitk.sitkNearestNeighbor, 0)) > 0
        truth_array = sitk.GetArrayFromImage(truth) > 0
        assert own > dice(np.roll(carried, 1, axis=0), truth_array), (name, own)
        offset_mm = centre_mm(sitk.GetArrayFromImage(prediction.labelmap) > 0, image) - centre_mm(carried, image)
        assert np.linalg.norm(offset_mm) <= min(image.GetSpacing()) / 2, (name, offset_mm)
        if name == "LPI":  # the same voxels, permuted: the same mask, voxel for voxel
            back = sitk.DICOMOrient(prediction.labelmap, "LPS")
            assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(base.labelmap))


def test_post_processing_on_the_box_the_prepared_grid_covers_equals_the_whole_grid(phantom):
    """A scan with much air around the head (as a 512 x 512 CT is): the mask, the probabilities and the lesion
    table made on the box of the native grid that the prepared grid covers are those of the whole grid
    (the shipped starter model: its prepared grid is the brain's box, and it finds this phantom's lesion)."""
    from lesionseg.preprocess import prepare_images
    from lesionseg.preprocess.invert import footprint_box
    from lesionseg.starter import starter_bundle_path

    padded = sitk.ConstantPad(phantom.channels["flair"], [40, 40, 4], [40, 40, 4], 0.0)
    predictor = Predictor(starter_bundle_path(), device="cpu")
    # the phantom's lesion is in its right hemisphere: read that side
    prepared = prepare_images({"flair": padded}, predictor.config, case_id="padded", training=False, side="right")
    box = footprint_box(prepared.record)
    assert box is not None and np.prod(box[1]) < 0.7 * np.prod(padded.GetSize())
    probabilities, _ = predictor.slice_probabilities(prepared.network_input(predictor.config.context_slices), [],
                                                     prepared.record.slice_indices)
    boxed_mask, boxed_probabilities, boxed_lesions, _ = predictor.postprocess(probabilities, None, prepared)
    whole_mask, whole_probabilities, whole_lesions, _ = predictor.postprocess(probabilities, None, prepared,
                                                                              crop=False)
    assert same_grid(boxed_mask, padded) and same_grid(boxed_probabilities, padded)
    assert len(whole_lesions) >= 1 and sitk.GetArrayViewFromImage(whole_mask).sum() > 20  # worth comparing
    np.testing.assert_array_equal(sitk.GetArrayFromImage(boxed_mask), sitk.GetArrayFromImage(whole_mask))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(boxed_probabilities),
                                  sitk.GetArrayFromImage(whole_probabilities))
    assert len(boxed_lesions) == len(whole_lesions)
    for ours, theirs in zip(boxed_lesions, whole_lesions):
        assert {k: v for k, v in ours.items() if "centroid" not in k and k != "mean_probability"} == \
            {k: v for k, v in theirs.items() if "centroid" not in k and k != "mean_probability"}
        assert ours["mean_probability"] == pytest.approx(theirs["mean_probability"], abs=1e-9)
        # centroids are rounded to 0.01 mm after being summed from another origin: at most one step apart
        np.testing.assert_allclose(ours["centroid_lps_mm"], theirs["centroid_lps_mm"], atol=0.0101)


@pytest.mark.slow
def test_seg_nrrd_from_segment_opens_in_slicer_with_the_nifti_voxels(tiny_bundle, phantom, tmp_path, slicer_scene):
    slicer, scene, logic = slicer_scene
    flair = write_image(phantom.channels["flair"], tmp_path / "flair.nii.gz")
    probe = Predictor(tiny_bundle, device="cpu").predict({"flair": flair}, side="auto")
    inside = sitk.GetArrayFromImage(probe.probabilities)[sitk.GetArrayFromImage(probe.brain_mask) > 0]
    threshold = f"{float(np.quantile(inside, 0.99)):.6f}"
    for output in ("mask.nii.gz", "mask.seg.nrrd"):
        result = run_cli("segment", tiny_bundle, flair, "-o", tmp_path / output, "--threshold", threshold,
                         "--min-lesion-mm3", "0", "--progress", "none")
        assert result.returncode == 0, result.stderr
    nifti = sitk.GetArrayFromImage(read_image(tmp_path / "mask.nii.gz"))
    assert nifti.sum() > 0
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "mask.seg.nrrd"))
    assert storage.ReadData(segmentation)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    segment = segmentation.GetSegmentation().GetNthSegment(0)
    assert segment.GetName() == "Stroke lesion"
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    volume_storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(volume_storage)
    volume_storage.SetFileName(str(flair))
    assert volume_storage.ReadData(volume)
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    import vtk

    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segmentation.GetSegmentation().GetNthSegmentID(0))
    assert logic.ExportSegmentsToLabelmapNode(segmentation, ids, labelmap, volume)
    exported = slicer.util.arrayFromVolume(labelmap)
    assert exported.shape == nifti.shape and np.array_equal(exported > 0, nifti > 0)


@pytest.mark.slow
def test_a_batch_with_one_corrupt_case_finishes_the_others_and_exits_3(tiny_bundle, tmp_path):
    cases = [make_case(i, seed=22, **SMALL_PHANTOM) for i in (1, 2, 3)]
    files = [write_case(case, tmp_path / "data") for case in cases]
    corrupt = files[1].channels["flair"]
    corrupt.write_bytes(corrupt.read_bytes()[:2000])
    out = tmp_path / "out"
    result = run_cli("segment", tiny_bundle, tmp_path / "data", "-o", out, "--side", "left", "--progress", "none")
    assert result.returncode == 3, result.stderr
    assert (out / "summary.csv").read_text(encoding="utf-8").splitlines()[0] == "case_id,lesion_ml,lesion_count,seconds,status"
    status = read_status(out / "summary.csv")
    assert status[cases[0].case_id] == "ok" and status[cases[2].case_id] == "ok"
    assert status[cases[1].case_id].startswith("failed") and "truncated" in status[cases[1].case_id]
    assert (out / f"{cases[0].case_id}.nii.gz").is_file() and not (out / f"{cases[1].case_id}.nii.gz").exists()
    again = run_cli("segment", tiny_bundle, tmp_path / "data", "-o", out, "--side", "left", "--skip-existing",
                    "--progress", "none")
    assert again.returncode == 3
    status = read_status(out / "summary.csv")
    assert status[cases[0].case_id] == "skipped" and status[cases[2].case_id] == "skipped"


def read_status(path: Path) -> dict[str, str]:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        return {row["case_id"]: row["status"] for row in csv.DictReader(handle)}


def _assert_refused(result, named, output: Path | None = None) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(named) in lines[0] and "Traceback" not in result.stderr, result.stderr
    if output is not None:
        assert not output.exists() and not list(output.parent.glob(".tmp-*")) if output.parent.exists() else True


@pytest.mark.slow
def test_bad_input_to_segment(tiny_bundle, phantom, tmp_path):
    flair = write_image(phantom.channels["flair"], tmp_path / "flair.nii.gz")
    out = tmp_path / "out" / "mask.nii.gz"
    # channels that do not match the bundle's
    _assert_refused(run_cli("segment", tiny_bundle, f"dwi={flair}", "-o", out), tiny_bundle, out)
    # an all-zero scan
    zero = sitk.Image(phantom.channels["flair"].GetSize(), sitk.sitkInt16)
    zero.CopyInformation(phantom.channels["flair"])
    _assert_refused(run_cli("segment", tiny_bundle, write_image(zero, tmp_path / "zero.nii.gz"), "-o", out), "zero", out)
    # a 4D file
    four = write_image(sitk.JoinSeries([phantom.channels["flair"]] * 2), tmp_path / "four.nii.gz")
    _assert_refused(run_cli("segment", tiny_bundle, four, "-o", out), four, out)
    # a file that is not a bundle
    fake = tmp_path / "model.lsb"
    fake.write_text("not a bundle")
    _assert_refused(run_cli("segment", fake, flair, "-o", out), fake, out)
    # an output path that cannot be written (its folder is a file)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    _assert_refused(run_cli("segment", tiny_bundle, flair, "-o", blocker / "mask.nii.gz"), blocker / "mask.nii.gz")


def test_model_card_and_tta_variance(tiny_bundle, phantom):
    predictor = Predictor(tiny_bundle, device="cpu", tta=True)
    prediction = predictor.predict({"FLAIR": phantom.channels["flair"]}, side="left")
    assert prediction.tta_variance is not None and same_grid(prediction.tta_variance, phantom.channels["flair"])
    variance = sitk.GetArrayFromImage(prediction.tta_variance)
    assert variance.min() >= 0 and variance.max() <= 0.25  # the variance of values in [0, 1]
    assert prediction.timings["network"] > 0 and prediction.lesion_volume_ml >= 0
