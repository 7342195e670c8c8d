"""Where a dataset's revisions live, and which dataset folder a case comes from."""

from __future__ import annotations

import os
from pathlib import Path

from lesionseg.data.case import Case
from lesionseg.errors import ParameterError

REVISIONS_FOLDER = ("derivatives", "lesionseg", "revisions")


def dataset_folder(dataset: str | os.PathLike) -> Path:
    """The folder of a dataset: the dataset folder itself, or the folder holding a CSV manifest."""
    path = Path(dataset)
    return path.parent if path.suffix.lower() == ".csv" else path


def revisions_root(dataset: str | os.PathLike | None, revisions_dir: str | os.PathLike | None = None) -> Path:
    """Where the revision folders of a dataset's cases live: ``revisions_dir`` when given (for read-only
    datasets), else ``<dataset>/derivatives/lesionseg/revisions``.

    Raises:
        ParameterError: neither is given.
    """
    if revisions_dir is not None:
        return Path(revisions_dir)
    if dataset is None:
        raise ParameterError("give the dataset folder or a revisions folder (--revisions DIR).")
    return dataset_folder(dataset).joinpath(*REVISIONS_FOLDER)


def dataset_root_of(case: Case) -> Path:
    """The dataset folder a case was discovered in, from its files' paths.

    BIDS-like trees: the parent of the first ``sub-*`` folder (and of a ``rawdata`` folder above it);
    nnU-Net: the parent of ``imagesTr``/``imagesTs``; otherwise the folder of the first channel file.
    """
    path = Path(next(iter(case.channels.values()))).resolve()
    parts = path.parts
    for index, part in enumerate(parts[:-1]):
        if part.startswith("sub-"):
            root = Path(*parts[:index])
            return root.parent if root.name == "rawdata" else root
        if part in ("imagesTr", "imagesTs"):
            return Path(*parts[:index])
    return path.parent
