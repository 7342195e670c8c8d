"""MRI bias-field correction with SimpleITK's N4 (Tustison et al. 2010), inside the brain.

MRI intensities vary slowly over the head by tens of percent (the receive coil's bias field). A lesion that
is 15-30 % brighter than white matter is then no brighter than healthy tissue on the other side of the
brain, and a network sees bright healthy tissue as lesion. N4 fits a smooth multiplicative field to the
brain's intensities and divides it out.

The field is fitted on the prepared slice stack (axes (slice, row, column), the prepared grid), inside the
brain, on a copy shrunk by ``shrink`` in-plane, and then evaluated on the full stack; every voxel (inside
and outside the brain) is divided by it. CT has no bias field and is never corrected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.preprocess.config import BIAS_CORRECTIONS  # noqa: F401  (the names PrepareConfig accepts)

#: N4 defaults: fitting levels and iterations per level, in-plane shrink factor of the fitted copy
N4_ITERATIONS = (50, 50, 50)
N4_SHRINK = 2


def correct_bias_n4(stack: sitk.Image, brain: sitk.Image, *, shrink: int = N4_SHRINK,
                    iterations: tuple[int, ...] = N4_ITERATIONS) -> tuple[sitk.Image, dict[str, Any]]:
    """Divide an MRI stack by the N4 bias field fitted inside the brain.

    Args:
        stack: float image ``(slices, S, S)`` of one MRI channel on the prepared grid.
        brain: uint8 brain mask on the same grid.
        shrink: in-plane shrink factor of the copy N4 fits (the field is smooth; 2 keeps it fast).
        iterations: iterations per fitting level (one level per entry).

    Returns:
        The corrected float32 image (same grid) and a record: ``{"kind": "n4", "field_range": [min, max]}``,
        the fitted field's range inside the brain (1.0 = no correction).
    """
    brain_array = sitk.GetArrayViewFromImage(brain) > 0
    values = sitk.GetArrayFromImage(stack).astype(np.float32)
    if brain_array.sum() < 64:  # too few voxels to fit a field: leave the image alone
        return sitk.Cast(stack, sitk.sitkFloat32), {"kind": "n4", "field_range": [1.0, 1.0], "skipped": True}
    # N4 works on the logarithm: intensities must be positive inside the mask. Shift so that the brain's
    # lowest value is 1 % of its median (MRI magnitudes are >= 0; a shift keeps the ordering).
    brain_values = values[brain_array]
    floor = 0.01 * float(np.median(np.abs(brain_values))) or 1e-3
    shift = max(0.0, floor - float(brain_values.min()))
    positive = sitk.GetImageFromArray(values + shift)
    positive.CopyInformation(stack)
    mask = sitk.Cast(brain, sitk.sitkUInt8)
    factors = [shrink, shrink, 1]  # SimpleITK order (column, row, slice): the slices are not shrunk
    small = sitk.Shrink(positive, factors)
    small_mask = sitk.Shrink(mask, factors)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(iterations))
    n4.Execute(small, small_mask)
    field = sitk.GetArrayFromImage(sitk.Exp(n4.GetLogBiasFieldAsImage(positive))).astype(np.float32)
    corrected = (values + shift) / field - shift
    result = sitk.GetImageFromArray(corrected.astype(np.float32))
    result.CopyInformation(stack)
    inside = field[brain_array]
    return result, {"kind": "n4", "field_range": [float(inside.min()), float(inside.max())]}
