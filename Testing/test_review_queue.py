"""Tests of the review queue (lesionseg.refine.review_queue).

The queue is given cases copied under new names, without the synthetic cohort's truth folder, with masks
damaged to known degrees; the true Dice of each mask is known to the test only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.stats import spearmanr

from lesionseg.io import write_image
from lesionseg.metrics import dice
from lesionseg.preprocess.brain import extract_brain
from lesionseg.refine import RevisionStore, add_mark, degrade_mask, measure_case, review_queue
from lesionseg.synth import make_case

from conftest import SMALL_PHANTOM

DAMAGES = [None, ("erode", 1, 0.3), ("dilate", 1, 0.3), ("holes", 2, 0.2), ("islands", 2, 0.3), ("dilate", 2, 0.3),
           ("holes", 2, 0.5), ("islands", 2, 0.8), ("erode", 2, 0.3), ("dilate", 3, 0.3)]


def _write(root: Path, name: str, image: sitk.Image, mask: sitk.Image) -> None:
    write_image(image, root / name / "ses-0001" / "anat" / f"{name}_ses-0001_FLAIR.nii.gz")
    write_image(mask, root / "derivatives" / name / "ses-0001" / f"{name}_ses-0001_msk.nii.gz")


@pytest.fixture(scope="module")
def renamed(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """Ten small cases under random names, masks damaged to different degrees, no metadata; true Dice."""
    root = tmp_path_factory.mktemp("queue") / "renamed"
    rng = np.random.default_rng(5)
    truth_dice = {}
    for index, damage in enumerate(DAMAGES, start=1):
        case = make_case(index, seed=3, **SMALL_PHANTOM)
        name = f"sub-anon{rng.integers(10**6):06d}"
        mask = case.lesion_mask
        if damage:
            brain = extract_brain(case.channels["flair"], "mri", method="classical")
            mask = degrade_mask(mask, damage[0], seed=index, brain=brain, voxels=damage[1], fraction=damage[2])
        _write(root, name, case.channels["flair"], mask)
        truth_dice[name] = dice(sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(case.lesion_mask))
    assert not any(root.rglob("*synth*"))  # nothing of the phantom's truth is there to read
    return root, truth_dice


@pytest.mark.slow
def test_the_queue_puts_the_worst_masks_first(renamed):
    root, truth_dice = renamed
    queue = review_queue(root)
    assert sorted(e.case_id for e in queue) == sorted(truth_dice)
    assert [e.rank for e in queue] == list(range(1, len(queue) + 1))
    rho = spearmanr([e.rank for e in queue], [truth_dice[e.case_id] for e in queue]).statistic
    print(f"review queue without a model: Spearman(rank, true Dice) = {rho:.3f}")
    assert rho > 0.2  # without a model, only distinct lesions' outlines and the masks' shapes can be judged
    worst = min(truth_dice, key=truth_dice.get)
    assert queue[0].case_id == worst  # the emptied mask (Dice 0) comes first
    judged = [e for e in queue if e.measures["intensity_misfit"] is not None]
    offsets = {e.case_id: e.measures["outline_offset_mm"] for e in judged}
    perfect = [name for name in offsets if truth_dice[name] == 1.0]
    damaged = [name for name in offsets if truth_dice[name] < 0.8]
    if perfect and damaged:  # where the image can judge, a damaged outline is farther from it than a true one
        assert max(offsets[n] for n in perfect) < min(offsets[n] for n in damaged)


@pytest.mark.slow
def test_reviewed_cases_go_last_unless_their_mask_changed(renamed, tmp_path):
    import shutil

    root = tmp_path / "copy"
    for name in sorted(renamed[1])[:5]:
        shutil.copytree(renamed[0] / name, root / name)
        shutil.copytree(renamed[0] / "derivatives" / name, root / "derivatives" / name)
    first = review_queue(root)
    top, second, flagged = (entry.case_id for entry in first[:3])
    folders = {name: root / "derivatives" / "lesionseg" / "revisions" / name for name in (top, second, flagged)}
    for name in (top, second):
        add_mark(folders[name], name, "reviewed", rating="hard", revision="original")
    add_mark(folders[flagged], flagged, "flagged", comment="check the lower edge")
    # the second case's mask is refined after its review: it needs a new look
    from lesionseg.data import discover

    case = next(c for c in discover(root) if c.case_id == second)
    store = RevisionStore.for_case(case, dataset=root)
    store.add(store.read("original"), tool="manual", source="original")
    queue = review_queue(root)
    statuses = {entry.case_id: entry.status for entry in queue}
    assert statuses[second] == "changed since review" and statuses[top] == "reviewed"
    assert queue[-1].case_id == top and queue[-1].rating == "hard"
    assert queue[-2].case_id == flagged
    assert [e.case_id for e in queue].index(second) < len(queue) - 2


@dataclass
class _Prediction:
    labelmap: sitk.Image
    probabilities: sitk.Image
    tta_variance: sitk.Image | None = None


def test_model_measures_from_a_prediction():
    case = make_case(2, seed=3, **SMALL_PHANTOM)
    image, mask = case.channels["flair"], case.lesion_mask
    truth = sitk.GetArrayFromImage(mask) != 0
    predicted = truth.copy()
    predicted[tuple(np.argwhere(truth)[: truth.sum() // 2].T)] = False  # the model finds half the lesion
    labelmap = sitk.GetImageFromArray(predicted.astype(np.uint8))
    labelmap.CopyInformation(mask)
    probabilities = sitk.GetImageFromArray(np.where(predicted, 0.9, 0.1).astype(np.float32))
    probabilities.CopyInformation(mask)
    variance = sitk.GetImageFromArray(np.full(truth.shape, 0.05, np.float32))
    variance.CopyInformation(mask)
    measures, slices, _ = measure_case(image, mask, prediction=_Prediction(labelmap, probabilities, variance))
    expected = 1.0 - 2.0 * predicted.sum() / (predicted.sum() + truth.sum())
    assert measures["model_disagreement"] == pytest.approx(expected)
    assert measures["model_uncertainty"] == pytest.approx(0.05 / 0.25)
    lesion_slices = set(np.flatnonzero(truth.any(axis=(1, 2))).tolist())
    assert slices and {index for index, _ in slices} <= set(range(truth.shape[0]))
    assert slices[0][0] in lesion_slices
    without_tta, _, note = measure_case(image, mask, prediction=_Prediction(labelmap, probabilities))
    assert without_tta["model_uncertainty"] == pytest.approx(4 * 0.9 * 0.1) and "no TTA" in note


@pytest.mark.slow
def test_the_queue_with_a_trained_bundle(tiny_bundle, renamed, tmp_path):
    import shutil

    root = tmp_path / "three"
    names = sorted(renamed[1])[:3]
    for name in names:
        shutil.copytree(renamed[0] / name, root / name)
        shutil.copytree(renamed[0] / "derivatives" / name, root / "derivatives" / name)
    queue = review_queue(root, bundle=tiny_bundle, tta=True, device="cpu")
    assert len(queue) == 3
    for entry in queue:
        assert 0.0 <= entry.measures["model_disagreement"] <= 1.0
        assert 0.0 <= entry.measures["model_uncertainty"] <= 1.0
        assert 0.0 <= entry.attention <= 1.0
