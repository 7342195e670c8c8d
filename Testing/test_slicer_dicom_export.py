"""The Inference panel's "Export DICOM SEG...", without Qt: real MRML nodes (slicer-core), a DICOM series written
here with pydicom, the panel's result loaded as the panel loads it, and the SEG read back with pydicom.

A volume loaded by Slicer's DICOM module carries its files' SOP Instance UIDs in the ``DICOM.instanceUIDs``
attribute, and the DICOM database maps each to its file; both are stood in for here (the attribute set by hand,
the database by a dictionary).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from dicom_builders import oblique_grid_image, write_dicom_series

pydicom = pytest.importorskip("pydicom", reason="pydicom comes with highdicom (the [dicom] and [test] extras)")
pytest.importorskip("highdicom", reason="DICOM SEG needs highdicom (the [dicom] and [test] extras)")

pytestmark = pytest.mark.usefixtures("slicer_module_folders")

LESION = np.s_[2:5, 6:12, 5:14]        # 3 x 6 x 9 voxels (z, y, x)
EDIT = np.s_[5, 14:17, 16:20]          # a lesion drawn by hand afterwards: 1 x 3 x 4 voxels


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    image = oblique_grid_image(np.random.default_rng(4).integers(0, 800, (7, 20, 24)).astype(np.int16))
    return image, write_dicom_series(image, tmp_path_factory.mktemp("dicom"), seed=4)


def _result(scene, series_record, tmp_path, *, from_dicom: bool = True):
    """The panel's result on a volume loaded from the series: the job's files read by ``load_results``."""
    from lesionseg.io import read_dicom_volume, write_image
    from lesionseg.mrml import volume_node_from_image

    from LesionSegInferenceLib import DICOM_UIDS_ATTRIBUTE
    from LesionSegInferenceLib.Results import load_results, output_files

    volume = read_dicom_volume(series_record.folder)
    node = volume_node_from_image(scene, volume.image, "FLAIR")
    if from_dicom:
        node.SetAttribute(DICOM_UIDS_ATTRIBUTE, " ".join(reversed(series_record.sop_instance_uids)))
    lesion = np.zeros(sitk.GetArrayViewFromImage(volume.image).shape, np.uint8)
    lesion[LESION] = 1
    files = output_files(tmp_path)
    for key, array in (("labelmap", lesion), ("probability", lesion.astype(np.float32))):
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(volume.image)
        write_image(image, files[key])
    files["lesions"].write_text(json.dumps([]))
    return load_results(scene, tmp_path, node, threshold=0.5, min_lesion_mm3=0.0, fill_holes=False,
                        bundle_path="models/flair.lsb"), volume.image


def test_export_writes_the_segment_as_edited_referring_to_the_volumes_series(slicer_scene, series, tmp_path):
    from lesionseg.mrml import write_label_segment

    from LesionSegInferenceLib import InferenceLogic

    _, scene, _ = slicer_scene
    _, written = series
    logic = InferenceLogic(scene)
    logic.result, image = _result(scene, written, tmp_path / "job")
    assert logic.dicom_export_readiness() == (True, "")

    edited = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    edited[LESION] = 1
    edited[EDIT] = 1  # the annotator added a lesion in the Segment Editor
    edited_image = sitk.GetImageFromArray(edited)
    edited_image.CopyInformation(image)
    write_label_segment(scene, edited_image, logic.result.reference_volume, node=logic.result.segmentation_node,
                        segment_id=logic.result.segment_id)

    files = dict(zip(written.sop_instance_uids, map(str, written.files)))
    path = logic.export_dicom_seg(tmp_path / "lesion.dcm", files.get)

    seg = pydicom.dcmread(path)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == written.series_uid
    assert seg.StudyInstanceUID == written.study_uid and seg.FrameOfReferenceUID == written.frame_of_reference_uid
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "55641003"
    assert seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "LesionSeg"
    pixels = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    seen = set()
    for index, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = written.sop_instance_uids.index(uid)
        np.testing.assert_allclose([float(v) for v in group.PlanePositionSequence[0].ImagePositionPatient],
                                   written.positions[k], atol=1e-4)
        assert np.array_equal(pixels[index], edited[k])
        seen.add(k)
    assert seen == set(np.flatnonzero(edited.any(axis=(1, 2))))  # the edited slice 5 included


def test_a_result_of_two_classes_exports_one_seg_segment_per_class(slicer_scene, series, tmp_path):
    """Core (1) and penumbra (2) from a perfusion bundle: two SEG segments with their own SNOMED CT types, each
    frame holding its class's voxels as the segments hold them now."""
    from lesionseg.io import read_dicom_volume, write_image
    from lesionseg.labels import ISCHAEMIC_CORE, PENUMBRA
    from lesionseg.mrml import volume_node_from_image

    from LesionSegInferenceLib import DICOM_UIDS_ATTRIBUTE, InferenceLogic
    from LesionSegInferenceLib.Results import load_results, output_files

    _, scene, _ = slicer_scene
    _, written = series
    volume = read_dicom_volume(written.folder)
    node = volume_node_from_image(scene, volume.image, "Tmax")
    node.SetAttribute(DICOM_UIDS_ATTRIBUTE, " ".join(written.sop_instance_uids))
    values = np.zeros(sitk.GetArrayViewFromImage(volume.image).shape, np.uint8)
    values[1:6, 4:14, 3:16] = PENUMBRA.value
    values[LESION] = ISCHAEMIC_CORE.value  # the core inside the penumbra
    files = output_files(tmp_path / "job")
    files["labelmap"].parent.mkdir(parents=True, exist_ok=True)
    for key, array in (("labelmap", values), ("probability", (values > 0).astype(np.float32))):
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(volume.image)
        write_image(image, files[key])
    files["lesions"].write_text(json.dumps([]))
    logic = InferenceLogic(scene)
    logic.result = load_results(scene, tmp_path / "job", node, threshold=0.5, min_lesion_mm3=0.0, fill_holes=False,
                                bundle_path="models/perfusion.lsb", labels=[ISCHAEMIC_CORE, PENUMBRA])
    files_of = dict(zip(written.sop_instance_uids, map(str, written.files)))
    seg = pydicom.dcmread(logic.export_dicom_seg(tmp_path / "classes.dcm", files_of.get))

    codes = [item.SegmentedPropertyTypeCodeSequence[0].CodeValue for item in seg.SegmentSequence]
    assert codes == ["55641003", "52674009"]  # Infarct, Ischemia
    assert [item.SegmentLabel for item in seg.SegmentSequence] == [ISCHAEMIC_CORE.name, PENUMBRA.name]
    pixels = seg.pixel_array.reshape(int(seg.NumberOfFrames), seg.Rows, seg.Columns)
    found = {1: np.zeros_like(values), 2: np.zeros_like(values)}
    for index, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        found[number][written.sop_instance_uids.index(uid)] |= pixels[index].astype(np.uint8)
    assert np.array_equal(found[1], (values == ISCHAEMIC_CORE.value).astype(np.uint8))
    assert np.array_equal(found[2], (values == PENUMBRA.value).astype(np.uint8))


def test_export_is_refused_with_a_reason_for_a_volume_not_from_dicom_or_files_gone(slicer_scene, series, tmp_path):
    from lesionseg.errors import InputFileError, ParameterError

    from LesionSegInferenceLib import InferenceLogic, export_readiness

    _, scene, _ = slicer_scene
    _, written = series
    logic = InferenceLogic(scene)
    ok, reason = logic.dicom_export_readiness()
    assert not ok and "no segmentation to export" in reason

    logic.result, _ = _result(scene, written, tmp_path / "nifti", from_dicom=False)
    ok, reason = logic.dicom_export_readiness()
    assert not ok and "was not loaded from DICOM" in reason and ".seg.nrrd" in reason
    with pytest.raises(ParameterError, match="was not loaded from DICOM"):
        logic.export_dicom_seg(tmp_path / "x.dcm", {}.get)

    logic.result, _ = _result(scene, written, tmp_path / "dicom")
    with pytest.raises(InputFileError, match=r"7 of the 7 DICOM files of FLAIR\S* are no longer in the DICOM database"):
        logic.export_dicom_seg(tmp_path / "x.dcm", {}.get)
    assert not (tmp_path / "x.dcm").exists()
    ok, reason = export_readiness(logic.result, scene, problem=lambda: "highdicom needs pydicom 3.")
    assert (ok, reason) == (False, "highdicom needs pydicom 3.")
