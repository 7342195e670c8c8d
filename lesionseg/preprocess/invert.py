"""Mapping prepared slices back onto the reference channel's native grid.

NumPy and SimpleITK are imported inside the functions: the package imports this module eagerly (its
``invert`` function shares the module's name, which a lazy import would let the module shadow), and the
package must stay light for the command line's parsers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from lesionseg.errors import ParameterError

if TYPE_CHECKING:
    import numpy as np
    import SimpleITK as sitk

    from lesionseg.preprocess.record import PrepareRecord

#: ``(index, size)`` of a box of a grid, each (x, y, z) in voxels
Box = tuple[tuple[int, ...], tuple[int, ...]]


def stack_on_grid(slices: np.ndarray, record: PrepareRecord, flipped: list[bool] | None = None) -> sitk.Image:
    """Place prepared slices back on the prepared grid, undoing their flips; missing slices are 0.

    Args:
        slices: (N, S, S) in the record's slice order (``record.slice_indices``).
        record: the case's preparation record.
        flipped: per-slice flips to undo (default: the record's).

    Returns:
        A float32 image with the prepared grid's geometry, (S, S, number of grid slices) voxels.
    """
    import numpy as np
    import SimpleITK as sitk

    slices = np.asarray(slices)
    size = record.grid.size
    expected = (len(record.slice_indices), size, size)
    if slices.shape != expected:
        raise ParameterError(f"invert expects slices of shape {expected} for case {record.case_id}, got {slices.shape}.")
    flips = record.flipped if flipped is None else flipped
    stack = np.zeros((record.grid.n_slices, size, size), np.float32)
    for position, (index, flip) in enumerate(zip(record.slice_indices, flips)):
        stack[index] = slices[position][:, ::-1] if flip else slices[position]
    image = sitk.GetImageFromArray(stack)
    geometry = record.grid.geometry
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    return image


def invert(slices: np.ndarray, record: PrepareRecord, *, kind: Literal["probability", "label"] = "probability",
           flipped: list[bool] | None = None, box: Box | None = None) -> sitk.Image:
    """Map a stack of 2D predictions back onto the reference channel's native grid.

    Args:
        slices: (N, S, S) probabilities in [0, 1] or 0/1 labels, one per kept slice, in record order.
        record: the preparation record (nothing else is needed).
        kind: ``"probability"`` returns float32 probabilities (linear interpolation);
            ``"label"`` interpolates linearly and thresholds at 0.5, returning uint8 0/1.
        flipped: per-slice flips to undo instead of the record's (inference on mirrored slices).
        box: None for the whole native grid, or ``(index, size)`` (x, y, z) of a box of it, e.g.
            :func:`footprint_box`: the result then covers that box alone (on a large CT, most of the native
            grid lies outside the prepared grid and would only receive zeros;
            :func:`lesionseg.io.geometry.paste_into` makes the whole image from the box).

    Returns:
        An image with exactly the native geometry (size, spacing, origin, direction) of the reference, or
        of the box of it.
    """
    import SimpleITK as sitk

    if kind not in ("probability", "label"):
        raise ParameterError(f"kind must be 'probability' or 'label', not {kind!r}.")
    stacked = stack_on_grid(slices, record, flipped)
    geometry = record.native if box is None else record.native.sub_grid(*box)
    reference = geometry.reference_image(sitk.sitkFloat32)
    native = sitk.Resample(stacked, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    if kind == "label":
        labels = sitk.BinaryThreshold(native, 0.5, 1e30, 1, 0)
        return sitk.Cast(labels, sitk.sitkUInt8)
    return native


def footprint_box(record: PrepareRecord) -> Box | None:
    """The box of the native grid that can receive non-zero values from the prepared grid.

    Returns:
        ``(index, size)`` (x, y, z), or None when the prepared grid covers the whole native grid or misses it
        (then there is nothing to save by cropping).
    """
    index, size = record.native.box_holding(record.grid.geometry)
    if min(size) == 0 or tuple(size) == tuple(record.native.size):
        return None
    return index, size
