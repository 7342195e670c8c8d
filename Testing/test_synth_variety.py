"""The synthetic cohort's variety options: lesion patterns, lesion contrast, oblique grids, head tilt,
skull stripping, T1, random tissue contrast, look-alikes, per-case options and the CLI flags.

Small grids (2 x 2 x 6 mm, 2 x 2 x 3 mm where symmetry needs it) keep the file fast; every assertion is one
that a wrong generator would fail.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.cli import main as cli_main
from lesionseg.errors import ParameterError
from lesionseg.synth import case_files, make_case, varied_case_options, write_cohort
from lesionseg.synth.geometry import rotation_angle_deg, rotation_xyz
from lesionseg.synth.options import CASE_OPTION_DEFAULTS

SMALL = {"size_xyz": (96, 112, 24), "spacing_mm": (2.0, 2.0, 6.0)}
CLEAN = {"noise": False, "bias": False}
PARENCHYMA = (4, 5, 7)


def arr(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def digest(case) -> str:
    """SHA-256 (first 16 hex digits) of the channels, lesion instances, tissue and territory labels."""
    h = hashlib.sha256()
    for image in [*case.channels.values(), case.lesion_instances, case.tissue_labels, case.territory_labels]:
        h.update(np.ascontiguousarray(arr(image)).tobytes())
    return h.hexdigest()[:16]


def mirror(image: sitk.Image, point, normal) -> sitk.Image:
    """Reflect an image about a plane (nearest neighbour)."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    transform = sitk.AffineTransform(3)
    transform.SetMatrix((np.eye(3) - 2 * np.outer(n, n)).ravel().tolist())
    transform.SetCenter(tuple(float(v) for v in point))
    return sitk.Resample(image, image, transform, sitk.sitkNearestNeighbor, 0)


def rotation_about(axis, degrees: float) -> np.ndarray:
    """Rodrigues' rotation matrix about a unit axis."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.deg2rad(degrees)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


# --- defaults ------------------------------------------------------------------------------------------


# These digests were recorded BEFORE the variety options were added (same machine, same code path), so a
# default case must still come out bit for bit as the earlier benchmark cohorts and the other tests saw it.
RECORDED_BEFORE = {
    "small-2": "b419885454d5b061",  # make_case(2, seed=0, **SMALL)
    "pose-misaligned": "ea344be0569cf72c",  # flair + ct, head pose and misalignment, case 4 of seed 5
}


def test_defaults_are_bit_identical_to_the_images_recorded_before_the_variety_options():
    assert digest(make_case(2, seed=0, **SMALL)) == RECORDED_BEFORE["small-2"]
    explicit = {name: CASE_OPTION_DEFAULTS[name] for name in (
        "lesion_pattern", "lesion_contrast", "oblique_deg", "head_tilt_deg", "skull", "tissue_contrast",
        "distractors")}
    posed = make_case(4, seed=5, modalities=("flair", "ct"), head_pose=((3.0, -2.0, 1.0), 6.0),
                      misalignment=(4.0, 4.0), **SMALL, **explicit)
    assert digest(posed) == RECORDED_BEFORE["pose-misaligned"]
    assert posed.parameters["options"]["lesion_pattern"] == "default"
    assert posed.channels["flair"].GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def test_mixed_case_that_draws_default_equals_the_default_case():
    mixed = make_case(4, seed=0, lesion_pattern="mixed", **SMALL)
    assert mixed.parameters["variety"]["lesion_pattern"] == "default"
    assert digest(mixed) == digest(make_case(4, seed=0, **SMALL))
    other = make_case(2, seed=0, lesion_pattern="mixed", **SMALL)
    assert other.parameters["variety"]["lesion_pattern"] == "territorial"


# --- lesion patterns -----------------------------------------------------------------------------------


def _inside_parenchyma(case) -> None:
    """Every lesion voxel is grey matter, white matter or deep grey, never CSF or ventricles."""
    labels = arr(case.tissue_labels)[arr(case.lesion_mask) > 0]
    assert labels.size and set(np.unique(labels)) <= set(PARENCHYMA), np.unique(labels)


@pytest.mark.parametrize("index", [1, 2, 3, 8])
def test_territorial_infarct_is_large_within_range_and_inside_its_territory(index):
    case = make_case(index, seed=0, lesion_pattern="territorial", **SMALL, **CLEAN)
    main = case.lesions[0]
    assert main.kind == "territorial" and 1 <= len(case.lesions) <= 3
    assert 8_000 < main.volume_mm3 < 125_000, main.volume_mm3
    assert all(lesion.radius_mm <= 5.0 for lesion in case.lesions[1:])  # satellites are small
    _inside_parenchyma(case)
    code = {"ACA": 1, "MCA": 2, "PCA": 3}[main.territory] + (0 if main.side == "left" else 3)
    territories = arr(case.territory_labels)
    instances = arr(case.lesion_instances)
    assert np.all(territories[instances == main.label] == code)
    if index == 8:  # this draw asked for about 115 mL: it fills most of its territory's tissue
        tissue = np.isin(arr(case.tissue_labels), PARENCHYMA) & (territories == code)
        assert np.count_nonzero(instances == main.label) > 0.6 * np.count_nonzero(tissue)


@pytest.mark.parametrize("index", [1, 2, 4])
def test_embolic_shower_has_many_small_lesions_over_several_territories(index):
    case = make_case(index, seed=0, lesion_pattern="embolic", **SMALL, **CLEAN)
    assert 4 <= len(case.lesions) <= 15
    assert all(1.5 <= lesion.radius_mm <= 5.0 for lesion in case.lesions)
    assert len({lesion.territory for lesion in case.lesions}) >= 2
    assert len(np.unique(arr(case.lesion_instances))) - 1 >= 4  # at least 4 show on the grid
    _inside_parenchyma(case)
    if index == 1:
        assert {lesion.side for lesion in case.lesions} == {"left", "right"}  # this one is bilateral


@pytest.mark.parametrize("index", [1, 2, 3])
def test_lacunes_are_small_and_deep(index):
    case = make_case(index, seed=0, lesion_pattern="lacunar", **SMALL, **CLEAN)
    assert 1 <= len(case.lesions) <= 3 and all(lesion.kind == "lacunar" for lesion in case.lesions)
    assert all(2.0 <= lesion.radius_mm <= 7.0 for lesion in case.lesions)
    labels = arr(case.tissue_labels)[arr(case.lesion_mask) > 0]
    assert labels.size and set(np.unique(labels)) <= {5, 7}  # white matter or deep nuclei, no cortex


def test_mask_is_what_is_rendered_and_contrast_multiplier_scales_the_lesion():
    options = dict(lesion_pattern="territorial", lesion_age=(1.0, 1.0), **SMALL, **CLEAN)
    on = make_case(2, seed=0, lesion_contrast=(1.0, 1.0), **options)
    off = make_case(2, seed=0, lesion_contrast=(0.0, 0.0), **options)
    bright = make_case(2, seed=0, lesion_contrast=(1.6, 1.6), **options)
    mask = arr(on.lesion_mask) > 0
    change = arr(on.channels["flair"]).astype(float) - arr(off.channels["flair"])
    assert np.all(change[mask] > 0)
    strong = change > 0.5 * np.percentile(change[mask], 50)
    # Strong change only at the mask or a voxel touching it (partial volume, 26-neighbourhood).
    assert np.all(ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3)))[strong])
    tissue = np.isin(arr(on.tissue_labels), PARENCHYMA) & ~ndimage.binary_dilation(mask, iterations=2)
    ratio = arr(on.channels["flair"])[mask].mean() / np.median(arr(on.channels["flair"])[tissue])
    ratio_bright = arr(bright.channels["flair"])[mask].mean() / np.median(arr(bright.channels["flair"])[tissue])
    assert 2.0 < ratio < 3.3 and ratio_bright > ratio + 0.6, (ratio, ratio_bright)
    base = on.parameters["modalities"]["flair"]["lesion_contrast"]
    assert bright.parameters["modalities"]["flair"]["lesion_contrast"] == pytest.approx(1.6 * base)
    assert bright.parameters["variety"]["lesion_contrast_multiplier"] == 1.6
    assert np.array_equal(arr(on.lesion_mask), arr(bright.lesion_mask))


# --- geometry ------------------------------------------------------------------------------------------


def test_oblique_grid_is_rotated_by_the_drawn_angles_and_the_mask_still_lies_on_bright_voxels():
    options = dict(lesion_pattern="territorial", lesion_age=(1.0, 1.0), **SMALL, **CLEAN)
    straight = make_case(3, seed=0, **options)
    oblique = make_case(3, seed=0, oblique_deg=20.0, **options)
    variety = oblique.parameters["variety"]
    angles = variety["oblique_angles_deg"]
    assert max(abs(a) for a in angles[:2]) <= 20.0 and abs(angles[2]) <= 5.0
    direction = np.asarray(oblique.channels["flair"].GetDirection()).reshape(3, 3)
    assert np.allclose(direction, rotation_xyz(angles), atol=1e-12)
    assert rotation_angle_deg(direction) == pytest.approx(variety["oblique_angle_deg"])
    assert variety["oblique_angle_deg"] > 5.0  # really oblique
    assert all(a.GetDirection() == oblique.channels["flair"].GetDirection()
               for a in (oblique.lesion_mask, oblique.brain_mask, oblique.tissue_labels))
    flair, mask = arr(oblique.channels["flair"]).astype(float), arr(oblique.lesion_mask) > 0
    tissue = np.isin(arr(oblique.tissue_labels), PARENCHYMA) & ~mask
    assert flair[mask].mean() > 1.8 * np.median(flair[tissue])
    # The same physical phantom: brain and lesion volumes agree with the axis-aligned grid's.
    voxel = np.prod(SMALL["spacing_mm"])
    brain_ml = np.sum(arr(straight.brain_mask)) * voxel / 1000
    assert np.sum(arr(oblique.brain_mask)) * voxel / 1000 == pytest.approx(brain_ml, rel=0.03)
    assert oblique.lesions[0].volume_mm3 == pytest.approx(straight.lesions[0].volume_mm3, rel=0.1)
    assert oblique.midplane_normal == straight.midplane_normal  # the plane is physical


def test_truth_midplane_stays_exact_under_head_tilt():
    grid = {"size_xyz": (96, 112, 48), "spacing_mm": (2.0, 2.0, 3.0)}
    case = make_case(4, seed=0, head_tilt_deg=25.0, head_pose=((3.0, -2.0, 1.0), 6.0), oblique_deg=15.0,
                     **grid, **CLEAN)
    tilt = case.parameters["variety"]["head_tilt_deg"]
    assert abs(tilt["pitch"]) > 5.0 and 0 < abs(tilt["roll"]) <= 25.0 / 3
    point, normal = np.array(case.midplane_point_mm), np.array(case.midplane_normal)
    assert np.allclose(point, (3.0, -2.0, -6.0)) and np.linalg.norm(normal) == pytest.approx(1.0)

    def symmetry(p, n):
        labels, mirrored = arr(case.tissue_labels), arr(mirror(case.tissue_labels, p, n))
        both = (labels >= 3) | (mirrored >= 3)
        dice = 2 * np.sum((labels >= 3) & (mirrored >= 3)) / (np.sum(labels >= 3) + np.sum(mirrored >= 3))
        return dice, np.mean(labels[both] == mirrored[both])

    dice, agreement = symmetry(point, normal)
    assert dice > 0.98
    untilted = np.array([np.cos(np.deg2rad(6.0)), np.sin(np.deg2rad(6.0)), 0.0])  # the pose without the tilt
    sideways = np.cross(normal, [0.0, 0.0, 1.0])
    for other_point, other_normal in ((point + 2 * normal, normal), (point, untilted),
                                      (point, rotation_about(sideways, 3.0) @ normal),
                                      (point, rotation_about([0, 0, 1], 3.0) @ normal)):
        other_dice, other_agreement = symmetry(other_point, other_normal)
        assert other_dice < dice - 0.004 and other_agreement < agreement - 0.03


# --- intensities ---------------------------------------------------------------------------------------


def test_skull_stripped_scan_is_zero_outside_the_brain_and_unchanged_inside():
    kept = make_case(5, seed=0, modalities=("flair", "adc"), **SMALL)
    stripped = make_case(5, seed=0, modalities=("flair", "adc"), skull=False, **SMALL)
    brain = arr(stripped.brain_mask) > 0
    for name in ("flair", "adc"):
        image = arr(stripped.channels[name])
        assert np.all(image[~brain] == 0)
        assert np.array_equal(image[brain], arr(kept.channels[name])[brain])
        assert np.count_nonzero(image[brain]) > 0.99 * brain.sum()
    assert np.count_nonzero(arr(kept.channels["flair"])[~brain]) > 0.2 * (~brain).sum()


def test_t1_lesion_is_darker_than_its_tissue_and_grey_matter_darker_than_white(tmp_path):
    case = make_case(2, seed=0, modalities=("t1",), lesion_pattern="territorial", lesion_age=(1.0, 1.0),
                     **SMALL, **CLEAN)
    t1, mask, labels = arr(case.channels["t1"]).astype(float), arr(case.lesion_mask) > 0, arr(case.tissue_labels)
    ring = ndimage.binary_dilation(mask, iterations=2) & ~ndimage.binary_dilation(mask)
    ring &= np.isin(labels, PARENCHYMA)
    assert t1[mask].mean() < 0.8 * t1[ring].mean()
    medians = {label: np.median(t1[labels == label]) for label in (3, 4, 5)}
    assert medians[3] < medians[4] < medians[5]
    values = case.parameters["modalities"]["t1"]
    assert -0.5 < values["lesion_contrast"] < -0.25
    files = case_files(tmp_path, case.case_id, ("t1",))
    assert files.channels["t1"].parent.name == "anat" and files.channels["t1"].name.endswith("_T1w.nii.gz")


def test_random_tissue_contrast_changes_the_tissue_ranking_between_cases():
    orders, polarities = set(), set()
    for index in range(1, 7):
        case = make_case(index, seed=0, tissue_contrast="random", **SMALL, **CLEAN)
        flair, labels = arr(case.channels["flair"]).astype(float), arr(case.tissue_labels)
        medians = [np.median(flair[labels == label]) for label in (3, 4, 5)]  # CSF, grey, white
        orders.add(tuple(np.argsort(medians)))
        polarities.add(case.parameters["variety"]["lesion_polarity"])
    assert len(orders) >= 3 and polarities == {1.0, -1.0}


def test_look_alikes_are_bright_on_flair_outside_the_mask_and_leave_ct_alone():
    options = dict(modalities=("flair", "ct"), **SMALL, **CLEAN)
    plain = make_case(7, seed=0, **options)
    case = make_case(7, seed=0, distractors=True, **options)
    kinds = [d["kind"] for d in case.parameters["variety"]["distractors"]]
    assert "old_infarct" in kinds and sum(k in ("cap", "punctate") for k in kinds) >= 2
    labels, mask = arr(case.distractor_labels), arr(case.lesion_mask) > 0
    assert np.array_equal(mask, arr(plain.lesion_mask) > 0) and not np.any(mask & (labels > 0))
    flair, before = arr(case.channels["flair"]).astype(float), arr(plain.channels["flair"]).astype(float)
    spots, cavity, rim = labels == 1, labels == 2, labels == 3
    assert 1.05 < flair[spots].mean() / before[spots].mean() < 1.45  # mildly bright
    # The gliotic rim is bright where the cavity does not share the voxel (6 mm slices mix the two).
    clear_rim = rim & ~ndimage.binary_dilation(cavity, structure=np.ones((3, 3, 3)))
    assert clear_rim.sum() >= 5 and flair[clear_rim].mean() > 1.05 * before[clear_rim].mean()
    csf = np.median(before[arr(case.tissue_labels) == 3])
    assert flair[cavity].mean() < 0.5 * before[cavity].mean() and flair[cavity].mean() < 2 * csf
    ct, ct_before = arr(case.channels["ct"]).astype(float), arr(plain.channels["ct"]).astype(float)
    away = spots & ~ndimage.binary_dilation(labels >= 2, iterations=3)
    assert np.array_equal(ct[away], ct_before[away])  # no WMH on CT
    assert ct[cavity].mean() < ct_before[cavity].mean() - 10  # the old infarct is CSF-dark on CT


def test_varied_cortex_folds_deeper_and_leaves_the_rest_of_the_head():
    """With ``varied_cortex`` (same seed, noise-free twins): the skull, scalp and air are the same voxels and
    the brain axes the same draw; the recorded cortex lies in the varied ranges; and sulcal CSF reaches deeper
    than the default folding allows. Depth is measured with a SimpleITK distance map from the intracranial
    surface, over the convexity (head-frame z above 24 mm: the Sylvian fissure ends below about 19 mm plus the
    warp, and the ventricles are CSF of their own label) and away from the interhemispheric fissure (|x| > 8 mm):
    there the default's sulci end at most 14 mm under the pial surface, i.e. 14 mm plus the drawn CSF layer under
    the intracranial one."""
    from lesionseg.synth.phantom import VARIED_CORTEX_MM

    options = dict(size_xyz=(96, 112, 64), spacing_mm=(2.0, 2.0, 2.0), **CLEAN)
    plain = make_case(1, seed=2, **options)
    varied = make_case(1, seed=2, varied_cortex=True, **options)
    anatomy, plain_anatomy = varied.parameters["anatomy"], plain.parameters["anatomy"]
    assert anatomy["brain_axes"] == plain_anatomy["brain_axes"]
    for name in ("cortex_thickness", "sulcal_depth"):
        low, high = VARIED_CORTEX_MM[name]
        assert low <= anatomy[name] <= high
    assert anatomy["sulcal_depth"] > 18.0  # this case draws deep sulci (the check below needs them)
    labels, plain_labels = arr(varied.tissue_labels), arr(plain.tissue_labels)
    assert np.array_equal(labels <= 2, plain_labels <= 2)
    depth = arr(sitk.SignedMaurerDistanceMap(varied.brain_mask, insideIsPositive=True, squaredDistance=False,
                                             useImageSpacing=True))
    z, y, x = np.meshgrid(*[np.arange(n) * 2.0 - (n - 1) for n in labels.shape], indexing="ij")
    convexity = (z > 24.0) & (np.abs(x) > 8.0)
    default_limit = 14.0 + plain_anatomy["csf_thickness"]
    for case_labels, deeper in ((plain_labels, False), (labels, True)):
        sulcal = convexity & (case_labels == 3)
        assert (np.count_nonzero(sulcal & (depth > default_limit + 2.0)) > 10) == deeper


# --- options, per-case options, CLI --------------------------------------------------------------------


@pytest.mark.parametrize("option, value", [
    ("lesion_pattern", "huge"), ("lesion_contrast", (1.5, 1.0)), ("lesion_contrast", 2.0),
    ("oblique_deg", 90), ("oblique_deg", "x"), ("head_tilt_deg", -1), ("skull", "no"),
    ("tissue_contrast", "fixed"), ("distractors", 1),
])
def test_bad_variety_options_raise_one_sentence_naming_the_option(option, value):
    with pytest.raises(ParameterError) as raised:
        make_case(1, seed=0, **SMALL, **{option: value})
    message = str(raised.value)
    assert message.startswith(option) and message.count(". ") == 0 and message.endswith(".")


def test_varied_case_options_are_deterministic_and_varied():
    assert varied_case_options(3, 7) == varied_case_options(3, 7)
    assert varied_case_options(3, 7) != varied_case_options(3, 8) != varied_case_options(4, 7)
    starter = [varied_case_options(1, i) for i in range(1, 301)]
    heldout = [varied_case_options(1, i, "heldout") for i in range(1, 301)]
    thickness = np.array([o["spacing_mm"][2] for o in starter])
    assert 1.0 <= thickness.min() < 1.5 and 5.5 < thickness.max() <= 6.0
    assert all(3.0 <= o["spacing_mm"][2] <= 5.0 and o["skull"] for o in heldout)
    for options in starter[:40]:
        fov = np.multiply(options["size_xyz"], options["spacing_mm"])
        assert np.all(fov >= (200, 220, 165))
        assert np.prod(options["size_xyz"]) <= 6_000_000 or options["spacing_mm"][0] == 1.2  # thin slices
    fraction = {name: np.mean([test(o) for o in starter]) for name, test in (
        ("oblique", lambda o: o["oblique_deg"] is not None), ("stripped", lambda o: not o["skull"]),
        ("distractors", lambda o: o["distractors"]), ("random", lambda o: o["tissue_contrast"] == "random"))}
    assert 0.3 < fraction["oblique"] < 0.5 and 0.17 < fraction["stripped"] < 0.33
    assert 0.4 < fraction["distractors"] < 0.6 and 0.22 < fraction["random"] < 0.38
    assert 0.4 < np.mean([o["oblique_deg"] is not None for o in heldout]) < 0.6
    assert 0.28 < np.mean([o["lesion_pattern"] == "territorial" for o in heldout]) < 0.44
    with pytest.raises(ParameterError):
        varied_case_options(1, 1, "exotic")


def test_write_cohort_with_a_per_case_lambda_in_parallel_records_each_case_options(tmp_path):
    def options(index):
        return {"lesion_pattern": ("embolic", "lacunar")[index - 1], "distractors": index == 2}

    files = write_cohort(tmp_path, 2, seed=0, workers=2, extra_truth=True, case_options_fn=lambda i: options(i),
                         **SMALL)
    for index, case in enumerate(files, start=1):
        truth = json.loads(case.truth.read_text(encoding="utf-8"))
        recorded = truth["parameters"]["options"]
        assert recorded["lesion_pattern"] == options(index)["lesion_pattern"]
        assert recorded["distractors"] is options(index)["distractors"]
        assert recorded["size_xyz"] == list(SMALL["size_xyz"])
    assert (files[1].truth.parent / "sub-strokecase0002_ses-0001_distractors.nii.gz").is_file()
    assert not (files[0].truth.parent / "sub-strokecase0001_ses-0001_distractors.nii.gz").exists()
    described = json.loads((tmp_path / "dataset_description.json").read_text(encoding="utf-8"))
    assert "<lambda>" in described["LesionSegSynth"]["case_options"]["case_options_fn"]
    assert "0x" not in described["LesionSegSynth"]["case_options"]["case_options_fn"]  # same bytes on re-run
    with pytest.raises(ParameterError, match="lesion_pattern"):
        write_cohort(tmp_path / "bad", 1, case_options_fn=lambda i: {"lesion_pattern": "huge"}, **SMALL)


@pytest.mark.parametrize("flags, named", [
    (["--lesion-pattern", "huge"], "--lesion-pattern"), (["--lesion-contrast", "2,1"], "--lesion-contrast"),
    (["--lesion-contrast", "bright"], "--lesion-contrast"), (["--oblique", "60"], "--oblique"),
    (["--head-tilt", "steep"], "--head-tilt"), (["--tissue-contrast", "fixed"], "--tissue-contrast"),
    (["--varied", "exotic"], "--varied"), (["--modality", "t1,pet"], "--modality"),
])
def test_cli_bad_variety_values_exit_2_with_one_sentence(tmp_path, capsys, flags, named):
    assert cli_main(["synth", str(tmp_path / "out"), "--cases", "1", *flags]) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_writes_t1_with_the_variety_flags(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main(["synth", str(out), "--cases", "1", "--modality", "flair,t1", "--spacing", "2,2,6",
                     "--lesion-pattern", "lacunar", "--lesion-contrast", "1,1.6", "--oblique", "10",
                     "--head-tilt", "8", "--no-skull", "--tissue-contrast", "random", "--distractors"])
    assert code == 0, capsys.readouterr().err
    t1 = next(out.rglob("*_T1w.nii.gz"))
    assert t1.parent.name == "anat"
    truth = json.loads(next(out.rglob("*_synth.json")).read_text(encoding="utf-8"))
    options = truth["parameters"]["options"]
    assert options["lesion_pattern"] == "lacunar" and options["lesion_contrast"] == [1.0, 1.6]
    assert options["oblique_deg"] == 10.0 and options["head_tilt_deg"] == 8.0 and options["skull"] is False
    assert options["tissue_contrast"] == "random" and options["distractors"] is True
    image = sitk.ReadImage(str(t1))
    assert not np.allclose(np.reshape(image.GetDirection(), (3, 3)), np.eye(3))
