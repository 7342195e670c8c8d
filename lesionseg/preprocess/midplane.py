"""The mid-sagittal plane, found from the brain's own symmetry (not the image centre).

Method (written here because neither SimpleITK nor scikit-image estimates a symmetry plane): the
brain-masked image and the brain mask, resampled at 1 mm in-plane on the axial frame, are averaged over
the slices into one axial picture A(x, y). For each candidate angle theta, A is sampled on axes turned by
theta about the brain's centroid; the reflection x' -> 2s - x' that best maps the turned picture onto
itself is the peak of its autocorrelation with reversal along x', computed for all s at once with an FFT.
The angle (a 1-degree search over +-15 degrees refined to 0.1 degree) and the offset with the highest
normalised symmetry score give the plane, which is taken as vertical (normal in the axial plane): heads
are turned about the vertical axis far more than they are rolled. A lesion in one hemisphere is a small
part of the picture and moves the estimate little. The coarse angle search runs at 2 mm.

With ``working_spacing_mm`` the picture is made from the volumes block-averaged onto a grid of about that
spacing (:mod:`lesionseg.preprocess.coarse`), with slices averaged that far apart; the plane found is a plane
in physical space, whatever grid it was found on. It is off by default: on the synthetic heads the plane
moved by at most 0.2 degree / 0.3 mm, but on the 512 x 512 x 300 CT by 1.2 degrees / 1.7 mm, beyond the
1 degree / 1 mm allowed, for a saving of a few seconds on that CT (``benchmarks/bench_preprocess_speed.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.io import Geometry
from lesionseg.preprocess.coarse import shrink, shrink_factors

#: in-plane resolution of the symmetry search, mm
WORKING_SPACING_MM = 1.0
COARSE_ANGLES_DEG = np.arange(-15.0, 15.01, 1.0)
FINE_STEP_DEG = 0.1


@dataclass(frozen=True)
class Midplane:
    """A plane in LPS millimetres: a point on it and its unit normal (pointing to the patient's left, +x)."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]

    def signed_distance(self, points_lps: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of points (N, 3) to the plane; positive on the patient's left."""
        return (np.asarray(points_lps, float) - np.array(self.point)) @ np.array(self.normal)

    def to_dict(self) -> dict:
        return {"point": list(self.point), "normal": list(self.normal)}

    @classmethod
    def from_dict(cls, data: dict) -> "Midplane":
        return cls(tuple(float(v) for v in data["point"]), tuple(float(v) for v in data["normal"]))


def _axial_picture(image: sitk.Image, brain: sitk.Image, frame: Geometry,
                   working_spacing_mm: float | None = None) -> np.ndarray:
    """Average over slices of (brain-masked image scaled to [0, 1] + brain mask), (y, x) at 1 mm.

    With ``working_spacing_mm``, the image and the mask are first block-averaged to about that spacing and
    the slices averaged are that far apart (or at the frame's slice spacing when coarser).
    """
    spacing = np.array(frame.spacing)
    extent = np.array(frame.size) * spacing
    slice_mm = float(spacing[2])
    source, inside_source = sitk.Cast(image, sitk.sitkFloat32), brain
    factors = shrink_factors(image.GetSpacing(), working_spacing_mm, size=image.GetSize())
    if factors is not None:
        source, inside_source = shrink(image, factors), shrink(brain, factors)
        slice_mm = max(slice_mm, float(working_spacing_mm))
    slices = max(1, int(round(extent[2] / slice_mm)))
    size = [int(np.ceil(extent[0] / WORKING_SPACING_MM)), int(np.ceil(extent[1] / WORKING_SPACING_MM)), slices]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing((WORKING_SPACING_MM, WORKING_SPACING_MM, float(extent[2] / slices)))
    grid.SetDirection(frame.direction)
    grid.SetOrigin(frame.origin)
    values = sitk.GetArrayFromImage(sitk.Resample(source, grid, sitk.Transform(), sitk.sitkLinear, 0.0))
    inside = sitk.GetArrayFromImage(sitk.Resample(sitk.Cast(inside_source, sitk.sitkFloat32), grid,
                                                  sitk.Transform(), sitk.sitkLinear, 0.0)) > 0.5
    if inside.any():
        low, high = np.percentile(values[inside], [2, 98])
        values = np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0) * inside
    picture = values.mean(axis=0) + inside.mean(axis=0)
    return ndimage.gaussian_filter(picture, 1.0)


def _symmetry(picture: np.ndarray, centre: np.ndarray, theta: float, half: int) -> tuple[float, float]:
    """Best reflection about a line normal to direction theta: (normalised score, offset in pixels)."""
    coordinates = np.arange(-half, half + 1, dtype=float)
    along, across = np.meshgrid(coordinates, coordinates)  # along = x' (normal direction), across = y'
    u = np.array([np.cos(theta), np.sin(theta)])
    v = np.array([-np.sin(theta), np.cos(theta)])
    x = centre[0] + along * u[0] + across * v[0]
    y = centre[1] + along * u[1] + across * v[1]
    turned = ndimage.map_coordinates(picture, [y, x], order=1, cval=0.0)
    width = turned.shape[1]
    spectrum = np.fft.rfft(turned, n=2 * width, axis=1)
    correlation = np.fft.irfft(spectrum * spectrum, axis=1)[:, : 2 * width - 1].sum(axis=0)
    peak = int(np.argmax(correlation))
    offset = float(peak)
    if 0 < peak < len(correlation) - 1:  # parabolic sub-pixel refinement
        a, b, c = correlation[peak - 1: peak + 2]
        denominator = a - 2 * b + c
        if denominator != 0:
            offset = peak + 0.5 * (a - c) / denominator
    energy = float((turned ** 2).sum()) or 1.0
    return float(correlation[peak]) / energy, -half + offset / 2.0


def estimate_midplane(image: sitk.Image, brain: sitk.Image, frame: Geometry,
                      working_spacing_mm: float | None = None) -> Midplane:
    """Estimate the mid-sagittal plane of a head (see the module docstring).

    Args:
        image: the reference channel (native grid).
        brain: its brain mask (uint8 0/1, same grid).
        frame: the axial frame geometry (:mod:`lesionseg.preprocess.orientation`).
        working_spacing_mm: block-average the volumes to about this spacing first (e.g.
            ``lesionseg.preprocess.coarse.COARSE_SPACING_MM``); None (the default): read them at their native
            resolution.

    Returns:
        The plane in LPS mm, its normal in the frame's axial plane, pointing to the patient's left.
    """
    picture = _axial_picture(image, brain, frame, working_spacing_mm)
    if not picture.any():
        centre_index = (np.array(frame.size) - 1) / 2.0
        point = frame.reference_image().TransformContinuousIndexToPhysicalPoint(centre_index.tolist())
        return Midplane(tuple(point), tuple(np.array(frame.direction).reshape(3, 3)[:, 0]))
    centre = np.array(ndimage.center_of_mass(picture))[::-1]  # (x, y) pixels
    rows, columns = np.nonzero(picture > 1e-3 * picture.max())
    half = int(np.ceil(np.hypot(columns - centre[0], rows - centre[1]).max())) + 4  # the brain's reach, pixels
    # the 1-degree search runs on a half-resolution copy (4x fewer samples); the refinement at full resolution
    coarse_picture = ndimage.zoom(picture, 0.5, order=1)
    coarse = [(_symmetry(coarse_picture, centre / 2.0, np.radians(a), half // 2), a) for a in COARSE_ANGLES_DEG]
    best_angle = max(coarse, key=lambda item: item[0][0])[1]
    fine_angles = best_angle + np.arange(-1.0, 1.0 + 1e-9, FINE_STEP_DEG)
    (_, offset), angle = max(((_symmetry(picture, centre, np.radians(a), half), a) for a in fine_angles),
                             key=lambda item: item[0][0])
    theta = np.radians(angle)
    normal_2d = np.array([np.cos(theta), np.sin(theta)])
    point_2d = (centre + offset * normal_2d) * WORKING_SPACING_MM  # mm along the frame's x and y axes
    direction = np.array(frame.direction).reshape(3, 3)
    point = np.array(frame.origin) + direction @ np.array([point_2d[0], point_2d[1], 0.0])
    normal = direction @ np.array([normal_2d[0], normal_2d[1], 0.0])
    normal = normal if normal[0] >= 0 else -normal
    return Midplane(tuple(float(v) for v in point), tuple(float(v) for v in normal / np.linalg.norm(normal)))
