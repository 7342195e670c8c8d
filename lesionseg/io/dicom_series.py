"""DICOM series that keep their identity: which series of a folder, its UIDs and where each slice lies.

A folder may hold several series (a whole study exported from PACS: FLAIR, DWI, ADC, localisers, reports).
Reading one must not silently take the biggest: :func:`select_series` returns the one asked for (``--series
UID``), the only one, or refuses with the list of series (UID, description, number of slices). Listing reads one
header per series (:class:`SeriesEntry`), so that a series that is not an image volume does not stop it.

The identity travels beside the voxels as a :class:`DicomSeries` (a :class:`DicomVolume` pairs it with the
``SimpleITK.Image``): the study, series and frame-of-reference UIDs, and per slice the file, its SOP
instance UID and its Image Position (Patient). ``files[k]`` is the slice at z index ``k`` of the volume
read from it. The image itself carries no DICOM metadata, so a volume written to NIfTI or NRRD never takes
UIDs along. A DICOM SEG written for a prediction on that volume (:mod:`lesionseg.io.dicom_seg`) refers to
the series through this record.

Headers are read with SimpleITK (GDCM); nothing here needs pydicom. Coordinates are DICOM patient
coordinates, i.e. LPS millimetres, like SimpleITK's physical space.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import InputFileError, ParameterError
from lesionseg.io.geometry import Geometry

STUDY_UID = "0020|000d"
SERIES_UID = "0020|000e"
FRAME_OF_REFERENCE_UID = "0020|0052"
SOP_INSTANCE_UID = "0008|0018"
SOP_CLASS_UID = "0008|0016"
MODALITY = "0008|0060"
SERIES_DESCRIPTION = "0008|103e"
SERIES_NUMBER = "0020|0011"
IMAGE_POSITION = "0020|0032"
IMAGE_ORIENTATION = "0020|0037"
PIXEL_SPACING = "0028|0030"
ROWS = "0028|0010"
COLUMNS = "0028|0011"
NUMBER_OF_FRAMES = "0028|0008"


@dataclass(frozen=True)
class SeriesEntry:
    """One series of a folder as listed to users: its UID, description and modality (from its first file) and
    its files in the order GDCM stacks them along the slice normal."""

    series_uid: str
    description: str
    modality: str
    files: tuple[Path, ...]

    @property
    def slices(self) -> int:
        """The number of files (slices)."""
        return len(self.files)

    def describe(self) -> str:
        """``<UID> (<description>, <modality>, <N> slices)`` as listed to users."""
        what = ", ".join(part for part in (self.description or "no description", self.modality) if part)
        return f"{self.series_uid} ({what}, {self.slices} slice{'s' if self.slices != 1 else ''})"


@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series of single-frame images, in the slice order of the volume read from it.

    Attributes:
        series_uid, study_uid, frame_of_reference_uid: Series, Study and Frame of Reference Instance UIDs
            (the frame of reference is "" when the files have none).
        modality, description, series_number: as in the headers ("" when absent).
        files: one file per slice; ``files[k]`` is z index ``k`` of the volume.
        sop_instance_uids: the SOP Instance UID of each file, same order.
        positions_lps: Image Position (Patient) of each slice: the centre of its first pixel, LPS mm.
        orientation: Image Orientation (Patient): row then column direction cosines (LPS).
        pixel_spacing_mm: (between rows, between columns), as DICOM orders it.
        rows, columns: the image size of each slice.
        folder: the folder the series was found in (None when built from a list of files).
    """

    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    description: str
    series_number: str
    files: tuple[Path, ...]
    sop_instance_uids: tuple[str, ...]
    positions_lps: tuple[tuple[float, float, float], ...]
    orientation: tuple[float, ...]
    pixel_spacing_mm: tuple[float, float]
    rows: int
    columns: int
    folder: Path | None = None

    @property
    def slices(self) -> int:
        """The number of slices (files)."""
        return len(self.files)

    def describe(self) -> str:
        """``<UID> (<description>, <modality>, <N> slices)`` as listed to users."""
        return SeriesEntry(self.series_uid, self.description, self.modality, self.files).describe()

    def normal(self) -> np.ndarray:
        """The unit slice normal, row direction x column direction (LPS)."""
        row, column = np.asarray(self.orientation[:3]), np.asarray(self.orientation[3:])
        return np.cross(row, column)


@dataclass
class DicomVolume:
    """A volume read from a DICOM series and the series it came from.

    Attributes:
        image: the volume; size and spacing (x, y, z), origin and direction in LPS.
        series: its :class:`DicomSeries`; ``series.files[k]`` is the image's z index ``k``.
    """

    image: sitk.Image
    series: DicomSeries


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    message = text[-1] if text else type(error).__name__
    return message.split("ERROR:")[-1].strip()[:200]


def _header(path: str | Path) -> dict[str, str]:
    """The header of one DICOM file as tag -> stripped string (pixel data not decoded)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("GDCMImageIO")
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputFileError(f"{path} could not be read as DICOM ({_short(error)}).") from error
    return {key: reader.GetMetaData(key).strip(" \x00") for key in reader.GetMetaDataKeys()}


def _numbers(header: dict[str, str], tag: str, count: int, path: str | Path) -> tuple[float, ...]:
    try:
        values = tuple(float(value) for value in header[tag].split("\\"))
    except (KeyError, ValueError):
        values = ()
    if len(values) != count or not all(np.isfinite(values)):
        raise InputFileError(f"{path} has no usable DICOM tag ({tag.replace('|', ',')}) with {count} numbers; "
                             "the slice cannot be placed in space.")
    return values


def _series_from_headers(headers: Sequence[dict[str, str]], files: Sequence[str | Path], folder: Path | None,
                         image: sitk.Image | None = None) -> DicomSeries:
    """A :class:`DicomSeries` from per-file headers in volume order (single-frame images only).

    Files without their position, orientation or pixel spacing (secondary captures) are refused, unless ``image``
    (the volume read from them) is given: its grid, as ITK placed it, then stands for theirs.
    """
    first, first_file = headers[0], files[0]
    frames = first.get(NUMBER_OF_FRAMES, "1") or "1"
    if len(files) == 1 and frames.isdigit() and int(frames) > 1:
        raise InputFileError(f"{first_file} is a multi-frame (enhanced) DICOM image; LesionSeg keeps the identity "
                             "of series of single-frame images only (convert it, e.g. with dcm2niix, or export "
                             "single-frame images).")
    try:
        orientation = _numbers(first, IMAGE_ORIENTATION, 6, first_file)
        spacing = _numbers(first, PIXEL_SPACING, 2, first_file)
        positions = tuple(_numbers(header, IMAGE_POSITION, 3, path) for header, path in zip(headers, files))
    except InputFileError:
        if image is None:
            raise
        direction = np.asarray(image.GetDirection()).reshape(3, 3)
        orientation = (*direction[:, 0], *direction[:, 1])
        spacing = (image.GetSpacing()[1], image.GetSpacing()[0])
        positions = tuple(tuple(image.TransformIndexToPhysicalPoint((0, 0, k))) for k in range(len(files)))
    if image is not None and not first.get(ROWS):
        first = {**first, ROWS: str(image.GetHeight()), COLUMNS: str(image.GetWidth())}
    return DicomSeries(
        series_uid=first.get(SERIES_UID, ""), study_uid=first.get(STUDY_UID, ""),
        frame_of_reference_uid=first.get(FRAME_OF_REFERENCE_UID, ""), modality=first.get(MODALITY, ""),
        description=first.get(SERIES_DESCRIPTION, ""), series_number=first.get(SERIES_NUMBER, ""),
        files=tuple(Path(path) for path in files),
        sop_instance_uids=tuple(header.get(SOP_INSTANCE_UID, "") for header in headers),
        positions_lps=positions, orientation=orientation, pixel_spacing_mm=(spacing[0], spacing[1]),
        rows=int(first.get(ROWS, "0") or 0), columns=int(first.get(COLUMNS, "0") or 0), folder=folder)


def list_dicom_series(folder: str | os.PathLike) -> list[SeriesEntry]:
    """Every DICOM series directly in ``folder`` (not its sub-folders), in GDCM's order.

    Reads one header per series (no voxels). Files are in the order GDCM sorts them along the slice normal, the
    order in which :func:`read_dicom_volume` stacks them.

    Raises:
        InputFileError: no DICOM series in the folder, or an unreadable header.
    """
    folder = Path(folder)
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputFileError(f"{folder} is a folder with no DICOM series in it.")
    found = []
    for series_id in series_ids:
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)
        if files:
            first = _header(files[0])
            found.append(SeriesEntry(first.get(SERIES_UID, "") or series_id, first.get(SERIES_DESCRIPTION, ""),
                                     first.get(MODALITY, ""), tuple(Path(path) for path in files)))
    return found


def select_series(folder: str | os.PathLike, wanted: Sequence[str] = (), *, strict: bool = True) -> SeriesEntry:
    """The series of ``folder`` to read: the one among ``wanted`` UIDs, else the only one.

    Args:
        folder: a folder holding one or more DICOM series.
        wanted: Series Instance UIDs the user asked for (``--series``).
        strict: refuse a folder that holds none of ``wanted`` even when it has a single series. With several
            DICOM folders read at once (one per channel) ``wanted`` lists the choices for all of them: a
            folder with one series then takes it (``strict=False``; see :func:`check_series_found`).

    Raises:
        InputFileError: several series and none (or more than one) of them asked for, or (strict) a folder
            without the series asked for; the message lists every series of the folder with its UID,
            description and number of slices.
    """
    folder = Path(folder)
    available = list_dicom_series(folder)
    chosen = [series for series in available if series.series_uid in set(wanted)]
    listing = "; ".join(series.describe() for series in available)
    if len(chosen) == 1:
        return chosen[0]
    if len(chosen) > 1:
        raise InputFileError(f"{folder} holds several of the series asked for with --series; give one of them: "
                             f"{listing}.")
    if wanted and strict:
        raise InputFileError(f"{folder} holds no DICOM series {', '.join(wanted)}; it holds: {listing}.")
    if len(available) == 1:
        return available[0]
    raise InputFileError(f"{folder} holds {len(available)} DICOM series; choose one with --series UID: {listing}.")


def check_series_found(folders: Sequence[str | os.PathLike], wanted: Sequence[str]) -> None:
    """Refuse ``--series`` UIDs that none of the DICOM ``folders`` holds (a typing error, a wrong folder).

    Raises:
        ParameterError: names the unknown UID and the series the folders hold.
    """
    available = [series for folder in folders for series in list_dicom_series(folder)]
    known = {series.series_uid for series in available}
    for uid in wanted:
        if uid not in known:
            listing = "; ".join(series.describe() for series in available) or "none"
            raise ParameterError(f"--series {uid}: no DICOM folder given holds this series; they hold: {listing}.")


def read_dicom_volume(folder: str | os.PathLike, series_uid: str | Sequence[str] | None = None) -> DicomVolume:
    """Read one DICOM series of ``folder`` with its identity.

    Args:
        folder: a folder holding DICOM files.
        series_uid: the Series Instance UID to read; None when the folder holds one series. A list gives the
            choices made for several folders at once (``--series`` given per channel): the folder takes the
            one it holds, or its only series (see :func:`select_series`).

    Returns:
        The volume (SimpleITK, LPS) and its :class:`DicomSeries`, slice ``k`` of one being file ``k`` of the other.

    Raises:
        InputFileError: no series, several series and none chosen (listed), unreadable files.
    """
    folder = Path(folder)
    strict = isinstance(series_uid, str)
    wanted = [series_uid] if strict else list(series_uid or ())
    series = select_series(folder, wanted, strict=strict)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(path) for path in series.files])
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InputFileError(f"{folder}: the DICOM series {series.series_uid} could not be read ({_short(error)}).") \
            from error
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputFileError(f"{folder}: the DICOM series {series.series_uid} is not a 3D scalar volume "
                             f"({image.GetDimension()}D, {image.GetNumberOfComponentsPerPixel()} values per voxel).")
    headers = [{key: reader.GetMetaData(index, key).strip(" \x00") for key in reader.GetMetaDataKeys(index)}
               for index in range(len(series.files))]
    return DicomVolume(image, _series_from_headers(headers, series.files, folder, image))


def dicom_series_from_files(files: Sequence[str | os.PathLike]) -> DicomSeries:
    """A :class:`DicomSeries` from a list of files of one series (e.g. what Slicer's DICOM database lists for a
    loaded volume), sorted along the slice normal as GDCM and Slicer stack them.

    Raises:
        InputFileError: no files, files of several series, or slices that cannot be placed.
    """
    if not files:
        raise InputFileError("no DICOM files were given for the series.")
    headers = [_header(path) for path in files]
    uids = {header.get(SERIES_UID, "") for header in headers}
    if len(uids) > 1:
        raise InputFileError(f"the DICOM files given belong to {len(uids)} series ({', '.join(sorted(uids))}); "
                             "give the files of one series.")
    orientation = np.asarray(_numbers(headers[0], IMAGE_ORIENTATION, 6, files[0]))
    normal = np.cross(orientation[:3], orientation[3:])
    depth = [float(np.dot(_numbers(header, IMAGE_POSITION, 3, path), normal)) for header, path in zip(headers, files)]
    order = np.argsort(depth, kind="stable")
    return _series_from_headers([headers[i] for i in order], [Path(files[i]) for i in order], None)


def series_geometry(series: DicomSeries) -> Geometry:
    """The regular grid the series' slices lie on: first slice's position as origin, the slice step as the
    mean distance between consecutive slices along the normal (1 mm for a single slice).

    Raises:
        InputFileError: slices not evenly spaced along the normal (more than 1 % of the step apart, or two
            at one position), or slices shifted within their plane: no regular grid holds them.
    """
    normal = series.normal()
    positions = np.asarray(series.positions_lps, dtype=float)
    depth = positions @ normal
    steps = np.diff(depth)
    step = float(np.mean(steps)) if len(steps) else 1.0
    where = series.folder or (series.files[0].parent if series.files else "the series")
    if len(steps) and (abs(step) < 1e-6 or np.any(np.abs(steps - step) > 0.01 * abs(step))):
        raise InputFileError(f"{where}: the slices of series {series.series_uid} are not evenly spaced "
                             f"(steps {np.round(steps, 3).tolist()} mm); LesionSeg needs a regular grid.")
    expected = positions[0] + np.outer(depth - depth[0], normal)
    if np.max(np.abs(positions - expected)) > 0.01 * min(series.pixel_spacing_mm):
        raise InputFileError(f"{where}: the slices of series {series.series_uid} are shifted within their plane "
                             "(a gantry tilt?); LesionSeg needs a regular grid.")
    z_axis = normal if step > 0 else -normal
    direction = np.column_stack([series.orientation[:3], series.orientation[3:], z_axis])
    spacing = (series.pixel_spacing_mm[1], series.pixel_spacing_mm[0], abs(step))
    return Geometry((series.columns, series.rows, series.slices), spacing, tuple(positions[0]),
                    tuple(direction.ravel()))
