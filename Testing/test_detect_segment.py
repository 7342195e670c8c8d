"""Detect-then-segment (``--model detect_segment``): its boxes, RoI sampling and paste-back, that it learns, that it
trains and segments through the trainer, the bundle and ``segment`` like the U-Nets, and its bad input.

Sources of truth: boxes, pixels and sampled values computed by hand from the module's coordinate convention
(pixel (r, c) covers [r, r + 1) x [c, c + 1)); the true squares of generated slices; the bundle format's own
reader (``torch.load(weights_only=True)``) against the weights the trainer returned.
"""

from __future__ import annotations

import json
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from lesionseg.errors import ParameterError
from lesionseg.models import build_network, min_size, network_config, size_multiple
from lesionseg.models.boxes import OUTSIDE_LOGIT, boxes_from_mask, paste_masks, roi_align

SMALL = {"features": [8, 16, 32]}  # three levels: strides 2, 4, 8; a size multiple of 8


def test_boxes_of_two_blobs_are_the_hand_computed_boxes():
    mask = np.zeros((12, 10), np.uint8)
    mask[2:5, 1:4] = 1  # rows 2-4, columns 1-3
    mask[5, 4] = 1  # touches (4, 3) at a corner: the same lesion (8-connectivity)
    mask[7:11, 6:9] = 1  # rows 7-10, columns 6-8
    boxes = boxes_from_mask(mask)
    np.testing.assert_array_equal(boxes, [[2, 1, 6, 5], [7, 6, 11, 9]])
    assert boxes_from_mask(np.zeros((5, 5))).shape == (0, 4)


def test_the_box_coder_round_trip_on_the_networks_anchors_returns_the_boxes():
    network = build_network("detect_segment", 1, 2, **SMALL)
    images = torch.zeros(1, 1, 64, 64)
    fine, coarse = network._features(images)
    anchors = network.anchors(images, fine, coarse)
    assert anchors.shape == ((16 * 16 + 8 * 8) * 3, 4)  # strides 4 and 8, three anchor sides per location
    sides = (anchors[:, 2] - anchors[:, 0]).reshape(-1)
    assert sides[:3].tolist() == [4.0, 8.0, 16.0] and sides[-3:].tolist() == [32.0, 64.0, 128.0]
    boxes = torch.tensor([[3.0, 5.0, 6.0, 9.0], [10.5, 20.0, 40.0, 31.25], [0.0, 0.0, 64.0, 64.0]])
    chosen = anchors[[5, 400, len(anchors) - 1]]
    codes = network.box_coder.encode_single(boxes, chosen)
    torch.testing.assert_close(network.box_coder.decode_single(codes, chosen), boxes, atol=1e-4, rtol=0)


def test_roi_align_samples_a_linear_ramp_at_the_cell_centres():
    # f(y, x) = 2 y + x at continuous positions; pixel (r, c) holds f at its centre (r + 0.5, c + 0.5), so bilinear
    # sampling inside the slice returns f exactly and a cell's mean of samples is f at the cell's centre
    rows, cols = np.mgrid[0:32, 0:40] + 0.5
    image = torch.from_numpy((2 * rows + cols).astype(np.float32))[None, None]
    region = torch.tensor([[10.0, 12.0, 18.0, 28.0]])
    cells = roi_align(image, region, (32, 40), size=4)[0, 0]
    centres_y = 10 + (np.arange(4) + 0.5) * 2  # 11, 13, 15, 17
    centres_x = 12 + (np.arange(4) + 0.5) * 4  # 14, 18, 22, 26
    np.testing.assert_allclose(cells.numpy(), 2 * centres_y[:, None] + centres_x[None, :], atol=1e-4)


def test_a_mask_positive_everywhere_fills_exactly_its_box():
    positive = torch.full((1, 7, 7), 5.0)
    pasted = paste_masks(positive, torch.tensor([[2.0, 3.0, 6.0, 8.0]]), (10, 12))
    expected = np.zeros((10, 12), bool)
    expected[2:6, 3:8] = True  # rows 2-5, columns 3-7: the pixels whose centres lie in [2, 6) x [3, 8)
    np.testing.assert_array_equal(pasted.numpy() > 0, expected)
    np.testing.assert_allclose(pasted.numpy()[expected], 5.0)
    assert (pasted.numpy()[~expected] == OUTSIDE_LOGIT).all()
    # a box with fractional corners: centres 2.5, 3.5, 4.5 lie in [2.4, 5.5); 4.5 .. 7.5 in [3.6, 8.0)
    pasted = paste_masks(positive, torch.tensor([[2.4, 3.6, 5.5, 8.0]]), (10, 12))
    expected = np.zeros((10, 12), bool)
    expected[2:5, 4:8] = True
    np.testing.assert_array_equal(pasted.numpy() > 0, expected)
    # overlapping boxes: the larger logit wins; a box partly outside the slice is cut at its edge
    pasted = paste_masks(torch.stack([torch.full((7, 7), 1.0), torch.full((7, 7), 3.0)]),
                         torch.tensor([[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 13.0, 13.0]]), (10, 12))
    assert pasted[1, 1] == 1.0 and pasted[3, 3] == 3.0 and pasted[9, 11] == 3.0 and pasted[1, 3] == 1.0


def _squares(count: int, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Noisy slices (standard deviation 0.3) with one bright square (+2) of side 5-16 px each, their masks and boxes."""
    images = rng.normal(0.0, 0.3, (count, 1, size, size)).astype(np.float32)
    masks = np.zeros((count, 1, size, size), np.int64)
    boxes = []
    for i in range(count):
        side = int(rng.integers(5, 17))
        row, col = rng.integers(2, size - side - 2, 2)
        images[i, 0, row:row + side, col:col + side] += 2.0
        masks[i, 0, row:row + side, col:col + side] = 1
        boxes.append([row, col, row + side, col + side])
    return torch.from_numpy(images), torch.from_numpy(masks), np.asarray(boxes, np.float32)


def test_a_tiny_model_learns_to_find_and_outline_a_bright_square():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images, masks, _ = _squares(64, 64, rng)
    held_images, held_masks, held_boxes = _squares(16, 64, rng)
    network = build_network("detect_segment", 1, 2, features=[8, 16, 32, 64])
    optimiser = torch.optim.Adam(network.parameters(), 3e-3)
    for _ in range(8):  # 64 steps of 8 slices
        network.train()
        order = torch.randperm(64)
        for start in range(0, 64, 8):
            chosen = order[start:start + 8]
            optimiser.zero_grad()
            loss, per_sample = network.training_losses(images[chosen], masks[chosen])
            assert per_sample.shape == (8,) and torch.isclose(loss, per_sample.mean())
            loss.backward()
            optimiser.step()
    network.eval()
    with torch.no_grad():
        logits = network(held_images)
        boxes, scores, _ = network.detect(held_images)
    assert logits.shape == (16, 2, 64, 64) and (logits[:, 0] == 0).all()
    predicted = torch.softmax(logits, dim=1)[:, 1].numpy() > 0.5
    truth = held_masks[:, 0].numpy() == 1
    dice = 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum())
    # an untrained model detects nothing (Dice 0); this one reached 0.998 when written. A square of 5-16 px
    # outlined one pixel too wide on every side scores 0.71-0.89, so 0.85 asks for outlines about a pixel exact
    assert dice > 0.85, dice
    # and the first stage found each square: a detection holds its centre and overlaps it at IoU > 0.3 (the boxes
    # are not exact yet after 64 steps: 5-px squares got 7-px boxes, IoU 0.47; the grown box and the mask make up)
    from monai.data.box_utils import box_iou

    ious = []
    for found, true in zip(boxes, held_boxes):
        centre = (true[:2] + true[2:]) / 2
        holds = ((found[:, 0] <= centre[0]) & (centre[0] < found[:, 2]) & (found[:, 1] <= centre[1])
                 & (centre[1] < found[:, 3]))
        assert holds.any()
        ious.append(float(box_iou(found, torch.from_numpy(true[None])).max()))
    assert min(ious) > 0.3 and np.median(ious) > 0.6, ious


@pytest.mark.slow
def test_train_on_prepared_slices_writes_a_bundle_that_loads_without_pickle_and_segments(tiny_prepared, tmp_path):
    from lesionseg.bundle import load_bundle
    from lesionseg.train import TrainConfig, train_run
    from lesionseg.train.slices import load_slices, select_rows
    from lesionseg.train.validate import predict_probabilities

    # the self-paced curriculum: its schedule takes the network's own per-slice losses (eval mode)
    config = TrainConfig(network="detect_segment", network_kwargs=SMALL, epochs=2, folds=3, fold=0, val_every=1,
                         batch_size=8, optimiser="adam", lr=2e-3, device="cpu", num_threads=1, curriculum="spl",
                         context_slices=1, augmentation={"enabled": False})
    summary = train_run(tiny_prepared, tmp_path / "run", config)
    result = summary.results[0]
    assert result.epochs_run == 2 and "val_dice" in result.validation
    assert np.isfinite(result.slice_losses).any()
    with zipfile.ZipFile(summary.bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert sorted(archive.namelist()) == ["manifest.json", "weights/fold_0.pt"]
    assert manifest["network"] == network_config("detect_segment", 3, 2, **SMALL)
    # the bundle's network (JSON configuration + weights_only tensors) against the weights in memory
    in_memory = build_network("detect_segment", 3, 2, **SMALL)
    in_memory.load_state_dict(result.state_dict)
    from_bundle = load_bundle(summary.bundle).networks[0]
    from lesionseg.preprocess import PreparedDataset

    prepared = PreparedDataset(tiny_prepared)
    rows = [row for row in select_rows(prepared, [c["case_id"] for c in result.val_cases])]
    arrays = load_slices(prepared, rows, 1)
    options = {"device": torch.device("cpu"), "multiple": size_multiple("detect_segment", **SMALL),
               "minimum": min_size("detect_segment", **SMALL)}
    ours = predict_probabilities(in_memory, arrays.images, **options)
    theirs = predict_probabilities(from_bundle, arrays.images, **options)
    np.testing.assert_array_equal(ours, theirs)
    # segment reads it like any bundle: a mask and probabilities on the input's grid
    import SimpleITK as sitk

    flair = sorted((Path(tiny_prepared).parent / "data").rglob("*FLAIR.nii.gz"))[0]
    out = tmp_path / "mask.nii.gz"
    done = run_cli("segment", summary.bundle, flair, "-o", out, "--prob", tmp_path / "prob.nii.gz", "--device", "cpu",
                   "--progress", "none")
    assert done.returncode == 0, done.stderr
    source, mask = sitk.ReadImage(str(flair)), sitk.ReadImage(str(out))
    assert mask.GetSize() == source.GetSize() and mask.GetSpacing() == pytest.approx(source.GetSpacing())
    assert (tmp_path / "prob.nii.gz").is_file()


@pytest.mark.slow
def test_the_cpu_preset_trains_detect_segment_from_scratch_and_says_so(tiny_prepared, tmp_path):
    run = tmp_path / "run"
    done = run_cli("train", tiny_prepared, run, "--model", "detect_segment", "--network-kwargs", json.dumps(SMALL),
                   "--epochs", "1", "--threads", "1", "--batch-size", "8", "--progress", "jsonl")
    assert done.returncode == 0, done.stderr
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["starter_if_fits"] is True and saved["curriculum"] == "vanilla"  # the preset's, unchanged
    messages = [json.loads(line).get("message", "") for line in (done.stdout + done.stderr).splitlines()
                if line.startswith("{")]
    said = [m for m in messages if m.startswith("training from scratch")]
    assert len(said) == 1 and "detect_segment" in said[0], messages
    with zipfile.ZipFile(run / "model.lsb") as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["network"]["name"] == "detect_segment"
    assert "finetuned_from" in manifest["provenance"] and manifest["provenance"]["finetuned_from"] is None


def test_bad_keywords_and_several_classes_are_refused_in_one_sentence():
    from lesionseg.train import TrainConfig
    from lesionseg.train.run import check_lesion_classes

    with pytest.raises(ParameterError, match="does not take bogus"):
        build_network("detect_segment", 1, 2, bogus=1)
    for keyword, value in (("mask_size", 3), ("score_threshold", 1.5), ("anchor_sizes", [[4, 8], [16]]),
                           ("features", [8, 16])):
        with pytest.raises(ParameterError, match=f"detect_segment: {keyword} must be"):
            build_network("detect_segment", 1, 2, **{keyword: value})
    with pytest.raises(ParameterError, match="one lesion class"):
        build_network("detect_segment", 1, 3)
    two_classes = types.SimpleNamespace(root=Path("prepared"), config=types.SimpleNamespace(
        classes=[{"name": "core"}, {"name": "penumbra"}]))
    with pytest.raises(ParameterError, match=r"2 lesion classes \(core, penumbra\), but detect_segment finds boxes "
                                             r"of one lesion class"):
        check_lesion_classes(TrainConfig(network="detect_segment"), two_classes)


@pytest.mark.parametrize("options, named", [
    (["--adversarial", "0.1"], "--adversarial"),
    (["--loss", "dice_bce"], "--loss"),
    (["--network-kwargs", '{"nms_threshold": 0}'], "nms_threshold"),
])
def test_the_cli_refuses_what_detect_segment_cannot_use_with_exit_2(tmp_path, capsys, options, named):
    from lesionseg.cli import main

    code = main(["train", str(tmp_path / "prepared"), str(tmp_path / "run"), "--model", "detect_segment", *options])
    message = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(message) == 1 and named in message[0], message
    assert not (tmp_path / "run").exists()


def test_freeze_encoder_freezes_the_down_path_only():
    from lesionseg.train.optim import encoder_parameter_names

    network = build_network("detect_segment", 1, 2, **SMALL)
    names = encoder_parameter_names("detect_segment", network)
    assert names and all(name.startswith(("stem.", "encoder.")) for name in names)
    assert {name for name, _ in network.named_parameters() if name.startswith(("stem.", "encoder."))} == set(names)


def test_the_automatic_backend_runs_detect_segment_on_torch_without_trying_an_export(tmp_path, monkeypatch):
    import lesionseg.infer.backend as backend

    def export_must_not_run(*args, **kwargs):
        raise AssertionError("the export was tried")

    monkeypatch.setitem(sys.modules, "onnxruntime", types.ModuleType("onnxruntime"))  # as if it were installed
    monkeypatch.setattr(backend, "export_onnx", export_must_not_run)
    network = build_network("detect_segment", 1, 2, **SMALL).eval()
    options = {"bundle_path": tmp_path / "d.lsb", "device": torch.device("cpu"), "spatial_dims": 2, "channels": 1,
               "size": 32, "multiple": 8, "minimum": 16, "cache_dir": tmp_path}
    runner, warnings = backend.choose_backend("auto", [network], **options)
    assert runner.name == "torch" and warnings == []
    runner, warnings = backend.choose_backend("onnx", [network], **options)
    assert runner.name == "torch" and len(warnings) == 1 and "d.lsb" in warnings[0] and "PyTorch" in warnings[0]
    probability = runner(np.zeros((2, 1, 32, 32), np.float32))
    assert probability.shape == (2, 32, 32) and probability.max() < 1e-6  # no detection at initialisation


def test_the_gradient_difficulty_retrains_detect_segment_through_its_own_losses():
    from lesionseg.train.gradient import gradient_difficulty
    from lesionseg.train.slices import SliceArrays

    torch.manual_seed(0)
    images, masks, _ = _squares(6, 32, np.random.default_rng(3))
    arrays = SliceArrays(images.numpy(), masks[:, 0].numpy().astype(np.uint8), np.ones((6, 32, 32), np.uint8),
                         [{"case_id": "c", "slice_index": i, "has_lesion": True} for i in range(6)])
    network = build_network("detect_segment", 1, 2, **SMALL)
    # its forward detects nothing at first (no gradient through the output): the retraining must use its own losses
    result = gradient_difficulty(arrays, network, network.state_dict(), optimiser="adam", lr=1e-3, epochs=1,
                                 repeats=1, batch_size=3, multiple=8, minimum=16)
    assert np.isfinite(result.mean_decrease).all() and np.isfinite(result.score).all()
    assert (result.mean_decrease != 0).any()


def test_the_size_multiple_the_callers_pad_to_is_the_networks_total_stride():
    """A strided first convolution, then a 2x2 max-pooling per further level: slices padded to the registry's
    multiple reach the deepest level whole, and the detection levels are exactly a quarter and an eighth."""
    for features in ([8, 16, 32], [16, 32, 64, 128]):
        network = build_network("detect_segment", 1, 2, features=features).eval()
        multiple = size_multiple("detect_segment", features=features)
        assert multiple == 2 ** len(features) == network.multiple
        assert min_size("detect_segment", features=features) == 2 * multiple
        with torch.no_grad():
            fine, coarse = network._features(torch.zeros(1, 1, 3 * multiple, 2 * multiple))
        assert tuple(fine.shape[-2:]) == (3 * multiple // 4, 2 * multiple // 4)
        assert tuple(coarse.shape[-2:]) == (3 * multiple // 8, 2 * multiple // 8)
