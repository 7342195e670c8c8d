"""Networks by name: shapes, gradients, the (2+1)D factorisation, residual units, configs, bad names."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lesionseg.errors import ParameterError
from lesionseg.models import (
    NETWORKS,
    build_network,
    build_network_from_config,
    count_parameters,
    min_size,
    network_config,
    size_multiple,
    spatial_dims,
)

# Small widths so that each forward + backward takes well under a second on a CPU.
SMALL = {
    "unet2d": {"features": (4, 8, 8, 16, 16)},
    "monai_unet": {"channels": (4, 8, 8, 16, 16)},
    "basic_unet": {"features": (4, 8, 8, 16, 16)},
    "res_unet": {"features": (4, 8, 8, 16, 16)},
    "unet3d": {"features": (4, 4, 8, 8, 16)},
    "unet2plus1d": {"features": (4, 4, 8, 8, 16)},
    "detect_segment": {"features": (4, 8, 16)},
}
#: networks that train through losses of their own (their ``training_losses``), not through their forward's logits:
#: their tests are in their own files (detect_segment: Testing/test_detect_segment.py)
OWN_LOSSES = ("detect_segment",)


def test_every_name_has_small_widths_here():
    assert set(SMALL) == set(NETWORKS)


@pytest.mark.parametrize("name", [name for name in NETWORKS if name not in OWN_LOSSES])
def test_forward_backward_shapes_and_gradients(name):
    torch.manual_seed(0)
    dims = spatial_dims(name)
    assert dims == (3 if name in ("unet3d", "unet2plus1d") else 2)
    side = 64 if dims == 2 else 32
    assert side % size_multiple(name, **SMALL[name]) == 0
    network = build_network(name, in_channels=3, out_channels=2, **SMALL[name])
    batch = 2 if dims == 2 else 1
    x = torch.randn(batch, 3, *([side] * dims))
    y = network(x)
    assert y.shape == (batch, 2, *([side] * dims))
    assert torch.isfinite(y).all()
    # logits, not probabilities: a softmax over the class axis changes them
    assert not torch.allclose(y, torch.softmax(y, dim=1))
    torch.nn.functional.cross_entropy(y, torch.randint(0, 2, (batch, *([side] * dims)))).backward()
    grads = [p.grad for p in network.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # gradients reach the first layer (deepest from the loss) and are not all zero
    first = next(p for p in network.parameters() if p.dim() > 1)
    assert first.grad.abs().sum() > 0
    assert sum(int(g.abs().sum() > 0) for g in grads) >= 0.9 * len(grads)


def test_output_channels_and_input_modalities_are_honoured():
    network = build_network("unet2d", in_channels=3, out_channels=4, **SMALL["unet2d"])
    assert network(torch.zeros(1, 3, 32, 32)).shape == (1, 4, 32, 32)
    with pytest.raises(RuntimeError):  # built for 3 modalities: a single-channel input does not fit
        network(torch.zeros(1, 1, 32, 32))


def test_unet2d_is_monai_basicunet_with_five_levels_of_the_paper_widths():
    from monai.networks.nets import BasicUNet

    ours = build_network("unet2d", 1)
    reference = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(32, 64, 128, 256, 512, 32))
    assert count_parameters(ours) == count_parameters(reference)
    # five resolution levels: four 2x max-poolings between the five encoder stages
    pools = [m for m in ours.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 4
    assert size_multiple("unet2d") == 16
    assert min_size("unet2d") == 32


def test_min_size_is_needed_by_instance_norm_at_the_deepest_level():
    network = build_network("unet2d", 1, **SMALL["unet2d"])
    side = min_size("unet2d")
    assert network(torch.zeros(1, 1, side, side)).shape == (1, 2, side, side)
    with pytest.raises(ValueError):  # one pixel per channel at the bottom: instance norm refuses it
        network(torch.zeros(1, 1, side // 2, side // 2))


def test_unet2plus1d_factorises_every_3x3x3_convolution():
    network = build_network("unet2plus1d", 1, **SMALL["unet2plus1d"])
    kernels = [tuple(m.kernel_size) for m in network.modules() if isinstance(m, nn.Conv3d)]
    assert kernels.count((1, 3, 3)) == kernels.count((3, 1, 1)) == 18  # 9 blocks x 2 convolutions
    assert set(kernels) == {(1, 3, 3), (3, 1, 1), (1, 1, 1)}
    ups = {tuple(m.kernel_size) for m in network.modules() if isinstance(m, nn.ConvTranspose3d)}
    assert ups == {(2, 2, 2)}
    # each in-plane convolution is directly followed (after norm/act) by its through-plane partner
    ordered = [tuple(m.kernel_size) for m in network.modules()
               if isinstance(m, nn.Conv3d) and m.kernel_size != (1, 1, 1)]
    assert ordered[0::2] == [(1, 3, 3)] * 18 and ordered[1::2] == [(3, 1, 1)] * 18
    # the plain 3D U-Net, by contrast, has full 3x3x3 kernels
    plain = {tuple(m.kernel_size) for m in build_network("unet3d", 1, **SMALL["unet3d"]).modules()
             if isinstance(m, nn.Conv3d)}
    assert (3, 3, 3) in plain


def test_unet2plus1d_mixes_slices_only_through_the_through_plane_kernels():
    torch.manual_seed(0)
    network = build_network("unet2plus1d", 1, **SMALL["unet2plus1d"]).eval()
    x = torch.randn(1, 1, 32, 32, 32, requires_grad=True)
    network(x)[0, 1, 16, 16, 16].backward()
    influence = x.grad[0, 0].abs().sum(dim=(1, 2))
    assert influence[15] > 0 and influence[17] > 0  # neighbouring slices influence the centre voxel


def test_res_unet_has_residual_units_in_the_encoder():
    from monai.networks.blocks import ResidualUnit

    network = build_network("res_unet", 1, **SMALL["res_unet"])
    units = [m for m in network.modules() if isinstance(m, ResidualUnit)]
    strided = [u for u in units
               if any(c.stride[0] == 2 for c in u.modules() if isinstance(c, nn.Conv2d))]
    assert len(strided) == 4  # one downsampling residual unit per encoder level below the top
    plain = build_network("monai_unet", 1, **SMALL["monai_unet"])
    assert not any(isinstance(m, ResidualUnit) for m in plain.modules())


def test_default_parameter_counts_are_those_of_monai():
    from monai.networks.nets import UNet

    assert count_parameters(build_network("res_unet", 1)) == count_parameters(
        UNet(2, 1, 2, channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2), num_res_units=2))
    assert count_parameters(build_network("monai_unet", 2)) == count_parameters(
        UNet(2, 2, 2, channels=(32, 64, 128, 256, 512), strides=(2, 2, 2, 2), num_res_units=0))


@pytest.mark.parametrize("name, kwargs", [
    ("unet2d", SMALL["unet2d"]),
    ("unet2plus1d", SMALL["unet2plus1d"]),
    ("monai_unet", {"channels": (4, 8, 16), "act": ("LeakyReLU", {"negative_slope": 0.2}), "num_res_units": 1}),
    ("basic_unet", {"features": (4, 4, 8, 8, 16, 4), "upsample": "nontrainable"}),
])
def test_config_round_trip_through_json_rebuilds_the_same_network(name, kwargs):
    torch.manual_seed(1)
    original = build_network(name, 2, 3, **kwargs).eval()
    text = json.dumps(network_config(name, 2, 3, **kwargs))
    rebuilt = build_network_from_config(json.loads(text)).eval()
    rebuilt.load_state_dict(original.state_dict())  # same architecture: every key and shape fits
    dims = spatial_dims(name, **kwargs)
    x = torch.randn(1, 2, *([32] * dims))
    torch.testing.assert_close(rebuilt(x), original(x))


def test_config_records_the_defaults():
    config = network_config("unet2d", 1)
    assert config["kwargs"]["features"] == [32, 64, 128, 256, 512]
    assert config["name"] == "unet2d" and config["in_channels"] == 1 and config["out_channels"] == 2
    assert network_config("res_unet", 1)["kwargs"]["num_res_units"] == 2


def test_size_multiple_follows_strides_and_spatial_dims_the_keyword():
    assert size_multiple("monai_unet", channels=(4, 8, 16, 32), strides=(2, 2, 2)) == 8
    assert size_multiple("monai_unet", channels=(4, 8, 16)) == 4
    assert spatial_dims("monai_unet", spatial_dims=3) == 3
    network = build_network("monai_unet", 1, channels=(4, 8, 16), spatial_dims=3)
    assert network(torch.zeros(1, 1, 8, 12, 16)).shape == (1, 2, 8, 12, 16)


def test_unknown_network_lists_the_valid_names():
    with pytest.raises(ParameterError) as raised:
        build_network("vnet", 1)
    for name in NETWORKS:
        assert name in str(raised.value)


@pytest.mark.parametrize("call, words", [
    (lambda: build_network("unet2d", 1, channels=(4, 8)), ["channels", "features", "dropout"]),
    (lambda: build_network("unet2d", 1, features=(4, 8, 16)), ["5 widths"]),
    (lambda: build_network("unet2d", 0), ["in_channels"]),
    (lambda: build_network("res_unet", 1, num_res_units=0), ["num_res_units"]),
    (lambda: build_network("monai_unet", 1, channels=(4, 8, 16), strides=(2,)), ["monai_unet"]),
    (lambda: build_network_from_config({"weights": 1}), ["configuration"]),
])
def test_bad_keywords_are_one_sentence_parameter_errors(call, words):
    with pytest.raises(ParameterError) as raised:
        call()
    for word in words:
        assert word in str(raised.value)
