"""Sample validation slices of a run, predicted again by each fold's own model for the report's overlays.

Each fold's slices are predicted by the bundle member trained on that fold (never by the ensemble, whose
other members saw these cases in training). Per fold, the largest-lesion slice of each of up to
``per_fold`` validation cases is shown, on the prepared grid (``(y, x)`` of the prepared slices, the
bundle's first input channel as background).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lesionseg.errors import DatasetError
from lesionseg.report.overlay import OverlaySample, make_sample
from lesionseg.stats import RunData


def _validation_cases(run: RunData) -> dict[str, list[str]]:
    """fold name -> its validation case ids (from val_cases.csv, else val_slices.csv), in file order."""
    cases: dict[str, list[str]] = {}
    for row in run.val_cases or run.val_slices:
        listed = cases.setdefault(str(row["fold"]), [])
        if row["case_id"] not in listed:
            listed.append(row["case_id"])
    return cases


def predict_samples(run: RunData, prepared_root: str | os.PathLike, per_fold: int = 2,
                    device: str = "cpu") -> list[OverlaySample]:
    """Predict one slice per validation case (up to ``per_fold`` cases per fold) with the fold's model.

    Args:
        run: the run (its ``model.lsb`` is used).
        prepared_root: the prepared dataset the run was trained on.
        per_fold: validation cases shown per fold.
        device: where the networks run.

    Returns:
        The samples, fold by fold; empty when the run has no validation (an all-data model).

    Raises:
        InputFileError: the run has no bundle; DatasetError: the prepared dataset does not hold a
            validation case of the run; BundleError: the prepared channels do not fit the bundle.
    """
    from lesionseg.bundle import check_channels, load_bundle
    from lesionseg.errors import InputFileError
    from lesionseg.models import min_size, size_multiple
    from lesionseg.preprocess import PreparedDataset
    from lesionseg.preprocess.context import network_input
    from lesionseg.train.validate import predict_probabilities

    folds = _validation_cases(run)
    if not folds:
        return []
    if run.bundle_path is None:
        raise InputFileError(f"{run.root} has no model.lsb; the overlays need the run's trained models.")
    prepared = PreparedDataset(prepared_root)
    known = set(prepared.case_ids)
    bundle = load_bundle(run.bundle_path, device=device)
    order = check_channels(bundle.manifest, prepared.channels, str(run.bundle_path), str(prepared.root))
    mirror = bundle.manifest["preprocessing"].get("mirror_difference") is True
    prepared.require_mirror_difference(mirror, str(run.bundle_path))
    order = prepared.config.input_planes(order)  # the mirrored differences follow the channels, in this order
    channel_index = [prepared.array_channels.index(name) for name in order]
    network_spec = bundle.manifest["network"]
    multiple = size_multiple(network_spec["name"], **network_spec.get("kwargs", {}))
    minimum = min_size(network_spec["name"], **network_spec.get("kwargs", {}))
    member_of = {str(member.get("fold")): i for i, member in enumerate(bundle.manifest["members"])}
    samples = []
    for fold, case_ids in folds.items():
        if fold not in member_of:
            continue
        for case_id in case_ids[:per_fold]:
            if case_id not in known:
                raise DatasetError(f"{prepared.root} does not hold case {case_id}, a validation case of {run.root}; "
                                   "give the prepared dataset the run was trained on.")
            rows = prepared.case_slices(case_id)
            position = int(np.argmax([row["lesion_pixels"] for row in rows]))
            arrays = prepared.arrays(case_id)
            images = arrays.images[position:position + 1][:, channel_index]
            context = None if arrays.context is None else arrays.context[position:position + 1][:, channel_index]
            inputs = network_input(images, context, int(bundle.manifest["preprocessing"].get("context_slices", 0)))
            probability = predict_probabilities(bundle.networks[member_of[fold]], inputs, device=device,
                                                multiple=multiple, minimum=minimum)[0]
            samples.append(make_sample(f"{case_id}, slice {rows[position]['slice_index']} (fold {fold})",
                                       images[0, 0], probability >= bundle.threshold, arrays.masks[position]))
    return samples


def samples_available(run: RunData, prepared_root: Path | None) -> str:
    """Why overlays cannot be drawn (empty when they can)."""
    if prepared_root is None:
        return ("Overlays of validation slices need the prepared dataset the run was trained on: "
                "run 'lesionseg report RUN --prepared PREPARED'.")
    if not _validation_cases(run):
        return "This run has no validation slices (an all-data model), so there is nothing to overlay."
    if run.bundle_path is None:
        return f"{run.root} has no model.lsb, so its validation slices cannot be predicted for overlays."
    return ""
