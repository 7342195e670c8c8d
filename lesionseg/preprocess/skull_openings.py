"""The CT brain window cut where the skull is open (the foramen magnum), so that brain extraction stays in the
cranium.

Brain, CSF and the soft tissue of the neck all lie in the 0-100 HU window of the classical CT pipeline
(:mod:`lesionseg.preprocess.brain`), and at the skull base they touch with no bone between: the foramen
magnum, about 25-35 mm across, joins the intracranial CSF to the neck. The pipeline's reconstruction of an
eroded core then floods the neck and the mask grows by 300-1,000 mL (on the synthetic CT heads with a skull
base, Dice 0.71-0.89 against the intracranial truth; ``benchmarks/bench_ct_brain.py``).

The cut: the window's voxels deeper than ``CORE_DEPTH_MM`` inside it (a distance map in mm) are split at
every opening narrower than twice that depth; the largest such core is the cranium's (the neck within a head
CT's field of view holds less). The window is kept only within ``CORE_DEPTH_MM + REGROW_MARGIN_MM`` of that
core: on a convex cranium every voxel of the window lies within the depth of the core, the margin covers
the recesses between the petrous ridges and the skull's floor, and into an opening the mask reaches no
further than the margin. The distances are taken on a grid of about ``WORKING_SPACING_MM`` (block averages of
the window, at least half a block inside): the cut is a matter of centimetres, and a fine grid would pay
two distance maps over millions of voxels for nothing.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lesionseg.preprocess.coarse import shrink, shrink_factors

#: the core is the window's voxels deeper than this (mm): wider than the skull's openings (the foramen
#: magnum's inscribed radius is about 12-17 mm) ...
CORE_DEPTH_MM = 20.0
#: ... and the window is kept within the depth plus this margin (mm) of the core
REGROW_MARGIN_MM = 6.0
#: the spacing (mm) of the grid the distances are taken on
WORKING_SPACING_MM = 4.0


def _largest_component(mask: sitk.Image) -> sitk.Image:
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    return sitk.Cast(labels == 1, sitk.sitkUInt8)


def cut_at_skull_openings(window: sitk.Image) -> sitk.Image:
    """The part of a CT's brain window that belongs to the cranium (see the module docstring).

    Args:
        window: uint8 0/1, the voxels whose (median-filtered) HU lie in the brain window, any grid.

    Returns:
        The window without what lies beyond the skull's openings (uint8, ``window``'s grid), or the window
        itself when no voxel is that deep (a small or partial head).
    """
    factors = shrink_factors(window.GetSpacing(), WORKING_SPACING_MM, min_reduction=2, size=window.GetSize())
    small = window if factors is None else sitk.Cast(shrink(window, factors) >= 0.5, sitk.sitkUInt8)
    depth = sitk.SignedMaurerDistanceMap(small, insideIsPositive=True, squaredDistance=False, useImageSpacing=True)
    core = sitk.Cast(depth > CORE_DEPTH_MM, sitk.sitkUInt8)
    if not np.any(sitk.GetArrayViewFromImage(core)):
        return window
    reach = sitk.SignedMaurerDistanceMap(_largest_component(core), insideIsPositive=False, squaredDistance=False,
                                         useImageSpacing=True)
    near = sitk.Cast(reach <= CORE_DEPTH_MM + REGROW_MARGIN_MM, sitk.sitkUInt8)
    if factors is not None:  # back onto the window's grid; voxels past the last whole block are kept
        near = sitk.Resample(near, window, sitk.Transform(), sitk.sitkNearestNeighbor, 1, sitk.sitkUInt8)
    return sitk.Cast(window & near, sitk.sitkUInt8)
