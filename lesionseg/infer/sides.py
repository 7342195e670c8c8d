"""``side="auto"``: which hemisphere's orientation each slice is read in.

Models are trained on slices flipped so that the lesion lies in one hemisphere (the training side); they
learn that the other hemisphere holds no lesion. Without a known side, the predictor runs the network on
each slice as it is and mirrored about the mid-sagittal plane. Each pass finds the lesions of one
hemisphere, and each also has its own false positives in that hemisphere.

Taking the voxelwise maximum of the two passes keeps both passes' false positives. Instead:

1. the case's main orientation is the pass with the larger lesion mass over the whole case (lesion mass:
   the sum of the probabilities at or above the threshold); every slice is read in it;
2. the other hemisphere is read too only when the model finds real lesion there: when the other pass's
   mass over the case is at least ``second_side_fraction`` (a quarter) of the main pass's; then each slice
   keeps the pass with the larger mass in that slice (as training flips every slice on its own).

Most strokes lie in one hemisphere (all of the synthetic cohort's): step 1 then drops the other pass's
false positives entirely. A lesion in both hemispheres of one slice keeps only its larger side there.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: the other hemisphere is read when the model finds at least this fraction of the main side's lesion there
SECOND_SIDE_FRACTION = 0.25


def lesion_mass(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Per slice: the sum of the probabilities at or above ``threshold``; ``(N, S, S)`` -> ``(N,)``."""
    kept = np.where(probabilities >= threshold, probabilities, 0.0)
    return kept.reshape(len(probabilities), -1).sum(axis=1)


def choose_orientation(as_is: np.ndarray, mirrored_back: np.ndarray, threshold: float,
                       second_side_fraction: float = SECOND_SIDE_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Combine the two passes (see the module docstring).

    Args:
        as_is: ``(N, S, S)`` probabilities of the slices as they are.
        mirrored_back: ``(N, S, S)`` probabilities of the mirrored slices, mirrored back (same voxel order).
        threshold: the labelmap's probability threshold.
        second_side_fraction: how much lesion (relative to the main side's) the other pass must find over
            the case before any slice is read in it.

    Returns:
        The combined ``(N, S, S)`` probabilities and a boolean ``(N,)``: True where the mirrored pass was kept.
    """
    mass_as_is, mass_mirrored = lesion_mass(as_is, threshold), lesion_mass(mirrored_back, threshold)
    main_is_mirrored = mass_mirrored.sum() > mass_as_is.sum()  # ties: as it is
    main_total, other_total = sorted((mass_as_is.sum(), mass_mirrored.sum()), reverse=True)
    if other_total > 0 and other_total >= second_side_fraction * main_total:
        use_mirrored = mass_mirrored > mass_as_is  # both hemispheres: slice by slice
    else:
        use_mirrored = np.full(len(as_is), bool(main_is_mirrored))
    combined = np.where(use_mirrored[:, None, None], mirrored_back, as_is)
    return combined.astype(as_is.dtype, copy=False), use_mirrored


#: the mirrored pass reads every this many slices even where the as-is pass finds no lesion, to find lesions
#: that only the mirrored orientation shows (lesions span several slices; neighbours of a find are read too)
SAMPLE_STRIDE = 2


def _with_neighbours(flags: np.ndarray) -> np.ndarray:
    """``flags`` (N,) bool, grown by one slice on each side."""
    grown = flags.copy()
    grown[1:] |= flags[:-1]
    grown[:-1] |= flags[1:]
    return grown


def read_other_side(as_is: np.ndarray, run_mirrored: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
                    threshold: float, *, stride: int = SAMPLE_STRIDE,
                    second_side_fraction: float = SECOND_SIDE_FRACTION,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """:func:`choose_orientation` with the mirrored pass run only on the slices that can change its result.

    The mirrored pass is run (by ``run_mirrored``) on: the slices where the as-is pass finds lesion mass and
    their neighbours; every ``stride``-th slice; every slice when the as-is pass finds no
    lesion at all. Then, until nothing changes: the neighbours of every slice where the mirrored pass finds
    lesion mass (so a lesion that only the mirrored orientation shows is read over its whole extent), and
    every slice that the decision reads mirrored. A slice never read mirrored counts as mirrored lesion mass
    0. ``stride=1`` reads every slice: exactly :func:`choose_orientation` of two full passes.

    What this can change, against two full passes: mirrored lesion mass on a slice that is not read (no
    as-is lesion there or beside it, between two sampled slices, no mirrored lesion beside it), i.e. a
    lesion of one slice in the other hemisphere, or a false positive of the mirrored pass; both only count
    towards the case's totals, and the result changes only when they tip the choice of the main side or of
    reading both sides. ``benchmarks/bench_segment.py`` checks the masks against two full passes.

    Args:
        as_is: ``(N, S, S)`` probabilities of the slices as they are.
        run_mirrored: slice indices ``(K,)`` -> the mirrored pass's ``(K, S, S)`` probabilities mirrored back
            (same voxel order as ``as_is``) and their ``(K, S, S)`` variance, or None (no test-time augmentation).
        threshold: the labelmap's probability threshold.
        stride: sampling step of the slices read in any case (1: all).
        second_side_fraction: as in :func:`choose_orientation`.

    Returns:
        ``(combined, use_mirrored, mirrored_variance, read)``: the combined ``(N, S, S)`` probabilities, the
        boolean ``(N,)`` where the mirrored pass was kept, the mirrored pass's ``(N, S, S)`` variance (zero
        where not read; None without variance), and the boolean ``(N,)`` of the slices read mirrored.
    """
    if stride < 1:
        raise ValueError(f"stride must be at least 1, not {stride}")
    count = len(as_is)
    mirrored = np.zeros_like(as_is)
    variance: np.ndarray | None = None
    read = np.zeros(count, bool)

    def read_slices(wanted: np.ndarray) -> bool:
        nonlocal variance
        todo = np.flatnonzero(wanted & ~read)
        if todo.size == 0:
            return False
        found, spread = run_mirrored(todo)
        mirrored[todo] = found
        if spread is not None:
            variance = np.zeros_like(as_is) if variance is None else variance
            variance[todo] = spread
        read[todo] = True
        return True

    mass = lesion_mass(as_is, threshold)
    wanted = _with_neighbours(mass > 0)
    wanted[::stride] = True
    if not mass.any():
        wanted[:] = True
    read_slices(wanted)
    while True:
        changed = read_slices(_with_neighbours(read & (lesion_mass(mirrored, threshold) > 0)))
        combined, use_mirrored = choose_orientation(as_is, mirrored, threshold, second_side_fraction)
        changed = read_slices(use_mirrored) or changed
        if not changed:
            return combined, use_mirrored, variance, read
