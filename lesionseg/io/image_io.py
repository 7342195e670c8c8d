"""Reading and writing volumes with their geometry (SimpleITK), with clear errors for bad files.

Formats: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``) and a
folder holding DICOM series (one, or one chosen by its Series Instance UID; :mod:`lesionseg.io.dicom_series`
keeps its identity). Slicer segmentations (``.seg.nrrd``) are read by
:mod:`lesionseg.io.seg_nrrd`; :func:`read_mask` dispatches to it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import InputFileError, ParameterError
from lesionseg.io.atomic import atomic_path
from lesionseg.io.dicom_series import read_dicom_volume
from lesionseg.io.geometry import Geometry
from lesionseg.io.validation import check_file_basics, check_nifti_complete, nifti_nonfinite_mask

IMAGE_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
WRITE_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".mha", ".seg.nrrd")


def image_extension(path: str | os.PathLike) -> str | None:
    """The recognised extension of ``path`` (``.nii.gz``, ``.seg.nrrd``, ...), lower case, or None."""
    name = Path(path).name.lower()
    for extension in (".seg.nrrd",) + IMAGE_EXTENSIONS:
        if name.endswith(extension):
            return extension
    return None


def strip_image_extension(path: str | os.PathLike) -> str:
    """The file name without its image extension (``case_0000.nii.gz`` -> ``case_0000``)."""
    name = Path(path).name
    extension = image_extension(name)
    return name[: -len(extension)] if extension else name


def _squeeze_to_3d(image: sitk.Image, path: Path) -> sitk.Image:
    """Drop trailing singleton dimensions (a 4D NIfTI with one volume), refuse real 2D/4D images."""
    while image.GetDimension() > 3 and image.GetSize()[-1] == 1:
        size = list(image.GetSize())
        size[-1] = 0
        image = sitk.Extract(image, size, [0] * image.GetDimension())
    if image.GetDimension() == 2:
        raise InputFileError(f"{path} is a 2D image ({image.GetSize()[0]}x{image.GetSize()[1]}); a 3D volume is needed.")
    if image.GetDimension() != 3:
        size = "x".join(str(n) for n in image.GetSize())
        raise InputFileError(f"{path} is a {image.GetDimension()}D image ({size}); a single 3D volume is needed.")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputFileError(
            f"{path} has {image.GetNumberOfComponentsPerPixel()} values per voxel (a vector or colour image); "
            "a scalar volume is needed."
        )
    if min(image.GetSize()) < 1 or min(image.GetSpacing()) <= 0:
        raise InputFileError(f"{path} has a zero or negative voxel size {image.GetSpacing()} mm.")
    return image


def _restore_nonfinite(image: sitk.Image, path: Path) -> sitk.Image:
    """Put back the NaN voxels that ITK's NIfTI reader replaced by 0, so that callers can see them."""
    bad = nifti_nonfinite_mask(path)
    if bad is None or bad.shape != sitk.GetArrayViewFromImage(image).shape:
        return image
    array = sitk.GetArrayFromImage(image).astype(np.float32 if image.GetPixelID() == sitk.sitkFloat32 else np.float64)
    array[bad] = np.nan
    restored = sitk.GetImageFromArray(array)
    restored.CopyInformation(image)
    return restored


def read_dicom_series(folder: Path, series_uid: str | Sequence[str] | None = None) -> sitk.Image:
    """Read the DICOM series of ``folder``: the only one, or the one whose Series Instance UID is given.

    A folder with several series and no ``series_uid`` is refused with the list of its series (see
    :func:`lesionseg.io.dicom_series.select_series`). To keep the series' UIDs and slice positions, use
    :func:`lesionseg.io.dicom_series.read_dicom_volume`.
    """
    return read_dicom_volume(folder, series_uid).image


def _short(error: Exception) -> str:
    """The useful last part of a SimpleITK exception message."""
    text = str(error).strip().splitlines()
    message = text[-1] if text else type(error).__name__
    return message.split("ERROR:")[-1].strip()[:200]


def read_image(path: str | os.PathLike, *, pixel_type: int | None = None,
               series_uid: str | Sequence[str] | None = None) -> sitk.Image:
    """Read a 3D scalar volume with its geometry.

    Args:
        path: a NIfTI, NRRD or MetaImage file, or a folder holding a DICOM series.
        pixel_type: cast to this SimpleITK pixel type (e.g. ``sitk.sitkFloat32``); None keeps the file's.
        series_uid: for a DICOM folder holding several series, the Series Instance UID of the one to read (a
            list: the ``--series`` choices for several folders, see :func:`~lesionseg.io.read_dicom_volume`).

    Returns:
        The volume, size and spacing in (x, y, z), origin and direction in LPS.

    Raises:
        InputFileError: missing, empty, truncated, not an image, 2D, 4D or vector-valued; a DICOM folder with
            several series and no ``series_uid`` (the message lists them).
    """
    path = Path(path)
    check_file_basics(path)
    if path.is_dir():
        image = read_dicom_series(path, series_uid)
    else:
        extension = image_extension(path)
        if extension is None:
            raise InputFileError(
                f"{path} is not a supported image file; use one of {', '.join(IMAGE_EXTENSIONS)} or a DICOM folder."
            )
        check_nifti_complete(path)
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as error:
            raise InputFileError(f"{path} could not be read as an image ({_short(error)}).") from error
    image = _squeeze_to_3d(image, path)
    if image_extension(path) in (".nii", ".nii.gz"):
        image = _restore_nonfinite(image, path)
    if pixel_type is not None and image.GetPixelID() != pixel_type:
        image = sitk.Cast(image, pixel_type)
    return image


def read_geometry(path: str | os.PathLike) -> Geometry:
    """Read only the header of a 3D volume: its grid, with the same checks as :func:`read_image`.

    Cheap for files (no voxels are decoded); a DICOM folder is read in full.
    """
    path = Path(path)
    if path.is_dir() or image_extension(path) == ".seg.nrrd":
        return Geometry.of(read_image(path) if path.is_dir() else _seg_layer_grid(path))
    check_file_basics(path)
    if image_extension(path) is None:
        raise InputFileError(
            f"{path} is not a supported image file; use one of {', '.join(IMAGE_EXTENSIONS)} or a DICOM folder."
        )
    check_nifti_complete(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputFileError(f"{path} could not be read as an image ({_short(error)}).") from error
    size = list(reader.GetSize())
    while len(size) > 3 and size[-1] == 1:
        size.pop()
    if len(size) != 3:
        shape = "x".join(str(n) for n in reader.GetSize())
        raise InputFileError(f"{path} is a {len(size)}D image ({shape}); a single 3D volume is needed.")
    if reader.GetNumberOfComponents() != 1:
        raise InputFileError(f"{path} has {reader.GetNumberOfComponents()} values per voxel; a scalar volume is needed.")
    spacing = tuple(reader.GetSpacing()[:3])
    if min(spacing) <= 0:
        raise InputFileError(f"{path} has a zero or negative voxel size {spacing} mm.")
    direction = reader.GetDirection()
    if len(direction) != 9:
        d = int(round(len(direction) ** 0.5))
        direction = tuple(direction[row * d + col] for row in range(3) for col in range(3))
    return Geometry(tuple(size), spacing, tuple(reader.GetOrigin()[:3]), tuple(direction))


def _seg_layer_grid(path: Path) -> sitk.Image:
    from lesionseg.io.seg_nrrd import read_seg_nrrd

    return read_seg_nrrd(path)[0]


def write_image(image: sitk.Image, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write an image atomically; the format follows the extension (``.seg.nrrd`` writes a Slicer segmentation).

    Args:
        image: the volume (a 0/1 labelmap for ``.seg.nrrd``).
        path: destination; its folder is created when missing.
        compress: gzip the voxel data where the format allows it.

    Returns:
        The path written.

    Raises:
        ParameterError: an extension no writer handles.
        InputFileError: the destination cannot be written.
    """
    path = Path(path)
    extension = image_extension(path)
    if extension not in WRITE_EXTENSIONS:
        raise ParameterError(f"{path}: cannot write this file type; use one of {', '.join(WRITE_EXTENSIONS)}.")
    if extension == ".seg.nrrd":
        from lesionseg.io.seg_nrrd import write_seg_nrrd

        return write_seg_nrrd(image, path)
    try:
        with atomic_path(path) as temporary:
            sitk.WriteImage(image, str(temporary), useCompression=compress)
    except (OSError, RuntimeError) as error:
        raise InputFileError(f"{path} cannot be written ({_short(error)}).") from error
    return path


def binarise_mask(image: sitk.Image, path: str | os.PathLike, label: int | None = None) -> sitk.Image:
    """Return a uint8 0/1 mask, refusing masks with several labels unless ``label`` picks one.

    A mask with a single non-zero value (1, 255, ...) is binary. With ``label`` given, voxels equal to it
    become 1 and all others 0.

    Raises:
        InputFileError: several labels and no ``label``, or ``label`` absent from the mask.
    """
    array = sitk.GetArrayViewFromImage(image)
    if not np.all(np.isfinite(array)):
        raise InputFileError(f"{path} holds NaN or infinite values; a mask must hold whole-number labels.")
    values = np.unique(array)
    if label is not None:
        if label not in values:
            raise InputFileError(f"{path} has no voxel labelled {label}; labels found: {_list(values)}.")
        binary = (array == label)
    else:
        nonzero = values[values != 0]
        if len(nonzero) > 1:
            raise InputFileError(
                f"{path} is a multi-label mask (labels found: {_list(values)}); choose one label "
                "(--label N) or give a binary mask."
            )
        binary = array != 0
    mask = sitk.GetImageFromArray(binary.astype(np.uint8))
    mask.CopyInformation(image)
    return mask


def class_mask(image: sitk.Image, path: str | os.PathLike, values: Sequence[int]) -> sitk.Image:
    """A multi-label mask as class indices: uint8, 0 background, ``k`` where the mask holds ``values[k - 1]``.

    Args:
        image: the mask as read.
        path: its file, for messages.
        values: the label value of each class, in class order (a label table's values).

    Raises:
        InputFileError: non-finite voxels, or a non-zero value that is none of ``values``.
    """
    array = sitk.GetArrayViewFromImage(image)
    if not np.all(np.isfinite(array)):
        raise InputFileError(f"{path} holds NaN or infinite values; a mask must hold whole-number labels.")
    listed = {float(v) for v in values}
    unknown = [v for v in np.unique(array) if v != 0 and float(v) not in listed]
    if unknown:
        raise InputFileError(f"{path} holds label(s) {_list(np.asarray(unknown))} that its label table does not list "
                             f"(the table lists {', '.join(str(int(v)) for v in values)}).")
    classes = np.zeros(array.shape, np.uint8)
    for index, value in enumerate(values, start=1):
        classes[array == value] = index
    mask = sitk.GetImageFromArray(classes)
    mask.CopyInformation(image)
    return mask


def _list(values: np.ndarray) -> str:
    shown = [f"{v:g}" for v in values[:12]]
    return ", ".join(shown) + (", ..." if len(values) > 12 else "")


def read_mask(path: str | os.PathLike, *, reference: sitk.Image | None = None, label: int | None = None,
              segment: str | None = None) -> sitk.Image:
    """Read a binary mask (any image format or a Slicer ``.seg.nrrd``) as uint8 0/1.

    Args:
        path: the mask file.
        reference: when given, a ``.seg.nrrd`` segment is resampled onto this grid (nearest neighbour); for
            other formats the mask is only checked against it by callers (see ``require_same_geometry``).
        label: the label value to take from a multi-label mask.
        segment: for ``.seg.nrrd``, the segment name (default: the only one, or "Stroke lesion").

    Raises:
        InputFileError: unreadable, not 3D, or several labels without ``label``.
    """
    path = Path(path)
    if image_extension(path) == ".seg.nrrd":
        from lesionseg.io.seg_nrrd import read_segment

        return read_segment(path, name=segment, reference=reference)
    return binarise_mask(read_image(path), path, label)
