"""lesionseg.preprocess.mask_resampling: every lesion keeps its volume on another grid, and none vanishes.

Truths are hand-computed (cubes and single voxels on aligned grids) or computed independently with SciPy
(components) and SimpleITK (one component's linear resampling at a time).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.io import Geometry
from lesionseg.preprocess.mask_resampling import resample_mask_image_keeping_volumes, resample_mask_keeping_volumes

FULL = np.ones((3, 3, 3), bool)


def image(array: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None) -> sitk.Image:
    result = sitk.GetImageFromArray(array.astype(np.uint8))
    result.SetSpacing(spacing)
    result.SetOrigin(origin)
    if direction is not None:
        result.SetDirection(direction)
    return result


def test_a_cube_onto_a_grid_twice_as_coarse_keeps_its_volume_exactly():
    source = np.zeros((12, 12, 12), np.uint8)
    source[3:7, 3:7, 3:7] = 1  # 64 mm³; voxel centres 3..6 mm, extent 2.5-6.5 mm
    mask = image(source)
    # target voxels of 2 mm centred at 1.5, 3.5, 5.5, ... mm: the cube's extent is voxels 1 and 2 on each axis
    target = Geometry((6, 6, 6), (2.0, 2.0, 2.0), (1.5, 1.5, 1.5), tuple(np.eye(3).ravel()))
    result = resample_mask_keeping_volumes(mask, target)
    assert result.sum() * 8 == 64
    expected = np.zeros((6, 6, 6), np.uint8)
    expected[1:3, 1:3, 1:3] = 1
    np.testing.assert_array_equal(result, expected)


def test_a_single_voxel_upsampled_becomes_the_eight_voxels_around_its_centre():
    source = np.zeros((5, 5, 5), np.uint8)
    source[2, 2, 2] = 1  # one 2 mm voxel centred at (4, 4, 4) mm: 8 mm³
    mask = image(source, spacing=(2.0, 2.0, 2.0))
    target = Geometry((10, 10, 10), (1.0, 1.0, 1.0), (-0.5, -0.5, -0.5), tuple(np.eye(3).ravel()))
    # the 0.5 threshold loses it: 1 mm points sit 0.25 voxel from the centre, (0.75)³ = 0.42 < 0.5
    reference = target.reference_image(sitk.sitkFloat32)
    linear = sitk.GetArrayFromImage(sitk.Resample(sitk.Cast(mask, sitk.sitkFloat32), reference, sitk.Transform(),
                                                  sitk.sitkLinear, 0.0, sitk.sitkFloat32))
    assert not (linear >= 0.5).any()
    result = resample_mask_keeping_volumes(mask, target)
    expected = np.zeros((10, 10, 10), np.uint8)
    expected[4:6, 4:6, 4:6] = 1  # centres at 3.5 and 4.5 mm, around 4 mm
    np.testing.assert_array_equal(result, expected)


def _random_lesions(rng: np.random.Generator, shape=(18, 40, 44), count=14) -> np.ndarray:
    """Blobs of 1 to ~60 voxels, some closer than 3 voxels to each other."""
    mask = np.zeros(shape, np.uint8)
    zz, yy, xx = np.indices(shape)
    for _ in range(count):
        centre = rng.uniform([2, 4, 4], np.array(shape) - [3, 5, 5])
        radius = rng.uniform(0.4, 2.6, 3)
        inside = (((zz - centre[0]) / radius[0]) ** 2 + ((yy - centre[1]) / radius[1]) ** 2
                  + ((xx - centre[2]) / radius[2]) ** 2) <= 1
        mask[inside] = 1
        mask[tuple(np.round(centre).astype(int))] = 1
    return mask


def _physical_points(image_or_geometry, indices_zyx: np.ndarray) -> np.ndarray:
    """Physical LPS points (n, 3) of voxel indices given as (n, 3) z, y, x."""
    geometry = image_or_geometry if isinstance(image_or_geometry, Geometry) else Geometry.of(image_or_geometry)
    direction = np.array(geometry.direction).reshape(3, 3)
    return np.array(geometry.origin) + (indices_zyx[:, ::-1] * np.array(geometry.spacing)) @ direction.T


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_lesion_keeps_its_volume_on_a_tilted_thick_slice_grid(seed):
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    source = _random_lesions(rng)
    mask = image(source, spacing=(0.9, 0.9, 2.0), origin=(-20.0, -18.0, -18.0))
    tilt = sitk.Euler3DTransform((0, 0, 0), np.radians(16.0), np.radians(5.0), np.radians(3.0))
    target = Geometry((34, 36, 9), (1.3, 1.3, 5.0), (-22.0, -24.0, -26.0), tuple(tilt.GetMatrix()))
    result = resample_mask_keeping_volumes(mask, target)
    source_voxel, target_voxel = 0.9 * 0.9 * 2.0, 1.3 * 1.3 * 5.0
    labels, count = ndimage.label(source, structure=FULL)
    assert count >= 8
    # the target grid holds the whole mask (checked independently): every lesion is inside it
    corners = _physical_points(mask, np.argwhere(source).astype(float))
    reference = target.reference_image()
    inside = [reference.TransformPhysicalPointToContinuousIndex(tuple(p)) for p in corners]
    assert np.all(np.array(inside) > 0.5) and np.all(np.array(inside) < np.array(target.size) - 1.5)
    # the whole mask: within half a target voxel of the source volume, plus what lesions under one target
    # voxel gain by keeping one voxel
    wishes = np.bincount(labels.ravel())[1:] * source_voxel / target_voxel
    growth = np.sum(1.0 - wishes[wishes < 1]) * target_voxel
    assert abs(result.sum() * target_voxel - source.sum() * source_voxel) <= 0.5 * target_voxel + growth + 1e-6
    # a target voxel can hold part of a lesion only when its centre lies within half a target voxel's
    # diagonal plus half a source voxel's diagonal of one of the lesion's voxel centres
    reach = 0.5 * np.sqrt(1.3 ** 2 + 1.3 ** 2 + 5.0 ** 2) + 0.5 * np.sqrt(0.9 ** 2 + 0.9 ** 2 + 2.0 ** 2)
    target_points = _physical_points(target, np.argwhere(np.ones(result.shape, bool)).astype(float))
    near = []
    for label in range(1, count + 1):
        tree = cKDTree(_physical_points(mask, np.argwhere(labels == label).astype(float)))
        distance, _ = tree.query(target_points)
        near.append((distance <= reach).reshape(result.shape))
    shared = np.sum(near, axis=0) > 1
    for label, region in enumerate(near, start=1):
        assert result[region].any(), f"lesion {label} vanished"  # no lesion is lost, whatever its size
        if (region & shared).any():
            continue  # another lesion is within reach: their voxels cannot be told apart here
        wanted = (labels == label).sum() * source_voxel / target_voxel
        kept = int(result[region].sum())
        assert abs(kept - wanted) < 1 or kept == 1, (label, kept, wanted)
    assert not result[~np.any(near, axis=0)].any()  # nothing appears away from a lesion


def test_a_translation_moves_the_result_as_it_moves_the_mask():
    source = _random_lesions(np.random.default_rng(5), shape=(12, 30, 30), count=6)
    mask = image(source, spacing=(1.0, 1.0, 3.0))
    target = Geometry((20, 20, 8), (1.5, 1.5, 3.0), (3.0, 3.0, 0.0), tuple(np.eye(3).ravel()))
    shifted = image(source, spacing=(1.0, 1.0, 3.0), origin=(2.0, -1.0, 3.0))
    through_transform = resample_mask_keeping_volumes(mask, target, sitk.TranslationTransform(3, (-2.0, 1.0, -3.0)))
    np.testing.assert_array_equal(through_transform, resample_mask_keeping_volumes(shifted, target))
    assert through_transform.sum() > 0
    # a B-spline part (here with no displacement) has no exact inverse: the numerical one gives the same result
    bspline = sitk.BSplineTransformInitializer(mask, [2, 2, 2], order=3)
    composite = sitk.CompositeTransform([sitk.TranslationTransform(3, (-2.0, 1.0, -3.0)), bspline])
    np.testing.assert_array_equal(resample_mask_keeping_volumes(mask, target, composite), through_transform)


def test_a_lesion_cut_by_the_target_grid_keeps_only_what_lies_inside():
    source = np.zeros((10, 10, 20), np.uint8)
    source[3:7, 3:7, 6:14] = 1  # x from 6 to 13 mm
    mask = image(source)
    target = Geometry((10, 10, 10), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))  # x 0-9 mm
    result = resample_mask_keeping_volumes(mask, target)
    np.testing.assert_array_equal(result, source[:, :, :10])  # same lattice: the inside part, exactly


def test_empty_mask_and_image_output():
    empty = image(np.zeros((4, 5, 6), np.uint8))
    assert not resample_mask_keeping_volumes(empty, empty).any()
    source = np.zeros((4, 5, 6), np.uint8)
    source[1:3, 2:4, 2:5] = 1
    mask = image(source, spacing=(0.5, 0.7, 2.0), origin=(1.0, 2.0, 3.0))
    same = resample_mask_image_keeping_volumes(mask, mask)
    assert same.GetSpacing() == mask.GetSpacing() and same.GetOrigin() == mask.GetOrigin()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(same), source)  # the same grid: unchanged


@pytest.mark.slow
@pytest.mark.parametrize("index", [1, 2, 3, 4])
def test_preparation_keeps_every_lesion_of_tilted_thick_slices(index):
    """Embolic showers on 5 mm slices stored obliquely (up to 16 degrees): the prepared training slices hold the
    truth's lesion volume within 3 %, and every lesion of 5 voxels or more (one threshold at 0.5 kept 75-92 % of
    the volume on such cases)."""
    from scipy.spatial import cKDTree

    from lesionseg.preprocess import PrepareConfig
    from lesionseg.preprocess.invert import stack_on_grid
    from lesionseg.preprocess.pipeline import prepare_images
    from lesionseg.synth import make_case

    case = make_case(index, seed=7, modalities=("flair",), size_xyz=(112, 128, 28), spacing_mm=(1.75, 1.75, 5.0),
                     lesion_pattern="embolic", oblique_deg=16.0)
    assert case.parameters["variety"]["oblique_angle_deg"] > 3.0  # the axial frame is resampled
    config = PrepareConfig(size=96, negatives=0.0, brain_margin_mm=10.0)
    prepared = prepare_images({"flair": case.channels["flair"]}, config, case_id=case.case_id,
                              lesion=case.lesion_mask, training=True)
    grid = prepared.record.grid.geometry
    truth = sitk.GetArrayFromImage(case.lesion_mask) > 0
    truth_ml = truth.sum() * np.prod(case.lesion_mask.GetSpacing()) / 1000.0
    kept = sitk.GetArrayFromImage(stack_on_grid(prepared.masks.astype(np.float32), prepared.record)) > 0.5
    prepared_ml = kept.sum() * np.prod(grid.spacing) / 1000.0
    assert prepared_ml == pytest.approx(truth_ml, rel=0.03)
    labels, count = ndimage.label(truth, structure=FULL)
    assert count >= 3  # several lesions
    reach = 0.5 * np.linalg.norm(grid.spacing) + 0.5 * np.linalg.norm(case.lesion_mask.GetSpacing())
    tree = cKDTree(_physical_points(grid, np.argwhere(kept).astype(float)))
    for label in range(1, count + 1):
        voxels = np.argwhere(labels == label)
        if len(voxels) < 5:
            continue
        distance, _ = tree.query(_physical_points(case.lesion_mask, voxels.astype(float)))
        assert distance.min() <= reach, f"lesion {label} ({len(voxels)} voxels) is lost"
