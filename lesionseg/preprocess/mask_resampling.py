"""Resampling a lesion mask onto another grid so that every lesion keeps its volume.

Interpolating a 0/1 mask linearly and thresholding the result at 0.5 keeps the volume of a large smooth
lesion, but not of a small one on a grid of another voxel size or orientation: a lesion two voxels thick
seen through 5 mm slices tilted by 16 degrees has few points above 0.5, and one that lies between two
thick target slices vanishes although those slices' voxels hold part of it. Here each lesion (3D
connected component at 26-connectivity, the ISLES'22 convention) gets its own threshold instead:

1. the source mask's components are labelled and their volumes measured (voxels x voxel volume, mm³);
2. the fraction of each target voxel that a component covers is estimated: the component's 0/1
   indicator is interpolated linearly (SimpleITK) at points on a finer copy of the target grid, each
   target voxel cut into ``kx`` x ``ky`` x ``kz`` points no further apart than the source's smallest voxel
   side (so no component falls between points), and averaged over each target voxel. Only the target
   voxels around the component are visited: the component's box is carried to the target grid through
   the inverse of the transform;
3. the component keeps the ``n`` target voxels it covers most, ``n`` being its source volume in target
   voxels. Counts are rounded together (largest remainders), so each component is within one target
   voxel of its volume and the whole mask within half a target voxel, except that a component that
   reaches the target grid keeps at least one voxel: one smaller than a target voxel grows to it, and
   the whole mask by at most what these small components gain. Two lesions closer than a target voxel
   may claim the same voxel; it counts once.

A component that the target grid cuts (its voxels touch the grid's border) keeps the smaller of its
source volume and its covered volume inside the grid; one entirely outside keeps nothing.

SimpleITK does the interpolation (as everywhere else in LesionSeg); this module only decides the
per-component thresholds, which no library here offers.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.io.geometry import Geometry

#: the ISLES'22 lesion convention: 3D components at 26-connectivity
CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
#: covered fractions at or below this count as not covered (float32 rounding)
COVER_FLOOR = 1e-6
#: target voxels added around a component's box carried through a numerically inverted transform
_INVERSE_MARGIN_VOXELS = 2


def _geometry(reference: sitk.Image | Geometry) -> Geometry:
    return reference if isinstance(reference, Geometry) else Geometry.of(reference)


def _is_linear(transform: sitk.Transform) -> bool:
    """Whether a transform (or every part of a composite) is linear, hence inverted exactly."""
    if transform.GetName() == "CompositeTransform":
        composite = sitk.CompositeTransform(transform)
        return all(_is_linear(composite.GetNthTransform(i)) for i in range(composite.GetNumberOfTransforms()))
    return transform.GetName() not in ("BSplineTransform", "DisplacementFieldTransform")


def _inverse(transform: sitk.Transform | None) -> tuple[sitk.Transform, int]:
    """The inverse of a target-to-source transform and the margin (target voxels) its boxes need: exact for
    linear transforms, numerical for B-spline parts (:func:`lesionseg.preprocess.registration.invert_transform`,
    accurate to a fraction of a millimetre), which the margin covers."""
    if transform is None:
        return sitk.Transform(), 0
    from lesionseg.preprocess.registration import invert_transform

    return invert_transform(transform), 0 if _is_linear(transform) else _INVERSE_MARGIN_VOXELS


def _apportion(wanted: np.ndarray) -> np.ndarray:
    """Whole voxel counts for real-valued wishes, each within one voxel of its wish: a positive wish under
    one voxel gets one; the others get their floors, then one more each by largest remainder until the
    total is the rounded total of the wishes (when the small wishes' growth leaves room for it)."""
    counts = np.floor(wanted).astype(np.int64)
    small = (wanted > 0) & (wanted < 1)
    counts[small] = 1
    missing = int(round(float(wanted.sum()))) - int(counts.sum())
    if missing > 0:
        remainders = np.where(small, -1.0, wanted - np.floor(wanted))
        order = np.argsort(-remainders, kind="stable")[:missing]
        counts[order[remainders[order] > 0]] += 1
    return counts


class _Target:
    """The target grid, its finer point grids and the component boxes carried onto it."""

    def __init__(self, target: Geometry, source_min_spacing: float, inverse: sitk.Transform, margin: int):
        self.geometry = target
        self.size = np.array(target.size)  # x, y, z
        self.spacing = np.array(target.spacing)
        self.direction = np.array(target.direction).reshape(3, 3)
        self.factors = np.array([max(1, math.ceil(s / source_min_spacing - 1e-9)) for s in target.spacing])
        self.reference = target.reference_image()
        self.inverse = inverse
        self.margin = margin

    def box_of(self, source: sitk.Image, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Target voxel indices (first, last inclusive; x, y, z) holding the source box ``low..high``
        (continuous x, y, z indices), or None when it lies outside the target grid."""
        corners = [[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
        indices = np.array([self.reference.TransformPhysicalPointToContinuousIndex(
            self.inverse.TransformPoint(source.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])))
            for corner in corners])
        first = np.maximum(np.floor(indices.min(axis=0)).astype(int) - 1 - self.margin, 0)
        last = np.minimum(np.ceil(indices.max(axis=0)).astype(int) + 1 + self.margin, self.size - 1)
        return None if np.any(first > last) else (first, last)

    def points(self, first: np.ndarray, last: np.ndarray) -> sitk.Image:
        """A grid of points cutting target voxels ``first..last`` into ``factors`` points per axis."""
        fine_spacing = self.spacing / self.factors
        corner = np.array(self.geometry.origin) + self.direction @ ((first - 0.5) * self.spacing + 0.5 * fine_spacing)
        size = (last - first + 1) * self.factors
        return Geometry(tuple(int(n) for n in size), tuple(float(s) for s in fine_spacing),
                        tuple(float(v) for v in corner), self.geometry.direction).reference_image(sitk.sitkFloat32)

    def covered(self, soft: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat target indices and covered fractions from interpolated values on :meth:`points`."""
        n = last - first + 1
        kx, ky, kz = self.factors
        fractions = soft.reshape(n[2], kz, n[1], ky, n[0], kx).mean(axis=(1, 3, 5))
        z, y, x = np.nonzero(fractions > COVER_FLOOR)
        flat = ((z + first[2]) * self.size[1] + (y + first[1])) * self.size[0] + (x + first[0])
        return flat, fractions[z, y, x]


def resample_mask_keeping_volumes(mask: sitk.Image, reference: sitk.Image | Geometry,
                                  transform: sitk.Transform | None = None) -> np.ndarray:
    """Resample a 0/1 lesion mask onto ``reference``'s grid, each lesion keeping its volume.

    Args:
        mask: the lesion mask (non-zero = lesion), any grid; physical positions (LPS mm) decide.
        reference: the target grid (an image or a :class:`~lesionseg.io.Geometry`).
        transform: maps target (reference) physical points to mask physical points, e.g. a registration
            result (ITK convention); None = identity.

    Returns:
        uint8 0/1 array (z, y, x) on the target grid.
    """
    geometry = _geometry(reference)
    shape = tuple(reversed(geometry.size))
    result = np.zeros(shape, dtype=np.uint8)
    foreground = sitk.GetArrayFromImage(mask) != 0
    if not foreground.any():
        return result
    inverse, margin = _inverse(transform)
    target = _Target(geometry, min(mask.GetSpacing()), inverse, margin)
    labels, count = ndimage.label(foreground, structure=CONNECTIVITY)
    boxes = ndimage.find_objects(labels)
    source_voxels = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    ratio = float(np.prod(mask.GetSpacing())) / float(np.prod(geometry.spacing))
    resample_transform = transform or sitk.Transform()
    candidates: list[tuple[np.ndarray, np.ndarray]] = []
    wanted = np.zeros(count)
    for k, box in enumerate(boxes):
        # the component and the one voxel around it that linear interpolation reaches (z, y, x slices)
        padded = tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, labels.shape))
        starts_xyz = np.array([s.start for s in padded][::-1])
        stops_xyz = np.array([s.stop - 1 for s in padded][::-1])
        found = target.box_of(mask, starts_xyz.astype(float), stops_xyz.astype(float))
        if found is None:
            candidates.append((np.zeros(0, np.int64), np.zeros(0)))
            continue  # the component lies outside the target grid
        indicator = sitk.GetImageFromArray((labels[padded] == k + 1).astype(np.float32))
        indicator.SetSpacing(mask.GetSpacing())
        indicator.SetDirection(mask.GetDirection())
        indicator.SetOrigin(mask.TransformIndexToPhysicalPoint([int(v) for v in starts_xyz]))
        first, last = found
        soft = sitk.GetArrayFromImage(sitk.Resample(indicator, target.points(first, last), resample_transform,
                                                    sitk.sitkLinear, 0.0, sitk.sitkFloat32))
        flat, fractions = target.covered(soft, first, last)
        order = np.lexsort((flat, -fractions))  # most covered first (ties: grid order)
        candidates.append((flat[order], fractions[order]))
        if flat.size == 0:
            continue
        wish = source_voxels[k] * ratio
        coordinates = np.unravel_index(flat, shape)
        if any(bool(np.any((c == 0) | (c == n - 1))) for c, n in zip(coordinates, shape)):
            wish = min(wish, float(fractions.sum()))  # cut by the grid: what lies inside
        wanted[k] = min(wish, float(flat.size))
    keep = _apportion(wanted)
    for (flat, _), n in zip(candidates, keep):
        result.ravel()[flat[:n]] = 1
    return result


def resample_mask_image_keeping_volumes(mask: sitk.Image, reference: sitk.Image | Geometry,
                                        transform: sitk.Transform | None = None) -> sitk.Image:
    """:func:`resample_mask_keeping_volumes` as a uint8 image on the reference grid."""
    geometry = _geometry(reference)
    image = sitk.GetImageFromArray(resample_mask_keeping_volumes(mask, geometry, transform))
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    return image
