"""Placing result nodes in the subject hierarchy beside the volume they were computed from.

In the application every data node gets a subject hierarchy item as it is added to the scene (through
the subject hierarchy plugins, which need Qt). Without the application (slicer-core) no item is created
automatically, so an item is created here when the node has none; the volume's item must exist for the
result to land in its study, otherwise the result goes to the top level of the scene.
"""

from __future__ import annotations

import slicer


def subject_hierarchy(scene):
    """The scene's subject hierarchy node (created when the scene has none yet)."""
    return slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)


def place_beside(scene, node, reference_node) -> int:
    """Put ``node``'s subject hierarchy item under the parent of ``reference_node``'s item (its study).

    Args:
        scene: the MRML scene holding both nodes.
        node: the result node (segmentation, probability volume, table, chart).
        reference_node: the input volume; None or a volume without an item puts the result at the top level.

    Returns:
        The subject hierarchy item ID of ``node`` (0 when the scene has no subject hierarchy).
    """
    hierarchy = subject_hierarchy(scene)
    if hierarchy is None:
        return 0
    scene_item = hierarchy.GetSceneItemID()
    parent = scene_item
    if reference_node is not None:
        reference_item = hierarchy.GetItemByDataNode(reference_node)
        if reference_item:
            parent = hierarchy.GetItemParent(reference_item) or scene_item
    item = hierarchy.GetItemByDataNode(node)
    if not item:
        item = hierarchy.CreateItem(parent, node)
    elif hierarchy.GetItemParent(item) != parent:
        hierarchy.SetItemParent(item, parent)
    return item
