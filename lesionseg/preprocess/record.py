"""The per-case preparation record: every step's parameters, enough to map predictions back exactly.

Written as ``OUT/cases/<case_id>.json`` by ``prepare`` and kept inside a model's predictions at inference.
:func:`lesionseg.preprocess.invert` needs nothing else.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lesionseg import __version__
from lesionseg.errors import InputFileError
from lesionseg.io import Geometry, write_json_atomic
from lesionseg.preprocess.grid import PreparedGrid
from lesionseg.preprocess.midplane import Midplane
from lesionseg.preprocess.orientation import AxialFrame

RECORD_FORMAT_VERSION = 1


@dataclass
class PrepareRecord:
    """What preparation did to one case.

    Attributes:
        case_id, patient_id: the case.
        reference_channel: the channel whose native grid predictions return to.
        channels: the channels in the order of the prepared arrays' channel axis.
        native: the reference channel's native grid.
        frame: the axial frame (reorientation) of the reference channel.
        midplane: the mid-sagittal plane (LPS).
        grid: the prepared grid (S x S slices).
        slice_indices: indices (along the grid's slice axis) of the slices kept, in array order.
        flipped: for each kept slice, whether it was mirrored left-right (about the mid-plane).
        lesion_side: the hemisphere lesions were flipped into ("left"/"right"), None when not flipped.
        steps: the parameters of every other step (brain extraction, registration per channel,
            normalisation per channel, non-finite voxels replaced, slice selection).
        inputs: the input files and their fingerprint (size, modification time).
        lesionseg_version, format_version: provenance.
    """

    case_id: str
    patient_id: str
    reference_channel: str
    channels: list[str]
    native: Geometry
    frame: AxialFrame
    midplane: Midplane
    grid: PreparedGrid
    slice_indices: list[int]
    flipped: list[bool]
    lesion_side: str | None = None
    steps: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    lesionseg_version: str = __version__
    format_version: int = RECORD_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(native=self.native.to_dict(), frame=self.frame.to_dict(), midplane=self.midplane.to_dict(),
                    grid=self.grid.to_dict())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PrepareRecord":
        values = dict(data)
        values["native"] = Geometry.from_dict(data["native"])
        values["frame"] = AxialFrame.from_dict(data["frame"])
        values["midplane"] = Midplane.from_dict(data["midplane"])
        values["grid"] = PreparedGrid.from_dict(data["grid"])
        values["slice_indices"] = [int(i) for i in data["slice_indices"]]
        values["flipped"] = [bool(f) for f in data["flipped"]]
        return cls(**values)

    def save(self, path: str | os.PathLike) -> None:
        """Write the record as JSON, atomically."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PrepareRecord":
        """Read a record written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except FileNotFoundError:
            raise InputFileError(f"{path} does not exist.") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise InputFileError(f"{path} is not a LesionSeg preparation record ({error}).") from error
