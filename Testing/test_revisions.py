"""Tests of mask revisions (lesionseg.data.revisions, compared by lesionseg.refine.diff_revisions), review marks and
ratings (lesionseg.refine.ratings).

Includes a real crash: a ``lesionseg refine`` process killed with SIGKILL between writing a revision's mask
and its log entry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.data import discover
from lesionseg.data.revisions import PAUSE_ENVIRONMENT
from lesionseg.errors import DatasetError, GeometryError, ParameterError
from lesionseg.io import read_mask, write_image
from lesionseg.refine import (
    RevisionStore, add_mark, case_ratings, clean_up, current_state, diff_revisions, ratings_table, read_marks,
    resolve_case_masks, resolve_mask,
)

from conftest import REPO, SMALL_PHANTOM


@pytest.fixture()
def dataset(tmp_path) -> Path:
    """Two small synthetic FLAIR cases in the ISLES'22 layout."""
    from lesionseg.synth import write_cohort

    root = tmp_path / "isles"
    write_cohort(root, 2, modalities=("flair",), seed=4, **SMALL_PHANTOM)
    return root


def _store(dataset: Path, case_id: str = "sub-strokecase0001", revisions_dir=None) -> RevisionStore:
    case = next(c for c in discover(dataset) if c.case_id == case_id)
    return RevisionStore.for_case(case, dataset=dataset, revisions_dir=revisions_dir)


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _changed(mask: sitk.Image, seed: int) -> sitk.Image:
    """The mask with a random 3x3x1 block toggled (a stand-in for one refinement)."""
    array = _array(mask).copy()
    rng = np.random.default_rng(seed)
    z, y, x = (int(rng.integers(1, n - 4)) for n in array.shape)
    array[z, y:y + 3, x:x + 3] ^= 1
    result = sitk.GetImageFromArray(array)
    result.CopyInformation(mask)
    return result


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".lock"}


def test_revisions_restore_exactly_after_a_sequence(dataset):
    store = _store(dataset)
    original = store.read("original")
    made = {"original": original}
    current = original
    for step in range(4):
        current = _changed(current, step)
        revision = store.add(current, tool="manual", source="latest", author="tester", comment=f"step {step}")
        made[revision.id] = current
    assert store.ids() == ["original", "rev-0001", "rev-0002", "rev-0003", "rev-0004"]
    assert store.get("rev-0003").source == "rev-0002" and store.get("1").author == "tester"
    for name, expected in made.items():
        restored = store.restore(name)
        back = store.read(restored.id)
        np.testing.assert_array_equal(_array(back), _array(expected))
        assert back.GetOrigin() == expected.GetOrigin() and back.GetSpacing() == expected.GetSpacing()
        assert back.GetDirection() == expected.GetDirection()
        assert restored.tool == "restore" and restored.source == name
    assert store.resolve("latest") == "rev-0009"
    # the dataset's own mask is never written
    case = next(c for c in discover(dataset) if c.case_id == "sub-strokecase0001")
    np.testing.assert_array_equal(_array(read_mask(case.mask)), _array(original))


def test_diff_reports_added_and_removed_millilitres_and_dice(dataset):
    store = _store(dataset)
    original = store.read("original")
    array = _array(original).copy()
    lesion = np.argwhere(array)
    array[tuple(lesion[:10].T)] = 0  # remove 10 lesion voxels
    array[0, 0, :4] = 1  # add 4 voxels far away
    edited = sitk.GetImageFromArray(array)
    edited.CopyInformation(original)
    revision = store.add(edited, tool="manual", source="original")
    voxel_ml = float(np.prod(original.GetSpacing())) / 1000.0
    difference = diff_revisions(store, "original", revision.id)
    n = int(_array(original).sum())
    assert difference.added_ml == pytest.approx(4 * voxel_ml)
    assert difference.removed_ml == pytest.approx(10 * voxel_ml)
    assert difference.dice == pytest.approx(2 * (n - 10) / (n + n - 10 + 4))
    assert difference.second_ml == pytest.approx((n - 6) * voxel_ml)


def test_bad_revisions_and_geometries_leave_the_store_unchanged(dataset):
    store = _store(dataset)
    store.add(_changed(store.read("original"), 1), tool="manual", source="original")
    before = _snapshot(store.folder)
    with pytest.raises(ParameterError, match="no revision 'rev-0042'; it has: original, rev-0001"):
        store.read("rev-0042")
    with pytest.raises(ParameterError, match="no revision"):
        store.add(store.read("original"), tool="manual", source="rev-0042")
    shifted = store.read("original")
    shifted.SetOrigin([o + 5.0 for o in shifted.GetOrigin()])
    with pytest.raises(GeometryError, match="not on the grid"):
        store.add(shifted, tool="manual", source="latest")
    assert _snapshot(store.folder) == before


def test_a_changed_revision_file_is_detected(dataset):
    store = _store(dataset)
    revision = store.add(_changed(store.read("original"), 2), tool="manual", source="original")
    path = store.folder / revision.file
    write_image(_changed(store.read("original"), 3), path)  # someone overwrote it by hand
    with pytest.raises(DatasetError, match="changed after it was written"):
        store.read(revision.id)


def test_orphans_of_a_crash_are_ignored_then_cleaned(dataset):
    store = _store(dataset)
    store.add(_changed(store.read("original"), 4), tool="manual", source="original")
    orphan = store.folder / "rev-0002.nii.gz"
    write_image(store.read("original"), orphan)  # a mask whose log entry was never written
    (store.folder / ".tmp-rev-0003-abc.nii.gz").write_bytes(b"half a file")
    assert store.ids() == ["original", "rev-0001"]
    revision = store.add(_changed(store.read("original"), 5), tool="manual", source="latest")
    assert revision.id == "rev-0002"
    assert not (store.folder / ".tmp-rev-0003-abc.nii.gz").exists()
    np.testing.assert_array_equal(_array(store.read("rev-0002")), _array(_changed(store.read("original"), 5)))


def test_revisions_can_live_outside_a_read_only_dataset(dataset, tmp_path):
    outside = tmp_path / "my-revisions"
    mode = dataset.stat().st_mode
    os.chmod(dataset, 0o555)
    try:
        store = _store(dataset, revisions_dir=outside)
        revision = store.add(_changed(store.read("original"), 6), tool="manual", source="original")
    finally:
        os.chmod(dataset, mode)
    assert (outside / "sub-strokecase0001" / revision.file).is_file()
    assert not (dataset / "derivatives" / "lesionseg").exists()


def test_resolve_mask_for_prepare_and_train(dataset):
    cases = discover(dataset)
    case = cases[0]
    assert resolve_mask(case, "original") == case.mask
    assert resolve_mask(case, "latest") == case.mask  # no revision yet
    store = RevisionStore.for_case(case, dataset=dataset)
    first = store.add(_changed(store.read("original"), 7), tool="manual", source="original")
    store.add(_changed(store.read("original"), 8), tool="manual", source="original")
    assert resolve_mask(case, "latest") == store.folder / "rev-0002.nii.gz"
    assert resolve_mask(case, first.id) == store.folder / first.file
    assert resolve_mask(case, "1") == store.folder / first.file
    with pytest.raises(ParameterError, match="no revision"):
        resolve_mask(case, "rev-0007")
    resolved = resolve_case_masks(cases, "latest")
    assert resolved[0].mask == store.folder / "rev-0002.nii.gz" and resolved[0].metadata["mask_revision"] == "rev-0002"
    assert resolved[1].mask == cases[1].mask and resolved[1].metadata["mask_revision"] == "original"
    assert resolve_case_masks(cases, "original") == cases


def test_review_marks_and_the_human_difficulty_table(dataset, tmp_path):
    from lesionseg.preprocess import PreparedDataset

    store = _store(dataset)
    assert current_state(read_marks(store.folder))["status"] == "never reviewed"
    add_mark(store.folder, "sub-strokecase0001", "flagged", rating="hard", comment="lesion edge unclear", author="ab")
    add_mark(store.folder, "sub-strokecase0001", "reviewed", author="cd", revision="original")
    state = current_state(read_marks(store.folder))
    assert state == {"status": "reviewed", "rating": "hard", "revision": "original", "comment": None}
    with pytest.raises(ParameterError, match="easy, medium, hard"):
        add_mark(store.folder, "sub-strokecase0001", "reviewed", rating="impossible")
    other = _store(dataset, "sub-strokecase0002")
    add_mark(other.folder, "sub-strokecase0002", "reviewed", rating="Easy")
    # a minimal prepared dataset: the two files the table needs
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    (prepared / "prepare.json").write_text(json.dumps({"config": {}, "cases": []}))
    rows = ["case_id,patient_id,slice_index,flipped,lesion_pixels,lesion_area_mm2,has_lesion",
            "sub-strokecase0001,p1,3,0,10,30.6,1", "sub-strokecase0001,p1,4,0,0,0,0",
            "sub-strokecase0001,p1,5,0,12,36.7,1", "sub-strokecase0002,p2,7,1,8,24.5,1",
            "sub-strokecase0003,p3,2,0,5,15.3,1"]
    (prepared / "slices.csv").write_text("\n".join(rows) + "\n")
    ratings = case_ratings(dataset, ["sub-strokecase0001", "sub-strokecase0002", "sub-strokecase0003"])
    assert ratings == {"sub-strokecase0001": "hard", "sub-strokecase0002": "easy"}
    table = ratings_table(PreparedDataset(prepared), ratings)
    assert table.keys == [("sub-strokecase0001", 3), ("sub-strokecase0001", 5), ("sub-strokecase0002", 7)]
    np.testing.assert_array_equal(table.metrics["human"], [2.0, 2.0, 0.0])
    rows_of_prepared = table.join(PreparedDataset(prepared), strict=False)
    assert list(rows_of_prepared) == [0, -1, 1, 2, -1]


@pytest.mark.slow
def test_a_killed_refinement_leaves_the_revisions_and_the_log_intact(dataset):
    store = _store(dataset)
    for step in range(2):
        store.add(_changed(store.read("latest"), 10 + step), tool="manual", source="latest")
    before = _snapshot(store.folder)
    log_before = json.loads(store.log_path.read_text(encoding="utf-8"))
    environment = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    environment[PAUSE_ENVIRONMENT] = "60"
    process = subprocess.Popen([sys.executable, "-m", "lesionseg", "refine", "cleanup", str(dataset),
                                "sub-strokecase0001", "--keep-largest", "1"], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    orphan = store.folder / "rev-0003.nii.gz"
    try:
        deadline = time.monotonic() + 120
        while not orphan.exists():  # the mask is written, the log entry not yet
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the refinement never wrote its mask"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    after = _snapshot(store.folder)
    assert {name: data for name, data in after.items() if name != orphan.name} == before
    assert json.loads(store.log_path.read_text(encoding="utf-8")) == log_before
    assert store.ids() == ["original", "rev-0001", "rev-0002"]
    for revision in ("rev-0001", "rev-0002"):
        store.read(revision)  # checked against the log's SHA-256
    # the next refinement takes the lock the dead process held, cleans its orphan and carries on
    revision = store.add(clean_up(store.read("latest"), keep_largest=1), tool="cleanup", source="latest")
    assert revision.id == "rev-0003" and store.ids()[-1] == "rev-0003"
    assert store.get("rev-0003").sha256 != ""


def _lesion_slices(prepared: Path, case_id: str) -> set[int]:
    import csv

    with (prepared / "slices.csv").open(encoding="utf-8", newline="") as handle:
        return {int(row["slice_index"]) for row in csv.DictReader(handle)
                if row["case_id"] == case_id and row["has_lesion"] in ("1", "True", "true")}


def test_prepare_uses_the_chosen_revision_and_train_refuses_a_stale_one(dataset, tmp_path):
    """prepare --mask-revision latest trains on the refined mask; train --mask-revision notices a newer one."""
    from conftest import run_cli
    from lesionseg.refine.prepared_revisions import check_prepared_revisions

    store = _store(dataset)
    original = _array(store.read("original"))
    lesion_z = np.flatnonzero(original.reshape(original.shape[0], -1).any(axis=1))
    cleared = {int(lesion_z[0]), int(lesion_z[-1])}  # a refinement that drops the lesion's first and last slices
    refined = original.copy()
    refined[sorted(cleared)] = 0
    refined_image = sitk.GetImageFromArray(refined)
    refined_image.CopyInformation(store.read("original"))
    store.add(refined_image, tool="manual", source="original", author="test")

    common = ("--size", "64", "--no-register", "--negatives", "0", "--progress", "none")
    assert run_cli("prepare", dataset, tmp_path / "from_original", *common).returncode == 0
    result = run_cli("prepare", dataset, tmp_path / "from_latest", *common, "--mask-revision", "latest")
    assert result.returncode == 0, result.stderr
    case_id = store.case_id
    before = _lesion_slices(tmp_path / "from_original", case_id)
    after = _lesion_slices(tmp_path / "from_latest", case_id)
    assert cleared <= before and after == before - cleared
    other = "sub-strokecase0002"
    assert _lesion_slices(tmp_path / "from_latest", other) == _lesion_slices(tmp_path / "from_original", other)

    assert check_prepared_revisions(tmp_path / "from_latest", "latest") == {case_id: "rev-0001", other: "original"}
    with pytest.raises(DatasetError, match="refined masks"):
        check_prepared_revisions(tmp_path / "from_latest", "original")
    store.add(_changed(refined_image, 3), tool="manual", source="rev-0001")
    stale = run_cli("train", tmp_path / "from_latest", tmp_path / "run", "--mask-revision", "latest", "--epochs", "1")
    assert stale.returncode == 2
    assert "prepared from mask rev-0001" in stale.stderr and "rev-0002" in stale.stderr
    assert not (tmp_path / "run").exists()
    unknown = run_cli("prepare", dataset, tmp_path / "unknown", *common, "--mask-revision", "rev-0009")
    assert unknown.returncode == 2 and "has no revision 'rev-0009'" in unknown.stderr
