"""The physical grid of an image and comparisons between grids.

SimpleITK images carry their grid: size and spacing in (x, y, z) order, origin in LPS millimetres, and a
row-major 3x3 direction matrix whose columns are the image axes in LPS. NumPy arrays taken from them are
indexed (z, y, x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import GeometryError

#: Default tolerances for "the same grid": spacing and origin relative to the voxel size, direction cosines.
SPACING_TOLERANCE = 1e-3
ORIGIN_TOLERANCE_VOXELS = 1e-2
DIRECTION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Geometry:
    """The grid of a 3D image.

    Attributes:
        size: voxels along (x, y, z).
        spacing: mm along (x, y, z).
        origin: LPS mm of voxel (0, 0, 0)'s centre.
        direction: row-major 3x3 matrix, columns = image axes in LPS.
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, image: sitk.Image) -> "Geometry":
        """The geometry of a SimpleITK image."""
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()), tuple(image.GetOrigin()),
                   tuple(image.GetDirection()))

    def describe(self) -> str:
        """A short human description: ``192x224x48 voxels of 1x1x3 mm``."""
        size = "x".join(str(n) for n in self.size)
        spacing = "x".join(f"{s:g}" for s in self.spacing)
        return f"{size} voxels of {spacing} mm"

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"size": list(self.size), "spacing": list(self.spacing), "origin": list(self.origin),
                "direction": list(self.direction)}

    @classmethod
    def from_dict(cls, data: dict) -> "Geometry":
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(int(n) for n in data["size"]), tuple(float(s) for s in data["spacing"]),
                   tuple(float(o) for o in data["origin"]), tuple(float(d) for d in data["direction"]))

    def reference_image(self, pixel_type: int = sitk.sitkUInt8) -> sitk.Image:
        """An empty image on this grid (for resampling onto it)."""
        image = sitk.Image([int(n) for n in self.size], pixel_type)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def box_holding(self, other: "Geometry", margin: int = 1) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The box of this grid's voxels whose centres may lie inside ``other``'s extent.

        ``other``'s eight corners (continuous indices -0.5 and size - 0.5 on each axis) are mapped into this
        grid's continuous indices; the box is their bounding box rounded outwards, widened by ``margin``
        voxels and clipped to this grid. Resampling ``other`` onto this grid gives its default value outside
        the box, so work on the box alone loses nothing.

        Returns:
            ``(index, size)`` along (x, y, z); a size of 0 on some axis when the grids do not overlap.
        """
        corners = np.array([[c0, c1, c2] for c0 in (0, 1) for c1 in (0, 1) for c2 in (0, 1)], float)
        other_size = np.asarray(other.size, float)
        other_index = corners * other_size - 0.5  # -0.5 or size - 0.5
        other_axes = np.asarray(other.direction, float).reshape(3, 3) * np.asarray(other.spacing, float)
        physical = np.asarray(other.origin, float) + other_index @ other_axes.T
        own_axes = np.asarray(self.direction, float).reshape(3, 3) * np.asarray(self.spacing, float)
        own_index = np.linalg.solve(own_axes, (physical - np.asarray(self.origin, float)).T).T
        low = np.maximum(np.floor(own_index.min(axis=0)) - margin, 0).astype(int)
        high = np.minimum(np.ceil(own_index.max(axis=0)) + margin, np.asarray(self.size) - 1).astype(int)
        size = np.maximum(high - low + 1, 0)
        return tuple(int(v) for v in low), tuple(int(v) for v in size)

    def sub_grid(self, index: tuple[int, ...], size: tuple[int, ...]) -> "Geometry":
        """The grid of the box ``index`` .. ``index + size - 1`` (x, y, z) of this grid: same spacing and
        direction, origin at the box's first voxel."""
        axes = np.asarray(self.direction, float).reshape(3, 3) * np.asarray(self.spacing, float)
        origin = np.asarray(self.origin, float) + axes @ np.asarray(index, float)
        return Geometry(tuple(int(n) for n in size), self.spacing, tuple(float(v) for v in origin), self.direction)


def crop_to_box(image: sitk.Image, box: tuple) -> sitk.Image:
    """The box ``(index, size)`` (voxels, x, y, z) of ``image``, with its physical place kept."""
    index, size = box
    return sitk.RegionOfInterest(image, [int(v) for v in size], [int(v) for v in index])


def paste_into(image: sitk.Image, whole: Geometry, box: tuple | None) -> sitk.Image:
    """The image on the grid ``whole`` made from ``image``, which covers its box ``(index, size)`` (voxels,
    x, y, z; e.g. :func:`crop_to_box`'s or :meth:`Geometry.sub_grid`'s): zeros around it. A ``box`` of None
    returns ``image`` unchanged (it is already whole)."""
    if box is None:
        return image
    canvas = whole.reference_image(image.GetPixelID())
    return sitk.Paste(canvas, image, image.GetSize(), [0, 0, 0], [int(v) for v in box[0]])


def geometry_difference(first: "sitk.Image | Geometry", second: "sitk.Image | Geometry") -> str | None:
    """Say how two grids differ, or return ``None`` when they are the same within tolerance.

    Tolerances: spacing relative 1e-3, origin 1 % of the smallest voxel size, direction cosines 1e-3.
    """
    a = first if isinstance(first, Geometry) else Geometry.of(first)
    b = second if isinstance(second, Geometry) else Geometry.of(second)
    if a.size != b.size:
        return f"size {a.describe()} vs {b.describe()}"
    if not np.allclose(a.spacing, b.spacing, rtol=SPACING_TOLERANCE, atol=0):
        return f"spacing {a.describe()} vs {b.describe()}"
    origin_tolerance = ORIGIN_TOLERANCE_VOXELS * min(min(a.spacing), min(b.spacing))
    if not np.allclose(a.origin, b.origin, rtol=0, atol=origin_tolerance):
        return "origin " + ", ".join(f"{o:.2f}" for o in a.origin) + " vs " + ", ".join(f"{o:.2f}" for o in b.origin) + " mm"
    if not np.allclose(a.direction, b.direction, rtol=0, atol=DIRECTION_TOLERANCE):
        return "direction matrix differs"
    return None


def require_same_geometry(images: "dict[str, sitk.Image | Geometry]", context: str) -> None:
    """Raise :class:`GeometryError` unless all images share the first one's grid.

    Args:
        images: name -> image or its geometry (names appear in the message, e.g. file names).
        context: what they belong to, e.g. ``"case sub-strokecase0001"``.
    """
    names = list(images)
    for name in names[1:]:
        difference = geometry_difference(images[names[0]], images[name])
        if difference is not None:
            raise GeometryError(
                f"{context}: {name} and {names[0]} are on different grids ({difference}); "
                "resample or register them onto one grid first."
            )


def resample_onto(image: sitk.Image, reference: sitk.Image, *, is_mask: bool, default_value: float = 0.0,
                  transform: sitk.Transform | None = None) -> sitk.Image:
    """Resample ``image`` onto ``reference``'s grid (nearest neighbour for masks, linear otherwise).

    Args:
        image: the image to resample.
        reference: the grid to land on (its size, spacing, origin, direction).
        is_mask: labels are resampled nearest-neighbour and keep their pixel type.
        default_value: value outside ``image``'s extent.
        transform: maps points of ``reference`` space to ``image`` space (ITK convention); identity if None.
    """
    interpolator = sitk.sitkNearestNeighbor if is_mask else sitk.sitkLinear
    return sitk.Resample(image, reference, transform or sitk.Transform(), interpolator, default_value,
                         image.GetPixelID())
