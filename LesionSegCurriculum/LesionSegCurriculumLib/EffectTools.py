"""What the "LesionSeg refine" Segment Editor effect computes, without Qt.

The effect (``SegmentEditorEffect.py``) takes the editor's source volume and selected segment, calls
:func:`refine_segment`, and hands the returned labelmap to the editor with
``modifySelectedSegmentByLabelmap``, so that the editor's masking settings (editable area, overwriting
other segments) and its undo apply as for any built-in effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: tools offered by the effect: name -> (label, help)
EFFECT_TOOLS = {
    "intensity": ("Intensity-guided boundary",
                  "Re-decide the voxels in a band around the segment's boundary: keep or add those whose intensity "
                  "fits the lesion better than the surrounding healthy tissue (FLAIR/DWI bright, CT dark)."),
    "grow": ("Grow from the segment",
             "GrowCut on the image: lesion seeds from the eroded segment, background seeds outside a margin."),
    "cleanup": ("Clean up",
                "Remove islands smaller than a size, fill holes, keep the largest components."),
    "fill-between": ("Fill between slices",
                     "Interpolate the lesion between the slices where it was drawn (e.g. every third slice)."),
}
#: below this first percentile (HU), a volume is taken for CT (air is -1000 HU; MRI has no negative tissue)
CT_AIR_LEVEL = -500.0


def guess_modality(image) -> str:
    """``ct`` when the volume holds air-like Hounsfield units, else ``mri`` (for brain extraction and polarity)."""
    import numpy as np
    import SimpleITK as sitk

    values = sitk.GetArrayViewFromImage(image)
    return "ct" if float(np.percentile(values, 1)) < CT_AIR_LEVEL else "mri"


@dataclass
class EffectResult:
    """A refined segment: the labelmap for the editor and what changed."""

    labelmap: Any  # vtkOrientedImageData on the source volume's grid
    mask: Any  # the same voxels as a SimpleITK image
    added_ml: float
    removed_ml: float
    details: dict

    @property
    def message(self) -> str:
        """One line for the effect's status."""
        if not self.added_ml and not self.removed_ml:
            reason = self.details.get("reason")
            return "No change" + (f": {reason}" if reason else ".")
        return f"Added {self.added_ml:.2f} mL, removed {self.removed_ml:.2f} mL."


def refine_segment(scene, segmentation_node, segment_name: str, source_volume, tool: str,
                   parameters: dict[str, Any] | None = None) -> EffectResult:
    """Run a refinement tool on one segment of a segmentation, over the source volume.

    Args:
        scene: the MRML scene.
        segmentation_node: the segmentation being edited.
        segment_name: the selected segment.
        source_volume: the editor's source volume (the scan).
        tool: one of :data:`EFFECT_TOOLS`.
        parameters: the tool's parameters (defaults: the tools' single default set).

    Returns:
        The new segment as a labelmap on the source volume's grid, and the added/removed volume.

    Raises:
        LesionSegError: an unknown tool, an empty segment, or a tool's refusal (one sentence).
    """
    import numpy as np
    import SimpleITK as sitk

    from lesionseg.errors import ParameterError
    from lesionseg.mrml import image_from_volume_node, mask_from_segmentation_node, oriented_image_from_image
    from lesionseg.refine.tools import call_tool

    if tool not in EFFECT_TOOLS:
        raise ParameterError(f"unknown refinement tool {tool!r}; choose among {', '.join(EFFECT_TOOLS)}.")
    mask = mask_from_segmentation_node(scene, segmentation_node, segment_name, reference_volume=source_volume)
    before = sitk.GetArrayFromImage(mask) != 0
    if not before.any():
        raise ParameterError(f"the segment '{segment_name}' is empty; draw the lesion roughly first, then refine it.")
    image = image_from_volume_node(source_volume)
    details: dict[str, Any] = {}
    result = call_tool(tool, image, mask, parameters=parameters, modality=guess_modality(image), details=details)
    after = sitk.GetArrayFromImage(result) != 0
    voxel_ml = float(np.prod(result.GetSpacing())) / 1000.0
    return EffectResult(oriented_image_from_image(result), result, float(np.count_nonzero(after & ~before) * voxel_ml),
                        float(np.count_nonzero(before & ~after) * voxel_ml), details)
