"""``lesionseg evaluate PRED TRUTH``: per-case metrics of perturbed truth masks, missing cases, grids, the page."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from builders import write_isles_public
from conftest import run_cli

from lesionseg.cli import main
from lesionseg.io import read_mask, write_image, write_seg_nrrd
from lesionseg.metrics import evaluate_case

SPACING_ZYX = (3.0, 1.0, 1.0)  # builders.small_volume: spacing (x, y, z) = (1, 1, 3) mm


def _mask_image(array: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(like)
    return image


@pytest.fixture()
def cohort(tmp_path) -> dict:
    """Three ISLES'22-layout cases and predictions made from their truth: identical, one layer removed plus
    three false-positive voxels, and shifted by one voxel along x."""
    truth_root = tmp_path / "truth"
    truths = write_isles_public(truth_root, n=3, channels=("flair",))
    prediction_dir = tmp_path / "pred"
    predictions = {}
    for index, (case_id, truth) in enumerate(sorted(truths.items())):
        like = read_mask(next(truth_root.glob(f"derivatives/{case_id}/ses-0001/*_msk.nii.gz")))
        prediction = truth.copy()
        if index == 1:
            z = np.flatnonzero(truth.reshape(truth.shape[0], -1).any(axis=1))[0]
            prediction[z] = 0  # the 2 x 3 x 3 block loses one 3 x 3 layer: 9 of 18 voxels kept
            free = np.argwhere(truth == 0)[:3]
            prediction[tuple(free.T)] = 1  # three false-positive voxels
        elif index == 2:
            prediction = np.roll(truth, 1, axis=2)
        predictions[case_id] = prediction
        write_image(_mask_image(prediction, like), prediction_dir / f"{case_id}.nii.gz")
    return {"truth": truth_root, "pred": prediction_dir, "truths": truths, "predictions": predictions}


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return {row["case_id"]: row for row in csv.DictReader(handle)}


def test_evaluate_matches_metrics_and_a_hand_count(cohort, tmp_path, capsys):
    out = tmp_path / "metrics.csv"
    assert main(["evaluate", str(cohort["pred"]), str(cohort["truth"]), "--out", str(out), "--progress", "none"]) == 0
    printed = capsys.readouterr().out
    rows = _read_csv(out)
    assert sorted(rows) == sorted(cohort["truths"])
    first, second, third = sorted(rows)
    assert float(rows[first]["dice"]) == 1.0
    # hand count: 9 true positives, 18 truth voxels, 9 + 3 predicted voxels -> Dice 2 * 9 / (18 + 12) = 0.6
    assert float(rows[second]["dice"]) == pytest.approx(0.6)
    # volume difference: |18 - 12| voxels of 1 x 1 x 3 mm³ = 18 mm³ = 0.018 mL
    assert float(rows[second]["abs_volume_difference_ml"]) == pytest.approx(0.018)
    assert int(rows[second]["lesions_prediction"]) >= 2 and float(rows[second]["lesion_f1"]) < 1.0
    for case_id, row in rows.items():  # every case against lesionseg.metrics called directly
        expected = evaluate_case(cohort["predictions"][case_id], cohort["truths"][case_id], SPACING_ZYX)
        assert float(row["dice"]) == pytest.approx(expected.dice)
        assert float(row["hd95_mm"]) == pytest.approx(expected.hd95_mm)
        assert float(row["lesion_f1"]) == pytest.approx(expected.lesionwise.f1)
    dice_mean = np.mean([float(r["dice"]) for r in rows.values()])
    assert re.search(rf"Dice\s+mean\s+{dice_mean:.4f}", printed)


def test_evaluate_reads_slicer_segmentations_and_a_mask_folder_as_truth(cohort, tmp_path, capsys):
    prediction_dir, truth_dir = tmp_path / "seg_pred", tmp_path / "masks"
    for case_id, truth in cohort["truths"].items():
        like = read_mask(next(cohort["truth"].glob(f"derivatives/{case_id}/ses-0001/*_msk.nii.gz")))
        write_seg_nrrd(_mask_image(truth, like), prediction_dir / f"{case_id}.seg.nrrd")
        write_image(_mask_image(truth, like), truth_dir / f"{case_id}.nii.gz")
    out = tmp_path / "m.csv"
    assert main(["evaluate", str(prediction_dir), str(truth_dir), "--out", str(out), "--progress", "none"]) == 0
    assert all(float(row["dice"]) == 1.0 for row in _read_csv(out).values())


def test_missing_and_extra_cases_are_listed(cohort, tmp_path, capsys):
    missing = sorted(cohort["truths"])[0]
    (cohort["pred"] / f"{missing}.nii.gz").unlink()
    extra_image = read_mask(next(cohort["pred"].glob("*.nii.gz")))
    write_image(extra_image, cohort["pred"] / "sub-unknown.nii.gz")
    code = main(["evaluate", str(cohort["pred"]), str(cohort["truth"]), "--progress", "none"])
    captured = capsys.readouterr()
    assert code == 3
    assert f"missing: 1 truth case(s) without a prediction: {missing}" in captured.out
    assert "extra: 1 prediction(s) without a truth, ignored: sub-unknown" in captured.out
    assert missing in captured.err
    assert main(["evaluate", str(cohort["pred"]), str(cohort["truth"]), "--allow-missing", "--progress", "none"]) == 0


def test_a_prediction_on_another_grid_is_one_sentence_naming_both_files(cohort, tmp_path):
    case_id = sorted(cohort["truths"])[1]
    path = cohort["pred"] / f"{case_id}.nii.gz"
    image = read_mask(path)
    image.SetSpacing((1.0, 1.0, 2.0))
    write_image(image, path)
    result = run_cli("evaluate", cohort["pred"], cohort["truth"], "--progress", "none")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("lesionseg evaluate: error: ")
    assert str(path) in lines[0] and f"{case_id}_ses-0001_msk.nii.gz" in lines[0] and "spacing" in lines[0]


def test_no_common_case_and_bad_connectivity_are_refused(cohort, tmp_path, capsys):
    empty_names = tmp_path / "other"
    empty_names.mkdir()
    write_image(read_mask(next(cohort["pred"].glob("*.nii.gz"))), empty_names / "nobody.nii.gz")
    assert main(["evaluate", str(empty_names), str(cohort["truth"]), "--progress", "none"]) == 2
    assert "no case id" in capsys.readouterr().err
    assert main(["evaluate", str(cohort["pred"]), str(cohort["truth"]), "--connectivity", "7",
                 "--progress", "none"]) == 2


def test_evaluation_report_has_its_sections_and_valid_pngs(cohort, tmp_path, capsys):
    from PIL import Image

    report = tmp_path / "report"
    assert main(["evaluate", str(cohort["pred"]), str(cohort["truth"]), "--report", str(report),
                 "--progress", "none"]) == 0
    page = (report / "index.html").read_text(encoding="utf-8")
    for anchor in ("summary", "cases", "dice", "overlays"):
        assert f'<section id="{anchor}">' in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == ["case_dice.png", "overlays.png"]
    for name in sources:
        with Image.open(report / name) as image:
            assert image.format == "PNG" and image.size[0] > 200
            image.verify()
    assert "http" not in page.lower().replace("http-equiv", "")
    assert (report / "metrics.csv").is_file()
    for case_id in cohort["truths"]:
        assert case_id in page
