"""Review marks and difficulty ratings of cases, kept with the revisions; the ``human`` difficulty table.

``review.json`` in a case's revision folder (see :mod:`lesionseg.data.revisions`) holds the history of
marks, newest last::

    {"format": "lesionseg-review", "version": 1, "case_id": "sub-strokecase0001",
     "marks": [{"status": "reviewed", "rating": "hard", "comment": "...", "author": "ab",
                "time": "2025-...Z", "revision": "rev-0002"}]}

``status`` is ``reviewed`` or ``flagged``; ``rating`` is ``easy``, ``medium``, ``hard`` or null. The
latest mark is the case's current state; the latest rating given is its rating. Ratings are the human
difficulty metric of the curriculum (``train --metric human``): :func:`ratings_table` turns them into a
difficulty table with a ``human`` column (0 easy, 1 medium, 2 hard) for every lesion slice of each rated
case of a prepared dataset.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lesionseg.curriculum import HUMAN_RATINGS
from lesionseg.errors import DatasetError, ParameterError
from lesionseg.io import write_json_atomic
from lesionseg.data.locations import revisions_root
from lesionseg.io.locking import folder_lock

if TYPE_CHECKING:
    from lesionseg.difficulty import DifficultyTable
    from lesionseg.preprocess import PreparedDataset

REVIEW_NAME = "review.json"
REVIEW_FORMAT = "lesionseg-review"
REVIEW_VERSION = 1
STATUSES = ("reviewed", "flagged")


@dataclass(frozen=True)
class ReviewMark:
    """One review of a case: its status, rating, comment, author, time (UTC) and the revision looked at."""

    status: str
    rating: str | None
    comment: str | None
    author: str | None
    time: str
    revision: str | None


def _path(folder: Path) -> Path:
    return folder / REVIEW_NAME


def read_marks(folder: str | os.PathLike) -> list[ReviewMark]:
    """The marks of the case whose revision folder is ``folder`` (oldest first; empty when never reviewed).

    Raises:
        DatasetError: an unreadable ``review.json``.
    """
    path = _path(Path(folder))
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path} is not a readable review file ({error}).") from error
    if not isinstance(data, dict) or data.get("format") != REVIEW_FORMAT or not isinstance(data.get("marks"), list):
        raise DatasetError(f"{path} is not a LesionSeg review file.")
    try:
        return [ReviewMark(**{name: mark.get(name) for name in ReviewMark.__dataclass_fields__})
                for mark in data["marks"]]
    except (TypeError, AttributeError) as error:
        raise DatasetError(f"{path} holds a malformed review mark ({error}).") from error


def check_rating(rating: str | None) -> str | None:
    """A rating in lower case, or None; ParameterError unless it is easy, medium or hard."""
    if rating is None:
        return None
    key = str(rating).strip().lower()
    if key not in HUMAN_RATINGS:
        raise ParameterError(f"rating must be one of {', '.join(HUMAN_RATINGS)}, not {rating!r}.")
    return key


def add_mark(folder: str | os.PathLike, case_id: str, status: str, *, rating: str | None = None,
             comment: str | None = None, author: str | None = None, revision: str | None = None) -> ReviewMark:
    """Append a review mark to a case's ``review.json`` (atomically, under the folder's lock).

    Args:
        folder: the case's revision folder.
        case_id: the case.
        status: ``reviewed`` or ``flagged``.
        rating: ``easy``, ``medium``, ``hard`` or None.
        comment, author: free text.
        revision: the revision that was reviewed.

    Raises:
        ParameterError: an unknown status or rating.
    """
    if status not in STATUSES:
        raise ParameterError(f"review status must be one of {', '.join(STATUSES)}, not {status!r}.")
    mark = ReviewMark(status, check_rating(rating), comment, author,
                      datetime.now(timezone.utc).isoformat(timespec="seconds"), revision)
    folder = Path(folder)
    with folder_lock(folder):
        marks = read_marks(folder)
        marks.append(mark)
        write_json_atomic(_path(folder), {"format": REVIEW_FORMAT, "version": REVIEW_VERSION, "case_id": case_id,
                                          "marks": [asdict(m) for m in marks]})
    return mark


def current_state(marks: list[ReviewMark]) -> dict[str, Any]:
    """``{"status": never reviewed|reviewed|flagged, "rating": ..., "revision": ..., "comment": ...}``."""
    if not marks:
        return {"status": "never reviewed", "rating": None, "revision": None, "comment": None}
    last = marks[-1]
    rating = next((m.rating for m in reversed(marks) if m.rating), None)
    return {"status": last.status, "rating": rating, "revision": last.revision, "comment": last.comment}


def case_ratings(dataset: str | os.PathLike | None, case_ids: list[str],
                 revisions_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """The current rating of each rated case among ``case_ids`` (unrated cases are left out)."""
    root = revisions_root(dataset, revisions_dir)
    ratings = {}
    for case_id in case_ids:
        rating = current_state(read_marks(root / case_id))["rating"]
        if rating:
            ratings[case_id] = rating
    return ratings


def ratings_table(prepared: "PreparedDataset", ratings: dict[str, str]) -> "DifficultyTable":
    """A difficulty table with the ``human`` column: one row per lesion slice of each rated case.

    Args:
        prepared: the prepared dataset the curriculum will train on.
        ratings: case id -> easy/medium/hard (e.g. from :func:`case_ratings`).

    Returns:
        The table (``human`` = 0 easy, 1 medium, 2 hard), rows in the prepared dataset's order. Lesion
        slices of unrated cases have no row: training with ``--metric human`` then needs every lesion
        case rated (the table's ``join`` says which slice lacks a row).

    Raises:
        DatasetError: no rated case is in the prepared dataset.
    """
    from lesionseg.curriculum import rating_scores
    from lesionseg.difficulty import DifficultyTable

    case_ids, indices, scores = [], [], []
    for row in prepared.slices:
        rating = ratings.get(row["case_id"])
        if rating is None or not row["has_lesion"]:
            continue
        case_ids.append(row["case_id"])
        indices.append(int(row["slice_index"]))
        scores.append(rating)
    if not case_ids:
        raise DatasetError(f"none of the rated cases ({', '.join(sorted(ratings)) or 'none'}) has a lesion slice in "
                           f"{prepared.root}; rate cases of this dataset first.")
    return DifficultyTable(case_ids, np.asarray(indices), {"human": rating_scores(scores).astype(np.float64)})
