"""lesionseg.difficulty: lesion area and volume, Fisher contrast, the difficulty table and its plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.difficulty import (
    INVALID_CONTRAST,
    DifficultyTable,
    case_lesion_volume_ml,
    case_volumes_ml,
    compute_difficulty,
    fisher_contrast,
    lesion_area_mm2,
    measure_contrast,
    read_difficulty,
    resolve_metrics,
    write_difficulty,
)
from lesionseg.report.difficulty_plots import group_boundaries, plot_difficulty
from lesionseg.errors import CancelledError, DatasetError, LesionSegError, ParameterError
from lesionseg.preprocess import PrepareConfig, PreparedDataset, prepare_dataset
from lesionseg.preprocess.prepared import write_dataset_index
from lesionseg.progress import CancelFlag
from lesionseg.synth import make_case, write_case

# small phantoms with anisotropic in-plane pixels, prepared at S = 64 (about 3 s for both)
SMALL = {"size_xyz": (112, 128, 28), "spacing_mm": (1.6, 1.9, 5.0)}
_PREPARED: dict[str, tuple[Path, list]] = {}


def small_prepared(factory) -> tuple[Path, list]:
    """Two small synthetic FLAIR cases prepared at S = 64, made once per session (shared with the CLI tests)."""
    if "small" not in _PREPARED:
        root = factory.mktemp("difficulty")
        cases = [make_case(i, seed=3, **SMALL) for i in (1, 2)]
        for case in cases:
            write_case(case, root / "data")
        prepare_dataset(root / "data", root / "prepared", PrepareConfig(size=64))
        _PREPARED["small"] = (root / "prepared", cases)
    return _PREPARED["small"]


def write_lesion_free_prepared(root: Path) -> Path:
    """A prepared folder whose slices.csv lists only lesion-free slices (all that difficulty reads first)."""
    rows = [{"case_id": "c1", "patient_id": "c1", "slice_index": i, "flipped": False, "lesion_pixels": 0,
             "lesion_area_mm2": 0.0, "has_lesion": False} for i in (3, 4)]
    write_dataset_index(root, PrepareConfig(size=32, channels=["flair"]), rows, [{"case_id": "c1"}])
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return small_prepared(tmp_path_factory)


# ---------------------------------------------------------------- area and volume

def test_area_of_a_hand_made_slice_is_pixels_times_anisotropic_spacing():
    mask = np.zeros((40, 50), np.uint8)
    mask[5:12, 10:21] = 1  # 7 x 11 = 77 pixels
    mask[30, 40:43] = 3  # + 3 pixels of another value: still lesion
    assert lesion_area_mm2(mask, (0.8, 1.3)) == pytest.approx(80 * 0.8 * 1.3, rel=1e-12)
    assert lesion_area_mm2(80, (0.8, 1.3)) == pytest.approx(83.2, rel=1e-12)
    assert lesion_area_mm2(np.zeros((4, 4)), (2.0, 2.0)) == 0.0


@pytest.mark.parametrize("mask, spacing", [
    (np.zeros((2, 3, 4)), (1.0, 1.0)),  # not one slice
    (-3, (1.0, 1.0)),  # negative count
    (2.5, (1.0, 1.0)),  # fractional count
    (10, (0.0, 1.0)),  # zero spacing
    (10, (1.0,)),  # one number
    (10, (float("nan"), 1.0)),
])
def test_area_refuses_bad_input(mask, spacing):
    with pytest.raises(ParameterError):
        lesion_area_mm2(mask, spacing)


def test_case_volume_is_sum_of_areas_times_thickness():
    assert case_lesion_volume_ml([100.0, 250.5, 0.0], 3.0) == pytest.approx(1.0515, rel=1e-12)
    assert case_lesion_volume_ml([], 3.0) == 0.0
    with pytest.raises(ParameterError):
        case_lesion_volume_ml([1.0, float("nan")], 3.0)
    with pytest.raises(ParameterError):
        case_lesion_volume_ml([1.0], 0.0)


@pytest.mark.slow
def test_prepared_areas_are_native_and_sum_to_the_native_lesion_volume(prepared):
    root, cases = prepared
    dataset = PreparedDataset(root)
    table = compute_difficulty(dataset, ["area"])
    volumes = case_volumes_ml(dataset)
    sx, sy, sz = SMALL["spacing_mm"]
    for case in cases:
        native = sitk.GetArrayFromImage(case.lesion_mask)  # (z, y, x); identity direction: z = slice index
        rows = [i for i, c in enumerate(table.case_ids) if c == case.case_id]
        lesion_z = np.flatnonzero(native.reshape(len(native), -1).any(axis=1))
        expected = {z: native[z].sum() * sx * sy for z in lesion_z}
        got = {int(table.slice_indices[i]): table.metrics["area_mm2"][i] for i in rows}
        assert got.keys() == expected.keys()  # every native lesion slice has a row
        for z, area in expected.items():
            assert got[z] == pytest.approx(area, rel=1e-5)
        # sum of areas x thickness == the native mask's volume (SimpleITK's physical size of label 1)
        shape = sitk.LabelShapeStatisticsImageFilter()
        shape.Execute(sitk.Cast(case.lesion_mask, sitk.sitkUInt8))
        native_ml = shape.GetPhysicalSize(1) / 1000.0
        assert sum(got.values()) * sz / 1000.0 == pytest.approx(native_ml, rel=1e-5)
        assert volumes[case.case_id] == pytest.approx(native_ml, rel=1e-5)


# ---------------------------------------------------------------- Fisher contrast

def _two_region_slice(rng, size, lesion_box, lesion_stats, left_stats, right_stats):
    """A slice whose lesion, left-half and right-half pixels are drawn from known normal distributions."""
    height, width = size
    image = np.empty(size)
    image[:, width // 2:] = rng.normal(*left_stats, (height, width - width // 2))  # patient's left: columns >= W/2
    image[:, :width // 2] = rng.normal(*right_stats, (height, width // 2))
    lesion = np.zeros(size, bool)
    lesion[lesion_box] = True
    image[lesion] = rng.normal(*lesion_stats, int(lesion.sum()))
    return image, lesion, np.ones(size, bool)


@pytest.mark.parametrize("mu_l, s_l, mu_h, s_h", [
    (3.0, 0.5, 1.0, 1.0),  # F = 4 / 1.25 = 3.2
    (0.6, 0.6, 0.0, 0.6),  # F = 0.36 / 0.72 = 0.5 (a faint lesion, the synthetic cohort's median)
    (-1.0, 0.3, 1.0, 0.4),  # F = 4 / 0.25 = 16 (a dark lesion)
])
def test_contrast_matches_the_analytic_fisher_ratio(mu_l, s_l, mu_h, s_h):
    # 32,000 lesion and 48,000 healthy pixels: the sampling error of F is under 1.5 % (1 sd) in every case
    rng = np.random.default_rng(7)
    image, lesion, brain = _two_region_slice(rng, (400, 400), (slice(100, 300), slice(220, 380)),
                                             (mu_l, s_l), (mu_h, s_h), (mu_h, s_h))
    analytic = (mu_h - mu_l) ** 2 / (s_h ** 2 + s_l ** 2)
    measured = measure_contrast(image, lesion, brain)
    assert measured.valid and measured.side == "left"
    assert measured.value == pytest.approx(analytic, rel=0.05)


def test_a_right_hemisphere_lesion_is_compared_with_right_hemisphere_tissue():
    rng = np.random.default_rng(11)
    # the two hemispheres differ a lot: left N(5, 1), right N(0, 0.5); lesion N(1.5, 0.5) in the right half
    image, lesion, brain = _two_region_slice(rng, (300, 300), (slice(120, 180), slice(40, 100)),
                                             (1.5, 0.5), (5.0, 1.0), (0.0, 0.5))
    right_expected = (0.0 - 1.5) ** 2 / (0.5 ** 2 + 0.5 ** 2)  # 4.5
    left_expected = (5.0 - 1.5) ** 2 / (1.0 ** 2 + 0.5 ** 2)  # 9.8
    measured = measure_contrast(image, lesion, brain)
    assert measured.side == "right"
    assert measured.value == pytest.approx(right_expected, rel=0.05)
    # the same by hand from the sample: healthy = right half (columns < 150) minus the lesion
    healthy = np.zeros_like(lesion)
    healthy[:, :150] = True
    healthy &= ~lesion
    by_hand = (image[healthy].mean() - image[lesion].mean()) ** 2 / (image[healthy].var() + image[lesion].var())
    assert measured.value == pytest.approx(by_hand, rel=1e-9)
    assert measured.healthy_pixels == 300 * 150 - 60 * 60
    # forcing the other hemisphere gives the left-tissue value, and mirroring the slice swaps the sides
    assert fisher_contrast(image, lesion, brain, hemisphere="left") == pytest.approx(left_expected, rel=0.05)
    mirrored = measure_contrast(image[:, ::-1], lesion[:, ::-1], brain[:, ::-1])
    assert mirrored.side == "left" and mirrored.value == pytest.approx(by_hand, rel=1e-9)


def test_margin_leaves_out_the_band_around_the_lesion():
    rng = np.random.default_rng(5)
    image, lesion, brain = _two_region_slice(rng, (200, 200), (slice(80, 120), slice(130, 170)),
                                             (3.0, 0.5), (1.0, 0.5), (1.0, 0.5))
    distance = ndimage.distance_transform_edt(~lesion)  # Euclidean distance to the lesion, in pixels
    band = (distance > 0) & (distance <= 3)
    image[band] = 2.9  # a penumbra-like band that would lower the contrast
    expected = (1.0 - 3.0) ** 2 / (0.5 ** 2 + 0.5 ** 2)  # 8: only tissue beyond the band
    assert fisher_contrast(image, lesion, brain, margin_px=3) == pytest.approx(expected, rel=0.05)
    assert fisher_contrast(image, lesion, brain) < 0.8 * expected


def test_too_few_pixels_or_no_variance_give_the_documented_value_never_nan():
    image = np.random.default_rng(0).normal(size=(64, 64))
    brain = np.ones((64, 64), bool)
    small = np.zeros((64, 64), bool)
    small[30, 40:44] = True  # 4 lesion pixels
    measured = measure_contrast(image, small, brain)
    assert measured.value == INVALID_CONTRAST == 0.0 and not measured.valid and "4 lesion pixel" in measured.reason
    assert measure_contrast(image, small, brain, min_lesion_pixels=4).valid
    assert fisher_contrast(image, np.zeros((64, 64), bool), brain) == 0.0  # no lesion at all
    lesion = np.zeros((64, 64), bool)
    lesion[20:30, 40:50] = True
    tight_brain = ndimage.binary_dilation(lesion, iterations=1)  # only a 1-pixel ring of healthy tissue
    ring = measure_contrast(image, lesion, tight_brain, min_healthy_pixels=100)
    assert ring.value == 0.0 and not ring.valid and "healthy" in ring.reason
    flat = measure_contrast(np.where(lesion, 2.0, 1.0), lesion, brain)
    assert flat.value == 0.0 and not flat.valid and "variance" in flat.reason


@pytest.mark.parametrize("kwargs", [{"hemisphere": "up"}, {"margin_px": -1}, {"min_lesion_pixels": 0},
                                    {"min_healthy_pixels": 2.5}])
def test_contrast_refuses_bad_options(kwargs):
    image = np.zeros((8, 8))
    with pytest.raises(ParameterError):
        fisher_contrast(image, image > 0, image == 0, **kwargs)


def test_contrast_refuses_mismatched_shapes_and_nan_in_the_regions():
    lesion = np.zeros((10, 10), bool)
    lesion[2:5, 6:9] = True
    with pytest.raises(ParameterError):
        fisher_contrast(np.zeros((10, 11)), lesion, np.ones((10, 10)))
    image = np.ones((10, 10))
    image[3, 7] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        fisher_contrast(image, lesion, np.ones((10, 10)))


# ---------------------------------------------------------------- the dataset level and the table

def test_metric_names():
    assert resolve_metrics("area, contrast_fisher,area") == ["area", "contrast"]
    with pytest.raises(ParameterError, match="area, contrast"):
        resolve_metrics(["volume"])
    with pytest.raises(ParameterError, match="--bundle"):
        resolve_metrics("gradient")
    with pytest.raises(ParameterError):
        resolve_metrics("")


@pytest.mark.slow
def test_compute_difficulty_gives_one_finite_row_per_lesion_slice(prepared, tmp_path):
    root, _ = prepared
    dataset = PreparedDataset(root)
    events = []
    table = compute_difficulty(dataset, "area,contrast", progress=events.append)
    lesion_rows = [r for r in dataset.slices if r["has_lesion"]]
    assert table.keys == [(r["case_id"], r["slice_index"]) for r in lesion_rows]
    assert np.array_equal(table.metrics["area_mm2"], [r["lesion_area_mm2"] for r in lesion_rows])
    contrast, valid = table.metrics["contrast_fisher"], table.flags["contrast_valid"]
    assert np.all(np.isfinite(contrast)) and np.all(contrast >= 0) and np.all(contrast[~valid] == 0.0)
    # valid exactly where the prepared slice has >= 5 lesion pixels (the brain always leaves >= 20 healthy ones)
    pixels = []
    for case_id in dataset.case_ids:
        masks = dataset.arrays(case_id).masks
        pixels += [int(masks[i].sum()) for i, r in enumerate(dataset.case_slices(case_id)) if r["has_lesion"]]
    assert np.array_equal(valid, np.array(pixels) >= 5) and valid.sum() >= 5  # enough measurable slices to mean something
    assert events[-1]["event"] in ("progress", "warning")

    rows = table.join(dataset)
    assert [i for i in rows if i >= 0] == list(range(len(table)))
    assert all((i >= 0) == r["has_lesion"] for i, r in zip(rows, dataset.slices))

    path = write_difficulty(table, tmp_path / "difficulty.csv")
    again = read_difficulty(path)
    assert again.keys == table.keys and again.flags["contrast_valid"].tolist() == valid.tolist()
    for name in ("area_mm2", "contrast_fisher"):
        np.testing.assert_allclose(again.metrics[name], table.metrics[name], rtol=1e-9)

    # the default channel is the reference one (flair here); unknown channels and bad options are refused
    named = compute_difficulty(dataset, ["contrast"], channel="flair")
    assert np.array_equal(named.metrics["contrast_fisher"], contrast)
    with pytest.raises(ParameterError, match="channel 'dwi'"):
        compute_difficulty(dataset, ["contrast"], channel="dwi")
    with pytest.raises(ParameterError, match="margin_px"):
        compute_difficulty(dataset, ["contrast"], margin_px=-2)
    flag = CancelFlag()
    flag.cancel()
    with pytest.raises(CancelledError):
        compute_difficulty(dataset, ["contrast"], cancel=flag)


@pytest.mark.slow
def test_join_refuses_a_table_of_another_dataset(prepared):
    dataset = PreparedDataset(prepared[0])
    table = compute_difficulty(dataset, ["area"])
    fewer = DifficultyTable(table.case_ids[1:], table.slice_indices[1:],
                            {"area_mm2": table.metrics["area_mm2"][1:]})
    with pytest.raises(DatasetError, match="no row for lesion slice"):
        fewer.join(dataset)
    assert fewer.join(dataset, strict=False).max() == len(fewer) - 1
    foreign = DifficultyTable([*table.case_ids, "sub-other"], [*table.slice_indices, 3],
                              {"area_mm2": [*table.metrics["area_mm2"], 5.0]})
    with pytest.raises(DatasetError, match="not a slice of"):
        foreign.join(dataset)


def test_no_lesion_slices_is_a_dataset_error(tmp_path):
    dataset = PreparedDataset(write_lesion_free_prepared(tmp_path / "prepared"))
    with pytest.raises(DatasetError, match="no lesion slices"):
        compute_difficulty(dataset, ["area", "contrast"])


GOOD = "case_id,slice_index,area_mm2,contrast_fisher,contrast_valid\nc1,3,12.5,0.4,1\nc1,4,30,1.25,1\n"


@pytest.mark.parametrize("text, match", [
    (GOOD.replace("0.4,1", "nan,1"), "line 2: column 'contrast_fisher' holds 'nan'"),
    (GOOD.replace("30,", ","), "line 3: column 'area_mm2' holds an empty value"),
    (GOOD.replace("12.5", "big"), "line 2: column 'area_mm2' holds 'big'"),
    (GOOD.replace("1.25", "inf"), "line 3: column 'contrast_fisher'"),
    (GOOD.replace("c1,4", "c1,3"), "line 3: case c1 slice 3 already appears on line 2"),
    (GOOD.replace("c1,4", "c1,x"), "line 3: column 'slice_index'"),
    (GOOD.replace("0.4,1", "0.4,yes"), "line 2: column 'contrast_valid'"),
    (GOOD.replace("slice_index", "slice"), "no 'slice_index' column"),
    ("case_id,slice_index,volume\nc1,3,2\n", "no difficulty column"),
    (GOOD.splitlines()[0] + "\n", "no rows"),
])
def test_read_difficulty_names_the_file_column_and_line(tmp_path, text, match):
    path = tmp_path / "difficulty.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match) as caught:
        read_difficulty(path)
    assert str(path) in str(caught.value)


def test_read_difficulty_reads_human_ratings_and_ignores_unknown_columns(tmp_path):
    path = tmp_path / "difficulty.csv"
    path.write_text("case_id,slice_index,human,notes\nc1,3,Easy,ok\nc1,4,hard,\nc2,1,1,\n")
    table = read_difficulty(path)
    assert table.metric_names == ["human"] and table.metrics["human"].tolist() == [0.0, 2.0, 1.0]
    with pytest.raises(LesionSegError, match="does not exist"):
        read_difficulty(tmp_path / "missing.csv")


def test_table_refuses_nan_and_unknown_columns_in_memory():
    with pytest.raises(ParameterError, match="finite"):
        DifficultyTable(["a"], [1], {"area_mm2": [np.nan]})
    with pytest.raises(ParameterError, match="unknown"):
        DifficultyTable(["a"], [1], {"volume": [1.0]})
    with pytest.raises(ParameterError, match="twice"):
        DifficultyTable(["a", "a"], [1, 1], {"area_mm2": [1.0, 2.0]})


# ---------------------------------------------------------------- plots

def test_group_boundaries_lie_between_the_quantile_groups():
    values = np.arange(1.0, 13.0)  # 12 slices, 6 groups of 2; large = easy: G1 = {12, 11}, G2 = {10, 9}, ...
    from lesionseg.curriculum import assign_groups

    groups = assign_groups(values, 6, easy="high")
    assert group_boundaries(values, groups) == [10.5, 8.5, 6.5, 4.5, 2.5]
    assert group_boundaries(values, groups, log=True)[0] == pytest.approx(np.sqrt(110.0))


def test_plot_writes_one_png_per_metric(tmp_path):
    from matplotlib.image import imread

    rng = np.random.default_rng(2)
    n = 120
    contrast = rng.lognormal(-0.5, 1.0, n)
    contrast[:7] = 0.0  # unmeasurable slices
    table = DifficultyTable([f"c{i // 10}" for i in range(n)], [i % 10 for i in range(n)],
                            {"area_mm2": rng.lognormal(3.5, 1.2, n), "contrast_fisher": contrast})
    paths = plot_difficulty(table, tmp_path / "plots", groups=6)
    assert [p.name for p in paths] == ["difficulty_area_mm2.png", "difficulty_contrast_fisher.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600 and pixels[..., :3].std() > 0.05  # not blank
    assert not list((tmp_path / "plots").glob(".tmp-*"))
    with pytest.raises(ParameterError):
        plot_difficulty(table, tmp_path / "plots", groups=n + 1)
    with pytest.raises(ParameterError, match="gradient"):
        plot_difficulty(table, tmp_path / "plots", metrics=["gradient"])
