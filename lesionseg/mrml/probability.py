"""Lesion probability maps as scalar volumes shown with a perceptual colour map over 0..1.

The application loads an "Inferno" colour table from its colour files; that one is used when the scene
has it. Otherwise (slicer-core has no colour files, and older scenes may lack it) a procedural colour
node named :data:`PROBABILITY_COLOR_NAME` is made once per scene from nine control points of
matplotlib's inferno map (black, purple, red, orange, pale yellow), linear in between.
"""

from __future__ import annotations

import SimpleITK as sitk
import vtk

from lesionseg.mrml.hierarchy import place_beside
from lesionseg.mrml.volumes import volume_node_from_image

#: Names of colour nodes preferred for probabilities, in order, when the scene has them.
PREFERRED_COLOR_NAMES: tuple[str, ...] = ("Inferno",)
PROBABILITY_COLOR_NAME = "LesionSeg probability"
#: (probability, R, G, B) control points, sampled from matplotlib's inferno colour map.
INFERNO_POINTS: tuple[tuple[float, float, float, float], ...] = (
    (0.000, 0.001, 0.000, 0.014),
    (0.125, 0.129, 0.047, 0.291),
    (0.250, 0.342, 0.062, 0.429),
    (0.375, 0.541, 0.135, 0.415),
    (0.500, 0.736, 0.216, 0.330),
    (0.625, 0.894, 0.353, 0.194),
    (0.750, 0.978, 0.558, 0.035),
    (0.875, 0.975, 0.798, 0.206),
    (1.000, 0.988, 0.998, 0.645),
)


def _color_node_named(scene, name: str):
    nodes = scene.GetNodesByName(name)
    for index in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(index)
        if node.IsA("vtkMRMLColorNode"):
            return node
    return None


def probability_color_node(scene):
    """The colour node for probability maps: the scene's "Inferno" if present, else LesionSeg's own.

    Args:
        scene: the MRML scene (LesionSeg's procedural colour node is added to it once and reused).

    Returns:
        A ``vtkMRMLColorNode``.
    """
    for name in PREFERRED_COLOR_NAMES + (PROBABILITY_COLOR_NAME,):
        node = _color_node_named(scene, name)
        if node is not None:
            return node
    node = scene.AddNewNodeByClass("vtkMRMLProceduralColorNode", PROBABILITY_COLOR_NAME)
    node.SetAttribute("Category", "LesionSeg")
    transfer = vtk.vtkColorTransferFunction()
    for point in INFERNO_POINTS:
        transfer.AddRGBPoint(*point)
    node.SetAndObserveColorTransferFunction(transfer)
    return node


def probability_volume_node(scene, probability: sitk.Image, *, name: str = "Lesion probability",
                            reference_volume=None, color_node=None, node=None):
    """Add a scalar volume node showing a lesion probability map (values 0..1) with a colour map.

    Args:
        scene: the MRML scene.
        probability: per-voxel lesion probability in 0..1 (float), on the input volume's grid.
        name: name of a new node.
        reference_volume: the input volume: the node takes its parent transform and is placed in its study.
        color_node: colour node to use (default :func:`probability_color_node`).
        node: an existing scalar volume node to fill instead of adding one.

    Returns:
        The scalar volume node, its display set to the colour map with window 1 and level 0.5 (fixed,
        so 0 and 1 are the ends of the colour map whatever the values present).
    """
    node = volume_node_from_image(scene, probability, name, node=node)
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID((color_node or probability_color_node(scene)).GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
    if reference_volume is not None:
        node.SetAndObserveTransformNodeID(reference_volume.GetTransformNodeID())
    place_beside(scene, node, reference_volume)
    return node
