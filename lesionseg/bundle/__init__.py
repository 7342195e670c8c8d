"""The model bundle: a trained model as one versioned file (``.lsb``) that runs no code when loaded.

A bundle is a zip holding ``manifest.json`` (network configuration, input channels and their order,
expected spacing, preprocessing, labels, threshold, ensemble members with their validation metrics, and
provenance without patient identifiers) and one state dict per ensemble member, read with
``torch.load(weights_only=True)``.

Public API:
    BUNDLE_FORMAT_VERSION, BUNDLE_SUFFIX: the format version this LesionSeg writes and reads up to; ``.lsb``.
    make_manifest, validate_manifest, find_identifiers, redact_paths: the manifest (:mod:`.manifest`).
    save_bundle, read_manifest, load_state_dicts: the file (:mod:`.archive`).
    load_bundle, LoadedBundle, check_channels: networks ready to predict (:mod:`.loading`).
    model_card, format_model_card, validation_summary: what a user sees (:mod:`.card`).
"""

from lesionseg.bundle.archive import load_state_dicts, read_manifest, save_bundle
from lesionseg.bundle.card import format_model_card, model_card, validation_summary
from lesionseg.bundle.loading import LoadedBundle, check_channels, load_bundle
from lesionseg.bundle.manifest import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_VERSION,
    BUNDLE_SUFFIX,
    MANIFEST_NAME,
    default_labels,
    find_identifiers,
    json_safe,
    library_versions,
    make_manifest,
    redact_paths,
    segment_labels_of,
    validate_manifest,
)

__all__ = [
    "BUNDLE_FORMAT", "BUNDLE_FORMAT_VERSION", "BUNDLE_SUFFIX", "LoadedBundle", "MANIFEST_NAME", "check_channels",
    "default_labels", "find_identifiers", "format_model_card", "json_safe", "library_versions", "load_bundle",
    "load_state_dicts", "make_manifest", "model_card", "read_manifest", "redact_paths", "save_bundle",
    "segment_labels_of", "validate_manifest", "validation_summary",
]
