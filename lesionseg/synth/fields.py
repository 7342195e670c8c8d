"""Smooth random fields on coarse lattices, sampled at points or on an image grid.

A :class:`LatticeField` is a scalar field stored on a regular lattice in some frame (for the phantom, the
head frame, in millimetres) and read by linear interpolation. It is cheap to build (white noise smoothed
with a Gaussian at low resolution) and cheap to read on a full image grid, which is why the phantom builds
its smooth variation this way instead of filtering full-resolution noise. On a grid whose axes are
parallel to the lattice's, the read is three separable 1D passes; on a rotated grid it goes through
SimpleITK's resampler (C++, multi-threaded). At scattered points it uses SciPy. All three are linear
interpolation of the same lattice and agree to float precision inside it (SimpleITK alone also reads half
a lattice step beyond the edge, where the phantom's fields are flat or unused).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.synth.geometry import Affine, Grid


@dataclass
class LatticeField:
    """A scalar field on a regular lattice, read by linear interpolation.

    Attributes:
        values: Field values, float32 array of shape (nz, ny, nx).
        origin_mm: Frame coordinates (x, y, z) in mm of lattice point ``values[0, 0, 0]``.
        spacing_mm: Lattice spacing in mm (the same along x, y and z).
        outside: Value read outside the lattice.
    """

    values: np.ndarray
    origin_mm: tuple[float, float, float]
    spacing_mm: float
    outside: float = 0.0

    def sample_points(self, qx: np.ndarray, qy: np.ndarray, qz: np.ndarray) -> np.ndarray:
        """Read the field at scattered points given in the lattice's frame (mm); ``outside`` outside it.

        Args:
            qx, qy, qz: Point coordinates in mm, arrays of one shape.

        Returns:
            float32 array of the points' shape.
        """
        coords = np.stack(
            [
                (np.asarray(qz, np.float64) - self.origin_mm[2]) / self.spacing_mm,
                (np.asarray(qy, np.float64) - self.origin_mm[1]) / self.spacing_mm,
                (np.asarray(qx, np.float64) - self.origin_mm[0]) / self.spacing_mm,
            ]
        )
        out = ndimage.map_coordinates(
            self.values, coords.reshape(3, -1), order=1, mode="constant", cval=self.outside, prefilter=False
        )
        return out.reshape(np.shape(qx)).astype(np.float32)

    def to_image(self) -> sitk.Image:
        """The lattice as a SimpleITK image whose physical space is the field's frame."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(self.values, dtype=np.float32))
        image.SetOrigin(tuple(float(v) for v in self.origin_mm))
        image.SetSpacing((float(self.spacing_mm),) * 3)
        return image

    def sample_grid(self, grid: Grid, grid_to_frame: Affine) -> np.ndarray:
        """Read the field at every voxel centre of ``grid``; ``outside`` outside the lattice.

        Args:
            grid: The image grid (its physical space).
            grid_to_frame: Affine map from the grid's physical points to the field's frame.

        Returns:
            float32 array of shape (nz, ny, nx).
        """
        index_to_lattice = Affine(np.eye(3) / self.spacing_mm, -np.asarray(self.origin_mm) / self.spacing_mm)
        index_to_lattice = index_to_lattice @ grid_to_frame @ grid.index_to_physical()
        matrix = index_to_lattice.matrix
        if np.allclose(matrix, np.diag(np.diag(matrix)), rtol=0.0, atol=1e-12):
            return _separable_linear(self.values, np.diag(matrix), index_to_lattice.offset, grid.shape_zyx,
                                     self.outside)
        transform = sitk.AffineTransform(3)
        transform.SetMatrix(tuple(float(v) for v in grid_to_frame.matrix.ravel()))
        transform.SetTranslation(tuple(float(v) for v in grid_to_frame.offset))
        resampled = sitk.Resample(
            self.to_image(), grid.empty_image(), transform, sitk.sitkLinear, self.outside, sitk.sitkFloat32
        )
        return sitk.GetArrayViewFromImage(resampled).copy()


def _separable_linear(values: np.ndarray, scale_xyz, offset_xyz, shape_zyx, outside: float) -> np.ndarray:
    """Trilinear interpolation on an axis-aligned grid as three 1D passes; ``outside`` outside the lattice.

    Used when the grid's axes are parallel to the lattice's (the usual, unrotated case): linear
    interpolation is separable, and three passes of two gathers each are several times faster than a
    general resampler. Lattice coordinate along array axis a of output index i: ``scale * i + offset``.
    """
    out = values
    inside = np.ones((1, 1, 1), np.float32)
    for axis, xyz in ((2, 0), (1, 1), (0, 2)):
        n, size = shape_zyx[axis], values.shape[axis]
        pos = scale_xyz[xyz] * np.arange(n) + offset_xyz[xyz]
        valid = (pos >= -1e-6) & (pos <= size - 1 + 1e-6)
        low = np.clip(np.floor(pos), 0, size - 2).astype(np.intp)
        w1 = np.where(valid, np.clip(pos - low, 0.0, 1.0), 0.0).astype(np.float32)
        w0 = np.where(valid, 1.0 - w1, 0.0).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = n
        out = (np.take(out, low, axis=axis) * w0.reshape(shape)
               + np.take(out, low + 1, axis=axis) * w1.reshape(shape))
        inside = inside * valid.astype(np.float32).reshape(shape)
    if outside != 0.0:
        out += np.float32(outside) * (1.0 - inside)
    return np.ascontiguousarray(out, dtype=np.float32)


def smooth_noise(
    rng: np.random.Generator,
    half_extent_mm: tuple[float, float, float],
    spacing_mm: float,
    sigma_mm: float,
    centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> LatticeField:
    """Gaussian-smoothed white noise on a lattice, scaled to unit standard deviation.

    The lattice is centred on ``centre_mm`` and symmetric about it along each axis, so that flipping
    ``values`` along an axis mirrors the field about the centre (used to build symmetric anatomy).

    Args:
        rng: Random generator (consumed).
        half_extent_mm: Half the lattice size along x, y, z in mm.
        spacing_mm: Lattice spacing in mm.
        sigma_mm: Gaussian smoothing width in mm (sets the correlation length).
        centre_mm: Frame coordinates of the lattice centre.

    Returns:
        The field, zero mean and unit standard deviation over the lattice.
    """
    counts = [2 * int(np.ceil(h / spacing_mm)) + 1 for h in half_extent_mm]  # x, y, z
    noise = rng.standard_normal((counts[2], counts[1], counts[0]), dtype=np.float32)
    smooth = ndimage.gaussian_filter(noise, sigma_mm / spacing_mm, mode="wrap")
    smooth -= smooth.mean()
    smooth /= max(float(smooth.std()), 1e-12)
    origin = tuple(c - (n - 1) / 2 * spacing_mm for c, n in zip(centre_mm, counts))
    return LatticeField(smooth.astype(np.float32), origin, spacing_mm)


def lattice_points(field: LatticeField) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame coordinates (mm) of every lattice point, each an array of shape (nz, ny, nx)."""
    nz, ny, nx = field.values.shape
    h = field.spacing_mm
    z, y, x = np.meshgrid(
        field.origin_mm[2] + h * np.arange(nz),
        field.origin_mm[1] + h * np.arange(ny),
        field.origin_mm[0] + h * np.arange(nx),
        indexing="ij",
    )
    return x.astype(np.float32), y.astype(np.float32), z.astype(np.float32)


def taper(field: LatticeField, margin_mm: float) -> LatticeField:
    """Multiply the field by a smooth window that falls to 0 over ``margin_mm`` at the lattice borders.

    Outside the lattice a field reads as 0; the taper removes the jump there.
    """
    window = np.ones_like(field.values)
    for axis in range(3):
        n = field.values.shape[axis]
        distance = np.minimum(np.arange(n), np.arange(n)[::-1]) * field.spacing_mm
        ramp = np.clip(distance / margin_mm, 0.0, 1.0)
        ramp = 0.5 - 0.5 * np.cos(np.pi * ramp)
        shape = [1, 1, 1]
        shape[axis] = n
        window = window * ramp.reshape(shape).astype(np.float32)
    return LatticeField(field.values * window, field.origin_mm, field.spacing_mm, field.outside)
