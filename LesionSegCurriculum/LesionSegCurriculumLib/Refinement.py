"""Logic of the refinement section of LesionSegCurriculum: review queue, proposed change, accept or reject, rate.

An annotator works through a dataset's cases in the order of the review queue (``lesionseg review-queue``,
run in the background because it runs a model). For a case, a refinement tool is run on the current
revision of its mask *without storing anything* (:func:`lesionseg.refine.propose_tool`); the scan, the
current mask and the proposed change (voxels added in green, removed in magenta) are shown in the scene.
Accept stores the result as a new revision, Reject forgets it; either way the case can be rated and marked
reviewed or flagged, and the next case of the queue comes up.

Nothing here imports Qt. ``lesionseg`` is imported inside the methods; ``lesionseg.mrml`` (which imports
``slicer``) only by the methods that touch the scene, so the queue and proposals work in plain Python.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .Parameters import Check, _blank, _folder

#: the tools offered in the panel: name -> label
REFINE_TOOLS = {
    "intensity": "Intensity-guided boundary",
    "grow": "Grow from seeds (GrowCut)",
    "cleanup": "Clean up (islands, holes)",
    "fill-between": "Fill between slices",
}
#: review marks: name -> label
REVIEW_STATES = {"reviewed": "Reviewed", "flagged": "Flagged"}
#: ratings, as the ``human`` difficulty metric reads them
RATINGS = ("easy", "medium", "hard")
#: names and colours (RGB 0..1) of the two segments of a proposed change
ADDED_SEGMENT = ("Added", (0.1, 0.85, 0.2))
REMOVED_SEGMENT = ("Removed", (0.9, 0.1, 0.75))
#: the queue file the background job writes, in the revisions folder
QUEUE_FILE_NAME = "review_queue.csv"


@dataclass
class ReviewQueueParameters:
    """``lesionseg review-queue DATASET [--bundle B] [--revisions DIR] --out CSV``.

    Attributes:
        dataset: the dataset folder (or CSV manifest).
        bundle: a model bundle for disagreement and uncertainty ("" to rank from the image and mask only).
        revisions_dir: the revisions folder of a read-only dataset ("" for the dataset's derivatives).
        tta: test-time augmentation for the uncertainty measure.
    """

    dataset: str = ""
    bundle: str = ""
    revisions_dir: str = ""
    tta: bool = True

    @property
    def queue_csv(self) -> Path:
        """Where the queue is written: ``<revisions folder>/review_queue.csv``."""
        from lesionseg.data.locations import revisions_root

        return revisions_root(_folder(self.dataset), None if _blank(self.revisions_dir) else _folder(self.revisions_dir)) \
            / QUEUE_FILE_NAME

    def validate(self) -> Check:
        if _blank(self.dataset):
            return False, "Choose the dataset folder whose masks are to be reviewed."
        if not _folder(self.dataset).exists():
            return False, f"The dataset {self.dataset} does not exist."
        if not _blank(self.bundle) and not _folder(self.bundle).is_file():
            return False, f"The model bundle {self.bundle} does not exist."
        return True, ""

    def arguments(self) -> list[str]:
        arguments = [str(_folder(self.dataset)), "--out", str(self.queue_csv)]
        if not _blank(self.bundle):
            arguments += ["--bundle", str(_folder(self.bundle))]
            if not self.tta:
                arguments.append("--no-tta")
        if not _blank(self.revisions_dir):
            arguments += ["--revisions", str(_folder(self.revisions_dir))]
        return arguments


@dataclass(frozen=True)
class QueueRow:
    """One case of the review queue as the panel lists it."""

    rank: int
    case_id: str
    attention: float
    status: str
    rating: str
    revision: str
    volume_ml: float
    slices: tuple[int, ...] = ()
    #: how far the mask probably is from the truth, as 1 - Dice (None in a queue file without it, or when
    #: neither the image nor a model could judge the outline)
    estimated_dice_loss: float | None = None

    @property
    def cells(self) -> tuple[str, ...]:
        """Texts of the queue table's columns (see :data:`QUEUE_COLUMNS`)."""
        loss = "-" if self.estimated_dice_loss is None else f"{self.estimated_dice_loss:.2f}"
        return (str(self.rank), self.case_id, f"{self.attention:.2f}", loss, self.status, self.rating or "-",
                self.revision, f"{self.volume_ml:.2f}")


#: columns of the queue table ("Est. 1-Dice": the queue's estimate of the mask's Dice loss against the truth)
QUEUE_COLUMNS = ("#", "Case", "Attention", "Est. 1-Dice", "Status", "Rating", "Revision", "Lesion mL")


def read_queue(csv_path: str | os.PathLike) -> list[QueueRow]:
    """The queue written by ``lesionseg review-queue --out`` (rank order).

    Raises:
        InputFileError: the file is missing or is not a review queue.
    """
    from lesionseg.errors import InputFileError

    path = Path(csv_path)
    if not path.is_file():
        raise InputFileError(f"{path} does not exist; run the review queue first.")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        needed = {"rank", "case_id", "attention", "status", "revision", "volume_ml"}
        if reader.fieldnames is None:
            return []
        if not needed <= set(reader.fieldnames):
            raise InputFileError(f"{path} is not a review queue (its columns are {', '.join(reader.fieldnames)}).")
        rows = [QueueRow(int(row["rank"]), row["case_id"], float(row["attention"]), row["status"],
                         row.get("rating", ""), row["revision"], float(row["volume_ml"]),
                         tuple(int(v) for v in (row.get("slices") or "").split()),
                         _estimate(row))
                for row in reader]
    return sorted(rows, key=lambda row: row.rank)


def _optional_float(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def _estimate(row: dict[str, str]) -> float | None:
    """A queue row's estimated 1 - Dice, or None when the queue could not judge the outline."""
    from lesionseg.refine.review_queue import OUTLINE_MEASURES, outline_judged

    if not outline_judged({name: _optional_float(row.get(name)) for name in OUTLINE_MEASURES}):
        return None
    return _optional_float(row.get("estimated_dice_loss"))


def next_case(rows: Sequence[QueueRow], current: str | None, done: Sequence[str] = ()) -> str | None:
    """The case after ``current`` in the queue that is not in ``done`` (the first one when ``current`` is None)."""
    ids = [row.case_id for row in rows]
    start = ids.index(current) + 1 if current in ids else 0
    for case_id in ids[start:] + ids[:start]:
        if case_id != current and case_id not in done:
            return case_id
    return None


@dataclass
class ShownProposal:
    """The nodes showing a proposal: the scan, the current mask and the change (added and removed voxels)."""

    proposal: Any
    volume: Any
    current: Any
    change: Any
    added_ml: float
    removed_ml: float


@dataclass
class RefinementLogic:
    """Proposals, acceptance, rejection and review marks for one dataset.

    Attributes:
        dataset: the dataset folder (or CSV manifest).
        revisions_dir: where revisions live when not in the dataset's derivatives (None: there).
        scene: the MRML scene (None: proposals are computed but not shown).
        author: stored with accepted revisions and review marks.
    """

    dataset: str
    revisions_dir: str | None = None
    scene: Any = None
    author: str | None = None
    shown: ShownProposal | None = field(default=None, init=False)
    _volumes: dict[str, Any] = field(default_factory=dict, init=False)

    def open(self, case_id: str):
        """The case opened for refinement (``lesionseg.refine.CaseSession``).

        Raises:
            DatasetError: no such case.
        """
        from lesionseg.refine import open_case

        return open_case(self.dataset, case_id, revisions_dir=self.revisions_dir)

    def propose(self, case_id: str, tool: str, *, source: str = "latest", parameters: dict[str, Any] | None = None,
                inputs: dict[str, Any] | None = None):
        """Run ``tool`` on a revision of the case's mask; nothing is stored (``lesionseg.refine.Proposal``).

        Raises:
            LesionSegError: an unknown case, tool or revision, or an empty mask.
        """
        from lesionseg.errors import ParameterError
        from lesionseg.refine import propose_tool

        if tool not in REFINE_TOOLS:
            raise ParameterError(f"unknown refinement tool {tool!r}; choose among {', '.join(REFINE_TOOLS)}.")
        return propose_tool(self.open(case_id), tool, source=source, parameters=parameters, inputs=inputs)

    def show(self, proposal) -> ShownProposal:
        """Show a proposal: the case's scan, its current mask ("Stroke lesion") and the change, in one node
        with the segments "Added" (green) and "Removed" (magenta). Replaces the previous proposal's nodes."""
        import numpy as np
        import SimpleITK as sitk

        from lesionseg.labels import SegmentLabel
        from lesionseg.mrml import segmentation_node_from_labelmap, volume_node_from_image
        from lesionseg.refine.session import CHANGE_ADDED, CHANGE_REMOVED

        self.clear()
        session = proposal.session
        key = f"{session.case.case_id}:{session.channel}"
        volume = self._volumes.get(key)
        if volume is None or not self.scene.IsNodePresent(volume):  # node IDs are reused after a scene is cleared
            volume = volume_node_from_image(self.scene, session.image(), f"{session.case.case_id} {session.channel}")
            self._volumes[key] = volume
        current = None
        if proposal.before is not None:
            current = segmentation_node_from_labelmap(self.scene, proposal.before, volume,
                                                      name=f"{session.case.case_id} {proposal.source}")
        change_map = proposal.change_labelmap()
        change = None
        for (name, color), value in ((ADDED_SEGMENT, CHANGE_ADDED), (REMOVED_SEGMENT, CHANGE_REMOVED)):
            change = segmentation_node_from_labelmap(self.scene, change_map, volume, node=change,
                                                     label=SegmentLabel(name, value, color),
                                                     name=f"{session.case.case_id} proposed change")
        voxel_ml = float(np.prod(change_map.GetSpacing())) / 1000.0
        counts = np.bincount(sitk.GetArrayViewFromImage(change_map).ravel(), minlength=3)
        self.shown = ShownProposal(proposal, volume, current, change, float(counts[CHANGE_ADDED] * voxel_ml),
                                   float(counts[CHANGE_REMOVED] * voxel_ml))
        return self.shown

    def clear(self) -> None:
        """Remove the shown proposal's segmentations (the scan stays loaded)."""
        if self.shown is not None and self.scene is not None:
            for node in (self.shown.current, self.shown.change):
                if node is not None and self.scene.IsNodePresent(node):
                    self.scene.RemoveNode(node)
        self.shown = None

    def forget_scene(self) -> None:
        """Drop every node this logic holds (the scene is being closed): nothing stale is reused afterwards."""
        self.shown = None
        self._volumes.clear()

    def accept(self, proposal=None, *, comment: str | None = None):
        """Store the proposal (default: the shown one) as a new revision (``lesionseg.refine.Refinement``)."""
        from lesionseg.errors import ParameterError

        proposal = proposal if proposal is not None else (self.shown.proposal if self.shown else None)
        if proposal is None:
            raise ParameterError("there is no proposed change to accept; run a tool on a case first.")
        refinement = proposal.accept(author=self.author, comment=comment)
        if self.shown is not None and self.shown.proposal is proposal:
            self.clear()
        return refinement

    def reject(self) -> None:
        """Forget the shown proposal: nothing is stored."""
        self.clear()

    def rate(self, case_id: str, status: str, *, rating: str | None = None, comment: str | None = None):
        """Mark a case ``reviewed`` or ``flagged`` with an optional easy/medium/hard rating, stored with its
        revisions (it feeds the ``human`` difficulty metric). Returns the ``ReviewMark``.

        Raises:
            ParameterError: an unknown status or rating.
        """
        from lesionseg.errors import ParameterError
        from lesionseg.refine import add_mark

        if status not in REVIEW_STATES:
            raise ParameterError(f"a review mark is one of {', '.join(REVIEW_STATES)}, not {status!r}.")
        session = self.open(case_id)
        revision = session.store.resolve("latest") if session.store.ids() else None
        return add_mark(session.store.folder, case_id, status, rating=rating or None, comment=comment or None,
                        author=self.author, revision=revision)


def validate_refinement_dataset(dataset: str) -> Check:
    """Whether ``dataset`` can be refined: a folder or manifest that exists (the reason when not)."""
    if _blank(dataset):
        return False, "Choose the dataset folder whose masks are to be refined."
    if not _folder(dataset).exists():
        return False, f"The dataset {dataset} does not exist."
    return True, ""
