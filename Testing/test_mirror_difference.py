"""The mirrored-hemisphere difference channel (lesionseg.preprocess.mirror_difference) and its plumbing.

Sources of truth: hand-made volumes whose symmetry plane and lesion are known (the mirror position computed
here by the reflection formula, not by SimpleITK), and the synthetic phantom's lesion masks.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lesionseg.errors import DatasetError, ParameterError
from lesionseg.io import Geometry
from lesionseg.preprocess import PrepareConfig
from lesionseg.preprocess.grid import PreparedGrid
from lesionseg.preprocess.midplane import Midplane
from lesionseg.preprocess.mirror_difference import add_mirror_differences, mirror_difference, reflection_transform

SIZE, SLICES = 72, 3
ANGLE_DEG = 6.0  # a plane turned by more than the grid's 1-degree tolerance would hide


def _grid() -> PreparedGrid:
    """A 72 x 72 x 3 grid of 1 x 1 x 4 mm pixels, axes along LPS, voxel (0, 0, 0) at (-35.5, -35.5, 0)."""
    geometry = Geometry((SIZE, SIZE, SLICES), (1.0, 1.0, 4.0), (-35.5, -35.5, 0.0),
                        (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return PreparedGrid(geometry, SIZE, 1.0, 0.0, (1.0, 1.0))


def _plane() -> Midplane:
    theta = math.radians(ANGLE_DEG)
    return Midplane((1.5, -2.0, 0.0), (math.cos(theta), math.sin(theta), 0.0))


def _points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LPS x, y, z (mm) of every voxel, arrays (Z, Y, X)."""
    z, y, x = np.meshgrid(np.arange(SLICES) * 4.0, np.arange(SIZE) - 35.5, np.arange(SIZE) - 35.5, indexing="ij")
    return x, y, z


def _plane_coordinates() -> tuple[np.ndarray, np.ndarray]:
    """Signed distance to the plane and position along it (mm) of every voxel."""
    plane = _plane()
    x, y, _ = _points()
    normal = np.array(plane.normal)
    across = (x - plane.point[0]) * normal[0] + (y - plane.point[1]) * normal[1]
    along = -(x - plane.point[0]) * normal[1] + (y - plane.point[1]) * normal[0]
    return across, along


def _interior(margin: float = 6.0) -> np.ndarray:
    """Voxels whose mirror image lies well inside the grid (away from the zero padding of the resampler)."""
    plane = _plane()
    x, y, _ = _points()
    normal = np.array(plane.normal)
    distance = (x - plane.point[0]) * normal[0] + (y - plane.point[1]) * normal[1]
    mx, my = x - 2 * distance * normal[0], y - 2 * distance * normal[1]
    limit = 35.5 - margin
    return (np.abs(x) < limit) & (np.abs(y) < limit) & (np.abs(mx) < limit) & (np.abs(my) < limit)


def test_reflection_transform_mirrors_points_about_the_plane():
    plane = _plane()
    transform = reflection_transform(plane)
    normal, point = np.array(plane.normal), np.array(plane.point)
    tangent = np.array([-normal[1], normal[0], 0.0])
    for a, b, c in [(3.0, 7.0, 2.0), (-11.0, 0.5, -4.0), (0.0, -9.0, 8.0)]:
        source = point + a * normal + b * tangent + np.array([0, 0, c])
        expected = point - a * normal + b * tangent + np.array([0, 0, c])
        np.testing.assert_allclose(transform.TransformPoint(source.tolist()), expected, atol=1e-9)


def test_symmetric_volume_gives_a_difference_near_zero():
    across, along = _plane_coordinates()
    volume = np.cos(across / 9.0) * np.exp(-(along / 25.0) ** 2) + 0.02 * across ** 2 / 30.0
    brain = np.ones_like(volume, dtype=np.uint8)
    difference = mirror_difference(volume.astype(np.float32), brain, _grid(), _plane())
    inside = _interior()
    # linear interpolation of a function with |f''| <= ~0.02 / mm² at 1 mm pixels errs by <= h² |f''| / 8 ~ 0.003
    assert np.abs(difference[inside]).max() < 0.01
    assert np.abs(volume[inside]).max() > 0.5  # the volume itself is far from zero there


def test_one_sided_lesion_stands_out_and_its_mirror_is_negative():
    across, along = _plane_coordinates()
    background = 0.5 * np.cos(across / 12.0)
    centre_across, centre_along, radius = 14.0, 5.0, 5.0
    lesion = (across - centre_across) ** 2 + (along - centre_along) ** 2 <= radius ** 2
    mirror_spot = (across + centre_across) ** 2 + (along - centre_along) ** 2 <= radius ** 2
    volume = (background + 2.0 * lesion).astype(np.float32)
    brain = np.ones_like(volume, dtype=np.uint8)
    difference = mirror_difference(volume, brain, _grid(), _plane())
    core = (across - centre_across) ** 2 + (along - centre_along) ** 2 <= (radius - 1.5) ** 2
    mirror_core = (across + centre_across) ** 2 + (along - centre_along) ** 2 <= (radius - 1.5) ** 2
    elsewhere = _interior() & (np.abs(np.abs(across) - centre_across) ** 2 + (along - centre_along) ** 2
                               > (radius + 1.5) ** 2)
    np.testing.assert_allclose(difference[core], 2.0, atol=0.02)
    np.testing.assert_allclose(difference[mirror_core], -2.0, atol=0.02)
    assert np.abs(difference[elsewhere]).max() < 0.01
    assert lesion.sum() > 50 and mirror_spot.sum() > 50


def test_difference_is_zero_where_the_mirror_image_is_not_brain():
    across, _ = _plane_coordinates()
    volume = (1.0 + across / 10.0).astype(np.float32)  # antisymmetric part: a difference everywhere
    brain = ((across > -10.0) & (across < 20.0)).astype(np.uint8)  # its mirror covers -20 .. 10 only
    difference = mirror_difference(volume, brain, _grid(), _plane())
    unpaired = (across > 11.0) & _interior()
    paired = (np.abs(across) < 9.0) & (np.abs(across) > 1.0) & _interior()
    assert np.all(difference[unpaired] == 0.0)
    np.testing.assert_allclose(difference[paired], 2.0 * across[paired] / 10.0, atol=0.01)


def test_add_mirror_differences_appends_one_channel_per_channel():
    across, _ = _plane_coordinates()
    stack = np.stack([across / 10.0, np.ones_like(across)], axis=1).astype(np.float32)  # (Z, 2, S, S)
    brain = np.ones((SLICES, SIZE, SIZE), np.uint8)
    out, step = add_mirror_differences(stack, brain, _grid(), _plane())
    assert out.shape == (SLICES, 4, SIZE, SIZE)
    np.testing.assert_array_equal(out[:, :2], stack)
    inside = _interior()
    np.testing.assert_allclose(out[:, 2][inside], 2.0 * across[inside] / 10.0, atol=0.01)
    np.testing.assert_allclose(out[:, 3][inside], 0.0, atol=1e-5)
    assert step["method"] == "sitk_reflection_linear" and 0.5 < step["paired_brain_fraction"] <= 1.0


def test_config_names_the_array_channels_and_old_configs_lack_them():
    assert PrepareConfig(mirror_difference=True).input_planes(["dwi", "adc"]) == ["dwi", "adc", "dwi-mirror",
                                                                                     "adc-mirror"]
    old = PrepareConfig.from_dict({"size": 64})  # a prepare.json of an older version
    assert old.mirror_difference is False and old.input_planes(["flair"]) == ["flair"]
    with pytest.raises(ParameterError, match="mirror_difference"):
        PrepareConfig(mirror_difference="yes")


def test_prepared_case_carries_the_mirror_channel(tmp_path):
    """A synthetic FLAIR case: the difference is strongly positive in the (hyperintense) lesion, negative at
    its mirror image (the slice flip of the lesion mask: the grid is centred on the plane), and the record
    and the prepared folder name the channel."""
    from conftest import SMALL_PHANTOM

    from lesionseg.preprocess import PreparedDataset, prepare_dataset
    from lesionseg.synth import write_cohort

    write_cohort(tmp_path / "data", 1, modalities=("flair",), seed=3, lesion_age=(0.7, 1.0), **SMALL_PHANTOM)
    prepare_dataset(tmp_path / "data", tmp_path / "prepared", PrepareConfig(size=64, negatives=0.0,
                                                                           mirror_difference=True))
    prepared = PreparedDataset(tmp_path / "prepared")
    case_id = prepared.case_ids[0]
    arrays = prepared.arrays(case_id)
    assert arrays.images.shape[1] == 2 and prepared.array_channels == ["flair", "flair-mirror"]
    assert prepared.record(case_id).channels == ["flair", "flair-mirror"]
    assert "mirror_difference" in prepared.record(case_id).steps
    lesion = arrays.masks > 0
    mirrored = lesion[..., ::-1] & ~lesion & (arrays.brains > 0)
    flair, difference = arrays.images[:, 0], arrays.images[:, 1]
    contrast = flair[lesion].mean() - flair[mirrored].mean()  # the lesion against its mirror image (slice flip)
    assert contrast > 0.8  # z-score units: a visible (subacute) FLAIR lesion
    # the reflection about the plane and the flip about the grid's centre (snapped to the lattice: up to half
    # a ~3.5 mm pixel apart on these 64-pixel slices, at the lesion's partial-volume edge) agree within 30 %
    assert difference[lesion].mean() == pytest.approx(contrast, rel=0.3)
    assert difference[mirrored].mean() == pytest.approx(-contrast, rel=0.3)
    assert abs(np.median(arrays.images[:, 1][(arrays.brains > 0) & ~lesion & ~mirrored])) < 0.2
    info = json.loads((tmp_path / "prepared" / "prepare.json").read_text())
    assert info["config"]["mirror_difference"] is True and info["channels"] == ["flair"]
    prepared.require_mirror_difference(True, "model.lsb")
    with pytest.raises(DatasetError, match="without --mirror-difference") as caught:
        prepared.require_mirror_difference(False, "model.lsb")
    assert str(caught.value).count(". ") == 0  # one sentence


def test_bundle_needing_the_channel_is_refused_by_a_folder_without_it(tiny_prepared):
    from lesionseg.preprocess import PreparedDataset

    prepared = PreparedDataset(tiny_prepared)  # prepared without the mirrored difference
    assert prepared.array_channels == ["flair"]
    prepared.require_mirror_difference(False, "model.lsb")
    with pytest.raises(DatasetError, match="prepare the dataset again with --mirror-difference"):
        prepared.require_mirror_difference(True, "model.lsb")
