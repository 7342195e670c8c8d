"""Volume nodes <-> SimpleITK images, with their geometry exact.

Slicer places a volume by its IJK-to-RAS matrix, ITK by origin, spacing and direction in LPS. With
``F = diag(-1, -1, 1)`` (LPS <-> RAS flips the first two axes)::

    IJKToRAS = F @ [ direction @ diag(spacing) | origin ]        (direction, origin in LPS)

A volume node keeps spacing, origin (RAS) and the unit axis directions (RAS) as separate fields, so they
are read and written one by one (never decomposed from the 4x4 matrix): a node -> image -> node round
trip is exact to the last bit. Voxel arrays are indexed (k, j, i) in Slicer and (z, y, x) in SimpleITK:
the same memory order, so voxels are copied without reordering.

A node's parent transform is not applied: the image is the node's own grid (what the scanner wrote).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import slicer.util
import vtk
import vtk.util.numpy_support

from lesionseg.errors import ParameterError
from lesionseg.io import Geometry

#: LPS <-> RAS: the first two axes change sign.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

VOLUME_CLASS = "vtkMRMLScalarVolumeNode"
LABELMAP_CLASS = "vtkMRMLLabelMapVolumeNode"


def _ras_directions(node) -> np.ndarray:
    """The node's 3x3 IJK-to-RAS direction matrix (columns = unit i, j, k axes in RAS)."""
    directions = np.zeros((3, 3))
    node.GetIJKToRASDirections(directions)
    return directions


def geometry_of_volume_node(node) -> Geometry:
    """The grid of a volume node in ITK's convention (LPS), without copying its voxels.

    Args:
        node: a ``vtkMRMLVolumeNode`` holding image data.

    Returns:
        size (i, j, k) = (x, y, z), spacing in mm, origin in LPS mm and row-major LPS direction.

    Raises:
        ParameterError: the node holds no image data.
    """
    image_data = node.GetImageData()
    if image_data is None:
        raise ParameterError(f"the volume node '{node.GetName()}' holds no voxels.")
    direction = LPS_TO_RAS @ _ras_directions(node)
    origin = LPS_TO_RAS @ np.asarray(node.GetOrigin(), dtype=float)
    return Geometry(tuple(int(n) for n in image_data.GetDimensions()), tuple(float(s) for s in node.GetSpacing()),
                    tuple(float(o) for o in origin), tuple(float(d) for d in direction.ravel()))


def image_from_volume_node(node) -> sitk.Image:
    """Copy a scalar (or labelmap) volume node into a SimpleITK image with the same physical grid.

    Args:
        node: ``vtkMRMLScalarVolumeNode`` or ``vtkMRMLLabelMapVolumeNode`` with one value per voxel.

    Returns:
        A 3D image of the node's voxel type; origin and direction in LPS, spacing in mm.

    Raises:
        ParameterError: the node holds no voxels or several values per voxel.
    """
    geometry = geometry_of_volume_node(node)
    components = node.GetImageData().GetNumberOfScalarComponents()
    if components != 1:
        raise ParameterError(f"the volume node '{node.GetName()}' has {components} values per voxel; "
                             "a single-channel (grey-level) volume is needed.")
    array_kji = np.array(slicer.util.arrayFromVolume(node), copy=True)
    image = sitk.GetImageFromArray(array_kji)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    return image


def set_volume_node_geometry(node, image: sitk.Image) -> None:
    """Give a volume node (or a ``vtkOrientedImageData``) the physical grid of a SimpleITK image."""
    direction_lps = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    directions_ras = vtk.vtkMatrix4x4()
    for row, values in enumerate(LPS_TO_RAS @ direction_lps):
        for column, value in enumerate(values):
            directions_ras.SetElement(row, column, float(value))
    origin_ras = LPS_TO_RAS @ np.asarray(image.GetOrigin(), dtype=float)
    if hasattr(node, "SetIJKToRASDirectionMatrix"):  # a volume node
        node.SetIJKToRASDirectionMatrix(directions_ras)
    else:  # vtkOrientedImageData
        node.SetDirectionMatrix(directions_ras)
    node.SetSpacing(*(float(s) for s in image.GetSpacing()))
    node.SetOrigin(*(float(o) for o in origin_ras))


def _check_scalar_3d(image: sitk.Image, what: str) -> np.ndarray:
    if image.GetDimension() != 3:
        raise ParameterError(f"{what} must be a 3D image, not {image.GetDimension()}D.")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ParameterError(
            f"{what} has {image.GetNumberOfComponentsPerPixel()} values per voxel; one is needed.")
    array = sitk.GetArrayViewFromImage(image)
    if array.dtype in (np.int64, np.uint64):  # Slicer does not display 64-bit integer volumes
        raise ParameterError(f"{what} has 64-bit integer voxels, which Slicer cannot show; cast it to 32 bits.")
    return array


def update_volume_node_from_image(node, image: sitk.Image) -> None:
    """Replace a volume node's voxels and grid by those of a SimpleITK image.

    Args:
        node: an existing scalar or labelmap volume node.
        image: a 3D single-channel image (not 64-bit integers).

    Raises:
        ParameterError: the image is not 3D, has several channels or 64-bit integer voxels.
    """
    array_zyx = _check_scalar_3d(image, f"the image for '{node.GetName()}'")
    was_modifying = node.StartModify()
    try:
        slicer.util.updateVolumeFromArray(node, array_zyx)
        set_volume_node_geometry(node, image)
    finally:
        node.EndModify(was_modifying)


def volume_node_from_image(scene, image: sitk.Image, name: str, *, labelmap: bool = False, node=None):
    """Add a volume node holding a SimpleITK image (voxels and geometry) to a scene.

    Args:
        scene: the MRML scene (``slicer.mrmlScene`` in the application).
        image: a 3D single-channel image.
        name: the node's name (made unique by the scene when a new node is added).
        labelmap: make a ``vtkMRMLLabelMapVolumeNode`` instead of a scalar volume.
        node: an existing volume node to fill instead of adding one.

    Returns:
        The volume node, with default display nodes.
    """
    if node is None:
        node_class = LABELMAP_CLASS if labelmap else VOLUME_CLASS
        node = scene.AddNewNodeByClass(node_class, scene.GenerateUniqueName(name))
    update_volume_node_from_image(node, image)
    node.CreateDefaultDisplayNodes()
    return node


def oriented_image_from_image(image: sitk.Image, dtype=np.uint8):
    """A ``vtkOrientedImageData`` (the voxels of a segment) from a SimpleITK image, same grid."""
    array_zyx = np.ascontiguousarray(_check_scalar_3d(image, "the labelmap"), dtype=dtype)
    oriented = slicer.vtkOrientedImageData()
    oriented.SetDimensions(*(int(n) for n in image.GetSize()))
    scalars = vtk.util.numpy_support.numpy_to_vtk(array_zyx.ravel(), deep=True)
    oriented.GetPointData().SetScalars(scalars)
    set_volume_node_geometry(oriented, image)
    return oriented


def image_from_oriented_image(oriented, reference=None) -> sitk.Image:
    """A SimpleITK image from a ``vtkOrientedImageData`` (what the Segment Editor hands an effect), same grid.

    The Segment Editor's images (``sourceVolumeImageData()``, ``selectedSegmentLabelmap()``) are in the
    segmentation's geometry, with any parent transforms applied, and their extent need not start at 0: the
    first voxel is placed where the image-to-world matrix puts the extent's lower corner.

    Args:
        oriented: the ``vtkOrientedImageData``.
        reference: another ``vtkOrientedImageData``; when given, ``oriented`` is first resampled (nearest
            neighbour, Slicer's ``vtkOrientedImageDataResample``) onto its geometry and extent, so that e.g. a
            segment's labelmap lands voxel for voxel on the source volume's image.

    Returns:
        A 3D image of the voxel type; origin and direction in LPS, spacing in mm.

    Raises:
        ParameterError: an empty image (no voxels) or several values per voxel.
    """
    if reference is not None:
        resampled = slicer.vtkOrientedImageData()
        if not slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
                oriented, reference, resampled, False, False):
            raise ParameterError("Slicer could not resample the segment onto the source volume's grid.")
        oriented = resampled
    extent = oriented.GetExtent()
    size = [extent[1] - extent[0] + 1, extent[3] - extent[2] + 1, extent[5] - extent[4] + 1]
    if min(size) < 1 or oriented.GetPointData().GetScalars() is None:
        raise ParameterError("the image holds no voxels (an empty segment or volume).")
    if oriented.GetNumberOfScalarComponents() != 1:
        raise ParameterError(f"the image has {oriented.GetNumberOfScalarComponents()} values per voxel; one is needed.")
    image_to_world = vtk.vtkMatrix4x4()
    oriented.GetImageToWorldMatrix(image_to_world)
    matrix = np.array([[image_to_world.GetElement(row, column) for column in range(4)] for row in range(4)])
    spacing = np.asarray(oriented.GetSpacing(), dtype=float)
    directions_ras = matrix[:3, :3] / spacing
    first_ras = matrix[:3, :3] @ np.array([extent[0], extent[2], extent[4]], dtype=float) + matrix[:3, 3]
    scalars = vtk.util.numpy_support.vtk_to_numpy(oriented.GetPointData().GetScalars())
    image = sitk.GetImageFromArray(np.array(scalars, copy=True).reshape(size[::-1]))
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in LPS_TO_RAS @ first_ras))
    image.SetDirection(tuple(float(d) for d in (LPS_TO_RAS @ directions_ras).ravel()))
    return image
