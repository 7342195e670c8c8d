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
    # both models trained by the same time budget: the curriculum's early epochs hold fewer slices, so its epochs
    # are shorter on average than those of 'none' (which sees every slice each epoch), and every one of its 6 groups
    # enters. (The epoch counts themselves follow the measured pace, which varies run to run: not compared.)
    runs = {name: (int(epochs), int(iterations)) for epochs, name, iterations
            in re.findall(r"(\d+) epochs of '(\w+)', (\d+) iterations", result.stdout)}
    assert set(runs) == {"vanilla", "none"} and min(epochs for epochs, _ in runs.values()) >= 1
    assert runs["vanilla"][0] >= 6
    iterations_per_epoch = {name: iterations / epochs for name, (epochs, iterations) in runs.items()}
    assert iterations_per_epoch["vanilla"] < iterations_per_epoch["none"]
    assert "training from scratch: the starter model" in result.stdout  # 64-pixel slices: it does not fit
    # 4 training cases, under the preset's line of 20: each model trains on all of them (no validation Dice)
    assert result.stdout.count("4 training cases, fewer than 20: one model on all of them") == 2
    for page in ("run-vanilla/report/index.html", "evaluation-vanilla/index.html", "evaluation-none/index.html"):
        assert (out / page).is_file(), page
    assert (out / "run-vanilla" / "model.lsb").is_file() and (out / "run-none" / "model.lsb").is_file()
    assert (out / "segment-vanilla" / "summary.csv").read_text(encoding="utf-8").count(",ok") == 2
    assert "curriculum vs none" in result.stdout and "open " in result.stdout
    assert "held-out lesion F1" in result.stdout
