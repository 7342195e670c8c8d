"""Tests of lesionseg.train.augment: alignment, no left-right flip, replayable draws, identity, k-space motion."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from lesionseg.errors import ParameterError
from lesionseg.train.augment import AugmentConfig, build_augmentation, kspace_motion

S = 96
PROBABILITIES = ("flip_prob", "rotate_prob", "elastic_prob", "bias_prob", "motion_prob", "noise_prob")
ALL_OFF = {name: 0.0 for name in PROBABILITIES}
GEOMETRIC = {**ALL_OFF, "flip_prob": 0.5, "rotate_prob": 1.0, "elastic_prob": 1.0}
INTENSITY = {**ALL_OFF, "bias_prob": 1.0, "motion_prob": 1.0, "noise_prob": 1.0}


def disk(row: float, column: float, radius: float, size: int = S) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return ((yy - row) ** 2 + (xx - column) ** 2 < radius ** 2).astype(np.int64)


def head_slice(size: int = S) -> tuple[np.ndarray, np.ndarray]:
    """A z-scored-looking slice: background -1.5, an elliptic head at 1.0, a brighter lesion; and its mask."""
    yy, xx = np.mgrid[:size, :size]
    head = ((yy - size / 2) / (0.42 * size)) ** 2 + ((xx - size / 2) / (0.34 * size)) ** 2 < 1
    lesion = disk(0.35 * size, 0.68 * size, 0.09 * size, size)
    image = np.where(head, 1.0, -1.5) + 0.8 * lesion
    return image[None].astype(np.float32), lesion[None]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_geometric_transforms_keep_mask_binary_and_aligned():
    mask = disk(30, 70, 12)[None]
    image = (mask * 100.0).astype(np.float32)
    augment = build_augmentation(GEOMETRIC, seed=4)
    moved = 0
    for _ in range(12):
        out = augment({"image": image, "mask": mask})
        assert out["mask"].dtype == np.int64 and out["image"].dtype == np.float32
        assert set(np.unique(out["mask"])) <= {0, 1}
        # bilinear image vs nearest mask: they differ only at the edge
        assert dice(out["image"][0] > 50, out["mask"][0] == 1) > 0.95
        moved += not np.array_equal(out["mask"], mask)
    assert moved == 12  # rotation and elastic deformation always applied


def test_never_flips_left_right():
    # columns >= S/2 are the patient's left, where training lesions are flipped to; rows are anterior-posterior
    image, mask = head_slice()
    start_row, start_column = ndimage.center_of_mass(mask[0])
    augment = build_augmentation({"flip_prob": 0.5, "rotate_prob": 1.0, "elastic_prob": 1.0}, seed=0)
    flipped_rows = 0
    for _ in range(40):
        out = augment({"image": image, "mask": mask})
        row, column = ndimage.center_of_mass(out["mask"][0])
        # a left-right flip would put the lesion near column S - 65 = 31; rotation (10 degrees) and the
        # elastic deformation move it by a few pixels only
        assert abs(column - start_column) < 8
        flipped_rows += abs(row - (S - 1 - start_row)) < 8
    assert 8 <= flipped_rows <= 32  # anterior-posterior flips do happen (probability 0.5)


def test_same_seed_same_output_and_per_sample_seed():
    image, mask = head_slice()
    sample = {"image": image, "mask": mask}
    first, second, other = (build_augmentation({}, seed=s) for s in (3, 3, 4))
    for _ in range(4):
        a, b, c = first(sample), second(sample), other(sample)
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])
    assert not np.array_equal(a["image"], c["image"])
    # with an explicit sample seed, the result does not depend on what was drawn before (every transform on,
    # so every random state inside MONAI's transforms must have been reseeded)
    always = {name: 1.0 for name in ALL_OFF}
    one, two = build_augmentation(always, seed=0), build_augmentation(always, seed=1)
    one(sample), two(sample), two(sample)
    a, b = one(sample, seed=11), two(sample, seed=11)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])
    assert not np.array_equal(a["image"], one(sample, seed=12)["image"])


def test_state_save_and_restore_replays_the_draws():
    image, mask = head_slice()
    sample = {"image": image, "mask": mask}
    augment = build_augmentation({}, seed=1)
    for _ in range(3):
        augment(sample)
    state = augment.get_state()
    # the state fits in a JSON file and in a weights-only torch checkpoint
    state = json.loads(json.dumps(state))
    buffer = io.BytesIO()
    torch.save({"augmentation": state}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["augmentation"]
    expected = [augment(sample) for _ in range(3)]
    resumed = build_augmentation({}, seed=99)
    resumed.set_state(state)
    for want in expected:
        got = resumed(sample)
        assert np.array_equal(got["image"], want["image"]) and np.array_equal(got["mask"], want["mask"])


def test_disabled_is_identity_for_numpy_and_torch():
    image, mask = head_slice()
    augment = build_augmentation({"enabled": False})
    out = augment({"image": image, "mask": mask, "index": 5})
    assert out["image"] is image and out["mask"] is mask and out["index"] == 5
    tensor_out = augment({"image": torch.from_numpy(image), "mask": torch.from_numpy(mask)})
    assert torch.equal(tensor_out["image"], torch.from_numpy(image))


def test_torch_input_gives_torch_output():
    image, mask = head_slice()
    out = build_augmentation(GEOMETRIC, seed=2)({"image": torch.from_numpy(image), "mask": torch.from_numpy(mask)})
    assert isinstance(out["image"], torch.Tensor) and out["image"].dtype == torch.float32
    assert isinstance(out["mask"], torch.Tensor) and out["mask"].dtype == torch.int64
    assert out["image"].shape == (1, S, S) and out["mask"].shape == (1, S, S)


def test_intensity_transforms_leave_the_mask_alone():
    image, mask = head_slice()
    out = build_augmentation(INTENSITY, seed=0)({"image": image, "mask": mask})
    assert np.array_equal(out["mask"], mask)
    assert np.abs(out["image"] - image).max() > 0.01


def test_kspace_motion_translation_of_every_line_is_a_shift():
    # independent truth: moving every k-space line by an integer translation shifts the image (np.roll)
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 24, 30)).astype(np.float32)
    assert np.allclose(kspace_motion(image, [(0, 24, 3, -5, 0.0)]), np.roll(image, (3, -5), axis=(1, 2)), atol=1e-5)
    assert np.allclose(kspace_motion(image, [(0, 30, -2, 4, 0.0)], axis=1), np.roll(image, (-2, 4), axis=(1, 2)),
                       atol=1e-5)
    assert np.allclose(kspace_motion(image, []), image, atol=1e-5)


def test_motion_artefact_changes_the_image_but_keeps_mean_and_energy():
    image, mask = head_slice(128)
    augment = build_augmentation({**ALL_OFF, "motion_prob": 1.0}, seed=0)
    changed = 0
    for _ in range(6):
        out = augment({"image": image, "mask": mask})
        assert np.array_equal(out["mask"], mask)
        # the k-space centre (mean) is the reference position's; translations only change phases
        assert out["image"].mean() == pytest.approx(image.mean(), abs=1e-4)
        energy = float((out["image"].astype(np.float64) ** 2).sum() / (image.astype(np.float64) ** 2).sum())
        assert 0.95 < energy <= 1.001
        changed += np.sqrt(((out["image"] - image) ** 2).mean()) > 0.005
    assert changed >= 5  # a draw may put every movement in the reference segment's lines


def test_bad_settings_are_refused():
    with pytest.raises(ParameterError, match="flip_prob must be a probability"):
        AugmentConfig(flip_prob=1.5)
    with pytest.raises(ParameterError, match="unknown augmentation setting 'lr_flip'"):
        AugmentConfig.from_dict({"lr_flip": 0.5})
    with pytest.raises(ParameterError, match="elastic_magnitude_px"):
        AugmentConfig(elastic_magnitude_px=(3.0, 1.0))
    with pytest.raises(ParameterError, match="motion_axis"):
        build_augmentation({"motion_axis": 2})
    config = AugmentConfig(rotate_deg=5.0, bias_coeff=(0.0, 0.2))
    assert AugmentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
