"""Preprocessing with an exact inverse: brain extraction, registration, normalisation, axial slicing,
hemisphere flip and resize, each recorded so that a prediction maps back onto the native volume.

Public API:
    PrepareConfig: the parameters.
    prepare_case: one case -> PreparedCase (slices (N, C, S, S), masks, brain masks, record).
    prepare_images, prepare_images_at_sizes: the same from volumes in memory, at one or several slice sizes.
    prepare_dataset: a dataset -> the prepared layout (see :mod:`lesionseg.preprocess.prepared`).
    PreparedDataset: read a prepared dataset; PreparedUnion: one with the cases of others added.
    PrepareRecord, invert: the record and the map back onto the native grid.

The names are imported on first use (PEP 562): the command line's parsers read
``lesionseg.preprocess.config`` without importing SimpleITK, SciPy and the pipeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lesionseg.lazy import lazy_names

# eager, and light: the function ``invert`` shares its module's name, which a lazy import would let the
# module shadow once anything imports ``lesionseg.preprocess.invert``
from lesionseg.preprocess.invert import invert, stack_on_grid

if TYPE_CHECKING:
    from lesionseg.preprocess.config import PrepareConfig
    from lesionseg.preprocess.pipeline import PreparedCase, prepare_case, prepare_images, prepare_images_at_sizes
    from lesionseg.preprocess.prepared import CaseArrays, PreparedDataset
    from lesionseg.preprocess.prepared_union import PreparedUnion
    from lesionseg.preprocess.record import PrepareRecord
    from lesionseg.preprocess.run import prepare_dataset

#: public name -> the submodule that defines it
_HOMES = {"PrepareConfig": "config", "PreparedCase": "pipeline",
          "prepare_case": "pipeline", "prepare_images": "pipeline", "prepare_images_at_sizes": "pipeline",
          "CaseArrays": "prepared",
          "PreparedDataset": "prepared", "PreparedUnion": "prepared_union", "PrepareRecord": "record", "prepare_dataset": "run"}

__all__ = ["CaseArrays", "PrepareConfig", "PrepareRecord", "PreparedCase", "PreparedDataset", "PreparedUnion", "invert",
           "prepare_case", "prepare_dataset", "prepare_images", "prepare_images_at_sizes", "stack_on_grid"]


__getattr__, __dir__ = lazy_names('lesionseg.preprocess', _HOMES, __all__, globals())
