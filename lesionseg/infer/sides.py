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
