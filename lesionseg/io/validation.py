"""Checks on image files before and after SimpleITK reads them, so that bad input gets one clear sentence.

SimpleITK reads a truncated NIfTI file without complaint (the missing voxels come back as garbage or
zeros), so NIfTI files are checked against the size their own header announces: for ``.nii.gz`` the
gzip trailer holds the uncompressed size (modulo 2**32), for ``.nii`` the file size itself.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

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


def _nifti_header(raw: bytes, path: Path) -> tuple[int, int]:
    """(expected total bytes, header size) from a NIfTI-1 or NIfTI-2 header."""
    if len(raw) < 348:
        raise InputFileError(f"{path} is too short to hold a NIfTI header (truncated or not NIfTI).")
    for endian in "<>":
        (sizeof_hdr,) = struct.unpack(endian + "i", raw[:4])
        if sizeof_hdr == 348:  # NIfTI-1
            dims = struct.unpack(endian + "8h", raw[40:56])
            datatype, bitpix = struct.unpack(endian + "hh", raw[70:74])
            (vox_offset,) = struct.unpack(endian + "f", raw[108:112])
            break
        if sizeof_hdr == 540 and len(raw) >= 540:  # NIfTI-2
            datatype, bitpix = struct.unpack(endian + "hh", raw[12:16])
            dims = struct.unpack(endian + "8q", raw[16:80])
            (vox_offset,) = struct.unpack(endian + "q", raw[168:176])
            break
    else:
        raise InputFileError(f"{path} does not start with a NIfTI header (corrupt or not a NIfTI file).")
    ndim = max(1, min(int(dims[0]), 7))
    voxels = 1
    for n in dims[1 : ndim + 1]:
        voxels *= max(int(n), 1)
    bytes_per_voxel = NIFTI_DATATYPE_BYTES.get(int(datatype), max(int(bitpix), 8) // 8)
    return int(vox_offset) + voxels * bytes_per_voxel, sizeof_hdr


def check_nifti_complete(path: Path) -> None:
    """Refuse a NIfTI file (``.nii`` or ``.nii.gz``) that holds fewer bytes than its header announces."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(544)
        except (OSError, EOFError, zlib.error) as error:
            raise InputFileError(f"{path} is not a readable gzip file ({error}).") from error
        expected, _ = _nifti_header(head, path)
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
        expected, _ = _nifti_header(head, path)
        actual = path.stat().st_size
        if actual < expected:
            raise InputFileError(f"{path} is truncated: {actual} bytes on disk, its header announces {expected}.")
