"""Tests of ``lesionseg refine``, ``lesionseg revisions`` and ``lesionseg review-queue``.

Most commands run in-process through :func:`lesionseg.cli.main` (same parser, same exit codes); one runs
as a real ``python -m lesionseg`` process. Bad input must give exit code 2, one sentence on stderr, and
leave the stored revisions as they were.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.cli import main
from lesionseg.data import discover
from lesionseg.io import read_mask, write_image
from lesionseg.metrics import dice
from lesionseg.refine import RevisionStore

from conftest import SMALL_PHANTOM, run_cli

CASE = "sub-strokecase0001"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("cli") / "isles"
    write_cohort(root, 2, modalities=("flair",), seed=4, **SMALL_PHANTOM)
    return root


@pytest.fixture()
def dataset(cohort, tmp_path) -> Path:
    """A fresh copy of the cohort (each test writes its own revisions)."""
    import shutil

    copy = tmp_path / "isles"
    shutil.copytree(cohort, copy)
    return copy


def _store(dataset: Path, case_id: str = CASE) -> RevisionStore:
    case = next(c for c in discover(dataset) if c.case_id == case_id)
    return RevisionStore.for_case(case, dataset=dataset)


def _snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".lock"}


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _mask_like(reference: sitk.Image, array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(reference)
    return image


def test_tools_write_revisions_with_provenance(dataset, capsys):
    store = _store(dataset)
    original = sitk.GetArrayFromImage(store.read("original")) != 0
    grown = np.zeros_like(original)
    for z in range(original.shape[0]):  # the mask grown by 2 voxels in-plane, imported as an annotator's edit
        from scipy import ndimage

        grown[z] = ndimage.binary_dilation(original[z], iterations=2)
    far = np.unravel_index(np.argmax(ndimage.distance_transform_edt(~grown)), grown.shape)
    grown[far] = True  # and a stray voxel (15 mm³) far from the lesion
    edited = dataset / "edited.nii.gz"
    write_image(_mask_like(store.read("original"), grown), edited)
    code, out, _ = _run(capsys, "revisions", dataset, CASE, "--import", edited, "--author", "ab")
    assert code == 0 and "rev-0001 imported" in out
    code, out, _ = _run(capsys, "refine", "cleanup", dataset, CASE, "--author", "cd", "--comment", "specks")
    assert code == 0 and "rev-0002 (cleanup, from rev-0001): +0.00 mL, -0.02 mL" in out
    code, out, err = _run(capsys, "refine", "intensity", dataset, CASE, "--json")
    assert code == 0
    report = json.loads(out)
    entries = store.revisions()
    if report["revision"] is None:  # the tool may find the lesion too faint on this image: then it says why
        assert "not distinct" in report["details"]["reason"]
    else:
        intensity = entries[-1]
        assert intensity.tool == "intensity" and intensity.source == entries[-2].id
        assert intensity.parameters["polarity"] == "bright" and intensity.parameters["channel"] == "flair"
        assert report["difference"]["second"] == intensity.id
    cleanup = next(r for r in entries if r.tool == "cleanup")
    assert cleanup.author == "cd" and cleanup.comment == "specks" and cleanup.parameters == {"channel": "flair"}
    assert cleanup.details["removed_voxels"] == 1
    assert entries[0].tool == "import" and entries[0].source == "original"


def test_fill_between_and_grow_from_a_point(dataset, capsys):
    store = _store(dataset)
    original = sitk.GetArrayFromImage(store.read("original")) != 0
    drawn = np.flatnonzero(original.any(axis=(1, 2)))
    sparse = np.zeros_like(original)
    sparse[drawn[::2]] = original[drawn[::2]]
    sparse_file = dataset / "sparse.nii.gz"
    write_image(_mask_like(store.read("original"), sparse), sparse_file)
    assert _run(capsys, "revisions", dataset, CASE, "--import", sparse_file)[0] == 0
    code, out, _ = _run(capsys, "refine", "fill-between", dataset, CASE)
    assert code == 0 and "rev-0002 (fill-between, from rev-0001)" in out
    filled = sitk.GetArrayFromImage(store.read("rev-0002")) != 0
    assert dice(filled, original) > dice(sparse, original)
    # a lesion point (RAS mm) at the deepest voxel of the lesion grows a mask from nothing but the stroke
    from scipy import ndimage

    image = store.read("original")
    depth = ndimage.distance_transform_edt(original)
    z, y, x = np.unravel_index(np.argmax(depth), depth.shape)
    lps = image.TransformIndexToPhysicalPoint([int(x), int(y), int(z)])
    point = f"{-lps[0]},{-lps[1]},{lps[2]}"
    code, out, _ = _run(capsys, "refine", "grow", dataset, CASE, "--from", "rev-0002", f"--lesion-point={point}")
    assert code == 0
    revision = store.revisions()[-1]
    assert revision.tool == "grow" and revision.source == "rev-0002"


def test_transfer_from_another_session_of_the_patient(tmp_path, capsys):
    from lesionseg.synth import make_case

    case = make_case(1, seed=0, modalities=("flair", "ct"), misalignment=(5.0, 5.0), **SMALL_PHANTOM)
    root = tmp_path / "two-sessions"
    write_image(case.channels["flair"], root / "sub-p1" / "ses-1" / "anat" / "sub-p1_ses-1_FLAIR.nii.gz")
    write_image(case.lesion_mask, root / "derivatives" / "sub-p1" / "ses-1" / "sub-p1_ses-1_msk.nii.gz")
    write_image(case.channels["ct"], root / "sub-p1" / "ses-2" / "anat" / "sub-p1_ses-2_ct.nii.gz")
    code, out, err = _run(capsys, "refine", "transfer", root, "sub-p1_ses-2", "--source-case", "sub-p1_ses-1")
    assert code == 0, err
    target = next(c for c in discover(root) if c.case_id == "sub-p1_ses-2")
    store = RevisionStore.for_case(target, dataset=root)
    carried = sitk.GetArrayFromImage(store.read("latest")) != 0
    indicator = sitk.Cast(case.lesion_mask, sitk.sitkFloat32)
    truth = sitk.Resample(indicator, case.channels["ct"], case.transforms["ct"].GetInverse(), sitk.sitkLinear, 0.0,
                          sitk.sitkFloat32)
    assert dice(carried, sitk.GetArrayFromImage(truth) >= 0.5) > 0.8
    revision = store.revisions()[-1]
    assert revision.source is None and revision.parameters["source_mask"].startswith("sub-p1_ses-1:original")
    assert revision.details["registration"]["stages"] == ["rigid"]


def test_revisions_list_diff_restore_and_review(dataset, capsys):
    store = _store(dataset)
    original = store.read("original")
    store.add(_mask_like(original, np.zeros(original.GetSize()[::-1], bool)), tool="manual", source="original")
    code, out, _ = _run(capsys, "revisions", dataset, CASE, "--diff", "original", "rev-0001")
    volume = float(np.count_nonzero(sitk.GetArrayFromImage(original)) * np.prod(original.GetSpacing()) / 1000)
    assert code == 0 and f"-{volume:.2f} mL" in out and "Dice 0.000" in out
    code, out, _ = _run(capsys, "revisions", dataset, CASE, "--restore", "original")
    assert code == 0 and "rev-0002 restores original" in out
    np.testing.assert_array_equal(sitk.GetArrayFromImage(store.read("rev-0002")), sitk.GetArrayFromImage(original))
    code, out, _ = _run(capsys, "revisions", dataset, CASE, "--review", "flagged", "--rating", "medium",
                        "--comment", "edge unclear")
    assert code == 0 and "marked flagged, rated medium (rev-0002)" in out
    code, out, _ = _run(capsys, "revisions", dataset, CASE, "--json")
    listing = json.loads(out)
    assert [r["id"] for r in listing["revisions"]] == ["rev-0001", "rev-0002"]
    assert listing["review"]["status"] == "flagged" and listing["review"]["rating"] == "medium"


def test_bad_input_exit_2_one_sentence_store_unchanged(dataset, capsys):
    store = _store(dataset)
    original = store.read("original")
    empty = dataset / "empty.nii.gz"
    write_image(_mask_like(original, np.zeros(original.GetSize()[::-1], bool)), empty)
    assert _run(capsys, "revisions", dataset, CASE, "--import", empty)[0] == 0  # rev-0001: an empty mask
    shifted = read_mask(store.path("original"))
    shifted.SetOrigin([o + 10.0 for o in shifted.GetOrigin()])
    other_grid = dataset / "other-grid.nii.gz"
    write_image(shifted, other_grid)
    before = _snapshot(store.folder)
    attempts = {
        "outside the image": ("refine", "grow", dataset, CASE, "--from", "original", "--lesion-point=900,0,0"),
        "not on the grid": ("revisions", dataset, CASE, "--import", other_grid),
        "not on the grid ": ("refine", "grow", dataset, CASE, "--from", "original", "--seeds", other_grid),
        "empty": ("refine", "intensity", dataset, CASE),
        "no revision 'rev-0042'": ("refine", "cleanup", dataset, CASE, "--from", "rev-0042"),
        "no revision 'rev-0042' ": ("revisions", dataset, CASE, "--restore", "rev-0042"),
        "is an option of the intensity": ("refine", "cleanup", dataset, CASE, "--band-mm", "3"),
        "has no case": ("refine", "cleanup", dataset, "sub-nobody"),
    }
    for expected, arguments in attempts.items():
        code, out, err = _run(capsys, *arguments)
        assert code == 2, (arguments, err)
        lines = [line for line in err.splitlines() if not line.startswith("WARNING")]
        assert len(lines) == 1 and lines[0].startswith("lesionseg ") and expected.strip() in lines[0], lines
        assert lines[0].rstrip().endswith("."), lines[0]
        assert _snapshot(store.folder) == before, arguments


@pytest.mark.slow
def test_a_real_process_reports_an_unknown_revision(dataset):
    result = run_cli("revisions", dataset, CASE, "--diff", "original", "rev-0009")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"lesionseg revisions: error: case {CASE} has no revision 'rev-0009'; "
                                     "it has: original.")


def test_review_queue_and_ratings_export(dataset, tmp_path, capsys):
    code, out, _ = _run(capsys, "review-queue", dataset, "--progress", "none", "--out", tmp_path / "queue.csv")
    assert code == 0 and "2 case(s)" in out and "no --bundle" in out
    rows = (tmp_path / "queue.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("rank,case_id,attention") and len(rows) == 3
    assert _run(capsys, "revisions", dataset, CASE, "--review", "reviewed", "--rating", "easy")[0] == 0
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "prepare.json").write_text(json.dumps({"config": {}, "cases": []}))
    (prepared / "slices.csv").write_text(
        "case_id,patient_id,slice_index,flipped,lesion_pixels,lesion_area_mm2,has_lesion\n"
        f"{CASE},p1,4,0,9,27.6,1\nsub-strokecase0002,p2,5,0,9,27.6,1\n")
    code, out, _ = _run(capsys, "review-queue", dataset, "--export-ratings", "--prepared", prepared,
                        "--out", tmp_path / "human.csv")
    assert code == 0 and "1 rated case(s)" in out and "sub-strokecase0002" in out
    from lesionseg.difficulty import read_difficulty

    table = read_difficulty(tmp_path / "human.csv")
    assert table.keys == [(CASE, 4)] and table.metrics["human"].tolist() == [0.0]
