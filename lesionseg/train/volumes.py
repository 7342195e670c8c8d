"""3D training data: prepared cases as volumes, fresh rejection-sampled patches each epoch, 3D validation.

A 3D network (``unet3d``, ``unet2plus1d``, or a MONAI U-Net with ``spatial_dims=3``) trains on patches of
whole cases instead of single slices:

- Volumes. A case's prepared slices are stacked by their ``slice_index`` into ``(C, Z, Y, X)`` (axes
  ``(z, y, x)``: slices, rows anterior-posterior, columns right-left). The stack must hold every brain
  slice, as inference does: a dataset prepared with ``--negatives`` below 1 (only part of the lesion-free
  slices kept, so cases have holes or are cut to their lesion) is refused with a sentence saying to
  prepare with ``--negatives 1``; filling the holes with blank slices would teach the network volumes that
  inference never shows it. Gaps that remain with ``--negatives 1`` (grid slices without brain between
  slices with brain) are filled with each channel's background and label 0, exactly as
  :class:`lesionseg.infer.Predictor` fills them at inference.
- Hemisphere. Training slices were flipped one by one so that each slice's lesion lies in
  ``lesion_side``; in a volume that would tear a lesion that crosses the mid-plane apart. The volume undoes
  the per-slice flips and mirrors the whole case instead when its lesion lies mostly in the other
  hemisphere (the rule preparation uses for a case's lesion-free slices). At inference the predictor's
  ``side`` option flips whole volumes too.
- Patches. Each epoch, every training case gives ``patches_per_volume`` patches drawn by
  :func:`lesionseg.train.patches.sample_patches` (at least ``min_lesion_patch_fraction`` of them with
  lesion), from a generator seeded with (seed, epoch, case number): an epoch's patches are the same after a
  resume. A volume smaller than the patch along an axis is padded first (channel minimum, label 0).
- Validation. Each validation case is predicted whole with the sliding window of
  :func:`lesionseg.models.sliding.sliding_window_probabilities`; the probabilities of its slices then go
  through the same per-case and per-slice metrics as 2D validation (:func:`lesionseg.train.validate.measure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from lesionseg.errors import DatasetError, ParameterError
from lesionseg.preprocess import PreparedDataset
from lesionseg.preprocess.volume import channel_background, slices_to_volume
from lesionseg.train.patches import sample_patches
from lesionseg.train.slices import SliceArrays
from lesionseg.train.validate import ValidationResult, measure


@dataclass
class CaseVolume:
    """One prepared case as a volume.

    Attributes:
        case_id: the case.
        image: ``(C, Z, Y, X)`` float32, padded to at least the patch size along every axis.
        label: ``(Z, Y, X)`` uint8 lesion mask (0/1), on the same grid.
        plane_rows: ``(Z,)`` int64: the position, in the rows given to :func:`load_volumes`, of the slice
            each plane holds; -1 for a filled gap or padding.
        plane_mirrored: ``(Z,)`` bool: the plane is mirrored left-right relative to its row's stored slice.
        low_padding: ``(3,)`` voxels of padding before the stack along (z, y, x).
        slice_shape: ``(Y, X)`` of the prepared slices (before padding).
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    plane_rows: np.ndarray
    plane_mirrored: np.ndarray
    low_padding: np.ndarray
    slice_shape: tuple[int, int]

    def row_slices(self, volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The planes of a ``(Z, Y, X)`` map on this volume's grid that hold rows, each as its row stores it.

        Returns:
            ``(row positions (M,), slices (M, Y, X))`` with padding cropped and mirroring undone.
        """
        y0, x0 = int(self.low_padding[1]), int(self.low_padding[2])
        planes = np.flatnonzero(self.plane_rows >= 0)
        cropped = volume[planes, y0:y0 + self.slice_shape[0], x0:x0 + self.slice_shape[1]]
        mirrored = self.plane_mirrored[planes]
        cropped[mirrored] = cropped[mirrored][..., ::-1]
        return self.plane_rows[planes], cropped


def _pad(image: np.ndarray, label: np.ndarray, size: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad ``(C, Z, Y, X)`` (channel minimum) and ``(Z, Y, X)`` (0) to at least ``size``; returns the low padding."""
    before = np.array([max(0, p - s) // 2 for p, s in zip(size, label.shape)])
    after = np.array([max(0, p - s) for p, s in zip(size, label.shape)]) - before
    if not (before.any() or after.any()):
        return image, label, before
    widths = list(zip(before.tolist(), after.tolist()))
    label = np.pad(label, widths, constant_values=0)
    image = np.stack([np.pad(channel, widths, constant_values=channel.min()) for channel in image])
    return image, label, before


def _case_volume(prepared: PreparedDataset, case_id: str, positions: list[int], rows: list[dict[str, Any]],
                 patch_size: Sequence[int]) -> CaseVolume:
    arrays = prepared.arrays(case_id)
    where = {row["slice_index"]: index for index, row in enumerate(prepared.case_slices(case_id))}
    indices = [rows[p]["slice_index"] for p in positions]
    order = [where[i] for i in indices]
    images = arrays.images[order].astype(np.float32)  # copies: the cached arrays stay untouched
    masks = (arrays.masks[order] > 0).astype(np.uint8)
    flipped = np.array([bool(rows[p]["flipped"]) for p in positions])
    images[flipped] = images[flipped][..., ::-1]  # every slice back to the grid's own orientation
    masks[flipped] = masks[flipped][..., ::-1]
    half = masks.shape[-1] // 2
    left, right = int(masks[..., half:].sum()), int(masks[..., :half].sum())  # columns >= S/2: patient's left
    mirror = right > left if prepared.config.lesion_side == "left" else left > right
    if mirror:
        images, masks = images[..., ::-1], masks[..., ::-1]
    stack, first = slices_to_volume(images, indices, fill=channel_background(images))
    label, _ = slices_to_volume(masks, indices, fill=0)
    plane_rows = np.full(stack.shape[0], -1, dtype=np.int64)
    plane_rows[np.asarray(indices) - first] = positions
    plane_mirrored = np.zeros(stack.shape[0], dtype=bool)
    plane_mirrored[np.asarray(indices) - first] = flipped != mirror
    image, label, low = _pad(np.ascontiguousarray(stack.transpose(1, 0, 2, 3)), label, patch_size)
    depth_padding = (int(low[0]), label.shape[0] - plane_rows.size - int(low[0]))
    plane_rows = np.pad(plane_rows, depth_padding, constant_values=-1)
    plane_mirrored = np.pad(plane_mirrored, depth_padding)
    return CaseVolume(case_id, np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(label),
                      plane_rows, plane_mirrored, low, (int(masks.shape[1]), int(masks.shape[2])))


def load_volumes(prepared: PreparedDataset, rows: list[dict[str, Any]],
                 patch_size: Sequence[int]) -> list[CaseVolume]:
    """The volumes of the cases of ``rows`` (in order of first appearance), padded to at least ``patch_size``.

    Args:
        prepared: the prepared dataset.
        rows: slice rows (``prepared.slices`` entries), normally every row of each case.
        patch_size: ``(z, y, x)`` in voxels.

    Raises:
        ParameterError: a dataset prepared without every lesion-free slice (see the module docstring).
        DatasetError: no rows.
    """
    if not rows:
        raise DatasetError(f"{prepared.root}: no slices were selected for training.")
    if prepared.config.negatives < 1:
        raise ParameterError(
            f"{prepared.root} was prepared with --negatives {prepared.config.negatives:g}, which keeps only part of "
            "each case's lesion-free slices, but a 3D network trains on whole volumes: prepare it again with "
            "--negatives 1.")
    by_case: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        by_case.setdefault(row["case_id"], []).append(position)
    return [_case_volume(prepared, case_id, positions, rows, patch_size) for case_id, positions in by_case.items()]


class PatchDataset:
    """Each epoch's training patches: ``patches_per_volume`` per case, drawn when :meth:`set_epoch` is called.

    Item ``i`` is patch ``i % patches_per_volume`` of case ``i // patches_per_volume``:
    ``{"image": (C, z, y, x) float32, "mask": (1, z, y, x) int64, "index": i}``, augmented (when an
    augmentation is given) with the seed (seed, epoch, i), like :class:`lesionseg.train.slices.SliceDataset`.

    Args:
        volumes: the training cases (:func:`load_volumes`).
        patch_size: ``(z, y, x)``.
        patches_per_volume: patches per case and epoch.
        min_lesion_fraction: smallest share of a case's patches that contain lesion (cases with lesion).
        augment: ``(sample, seed) -> sample`` or None.
        seed: the base seed of the draws.
    """

    def __init__(self, volumes: list[CaseVolume], patch_size: Sequence[int], patches_per_volume: int,
                 min_lesion_fraction: float, augment: Callable[[dict, int], dict] | None = None,
                 seed: int = 0) -> None:
        self.volumes = volumes
        self.patch_size = tuple(int(s) for s in patch_size)
        self.patches_per_volume = int(patches_per_volume)
        self.min_lesion_fraction = float(min_lesion_fraction)
        self.augment = augment
        self.seed = int(seed)
        self.epoch: int | None = None
        self.origins = np.zeros((len(volumes), self.patches_per_volume, 3), dtype=np.int64)
        self.has_lesion = np.zeros((len(volumes), self.patches_per_volume), dtype=bool)

    def __len__(self) -> int:
        return len(self.volumes) * self.patches_per_volume

    def set_epoch(self, epoch: int) -> None:
        """Draw the epoch's patches of every case (the same on every rank, and after a resume)."""
        self.epoch = int(epoch)
        for number, volume in enumerate(self.volumes):
            rng = np.random.default_rng((self.seed, self.epoch, number))
            _, labels, origins = sample_patches(volume.image, volume.label, self.patch_size, self.patches_per_volume,
                                                rng, self.min_lesion_fraction, return_origins=True)
            self.origins[number] = origins
            self.has_lesion[number] = labels.reshape(len(labels), -1).any(axis=1)

    @property
    def lesion_fraction(self) -> float:
        """Share of the epoch's patches that contain lesion."""
        return float(self.has_lesion.mean()) if self.has_lesion.size else float("nan")

    def _window(self, index: int) -> tuple[CaseVolume, tuple[slice, slice, slice]]:
        if self.epoch is None:
            raise RuntimeError("PatchDataset.set_epoch must be called before patches are read.")
        number, patch = divmod(int(index), self.patches_per_volume)
        z, y, x = (int(v) for v in self.origins[number, patch])
        dz, dy, dx = self.patch_size
        return self.volumes[number], (slice(z, z + dz), slice(y, y + dy), slice(x, x + dx))

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        volume, window = self._window(index)
        image = volume.image[(slice(None), *window)]
        mask = volume.label[window][None].astype(np.int64)
        if self.augment is not None:
            sample_seed = int(np.random.default_rng((self.seed, int(self.epoch), int(index))).integers(2**31 - 1))
            augmented = self.augment({"image": image, "mask": mask}, sample_seed)
            image, mask = augmented["image"], augmented["mask"]
        return {"image": torch.as_tensor(np.ascontiguousarray(image), dtype=torch.float32),
                "mask": torch.as_tensor(np.ascontiguousarray(mask)).long(), "index": int(index)}

    def add_losses(self, indices: Sequence[int], losses: np.ndarray, loss_sum: np.ndarray,
                   loss_count: np.ndarray) -> None:
        """Credit each patch's loss to the training rows (slices) it covers (for ``slice_losses.csv``)."""
        for index, loss in zip(indices, losses):
            volume, window = self._window(index)
            rows = volume.plane_rows[window[0]]
            rows = rows[rows >= 0]
            np.add.at(loss_sum, rows, float(loss))
            np.add.at(loss_count, rows, 1)


def volume_probabilities(network, volume: CaseVolume, patch_size: Sequence[int], *, device, precision: str = "fp32",
                         batch_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Sliding-window lesion probabilities of a case, returned per row: ``(row positions (M,), (M, Y, X))``."""
    from lesionseg.device import autocast
    from lesionseg.models.sliding import sliding_window_probabilities

    was_training = network.training
    network.eval()
    try:
        with autocast(precision, device):
            probabilities = sliding_window_probabilities([network], volume.image, patch_size, device=device,
                                                         batch_size=batch_size)
    finally:
        network.train(was_training)
    return volume.row_slices(probabilities)


def validate_volumes(network, volumes: list[CaseVolume], arrays: SliceArrays, prepared: PreparedDataset, *,
                     patch_size: Sequence[int], device, precision: str = "fp32", batch_size: int = 4,
                     threshold: float = 0.5, full: bool = True) -> ValidationResult:
    """Predict each validation case whole (sliding window) and measure it as 2D validation does.

    Args:
        network: the 3D network.
        volumes: the validation cases, built by :func:`load_volumes` from ``arrays.rows``.
        arrays: the validation slices (their masks are the truth; row positions as in ``volumes``).
        prepared: the prepared dataset (the grids, for millimetres).
        patch_size: the window ``(z, y, x)`` (the training patch size).
        device, precision, batch_size: where and how the network runs (``batch_size`` windows per call).
        threshold: lesion probability threshold.
        full: every metric (False: the light pass of :func:`lesionseg.train.validate.measure`).
    """
    probabilities = np.zeros(arrays.masks.shape, dtype=np.float32)
    for volume in volumes:
        positions, slices = volume_probabilities(network, volume, patch_size, device=device, precision=precision,
                                                 batch_size=batch_size)
        probabilities[positions] = slices
    return measure(probabilities, arrays, prepared, threshold=threshold, full=full)
