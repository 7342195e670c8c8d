"""Writing a prediction: the labelmap (NIfTI, NRRD, a Slicer ``.seg.nrrd`` or a DICOM SEG), probabilities, lesion table.

A DICOM SEG (``--format dcm-seg``, a ``.dcm`` file) is written only for a prediction on a DICOM series: it
refers to that series (see :mod:`lesionseg.io.dicom_seg`). Asked for another input, it is refused with a
sentence saying why and what to write instead.
"""

from __future__ import annotations

import csv
import io as text_io
import os
from pathlib import Path
from typing import Sequence

import SimpleITK as sitk

from lesionseg.errors import InputFileError, ParameterError
from lesionseg.io import DicomSeries, image_extension, write_image, write_json_atomic, write_text_atomic
from lesionseg.labels import SegmentLabel

OUTPUT_FORMATS = {"nii.gz": ".nii.gz", "nii": ".nii", "nrrd": ".nrrd", "seg": ".seg.nrrd", "mha": ".mha",
                  "dcm-seg": ".dcm"}
DICOM_SEG_FORMAT = "dcm-seg"
#: Why a DICOM SEG needs a DICOM input, said when one is asked for another input.
SEG_NEEDS_DICOM = ("a DICOM SEG must refer to the DICOM series it was computed on (its patient, study, series and "
                   "slices), and LesionSeg does not invent them; give the scan as a DICOM folder, or write "
                   "--format seg (Slicer .seg.nrrd) or nii.gz")


def output_path(folder: Path, case_id: str, output_format: str) -> Path:
    """``folder/<case_id><extension>`` for a ``--format`` name."""
    if output_format not in OUTPUT_FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not {output_format!r}.")
    return folder / f"{case_id}{OUTPUT_FORMATS[output_format]}"


def is_dicom_seg_path(path: Path) -> bool:
    """Whether an output file name asks for a DICOM SEG (``.dcm``)."""
    return Path(path).name.lower().endswith(".dcm")


def check_writable(path: Path, *, any_name: bool = False) -> None:
    """Refuse early an output whose folder cannot be created or written, or an unknown extension (unless
    ``any_name``: a DICOM SEG's file may have any name)."""
    if not any_name and image_extension(path) is None and not is_dicom_seg_path(path):
        raise ParameterError(f"{path}: unknown output type; end the name with .nii.gz, .nii, .nrrd, .mha, .seg.nrrd "
                             "or .dcm (DICOM SEG).")
    folder = path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise InputFileError(f"{path} cannot be written: {existing} is not a writable folder.")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give a file name for the output.")


def write_labelmap(labelmap: sitk.Image, path: Path, *, series: DicomSeries | None = None,
                   model_name: str = "", labels: Sequence[SegmentLabel] | None = None) -> Path:
    """Write the labelmap; ``.seg.nrrd`` gives a Slicer segmentation with the "Stroke lesion" segment (one
    named, coloured segment per class with ``labels``), ``.dcm`` a DICOM SEG referring to ``series`` (one
    segment per class); other formats get, for several classes, their label table beside them (``<name>.tsv``,
    BIDS ``dseg.tsv`` columns), so that ``lesionseg evaluate`` scores each class.

    Args:
        labelmap: the mask on the reference channel's grid (0/1, or the class values of ``labels``).
        path: the output file; its extension chooses the format.
        series: the DICOM series the labelmap was computed on (needed for ``.dcm``).
        model_name: recorded in a DICOM SEG as the model that made it.
        labels: the lesion classes (:attr:`lesionseg.infer.Predictor.segment_labels`); None or one class:
            the stroke lesion.

    Raises:
        ParameterError: a ``.dcm`` output without a DICOM source series, or highdicom missing.
    """
    several = labels is not None and len(labels) > 1
    if several and not is_dicom_seg_path(path):
        from lesionseg.data.label_table import LabelTable, write_label_table
        from lesionseg.io import write_seg_nrrd

        if image_extension(path) == ".seg.nrrd":
            return write_seg_nrrd(sitk.Cast(labelmap, sitk.sitkUInt8), path, segments=list(labels))
        written = write_image(sitk.Cast(labelmap, sitk.sitkUInt8), path)
        write_label_table(written, LabelTable(tuple(labels)))
        return written
    if is_dicom_seg_path(path):
        from lesionseg.io import write_dicom_seg

        if series is None:
            raise ParameterError(f"{path}: {SEG_NEEDS_DICOM}.")
        return write_dicom_seg(sitk.Cast(labelmap, sitk.sitkUInt8), series, path, model_name=model_name,
                               labels=list(labels) if several else None)
    return write_image(sitk.Cast(labelmap, sitk.sitkUInt8), path)


def write_probabilities(probabilities: sitk.Image, path: Path) -> Path:
    """Write the float32 probability map."""
    if image_extension(path) == ".seg.nrrd":
        raise ParameterError(f"{path}: a probability map cannot be a .seg.nrrd; use .nii.gz or .nrrd.")
    return write_image(sitk.Cast(probabilities, sitk.sitkFloat32), path)


def write_lesion_table(lesions: list[dict], path: Path) -> Path:
    """The per-lesion table as CSV (centroids as x, y, z columns) or JSON (by extension)."""
    if path.suffix.lower() == ".json":
        write_json_atomic(path, lesions)
        return path
    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["lesion", "volume_ml", "voxels", "hemisphere", "centroid_x_lps_mm", "centroid_y_lps_mm",
                     "centroid_z_lps_mm", "mean_probability"])
    for row in lesions:
        writer.writerow([row["lesion"], f"{row['volume_ml']:.4f}", row["voxels"], row["hemisphere"],
                         *row["centroid_lps_mm"], f"{row.get('mean_probability', float('nan')):.3f}"])
    write_text_atomic(path, buffer.getvalue())
    return path
