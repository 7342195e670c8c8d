"""3D patch training and 3D inference: lesion patches per epoch, the bundle and the predictor's geometry,
the sliding window against a whole-volume pass, exact resume, and bad input (exit code 2, one sentence)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from conftest import SMALL_PHANTOM
from resume_check import assert_same_run, stop_after_epoch_1_and_resume
from lesionseg.cli import main
from lesionseg.preprocess import PreparedDataset
from lesionseg.train import FoldTrainer, TrainConfig

#: a narrow 3D U-Net and a patch it takes (every size a multiple of 16)
NETWORK_3D = {"network": "unet3d", "network_kwargs": {"features": [4, 8, 16, 32, 64]}}
PATCH = (16, 32, 32)


def config_3d(**options) -> TrainConfig:
    settings = {**NETWORK_3D, "patch_size": PATCH, "patches_per_volume": 4, "batch_size": 4, "lr": 1e-3,
                "optimiser": "adam", "device": "cpu", "num_threads": 1, "all_data": True, "val_every": 1}
    settings.update(options)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def prepared_3d(tmp_path_factory) -> Path:
    """Four small synthetic FLAIR cases prepared at 64 x 64 with every brain slice (``negatives=1``): 3D
    training needs whole volumes, which ``tiny_prepared`` (30 % of the lesion-free slices) does not have."""
    from lesionseg.preprocess import PrepareConfig, prepare_dataset
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("prepared_3d")
    write_cohort(root / "data", 4, modalities=("flair",), seed=11, **SMALL_PHANTOM)
    prepare_dataset(root / "data", root / "prepared", PrepareConfig(size=64, negatives=1.0))
    return root / "prepared"


@pytest.fixture(scope="module")
def run_3d(prepared_3d, tmp_path_factory) -> Path:
    """A 3D run folder: fold 0 of 2 (two training cases, two validated with the sliding window), 2 epochs."""
    from lesionseg.train import train_run

    run = tmp_path_factory.mktemp("run_3d") / "run"
    train_run(prepared_3d, run, config_3d(epochs=2, all_data=False, folds=2, fold=0))
    return run


def test_every_epoch_of_a_3d_run_trains_on_fresh_patches_at_least_40_percent_with_lesion(prepared_3d, tmp_path):
    from lesionseg.train.patches import lesion_counts_per_origin

    prepared = PreparedDataset(prepared_3d)
    patch, per_case = (16, 16, 32), 10  # small patches: uniform draws would give too few lesion patches
    config = config_3d(epochs=2, patch_size=patch, patches_per_volume=per_case, val_every=5)
    trainer = FoldTrainer(config, prepared, list(prepared.slices), [], None, tmp_path / "run", record_visits=True)
    result = trainer.run()
    dataset = trainer.dataset
    uniform = [float((lesion_counts_per_origin(v.label > 0, patch) > 0).mean()) for v in dataset.volumes]
    assert min(uniform) < 0.4  # without rejection some case would fall short
    needed = math.ceil(0.4 * per_case)
    epochs = []
    for epoch, visited in enumerate(result.visits):
        assert sorted(visited) == list(range(len(dataset)))  # each of the epoch's patches once
        dataset.set_epoch(epoch)  # the trainer's own draw of that epoch, replayed
        with_lesion = np.array([bool(dataset[i]["mask"].any()) for i in range(len(dataset))])
        for number in range(len(dataset.volumes)):
            assert with_lesion[number * per_case:(number + 1) * per_case].sum() >= needed, (epoch, number)
        assert result.history[epoch]["lesion_patch_fraction"] == pytest.approx(with_lesion.mean())
        assert dataset[0]["image"].shape == (1, *patch)
        epochs.append(dataset.origins.copy())
    assert not np.array_equal(epochs[0], epochs[1])  # fresh patches every epoch
    # the volumes hold each slice as prepared: mapped back, the planes are the stored masks, flips undone
    for volume in dataset.volumes:
        positions, masks = volume.row_slices(volume.label.astype(np.float32))
        assert [prepared.slices[p] for p in positions] == prepared.case_slices(volume.case_id)
        assert np.array_equal(masks > 0, prepared.arrays(volume.case_id).masks > 0)


def test_a_3d_run_writes_a_3d_bundle_that_segments_in_the_native_geometry(run_3d):
    from lesionseg.bundle import read_manifest, validate_manifest
    from lesionseg.infer import Predictor
    from lesionseg.synth import make_case

    manifest = read_manifest(run_3d / "model.lsb")
    assert manifest["spatial_dims"] == 3 and manifest["patch_size"] == list(PATCH)
    assert manifest["network"]["name"] == "unet3d"
    older = {key: value for key, value in manifest.items() if key != "patch_size"}
    validate_manifest(older, "an older bundle")  # the key is optional
    cases = (run_3d / "fold_0" / "val_cases.csv").read_text(encoding="utf-8").splitlines()
    assert len(cases) == 3 and cases[0].startswith("case_id,dice")  # two cases validated by sliding window
    log = json.loads((run_3d / "fold_0" / "log.json").read_text(encoding="utf-8"))
    assert [record["epoch"] for record in log] == [0, 1] and all("val_dice" in record for record in log)

    predictor = Predictor(run_3d / "model.lsb", device="cpu")
    assert predictor.patch_size == PATCH
    native = make_case(3, seed=21, **SMALL_PHANTOM).channels["flair"]
    for image in (native, sitk.DICOMOrient(native, "RAI")):
        result = predictor.predict({"flair": image}, side="left")
        for output in (result.labelmap, result.probabilities):
            assert output.GetSize() == image.GetSize()
            assert output.GetSpacing() == image.GetSpacing()
            assert output.GetOrigin() == image.GetOrigin()
            assert output.GetDirection() == image.GetDirection()
        probabilities = sitk.GetArrayFromImage(result.probabilities)
        assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0 and probabilities.max() > 0.0


def test_the_sliding_window_equals_a_whole_volume_pass_for_a_voxelwise_network(run_3d):
    """A 1x1x1 convolution gives each voxel's output from that voxel alone, so any correct tiling, blending,
    padding and placing of the windows must reproduce one pass over the whole stack; a misplaced window, a
    wrong crop or a slice put at the wrong depth would not."""
    from lesionseg.infer import Predictor

    predictor = Predictor(run_3d / "model.lsb", device="cpu")
    torch.manual_seed(0)
    members = []
    for _ in range(2):
        member = torch.nn.Conv3d(1, 2, kernel_size=1)
        torch.nn.init.normal_(member.weight, std=2.0)
        members.append(member.eval())
    predictor.bundle.networks = members
    rng = np.random.default_rng(1)
    # a stack thinner than the patch, and one of several windows in depth, both with slices not kept
    for indices in ([3, 4, 5, 7, 8, 9, 10, 12], [*range(2, 20), *range(23, 45)]):
        slices = rng.normal(size=(len(indices), 1, 64, 64)).astype(np.float32)
        windowed, _ = predictor.slice_probabilities(slices, slice_indices=indices)
        stack = torch.as_tensor(slices).permute(1, 0, 2, 3)[None]  # (1, C, N, S, S): no gaps, no windows
        with torch.no_grad():
            whole = sum(torch.softmax(member(stack), dim=1)[0, 1] for member in members) / len(members)
        assert windowed.shape == (len(indices), 64, 64)
        np.testing.assert_allclose(windowed, whole.numpy(), atol=1e-5)


@pytest.mark.slow
def test_resuming_a_stopped_3d_run_ends_with_the_same_weights(prepared_3d, tmp_path):
    from lesionseg.train.run import plan_folds
    from lesionseg.train.slices import select_rows

    prepared = PreparedDataset(prepared_3d)
    config = config_3d(epochs=3, all_data=False, folds=2, fold=1, deterministic=True, seed=3,
                       augmentation={"bias_prob": 0.5, "noise_prob": 0.5})  # augmentation on: flips, bias, noise
    _, training, validation = plan_folds(config, prepared)[0]
    train_rows, val_rows = select_rows(prepared, training), select_rows(prepared, validation)

    def trainer(folder, **options):
        return FoldTrainer(config, prepared, train_rows, val_rows, None, folder, fold=1, **options)

    straight = trainer(tmp_path / "straight").run()
    resumed = stop_after_epoch_1_and_resume(trainer, tmp_path / "stopped")
    assert_same_run(straight, resumed)
    np.testing.assert_array_equal(straight.slice_losses, resumed.slice_losses)


def test_patch_augmentation_flips_rows_only_and_keeps_the_mask_aligned():
    from lesionseg.train.augment import build_augmentation

    only_flip = {"flip_prob": 1.0, "rotate_prob": 0.0, "elastic_prob": 0.0, "bias_prob": 0.0,
                 "motion_prob": 0.0, "noise_prob": 0.0}
    augment = build_augmentation(only_flip, spatial_dims=3)
    image = np.arange(2 * 4 * 6 * 8, dtype=np.float32).reshape(2, 4, 6, 8)
    mask = (image[:1] % 3 == 0).astype(np.int64)
    out = augment({"image": image, "mask": mask}, seed=1)
    np.testing.assert_array_equal(out["image"], image[:, :, ::-1, :])  # (C, Z, Y, X): rows reversed
    np.testing.assert_array_equal(out["mask"], mask[:, :, ::-1, :])
    everything = build_augmentation({"rotate_prob": 1.0, "elastic_prob": 1.0, "motion_prob": 1.0, "flip_prob": 0.0,
                                     "bias_prob": 0.0, "noise_prob": 0.0}, spatial_dims=3)
    np.testing.assert_array_equal(everything({"image": image, "mask": mask}, seed=2)["image"], image)  # 2D only


def _one_sentence(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lesionseg train: error: "), lines
    assert "Traceback" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("options, named", [
    (["--patch-size", "8,32,32"], ["--patch-size 8,32,32", "multiple of 16", "16,32,32"]),
    (["--patch-size", "16,64"], ["--patch-size", "three positive integers"]),
    (["--curriculum", "vanilla"], ["--curriculum vanilla", "--curriculum none"]),
    (["--patches-per-volume", "0"], ["--patches-per-volume", "positive integer"]),
])
def test_bad_3d_options_exit_2_with_one_sentence(prepared_3d, tmp_path, capsys, options, named):
    code = main(["train", str(prepared_3d), str(tmp_path / "run"), "--model", "unet3d", "--progress", "none",
                 *options])
    message = _one_sentence(capsys)
    assert code == 2 and all(word in message for word in named), message


def test_3d_training_on_slices_with_dropped_negatives_says_to_prepare_with_negatives_1(tiny_prepared, tmp_path,
                                                                                      capsys):
    code = main(["train", str(tiny_prepared), str(tmp_path / "run"), "--model", "unet3d", "--all-data",
                 "--epochs", "1", "--patch-size", ",".join(map(str, PATCH)), "--progress", "none",
                 "--network-kwargs", json.dumps(NETWORK_3D["network_kwargs"])])
    message = _one_sentence(capsys)
    assert code == 2 and "--negatives 1" in message and str(tiny_prepared) in message, message
