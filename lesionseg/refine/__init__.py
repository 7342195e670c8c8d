"""Refinement for annotators: tools that improve a lesion mask, kept as revisions; the review queue.

Public API:
    refine_intensity, grow_from_seeds, clean_up, fill_between_slices, carry_mask, TOOLS: the tools,
        (image, mask, parameters) -> new mask, SimpleITK images on one grid (see :mod:`.tools`).
    degrade_mask, DAMAGE_KINDS: damaged copies of a mask, to measure what the tools repair.
    RevisionStore, Revision, resolve_mask, resolve_case_masks, revisions_root: the revision store (data, kept in
        :mod:`lesionseg.data.revisions` beneath preprocessing, which resolves ``--mask-revision``; re-exported here).
    RevisionDiff, diff_revisions: how two revisions differ (mL added and removed, Dice).
    open_case, apply_tool, CaseSession, Refinement: a dataset's case with its revisions; a tool applied as a
        revision. propose_tool, Proposal: a tool's result shown before it is accepted or rejected.
    expected_polarity: ``bright`` / ``dark`` lesions for a channel name (FLAIR, DWI bright; CT, ADC dark).
    add_mark, read_marks, current_state, case_ratings, ratings_table: review marks, ratings, the ``human``
        difficulty table.
    review_queue, measure_case, QueueEntry: which cases need attention first.
    slicer_core_available: whether Slicer's own algorithms (slicer-core) are used.
"""

from lesionseg.data.locations import revisions_root
from lesionseg.data.revisions import LATEST, ORIGINAL, Revision, RevisionStore, resolve_case_masks, resolve_mask
from lesionseg.refine._checks import expected_polarity
from lesionseg.refine.degrade import DAMAGE_KINDS, degrade_mask
from lesionseg.refine.ratings import add_mark, case_ratings, current_state, ratings_table, read_marks
from lesionseg.refine.review_queue import QueueEntry, measure_case, review_queue
from lesionseg.refine.revision_diff import RevisionDiff, diff_revisions
from lesionseg.refine.session import CaseSession, Proposal, Refinement, apply_tool, open_case, propose_tool
from lesionseg.refine.slicer_algorithms import slicer_core_available
from lesionseg.refine.tools import TOOLS, carry_mask, clean_up, fill_between_slices, grow_from_seeds, refine_intensity

__all__ = [
    "DAMAGE_KINDS", "LATEST", "ORIGINAL", "TOOLS", "CaseSession", "Proposal", "QueueEntry", "Refinement", "Revision",
    "RevisionDiff", "RevisionStore", "add_mark", "apply_tool", "carry_mask", "case_ratings", "clean_up", "current_state",
    "degrade_mask", "diff_revisions", "expected_polarity", "fill_between_slices", "grow_from_seeds", "measure_case", "open_case", "propose_tool", "ratings_table",
    "read_marks", "refine_intensity", "resolve_case_masks", "resolve_mask", "review_queue", "revisions_root",
    "slicer_core_available",
]
