"""Synthetic DICOM series written by the tests with pydicom (MR Image Storage, one file per slice).

The files are written independently of lesionseg (pydicom, not SimpleITK), under names whose order is not
the slices' order, so that a reader that trusts file names or GDCM's default would be caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class WrittenSeries:
    """What was written: the UIDs, and per slice (z index of the source image) its file, SOP Instance UID and
    Image Position (Patient) as written (LPS mm)."""

    folder: Path
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    files: list[Path]
    sop_instance_uids: list[str]
    positions: list[tuple[float, float, float]]


def oblique_grid_image(array_zyx: np.ndarray, spacing=(0.9, 1.1, 5.0), origin=(-40.0, -55.0, -20.0),
                       degrees=(12.0, -7.0, 5.0)) -> sitk.Image:
    """``array_zyx`` on an oblique grid: rotated a few degrees about each axis, anisotropic voxels."""
    image = sitk.GetImageFromArray(array_zyx)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    turn = sitk.Euler3DTransform()
    turn.SetRotation(*np.radians(degrees))
    image.SetDirection(turn.GetMatrix())
    return image


def write_dicom_series(image: sitk.Image, folder: Path, *, description: str = "FLAIR", series_number: int = 3,
                       study_uid: str | None = None, frame_of_reference_uid: str | None = None,
                       seed: int = 0) -> WrittenSeries:
    """Write ``image`` (int16 voxels; LPS geometry) as a DICOM MR series, one file per slice.

    Args:
        image: the volume; slice k of the series is its z index k.
        folder: where the files go (created).
        description, series_number: the series' Series Description and Series Number.
        study_uid, frame_of_reference_uid: to put two series in one study / frame (new UIDs by default).
        seed: shuffles the file names.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = frame_of_reference_uid or generate_uid()
    array = sitk.GetArrayFromImage(image).astype(np.int16)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = image.GetSpacing()
    names = np.random.default_rng(seed).permutation(array.shape[0])
    written = WrittenSeries(folder, series_uid, study_uid, frame_uid, [], [], [])
    for k in range(array.shape[0]):
        uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Synthetic", "SYNTH0001", "", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240101", "120000", "1", ""
        ds.ReferringPhysicianName = ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", series_number, k + 1
        ds.SeriesDescription, ds.Manufacturer, ds.PositionReferenceIndicator = description, "test", ""
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "IR", "SK", "", "2D"
        ds.EchoTime, ds.RepetitionTime, ds.EchoTrainLength = 120, 9000, 16
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        ds.ImagePositionPatient = [f"{value:.6f}" for value in position]
        ds.ImageOrientationPatient = [f"{value:.8f}" for value in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
        ds.SliceThickness = f"{spacing[2]:.6f}"
        ds.Rows, ds.Columns = array.shape[1], array.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(array[k]).tobytes()
        path = folder / f"IM{names[k]:04d}_{series_number}"
        pydicom.dcmwrite(path, ds, enforce_file_format=True) if _pydicom3() else ds.save_as(path, write_like_original=False)
        written.files.append(path)
        written.sop_instance_uids.append(uid)
        written.positions.append(tuple(float(f"{value:.6f}") for value in position))
    return written


def _pydicom3() -> bool:
    import pydicom

    return int(pydicom.__version__.split(".")[0]) >= 3
