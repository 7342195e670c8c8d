"""One prepared dataset seen with the slices of others added: a run's own cases plus extra training cases.

The trainer reads a prepared dataset through :class:`~lesionseg.preprocess.PreparedDataset` (its slice rows,
each case's arrays and record). :class:`PreparedUnion` answers the same questions for the main dataset and
one or more extra ones (e.g. the synthetic rehearsal cases of :mod:`lesionseg.train.rehearsal`) without
copying a file: an extra dataset's case and patient ids get its prefix, and reading a case goes to the
dataset that holds it. Everything that describes the data as a whole (its folder, ``prepare.json``, the
preparation settings, the channels) stays the main dataset's.
"""

from __future__ import annotations

from typing import Mapping

from lesionseg.errors import DatasetError
from lesionseg.preprocess.prepared import CaseArrays, PreparedDataset
from lesionseg.preprocess.record import PrepareRecord


def _same_input(main: PreparedDataset, extra: PreparedDataset) -> str | None:
    """What differs between two prepared datasets' network inputs (None: nothing that matters)."""
    for what, ours, theirs in (("slice size", main.size, extra.size),
                               ("neighbouring slices", main.context_slices, extra.context_slices),
                               ("input planes", main.array_channels and len(main.array_channels),
                                extra.array_channels and len(extra.array_channels)),
                               ("mirrored differences", main.config.mirror_difference, extra.config.mirror_difference),
                               ("lesion classes", main.config.n_outputs(), extra.config.n_outputs())):
        if ours != theirs:
            return f"its {what} ({theirs}) differ from {main.root}'s ({ours})"
    return None


class PreparedUnion(PreparedDataset):
    """A read-only view of ``main`` with the slices of ``extras`` appended.

    Args:
        main: the run's prepared dataset (its folder, settings and channels describe the union).
        extras: prefix -> prepared dataset; its cases appear as ``prefix + case_id`` (patients likewise).
            Each must hold the same network input as ``main`` (slice size, neighbouring slices, planes,
            mirrored differences, classes).

    Raises:
        DatasetError: an extra dataset whose input differs, an empty prefix, or a prefixed id that clashes
            with one of ``main``'s.
    """

    def __init__(self, main: PreparedDataset, extras: Mapping[str, PreparedDataset]) -> None:
        # No PreparedDataset.__init__: nothing is read again; the attributes are the main dataset's.
        self.root, self.info, self.config = main.root, main.info, main.config
        self.main = main
        self.extras = dict(extras)
        own = set(main.case_ids)
        self.slices = list(main.slices)
        #: prefixed case id -> (the extra dataset holding it, its id there); read once, looked up per slice
        self._extra_cases: dict[str, tuple[PreparedDataset, str]] = {}
        for prefix, extra in self.extras.items():
            if not prefix:
                raise DatasetError("an extra prepared dataset needs a case id prefix.")
            problem = _same_input(main, extra)
            if problem:
                raise DatasetError(f"{extra.root} cannot be trained on with {main.root}: {problem}.")
            clash = own & {prefix + case_id for case_id in extra.case_ids}
            if clash:
                raise DatasetError(f"{main.root} already has a case called {sorted(clash)[0]}; rename it.")
            self._extra_cases.update({prefix + case_id: (extra, case_id) for case_id in extra.case_ids})
            self.slices += [{**row, "case_id": prefix + row["case_id"], "patient_id": prefix + row["patient_id"]}
                            for row in extra.slices]

    def _holder(self, case_id: str) -> tuple[PreparedDataset, str]:
        """The dataset that holds a (possibly prefixed) case, and the case's id there."""
        return self._extra_cases.get(case_id, (self.main, case_id))

    def extra_case_ids(self, prefix: str) -> list[str]:
        """The (prefixed) case ids of the extra dataset under ``prefix``, in its file order."""
        return [prefix + case_id for case_id in self.extras[prefix].case_ids]

    def arrays(self, case_id: str) -> CaseArrays:
        holder, own_id = self._holder(case_id)
        return holder.arrays(own_id)

    def record(self, case_id: str) -> PrepareRecord:
        holder, own_id = self._holder(case_id)
        return holder.record(own_id)
