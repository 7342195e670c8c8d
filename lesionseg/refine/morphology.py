"""Spacing-aware mask morphology for the refinement tools: distances, margins in mm, components.

Arrays are numpy ``(z, y, x)``, spacing in mm in the same order. Margins use Slicer's
``vtkITKImageMargin`` when the backend is ``"slicer"`` and SimpleITK's signed Maurer distance map
otherwise; the internal distances a tool uses to define bands (:func:`inside_distance_mm`,
:func:`outside_distance_mm`) are SciPy's exact Euclidean distance transform with the voxel spacing.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.refine import slicer_algorithms


def inside_distance_mm(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """For each voxel of ``mask``, the distance in mm to the nearest voxel outside it (0 outside).

    Voxels beyond the array's faces count as outside, so a mask touching the border is not "deep" there.
    """
    padded = np.pad(np.asarray(mask, dtype=bool), 1, constant_values=False)
    return ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]


def outside_distance_mm(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """For each voxel outside ``mask``, the distance in mm to the nearest mask voxel (0 inside)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(~mask, sampling=spacing)


def margin_mm(mask: np.ndarray, spacing: np.ndarray, distance_mm: float, backend: str) -> np.ndarray:
    """Grow (``distance_mm`` > 0) or shrink (< 0) a mask by a distance in mm.

    Args:
        mask: bool ``(z, y, x)``.
        spacing: mm ``(z, y, x)``.
        distance_mm: signed margin.
        backend: ``"slicer"`` (``vtkITKImageMargin``, as Slicer's Margin effect) or ``"sitk"``.

    Returns:
        bool ``(z, y, x)``: grown = voxels whose centre lies within ``distance_mm`` of the mask; shrunk =
        mask voxels farther than ``|distance_mm|`` from the background.
    """
    mask = np.asarray(mask, dtype=bool)
    if distance_mm == 0 or not mask.any():
        return mask.copy()
    if backend == "slicer":
        return slicer_algorithms.margin(mask, spacing, distance_mm)
    source = mask if distance_mm > 0 else ~mask
    image = sitk.GetImageFromArray(source.astype(np.uint8))
    image.SetSpacing([float(s) for s in spacing[::-1]])
    # Signed Maurer distance: negative inside, positive outside, in mm with the image spacing.
    distance = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(image, insideIsPositive=False, squaredDistance=False,
                                                                   useImageSpacing=True))
    grown = distance <= abs(distance_mm) + 1e-6
    return grown if distance_mm > 0 else ~grown


def components(mask: np.ndarray, backend: str, *, min_voxels: int = 0) -> np.ndarray:
    """Connected components (6-connectivity, as Slicer's Islands effect) labelled 1, 2, ... by decreasing size.

    Uses ``vtkITKIslandMath`` for ``backend="slicer"``, SimpleITK's ConnectedComponent and
    RelabelComponent otherwise; components under ``min_voxels`` voxels get label 0.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.uint32)
    if backend == "slicer":
        return slicer_algorithms.island_labels(mask, min_voxels=min_voxels, fully_connected=False)
    labels = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)), False)
    relabelled = sitk.RelabelComponent(labels, minimumObjectSize=int(min_voxels), sortByObjectSize=True)
    return sitk.GetArrayFromImage(relabelled).astype(np.uint32)


def fill_holes(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """The mask with its enclosed holes filled, in 3D and then in each slice across the thickest axis.

    A hole that opens into the slice above or below (a thick slice, or an outline drawn slice by slice by an
    annotator or a 2D model, whose first and last slices are open rings) is not a hole in 3D; filled in its
    slice, it is. On isotropic grids the slices are the array's first axis (axial for an axial scan).

    Args:
        mask: bool ``(z, y, x)``.
        spacing: mm ``(z, y, x)``.

    Returns:
        bool ``(z, y, x)``: ``mask`` plus the background voxels it encloses (SimpleITK's BinaryFillhole,
        face-connected, in 3D; SciPy's binary_fill_holes in each slice).
    """
    mask = np.asarray(mask, dtype=bool)
    filled = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(mask.astype(np.uint8)),
                                                        fullyConnected=False, foregroundValue=1)) != 0
    axis = int(np.argmax(spacing))
    for index in range(filled.shape[axis]):
        plane = [slice(None)] * 3
        plane[axis] = index
        plane = tuple(plane)
        if filled[plane].any():
            filled[plane] = ndimage.binary_fill_holes(filled[plane])
    return filled


def keep_touching(candidate: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The connected components (26-connectivity) of ``candidate`` that share a voxel with ``anchor``."""
    candidate = np.asarray(candidate, dtype=bool)
    labels, count = ndimage.label(candidate, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return candidate
    touching = np.unique(labels[candidate & np.asarray(anchor, dtype=bool)])
    return np.isin(labels, touching[touching > 0])
