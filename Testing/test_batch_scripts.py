"""The headless batch scripts, run as separate processes with plain Python (slicer-core's ``slicer`` imported
first, as Slicer's ``--python-script`` would have it): training on a synthetic cohort, then segmenting two
synthetic cases of which one is corrupt. Exit codes and ``summary.csv`` are those of ``lesionseg segment``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import SMALL_PHANTOM

REPO = Path(__file__).resolve().parents[1]
SEGMENT_SCRIPT = REPO / "LesionSegInference" / "Scripts" / "segment_batch.py"
TRAIN_SCRIPT = REPO / "LesionSegCurriculum" / "Scripts" / "train_batch.py"
#: Runs a script the way Slicer's --python-script does: the application's modules already imported, the
#: script executed as __main__ with its own arguments in sys.argv (here after a "--" separator).
AS_SLICER_WOULD = ("import runpy, sys, slicer; script = sys.argv[1]; sys.argv = [script, '--', *sys.argv[2:]]; "
                   "runpy.run_path(script, run_name='__main__')")


def _run(script: Path, *arguments, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", AS_SLICER_WOULD, str(script), *map(str, arguments)],
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout, env=environment, cwd=str(REPO / "Testing"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """train_batch.py on four synthetic cases: prepared at 64 x 64, one tiny model, one epoch."""
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("train_batch")
    write_cohort(root / "data", 4, modalities=("flair",), seed=5, **SMALL_PHANTOM)
    result = _run(TRAIN_SCRIPT, "--dataset", root / "data", "--prepared", root / "prepared", "--run", root / "run",
                  "--size", 64, "--negatives", 0.3, "--model", "unet2d",
                  "--network-kwargs", json.dumps({"features": [8, 16, 32, 64, 128]}), "--curriculum", "none",
                  "--epochs", 1, "--all-data", "--batch-size", 8, "--device", "cpu", "--no-augment", "--threads", 1)
    return root, result


@pytest.mark.slow
def test_train_batch_prepares_and_trains_into_a_bundle(trained):
    from lesionseg.bundle import read_manifest

    root, result = trained
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"Preparing {root / 'data'} into {root / 'prepared'}" in lines
    assert "[100%] prepare: sub-strokecase0004" in lines
    assert any(line.startswith("[100%] train: epoch 1/1") for line in lines)
    assert lines[-1] == f"Bundle: {root / 'run' / 'model.lsb'}"
    manifest = read_manifest(root / "run" / "model.lsb")
    assert manifest["channels"] == ["flair"] and len(manifest["members"]) == 1
    with (root / "prepared" / "slices.csv").open(encoding="utf-8") as handle:
        assert {row["case_id"] for row in csv.DictReader(handle)} == {f"sub-strokecase000{i}" for i in range(1, 5)}


@pytest.mark.slow
def test_train_batch_refuses_to_overwrite_a_run(trained):
    root, first = trained
    assert first.returncode == 0
    result = _run(TRAIN_SCRIPT, "--prepared", root / "prepared", "--run", root / "run", "--epochs", 1)
    assert result.returncode == 2
    assert "already holds a training run; tick Resume" in result.stderr
    assert not (root / "run" / "fold_0").exists()


@pytest.mark.slow
def test_segment_batch_reports_a_corrupt_case_and_exits_3(trained, tmp_path):
    from lesionseg.synth import write_cohort

    root, training = trained
    assert training.returncode == 0
    write_cohort(tmp_path / "cases", 2, modalities=("flair",), seed=21, **SMALL_PHANTOM)
    images = sorted((tmp_path / "cases").glob("sub-*/ses-*/anat/*FLAIR.nii.gz"))
    assert len(images) == 2
    good, corrupt = images
    data = corrupt.read_bytes()
    corrupt.write_bytes(data[: len(data) // 3])  # a truncated download

    result = _run(SEGMENT_SCRIPT, "--bundle", root / "run" / "model.lsb", "--input", tmp_path / "cases",
                  "--output", tmp_path / "out", "--device", "cpu", "--side", "left")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "[ 50%] segment: sub-strokecase0001" in lines and "[100%] segment: sub-strokecase0002" in lines
    assert lines[-2].startswith("partial: ") and lines[-1] == f"Summary: {tmp_path / 'out' / 'summary.csv'}"
    with (tmp_path / "out" / "summary.csv").open(encoding="utf-8") as handle:
        rows = {row["case_id"]: row for row in csv.DictReader(handle)}
    assert rows["sub-strokecase0001"]["status"] == "ok"
    assert rows["sub-strokecase0002"]["status"].startswith("failed: ") and corrupt.name in rows[
        "sub-strokecase0002"]["status"]
    mask = sitk.ReadImage(str(tmp_path / "out" / "sub-strokecase0001.nii.gz"))
    reference = sitk.ReadImage(str(good))
    assert mask.GetSize() == reference.GetSize()
    assert np.allclose(mask.GetSpacing(), reference.GetSpacing())
    assert np.allclose(mask.GetOrigin(), reference.GetOrigin()) and np.allclose(mask.GetDirection(), reference.GetDirection())
    assert set(np.unique(sitk.GetArrayViewFromImage(mask))) <= {0, 1}
    assert float(rows["sub-strokecase0001"]["lesion_ml"]) >= 0
    assert not (tmp_path / "out" / "sub-strokecase0002.nii.gz").exists()


@pytest.mark.slow
def test_segment_batch_exits_2_on_bad_input(tmp_path):
    from lesionseg.synth import write_cohort

    write_cohort(tmp_path / "cases", 1, modalities=("flair",), seed=2, **SMALL_PHANTOM)
    result = _run(SEGMENT_SCRIPT, "--bundle", tmp_path / "missing.lsb", "--input", tmp_path / "cases")
    assert result.returncode == 2 and "--output" in result.stderr  # argparse: a required option is missing
    result = _run(SEGMENT_SCRIPT, "--bundle", tmp_path / "missing.lsb", "--input", tmp_path / "cases", "--output",
                  tmp_path / "out", "--device", "cpu")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "lesionseg segment: error: " in result.stderr and "missing.lsb" in result.stderr
    assert result.stdout.splitlines()[-1].startswith("failed: ") and "missing.lsb" in result.stdout
