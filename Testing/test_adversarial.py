"""Adversarial training (lesionseg.train.adversarial): the critic learns to tell true masks from predicted ones, its
term reaches the segmenter, a run logs and plots both losses, and bad options exit 2."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import TINY_NETWORK, run_cli
from lesionseg.errors import ParameterError


def disks(batch: int, size: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, 1, S, S) with one bright disk each (random place and radius) and the disks' 0/1 masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((batch, 1, size, size), np.float32)
    for index in range(batch):
        row, column = rng.uniform(12, size - 12, 2)
        masks[index, 0] = (yy - row) ** 2 + (xx - column) ** 2 < rng.uniform(4, 9) ** 2
    images = masks + rng.normal(0.0, 0.2, masks.shape).astype(np.float32)
    return torch.as_tensor(images), torch.as_tensor(masks)


def test_the_critic_learns_to_tell_true_masks_from_undecided_predictions():
    from lesionseg.train.adversarial import AdversarialCritic

    torch.manual_seed(0)
    critic = AdversarialCritic(image_channels=1, weight=0.1, device=torch.device("cpu"))
    losses = []
    for step in range(40):
        images, truth = disks(8, seed=step)
        predicted = torch.full_like(truth, 0.5)  # a segmenter that cannot decide: every pixel at 0.5, all lesion
        losses.append(critic.step(images, predicted, truth))
    # ln 2 = 0.693 is the loss of a critic that cannot tell; it must get well below it
    assert losses[0] > 0.5 and np.mean(losses[-5:]) < 0.35, losses
    means = critic.epoch_means()
    assert means["critic_loss"] == pytest.approx(np.mean(losses), rel=1e-6) and critic.epoch_means() == {}


def test_the_critic_sees_the_predicted_mask_and_the_gradient_reaches_the_probability():
    """Straight through: the critic is shown the 0/1 mask at 0.5 (so it cannot tell predictions by their soft
    values, which made a from-scratch segmenter collapse to empty masks) and the probability gets the gradient of
    that mask as if it were the mask itself."""
    from lesionseg.train.adversarial import AdversarialCritic

    probability = torch.tensor([[[[0.2, 0.5], [0.7, 0.49]]]], requires_grad=True)
    shown = AdversarialCritic._as_mask(probability)
    assert shown.detach().tolist() == [[[[0.0, 1.0], [1.0, 0.0]]]]
    (shown * torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])).sum().backward()
    assert probability.grad.tolist() == [[[[1.0, 2.0], [3.0, 4.0]]]]


def test_the_segmenter_term_is_weighted_and_reaches_the_prediction():
    from lesionseg.train.adversarial import AdversarialCritic

    torch.manual_seed(1)
    images, truth = disks(4)
    strong = AdversarialCritic(1, 1.0, torch.device("cpu"))
    weak = AdversarialCritic(1, 0.25, torch.device("cpu"))
    weak.critic.load_state_dict(copy.deepcopy(strong.critic.state_dict()))
    probability = torch.full_like(truth, 0.3, requires_grad=True)
    term = strong.segmenter_term(images, probability)
    assert float(weak.segmenter_term(images, probability).detach()) == pytest.approx(0.25 * float(term.detach()), rel=1e-5)
    term.backward()
    assert probability.grad is not None and float(probability.grad.abs().sum()) > 0
    # slices below the critic's smallest side train without it
    small_images, small_truth = disks(2, size=24)
    assert float(strong.segmenter_term(small_images, small_truth)) == 0.0
    assert np.isnan(strong.step(small_images, small_truth, small_truth))


def test_a_run_against_the_critic_logs_and_plots_both_losses(tiny_prepared, tmp_path):
    from lesionseg.report.figures import plot_training_curves
    from lesionseg.stats.runs import read_csv_rows
    from lesionseg.train import TrainConfig, train_run
    from lesionseg.train.checkpoint import load_checkpoint

    config = TrainConfig(**TINY_NETWORK, epochs=2, all_data=True, batch_size=8, device="cpu", num_threads=1,
                         curriculum="none", context_slices=1, augmentation={"enabled": False}, adversarial=0.1)
    result = train_run(tiny_prepared, tmp_path / "run", config)
    rows = read_csv_rows(tmp_path / "run" / "all_data" / "log.csv")
    assert len(rows) == 2
    for row in rows:
        assert 0.0 < row["critic_loss"] < 5.0 and 0.0 < row["adversarial_loss"] < 20.0
    assert "critic" in load_checkpoint(tmp_path / "run" / "all_data" / "checkpoint.pt")
    assert result.bundle.is_file()
    # the report's curves gain a third panel: the figure is half as wide again
    from PIL import Image

    with_critic = plot_training_curves({"all": rows}, tmp_path / "with.png")
    without = plot_training_curves({"all": [{k: v for k, v in row.items() if "critic" not in k
                                             and "adversarial" not in k} for row in rows]}, tmp_path / "without.png")
    assert Image.open(with_critic).size[0] == pytest.approx(1.5 * Image.open(without).size[0], rel=0.01)


def test_bad_adversarial_options_are_refused():
    from lesionseg.train import TrainConfig

    for weight in (-0.1, float("nan"), "0.1", True):
        with pytest.raises(ParameterError, match="--adversarial must be a weight of 0 or more"):
            TrainConfig(adversarial=weight)
    with pytest.raises(ParameterError, match="--adversarial trains a 2D critic on slices"):
        TrainConfig(network="unet3d", curriculum="none", adversarial=0.1)


def test_the_cli_refuses_a_negative_weight_and_gnb_with_a_critic(tiny_prepared, tmp_path):
    negative = run_cli("train", tiny_prepared, tmp_path / "a", "--adversarial", "-1", "--epochs", "1",
                       "--progress", "none")
    assert negative.returncode == 2 and len(negative.stderr.strip().splitlines()) == 1
    assert "--adversarial must be a weight of 0 or more" in negative.stderr
    gnb = run_cli("train", tiny_prepared, tmp_path / "b", "--model", "gnb", "--adversarial", "0.1",
                  "--progress", "none")
    assert gnb.returncode == 2 and "--adversarial" in gnb.stderr and "--model gnb" in gnb.stderr
