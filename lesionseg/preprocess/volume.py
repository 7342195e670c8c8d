"""Prepared slices as one ``(z, y, x)`` volume, for 3D networks (training patches, sliding-window inference).

A prepared case is a stack of ``S x S`` axial slices, each at its index along the prepared grid's slice
axis (``record.slice_indices``, the ``slice_index`` column of ``slices.csv``). A 3D network needs the
slices as a volume: slice ``k`` of the volume is grid slice ``first + k``. When some grid slices between the
first and the last are not in the stack (not kept by the preparation), the volume has gaps; they are
filled with a constant (a channel's background for images, 0 for masks).

Axes: slices ``(N, ...)`` in; volume ``(Z, ...)`` out, ``Z = max(index) - min(index) + 1``; the axes after
the first are the slices' own (``(C, S, S)`` images or ``(S, S)`` masks, rows anterior-posterior, columns
right-left).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lesionseg.errors import ParameterError


def slices_to_volume(slices: np.ndarray, slice_indices: Sequence[int],
                     fill: float | np.ndarray = 0.0) -> tuple[np.ndarray, int]:
    """Put slices at their grid positions in one volume; grid slices not given are ``fill``.

    Args:
        slices: ``(N, ...)`` slices in any order.
        slice_indices: the grid index of each slice (distinct integers).
        fill: the value of missing slices: a scalar, or an array broadcastable to one slice (e.g.
            ``(C, 1, 1)`` per-channel values for ``(C, S, S)`` image slices).

    Returns:
        ``(volume, first)``: ``(Z, ...)`` with the slices' dtype, and the grid index of ``volume[0]``.

    Raises:
        ParameterError: no slices, a count that differs from the indices, or a repeated index.
    """
    slices = np.asarray(slices)
    indices = np.asarray(slice_indices, dtype=np.int64)
    if slices.shape[0] == 0 or indices.shape != (slices.shape[0],):
        raise ParameterError(f"slices_to_volume needs one grid index per slice; got {slices.shape[0]} slices "
                             f"and {indices.size} indices.")
    if np.unique(indices).size != indices.size:
        raise ParameterError("slices_to_volume was given the same grid index twice.")
    first = int(indices.min())
    depth = int(indices.max()) - first + 1
    volume = np.empty((depth, *slices.shape[1:]), dtype=slices.dtype)
    volume[...] = np.asarray(fill, dtype=slices.dtype)
    volume[indices - first] = slices
    return volume, first


def channel_background(images: np.ndarray) -> np.ndarray:
    """Each channel's minimum over image slices ``(N, C, S, S)``, shaped ``(C, 1, 1)`` (a slice's fill value).

    Prepared MRI is z-scored inside the brain and CT windowed, so the background is the channel's
    minimum, not 0.
    """
    images = np.asarray(images)
    return images.min(axis=(0, 2, 3)).reshape(-1, 1, 1)
