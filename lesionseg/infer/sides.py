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

:func:`read_both_sides` gives the same result while reading each slice only in the orientations that can
change it (the predictor uses it for 2D bundles).
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



#: both orientations are read on every this many slices first (1: every slice, two full passes). 1 by
#: default: with 2, a lesion one slice thick that only the mirrored orientation shows, between two sampled
#: slices, can be missed, and on the starter model (whose false positives make the other orientation
#: needed on most slices) 2 saved 8-24 % of the slices read but no measurable network time (x1.08, noisy)
SAMPLE_STRIDE = 1
AS_IS, MIRRORED = 0, 1
#: ``run(orientation, indices)``: the pass of one orientation (:data:`AS_IS` or :data:`MIRRORED`) on the slices
#: ``indices`` (K,) -> ``(K, S, S)`` probabilities in the as-is voxel order and their variance (or None)
PassRunner = Callable[[int, np.ndarray], tuple[np.ndarray, "np.ndarray | None"]]


def _with_neighbours(flags: np.ndarray) -> np.ndarray:
    """``flags`` (N,) bool, grown by one slice on each side."""
    grown = flags.copy()
    grown[1:] |= flags[:-1]
    grown[:-1] |= flags[1:]
    return grown


class _Passes:
    """The two orientations' probabilities (and variances) as far as they have been read."""

    def __init__(self, count: int, run: PassRunner) -> None:
        self.count, self.run = count, run
        self.read = np.zeros((2, count), bool)
        self.probabilities: list[np.ndarray | None] = [None, None]
        self.variances: list[np.ndarray | None] = [None, None]

    def take(self, orientation: int, wanted: np.ndarray) -> bool:
        """Read the wanted slices not read yet; True when there were any."""
        todo = np.flatnonzero(wanted & ~self.read[orientation])
        if todo.size == 0:
            return False
        found, spread = self.run(orientation, todo)
        if self.probabilities[orientation] is None:
            self.probabilities[orientation] = np.zeros((self.count,) + found.shape[1:], found.dtype)
        self.probabilities[orientation][todo] = found
        if spread is not None:
            if self.variances[orientation] is None:
                self.variances[orientation] = np.zeros((self.count,) + spread.shape[1:], spread.dtype)
            self.variances[orientation][todo] = spread
        self.read[orientation, todo] = True
        return True

    def mass(self, orientation: int, threshold: float) -> np.ndarray:
        found = self.probabilities[orientation]
        return np.zeros(self.count) if found is None else lesion_mass(found, threshold)


def read_both_sides(count: int, run: PassRunner, threshold: float, *, stride: int = SAMPLE_STRIDE,
                    second_side_fraction: float = SECOND_SIDE_FRACTION,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """:func:`choose_orientation` of the two orientations, reading each slice only in the orientations that can
    change the result.

    1. Both orientations are read on every ``stride``-th slice.
    2. The orientation with the larger lesion mass there (ties: as it is) is the main one; it is read on
       every slice (its probabilities are the result wherever the other is not chosen).
    3. The other orientation is read where the main one finds lesion mass (the slice-by-slice choice needs
       it), then, until nothing changes: beside every slice where it finds lesion mass itself (so a lesion
       that only it shows is read over its whole extent), and on every slice that the decision reads in it.

    A slice not read in the other orientation counts there as lesion mass 0. ``stride=1`` reads every slice
    in both: exactly :func:`choose_orientation` of two full passes. What this can change, against two full
    passes: lesion mass of the other orientation on a slice that is not read (between two sampled slices,
    where the main one finds none, and not beside the other's finds), i.e. a lesion one slice thick that
    only the other orientation shows, or a false positive of it; both only count towards the case's totals,
    and the result changes only when they tip the choice of the main side or of reading both sides.
    ``benchmarks/bench_segment.py`` compares the masks with two full passes on synthetic cases.

    Args:
        count: N, the number of slices.
        run: reads one orientation on some slices (see :data:`PassRunner`).
        threshold: the labelmap's probability threshold.
        stride: step of the slices read in both orientations first (1: all).
        second_side_fraction: as in :func:`choose_orientation`.

    Returns:
        ``(combined, use_mirrored, variance, read)``: the combined ``(N, S, S)`` probabilities; the boolean
        ``(N,)`` where the mirrored orientation was kept; the kept orientation's ``(N, S, S)`` variance (None
        without); the boolean ``(2, N)`` of the slices read as they are (row 0) and mirrored (row 1).

    Raises:
        ValueError: ``stride`` below 1.
    """
    if stride < 1:
        raise ValueError(f"stride must be at least 1, not {stride}")
    passes = _Passes(count, run)
    if count == 0:
        found, spread = run(AS_IS, np.arange(0))
        return found, np.zeros(0, bool), spread, passes.read
    sampled = np.zeros(count, bool)
    sampled[::stride] = True
    passes.take(AS_IS, sampled)
    passes.take(MIRRORED, sampled)
    main = MIRRORED if passes.mass(MIRRORED, threshold).sum() > passes.mass(AS_IS, threshold).sum() else AS_IS
    other = 1 - main
    passes.take(main, np.ones(count, bool))
    passes.take(other, passes.mass(main, threshold) > 0)
    while True:
        changed = passes.take(other, _with_neighbours(passes.read[other] & (passes.mass(other, threshold) > 0)))
        as_is, mirrored = passes.probabilities
        combined, use_mirrored = choose_orientation(as_is, mirrored, threshold, second_side_fraction)
        in_other = use_mirrored if other == MIRRORED else ~use_mirrored
        changed = passes.take(other, in_other) or changed
        if not changed:
            break
    variance = None
    if passes.variances[AS_IS] is not None and passes.variances[MIRRORED] is not None:
        variance = np.where(use_mirrored[:, None, None], passes.variances[MIRRORED], passes.variances[AS_IS])
    return combined, use_mirrored, variance, passes.read
