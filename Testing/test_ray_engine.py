"""``lesionseg segment DATASET --engine ray``: the single-process batch's masks, summary and exit code from Ray
actors on a local Ray with 2 CPUs; a worker killed mid-batch loses no case and writes none twice; without Ray,
one sentence naming the ``pip install`` and exit code 2."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import REPO

#: tiny phantoms (80 x 96 x 16 voxels of 2.4 x 2.4 x 9 mm): a case takes about a second
TINY_CASE = {"size_xyz": (80, 96, 16), "spacing_mm": (2.4, 2.4, 9.0)}
GOOD_CASES = (1, 2, 3, 4)


def _untrained_bundle(path: Path) -> Path:
    """A narrow untrained 2D U-Net at 64 x 64: its masks mean nothing, but they are the same wherever it runs."""
    import torch

    from lesionseg.bundle import make_manifest, save_bundle
    from lesionseg.models import build_network_from_config, network_config
    from lesionseg.preprocess import PrepareConfig

    torch.manual_seed(3)
    config = network_config("unet2d", 1, features=[4, 4, 8, 8, 16])
    manifest = make_manifest(
        network_config=config, channels=["flair"], reference_channel="flair", expected_spacing_mm=[2.4, 2.4, 9.0],
        preprocessing=PrepareConfig(size=64, channels=["flair"]).to_dict(),
        members=[{"fold": None, "validation": {}}],
        provenance={"train_config": {}, "curriculum": {}, "data_fingerprint": "0" * 64,
                    "training_data": {"cases": 0}, "fold_metrics": []},
        name="ray-test", description="untrained, for the Ray engine's tests")
    return save_bundle(path, manifest, [build_network_from_config(config).state_dict()])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(bundle, a dataset of 4 good cases, a dataset of the same 4 and a truncated fifth)."""
    from lesionseg.synth import make_case, write_case

    root = tmp_path_factory.mktemp("ray_engine")
    bundle = _untrained_bundle(root / "model.lsb")
    for index in GOOD_CASES:
        case = make_case(index, seed=31, **TINY_CASE)
        write_case(case, root / "good")
        write_case(case, root / "with_bad")
    bad = write_case(make_case(5, seed=31, **TINY_CASE), root / "with_bad").channels["flair"]
    bad.write_bytes(bad.read_bytes()[:2000])
    return bundle, root / "good", root / "with_bad"


@pytest.fixture(scope="module")
def local_run(cohort, tmp_path_factory) -> tuple[Path, int]:
    """The single-process batch of the dataset with the bad case: its output folder and exit code."""
    bundle, _, with_bad = cohort
    scratch = tmp_path_factory.mktemp("local_run")
    result = segment(bundle, with_bad, scratch / "out", scratch)
    return scratch / "out", result.returncode


@pytest.fixture(scope="module")
def ray_scratch():
    """A short temporary folder for Ray's files (its socket paths must stay under 108 bytes), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="lsray-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def segment(bundle: Path, dataset: Path, out: Path, scratch: Path, *extra: str,
            environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``lesionseg segment`` in a subprocess, Ray's files (``RAY_TMPDIR``, ``HOME``) kept under ``scratch``."""
    ray_home = scratch / "home"
    ray_home.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               RAY_TMPDIR=str(scratch), HOME=str(ray_home), RAY_USAGE_STATS_ENABLED="0",
               **(environment or {}))
    return subprocess.run([sys.executable, "-m", "lesionseg", "segment", str(bundle), str(dataset), "-o", str(out),
                           "--side", "left", "--device", "cpu", "--progress", "none", *extra],
                          capture_output=True, text=True, encoding="utf-8", errors="replace", env=env, timeout=300)


def summary(folder: Path) -> list[dict[str, str]]:
    """``summary.csv`` without its ``seconds`` column (time differs from run to run)."""
    with (folder / "summary.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["case_id", "lesion_ml", "lesion_count", "seconds", "status"]
        return [{key: value for key, value in row.items() if key != "seconds"} for row in reader]


def assert_same_outputs(ray_out: Path, local_out: Path, case_ids: list[str]) -> None:
    """Voxel-equal masks on the same grids, and the same lesion tables."""
    for case_id in case_ids:
        mine, theirs = (sitk.ReadImage(str(folder / f"{case_id}.nii.gz")) for folder in (ray_out, local_out))
        assert mine.GetSize() == theirs.GetSize() and mine.GetOrigin() == theirs.GetOrigin()
        assert mine.GetSpacing() == theirs.GetSpacing() and mine.GetDirection() == theirs.GetDirection()
        assert np.array_equal(sitk.GetArrayFromImage(mine), sitk.GetArrayFromImage(theirs)), case_id
        lesions = f"{case_id}_lesions.csv"
        assert (ray_out / lesions).read_text(encoding="utf-8") == (local_out / lesions).read_text(encoding="utf-8")


def good_ids(local_out: Path) -> list[str]:
    return [row["case_id"] for row in summary(local_out) if row["status"] == "ok"]


@pytest.mark.slow
def test_ray_engine_gives_the_single_process_masks_summary_and_exit_code(cohort, local_run, ray_scratch, tmp_path):
    pytest.importorskip("ray")
    bundle, _, with_bad = cohort
    local_out, local_code = local_run
    statuses = [row["status"] for row in summary(local_out)]
    assert local_code == 3 and statuses[:4] == ["ok"] * 4 and statuses[4].startswith("failed: ")
    assert any(row["lesion_count"] not in ("", "0") for row in summary(local_out))  # the masks are not all empty

    result = segment(bundle, with_bad, tmp_path / "ray_out", ray_scratch, "--engine", "ray", "--workers", "2")
    assert result.returncode == 3, result.stderr
    assert summary(tmp_path / "ray_out") == summary(local_out)
    assert_same_outputs(tmp_path / "ray_out", local_out, good_ids(local_out))
    log = (tmp_path / "ray_out" / "segment.log").read_text(encoding="utf-8")
    assert "truncated" in log and len(log.splitlines()) == len((local_out / "segment.log").read_text().splitlines())
    assert sorted(path.name for path in (tmp_path / "ray_out").iterdir()) == sorted(path.name for path in local_out.iterdir())


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_no_case_and_writes_none_twice(cohort, local_run, ray_scratch, tmp_path):
    """The hook ends an actor's process once before it writes a case and once just after it wrote one: the
    first case is retried, the second is not segmented or written again (its mask is older than the exit)."""
    pytest.importorskip("ray")
    bundle, good, _ = cohort
    local_out, _ = local_run
    hook = tmp_path / "hook"
    hook.mkdir()
    out = tmp_path / "ray_out"
    result = segment(bundle, good, out, ray_scratch, "--engine", "ray", "--workers", "2",
                     environment={"LESIONSEG_RAY_TEST_EXIT": str(hook)})
    assert result.returncode == 0, result.stderr
    assert (hook / "before").is_file() and (hook / "after").is_file()  # two worker processes did die
    assert summary(out) == [row for row in summary(local_out) if row["status"] == "ok"]
    assert_same_outputs(out, local_out, good_ids(local_out))
    written_then_killed = (hook / "after").read_text(encoding="utf-8")
    assert written_then_killed in good_ids(local_out)
    mask = out / f"{written_then_killed}.nii.gz"
    assert mask.stat().st_mtime_ns <= (hook / "after").stat().st_mtime_ns  # not written again after the exit
    assert not [path.name for path in out.iterdir() if path.name.startswith(".")]  # no temporaries, no records


def test_engine_ray_without_ray_is_one_sentence_and_exit_2(cohort, tmp_path, monkeypatch, capsys):
    from lesionseg.cli import main

    bundle, good, _ = cohort
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" raises ImportError
    assert main(["segment", str(bundle), str(good), "-o", str(tmp_path / "out"), "--engine", "ray"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "pip install 'lesionseg[ray]'" in error[0], error
    assert not (tmp_path / "out").exists()


def test_ray_options_are_refused_where_they_do_not_apply(cohort, tmp_path, capsys):
    from lesionseg.cli import main

    bundle, good, _ = cohort
    image = next(good.glob("sub-*/ses-*/anat/*FLAIR.nii.gz"))
    assert main(["segment", str(bundle), str(image), "-o", str(tmp_path / "m.nii.gz"), "--engine", "ray"]) == 2
    assert "--engine ray segments a dataset folder" in capsys.readouterr().err
    assert main(["segment", str(bundle), str(good), "-o", str(tmp_path / "out"), "--workers", "2"]) == 2
    assert "add --engine ray" in capsys.readouterr().err
    assert main(["segment", str(bundle), str(good), "-o", str(tmp_path / "out"), "--engine", "ray",
                 "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
