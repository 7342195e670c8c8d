"""Anti-aliasing before the prepared grid (lesionseg.preprocess.antialias): a prepared pixel averages the native
voxels it covers, as a block average would, instead of passing on the noise of the two or four nearest."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import SMALL_PHANTOM
from lesionseg.io import Geometry
from lesionseg.preprocess.antialias import antialias_sigmas_mm, smooth_for_grid, target_spacing_mm
from lesionseg.preprocess.grid import PreparedGrid, sample_onto_grid

NOISE_HU = 10.0
FACTOR = 4  # grid pixel / native pixel


def _ct_slab(seed: int = 3) -> sitk.Image:
    """256 x 256 x 4 voxels of 0.45 x 0.45 x 5 mm: 40 HU tissue with white Gaussian noise of 10 HU."""
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray((40.0 + NOISE_HU * rng.standard_normal((4, 256, 256))).astype(np.float32))
    image.SetSpacing((0.45, 0.45, 5.0))
    return image


def _grid(native: sitk.Image, factor: int = FACTOR, turn_deg: float = 0.0) -> PreparedGrid:
    """A prepared grid over the middle of ``native``: pixels ``factor`` times coarser, the slab's slices, its
    in-plane axes turned by ``turn_deg`` about the slice normal."""
    pixel = native.GetSpacing()[0] * factor
    size = 40
    angle = np.radians(turn_deg)
    direction = (np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle), 0.0, 0.0, 0.0, 1.0)
    centre = np.array(native.TransformContinuousIndexToPhysicalPoint([127.5, 127.5, 0.0]))
    axes = np.array(direction).reshape(3, 3)
    origin = centre - axes @ np.array([(size - 1) / 2 * pixel, (size - 1) / 2 * pixel, 0.0])
    geometry = Geometry((size, size, 4), (pixel, pixel, 5.0), tuple(origin), tuple(float(d) for d in direction))
    return PreparedGrid(geometry, size, pixel, turn_deg, (0.45, 0.45))


def test_a_prepared_pixel_carries_the_noise_of_a_block_average_not_of_its_nearest_voxels():
    native = _ct_slab()
    grid = _grid(native)
    plain = sample_onto_grid(native, grid, is_mask=False)
    smoothed = sample_onto_grid(smooth_for_grid(native, grid.geometry), grid, is_mask=False)
    # the reference: each grid pixel covers FACTOR x FACTOR native voxels; their mean has the noise 10 / FACTOR HU
    block_average_noise = NOISE_HU / FACTOR
    # linear interpolation reads 2 x 2 voxels with unequal weights: about half the voxel noise (4.9-5.0 HU over
    # five seeds), twice the block average's
    assert plain.std() > 1.6 * block_average_noise
    assert smoothed.std() < 1.0 * block_average_noise  # the Gaussian averages at least as much as the block
    assert smoothed.std() > 0.5 * block_average_noise  # ... and not far more (sigma = (4 - 1) / 2 voxels)
    # the tissue's level is kept: the means agree within four standard errors of the plain sample's mean
    assert abs(smoothed.mean() - plain.mean()) < 4 * plain.std() / np.sqrt(plain.size) + 1e-3


def test_the_sigma_follows_the_grid_along_each_native_axis_and_is_zero_where_the_scan_is_coarser():
    native = _ct_slab()
    grid = _grid(native)
    assert target_spacing_mm(native, grid.geometry) == pytest.approx([1.8, 1.8, 5.0])
    assert antialias_sigmas_mm(native, grid.geometry) == pytest.approx([(1.8 - 0.45) / 2, (1.8 - 0.45) / 2, 0.0])
    # a grid turned by 30 degrees in-plane: each native in-plane axis is still read at the grid's pixels
    turned = _grid(native, turn_deg=30.0)
    assert target_spacing_mm(native, turned.geometry) == pytest.approx([1.8, 1.8, 5.0])
    # a scan tilted by 20 degrees about x (stored obliquely): its y axis is read at the grid's pixels, not as
    # partly the grid's 5 mm slices
    tilted = sitk.Image(native)
    angle = np.radians(20.0)
    tilted.SetDirection((1.0, 0.0, 0.0, 0.0, np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle)))
    assert target_spacing_mm(tilted, grid.geometry) == pytest.approx([1.8, 1.8, 5.0])
    # a grid finer than the scan: nothing to smooth, the image itself comes back
    fine = _grid(native, factor=1)
    assert antialias_sigmas_mm(native, fine.geometry) == [0.0, 0.0, 0.0]
    assert smooth_for_grid(native, fine.geometry) is native


def test_only_the_part_the_grid_reads_is_smoothed_and_a_smooth_image_is_unchanged():
    """A linear ramp is its own Gaussian average: away from the slab's edges the smoothed and plain samples agree
    (to float32 rounding of values up to ~115); the smoothed region is a box inside the slab."""
    ramp = np.tile(np.arange(256, dtype=np.float32) * 0.45, (4, 256, 1))
    native = sitk.GetImageFromArray(ramp)
    native.SetSpacing((0.45, 0.45, 5.0))
    grid = _grid(native, factor=2)  # 40 pixels of 0.9 mm: the middle 36 mm of a 115 mm slab
    region = smooth_for_grid(native, grid.geometry)
    assert region.GetSize()[0] < 256 and region.GetSize()[1] < 256
    plain = sample_onto_grid(native, grid, is_mask=False)
    smoothed = sample_onto_grid(region, grid, is_mask=False)
    assert np.abs(smoothed - plain).max() < 1e-3


def test_prepare_records_the_smoothing_and_old_bundles_read_without_it(tmp_path):
    from dataclasses import replace

    from lesionseg.data import discover
    from lesionseg.preprocess import PrepareConfig, prepare_images
    from lesionseg.synth import write_cohort
    from lesionseg.train.presets import get_preset

    write_cohort(tmp_path, 1, modalities=("flair",), seed=5, **SMALL_PHANTOM)
    case = discover(tmp_path)[0]
    image = sitk.ReadImage(str(case.channels["flair"]), sitk.sitkFloat32)
    config = PrepareConfig(size=64, registration=[], brain_margin_mm=10.0)
    plain = prepare_images({"flair": image}, config, case_id="c")
    smoothed = prepare_images({"flair": image}, replace(config, antialias=True), case_id="c")
    sigmas = smoothed.record.steps["antialias_sigma_mm"]["flair"]
    assert sigmas[0] > 0 and sigmas[1] > 0 and sigmas[2] == 0  # 1.75 mm voxels onto ~2.6 mm pixels, same slices
    assert "antialias_sigma_mm" not in plain.record.steps
    inside = plain.brains > 0
    assert not np.array_equal(plain.images, smoothed.images)
    assert np.corrcoef(plain.images[:, 0][inside], smoothed.images[:, 0][inside])[0, 1] > 0.95
    # a bundle's preprocessing written before the option existed means no smoothing; the fast presets turn it on
    assert PrepareConfig.from_dict({"size": 128}).antialias is False
    assert get_preset("cpu").prepare_values()["antialias"] is True
    assert "antialias" not in get_preset("paper").prepare_values()
