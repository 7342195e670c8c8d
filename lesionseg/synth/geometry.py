"""Grids, the head pose and rigid channel misalignment of the synthetic phantom.

Frames (all in millimetres, LPS: +x towards the patient's left, +y posterior, +z superior):

- *physical*: the scanner's LPS space, where image grids live (SimpleITK's physical space).
- *head frame*: the phantom's own frame. Its origin is the centre of the brain ellipsoid; its x = 0 plane
  is the mid-sagittal plane of the symmetric anatomy. A :class:`HeadPose` places the head frame in
  physical space: ``p = R_z(rotation) @ R_x(pitch) @ R_y(roll) @ q + centre`` (pitch and roll 0 unless a
  head tilt is asked for).

Grids: a grid's direction matrix is the identity by default; an *oblique* grid (a scan acquired in an
oblique plane and stored obliquely) has a rotated direction matrix (:meth:`Grid.oblique`) and stays
centred on the physical point (0, 0, 0). The phantom is always sampled through
:meth:`Grid.index_to_physical`, so images and masks agree whatever the direction.

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

    @staticmethod
    def oblique(size_xyz, spacing_mm, angles_deg) -> "Grid":
        """A grid centred on the physical point (0, 0, 0) whose axes are rotated by ``angles_deg``.

        Args:
            size_xyz: Voxel counts (x, y, z).
            spacing_mm: Voxel spacing in mm (x, y, z).
            angles_deg: Rotation angles in degrees about the physical x, then y, then z axis (extrinsic;
                the direction matrix is ``rotation_xyz(angles_deg)``, its columns the grid axes in LPS).

        Returns:
            The grid; with all angles 0 it equals :meth:`centred` up to float rounding.
        """
        size = tuple(int(n) for n in size_xyz)
        spacing = np.asarray([float(s) for s in spacing_mm])
        direction = rotation_xyz(angles_deg)
        half = (np.asarray(size, np.float64) - 1.0) / 2.0 * spacing
        origin = -direction @ half
        return Grid(size, tuple(float(s) for s in spacing), tuple(float(v) for v in origin),
                    tuple(float(v) for v in direction.ravel()))

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


def rotation_x(degrees: float) -> np.ndarray:
    """Rotation matrix about the x (left-right) axis by ``degrees`` (right-handed, LPS frame)."""
    a = np.deg2rad(degrees)
    return np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])


def rotation_y(degrees: float) -> np.ndarray:
    """Rotation matrix about the y (anterior-posterior) axis by ``degrees`` (right-handed, LPS frame)."""
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])


def rotation_xyz(angles_deg) -> np.ndarray:
    """Rotation about x, then y, then z (extrinsic, degrees): ``R_z @ R_y @ R_x``."""
    ax, ay, az = (float(a) for a in angles_deg)
    return rotation_z(az) @ rotation_y(ay) @ rotation_x(ax)


def rotation_angle_deg(matrix: np.ndarray) -> float:
    """The angle (degrees) of a rotation matrix: how far it turns from the identity."""
    cosine = (float(np.trace(np.asarray(matrix, np.float64))) - 1.0) / 2.0
    return float(np.rad2deg(np.arccos(np.clip(cosine, -1.0, 1.0))))


@dataclass(frozen=True)
class HeadPose:
    """Where the head frame sits in physical space.

    ``p = rotation_z(rotation_deg) @ rotation_x(pitch_deg) @ rotation_y(roll_deg) @ q + centre_mm``: the
    head nods by ``pitch_deg`` (about its left-right axis; positive moves the vertex anteriorly, chin
    down) and rolls by ``roll_deg`` (about its anterior-posterior axis; positive moves the vertex to the
    patient's left), then turns by ``rotation_deg`` about the superior axis. With pitch and roll 0 the
    matrix is ``rotation_z`` exactly, as before head tilts existed.
    """

    centre_mm: tuple[float, float, float] = DEFAULT_HEAD_CENTRE_MM
    rotation_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0

    @staticmethod
    def from_option(head_pose, tilt_deg=(0.0, 0.0)) -> "HeadPose":
        """Build the pose from ``None`` or ``(shift_mm_xyz, rotation_deg)`` (shift from the default).

        Args:
            head_pose: None or ``((dx, dy, dz) mm, degrees about z)``.
            tilt_deg: ``(pitch, roll)`` in degrees (drawn from the ``head_tilt_deg`` option).
        """
        pitch, roll = (float(v) for v in tilt_deg)
        if head_pose is None:
            return HeadPose(pitch_deg=pitch, roll_deg=roll)
        shift, rotation = head_pose
        centre = tuple(float(c + s) for c, s in zip(DEFAULT_HEAD_CENTRE_MM, shift))
        return HeadPose(centre, float(rotation), pitch, roll)

    def rotation(self) -> np.ndarray:
        """The head frame's rotation in physical space (3, 3)."""
        matrix = rotation_z(self.rotation_deg)
        if self.pitch_deg != 0.0 or self.roll_deg != 0.0:
            matrix = matrix @ rotation_x(self.pitch_deg) @ rotation_y(self.roll_deg)
        return matrix

    def head_to_physical(self) -> Affine:
        return Affine(self.rotation(), np.asarray(self.centre_mm, np.float64))

    def midplane(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The mid-sagittal plane in physical LPS: a point on it and its unit normal (towards the left)."""
        normal = self.rotation() @ np.array([1.0, 0.0, 0.0])
        return tuple(float(v) for v in self.centre_mm), tuple(float(v) for v in normal)


# Semi-axes (mm, head frame x, y, z) of an ellipsoid about the head centre that holds the cranium (brain,
# CSF, skull and scalp of the largest drawn head); used only to enlarge a rotated field of view.
CRANIUM_SEMI_AXES_MM = (95.0, 106.0, 76.0)


def covering_size(size_xyz, spacing_mm, direction: np.ndarray, head_rotation: np.ndarray,
                  upright_rotation: np.ndarray) -> tuple[int, int, int]:
    """Voxel counts that keep the cranium as well covered by a rotated grid as by the upright one.

    Along each grid axis ``u``, the cranium ellipsoid's half extent is ``|diag(a) R^T u|``. Where the
    rotated grid (``direction``, head rotated by ``head_rotation``) needs more than the identity grid with
    the head rotated by ``upright_rotation`` (the head pose's turn about z alone), the axis gains voxels on
    both sides (an even number, so the grid centre stays put). Never fewer voxels than asked for.

    Args:
        size_xyz: Asked-for voxel counts (x, y, z).
        spacing_mm: Voxel spacing (x, y, z) in mm.
        direction: The grid's direction matrix (3, 3), columns = grid axes in LPS.
        head_rotation: The head frame's rotation in physical space (3, 3).
        upright_rotation: The rotation the same head would have without tilt (3, 3).

    Returns:
        The voxel counts (x, y, z).
    """
    axes = np.diag(CRANIUM_SEMI_AXES_MM)
    out = []
    for k in range(3):
        u = np.asarray(direction, np.float64)[:, k]
        e = np.eye(3)[:, k]
        need = float(np.linalg.norm(axes @ np.asarray(head_rotation).T @ u))
        upright = float(np.linalg.norm(axes @ np.asarray(upright_rotation).T @ e))
        extra = max(0.0, need - upright)
        out.append(int(size_xyz[k]) + 2 * int(np.ceil(extra / float(spacing_mm[k]) - 1e-9)))
    return tuple(out)


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
