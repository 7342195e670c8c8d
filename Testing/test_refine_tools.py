"""Tests of the refinement tools (lesionseg.refine.tools) and of the bridge to Slicer's algorithms.

Truths are independent of the code under test: SciPy's distance transform and labelling, hand-built
shapes, the synthetic phantom's own lesion masks and rigid transforms.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.errors import GeometryError, ParameterError
from lesionseg.metrics import dice
from lesionseg.refine import (
    DAMAGE_KINDS, carry_mask, clean_up, degrade_mask, fill_between_slices, grow_from_seeds, refine_intensity,
)
from lesionseg.refine import slicer_algorithms
from lesionseg.refine.morphology import components, margin_mm
from lesionseg.refine.seeds import points_to_mask
from lesionseg.synth import make_case

from conftest import SMALL_PHANTOM

slicer_only = pytest.mark.skipif(not slicer_algorithms.slicer_core_available(), reason="slicer-core not installed")


def _image(array: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _ellipsoid(shape, centre, radii) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0


def _bright_ball_case(seed: int = 0):
    """A 40 x 48 x 48 volume: noisy tissue at 100, a bright ball (r = 8 voxels) at 200, all of it brain."""
    rng = np.random.default_rng(seed)
    truth = _ellipsoid((40, 48, 48), (20, 24, 24), (8, 8, 8))
    pixels = np.where(truth, 200.0, 100.0) + rng.normal(0, 8, truth.shape)
    image = _image(pixels.astype(np.float32))
    brain = _image(np.ones(truth.shape, np.uint8))
    return image, truth, brain


# --- the bridge to slicer-core --------------------------------------------------------------------------

@slicer_only
def test_vtk_round_trip_keeps_axis_order_and_values():
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    image = slicer_algorithms.to_vtk(array, (5.0, 2.0, 1.0))
    assert image.GetDimensions() == (4, 3, 2)  # VTK counts (x, y, z)
    assert image.GetSpacing() == (1.0, 2.0, 5.0)
    assert image.GetScalarComponentAsDouble(3, 1, 0, 0) == array[0, 1, 3]
    np.testing.assert_array_equal(slicer_algorithms.from_vtk(image), array)


@slicer_only
@pytest.mark.parametrize("distance", [2.5, -2.5])
def test_slicer_margin_matches_the_euclidean_distance(distance):
    rng = np.random.default_rng(1)
    mask = ndimage.binary_dilation(rng.random((20, 30, 30)) > 0.995, iterations=3)
    spacing = np.array([3.0, 1.0, 1.0])
    result = margin_mm(mask, spacing, distance, "slicer")
    if distance > 0:
        expected = ndimage.distance_transform_edt(~mask, sampling=spacing) <= distance
    else:
        expected = ndimage.distance_transform_edt(mask, sampling=spacing) > -distance
    assert np.count_nonzero(result ^ expected) <= 0.01 * np.count_nonzero(expected)
    np.testing.assert_array_equal(margin_mm(mask, spacing, distance, "sitk"), expected)


@pytest.mark.parametrize("backend", ["slicer", "sitk"])
def test_components_are_ordered_by_size(backend):
    if backend == "slicer" and not slicer_algorithms.slicer_core_available():
        pytest.skip("slicer-core not installed")
    mask = np.zeros((10, 30, 30), bool)
    mask[2:5, 2:6, 2:6] = True  # 48 voxels
    mask[6:9, 10:20, 10:20] = True  # 300 voxels
    mask[1, 25, 25] = True  # 1 voxel
    labels = components(mask, backend, min_voxels=2)
    assert labels[7, 15, 15] == 1 and labels[3, 3, 3] == 2 and labels[1, 25, 25] == 0
    assert np.count_nonzero(labels == 1) == 300


@slicer_only
def test_slicer_grow_cut_separates_two_regions():
    intensity = np.full((12, 20, 20), 10.0, np.float32)
    intensity[:, :, 10:] = 100.0
    seeds = np.zeros(intensity.shape, np.uint8)
    seeds[6, 10, 3] = 1
    seeds[6, 10, 16] = 2
    labels = slicer_algorithms.grow_cut(intensity, seeds)
    inner = labels[1:-1, 1:-1, 1:-1]  # GrowCut does not propagate into the outer faces
    assert np.all(inner[:, :, :9] == 1) and np.all(inner[:, :, 9:] == 2)


# --- degradation --------------------------------------------------------------------------------------

def test_degrade_erodes_and_dilates_in_plane_only():
    truth = _ellipsoid((9, 40, 40), (4, 20, 20), (3, 12, 12))
    mask = _image(truth.astype(np.uint8), (1.0, 1.0, 3.0))
    disk = np.array([[0, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0], [0, 0, 1, 0, 0]], bool)
    eroded = sitk.GetArrayFromImage(degrade_mask(mask, "erode")) != 0
    dilated = sitk.GetArrayFromImage(degrade_mask(mask, "dilate")) != 0
    for z in range(truth.shape[0]):  # slice by slice, with SciPy and a hand-written disk of radius 2
        np.testing.assert_array_equal(eroded[z], ndimage.binary_erosion(truth[z], disk))
        np.testing.assert_array_equal(dilated[z], ndimage.binary_dilation(truth[z], disk))


def test_degrade_holes_and_islands_change_the_asked_fraction():
    truth = _ellipsoid((9, 40, 40), (4, 20, 20), (3, 8, 8))
    mask = _image(truth.astype(np.uint8), (1.0, 1.0, 3.0))
    brain = _image(np.ones(truth.shape, np.uint8), (1.0, 1.0, 3.0))
    holes = sitk.GetArrayFromImage(degrade_mask(mask, "holes", seed=3, fraction=0.3)) != 0
    islands = sitk.GetArrayFromImage(degrade_mask(mask, "islands", seed=3, brain=brain, fraction=0.3)) != 0
    assert not np.any(holes & ~truth) and np.count_nonzero(truth & ~holes) >= 0.3 * truth.sum()
    assert not np.any(truth & ~islands) and np.count_nonzero(islands & ~truth) >= 0.3 * truth.sum()
    far = ndimage.distance_transform_edt(~truth, sampling=(3.0, 1.0, 1.0)) >= 10.0 - 2.0  # centres >= 10 mm, r = 2 mm
    assert np.all(far[islands & ~truth])


# --- the must-show: intensity and grow repair damaged masks ----------------------------------------------

@pytest.fixture(scope="module")
def damaged_cohort():
    """Six full-resolution phantom cases (1 x 1 x 3 mm), their extracted brains and damaged masks."""
    from lesionseg.preprocess.brain import extract_brain

    cohort = []
    for index in range(1, 7):
        case = make_case(index, seed=0)
        image = case.channels["flair"]
        brain = extract_brain(image, "mri", method="classical")
        damaged = {kind: degrade_mask(case.lesion_mask, kind, seed=index, brain=brain, fraction=0.5)
                   for kind in DAMAGE_KINDS}
        cohort.append((image, sitk.GetArrayFromImage(case.lesion_mask) != 0, brain, damaged))
    return cohort


@pytest.mark.slow
@pytest.mark.parametrize("tool", [refine_intensity, grow_from_seeds], ids=["intensity", "grow"])
def test_tools_bring_damaged_masks_closer_to_the_truth(damaged_cohort, tool):
    figures = {}
    for kind in DAMAGE_KINDS:
        changes = []
        for image, truth, brain, damaged in damaged_cohort:
            before = dice(sitk.GetArrayFromImage(damaged[kind]), truth)
            refined = tool(image, damaged[kind], brain=brain)
            assert refined.GetSize() == image.GetSize() and refined.GetOrigin() == image.GetOrigin()
            changes.append(dice(sitk.GetArrayFromImage(refined), truth) - before)
        figures[kind] = (float(np.mean(changes)), float(np.min(changes)))
    print(f"{tool.__name__}: " + ", ".join(f"{k} mean {m:+.3f} worst {w:+.3f}" for k, (m, w) in figures.items()))
    for kind, (mean, worst) in figures.items():
        assert mean >= 0.05, f"{kind}: mean Dice change {mean:+.3f}"
        assert worst >= -0.02, f"{kind}: a case lost {worst:+.3f} Dice"


@pytest.mark.parametrize("backend", ["slicer", "sitk"])
def test_grow_backends_find_a_bright_ball(backend):
    if backend == "slicer" and not slicer_algorithms.slicer_core_available():
        pytest.skip("slicer-core not installed")
    image, truth, brain = _bright_ball_case()
    rough = _image(_ellipsoid(truth.shape, (20, 24, 24), (5, 11, 11)).astype(np.uint8))
    details = {}
    grown = sitk.GetArrayFromImage(grow_from_seeds(image, rough, brain=brain, backend=backend, details=details)) != 0
    assert details["backend"] == backend
    assert dice(grown, truth) > 0.9


def test_grow_from_user_strokes_only():
    image, truth, brain = _bright_ball_case(1)
    stroke = points_to_mask([(-24.0, -24.0, 20.0)], image, 2.0, "the lesion seed")  # RAS of voxel (24, 24, 20)
    assert sitk.GetArrayFromImage(stroke)[20, 24, 24] == 1
    grown = sitk.GetArrayFromImage(grow_from_seeds(image, None, lesion_seeds=stroke, brain=brain)) != 0
    assert dice(grown, truth) > 0.85


def test_intensity_leaves_an_invisible_lesion_alone():
    rng = np.random.default_rng(2)
    pixels = rng.normal(100, 8, (30, 40, 40)).astype(np.float32)  # no lesion on the image at all
    image = _image(pixels)
    mask = _image(_ellipsoid(pixels.shape, (15, 20, 20), (5, 6, 6)).astype(np.uint8))
    details = {}
    result = refine_intensity(image, mask, brain=_image(np.ones(pixels.shape, np.uint8)), details=details)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result), sitk.GetArrayFromImage(mask))
    assert details["changed"] is False and "not distinct" in details["reason"]


# --- under-segmented masks: a model's rim, a too-small outline --------------------------------------------

RIM_SPACING = (1.0, 1.0, 3.0)  # SimpleITK (x, y, z); numpy (z, y, x) = (3, 1, 1)


def _under_segmented_case(*, edge: float = 2.6, centre: float = 3.2, cyst: bool = True, plate_mm: int = 0,
                          seed: int = 0):
    """A FLAIR-like brain on 1 x 1 x 3 mm voxels (30 x 96 x 96) with one 15 mL lesion.

    Healthy tissue at 1.0 (a 10 % bias field across x, noise sd 0.08); an ellipsoidal lesion (radii 12, 16 and
    19 mm) at ``edge`` at its boundary rising to ``centre`` deep inside, with partial volume at its edge (the
    lesion fraction smoothed by 0.6 voxel in-plane); optionally a dark cyst (0.4, not lesion) in its centre
    and a plate of the lesion's edge brightness ``plate_mm`` thick, 5 mm from it (tissue that looks like it).

    Returns:
        ``(image, brain image, brain, truth, cyst)``: arrays bool ``(z, y, x)``; truth excludes the cyst.
    """
    rng = np.random.default_rng(seed)
    shape, middle, radii = (30, 96, 96), (15, 48, 48), (4.0, 16.0, 19.0)
    z, y, x = np.ogrid[:30, :96, :96]
    brain = _ellipsoid(shape, middle, (14, 45, 45))
    depth = 1.0 - np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip((z, y, x), middle, radii)))
    hole = _ellipsoid(shape, middle, (1, 4, 4)) if cyst else np.zeros(shape, bool)
    truth = (depth >= 0) & ~hole
    fraction = ndimage.gaussian_filter(truth.astype(float), (0.2, 0.6, 0.6))
    healthy = np.ones(shape)
    if plate_mm:
        near = 48 + int(radii[2]) + 5
        healthy = np.where((x >= near) & (x < near + plate_mm) & brain, edge, 1.0)
    lesion = edge + (centre - edge) * np.clip(depth, 0.0, 1.0)
    pixels = (healthy * (1.0 - fraction) + lesion * fraction) * (1.0 + 0.1 * (x - 48) / 48)
    pixels = np.where(hole, 0.4, pixels) + rng.normal(0.0, 0.08, shape)
    pixels = np.where(brain, pixels, 0.05)
    image = _image(pixels.astype(np.float32), RIM_SPACING)
    return image, _image(brain.astype(np.uint8), RIM_SPACING), brain, truth, hole


def _slice_rim(mask: np.ndarray, width: int) -> np.ndarray:
    """The outline ``width`` voxels wide of ``mask`` in each axial slice (as a 2D model or an annotator
    draws)."""
    rim = np.zeros_like(mask)
    for z in range(mask.shape[0]):
        rim[z] = mask[z] & ~ndimage.binary_erosion(mask[z], iterations=width)
    return rim


def _shrunk(mask: np.ndarray, voxels: int) -> np.ndarray:
    """``mask`` eroded in-plane by ``voxels`` in each slice (an outline too small by that many mm here)."""
    return np.stack([ndimage.binary_erosion(plane, iterations=voxels) for plane in mask])


def _lesion_share_of_the_drawn_shell(mask: np.ndarray, brain: np.ndarray, truth: np.ndarray) -> float:
    """The share of lesion in the brain 4 to 14 mm from the mask as drawn (the tools' default band and
    shell), measured with SciPy: the healthy sample before the enclosed voxels and the lesion's
    continuation were set aside."""
    distance = ndimage.distance_transform_edt(~mask, sampling=RIM_SPACING[::-1])
    shell = brain & ~mask & (distance > 4.0) & (distance <= 14.0)
    return float(np.mean(truth[shell]))


def _run(tool, image, mask: np.ndarray, brain, details: dict) -> np.ndarray:
    return sitk.GetArrayFromImage(tool(image, _image(mask.astype(np.uint8), RIM_SPACING), brain=brain,
                                       details=details)) != 0


@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("tool", [refine_intensity, grow_from_seeds], ids=["intensity", "grow"])
def test_tools_fill_a_lesion_that_a_model_outlined_as_a_rim(tool, width):
    image, brain_image, brain, truth, cyst = _under_segmented_case()
    rim = _slice_rim(truth | cyst, width)
    # counted as healthy tissue, the interior the rim encloses made the lesion "not distinct" (> 5 %)
    assert _lesion_share_of_the_drawn_shell(rim, brain, truth) > 0.05
    details = {}
    refined = _run(tool, image, rim, brain_image, details)
    assert details["changed"] is True and details["model"]["lookalike"] <= 0.05
    assert details["model"]["enclosed_voxels"] > 0
    print(f"{tool.__name__}, rim of {width}: Dice {dice(rim, truth):.3f} -> {dice(refined, truth):.3f}")
    assert dice(refined, truth) >= 0.9
    assert np.count_nonzero(refined & cyst) <= 0.1 * np.count_nonzero(cyst)  # a dark enclosed hole stays out


@pytest.mark.parametrize("tool", [refine_intensity, grow_from_seeds], ids=["intensity", "grow"])
def test_tools_decide_the_enclosed_voxels_beyond_the_band(tool):
    """The rim on the upper slices, the whole lesion on the lower ones: the interior of the upper slices lies
    farther than the 4 mm band from the outline and was never decided."""
    image, brain_image, _, truth, cyst = _under_segmented_case()
    mask = _slice_rim(truth | cyst, 2)
    mask[:15] |= truth[:15]
    details = {}
    refined = _run(tool, image, mask, brain_image, details)
    assert dice(refined, truth) >= 0.95 and np.count_nonzero(refined & cyst) <= 0.1 * np.count_nonzero(cyst)


def test_an_outline_too_small_by_more_than_the_band_is_not_refused():
    """The lesion continues 7 mm past the mask's outline, into the healthy shell beyond the 4 mm band."""
    image, brain_image, brain, truth, _ = _under_segmented_case(cyst=False)
    small = _shrunk(truth, 7)
    assert _lesion_share_of_the_drawn_shell(small, brain, truth) > 0.05
    details = {}
    refined = _run(refine_intensity, image, small, brain_image, details)
    assert details["changed"] is True and details["model"]["continuation_voxels"] > 0
    again = _run(refine_intensity, image, refined, brain_image, {})  # a pass moves the outline <= 4 mm
    grown = _run(grow_from_seeds, image, small, brain_image, {})  # GrowCut decides the continuation at once
    print(f"outline 7 mm too small: Dice {dice(small, truth):.3f}, intensity {dice(refined, truth):.3f} then "
          f"{dice(again, truth):.3f}, grow {dice(grown, truth):.3f}")
    assert dice(refined, truth) > dice(small, truth) + 0.3
    assert dice(again, truth) >= 0.9 and dice(grown, truth) >= 0.9


@pytest.mark.parametrize("case", ["faint lesion, rim", "look-alike tissue apart from the lesion"])
@pytest.mark.parametrize("tool", [refine_intensity, grow_from_seeds], ids=["intensity", "grow"])
def test_a_lesion_that_is_not_distinct_is_still_refused(tool, case):
    """Setting the enclosed voxels and the lesion's continuation aside explains nothing else away: a faint
    lesion's surroundings, and tissue as bright as the lesion that is not connected to it, still count."""
    if case.startswith("faint"):  # contrast 0.1 on noise of sd 0.08
        image, brain_image, _, truth, _ = _under_segmented_case(edge=1.1, centre=1.1, cyst=False)
        mask = _slice_rim(truth, 2)
    else:  # a plate 8 mm thick at the lesion's edge brightness, 5 mm from it, the mask exact
        image, brain_image, _, truth, _ = _under_segmented_case(cyst=False, plate_mm=8)
        mask = truth
    details = {}
    result = _run(tool, image, mask, brain_image, details)
    np.testing.assert_array_equal(result, mask)
    assert details["changed"] is False and "not distinct" in details["reason"]


# --- clean-up --------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["slicer", "sitk"])
def test_cleanup_removes_small_islands_and_fills_holes(backend):
    if backend == "slicer" and not slicer_algorithms.slicer_core_available():
        pytest.skip("slicer-core not installed")
    ball = _ellipsoid((20, 40, 40), (10, 15, 15), (6, 8, 8))
    holed = ball.copy()
    holed[9:12, 14:17, 14:17] = False  # an enclosed hole of 27 voxels
    speck = np.zeros_like(ball)
    speck[3, 35, 35] = speck[3, 35, 36] = True  # 2 voxels of 2 mm³ each = 4 mm³
    medium = np.zeros_like(ball)
    medium[15:18, 32:36, 32:36] = True  # 48 voxels = 96 mm³
    mask = _image((holed | speck | medium).astype(np.uint8), (1.0, 1.0, 2.0))
    cleaned = sitk.GetArrayFromImage(clean_up(mask, min_island_mm3=20.0, backend=backend)) != 0
    np.testing.assert_array_equal(cleaned, ball | medium)
    largest = sitk.GetArrayFromImage(clean_up(mask, keep_largest=1, fill_holes=False, backend=backend)) != 0
    np.testing.assert_array_equal(largest, holed)


def test_cleanup_fills_a_hole_that_opens_through_a_thick_slice():
    ball = _ellipsoid((10, 30, 30), (5, 15, 15), (3, 9, 9))
    holed = ball.copy()
    holed[3:8, 14:16, 14:16] = False  # a tunnel open at the lesion's tip (z = 2): not a 3D hole
    mask = _image(holed.astype(np.uint8), (1.0, 1.0, 5.0))
    cleaned = sitk.GetArrayFromImage(clean_up(mask, min_island_mm3=0.0)) != 0
    np.testing.assert_array_equal(cleaned, ball)


# --- fill between slices ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def thin_slice_lesions():
    """The largest lesion of three phantom cases on 1 mm slices, and the same drawn on every third slice
    (starting at its first slice) and on its last slice."""
    lesions = []
    for index in (1, 2, 3):
        case = make_case(index, seed=0, size_xyz=(192, 224, 144), spacing_mm=(1.0, 1.0, 1.0), noise=False,
                         bias=False)
        instances = sitk.GetArrayFromImage(case.lesion_instances)
        labels, counts = np.unique(instances[instances > 0], return_counts=True)
        truth = instances == labels[np.argmax(counts)]
        drawn = np.flatnonzero(truth.any(axis=(1, 2)))
        keep = np.unique(np.r_[np.arange(drawn[0], drawn[-1] + 1, 3), drawn[-1]])
        sparse = np.zeros_like(truth)
        sparse[keep] = truth[keep]
        mask = sitk.GetImageFromArray(sparse.astype(np.uint8))
        mask.CopyInformation(case.lesion_mask)
        lesions.append((truth, keep, mask))
    return lesions


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["slicer", "sitk"])
def test_fill_between_every_third_slice(thin_slice_lesions, backend):
    if backend == "slicer" and not slicer_algorithms.slicer_core_available():
        pytest.skip("slicer-core not installed")
    scores = []
    for truth, keep, mask in thin_slice_lesions:
        filled = sitk.GetArrayFromImage(fill_between_slices(mask, backend=backend)) != 0
        assert np.array_equal(filled[keep], truth[keep])  # drawn slices are kept as drawn
        scores.append(dice(filled, truth))
    print(f"fill between ({backend}): Dice {', '.join(f'{s:.3f}' for s in scores)}")
    assert min(scores) >= 0.9


def test_fill_between_chooses_the_gapped_axis_and_refuses_a_single_slice():
    ball = _ellipsoid((20, 30, 30), (10, 15, 15), (8, 8, 8))
    sparse = np.zeros_like(ball)
    sparse[:, :, ::4] = ball[:, :, ::4]  # drawn on sagittal slices x = 0, 4, 8, ...
    details = {}
    filled = sitk.GetArrayFromImage(fill_between_slices(_image(sparse.astype(np.uint8)), details=details)) != 0
    assert details["axis"] == "x" and dice(filled, ball) > 0.9
    single = np.zeros_like(ball)
    single[10] = ball[10]
    with pytest.raises(ParameterError, match="only one slice"):
        fill_between_slices(_image(single.astype(np.uint8)))


# --- transfer ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_carry_mask_across_a_known_rigid_transform_lands_within_1_mm():
    from lesionseg.preprocess.registration import mean_distance_mm

    for index in (1, 2):
        case = make_case(index, seed=0, modalities=("flair", "ct"), misalignment=(6.0, 6.0), **SMALL_PHANTOM)
        inverse = case.transforms["ct"].GetInverse()  # CT grid point -> reference (FLAIR) point
        ct = case.channels["ct"]
        indicator = sitk.Cast(case.lesion_mask, sitk.sitkFloat32)
        truth = sitk.Cast(sitk.Resample(indicator, ct, inverse, sitk.sitkLinear, 0.0, sitk.sitkFloat32) >= 0.5,
                          sitk.sitkUInt8)
        details = {}
        carried = carry_mask(case.lesion_mask, case.channels["flair"], ct, details=details)  # rigid by default
        error_mm = mean_distance_mm(details["_transform"], inverse, truth)
        spacing = np.array(ct.GetSpacing()[::-1])
        centres = [np.argwhere(sitk.GetArrayFromImage(m) != 0).mean(axis=0) * spacing for m in (carried, truth)]
        centroid_mm = float(np.linalg.norm(centres[0] - centres[1]))
        print(f"case {index}: transform error {error_mm:.2f} mm, centroid {centroid_mm:.2f} mm")
        assert error_mm < 1.0
        assert centroid_mm < 1.0


# --- bad input --------------------------------------------------------------------------------------

def test_tools_refuse_another_geometry_and_an_empty_mask():
    image, truth, brain = _bright_ball_case()
    shifted = _image(truth.astype(np.uint8), origin=(0.0, 0.0, 7.0))
    empty = _image(np.zeros(truth.shape, np.uint8))
    for tool in (refine_intensity, grow_from_seeds):
        with pytest.raises(GeometryError, match="not on the grid"):
            tool(image, shifted, brain=brain)
        with pytest.raises(ParameterError, match="empty"):
            tool(image, empty, brain=brain)
    with pytest.raises(ParameterError, match="empty"):
        clean_up(empty)
    with pytest.raises(ParameterError, match="band_mm"):
        refine_intensity(image, _image(truth.astype(np.uint8)), brain=brain, band_mm=-1.0)


def test_seed_points_outside_the_image_are_refused():
    image, _, _ = _bright_ball_case()
    with pytest.raises(ParameterError, match="outside the image"):
        points_to_mask([(500.0, 0.0, 0.0)], image, 2.0, "the lesion seed")
