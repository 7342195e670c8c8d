"""Reading and writing volumes with their geometry; SimpleITK.Image is the volume type of the core.

Public API:
    read_image, write_image, read_mask, binarise_mask: volumes and masks in NIfTI, NRRD, MHA, DICOM.
    read_dicom_volume, DicomVolume, DicomSeries, dicom_series_from_files: a DICOM series with its identity
        (study, series, frame-of-reference UIDs, per-slice files and positions).
    list_dicom_series, select_series, SeriesEntry: the series of a folder, and the one to read (``--series``).
    write_dicom_seg: a labelmap as a DICOM Segmentation referencing its source series (needs highdicom).
    read_seg_nrrd, read_segment, write_seg_nrrd: Slicer ``.seg.nrrd`` segmentations.
    Geometry, geometry_difference, require_same_geometry, resample_onto: grids and their comparison.
    atomic_path, write_json_atomic, write_text_atomic: writes that never leave half a file.
"""

from lesionseg.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from lesionseg.io.dicom_seg import write_dicom_seg
from lesionseg.io.dicom_series import (
    DicomSeries,
    DicomVolume,
    SeriesEntry,
    dicom_series_from_files,
    list_dicom_series,
    read_dicom_volume,
    select_series,
)
from lesionseg.io.geometry import Geometry, geometry_difference, require_same_geometry, resample_onto
from lesionseg.io.image_io import (
    IMAGE_EXTENSIONS,
    binarise_mask,
    class_mask,
    image_extension,
    read_dicom_series,
    read_geometry,
    read_image,
    read_mask,
    strip_image_extension,
    write_image,
)
from lesionseg.io.seg_nrrd import SegmentInfo, read_seg_nrrd, read_segment, write_seg_nrrd

__all__ = [
    "DicomSeries", "DicomVolume", "SeriesEntry", "dicom_series_from_files", "list_dicom_series", "read_dicom_volume",
    "select_series", "write_dicom_seg",
    "IMAGE_EXTENSIONS", "Geometry", "SegmentInfo", "atomic_path", "binarise_mask", "class_mask", "geometry_difference",
    "image_extension", "read_dicom_series", "read_geometry", "read_image", "read_mask", "read_seg_nrrd", "read_segment",
    "require_same_geometry", "resample_onto", "strip_image_extension", "write_image", "write_json_atomic",
    "write_seg_nrrd", "write_text_atomic",
]
