"""The foundation's commands: synth, cases, demo; exit codes and one-sentence errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_cli
from lesionseg.io import write_image

from builders import small_mask, small_volume, write_isles_public


def _assert_bad_input(result, named) -> None:
    """Exit code 2 and one sentence on stderr that names the file or folder."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1, result.stderr
    assert str(named) in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture()
def isles(tmp_path):
    root = tmp_path / "isles"
    write_isles_public(root, n=2, channels=("flair", "dwi"))
    return root


def _first(root, pattern):
    return sorted(root.rglob(pattern))[0]


def test_channels_of_different_geometry_are_refused_in_strict_mode_only(isles):
    dwi = _first(isles, "*_dwi.nii.gz")
    write_image(small_volume(5, spacing=(1.0, 1.0, 5.0)), dwi)
    _assert_bad_input(run_cli("cases", isles, "--require-aligned"), dwi)
    accepted = run_cli("cases", isles)  # the default: prepare will register the channels
    assert accepted.returncode == 0, accepted.stderr[-2000:]


def test_bad_mask_with_three_labels(isles):
    mask = _first(isles, "*_msk.nii.gz")
    write_image(small_mask(0, small_volume(0), labels=(1, 2)), mask)
    result = run_cli("cases", isles)
    _assert_bad_input(result, mask)
    assert "labels found: 0, 1, 2" in result.stderr


def test_bad_2d_image(isles):
    flair = _first(isles, "*_FLAIR.nii.gz")
    write_image(sitk.GetImageFromArray(np.zeros((10, 12), np.int16)), flair)
    result = run_cli("cases", isles)
    _assert_bad_input(result, flair)
    assert "2D" in result.stderr


def test_bad_truncated_nifti(isles):
    flair = _first(isles, "*_FLAIR.nii.gz")
    data = flair.read_bytes()
    flair.write_bytes(data[: len(data) // 2])
    _assert_bad_input(run_cli("cases", isles), flair)


def test_bad_zero_byte_file(isles):
    flair = _first(isles, "*_FLAIR.nii.gz")
    flair.write_bytes(b"")
    _assert_bad_input(run_cli("cases", isles), flair)


def test_bad_text_file_named_nii_gz(isles):
    flair = _first(isles, "*_FLAIR.nii.gz")
    flair.write_text("patient notes, not an image\n")
    _assert_bad_input(run_cli("cases", isles), flair)


def test_bad_empty_folder(tmp_path):
    _assert_bad_input(run_cli("cases", tmp_path), tmp_path)


def test_bad_path_that_does_not_exist(tmp_path):
    _assert_bad_input(run_cli("cases", tmp_path / "nowhere"), tmp_path / "nowhere")


def test_bad_option_values_exit_2(tmp_path):
    result = run_cli("synth", tmp_path / "out", "--cases", "0")
    assert result.returncode == 2 and "--cases" in result.stderr
    result = run_cli("synth", tmp_path / "out", "--modality", "pet")
    assert result.returncode == 2 and "pet" in result.stderr
    assert run_cli("no-such-command").returncode == 2


def test_every_command_has_help():
    result = run_cli("--help")
    assert result.returncode == 0
    commands = [c for c in ("synth", "cases", "demo") if c in result.stdout]
    assert commands == ["synth", "cases", "demo"]
    for command in commands:
        sub = run_cli(command, "--help")
        assert sub.returncode == 0 and "usage: lesionseg " + command in sub.stdout


@pytest.mark.slow
def test_synth_then_cases_json_and_both_exports_and_flat_layout(tmp_path):
    out = tmp_path / "cohort"
    assert run_cli("synth", out, "--cases", "4", "--modality", "flair", "--seed", "1").returncode == 0
    result = run_cli("cases", out, "--json", "--export-nnunet", tmp_path / "nn", "--export-csv", tmp_path / "m.csv")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert len(listing["cases"]) == 4
    assert all(list(c["channels"]) == ["flair"] and c["mask"] for c in listing["cases"])
    ids = [c["case_id"] for c in listing["cases"]]
    for exported in (next((tmp_path / "nn").iterdir()), tmp_path / "m.csv"):
        again = json.loads(run_cli("cases", exported, "--json").stdout)
        assert [c["case_id"] for c in again["cases"]] == ids
        assert all(list(c["channels"]) == ["flair"] and c["mask"] for c in again["cases"])
    flat = tmp_path / "flat"
    assert run_cli("synth", flat, "--cases", "4", "--seed", "1", "--layout", "flat").returncode == 0
    flat_listing = json.loads(run_cli("cases", flat, "--json").stdout)
    assert [c["case_id"] for c in flat_listing["cases"]] == ids
    assert all("rawdata" in c["channels"]["flair"] for c in flat_listing["cases"])
    for public_case, flat_case in zip(listing["cases"], flat_listing["cases"]):
        assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(public_case["channels"]["flair"])),
                              sitk.GetArrayFromImage(sitk.ReadImage(flat_case["channels"]["flair"])))


def test_every_bad_case_is_listed_not_only_the_first(tmp_path):
    root = tmp_path / "isles"
    write_isles_public(root, n=3, channels=("flair", "dwi"))
    flairs = sorted(root.rglob("*_FLAIR.nii.gz"))
    flairs[0].write_bytes(b"")
    flairs[2].write_text("patient notes, not an image\n")
    result = run_cli("cases", root)
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 2 and "Traceback" not in result.stderr, result.stderr
    assert str(flairs[0]) in lines[0] and str(flairs[2]) in lines[1]
    assert str(flairs[1]) not in result.stderr  # the readable case is not blamed
