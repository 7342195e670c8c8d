"""Boxes on 2D slices: from lesion masks, grown by a margin, jittered, RoI-aligned and pasted back.

Conventions (the same as MONAI's ``StandardMode`` boxes with ``indexing="ij"``, so MONAI's anchor generator,
box coder, matcher and NMS take them as they are):

- A slice is ``(H, W)`` = (rows, columns); a batch of slices or feature maps is ``(B, C, H, W)``.
- Coordinates are continuous, in pixels of the slice: pixel ``(r, c)`` covers ``[r, r + 1) x [c, c + 1)`` and its
  centre is ``(r + 0.5, c + 0.5)``.
- A box is ``(row0, col0, row1, col1)`` (float, pixels), ``row1 > row0``, ``col1 > col0``; it holds the pixels
  whose centres lie in ``[row0, row1) x [col0, col1)``. A lesion component spanning rows ``r0..r1`` and columns
  ``c0..c1`` (inclusive) has the box ``(r0, c0, r1 + 1, c1 + 1)``.

``torchvision.ops.roi_align`` and ``paste_masks_in_image`` would do the RoI and paste steps, but torchvision's
PyPI build does not import next to this torch (its NMS operator is missing) and MONAI has no 2D RoI-align, so
both are written here on ``torch.nn.functional.grid_sample``, which samples a feature map at continuous
positions and passes gradients to it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as functional

#: the lesion logit where no detection's mask reaches (probability about 2e-9)
OUTSIDE_LOGIT = -20.0


def boxes_from_mask(mask: np.ndarray) -> np.ndarray:
    """The boxes of the lesion components of one slice's mask.

    Args:
        mask: ``(H, W)``, lesion where non-zero.

    Returns:
        ``(N, 4)`` float32 boxes ``(row0, col0, row1, col1)`` in pixels (see the module docstring), one per
        8-connected component (pixels touching at a corner are one lesion, as in 2D lesion counts), in
        ``scipy.ndimage.label``'s order (by first pixel in raster order); ``(0, 4)`` without lesion.
    """
    from scipy import ndimage

    labels, count = ndimage.label(np.asarray(mask) != 0, structure=np.ones((3, 3), dtype=bool))
    boxes = [(rows.start, cols.start, rows.stop, cols.stop) for rows, cols in ndimage.find_objects(labels)[:count]]
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def grow_boxes(boxes: torch.Tensor, margin: float, min_margin: float = 2.0) -> torch.Tensor:
    """Boxes ``(N, 4)`` grown on every side by ``margin`` times their size along that axis, at least
    ``min_margin`` pixels: the region a box's mask is predicted on (its context included)."""
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-3)
    grow = (size * margin).clamp(min=min_margin)
    return torch.cat([boxes[:, :2] - grow, boxes[:, 2:] + grow], dim=1)


def jitter_boxes(boxes: torch.Tensor, shift: float = 0.1, scale: float = 0.15,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Boxes ``(N, 4)`` moved by up to ``shift`` of their size and rescaled by a factor in ``exp(±scale)`` per
    axis (uniform draws): what a detector's imperfect boxes look like, for training the mask head."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = boxes[:, 2:] - boxes[:, :2]
    draws = torch.rand(boxes.shape[0], 4, generator=generator, device="cpu").to(boxes) * 2 - 1
    centre = centre + draws[:, :2] * shift * size
    size = size * torch.exp(draws[:, 2:] * scale)
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def _grid(regions: torch.Tensor, size: int, height: int, width: int) -> torch.Tensor:
    """``grid_sample`` positions ``(N, size, size, 2)`` of the centres of a ``size x size`` grid of cells over
    each region, normalised for ``align_corners=False`` (-1 and 1 are the outer edges of the first and last
    pixels), last axis (column, row) as ``grid_sample`` wants it."""
    steps = (torch.arange(size, device=regions.device, dtype=regions.dtype) + 0.5) / size  # (size,) in (0, 1)
    rows = regions[:, 0:1] + steps[None] * (regions[:, 2:3] - regions[:, 0:1])  # (N, size) pixels
    cols = regions[:, 1:2] + steps[None] * (regions[:, 3:4] - regions[:, 1:2])
    rows = rows * (2.0 / height) - 1.0
    cols = cols * (2.0 / width) - 1.0
    return torch.stack([cols[:, None, :].expand(-1, size, -1), rows[:, :, None].expand(-1, -1, size)], dim=-1)


def roi_align(maps: torch.Tensor, regions: torch.Tensor, image_size: tuple[int, int], size: int,
              sampling: int = 2) -> torch.Tensor:
    """Resample each region of one slice's maps onto a ``size x size`` grid (RoI-align).

    Each output cell is the mean of ``sampling x sampling`` bilinear samples inside it (as RoIAlign with a
    sampling ratio); positions outside the maps take the nearest border value.

    Args:
        maps: ``(1, C, h, w)``, one slice's features at any stride (``h/H = w/W``), or the slice itself.
        regions: ``(N, 4)`` boxes in pixels of the slice (see the module docstring).
        image_size: ``(H, W)``, the slice's size in pixels (what the region coordinates refer to).
        size: the output grid's side in cells.
        sampling: bilinear samples per cell and axis.

    Returns:
        ``(N, C, size, size)``.
    """
    count = regions.shape[0]
    channels = maps.shape[1]
    if count == 0:
        return maps.new_zeros((0, channels, size, size))
    fine = size * sampling
    grid = _grid(regions.to(maps.dtype), fine, *image_size)  # (N, fine, fine, 2)
    # one grid_sample call: the regions' grids stacked along the rows of one sampling grid
    sampled = functional.grid_sample(maps, grid.reshape(1, count * fine, fine, 2), mode="bilinear",
                                     padding_mode="border", align_corners=False)  # (1, C, N * fine, fine)
    sampled = sampled.reshape(channels, count, fine, fine).permute(1, 0, 2, 3)
    return functional.avg_pool2d(sampled, sampling) if sampling > 1 else sampled


def paste_masks(mask_logits: torch.Tensor, regions: torch.Tensor, image_size: tuple[int, int],
                outside: float = OUTSIDE_LOGIT) -> torch.Tensor:
    """Paste the masks predicted on regions back into one slice; where regions overlap, the larger logit wins.

    A region's pixels are those whose centres lie in it; each takes the mask's logit at its position (bilinear,
    the mask's cells covering the region evenly). Pixels of no region get ``outside``.

    Args:
        mask_logits: ``(N, M, M)`` mask logits, one grid per region.
        regions: ``(N, 4)`` boxes in pixels of the slice (see the module docstring).
        image_size: ``(H, W)`` of the slice.
        outside: the logit of pixels no region covers.

    Returns:
        ``(H, W)`` logits.
    """
    height, width = image_size
    out = mask_logits.new_full((height, width), outside)
    for logits, (row0, col0, row1, col1) in zip(mask_logits, regions.tolist()):
        # pixels i with row0 <= i + 0.5 < row1
        first_row, last_row = max(int(np.ceil(row0 - 0.5)), 0), min(int(np.ceil(row1 - 0.5)), height)
        first_col, last_col = max(int(np.ceil(col0 - 0.5)), 0), min(int(np.ceil(col1 - 0.5)), width)
        if first_row >= last_row or first_col >= last_col:
            continue
        rows = torch.arange(first_row, last_row, device=out.device, dtype=out.dtype) + 0.5
        cols = torch.arange(first_col, last_col, device=out.device, dtype=out.dtype) + 0.5
        rows = (rows - row0) / (row1 - row0) * 2.0 - 1.0
        cols = (cols - col0) / (col1 - col0) * 2.0 - 1.0
        grid = torch.stack([cols[None, :].expand(len(rows), -1), rows[:, None].expand(-1, len(cols))], dim=-1)
        values = functional.grid_sample(logits[None, None], grid[None], mode="bilinear", padding_mode="border",
                                        align_corners=False)[0, 0]
        window = out[first_row:last_row, first_col:last_col].clone()  # a copy: the write below must not change it
        out[first_row:last_row, first_col:last_col] = torch.maximum(window, values)
    return out
