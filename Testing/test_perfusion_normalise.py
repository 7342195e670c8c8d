"""Perfusion maps as channels: units from the JSON sidecar (:mod:`lesionseg.data.sidecar`), their
normalisation (:mod:`lesionseg.preprocess.perfusion`) and its place in preparation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.data.sidecar import map_units, sidecar_path
from lesionseg.errors import InputFileError, PreprocessingError
from lesionseg.io import write_image
from lesionseg.preprocess.perfusion import UNITS_METADATA_KEY, normalise_perfusion


def _image(values) -> sitk.Image:
    return sitk.GetImageFromArray(np.asarray(values, np.float32).reshape(1, 1, -1))


def _brain(n: int) -> sitk.Image:
    return sitk.GetImageFromArray(np.ones((1, 1, n), np.uint8))


def test_time_maps_keep_their_seconds_on_a_fixed_scale():
    # hand-computed: ms -> s, clipped to [0, 20] s, divided by 10 s (so the clinical 6 s is 0.6)
    out, record = normalise_perfusion(_image([-500, 0, 3000, 6000, 25000]), _brain(5), "tmax", "ms")
    np.testing.assert_allclose(sitk.GetArrayFromImage(out).ravel(), [0.0, 0.0, 0.3, 0.6, 2.0], rtol=1e-6)
    assert record["scale_s"] == 10.0 and record["clip_s"] == [0.0, 20.0]
    out, _ = normalise_perfusion(_image([4.0, 12.0]), _brain(2), "mtt", "s")
    np.testing.assert_allclose(sitk.GetArrayFromImage(out).ravel(), [0.4, 1.2], rtol=1e-6)


def test_flow_maps_become_relative_to_the_brain_median():
    brain = sitk.GetImageFromArray(np.array([[[1, 1, 1, 1, 1, 0]]], np.uint8))
    out, record = normalise_perfusion(_image([10, 20, 30, 40, 200, 999]), brain, "cbf", "mL/100g/min")
    # clipped to 150 first (the brain median of 10, 20, 30, 40, 150 is 30), then /30, then at most 4
    np.testing.assert_allclose(sitk.GetArrayFromImage(out).ravel(), [1 / 3, 2 / 3, 1.0, 4 / 3, 4.0, 4.0], rtol=1e-6)
    assert record["reference"] == "brain median" and record["reference_value"] == 30.0


def test_units_a_map_cannot_have_are_refused():
    with pytest.raises(PreprocessingError, match=r"the cbf map is in '%', which cannot be converted to mL/100g/min"):
        normalise_perfusion(_image([1.0]), _brain(1), "cbf", "%")


def test_a_map_without_a_sidecar_giving_its_units_is_refused(tmp_path):
    path = tmp_path / "sub-1_Tmax.nii.gz"
    write_image(_image([1.0, 2.0]), path)
    with pytest.raises(InputFileError, match=r"the tmax perfusion map .*sub-1_Tmax.nii.gz has no JSON sidecar giving "
                                             r"its units.*sub-1_Tmax.json with e.g. \{\"Units\": \"s\"\}\.$"):
        map_units(path, "tmax")
    sidecar_path(path).write_text(json.dumps({"RepetitionTime": 1.0}))
    with pytest.raises(InputFileError, match="has a sidecar without a \"Units\" string"):
        map_units(path, "tmax")
    sidecar_path(path).write_text(json.dumps({"Units": "ms"}))
    assert map_units(path, "tmax") == "ms"


@pytest.mark.slow
def test_prepare_normalises_maps_with_units_and_refuses_those_without():
    from lesionseg.preprocess import PrepareConfig
    from lesionseg.preprocess.pipeline import prepare_images
    from lesionseg.synth import make_case

    case = make_case(3, seed=4, modalities=("dwi", "tmax", "cbf"), size_xyz=(96, 112, 24), spacing_mm=(2.0, 2.0, 6.0))
    config = PrepareConfig(channels=["dwi", "tmax", "cbf"], size=64, registration=[], brain_extraction="classical")
    images = {name: sitk.Cast(image, sitk.sitkFloat32) for name, image in case.channels.items()}
    with pytest.raises(PreprocessingError, match="the tmax perfusion map was given without its units"):
        prepare_images(dict(images), config, case_id="c")
    for name, units in (("tmax", "s"), ("cbf", "mL/100g/min")):
        images[name].SetMetaData(UNITS_METADATA_KEY, units)
    prepared = prepare_images(images, config, case_id="c")
    steps = prepared.record.steps["normalisation"]
    assert steps["dwi"]["kind"] == "zscore_in_brain" and steps["tmax"]["kind"] == steps["cbf"]["kind"] == "perfusion"
    tmax, cbf = prepared.images[:, 1], prepared.images[:, 2]
    brain = prepared.brains > 0
    assert tmax.min() >= 0.0 and tmax.max() <= 2.0
    # the share of brain at Tmax > 6 s is kept (0.6 on the fixed scale), up to resampling and brain edges
    native_tmax = sitk.GetArrayFromImage(case.channels["tmax"])
    native_share = np.mean(native_tmax[sitk.GetArrayFromImage(case.brain_mask) > 0] > 6.0)
    assert abs(np.mean(tmax[brain] > 0.6) - native_share) < 0.35 * native_share + 0.005
    assert abs(np.median(cbf[brain]) - 1.0) < 0.02  # relative to the brain median


def test_segment_inputs_carry_the_units_of_perfusion_maps(tmp_path):
    from lesionseg.infer.inputs import read_case_inputs

    path = tmp_path / "tmax.nii.gz"
    write_image(_image([1.0, 7.0]), path)
    with pytest.raises(InputFileError, match="has no JSON sidecar giving its units"):
        read_case_inputs({"tmax": path})
    sidecar_path(path).write_text(json.dumps({"Units": "s"}))
    image = read_case_inputs({"tmax": path, "flair": path}).images
    assert image["tmax"].GetMetaData(UNITS_METADATA_KEY) == "s"
    assert not image["flair"].HasMetaDataKey(UNITS_METADATA_KEY)
