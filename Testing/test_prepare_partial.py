"""``lesionseg prepare`` on a dataset with bad cases: the others are prepared, the bad ones are listed with
their reasons (on screen and in prepare.json), exit code 3, a re-run retries only what failed, and a
training on the partial result works."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import SMALL_PHANTOM
from lesionseg.cli import main
from lesionseg.io import write_image
from lesionseg.preprocess import PreparedDataset
from lesionseg.synth import make_case, write_case

PREPARE = ("--size", "48", "--negatives", "0.2", "--progress", "none")


def _truncate(path: Path) -> None:
    """Cut a .nii.gz in half: the gzip stream ends early, the file cannot be read."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flat(path: Path, like: sitk.Image) -> None:
    """A constant scan: no brain to find."""
    flat = sitk.Image(like.GetSize(), sitk.sitkInt16) + 100
    flat.CopyInformation(like)
    write_image(flat, path)


def _case_files(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sorted((folder / "cases").glob("*"))}


@pytest.mark.slow
def test_bad_cases_are_listed_the_others_prepared_retried_alone_and_trained_on(tmp_path, capsys):
    data = tmp_path / "data"
    cases = [make_case(i, seed=6, modalities=("flair",), **SMALL_PHANTOM) for i in (1, 2, 3, 4)]
    files = [write_case(case, data) for case in cases]
    unreadable, no_brain = cases[1].case_id, cases[2].case_id
    _truncate(files[1].channels["flair"])
    _flat(files[2].channels["flair"], cases[2].channels["flair"])
    out = tmp_path / "prepared"

    code = main(["prepare", str(data), str(out), *PREPARE])
    printed = capsys.readouterr()
    assert code == 3, printed.err
    info = json.loads((out / "prepare.json").read_text(encoding="utf-8"))
    assert [c["case_id"] for c in info["cases"]] == [cases[0].case_id, cases[3].case_id]
    reasons = {entry["case_id"]: entry["reason"] for entry in info["failed"]}
    assert set(reasons) == {unreadable, no_brain}
    assert "truncated" in reasons[unreadable] or "could not be read" in reasons[unreadable]
    assert "brain" in reasons[no_brain]
    for case_id, reason in reasons.items():
        assert case_id in reason
        assert f"  {case_id}: {reason}" in printed.out  # and on screen, with the same reason
    assert "2 case(s) could not be prepared" in printed.out
    assert PreparedDataset(out).case_ids == [cases[0].case_id, cases[3].case_id]

    # a re-run (two workers) prepares only the failed cases: the prepared ones are untouched
    stamps = _case_files(out)
    code = main(["prepare", str(data), str(out), *PREPARE, "--workers", "2"])
    printed = capsys.readouterr()
    assert code == 3 and "2 cases unchanged and skipped, 2 that failed before tried again" in printed.out
    assert _case_files(out) == stamps
    # the scan is repaired: the next run prepares it, and only it
    write_image(cases[2].channels["flair"], files[2].channels["flair"])
    code = main(["prepare", str(data), str(out), *PREPARE])
    printed = capsys.readouterr()
    assert code == 3 and "2 cases unchanged and skipped" in printed.out
    assert {p for p, stamp in _case_files(out).items() if stamps.get(p) != stamp} == {
        out / "cases" / f"{no_brain}.json", out / "cases" / f"{no_brain}.npz"}
    info = json.loads((out / "prepare.json").read_text(encoding="utf-8"))
    assert [entry["case_id"] for entry in info["failed"]] == [unreadable]
    assert len(info["cases"]) == 3

    # a training on the partial result works
    run = tmp_path / "run"
    code = main(["train", str(out), str(run), "--epochs", "1", "--all-data", "--model", "unet2d",
                 "--network-kwargs", '{"features": [8, 16, 32, 64, 128]}', "--from-scratch", "--curriculum", "none",
                 "--batch-size", "8", "--device", "cpu", "--threads", "1", "--no-augment", "--progress", "none"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert (run / "model.lsb").is_file()


def test_when_no_case_can_be_prepared_nothing_is_written_and_every_reason_is_given(tmp_path, capsys):
    data = tmp_path / "data"
    for index in (1, 2):
        case = make_case(index, seed=6, modalities=("flair",), size_xyz=(40, 44, 10), spacing_mm=(5.0, 5.0, 14.0))
        files = write_case(case, data)
        _truncate(files.channels["flair"])
    out = tmp_path / "prepared"
    code = main(["prepare", str(data), str(out), *PREPARE])
    printed = capsys.readouterr()
    assert code == 2
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1 and "none of the 2 cases could be prepared" in lines[0]
    assert "sub-strokecase0001" in lines[0] and "sub-strokecase0002" in lines[0]
    assert not (out / "prepare.json").exists() and not list(out.rglob("*.npz"))
