"""The synthetic CT cohort's options (issue 19): lesion HU offsets, noise, beam hardening, thick skulls, the
skull base and the CT recipes.

Each property is measured on generated images against a source of truth apart from the generator's own
bookkeeping: a twin case that differs in one option only (same seed, so the same anatomy and noise draws),
SimpleITK distance maps of the truth masks, or voxel counts along a line. Small grids keep the file fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.errors import ParameterError
from lesionseg.synth import make_case, varied_case_options

SMALL = {"size_xyz": (100, 116, 44), "spacing_mm": (2.0, 2.0, 4.0)}
CT = ("ct",)


def arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def test_lesion_offset_lies_in_the_drawn_range():
    """The lesion's HU offset (a twin with a 0 HU lesion gives the same voxels without it, noise included) is
    inside the range at every lesion-core voxel, for barely visible and clear lesions alike."""
    base = dict(SMALL, modalities=CT, lesion_pattern="territorial", ct_noise_hu=(4.0, 4.0))
    plain = arr(make_case(3, 5, ct_lesion_hu=(0.0, 0.0), **base).channels["ct"]).astype(float)
    for low, high in ((2.0, 4.0), (10.0, 15.0)):
        case = make_case(3, 5, ct_lesion_hu=(low, high), **base)
        # whole-lesion voxels in pure tissue (a lesion voxel shared with CSF is partly CSF: a smaller offset)
        tissue = np.isin(arr(case.tissue_labels), (4, 5, 7))
        core = ndimage.binary_erosion((arr(case.lesion_mask) > 0) & tissue, iterations=1)
        assert np.count_nonzero(core) > 200
        offset = (arr(case.channels["ct"]).astype(float) - plain)[core]
        # both images are rounded to whole HU (each difference within 1 HU of the true offset); no voxel is
        # darker than the range, and a voxel partly outside the lesion (partial volume) is less dark
        assert offset.min() >= -high - 1.0
        assert np.mean((offset >= -high - 1.0) & (offset <= -low + 1.0)) > 0.9
        assert -high <= np.median(offset) <= -low
        drawn = case.parameters["modalities"]["ct"]["lesion_contrast"]
        assert -high <= drawn <= -low


def test_noise_sigma_measured_in_white_matter():
    """The standard deviation of pure white matter (eroded away from edges and lesions) is the drawn sigma."""
    for sigma in (3.0, 6.0):
        case = make_case(2, 1, modalities=CT, ct_noise_hu=(sigma, sigma), **SMALL)
        labels, lesion = arr(case.tissue_labels), arr(case.lesion_mask) > 0
        white = ndimage.binary_erosion(labels == 5, iterations=2) & ~ndimage.binary_dilation(lesion, iterations=3)
        values = arr(case.channels["ct"])[white].astype(float)
        assert values.size > 3000
        # the SD of a sample of n voxels has a standard error of about sigma / sqrt(2n); rounding adds 1/12 HU^2
        assert abs(values.std() - np.hypot(sigma, np.sqrt(1 / 12))) < 4 * sigma / np.sqrt(2 * values.size) + 0.05
    default = make_case(2, 1, modalities=CT, **SMALL).parameters["modalities"]["ct"]["noise_sigma"]
    assert 2.5 <= default <= 5.0  # the default model is untouched


def test_beam_hardening_brightens_brain_near_the_skull():
    """With beam hardening minus without (noise-free twins): 0 outside the cranium, a few HU within a few mm
    of the inner table (depth from a distance map of the truth), less than 1 HU beyond 30 mm."""
    base = dict(SMALL, modalities=CT, noise=False)
    with_bh = make_case(4, 2, beam_hardening=True, **base)
    difference = arr(with_bh.channels["ct"]).astype(float) - arr(make_case(4, 2, **base).channels["ct"])
    brain = arr(with_bh.brain_mask) > 0
    depth = arr(sitk.SignedMaurerDistanceMap(with_bh.brain_mask, insideIsPositive=True, squaredDistance=False,
                                             useImageSpacing=True))
    model = with_bh.parameters["variety"]["beam_hardening"]
    outside = ~ndimage.binary_dilation(brain, iterations=2)
    assert np.all(difference[outside] == 0)
    near = brain & (depth > 1.0) & (depth <= 5.0)
    deep = brain & (depth > 35.0)
    assert near.any() and deep.any()
    # at most 5 mm deep the brightening is at least amplitude x exp(-5 mm / length); 1 HU for rounding
    assert difference[near].mean() > model["amplitude_hu"] * np.exp(-5.0 / model["length_mm"]) - 1.0
    assert difference[near].mean() > difference[deep].mean() + 2.0
    assert difference[deep].mean() < 1.0 + model["cupping_hu"] * (1 - 35.0 / 60.0) ** 2
    assert difference[brain].min() >= -1 and difference.max() <= model["amplitude_hu"] + model["cupping_hu"] + 1


def test_thick_skull_measured_at_the_vertex():
    """The bone above the head centre (a column of voxels, z axis = the skull's normal there) is as thick as
    drawn; the default skull is 5-8 mm."""
    spacing = (2.0, 2.0, 1.0)
    options = dict(modalities=CT, noise=False, size_xyz=(96, 112, 180), spacing_mm=spacing)
    for thickness, expect in (((12.0, 12.0), (10.0, 14.0)), (None, (4.0, 9.0))):
        case = make_case(1, 3, skull_thickness_mm=thickness, **options)
        labels = arr(case.tissue_labels)
        column = labels[:, labels.shape[1] // 2, labels.shape[2] // 2]
        top = np.flatnonzero(column >= 3).max()  # the highest intracranial voxel
        bone = np.count_nonzero(column[top:] == 2) * spacing[2]
        assert expect[0] <= bone <= expect[1], (thickness, bone)


def test_skull_base_opens_the_foramen_magnum_and_raises_ridges():
    """With the skull base, intracranial voxels touch neck soft tissue (no bone between) and bone rises into
    the cranium (bone voxels with intracranial voxels above and below them); without, neither."""
    base = dict(SMALL, modalities=CT, noise=False)
    for skull_base in (False, True):
        labels = arr(make_case(5, 4, skull_base=skull_base, **base).tissue_labels)
        inside = labels >= 3
        touching = ndimage.binary_dilation(inside) & (labels == 1)
        bone = labels == 2
        above = np.maximum.accumulate(inside[::-1], axis=0)[::-1]  # an intracranial voxel at or above (z up)
        below = np.maximum.accumulate(inside, axis=0)
        inner_bone = bone & above & below
        assert (np.count_nonzero(touching) > 20) == skull_base
        assert (np.count_nonzero(inner_bone) > 50) == skull_base


def test_ct_recipes():
    """ct_heldout: 2-8 HU lesions, sigma 3-6 HU, 5 mm slices, every third case oblique; ct_starter: more varied;
    the MRI recipes' options are unchanged (no CT option in them)."""
    heldout = [varied_case_options(11, i, "ct_heldout") for i in range(1, 10)]
    assert all(o["ct_lesion_hu"] == (2.0, 8.0) and o["ct_noise_hu"] == (3.0, 6.0) for o in heldout)
    assert all(o["spacing_mm"][2] == 5.0 and o["skull_base"] for o in heldout)
    assert sum(o["oblique_deg"] is not None for o in heldout) == 3
    starter = [varied_case_options(11, i, "ct_starter") for i in range(1, 41)]
    thickness = {round(o["spacing_mm"][2]) for o in starter}
    assert 1 in thickness and max(thickness) >= 4
    assert any(o["skull_thickness_mm"] for o in starter) and not all(o["skull_thickness_mm"] for o in starter)
    assert varied_case_options(11, 1, "ct_heldout") == heldout[0]  # replayable
    for recipe in ("starter", "heldout"):
        assert "ct_lesion_hu" not in varied_case_options(11, 1, recipe)


@pytest.mark.parametrize("option, value", [("ct_lesion_hu", (5.0, 2.0)), ("ct_noise_hu", (-1.0, 3.0)),
                                           ("skull_thickness_mm", (1.0, 5.0)), ("skull_base", "yes"),
                                           ("beam_hardening", 1)])
def test_bad_ct_options(option, value):
    with pytest.raises(ParameterError, match=option):
        make_case(1, 0, modalities=CT, **{option: value})
