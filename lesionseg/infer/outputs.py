"""Writing a prediction: the labelmap (NIfTI, NRRD or a Slicer ``.seg.nrrd``), probabilities, lesion table."""

from __future__ import annotations

import csv
import io as text_io
import os
from pathlib import Path

import SimpleITK as sitk

from lesionseg.errors import InputFileError, ParameterError
from lesionseg.io import image_extension, write_image, write_json_atomic, write_text_atomic

OUTPUT_FORMATS = {"nii.gz": ".nii.gz", "nii": ".nii", "nrrd": ".nrrd", "seg": ".seg.nrrd", "mha": ".mha"}


def output_path(folder: Path, case_id: str, output_format: str) -> Path:
    """``folder/<case_id><extension>`` for a ``--format`` name."""
    if output_format not in OUTPUT_FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, not {output_format!r}.")
    return folder / f"{case_id}{OUTPUT_FORMATS[output_format]}"


def check_writable(path: Path) -> None:
    """Refuse early an output whose folder cannot be created or written, or an unknown extension."""
    if image_extension(path) is None:
        raise ParameterError(f"{path}: unknown output type; end the name with .nii.gz, .nii, .nrrd, .mha or .seg.nrrd.")
    folder = path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise InputFileError(f"{path} cannot be written: {existing} is not a writable folder.")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; give a file name for the output.")


def write_labelmap(labelmap: sitk.Image, path: Path) -> Path:
    """Write the 0/1 labelmap; ``.seg.nrrd`` gives a Slicer segmentation with the "Stroke lesion" segment."""
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
