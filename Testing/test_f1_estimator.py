"""The lesion-wise F1 estimator: true F1 labels, soft inputs, held-out error, files, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.measure import label as skimage_label

from lesionseg.errors import InputFileError, ParameterError
from lesionseg.losses import build_loss
from lesionseg.losses.f1_estimator import (
    F1Estimator,
    load_f1_estimator,
    make_f1_pairs,
    random_lesion_masks,
    save_f1_estimator,
    train_f1_estimator,
)


@pytest.fixture()
def one_thread():
    """The estimator is tiny: one thread avoids the cost of thread contention on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _isles_f1(prediction: np.ndarray, truth: np.ndarray) -> float:
    """ISLES'22 lesion-wise F1 written independently: skimage 8-connected components, any overlap."""
    truth_labels = skimage_label(truth, connectivity=2)
    prediction_labels = skimage_label(prediction, connectivity=2)
    tp = sum(1 for k in range(1, truth_labels.max() + 1) if prediction[truth_labels == k].any())
    fn = truth_labels.max() - tp
    fp = sum(1 for k in range(1, prediction_labels.max() + 1) if not truth[prediction_labels == k].any())
    return 1.0 if tp + fn + fp == 0 else tp / (tp + (fp + fn) / 2)


def test_random_masks_are_lesion_like():
    masks = random_lesion_masks(40, 64, np.random.default_rng(0))
    assert masks.shape == (40, 64, 64) and masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1}
    counts = [skimage_label(m, connectivity=2).max() for m in masks]
    assert min(counts) >= 1 and np.mean(counts) > 1.5  # several blobs, never empty
    assert 0.002 < masks.mean() < 0.1


def test_pairs_carry_their_true_lesionwise_f1_and_are_soft():
    rng = np.random.default_rng(1)
    masks = random_lesion_masks(20, 48, rng)
    inputs, f1 = make_f1_pairs(masks, 150, rng)
    assert inputs.shape == (150, 2, 48, 48) and inputs.dtype == np.float32 and f1.shape == (150,)
    for index in range(0, 150, 3):
        truth = inputs[index, 1].astype(bool)
        assert any(np.array_equal(truth, m.astype(bool)) for m in masks)
        assert f1[index] == pytest.approx(_isles_f1(inputs[index, 0] >= 0.5, truth))
    probability = inputs[:, 0]
    assert probability.min() >= 0 and probability.max() <= 1
    soft = ((probability > 0.05) & (probability < 0.95)).mean(axis=(1, 2))
    assert np.median(soft) > 0.005  # blurred edges and noise, not binary masks
    # a spread of F1 values, with perfect and failed predictions among them
    assert f1.std() > 0.2 and (f1 == 1.0).any() and (f1 == 0.0).any()


def test_pairs_refuse_non_binary_masks():
    with pytest.raises(ParameterError, match="0 and 1"):
        make_f1_pairs(np.full((2, 16, 16), 2, np.uint8), 4, np.random.default_rng(0))
    with pytest.raises(ParameterError, match="N, H, W"):
        make_f1_pairs(np.zeros((16, 16), np.uint8), 4, np.random.default_rng(0))


@pytest.mark.slow
def test_trained_estimator_beats_a_constant_predictor_on_held_out_pairs(one_thread, tmp_path):
    masks = random_lesion_masks(60, 32, np.random.default_rng(1))
    events = []
    model, report = train_f1_estimator(masks, epochs=8, seed=0, n_pairs=1000, size=32, width=8,
                                       learning_rate=5e-3, progress=events.append)
    # measured: held-out MAE 0.13-0.18 against 0.31-0.35 for the best constant (the median F1)
    assert report["held_out_mae"] < 0.7 * report["baseline_mae"]
    assert report["held_out_mae"] < 0.22
    assert report["held_out_pairs"] == 200 and report["train_pairs"] == 800
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == list(range(1, 9))

    # frozen inside the f1 loss, it tells a good prediction from a poor one of the same truth
    path = tmp_path / "estimator.pt"
    save_f1_estimator(model, path, report)
    loss = build_loss("f1", estimator=path)
    truth = torch.from_numpy(masks[:16, None].astype(np.int64))
    good = 8.0 * (2 * torch.cat([truth == 0, truth == 1], 1).float() - 1)
    missed = good.clone()
    missed[:, 1], missed[:, 0] = -8.0, 8.0  # predicts nothing: F1 0
    assert loss.estimate(good, truth).mean() > loss.estimate(missed, truth).mean() + 0.4


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = F1Estimator(size=32, width=4)
    path = tmp_path / "estimator.pt"
    save_f1_estimator(model, path, {"held_out_mae": 0.1})
    payload = torch.load(path, weights_only=True)  # plain types and tensors only
    assert payload["config"] == {"size": 32, "width": 4}
    loaded, report = load_f1_estimator(path)
    assert report == {"held_out_mae": 0.1} and not loaded.training
    x = torch.rand(3, 2, 32, 32)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_load_refuses_foreign_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputFileError, match="junk.pt"):
        load_f1_estimator(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(InputFileError, match="not an F1 estimator"):
        load_f1_estimator(other)


def test_cli_trains_from_random_masks_and_reports_the_baseline(tmp_path, capsys, one_thread):
    from lesionseg.cli import main

    out = tmp_path / "estimator.pt"
    code = main(["train-f1-estimator", "-o", str(out), "--epochs", "1", "--pairs", "60", "--size", "32",
                 "--masks", "10", "--progress", "none"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "held-out MAE" in printed and "constant predictor" in printed
    model, report = load_f1_estimator(out)
    assert model.size == 32 and report["held_out_pairs"] == 12


def test_cli_reads_the_masks_of_a_prepared_dataset(tmp_path, capsys, one_thread):
    from lesionseg.cli import main

    prepared = pytest.importorskip("lesionseg.preprocess.prepared")
    from lesionseg.preprocess import PrepareConfig

    root = tmp_path / "prepared"
    masks = random_lesion_masks(12, 48, np.random.default_rng(3))
    rows = []
    for case, part in (("case1", masks[:6]), ("case2", masks[6:])):
        images = np.zeros((len(part), 1, 48, 48), np.float32)
        prepared.write_case_arrays(prepared.case_paths(root, case)[0], images, part, np.ones_like(part))
        rows += [{"case_id": case, "patient_id": case, "slice_index": i, "flipped": False,
                  "lesion_pixels": int(m.sum()), "lesion_area_mm2": float(m.sum()), "has_lesion": True}
                 for i, m in enumerate(part)]
    prepared.write_dataset_index(root, PrepareConfig(size=48), rows, [{"case_id": "case1"}, {"case_id": "case2"}])
    out = tmp_path / "estimator.pt"
    code = main(["train-f1-estimator", str(root), "-o", str(out), "--epochs", "1", "--pairs", "40",
                 "--size", "32", "--progress", "none"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "12 mask slices" in printed
    assert load_f1_estimator(out)[0].size == 32


def test_cli_bad_input_is_one_sentence(tmp_path, capsys):
    from lesionseg.cli import main

    missing = tmp_path / "nowhere"
    assert main(["train-f1-estimator", str(missing), "-o", str(tmp_path / "e.pt")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(missing) in error
    assert main(["train-f1-estimator", "-o", str(tmp_path / "e.pt"), "--pairs", "3"]) == 2
    assert "--pairs" in capsys.readouterr().err
