"""How one revision of a case's mask differs from another: volume added and removed, Dice.

The revisions themselves are data (:mod:`lesionseg.data.revisions`); comparing them needs the metrics, so it
lives with the annotators' tools.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lesionseg.data.revisions import RevisionStore
from lesionseg.errors import DatasetError
from lesionseg.io import geometry_difference
from lesionseg.metrics import dice


@dataclass(frozen=True)
class RevisionDiff:
    """How revision ``second`` differs from ``first``: mL added and removed, Dice, both volumes."""

    first: str
    second: str
    added_ml: float
    removed_ml: float
    dice: float
    first_ml: float
    second_ml: float

    def describe(self) -> str:
        """One line: ``rev-0002 -> rev-0003: +0.42 mL, -0.10 mL, Dice 0.931 (1.20 -> 1.52 mL)``."""
        return (f"{self.first} -> {self.second}: +{self.added_ml:.2f} mL, -{self.removed_ml:.2f} mL, "
                f"Dice {self.dice:.3f} ({self.first_ml:.2f} -> {self.second_ml:.2f} mL)")


def diff_revisions(store: RevisionStore, first: str, second: str) -> RevisionDiff:
    """Voxels added and removed (mL), Dice and volumes between two revisions of ``store``.

    Args:
        store: the case's revision store.
        first, second: revision names (``original``, ``latest``, ``rev-0003`` or ``3``).

    Raises:
        ParameterError: an unknown revision.
        DatasetError: the two revisions are on different grids, or a revision file was damaged.
    """
    a_id, b_id = store.resolve(first), store.resolve(second)
    a, b = store.read(a_id), store.read(b_id)
    difference = geometry_difference(a, b)
    if difference is not None:
        raise DatasetError(f"case {store.case_id}: {a_id} and {b_id} are on different grids ({difference}).")
    a_array, b_array = sitk.GetArrayFromImage(a) != 0, sitk.GetArrayFromImage(b) != 0
    voxel_ml = float(np.prod(a.GetSpacing())) / 1000.0
    return RevisionDiff(a_id, b_id, np.count_nonzero(b_array & ~a_array) * voxel_ml,
                        np.count_nonzero(a_array & ~b_array) * voxel_ml, float(dice(a_array, b_array)),
                        np.count_nonzero(a_array) * voxel_ml, np.count_nonzero(b_array) * voxel_ml)
