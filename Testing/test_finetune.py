"""Fine-tuning: when a bundle fits a run, the channel map, the starter, and what bad input gets."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_NETWORK, run_cli
from lesionseg.errors import ParameterError


@pytest.fixture(scope="module")
def tiny_2p5d_bundle(tiny_prepared, tmp_path_factory):
    """A bundle with the tiny network and one neighbouring slice on each side (one epoch: weights only)."""
    from lesionseg.train import TrainConfig, train_run

    config = TrainConfig(**TINY_NETWORK, epochs=1, all_data=True, batch_size=8, device="cpu", num_threads=1,
                         curriculum="none", context_slices=1, augmentation={"enabled": False})
    return train_run(tiny_prepared, tmp_path_factory.mktemp("ft") / "run", config).bundle


def _config(**values):
    from lesionseg.train import TrainConfig

    return TrainConfig(**{**TINY_NETWORK, "context_slices": 1, "all_data": True, "epochs": 1, **values})


def test_a_bundle_of_the_same_recipe_fits(tiny_prepared, tiny_2p5d_bundle):
    from lesionseg.bundle import read_manifest
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train.finetune import fit_problem

    manifest = read_manifest(tiny_2p5d_bundle)
    prepared = PreparedDataset(tiny_prepared)
    assert fit_problem(manifest, _config(), prepared) is None
    depth = fit_problem(manifest, _config(context_slices=0), prepared)
    assert "1 neighbouring slice(s) on each side but the run uses 0" in depth
    network = fit_problem(manifest, _config(network_kwargs={"features": [16, 32, 64, 128, 256]}), prepared)
    assert network.startswith("its network is unet2d") and "[8, 16, 32, 64, 128]" in network


def test_the_channel_map_puts_the_dataset_channels_in_the_bundles_place(tiny_prepared, tiny_2p5d_bundle):
    """The bundle knows 'flair'; a manifest edited to say 'ct' fits only through --channel-map ct=flair."""
    from lesionseg.bundle import read_manifest
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train.finetune import fit_problem

    manifest = read_manifest(tiny_2p5d_bundle)
    manifest["channels"], manifest["reference_channel"] = ["dwi"], "dwi"
    prepared = PreparedDataset(tiny_prepared)
    problem = fit_problem(manifest, _config(), prepared)
    assert problem == "it was trained on channel(s) dwi but the dataset has flair"
    assert fit_problem(manifest, _config(channel_map={"flair": "dwi"}), prepared) is None
    wrong = fit_problem(manifest, _config(channel_map={"flair": "adc"}), prepared)
    assert "after --channel-map flair=adc: adc" in wrong


def test_finetune_from_a_bundle_that_does_not_fit_exits_2_naming_both(tiny_prepared, tiny_2p5d_bundle, tmp_path):
    result = run_cli("train", tiny_prepared, tmp_path / "run", "--finetune", tiny_2p5d_bundle, "--epochs", "1",
                     "--model", "unet2d", "--network-kwargs", json.dumps(TINY_NETWORK["network_kwargs"]),
                     "--context", "1", "--channel-map", "flair=dwi", "--progress", "none")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "does not fit this run" in message and "trained on channel(s) flair" in message
    assert "after --channel-map flair=dwi: dwi" in message


def test_finetune_starter_with_channels_it_was_not_trained_on_exits_2(tiny_prepared, tiny_2p5d_bundle, tmp_path,
                                                                       monkeypatch):
    """The starter (here a stand-in bundle, as the shipped one may be absent in a source tree) knows flair only."""
    from lesionseg.bundle import read_manifest, save_bundle
    from lesionseg.bundle.archive import load_state_dicts
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train.finetune import finetune_source

    manifest = read_manifest(tiny_2p5d_bundle)
    manifest["channels"], manifest["reference_channel"] = ["dwi"], "dwi"
    stand_in = save_bundle(tmp_path / "starter.lsb", manifest, load_state_dicts(tiny_2p5d_bundle))
    monkeypatch.setattr("lesionseg.starter.starter_bundle_path", lambda: stand_in)
    prepared = PreparedDataset(tiny_prepared)
    with pytest.raises(ParameterError, match=r"--finetune starter does not fit this run: it was trained on "
                                             r"channel\(s\) dwi but the dataset has flair"):
        finetune_source(_config(finetune_from="starter"), prepared)
    messages = []
    assert finetune_source(_config(starter_if_fits=True), prepared, messages.append) is None
    assert "training from scratch: the starter model does not fit" in messages[0]["message"]
    source = finetune_source(_config(starter_if_fits=True, channel_map={"flair": "dwi"}), prepared, messages.append)
    assert source is not None and source.name == "starter" and "fine-tuning from the starter" in messages[-1]["message"]


def test_a_missing_starter_means_training_from_scratch_with_a_sentence(tiny_prepared, monkeypatch, tmp_path):
    from lesionseg.errors import BundleError
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train.finetune import finetune_source

    def absent():
        raise BundleError("the starter model is not part of this installation")

    monkeypatch.setattr("lesionseg.starter.starter_bundle_path", absent)
    messages = []
    assert finetune_source(_config(starter_if_fits=True), PreparedDataset(tiny_prepared), messages.append) is None
    assert "the starter model is unavailable" in messages[0]["message"]


def test_starter_means_the_ct_starter_for_a_ct_run(tiny_prepared, tiny_2p5d_bundle, tmp_path, monkeypatch):
    """``starter`` is the shipped model of the run's channel after the map: the CT starter when every channel is CT
    (here the tiny dataset's flair mapped onto ct), the FLAIR one otherwise (stand-in bundles for both)."""
    from lesionseg.bundle import read_manifest, save_bundle
    from lesionseg.bundle.archive import load_state_dicts
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.train.finetune import finetune_source, starter_modality

    weights = load_state_dicts(tiny_2p5d_bundle)
    flair = save_bundle(tmp_path / "starter.lsb", read_manifest(tiny_2p5d_bundle), weights)
    ct_manifest = read_manifest(tiny_2p5d_bundle)
    ct_manifest["channels"], ct_manifest["reference_channel"] = ["ct"], "ct"
    ct = save_bundle(tmp_path / "ct_starter.lsb", ct_manifest, weights)
    monkeypatch.setattr("lesionseg.starter.starter_bundle_path", lambda modality="flair": {"flair": flair, "ct": ct}[modality])
    prepared = PreparedDataset(tiny_prepared)
    assert starter_modality(_config(), prepared) == "flair"
    assert starter_modality(_config(channel_map={"flair": "ct"}), prepared) == "ct"
    assert finetune_source(_config(finetune_from="starter"), prepared).path == flair
    messages = []
    source = finetune_source(_config(finetune_from="starter", channel_map={"flair": "ct"}), prepared, messages.append)
    assert source.path == ct and source.name == "ct starter"
    # the CT starter's weights load, but it saw CT windows, not z-scored MRI: said, not hidden
    assert "fine-tuning from ct starter although channel flair is normalised" in messages[0]["message"]
    assert finetune_source(_config(starter_if_fits=True, channel_map={"flair": "ct"}), prepared, messages.append) is None
    assert messages[-1]["message"].startswith("training from scratch: the ct starter model does not fit")
