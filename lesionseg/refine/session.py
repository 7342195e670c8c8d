"""A case opened for refinement: its image, its revisions, and tools applied as new revisions.

This is what the command line (``lesionseg refine``, ``lesionseg revisions``) and the Slicer module call:
:func:`open_case` finds a case in a dataset, :func:`apply_tool` runs a tool on one of its revisions and
stores the result as a new revision with its provenance; :func:`propose_tool` runs it without storing, so
that an annotator sees the change first and accepts or rejects it (the Slicer refinement section).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.data import CT_CHANNELS, Case, discover, validate_case
from lesionseg.errors import DatasetError, ParameterError
from lesionseg.data.revisions import Revision, RevisionStore
from lesionseg.refine.revision_diff import RevisionDiff, diff_revisions
from lesionseg.refine.tools import MASK_ONLY_TOOLS, call_tool


@dataclass(frozen=True)
class Refinement:
    """What applying a tool did.

    Attributes:
        revision: the new revision, or None when the tool changed nothing (no revision is written then).
        source: the revision it started from (None when the case had none).
        difference: the new mask against the source (None without a source).
        details: what the tool reported (e.g. why it left the mask unchanged).
    """

    revision: Revision | None
    source: str | None
    difference: RevisionDiff | None
    details: dict[str, Any]


@dataclass
class CaseSession:
    """A case of a dataset with its revision store.

    Attributes:
        dataset: the dataset folder or manifest it came from.
        case: the case.
        store: its revisions.
        channel: the channel the tools look at (the one its mask was drawn on, unless chosen).
    """

    dataset: Path
    case: Case
    store: RevisionStore
    channel: str

    @property
    def modality(self) -> str:
        """``ct`` for CT channels, ``mri`` otherwise (brain extraction)."""
        return "ct" if self.channel in CT_CHANNELS else "mri"

    def image(self) -> sitk.Image:
        """The channel's image (float32)."""
        return self.case.read_channel(self.channel)

    def brain(self) -> sitk.Image | None:
        """The case's own brain mask when the dataset gives one, else None (the tools extract it)."""
        from lesionseg.io import read_mask

        path = self.case.metadata.get("brain_mask")
        return read_mask(path) if path else None


def find_case(dataset: str | os.PathLike, case_id: str) -> Case:
    """The case ``case_id`` of a dataset, checked.

    Raises:
        DatasetError: no such case (naming a few that exist).
    """
    cases = discover(dataset, validate=False)
    for case in cases:
        if case.case_id == case_id:
            validate_case(case)
            return case
    shown = ", ".join(c.case_id for c in cases[:5]) + (", ..." if len(cases) > 5 else "")
    raise DatasetError(f"{dataset} has no case {case_id!r}; its cases are {shown}.")


def open_case(dataset: str | os.PathLike, case_id: str, *, revisions_dir: str | os.PathLike | None = None,
              channel: str | None = None) -> CaseSession:
    """Open a case for refinement.

    Args:
        dataset: dataset folder or CSV manifest.
        case_id: the case.
        revisions_dir: where revisions are kept when not inside the dataset (read-only datasets).
        channel: the channel to refine on (default: the channel the mask was drawn on, else the first).

    Raises:
        DatasetError: an unknown case or channel.
    """
    case = find_case(dataset, case_id)
    name = channel or case.metadata.get("mask_channel") or next(iter(case.channels))
    case.channel_path(name)  # DatasetError naming the channels when absent
    store = RevisionStore.for_case(case, dataset=dataset, revisions_dir=revisions_dir)
    return CaseSession(Path(dataset), case, store, name)


def run_tool(session: CaseSession, tool: str, mask: sitk.Image, parameters: dict[str, Any],
             inputs: dict[str, Any], details: dict[str, Any]) -> sitk.Image:
    """Run a tool on a case's image and a mask; ``inputs`` holds seeds or the transfer's source.

    Raises:
        ParameterError: an unknown tool.
    """
    brain = session.brain() if tool not in MASK_ONLY_TOOLS else None
    return call_tool(tool, session.image, mask, parameters=parameters, inputs=inputs, brain=brain,
                     modality=session.modality, details=details)


@dataclass
class Proposal:
    """A tool's result before it is stored: what an annotator accepts (a new revision) or rejects.

    Attributes:
        session: the case it was made on.
        tool: the tool's name.
        source: the revision it started from (None when the case had none).
        before: the source mask (None without a source, e.g. a transfer onto a case without a mask).
        after: the tool's result, 0/1 uint8 on the case's grid.
        parameters: the parameters as they will be recorded (with the channel).
        details: what the tool reported.
    """

    session: CaseSession
    tool: str
    source: str | None
    before: sitk.Image | None
    after: sitk.Image
    parameters: dict[str, Any]
    details: dict[str, Any]

    @property
    def changed(self) -> bool:
        """Whether the result differs from the source."""
        if self.before is None:
            return True
        return not np.array_equal(sitk.GetArrayViewFromImage(self.before) != 0,
                                  sitk.GetArrayViewFromImage(self.after) != 0)

    def change_labelmap(self) -> sitk.Image:
        """The proposed change on the case's grid: 1 = voxel added, 2 = voxel removed, 0 = unchanged."""
        after = sitk.GetArrayFromImage(self.after) != 0
        before = sitk.GetArrayFromImage(self.before) != 0 if self.before is not None else np.zeros_like(after)
        change = np.zeros(after.shape, np.uint8)
        change[after & ~before] = CHANGE_ADDED
        change[before & ~after] = CHANGE_REMOVED
        image = sitk.GetImageFromArray(change)
        image.CopyInformation(self.after)
        return image

    def accept(self, *, author: str | None = None, comment: str | None = None) -> Refinement:
        """Store the result as a new revision (nothing is written when it equals the source)."""
        store = self.session.store
        if not self.changed:
            return Refinement(None, self.source, None, self.details)
        revision = store.add(self.after, tool=self.tool, source=self.source, parameters=self.parameters,
                             author=author, comment=comment, details=self.details)
        difference = diff_revisions(store, self.source, revision.id) if self.source is not None else None
        return Refinement(revision, self.source, difference, self.details)


#: values of :meth:`Proposal.change_labelmap`
CHANGE_ADDED = 1
CHANGE_REMOVED = 2


def propose_tool(session: CaseSession, tool: str, *, source: str = "latest", parameters: dict[str, Any] | None = None,
                 inputs: dict[str, Any] | None = None) -> Proposal:
    """Run a tool on a revision of the case's mask without storing anything (see :func:`apply_tool`).

    Raises:
        LesionSegError: bad input (unknown revision, tool or parameter, a mask of another grid, an empty
            mask).
    """
    parameters = dict(parameters or {})
    inputs = dict(inputs or {})
    store = session.store
    ids = store.ids()
    source_id = store.resolve(source) if ids else None
    if source_id is None and tool not in ("transfer", "grow"):
        raise DatasetError(f"case {session.case.case_id} has no lesion mask and no revision to refine.")
    before = store.read(source_id) if source_id is not None else None
    mask = before if tool != "transfer" else None
    strokes = inputs.get("lesion_seeds") is not None
    if mask is not None and not (tool == "grow" and strokes) and not np.any(sitk.GetArrayFromImage(mask)):
        raise ParameterError(f"{source_id} of case {session.case.case_id} is an empty mask; there is nothing to refine "
                             "(start from another revision with --from, or give lesion seeds to grow).")
    details: dict[str, Any] = {}
    result = run_tool(session, tool, mask, parameters, inputs, details)
    recorded = dict(parameters, channel=session.channel)
    if inputs.get("source_description"):
        recorded["source_mask"] = inputs["source_description"]
    return Proposal(session, tool, source_id, before, result, recorded, details)


def apply_tool(session: CaseSession, tool: str, *, source: str = "latest", parameters: dict[str, Any] | None = None,
               inputs: dict[str, Any] | None = None, author: str | None = None,
               comment: str | None = None) -> Refinement:
    """Run a tool on a revision of the case's mask and store the result as a new revision.

    Args:
        session: the opened case.
        tool: one of ``intensity``, ``grow``, ``cleanup``, ``fill-between``, ``transfer``.
        source: the revision to start from (``latest``, ``original`` or an id). For ``transfer`` it is
            the revision the result is recorded as replacing.
        parameters: the tool's keyword parameters (stored as provenance).
        inputs: images that are not parameters: ``lesion_seeds``/``background_seeds`` (grow),
            ``source_image``/``source_mask`` (transfer), and ``source_description`` (a string stored
            with the provenance).
        author, comment: stored with the revision.

    Returns:
        A :class:`Refinement`: the new revision (None when the result equals the source: nothing is
        written), its difference from the source, and the tool's report.

    Raises:
        LesionSegError: bad input (unknown revision, tool or parameter, a mask of another grid, an empty
            mask), with the stored revisions unchanged.
    """
    proposal = propose_tool(session, tool, source=source, parameters=parameters, inputs=inputs)
    return proposal.accept(author=author, comment=comment)
