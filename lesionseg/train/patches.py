"""3D patch sampling with rejection, so that at least a given fraction of the patches contain lesion.

Patch origins are drawn uniformly over every position where the patch fits inside the volume. A draw
whose patch contains lesion (at least one voxel of ``label > 0``) is always accepted; a draw without
lesion is accepted only while the lesion-free patches stay under ``n - ceil(min_lesion_fraction * n)``.
At least ``ceil(min_lesion_fraction * n)`` of the ``n`` patches therefore contain lesion (40 % by
default, as published for (2+1)D and 3D training), and more when lesion is common.

To know in O(1) whether a patch contains lesion, the lesion voxels of every possible patch are counted
once with a summed-volume table (numpy cumulative sums). If rejection needs more than
``max_draws_per_patch * n`` draws (a tiny lesion in a large volume), the missing lesion patches are drawn
uniformly among the origins whose patch contains lesion: the distribution that rejection itself would
give, without the wait.

A volume with no lesion cannot meet the fraction: its patches are then drawn uniformly (none contains
lesion) and no error is raised, so lesion-free cases can still be used for training.

A volume smaller than the patch along an axis is padded on both sides (the image with each channel's
minimum, the label with 0) before sampling. Axes are ``(z, y, x)``, sizes in voxels; the returned arrays
are in random order.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from lesionseg.errors import ParameterError


def _check(volume: Any, label: Any, patch_size: Sequence[int], n: int,
           min_lesion_fraction: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    volume = np.asarray(volume)
    label = np.asarray(label)
    if volume.ndim != 4:
        raise ParameterError(f"volume must be (C, Z, Y, X), got shape {volume.shape}.")
    if label.shape != volume.shape[1:]:
        raise ParameterError(f"label must have the volume's (Z, Y, X) shape {volume.shape[1:]}, got {label.shape}.")
    try:
        size = tuple(int(s) for s in patch_size)
    except (TypeError, ValueError):
        raise ParameterError(f"patch_size must be three positive integers (z, y, x), not {patch_size!r}.") from None
    if len(size) != 3 or min(size) < 1:
        raise ParameterError(f"patch_size must be three positive integers (z, y, x), not {patch_size!r}.")
    if int(n) < 1:
        raise ParameterError(f"the number of patches must be at least 1, not {n}.")
    if not 0.0 <= float(min_lesion_fraction) <= 1.0:
        raise ParameterError(f"min_lesion_fraction must be between 0 and 1, not {min_lesion_fraction}.")
    return volume, label, size  # type: ignore[return-value]


def _pad(volume: np.ndarray, label: np.ndarray,
         size: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad the volume (channel minimum) and label (0) up to ``size``; returns them and the low padding."""
    before = np.array([max(0, p - s) // 2 for p, s in zip(size, label.shape)])
    after = np.array([max(0, p - s) for p, s in zip(size, label.shape)]) - before
    if not (before.any() or after.any()):
        return volume, label, before
    widths = list(zip(before, after))
    label = np.pad(label, widths, constant_values=0)
    volume = np.stack([np.pad(channel, widths, constant_values=channel.min()) for channel in volume])
    return volume, label, before


def lesion_counts_per_origin(lesion: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """Number of lesion voxels in the patch at every valid origin.

    Args:
        lesion: bool ``(Z, Y, X)``.
        size: patch size ``(z, y, x)``, each at most the volume's.

    Returns:
        ``(Z - z + 1, Y - y + 1, X - x + 1)`` int64 counts (a summed-volume table, inclusion-exclusion).
    """
    table = np.zeros(tuple(s + 1 for s in lesion.shape), dtype=np.int64)
    table[1:, 1:, 1:] = lesion.astype(np.int64).cumsum(0).cumsum(1).cumsum(2)
    (dz, dy, dx), (nz, ny, nx) = size, (lesion.shape[0] - size[0] + 1, lesion.shape[1] - size[1] + 1,
                                        lesion.shape[2] - size[2] + 1)

    def corner(z: int, y: int, x: int) -> np.ndarray:
        return table[z:z + nz, y:y + ny, x:x + nx]

    return (corner(dz, dy, dx) - corner(0, dy, dx) - corner(dz, 0, dx) - corner(dz, dy, 0)
            + corner(0, 0, dx) + corner(0, dy, 0) + corner(dz, 0, 0) - corner(0, 0, 0))


def sample_patches(
    volume: np.ndarray,
    label: np.ndarray,
    patch_size: Sequence[int],
    n: int,
    rng: np.random.Generator,
    min_lesion_fraction: float = 0.4,
    *,
    max_draws_per_patch: int = 50,
    return_origins: bool = False,
) -> tuple[np.ndarray, ...]:
    """Sample ``n`` patches, at least ``ceil(min_lesion_fraction * n)`` of them containing lesion.

    Args:
        volume: image ``(C, Z, Y, X)``.
        label: labels ``(Z, Y, X)``; lesion = ``label > 0``.
        patch_size: ``(z, y, x)`` in voxels.
        n: number of patches.
        rng: random generator (the draw is reproducible from its seed).
        min_lesion_fraction: smallest fraction of patches with lesion (when the volume has lesion).
        max_draws_per_patch: rejection draws allowed per patch before the remaining lesion patches are
            drawn directly among the lesion-containing origins.
        return_origins: also return the ``(n, 3)`` patch origins in the input volume's voxel indices
            (negative along an axis that was padded).

    Returns:
        ``(patches, labels)``: ``(n, C, z, y, x)`` with the volume's dtype and ``(n, z, y, x)`` with the
        label's dtype; plus ``origins`` when asked.

    Raises:
        ParameterError: shapes that do not fit, a bad patch size, ``n < 1`` or a fraction outside [0, 1].
    """
    volume, label, size = _check(volume, label, patch_size, n, min_lesion_fraction)
    n = int(n)
    volume, label, padding = _pad(volume, label, size)
    counts = lesion_counts_per_origin(label > 0, size)
    has_lesion = counts > 0
    needed = math.ceil(float(min_lesion_fraction) * n - 1e-9) if has_lesion.any() else 0
    max_negative = n - needed
    origins: list[tuple[int, ...]] = []
    n_positive = 0
    draws = 0
    while len(origins) < n and draws < max_draws_per_patch * n:
        draws += 1
        origin = tuple(int(rng.integers(0, extent)) for extent in counts.shape)
        positive = bool(has_lesion[origin])
        if positive or len(origins) - n_positive < max_negative:
            origins.append(origin)
            n_positive += positive
    if len(origins) < n:  # rejection too slow: draw the missing lesion patches among the positive origins
        positives = np.argwhere(has_lesion)
        picks = positives[rng.integers(0, len(positives), size=n - len(origins))]
        origins.extend(tuple(int(v) for v in pick) for pick in picks)
    origins_array = np.array(origins, dtype=np.int64)[rng.permutation(n)]
    patches = np.empty((n, volume.shape[0], *size), dtype=volume.dtype)
    labels = np.empty((n, *size), dtype=label.dtype)
    for index, (z, y, x) in enumerate(origins_array):
        patches[index] = volume[:, z:z + size[0], y:y + size[1], x:x + size[2]]
        labels[index] = label[z:z + size[0], y:y + size[1], x:x + size[2]]
    if return_origins:
        return patches, labels, origins_array - padding
    return patches, labels
