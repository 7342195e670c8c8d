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
from lesionseg.refine.review_queue import attention_score, estimated_dice_loss, outline_judged
from lesionseg.synth import make_case

from conftest import SMALL_PHANTOM

DAMAGES = [None, ("erode", 1, 0.3), ("dilate", 1, 0.3), ("holes", 2, 0.2), ("islands", 2, 0.3), ("dilate", 2, 0.3),
           ("holes", 2, 0.5), ("islands", 2, 0.8), ("erode", 2, 0.3), ("dilate", 3, 0.3)]


def _write(root: Path, name: str, image: sitk.Image, mask: sitk.Image) -> None:
    write_image(image, root / name / "ses-0001" / "anat" / f"{name}_ses-0001_FLAIR.nii.gz")
    write_image(mask, root / "derivatives" / name / "ses-0001" / f"{name}_ses-0001_msk.nii.gz")


#: the true masks of the renamed cases, by their FLAIR's voxels (an oracle model looks them up)
TRUTH_BY_IMAGE: dict[bytes, sitk.Image] = {}


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
        TRUTH_BY_IMAGE[_voxel_key(case.channels["flair"])] = case.lesion_mask
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
    # without a model, only distinct lesions' outlines and the masks' shapes can be judged; the earlier
    # weighted mean of the measures reached 0.39 on these cases, the estimated Dice loss 0.67
    assert rho > 0.5
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


def _voxel_key(image: sitk.Image) -> bytes:
    return sitk.GetArrayFromImage(sitk.Cast(image, sitk.sitkFloat32)).tobytes()


class _OracleModel:
    """A predictor whose labelmap is the true mask (no test-time augmentation: certain everywhere)."""

    def predict(self, images: dict[str, sitk.Image], *, case_id: str = "case") -> "_Prediction":
        truth = TRUTH_BY_IMAGE[_voxel_key(images["flair"])]
        return _Prediction(truth, sitk.Cast(truth, sitk.sitkFloat32))


@pytest.mark.slow
def test_with_a_model_that_knows_the_truth_the_worst_masks_come_first(renamed):
    root, truth_dice = renamed
    queue = review_queue(root, predictor=_OracleModel())
    rho = spearmanr([e.rank for e in queue], [truth_dice[e.case_id] for e in queue]).statistic
    print(f"review queue with an oracle model: Spearman(rank, true Dice) = {rho:.3f}")
    # the model's comparison is close to the true Dice; only masks it cannot see (islands) rest on the shape
    assert rho > 0.8
    ranked = sorted(truth_dice, key=truth_dice.get)
    assert [e.case_id for e in queue[:2]] == ranked[:2]
    # the untouched mask is in the last two; the other one there is a faint lesion with large islands, which
    # neither the image (lesion not distinct), nor the shape (islands too large to be strays), nor the model's
    # comparison (it leaves out lesions it does not detect: model_unseen reports them) can judge
    assert truth_dice[ranked[-1]] == 1.0 and ranked[-1] in {e.case_id for e in queue[-2:]}


@dataclass
class _Prediction:
    labelmap: sitk.Image
    probabilities: sitk.Image
    tta_variance: sitk.Image | None = None


def _on_grid(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image


def test_model_measures_from_a_prediction():
    """A hand-counted case: the mask holds two box lesions A (6 x 10 x 10 voxels) and B (4 x 6 x 6); the model
    finds the upper half of A, nothing of B, and a box C (2 x 5 x 5) the mask does not hold."""
    case = make_case(2, seed=3, **SMALL_PHANTOM)
    image = case.channels["flair"]
    drawn = np.zeros(sitk.GetArrayFromImage(image).shape, dtype=bool)  # (z, y, x) = (28, 128, 112)
    drawn[10:16, 50:60, 40:50] = True  # A: 600 voxels
    drawn[10:14, 80:86, 70:76] = True  # B: 144 voxels, not touching A
    predicted = np.zeros_like(drawn)
    predicted[10:13, 50:60, 40:50] = True  # half of A: 300 voxels
    predicted[20:22, 30:35, 30:35] = True  # C: 50 voxels
    mask = _on_grid(drawn.astype(np.uint8), image)
    labelmap = _on_grid(predicted.astype(np.uint8), image)
    probabilities = _on_grid(np.where(predicted, 0.9, 0.1).astype(np.float32), image)
    variance = _on_grid(np.full(drawn.shape, 0.05, np.float32), image)
    measures, slices, _ = measure_case(image, mask, prediction=_Prediction(labelmap, probabilities, variance))
    # B is not detected: left out of the comparison; A whole (600) against the model's 300 + 50
    assert measures["model_disagreement"] == pytest.approx(1.0 - 2.0 * 300 / (600 + 350))
    assert measures["model_unseen"] == pytest.approx(144 / 744)
    assert measures["model_uncertainty"] == pytest.approx(0.05 / 0.25)
    assert {index for index, _ in slices} <= set(range(drawn.shape[0]))
    assert slices[0][0] in set(range(10, 16)) | {20, 21}
    without_tta, _, note = measure_case(image, mask, prediction=_Prediction(labelmap, probabilities))
    assert without_tta["model_uncertainty"] == pytest.approx(4 * 0.9 * 0.1) and "no TTA" in note
    nothing = _on_grid(np.zeros(drawn.shape, np.uint8), image)
    blind, _, note = measure_case(image, mask, prediction=_Prediction(nothing, nothing))
    assert blind["model_disagreement"] is None and blind["model_unseen"] == 1.0 and "detects none" in note
    # a model that finds only C, away from the mask's lesions, has no opinion on them either
    elsewhere = _on_grid((predicted & ~drawn & (np.arange(drawn.shape[0]) >= 20)[:, None, None]).astype(np.uint8), image)
    aside, _, note = measure_case(image, mask, prediction=_Prediction(elsewhere, sitk.Cast(elsewhere, sitk.sitkFloat32)))
    assert aside["model_disagreement"] is None and aside["model_unseen"] == 1.0 and "detects none" in note
    # the boxes do not follow the image's lesions: the outline is judged by intensity alone, or not at all
    judged = blind["intensity_misfit"]
    if judged is None:
        judged = (blind["model_uncertainty"] + blind["difficulty"]) / 2
    assert blind["estimated_dice_loss"] == pytest.approx(max(blind["shape_irregularity"], judged))


def test_the_estimated_loss_and_the_attention_score():
    # the two outline measures are averaged; the shape measure counts when it is larger
    measures = {"intensity_misfit": 0.2, "model_disagreement": 0.4, "shape_irregularity": 0.1,
                "model_uncertainty": 0.5, "difficulty": 0.3}
    assert estimated_dice_loss(measures) == pytest.approx(0.3)
    assert estimated_dice_loss(dict(measures, shape_irregularity=0.35)) == pytest.approx(0.35)
    assert estimated_dice_loss(dict(measures, model_disagreement=None)) == pytest.approx(0.2)
    assert estimated_dice_loss({"shape_irregularity": 0.05, "intensity_misfit": None}) == pytest.approx(0.05)
    # nothing judges the outline: the hard-to-judge measures stand in for it
    assert estimated_dice_loss({"shape_irregularity": 0.05, "intensity_misfit": None, "model_disagreement": None,
                                "model_uncertainty": 0.2, "difficulty": 0.6}) == pytest.approx(0.4)
    assert attention_score(measures) == pytest.approx(0.9 * 0.3 + 0.1 * 0.4)
    assert attention_score(dict(measures, model_uncertainty=None, difficulty=None)) == pytest.approx(0.3)
    assert outline_judged(measures) and outline_judged(dict(measures, intensity_misfit=None))
    assert not outline_judged(dict(measures, intensity_misfit=None, model_disagreement=None))


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
        if entry.measures["model_disagreement"] is None:  # the tiny model detected none of this mask's lesions
            assert entry.measures["model_unseen"] == 1.0 and "detects none" in entry.note
        else:
            assert 0.0 <= entry.measures["model_disagreement"] <= 1.0
        assert 0.0 <= entry.measures["model_uncertainty"] <= 1.0
        assert 0.0 <= entry.attention <= 1.0
