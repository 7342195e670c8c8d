"""CT input (issue 19): the brain and stroke windows as input planes, brain extraction on varied synthetic CT
heads (skull base, thick skull, tilt, oblique storage), and bad input (no Hounsfield units, skull removed).

The windows are checked on a hand-made HU ramp against the window's own arithmetic; the brain masks against
the phantom's intracranial truth (``SynthCase.brain_mask``), Dice computed here with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import InputFileError, ParameterError
from lesionseg.preprocess.brain import run_brain_extraction
from lesionseg.preprocess.config import STROKE_WINDOW_HU, PrepareConfig
from lesionseg.preprocess.normalise import window_ct
from lesionseg.synth import make_case

CT = ("ct",)


def arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = arr(a) > 0, arr(b) > 0
    return 2.0 * np.count_nonzero(x & y) / (np.count_nonzero(x) + np.count_nonzero(y))


# --- windows ------------------------------------------------------------------------------------------------

def test_stroke_window_keeps_a_3_hu_step_on_a_hu_ramp():
    """A ramp of whole HU from -30 to 110: the stroke window (20-60 HU) maps v to (v - 20) / 40, clipped; a
    3 HU step inside it is a step of 3/40 of the range, twice what the brain window (0-80) gives."""
    hu = np.arange(-30, 111, dtype=np.float32)
    image = sitk.GetImageFromArray(np.tile(hu, (2, 3, 1)))  # (z, y, x): the ramp along x
    stroke = arr(window_ct(image, window=STROKE_WINDOW_HU))[0, 0]
    brain = arr(window_ct(image, window=(0.0, 80.0)))[0, 0]
    np.testing.assert_allclose(stroke, np.clip((hu - 20.0) / 40.0, 0.0, 1.0), atol=1e-6)
    at = {int(v): i for i, v in enumerate(hu)}
    assert stroke[at[33]] - stroke[at[30]] == pytest.approx(3.0 / 40.0, abs=1e-6)
    assert brain[at[33]] - brain[at[30]] == pytest.approx(3.0 / 80.0, abs=1e-6)
    # a 1 HU step is still resolved in float32 (no rounding to a coarser grid of values)
    assert stroke[at[41]] - stroke[at[40]] == pytest.approx(1.0 / 40.0, abs=1e-6)
    assert stroke[at[19]] == 0.0 and stroke[at[61]] == 1.0


def test_ct_windows_config_planes_and_old_configs():
    config = PrepareConfig(ct_windows=["brain", "stroke"])
    assert config.input_planes(["ct", "flair"]) == ["ct-brain", "ct-stroke", "flair"]
    assert config.ct_window_hu("stroke") == STROKE_WINDOW_HU and config.ct_window_hu("brain") == (0.0, 80.0)
    again = PrepareConfig.from_dict(config.to_dict())
    assert again.ct_windows == ["brain", "stroke"]
    old = PrepareConfig.from_dict({"ct_window": [0, 80]})  # a prepared folder or bundle of before
    assert old.ct_windows is None and old.input_planes(["ct"]) == ["ct"]
    assert "ct_windows" not in old.to_dict()  # the same dict as before, so prepared cases are not redone
    with pytest.raises(ParameterError, match="ct_windows"):
        PrepareConfig(ct_windows=["bone"])


def test_prepared_ct_gets_one_plane_per_window():
    """prepare_images with ct_windows: two planes per slice, the stroke plane being the same slices windowed
    at 20-60 HU (recomputed from the brain plane, which is the 0-80 HU window: v = 80 b)."""
    from lesionseg.preprocess.pipeline import prepare_images

    case = make_case(2, 3, modalities=CT, size_xyz=(96, 112, 30), spacing_mm=(2.0, 2.0, 5.0))
    config = PrepareConfig(size=64, registration=[], ct_windows=["brain", "stroke"])
    prepared = prepare_images(dict(case.channels), config, case_id=case.case_id, user_brain=case.brain_mask)
    assert prepared.images.shape[1] == 2
    brain, stroke = prepared.images[:, 0], prepared.images[:, 1]
    inside = (brain > 0.0) & (brain < 1.0)  # voxels within 0-80 HU, where the HU value is known
    hu = 80.0 * brain[inside]
    np.testing.assert_allclose(stroke[inside], np.clip((hu - 20.0) / 40.0, 0.0, 1.0), atol=1e-5)
    record = prepared.record.steps["normalisation"]["ct"]
    assert record == {"kind": "ct_windows", "windows_hu": {"brain": [0.0, 80.0], "stroke": [20.0, 60.0]}}


# --- brain extraction on varied CT heads --------------------------------------------------------------------

HEADS = {
    "5 mm, skull base, oblique 20, tilted": dict(size_xyz=(100, 116, 36), spacing_mm=(2.0, 2.0, 5.0),
                                                 skull_base=True, oblique_deg=20.0, head_tilt_deg=10.0,
                                                 beam_hardening=True, ct_noise_hu=(6.0, 6.0)),
    "3 mm, skull base, thick skull": dict(size_xyz=(100, 116, 60), spacing_mm=(2.0, 2.0, 3.0), skull_base=True,
                                          skull_thickness_mm=(12.0, 14.0), beam_hardening=True),
}


@pytest.mark.parametrize("name", list(HEADS))
def test_ct_brain_mask_on_varied_heads(name):
    case = make_case(3, 19, modalities=CT, **HEADS[name])
    result = run_brain_extraction(case.channels["ct"], "ct", method="classical")
    assert dice(result.mask, case.brain_mask) >= 0.95, name


@pytest.mark.slow
def test_ct_brain_mask_on_a_1_mm_head_with_skull_base():
    case = make_case(4, 19, modalities=CT, size_xyz=(96, 110, 150), spacing_mm=(2.0, 2.0, 1.0), skull_base=True,
                     skull_thickness_mm=(9.0, 14.0), head_tilt_deg=10.0)
    result = run_brain_extraction(case.channels["ct"], "ct", method="classical")
    assert dice(result.mask, case.brain_mask) >= 0.95


def test_skull_base_guard_is_what_keeps_the_mask_out_of_the_neck(monkeypatch):
    """Without the cut at the skull's openings the same head's mask floods the neck through the foramen magnum."""
    from lesionseg.preprocess import brain_classical as brain

    case = make_case(3, 19, modalities=CT, **HEADS["3 mm, skull base, thick skull"])
    monkeypatch.setattr(brain, "SKULL_BASE_GUARD", False)
    leaked = run_brain_extraction(case.channels["ct"], "ct", method="classical").mask
    truth_ml = np.count_nonzero(arr(case.brain_mask)) * np.prod(case.brain_mask.GetSpacing()) / 1000
    leaked_ml = np.count_nonzero(arr(leaked)) * np.prod(leaked.GetSpacing()) / 1000
    assert leaked_ml > truth_ml + 100


# --- bad input ----------------------------------------------------------------------------------------------

def test_ct_without_hounsfield_units_is_refused():
    """Stored values without the rescale (HU + 1024, clipped to 0-4095): one sentence, exit code 2."""
    case = make_case(1, 19, modalities=CT, size_xyz=(100, 116, 36), spacing_mm=(2.0, 2.0, 5.0))
    raw = sitk.Clamp(sitk.Cast(case.channels["ct"], sitk.sitkFloat32) + 1024.0, sitk.sitkFloat32, 0.0, 4095.0)
    with pytest.raises(InputFileError, match="not in Hounsfield units") as caught:
        run_brain_extraction(raw, "ct", method="classical", case_id="c1")
    assert caught.value.exit_code == 2 and str(caught.value).count(".") <= 3
    assert "case c1" in str(caught.value)
    run_brain_extraction(case.channels["ct"], "ct", method="classical")  # the same head in HU passes


@pytest.mark.parametrize("background", [0.0, -1024.0])
def test_skull_stripped_ct_is_handled(background):
    """A CT with the skull removed (background 0 or -1024 HU): its brain is taken as the non-background voxels,
    and the note says so."""
    case = make_case(2, 19, modalities=CT, size_xyz=(100, 116, 36), spacing_mm=(2.0, 2.0, 5.0), skull=False)
    image = sitk.Cast(case.channels["ct"], sitk.sitkFloat32)
    if background:
        image = sitk.Mask(image, case.brain_mask, outsideValue=background)
    result = run_brain_extraction(image, "ct", method="classical")
    assert "skull-stripped" in result.note
    assert dice(result.mask, case.brain_mask) >= 0.99


def test_bundle_manifest_counts_one_plane_per_ct_window():
    """A bundle recorded with ct_windows takes one network input per window of its CT channel; the manifest
    check counts them (a bundle of before, without ct_windows, one per channel)."""
    from lesionseg.bundle.manifest import make_manifest, validate_manifest
    from lesionseg.errors import BundleError
    from lesionseg.models import network_config

    def manifest(in_channels: int, windows):
        return make_manifest(
            network_config=network_config("unet2d", in_channels, features=[4, 4, 8, 8, 16]), channels=["ct"],
            reference_channel="ct", expected_spacing_mm=[1.0, 1.0, 5.0],
            preprocessing=PrepareConfig(ct_windows=windows).to_dict(),
            members=[{"fold": 0, "validation": {"dice": 0.5}}],
            provenance={"train_config": {}, "curriculum": {"kind": "vanilla"}, "data_fingerprint": "0" * 64},
            name="ct")

    validate_manifest(manifest(2, ["brain", "stroke"]), "ct.lsb")
    validate_manifest(manifest(1, None), "old.lsb")
    with pytest.raises(BundleError, match="takes 1 channels"):
        validate_manifest(manifest(1, ["brain", "stroke"]), "bad.lsb")


def test_prepare_refuses_a_ct_without_hounsfield_units_with_exit_2(tmp_path, capsys):
    from lesionseg.cli import main as cli_main
    from lesionseg.synth import write_cohort

    files = write_cohort(tmp_path / "data", 1, modalities=CT, seed=19, size_xyz=(100, 116, 36),
                         spacing_mm=(2.0, 2.0, 5.0))
    path = str(files[0].channels["ct"])
    stored = sitk.Clamp(sitk.Cast(sitk.ReadImage(path), sitk.sitkInt16) + 1024, sitk.sitkInt16, 0, 4095)
    sitk.WriteImage(stored, path)
    assert cli_main(["prepare", str(tmp_path / "data"), str(tmp_path / "prepared")]) == 2
    assert "not in Hounsfield units" in capsys.readouterr().err


def test_finetuning_a_one_plane_bundle_on_two_ct_windows_is_a_hard_mismatch():
    """A FLAIR bundle (one input plane) cannot start a CT run with two windows (two planes); with the stroke
    window alone (one plane) it can."""
    from types import SimpleNamespace

    from lesionseg.bundle.manifest import make_manifest
    from lesionseg.models import network_config
    from lesionseg.train.config import TrainConfig
    from lesionseg.train.finetune import fit_problems

    kwargs = {"features": [4, 4, 8, 8, 16]}
    manifest = make_manifest(
        network_config=network_config("unet2d", 1, **kwargs), channels=["flair"], reference_channel="flair",
        expected_spacing_mm=[1.0, 1.0, 3.0], preprocessing=PrepareConfig(size=64).to_dict(),
        members=[{"fold": 0, "validation": {"dice": 0.5}}],
        provenance={"train_config": {}, "curriculum": {"kind": "vanilla"}, "data_fingerprint": "0" * 64}, name="f")
    config = TrainConfig(channel_map={"ct": "flair"}, context_slices=0, network="unet2d", network_kwargs=kwargs)
    for windows, hard in ((["brain", "stroke"], True), (["stroke"], False)):
        prepared = SimpleNamespace(channels=["ct"], config=PrepareConfig(size=64, ct_windows=windows), size=64)
        problem, _ = fit_problems(manifest, config, prepared)
        assert (problem is not None and "input plane" in problem) == hard, problem
