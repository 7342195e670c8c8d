"""Checks on image files before and after SimpleITK reads them, so that bad input gets one clear sentence.

SimpleITK reads a truncated NIfTI file without complaint (the missing voxels come back as garbage or
zeros), so NIfTI files are checked against the size their own header announces: for ``.nii.gz`` the
gzip trailer holds the uncompressed size (modulo 2**32), for ``.nii`` the file size itself. ITK also
turns a zero slice thickness (``pixdim[3] = 0``) into 1 mm without a word, so voxel sizes are checked
in the header too.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lesionseg.errors import InputFileError

GZIP_MAGIC = b"\x1f\x8b"
#: bytes per voxel for each NIfTI datatype code
NIFTI_DATATYPE_BYTES = {2: 1, 4: 2, 8: 4, 16: 4, 32: 8, 64: 8, 128: 3, 256: 1, 512: 2, 768: 4,
                        1024: 8, 1280: 8, 1536: 16, 1792: 16, 2048: 32, 2304: 4}


def check_file_basics(path: Path) -> None:
    """Refuse a path that does not exist, an empty file or folder, and a gzip name that is not gzip."""
    if not path.exists():
        raise InputFileError(f"{path} does not exist.")
    if path.is_dir():
        if not any(path.iterdir()):
            raise InputFileError(f"{path} is an empty folder, not an image.")
        return
    size = path.stat().st_size
    if size == 0:
        raise InputFileError(f"{path} is an empty file (0 bytes).")
    if path.name.lower().endswith(".gz"):
        with path.open("rb") as handle:
            if handle.read(2) != GZIP_MAGIC:
                raise InputFileError(f"{path} is named .gz but is not gzip-compressed (is it really an image?).")


@dataclass(frozen=True)
class NiftiHeader:
    """The fields of a NIfTI-1 or NIfTI-2 header that the checks need."""

    endian: str
    datatype: int
    dims: tuple[int, ...]
    voxel_sizes: tuple[float, ...]
    vox_offset: int
    bytes_per_voxel: int

    @property
    def data_bytes(self) -> int:
        voxels = 1
        for n in self.dims:
            voxels *= max(n, 1)
        return voxels * self.bytes_per_voxel


def _nifti_header(raw: bytes, path: Path) -> NiftiHeader:
    """Parse the start of a NIfTI-1 or NIfTI-2 file."""
    if len(raw) < 348:
        raise InputFileError(f"{path} is too short to hold a NIfTI header (truncated or not NIfTI).")
    for endian in "<>":
        (sizeof_hdr,) = struct.unpack(endian + "i", raw[:4])
        if sizeof_hdr == 348:  # NIfTI-1
            dims = struct.unpack(endian + "8h", raw[40:56])
            datatype, bitpix = struct.unpack(endian + "hh", raw[70:74])
            (vox_offset,) = struct.unpack(endian + "f", raw[108:112])
            pixdim = struct.unpack(endian + "8f", raw[76:108])
            break
        if sizeof_hdr == 540 and len(raw) >= 540:  # NIfTI-2
            datatype, bitpix = struct.unpack(endian + "hh", raw[12:16])
            dims = struct.unpack(endian + "8q", raw[16:80])
            pixdim = struct.unpack(endian + "8d", raw[104:168])
            (vox_offset,) = struct.unpack(endian + "q", raw[168:176])
            break
    else:
        raise InputFileError(f"{path} does not start with a NIfTI header (corrupt or not a NIfTI file).")
    ndim = max(1, min(int(dims[0]), 7))
    bytes_per_voxel = NIFTI_DATATYPE_BYTES.get(int(datatype), max(int(bitpix), 8) // 8)
    return NiftiHeader(endian, int(datatype), tuple(int(n) for n in dims[1: ndim + 1]),
                       tuple(float(v) for v in pixdim[1: min(ndim, 3) + 1]), int(vox_offset), bytes_per_voxel)


def _check_voxel_sizes(voxel_sizes: tuple[float, ...], path: Path) -> None:
    """Refuse a zero, negative or NaN voxel size: ITK would silently replace it by 1 mm."""
    names = ("column width", "row height", "slice thickness")
    for axis, size in enumerate(voxel_sizes):
        if not size > 0:  # also catches NaN
            raise InputFileError(f"{path} has a {names[axis]} of {size:g} mm in its header (pixdim[{axis + 1}]); "
                                 "voxel sizes must be positive.")


def check_nifti_complete(path: Path) -> None:
    """Refuse a NIfTI file (``.nii`` or ``.nii.gz``) that holds fewer bytes than its header announces, or
    whose header gives a zero or negative voxel size."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(544)
        except (OSError, EOFError, zlib.error) as error:
            raise InputFileError(f"{path} is not a readable gzip file ({error}).") from error
        header = _nifti_header(head, path)
        expected = header.vox_offset + header.data_bytes
        _check_voxel_sizes(header.voxel_sizes, path)
        with path.open("rb") as handle:
            handle.seek(-4, 2)
            (stored_size,) = struct.unpack("<I", handle.read(4))
        if stored_size != expected % 2**32:
            raise InputFileError(
                f"{path} is truncated or corrupt: its header announces {expected} bytes of image data "
                "but the compressed stream does not end where it should."
            )
    elif name.endswith(".nii"):
        with path.open("rb") as handle:
            head = handle.read(544)
        header = _nifti_header(head, path)
        expected = header.vox_offset + header.data_bytes
        _check_voxel_sizes(header.voxel_sizes, path)
        actual = path.stat().st_size
        if actual < expected:
            raise InputFileError(f"{path} is truncated: {actual} bytes on disk, its header announces {expected}.")


#: NIfTI datatype codes of floating-point voxels -> numpy type (native order; the header's endian is applied)
NIFTI_FLOAT_TYPES = {16: "f4", 64: "f8"}


def nifti_nonfinite_mask(path: Path) -> np.ndarray | None:
    """Where a floating-point NIfTI volume holds NaN or infinite voxels, as a (z, y, x) bool array.

    ITK's NIfTI reader turns NaN voxels into 0 without a word, so preparation could never see them; this
    reads the voxel block itself. Returns None for integer volumes and for volumes with only finite values.
    """
    name = path.name.lower()
    opener = gzip.open if name.endswith(".nii.gz") else open
    with opener(path, "rb") as handle:
        header = _nifti_header(handle.read(544), path)
        if header.datatype not in NIFTI_FLOAT_TYPES or len(header.dims) < 3:
            return None
        handle.seek(header.vox_offset)
        values = np.frombuffer(handle.read(header.data_bytes), dtype=header.endian + NIFTI_FLOAT_TYPES[header.datatype])
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    x, y, z = header.dims[:3]
    return bad[: x * y * z].reshape(z, y, x)
