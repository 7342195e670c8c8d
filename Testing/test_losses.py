"""Losses by name: values against hand computations, perfect < wrong, per-sample values, the band."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from lesionseg.errors import ParameterError
from lesionseg.losses import LOSSES, F1Estimator, boundary_band, build_loss, save_f1_estimator


@pytest.fixture(scope="module")
def estimator_file(tmp_path_factory):
    """An (untrained) F1 estimator file, enough to build and differentiate the f1 loss."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("f1") / "estimator.pt"
    save_f1_estimator(F1Estimator(size=32, width=4), path)
    return path


def _kwargs(name, estimator_file):
    return {"estimator": estimator_file} if name == "f1" else {}


def _target(batch: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """(B, 1, *shape) labels: a box lesion per sample at a random place."""
    rng = np.random.default_rng(seed)
    target = torch.zeros(batch, 1, *shape, dtype=torch.long)
    for b in range(batch):
        corner = [int(rng.integers(2, s // 2)) for s in shape]
        index = (b, 0, *[slice(c, c + s // 3) for c, s in zip(corner, shape)])
        target[index] = 1
    return target


def _logits_for(labels: torch.Tensor, margin: float = 8.0) -> torch.Tensor:
    """Two-class logits that predict ``labels`` with the given margin."""
    one_hot = torch.cat([labels == 0, labels == 1], dim=1).float()
    return margin * (2 * one_hot - 1)


@pytest.mark.parametrize("shape", [(64, 64), (16, 16, 16)], ids=["2d", "3d"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_runs_backward_with_per_sample_values(name, shape, estimator_file):
    torch.manual_seed(0)
    loss = build_loss(name, **_kwargs(name, estimator_file))
    target = _target(3, shape)
    logits = torch.randn(3, 2, *shape, requires_grad=True)
    value = loss(logits, target)
    assert value.shape == () and torch.isfinite(value)
    value.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    per_sample = loss.per_sample(logits, target)
    assert per_sample.shape == (3,)
    assert loss.per_sample_mean_is_batch
    torch.testing.assert_close(per_sample.mean(), value, rtol=1e-5, atol=1e-6)
    # the same values from a loss built to return them
    vector = build_loss(name, per_sample=True, **_kwargs(name, estimator_file))(logits, target)
    torch.testing.assert_close(vector, per_sample)
    # one sample's value does not depend on the others in the batch
    torch.testing.assert_close(loss.per_sample(logits[1:2], target[1:2])[0], per_sample[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
def test_a_perfect_prediction_scores_below_a_wrong_one(name, estimator_file):
    loss = build_loss(name, **_kwargs(name, estimator_file))
    target = _target(2, (64, 64), seed=3)
    perfect, inverted = _logits_for(target), _logits_for(1 - target)
    shifted = _logits_for(torch.roll(target, shifts=(12, 12), dims=(2, 3)))
    assert loss(perfect, target) < loss(shifted, target) < loss(inverted, target) + 1e-6
    assert (loss.per_sample(perfect, target) < loss.per_sample(shifted, target)).all()


def test_ce_dice_matches_a_hand_computation():
    torch.manual_seed(2)
    logits, target = torch.randn(2, 2, 8, 8), _target(2, (8, 8))
    probability = torch.softmax(logits, 1)
    one_hot = torch.cat([target == 0, target == 1], 1).float()
    intersection = (probability * one_hot).sum((2, 3))
    dice = 1 - (2 * intersection + 1e-5) / (probability.sum((2, 3)) + one_hot.sum((2, 3)) + 1e-5)
    cross_entropy = -(torch.log(probability) * one_hot).sum(1).mean()
    torch.testing.assert_close(build_loss("ce_dice")(logits, target), dice.mean() + cross_entropy)


def test_dice_bce_uses_the_softmax_lesion_probability():
    torch.manual_seed(3)
    logits, target = torch.randn(2, 2, 8, 8), _target(2, (8, 8))
    p, t = torch.softmax(logits, 1)[:, 1], target[:, 0].float()
    dice = 1 - (2 * (p * t).sum((1, 2)) + 1e-5) / (p.sum((1, 2)) + t.sum((1, 2)) + 1e-5)
    bce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    torch.testing.assert_close(build_loss("dice_bce")(logits, target), dice.mean() + bce)


def test_lovasz_equals_the_jaccard_loss_on_hard_predictions():
    """The Lovász extension agrees with the set function on binary vectors: 1 - IoU per present class."""
    target = _target(1, (20, 20), seed=5)
    prediction = torch.roll(target, shifts=(2, 3), dims=(2, 3))
    logits = _logits_for(prediction, margin=60.0)  # softmax exactly 0/1 in float32
    t, p = target[0, 0].numpy().astype(bool), prediction[0, 0].numpy().astype(bool)
    iou = [np.sum((p == c) & (t == c)) / np.sum((p == c) | (t == c)) for c in (False, True)]
    expected = np.mean([1 - value for value in iou])
    assert float(build_loss("lovasz")(logits, target)) == pytest.approx(expected, abs=1e-6)
    assert float(build_loss("lovasz")(_logits_for(target, 60.0), target)) == pytest.approx(0.0, abs=1e-6)


def test_lovasz_batch_variant_documents_that_the_mean_differs():
    loss = build_loss("lovasz", per_image=False)
    assert not loss.per_sample_mean_is_batch
    torch.manual_seed(4)
    logits, target = torch.randn(2, 2, 16, 16), _target(2, (16, 16))
    assert loss(logits, target).shape == ()


def test_batch_dice_counts_the_whole_batch_as_one_volume():
    """Hard predictions: the batch Dice term is 1 - mean over classes of the Dice of the pooled batch."""
    target = torch.zeros(2, 1, 16, 16, dtype=torch.long)
    target[0, 0, 2:6, 2:6] = 1  # 16 lesion pixels in slice 0, none in slice 1
    prediction = target.clone()
    prediction[1, 0, 10:12, 10:12] = 1  # 4 false-positive pixels in the lesion-free slice
    logits = _logits_for(prediction, margin=60.0)
    t, p = target.numpy().astype(bool), prediction.numpy().astype(bool)
    pooled = [2 * np.sum((p == c) & (t == c)) / (np.sum(p == c) + np.sum(t == c)) for c in (False, True)]
    ce = float(torch.nn.functional.cross_entropy(logits, target[:, 0]))
    batch = build_loss("ce_dice", batch_dice=True)
    assert float(batch(logits, target)) == pytest.approx(1 - np.mean(pooled) + ce, abs=1e-5)
    assert not batch.per_sample_mean_is_batch
    # per slice, the lesion-free slice's lesion Dice is 0 (a worse loss): the two readings differ
    assert float(build_loss("ce_dice")(logits, target)) > float(batch(logits, target)) + 0.1
    with pytest.raises(ParameterError, match="batch_dice"):
        build_loss("ce_dice", batch_dice="yes")


def test_the_blob_term_counts_each_lesion_alike_whatever_its_size():
    from lesionseg.losses.blob import blob_dice_losses

    target = torch.zeros(2, 1, 16, 16)
    target[0, 0, 0:10, 0:10] = 1  # a 100-pixel lesion, found exactly
    target[0, 0, 14:16, 14:16] = 1  # a 4-pixel lesion, missed
    probability = target[:, 0].clone()
    probability[0, 14:16, 14:16] = 0.0
    probability[1, 5, 5] = 0.5  # a lesion-free sample: no lesion, no term
    sums, counts = blob_dice_losses(probability, target)
    # lesion 1: 2 x 100 / (100 predicted + 100 true) -> loss 0; lesion 2: overlap 0 -> loss 1 (smoothing aside)
    assert counts.tolist() == [2.0, 0.0]
    assert sums[0].item() == pytest.approx(1.0, abs=1e-5) and sums[1].item() == 0.0
    # a false positive in the background counts against every lesion: 20 background pixels at probability 1
    # give lesion 1 a Dice of 200 / 220
    probability[0, 12, 0:10] = 1.0
    probability[0, 13, 0:10] = 1.0
    sums, _ = blob_dice_losses(probability, target)
    assert sums[0].item() == pytest.approx((1 - 200 / 220) + (1 - 0.0), abs=1e-5)


def test_the_blob_term_pulls_a_missed_small_lesion_far_more_than_its_pixel_count_does():
    from lesionseg.losses.base import lesion_probability
    from lesionseg.losses.blob import blob_dice_losses

    # both lesions missed, as by a trained network that calls everything background (lesion probability
    # 0.01 everywhere, 1024 pixels)
    target = torch.zeros(1, 1, 32, 32, dtype=torch.long)
    target[0, 0, 2:12, 2:12] = 1  # 100 pixels
    target[0, 0, 28:30, 28:30] = 1  # 4 pixels

    def share_of_the_small_lesion(loss) -> float:
        logits = torch.zeros(1, 2, 32, 32)
        logits[:, 0] = float(np.log(99.0))
        logits.requires_grad_(True)
        loss(logits).backward()
        gradient = logits.grad[0, 1].abs()
        return (gradient[28:30, 28:30].sum() / gradient[2:12, 2:12].sum()).item()

    blob = share_of_the_small_lesion(lambda logits: blob_dice_losses(lesion_probability(logits), target)[0].sum())
    # each lesion's Dice 2I / (P_background + P_k + S_k) has the gradient 2 / (P_b + P_k + S_k) per pixel of
    # the lesion (I ~ 0): 920 background pixels give P_b = 9.2, so the totals are 4 x 2 / 13.2 and
    # 100 x 2 / 110.2 (the softmax factor is the same for every pixel)
    assert blob == pytest.approx((4 / 13.24) / (100 / 110.2), rel=0.02)
    plain = share_of_the_small_lesion(lambda logits: build_loss("ce_dice", batch_dice=True)(logits, target))
    assert plain < 0.06  # cross-entropy and the batch Dice: about 4 / 100 pixels
    with_blob = share_of_the_small_lesion(
        lambda logits: build_loss("ce_dice", batch_dice=True, lambda_blob=2.0)(logits, target))
    assert with_blob > 1.5 * plain


def test_boundary_band_of_a_10x10_square_is_the_two_pixel_ring():
    target = torch.zeros(1, 1, 32, 32, dtype=torch.long)
    target[0, 0, 10:20, 10:20] = 1
    band = boundary_band(target)[0, 0].numpy()
    # by hand: the 12x12 square (one ring outside) minus the 8x8 square (one ring removed inside)
    expected = np.zeros((32, 32), bool)
    expected[9:21, 9:21] = True
    expected[11:19, 11:19] = False
    assert band.sum() == 144 - 64 == 80
    assert np.array_equal(band, expected)
    # rows through the middle cross the band twice, 2 pixels each time
    assert band[15].sum() == 4 and list(np.flatnonzero(band[15])) == [9, 10, 19, 20]


def test_boundary_band_matches_scipy_in_2d_and_3d():
    rng = np.random.default_rng(7)
    for shape, structure in (((40, 40), np.ones((3, 3))), ((12, 20, 20), np.ones((3, 3, 3)))):
        mask = ndimage.gaussian_filter(rng.standard_normal(shape), 2) > 0.3
        expected = (ndimage.binary_dilation(mask, structure, border_value=0)
                    & ~ndimage.binary_erosion(mask, structure, border_value=1))
        band = boundary_band(torch.from_numpy(mask)[None, None].long())[0, 0].numpy()
        assert np.array_equal(band, expected)
    cube = torch.zeros(1, 1, 10, 10, 10)
    cube[0, 0, 3:7, 3:7, 3:7] = 1
    assert int(boundary_band(cube).sum()) == 6 ** 3 - 2 ** 3


def test_boundary_nll_weights_the_band_ten_times():
    torch.manual_seed(6)
    target = torch.zeros(2, 1, 24, 24, dtype=torch.long)
    target[0, 0, 5:15, 5:15] = 1
    target[1, 0, 8:12, 3:20] = 1
    logits = torch.randn(2, 2, 24, 24)
    nll = F.cross_entropy(logits, target[:, 0], reduction="none").numpy()
    weights = np.ones((2, 24, 24))
    for b in range(2):
        mask = target[b, 0].numpy().astype(bool)
        band = ndimage.binary_dilation(mask, np.ones((3, 3))) & ~ndimage.binary_erosion(mask, np.ones((3, 3)))
        weights[b][band] = 10.0
    expected = (weights * nll).reshape(2, -1).mean(1)
    loss = build_loss("boundary_nll")
    np.testing.assert_allclose(loss.per_sample(logits, target).numpy(), expected, rtol=1e-5)
    assert float(build_loss("boundary_nll", band_weight=1.0)(logits, target)) == pytest.approx(
        float(F.cross_entropy(logits, target[:, 0])), rel=1e-5)


def _soft_dice_loss_by_hand(logits: torch.Tensor, target: torch.Tensor, over_batch: bool) -> np.ndarray:
    """1 - (2 sum(p g) + 1e-5) / (sum p + sum g + 1e-5) per class, averaged over both classes (NumPy)."""
    probability = torch.softmax(logits, 1).numpy().astype(np.float64)
    truth = np.concatenate([(target.numpy() == 0), (target.numpy() == 1)], axis=1).astype(np.float64)
    axes = (0, 2, 3) if over_batch else (2, 3)
    overlap, total = (probability * truth).sum(axes), (probability + truth).sum(axes)
    return (1.0 - (2.0 * overlap + 1e-5) / (total + 1e-5)).mean(-1)


def test_boundary_nll_with_a_dice_term_adds_the_soft_dice():
    torch.manual_seed(7)
    target = torch.zeros(3, 1, 20, 20, dtype=torch.long)
    target[0, 0, 4:12, 6:14] = 1
    target[1, 0, 2:5, 2:5] = 1  # the third slice has no lesion
    logits = torch.randn(3, 2, 20, 20)
    nll_only = build_loss("boundary_nll").per_sample(logits, target).numpy()
    combined = build_loss("boundary_nll", lambda_dice=0.5)
    np.testing.assert_allclose(combined.per_sample(logits, target).numpy(),
                               nll_only + 0.5 * _soft_dice_loss_by_hand(logits, target, False), rtol=1e-5)
    assert combined.per_sample_mean_is_batch
    over_batch = build_loss("boundary_nll", lambda_dice=0.5, batch_dice=True)
    assert not over_batch.per_sample_mean_is_batch
    assert float(over_batch(logits, target)) == pytest.approx(
        nll_only.mean() + 0.5 * float(_soft_dice_loss_by_hand(logits, target, True)), rel=1e-5)


def test_f1_loss_adds_alpha_times_one_minus_the_estimate_and_keeps_the_estimator_frozen(estimator_file):
    torch.manual_seed(8)
    logits = torch.randn(2, 2, 64, 64, requires_grad=True)
    target = _target(2, (64, 64))
    loss = build_loss("f1", estimator=estimator_file, alpha=0.2).train()
    estimate = loss.estimate(logits, target)
    assert estimate.shape == (2,) and ((estimate >= 0) & (estimate <= 1)).all()
    expected = build_loss("ce_dice")(logits, target) + 0.2 * (1 - estimate.mean())
    value = loss(logits, target)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert logits.grad.abs().sum() > 0
    assert not loss.estimator.training
    assert all(p.grad is None and not p.requires_grad for p in loss.estimator.parameters())
    # the F1 term itself carries gradient to the logits through the frozen CNN
    logits.grad = None
    loss.estimate(logits, target).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_unknown_loss_lists_the_valid_names():
    with pytest.raises(ParameterError) as raised:
        build_loss("focal")
    for name in LOSSES:
        assert name in str(raised.value)


@pytest.mark.parametrize("call, words", [
    (lambda: build_loss("ce_dice", alpha=1), ["alpha", "lambda_dice"]),
    (lambda: build_loss("f1"), ["estimator"]),
    (lambda: build_loss("boundary_nll", band_weight=-1), ["band_weight"]),
    (lambda: build_loss("boundary_nll", lambda_dice=-0.5), ["lambda_dice"]),
    (lambda: build_loss("lovasz", classes="some"), ["classes"]),
    (lambda: build_loss("ce_dice")(torch.zeros(2, 2, 8, 8), torch.zeros(2, 8, 8)), ["(2, 1, 8, 8)"]),
    (lambda: build_loss("ce_dice")(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8)), ["2 channels"]),
])
def test_bad_use_is_a_parameter_error(call, words):
    with pytest.raises(ParameterError) as raised:
        call()
    for word in words:
        assert word in str(raised.value)


def test_f1_loss_with_a_missing_estimator_file_names_it(tmp_path):
    from lesionseg.errors import InputFileError

    with pytest.raises(InputFileError, match="missing.pt"):
        build_loss("f1", estimator=tmp_path / "missing.pt")
