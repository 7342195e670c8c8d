"""``lesionseg analyse RUN``: the signed R² table of a tiny cross-validated run, and bad input (exit 2)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from lesionseg.cli import main


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _one_sentence(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lesionseg analyse: error: "), err
    return err[0]


@pytest.mark.slow
def test_analyse_writes_the_signed_r2_table(tiny_run, capsys):
    assert main(["analyse", str(tiny_run)]) == 0
    printed = capsys.readouterr().out
    assert "area_mm2" in printed and "contrast_fisher" in printed
    table = {row["metric"]: row for row in _rows(tiny_run / "analysis.csv")}
    assert sorted(table) == ["area_mm2", "contrast_fisher"]
    # the same numbers from the CSV files, joined here with the csv module and fitted by SciPy
    difficulty = {(r["case_id"], int(r["slice_index"])): r for r in _rows(tiny_run / "difficulty.csv")}
    slices = [row for fold in sorted(tiny_run.glob("fold_*")) for row in _rows(fold / "val_slices.csv")]
    assert int(table["area_mm2"]["n_slices"]) == len(slices)
    for metric, valid_column in (("area_mm2", None), ("contrast_fisher", "contrast_valid")):
        kept = [s for s in slices
                if valid_column is None or difficulty[(s["case_id"], int(s["slice_index"]))][valid_column] == "1"]
        x = np.array([float(difficulty[(s["case_id"], int(s["slice_index"]))][metric]) for s in kept])
        assert int(table[metric]["n_slices"]) == len(kept)
        for performance in ("dice", "hd_mm"):
            y = np.array([float(s[performance]) for s in kept])
            value = float(table[metric][f"r2_{performance}"])
            if np.ptp(y) == 0 or np.ptp(x) == 0:  # undefined: the documented 0 and a note, never NaN
                assert value == 0.0 and "constant" in table[metric]["note"]
            else:
                r = scipy_stats.linregress(x, y).rvalue
                assert value == pytest.approx(np.sign(r) * r * r, abs=1e-5)


@pytest.mark.slow  # builds the session's tiny run when it runs first
def test_a_run_without_validation_slices_is_refused(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "fold_0").mkdir(parents=True)
    shutil.copy(tiny_run / "folds.csv", run / "folds.csv")
    shutil.copy(tiny_run / "fold_0" / "log.csv", run / "fold_0" / "log.csv")
    shutil.copy(tiny_run / "difficulty.csv", run / "difficulty.csv")
    assert main(["analyse", str(run)]) == 2
    assert "val_slices.csv" in _one_sentence(capsys)


@pytest.mark.slow  # builds the session's tiny run when it runs first
def test_a_difficulty_table_of_another_dataset_is_refused(tiny_run, tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("case_id,slice_index,area_mm2\nsub-elsewhere0001,3,12.5\nsub-elsewhere0001,4,20\n")
    assert main(["analyse", str(tiny_run), "--difficulty", str(other), "--out", str(tmp_path / "a.csv")]) == 2
    assert "another prepared dataset" in _one_sentence(capsys)
    assert not (tmp_path / "a.csv").exists()


@pytest.mark.slow  # builds the session's tiny run when it runs first
def test_a_run_without_a_difficulty_table_needs_one(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("*.pt", "*.lsb", "difficulty.csv", "analysis.csv"))
    assert main(["analyse", str(run)]) == 2
    assert "--difficulty" in _one_sentence(capsys)
    assert main(["analyse", str(run), "--difficulty", str(tiny_run / "difficulty.csv"), "--metric", "area_mm2"]) == 0
    assert [row["metric"] for row in _rows(run / "analysis.csv")] == ["area_mm2"]


def test_not_a_run_folder_is_refused(tmp_path, capsys):
    assert main(["analyse", str(tmp_path)]) == 2
    assert "not a training run folder" in _one_sentence(capsys)
