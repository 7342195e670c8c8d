"""The review queue: which cases (and slices) of a dataset need an annotator's attention most.

Measured from the image, the current mask and optionally a model bundle, never from anything else a
dataset may carry (a synthetic cohort's truth is not read).

Three measures each compare the mask with what one kind of evidence says it should be, as ``1 - Dice``
between the two (so all three estimate, on one scale, how far the mask is from the truth); each is None
when its evidence cannot judge the mask:

- ``intensity_misfit``: against what intensity-guided refinement makes of the mask when it judges the
  drawn voxels by the image alone (:func:`lesionseg.refine.tools.intensity.refine_intensity` with
  ``keep_fraction=0.5``); None when the lesion is not distinct on the image (intensity cannot place that
  outline). ``outline_offset_mm`` reports the same difference as a distance: the volume between the two
  outlines divided by the outline's area;
- ``model_disagreement``: against the model's labelmap (needs a bundle), over the mask's lesions that the
  model detects (26-connected components it overlaps) and everything the model finds. A lesion the model
  does not detect at all is left out of this comparison: a model's misses are mostly faint lesions, and
  counting them would put good masks of faint lesions first. Their share of the mask's volume is reported
  as ``model_unseen``; the image and shape measures still judge them. None when the model detects none of
  the mask's lesions (its findings elsewhere then say nothing about the mask's outlines);
- ``shape_irregularity``: against the mask without its stray components (under a tenth of the largest
  one's volume) and with its enclosed holes (3D or within a slice) filled.

``estimated_dice_loss`` combines them: the mean of the intensity and model measures that are available
(two noisy estimates of the whole error), or the shape measure when it is larger (it sees only holes and
strays, but those surely). Two more measures say a case is hard to judge rather than wrong; when neither
the image nor a model can judge the outline, their mean stands in for the outline measures (a mask that
nothing vouches for is as doubtful as the case is hard):

- ``model_uncertainty``: mean per-voxel variance of test-time-augmented predictions, over the lesion
  (mask or prediction), divided by 0.25, the largest variance of a probability (without TTA: the mean of
  ``4 p (1 - p)`` of the probabilities); needs a bundle;
- ``difficulty``: the mean of ``smallness = 1 / (1 + volume in mL)`` and ``low_contrast = 1 / (1 + F)``,
  F the Fisher ratio of the lesion against the tissue around it: small, faint lesions are easy to miss.

``attention`` is ``(1 - w) * estimated_dice_loss + w * mean(hard-to-judge measures)`` with
``w = HARD_TO_JUDGE_WEIGHT`` (0.1): the worst masks come first, and among equally doubtful masks the ones
that are harder to judge. Cases are ordered never reviewed first (a case whose mask changed since its last
review counts as never reviewed), then flagged, then reviewed; by decreasing attention within each group.
Each entry lists the axial slices (index along the image's third axis) where the measures disagree most.

On 40 synthetic cases per cohort with masks damaged to known degrees (``benchmarks/bench_refine.py
--parts queue --cases 40``), the Spearman correlation between queue position and the masks' true Dice was
+0.70 and +0.88 on two cohorts with a trained bundle, against +0.54 and +0.84 for an earlier weighted mean
of all five measures, whose model term counted the lesions the model missed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.errors import DatasetError, LesionSegError
from lesionseg.progress import CancelFlag, ProgressCallback, ignore_progress
from lesionseg.refine.ratings import current_state, read_marks
from lesionseg.data.revisions import RevisionStore

#: measures that estimate the whole of a mask's error (1 - Dice with what the evidence says), averaged
OUTLINE_MEASURES = ("intensity_misfit", "model_disagreement")
#: measures that say a case is hard to judge, and their share of the attention
HARD_TO_JUDGE = ("model_uncertainty", "difficulty")
HARD_TO_JUDGE_WEIGHT = 0.1
MEASURE_NAMES = (*OUTLINE_MEASURES, "shape_irregularity", "estimated_dice_loss", *HARD_TO_JUDGE, "model_unseen",
                 "outline_offset_mm", "fisher")
#: components under this fraction of the largest one's volume count as stray (shape irregularity)
STRAY_FRACTION = 0.1
GROUP_ORDER = {"never reviewed": 0, "changed since review": 0, "flagged": 1, "reviewed": 2}


class PredictorLike(Protocol):
    """What the queue needs from :class:`lesionseg.infer.Predictor`."""

    def predict(self, images: dict[str, sitk.Image], *, case_id: str = "case") -> Any: ...


@dataclass
class QueueEntry:
    """One case of the review queue.

    Attributes:
        case_id: the case.
        rank: 1 = look at it first.
        attention: the weighted score in [0, 1].
        status: ``never reviewed``, ``changed since review``, ``flagged`` or ``reviewed``.
        rating: the current rating, if any.
        revision: the revision that was measured.
        volume_ml: its lesion volume.
        measures: the measures (None when not available) and the Fisher ratio ``fisher``.
        slices: ``(slice index, score)`` of the slices that need most attention, best first.
        note: why a measure is missing, if one is.
    """

    case_id: str
    rank: int
    attention: float
    status: str
    rating: str | None
    revision: str
    volume_ml: float
    measures: dict[str, float | None]
    slices: list[tuple[int, float]] = field(default_factory=list)
    note: str = ""

    def to_row(self) -> dict[str, Any]:
        """A flat dict for a CSV row."""
        return {"rank": self.rank, "case_id": self.case_id, "attention": round(self.attention, 4),
                "status": self.status, "rating": self.rating or "", "revision": self.revision,
                "volume_ml": round(self.volume_ml, 3),
                **{name: ("" if value is None else round(value, 4)) for name, value in self.measures.items()},
                "slices": " ".join(str(index) for index, _ in self.slices), "note": self.note}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    from lesionseg.metrics import dice

    return float(dice(a, b))


def measure_case(image: sitk.Image, mask: sitk.Image, *, modality: str = "mri", prediction: Any = None,
                 top_slices: int = 5) -> tuple[dict[str, float | None], list[tuple[int, float]], str]:
    """The queue's measures for one case (see the module docstring).

    Args:
        image: the scan the mask was drawn on.
        mask: the current mask (0/1, on the scan's grid).
        modality: ``mri`` or ``ct`` (brain extraction).
        prediction: the predictor's output for this case (``labelmap``, ``probabilities``, optionally
            ``tta_variance``, all on the scan's grid), or None.
        top_slices: how many slices to list.

    Returns:
        ``(measures, slices, note)``.
    """
    from lesionseg.refine._checks import array_spacing, same_grid
    from lesionseg.refine.tools.common import brain_array
    from lesionseg.refine.tools.distributions import ADD_FRACTION
    from lesionseg.refine.tools.intensity import refine_intensity

    same_grid(image, mask, "the mask")
    current = sitk.GetArrayFromImage(mask) != 0
    spacing = array_spacing(image)
    volume_ml = float(np.count_nonzero(current) * np.prod(spacing) / 1000.0)
    measures: dict[str, float | None] = {name: None for name in MEASURE_NAMES}
    slice_score = np.zeros(current.shape[0])
    notes = []
    lesions = _components(current)  # labelled once: the shape and the model measures both need it
    if not current.any():
        measures.update(intensity_misfit=1.0, shape_irregularity=1.0, difficulty=1.0, fisher=0.0)
        notes.append("the mask is empty")
    else:
        brain = brain_array(image, None, modality)
        details: dict = {}
        # the image's own boundary: drawn voxels are judged like the others (no benefit of the doubt)
        refined = sitk.GetArrayFromImage(refine_intensity(image, mask, brain=_as_image(brain, image), modality=modality,
                                                          keep_fraction=ADD_FRACTION, details=details)) != 0
        if details.get("changed"):
            measures["intensity_misfit"] = 1.0 - _dice(current, refined)
            measures["outline_offset_mm"] = _mean_displacement_mm(current, refined, spacing)
        slice_score += (current ^ refined).sum(axis=(1, 2))
        regular = _regular_shape(current, spacing, lesions)
        measures["shape_irregularity"] = 1.0 - _dice(current, regular)
        slice_score += (current ^ regular).sum(axis=(1, 2))
        if not details.get("changed"):
            notes.append(f"intensity: {details.get('reason', 'unchanged')}")
        fisher = float((details.get("model") or {}).get("fisher", 0.0))
        measures["fisher"] = fisher
        measures["difficulty"] = 0.5 * (1.0 / (1.0 + volume_ml)) + 0.5 * (1.0 / (1.0 + fisher))
    if prediction is not None:
        labelmap = sitk.GetArrayFromImage(prediction.labelmap) != 0
        if labelmap.shape != current.shape:
            raise DatasetError("the model's labelmap is not on the grid of the mask; the predictor must return "
                               "results on the input's native grid.")
        detected = _detected_lesions(lesions, labelmap)
        if current.any():
            measures["model_unseen"] = 1.0 - np.count_nonzero(detected) / np.count_nonzero(current)
        if detected.any() or not current.any():
            measures["model_disagreement"] = 1.0 - _dice(detected, labelmap)
        else:
            notes.append("the model detects none of the mask's lesions: the mask is judged without it")
        slice_score += (current ^ labelmap).sum(axis=(1, 2))
        region = current | labelmap
        variance = getattr(prediction, "tta_variance", None)
        if variance is not None:
            values = sitk.GetArrayFromImage(variance)
            per_voxel = np.clip(values / 0.25, 0.0, 1.0)
        else:
            probabilities = sitk.GetArrayFromImage(prediction.probabilities).astype(np.float64)
            per_voxel = 4.0 * probabilities * (1.0 - probabilities)
            notes.append("no TTA variance: uncertainty from the probabilities")
        measures["model_uncertainty"] = float(per_voxel[region].mean()) if region.any() else 0.0
        slice_score += per_voxel.sum(axis=(1, 2))
    measures["estimated_dice_loss"] = estimated_dice_loss(measures)
    order = np.argsort(-slice_score, kind="stable")[:top_slices]
    top = max(float(slice_score.max()), 1e-12)
    slices = [(int(k), round(float(slice_score[k] / top), 3)) for k in order if slice_score[k] > 0]
    return measures, slices, "; ".join(notes)


def surface_area_mm2(mask: np.ndarray, spacing: np.ndarray) -> float:
    """Area (mm²) of the voxel faces between ``mask`` and the rest (the array's border counts as outside)."""
    padded = np.pad(mask, 1)
    area = 0.0
    for axis in range(3):
        faces = np.count_nonzero(np.diff(padded.astype(np.int8), axis=axis))
        area += faces * float(np.prod(np.delete(spacing, axis)))
    return area


def _mean_displacement_mm(mask: np.ndarray, other: np.ndarray, spacing: np.ndarray) -> float:
    """How far, on average, ``other``'s outline lies from ``mask``'s: differing volume / outline area (mm).

    Unlike 1 - Dice it does not grow as a lesion gets smaller: a one-voxel shift of a small lesion's outline
    costs it a large share of its Dice but is the same 1-voxel offset as for a large one.
    """
    area = surface_area_mm2(mask, spacing)
    return float(np.count_nonzero(mask ^ other) * np.prod(spacing) / area) if area else 0.0


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of a 3D mask (SciPy), as the refinement tools count them."""
    return ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))


def _regular_shape(mask: np.ndarray, spacing: np.ndarray, lesions: tuple[np.ndarray, int]) -> np.ndarray:
    """The mask without what makes its outline implausible: its enclosed holes (3D or within a slice) filled,
    and the specks and stray strokes outside the main lesions (components under :data:`STRAY_FRACTION` of
    the largest one's volume) removed. ``lesions`` is :func:`_components` of ``mask``."""
    from lesionseg.refine.morphology import fill_holes

    filled = fill_holes(mask, spacing)
    labels, count = lesions
    if count <= 1:
        return filled
    sizes = np.bincount(labels.ravel())[1:]
    stray = np.isin(labels, 1 + np.flatnonzero(sizes < STRAY_FRACTION * sizes.max()))
    return filled & ~stray


def _detected_lesions(lesions: tuple[np.ndarray, int], labelmap: np.ndarray) -> np.ndarray:
    """The mask's lesions (``lesions``: :func:`_components` of the mask) that the model's labelmap overlaps,
    whole."""
    labels, count = lesions
    if not count:
        return np.zeros(labels.shape, dtype=bool)
    touched = np.unique(labels[labelmap & (labels > 0)])
    return np.isin(labels, touched[touched > 0])


def _as_image(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.CopyInformation(reference)
    return image


def _available(measures: dict[str, float | None], names: tuple[str, ...]) -> list[float]:
    """The values of ``names`` that ``measures`` has (not None)."""
    return [measures[name] for name in names if measures.get(name) is not None]


def outline_judged(measures: dict[str, float | None]) -> bool:
    """Whether the image or a model judged the mask's outline (else ``estimated_dice_loss`` rests on the
    shape and on the hard-to-judge stand-ins only, and should not be shown as an estimate of 1 - Dice)."""
    return bool(_available(measures, OUTLINE_MEASURES))


def estimated_dice_loss(measures: dict[str, float | None]) -> float:
    """How far the mask probably is from the truth, as 1 - Dice in [0, 1] (see the module docstring): the
    mean of the available :data:`OUTLINE_MEASURES`, or ``shape_irregularity`` when that is larger."""
    outline = _available(measures, OUTLINE_MEASURES)
    if not outline:  # nothing can judge the outline: the mask is as doubtful as the case is hard to judge
        outline = _available(measures, HARD_TO_JUDGE)
    shape = measures.get("shape_irregularity") or 0.0
    return float(max(shape, sum(outline) / len(outline) if outline else 0.0))


def attention_score(measures: dict[str, float | None]) -> float:
    """The queue's score in [0, 1]: ``estimated_dice_loss`` with a share :data:`HARD_TO_JUDGE_WEIGHT` for the
    mean of the available :data:`HARD_TO_JUDGE` measures (the whole score is the loss when none is)."""
    loss = estimated_dice_loss(measures)
    hard = _available(measures, HARD_TO_JUDGE)
    if not hard:
        return loss
    return float((1.0 - HARD_TO_JUDGE_WEIGHT) * loss + HARD_TO_JUDGE_WEIGHT * sum(hard) / len(hard))


def review_queue(dataset: str | os.PathLike, *, bundle: str | os.PathLike | None = None,
                 predictor: PredictorLike | None = None, revision: str = "latest",
                 revisions_dir: str | os.PathLike | None = None, channel: str | None = None, tta: bool = True,
                 device: str = "auto", top_slices: int = 5, progress: ProgressCallback = ignore_progress,
                 cancel: CancelFlag | None = None) -> list[QueueEntry]:
    """Rank the cases of a dataset for review (see the module docstring).

    Args:
        dataset: a dataset folder or CSV manifest (any layout ``discover`` reads).
        bundle: a model bundle; the predictor is made from it (``lesionseg.infer.Predictor``).
        predictor: a predictor object instead of ``bundle`` (tests, or the Slicer module's own).
        revision: which revision of each mask to measure (``latest`` by default).
        revisions_dir: the ``--revisions DIR`` folder, for read-only datasets.
        channel: the channel to measure on (default: the one the mask was drawn on).
        tta: ask the predictor for test-time augmentation (uncertainty).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``, for the predictor.
        top_slices: slices listed per case.
        progress, cancel: progress events (``stage: review-queue``) and a cancel flag.

    Returns:
        The entries in review order (rank 1 first). Cases with neither a mask nor a revision are left out.

    Raises:
        LesionSegError: bad input (dataset, bundle, revision name), naming the case.
    """
    from lesionseg.data import CT_CHANNELS, discover, validate_case

    cases = discover(dataset, validate=False)
    if bundle is not None and predictor is None:
        from lesionseg.infer import Predictor

        predictor = Predictor(bundle, device=device, tta=tta)
    entries = []
    progress({"event": "progress", "stage": "review-queue", "done": 0, "total": len(cases)})
    for done, case in enumerate(cases, start=1):
        if cancel:
            cancel.raise_if_cancelled()
        validate_case(case)
        store = RevisionStore.for_case(case, dataset=dataset, revisions_dir=revisions_dir)
        if not store.ids():
            continue
        measured = store.resolve(revision)
        name = channel or case.metadata.get("mask_channel") or next(iter(case.channels))
        image = case.read_channel(name)
        mask = store.read(measured)
        prediction = None
        if predictor is not None:
            prediction = predictor.predict({key: case.read_channel(key) for key in case.channels}, case_id=case.case_id)
        try:
            measures, slices, note = measure_case(image, mask, modality="ct" if name in CT_CHANNELS else "mri",
                                                  prediction=prediction, top_slices=top_slices)
        except LesionSegError as error:
            raise type(error)(f"case {case.case_id}: {error}") from error
        state = current_state(read_marks(store.folder))
        status = state["status"]
        if status == "reviewed" and state["revision"] not in (None, measured):
            status = "changed since review"
        volume = float(np.count_nonzero(sitk.GetArrayFromImage(mask)) * np.prod(mask.GetSpacing()) / 1000.0)
        entries.append(QueueEntry(case.case_id, 0, attention_score(measures), status, state["rating"], measured,
                                  volume, measures, slices, note))
        progress({"event": "progress", "stage": "review-queue", "done": done, "total": len(cases),
                  "message": case.case_id})
    entries.sort(key=lambda e: (GROUP_ORDER.get(e.status, 0), -e.attention, e.case_id))
    for rank, entry in enumerate(entries, start=1):
        entry.rank = rank
    return entries
