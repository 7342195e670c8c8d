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


# --- a bundle without the mirrored differences, fine-tuned on a dataset prepared with them ------------------------


def test_widened_weights_compute_what_the_bundle_computed_whatever_the_new_planes_hold():
    """Two of the CPU preset's networks (MONAI's U-Net, in evaluation mode), one taking 3 input planes, one 6: with
    the first's weights widened, the second's output on any 6 planes is the first's on the first 3 (the added
    planes get zero weight); a weight that differs otherwise than by added inputs is refused in a sentence."""
    import torch

    from lesionseg.errors import BundleError
    from lesionseg.models import build_network
    from lesionseg.train.finetune import widen_state_dict

    torch.manual_seed(0)
    kwargs = {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 0, "norm": "batch"}
    narrow, wide = (build_network("monai_unet", planes, 2, **kwargs).eval() for planes in (3, 6))
    for _ in range(2):  # running statistics that are not the defaults, so the norm layers count too
        narrow.train()(torch.randn(4, 3, 32, 32))
    narrow.eval()
    wide.load_state_dict(widen_state_dict(narrow.state_dict(), wide.state_dict()))
    planes = torch.randn(2, 6, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(wide(planes), narrow(planes[:, :3]), rtol=1e-5, atol=1e-5)
        other = planes.clone()
        other[:, 3:] = torch.randn(2, 3, 32, 32) * 10
        torch.testing.assert_close(wide(other), wide(planes), rtol=1e-5, atol=1e-5)
    three_classes = build_network("monai_unet", 6, 3, **kwargs)
    with pytest.raises(BundleError, match=r"only added input channels can be filled\.$"):
        widen_state_dict(narrow.state_dict(), three_classes.state_dict())


def test_a_bundle_without_mirrored_differences_fine_tunes_on_a_dataset_with_them(tiny_prepared, tiny_2p5d_bundle,
                                                                                  tmp_path):
    """The tiny dataset prepared again with the mirrored differences: the bundle (without them) fits softly, with a
    sentence; one epoch of fine-tuning gives a bundle of twice the input planes whose mirror planes have learnt
    weight (they start at zero, and train). The other way round (a bundle with them, a dataset without) is refused."""
    import torch

    from lesionseg.bundle import read_manifest
    from lesionseg.bundle.archive import load_state_dicts
    from lesionseg.preprocess import PreparedDataset, PrepareConfig, prepare_dataset
    from lesionseg.train import train_run
    from lesionseg.train.finetune import fit_problems

    mirrored = tmp_path / "prepared-mirror"
    prepare_dataset(tiny_prepared.parent / "data", mirrored,
                    PrepareConfig(size=64, negatives=0.3, context_slices=1, mirror_difference=True))
    manifest = read_manifest(tiny_2p5d_bundle)
    hard, soft = fit_problems(manifest, _config(), PreparedDataset(mirrored))
    assert hard is None and soft.endswith("their input weights start at zero")
    with_mirror = {**manifest, "preprocessing": {**manifest["preprocessing"], "mirror_difference": True}}
    hard, _ = fit_problems(with_mirror, _config(), PreparedDataset(tiny_prepared))
    assert hard.startswith("it takes the mirrored-hemisphere difference channels but the dataset was prepared without")

    messages = []
    result = train_run(mirrored, tmp_path / "run", _config(finetune_from=str(tiny_2p5d_bundle), batch_size=8,
                                                           device="cpu", num_threads=1, curriculum="none"),
                       progress=messages.append)
    assert any("their input weights start at zero" in str(m.get("message", "")) for m in messages)
    weights = load_state_dicts(result.bundle)[0]
    before = load_state_dicts(tiny_2p5d_bundle)[0]
    changed = [name for name in weights if weights[name].shape != before[name].shape]
    assert len(changed) == 1 and read_manifest(result.bundle)["network"]["in_channels"] == 6
    grown = weights[changed[0]]
    assert grown.shape[1] == 6 and float(torch.count_nonzero(grown[:, 3:])) > 0
