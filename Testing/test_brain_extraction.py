"""Brain extraction on the synthetic heads: Dice against the phantom's intracranial mask, scale invariance,
thick slices, the user mask, and refusals that name the case (the choice of method, the learned extractors
and the plausibility rule: test_brain_methods.py and test_learned_brain.py)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import GeometryError, LesionSegError, ParameterError, PreprocessingError
from lesionseg.preprocess import brain_classical
from lesionseg.preprocess.brain import extract_brain
from lesionseg.synth import make_case

# A reduced grid (1.5 x 1.5 x 3 mm, the same 192 x 225 x 144 mm field of view as the default case):
# coarser in-plane voxels mean more partial volume at the skull, so the Dice check is not weakened.
SMALL = {"size_xyz": (128, 150, 48), "spacing_mm": (1.5, 1.5, 3.0)}
MIN_DICE = 0.95


def _dice(mask: sitk.Image, truth: sitk.Image) -> float:
    a = sitk.GetArrayViewFromImage(mask) > 0
    b = sitk.GetArrayViewFromImage(truth) > 0
    return float(2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


@pytest.fixture(scope="module")
def case_mri_ct():
    return make_case(1, seed=0, modalities=("flair", "dwi", "ct"), **SMALL)


def _as_float_times(image: sitk.Image, factor: float) -> sitk.Image:
    return sitk.Cast(image, sitk.sitkFloat32) * factor


def test_mri_dice_and_same_mask_at_any_intensity_scale(case_mri_ct):
    flair = case_mri_ct.channels["flair"]
    reference = extract_brain(flair, "mri")
    assert reference.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(sitk.GetArrayViewFromImage(reference))) <= {0, 1}
    assert reference.GetSize() == flair.GetSize() and reference.GetOrigin() == flair.GetOrigin()
    assert _dice(reference, case_mri_ct.brain_mask) >= MIN_DICE
    for factor in (0.3, 3.0):
        scaled = extract_brain(_as_float_times(flair, factor), "mri")
        assert _dice(scaled, case_mri_ct.brain_mask) >= MIN_DICE, factor
        # Same parameters, same answer: every threshold comes from the image itself.
        same = np.array_equal(sitk.GetArrayViewFromImage(scaled), sitk.GetArrayViewFromImage(reference))
        assert same, factor


def test_dwi_dice(case_mri_ct):
    assert _dice(extract_brain(case_mri_ct.channels["dwi"], "mri"), case_mri_ct.brain_mask) >= MIN_DICE


def test_ct_dice_int16_and_float(case_mri_ct):
    ct = case_mri_ct.channels["ct"]
    assert ct.GetPixelID() == sitk.sitkInt16
    mask = extract_brain(ct, "ct")
    assert _dice(mask, case_mri_ct.brain_mask) >= MIN_DICE
    as_float = extract_brain(sitk.Cast(ct, sitk.sitkFloat32), "ct")
    assert np.array_equal(sitk.GetArrayViewFromImage(as_float), sitk.GetArrayViewFromImage(mask))


@pytest.mark.slow
def test_thick_slices_one_by_one_by_five_mm():
    case = make_case(3, seed=0, modalities=("flair", "ct"), size_xyz=(192, 224, 29),
                     spacing_mm=(1.0, 1.0, 5.0))
    assert _dice(extract_brain(case.channels["flair"], "mri"), case.brain_mask) >= MIN_DICE
    assert _dice(extract_brain(case.channels["ct"], "ct"), case.brain_mask) >= MIN_DICE


def test_morphology_radii_are_millimetres_per_axis():
    image = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    image.SetSpacing((1.0, 1.0, 3.0))
    assert brain_classical._radius(image, 3.0) == [3, 3, 1]
    image.SetSpacing((0.5, 0.5, 5.0))
    assert brain_classical._radius(image, 2.0) == [4, 4, 1]


def test_user_mask_always_wins_and_is_binarised(case_mri_ct):
    flair = case_mri_ct.channels["flair"]
    user = sitk.Cast(case_mri_ct.lesion_mask, sitk.sitkUInt8) * 255  # any mask, here not a brain at all
    result = extract_brain(flair, "mri", user_mask=user)
    expected = sitk.GetArrayViewFromImage(case_mri_ct.lesion_mask) > 0
    assert np.array_equal(sitk.GetArrayViewFromImage(result), expected.astype(np.uint8))
    # Even for an image in which nothing could be found.
    blank = sitk.Image(flair.GetSize(), sitk.sitkInt16)
    blank.CopyInformation(flair)
    assert np.array_equal(sitk.GetArrayFromImage(extract_brain(blank, "ct", user_mask=user)),
                          expected.astype(np.uint8))
    shifted = sitk.Image(user)
    shifted.SetOrigin(tuple(o + 5.0 for o in user.GetOrigin()))
    with pytest.raises(GeometryError, match="case c9: the brain mask is not on the image's grid"):
        extract_brain(flair, "mri", user_mask=shifted, case_id="c9")


def _no_brain_message(image: sitk.Image, modality: str) -> str:
    with pytest.raises(PreprocessingError) as caught:
        extract_brain(image, modality, case_id="sub-strokecase0042")
    assert isinstance(caught.value, LesionSegError) and caught.value.exit_code == 2
    return str(caught.value)


def _blank(value: float = 0.0, size=(64, 72, 24), spacing=(3.0, 3.0, 6.0)) -> sitk.Image:
    image = sitk.Image(list(size), sitk.sitkFloat32) + value
    image.SetSpacing(spacing)
    return image


def test_nothing_found_names_the_case():
    for image, modality in ((_blank(0.0), "mri"), (_blank(5.0), "mri"), (_blank(-1000.0), "ct")):
        message = _no_brain_message(image, modality)
        assert message.startswith("case sub-strokecase0042: brain extraction found no brain in the")
        assert "--brain-mask" in message


def test_pure_noise_is_not_a_brain():
    rng = np.random.default_rng(0)
    noise = sitk.GetImageFromArray(rng.normal(100.0, 30.0, (24, 72, 64)).astype(np.float32))
    noise.SetSpacing((3.0, 3.0, 6.0))
    assert "found no brain in the MRI image" in _no_brain_message(noise, "mri")
    ct_noise = sitk.GetImageFromArray(rng.normal(-500.0, 400.0, (24, 72, 64)).astype(np.float32))
    ct_noise.SetSpacing((3.0, 3.0, 6.0))
    assert "found no brain in the CT image" in _no_brain_message(ct_noise, "ct")


def test_nan_voxels_refused_before_extraction(case_mri_ct):
    array = sitk.GetArrayFromImage(case_mri_ct.channels["flair"]).astype(np.float32)
    array[10, 20, 30] = np.nan
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(case_mri_ct.channels["flair"])
    with pytest.raises(PreprocessingError, match="case c1: the MRI image holds NaN or infinite voxels"):
        extract_brain(image, "mri", case_id="c1")


def test_bad_options():
    with pytest.raises(ParameterError, match="modality"):
        extract_brain(_blank(), "pet")
    with pytest.raises(ParameterError, match="method"):
        extract_brain(_blank(), "mri", method="bet2")
