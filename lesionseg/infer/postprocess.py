"""From probabilities to a lesion mask: threshold, small components removed, holes filled, inside the brain.

The work after the threshold is done on the box that holds the candidate voxels (plus one voxel), then
pasted back: on a 512 x 512 x 300 CT, filling holes and labelling components over the whole grid cost
seconds for lesions that fill a few thousandths of it. The box changes nothing: every candidate is inside it,
and its one-voxel shell of background connects, as outside it, to the image border.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lesionseg.io.geometry import Geometry, crop_to_box, paste_into

#: components smaller than this are removed by default (mm³): a few voxels of noise, not a lesion
DEFAULT_MIN_LESION_MM3 = 10.0


def foreground_box(mask: sitk.Image, margin: int = 1) -> tuple[list[int], list[int]] | None:
    """The box holding every non-zero voxel of ``mask``, widened by ``margin`` voxels and clipped to the grid.

    Returns:
        ``(index, size)`` (x, y, z) in voxels, or None when the mask is empty.
    """
    voxels = sitk.GetArrayViewFromImage(mask)  # (z, y, x)
    low, high = [], []
    for axis in (2, 1, 0):  # x, y, z
        others = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(np.any(voxels, axis=others))
        if present.size == 0:
            return None
        low.append(max(int(present[0]) - margin, 0))
        high.append(min(int(present[-1]) + margin, voxels.shape[axis] - 1))
    return low, [h - l + 1 for l, h in zip(low, high)]


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
    whole = sitk.Cast(probabilities >= float(threshold), sitk.sitkUInt8)
    box = foreground_box(whole)
    if box is None:
        return whole
    mask = crop_to_box(whole, box)
    if brain is not None:
        mask = sitk.And(mask, sitk.Cast(crop_to_box(brain, box) > 0, sitk.sitkUInt8))
    if fill_holes:
        mask = sitk.BinaryFillhole(mask, fullyConnected=False, foregroundValue=1)
    if min_lesion_mm3 > 0:
        voxel_mm3 = float(np.prod(mask.GetSpacing()))
        labels = sitk.ConnectedComponent(mask, True)
        minimum_voxels = int(np.ceil(min_lesion_mm3 / voxel_mm3))
        labels = sitk.RelabelComponent(labels, minimumObjectSize=max(minimum_voxels, 1), sortByObjectSize=True)
        mask = sitk.Cast(labels > 0, sitk.sitkUInt8)
    return paste_into(mask, Geometry.of(whole), box)


def keep_confirmed_lesions(mask: sitk.Image, confirming: sitk.Image, level: float) -> sitk.Image:
    """Keep the lesions of ``mask`` that a second probability map confirms.

    Args:
        mask: 0/1 lesion mask (uint8), any grid.
        confirming: float probabilities on the same grid, e.g. the mean of several readings.
        level: a connected lesion (26-connectivity) is kept when ``confirming`` reaches this value at one of its
            voxels at least.

    Returns:
        A uint8 0/1 mask on the same grid: the confirmed lesions whole, nothing of the others.
    """
    labels = sitk.ConnectedComponent(sitk.Cast(mask > 0, sitk.sitkUInt8), True)
    statistics = sitk.LabelStatisticsImageFilter()
    statistics.Execute(confirming, labels)
    # the probabilities are float32: 0.45 stored is 0.4499999881, so compare with a margin far below any meaningful
    # difference of probability and above float32's resolution
    confirmed = [label for label in statistics.GetLabels()
                 if label and statistics.GetMaximum(label) >= level - 1e-6]
    kept = sitk.GetImageFromArray(np.isin(sitk.GetArrayViewFromImage(labels), confirmed).astype(np.uint8))
    kept.CopyInformation(mask)
    return kept
