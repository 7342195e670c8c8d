"""The model card: what a user should know about a bundle before trusting its output.

Shown by the Slicer inference panel and by ``lesionseg segment``; built from the manifest alone (no weights).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _summary(values: list[Any]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof 1; None for one value) of the finite numbers in ``values``."""
    finite = [float(v) for v in values if _is_number(v) and math.isfinite(v)]
    if not finite:
        return {"mean": None, "sd": None, "n": 0}
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return {"mean": float(np.mean(finite)), "sd": sd, "n": len(finite)}


def validation_summary(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per metric, mean ± sd over the ensemble members' validation numbers (``{metric: {mean, sd, n}}``).

    A member without the metric (or with null: undefined) does not count in ``n``.
    """
    validations = [member.get("validation") or {} for member in manifest["members"]]
    names = dict.fromkeys(key for validation in validations for key, value in validation.items()
                          if value is None or _is_number(value))
    return {name: _summary([validation.get(name) for validation in validations]) for name in names}


def model_card(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a model card as a dictionary (JSON types).

    Returns:
        ``name``, ``description``, ``created``, ``lesionseg_version``, ``network`` (name), ``spatial_dims``,
        ``patch_size`` (3D networks' training patch (z, y, x), else None), ``slice_size`` (the training slice
        size in pixels), ``reading_sizes`` (2D: the reading sizes when recorded, else None), ``reading_agreement``
        (when recorded, else None), ``members`` (count), ``folds``,
        ``channels``, ``reference_channel``, ``expected_spacing_mm`` (x, y, z),
        ``threshold``, ``labels`` (names), ``training_data`` (counts and lesion volumes, as stored),
        ``validation`` (``{metric: {"mean", "sd", "n"}}`` over members), ``library_versions``.
    """
    provenance = manifest.get("provenance") or {}
    return {
        "name": manifest.get("name") or "",
        "description": manifest.get("description") or "",
        "created": manifest.get("created"),
        "lesionseg_version": manifest.get("lesionseg_version"),
        "network": manifest["network"]["name"],
        "spatial_dims": manifest["spatial_dims"],
        "patch_size": manifest.get("patch_size"),
        "slice_size": manifest.get("preprocessing", {}).get("size"),
        "reading_sizes": manifest.get("reading_sizes"),
        "reading_agreement": manifest.get("reading_agreement"),
        "members": len(manifest["members"]),
        "folds": [m.get("fold") for m in manifest["members"]],
        "channels": list(manifest["channels"]),
        "reference_channel": manifest["reference_channel"],
        "expected_spacing_mm": list(manifest["expected_spacing_mm"]),
        "threshold": manifest["threshold"],
        "labels": [label["name"] for label in manifest["labels"] if label["value"] != 0],
        "segments": [dict(label) for label in manifest["labels"] if label["value"] != 0],
        "training_data": dict(provenance.get("training_data") or {}),
        "validation": validation_summary(manifest),
        "library_versions": dict(provenance.get("library_versions") or {}),
    }


def _listed(values: list[Any]) -> str:
    """``[128, 160, 192]`` as "128, 160 and 192"."""
    words = [str(value) for value in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 10:
        return str(int(value))
    return f"{value:.{digits}g}"


def format_model_card(manifest: Mapping[str, Any]) -> str:
    """The model card as plain text lines (for ``lesionseg segment`` and the Slicer panel)."""
    card = model_card(manifest)
    spacing = " x ".join(_number(s) for s in card["expected_spacing_mm"])
    ensemble = f"{card['members']} member{'s' if card['members'] != 1 else ''}"
    lines = [
        f"Model: {card['name'] or '(unnamed)'}" + (f" - {card['description']}" if card["description"] else ""),
        f"Network: {card['network']} ({card['spatial_dims']}D"
        + (f", patches {'x'.join(map(str, card['patch_size']))}" if card["patch_size"] else "")
        + (f", trained on {card['slice_size']}-pixel slices, reads at "
           + _listed(card["reading_sizes"])
           + (f" (agreement {_number(card['reading_agreement'])})" if card["reading_agreement"] is not None else "")
           if card["reading_sizes"] not in (None, [card["slice_size"]]) else "") + f"), {ensemble}",
        f"Input channels: {', '.join(card['channels'])} (reference: {card['reference_channel']})",
        f"Training spacing (x, y, z): {spacing} mm",
        f"Labels: {', '.join(card['labels'])}; threshold {_number(card['threshold'])}",
    ]
    data = card["training_data"]
    if data:
        parts = [f"{_number(data[k])} {k.replace('_', ' ')}"
                 for k in ("cases", "slices", "lesion_slices") if k in data]
        volume = data.get("lesion_volume_ml")
        if isinstance(volume, Mapping) and volume.get("median") is not None:
            parts.append(f"lesion volume median {_number(volume['median'])} mL "
                         f"({_number(volume.get('min'))}-{_number(volume.get('max'))})")
        lines.append("Training data: " + ", ".join(parts))
    if card["validation"]:
        metrics = []
        for name, summary in card["validation"].items():
            spread = f" ± {_number(summary['sd'])}" if summary["sd"] is not None else ""
            metrics.append(f"{name} {_number(summary['mean'])}{spread}")
        lines.append(f"Validation (mean ± sd over {ensemble}): " + ", ".join(metrics))
    lines.append(f"Created {card['created']} with LesionSeg {card['lesionseg_version']}")
    return "\n".join(lines)
