"""The manifest of a model bundle: its JSON schema, how it is made, and how it is checked.

A bundle's ``manifest.json`` says everything needed to use its weights without running any code from the
file: the network's configuration (:func:`lesionseg.models.network_config`), the input channels in the
order the network expects them, the spacing of the training data, the preprocessing parameters
(:meth:`lesionseg.preprocess.PrepareConfig.to_dict`), the labels, the probability threshold, one entry
per ensemble member (its weights file and validation metrics) and the provenance of the training::

    {"format": "lesionseg-bundle", "format_version": 1, "created": "2025-01-31T12:00:00Z",
     "lesionseg_version": "0.1.0", "name": "...", "description": "...",
     "network": {"format": "lesionseg-network", "version": 1, "name": "unet2d", "in_channels": 1,
                 "out_channels": 2, "kwargs": {...}},
     "spatial_dims": 2, "channels": ["flair"], "reference_channel": "flair",
     "expected_spacing_mm": [1.0, 1.0, 3.0],
     "preprocessing": {...},
     "labels": [{"name": "background", "value": 0},
                {"name": "Stroke lesion", "value": 1, "color": [0.85, 0.2, 0.18], "terminology": "..."}],
     "threshold": 0.5,
     "members": [{"file": "weights/fold_0.pt", "fold": 0, "validation": {"dice": 0.71, ...}}],
     "provenance": {"train_config": {...}, "curriculum": {...}, "data_fingerprint": "<sha256 hex>",
                    "training_data": {"cases": 40, "slices": 900, "lesion_slices": 700,
                                      "lesion_volume_ml": {"median": 12.0, "min": 2.6, "max": 80.1}},
                    "fold_metrics": [{"fold": 0, "dice": 0.71}, ...],
                    "library_versions": {"torch": "...", "monai": "...", "SimpleITK": "...",
                                         "numpy": "...", "python": "..."}}}

``expected_spacing_mm`` is (x, y, z) in millimetres; colours are RGB in 0..1; ``created`` is UTC.

A 3D network (``"spatial_dims": 3``) also records ``"patch_size": [z, y, x]``, the training patch in
voxels of the prepared grid, which inference uses as its sliding window. The key is optional (bundles
written before it existed have none; a 3D bundle without it is run with the default training patch).
A 2D bundle may record ``"reading_sizes": [128, 160]``, the sides in pixels of the slices it reads new scans as,
the larger probability of the readings kept per voxel (:mod:`lesionseg.bundle.slice_size`); without it, it reads
at its training size ``preprocessing.size`` alone. With several readings it may also record ``"reading_agreement":
0.9``, the fraction of the threshold the readings' mean must reach in a lesion of their maximum; without it the
predictor uses :data:`lesionseg.bundle.slice_size.READING_AGREEMENT`.

No patient identifiers (the rule :func:`find_identifiers` enforces when a bundle is saved):

1. ``provenance.data_fingerprint`` is a SHA-256 hex digest (64 hex digits, optionally ``sha256:``-prefixed),
   never a list of cases or files.
2. ``provenance.training_data``, ``provenance.fold_metrics`` and every member's ``validation`` hold only
   numbers (or null/booleans), in dictionaries and lists: counts and metrics, never names.
3. No key anywhere names an identifier (``case_id``, ``patient``, ``subject``, ``PatientName``,
   ``StudyInstanceUID``, ...), unless its value is a number; ``cases`` is only ever a number.
4. No string anywhere is an absolute or home-relative path (``/...``, ``~...``, ``C:\\...``, ``\\\\server``),
   names a medical image file (``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``, ``.mhd``, ``.dcm``, ...), looks
   like a BIDS subject (``sub-<label>``) or a DICOM UID (``1.2.840....``), or contains one of the case ids
   the caller passes (the trainer knows them).

Paths in a training configuration (the dataset's folder, the output folder) therefore have to be dropped or
replaced by :func:`redact_paths` before the configuration goes into ``provenance.train_config``.
"""

from __future__ import annotations

import math
import platform
import re
from datetime import datetime, timezone
from importlib import metadata
from typing import Any, Iterable, Mapping, Sequence

from lesionseg.errors import BundleError

BUNDLE_FORMAT = "lesionseg-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
BUNDLE_SUFFIX = ".lsb"

_REQUIRED_KEYS = ("format", "format_version", "created", "lesionseg_version", "network", "spatial_dims",
                  "channels", "reference_channel", "expected_spacing_mm", "preprocessing", "labels",
                  "threshold", "members", "provenance")
_LIBRARIES = {"torch": "torch", "monai": "monai", "SimpleITK": "SimpleITK", "numpy": "numpy"}
_IDENTIFIER_KEYS = {"caseid", "caseids", "casename", "patient", "patients", "patientid", "patientname",
                    "patientbirthdate", "patientsex", "patientage", "birthdate", "dateofbirth", "subject",
                    "subjects", "subjectid", "participant", "participantid", "accessionnumber", "mrn",
                    "studyinstanceuid", "seriesinstanceuid", "sopinstanceuid", "institutionname",
                    "referringphysicianname"}
_IMAGE_FILE = re.compile(r"\.(nii|nii\.gz|nrrd|nhdr|mha|mhd|dcm|ima|img|hdr|mgz|seg\.nrrd)\b", re.IGNORECASE)
_ABSOLUTE_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")
_BIDS_SUBJECT = re.compile(r"(^|[^A-Za-z0-9])sub-[A-Za-z]*[0-9][A-Za-z0-9]*")  # sub-01, sub-strokecase0001
_DICOM_UID = re.compile(r"^\d+(\.\d+){5,}$")
_SHA256 = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
_MEMBER_FILE = re.compile(r"^weights/[A-Za-z0-9_.-]+\.pt$")


def _fail(source: str, problem: str) -> BundleError:
    return BundleError(f"{source} has an invalid manifest: {problem}.")


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries a bundle's numbers depend on (None for one that is not installed)."""
    versions: dict[str, str | None] = {}
    for key, distribution in _LIBRARIES.items():
        try:
            versions[key] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[key] = None
    versions["python"] = platform.python_version()
    return versions


def default_labels() -> list[dict[str, Any]]:
    """Background and the lesion label of :mod:`lesionseg.labels` (name, value, RGB colour 0..1, terminology)."""
    from lesionseg.labels import STROKE_LESION

    lesion: dict[str, Any] = {"name": STROKE_LESION.name, "value": STROKE_LESION.value,
                              "color": [float(c) for c in STROKE_LESION.color]}
    if STROKE_LESION.terminology:
        lesion["terminology"] = STROKE_LESION.terminology
    return [{"name": "background", "value": 0}, lesion]


def segment_labels_of(labels: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The lesion classes of a manifest's ``labels`` (background left out) as
    :class:`lesionseg.labels.SegmentLabel`, in output order; a label without a colour gets one of the default
    palette, and the stroke lesion, core and penumbra their terminology when the entry has none."""
    from lesionseg.data.label_table import DEFAULT_COLOURS
    from lesionseg.labels import SegmentLabel, known_label

    segments = []
    for entry in labels:
        if entry.get("value") == 0:
            continue
        colour = entry.get("color") or DEFAULT_COLOURS[len(segments) % len(DEFAULT_COLOURS)]
        segments.append(known_label(SegmentLabel(str(entry["name"]), int(entry["value"]),
                                                 tuple(float(c) for c in colour), entry.get("terminology"))))
    return segments


def json_safe(value: Any) -> Any:
    """A copy with only JSON types: numpy scalars/arrays become numbers/lists, tuples lists, NaN and
    infinities null (an undefined metric, e.g. Dice without lesion, is stored as null)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def redact_paths(value: Any) -> Any:
    """A copy in which every absolute path string is replaced by ``"<path>"`` (for ``train_config``)."""
    if isinstance(value, Mapping):
        return {k: redact_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_paths(v) for v in value]
    if hasattr(value, "__fspath__"):
        value = str(value)
    if isinstance(value, str) and _ABSOLUTE_PATH.match(value):
        return "<path>"
    return value


def make_manifest(*, network_config: Mapping[str, Any], channels: Sequence[str], reference_channel: str,
                  expected_spacing_mm: Sequence[float], preprocessing: Mapping[str, Any],
                  members: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any], name: str = "",
                  description: str = "", threshold: float = 0.5, spatial_dims: int | None = None,
                  patch_size: Sequence[int] | None = None, reading_sizes: Sequence[int] | None = None,
                  reading_agreement: float | None = None,
                  labels: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Build a bundle manifest, filling in the format, versions, labels, creation time and library versions.

    Args:
        network_config: what :func:`lesionseg.models.network_config` returned for the trained network.
        channels: input channel names in the order the network takes them.
        reference_channel: the channel whose grid the others were registered onto (one of ``channels``).
        expected_spacing_mm: typical native (x, y, z) voxel spacing of the training data, in mm.
        preprocessing: :meth:`lesionseg.preprocess.PrepareConfig.to_dict` of the training data.
        members: one mapping per ensemble member, in the order of the weights passed to
            :func:`~lesionseg.bundle.save_bundle`: ``{"fold": int | None, "validation": {metric: number}}``
            (``file`` is filled in as ``weights/fold_{i}.pt``, i = position in the list).
        provenance: ``train_config``, ``curriculum``, ``data_fingerprint``, ``training_data``,
            ``fold_metrics`` (see the module docstring); ``library_versions`` is filled in.
        name, description: shown on the model card.
        threshold: lesion probability at or above which a voxel is lesion.
        spatial_dims: 2 or 3; by default the network's (:func:`lesionseg.models.spatial_dims`).
        patch_size: 3D networks: the training patch ``(z, y, x)`` in voxels (the sliding window at inference).
        reading_sizes: 2D networks: the slice sizes (pixels) new scans are read at, combined by the larger
            probability; None: the training size alone.
        reading_agreement: several readings: the fraction of the threshold, in (0, 1], their mean must reach in a
            lesion of their maximum (:mod:`lesionseg.bundle.slice_size`); None: the predictor's default.
        labels: background first, then one entry per lesion class in the network's output order (name, value
            written to label maps, RGB colour 0..1, terminology); None: the stroke lesion alone.

    Returns:
        The manifest as a dictionary of JSON types, already validated.

    Raises:
        BundleError: a value does not fit the schema (the message names it).
    """
    from lesionseg import __version__
    from lesionseg.models import spatial_dims as network_spatial_dims
    from lesionseg.errors import ParameterError

    if spatial_dims is None:
        try:
            spatial_dims = network_spatial_dims(network_config["name"], **dict(network_config.get("kwargs") or {}))
        except (KeyError, TypeError, ParameterError) as error:
            raise BundleError(f"the new bundle's network configuration is not usable: {error}") from None
    member_entries = []
    for index, member in enumerate(members):
        entry = {"file": f"weights/fold_{index}.pt", "fold": None, "validation": {}}
        entry.update(dict(member))
        member_entries.append(entry)
    full_provenance = dict(provenance)
    full_provenance.setdefault("library_versions", library_versions())
    manifest = json_safe({
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lesionseg_version": __version__,
        "name": name,
        "description": description,
        "network": dict(network_config),
        "spatial_dims": spatial_dims,
        "channels": list(channels),
        "reference_channel": reference_channel,
        "expected_spacing_mm": [float(s) for s in expected_spacing_mm],
        "preprocessing": dict(preprocessing),
        "labels": [dict(label) for label in labels] if labels else default_labels(),
        "threshold": float(threshold),
        "members": member_entries,
        "provenance": full_provenance,
    })
    if patch_size is not None:
        manifest["patch_size"] = json_safe(list(patch_size))
    if reading_sizes is not None:
        manifest["reading_sizes"] = [int(size) for size in reading_sizes]
    if reading_agreement is not None:
        manifest["reading_agreement"] = json_safe(reading_agreement)
    validate_manifest(manifest, "the new bundle")
    return manifest


def check_format(data: Any, source: str) -> None:
    """Refuse a manifest that is not a LesionSeg bundle's or is of a newer format version.

    Raises:
        BundleError: "X is not a LesionSeg model bundle ..." or "X was written by a newer LesionSeg ...".
    """
    if not isinstance(data, Mapping) or data.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{source} is not a LesionSeg model bundle (its manifest.json is not a "
                          f"{BUNDLE_FORMAT!r} manifest).")
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(source, f"format_version must be a positive integer, not {version!r}")
    if version > BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{source} was written by a newer LesionSeg (format {version}); this version reads "
                          f"up to {BUNDLE_FORMAT_VERSION}; update LesionSeg.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers_only(value: Any, where: str, source: str) -> None:
    """Dictionaries and lists of numbers / None / booleans only (counts and metrics, never names)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _numbers_only(item, f"{where}.{key}", source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _numbers_only(item, f"{where}[{index}]", source)
    elif not (value is None or isinstance(value, (bool, int, float))):
        raise _fail(source, f"{where} must hold only numbers (counts and metrics), not {value!r}")


def _check_network(data: Mapping[str, Any], source: str) -> None:
    network = data["network"]
    if not isinstance(network, Mapping) or not isinstance(network.get("name"), str):
        raise _fail(source, "network must be a network configuration with a name")
    for key in ("in_channels", "out_channels"):
        value = network.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(source, f"network.{key} must be a positive integer, not {value!r}")
    if not isinstance(network.get("kwargs", {}), Mapping):
        raise _fail(source, "network.kwargs must be a dictionary")
    context = data.get("preprocessing", {}).get("context_slices", 0) or 0
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise _fail(source, f"preprocessing.context_slices must be a whole number >= 0, not {context!r}")
    depth = 2 * context + 1  # each channel's slice and its neighbours (2.5D input)
    from lesionseg.preprocess.config import PrepareConfig

    preprocessing = data.get("preprocessing", {})
    mirror = preprocessing.get("mirror_difference", False) is True
    planes = PrepareConfig(ct_windows=preprocessing.get("ct_windows") or None,
                           mirror_difference=mirror).input_planes(list(data["channels"]))
    if network["in_channels"] != len(planes) * depth:
        raise _fail(source, f"the network takes {network['in_channels']} channels but {len(data['channels'])} "
                            f"are listed ({', '.join(data['channels'])})"
                            + (" with their mirrored differences" if mirror else "")
                            + (f" with {context} neighbouring slice(s) on each side" if context else ""))
    if network["out_channels"] < 2:
        raise _fail(source, "network.out_channels must be at least 2 (background and lesion)")


def _check_channels_and_grid(data: Mapping[str, Any], source: str) -> None:
    channels = data["channels"]
    if (not isinstance(channels, list) or not channels
            or not all(isinstance(c, str) and c.strip() for c in channels)):
        raise _fail(source, f"channels must be a non-empty list of names, not {channels!r}")
    if len({c.strip().lower() for c in channels}) != len(channels):
        raise _fail(source, f"channels must not repeat a name, got {channels!r}")
    if data["reference_channel"] not in channels:
        raise _fail(source, f"reference_channel {data['reference_channel']!r} is not among the channels {channels}")
    if data["spatial_dims"] not in (2, 3) or isinstance(data["spatial_dims"], bool):
        raise _fail(source, f"spatial_dims must be 2 or 3, not {data['spatial_dims']!r}")
    patch = data.get("patch_size")
    if patch is not None and (not isinstance(patch, list) or len(patch) != 3
                              or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in patch)):
        raise _fail(source, f"patch_size must be three positive integers (z, y, x), not {patch!r}")
    reading = data.get("reading_sizes")
    if reading is not None and (not isinstance(reading, list) or not reading or not all(
            isinstance(size, int) and not isinstance(size, bool) and size >= 16 for size in reading)):
        raise _fail(source, f"reading_sizes must be a list of whole numbers of pixels (each at least 16), not {reading!r}")
    agreement = data.get("reading_agreement")
    if agreement is not None and not (_is_number(agreement) and 0.0 < agreement <= 1.0):
        raise _fail(source, f"reading_agreement must be a number in (0, 1], not {agreement!r}")
    spacing = data["expected_spacing_mm"]
    if (not isinstance(spacing, list) or len(spacing) != 3
            or not all(_is_number(s) and math.isfinite(s) and s > 0 for s in spacing)):
        raise _fail(source, f"expected_spacing_mm must be three positive numbers (x, y, z), not {spacing!r}")


def _check_labels(labels: Any, source: str) -> None:
    if not isinstance(labels, list) or len(labels) < 2:
        raise _fail(source, "labels must list the background and at least one lesion label")
    values = []
    for label in labels:
        if (not isinstance(label, Mapping) or not isinstance(label.get("name"), str)
                or isinstance(label.get("value"), bool) or not isinstance(label.get("value"), int)):
            raise _fail(source, f"each label needs a name and an integer value, not {label!r}")
        color = label.get("color")
        if color is not None and (not isinstance(color, list) or len(color) != 3
                                  or not all(_is_number(c) and 0.0 <= c <= 1.0 for c in color)):
            raise _fail(source, f"label {label['name']!r} has colour {color!r}; it must be RGB in 0..1")
        values.append(label["value"])
    if len(set(values)) != len(values) or 0 not in values:
        raise _fail(source, f"label values must be distinct and include 0 (background), got {values}")


def _check_members(members: Any, source: str) -> None:
    if not isinstance(members, list) or not members:
        raise _fail(source, "members must list at least one set of weights")
    files = []
    for index, member in enumerate(members):
        if not isinstance(member, Mapping) or not isinstance(member.get("file"), str):
            raise _fail(source, f"member {index} must give its weights file")
        if not _MEMBER_FILE.match(member["file"]) or ".." in member["file"]:
            raise _fail(source, f"member {index}'s weights file {member['file']!r} must be weights/<name>.pt")
        fold = member.get("fold")
        if fold is not None and (isinstance(fold, bool) or not isinstance(fold, int) or fold < 0):
            raise _fail(source, f"member {index}'s fold must be a non-negative integer or null, not {fold!r}")
        validation = member.get("validation", {})
        if not isinstance(validation, Mapping):
            raise _fail(source, f"member {index}'s validation must be a dictionary of metrics")
        _numbers_only(validation, f"members[{index}].validation", source)
        files.append(member["file"])
    if len(set(files)) != len(files):
        raise _fail(source, f"two members share a weights file ({files})")


def _check_provenance(provenance: Any, source: str) -> None:
    if not isinstance(provenance, Mapping):
        raise _fail(source, "provenance must be a dictionary")
    fingerprint = provenance.get("data_fingerprint")
    if fingerprint is not None and not (isinstance(fingerprint, str) and _SHA256.match(fingerprint)):
        raise _fail(source, f"provenance.data_fingerprint must be a SHA-256 hex digest, not {fingerprint!r}")
    for key in ("training_data", "fold_metrics"):
        if key in provenance:
            _numbers_only(provenance[key], f"provenance.{key}", source)
    for key in ("train_config", "curriculum", "library_versions"):
        if provenance.get(key) is not None and not isinstance(provenance[key], Mapping):
            raise _fail(source, f"provenance.{key} must be a dictionary")


def validate_manifest(data: Any, source: str) -> None:
    """Check a manifest against the schema (format first, then every field).

    Args:
        data: the parsed ``manifest.json``.
        source: how to name the bundle in messages (its path).

    Raises:
        BundleError: not a bundle manifest, a newer format version, or a field that does not fit the schema.
    """
    check_format(data, source)
    missing = [key for key in _REQUIRED_KEYS if key not in data]
    if missing:
        raise _fail(source, f"it lacks {', '.join(missing)}")
    _check_channels_and_grid(data, source)
    if not isinstance(data["preprocessing"], Mapping):
        raise _fail(source, "preprocessing must be a dictionary")
    _check_network(data, source)
    _check_labels(data["labels"], source)
    if data["labels"][0].get("value") != 0:
        raise _fail(source, "labels must list the background (value 0) first, then the classes in output order")
    outputs = data["network"].get("out_channels")
    if isinstance(outputs, int) and outputs != len(data["labels"]):
        raise _fail(source, f"the network has {outputs} outputs but labels lists {len(data['labels'])} classes "
                            "(background included); they must match")
    threshold = data["threshold"]
    if not _is_number(threshold) or not 0.0 < threshold < 1.0:
        raise _fail(source, f"threshold must be a probability strictly between 0 and 1, not {threshold!r}")
    _check_members(data["members"], source)
    _check_provenance(data["provenance"], source)
    for key in ("name", "description", "created", "lesionseg_version"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _fail(source, f"{key} must be text, not {data[key]!r}")


def _normalised_key(key: str) -> str:
    return re.sub(r"[^a-z]", "", str(key).lower())


def find_identifiers(manifest: Any, case_ids: Iterable[str] = ()) -> list[str]:
    """Places in a manifest that could identify a patient (the rule in the module docstring).

    Args:
        manifest: the manifest (or any JSON value).
        case_ids: the training cases' ids; no string may contain one of them.

    Returns:
        One description per finding, e.g. ``"provenance.train_config.data is a path ('/data/x')"``;
        empty when there is none.
    """
    ids = [str(c) for c in case_ids if str(c)]
    findings: list[str] = []

    def visit(value: Any, where: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                here = f"{where}.{key}" if where else str(key)
                normalised = _normalised_key(key)
                if normalised in _IDENTIFIER_KEYS and not (_is_number(item) or item is None):
                    findings.append(f"{here} names an identifier")
                if normalised == "cases" and not (_is_number(item) or item is None):
                    findings.append(f"{here} must be a count, not a list of cases")
                visit(item, here)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                visit(item, f"{where}[{index}]")
        elif isinstance(value, str):
            if where.startswith("members[") and where.endswith(".file"):
                return  # the member's weights file inside the bundle (checked by the schema)
            if where.startswith("labels[") and where.endswith(".terminology"):
                return  # Slicer's terminology string (codes, not identifiers)
            if _ABSOLUTE_PATH.match(value):
                findings.append(f"{where} is a path ({value!r})")
            elif _IMAGE_FILE.search(value):
                findings.append(f"{where} names an image file ({value!r})")
            elif _BIDS_SUBJECT.search(value):
                findings.append(f"{where} names a subject ({value!r})")
            elif _DICOM_UID.match(value):
                findings.append(f"{where} is a DICOM UID ({value!r})")
            else:
                hit = next((case for case in ids if case in value), None)
                if hit is not None:
                    findings.append(f"{where} contains the case id {hit!r}")

    visit(manifest, "")
    return findings
