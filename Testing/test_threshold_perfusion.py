"""``lesionseg threshold-perfusion``: the clinical threshold rule on a dataset's maps, read in their units, with the
brain mask and mid-plane it finds itself; checked against the rule run with the phantom's own brain mask and plane."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_cli


@pytest.fixture(scope="module")
def perfusion_cohort(tmp_path_factory) -> tuple[Path, list]:
    from lesionseg.synth import write_cohort

    root = tmp_path_factory.mktemp("perfusion") / "cohort"
    return root, write_cohort(root, 2, modalities=("tmax", "cbf", "cbv", "mtt"), seed=3)


def _class_dice(a: np.ndarray, b: np.ndarray, label: int) -> float:
    x, y = a == label, b == label
    return 2.0 * np.count_nonzero(x & y) / max(np.count_nonzero(x) + np.count_nonzero(y), 1)


def test_the_command_matches_the_rule_on_the_phantoms_own_brain_and_plane(perfusion_cohort, tmp_path):
    from lesionseg.infer.perfusion_threshold import threshold_perfusion
    from lesionseg.io import read_image, read_mask
    from lesionseg.preprocess.midplane import Midplane

    root, files = perfusion_cohort
    result = run_cli("threshold-perfusion", root, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for case in files:
        maps = {name: read_image(path, pixel_type=sitk.sitkFloat32) for name, path in case.channels.items()}
        truth = json.loads(case.truth.read_text())
        plane = Midplane(tuple(truth["midplane"]["point_mm"]), tuple(truth["midplane"]["normal"]))
        reference = threshold_perfusion(maps["tmax"], maps["cbf"], maps["cbv"], read_mask(case.brain_mask), plane)
        expected = sitk.GetArrayFromImage(reference.labels)
        found = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / f"{case.case_id}.nii.gz")))
        for label in (1, 2):  # the brain mask from the maps and the plane from the CBV map change next to nothing
            assert _class_dice(found, expected, label) >= 0.98
        assert (tmp_path / "out" / f"{case.case_id}.tsv").is_file()
    rows = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert [row["status"] for row in rows] == ["ok", "ok"]
    # evaluate reads the label table beside each output and scores each class
    scored = run_cli("evaluate", tmp_path / "out", root, "--out", tmp_path / "scores.csv", "--progress", "none")
    assert scored.returncode == 0, scored.stderr
    header = (tmp_path / "scores.csv").read_text().splitlines()[0]
    assert "core_dice" in header and "penumbra_dice" in header


def test_maps_in_other_units_give_the_same_result(perfusion_cohort, tmp_path):
    """Tmax in milliseconds and CBF in mL/100 g/s, said in their sidecars: the same core and penumbra."""
    root, files = perfusion_cohort
    copy = tmp_path / "cohort"
    shutil.copytree(root, copy)
    for case in files:
        for name, factor, units in (("tmax", 1000.0, "ms"), ("cbf", 1.0 / 60.0, "mL/100g/s")):
            path = copy / case.channels[name].relative_to(root)
            image = sitk.ReadImage(str(path), sitk.sitkFloat32)
            sitk.WriteImage(image * factor, str(path))
            sidecar = Path(str(path).replace(".nii.gz", ".json"))
            sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "Units": units}))
    assert run_cli("threshold-perfusion", root, "-o", tmp_path / "a").returncode == 0
    assert run_cli("threshold-perfusion", copy, "-o", tmp_path / "b").returncode == 0
    for case in files:
        a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / out / f"{case.case_id}.nii.gz")))
                for out in ("a", "b"))
        for label in (1, 2):  # float rounding of the rescaled maps may flip a voxel at a threshold
            assert _class_dice(a, b, label) >= 0.999


def test_a_map_without_units_fails_its_case_and_says_why(perfusion_cohort, tmp_path):
    root, files = perfusion_cohort
    copy = tmp_path / "cohort"
    shutil.copytree(root, copy)
    Path(str(copy / files[0].channels["cbf"].relative_to(root)).replace(".nii.gz", ".json")).unlink()
    result = run_cli("threshold-perfusion", copy, "-o", tmp_path / "out")
    assert result.returncode == 3  # one case failed, the other was written
    rows = {row["case_id"]: row for row in csv.DictReader((tmp_path / "out" / "summary.csv").open())}
    assert rows[files[0].case_id]["status"] == "failed" and "has no JSON sidecar" in rows[files[0].case_id]["error"]
    assert rows[files[1].case_id]["status"] == "ok"
    refused = run_cli("threshold-perfusion", root, "-o", tmp_path / "x", "--core-rcbf", "30")
    assert refused.returncode == 2 and "--core-rcbf must be a fraction between 0 and 1" in refused.stderr
