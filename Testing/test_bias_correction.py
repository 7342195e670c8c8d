"""N4 bias-field correction (lesionseg.preprocess.bias), against the phantom rendered without its bias field."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import ParameterError
from lesionseg.preprocess import PrepareConfig
from lesionseg.preprocess.bias import correct_bias_n4
from lesionseg.preprocess.pipeline import prepare_images
from lesionseg.synth import make_case

SMALL = {"size_xyz": (96, 112, 24), "spacing_mm": (2.0, 2.0, 6.0), "noise": False}


def test_n4_takes_out_most_of_the_phantoms_bias_field():
    biased = make_case(3, seed=2, **SMALL)
    flat = make_case(3, seed=2, **SMALL, bias=False)  # the same phantom without its bias field
    brain = biased.brain_mask
    corrected, record = correct_bias_n4(sitk.Cast(biased.channels["flair"], sitk.sitkFloat32), brain)
    inside = sitk.GetArrayViewFromImage(brain) > 0
    truth = sitk.GetArrayFromImage(flat.channels["flair"]).astype(float)[inside]
    keep = truth > 0.5 * np.median(truth)  # ratios of near-zero CSF voxels are noise
    before = sitk.GetArrayFromImage(biased.channels["flair"]).astype(float)[inside][keep] / truth[keep]
    after = sitk.GetArrayFromImage(corrected).astype(float)[inside][keep] / truth[keep]

    def spread(ratio: np.ndarray) -> float:  # relative spread of the remaining field
        return float(np.std(ratio) / np.mean(ratio))

    assert spread(before) > 0.08  # the phantom's field is there (20 % or more peak to peak)
    assert spread(after) < 0.4 * spread(before)
    low, high = record["field_range"]
    assert record["kind"] == "n4" and low < 1.0 < high


def test_prepared_stack_records_the_correction_and_ct_is_left_alone():
    case = make_case(2, seed=1, modalities=("flair", "ct"), **SMALL)
    images = dict(case.channels)
    config = PrepareConfig(size=64, negatives=1.0, bias_correction="n4", registration=[])
    prepared = prepare_images(images, config, case_id=case.case_id)
    steps = prepared.record.steps["normalisation"]
    assert steps["flair"]["bias_correction"]["kind"] == "n4"
    assert "bias_correction" not in steps["ct"]
    plain = prepare_images(images, PrepareConfig(size=64, negatives=1.0, registration=[]), case_id=case.case_id)
    assert np.array_equal(prepared.images[:, 1], plain.images[:, 1])  # CT unchanged
    assert not np.allclose(prepared.images[:, 0], plain.images[:, 0])


def test_an_unknown_bias_correction_is_refused_with_the_names():
    with pytest.raises(ParameterError, match="bias_correction must be one of none, n4"):
        PrepareConfig(bias_correction="n3")
