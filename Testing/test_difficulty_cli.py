"""``lesionseg difficulty``: the table and plots end to end, and bad input (exit code 2, one sentence)."""

from __future__ import annotations

import csv

import pytest
from conftest import run_cli
from test_difficulty import small_prepared, write_lesion_free_prepared


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return small_prepared(tmp_path_factory)[0]


def _one_sentence_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lesionseg difficulty: error: "), result.stderr
    return lines[0]


@pytest.mark.slow
def test_difficulty_writes_one_row_per_lesion_slice_and_the_histograms(prepared, tmp_path):
    out, plots = tmp_path / "difficulty.csv", tmp_path / "plots"
    result = run_cli("difficulty", prepared, "--metric", "area,contrast", "--out", out, "--plot", plots,
                     "--groups", "4", "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert "lesion volume per case" in result.stdout
    with (prepared / "slices.csv").open(encoding="utf-8") as handle:
        lesion_slices = [(r["case_id"], r["slice_index"], r["lesion_area_mm2"]) for r in csv.DictReader(handle)
                         if r["has_lesion"] == "1"]
    with out.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["case_id", "slice_index", "area_mm2", "contrast_fisher", "contrast_valid"]
    assert [(r["case_id"], r["slice_index"]) for r in rows] == [s[:2] for s in lesion_slices]
    assert [float(r["area_mm2"]) for r in rows] == pytest.approx([float(s[2]) for s in lesion_slices])
    assert all(float(r["contrast_fisher"]) >= 0 and r["contrast_valid"] in ("0", "1") for r in rows)
    for name in ("difficulty_area_mm2.png", "difficulty_contrast_fisher.png"):
        assert (plots / name).read_bytes()[:4] == b"\x89PNG"

    # an existing table is checked against the prepared slices and plotted
    again = run_cli("difficulty", prepared, "--table", out, "--metric", "contrast", "--plot", tmp_path / "again",
                    "--progress", "none")
    assert again.returncode == 0, again.stderr
    assert [p.name for p in (tmp_path / "again").iterdir()] == ["difficulty_contrast_fisher.png"]

    # bad input: a NaN in a difficulty column of that table
    text = out.read_text(encoding="utf-8").splitlines()
    fields = text[2].split(",")
    fields[3] = "nan"
    text[2] = ",".join(fields)
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(text) + "\n")
    message = _one_sentence_error(run_cli("difficulty", prepared, "--table", broken, "--plot", tmp_path / "p2"))
    assert str(broken) in message and "line 3" in message and "contrast_fisher" in message


@pytest.mark.slow
def test_unknown_metric_is_exit_code_2_with_the_valid_names(tmp_path):
    message = _one_sentence_error(run_cli("difficulty", tmp_path, "--metric", "area,sharpness", "--out",
                                          tmp_path / "d.csv"))
    assert "'sharpness'" in message and "area, contrast" in message
    message = _one_sentence_error(run_cli("difficulty", tmp_path, "--metric", "gradient",
                                          "--out", tmp_path / "d.csv"))
    assert "--bundle" in message


def test_a_prepared_folder_without_lesion_slices_is_exit_code_2(tmp_path):
    root = write_lesion_free_prepared(tmp_path / "prepared")
    message = _one_sentence_error(run_cli("difficulty", root, "--out", tmp_path / "d.csv", "--progress", "none"))
    assert "no lesion slices" in message and str(root) in message
    assert not (tmp_path / "d.csv").exists()
