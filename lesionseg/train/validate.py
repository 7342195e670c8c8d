"""Validation during training: per-case 3D metrics on the prepared grid and per-slice metrics.

A case's validation slices are put back at their slice positions (an (n_slices, S, S) stack on the
prepared grid, spacing (thickness, pixel, pixel) mm) to compute the case's 3D Dice, lesion-wise F1 and
Hausdorff distances; the per-slice Dice and Hausdorff distances (in-plane, mm) feed the difficulty analysis.

A light pass (``full=False``, what a budgeted run validates with while it trains) computes the Dice, the
lesion-wise F1 and the detection rate only: the surface distances and the per-slice metrics cost more than
the network on a CPU, and picking a checkpoint needs the Dice alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lesionseg.metrics import evaluate_case, evaluate_slices
from lesionseg.preprocess import PreparedDataset
from lesionseg.train.slices import SliceArrays


def predict_probabilities(network, images: np.ndarray, *, device, precision: str = "fp32", batch_size: int = 12,
                          multiple: int = 16, minimum: int = 0, all_classes: bool = False) -> np.ndarray:
    """Lesion probabilities (N, S, S) of prepared slices (N, C, S, S), network in eval mode, no gradients;
    with ``all_classes`` the whole softmax (N, K, S, S), background first."""
    import torch

    from lesionseg.device import autocast
    from lesionseg.losses import lesion_probability
    from lesionseg.models.padding import forward_padded

    was_training = network.training
    network.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(images[start:start + batch_size], dtype=torch.float32, device=device)
            with autocast(precision, device):
                logits = forward_padded(network, batch, multiple, minimum)
            if all_classes:
                outputs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
            else:
                outputs.append(lesion_probability(logits.float()).cpu().numpy())
    network.train(was_training)
    if outputs:
        return np.concatenate(outputs).astype(np.float32)
    return np.zeros((0,) + ((network_outputs(network),) if all_classes else ()) + images.shape[2:], np.float32)


def network_outputs(network) -> int:
    """The number of classes a network outputs (its ``out_channels``; 2 when it does not say)."""
    return int(getattr(network, "out_channels", 2))


def class_labels(probabilities: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """From the softmax (N, K, ...) of a model of K - 1 lesion classes: the lesion probability (N, ...) (the
    lesion classes summed) and the class map (N, ...) uint8: 0 where that probability is below ``threshold``,
    else the most probable lesion class (1 .. K - 1)."""
    lesion = probabilities[:, 1:].sum(axis=1)
    labels = (np.argmax(probabilities[:, 1:], axis=1) + 1).astype(np.uint8)
    labels[lesion < threshold] = 0
    return lesion.astype(np.float32), labels


@dataclass
class ValidationResult:
    """Validation metrics of one pass.

    Attributes:
        cases: one dict per case (case_id, dice, hd_mm, hd95_mm, detection_rate, ...).
        slices: one dict per lesion slice (case_id, slice_index, dice, hd_mm, hd95_mm).
    """

    cases: list[dict[str, Any]] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)

    def mean(self, key: str) -> float:
        values = [case[key] for case in self.cases if case.get(key) is not None]
        return float(np.mean(values)) if values else float("nan")

    def summary(self) -> dict[str, float]:
        lesion_slices = sum(case["lesion_slices"] for case in self.cases)
        detected = sum(case["detected_slices"] for case in self.cases)
        per_class = sorted({key for case in self.cases for key in case if key.startswith("dice_")})
        return {"val_dice": self.mean("dice"), "val_lesion_f1": self.mean("lesion_f1"),
                "val_hd95_mm": self.mean("hd95_mm"), "val_hd_mm": self.mean("hd_mm"),
                "val_detection_rate": detected / lesion_slices if lesion_slices else float("nan"),
                **{f"val_{key}": self.mean(key) for key in per_class}}


def validate(network, arrays: SliceArrays, prepared: PreparedDataset, *, device, precision: str = "fp32",
             batch_size: int = 12, multiple: int = 16, minimum: int = 0, threshold: float = 0.5,
             full: bool = True) -> ValidationResult:
    """Predict the validation slices and measure them per case (and per slice when ``full``); with several
    lesion classes each class's Dice too (see :func:`measure`)."""
    several = bool(prepared.config.classes)
    probabilities = predict_probabilities(network, arrays.images, device=device, precision=precision,
                                          batch_size=batch_size, multiple=multiple, minimum=minimum,
                                          all_classes=several)
    if not several:
        return measure(probabilities, arrays, prepared, threshold=threshold, full=full)
    lesion, labels = class_labels(probabilities, threshold)
    return measure(lesion, arrays, prepared, threshold=threshold, full=full, labels=labels)


def subset(arrays: SliceArrays, case_ids: list[str]) -> SliceArrays:
    """The rows of ``arrays`` that belong to ``case_ids`` (in their order in ``arrays``)."""
    wanted = set(case_ids)
    positions = [i for i, row in enumerate(arrays.rows) if row["case_id"] in wanted]
    return SliceArrays(arrays.images[positions], arrays.masks[positions], arrays.brains[positions],
                       [arrays.rows[i] for i in positions])


def _light_case_metrics(prediction: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Dice and lesion-wise F1 of one case's stacks (the metrics a light validation pass computes)."""
    from lesionseg.metrics import dice
    from lesionseg.metrics.lesionwise import lesionwise_counts

    return {"dice": dice(prediction, truth), "lesion_f1": lesionwise_counts(prediction, truth).f1,
            "hd_mm": None, "hd95_mm": None, "assd_mm": None, "empty_prediction": not prediction.any()}


def measure(probabilities: np.ndarray, arrays: SliceArrays, prepared: PreparedDataset,
            threshold: float = 0.5, full: bool = True, labels: np.ndarray | None = None) -> ValidationResult:
    """Per-case and per-slice metrics of predicted lesion probabilities (N, S, S), one per row of ``arrays``
    (each as the row's slice is stored), against the rows' masks (2D and 3D validation alike); without
    ``full``, the light case metrics only (see the module docstring).

    ``labels``: for a model of several lesion classes, the predicted class map (N, S, S) (0 background,
    ``k`` the ``k``-th class, see :func:`class_labels`). The other metrics are then those of the lesion (any
    class against the background); each case also gets ``dice_<class name>`` per class, and its ``dice``
    (what picks the best checkpoint) becomes the mean of the class Dice values, the lesion's own Dice kept
    as ``dice_lesion``."""
    from lesionseg.metrics import dice

    classes = list(prepared.config.classes or [])
    predictions = probabilities >= threshold
    result = ValidationResult()
    by_case: dict[str, list[int]] = {}
    for position, row in enumerate(arrays.rows):
        by_case.setdefault(row["case_id"], []).append(position)
    for case_id, positions in by_case.items():
        grid = prepared.record(case_id).grid
        pixel, thickness = grid.pixel_mm, grid.geometry.spacing[2]
        stack_prediction = np.zeros((grid.n_slices, grid.size, grid.size), bool)
        stack_truth = np.zeros_like(stack_prediction)
        for position in positions:
            index = arrays.rows[position]["slice_index"]
            stack_prediction[index] = predictions[position]
            stack_truth[index] = arrays.masks[position] > 0
        if full:
            metrics = evaluate_case(stack_prediction, stack_truth, (thickness, pixel, pixel))
            case_metrics = {"dice": metrics.dice, "lesion_f1": metrics.lesionwise.f1, "hd_mm": metrics.hd_mm,
                            "hd95_mm": metrics.hd95_mm, "assd_mm": metrics.assd_mm,
                            "empty_prediction": metrics.empty_prediction}
        else:
            case_metrics = _light_case_metrics(stack_prediction, stack_truth)
        lesion_slices = int(stack_truth.reshape(grid.n_slices, -1).any(axis=1).sum())
        detected = int((stack_truth.reshape(grid.n_slices, -1).any(axis=1)
                        & stack_prediction.reshape(grid.n_slices, -1).any(axis=1)).sum())
        if labels is not None:
            stack_labels = np.zeros(stack_prediction.shape, np.uint8)
            stack_classes = np.zeros(stack_prediction.shape, np.uint8)
            for position in positions:
                index = arrays.rows[position]["slice_index"]
                stack_labels[index] = labels[position]
                stack_classes[index] = arrays.masks[position]
            per_class = {f"dice_{entry['name']}": dice(stack_labels == k, stack_classes == k)
                         for k, entry in enumerate(classes, start=1)}
            case_metrics = {**case_metrics, "dice_lesion": case_metrics["dice"], **per_class,
                            "dice": float(np.mean(list(per_class.values())))}
        result.cases.append({
            "case_id": case_id, **case_metrics, "lesion_slices": lesion_slices, "detected_slices": detected,
            "detection_rate": detected / lesion_slices if lesion_slices else None,
        })
        if not full:
            continue
        kept_prediction = predictions[positions]
        kept_truth = arrays.masks[positions] > 0
        for record in evaluate_slices(kept_prediction, kept_truth, (pixel, pixel)):
            row = arrays.rows[positions[record.slice_index]]
            result.slices.append({"case_id": case_id, "slice_index": row["slice_index"], "dice": record.dice,
                                  "hd_mm": record.hd_mm, "hd95_mm": record.hd95_mm,
                                  "empty_prediction": record.empty_prediction})
    return result
