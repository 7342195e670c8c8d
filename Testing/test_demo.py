"""``lesionseg demo`` runs the whole pipeline end to end (here in a quick, small configuration)."""

from __future__ import annotations

import re

import pytest

from conftest import run_cli


@pytest.mark.slow
def test_the_demo_runs_end_to_end_and_writes_the_reports(tmp_path):
    out = tmp_path / "demo"
    result = run_cli("demo", out, "--cases", "6", "--held-out", "2", "--size", "64", "--minutes", "0.4", "--device",
                     "cpu", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    # the same time for both models (the trainer's budget): the curriculum, whose early epochs are shorter, gets
    # at least as many epochs, and every one of its 6 groups enters
    planned = {name: int(epochs) for epochs, name in re.findall(r"(\d+) epochs of '(\w+)'", result.stdout)}
    assert set(planned) == {"vanilla", "none"} and planned["vanilla"] >= planned["none"] >= 1
    assert planned["vanilla"] >= 6
    assert "training from scratch: the starter model" in result.stdout  # 64-pixel slices: it does not fit
    for page in ("run-vanilla/report/index.html", "evaluation-vanilla/index.html", "evaluation-none/index.html"):
        assert (out / page).is_file(), page
    assert (out / "run-vanilla" / "model.lsb").is_file() and (out / "run-none" / "model.lsb").is_file()
    assert (out / "segment-vanilla" / "summary.csv").read_text(encoding="utf-8").count(",ok") == 2
    assert "curriculum vs none" in result.stdout and "open " in result.stdout
    assert "held-out lesion F1" in result.stdout
