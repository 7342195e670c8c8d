"""lesionseg.data: discovery of every layout, validation, exports that give the same cases back, folds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.data import Case, discover, export_manifest, export_nnunet, folds
from lesionseg.errors import DatasetError, GeometryError, InputFileError, ParameterError
from lesionseg.io import read_image, write_image

from builders import small_mask, small_volume, write_isles_public


def test_isles_public_layout(tmp_path):
    truth = write_isles_public(tmp_path)
    (tmp_path / "dataset_description.json").write_text("{}")
    cases = discover(tmp_path)
    assert [c.case_id for c in cases] == ["sub-strokecase0001", "sub-strokecase0002", "sub-strokecase0003"]
    for case in cases:
        assert set(case.channels) == {"flair", "dwi", "adc"}
        assert case.patient_id == case.case_id
        assert np.array_equal(sitk.GetArrayFromImage(case.read_mask()), truth[case.case_id])


def test_isles_flat_layout_with_rawdata_prefix_and_mixed_case_suffixes(tmp_path):
    for i in (1, 2):
        subject = f"sub-strokecase{i:04d}"
        image = small_volume(i)
        write_image(image, tmp_path / "rawdata" / subject / "ses-0001" / f"{subject}_ses-0001_DWI.nii.gz")
        write_image(image, tmp_path / "rawdata" / subject / "ses-0001" / f"{subject}_ses-0001_Flair.nii.gz")
        write_image(image, tmp_path / "rawdata" / subject / "ses-0001" / f"{subject}_ses-0001_ncct.nii.gz")
        write_image(small_mask(i, image), tmp_path / "derivatives" / subject / "ses-0001" / f"{subject}_ses-0001_msk.nii.gz")
    cases = discover(tmp_path)
    assert [sorted(c.channels) for c in cases] == [["ct", "dwi", "flair"]] * 2
    assert all(c.mask is not None for c in cases)


def test_atlas_layout_and_sessions_of_one_patient(tmp_path):
    base = tmp_path / "ATLAS_2" / "Training" / "R001"
    for session in (1, 2):
        anat = base / "sub-r001s001" / f"ses-{session}" / "anat"
        stem = f"sub-r001s001_ses-{session}_space-MNI152NLin2009aSym"
        image = small_volume(session, spacing=(1.0, 1.0, 1.0))
        write_image(image, anat / f"{stem}_T1w.nii.gz")
        write_image(small_mask(session, image), anat / f"{stem}_label-L_desc-T1lesion_mask.nii.gz")
        write_image(small_mask(7, image), anat / f"{stem}_desc-brain_mask.nii.gz")  # not a lesion mask
    cases = discover(tmp_path / "ATLAS_2" / "Training" / "R001")
    assert [c.case_id for c in cases] == ["sub-r001s001_ses-1", "sub-r001s001_ses-2"]
    assert {c.patient_id for c in cases} == {"sub-r001s001"}
    assert all(list(c.channels) == ["t1w"] and "T1lesion" in c.mask.name for c in cases)
    assert folds(cases + [Case("x", "other", cases[0].channels, cases[0].mask)], k=2, seed=0)[0] != []


def test_nnunet_and_csv_exports_give_the_same_cases_back(tmp_path):
    write_isles_public(tmp_path / "isles", n=4, channels=("flair", "dwi"))
    original = discover(tmp_path / "isles")
    nnunet_root = export_nnunet(original, tmp_path / "nnunet_raw", dataset_id=7, dataset_name="Stroke")
    description = json.loads((nnunet_root / "dataset.json").read_text(encoding="utf-8"))
    assert description["channel_names"] == {"0": "DWI", "1": "FLAIR"} and description["numTraining"] == 4
    manifest = export_manifest(original, tmp_path / "lists" / "cases.csv")
    for exported in (discover(nnunet_root), discover(manifest)):
        assert [c.case_id for c in exported] == [c.case_id for c in original]
        for before, after in zip(original, exported):
            assert list(after.channels) == list(before.channels)
            for name in before.channels:
                assert np.array_equal(sitk.GetArrayFromImage(read_image(after.channels[name])),
                                      sitk.GetArrayFromImage(read_image(before.channels[name])))
            assert np.array_equal(sitk.GetArrayFromImage(after.read_mask()), sitk.GetArrayFromImage(before.read_mask()))


def test_csv_manifest_with_patients_and_unlabelled_cases(tmp_path):
    image = small_volume(0)
    write_image(image, tmp_path / "img" / "a.nii.gz")
    write_image(image, tmp_path / "img" / "b.nrrd")
    write_image(small_mask(0, image), tmp_path / "img" / "a_mask.nii.gz")
    (tmp_path / "cases.csv").write_text(
        "case_id,patient_id,FLAIR,mask\nA1,P1,img/a.nii.gz,img/a_mask.nii.gz\nB1,P1,img/b.nrrd,\n")
    cases = discover(tmp_path)  # a folder holding one manifest
    assert [(c.case_id, c.patient_id, list(c.channels), c.mask is not None) for c in cases] == [
        ("A1", "P1", ["flair"], True), ("B1", "P1", ["flair"], False)]
    with pytest.raises(DatasetError, match="B1.*no lesion mask"):
        discover(tmp_path, require_masks=True)
    with pytest.raises(DatasetError, match="B1 has no lesion mask"):
        cases[1].read_mask()


def test_channels_of_different_geometry_are_accepted_unless_aligned_channels_are_required(tmp_path):
    write_isles_public(tmp_path, n=1, channels=("flair", "dwi"))
    dwi = next(tmp_path.rglob("*_dwi.nii.gz"))
    write_image(small_volume(3, spacing=(1.0, 1.0, 5.0)), dwi)
    with pytest.raises(GeometryError, match=r"channel 'flair'.*spacing.*--require-aligned"):
        discover(tmp_path, allow_unaligned_channels=False)
    (case,) = discover(tmp_path)  # the default: prepare will register them
    assert case.metadata["alignment"]["registered"] == ["flair"] and case.metadata["alignment"]["reference"] == "dwi"


def test_mask_on_another_grid_and_multilabel_mask_are_refused(tmp_path):
    write_isles_public(tmp_path, n=1, channels=("flair",))
    mask_path = next(tmp_path.rglob("*_msk.nii.gz"))
    shifted = small_volume(0)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    write_image(small_mask(0, shifted), mask_path)
    with pytest.raises(GeometryError, match="mask .* not on the grid"):
        discover(tmp_path)
    write_image(small_mask(0, small_volume(0), labels=(1, 2)), mask_path)
    with pytest.raises(InputFileError, match=r"labels found: 0, 1, 2"):
        discover(tmp_path)


def test_empty_folder_missing_path_and_unknown_layout(tmp_path):
    with pytest.raises(InputFileError, match="empty folder"):
        discover(tmp_path)
    with pytest.raises(InputFileError, match="does not exist"):
        discover(tmp_path / "nowhere")
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a dataset LesionSeg recognises"):
        discover(tmp_path)


def _cases_with_volumes(n_patients: int, cases_per_patient: int = 1):
    cases, volumes = [], {}
    for p in range(n_patients):
        for c in range(cases_per_patient):
            case_id = f"p{p:02d}c{c}"
            cases.append(Case(case_id, f"p{p:02d}", {"flair": Path(f"{case_id}.nii.gz")}))
            volumes[case_id] = float((p * 37) % 50)
    return cases, volumes


def test_folds_group_patients_stratify_volume_and_are_deterministic():
    cases, volumes = _cases_with_volumes(23, cases_per_patient=2)
    split = folds(cases, k=5, seed=3, lesion_volumes_ml=volumes)
    assert sorted(sum(split, [])) == sorted(c.case_id for c in cases)  # each case in exactly one fold
    patient_fold = {}
    for index, ids in enumerate(split):
        for case_id in ids:
            assert patient_fold.setdefault(case_id[:3], index) == index  # a patient never spans two folds
    assert max(map(len, split)) - min(map(len, split)) <= 2  # one patient (2 cases) at most
    def spread(partition):
        means = [np.mean([volumes[c] for c in ids]) for ids in partition]
        return max(means) - min(means)

    # stratified: the fold means of lesion volume differ less than for most random patient-level splits
    rng = np.random.default_rng(0)
    patients = sorted({c.patient_id for c in cases})
    random_spreads = []
    for _ in range(200):
        order = rng.permutation(patients)
        fold_of = {p: i % 5 for i, p in enumerate(order)}
        random_spreads.append(spread([[c.case_id for c in cases if fold_of[c.patient_id] == f] for f in range(5)]))
    assert spread(split) < np.percentile(random_spreads, 25)
    assert folds(cases, k=5, seed=3, lesion_volumes_ml=volumes) == split
    assert folds(cases, k=5, seed=4, lesion_volumes_ml=volumes) != split
    with pytest.raises(ParameterError, match="at least 2"):
        folds(cases, k=1, lesion_volumes_ml=volumes)
    with pytest.raises(ParameterError, match="at least 30 patients"):
        folds(cases, k=30, lesion_volumes_ml=volumes)
