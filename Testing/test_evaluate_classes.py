"""Per-class evaluation of multi-label masks (:mod:`lesionseg.metrics.multiclass`, ``lesionseg evaluate``):
agreement with MONAI's ``DiceMetric`` on one-hot masks, class names from the label table, refusal without one."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.cli import main
from lesionseg.data.label_table import LabelTable, write_label_table
from lesionseg.errors import ParameterError
from lesionseg.io import write_image
from lesionseg.metrics import evaluate_case, evaluate_classes

NAMES = {1: "core", 2: "penumbra"}


def _labels(seed: int, shape=(12, 40, 40)) -> np.ndarray:
    """A core ball inside a penumbra ball plus a separate small penumbra blob, randomly placed."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    labels = np.zeros(shape, np.uint8)
    cz, cy, cx = shape[0] / 2 + rng.uniform(-1, 1), 20 + rng.uniform(-3, 3), 20 + rng.uniform(-3, 3)
    r2 = ((z - cz) * 3) ** 2 + (y - cy) ** 2 + (x - cx) ** 2
    labels[r2 < rng.uniform(80, 140)] = 2
    labels[r2 < rng.uniform(20, 50)] = 1
    labels[(abs(z - 3) < 2) & (abs(y - 5) < 2) & (abs(x - 34) < 2 + seed % 2)] = 2
    return labels


@pytest.mark.slow
def test_per_class_dice_agrees_with_monai_dice_metric_one_hot():
    import torch
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    truths = [_labels(seed) for seed in range(4)]
    predictions = [_labels(seed + 10) for seed in range(4)]
    metric = DiceMetric(include_background=False, reduction="none")
    for prediction, truth in zip(predictions, truths):
        ours = evaluate_classes(prediction, truth, (3.0, 1.0, 1.0), NAMES)
        as_tensor = [one_hot(torch.from_numpy(a.astype(np.int64))[None, None], num_classes=3) for a in (prediction, truth)]
        monai = metric(y_pred=as_tensor[0], y=as_tensor[1])[0].numpy()
        np.testing.assert_allclose([ours[1].dice, ours[2].dice], monai, rtol=1e-6)
        # and each class is the binary evaluation of that class (volumes, lesion-wise F1)
        binary = evaluate_case(prediction == 2, truth == 2, (3.0, 1.0, 1.0))
        assert ours[2].lesionwise.f1 == binary.lesionwise.f1 and ours[2].volume_truth_ml == binary.volume_truth_ml


def test_labels_outside_the_classes_are_refused():
    with pytest.raises(ParameterError, match="the prediction holds label 3, which is not among the classes 1 core, "
                                             "2 penumbra"):
        evaluate_classes(np.full((4, 4, 4), 3, np.uint8), np.zeros((4, 4, 4), np.uint8), (1.0, 1.0, 1.0), NAMES)


def _write(folder, name, array):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 3.0))
    path = folder / f"{name}.nii.gz"
    write_image(image, path)
    return path


def test_evaluate_reports_each_class_by_name_and_refuses_unnamed_labels(tmp_path, capsys):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truths = {f"case{i}": _labels(i) for i in range(3)}
    predictions = {f"case{i}": _labels(i + 20) for i in range(3)}
    for case_id in truths:
        _write(truth, case_id, truths[case_id])
        _write(pred, case_id, predictions[case_id])
    assert main(["evaluate", str(pred), str(truth), "--progress", "none"]) == 2
    error = capsys.readouterr().err
    assert "case0.nii.gz holds several labels (1, 2) but no label table names them" in error
    assert "case0.tsv (BIDS dseg.tsv" in error
    table = LabelTable.from_names(NAMES)
    for case_id in truths:
        write_label_table(truth / f"{case_id}.nii.gz", table)
    out = tmp_path / "metrics.csv"
    assert main(["evaluate", str(pred), str(truth), "--out", str(out), "--progress", "none"]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    expected = {case_id: evaluate_classes(predictions[case_id], truths[case_id], (3.0, 1.0, 1.0), NAMES)
                for case_id in truths}
    for row in rows:
        for value, name in NAMES.items():
            assert float(row[f"{name}_dice"]) == pytest.approx(expected[row["case_id"]][value].dice, rel=1e-9)
            assert float(row[f"{name}_lesion_f1"]) == pytest.approx(expected[row["case_id"]][value].lesionwise.f1)
        overall = evaluate_case(predictions[row["case_id"]] > 0, truths[row["case_id"]] > 0, (3.0, 1.0, 1.0))
        assert float(row["dice"]) == pytest.approx(overall.dice, rel=1e-9)  # any label = lesion
    core_mean = np.mean([expected[c][1].dice for c in truths])
    assert f"class 1 core" in printed and f"Dice {core_mean:.4f}" in printed


def test_binary_masks_are_evaluated_as_before(tmp_path):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    for i in range(2):
        _write(truth, f"c{i}", (_labels(i) > 0).astype(np.uint8))
        _write(pred, f"c{i}", (_labels(i + 5) > 0).astype(np.uint8) * 255)  # 0/255 is binary too
    from lesionseg.report import evaluate_predictions

    result = evaluate_predictions(pred, truth)
    assert result.classes == {} and "core_dice" not in result.rows[0]
    expected = evaluate_case(_labels(0 + 5) > 0, _labels(0) > 0, (3.0, 1.0, 1.0))
    assert result.rows[0]["dice"] == pytest.approx(expected.dice)
