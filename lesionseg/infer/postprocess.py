"""From probabilities to a lesion mask: threshold, small components removed, holes filled, inside the brain."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

#: components smaller than this are removed by default (mm³): a few voxels of noise, not a lesion
DEFAULT_MIN_LESION_MM3 = 10.0


def lesion_mask(probabilities: sitk.Image, *, threshold: float = 0.5, min_lesion_mm3: float = DEFAULT_MIN_LESION_MM3,
                fill_holes: bool = True, brain: sitk.Image | None = None) -> sitk.Image:
    """Threshold a probability map and clean the result.

    Args:
        probabilities: float32 lesion probabilities in [0, 1].
        threshold: voxels with probability >= threshold are lesion.
        min_lesion_mm3: connected components (26-connectivity) smaller than this volume are removed.
        fill_holes: fill cavities enclosed in a lesion (3D).
        brain: when given, the lesion is kept inside this 0/1 mask.

    Returns:
        A uint8 0/1 mask on the same grid.
    """
    mask = sitk.Cast(probabilities >= float(threshold), sitk.sitkUInt8)
    if brain is not None:
        mask = sitk.And(mask, sitk.Cast(brain > 0, sitk.sitkUInt8))
    if fill_holes:
        mask = sitk.BinaryFillhole(mask, fullyConnected=False, foregroundValue=1)
    if min_lesion_mm3 > 0:
        voxel_mm3 = float(np.prod(mask.GetSpacing()))
        labels = sitk.ConnectedComponent(mask, True)
        minimum_voxels = int(np.ceil(min_lesion_mm3 / voxel_mm3))
        labels = sitk.RelabelComponent(labels, minimumObjectSize=max(minimum_voxels, 1), sortByObjectSize=True)
        mask = sitk.Cast(labels > 0, sitk.sitkUInt8)
    return mask
