"""Intensity normalisation: MRI z-score in the brain, CT windowing, refusal or replacement of NaN voxels."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import GeometryError, LesionSegError, ParameterError, PreprocessingError
from lesionseg.preprocess.normalise import check_finite, normalise_mri, window_ct


def _image(array_zyx: np.ndarray, spacing=(1.0, 1.0, 3.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array_zyx)
    image.SetSpacing(spacing)
    image.SetOrigin((-10.0, 4.0, 2.0))
    return image


def _mri_and_mask(seed: int = 0):
    """A 6x16x16 'MRI': a brain cube with a few outliers, background 0; the mask is the cube."""
    rng = np.random.default_rng(seed)
    array = np.zeros((6, 16, 16), np.float32)
    array[1:5, 3:13, 3:13] = rng.normal(500.0, 60.0, (4, 10, 10))
    array[2, 5, 5] = 5000.0  # a bright outlier the percentile clip must tame
    array[3, 7, 7] = 1.0
    mask = np.zeros(array.shape, np.uint8)
    mask[1:5, 3:13, 3:13] = 1
    return _image(array), _image(mask)


def test_mri_zscore_matches_an_independent_computation():
    image, mask = _mri_and_mask()
    out = normalise_mri(image, mask, clip_percentiles=(1.0, 99.0))
    assert out.GetPixelID() == sitk.sitkFloat32
    assert out.GetSize() == image.GetSize() and out.GetSpacing() == image.GetSpacing()
    assert out.GetOrigin() == image.GetOrigin()
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    inside = sitk.GetArrayFromImage(mask) > 0
    # Independent: SciPy's z-score of the clipped brain values (population standard deviation).
    from scipy import stats

    low, high = np.percentile(array[inside], [1.0, 99.0])
    expected_brain = stats.zscore(np.clip(array[inside], low, high))
    result = sitk.GetArrayFromImage(out)
    np.testing.assert_allclose(result[inside], expected_brain, rtol=1e-5, atol=1e-5)
    assert abs(result[inside].mean()) < 1e-5 and abs(result[inside].std() - 1.0) < 1e-5
    # The outlier was clipped: nothing above the z-score of the brain's 99th percentile.
    clipped = np.clip(array[inside], low, high)
    assert result.max() <= (high - clipped.mean()) / clipped.std() + 1e-4
    # Outside the brain: the background (0) is clipped to the low percentile, then mapped the same way.
    outside_value = (low - clipped.mean()) / clipped.std()
    np.testing.assert_allclose(result[~inside], outside_value, rtol=1e-5)


def test_default_clip_keeps_every_voxel_of_a_bright_lesion_filling_3_percent_of_the_brain():
    """A FLAIR lesion is the brightest tissue: the default clip must not flatten it (99.5 % clipped about 16 %
    of this lesion's voxels to one value), so the lesion's voxels map through the same affine map as the rest."""
    rng = np.random.default_rng(4)
    array = np.zeros((10, 40, 40), np.float32)
    array[1:9, 2:38, 2:38] = rng.normal(100.0, 5.0, (8, 36, 36))  # healthy brain, 10,368 voxels
    lesion = np.zeros(array.shape, bool)
    lesion[3:6, 10:20, 10:20] = True  # 300 voxels, 2.9 % of the brain
    array[lesion] = rng.uniform(150.0, 250.0, 300)
    mask = np.zeros(array.shape, np.uint8)
    mask[1:9, 2:38, 2:38] = 1
    result = sitk.GetArrayFromImage(normalise_mri(_image(array), _image(mask))).astype(np.float64)
    healthy = (mask > 0) & ~lesion & (result > result[mask > 0].min())  # not clipped by the low percentile
    slope, intercept = np.polyfit(array[healthy], result[healthy], 1)  # the map, from healthy voxels alone
    off_the_map = np.abs(result[lesion] - (slope * array[lesion] + intercept)) > 1e-4
    # Only the brain's top 0.01 % (here 1-2 voxels: the brightest of the lesion) may be clipped.
    assert np.count_nonzero(off_the_map) <= 2
    assert np.count_nonzero(result[lesion] == result.max()) <= 2


@pytest.mark.parametrize("factor", [0.3, 3.0, 1000.0])
def test_mri_zscore_does_not_depend_on_the_intensity_scale(factor):
    image, mask = _mri_and_mask(1)
    reference = sitk.GetArrayFromImage(normalise_mri(image, mask))
    scaled = sitk.GetArrayFromImage(normalise_mri(image * factor, mask))
    np.testing.assert_allclose(scaled, reference, rtol=1e-4, atol=1e-4)


def test_mri_bad_inputs():
    image, mask = _mri_and_mask()
    with pytest.raises(PreprocessingError, match="case c7: the brain mask of channel flair is empty"):
        normalise_mri(image, mask * 0, case_id="c7", channel="flair")
    flat = _image(np.full((6, 16, 16), 7.0, np.float32))
    with pytest.raises(PreprocessingError, match="case c7: channel dwi has the same intensity"):
        normalise_mri(flat, mask, case_id="c7", channel="dwi")
    with pytest.raises(ParameterError, match="clip percentiles"):
        normalise_mri(image, mask, clip_percentiles=(99.0, 1.0))
    other_grid = _image(sitk.GetArrayFromImage(mask), spacing=(1.0, 1.0, 5.0))
    with pytest.raises(GeometryError, match="not on the flair image's grid"):
        normalise_mri(image, other_grid, channel="flair")


def test_ct_window_maps_hand_computed_values():
    hu = np.array([[[-1000.0, -5.0, 0.0, 20.0, 40.0, 80.0, 100.0, 1500.0]]], np.float32)
    out = sitk.GetArrayFromImage(window_ct(_image(hu.astype(np.int16))))
    np.testing.assert_allclose(out.ravel(), [0, 0, 0, 0.25, 0.5, 1, 1, 1], atol=1e-6)
    custom = sitk.GetArrayFromImage(window_ct(_image(hu), window=(-20.0, 100.0)))
    expected = np.array([0, 15, 20, 40, 60, 100, 120, 120]) / 120.0
    np.testing.assert_allclose(custom.ravel(), expected, atol=1e-6)
    assert window_ct(_image(hu)).GetPixelID() == sitk.sitkFloat32
    with pytest.raises(ParameterError, match="CT window"):
        window_ct(_image(hu), window=(80.0, 0.0))


def test_non_finite_voxels_refused_with_the_case_named_or_replaced_and_counted():
    array = np.linspace(-3.0, 40.0, 6 * 8 * 8, dtype=np.float32).reshape(6, 8, 8)
    array[0, 0, 0] = np.nan
    array[1, 2, 3] = np.inf
    array[5, 7, 7] = -np.inf
    image = _image(array)
    with pytest.raises(PreprocessingError) as caught:
        check_finite(image, case_id="sub-strokecase0004", channel="flair")
    message = str(caught.value)
    assert "case sub-strokecase0004" in message and "channel flair has 3 NaN or infinite voxels" in message
    assert isinstance(caught.value, LesionSegError) and caught.value.exit_code == 2
    fixed, count = check_finite(image, case_id="x", channel="flair", replace=True)
    assert count == 3
    result = sitk.GetArrayFromImage(fixed)
    assert np.all(np.isfinite(result))
    finite_min = float(np.nanmin(np.where(np.isfinite(array), array, np.nan)))
    assert result[0, 0, 0] == result[1, 2, 3] == result[5, 7, 7] == finite_min
    untouched = np.isfinite(array)
    np.testing.assert_array_equal(result[untouched], array[untouched])
    assert fixed.GetSpacing() == image.GetSpacing() and fixed.GetPixelID() == image.GetPixelID()


def test_check_finite_passes_clean_and_integer_images_and_refuses_all_nan():
    integer = _image(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    same, count = check_finite(integer, case_id="a", channel="ct")
    assert count == 0 and same is integer
    clean = _image(np.ones((2, 3, 4), np.float32))
    assert check_finite(clean, case_id="a", channel="ct")[1] == 0
    with pytest.raises(PreprocessingError, match="case a: channel ct has no finite voxel"):
        check_finite(_image(np.full((2, 3, 4), np.nan, np.float32)), case_id="a", channel="ct", replace=True)
