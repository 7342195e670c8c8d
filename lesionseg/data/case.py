"""A case: one patient scan session with named channels, an optional lesion mask and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import SimpleITK as sitk

from lesionseg.errors import DatasetError


@dataclass
class Case:
    """One case of a dataset.

    Attributes:
        case_id: unique within the dataset (e.g. ``sub-strokecase0001``).
        patient_id: cases of one patient share it; folds never split a patient.
        channels: channel name (``flair``, ``dwi``, ``adc``, ``t1w``, ``ct``, ...) -> image path, in the
            dataset's order.
        mask: the lesion mask path, or None for an unlabelled (test) case.
        metadata: anything else known (layout, session, label value to take from the mask, ...).
    """

    case_id: str
    patient_id: str
    channels: dict[str, Path]
    mask: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def channel_names(self) -> list[str]:
        """Channel names in the dataset's order."""
        return list(self.channels)

    def channel_path(self, name: str) -> Path:
        """The path of channel ``name``; DatasetError naming the available ones when absent."""
        try:
            return self.channels[name]
        except KeyError:
            raise DatasetError(
                f"case {self.case_id} has no '{name}' channel; it has: {', '.join(self.channels) or 'none'}."
            ) from None

    def read_channel(self, name: str) -> sitk.Image:
        """Read channel ``name`` as float32 with its geometry."""
        from lesionseg.io import read_image

        return read_image(self.channel_path(name), pixel_type=sitk.sitkFloat32)

    def read_mask(self, reference: sitk.Image | None = None) -> sitk.Image:
        """Read the lesion mask as uint8 0/1 (resampled onto ``reference`` when it is a ``.seg.nrrd``).

        Raises:
            DatasetError: the case has no mask.
        """
        from lesionseg.io import read_mask

        if self.mask is None:
            raise DatasetError(f"case {self.case_id} has no lesion mask; training and evaluation need one.")
        return read_mask(self.mask, reference=reference, label=self.metadata.get("label"),
                         segment=self.metadata.get("segment"))

    def read_class_mask(self, values: Sequence[int]) -> sitk.Image:
        """Read a multi-label mask as class indices (uint8: 0 background, ``k`` for ``values[k - 1]``).

        Raises:
            DatasetError: the case has no mask, or it is a ``.seg.nrrd`` (give a labelmap file for classes).
            InputFileError: a label the table does not list.
        """
        from lesionseg.io import class_mask, image_extension, read_image

        if self.mask is None:
            raise DatasetError(f"case {self.case_id} has no lesion mask; training and evaluation need one.")
        if image_extension(self.mask) == ".seg.nrrd":
            raise DatasetError(f"case {self.case_id}: {self.mask} is a .seg.nrrd; several lesion classes are read "
                               "from a labelmap file (NIfTI, NRRD) with its label table.")
        return class_mask(read_image(self.mask), self.mask, values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (paths as strings)."""
        return {
            "case_id": self.case_id,
            "patient_id": self.patient_id,
            "channels": {name: str(path) for name, path in self.channels.items()},
            "mask": str(self.mask) if self.mask else None,
            "metadata": dict(self.metadata),
        }
