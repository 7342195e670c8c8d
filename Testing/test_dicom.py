"""DICOM in and out: series that keep their identity, a folder of several series, and DICOM SEG output.

The series are written here with pydicom (``dicom_builders``), on oblique grids, under shuffled file names.
What the SEG holds is checked with pydicom directly (referenced UIDs, per-frame positions, codes, frame
pixels) and read back with highdicom; expected positions and voxels come from the images built here and
SimpleITK's index-to-point mapping, never from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from dicom_builders import oblique_grid_image, write_dicom_series
from lesionseg.errors import GeometryError, InputFileError, ParameterError
from lesionseg.io import read_dicom_volume, read_image, write_dicom_seg

pydicom = pytest.importorskip("pydicom", reason="pydicom comes with highdicom (the [dicom] and [test] extras)")
hd = pytest.importorskip("highdicom", reason="DICOM SEG needs highdicom (the [dicom] and [test] extras)")

INFARCT = ("55641003", "SCT")
CATEGORY = ("49755003", "SCT")


def _volume(shape_zyx=(7, 20, 24), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 900, size=shape_zyx).astype(np.int16)


@pytest.fixture(scope="module")
def two_series(tmp_path_factory):
    """One folder holding a FLAIR (7 slices) and a DWI (5 slices) of one study, on different oblique grids."""
    folder = tmp_path_factory.mktemp("study")
    flair_image = oblique_grid_image(_volume())
    flair = write_dicom_series(flair_image, folder, description="FLAIR ax", series_number=3)
    dwi_image = oblique_grid_image(_volume((5, 16, 16), seed=1), spacing=(1.5, 1.5, 6.0), degrees=(-9.0, 4.0, 20.0))
    dwi = write_dicom_series(dwi_image, folder, description="DWI b1000", series_number=5, study_uid=flair.study_uid,
                             frame_of_reference_uid=flair.frame_of_reference_uid, seed=1)
    return folder, (flair_image, flair), (dwi_image, dwi)


@pytest.fixture(scope="module")
def one_series(tmp_path_factory):
    image = oblique_grid_image(_volume(seed=2))
    return image, write_dicom_series(image, tmp_path_factory.mktemp("flair"), seed=2)


def test_a_series_is_read_with_its_uids_and_each_slice_with_its_file_and_position(one_series):
    image, written = one_series
    volume = read_dicom_volume(written.folder)
    read, series = volume.image, volume.series
    assert (series.series_uid, series.study_uid, series.frame_of_reference_uid) == (
        written.series_uid, written.study_uid, written.frame_of_reference_uid)
    assert series.slices == 7 and series.description == "FLAIR" and series.modality == "MR"
    assert np.array_equal(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(read.GetDirection(), image.GetDirection(), atol=1e-6)
    for k in range(read.GetDepth()):
        # slice k of the volume is the file written for slice k, wherever its name sorts
        writer_index = written.files.index(series.files[k])
        assert writer_index == k
        assert series.sop_instance_uids[k] == written.sop_instance_uids[k]
        np.testing.assert_allclose(series.positions_lps[k], read.TransformIndexToPhysicalPoint((0, 0, k)), atol=1e-4)
    assert sorted(p.name for p in series.files) != [p.name for p in series.files]  # names do not give the order


def test_a_folder_with_two_series_is_refused_with_both_listed_and_one_is_chosen_by_uid(two_series):
    folder, (flair_image, flair), (dwi_image, dwi) = two_series
    with pytest.raises(InputFileError) as refused:
        read_image(folder)
    message = str(refused.value)
    assert "2 DICOM series" in message and "--series" in message
    assert f"{flair.series_uid} (FLAIR ax, MR, 7 slices)" in message
    assert f"{dwi.series_uid} (DWI b1000, MR, 5 slices)" in message
    chosen = read_image(folder, series_uid=dwi.series_uid)
    assert np.array_equal(sitk.GetArrayFromImage(chosen), sitk.GetArrayFromImage(dwi_image))
    with pytest.raises(InputFileError, match="holds no DICOM series 1.2.3.4"):
        read_image(folder, series_uid="1.2.3.4")


def _boxes(reference: sitk.Image) -> sitk.Image:
    array = np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8)
    array[2:4, 5:11, 6:15] = 1
    array[5, 2:4, 18:21] = 1
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(reference)
    return mask


def _frames_by_source(path: Path) -> dict[str, tuple[np.ndarray, tuple[float, ...]]]:
    """SOP Instance UID of the source slice -> (frame pixels, frame position), read with pydicom alone."""
    seg = pydicom.dcmread(path)
    pixels = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    frames = {}
    for index, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        source = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        frames[str(source)] = (pixels[index], tuple(float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient))
    return frames


def test_a_seg_refers_to_its_series_and_holds_the_mask_on_the_source_slices(one_series, tmp_path):
    image, written = one_series
    volume = read_dicom_volume(written.folder)
    mask = _boxes(volume.image)
    path = write_dicom_seg(mask, volume.series, tmp_path / "lesion.dcm", model_name="test model")

    seg = pydicom.dcmread(path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert (seg.StudyInstanceUID, seg.FrameOfReferenceUID) == (written.study_uid, written.frame_of_reference_uid)
    assert seg.PatientID == "SYNTH0001" and seg.SeriesInstanceUID != written.series_uid
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == written.series_uid
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} == set(written.sop_instance_uids)
    segment = seg.SegmentSequence[0]
    assert segment.SegmentLabel == "Stroke lesion"
    assert (segment.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            segment.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator) == INFARCT
    assert (segment.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            segment.SegmentedPropertyCategoryCodeSequence[0].CodingSchemeDesignator) == CATEGORY
    assert segment.SegmentAlgorithmType == "AUTOMATIC" and len(segment.RecommendedDisplayCIELabValue) == 3

    expected = sitk.GetArrayFromImage(mask)
    frames = _frames_by_source(path)
    assert set(frames) == {written.sop_instance_uids[k] for k in np.flatnonzero(expected.any(axis=(1, 2)))}
    for uid, (pixels, position) in frames.items():
        k = written.sop_instance_uids.index(uid)
        np.testing.assert_allclose(position, written.positions[k], atol=1e-4)  # the source slice's own position
        assert np.array_equal(pixels, expected[k])

    back = hd.seg.segread(path).get_pixels_by_source_instance(
        source_sop_instance_uids=written.sop_instance_uids, segment_numbers=[1])[..., 0]
    assert np.array_equal(back, expected)


def test_core_and_penumbra_give_one_segment_each_with_their_own_terminology(one_series, tmp_path):
    from lesionseg.labels import ISCHAEMIC_CORE, PENUMBRA

    image, written = one_series
    volume = read_dicom_volume(written.folder)
    array = np.zeros(sitk.GetArrayViewFromImage(volume.image).shape, np.uint8)
    array[2:5, 4:12, 5:16] = 2  # penumbra around
    array[3, 6:10, 8:13] = 1  # a core inside it
    labelmap = sitk.GetImageFromArray(array)
    labelmap.CopyInformation(volume.image)
    path = write_dicom_seg(labelmap, volume.series, tmp_path / "fate.dcm", labels=[ISCHAEMIC_CORE, PENUMBRA])

    seg = pydicom.dcmread(path)
    segments = {int(item.SegmentNumber): item for item in seg.SegmentSequence}
    assert [segments[n].SegmentLabel for n in (1, 2)] == ["Ischaemic core", "Penumbra"]
    assert (segments[1].SegmentedPropertyTypeCodeSequence[0].CodeValue,
            segments[1].SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator) == INFARCT
    assert (segments[2].SegmentedPropertyTypeCodeSequence[0].CodeValue,
            segments[2].SegmentedPropertyTypeCodeSequence[0].CodeMeaning) == ("52674009", "Ischemia")
    back = hd.seg.segread(path).get_pixels_by_source_instance(
        source_sop_instance_uids=written.sop_instance_uids, segment_numbers=[1, 2])
    assert np.array_equal(back[..., 0], array == 1) and np.array_equal(back[..., 1], array == 2)


def test_a_mask_stored_in_another_axis_order_gives_the_same_seg_and_another_grid_is_refused(one_series, tmp_path):
    image, written = one_series
    volume = read_dicom_volume(written.folder)
    mask = _boxes(volume.image)
    flipped = sitk.DICOMOrient(mask, "RAI")  # same voxels, other axis directions and order
    assert flipped.GetDirection() != mask.GetDirection()
    path = write_dicom_seg(flipped, volume.series, tmp_path / "flipped.dcm")
    back = hd.seg.segread(path).get_pixels_by_source_instance(
        source_sop_instance_uids=written.sop_instance_uids, segment_numbers=[1])[..., 0]
    assert np.array_equal(back, sitk.GetArrayFromImage(mask))
    shifted = sitk.Image(mask)
    shifted.SetOrigin(tuple(np.asarray(mask.GetOrigin()) + 0.4))  # 0.4 mm off: not the source voxels
    with pytest.raises(GeometryError, match="not on the grid of DICOM series"):
        write_dicom_seg(shifted, volume.series, tmp_path / "shifted.dcm")


def test_an_empty_mask_gives_a_seg_with_every_frame_empty(one_series, tmp_path):
    image, written = one_series
    volume = read_dicom_volume(written.folder)
    empty = sitk.Image(volume.image.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(volume.image)
    frames = _frames_by_source(write_dicom_seg(empty, volume.series, tmp_path / "empty.dcm"))
    assert len(frames) == 7 and not any(pixels.any() for pixels, _ in frames.values())


# ----------------------------------------------------------------------------- the command line
def _cli(capsys, *arguments) -> tuple[int, str]:
    """``lesionseg ARGUMENTS`` in this process: the exit code ``python -m lesionseg`` exits with (its
    ``__main__`` passes ``main``'s return value to ``sys.exit``) and stderr, without a subprocess's start-up."""
    from lesionseg.cli import main

    code = main([str(argument) for argument in arguments])
    return code, capsys.readouterr().err


def test_segment_refuses_a_folder_of_two_series_without_series_and_lists_both(two_series, tmp_path, capsys):
    folder, (_, flair), (_, dwi) = two_series
    from lesionseg.starter import starter_bundle_path

    code, stderr = _cli(capsys, "segment", starter_bundle_path(), folder, "-o", tmp_path / "mask.nii.gz")
    assert code == 2, stderr
    assert flair.series_uid in stderr and dwi.series_uid in stderr
    assert "--series" in stderr and "Traceback" not in stderr
    code, stderr = _cli(capsys, "segment", starter_bundle_path(), folder, "-o", tmp_path / "mask.nii.gz",
                        "--series", "9.9.9")
    assert code == 2 and "--series 9.9.9: no DICOM folder given holds this series" in stderr
    assert not (tmp_path / "mask.nii.gz").exists()


def test_a_dicom_seg_for_a_nifti_input_is_refused_with_the_reason(one_series, tmp_path, capsys):
    image, _ = one_series
    nifti = tmp_path / "flair.nii.gz"
    sitk.WriteImage(image, str(nifti))
    from lesionseg.starter import starter_bundle_path

    for arguments in (("-o", tmp_path / "lesion.dcm"), ("-o", tmp_path / "lesion", "--format", "dcm-seg")):
        code, stderr = _cli(capsys, "segment", starter_bundle_path(), nifti, *arguments)
        assert code == 2, stderr
        assert "is not a DICOM folder" in stderr and "a DICOM SEG must refer to the DICOM series" in stderr
        assert "--format seg" in stderr and "Traceback" not in stderr
    assert not list(tmp_path.glob("lesion*"))


@pytest.fixture(scope="module")
def phantom_series(tmp_path_factory):
    """A synthetic FLAIR head (skull, lesion) stored obliquely as a DICOM series."""
    from lesionseg.synth import make_case

    case = make_case(1, seed=3, modalities=("flair",), size_xyz=(96, 112, 16), spacing_mm=(2.0, 2.0, 7.0),
                     oblique_deg=10.0, lesion_age=(0.6, 1.0))
    image = sitk.Cast(case.channels["flair"], sitk.sitkInt16)
    return image, write_dicom_series(image, tmp_path_factory.mktemp("phantom"), seed=3)


@pytest.mark.slow
def test_segment_writes_a_seg_with_the_voxels_of_the_nifti_output(phantom_series, tmp_path, capsys):
    """The shipped starter model on a DICOM series, twice: NIfTI and DICOM SEG (in this process, to keep it short)."""
    from lesionseg.cli import main
    from lesionseg.starter import starter_bundle_path

    _, written = phantom_series
    common = [str(starter_bundle_path()), str(written.folder), "--device", "cpu", "--progress", "none", "--side", "left"]
    assert main(["segment", *common, "-o", str(tmp_path / "lesion.nii.gz")]) == 0
    assert main(["segment", *common, "-o", str(tmp_path / "lesion.dcm"), "--format", "dcm-seg"]) == 0
    nifti = sitk.ReadImage(str(tmp_path / "lesion.nii.gz"))
    expected = sitk.GetArrayFromImage(nifti)
    assert expected.sum() > 0  # a lesion was found, so that the comparison means something

    seg = hd.seg.segread(tmp_path / "lesion.dcm")
    back = seg.get_pixels_by_source_instance(source_sop_instance_uids=written.sop_instance_uids,
                                             segment_numbers=[1])[..., 0]
    for k, position in enumerate(written.positions):  # each source slice against the NIfTI slice at its position
        index = nifti.TransformPhysicalPointToIndex(position)
        assert index[:2] == (0, 0)
        assert np.array_equal(back[k], expected[index[2]])
    assert pydicom.dcmread(tmp_path / "lesion.dcm").ReferencedSeriesSequence[0].SeriesInstanceUID == written.series_uid


@pytest.mark.slow
def test_a_batch_writes_segs_for_dicom_cases_and_lists_the_others_as_failed(phantom_series, tmp_path):
    from lesionseg.data import discover
    from lesionseg.infer import Predictor, segment_cases
    from lesionseg.starter import starter_bundle_path

    image, written = phantom_series
    sitk.WriteImage(image, str(tmp_path / "nifti_case.nii.gz"))
    (tmp_path / "cases.csv").write_text(f"case_id,flair\ndicom_case,{written.folder}\nnifti_case,nifti_case.nii.gz\n")
    predictor = Predictor(starter_bundle_path(), device="cpu")
    cases = discover(tmp_path / "cases.csv", validate=False)
    result = segment_cases(predictor, cases, tmp_path / "out", output_format="dcm-seg", side="left")
    status = {row["case_id"]: row["status"] for row in result.rows}
    assert status["dicom_case"] == "ok" and result.failed == 1
    assert status["nifti_case"].startswith("failed: case nifti_case: its flair channel is not a DICOM folder")
    seg = pydicom.dcmread(tmp_path / "out" / "dicom_case.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == written.series_uid
    only_nifti = [case for case in cases if case.case_id == "nifti_case"]
    with pytest.raises(ParameterError, match="no case's flair channel is a DICOM folder"):
        segment_cases(predictor, only_nifti, tmp_path / "out2", output_format="dcm-seg")
