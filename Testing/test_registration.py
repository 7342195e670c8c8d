"""Registration: known rigid misalignments recovered, records rebuilt exactly, inverses, resampling,
refusals that name the case and channel, and the ``lesionseg transfer-mask`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.cli import main
from lesionseg.errors import GeometryError, LesionSegError, ParameterError, PreprocessingError
from lesionseg.io import read_image, read_mask, write_image
from lesionseg.preprocess.registration import (
    RegistrationResult,
    invert_transform,
    mean_distance_mm,
    register,
    resample_onto_fixed,
    transform_from_record,
    transform_to_record,
)
from lesionseg.synth import make_case

# 1.5 x 1.5 x 3 mm over the default 192 x 225 x 144 mm field of view.
MID = {"size_xyz": (128, 150, 48), "spacing_mm": (1.5, 1.5, 3.0)}
SMALL = {"size_xyz": (96, 112, 24), "spacing_mm": (2.0, 2.0, 6.0)}


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x = sitk.GetArrayViewFromImage(a) > 0
    y = sitk.GetArrayViewFromImage(b) > 0
    return float(2.0 * np.count_nonzero(x & y) / (np.count_nonzero(x) + np.count_nonzero(y)))


@pytest.fixture(scope="module")
def dwi_case():
    """Full-size case (192 x 224 x 48, 1 x 1 x 3 mm): the DWI acquisition moved by a known rigid transform."""
    return make_case(1, seed=0, modalities=("flair", "dwi"), misalignment=(10.0, 10.0))


@pytest.fixture(scope="module")
def dwi_result(dwi_case) -> RegistrationResult:
    return register(dwi_case.channels["flair"], dwi_case.channels["dwi"], case_id=dwi_case.case_id,
                    channel="dwi", fixed_channel="flair")


@pytest.mark.slow
def test_misaligned_dwi_is_brought_back_under_one_millimetre(dwi_case, dwi_result):
    truth = dwi_case.transforms["dwi"]  # maps reference points to where the DWI shows them: what we must find
    angles = np.degrees(np.abs(truth.GetParameters()[:3]))
    assert 5.0 < angles.max() <= 10.0 and 5.0 < np.linalg.norm(truth.GetTranslation()) <= 10.0 * np.sqrt(3)
    before = mean_distance_mm(sitk.Transform(), truth, dwi_case.brain_mask)
    after = mean_distance_mm(dwi_result.transform, truth, dwi_case.brain_mask)
    assert before > 8.0
    assert after < 1.0, after
    assert dwi_result.record["stages"] == ["rigid", "affine"]
    assert dwi_result.final_metric < 0
    moved_back = resample_onto_fixed(dwi_case.channels["dwi"], dwi_case.channels["flair"],
                                     dwi_result.transform, is_mask=False)
    assert moved_back.GetSize() == dwi_case.channels["flair"].GetSize()


@pytest.mark.slow
def test_record_of_a_registration_rebuilds_the_same_transform(dwi_case, dwi_result):
    record = json.loads(json.dumps(dwi_result.record))  # JSON-serialisable, and survives the round trip
    rebuilt = transform_from_record(record)
    assert rebuilt.GetName() == dwi_result.transform.GetName()
    assert rebuilt.GetParameters() == dwi_result.transform.GetParameters()
    assert rebuilt.GetFixedParameters() == dwi_result.transform.GetFixedParameters()
    assert record["convention"].startswith("maps fixed-image physical points")
    assert record["fixed_geometry"]["size"] == list(dwi_case.channels["flair"].GetSize())
    inverse = invert_transform(rebuilt)
    for point in [(0.0, 0.0, 0.0), (40.0, -30.0, 20.0), (-55.0, 60.0, -25.0)]:
        assert np.allclose(inverse.TransformPoint(rebuilt.TransformPoint(point)), point, atol=1e-9)


@pytest.mark.slow
def test_ct_onto_flair_multimodal_under_one_millimetre():
    case = make_case(1, seed=0, modalities=("flair", "ct"), misalignment=(10.0, 10.0), **MID)
    truth = case.transforms["ct"]
    result = register(case.channels["flair"], case.channels["ct"], case_id=case.case_id, channel="ct")
    assert mean_distance_mm(sitk.Transform(), truth, case.brain_mask) > 8.0
    assert mean_distance_mm(result.transform, truth, case.brain_mask) < 1.0


@pytest.mark.slow
def test_same_seed_same_transform():
    case = make_case(2, seed=0, modalities=("flair", "ct"), misalignment=(6.0, 6.0), **SMALL)
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # with several threads, sums vary in their last bits
    try:
        first = register(case.channels["flair"], case.channels["ct"], stages=("rigid",), seed=7)
        second = register(case.channels["flair"], case.channels["ct"], stages=("rigid",), seed=7)
        other = register(case.channels["flair"], case.channels["ct"], stages=("rigid",), seed=8)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    assert first.transform.GetParameters() == second.transform.GetParameters()
    assert first.transform.GetParameters() != other.transform.GetParameters()  # the seed picks the samples
    assert first.record["seed"] == 7
    assert mean_distance_mm(first.transform, case.transforms["ct"], case.brain_mask) < 1.5


@pytest.mark.slow
def test_deformable_stage_is_recorded_and_inverted():
    case = make_case(2, seed=0, modalities=("flair", "ct"), misalignment=(6.0, 6.0), **SMALL)
    result = register(case.channels["flair"], case.channels["ct"], stages=("rigid",), deformable=True)
    assert result.transform.GetName() == "CompositeTransform"
    assert result.record["stages"] == ["rigid", "bspline"]
    # Rigid truth: the smooth B-spline must not wreck the linear result.
    assert mean_distance_mm(result.transform, case.transforms["ct"], case.brain_mask) < 1.5
    rebuilt = transform_from_record(json.loads(json.dumps(result.record)))
    points = [(0.0, 0.0, -7.0), (30.0, -40.0, 10.0), (-50.0, 20.0, -30.0)]
    for point in points:
        assert rebuilt.TransformPoint(point) == result.transform.TransformPoint(point)
    inverse = invert_transform(result.transform)
    for point in points:
        back = inverse.TransformPoint(result.transform.TransformPoint(point))
        assert np.linalg.norm(np.subtract(back, point)) < 0.1


def _bspline(seed: int) -> sitk.BSplineTransform:
    reference = sitk.Image([40, 40, 20], sitk.sitkUInt8)
    reference.SetSpacing((3.0, 3.0, 6.0))
    reference.SetOrigin((-60.0, -60.0, -60.0))
    bspline = sitk.BSplineTransformInitializer(reference, [3, 3, 2], order=3)
    rng = np.random.default_rng(seed)
    bspline.SetParameters(tuple(rng.normal(0.0, 1.5, len(bspline.GetParameters()))))
    return bspline


def test_records_round_trip_every_transform_kind_bit_for_bit():
    rigid = sitk.VersorRigid3DTransform()
    rigid.SetCenter((1.5, -2.25, 3.0))
    rigid.SetRotation((0.1, -0.2, 0.3), 0.17)
    rigid.SetTranslation((4.1, -5.3, 0.7))
    affine = sitk.AffineTransform(3)
    affine.SetMatrix((1.02, 0.01, -0.03, 0.0, 0.98, 0.02, 0.01, -0.01, 1.01))
    affine.SetTranslation((0.3, 1.0 / 3.0, -2.0))
    affine.SetCenter((0.1, 0.2, 0.3))
    composite = sitk.CompositeTransform([affine, _bspline(1)])
    euler = sitk.Euler3DTransform(rigid.GetCenter(), 0.1, 0.2, 0.3, (1, 2, 3))
    for transform in (rigid, affine, euler, composite):
        record = json.loads(json.dumps(transform_to_record(transform)))
        rebuilt = transform_from_record(record)
        for point in [(0.0, 0.0, 0.0), (12.5, -33.3, 7.7), (-40.0, 25.0, -18.0)]:
            assert rebuilt.TransformPoint(point) == transform.TransformPoint(point)
    with pytest.raises(ParameterError, match="unknown transform class"):
        transform_from_record({"class": "NoSuchTransform", "parameters": [], "fixed_parameters": []})


def test_inverse_of_linear_is_exact_and_of_bspline_is_close():
    affine = sitk.AffineTransform(3)
    affine.SetMatrix((1.05, 0.02, 0.0, -0.01, 0.97, 0.03, 0.0, 0.02, 1.01))
    affine.SetTranslation((3.0, -4.0, 5.0))
    affine.SetCenter((10.0, 0.0, -5.0))
    inverse = invert_transform(affine)
    # Independent: the inverse of the 4x4 homogeneous matrix.
    a = np.asarray(affine.GetMatrix()).reshape(3, 3)
    c = np.asarray(affine.GetCenter())
    homogeneous = np.eye(4)
    homogeneous[:3, :3] = a
    homogeneous[:3, 3] = np.asarray(affine.GetTranslation()) + c - a @ c
    expected = np.linalg.inv(homogeneous)
    point = np.array([7.0, -8.0, 9.0])
    assert np.allclose(inverse.TransformPoint(tuple(point)), expected[:3, :3] @ point + expected[:3, 3],
                       atol=1e-10)
    composite = sitk.CompositeTransform([affine, _bspline(2)])
    inverse = invert_transform(composite)
    for p in [(0.0, 0.0, 0.0), (-20.0, 15.0, -10.0), (25.0, -30.0, 5.0)]:
        assert np.linalg.norm(np.subtract(inverse.TransformPoint(composite.TransformPoint(p)), p)) < 0.05


def test_masks_resampled_nearest_neighbour_images_linear():
    array = np.zeros((4, 10, 12), np.uint8)
    array[1:3, 3:6, 2:5] = 3
    mask = sitk.GetImageFromArray(array)
    mask.SetSpacing((2.0, 2.0, 5.0))
    shift = sitk.TranslationTransform(3, (4.0, 0.0, 0.0))  # fixed point p reads the moving image at p + 4 mm
    moved = resample_onto_fixed(mask, mask, shift, is_mask=True)
    expected = np.zeros_like(array)
    expected[:, :, :-2] = array[:, :, 2:]  # 4 mm = 2 voxels
    assert np.array_equal(sitk.GetArrayFromImage(moved), expected)
    assert moved.GetPixelID() == sitk.sitkUInt8
    ramp = sitk.GetImageFromArray(np.tile(np.arange(12, dtype=np.float32) * 10.0, (4, 10, 1)))
    ramp.SetSpacing((2.0, 2.0, 5.0))
    half = resample_onto_fixed(ramp, ramp, sitk.TranslationTransform(3, (1.0, 0.0, 0.0)), is_mask=False)
    assert np.allclose(sitk.GetArrayViewFromImage(half)[0, 0, :11], np.arange(11) * 10.0 + 5.0)


def _flat_like(image: sitk.Image, value: float) -> sitk.Image:
    flat = sitk.Image(image.GetSize(), sitk.sitkFloat32) + value
    flat.CopyInformation(image)
    return flat


def test_flat_or_non_finite_channels_are_refused_naming_case_and_channel():
    case = make_case(3, seed=0, modalities=("flair",), **SMALL)
    flair = case.channels["flair"]
    with pytest.raises(PreprocessingError) as caught:
        register(flair, _flat_like(flair, 12.0), case_id="sub-strokecase0003", channel="dwi",
                 fixed_channel="flair")
    assert str(caught.value) == ("case sub-strokecase0003: channel dwi is flat (every voxel is 12), so it "
                                 "cannot be registered.")
    assert isinstance(caught.value, LesionSegError) and caught.value.exit_code == 2
    with pytest.raises(PreprocessingError, match="case c: channel flair is flat"):
        register(_flat_like(flair, 0.0), flair, case_id="c", channel="dwi", fixed_channel="flair")
    array = sitk.GetArrayFromImage(flair).astype(np.float32)
    array[3, 4, 5] = np.nan
    with_nan = sitk.GetImageFromArray(array)
    with_nan.CopyInformation(flair)
    with pytest.raises(PreprocessingError, match="case c: channel adc has 1 NaN or infinite voxels"):
        register(flair, with_nan, case_id="c", channel="adc")


def test_bad_stages_and_mask_grid():
    case = make_case(3, seed=0, modalities=("flair",), **SMALL)
    flair = case.channels["flair"]
    for stages in (("affine", "rigid"), ("similarity",), ()):
        with pytest.raises(ParameterError, match="stage"):
            register(flair, flair, stages=stages)
    wrong = sitk.Image([10, 10, 10], sitk.sitkUInt8)
    with pytest.raises(GeometryError, match="registration mask is not on the fixed grid"):
        register(flair, flair, fixed_mask=wrong)


# --- lesionseg transfer-mask -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flair_and_ct(tmp_path_factory):
    """A FLAIR with its lesion mask, and a CT of the same head in another pose on another grid (5 mm)."""
    folder = tmp_path_factory.mktemp("transfer")
    source = make_case(2, seed=0, modalities=("flair",), **MID)
    target = make_case(2, seed=0, modalities=("ct",), size_xyz=(128, 150, 29), spacing_mm=(1.5, 1.5, 5.0),
                       head_pose=((4.0, -6.0, 3.0), 8.0))
    paths = {"flair": folder / "flair.nii.gz", "mask": folder / "lesion.nii.gz", "ct": folder / "ct.nrrd"}
    write_image(source.channels["flair"], paths["flair"])
    write_image(source.lesion_mask, paths["mask"])
    write_image(target.channels["ct"], paths["ct"])
    return folder, paths, target


@pytest.mark.slow
def test_transfer_mask_command_carries_the_lesion_to_the_ct(flair_and_ct, capsys):
    folder, paths, target = flair_and_ct
    out = folder / "lesion_on_ct.seg.nrrd"
    code = main(["transfer-mask", str(paths["mask"]), str(paths["flair"]), str(paths["ct"]), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    ct = read_image(paths["ct"])
    moved = read_mask(out, reference=ct)
    assert moved.GetSize() == ct.GetSize() and moved.GetSpacing() == ct.GetSpacing()
    # The phantom's own lesion mask in the CT's pose is the truth (measured 0.90 with linear + 0.5).
    assert _dice(moved, target.lesion_mask) >= 0.8
    assert "mL on the target grid" in capsys.readouterr().out


def _assert_one_sentence_naming(capsys, code: int, named) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and str(named) in lines[0] and "Traceback" not in err, err


def test_transfer_mask_bad_inputs_exit_2_with_one_sentence(flair_and_ct, capsys):
    folder, paths, _ = flair_and_ct
    out = folder / "never.nii.gz"
    flat = folder / "flat.nii.gz"
    write_image(_flat_like(read_image(paths["flair"]), 3.0), flat)
    code = main(["transfer-mask", str(paths["mask"]), str(flat), str(paths["ct"]), "-o", str(out)])
    _assert_one_sentence_naming(capsys, code, flat)
    # A mask that was not drawn on SOURCE.
    code = main(["transfer-mask", str(paths["mask"]), str(paths["ct"]), str(paths["flair"]), "-o", str(out)])
    _assert_one_sentence_naming(capsys, code, paths["mask"])
    # NaN voxels in the target.
    ct = read_image(paths["ct"], pixel_type=sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(ct)
    array[5, 50, 60] = np.nan
    with_nan = sitk.GetImageFromArray(array)
    with_nan.CopyInformation(ct)
    nan_path = folder / "ct_nan.nii.gz"
    write_image(with_nan, nan_path)
    code = main(["transfer-mask", str(paths["mask"]), str(paths["flair"]), str(nan_path), "-o", str(out)])
    _assert_one_sentence_naming(capsys, code, nan_path)
    assert not out.exists()
