"""Logic of the LesionSegCurriculum module: finds the cases of a dataset through ``lesionseg.data``.

Nothing here imports Qt or needs the Slicer application. ``lesionseg`` is imported inside the methods
that need it, so that the module still loads (and can say what is missing) when the package or its
dependencies are not installed yet. Preparing the slices, the difficulty metrics and curriculum training
come with later issues; they will call ``lesionseg`` the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

#: ``discover(root, validate=...) -> list[Case]``, the signature of ``lesionseg.data.discover``.
DiscoverFunction = Callable[..., Sequence[Any]]


@dataclass(frozen=True)
class CaseRow:
    """One line of the panel's case list.

    Attributes:
        case_id: the case's id, unique within the dataset.
        patient_id: cases of one patient share it (folds never split a patient).
        channels: channel names in the dataset's order (``flair``, ``dwi``, ...).
        has_mask: whether the case has a lesion mask (training needs one).
    """

    case_id: str
    patient_id: str
    channels: tuple[str, ...]
    has_mask: bool

    @property
    def channels_text(self) -> str:
        """The channel names as the list shows them, e.g. ``"dwi, adc"``."""
        return ", ".join(self.channels)


class CurriculumLogic:
    """Lists a dataset's cases for the panel; later, prepares data and runs curriculum training.

    Args:
        discover: the case finder, ``lesionseg.data.discover`` when None (tests may pass another).
    """

    def __init__(self, discover: DiscoverFunction | None = None) -> None:
        self._discover = discover

    @staticmethod
    def validate_dataset_path(dataset_path: str | os.PathLike) -> tuple[bool, str]:
        """Check that a dataset path was given and exists, before anything reads it.

        Args:
            dataset_path: a dataset folder (ISLES'22, ATLAS v2.0, nnU-Net raw) or a CSV manifest.

        Returns:
            ``(True, "")`` or ``(False, reason)`` with one sentence naming the path.
        """
        text = str(dataset_path or "").strip()
        if not text:
            return False, "Choose a dataset folder (or a CSV manifest)."
        path = Path(text).expanduser()
        if not path.exists():
            return False, f"The dataset folder '{path}' does not exist."
        return True, ""

    def list_cases(self, dataset_path: str | os.PathLike, validate: bool = True) -> list[CaseRow]:
        """The cases of a dataset, as rows for the panel's case list.

        Args:
            dataset_path: a dataset folder or a CSV manifest.
            validate: also check each case's files (readable images, channels and mask on one grid).

        Returns:
            One row per case, sorted by case id (the order ``lesionseg.data.discover`` returns).

        Raises:
            lesionseg.errors.InputFileError: the path is empty or does not exist.
            lesionseg.errors.LesionSegError: the dataset cannot be read; the message names the file or case.
        """
        ok, reason = self.validate_dataset_path(dataset_path)
        if not ok:
            from lesionseg.errors import InputFileError

            raise InputFileError(reason)
        discover = self._discover
        if discover is None:
            from lesionseg.data.discover import discover
        cases = discover(Path(str(dataset_path).strip()).expanduser(), validate=validate)
        return [
            CaseRow(case.case_id, case.patient_id, tuple(case.channels), case.mask is not None)
            for case in cases
        ]

    @staticmethod
    def summarize(rows: Sequence[CaseRow]) -> str:
        """One sentence about a case list, e.g. ``"12 cases of 10 patients, 11 with a lesion mask."``."""
        patients = len({row.patient_id for row in rows})
        masks = sum(row.has_mask for row in rows)
        case_word = "case" if len(rows) == 1 else "cases"
        patient_word = "patient" if patients == 1 else "patients"
        return f"{len(rows)} {case_word} of {patients} {patient_word}, {masks} with a lesion mask."
