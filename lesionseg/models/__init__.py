"""Segmentation networks by name (MONAI where MONAI has them); see :mod:`.registry` for the names.

Networks return logits ``(B, out_channels, *spatial)``; :func:`network_config` gives the JSON that a
bundle stores and :func:`build_network_from_config` rebuilds the network from it without pickled code.
"""

from lesionseg.models.registry import (
    DEFAULT_NETWORK,
    FITTED_NETWORKS,
    NETWORKS,
    NetworkSpec,
    build_network,
    build_network_from_config,
    count_parameters,
    min_size,
    network_config,
    pad_amounts,
    size_multiple,
    spatial_dims,
)

__all__ = [
    "DEFAULT_NETWORK",
    "FITTED_NETWORKS",
    "NETWORKS",
    "NetworkSpec",
    "build_network",
    "build_network_from_config",
    "count_parameters",
    "min_size",
    "network_config",
    "pad_amounts",
    "size_multiple",
    "spatial_dims",
]
