"""The size curriculum's crops, the per-step cosine schedule, and the lesion volume ratios that say whether a
large lesion was found whole."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lesionseg.errors import ParameterError
from lesionseg.metrics import lesion_volume_ratios
from lesionseg.train.crops import crop_batch, crop_size, epoch_crop_size
from lesionseg.train.optim import COSINE_FLOOR, cosine_factor


def test_crop_sides_are_multiples_that_grow_to_the_slice_over_equal_shares_of_the_epochs():
    assert crop_size(0.5, 128, 16) == 64 and crop_size(0.75, 128, 16) == 96 and crop_size(0.3, 128, 16) == 32
    sides = [epoch_crop_size(e, 9, [0.5, 0.75, 1.0], 128, 16) for e in range(9)]
    assert sides == [64, 64, 64, 96, 96, 96, 128, 128, 128]
    assert epoch_crop_size(3, 9, [], 128, 16) == 128


def test_crops_of_lesion_slices_hold_lesion_in_about_two_of_three_draws():
    masks = torch.zeros((300, 1, 128, 128), dtype=torch.long)
    masks[:, 0, 100:104, 10:14] = 1  # a small lesion near a corner
    images = torch.arange(300 * 2 * 128 * 128, dtype=torch.float32).reshape(300, 2, 128, 128)
    cropped_images, cropped_masks = crop_batch(images, masks, 48, np.random.default_rng(3))
    assert cropped_images.shape == (300, 2, 48, 48) and cropped_masks.shape == (300, 1, 48, 48)
    # a crop is a window of the slice: its top-left value locates it, the mask follows the image
    first = cropped_images[:, 0, 0, 0].long() - torch.arange(300) * 2 * 128 * 128
    tops, lefts = first // 128, first % 128
    assert int(tops.min()) >= 0 and int(tops.max()) <= 80 and int(lefts.max()) <= 80
    for index in range(0, 300, 37):
        top, left = int(tops[index]), int(lefts[index])
        assert torch.equal(cropped_masks[index], masks[index, :, top:top + 48, left:left + 48])
    with_lesion = float((cropped_masks.flatten(1).sum(1) > 0).float().mean())
    # 2/3 centred on lesion, plus the uniform draws that happen to cover it (about 4 % here): 0.69 expected;
    # 300 draws give a standard deviation of 0.027, so 0.55-0.83 fails once in a million runs
    assert 0.55 < with_lesion < 0.83


def test_the_cosine_factor_falls_from_one_to_the_floor_over_the_planned_steps():
    assert cosine_factor(0, 100) == pytest.approx(1.0)
    assert cosine_factor(50, 100) == pytest.approx(COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5)
    assert cosine_factor(100, 100) == pytest.approx(COSINE_FLOOR) == cosine_factor(150, 100)
    values = [cosine_factor(step, 100) for step in range(101)]
    assert all(b <= a for a, b in zip(values, values[1:]))


def test_bad_size_curricula_are_refused_naming_the_option():
    from lesionseg.train import TrainConfig

    for value in ([0.5, 0.75], [0.75, 0.5, 1.0], [0.1, 1.0]):
        with pytest.raises(ParameterError, match="--size-curriculum must be increasing fractions"):
            TrainConfig(size_curriculum=value)
    assert TrainConfig(size_curriculum=[0.5, 1]).size_curriculum == [0.5, 1.0]


def test_a_lesion_found_as_its_rim_has_a_small_volume_ratio():
    truth = np.zeros((10, 40, 40), bool)
    truth[2:8, 10:30, 10:30] = True  # 6 x 20 x 20 voxels of 1 x 1 x 2.5 mm = 6 mL
    rim = truth.copy()
    rim[2:8, 12:28, 12:28] = False  # only the outer 2 voxels of each slice
    small = np.zeros_like(truth)
    small[0, 0, 0] = True  # a 2.5 uL truth lesion elsewhere, left out by the threshold
    spacing = (2.5, 1.0, 1.0)
    volumes = lesion_volume_ratios(rim, truth | small, spacing, min_truth_ml=1.0)
    assert len(volumes) == 1
    assert volumes[0].truth_ml == pytest.approx(6.0)
    assert volumes[0].predicted_ml == pytest.approx(6 * (400 - 256) * 2.5 / 1000)
    assert volumes[0].ratio == pytest.approx(144 / 400)
    whole = lesion_volume_ratios(truth, truth, spacing)[0]
    assert whole.ratio == 1.0 and math.isclose(whole.predicted_ml, 6.0)
    missed = lesion_volume_ratios(np.zeros_like(truth), truth, spacing)[0]
    assert missed.ratio == 0.0
