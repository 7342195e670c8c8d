"""Grids, the head pose and rigid channel misalignment of the synthetic phantom.

Frames (all in millimetres, LPS: +x towards the patient's left, +y posterior, +z superior):

- *physical*: the scanner's LPS space, where image grids live (SimpleITK's physical space).
- *head frame*: the phantom's own frame. Its origin is the centre of the brain ellipsoid; its x = 0 plane
  is the mid-sagittal plane of the symmetric anatomy. A :class:`HeadPose` places the head frame in
  physical space: ``p = R_z(rotation) @ q + centre``.

Misalignment: the *content* of a channel is moved, not its grid. A channel's misalignment is the rigid
transform ``T`` (an ``sitk.Euler3DTransform``) that maps a physical point of the reference grid to the
physical point where the channel shows the same anatomy, so the channel's value at ``p`` is the aligned
phantom at ``T^-1(p)`` and ``sitk.Resample(channel, reference, T)`` realigns it. This is the transform
a registration with the reference as fixed image and the channel as moving image should find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

# Physical position of the head-frame origin for the default pose: the brain sits a little below the
# image centre so that the scalp at the vertex stays inside a 144 mm field of view.
DEFAULT_HEAD_CENTRE_MM = (0.0, 0.0, -7.0)


@dataclass(frozen=True)
class Affine:
    """An affine map ``y = matrix @ x + offset`` between two 3D frames (mm)."""

    matrix: np.ndarray
    offset: np.ndarray

    def __matmul__(self, other: "Affine") -> "Affine":
        """Composition: ``(self @ other)(x) = self(other(x))``."""
        return Affine(self.matrix @ other.matrix, self.matrix @ other.offset + self.offset)

    def inverse(self) -> "Affine":
        inv = np.linalg.inv(self.matrix)
        return Affine(inv, -inv @ self.offset)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map points given as an array of shape (..., 3)."""
        return np.asarray(points, np.float64) @ self.matrix.T + self.offset

    @staticmethod
    def identity() -> "Affine":
        return Affine(np.eye(3), np.zeros(3))


@dataclass(frozen=True)
class Grid:
    """An image grid: size (x, y, z) in voxels, spacing (x, y, z) in mm, LPS origin and direction."""

    size_xyz: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

    @staticmethod
    def centred(size_xyz, spacing_mm) -> "Grid":
        """A grid with identity direction whose centre is the physical point (0, 0, 0)."""
        size = tuple(int(n) for n in size_xyz)
        spacing = tuple(float(s) for s in spacing_mm)
        origin = tuple(-(n - 1) / 2.0 * s for n, s in zip(size, spacing))
        return Grid(size, spacing, origin)

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        return (self.size_xyz[2], self.size_xyz[1], self.size_xyz[0])

    def index_to_physical(self) -> Affine:
        """Affine map from continuous index (i, j, k) = (x, y, z) to physical LPS mm."""
        direction = np.asarray(self.direction, np.float64).reshape(3, 3)
        return Affine(direction @ np.diag(self.spacing_mm), np.asarray(self.origin_mm, np.float64))

    def empty_image(self, pixel_type: int = sitk.sitkUInt8) -> sitk.Image:
        """A zero image with this grid's geometry."""
        image = sitk.Image([int(n) for n in self.size_xyz], pixel_type)
        self.stamp(image)
        return image

    def stamp(self, image: sitk.Image) -> sitk.Image:
        """Give ``image`` this grid's spacing, origin and direction; returns it."""
        image.SetSpacing(self.spacing_mm)
        image.SetOrigin(self.origin_mm)
        image.SetDirection(self.direction)
        return image

    def image_from_array(self, array: np.ndarray) -> sitk.Image:
        """A SimpleITK image from a (z, y, x) array, with this grid's geometry."""
        return self.stamp(sitk.GetImageFromArray(array))

    def coordinates(self, index_to_frame: Affine, box=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame coordinates (mm) of voxel centres as three float32 arrays of shape (nz, ny, nx).

        Args:
            index_to_frame: Affine map from voxel index (x, y, z) to the wanted frame.
            box: Optional ``(slice_z, slice_y, slice_x)`` restricting the voxels (steps of 1).

        Returns:
            The x, y and z coordinates, broadcast from 1D index vectors (no per-voxel Python loop).
        """
        nz, ny, nx = self.shape_zyx
        box = box or (slice(0, nz), slice(0, ny), slice(0, nx))
        k = np.arange(nz, dtype=np.float64)[box[0]][:, None, None]
        j = np.arange(ny, dtype=np.float64)[box[1]][None, :, None]
        i = np.arange(nx, dtype=np.float64)[box[2]][None, None, :]
        m, b = index_to_frame.matrix, index_to_frame.offset
        coords = []
        for row in range(3):
            plane = (m[row, 1] * j + m[row, 0] * i).astype(np.float32)
            coords.append((b[row] + m[row, 2] * k).astype(np.float32) + plane)
        return coords[0], coords[1], coords[2]

    def index_box(self, physical_points: np.ndarray, pad: int = 2):
        """The smallest voxel box (z, y, x slices) holding the given physical points, padded; or None.

        Args:
            physical_points: Array (n, 3) of LPS points in mm.
            pad: Voxels added on each side.

        Returns:
            A tuple of three slices (z, y, x), or None when the points lie outside the grid.
        """
        index = self.index_to_physical().inverse().apply(physical_points)
        low = np.floor(index.min(axis=0)).astype(int) - pad
        high = np.ceil(index.max(axis=0)).astype(int) + pad + 1
        size = np.asarray(self.size_xyz)
        low = np.clip(low, 0, size)
        high = np.clip(high, 0, size)
        if np.any(high <= low):
            return None
        return (slice(low[2], high[2]), slice(low[1], high[1]), slice(low[0], high[0]))


def rotation_z(degrees: float) -> np.ndarray:
    """Rotation matrix about the z (superior) axis by ``degrees`` (right-handed, LPS frame)."""
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class HeadPose:
    """Where the head frame sits in physical space: ``p = rotation_z(rotation_deg) @ q + centre_mm``."""

    centre_mm: tuple[float, float, float] = DEFAULT_HEAD_CENTRE_MM
    rotation_deg: float = 0.0

    @staticmethod
    def from_option(head_pose) -> "HeadPose":
        """Build the pose from ``None`` or ``(shift_mm_xyz, rotation_deg)`` (shift from the default)."""
        if head_pose is None:
            return HeadPose()
        shift, rotation = head_pose
        centre = tuple(float(c + s) for c, s in zip(DEFAULT_HEAD_CENTRE_MM, shift))
        return HeadPose(centre, float(rotation))

    def head_to_physical(self) -> Affine:
        return Affine(rotation_z(self.rotation_deg), np.asarray(self.centre_mm, np.float64))

    def midplane(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The mid-sagittal plane in physical LPS: a point on it and its unit normal (towards the left)."""
        normal = rotation_z(self.rotation_deg) @ np.array([1.0, 0.0, 0.0])
        return tuple(float(v) for v in self.centre_mm), tuple(float(v) for v in normal)


def euler_transform(angles_deg, translation_mm, centre_mm) -> sitk.Euler3DTransform:
    """A rigid ``sitk.Euler3DTransform`` from angles (about x, y, z; degrees), translation and centre (mm)."""
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(float(c) for c in centre_mm))
    transform.SetRotation(*(float(np.deg2rad(a)) for a in angles_deg))
    transform.SetTranslation(tuple(float(t) for t in translation_mm))
    return transform


def transform_affine(transform: sitk.Transform) -> Affine:
    """The affine map ``T(p) = A p + b`` of a SimpleITK matrix-offset transform (rigid, affine)."""
    matrix = np.asarray(transform.GetMatrix(), np.float64).reshape(3, 3)
    centre = np.asarray(transform.GetCenter(), np.float64)
    translation = np.asarray(transform.GetTranslation(), np.float64)
    return Affine(matrix, translation + centre - matrix @ centre)


def content_to_head(pose: HeadPose, misalignment: sitk.Transform | None) -> Affine:
    """Affine map from a channel's physical point to the head-frame point whose anatomy it shows.

    For an aligned channel this is the inverse head pose; for a misaligned channel with transform ``T``
    (see the module docstring) it is the inverse head pose applied to ``T^-1(p)``.
    """
    physical_to_head = pose.head_to_physical().inverse()
    if misalignment is None:
        return physical_to_head
    return physical_to_head @ transform_affine(misalignment).inverse()
