"""One entry point for every tool by name, whoever holds the image (a dataset's case or Slicer's editor)."""

from __future__ import annotations

from typing import Any, Callable

import SimpleITK as sitk

from lesionseg.errors import ParameterError
from lesionseg.refine.tools.cleanup import clean_up
from lesionseg.refine.tools.fill_between import fill_between_slices
from lesionseg.refine.tools.grow import grow_from_seeds
from lesionseg.refine.tools.intensity import refine_intensity
from lesionseg.refine.tools.transfer import carry_mask

#: the command-line names of the tools and their functions
TOOLS: dict[str, Callable[..., sitk.Image]] = {
    "intensity": refine_intensity,
    "grow": grow_from_seeds,
    "cleanup": clean_up,
    "fill-between": fill_between_slices,
    "transfer": carry_mask,
}
#: tools that look at the mask only, not at the image
MASK_ONLY_TOOLS = ("cleanup", "fill-between")


def call_tool(tool: str, image: Callable[[], sitk.Image] | sitk.Image | None, mask: sitk.Image | None, *,
              parameters: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
              brain: sitk.Image | None = None, modality: str = "mri",
              details: dict[str, Any] | None = None) -> sitk.Image:
    """Run the tool ``tool`` on a mask (and the scan it was drawn on); returns the new 0/1 mask.

    Args:
        tool: one of :data:`TOOLS`.
        image: the scan, or a function that reads it (not called by the mask-only tools).
        mask: the current mask, 0/1 on the scan's grid (None for ``transfer``, or ``grow`` from strokes).
        parameters: the tool's keyword parameters.
        inputs: ``lesion_seeds``/``background_seeds`` (grow), ``source_image``/``source_mask`` (transfer).
        brain: the brain mask on the scan's grid (None: the tools extract it).
        modality: ``mri`` or ``ct``.
        details: filled with what the tool reports.

    Raises:
        ParameterError: an unknown tool (and whatever the tool raises for bad input).
    """
    if tool not in TOOLS:
        raise ParameterError(f"unknown refinement tool {tool!r}; choose among {', '.join(TOOLS)}.")
    function = TOOLS[tool]
    parameters = dict(parameters or {})
    inputs = dict(inputs or {})
    if tool in MASK_ONLY_TOOLS:
        return function(mask, details=details, **parameters)
    scan = image() if callable(image) else image
    if tool == "transfer":
        return function(inputs["source_mask"], inputs["source_image"], scan, details=details, **parameters)
    common = {"brain": brain, "modality": modality, "details": details}
    if tool == "grow":
        return function(scan, mask, lesion_seeds=inputs.get("lesion_seeds"),
                        background_seeds=inputs.get("background_seeds"), **common, **parameters)
    return function(scan, mask, **common, **parameters)
