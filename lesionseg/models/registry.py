"""Segmentation networks by name, with JSON configurations that rebuild them without pickled code.

Every network takes ``(B, in_channels, *spatial)`` and returns ``(B, out_channels, *spatial)`` LOGITS
(softmax over dim 1; 2 classes by default: background, lesion). Spatial axes are ``(y, x)`` for 2D
networks and ``(z, y, x)`` for 3D ones. The input channels are any stack of modalities (FLAIR alone, or
Tmax, TTP and DWI together); the order is the caller's and must be the same at training and inference.

Names (see :data:`NETWORKS`):

- ``unet2d`` (default): the curriculum paper's 2D U-Net with 5 levels, built as MONAI ``BasicUNet``: five
  resolution levels (192, 96, 48, 24, 12 pixels for a 192x192 slice) with two 3x3 convolutions each,
  four 2x2 max-poolings down, four 2x2 transposed convolutions up, skips by concatenation: the classic
  U-Net layout (Ronneberger et al., 2015). Level widths ``features`` (default 32, 64, 128, 256, 512:
  the original 64..1024 halved). MONAI ``UNet(channels=(32, ..., 512), strides=(2, 2, 2, 2),
  num_res_units=0)`` also has five levels but a single strided convolution per level and none at full
  resolution, so it is not the paper's U-Net; it is available as ``monai_unet`` (about 7 times faster on a
  CPU at batch 12 of 192x192 slices).
- ``monai_unet``: MONAI ``UNet``, every MONAI keyword accepted (``spatial_dims`` default 2, ``channels``
  default 32..512, ``strides`` default all 2).
- ``basic_unet``: MONAI ``BasicUNet`` with its own keywords (``spatial_dims`` default 2, MONAI's
  default ``features``).
- ``res_unet``: MONAI ``UNet`` with ``num_res_units=2``: every encoder level is a residual unit (two
  convolution sub-units, the first strided, plus a strided 3x3 convolution on the residual path); the
  decoder's levels are a transposed convolution followed by a one-sub-unit residual unit.
- ``unet3d``: ``unet2d``'s layout in 3D (MONAI ``BasicUNet``, ``spatial_dims=3``, widths 16..256 by
  default) for patch training (:func:`lesionseg.train.patches.sample_patches`).
- ``gnb`` (:data:`FITTED_NETWORKS`, not a trainer's choice): the classical baseline in a network's shape,
  voxel-wise Gaussian naive Bayes (:mod:`lesionseg.models.gnb`), its numbers in its configuration, fitted by
  :mod:`lesionseg.train.gnb`.
- ``unet2plus1d``: the same 3D layout with each 3x3x3 convolution factorised into (1,3,3) then (3,1,1)
  kernels (:class:`~lesionseg.models.unet2plus1d.UNet2Plus1D`).
- ``detect_segment``: detect-then-segment (the curriculum paper's Mask R-CNN, built on MONAI's box utilities):
  lesion boxes from a small U-Net's features, then a mask inside each box, pasted back into the slice
  (:mod:`lesionseg.models.detect_segment`); 2D, one lesion class, its own training losses (its
  ``training_losses`` method), size multiple ``2 ** levels`` (16 by default: a strided first convolution, then a
  2x2 max-pooling per further level).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from lesionseg.errors import ParameterError

DEFAULT_NETWORK = "unet2d"
CONFIG_FORMAT = "lesionseg-network"
CONFIG_VERSION = 1

_WIDTHS_2D = (32, 64, 128, 256, 512)
_WIDTHS_3D = (16, 32, 64, 128, 256)
_MONAI_UNET_KWARGS = ("spatial_dims", "channels", "features", "strides", "kernel_size", "up_kernel_size",
                      "num_res_units", "act", "norm", "dropout", "bias", "adn_ordering")
_BASIC_UNET_KWARGS = ("spatial_dims", "features", "act", "norm", "bias", "dropout", "upsample")
_GNB_KWARGS = ("means", "variances", "priors", "sigmas_px", "scales_mm", "pixel_mm", "features")
# Keywords whose MONAI value is a (name, options) tuple; JSON turns tuples into lists.
_TUPLE_KWARGS = ("act", "norm", "dropout")


@dataclass(frozen=True)
class NetworkSpec:
    """What a network name means.

    Attributes:
        description: one line for help texts.
        spatial_dims: 2 or 3 (the default; ``monai_unet``, ``basic_unet`` and ``res_unet`` take a
            ``spatial_dims`` keyword).
        keywords: the keyword arguments the name accepts.
    """

    description: str
    spatial_dims: int
    keywords: tuple[str, ...] = field(default=())


NETWORKS: dict[str, NetworkSpec] = {
    "unet2d": NetworkSpec("the paper's 2D U-Net, 5 levels, two 3x3 convolutions per level (MONAI BasicUNet)",
                          2, ("features", "dropout")),
    "monai_unet": NetworkSpec("MONAI UNet with any of its keywords (strided convolutions, 2D by default)",
                              2, _MONAI_UNET_KWARGS),
    "basic_unet": NetworkSpec("MONAI BasicUNet with any of its keywords (2D by default)", 2, _BASIC_UNET_KWARGS),
    "res_unet": NetworkSpec("U-Net with residual units in the encoder (MONAI UNet, num_res_units=2)",
                            2, ("spatial_dims", "channels", "features", "strides", "num_res_units", "act", "norm",
                                "dropout")),
    "unet3d": NetworkSpec("3D U-Net for patch training, 5 levels (MONAI BasicUNet, spatial_dims=3)",
                          3, ("features", "dropout")),
    "unet2plus1d": NetworkSpec("3D U-Net with (2+1)D convolutions: (1,3,3) then (3,1,1) kernels, 5 levels",
                               3, ("features", "dropout")),
    "detect_segment": NetworkSpec("detect-then-segment: lesion boxes (anchors, focal loss, NMS), then a mask inside "
                                  "each box (the curriculum paper's Mask R-CNN on MONAI's box utilities)",
                                  2, ("features", "anchor_sizes", "score_threshold", "nms_threshold", "max_detections",
                                      "mask_size", "margin", "norm")),
}
#: models in the networks' shape (slices in, logits out, a bundle like any other) whose numbers are fitted in
#: closed form rather than trained by gradient descent; not among :data:`NETWORKS` (the trainer's choices)
FITTED_NETWORKS: dict[str, NetworkSpec] = {
    "gnb": NetworkSpec("classical baseline: voxel-wise Gaussian naive Bayes on intensities and local means, fitted "
                       "by 'train --model gnb' (lesionseg.train.gnb)", 2, _GNB_KWARGS),
}


def _spec(name: str) -> NetworkSpec:
    if isinstance(name, str) and name in FITTED_NETWORKS:
        return FITTED_NETWORKS[name]
    if not isinstance(name, str) or name not in NETWORKS:
        raise ParameterError(f"network {name!r} is unknown; choose one of {', '.join(NETWORKS)}.")
    return NETWORKS[name]


def _widths(value: Any, count: int | None, keyword: str, name: str) -> list[int]:
    """Check a sequence of positive integer widths (of length ``count`` when given)."""
    try:
        widths = [int(v) for v in value]
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: {keyword} must be a sequence of positive integers, not {value!r}.") from None
    if any(w < 1 or w != v for w, v in zip(widths, value)) or (count is None and len(widths) < 2):
        raise ParameterError(f"{name}: {keyword} must be a sequence of positive integers, not {value!r}.")
    if count is not None and len(widths) != count:
        raise ParameterError(f"{name}: {keyword} needs {count} widths (one per level), "
                             f"got {len(widths)}: {value!r}.")
    return widths


def _resolve(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Check the keywords of ``name`` and fill in the defaults that define the architecture."""
    spec = _spec(name)
    unknown = sorted(set(kwargs) - set(spec.keywords))
    if unknown:
        raise ParameterError(f"network {name!r} does not take {', '.join(unknown)}; "
                             f"its keywords are {', '.join(spec.keywords)}.")
    resolved = dict(kwargs)
    if name in ("unet2d", "unet3d", "unet2plus1d"):
        default = _WIDTHS_2D if name == "unet2d" else _WIDTHS_3D
        resolved["features"] = _widths(resolved.get("features", default), 5, "features", name)
        resolved["dropout"] = float(resolved.get("dropout", 0.0))
    elif name == "detect_segment":
        from lesionseg.models.detect_segment import resolve_keywords

        resolved = resolve_keywords(name, resolved)
    elif name == "gnb":
        pass  # its numbers come from the fit (lesionseg.train.gnb); the builder checks their shapes
    elif name == "basic_unet":
        resolved.setdefault("spatial_dims", 2)
        if "features" in resolved:
            features = _widths(resolved["features"], None, "features", name)
            if len(features) == 5:  # five level widths: the last decoder width repeats the first level's
                features.append(features[0])
            if len(features) != 6:
                raise ParameterError(f"{name}: features needs 5 level widths (or MONAI's 6 values), "
                                     f"got {resolved['features']!r}.")
            resolved["features"] = features
    else:  # monai_unet, res_unet
        if "features" in resolved and "channels" in resolved:
            raise ParameterError(f"{name}: give the level widths as channels or features, not both.")
        channels = resolved.pop("features", resolved.get("channels", _WIDTHS_2D))
        resolved["channels"] = _widths(channels, None, "channels", name)
        resolved.setdefault("spatial_dims", 2)
        resolved.setdefault("strides", [2] * (len(resolved["channels"]) - 1))
        resolved.setdefault("num_res_units", 2 if name == "res_unet" else 0)
        if name == "res_unet" and int(resolved["num_res_units"]) < 1:
            raise ParameterError(f"res_unet needs num_res_units >= 1 (residual units), "
                                 f"not {resolved['num_res_units']!r}.")
    if resolved.get("spatial_dims", spec.spatial_dims) not in (2, 3):
        raise ParameterError(f"{name}: spatial_dims must be 2 or 3, not {resolved['spatial_dims']!r}.")
    return resolved


def _as_monai(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Turn JSON lists back into the tuples MONAI expects for ``act``/``norm``/``dropout``."""
    out = dict(kwargs)
    for key in _TUPLE_KWARGS:
        if isinstance(out.get(key), list):
            out[key] = tuple(out[key])
    return out


def _build_basic(spatial: int, in_channels: int, out_channels: int, features: list[int],
                 dropout: float) -> nn.Module:
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=spatial, in_channels=in_channels, out_channels=out_channels,
                     features=(*features, features[0]), dropout=dropout)


def _build_monai_unet(in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(in_channels=in_channels, out_channels=out_channels, **_as_monai(kwargs))


def _build_monai_basic(in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    from monai.networks.nets import BasicUNet

    return BasicUNet(in_channels=in_channels, out_channels=out_channels, **_as_monai(kwargs))


def _build_2plus1d(in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    from lesionseg.models.unet2plus1d import UNet2Plus1D

    return UNet2Plus1D(in_channels, out_channels, **kwargs)


def _build_detect_segment(in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    from lesionseg.models.detect_segment import DetectSegment

    return DetectSegment(in_channels, out_channels, **kwargs)


def _build_gnb(in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    from lesionseg.models.gnb import build_gnb

    return build_gnb(in_channels, out_channels, **kwargs)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "unet2d": lambda i, o, **k: _build_basic(2, i, o, **k),
    "unet3d": lambda i, o, **k: _build_basic(3, i, o, **k),
    "monai_unet": _build_monai_unet,
    "res_unet": _build_monai_unet,
    "basic_unet": _build_monai_basic,
    "unet2plus1d": _build_2plus1d,
    "gnb": _build_gnb,
    "detect_segment": _build_detect_segment,
}


def _check_channels(in_channels: Any, out_channels: Any) -> tuple[int, int]:
    for label, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ParameterError(f"{label} must be an integer >= {low}, not {value!r}.")
    return int(in_channels), int(out_channels)


def network_config(name: str, in_channels: int, out_channels: int = 2, **kwargs: Any) -> dict[str, Any]:
    """The JSON-serialisable configuration of a network, with its architecture defaults filled in.

    Args:
        name: a key of :data:`NETWORKS`.
        in_channels: number of input channels (modalities).
        out_channels: number of classes (2: background, lesion).
        **kwargs: the network's keywords (see :data:`NETWORKS`); ``features`` are the level widths.

    Returns:
        ``{"format", "version", "name", "in_channels", "out_channels", "kwargs"}`` with only JSON types.

    Raises:
        ParameterError: unknown name (the valid ones are listed), unknown keyword, bad widths, or a value
            that JSON cannot store.
    """
    in_channels, out_channels = _check_channels(in_channels, out_channels)
    resolved = _resolve(name, kwargs)
    config = {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, "name": name,
              "in_channels": in_channels, "out_channels": out_channels, "kwargs": resolved}
    try:
        return json.loads(json.dumps(config))
    except (TypeError, ValueError) as error:
        raise ParameterError(f"network {name!r}: a keyword value cannot be stored as JSON ({error}).") from None


def build_network_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Build the network a :func:`network_config` dictionary describes (weights freshly initialised).

    Raises:
        ParameterError: the dictionary is not a network configuration, or its values are invalid.
    """
    if (not isinstance(config, Mapping) or config.get("format", CONFIG_FORMAT) != CONFIG_FORMAT
            or "name" not in config):
        raise ParameterError("the network configuration is not a lesionseg network configuration "
                             "(expected keys name, in_channels, out_channels, kwargs).")
    if int(config.get("version", CONFIG_VERSION)) > CONFIG_VERSION:
        raise ParameterError(f"the network configuration has version {config['version']}, newer than this "
                             f"lesionseg reads ({CONFIG_VERSION}); update lesionseg.")
    name = config["name"]
    in_channels, out_channels = _check_channels(config.get("in_channels"), config.get("out_channels", 2))
    kwargs = _resolve(name, dict(config.get("kwargs") or {}))
    try:
        return _BUILDERS[name](in_channels, out_channels, **kwargs)
    except (TypeError, ValueError, AssertionError) as error:  # MONAI's checks of its own keywords
        raise ParameterError(f"network {name!r} cannot be built with {kwargs}: {error}") from None


def build_network(name: str, in_channels: int, out_channels: int = 2, **kwargs: Any) -> nn.Module:
    """Build a network by name (see the module docstring for the names).

    Args:
        name: a key of :data:`NETWORKS` (default choice: ``"unet2d"``).
        in_channels: number of input channels (modalities).
        out_channels: number of classes; the network returns logits.
        **kwargs: the network's keywords (``features``/``channels`` = level widths, ``dropout``, ...).

    Returns:
        A ``torch.nn.Module`` mapping ``(B, in_channels, *spatial)`` to ``(B, out_channels, *spatial)``.

    Raises:
        ParameterError: unknown name (the message lists the valid ones), unknown keyword or bad value.
    """
    return build_network_from_config(network_config(name, in_channels, out_channels, **kwargs))


def spatial_dims(name: str, **kwargs: Any) -> int:
    """2 or 3: the number of spatial axes the network ``name`` (with these keywords) expects."""
    resolved = _resolve(name, kwargs)
    return int(resolved.get("spatial_dims", _spec(name).spatial_dims))


def size_multiple(name: str, **kwargs: Any) -> int:
    """Every spatial input size must be a multiple of this (pad to it), e.g. 16 for four 2x downsamplings.

    For MONAI ``UNet``-based names it is the product of the ``strides`` (per axis, the largest).
    """
    resolved = _resolve(name, kwargs)
    if name in FITTED_NETWORKS:
        return 1  # per-voxel features: any size
    if name == "detect_segment":
        return 2 ** len(resolved["features"])  # a strided first convolution, then one 2x2 max-pooling per level
    if "strides" not in resolved:
        return 16  # four 2x2(x2) max-poolings
    factor = 1
    for stride in resolved["strides"]:
        factor *= max(stride) if isinstance(stride, (list, tuple)) else int(stride)
    return factor


def min_size(name: str, **kwargs: Any) -> int:
    """Smallest spatial size that runs: twice :func:`size_multiple`.

    The deepest level then has 2 voxels per axis; with a single one, instance normalisation (every
    network here by default) has nothing to normalise and PyTorch refuses the input.
    """
    return 2 * size_multiple(name, **kwargs)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def pad_amounts(shape: tuple[int, ...], multiple: int) -> list[int]:
    """Per-axis padding that brings each size up to the next multiple of ``multiple``."""
    return [int(math.ceil(s / multiple) * multiple - s) for s in shape]
