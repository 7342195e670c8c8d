"""Slicer segmentation files (``.seg.nrrd``): several named segments, possibly in several layers.

A ``.seg.nrrd`` is a NRRD whose voxels are labels and whose header holds, for each segment N,
``SegmentN_Name``, ``SegmentN_LabelValue``, ``SegmentN_Layer``, ``SegmentN_Color``, ``SegmentN_Extent``
and ``SegmentN_Tags``. Overlapping segments go to different layers, stored as a 4D NRRD whose first axis
is of kind ``list``; SimpleITK reads that as a vector image with one component per layer. The stored
grid may be cropped to the segments' extent, so a segment is resampled (nearest neighbour) onto the
reference image's grid by physical position.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import InputFileError
from lesionseg.io.atomic import atomic_path
from lesionseg.io.validation import check_file_basics
from lesionseg.labels import STROKE_LESION, STROKE_LESION_NAME, SegmentLabel


@dataclass(frozen=True)
class SegmentInfo:
    """One segment described in a ``.seg.nrrd`` header."""

    index: int
    segment_id: str
    name: str
    label_value: int
    layer: int
    color: tuple[float, float, float] | None


def _segments_from_header(image: sitk.Image) -> list[SegmentInfo]:
    keys = set(image.GetMetaDataKeys())
    segments = []
    index = 0
    while f"Segment{index}_Name" in keys or f"Segment{index}_ID" in keys:
        def field(name: str, default: str | None = None) -> str | None:
            key = f"Segment{index}_{name}"
            return image.GetMetaData(key).strip() if key in keys else default

        color_text = field("Color")
        color = tuple(float(c) for c in color_text.split()[:3]) if color_text else None
        segments.append(SegmentInfo(
            index=index,
            segment_id=field("ID", f"Segment_{index}") or f"Segment_{index}",
            name=field("Name", field("ID", f"Segment_{index}")) or f"Segment_{index}",
            label_value=int(float(field("LabelValue", "1") or 1)),
            layer=int(float(field("Layer", "0") or 0)),
            color=color,  # type: ignore[arg-type]
        ))
        index += 1
    return segments


def read_seg_nrrd(path: str | os.PathLike) -> tuple[sitk.Image, list[SegmentInfo]]:
    """Read a ``.seg.nrrd``: the stored label image (a vector image when it has several layers) and its segments.

    Raises:
        InputFileError: unreadable, or a NRRD without segment fields.
    """
    path = Path(path)
    check_file_basics(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputFileError(f"{path} could not be read as a Slicer segmentation ({str(error).splitlines()[-1][:160]}).") from error
    segments = _segments_from_header(image)
    if not segments:
        raise InputFileError(f"{path} has no SegmentN_Name fields; it is not a Slicer segmentation (.seg.nrrd).")
    if image.GetDimension() != 3:
        raise InputFileError(f"{path} is a {image.GetDimension()}D segmentation; a 3D one is needed.")
    return image, segments


def choose_segment(segments: list[SegmentInfo], name: str | None, path: Path) -> SegmentInfo:
    """The segment named ``name``; by default the only one, else the one named "Stroke lesion"."""
    names = [segment.name for segment in segments]
    if name is None:
        if len(segments) == 1:
            return segments[0]
        name = STROKE_LESION_NAME
        if name not in names:
            raise InputFileError(
                f"{path} holds {len(segments)} segments ({', '.join(names)}) and none is named "
                f"'{STROKE_LESION_NAME}'; choose one by name."
            )
    for segment in segments:
        if segment.name == name:
            return segment
    lowered = [segment for segment in segments if segment.name.lower() == name.lower()]
    if len(lowered) == 1:
        return lowered[0]
    raise InputFileError(f"{path} has no segment named '{name}'; its segments are: {', '.join(names)}.")


def read_segment(path: str | os.PathLike, *, name: str | None = None,
                 reference: sitk.Image | None = None) -> sitk.Image:
    """One segment of a ``.seg.nrrd`` as a uint8 0/1 mask, on ``reference``'s grid when given.

    Args:
        path: the ``.seg.nrrd`` file.
        name: segment name (default: the only segment, or "Stroke lesion").
        reference: image whose grid the mask is resampled onto (nearest neighbour, by physical position);
            None keeps the file's stored grid.
    """
    path = Path(path)
    image, segments = read_seg_nrrd(path)
    segment = choose_segment(segments, name, path)
    layers = image.GetNumberOfComponentsPerPixel()
    if segment.layer >= layers:
        raise InputFileError(f"{path}: segment '{segment.name}' is in layer {segment.layer} but the file has {layers}.")
    layer = sitk.VectorIndexSelectionCast(image, segment.layer) if layers > 1 else image
    array = sitk.GetArrayViewFromImage(layer)
    mask = sitk.GetImageFromArray((array == segment.label_value).astype(np.uint8))
    mask.CopyInformation(layer)
    if reference is not None:
        mask = sitk.Resample(mask, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return mask


def _extent(array_zyx: np.ndarray) -> str:
    """Slicer's segment extent ``i0 i1 j0 j1 k0 k1`` (inclusive voxel bounds along x, y, z)."""
    nonzero = np.nonzero(array_zyx)
    if len(nonzero[0]) == 0:
        return "0 -1 0 -1 0 -1"
    z, y, x = (axis for axis in nonzero)
    return f"{x.min()} {x.max()} {y.min()} {y.max()} {z.min()} {z.max()}"


def write_seg_nrrd(labelmap: sitk.Image, path: str | os.PathLike,
                   segments: list[SegmentLabel] | None = None) -> Path:
    """Write a labelmap as a Slicer segmentation with named, coloured segments in one layer.

    Args:
        labelmap: integer labels on the reference grid (0 = background).
        path: destination ending in ``.seg.nrrd``.
        segments: the segments to declare (default: one "Stroke lesion" segment, label 1, with its
            colour and terminology).

    Returns:
        The path written.
    """
    path = Path(path)
    segments = segments or [STROKE_LESION]
    array = sitk.GetArrayFromImage(labelmap).astype(np.uint8)
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(labelmap)
    image.SetMetaData("Segmentation_MasterRepresentation", "Binary labelmap")
    image.SetMetaData("Segmentation_ContainedRepresentationNames", "Binary labelmap|")
    image.SetMetaData("Segmentation_ReferenceImageExtentOffset", "0 0 0")
    for index, segment in enumerate(segments):
        prefix = f"Segment{index}_"
        image.SetMetaData(prefix + "ID", "Segment_" + segment.name.replace(" ", "_"))
        image.SetMetaData(prefix + "Name", segment.name)
        image.SetMetaData(prefix + "NameAutoGenerated", "0")
        image.SetMetaData(prefix + "Color", " ".join(f"{c:g}" for c in segment.color))
        image.SetMetaData(prefix + "ColorAutoGenerated", "0")
        image.SetMetaData(prefix + "LabelValue", str(segment.value))
        image.SetMetaData(prefix + "Layer", "0")
        image.SetMetaData(prefix + "Extent", _extent(array == segment.value))
        tags = f"TerminologyEntry:{segment.terminology}|" if segment.terminology else ""
        image.SetMetaData(prefix + "Tags", tags)
    try:
        with atomic_path(path) as temporary:
            sitk.WriteImage(image, str(temporary), useCompression=True)
    except (OSError, RuntimeError) as error:
        raise InputFileError(f"{path} cannot be written ({str(error).splitlines()[-1][:160]}).") from error
    return path
