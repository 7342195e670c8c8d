"""The mirrored-hemisphere difference: a channel minus its reflection about the mid-sagittal plane.

A one-sided lesion (a FLAIR hyperintensity, a CT hypodensity) differs from the healthy tissue at its mirror
position in the other hemisphere, whereas normal anatomy is nearly symmetric; CT stroke tools detect early
infarcts this way. For a normalised channel ``I`` on the prepared grid the difference is
``D(x) = I(x) - I(R x)``, with ``R`` the reflection about the plane that preparation found
(:mod:`lesionseg.preprocess.midplane`). It is large and of the lesion's sign inside a lesion, of the
opposite sign at the lesion's mirror image, and near zero elsewhere.

The reflection is a resampling with SimpleITK (``R`` as an affine transform, linear interpolation), not a
left-right flip of the slices: the prepared grid is only turned when the plane's angle exceeds
``PrepareConfig.min_rotation_deg`` (1 degree) and, unturned, its centre is snapped to the voxel lattice, so
a slice flip mirrors about a plane up to 1 degree and half a pixel away from the one found; 1 degree is
1.6 mm at the front of the brain, which a flip would double into a false difference along every edge.
The plane's normal lies in the axial plane, so ``R`` maps each prepared slice onto itself.

``D`` is set to 0 where the voxel or its mirror image lies outside the brain (it means nothing there and
would be dominated by the skull and the brain's edge).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.preprocess.grid import PreparedGrid
from lesionseg.preprocess.midplane import Midplane


def reflection_transform(midplane: Midplane) -> sitk.AffineTransform:
    """The reflection about ``midplane`` in LPS millimetres: ``x -> x - 2 ((x - p) . n) n``.

    Args:
        midplane: a point ``p`` on the plane and its unit normal ``n``.

    Returns:
        A SimpleITK affine transform (its own inverse).
    """
    normal = np.asarray(midplane.normal, dtype=np.float64)
    normal = normal / np.linalg.norm(normal)
    point = np.asarray(midplane.point, dtype=np.float64)
    transform = sitk.AffineTransform(3)
    transform.SetMatrix((np.eye(3) - 2.0 * np.outer(normal, normal)).ravel().tolist())
    transform.SetTranslation((2.0 * float(point @ normal) * normal).tolist())
    return transform


def reflect_stack(stack: np.ndarray, grid: PreparedGrid, midplane: Midplane, *, is_mask: bool = False) -> np.ndarray:
    """A prepared-grid volume reflected about the mid-plane, on the same grid.

    Args:
        stack: (Z, S, S) array on ``grid`` (axes slice, row, column).
        grid: the prepared grid.
        midplane: the plane (LPS).
        is_mask: a 0/1 mask (interpolated linearly and thresholded at 0.5), else float32 values.

    Returns:
        (Z, S, S): the value at the mirror image of each voxel (0 where the mirror image leaves the grid).
    """
    reference = grid.geometry.reference_image(sitk.sitkFloat32)
    image = sitk.GetImageFromArray(np.asarray(stack, dtype=np.float32))
    image.CopyInformation(reference)
    mirrored = sitk.GetArrayFromImage(sitk.Resample(image, reference, reflection_transform(midplane),
                                                    sitk.sitkLinear, 0.0, sitk.sitkFloat32))
    return (mirrored >= 0.5).astype(np.uint8) if is_mask else mirrored


def mirror_difference(stack: np.ndarray, brain: np.ndarray, grid: PreparedGrid, midplane: Midplane,
                      mirrored_brain: np.ndarray | None = None) -> np.ndarray:
    """One channel minus its reflection about the mid-plane, inside the brain and its mirror image.

    Args:
        stack: (Z, S, S) a normalised channel on the prepared grid.
        brain: (Z, S, S) the brain mask on the same grid (0/1).
        grid: the prepared grid.
        midplane: the mid-sagittal plane the grid was built on.
        mirrored_brain: the reflected brain mask, when already computed (:func:`reflect_stack`).

    Returns:
        (Z, S, S) float32 ``I(x) - I(R x)`` where both ``x`` and ``R x`` are brain, else 0; in the
        channel's units (z-score units for MRI, window fractions for CT).
    """
    if mirrored_brain is None:
        mirrored_brain = reflect_stack(brain, grid, midplane, is_mask=True)
    both = (np.asarray(brain) > 0) & (np.asarray(mirrored_brain) > 0)
    difference = np.asarray(stack, dtype=np.float32) - reflect_stack(stack, grid, midplane)
    return np.where(both, difference, 0.0).astype(np.float32)


def add_mirror_differences(images: np.ndarray, brain: np.ndarray, grid: PreparedGrid,
                           midplane: Midplane) -> tuple[np.ndarray, dict[str, Any]]:
    """The prepared stack with each channel's mirrored difference appended as a further channel.

    Args:
        images: (Z, C, S, S) the normalised channels on the prepared grid (every grid slice).
        brain: (Z, S, S) the brain mask on the grid.
        grid, midplane: as in :func:`mirror_difference`.

    Returns:
        ``(stack, step)``: (Z, 2C, S, S) float32, channels ``c`` then their differences in the same order;
        the step's record (method, brain voxels whose mirror image is brain).
    """
    mirrored_brain = reflect_stack(brain, grid, midplane, is_mask=True)
    differences = [mirror_difference(images[:, c], brain, grid, midplane, mirrored_brain)
                   for c in range(images.shape[1])]
    stack = np.concatenate([images, np.stack(differences, axis=1)], axis=1).astype(np.float32)
    brain_voxels = int(np.count_nonzero(brain))
    paired = int(np.count_nonzero((brain > 0) & (mirrored_brain > 0)))
    step = {"method": "sitk_reflection_linear", "midplane": midplane.to_dict(),
            "paired_brain_fraction": paired / brain_voxels if brain_voxels else 0.0}
    return stack, step
