"""The gradient difficulty on a 64x64 set with a deliberately hard subset, and its score from the records.

(One recorded decrease equals a hand-run optimiser step: ``test_train.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lesionseg.errors import ParameterError
from lesionseg.losses import build_loss
from lesionseg.models import build_network
from lesionseg.synth.disks import disk_slices
from lesionseg.train.gradient import gradient_difficulty, normalise_high_easy
from lesionseg.train.slices import SliceArrays

FEATURES = [4, 8, 16, 32, 64]
SIZE = 64


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one thread avoids the cost of thread contention on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lesion_set(seed: int, n_easy: int = 6, n_hard: int = 4) -> SliceArrays:
    """Easy slices (bright lesions of radius 7-10 pixels) then hard ones (faint lesions of radius 1.5-2.5)."""
    images, masks, rows = disk_slices(seed, n_easy, n_hard, size=SIZE, hard_contrast=0.5)
    return SliceArrays(images, masks, np.ones_like(masks), rows)


def trained_model(arrays: SliceArrays, seed: int, iterations: int):
    """A small U-Net trained on all the slices: the converged model the protocol starts from."""
    torch.manual_seed(seed)
    network = build_network("unet2d", 1, 2, features=FEATURES)
    loss = build_loss("ce_dice")
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    images = torch.as_tensor(arrays.images)
    masks = torch.as_tensor(arrays.masks[:, None].astype(np.int64))
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        batch = rng.choice(len(arrays.rows), 5, replace=False)
        optimiser.zero_grad()
        loss(network(images[batch]), masks[batch]).backward()
        optimiser.step()
    return network, {key: value.clone() for key, value in network.state_dict().items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_hard_subset_ranks_as_hard(seed):
    arrays = lesion_set(seed)
    network, converged = trained_model(arrays, seed, iterations=150)
    result = gradient_difficulty(arrays, network, converged, optimiser="adam", lr=1e-3, epochs=4, repeats=2,
                                 batch_size=5, seed=seed)
    assert result.measure == "retraining"  # the default (the module docstring says why)
    hard = np.array([row["hard"] for row in result.rows])
    easy_scores, hard_scores = result.score[~hard], result.score[hard]
    # high = easy: the faint, tiny lesions score well below the bright, large ones (seeds 0-4 tried
    # locally: mean gaps 0.47-0.78 with 100-300 training iterations; at most one (easy, hard) pair
    # in the wrong order)
    assert hard_scores.mean() + 0.3 < easy_scores.mean(), (easy_scores, hard_scores)
    ordered = np.mean([h < e for h in hard_scores for e in easy_scores])
    assert ordered >= 0.9, (easy_scores, hard_scores)


def test_both_measures_are_computed_from_the_recorded_before_and_after_losses():
    arrays = lesion_set(3, n_easy=3, n_hard=2)
    network = build_network("unet2d", 1, 2, features=FEATURES)
    weights = {key: value.clone() for key, value in network.state_dict().items()}
    options = dict(lr=1e-3, epochs=2, repeats=2, batch_size=2, seed=1, record_steps=True)
    result = gradient_difficulty(arrays, network, weights, **options)
    literal = gradient_difficulty(arrays, network, weights, measure="step", **options)
    assert literal.steps == result.steps  # the same retraining, only the score differs
    steps = result.steps
    assert len(steps) == 5 * 2 * 2  # every slice in every epoch of every repeat
    for position in range(5):
        mine = [s for s in steps if s["row"] == position]
        decreases = [s["before"] - s["after"] for s in mine]
        assert result.mean_decrease[position] == pytest.approx(np.mean(decreases))
        shares = []
        for repeat in (0, 1):
            in_repeat = [s for s in mine if s["repeat"] == repeat]  # in the order they happened
            shares.append((in_repeat[0]["before"] - in_repeat[-1]["after"]) / in_repeat[0]["before"])
        assert result.retraining_decrease[position] == pytest.approx(np.mean(shares))
    assert np.allclose(result.score, normalise_high_easy(result.retraining_decrease))
    assert np.allclose(literal.score, normalise_high_easy(literal.mean_decrease))
    assert result.score.min() == 0.0 and result.score.max() == 1.0


def test_an_unknown_measure_is_refused_with_the_valid_ones():
    arrays = lesion_set(0, n_easy=1, n_hard=1)
    network = build_network("unet2d", 1, 2, features=FEATURES)
    with pytest.raises(ParameterError, match="retraining, step"):
        gradient_difficulty(arrays, network, network.state_dict(), measure="relative")
