"""Patient-level cross-validation folds, stratified by lesion volume and deterministic."""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import numpy as np

from lesionseg.data.case import Case
from lesionseg.errors import ParameterError


def case_lesion_volumes_ml(cases: list[Case]) -> dict[str, float]:
    """Lesion volume in mL of each case with a mask (reads the masks); cases without a mask count 0."""
    from lesionseg.data.validation import lesion_volume_ml

    return {case.case_id: (lesion_volume_ml(case.read_mask()) if case.mask else 0.0) for case in cases}


def folds(cases: list[Case], k: int = 5, seed: int = 0,
          lesion_volumes_ml: Mapping[str, float] | None = None) -> list[list[str]]:
    """Split cases into ``k`` folds that never separate a patient's cases.

    Patients are sorted by their total lesion volume and dealt, ``k`` at a time, into the folds in a
    seeded random order, so every fold receives patients from across the volume range (stratification).
    The result depends only on the cases, their volumes, ``k`` and ``seed``.

    Args:
        cases: the cases (their ``patient_id`` groups them).
        k: number of folds (2 or more, at most the number of patients).
        seed: seed of the dealing order.
        lesion_volumes_ml: case id -> lesion volume; read from the masks when None.

    Returns:
        ``k`` lists of case ids (each sorted); fold i is the validation set of model i.

    Raises:
        ParameterError: ``k`` < 2 or more folds than patients.
    """
    patients: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        patients[case.patient_id].append(case.case_id)
    if k < 2:
        raise ParameterError(f"the number of folds must be at least 2, not {k}.")
    if k > len(patients):
        raise ParameterError(f"{k} folds need at least {k} patients; the dataset has {len(patients)}.")
    volumes = lesion_volumes_ml if lesion_volumes_ml is not None else case_lesion_volumes_ml(cases)
    patient_volume = {p: sum(float(volumes.get(c, 0.0)) for c in ids) for p, ids in patients.items()}
    ordered = sorted(patients, key=lambda p: (patient_volume[p], p))
    rng = np.random.default_rng(seed)
    assignment: list[list[str]] = [[] for _ in range(k)]
    sizes = np.zeros(k, dtype=int)
    for start in range(0, len(ordered), k):
        block = ordered[start:start + k]
        # the smallest folds (in cases) receive first, in a seeded order among equals
        order = sorted(range(k), key=lambda f: (sizes[f], rng.random()))
        for patient, fold in zip(block, order):
            assignment[fold].extend(patients[patient])
            sizes[fold] += len(patients[patient])
    return [sorted(fold) for fold in assignment]
