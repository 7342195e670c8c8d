"""Brain extraction on the ~2 mm working grid against the native grid: the coarse mask refined at its edge
matches the full-resolution pipeline's mask, and the mid-plane found with it, and from block-averaged volumes,
matches the native one (tolerances of issue 17: Dice >= 0.99, 1 degree, 1 mm). The exact median test of the
CT edge against SimpleITK's median filter, and the coarse grid's factors."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.preprocess.brain import run_brain_extraction
from lesionseg.preprocess.brain_edges import median_in_window
from lesionseg.preprocess.coarse import shrink, shrink_factors
from lesionseg.preprocess.midplane import estimate_midplane
from lesionseg.preprocess.orientation import axial_frame
from lesionseg.synth import make_case

# 1 x 1 x 1.5 mm over a 144 x 168 x 144 mm field of view: fine enough for a 2 x 2 x 1 block grid (the
# coarse path), small enough to run the native pipeline in a test.
FINE = {"size_xyz": (144, 168, 96), "spacing_mm": (1.0, 1.0, 1.5)}


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    return float(2.0 * np.count_nonzero(x & y) / (np.count_nonzero(x) + np.count_nonzero(y)))


def _plane_gap(a, b, brain: sitk.Image) -> tuple[float, float]:
    """(degrees between the normals, largest distance between the planes over the brain in mm)."""
    angle = float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(a.normal, b.normal)))))))
    indices = np.argwhere(sitk.GetArrayViewFromImage(brain) > 0)[::53, ::-1].astype(float)
    direction = np.array(brain.GetDirection()).reshape(3, 3)
    points = np.array(brain.GetOrigin()) + (indices * np.array(brain.GetSpacing())) @ direction.T
    return angle, float(np.abs(a.signed_distance(points) - b.signed_distance(points)).max())


@pytest.fixture(scope="module")
def head():
    return make_case(4, seed=3, modalities=("flair", "ct"), head_pose=((4.0, -3.0, 0.0), 6.0), **FINE)


@pytest.mark.parametrize("channel, modality", [("flair", "mri"), ("ct", "ct")])
def test_working_grid_matches_the_native_pipeline(head, channel, modality):
    image = head.channels[channel]
    assert shrink_factors(image.GetSpacing()) == (2, 2, 1)  # the coarse path runs
    native = run_brain_extraction(image, modality, method="classical", working_spacing_mm=None).mask
    coarse = run_brain_extraction(image, modality, method="classical").mask
    assert coarse.GetSize() == image.GetSize() and coarse.GetOrigin() == image.GetOrigin()
    assert coarse.GetPixelID() == sitk.sitkUInt8
    assert _dice(coarse, native) >= 0.99
    assert _dice(coarse, head.brain_mask) >= _dice(native, head.brain_mask) - 0.005  # as close to the truth
    frame = axial_frame(image).geometry
    reference = estimate_midplane(image, native, frame)
    for plane in (estimate_midplane(image, coarse, frame), estimate_midplane(image, coarse, frame, 2.0)):
        angle, gap = _plane_gap(plane, reference, native)
        assert angle <= 1.0 and gap <= 1.0, (angle, gap)


def test_median_window_by_counting_equals_simpleitk_median():
    rng = np.random.default_rng(0)
    values = rng.normal(50.0, 60.0, size=(9, 12, 14)).astype(np.float32)
    values[:, :, :4] = 1000.0  # a bone-like block, for edges
    radius = [2, 1, 1]  # x, y, z
    image = sitk.GetImageFromArray(values)
    median = sitk.GetArrayFromImage(sitk.Median(image, radius))
    expected = (median >= 0.0) & (median <= 100.0)
    assert np.array_equal(median_in_window(values, radius, 0.0, 100.0), expected)


def test_shrink_factors_and_block_average():
    assert shrink_factors((0.45, 0.45, 0.5)) == (4, 4, 4)
    assert shrink_factors((1.0, 1.0, 3.0)) == (2, 2, 1)
    assert shrink_factors((2.0, 2.0, 2.0)) is None  # already at the working spacing
    assert shrink_factors((1.0, 1.0, 5.0), None) is None
    assert shrink_factors((0.5, 0.5, 0.5), size=(100, 100, 1)) == (4, 4, 1)  # one slice stays one slice
    image = sitk.GetImageFromArray(np.arange(4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8))
    image.SetSpacing((0.5, 0.5, 1.0))
    image.SetOrigin((10.0, 20.0, 30.0))
    small = shrink(image, (2, 2, 1))
    assert small.GetSize() == (4, 3, 4) and small.GetSpacing() == (1.0, 1.0, 1.0)
    assert np.allclose(small.GetOrigin(), (10.25, 20.25, 30.0))  # the first block's centre
    array = sitk.GetArrayViewFromImage(image)
    assert np.isclose(sitk.GetArrayViewFromImage(small)[1, 2, 3], array[1, 4:6, 6:8].mean())
