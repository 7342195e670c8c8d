"""Clean-up of a lesion mask: remove small islands, keep the largest components, fill holes, smooth.

Steps, in this order, each skipped when its parameter says so:

1. islands smaller than ``min_island_mm3`` are removed, and with ``keep_largest`` N > 0 only the N largest
   components stay: Slicer's ``vtkITKIslandMath`` (the Islands effect; 6-connectivity, sizes in voxels
   from the voxel volume) or SimpleITK's ConnectedComponent + RelabelComponent;
2. holes are filled: SimpleITK's BinaryFillhole in 3D, then in each slice across the thickest axis (on
   thick-slice scans a hole often opens into the slice above or below and is then not a hole in 3D);
   Slicer's editor has no hole-filling effect of its own;
3. ``smoothing_mm`` > 0 applies a median filter with that kernel size in mm (an odd number of voxels per
   axis, at least one): VTK's ``vtkImageMedian3D`` as in Slicer's Smoothing effect, or SimpleITK's
   BinaryMedian.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import ParameterError
from lesionseg.refine import morphology, slicer_algorithms
from lesionseg.refine._checks import array_spacing, check_mm, mask_array, to_mask_image
from lesionseg.refine.morphology import components

#: Defaults: remove specks under 20 mm³ (a ball of 3.4 mm diameter), fill holes, no smoothing, keep all.
DEFAULTS = {"min_island_mm3": 20.0, "fill_holes": True, "smoothing_mm": 0.0, "keep_largest": 0}


def _median(mask: np.ndarray, spacing: np.ndarray, size_mm: float, backend: str) -> np.ndarray:
    # kernel: the odd number of voxels closest to size_mm along each axis (at least 1), as Slicer does
    kernel = [max(1, 2 * int(math.floor(size_mm / s / 2.0)) + 1) for s in spacing]  # (z, y, x)
    if kernel == [1, 1, 1]:
        return mask
    if backend == "slicer":
        import vtk

        median = vtk.vtkImageMedian3D()
        median.SetInputData(slicer_algorithms.to_vtk(mask.astype(np.uint8), spacing))
        median.SetKernelSize(kernel[2], kernel[1], kernel[0])
        median.Update()
        return slicer_algorithms.from_vtk(median.GetOutput()) != 0
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.BinaryMedian(image, [k // 2 for k in kernel[::-1]], foregroundValue=1,
                                                    backgroundValue=0)) != 0


def clean_up(mask: sitk.Image, *, min_island_mm3: float = DEFAULTS["min_island_mm3"],
             fill_holes: bool = DEFAULTS["fill_holes"], smoothing_mm: float = DEFAULTS["smoothing_mm"],
             keep_largest: int = DEFAULTS["keep_largest"], backend: str = "auto",
             details: dict | None = None) -> sitk.Image:
    """Clean a lesion mask up (see the module docstring); the image is not needed.

    Args:
        mask: 0/1 lesion mask.
        min_island_mm3: components smaller than this volume are removed (0 keeps all).
        fill_holes: fill enclosed holes (3D and slice by slice across the thickest axis).
        smoothing_mm: median filter kernel size in mm (0 = none).
        keep_largest: keep only the N largest components (0 = all).
        backend: ``"auto"``, ``"slicer"`` or ``"sitk"``.
        details: when a dict is given, it receives the voxel counts and the backend used.

    Returns:
        uint8 0/1 mask on the same grid.

    Raises:
        ParameterError: an empty mask or a bad parameter.
    """
    min_island_mm3 = check_mm(min_island_mm3, "min_island_mm3")
    smoothing_mm = check_mm(smoothing_mm, "smoothing_mm")
    if isinstance(keep_largest, bool) or not isinstance(keep_largest, (int, np.integer)) or keep_largest < 0:
        raise ParameterError(f"keep_largest must be a whole number >= 0 (0 keeps all), not {keep_largest!r}.")
    used = slicer_algorithms.resolve_backend(backend)
    array = mask_array(mask)
    spacing = array_spacing(mask)
    voxel_mm3 = float(np.prod(spacing))
    min_voxels = int(math.ceil(min_island_mm3 / voxel_mm3)) if min_island_mm3 > 0 else 0
    result = array
    islands_before = 0
    if min_voxels > 1 or keep_largest:
        labels = components(array, used)
        islands_before = int(labels.max())
        keep = labels > 0
        if min_voxels > 1:
            sizes = np.bincount(labels.ravel())
            keep &= sizes[labels] >= min_voxels
        if keep_largest:
            keep &= labels <= keep_largest  # labels are ordered by decreasing size
        result = keep
    if fill_holes and result.any():
        result = morphology.fill_holes(result, spacing)  # the parameter fill_holes shadows the function
    if smoothing_mm > 0 and result.any():
        result = _median(result, spacing, smoothing_mm, used)
    info = details if details is not None else {}
    info.update({"tool": "cleanup", "backend": used, "min_island_voxels": min_voxels,
                 "components_before": islands_before,
                 "added_voxels": int(np.count_nonzero(result & ~array)),
                 "removed_voxels": int(np.count_nonzero(array & ~result))})
    return to_mask_image(result, mask)
