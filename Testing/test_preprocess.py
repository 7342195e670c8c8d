"""Preprocessing and its inverse: geometry back to the voxel, mid-plane, flips, the prepared layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.data import Case
from lesionseg.io import Geometry, read_image, write_image
from lesionseg.metrics import dice
from lesionseg.preprocess import PrepareConfig, PrepareRecord, PreparedDataset, invert, prepare_case, prepare_dataset
from lesionseg.io.geometry import paste_into
from lesionseg.preprocess.midplane import Midplane, estimate_midplane
from lesionseg.preprocess.orientation import axial_frame
from lesionseg.synth import make_case


def as_case(synthetic, folder: Path, channel: str = "flair", image=None, mask=None) -> Case:
    """Write a synthetic case's channel and mask as NIfTI and return the Case pointing at them."""
    image = synthetic.channels[channel] if image is None else image
    mask = synthetic.lesion_mask if mask is None else mask
    channel_path = write_image(image, folder / f"{synthetic.case_id}_{channel}.nii.gz")
    mask_path = write_image(mask, folder / f"{synthetic.case_id}_msk.nii.gz")
    return Case(synthetic.case_id, synthetic.case_id, {channel: channel_path}, mask_path)


def assert_same_geometry(image: sitk.Image, reference: sitk.Image) -> None:
    assert image.GetSize() == reference.GetSize()
    np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(image.GetDirection(), reference.GetDirection(), rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def synthetic_cases():
    """Five FLAIR phantoms of the default size (192 x 224 x 48 at 1 x 1 x 3 mm), two of them posed."""
    poses = [None, ((4.0, -3.0, 0.0), 4.0), None, ((-5.0, 2.0, 0.0), -3.0), None]
    return [make_case(index, seed=3, head_pose=pose) for index, pose in enumerate(poses, start=1)]


@pytest.fixture(scope="module")
def prepared_folder(synthetic_cases, tmp_path_factory):
    """The phantoms prepared at S = 192 into a dataset folder (arrays + records)."""
    folder = tmp_path_factory.mktemp("round_trip")
    cases = [as_case(s, folder / "inputs") for s in synthetic_cases]
    prepare_dataset(cases, folder / "prepared", PrepareConfig(negatives=0.0))
    return folder / "prepared"


@pytest.mark.slow
def test_round_trip_from_the_record_alone(synthetic_cases, prepared_folder, tmp_path):
    """truth -> prepare -> invert, with nothing but the saved record: native geometry and Dice."""
    copy = tmp_path / "copy"
    shutil.copytree(prepared_folder, copy)
    dataset = PreparedDataset(copy)
    stacks = {case_id: dataset.arrays(case_id).masks.copy() for case_id in dataset.case_ids}
    records = {case_id: PrepareRecord.load(copy / "cases" / f"{case_id}.json") for case_id in dataset.case_ids}
    shutil.rmtree(copy)  # nothing but the records (and the predicted stacks) is left
    pooled_intersection = pooled_total = evaluated = 0
    for synthetic in synthetic_cases:
        back = invert(stacks[synthetic.case_id], records[synthetic.case_id], kind="label")
        assert_same_geometry(back, synthetic.lesion_mask)
        predicted = sitk.GetArrayFromImage(back) > 0
        truth = sitk.GetArrayFromImage(synthetic.lesion_mask) > 0
        if truth.sum() < 50:  # the bound is stated for lesions of 50 voxels or more
            continue
        evaluated += 1
        # a 224 mm field resized to 192 pixels (1.17 mm) loses about half a pixel at each lesion edge,
        # which costs the smallest lesions (~100-200 voxels of 1 x 1 x 3 mm) a little Dice
        assert dice(predicted, truth) >= 0.93, synthetic.case_id
        pooled_intersection += 2 * np.count_nonzero(predicted & truth)
        pooled_total += predicted.sum() + truth.sum()
    assert evaluated >= 3
    assert pooled_intersection / pooled_total >= 0.95


@pytest.mark.slow
def test_no_resize_means_an_exact_copy_also_when_stored_sagittally(synthetic_cases, tmp_path):
    """With S equal to the field in pixels (224 at 1 mm) the round trip is exact, for the axial original
    and for a sagittally stored copy of the same scan (axes permuted and flipped, same physical voxels)."""
    synthetic = synthetic_cases[0]
    sagittal_image = sitk.DICOMOrient(synthetic.channels["flair"], "ASL")
    sagittal_mask = sitk.DICOMOrient(synthetic.lesion_mask, "ASL")
    assert sagittal_image.GetSize() != synthetic.channels["flair"].GetSize()  # really stored another way
    for image, mask, name in ((synthetic.channels["flair"], synthetic.lesion_mask, "axial"),
                              (sagittal_image, sagittal_mask, "sagittal")):
        case = as_case(synthetic, tmp_path / name, image=image, mask=mask)
        prepared = prepare_case(case, PrepareConfig(size=224, negatives=0.0))
        assert prepared.record.grid.pixel_mm == pytest.approx(1.0)
        back = invert(prepared.masks, prepared.record, kind="label")
        assert_same_geometry(back, read_image(case.channels["flair"]))
        assert dice(sitk.GetArrayFromImage(back) > 0, sitk.GetArrayFromImage(mask) > 0) == 1.0, name


def oblique_copy(synthetic, degrees: float = 15.0):
    """The scan resampled onto a grid turned by ``degrees`` about the superior axis (an oblique storage)."""
    original = synthetic.channels["flair"]
    turn = sitk.Euler3DTransform()
    turn.SetRotation(0.0, 0.0, np.radians(degrees))
    direction = np.array(turn.GetMatrix()).reshape(3, 3) @ np.array(original.GetDirection()).reshape(3, 3)
    grid = sitk.Image(original.GetSize(), sitk.sitkFloat32)
    grid.SetSpacing(original.GetSpacing())
    grid.SetDirection(direction.ravel().tolist())
    centre = np.array(original.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in original.GetSize()]))
    grid.SetOrigin(centre - direction @ ((np.array(original.GetSize()) - 1) / 2 * np.array(original.GetSpacing())))
    image = sitk.Resample(original, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    mask = sitk.Resample(synthetic.lesion_mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return image, mask


@pytest.mark.slow
def test_oblique_copy_round_trip_and_invert_matches_an_independent_resampler(synthetic_cases, tmp_path):
    # the case with the largest lesion: the oblique field (about 1.4 mm pixels) costs the smallest ones more
    synthetic = max(synthetic_cases, key=lambda s: int(sitk.GetArrayViewFromImage(s.lesion_mask).sum()))
    image, mask = oblique_copy(synthetic)
    case = as_case(synthetic, tmp_path, image=image, mask=mask)
    prepared = prepare_case(case, PrepareConfig(negatives=0.0))
    assert prepared.record.frame.resampled and prepared.record.frame.obliquity_deg == pytest.approx(15.0, abs=0.01)
    back = invert(prepared.masks, prepared.record, kind="label")
    assert_same_geometry(back, read_image(case.channels["flair"]))  # the grid as stored (NIfTI keeps float32)
    assert dice(sitk.GetArrayFromImage(back) > 0, sitk.GetArrayFromImage(mask) > 0) >= 0.95

    # random probabilities, inverted, against a trilinear resampler written here from the recorded grids
    record = prepared.record
    rng = np.random.default_rng(0)
    flips = [bool(f) for f in rng.integers(0, 2, len(record.slice_indices))]
    record.flipped = flips
    probabilities = rng.random((len(record.slice_indices), record.grid.size, record.grid.size)).astype(np.float32)
    ours = sitk.GetArrayFromImage(invert(probabilities, record, kind="probability"))
    stack = np.zeros((record.grid.n_slices, record.grid.size, record.grid.size), np.float32)
    for position, (index, flip) in enumerate(zip(record.slice_indices, flips)):
        stack[index] = probabilities[position][:, ::-1] if flip else probabilities[position]
    native, grid = record.native, record.grid.geometry
    k, j, i = np.meshgrid(*(np.arange(n) for n in native.size[::-1]), indexing="ij")
    native_direction = np.array(native.direction).reshape(3, 3)
    points = np.array(native.origin) + (np.stack([i, j, k], -1) * np.array(native.spacing)) @ native_direction.T
    grid_direction = np.array(grid.direction).reshape(3, 3)
    continuous = ((points - np.array(grid.origin)) @ grid_direction) / np.array(grid.spacing)  # (u, v, slice)
    inside = np.all((continuous >= -1e-6) & (continuous <= np.array(grid.size) - 1 + 1e-6), axis=-1)
    expected = ndimage.map_coordinates(stack, [continuous[..., 2], continuous[..., 1], continuous[..., 0]],
                                       order=1, mode="nearest")
    np.testing.assert_allclose(ours[inside], expected[inside], atol=1e-4)

    # the same map computed on the box of the native grid that the prepared grid covers, then pasted into the
    # whole grid: equal to the voxel (outside the box the resampler gives its default, 0)
    box = record.native.box_holding(record.grid.geometry)  # footprint_box gives None when it is the whole grid
    boxed = invert(probabilities, record, kind="probability", box=box)
    assert boxed.GetSize() == box[1]
    whole = paste_into(boxed, native, box)
    assert_same_geometry(whole, read_image(case.channels["flair"]))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(whole), ours)
    assert inside.mean() > 0.9


def plane_error_mm(estimate: Midplane, truth: Midplane, brain: sitk.Image) -> float:
    """Largest distance between the two planes over the brain's voxels (mm)."""
    z, y, x = np.nonzero(sitk.GetArrayFromImage(brain))
    points = np.array([brain.TransformIndexToPhysicalPoint((int(a), int(b), int(c)))
                       for a, b, c in zip(x[::40], y[::40], z[::40])])
    return float(np.abs(estimate.signed_distance(points) - truth.signed_distance(points)).max())


@pytest.mark.slow
def test_midplane_found_within_2_mm_on_shifted_and_turned_heads():
    for index, pose in enumerate([((6.0, -4.0, 0.0), 5.0), ((-7.0, 3.0, 2.0), -4.0), ((3.0, 0.0, 0.0), 2.0)], 10):
        synthetic = make_case(index, seed=5, head_pose=pose)
        frame = axial_frame(synthetic.channels["flair"]).geometry
        estimate = estimate_midplane(synthetic.channels["flair"], synthetic.brain_mask, frame)
        truth = Midplane(synthetic.midplane_point_mm, synthetic.midplane_normal)
        assert plane_error_mm(estimate, truth, synthetic.brain_mask) <= 2.0, pose
        # the image centre would have been wrong by the shift
        assert abs(truth.signed_distance(np.array([[0.0, 0.0, 0.0]]))[0]) > 1.5


def assert_lesions_on_side(masks: np.ndarray, side: str, name: str) -> None:
    """Every slice with lesion has at least as much of it on ``side`` (columns >= S/2 are the patient's left)."""
    half = masks.shape[-1] // 2
    left = masks[:, :, half:].reshape(len(masks), -1).sum(1)
    right = masks[:, :, :half].reshape(len(masks), -1).sum(1)
    lesion = left + right > 0
    chosen, other = (left, right) if side == "left" else (right, left)
    assert lesion.any(), name
    assert np.all(chosen[lesion] >= other[lesion]), name


@pytest.mark.slow
def test_every_training_lesion_ends_on_the_chosen_side(synthetic_cases, prepared_folder, tmp_path):
    # the cohort has lesions in both hemispheres, so flips really happen
    sides = {synthetic.case_id: {lesion.side for lesion in synthetic.lesions if lesion.volume_mm3 > 0}
             for synthetic in synthetic_cases}
    assert {"left"} in sides.values() and {"right"} in sides.values()
    dataset = PreparedDataset(prepared_folder)  # prepared with the default side, left
    for case_id in dataset.case_ids:
        assert_lesions_on_side(dataset.arrays(case_id).masks, "left", case_id)
        flipped = [row["flipped"] for row in dataset.case_slices(case_id) if row["has_lesion"]]
        assert any(flipped) == ("right" in sides[case_id]), case_id
    for synthetic in (synthetic_cases[0], synthetic_cases[3]):  # a left and a right lesion, into the right side
        prepared = prepare_case(as_case(synthetic, tmp_path), PrepareConfig(lesion_side="right", negatives=0.0))
        assert_lesions_on_side(prepared.masks, "right", synthetic.case_id)


@pytest.mark.slow
def test_prepared_layout_areas_and_volumes(prepared_folder, synthetic_cases):
    dataset = PreparedDataset(prepared_folder)
    assert dataset.case_ids == [s.case_id for s in synthetic_cases]
    header = (prepared_folder / "slices.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "case_id,patient_id,slice_index,flipped,lesion_pixels,lesion_area_mm2,has_lesion"
    for synthetic in synthetic_cases:
        arrays = dataset.arrays(synthetic.case_id)
        rows = dataset.case_slices(synthetic.case_id)
        size = dataset.size
        assert arrays.images.shape == (len(rows), 1, size, size) and arrays.images.dtype == np.float32
        assert arrays.masks.shape == arrays.brains.shape == (len(rows), size, size) and arrays.masks.dtype == np.uint8
        spacing = synthetic.lesion_mask.GetSpacing()
        truth = sitk.GetArrayFromImage(synthetic.lesion_mask)
        for row in rows:  # axial storage: slice_index is the native slice index
            assert row["lesion_pixels"] == int(truth[row["slice_index"]].sum())
            assert row["lesion_area_mm2"] == pytest.approx(row["lesion_pixels"] * spacing[0] * spacing[1])
        volume_mm3 = sum(row["lesion_area_mm2"] for row in rows) * spacing[2]
        assert volume_mm3 == pytest.approx(truth.sum() * np.prod(spacing))
        record = dataset.record(synthetic.case_id)
        assert Geometry.of(synthetic.channels["flair"]) == record.native
        # brain slices are z-scored inside the brain: mean about 0 and spread about 1 over the kept slices
        inside = arrays.images[:, 0][arrays.brains > 0]
        assert abs(inside.mean()) < 0.5 and 0.5 < inside.std() < 1.5


def test_slices_framing_the_brain_hold_all_of_it_in_smaller_pixels_about_the_same_plane(synthetic_cases, tmp_path):
    """brain_margin_mm: the square frames the brain (plus the margin) instead of the whole field of view."""
    synthetic = synthetic_cases[1]  # shifted and turned head
    case = as_case(synthetic, tmp_path)
    whole = prepare_case(case, PrepareConfig(size=128, negatives=0.0), training=True)
    framed = prepare_case(case, PrepareConfig(size=128, negatives=0.0, brain_margin_mm=10.0), training=True)
    grid = framed.record.grid
    # this phantom's field of view (192 x 224 mm) is tight around its head; the brain (about 140 x 170 mm, plus
    # 10 mm on each side) still gives 14 % smaller pixels (scanners' usual 240 mm fields give a quarter or more)
    assert grid.pixel_mm < 0.9 * whole.record.grid.pixel_mm
    # every brain voxel centre of the phantom lies inside the square, at least the margin less 3 mm from its edge
    # (the square frames the extracted brain, which may miss a millimetre or two of the phantom's)
    reference = grid.geometry.reference_image(sitk.sitkUInt8)
    brain = sitk.GetArrayFromImage(synthetic.brain_mask) > 0
    indices = np.argwhere(brain)[::7, ::-1].astype(float)  # (x, y, z) voxel indices, a seventh of them
    points = [synthetic.brain_mask.TransformContinuousIndexToPhysicalPoint(i.tolist()) for i in indices]
    inside = np.array([reference.TransformPhysicalPointToContinuousIndex(p)[:2] for p in points])
    border = (10.0 - 3.0) / grid.pixel_mm
    assert inside.min() >= border - 0.5 and inside.max() <= 127.5 - border
    # the true mid-sagittal plane still falls on the boundary between columns 63 and 64 (within 2 mm)
    plane = np.array(synthetic.midplane_point_mm)
    column = reference.TransformPhysicalPointToContinuousIndex(plane.tolist())[0]
    assert abs(column - 63.5) <= 2.0 / grid.pixel_mm
    # and the lesion comes back at least as well as from the whole field of view
    truth = sitk.GetArrayFromImage(synthetic.lesion_mask) > 0
    scores = [dice(sitk.GetArrayFromImage(invert(p.masks.astype(np.float32), p.record, kind="probability")) >= 0.5,
                   truth) for p in (whole, framed)]
    assert scores[1] >= scores[0] - 0.01 and scores[1] >= 0.9
