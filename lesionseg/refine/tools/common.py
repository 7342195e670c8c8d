"""What every refinement tool does first: check the inputs, find the brain, crop to the lesion's region."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lesionseg.refine._checks import array_spacing, bounding_box, image_array, mask_array, same_grid

MODALITIES = ("mri", "ct")
#: default Gaussian smoothing (sigma, mm) before deciding from intensities, per modality: a CT lesion's few
#: Hounsfield units of contrast need more noise averaged away than an MRI lesion's tens of percent
SMOOTHING_MM = {"mri": 0.7, "ct": 2.0}


@dataclass
class Region:
    """A tool's inputs as arrays, cropped to the box where it can change anything.

    Attributes:
        image, mask, brain: float32 / bool / bool ``(z, y, x)`` crops.
        spacing: mm ``(z, y, x)``.
        box: the crop's slices in the full arrays.
        full_mask: the whole mask (bool), where the result is pasted back.
    """

    image: np.ndarray
    mask: np.ndarray
    brain: np.ndarray
    spacing: np.ndarray
    box: tuple[slice, ...]
    full_mask: np.ndarray

    def paste(self, cropped: np.ndarray) -> np.ndarray:
        """The full mask with the box replaced by ``cropped``."""
        result = self.full_mask.copy()
        result[self.box] = cropped
        return result


def brain_array(image: sitk.Image, brain: sitk.Image | None, modality: str) -> np.ndarray:
    """The brain as a bool array: the given mask (checked against the image's grid) or extracted.

    Raises:
        GeometryError: a brain mask on another grid.
        PreprocessingError: no brain found in the image (give one).
    """
    if brain is not None:
        same_grid(image, brain, "the brain mask")
        return mask_array(brain, "the brain mask", allow_empty=False)
    from lesionseg.preprocess.brain import extract_brain

    return sitk.GetArrayFromImage(extract_brain(image, modality, method="classical")) != 0


def prepare_region(image: sitk.Image, mask: sitk.Image, brain: sitk.Image | None, modality: str,
                   padding_mm: float, *, mask_name: str = "the mask") -> Region:
    """Check ``image`` and ``mask`` (same grid, mask not empty), get the brain and crop around the mask.

    Args:
        image: the scan.
        mask: the current lesion mask on the scan's grid.
        brain: the brain mask on that grid, or None to extract it (classical method for ``modality``).
        modality: ``"mri"`` or ``"ct"`` (brain extraction only).
        padding_mm: margin around the mask's bounding box that the tool may look at.
        mask_name: how the mask is named in messages.

    Raises:
        GeometryError, ParameterError, PreprocessingError: as the checks say.
    """
    same_grid(image, mask, mask_name)
    full_mask = mask_array(mask, mask_name)
    pixels = image_array(image)
    brain_full = brain_array(image, brain, modality)
    spacing = array_spacing(image)
    box = bounding_box(full_mask, padding_mm, spacing)
    return Region(pixels[box], full_mask[box], brain_full[box], spacing, box, full_mask)
