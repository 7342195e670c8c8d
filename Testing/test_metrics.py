"""Tests of lesionseg.metrics against independent references: hand-computed values, a brute-force
point-set computation (scipy.spatial.distance.cdist), MONAI's metric functions, and scikit-image's
connected-component labelling."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance
from scipy import ndimage
from scipy.spatial.distance import cdist
from skimage.measure import label as skimage_label

from lesionseg.errors import GeometryError, ParameterError
from lesionseg.metrics import (
    absolute_volume_difference_ml,
    detection_rate,
    dice,
    evaluate_case,
    evaluate_case_images,
    evaluate_slices,
    lesion_count_difference,
    lesion_volume_ml,
    lesionwise_counts,
    spacing_from_image,
    summarize,
    surface_distances,
)

# --------------------------------------------------------------------------------------------------
# Independent references


def brute_force_surface(mask: np.ndarray) -> np.ndarray:
    """Foreground voxels with at least one face neighbour outside the mask (or outside the array)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    all_neighbours_inside = np.ones(mask.shape, dtype=bool)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            shifted = np.roll(padded, step, axis=axis)[inner]
            all_neighbours_inside &= shifted
    return mask & ~all_neighbours_inside


def brute_force_distances(pred: np.ndarray, truth: np.ndarray, spacing) -> tuple[float, float, float]:
    """HD, HD95 (max of directed 95th percentiles) and ASSD from all pairwise surface distances."""
    p = np.argwhere(brute_force_surface(pred)) * np.asarray(spacing)
    t = np.argwhere(brute_force_surface(truth)) * np.asarray(spacing)
    pairwise = cdist(p, t)
    forward, backward = pairwise.min(axis=1), pairwise.min(axis=0)
    hd = max(forward.max(), backward.max())
    hd95 = max(np.percentile(forward, 95), np.percentile(backward, 95))
    assd = np.concatenate([forward, backward]).mean()
    return hd, hd95, assd


def monai_distances(pred: np.ndarray, truth: np.ndarray, spacing) -> tuple[float, float, float]:
    """MONAI's HD, HD95 and symmetric ASD for one binary pair (batch and channel of size 1)."""
    p = torch.from_numpy(pred[None, None].astype(np.float32))
    t = torch.from_numpy(truth[None, None].astype(np.float32))
    spacing = [float(s) for s in spacing]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = {"include_background": True, "spacing": spacing}
        hd = compute_hausdorff_distance(p, t, **options).item()
        hd95 = compute_hausdorff_distance(p, t, percentile=95, **options).item()
        assd = compute_average_surface_distance(p, t, symmetric=True, **options)
    return hd, hd95, assd.item()


def random_blobs(rng: np.random.Generator, shape, fraction: float) -> np.ndarray:
    """Smooth random blobs (some touching the array border) plus a few isolated voxels."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    mask = noise > np.quantile(noise, 1 - fraction)
    return mask | (rng.random(shape) < 0.005)


def isles22_reference(pred: np.ndarray, truth: np.ndarray, skimage_connectivity: int) -> tuple[int, int, int]:
    """The ISLES'22 rules written as a plain loop over components, labelled by scikit-image."""
    truth_labels = skimage_label(truth, connectivity=skimage_connectivity)
    pred_labels = skimage_label(pred, connectivity=skimage_connectivity)
    tp = fn = fp = 0
    for lesion in range(1, truth_labels.max() + 1):
        if (pred & (truth_labels == lesion)).any():
            tp += 1
        else:
            fn += 1
    for lesion in range(1, pred_labels.max() + 1):
        if not (truth & (pred_labels == lesion)).any():
            fp += 1
    return tp, fn, fp


def cube(shape, corner, size) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c, c + size) for c in corner)] = True
    return mask


# --------------------------------------------------------------------------------------------------
# Dice and volumes


def test_dice_hand_values():
    truth = np.zeros((1, 4, 10), dtype=np.uint8)
    truth[0, 0, :] = 1  # 10 voxels
    pred = np.zeros_like(truth)
    pred[0, 0, 6:] = 1  # 4 overlapping
    pred[0, 2, :2] = 1  # 2 outside
    assert dice(pred, truth) == pytest.approx(2 * 4 / (10 + 6))
    empty = np.zeros_like(truth)
    assert dice(empty, empty) == 1.0
    assert dice(empty, truth) == 0.0
    assert dice(truth, empty) == 0.0


def test_volume_difference_in_ml_uses_spacing():
    truth = np.zeros((4, 4, 4), dtype=bool)
    truth[0, 0, :] = True
    truth[1, 0, :] = True
    truth[2, 0, :2] = True  # 10 voxels
    pred = np.zeros_like(truth)
    pred[3, 3, :] = True  # 4 voxels
    spacing = (2.0, 0.5, 0.5)  # 0.5 mm^3 per voxel
    assert lesion_volume_ml(truth, spacing) == pytest.approx(10 * 0.5 / 1000)
    assert absolute_volume_difference_ml(pred, truth, spacing) == pytest.approx(6 * 0.5 / 1000)


# --------------------------------------------------------------------------------------------------
# Surface distances


@pytest.mark.parametrize("seed", range(6))
def test_surface_distances_match_brute_force_and_monai(seed):
    rng = np.random.default_rng(seed)
    if seed % 2:
        shape, spacing = (10, 18, 16), tuple(rng.uniform(0.4, 3.0, 3))
    else:
        shape, spacing = (28, 24), tuple(rng.uniform(0.3, 2.0, 2))
    truth = random_blobs(rng, shape, 0.15)
    pred = random_blobs(rng, shape, 0.2)
    result = surface_distances(pred, truth, spacing)
    # The brute force is float64 like ours; MONAI computes in float32.
    references = (
        (brute_force_distances(pred, truth, spacing), 1e-9),
        (monai_distances(pred, truth, spacing), 1e-4),
    )
    for reference, tolerance in references:
        assert result.hd_mm == pytest.approx(reference[0], rel=tolerance)
        assert result.hd95_mm == pytest.approx(reference[1], rel=tolerance)
        assert result.assd_mm == pytest.approx(reference[2], rel=tolerance)
    assert not result.empty_prediction and not result.empty_truth


def test_hd95_is_max_of_directed_percentiles_not_pooled():
    # A 10-voxel cube predicted exactly, plus a small far-away false-positive block: the pooled 95th
    # percentile (medpy's convention) is 0, MONAI's (ours) is not.
    truth = cube((12, 14, 40), (1, 2, 2), 10)
    pred = truth | cube((12, 14, 40), (5, 5, 35), 3)  # 26 of the 514 predicted surface voxels
    spacing = (1.0, 1.0, 1.0)
    result = surface_distances(pred, truth, spacing)
    hd, hd95, assd = monai_distances(pred, truth, spacing)
    # MONAI interpolates the percentile position in float32: agreement to 1e-4 relative.
    assert result.hd95_mm == pytest.approx(hd95, rel=1e-4)
    assert result.hd_mm == pytest.approx(hd, rel=1e-5)
    p = np.argwhere(brute_force_surface(pred))
    t = np.argwhere(brute_force_surface(truth))
    pairwise = cdist(p, t)
    pooled = np.percentile(np.concatenate([pairwise.min(axis=1), pairwise.min(axis=0)]), 95)
    assert pooled == 0.0
    assert result.hd95_mm > 5.0


@pytest.mark.parametrize(
    "axis, spacing, step_mm",
    [(2, (3.0, 0.8, 0.6), 0.6), (0, (3.0, 0.8, 0.6), 3.0), (1, (1.0, 2.2, 0.5), 2.2)],
)
def test_two_cubes_hand_computed(axis, spacing, step_mm):
    # Two 3x3x3 cubes, the second shifted by 4 voxels along one axis. Truth surface layers lie 4, 3 and 2
    # steps from the facing layer of the other cube (9, 8 and 9 surface voxels; the centre voxel is not
    # surface): HD = 4 steps, HD95 = 4 steps, ASSD = (9*4 + 8*3 + 9*2) / 26 = 3 steps.
    shape = (12, 12, 12)
    corner = [2, 2, 2]
    truth = cube(shape, corner, 3)
    corner[axis] += 4
    pred = cube(shape, corner, 3)
    result = surface_distances(pred, truth, spacing)
    assert result.hd_mm == pytest.approx(4 * step_mm)
    assert result.hd95_mm == pytest.approx(4 * step_mm)
    assert result.assd_mm == pytest.approx(3 * step_mm)
    assert dice(pred, truth) == 0.0


def test_plane_offset_with_anisotropic_spacing():
    # Two full planes (touching the array border) two slices apart along z: every distance is 2 * 2.5 mm.
    truth = np.zeros((10, 8, 8), dtype=bool)
    pred = np.zeros_like(truth)
    truth[3] = True
    pred[5] = True
    result = surface_distances(pred, truth, (2.5, 0.7, 0.9))
    assert (result.hd_mm, result.hd95_mm, result.assd_mm) == pytest.approx((5.0, 5.0, 5.0))
    assert monai_distances(pred, truth, (2.5, 0.7, 0.9)) == pytest.approx((5.0, 5.0, 5.0))


def test_empty_masks_get_documented_values():
    shape, spacing = (10, 8, 8), (2.5, 0.7, 0.9)
    diagonal = math.sqrt(25.0**2 + 5.6**2 + 7.2**2)
    empty = np.zeros(shape, dtype=bool)
    lesion = cube(shape, (2, 2, 2), 3)

    both = surface_distances(empty, empty, spacing)
    assert (both.hd_mm, both.hd95_mm, both.assd_mm) == (0.0, 0.0, 0.0)
    assert both.empty_prediction and both.empty_truth

    missed = surface_distances(empty, lesion, spacing)
    assert (missed.hd_mm, missed.hd95_mm, missed.assd_mm) == pytest.approx((diagonal,) * 3)
    assert missed.empty_prediction and not missed.empty_truth
    assert missed.worst_case_mm == pytest.approx(diagonal)

    false_alarm = surface_distances(lesion, empty, spacing)
    assert false_alarm.hd95_mm == pytest.approx(diagonal)
    assert false_alarm.empty_truth and not false_alarm.empty_prediction


# --------------------------------------------------------------------------------------------------
# Lesion-wise counts


def test_corner_touching_lesions_differ_between_isles22_and_atlas2():
    shape = (8, 8, 8)
    first = cube(shape, (1, 1, 1), 2)
    second = cube(shape, (3, 3, 3), 2)  # touches the first only at a corner
    truth = first | second
    pred = first.copy()
    isles = lesionwise_counts(pred, truth)  # default: 26-connectivity, one truth lesion, detected
    assert (isles.tp, isles.fn, isles.fp, isles.f1) == (1, 0, 0, 1.0)
    assert lesionwise_counts(pred, truth, "isles22") == isles
    for connectivity in (6, 18, "atlas2"):  # two truth lesions, one missed
        counts = lesionwise_counts(pred, truth, connectivity)
        assert (counts.tp, counts.fn, counts.fp) == (1, 1, 0)
        assert counts.f1 == pytest.approx(2 / 3)


def test_edge_touching_lesions_with_6_18_26_connectivity():
    shape = (8, 8, 8)
    truth = cube(shape, (1, 1, 1), 2) | cube(shape, (1, 3, 3), 2)  # share an edge, not a face
    assert lesion_count_difference(np.zeros(shape, bool), truth, 6) == 2
    assert lesion_count_difference(np.zeros(shape, bool), truth, 18) == 1
    assert lesion_count_difference(np.zeros(shape, bool), truth, 26) == 1


def test_merged_prediction_counts_each_truth_lesion():
    shape = (6, 6, 20)
    truth = cube(shape, (1, 1, 1), 3) | cube(shape, (1, 1, 10), 3)
    pred = np.zeros(shape, dtype=bool)
    pred[2, 2, 2:12] = True  # one blob touching both truth lesions
    counts = lesionwise_counts(pred, truth)
    assert (counts.tp, counts.fn, counts.fp, counts.f1) == (2, 0, 0, 1.0)
    assert (counts.n_truth, counts.n_prediction, counts.count_difference) == (2, 1, 1)


def test_split_prediction_is_one_true_positive_without_false_positive():
    shape = (6, 6, 20)
    truth = np.zeros(shape, dtype=bool)
    truth[1:4, 1:4, 2:14] = True
    pred = cube(shape, (1, 1, 2), 3) | cube(shape, (1, 1, 10), 3)
    counts = lesionwise_counts(pred, truth)
    assert (counts.tp, counts.fn, counts.fp, counts.f1) == (1, 0, 0, 1.0)
    assert lesion_count_difference(pred, truth) == 1


def test_missed_lesion_and_false_positive():
    shape = (8, 8, 24)
    truth = cube(shape, (1, 1, 1), 3) | cube(shape, (1, 1, 10), 3)
    pred = cube(shape, (1, 1, 1), 2) | cube(shape, (4, 4, 19), 2)
    counts = lesionwise_counts(pred, truth)
    assert (counts.tp, counts.fn, counts.fp) == (1, 1, 1)
    assert counts.f1 == pytest.approx(1 / (1 + (1 + 1) / 2))


def test_lesionwise_empty_cases():
    empty = np.zeros((5, 5, 5), dtype=bool)
    lesion = cube((5, 5, 5), (1, 1, 1), 2)
    assert lesionwise_counts(empty, empty).f1 == 1.0
    assert lesionwise_counts(lesion, empty).f1 == 0.0
    assert lesionwise_counts(lesion, empty).fp == 1
    assert lesionwise_counts(empty, lesion).f1 == 0.0
    assert lesionwise_counts(empty, lesion).fn == 1


def test_2d_connectivity_4_and_8():
    truth = np.zeros((6, 6), dtype=bool)
    truth[1, 1] = truth[2, 2] = True  # diagonal neighbours
    pred = np.zeros_like(truth)
    pred[1, 1] = True
    assert lesionwise_counts(pred, truth, 8).f1 == 1.0
    assert lesionwise_counts(pred, truth, 4).f1 == pytest.approx(2 / 3)
    assert lesionwise_counts(pred, truth, "atlas2").connectivity == 4


@pytest.mark.parametrize("seed", range(4))
def test_lesionwise_matches_plain_isles22_loop(seed):
    rng = np.random.default_rng(100 + seed)
    truth = rng.random((8, 12, 12)) < 0.08
    pred = rng.random((8, 12, 12)) < 0.08
    for ours, theirs in ((6, 1), (18, 2), (26, 3)):
        counts = lesionwise_counts(pred, truth, ours)
        assert (counts.tp, counts.fn, counts.fp) == isles22_reference(pred, truth, theirs)


# --------------------------------------------------------------------------------------------------
# Detection, per-slice and per-case evaluation


def test_detection_rate_hand_case():
    truth = np.zeros((6, 5, 5), dtype=bool)
    pred = np.zeros_like(truth)
    truth[[1, 2, 4], 2, 2] = True
    pred[[1, 4], 0, 0] = True  # predicted on two lesion slices (anywhere on the slice)
    pred[5, 3, 3] = True  # and on a slice without lesion
    result = detection_rate(pred, truth)
    assert (result.lesion_slices, result.detected_slices, result.false_positive_slices) == (3, 2, 1)
    assert result.rate == pytest.approx(2 / 3)
    none = detection_rate(pred, np.zeros_like(truth))
    assert none.rate is None and none.lesion_slices == 0


def test_evaluate_slices_uses_in_plane_spacing():
    rng = np.random.default_rng(7)
    truth = np.stack([random_blobs(rng, (24, 20), 0.1) for _ in range(4)])
    pred = np.stack([random_blobs(rng, (24, 20), 0.1) for _ in range(4)])
    truth[2] = False  # not a lesion slice: no record
    pred[3] = False  # missed lesion slice: worst case
    spacing = (4.0, 0.9, 0.7)
    records = evaluate_slices(pred, truth, spacing)
    assert [r.slice_index for r in records] == [0, 1, 3]
    for record in records[:2]:
        index = record.slice_index
        hd, hd95, assd = monai_distances(pred[index], truth[index], spacing[1:])
        assert (record.hd_mm, record.hd95_mm, record.assd_mm) == pytest.approx((hd, hd95, assd), rel=1e-4)
        assert record.dice == pytest.approx(dice(pred[index], truth[index]))
    diagonal = math.hypot(24 * 0.9, 20 * 0.7)
    assert records[2].empty_prediction and records[2].hd_mm == pytest.approx(diagonal)
    assert records[2].dice == 0.0

    per_slice = np.array([[0.9, 0.7], [0.5, 0.5], [1.0, 1.0], [2.0, 3.0]])
    records = evaluate_slices(pred, truth, per_slice)
    assert records[1].hd_mm == pytest.approx(monai_distances(pred[1], truth[1], (0.5, 0.5))[0], rel=1e-4)
    assert records[2].worst_case_mm == pytest.approx(math.hypot(24 * 2.0, 20 * 3.0))


def test_evaluate_case_on_hand_made_case():
    shape, spacing = (12, 12, 12), (3.0, 0.8, 0.6)
    truth = cube(shape, (2, 2, 2), 3)
    pred = cube(shape, (2, 2, 4), 3)  # shifted 2 voxels along x: overlap 3 x 3 x 1
    result = evaluate_case(pred, truth, spacing)
    assert result.dice == pytest.approx(2 * 9 / 54)
    assert result.hd_mm == pytest.approx(2 * 0.6)
    assert result.volume_truth_ml == pytest.approx(27 * 3.0 * 0.8 * 0.6 / 1000)
    assert result.abs_volume_difference_ml == pytest.approx(0.0)
    assert (result.lesionwise.tp, result.lesionwise.f1, result.abs_lesion_count_difference) == (1, 1.0, 0)
    assert result.detection.rate == 1.0
    flat = result.to_dict()
    assert flat["lesion_f1"] == 1.0 and flat["detection_rate"] == 1.0 and flat["connectivity"] == 26

    missed = evaluate_case(np.zeros(shape, bool), truth, spacing)
    assert missed.empty_prediction and missed.dice == 0.0 and missed.lesionwise.fn == 1
    assert missed.detection.rate == 0.0
    assert math.isfinite(missed.hd95_mm)


def test_evaluate_case_images_reads_spacing_in_xyz_order():
    shape = (12, 12, 12)  # numpy (z, y, x)
    truth = cube(shape, (2, 2, 2), 3)
    pred = cube(shape, (6, 2, 2), 3)  # shifted 4 slices along z
    truth_image = sitk.GetImageFromArray(truth.astype(np.uint8))
    pred_image = sitk.GetImageFromArray(pred.astype(np.uint8))
    for image in (truth_image, pred_image):
        image.SetSpacing((0.6, 0.8, 3.0))  # SimpleITK order (x, y, z)
    assert spacing_from_image(truth_image) == (3.0, 0.8, 0.6)
    result = evaluate_case_images(pred_image, truth_image)
    assert result.hd_mm == pytest.approx(4 * 3.0)
    assert result.assd_mm == pytest.approx(3 * 3.0)
    pred_image.SetOrigin((0.0, 0.0, 5.0))
    with pytest.raises(GeometryError, match="origin"):
        evaluate_case_images(pred_image, truth_image)


def test_summarize_counts_worst_cases():
    shape, spacing = (8, 8, 8), (1.0, 1.0, 1.0)
    truth = cube(shape, (2, 2, 2), 3)
    cases = [evaluate_case(truth, truth, spacing), evaluate_case(np.zeros(shape, bool), truth, spacing)]
    summary = summarize(cases)
    assert summary["n"] == 2 and summary["n_empty_prediction"] == 1
    assert summary["dice_mean"] == pytest.approx(0.5)
    assert summary["hd_mm_mean"] == pytest.approx(math.sqrt(3 * 64) / 2)


# --------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "spacing, message",
    [(None, "spacing is required"), ((1.0, 1.0), "one value per array axis"), ((1.0, -1.0, 1.0), "positive")],
)
def test_bad_spacing(spacing, message):
    mask = np.zeros((4, 4, 4), dtype=bool)
    with pytest.raises(ParameterError, match=message):
        surface_distances(mask, mask, spacing)


def test_bad_masks_and_options():
    mask = np.zeros((4, 4, 4), dtype=bool)
    with pytest.raises(ParameterError, match="binary"):
        dice(np.full((4, 4, 4), 0.4), mask)
    with pytest.raises(GeometryError, match="same shape"):
        dice(np.zeros((4, 4, 5), bool), mask)
    with pytest.raises(ParameterError, match="connectivity"):
        lesionwise_counts(mask[0], mask[0], 26)
    with pytest.raises(ParameterError, match="unknown"):
        lesionwise_counts(mask, mask, "isles24")
    with pytest.raises(ParameterError, match="3D"):
        evaluate_case(mask[0], mask[0], (1.0, 1.0))
