"""JSON sidecars of images (BIDS style: ``X.nii.gz`` -> ``X.json``) and the units of perfusion maps in them.

A perfusion map (Tmax, TTP, MTT in seconds; CBF in mL/100 g/min; CBV in mL/100 g) means nothing without its
units: vendors write seconds or milliseconds, and some write relative or arbitrary units. So a perfusion
channel is used only when its sidecar says ``"Units"`` (the BIDS key for a map's units), e.g.
``{"Units": "s"}`` for a Tmax map.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lesionseg.errors import InputFileError
from lesionseg.io import image_extension, strip_image_extension

#: the sidecar key that holds a map's units
UNITS_KEY = "Units"


def sidecar_path(image_path: str | os.PathLike) -> Path:
    """The JSON sidecar of an image: the same name with ``.json`` for its image extension."""
    path = Path(image_path)
    if image_extension(path) is None:
        return path.with_suffix(".json")
    return path.with_name(strip_image_extension(path) + ".json")


def read_sidecar(image_path: str | os.PathLike) -> dict | None:
    """The image's sidecar as a dict, or None when there is none.

    Raises:
        InputFileError: the sidecar exists but is not a JSON object.
    """
    path = sidecar_path(image_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputFileError(f"the sidecar {path} is not valid JSON ({error}).") from error
    if not isinstance(data, dict):
        raise InputFileError(f"the sidecar {path} must hold a JSON object such as {{\"Units\": \"s\"}}.")
    return data


def map_units(image_path: str | os.PathLike, channel: str) -> str:
    """The units of a perfusion map, from its sidecar's ``"Units"``.

    Args:
        image_path: the map's file.
        channel: its channel name (``tmax``, ``cbf``, ...), named in the error.

    Raises:
        InputFileError: no sidecar, or one without a ``"Units"`` string.
    """
    data = read_sidecar(image_path)
    units = None if data is None else data.get(UNITS_KEY)
    if not isinstance(units, str) or not units.strip():
        example = '{"Units": "s"}' if channel in ("tmax", "ttp", "mtt") else '{"Units": "mL/100g/min"}'
        found = "has no JSON sidecar" if data is None else "has a sidecar without a \"Units\" string"
        raise InputFileError(f"the {channel} perfusion map {image_path} {found} giving its units, so its values "
                             f"cannot be read; write {sidecar_path(image_path)} with e.g. {example}.")
    return units.strip()
