"""Labelmaps -> segmentation nodes with a named, coloured "Stroke lesion" segment, and back to masks.

The segment is written through Slicer's own segmentation logic (``SetBinaryLabelmapToSegment``,
``ExportSegmentsToLabelmapNode``), so its voxels are what the Segment Editor and ``.seg.nrrd`` storage
see. The segmentation's reference geometry is the input volume's, so the segment overlays the volume
voxel for voxel (and DICOM SEG export has the geometry it needs).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from lesionseg.errors import GeometryError, ParameterError
from lesionseg.io import geometry_difference
from lesionseg.labels import STROKE_LESION, STROKE_LESION_NAME, SegmentLabel
from lesionseg.mrml.hierarchy import place_beside
from lesionseg.mrml.volumes import geometry_of_volume_node, image_from_volume_node, oriented_image_from_image

SEGMENTATION_CLASS = "vtkMRMLSegmentationNode"
BINARY_LABELMAP = "Binary labelmap"
_LOGIC = slicer.vtkSlicerSegmentationsModuleLogic


def set_segment_terminology(segment, entry: str) -> None:
    """Tag a ``vtkSegment`` with a terminology entry (``SetTerminology`` on Slicer 5.8+, the tag otherwise)."""
    if hasattr(segment, "SetTerminology"):
        segment.SetTerminology(entry)
    else:
        segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), entry)


def segment_terminology(segment) -> str:
    """The terminology entry string of a ``vtkSegment`` ("" when it has none)."""
    value = vtk.reference("")
    segment.GetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), value)
    return str(value)


def _binary_labelmap(labelmap: sitk.Image, label: SegmentLabel) -> sitk.Image:
    """0/1 uint8 mask of the voxels equal to ``label.value``, on the labelmap's grid."""
    binary = sitk.GetImageFromArray((sitk.GetArrayViewFromImage(labelmap) == label.value).astype(np.uint8))
    binary.CopyInformation(labelmap)
    return binary


def segmentation_node_from_labelmap(scene, labelmap: sitk.Image, reference_volume, *,
                                    label: SegmentLabel = STROKE_LESION, node=None, name: str | None = None):
    """Put a predicted labelmap into a segmentation node as one named, coloured, tagged segment.

    The segment named ``label.name`` is created, or replaced when ``node`` already has one (its other
    segments are kept). The node's reference geometry is set from ``reference_volume``, it shares that
    volume's parent transform, and it is placed under the volume's study in the subject hierarchy.

    Args:
        scene: the MRML scene.
        labelmap: integer labels on the reference volume's grid; voxels equal to ``label.value`` form the
            segment (an all-background labelmap gives an empty segment).
        reference_volume: the input volume node the labelmap was predicted from.
        label: name, label value, RGB colour (0..1) and terminology entry of the segment.
        node: an existing segmentation node to write into (default: a new one).
        name: name of a new node (default: ``"<volume name> lesion"``).

    Returns:
        The segmentation node.

    Raises:
        GeometryError: the labelmap is not on the reference volume's grid.
        ParameterError: the labelmap is not a 3D single-channel image, or Slicer refused the segment.
    """
    node, _segment_id = write_label_segment(scene, labelmap, reference_volume, label=label, node=node, name=name)
    return node


def write_label_segment(scene, labelmap: sitk.Image, reference_volume, *, label: SegmentLabel = STROKE_LESION,
                        node=None, segment_id: str | None = None, name: str | None = None) -> tuple[object, str]:
    """:func:`segmentation_node_from_labelmap`, writing into the segment with a given ID when it still exists.

    A result is bound to its segment by ID, not by name: a user may rename the segment or add another of the same
    name, and the segment LesionSeg wrote is still the one it updates.

    Args:
        segment_id: the segment to write (when ``node`` still holds it); otherwise the segment named
            ``label.name`` is replaced, or a new one added.
        scene, labelmap, reference_volume, label, node, name: as :func:`segmentation_node_from_labelmap`.

    Returns:
        ``(segmentation node, segment ID)``.
    """
    difference = geometry_difference(labelmap, geometry_of_volume_node(reference_volume))
    if difference is not None:
        raise GeometryError(f"the labelmap is not on the grid of the volume '{reference_volume.GetName()}' "
                            f"({difference}); predict on that volume or resample the labelmap onto it.")
    if node is None:
        node = scene.AddNewNodeByClass(SEGMENTATION_CLASS,
                                       scene.GenerateUniqueName(name or f"{reference_volume.GetName()} lesion"))
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    node.SetAndObserveTransformNodeID(reference_volume.GetTransformNodeID())
    segmentation = node.GetSegmentation()
    if segmentation.GetNumberOfSegments() == 0:
        _set_source_representation(segmentation, BINARY_LABELMAP)
    if not segment_id or segmentation.GetSegment(segment_id) is None:
        segment_id = segmentation.GetSegmentIdBySegmentName(label.name)
    if not segment_id:
        new_id = segmentation.GenerateUniqueSegmentID(label.name.replace(" ", "_"))
        segment_id = segmentation.AddEmptySegment(new_id, label.name, list(label.color))
    oriented = oriented_image_from_image(_binary_labelmap(labelmap, label))
    if not _LOGIC.SetBinaryLabelmapToSegment(oriented, node, segment_id, _LOGIC.MODE_REPLACE):
        raise ParameterError(f"Slicer refused the labelmap for segment '{label.name}' of '{node.GetName()}'.")
    segment = segmentation.GetSegment(segment_id)
    segment.SetColor(*label.color)
    if label.terminology:
        set_segment_terminology(segment, label.terminology)
    place_beside(scene, node, reference_volume)
    return node, segment_id


def segment_labelmap(segmentation_node, segment_id: str, *, apply_parent_transform: bool = False):
    """The voxels of one segment as a 0/1 ``vtkOrientedImageData`` (its own extent), as the Segment Editor's
    ``selectedSegmentLabelmap()`` gives them: segments may share a labelmap layer, where each has its own label
    value, so the layer is thresholded at the segment's value.

    Args:
        segmentation_node: the segmentation.
        segment_id: the segment's ID.
        apply_parent_transform: place the voxels in world coordinates (the node's parent transform applied).

    Raises:
        ParameterError: no segment with that ID.
    """
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id or "")
    if segment is None:
        raise ParameterError(f"the segmentation '{segmentation_node.GetName()}' has no segment with ID "
                             f"{segment_id!r}; select a segment in the list.")
    layer = slicer.vtkOrientedImageData()
    _LOGIC.GetSegmentBinaryLabelmapRepresentation(segmentation_node, segment_id, layer, apply_parent_transform)
    threshold = vtk.vtkImageThreshold()
    threshold.SetInputData(layer)
    threshold.ThresholdBetween(segment.GetLabelValue(), segment.GetLabelValue())
    threshold.SetInValue(1)
    threshold.SetOutValue(0)
    threshold.SetOutputScalarTypeToUnsignedChar()
    threshold.Update()
    labelmap = slicer.vtkOrientedImageData()
    labelmap.ShallowCopy(threshold.GetOutput())
    labelmap.CopyDirections(layer)
    return labelmap


def mask_from_segment(segmentation_node, segment_id: str, reference_volume) -> sitk.Image | None:
    """The segment with this ID as a 0/1 uint8 mask on the reference volume's own grid, None when it is gone.

    The segmentation is expected to share the volume's parent transform (as :func:`write_label_segment` sets
    it); the segment's voxels are resampled (nearest neighbour) onto the volume's extent, without a copy of
    the volume's voxels.
    """
    if segmentation_node is None or not segment_id or segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        return None
    from lesionseg.mrml.volumes import image_from_oriented_image

    labelmap = segment_labelmap(segmentation_node, segment_id)
    reference = slicer.vtkOrientedImageData()
    reference.SetExtent(reference_volume.GetImageData().GetExtent())
    ijk_to_ras = vtk.vtkMatrix4x4()
    reference_volume.GetIJKToRASMatrix(ijk_to_ras)
    reference.SetImageToWorldMatrix(ijk_to_ras)
    extent = labelmap.GetExtent()
    if extent[1] < extent[0] or extent[3] < extent[2] or extent[5] < extent[4]:  # an empty segment
        empty = sitk.Image(*[int(n) for n in reference_volume.GetImageData().GetDimensions()], sitk.sitkUInt8)
        geometry = geometry_of_volume_node(reference_volume)
        empty.SetSpacing(geometry.spacing)
        empty.SetOrigin(geometry.origin)
        empty.SetDirection(geometry.direction)
        return empty
    image = image_from_oriented_image(labelmap, reference=reference)
    mask = sitk.Cast(image > 0, sitk.sitkUInt8)
    return mask


def _set_source_representation(segmentation, name: str) -> None:
    if hasattr(segmentation, "SetSourceRepresentationName"):  # Slicer 5.4 and later
        segmentation.SetSourceRepresentationName(name)
    else:
        segmentation.SetMasterRepresentationName(name)


def segment_names(segmentation_node) -> list[str]:
    """The names of a segmentation node's segments, in order."""
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegment(index).GetName() for index in range(segmentation.GetNumberOfSegments())]


def mask_from_segmentation_node(scene, segmentation_node, segment_name: str = STROKE_LESION_NAME,
                                reference_volume=None) -> sitk.Image:
    """One segment of a segmentation node as a 0/1 uint8 SimpleITK mask.

    Args:
        scene: the MRML scene holding the node (a temporary labelmap node is added and removed).
        segmentation_node: the segmentation.
        segment_name: the segment's name (exact, else the only case-insensitive match).
        reference_volume: volume node whose grid the mask is on; default the segmentation's reference
            geometry (its whole extent).

    Returns:
        The mask (1 inside the segment), origin and direction in LPS.

    Raises:
        ParameterError: no segment of that name.
    """
    segmentation = segmentation_node.GetSegmentation()
    segment_id = segmentation.GetSegmentIdBySegmentName(segment_name)
    if not segment_id:
        names = segment_names(segmentation_node)
        matches = [n for n in names if n.lower() == segment_name.lower()]
        if len(matches) != 1:
            raise ParameterError(f"the segmentation '{segmentation_node.GetName()}' has no segment named "
                                 f"'{segment_name}'; its segments are: {', '.join(names) or 'none'}.")
        segment_id = segmentation.GetSegmentIdBySegmentName(matches[0])
    segment_ids = vtk.vtkStringArray()
    segment_ids.InsertNextValue(segment_id)
    before = _node_ids(scene)
    labelmap_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "lesionseg temporary export")
    try:
        if not _LOGIC.ExportSegmentsToLabelmapNode(segmentation_node, segment_ids, labelmap_node, reference_volume,
                                                   slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY):
            raise ParameterError(f"Slicer could not export segment '{segment_name}' of "
                                 f"'{segmentation_node.GetName()}'.")
        exported = image_from_volume_node(labelmap_node)
    finally:
        # the export adds a labelmap display node and a colour table; none of them is wanted in the scene
        for node_id in _node_ids(scene) - before:
            node = scene.GetNodeByID(node_id)
            if node is not None:
                scene.RemoveNode(node)
    mask = sitk.GetImageFromArray((sitk.GetArrayViewFromImage(exported) > 0).astype(np.uint8))
    mask.CopyInformation(exported)
    return mask


def _node_ids(scene) -> set[str]:
    return {scene.GetNthNode(index).GetID() for index in range(scene.GetNumberOfNodes())}
