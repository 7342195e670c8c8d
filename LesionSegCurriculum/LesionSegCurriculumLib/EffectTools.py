"""What the "LesionSeg refine" Segment Editor effect computes, without Qt.

The effect (``SegmentEditorEffect.py``) takes the editor's own images of the source volume and of the selected
segment (``sourceVolumeImageData()``, ``selectedSegmentLabelmap()``: the segmentation's geometry, transforms
applied), calls :func:`refine_labelmap`, and hands the returned labelmap to the editor with
``modifySelectedSegmentByLabelmap``, so that the editor's masking settings (editable area, overwriting
other segments) and its undo apply as for any built-in effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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


def refine_labelmap(source_image_data, segment_labelmap, tool: str, parameters: dict[str, Any] | None = None,
                    *, segment_name: str = "the selected segment") -> EffectResult:
    """Run a refinement tool on the Segment Editor's own images of the source volume and the selected segment.

    The editor gives an effect its source volume as ``sourceVolumeImageData()`` and the selected segment as
    ``selectedSegmentLabelmap()``: both ``vtkOrientedImageData`` in the segmentation's geometry with every parent
    transform applied, which the volume node's own grid is not. The segment is resampled onto the source
    image (nearest neighbour), the tool runs there, and the result comes back on that grid.

    Args:
        source_image_data: the editor's source volume image (``vtkOrientedImageData``).
        segment_labelmap: the selected segment's labelmap (``vtkOrientedImageData``, any extent).
        tool: one of :data:`EFFECT_TOOLS`.
        parameters: the tool's parameters (defaults: the tools' single default set).
        segment_name: the segment's name, for messages only (segments are found by ID, never by name).

    Returns:
        The new segment as a labelmap on the source image's grid, and the added/removed volume.

    Raises:
        LesionSegError: an unknown tool, an empty segment, or a tool's refusal (one sentence).
    """
    import numpy as np
    import SimpleITK as sitk

    from lesionseg.errors import ParameterError
    from lesionseg.mrml import image_from_oriented_image, oriented_image_from_image
    from lesionseg.refine.tools import call_tool

    if tool not in EFFECT_TOOLS:
        raise ParameterError(f"unknown refinement tool {tool!r}; choose among {', '.join(EFFECT_TOOLS)}.")
    if source_image_data is None:
        raise ParameterError("the Segment Editor has no source volume; choose one above the segment list.")
    image = image_from_oriented_image(source_image_data)
    labels = image_from_oriented_image(segment_labelmap, reference=source_image_data)
    mask = sitk.Cast(labels > 0, sitk.sitkUInt8)
    before = sitk.GetArrayFromImage(mask) != 0
    if not before.any():
        raise ParameterError(f"{segment_name} is empty; draw the lesion roughly first, then refine it.")
    details: dict[str, Any] = {}
    result = call_tool(tool, image, mask, parameters=parameters, modality=guess_modality(image), details=details)
    after = sitk.GetArrayFromImage(result) != 0
    voxel_ml = float(np.prod(result.GetSpacing())) / 1000.0
    return EffectResult(oriented_image_from_image(result), result, float(np.count_nonzero(after & ~before) * voxel_ml),
                        float(np.count_nonzero(before & ~after) * voxel_ml), details)


def refine_segment(segmentation_node, segment_id: str, source_volume, tool: str,
                   parameters: dict[str, Any] | None = None) -> EffectResult:
    """:func:`refine_labelmap` on a segment given by its ID and a volume node (scripts; no Segment Editor).

    The images are made as the editor makes them: the segment's binary labelmap and the volume's voxels with
    the volume's parent transforms applied (Slicer's Segmentations logic).

    Raises:
        LesionSegError: no segment with that ID, or as :func:`refine_labelmap`.
    """
    import slicer

    from lesionseg.errors import ParameterError

    segment = segmentation_node.GetSegmentation().GetSegment(segment_id or "")
    if segment is None:
        raise ParameterError(f"the segmentation '{segmentation_node.GetName()}' has no segment with ID "
                             f"{segment_id!r}; select a segment in the list.")
    from lesionseg.mrml import segment_labelmap

    # both in world coordinates (linear parent transforms applied), as the editor's images are in one frame
    source = slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode(source_volume)
    labelmap = segment_labelmap(segmentation_node, segment_id, apply_parent_transform=True)
    return refine_labelmap(source, labelmap, tool, parameters, segment_name=f"the segment '{segment.GetName()}'")


@dataclass
class EffectOutcome:
    """How one Apply of the effect ended: the result, or the sentence to show (nothing ends silently).

    Attributes:
        result: the refined segment, None when it failed.
        message: for the effect's status line; on failure, the sentence for the error dialog too.
        failed: True when the segment must not be modified.
        details: on an unexpected error, its traceback (for the dialog's details).
    """

    result: EffectResult | None
    message: str
    failed: bool
    details: str = ""


#: Python distribution that provides a module the refine tools import (for the sentence of a missing one).
MODULE_DISTRIBUTIONS = {"skimage": "scikit-image", "SimpleITK": "SimpleITK", "scipy": "scipy", "monai": "monai",
                        "torch": "torch", "lesionseg": "lesionseg"}


def apply_effect(refine: Callable[[], EffectResult],
                 ensure_dependencies: Callable[[], tuple[bool, str]] | None = None) -> EffectOutcome:
    """Check the dependencies, refine, and turn every way of failing into one sentence for the user.

    Args:
        refine: computes the refined segment (e.g. a call of :func:`refine_labelmap`).
        ensure_dependencies: the panels' dependency check (it asks before installing), returning
            ``(ok, reason)``; None skips it.

    Returns:
        The :class:`EffectOutcome`; it never raises for a failure of the refinement itself.
    """
    import traceback

    if ensure_dependencies is not None:
        try:
            ok, reason = ensure_dependencies()
        except Exception as error:  # an installer's own failure must reach the user too
            return EffectOutcome(None, f"LesionSeg could not check its Python packages ({error}).", True,
                                 traceback.format_exc())
        if not ok:
            return EffectOutcome(None, reason or "LesionSeg's Python packages are not installed.", True)
    try:
        result = refine()
    except ImportError as error:
        module = (getattr(error, "name", None) or "").split(".")[0]
        package = MODULE_DISTRIBUTIONS.get(module, module or "a package")
        return EffectOutcome(None, f"LesionSeg refine needs the Python package {package}, which cannot be imported "
                                   f"({error}); open LesionSeg Inference and click Apply to install its packages.",
                             True, traceback.format_exc())
    except Exception as error:
        from lesionseg.errors import LesionSegError

        if isinstance(error, LesionSegError):
            text = str(error).strip()
            return EffectOutcome(None, text[:1].upper() + text[1:], True)
        return EffectOutcome(None, f"LesionSeg refine failed unexpectedly ({type(error).__name__}: {error}); "
                                   "the details show where.", True, traceback.format_exc())
    return EffectOutcome(result, result.message, False)
