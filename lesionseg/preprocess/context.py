"""Neighbouring slices (2.5D input): gathered at preparation, stacked into the network's input channels.

A 2D network sees one axial slice; with ``k`` context slices it also sees the ``k`` slices below and
above it on the prepared grid, as extra input channels. They are gathered from the whole prepared stack
(every grid slice, not only the kept ones), so a kept slice next to a slice that was not kept still has
its true neighbours; at the first and last grid slice the edge slice repeats. They are flipped with their
centre slice (the hemisphere flip of training and of ``--side``), so a neighbour always shows the same
hemisphere as its centre.

Storage: ``context`` (N, C, 2k, S, S) float32 beside ``images`` (N, C, S, S), the neighbours in offset
order -k .. -1, +1 .. +k (slice index below first). The network input (:func:`network_input`) orders each
channel's slices by offset, -k .. +k with the centre in the middle: channel c's slices are input channels
``c * (2k + 1) .. c * (2k + 1) + 2k``.
"""

from __future__ import annotations

import numpy as np

from lesionseg.errors import DatasetError


def neighbour_offsets(context_slices: int) -> list[int]:
    """Slice offsets of the stored neighbours: ``-k .. -1, +1 .. +k``."""
    k = int(context_slices)
    return [offset for offset in range(-k, k + 1) if offset != 0]


def gather_context(stack: np.ndarray, kept: np.ndarray, context_slices: int) -> np.ndarray:
    """The neighbours of the kept slices.

    Args:
        stack: (Z, C, S, S) every slice of the prepared grid.
        kept: (N,) grid indices of the kept slices.
        context_slices: k, neighbours on each side.

    Returns:
        (N, C, 2k, S, S) float32 (an empty second-to-third axis when k = 0); indices beyond the grid repeat
        the edge slice.
    """
    kept = np.asarray(kept, dtype=np.int64)
    offsets = neighbour_offsets(context_slices)
    if not offsets:
        return np.zeros((kept.size, stack.shape[1], 0) + stack.shape[2:], np.float32)
    last = stack.shape[0] - 1
    chosen = [stack[np.clip(kept + offset, 0, last)] for offset in offsets]  # each (N, C, S, S)
    return np.ascontiguousarray(np.stack(chosen, axis=2), dtype=np.float32)


def network_input(images: np.ndarray, context: np.ndarray | None, context_slices: int) -> np.ndarray:
    """The 2.5D network input of prepared slices.

    Args:
        images: (N, C, S, S) the centre slices.
        context: (N, C, 2m, S, S) stored neighbours (m >= k), or None when none were stored.
        context_slices: k, neighbours on each side that the network takes.

    Returns:
        (N, C * (2k + 1), S, S) float32: per channel, offsets -k .. +k (the images themselves when k = 0).

    Raises:
        DatasetError: fewer stored neighbours than ``context_slices``.
    """
    k = int(context_slices)
    if k == 0:
        return images
    stored = 0 if context is None else context.shape[2] // 2
    if stored < k:
        raise DatasetError(f"the prepared slices hold {stored} neighbouring slice(s) on each side, but the network "
                           f"takes {k}; prepare the data again with --context {k} or more.")
    offsets = neighbour_offsets(stored)
    position = {offset: index for index, offset in enumerate(offsets)}
    parts = []
    for offset in range(-k, k + 1):
        parts.append(images if offset == 0 else context[:, :, position[offset]])
    stacked = np.stack(parts, axis=2)  # (N, C, 2k + 1, S, S)
    return np.ascontiguousarray(stacked.reshape(images.shape[0], -1, *images.shape[2:]), dtype=np.float32)
