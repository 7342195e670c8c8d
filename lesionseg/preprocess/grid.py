"""The prepared grid: S x S axial slices centred on the mid-sagittal plane, padded square, never cropped.

Built on the axial frame (:mod:`~lesionseg.preprocess.orientation`) and the mid-plane
(:mod:`~lesionseg.preprocess.midplane`), in the frame's coordinates (mm along its axes from voxel 0):

* the in-plane axes are turned by the mid-plane's angle ``theta`` so that the plane is vertical (no turn
  when ``|theta|`` is under ``min_rotation_deg``), and the square is centred on the plane: the plane falls
  on the boundary between columns S/2 - 1 and S/2, so a left-right flip of a slice mirrors it about the
  plane. Columns increase towards the patient's left;
* the square's side L (mm) is the smallest that holds the whole slice (padding in millimetres, so
  anisotropic pixels stay undistorted), or, with ``brain_extent`` (:func:`brain_extent_mm`), the smallest
  that holds the brain and a margin: the scan's field of view is often twice the brain's, and framing the
  brain gives its lesions up to twice as many pixels per millimetre at the same S; the pixel size is
  L / S in both directions;
* slices are the frame's slices (same positions and thickness): only in-plane resampling happens;
* when no turn is needed the centre is snapped to the frame's voxel lattice, so that a slice that needs
  no resize (L / S equal to the pixel size) is copied voxel for voxel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lesionseg.io import Geometry
from lesionseg.preprocess.midplane import Midplane
from lesionseg.preprocess.orientation import AxialFrame

MIN_ROTATION_DEG = 1.0


@dataclass(frozen=True)
class PreparedGrid:
    """The 3D grid whose axial slices are the prepared S x S slices.

    Attributes:
        geometry: size (S, S, number of frame slices), spacing (pixel_mm, pixel_mm, slice thickness),
            origin and direction in LPS.
        size: S.
        pixel_mm: in-plane pixel size L / S.
        rotation_deg: in-plane turn applied so that the mid-plane is vertical.
        frame_pixel_mm: the axial frame's in-plane spacing (x, y): the native pixel size, for areas.
    """

    geometry: Geometry
    size: int
    pixel_mm: float
    rotation_deg: float
    frame_pixel_mm: tuple[float, float]

    def to_dict(self) -> dict:
        return {"geometry": self.geometry.to_dict(), "size": self.size, "pixel_mm": self.pixel_mm,
                "rotation_deg": self.rotation_deg, "frame_pixel_mm": list(self.frame_pixel_mm)}

    @classmethod
    def from_dict(cls, data: dict) -> "PreparedGrid":
        return cls(Geometry.from_dict(data["geometry"]), int(data["size"]), float(data["pixel_mm"]),
                   float(data["rotation_deg"]), tuple(float(v) for v in data["frame_pixel_mm"]))

    @property
    def n_slices(self) -> int:
        return int(self.geometry.size[2])


def _snap(position_mm: float, spacing_mm: float, size: int) -> float:
    """Put a centre on the lattice position that keeps output pixels on frame voxel centres."""
    offset = 0.5 if size % 2 == 0 else 0.0
    return (round(position_mm / spacing_mm - offset) + offset) * spacing_mm


def brain_extent_mm(brain: sitk.Image, frame: AxialFrame, margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The in-plane rectangle (frame coordinates, mm from voxel 0 along the frame's x and y axes) that holds
    every brain voxel centre plus ``margin_mm`` on each side.

    Args:
        brain: the brain mask (any grid; physical positions decide).
        frame: the axial frame the rectangle is expressed in.
        margin_mm: added on each side (it also covers the voxels' own extent).

    Returns:
        ``(low, high)``, two arrays of 2 values (x, y) in mm.
    """
    inside = sitk.GetArrayViewFromImage(brain) > 0  # (z, y, x)
    if not inside.any():
        raise ValueError("the brain mask is empty")
    direction = np.array(brain.GetDirection()).reshape(3, 3)
    geometry = frame.geometry
    frame_direction = np.array(geometry.direction).reshape(3, 3)
    # local = offset + A @ (i, j, k): linear in the voxel index, so its extremes over the mask are reached
    # at the first or the last mask voxel of some row along x (no list of every voxel: a 512 x 512 x 300 CT
    # holds ten million brain voxels)
    a = frame_direction.T @ direction @ np.diag(brain.GetSpacing())  # (3 frame axes, 3 index axes)
    offset = frame_direction.T @ (np.array(brain.GetOrigin()) - np.array(geometry.origin))
    rows = inside.any(axis=2)  # (z, y)
    z, y = np.nonzero(rows)
    first = inside.argmax(axis=2)[z, y]
    last = inside.shape[2] - 1 - inside[:, :, ::-1].argmax(axis=2)[z, y]
    low, high = np.empty(2), np.empty(2)
    for axis in range(2):
        base = offset[axis] + a[axis, 1] * y + a[axis, 2] * z
        ends = np.stack([base + a[axis, 0] * first, base + a[axis, 0] * last])
        low[axis], high[axis] = ends.min(), ends.max()
    return low - margin_mm, high + margin_mm


def prepared_grid(frame: AxialFrame, midplane: Midplane, size: int,
                  min_rotation_deg: float = MIN_ROTATION_DEG,
                  brain_extent: tuple[np.ndarray, np.ndarray] | None = None) -> PreparedGrid:
    """Build the prepared grid of a case (see the module docstring).

    Args:
        frame: the reference channel's axial frame.
        midplane: the mid-sagittal plane (LPS).
        size: S, the side of the prepared slices in pixels.
        min_rotation_deg: smaller mid-plane angles are not corrected (keeps exact copies possible).
        brain_extent: the in-plane rectangle the square must hold (:func:`brain_extent_mm`); None: the whole
            slice.
    """
    geometry = frame.geometry
    direction = np.array(geometry.direction).reshape(3, 3)
    origin = np.array(geometry.origin)
    spacing = np.array(geometry.spacing)
    n = np.array(geometry.size)
    normal = direction.T @ np.array(midplane.normal)
    point = direction.T @ (np.array(midplane.point) - origin)
    theta = math.atan2(normal[1], normal[0])
    if abs(math.degrees(theta)) < min_rotation_deg:
        theta = 0.0
    u = np.array([math.cos(theta), math.sin(theta)])
    v = np.array([-math.sin(theta), math.cos(theta)])
    low = -0.5 * spacing[:2]
    high = (n[:2] - 0.5) * spacing[:2]
    if brain_extent is not None:
        low, high = (np.asarray(value, dtype=np.float64) for value in brain_extent)
    rect_centre = 0.5 * (low + high)
    in_plane_normal = normal[:2] / max(np.linalg.norm(normal[:2]), 1e-12)
    centre = rect_centre - ((rect_centre - point[:2]) @ in_plane_normal) * in_plane_normal
    if theta == 0.0 and brain_extent is None:
        centre = np.array([_snap(centre[0], spacing[0], size), _snap(centre[1], spacing[1], size)])
    corners = np.array([[x, y] for x in (low[0], high[0]) for y in (low[1], high[1])]) - centre
    side = 2.0 * max(np.abs(corners @ u).max(), np.abs(corners @ v).max())
    pixel = side / size
    rotation = np.array([[u[0], v[0], 0.0], [u[1], v[1], 0.0], [0.0, 0.0, 1.0]])
    start = centre - 0.5 * (size - 1) * pixel * (u + v)
    grid_origin = origin + direction @ np.array([start[0], start[1], 0.0])
    grid_geometry = Geometry(
        (int(size), int(size), int(n[2])),
        (float(pixel), float(pixel), float(spacing[2])),
        tuple(float(x) for x in grid_origin),
        tuple(float(x) for x in (direction @ rotation).ravel()),
    )
    return PreparedGrid(grid_geometry, int(size), float(pixel), math.degrees(theta),
                        (float(spacing[0]), float(spacing[1])))


def sample_onto_grid(image: sitk.Image, grid: PreparedGrid, *, is_mask: bool, default_value: float = 0.0,
                     transform: sitk.Transform | None = None, keep_lesion_volumes: bool = False) -> np.ndarray:
    """Resample a native volume onto the prepared grid; returns an array (slices, S, S) = (z, v, u).

    Images are interpolated linearly (float32). Masks are interpolated linearly and thresholded at 0.5
    (uint8), which keeps thin structures better than nearest neighbour when the pixel size changes and
    suits a large smooth mask such as the brain. Lesion masks (``keep_lesion_volumes``) get one threshold
    per lesion instead, so that each keeps its volume and none of a few voxels vanishes
    (:mod:`lesionseg.preprocess.mask_resampling`).

    Args:
        image: a native volume (any grid; physical positions decide).
        grid: the prepared grid.
        is_mask: treat as a 0/1 mask.
        default_value: value outside the image.
        transform: maps grid (reference) points to ``image`` points, e.g. a registration result.
        keep_lesion_volumes: with ``is_mask``, threshold each connected component so that it keeps its
            volume instead of thresholding at 0.5.
    """
    if is_mask and keep_lesion_volumes:
        from lesionseg.preprocess.mask_resampling import resample_mask_keeping_volumes

        return resample_mask_keeping_volumes(image, grid.geometry, transform)
    reference = grid.geometry.reference_image(sitk.sitkFloat32)
    # no cast of the source: the resampler interpolates in double precision whatever the pixel type, and a
    # 512 x 512 x 300 volume would be copied for nothing
    resampled = sitk.Resample(image, reference, transform or sitk.Transform(), sitk.sitkLinear,
                              float(default_value), sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(resampled)
    if is_mask:
        return (array >= 0.5).astype(np.uint8)
    return array.astype(np.float32)


def frame_slices_of(mask: sitk.Image, frame: AxialFrame) -> np.ndarray:
    """A native lesion mask on the axial frame, (slices, y, x) uint8: exact reorientation, or, onto the
    resampled frame of an oblique volume, each lesion keeping its volume (nearest neighbour lost small
    lesions between tilted slices). Used for per-slice lesion areas in native pixels."""
    if frame.resampled:
        from lesionseg.preprocess.mask_resampling import resample_mask_keeping_volumes

        return resample_mask_keeping_volumes(mask, frame.geometry)
    return sitk.GetArrayFromImage(sitk.DICOMOrient(mask, "LPS"))
