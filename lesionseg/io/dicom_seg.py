"""A lesion labelmap as a DICOM Segmentation (SEG) that refers to the DICOM series it was computed on.

The SEG is what PACS, viewers and Slicer's QuantitativeReporting (DICOM SEG plugin) read as a segmentation
of a study: it takes the patient and study of the source series, refers to the series and each source
slice (SOP Instance UIDs, per-frame Image Position (Patient), the frame of reference) and holds one binary
segment with its coded terminology: SNOMED CT category 49755003 "Morphologically Altered Structure", type
55641003 "Infarct" (:mod:`lesionseg.labels`, the entry of ``Resources/LesionSeg.term.json``), its
recommended display colour, and the algorithm (LesionSeg, its version and the model) that made it.

A SEG is only written for a source that is a DICOM series (:class:`~lesionseg.io.dicom_series.DicomSeries`):
inventing a study and series for a NIfTI file would file the result under a patient and study that do not
exist in the hospital's archive. For other inputs, write ``.seg.nrrd`` or NIfTI instead.

The objects are built with highdicom (the optional ``dicom`` extra: ``pip install 'lesionseg[dicom]'``),
imported only when a SEG is written; releases from 0.23 on (pydicom 3, NumPy 2) are supported. 3D Slicer 5.10
ships pydicom 2.4, with which no highdicom release runs under NumPy 2 (0.22 still uses ``np.float_``).
"""

from __future__ import annotations

import os
from itertools import product
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import GeometryError, InputFileError, ParameterError
from lesionseg.io.atomic import atomic_path
from lesionseg.io.dicom_series import DicomSeries, series_geometry
from lesionseg.io.geometry import Geometry, geometry_difference, resample_onto
from lesionseg.labels import CATEGORY_CODE, STROKE_LESION, TYPE_CODE, SegmentLabel

#: What the user is told when highdicom is missing.
MISSING_HIGHDICOM = ("writing DICOM SEG needs the highdicom package, which is not installed; install it with "
                     "pip install 'lesionseg[dicom]' (or pip install highdicom).")
#: The SEG's own series number is the source's plus this (0 + this when the source has none).
SERIES_NUMBER_OFFSET = 1000
#: a labelmap voxel centre within this fraction of a voxel of a series voxel centre is the same voxel
CENTRE_TOLERANCE_VOXELS = 0.01


def highdicom_module():
    """The highdicom module, or ParameterError naming the ``pip install`` that adds it."""
    try:
        import highdicom
    except ImportError as error:
        raise ParameterError(MISSING_HIGHDICOM) from error
    return highdicom


def _same_voxel_centres(image: sitk.Image, grid: Geometry) -> bool:
    """Whether every voxel centre of ``grid`` is a voxel centre of ``image`` (the same voxels stored in
    another axis order or direction), checked on the grid's eight corners (both grids are regular)."""
    if sorted(np.round(image.GetSpacing(), 4)) != sorted(np.round(grid.spacing, 4)):
        return False
    reference = grid.reference_image()
    size = np.asarray(image.GetSize())
    for corner in product(*[(0, n - 1) for n in grid.size]):
        point = reference.TransformIndexToPhysicalPoint([int(c) for c in corner])
        index = np.asarray(image.TransformPhysicalPointToContinuousIndex(point))
        if np.any(np.abs(index - np.round(index)) > CENTRE_TOLERANCE_VOXELS):
            return False
        if np.any(np.round(index) < 0) or np.any(np.round(index) > size - 1):
            return False
    return True


def series_frames(labelmap: sitk.Image, series: DicomSeries, keep_values: bool = False) -> np.ndarray:
    """The labelmap cut into the series' slices: frame ``k`` lies on ``series.files[k]``.

    Args:
        labelmap: a 0/1 mask on the series' grid (or on the same voxels stored in another axis order).
        series: the source series.
        keep_values: keep the labelmap's values (several classes) instead of making it 0/1.

    Returns:
        uint8 array ``(slices, rows, columns)``: row = DICOM row (y), column = DICOM column (x).

    Raises:
        GeometryError: the labelmap is not on the series' voxels (another grid, another extent).
    """
    grid = series_geometry(series)
    if geometry_difference(labelmap, grid) is not None:
        if not _same_voxel_centres(labelmap, grid):
            raise GeometryError(f"the mask is not on the grid of DICOM series {series.series_uid} "
                                f"({geometry_difference(labelmap, grid)}); a DICOM SEG must lie on its source slices.")
        labelmap = resample_onto(labelmap, grid.reference_image(labelmap.GetPixelID()), is_mask=True)
    array = sitk.GetArrayFromImage(labelmap)
    array = array if keep_values else array != 0
    # series_geometry puts slice k of the series at z index k; checked here on the positions themselves
    reference = grid.reference_image()
    for k, position in enumerate(series.positions_lps):
        index = reference.TransformPhysicalPointToContinuousIndex(position)
        if not np.allclose(index, (0.0, 0.0, float(k)), atol=CENTRE_TOLERANCE_VOXELS):
            raise GeometryError(f"{series.files[k]} does not lie on slice {k} of its series' grid.")
    return array.astype(np.uint8)


def _display_lab(hd, color: tuple[float, float, float]) -> list[int]:
    """An RGB colour (0..1) as DICOM's Recommended Display CIELab Value: scikit-image converts sRGB to CIELab
    (D65), highdicom scales it as DICOM stores it (PS3.3 C.10.7.1.1)."""
    from skimage.color import rgb2lab

    lightness, a, b = rgb2lab(np.asarray(color, dtype=float).reshape(1, 1, 3))[0, 0]
    return [int(value) for value in hd.color.CIELabColor(float(lightness), float(a), float(b)).value]


def _source_datasets(series: DicomSeries) -> list[Any]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    datasets = []
    for path, uid in zip(series.files, series.sop_instance_uids):
        try:
            dataset = pydicom.dcmread(str(path), stop_before_pixels=True)
        except (OSError, InvalidDicomError) as error:
            raise InputFileError(f"{path}: the source DICOM file could not be read again ({error}).") from error
        if str(dataset.SOPInstanceUID) != uid:
            raise InputFileError(f"{path} changed since the series was read (another SOP Instance UID).")
        datasets.append(dataset)
    return datasets


def _type_code(label: SegmentLabel) -> tuple[str, str, str]:
    """The segmented property type (scheme, value, meaning) of a label: from its terminology entry when it
    has one (``...~SCT^52674009^Ischemia~...``), else the infarct's."""
    parts = (label.terminology or "").split("~")
    if len(parts) >= 3:
        coded = parts[2].split("^")
        if len(coded) == 3 and all(coded):
            return coded[0], coded[1], coded[2]
    return TYPE_CODE


def write_dicom_seg(labelmap: sitk.Image, series: DicomSeries, path: str | os.PathLike, *,
                    label: SegmentLabel = STROKE_LESION, model_name: str = "",
                    series_description: str = "LesionSeg stroke lesion",
                    labels: Sequence[SegmentLabel] | None = None) -> Path:
    """Write ``labelmap`` as a binary DICOM SEG referring to ``series`` (atomically).

    Args:
        labelmap: 0/1 lesion mask on the series' grid (the prediction on the volume read from it); with
            ``labels``, each class's value.
        series: the source series (:func:`lesionseg.io.read_dicom_volume` gives it with the volume).
        path: the ``.dcm`` file to write; its folder is created.
        label: the segment's name, colour and terminology (default: "Stroke lesion", SNOMED CT Infarct).
        labels: several classes (e.g. core and penumbra): one segment each, numbered 1, 2, ... in this order,
            its type from its terminology entry; ``label`` is then ignored.
        model_name: the model that made the mask (recorded as the algorithm's parameter and model name).
        series_description: the SEG series' description.

    Returns:
        The path written.

    Raises:
        ParameterError: highdicom is not installed (the sentence names the ``pip install``).
        GeometryError: the labelmap is not on the series' slices.
        InputFileError: the source files cannot be read again, or the SEG cannot be written.
    """
    hd = highdicom_module()
    from pydicom.sr.codedict import codes

    from lesionseg import __version__

    segments = list(labels) if labels else [label]
    frames = series_frames(labelmap, series, keep_values=len(segments) > 1)
    if len(segments) > 1:  # label-map style: each voxel holds its segment's number (1, 2, ...)
        numbered = np.zeros_like(frames)
        for number, segment in enumerate(segments, start=1):
            numbered[frames == segment.value] = number
        frames = numbered
    sources = _source_datasets(series)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="LesionSeg", version=__version__, family=codes.cid7162.ArtificialIntelligence,
        parameters={"model": model_name} if model_name else None)
    descriptions = []
    for number, segment in enumerate(segments, start=1):
        scheme, value, meaning = _type_code(segment)
        description = hd.seg.SegmentDescription(
            segment_number=number, segment_label=segment.name,
            segmented_property_category=hd.sr.CodedConcept(CATEGORY_CODE[1], CATEGORY_CODE[0], CATEGORY_CODE[2]),
            segmented_property_type=hd.sr.CodedConcept(value, scheme, meaning),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm)
        description.RecommendedDisplayCIELabValue = _display_lab(hd, segment.color)
        descriptions.append(description)
    names = ", ".join(segment.name for segment in segments)
    number = int(series.series_number) if str(series.series_number).strip().isdigit() else 0
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(),
        series_number=min(number + SERIES_NUMBER_OFFSET, 2**31 - 1), sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="LesionSeg", manufacturer_model_name=(model_name or "LesionSeg")[:64],
        software_versions=f"lesionseg {__version__}", device_serial_number="none",
        content_label="LESION", content_description=f"{names} (LesionSeg, research use only)"[:64],
        omit_empty_frames=bool(frames.any()))
    seg.SeriesDescription = series_description[:64]
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            seg.save_as(str(temporary))
    except OSError as error:
        raise InputFileError(f"{path} cannot be written ({error}).") from error
    return path
