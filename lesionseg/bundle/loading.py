"""Networks from a bundle, and the check that an input has the channels a bundle needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from lesionseg.bundle.archive import load_state_dicts, read_manifest
from lesionseg.errors import BundleError, ParameterError


@dataclass
class LoadedBundle:
    """A bundle ready to predict: its manifest and one network per member, in eval mode on ``device``.

    Attributes:
        manifest: the validated manifest (see :mod:`lesionseg.bundle.manifest`).
        networks: the ensemble members; each maps ``(B, C, *spatial)`` to logits ``(B, classes, *spatial)``.
        path: the bundle file.
    """

    manifest: dict[str, Any]
    networks: list[Any]
    path: Path

    @property
    def channels(self) -> list[str]:
        """Input channel names in the order the networks take them."""
        return list(self.manifest["channels"])

    @property
    def threshold(self) -> float:
        """Lesion probability at or above which a voxel is labelled lesion."""
        return float(self.manifest["threshold"])

    def probabilities(self, batch: Any) -> Any:
        """Mean softmax of the members for one batch (no gradients).

        Args:
            batch: ``(B, C, *spatial)`` float tensor on the networks' device, channels in :attr:`channels` order.

        Returns:
            ``(B, classes, *spatial)`` probabilities averaged over the members.
        """
        import torch

        with torch.no_grad():
            total = None
            for network in self.networks:
                probabilities = torch.softmax(network(batch), dim=1)
                total = probabilities if total is None else total + probabilities
            return total / len(self.networks)


def _build(manifest: Mapping[str, Any], path: Path) -> Any:
    from lesionseg.models import build_network_from_config

    try:
        return build_network_from_config(manifest["network"])
    except ParameterError as error:
        raise BundleError(f"{path} describes a network this LesionSeg cannot build "
                          f"({str(error).rstrip('.')}).") from None


def _mismatch(network: Any, state: Mapping[str, Any], error: RuntimeError) -> str:
    """What differs between the weights and the network, in one clause (counts and the first example)."""
    expected = network.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [key for key in expected if key in state and tuple(expected[key].shape) != tuple(state[key].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} parameters missing, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
    if reshaped:
        key = reshaped[0]
        parts.append(f"{len(reshaped)} of another shape, e.g. {key} is {list(state[key].shape)} in the file "
                     f"but {list(expected[key].shape)} in the network")
    if not parts:  # something else PyTorch refused: its first line
        parts.append(str(error).strip().splitlines()[0][:200].rstrip("."))
    return "; ".join(parts)


def load_bundle(path: str | os.PathLike, device: Any = "cpu") -> LoadedBundle:
    """Build every member's network from the manifest and load its weights (strictly).

    No code from the file is run: the network is built from its JSON configuration by
    :func:`lesionseg.models.build_network_from_config` and the weights are tensors read with
    ``torch.load(weights_only=True)``.

    Args:
        path: the ``.lsb`` file.
        device: where the networks go (``"cpu"``, ``"cuda"``, a ``torch.device``).

    Returns:
        A :class:`LoadedBundle` with the networks in eval mode.

    Raises:
        BundleError: as :func:`~lesionseg.bundle.read_manifest` and :func:`~lesionseg.bundle.load_state_dicts`;
            a network that cannot be built; weights that do not fit the network (missing, unexpected or
            differently shaped parameters).
    """
    path = Path(path)
    manifest = read_manifest(path)
    networks = []
    for member, state in zip(manifest["members"], load_state_dicts(path)):
        network = _build(manifest, path)
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise BundleError(f"{path}: the weights in {member['file']} do not fit the network "
                              f"{manifest['network']['name']!r} ({_mismatch(network, state, error)}).") from None
        networks.append(network.to(device).eval())
    return LoadedBundle(manifest, networks, path)


def _channel_key(name: str) -> str:
    from lesionseg.data.channels import channel_or_lower

    return channel_or_lower(name)


def check_channels(manifest: Mapping[str, Any], given: Sequence[str], source: str,
                   input_name: str = "the input") -> list[str]:
    """Match the input's channels to the bundle's by name (in any order) and put them in the bundle's order.

    Names are compared by their canonical form (:func:`lesionseg.data.channels.channel_or_lower`:
    ``FLAIR`` = ``flair``, ``T1`` = ``t1w``). Extra input channels the bundle does not use are left out.

    Args:
        manifest: the bundle's manifest.
        given: the input's channel names.
        source: the bundle, as named in messages (its path or name).
        input_name: the input, as named in messages (a file, a case id).

    Returns:
        The names from ``given`` (as spelled there) in the order of ``manifest["channels"]``.

    Raises:
        BundleError: a channel the bundle needs is missing, e.g. "bundle X needs 3 channels (tmax, ttp, dwi)
            but the input has 1 (flair)."
    """
    needed = list(manifest["channels"])
    by_key: dict[str, str] = {}
    for name in given:
        key = _channel_key(name)
        if key in by_key:
            raise BundleError(f"{input_name} has the channel {key!r} twice ({by_key[key]!r} and {name!r}).")
        by_key[key] = name
    missing = [name for name in needed if _channel_key(name) not in by_key]
    if missing:
        count = len(needed)
        raise BundleError(f"bundle {source} needs {count} channel{'s' if count != 1 else ''} ({', '.join(needed)}) "
                          f"but {input_name} has {len(given)} ({', '.join(given) or 'none'}); "
                          f"missing {', '.join(missing)}.")
    return [by_key[_channel_key(name)] for name in needed]
