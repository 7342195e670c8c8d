"""Training slices from a prepared dataset: selection by case, and a torch Dataset over them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lesionseg.errors import DatasetError
from lesionseg.preprocess import PreparedDataset


def case_lesion_volumes_ml(prepared: PreparedDataset) -> dict[str, float]:
    """Lesion volume (mL) of every prepared case: native slice areas (mm²) x slice thickness / 1000."""
    volumes: dict[str, float] = {}
    for case_id in prepared.case_ids:
        thickness = prepared.record(case_id).grid.geometry.spacing[2]
        area = sum(row["lesion_area_mm2"] for row in prepared.case_slices(case_id))
        volumes[case_id] = area * thickness / 1000.0
    return volumes


def select_rows(prepared: PreparedDataset, case_ids: list[str]) -> list[dict[str, Any]]:
    """The slice rows of the given cases, in the prepared dataset's order."""
    wanted = set(case_ids)
    return [row for row in prepared.slices if row["case_id"] in wanted]


@dataclass
class SliceArrays:
    """Slices in memory: images (N, C', S, S) float32 (the network input: C' = C (2k + 1) with k neighbouring
    slices, see :mod:`lesionseg.preprocess.context`), masks (N, S, S) uint8, brains (N, S, S) uint8."""

    images: np.ndarray
    masks: np.ndarray
    brains: np.ndarray
    rows: list[dict[str, Any]]


def load_slices(prepared: PreparedDataset, rows: list[dict[str, Any]], context_slices: int = 0) -> SliceArrays:
    """Gather the arrays of ``rows`` (each row's position in its case's arrays is its rank among them), each
    slice with ``context_slices`` neighbours on each side as extra channels (refused when fewer were prepared)."""
    from lesionseg.preprocess.context import network_input

    prepared.require_context(context_slices)
    if not rows:
        raise DatasetError(f"{prepared.root}: no slices were selected for training.")
    position_in_case: dict[tuple[str, int], int] = {}
    for case_id in dict.fromkeys(row["case_id"] for row in rows):
        for position, row in enumerate(prepared.case_slices(case_id)):
            position_in_case[(case_id, row["slice_index"])] = position
    images, masks, brains = [], [], []
    for row in rows:
        arrays = prepared.arrays(row["case_id"])
        position = position_in_case[(row["case_id"], row["slice_index"])]
        context = None if arrays.context is None else arrays.context[position:position + 1]
        images.append(network_input(arrays.images[position:position + 1], context, context_slices)[0])
        masks.append(arrays.masks[position])
        brains.append(arrays.brains[position])
    return SliceArrays(np.stack(images).astype(np.float32), np.stack(masks), np.stack(brains), list(rows))


class SliceDataset:
    """A torch ``Dataset`` of prepared slices: item i is ``{"image": (C, S, S) float32, "mask": (1, S, S)
    int64, "index": i}``; with an augmentation, item i of epoch e is augmented with the seed
    (seed, epoch, i), so any epoch replays exactly (also after a resume, whatever the worker count)."""

    def __init__(self, arrays: SliceArrays, augment: Callable[[dict, int], dict] | None = None, seed: int = 0) -> None:
        self.arrays = arrays
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.arrays.rows)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        image = self.arrays.images[index]
        mask = self.arrays.masks[index][None].astype(np.int64)
        if self.augment is not None:
            sample_seed = int(np.random.default_rng((self.seed, self.epoch, int(index))).integers(2**31 - 1))
            augmented = self.augment({"image": image, "mask": mask}, sample_seed)
            image, mask = augmented["image"], augmented["mask"]
        return {"image": torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32),
                "mask": torch.as_tensor(np.ascontiguousarray(mask)).long(),
                "index": int(index)}
