"""ISLES'24 discovery on fixtures shaped like the release (both spellings), the follow-up mask, the choice of
the NCCT-grid derivatives, the perfusion maps without units refused as prepare channels, and a case without its NCCT.

The fixtures follow the archive's tree (``raw_data/sub-strokeNNNN/ses-01/..._ncct.nii.gz``, ``_cta``, the 4D
``_ctp``, ``perfusion-maps/..._{tmax,mtt,cbf,cbv}``; ``derivatives/.../ses-01/..._space-ncct_*`` and
``derivatives/.../ses-02/..._space-ncct_{dwi,adc,lesion-msk}``) or the README's (``rawdata/``, ``ses-0001``),
with the real kinds of grids (a thin-slice NCCT, a thick-slab CT perfusion on its own grid, a CTA on a
third) but few voxels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.data import detect_layout, discover
from lesionseg.errors import DatasetError, ParameterError
from lesionseg.io import read_geometry, write_image

from builders import small_volume

MAPS = ("tmax", "mtt", "cbf", "cbv")
SPELLINGS = {"zenodo": ("raw_data", "01", "02"), "readme": ("rawdata", "0001", "0002")}


def _grid(size, spacing, origin=(0.0, 0.0, 0.0), seed=0) -> sitk.Image:
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.normal(40.0, 10.0, size[::-1]).astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _lesion(seed: int, reference: sitk.Image) -> sitk.Image:
    """A box of lesion at a seeded place, on the reference's grid."""
    array = np.zeros(reference.GetSize()[::-1], np.uint8)
    z, y, x = np.random.default_rng(seed).integers(0, 6, 3)
    array[z:z + 3, y:y + 5, x:x + 4] = 1
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(reference)
    return mask


def _ncct(seed: int) -> sitk.Image:
    return _grid((32, 32, 12), (0.45, 0.45, 2.0), seed=seed)


def _ctp_grid(seed: int) -> sitk.Image:  # CT perfusion: a thick slab on its own grid
    return _grid((24, 24, 4), (0.6, 0.6, 5.0), origin=(1.0, -2.0, 6.0), seed=seed)


def write_isles24(root: Path, subjects=(1, 2), spelling: str = "zenodo", *, derivative_maps: bool = True,
                  ncct_image=None, mask_image=None, skip_ncct=()) -> dict[str, sitk.Image]:
    """Write an ISLES'24-shaped tree; returns each subject's NCCT (the reference of its case)."""
    raw, acute, later = SPELLINGS[spelling]
    written = {}
    for index in subjects:
        subject = f"sub-stroke{index:04d}"
        ncct = ncct_image(index) if ncct_image else _ncct(index)
        written[subject] = ncct
        raw_acute = root / raw / subject / f"ses-{acute}"
        stem = f"{subject}_ses-{acute}"
        if index not in skip_ncct:
            write_image(ncct, raw_acute / f"{stem}_ncct.nii.gz")
        write_image(_grid((30, 30, 10), (0.5, 0.5, 0.8), origin=(-1.0, 0.0, 2.0), seed=index),
                    raw_acute / f"{stem}_cta.nii.gz")
        frames = [_ctp_grid(index + t) for t in range(3)]
        write_image(sitk.JoinSeries(frames), raw_acute / f"{stem}_ctp.nii.gz")  # 4D: x, y, z, time
        for name in MAPS:
            write_image(_ctp_grid(index), raw_acute / "perfusion-maps" / f"{stem}_{name}.nii.gz")
        derived_acute = root / "derivatives" / subject / f"ses-{acute}"
        write_image(ncct * 0 + 100.0, derived_acute / f"{stem}_space-ncct_cta.nii.gz")
        if derivative_maps:
            for name in MAPS:
                write_image(ncct * 0 + 5.0, derived_acute / "perfusion-maps" / f"{stem}_space-ncct_{name}.nii.gz")
        vessels = sitk.Cast(ncct > 1e9, sitk.sitkUInt8)
        write_image(vessels, derived_acute / f"{stem}_space-ncct_lvo-msk.nii.gz")
        write_image(vessels, derived_acute / f"{stem}_space-ncct_cow-msk.nii.gz")
        derived_later = root / "derivatives" / subject / f"ses-{later}"
        later_stem = f"{subject}_ses-{later}"
        write_image(ncct, derived_later / f"{later_stem}_space-ncct_dwi.nii.gz")
        write_image(ncct, derived_later / f"{later_stem}_space-ncct_adc.nii.gz")
        mask = mask_image(index) if mask_image else _lesion(index, ncct)
        write_image(mask, derived_later / f"{later_stem}_space-ncct_lesion-msk.nii.gz")
    return written


def _same_grid(path_a: Path, image: sitk.Image) -> bool:
    a = read_geometry(path_a)
    return a.size == tuple(image.GetSize()) and np.allclose(a.spacing, image.GetSpacing()) and \
        np.allclose(a.origin, image.GetOrigin())


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_both_spellings_give_the_acute_channels_on_the_ncct_grid_and_the_follow_up_mask(tmp_path, spelling):
    ncct = write_isles24(tmp_path, spelling=spelling)
    raw, acute, later = SPELLINGS[spelling]
    assert detect_layout(tmp_path)[0] == "isles24"
    cases = discover(tmp_path, allow_unaligned_channels=True)
    assert [c.case_id for c in cases] == ["sub-stroke0001", "sub-stroke0002"]  # one case per subject
    for case in cases:
        assert case.patient_id == case.case_id
        assert list(case.channels) == ["ct", "cta", *MAPS]  # the NCCT (reference) first
        assert case.channels["ct"].name == f"{case.case_id}_ses-{acute}_ncct.nii.gz"
        assert raw in case.channels["ct"].parts
        for name in ("cta", *MAPS):  # the derivatives on the NCCT grid are preferred to the raw images
            assert "derivatives" in case.channels[name].parts and "space-ncct" in case.channels[name].name
            assert _same_grid(case.channels[name], ncct[case.case_id])
        assert case.mask.name == f"{case.case_id}_ses-{later}_space-ncct_lesion-msk.nii.gz"
        assert np.array_equal(sitk.GetArrayFromImage(case.read_mask()),
                              sitk.GetArrayFromImage(_lesion(int(case.case_id[-4:]), ncct[case.case_id])))
        metadata = case.metadata
        assert (metadata["layout"], metadata["acute_session"], metadata["follow_up_session"]) == ("isles24", acute, later)
        assert metadata["register_onto_ct"] == [] and set(metadata["channel_space"].values()) == {"ncct"}
        assert metadata["mask_session"] == later and metadata["ctp"].endswith(f"ses-{acute}_ctp.nii.gz")
        assert set(metadata["follow_up_images"]) == {"dwi", "adc"}  # kept aside, not channels
        assert set(metadata["vessel_masks"]) == {"lvo-msk", "cow-msk"}  # not lesion masks


def test_raw_maps_are_used_where_no_ncct_grid_copy_exists_and_marked_for_registration(tmp_path):
    ncct = write_isles24(tmp_path, subjects=(3,), derivative_maps=False)
    (case,) = discover(tmp_path, allow_unaligned_channels=True)
    for name in MAPS:
        path = case.channels[name]
        assert "derivatives" not in path.parts and path.parent.name == "perfusion-maps"
        assert not _same_grid(path, ncct["sub-stroke0003"])  # the CT-perfusion grid, read from the header
        assert _same_grid(path, _ctp_grid(3))
        assert case.metadata["channel_space"][name] == "ctp"
    assert case.metadata["register_onto_ct"] == list(MAPS)
    assert case.metadata["channel_space"]["cta"] == "ncct"  # its derivative is still there


def test_isles22_flat_trees_with_an_ncct_stay_isles22(tmp_path):
    subject = "sub-strokecase0001"
    image = small_volume(1)
    for suffix in ("dwi", "flair", "ncct"):
        write_image(image, tmp_path / "rawdata" / subject / "ses-0001" / f"{subject}_ses-0001_{suffix}.nii.gz")
    assert detect_layout(tmp_path)[0] == "bids"


def test_perfusion_maps_without_an_ncct_of_the_same_session_are_refused_with_a_sentence(tmp_path, capsys):
    from lesionseg.cli import main

    write_isles24(tmp_path, subjects=(1, 2), skip_ncct=(2,))
    with pytest.raises(DatasetError) as caught:
        discover(tmp_path, allow_unaligned_channels=True)
    message = str(caught.value)
    assert message.startswith("case sub-stroke0002: ses-01 holds cbf, cbv, cta, ctp, mtt, tmax but no NCCT of "
                              "the same session (sub-stroke0002_ses-01_ncct.nii.gz)")
    assert main(["cases", str(tmp_path)]) == 2
    assert "sub-stroke0002" in capsys.readouterr().err


def test_a_subject_with_follow_up_images_only_is_named_not_dropped(tmp_path):
    write_isles24(tmp_path, subjects=(1,))
    later = tmp_path / "derivatives" / "sub-stroke0009" / "ses-02"
    write_image(_ncct(9), later / "sub-stroke0009_ses-02_space-ncct_dwi.nii.gz")
    with pytest.raises(DatasetError, match=r"^case sub-stroke0009: no NCCT \(sub-stroke0009_ses-01_ncct.nii.gz\) in "
                                           r"any session, only sub-stroke0009_ses-02_space-ncct_dwi.nii.gz"):
        discover(tmp_path, allow_unaligned_channels=True)


def test_perfusion_maps_without_units_are_refused_as_prepare_channels(tmp_path, capsys):
    from lesionseg.cli import main

    write_isles24(tmp_path, subjects=(1,))  # the maps have no JSON sidecar giving their units
    out = tmp_path / "prepared"
    for channels in (["--channels", "ct,tmax,cbf"], []):  # asked for, or every channel of the first case
        assert main(["prepare", str(tmp_path), str(out), *channels]) == 2
        error = capsys.readouterr().err
        assert "perfusion map" in error and "has no JSON sidecar giving its units" in error
        assert '{"Units": "s"}' in error
    assert not out.exists() or not any(out.rglob("*.npz"))
    from lesionseg.preprocess import PrepareConfig

    assert PrepareConfig(channels=["tmax"]).channels == ["tmax"]  # maps with units are accepted now


def test_prepare_takes_the_ncct_with_the_follow_up_mask(tmp_path):
    from lesionseg.preprocess import PrepareConfig, PreparedDataset, prepare_dataset
    from lesionseg.synth import make_case

    heads = {i: make_case(i, seed=5, modalities=("ct",), size_xyz=(96, 112, 24), spacing_mm=(2.0, 2.0, 6.0))
             for i in (1,)}
    write_isles24(tmp_path, subjects=(1,), ncct_image=lambda i: heads[i].channels["ct"],
                  mask_image=lambda i: heads[i].lesion_mask)
    config = PrepareConfig(channels=["ct"], size=32, negatives=0.0, registration=[], brain_extraction="auto")
    summary = prepare_dataset(tmp_path, tmp_path / "prepared", config)
    assert summary["cases"] == 1 and summary["lesion_slices"] > 0
    prepared = PreparedDataset(tmp_path / "prepared")
    record = prepared.record("sub-stroke0001")
    assert record.inputs["mask"].endswith("ses-02_space-ncct_lesion-msk.nii.gz")
    assert record.steps["brain_extraction"]["method"] == "classical"  # CT: always the classical pipeline
    truth_slices = int(np.count_nonzero(sitk.GetArrayViewFromImage(heads[1].lesion_mask).reshape(24, -1).any(1)))
    assert summary["lesion_slices"] == truth_slices  # axial grid: one prepared slice per native lesion slice
