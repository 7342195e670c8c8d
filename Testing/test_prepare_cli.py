"""``lesionseg prepare``: the layout on disk, parallel workers, skipping unchanged cases, and bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_cli
from lesionseg.io import write_image
from lesionseg.synth import make_case, write_case

SMALL = {"size_xyz": (112, 128, 28), "spacing_mm": (1.75, 1.75, 5.0)}


def small_dataset(root: Path, indices=(1, 2, 3), modalities=("flair",), seed: int = 4) -> list:
    cases = [make_case(i, seed=seed, modalities=modalities, **SMALL) for i in indices]
    for case in cases:
        write_case(case, root)
    return cases


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.slow
def test_prepare_writes_the_layout_in_parallel_and_skips_unchanged_cases(tmp_path):
    cases = small_dataset(tmp_path / "data")
    parallel, serial = tmp_path / "parallel", tmp_path / "serial"
    result = run_cli("prepare", tmp_path / "data", parallel, "--workers", "2", "--size", "96", "--progress", "none")
    assert result.returncode == 0, result.stderr
    assert "0 cases unchanged" in result.stdout
    assert run_cli("prepare", tmp_path / "data", serial, "--size", "96", "--progress", "none").returncode == 0
    info = json.loads((parallel / "prepare.json").read_text(encoding="utf-8"))
    assert info["config"]["size"] == 96 and info["channels"] == ["flair"]
    assert [c["case_id"] for c in info["cases"]] == [c.case_id for c in cases]
    for case in cases:
        with np.load(parallel / "cases" / f"{case.case_id}.npz") as a, np.load(serial / "cases" / f"{case.case_id}.npz") as b:
            assert a["images"].shape[1:] == (1, 96, 96)
            for key in ("images", "masks", "brains"):
                np.testing.assert_array_equal(a[key], b[key])  # 2 workers give exactly what 1 gives
        assert (parallel / "cases" / f"{case.case_id}.json").is_file()
    assert (parallel / "slices.csv").read_text(encoding="utf-8") == (serial / "slices.csv").read_text(encoding="utf-8")
    assert not [p for p in files_under(parallel) if ".tmp-" in p.name]

    stamps = {p: p.stat().st_mtime_ns for p in files_under(serial / "cases")}
    again = run_cli("prepare", tmp_path / "data", serial, "--size", "96", "--progress", "none")
    assert again.returncode == 0 and f"{len(cases)} cases unchanged and skipped" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in files_under(serial / "cases")} == stamps
    changed = run_cli("prepare", tmp_path / "data", serial, "--size", "96", "--negatives", "0.3", "--progress", "none")
    assert changed.returncode == 0 and "0 cases unchanged" in changed.stdout  # new parameters: redone


def _lesion_in_brain(case) -> sitk.Image:
    brain = sitk.GetArrayFromImage(case.brain_mask)
    z, y, x = (int(round(c)) for c in np.argwhere(brain).mean(axis=0))
    lesion = np.zeros_like(brain)
    lesion[z - 1:z + 2, y - 6:y + 6, x + 10:x + 20] = 1
    mask = sitk.GetImageFromArray(lesion)
    mask.CopyInformation(case.lesion_mask)
    return mask


def _bad_flat_flair(root, case, files):
    flat = sitk.Image(case.channels["flair"].GetSize(), sitk.sitkInt16)
    flat.CopyInformation(case.channels["flair"])
    write_image(flat, files.channels["flair"])


def _bad_flat_second_channel(root, case, files):
    flat = sitk.Image(case.channels["dwi"].GetSize(), sitk.sitkInt16) + 100
    flat.CopyInformation(case.channels["dwi"])
    write_image(flat, files.channels["dwi"])


def _bad_mask_outside_brain(root, case, files):
    outside = np.zeros(sitk.GetArrayFromImage(case.lesion_mask).shape, np.uint8)
    outside[10:14, 2:8, 2:8] = 1  # a corner of the field: air
    mask = sitk.GetImageFromArray(outside)
    mask.CopyInformation(case.lesion_mask)
    write_image(mask, files.mask)


def _bad_zero_slice_thickness(root, case, files):
    path = files.channels["flair"]
    plain = path.with_name(path.name.replace(".nii.gz", ".nii"))
    write_image(case.channels["flair"], plain, compress=False)
    header = bytearray(plain.read_bytes())
    header[88:92] = struct.pack("<f", 0.0)  # pixdim[3]: the slice thickness
    path.unlink()
    plain.write_bytes(bytes(header))


def _bad_nan_voxels(root, case, files):
    values = sitk.GetArrayFromImage(case.channels["flair"]).astype(np.float32)
    values[values.shape[0] // 2, 40:50, 40:50] = np.nan
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(case.channels["flair"])
    write_image(image, files.channels["flair"])


@pytest.mark.slow
@pytest.mark.parametrize("spoil, modalities, phrase", [
    (_bad_flat_flair, ("flair",), "brain"),
    (_bad_flat_second_channel, ("flair", "dwi"), "dwi"),
    (_bad_mask_outside_brain, ("flair",), "outside the brain"),
    (_bad_zero_slice_thickness, ("flair",), "slice thickness of 0"),
    (_bad_nan_voxels, ("flair",), "NaN"),
])
def test_bad_input_is_refused_naming_the_case_and_leaves_nothing_half_written(tmp_path, spoil, modalities, phrase):
    case = make_case(1, seed=4, modalities=modalities, **SMALL)
    case.lesion_mask = _lesion_in_brain(case)
    files = write_case(case, tmp_path / "data")
    spoil(tmp_path / "data", case, files)
    out = tmp_path / "prepared"
    result = run_cli("prepare", tmp_path / "data", out, "--size", "64", "--progress", "none",
                     "--channels", ",".join(modalities))  # flair first: the reference
    assert result.returncode == 2, result.stderr
    # one sentence for the error; warnings about other things (e.g. an atypical brain volume) may precede it
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("WARNING:")]
    assert len(lines) == 1 and case.case_id in lines[0] and phrase in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (out / "prepare.json").exists() and not (out / "slices.csv").exists()
    assert not [p for p in files_under(out) if ".tmp-" in p.name or p.suffix == ".npz"]
