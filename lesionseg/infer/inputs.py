"""Reading a case's input volumes for inference, keeping the identity of the DICOM series among them.

A channel given as a DICOM folder is read with :func:`lesionseg.io.read_dicom_volume` (the only series, or
the one chosen with ``--series``), so that a DICOM SEG written for the prediction can refer to it; files
(NIfTI, NRRD, MHA) are read as usual. Volumes are float32 (the predictor's type).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import SimpleITK as sitk

from lesionseg.data import PERFUSION_CHANNELS
from lesionseg.io import DicomSeries, read_dicom_volume, read_image


@dataclass
class CaseInputs:
    """A case's volumes, and the DICOM series of those read from DICOM folders.

    Attributes:
        images: channel name -> volume (float32; size, spacing (x, y, z), origin and direction in LPS).
        series: channel name -> :class:`~lesionseg.io.DicomSeries`, for the channels read from DICOM only.
    """

    images: dict[str, sitk.Image]
    series: dict[str, DicomSeries] = field(default_factory=dict)


def read_case_inputs(sources: Mapping[str, Any], series_uids: Sequence[str] = ()) -> CaseInputs:
    """Read every channel of a case.

    Args:
        sources: channel name -> a ``SimpleITK.Image`` (kept), a DICOM folder or an image file.
        series_uids: the ``--series`` UIDs; each DICOM folder takes the one it holds (or its only series).

    Raises:
        InputFileError: an unreadable input, or a DICOM folder with several series and none chosen (listed).
    """
    images: dict[str, sitk.Image] = {}
    series: dict[str, DicomSeries] = {}
    for name, source in sources.items():
        if isinstance(source, sitk.Image):
            image = source
        elif Path(os.fspath(source)).is_dir():
            volume = read_dicom_volume(source, list(series_uids))
            image, series[name] = volume.image, volume.series
        else:
            image = read_image(source)
        images[name] = image if image.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(image, sitk.sitkFloat32)
        if name in PERFUSION_CHANNELS and not isinstance(source, sitk.Image) and name not in series:
            from lesionseg.data.sidecar import map_units
            from lesionseg.preprocess.perfusion import UNITS_METADATA_KEY

            images[name].SetMetaData(UNITS_METADATA_KEY, map_units(source, name))  # from the map's JSON sidecar
    return CaseInputs(images, series)
