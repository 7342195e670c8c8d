"""Toy 2D slices with disk lesions: an easy subset (large, bright) and a hard one (tiny, faint or invisible).

Used where a difficulty measure must be checked against a known answer (the gradient difficulty's test and
benchmark): the hard slices are hard by construction, whatever the measure.
"""

from __future__ import annotations

import numpy as np


def disk_slices(seed: int, n_easy: int, n_hard: int, *, size: int = 64, easy_contrast: float = 3.0,
                hard_contrast: float = 0.5) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Easy slices first (disk radius 7-10 pixels), then hard ones (radius 1.5-2.5), on unit Gaussian noise.

    Args:
        seed: random seed (the same seed gives the same slices).
        n_easy, n_hard: how many slices of each kind.
        size: side of the square slices in pixels.
        easy_contrast, hard_contrast: the lesion's added intensity, in units of the noise's standard deviation
            (0 makes the hard lesions invisible).

    Returns:
        ``(images, masks, rows)``: float32 images (N, 1, size, size) in (slice, channel, y, x) order, uint8
        masks (N, size, size), and one row per slice (``case_id`` ``s<index>``, ``slice_index``, ``has_lesion``
        True, ``hard``).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, masks, rows = [], [], []
    for index in range(n_easy + n_hard):
        hard = index >= n_easy
        cy, cx = rng.integers(20, 44, 2)
        radius = rng.uniform(1.5, 2.5) if hard else rng.uniform(7, 10)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius).astype(np.uint8)
        image = rng.normal(0.0, 1.0, (size, size)) + (hard_contrast if hard else easy_contrast) * mask
        images.append(image[None].astype(np.float32))
        masks.append(mask)
        rows.append({"case_id": f"s{index}", "slice_index": index, "has_lesion": True, "hard": hard})
    return np.stack(images), np.stack(masks), rows
