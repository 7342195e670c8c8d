"""3D patch sampling with rejection: the 40 % lesion property, alignment, padding, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesionseg.errors import ParameterError
from lesionseg.train.patches import lesion_counts_per_origin, sample_patches

SHAPE = (20, 48, 48)
PATCH = (8, 16, 16)


def _coordinate_volume(shape=SHAPE) -> np.ndarray:
    """Two channels: the voxel's linear index and its negative, so a patch tells where it came from."""
    index = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    return np.stack([index, -index])


def _small_lesion(shape=SHAPE) -> np.ndarray:
    label = np.zeros(shape, np.uint8)
    label[12:15, 30:34, 8:11] = 1  # 36 voxels
    return label


def _fraction_of_origins_with_lesion(label: np.ndarray, size) -> float:
    """Brute force: the share of all valid patch positions whose patch holds a lesion voxel."""
    hits = total = 0
    for z in range(label.shape[0] - size[0] + 1):
        for y in range(label.shape[1] - size[1] + 1):
            for x in range(label.shape[2] - size[2] + 1):
                total += 1
                hits += bool(label[z:z + size[0], y:y + size[1], x:x + size[2]].any())
    return hits / total


def test_counts_per_origin_match_brute_force():
    rng = np.random.default_rng(0)
    lesion = rng.random((7, 9, 8)) > 0.9
    counts = lesion_counts_per_origin(lesion, (3, 4, 2))
    assert counts.shape == (5, 6, 7)
    for z, y, x in np.ndindex(counts.shape):
        assert counts[z, y, x] == lesion[z:z + 3, y:y + 4, x:x + 2].sum()


def test_patches_and_labels_are_aligned_with_the_volume():
    volume, label = _coordinate_volume(), _small_lesion()
    label[0:5, 0:10, 0:10] = 2  # any label > 0 is lesion; values are copied as they are
    patches, labels, origins = sample_patches(volume, label, PATCH, 30, np.random.default_rng(1),
                                              return_origins=True)
    assert patches.shape == (30, 2, *PATCH) and patches.dtype == volume.dtype
    assert labels.shape == (30, *PATCH) and labels.dtype == label.dtype
    for patch, patch_label, (z, y, x) in zip(patches, labels, origins):
        assert np.unravel_index(int(patch[0, 0, 0, 0]), SHAPE) == (z, y, x)
        window = (slice(z, z + PATCH[0]), slice(y, y + PATCH[1]), slice(x, x + PATCH[2]))
        assert np.array_equal(patch, volume[(slice(None), *window)])
        assert np.array_equal(patch_label, label[window])
        assert 0 <= z <= SHAPE[0] - PATCH[0] and 0 <= y <= SHAPE[1] - PATCH[1] and 0 <= x <= SHAPE[2] - PATCH[2]


def test_at_least_40_percent_of_patches_contain_lesion_where_uniform_sampling_gives_far_fewer():
    volume, label = _coordinate_volume(), _small_lesion()
    uniform = _fraction_of_origins_with_lesion(label, PATCH)
    assert uniform < 0.2  # so the property below is the rejection's doing, not the geometry's
    rng = np.random.default_rng(2)
    fractions = []
    for n in (1, 2, 5, 7, 10) * 40:
        _, labels = sample_patches(volume, label, PATCH, n, rng)
        with_lesion = int(labels.reshape(n, -1).any(axis=1).sum())
        assert with_lesion >= math.ceil(0.4 * n)
        fractions.append(with_lesion / n)
    # not simply every patch on the lesion: lesion-free patches fill the rest
    tens = fractions[4::5]
    assert 0.4 <= np.mean(tens) < 0.55


def test_lesion_patches_are_spread_over_the_positions_that_contain_lesion():
    volume, label = _coordinate_volume(), _small_lesion()
    counts = lesion_counts_per_origin(label > 0, PATCH)
    positive = {tuple(v) for v in np.argwhere(counts > 0)}
    rng = np.random.default_rng(3)
    seen = []
    for _ in range(150):
        _, labels, origins = sample_patches(volume, label, PATCH, 10, rng, return_origins=True)
        seen += [tuple(o) for o, l in zip(origins, labels) if l.any()]
    assert set(seen) <= positive
    # uniform among the lesion positions: the mean position is that of all of them (within sampling error)
    np.testing.assert_allclose(np.mean(seen, axis=0), np.mean(list(positive), axis=0), atol=1.0)


def test_a_tiny_lesion_still_gets_its_share_when_rejection_gives_up():
    volume = np.zeros((1, 40, 64, 64), np.float32)
    label = np.zeros((40, 64, 64), np.uint8)
    label[3, 60, 2] = 1
    _, labels = sample_patches(volume, label, (8, 8, 8), 20, np.random.default_rng(4), max_draws_per_patch=1)
    assert labels.reshape(20, -1).any(axis=1).sum() >= 8


def test_higher_fractions_and_more_lesion_than_required():
    volume, label = _coordinate_volume(), _small_lesion()
    _, labels = sample_patches(volume, label, PATCH, 10, np.random.default_rng(5), min_lesion_fraction=1.0)
    assert labels.reshape(10, -1).any(axis=1).all()
    big = np.zeros(SHAPE, np.uint8)
    big[:, 8:40, 8:40] = 1  # nearly every patch touches it
    _, labels = sample_patches(volume, big, PATCH, 50, np.random.default_rng(6))
    assert labels.reshape(50, -1).any(axis=1).mean() > 0.9


def test_a_volume_without_lesion_gives_uniform_lesion_free_patches():
    volume = _coordinate_volume()
    patches, labels = sample_patches(volume, np.zeros(SHAPE, np.uint8), PATCH, 12, np.random.default_rng(7))
    assert patches.shape == (12, 2, *PATCH) and not labels.any()


def test_small_volumes_are_padded_with_the_channel_minimum():
    volume = np.stack([np.full((4, 10, 40), 5.0), np.full((4, 10, 40), -3.0)])
    label = np.ones((4, 10, 40), np.uint8)
    patches, labels, origins = sample_patches(volume, label, (8, 16, 16), 6, np.random.default_rng(8),
                                              return_origins=True)
    assert patches.shape == (6, 2, 8, 16, 16)
    assert (origins[:, 0] == -2).all() and (origins[:, 1] == -3).all()  # padded 2+2 in z, 3+3 in y
    assert labels[:, 2:6, 3:13].all() and labels[:, :2].sum() == 0 and labels[:, :, :3].sum() == 0
    assert set(np.unique(patches[:, 0])) == {5.0} and set(np.unique(patches[:, 1])) == {-3.0}


def test_same_seed_same_patches():
    volume, label = _coordinate_volume(), _small_lesion()
    first = sample_patches(volume, label, PATCH, 8, np.random.default_rng(9))
    second = sample_patches(volume, label, PATCH, 8, np.random.default_rng(9))
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("call, words", [
    (lambda v, l: sample_patches(v[0], l, PATCH, 2, np.random.default_rng()), ["(C, Z, Y, X)"]),
    (lambda v, l: sample_patches(v, l[:-1], PATCH, 2, np.random.default_rng()), ["label"]),
    (lambda v, l: sample_patches(v, l, (8, 16), 2, np.random.default_rng()), ["patch_size"]),
    (lambda v, l: sample_patches(v, l, (8, 0, 16), 2, np.random.default_rng()), ["patch_size"]),
    (lambda v, l: sample_patches(v, l, PATCH, 0, np.random.default_rng()), ["at least 1"]),
    (lambda v, l: sample_patches(v, l, PATCH, 2, np.random.default_rng(), min_lesion_fraction=1.5),
     ["min_lesion_fraction"]),
])
def test_bad_input_is_a_parameter_error(call, words):
    with pytest.raises(ParameterError) as raised:
        call(_coordinate_volume(), _small_lesion())
    for word in words:
        assert word in str(raised.value)
