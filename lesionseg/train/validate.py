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
                          multiple: int = 16, minimum: int = 0) -> np.ndarray:
    """Lesion probabilities (N, S, S) of prepared slices (N, C, S, S), network in eval mode, no gradients."""
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
            outputs.append(lesion_probability(logits.float()).cpu().numpy())
    network.train(was_training)
    return np.concatenate(outputs).astype(np.float32) if outputs else np.zeros((0,) + images.shape[2:], np.float32)


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
        return {"val_dice": self.mean("dice"), "val_lesion_f1": self.mean("lesion_f1"),
                "val_hd95_mm": self.mean("hd95_mm"), "val_hd_mm": self.mean("hd_mm"),
                "val_detection_rate": detected / lesion_slices if lesion_slices else float("nan")}


def validate(network, arrays: SliceArrays, prepared: PreparedDataset, *, device, precision: str = "fp32",
             batch_size: int = 12, multiple: int = 16, minimum: int = 0, threshold: float = 0.5,
             full: bool = True) -> ValidationResult:
    """Predict the validation slices and measure them per case (and per slice when ``full``)."""
    probabilities = predict_probabilities(network, arrays.images, device=device, precision=precision,
                                          batch_size=batch_size, multiple=multiple, minimum=minimum)
    return measure(probabilities, arrays, prepared, threshold=threshold, full=full)


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
            threshold: float = 0.5, full: bool = True) -> ValidationResult:
    """Per-case and per-slice metrics of predicted lesion probabilities (N, S, S), one per row of ``arrays``
    (each as the row's slice is stored), against the rows' masks (2D and 3D validation alike); without
    ``full``, the light case metrics only (see the module docstring)."""
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
