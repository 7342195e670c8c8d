"""Tests of lesionseg.train.lesion_contrast: each lesion fades towards its own surroundings, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from lesionseg.errors import ParameterError
from lesionseg.train.augment import AugmentConfig, build_augmentation
from lesionseg.train.lesion_contrast import fade_lesions

S = 64
#: every other augmentation off, so the lesion contrast is the only change
ONLY_LESION_CONTRAST = {"flip_prob": 0.0, "rotate_prob": 0.0, "elastic_prob": 0.0, "bias_prob": 0.0,
                        "motion_prob": 0.0, "noise_prob": 0.0, "lesion_contrast_prob": 1.0}


def disk(row: float, column: float, radius: float, size: int = S) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - row) ** 2 + (xx - column) ** 2 < radius ** 2


def two_lesion_slice() -> tuple[np.ndarray, np.ndarray]:
    """Two channels: a bright channel (left half 1.0, right half 2.0; lesions +1.0) and a dark one (5.0 with
    lesions at 2.0, as on an ADC); one lesion in each half, and their mask."""
    left, right = disk(32, 16, 6), disk(32, 48, 4)
    lesions = left | right
    bright = np.where(np.arange(S)[None, :] < S // 2, 1.0, 2.0) * np.ones((S, S)) + lesions
    dark = np.where(lesions, 2.0, 5.0)
    return np.stack([bright, dark]).astype(np.float32), lesions


def test_each_lesion_fades_towards_its_own_surroundings():
    image, lesions = two_lesion_slice()
    left, right = disk(32, 16, 6), disk(32, 48, 4)
    faded = fade_lesions(image, lesions, 0.5)
    # hand-computed: background b, lesion I -> b + 0.5 (I - b) on every lesion pixel (the taper is 1 there)
    np.testing.assert_allclose(faded[0][left], 1.5, atol=1e-6)      # b 1, I 2
    np.testing.assert_allclose(faded[0][right], 2.5, atol=1e-6)     # b 2, I 3
    np.testing.assert_allclose(faded[1][lesions], 3.5, atol=1e-6)   # b 5, I 2 (a dark lesion gets brighter)
    # far from the lesions (beyond the two-pixel taper's reach) nothing changes
    far = ~ndimage.binary_dilation(lesions, iterations=5)
    np.testing.assert_array_equal(faded[:, far], image[:, far])
    # and no pixel moves away from its lesion's background
    assert np.all(np.abs(faded[1] - 5.0) <= np.abs(image[1] - 5.0) + 1e-6)


def test_factor_one_empty_mask_and_a_lesion_without_surroundings_change_nothing():
    image, lesions = two_lesion_slice()
    np.testing.assert_array_equal(fade_lesions(image, lesions, 1.0), image)
    np.testing.assert_array_equal(fade_lesions(image, np.zeros_like(lesions), 0.3), image)
    whole = np.ones((S, S), dtype=bool)  # a lesion filling the slice has no ring to take a background from
    np.testing.assert_array_equal(fade_lesions(image, whole, 0.3), image)


def test_a_3d_patch_fades_the_same_way():
    lesion = np.zeros((8, 24, 24), dtype=bool)
    lesion[2:6, 8:16, 8:16] = True
    image = (1.0 + 2.0 * lesion)[None].astype(np.float32)
    faded = fade_lesions(image, lesion, 0.25)
    np.testing.assert_allclose(faded[0][lesion], 1.5, atol=1e-6)  # 1 + 0.25 * 2


def test_the_augmentation_draws_the_factor_in_its_range_and_leaves_the_mask_alone():
    image, lesions = two_lesion_slice()
    mask = lesions[None].astype(np.int64)
    augmentation = build_augmentation({**ONLY_LESION_CONTRAST, "lesion_contrast_range": (0.3, 0.6)}, seed=1)
    left = disk(32, 16, 6)
    for seed in range(5):
        out = augmentation({"image": image, "mask": mask}, seed=seed)
        np.testing.assert_array_equal(out["mask"], mask)
        remaining = float(np.mean(out["image"][0][left]) - 1.0)  # the left lesion's contrast was 1.0
        assert 0.3 - 1e-6 <= remaining <= 0.6 + 1e-6
    tensors = augmentation({"image": torch.as_tensor(image), "mask": torch.as_tensor(mask)}, seed=0)
    np.testing.assert_allclose(tensors["image"].numpy(), augmentation({"image": image, "mask": mask}, seed=0)["image"])


def test_bad_input_is_refused():
    image, lesions = two_lesion_slice()
    with pytest.raises(ParameterError, match="same spatial shape"):
        fade_lesions(image, lesions[:10], 0.5)
    with pytest.raises(ParameterError, match="lesion_contrast_range"):
        AugmentConfig(lesion_contrast_range=(0.8, 0.2))
