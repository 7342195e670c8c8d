"""Fine-tuning: which bundle's weights start a run, and whether they fit it.

A bundle *fits* a run when, after the channel map (``--channel-map new=old``: the run's channel ``new``
takes the place of the bundle's ``old``), its channels are the run's in the same order, its network and
keyword arguments are the run's (so every weight has its place), its input depth (neighbouring slices,
2.5D) is the run's, and its preprocessing normalises the same way (the MRI z-score with the same clip
percentiles, or the same CT window) at the same slice size (the network learned lesions at that pixel
size). An explicit ``--finetune`` needs the first three (else exit 2, naming both sides) and says when the
last two differ (a FLAIR model as the start of a CT model is a choice a researcher may make); the starter
is used by default only when all five match. The transfer paper's setting is this one: a model fine-tuned
on a few target cases.

A dataset prepared with ``--mirror-difference`` has, after the bundle's planes, each plane's mirrored difference. A
bundle without them fits it softly: its first layer is widened, the added planes' input weights starting at zero
(:func:`widen_state_dict`), so the run starts from what the bundle computes and learns to use the other hemisphere.

``--finetune starter`` names the starter model shipped with the package for the run's channel
(:mod:`lesionseg.starter`: the CT starter when every channel is CT after the channel map, else the FLAIR one);
the presets fine-tune from it by default when it fits (``starter_if_fits``) and train from scratch otherwise,
saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lesionseg.errors import BundleError, ParameterError
from lesionseg.preprocess import PreparedDataset
from lesionseg.train.config import TrainConfig

STARTER = "starter"


@dataclass
class FinetuneSource:
    """The weights a run starts from, and where they come from (for the log and the bundle's provenance)."""

    state_dict: dict
    path: Path
    name: str
    manifest: dict[str, Any]
    #: the shipped starter's modality (flair, ct) when the weights are a starter's and the run sees its images as
    #: the starter did (what rehearsal needs); else None
    starter: str | None = None

    def provenance(self) -> dict[str, Any]:
        return {"name": self.name, "bundle": self.manifest.get("name"),
                "version": self.manifest.get("provenance", {}).get("lesionseg_version")
                or self.manifest.get("lesionseg_version"),
                "made_by": self.manifest.get("provenance", {}).get("made_by")}


def _key(name: str) -> str:
    from lesionseg.data.channels import channel_or_lower

    return channel_or_lower(name)


def _normalisation(channel: str, preprocessing: Mapping[str, Any]) -> tuple:
    from lesionseg.data import CT_CHANNELS

    if _key(channel) in CT_CHANNELS:
        windows = tuple(preprocessing.get("ct_windows") or ())  # None: one plane windowed with ct_window
        return ("ct_window",) + tuple(float(v) for v in preprocessing.get("ct_window", (0.0, 80.0))) + windows
    return ("zscore",) + tuple(float(v) for v in preprocessing.get("clip_percentiles", (0.5, 99.5)))


def fit_problems(manifest: Mapping[str, Any], config: TrainConfig, prepared: PreparedDataset) -> tuple[str | None, str | None]:
    """Why a bundle does not fit a run, as the ends of sentences: ``(hard, soft)``.

    ``hard``: the weights cannot serve this run (other channels after the channel map, another network, another
    input depth). ``soft``: they load, but the bundle saw its images otherwise (another slice size or
    normalisation): an explicit ``--finetune`` goes on and says so (e.g. a FLAIR model as the start of a CT
    model); the starter is used only when nothing differs. None: no such difference.

    Args:
        manifest: the bundle's manifest.
        config: the run's configuration (network, context slices, channel map).
        prepared: the run's prepared dataset (channels, slice size, normalisation).
    """
    from lesionseg.models import network_config

    run_channels, mapped = _mapped_channels(config, prepared)
    bundle_channels = list(manifest.get("channels", []))
    if [_key(c) for c in mapped] != [_key(c) for c in bundle_channels]:
        shown = ", ".join(f"{a}={b}" for a, b in config.channel_map.items())
        return (f"it was trained on channel(s) {', '.join(bundle_channels)} but the dataset has "
                f"{', '.join(run_channels)}" + (f" (after --channel-map {shown}: {', '.join(mapped)})" if shown else ""),
                None)
    preprocessing = dict(manifest.get("preprocessing", {}))
    bundle_mirror = preprocessing.get("mirror_difference", False) is True
    if bundle_mirror and not prepared.config.mirror_difference:
        return ("it takes the mirrored-hemisphere difference channels but the dataset was prepared without them "
                "(--mirror-difference)", None)
    added_mirror = prepared.config.mirror_difference and not bundle_mirror  # widened: see widen_state_dict
    bundle_context = int(preprocessing.get("context_slices", 0) or 0)
    if bundle_context != config.context_slices:
        return (f"it takes {bundle_context} neighbouring slice(s) on each side but the run uses "
                f"{config.context_slices} (--context)", None)
    wanted = network_config(config.network, len(prepared.config.input_planes(run_channels))
                            * (2 * config.context_slices + 1), prepared.config.n_outputs(),
                            **config.network_kwargs)
    given = manifest.get("network", {})
    if given.get("out_channels", wanted["out_channels"]) != wanted["out_channels"]:
        bundle_classes = ", ".join(label.get("name", "?") for label in manifest.get("labels", [])[1:])
        data_classes = ", ".join(entry["name"] for entry in prepared.config.classes or [{"name": "lesion"}])
        return (f"it segments {given.get('out_channels') - 1} class(es) ({bundle_classes}) but the dataset has "
                f"{wanted['out_channels'] - 1} ({data_classes})", None)
    if given.get("name") != wanted["name"] or given.get("kwargs") != wanted["kwargs"]:
        return (f"its network is {given.get('name')} {given.get('kwargs')} but the run trains {wanted['name']} "
                f"{wanted['kwargs']}", None)
    # the mirrored differences come after every plane, so the bundle's planes are the first half of the run's
    bundle_in = wanted["in_channels"] // 2 if added_mirror else wanted["in_channels"]
    if given.get("in_channels", bundle_in) != bundle_in:  # e.g. CT with two windows
        return (f"its network takes {given.get('in_channels')} input plane(s) but the run has "
                f"{wanted['in_channels']} ({', '.join(prepared.config.input_planes(run_channels))}; --ct-windows)",
                None)
    margin = preprocessing.get("brain_margin_mm")
    if margin != prepared.config.brain_margin_mm:
        def framing(value):
            return "the whole field of view" if value is None else f"the brain with a {value:g} mm margin"

        return None, (f"its slices framed {framing(margin)} but the dataset's frame "
                      f"{framing(prepared.config.brain_margin_mm)}")
    if int(preprocessing.get("size", 0)) != prepared.size:
        return None, f"it was trained on {preprocessing.get('size')}-pixel slices but the dataset has {prepared.size}"
    prepared_settings = prepared.config.to_dict()
    for run_name, bundle_name in zip(run_channels, bundle_channels):
        if _normalisation(run_name, prepared_settings) != _normalisation(bundle_name, preprocessing):
            return None, (f"channel {run_name} is normalised as {_normalisation(run_name, prepared_settings)} but "
                          f"its channel {bundle_name} as {_normalisation(bundle_name, preprocessing)}")
    if added_mirror:
        return None, ("it takes no mirrored-hemisphere difference channels (the dataset was prepared with "
                      "--mirror-difference): their input weights start at zero")
    return None, None


def widen_state_dict(state: Mapping[str, Any], target: Mapping[str, Any]) -> dict:
    """A bundle's weights for a network that takes more input planes than the bundle's (a dataset prepared with
    ``--mirror-difference`` fine-tuning a bundle without it, see :func:`fit_problems`).

    Weights of the target's shape are kept as they are. A weight whose shape differs only along axis 1 (a
    convolution's input channels, ``(out, in, *kernel)``) and has more input channels in the target keeps the
    bundle's values for its first input channels (the bundle's planes come first in the run's input) and zeros for
    the added ones, so the widened network computes what the bundle computed until training gives the new planes
    weight. (Surgery on the first layer rather than a library call: MONAI and PyTorch load weights of equal shape
    only.)

    Args:
        state: the bundle's state dict (tensors).
        target: the run's network's state dict (tensors; only shapes and dtypes are read).

    Returns:
        A state dict of the target's shapes.

    Raises:
        BundleError: a weight is missing, or differs in shape otherwise than by added input channels.
    """
    import torch

    widened = {}
    for name, reference in target.items():
        if name not in state:
            raise BundleError(f"the bundle's weights have no {name}; it was made for another network.")
        value = state[name]
        if tuple(value.shape) == tuple(reference.shape):
            widened[name] = value
            continue
        if (value.dim() < 2 or value.dim() != reference.dim() or value.shape[0] != reference.shape[0]
                or value.shape[2:] != reference.shape[2:] or value.shape[1] > reference.shape[1]):
            raise BundleError(f"the bundle's weight {name} has shape {tuple(value.shape)}, the run's network "
                              f"{tuple(reference.shape)}; only added input channels can be filled.")
        grown = torch.zeros(reference.shape, dtype=value.dtype)
        grown[:, : value.shape[1]] = value
        widened[name] = grown
    return widened


def fit_problem(manifest: Mapping[str, Any], config: TrainConfig, prepared: PreparedDataset) -> str | None:
    """Why a bundle does not fit a run exactly (any difference of :func:`fit_problems`); None when it fits."""
    hard, soft = fit_problems(manifest, config, prepared)
    return hard or soft


def _mapped_channels(config: TrainConfig, prepared: PreparedDataset) -> tuple[list[str], list[str]]:
    """The dataset's channels, and the bundle channels they stand for after ``config.channel_map``."""
    run_channels = list(prepared.channels or prepared.config.channels or [])
    return run_channels, [config.channel_map.get(name, name) for name in run_channels]


def starter_modality(config: TrainConfig, prepared: PreparedDataset) -> str:
    """Which shipped starter a run means by ``starter``: ``ct`` when each of its channels is a CT channel after
    the channel map, else ``flair`` (so ``--channel-map ct=flair`` takes the FLAIR starter to CT)."""
    from lesionseg.data.channels import all_ct

    return "ct" if all_ct(_mapped_channels(config, prepared)[1]) else "flair"


def resolve_bundle_path(value: str, modality: str = "flair") -> tuple[Path, str]:
    """The bundle path of ``--finetune`` (``starter``: the shipped starter model for ``modality``, see
    :func:`starter_modality`) and a name for it."""
    if value == STARTER:
        from lesionseg.starter import starter_bundle_path

        if modality == "flair":
            return starter_bundle_path(), STARTER
        return starter_bundle_path(modality), f"{modality} {STARTER}"
    return Path(value), Path(value).name


def finetune_source(config: TrainConfig, prepared: PreparedDataset,
                    progress=None) -> FinetuneSource | None:
    """The weights a run starts from: ``config.finetune_from`` (refused when it does not fit), else the
    starter when ``config.starter_if_fits`` and it fits (else None, with a message), else None.

    Raises:
        ParameterError: ``--finetune`` names a bundle that does not fit the run (naming both sides).
        BundleError: the bundle cannot be read.
    """
    from lesionseg.bundle import load_state_dicts, read_manifest

    say = progress or (lambda event: None)
    if config.finetune_from:
        path, name = resolve_bundle_path(config.finetune_from, starter_modality(config, prepared))
        manifest = read_manifest(path)
        hard, soft = fit_problems(manifest, config, prepared)
        if hard:
            raise ParameterError(f"--finetune {config.finetune_from} does not fit this run: {hard}; "
                                 "use --channel-map NEW=OLD, other training options, or --from-scratch.")
        if soft:
            say({"event": "message", "message": f"fine-tuning from {name} although {soft}"})
        starter = starter_modality(config, prepared) if config.finetune_from == STARTER and not soft else None
        return FinetuneSource(load_state_dicts(path)[0], path, name, manifest, starter)
    if not config.starter_if_fits:
        return None
    modality = starter_modality(config, prepared)
    called = "the starter model" if modality == "flair" else f"the {modality} starter model"
    try:
        path, name = resolve_bundle_path(STARTER, modality)
        manifest = read_manifest(path)
    except BundleError as error:
        say({"event": "message", "message": f"training from scratch: {called} is unavailable ({error})"})
        return None
    problem = fit_problem(manifest, config, prepared)
    if problem:
        say({"event": "message", "message": f"training from scratch: {called} does not fit ({problem})"})
        return None
    say({"event": "message", "message": f"fine-tuning from {called} (--from-scratch to train from scratch)"})
    return FinetuneSource(load_state_dicts(path)[0], path, name, manifest, modality)
