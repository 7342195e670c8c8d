"""Preprocessing with an exact inverse: brain extraction, registration, normalisation, axial slicing,
hemisphere flip and resize, each recorded so that a prediction maps back onto the native volume.

Public API:
    PrepareConfig: the parameters.
    prepare_case: one case -> PreparedCase (slices (N, C, S, S), masks, brain masks, record).
    prepare_dataset: a dataset -> the prepared layout (see :mod:`lesionseg.preprocess.prepared`).
    PreparedDataset: read a prepared dataset.
    PrepareRecord, invert: the record and the map back onto the native grid.
"""

from lesionseg.preprocess.config import PrepareConfig
from lesionseg.preprocess.invert import invert, stack_on_grid
from lesionseg.preprocess.pipeline import PreparedCase, prepare_case, prepare_images
from lesionseg.preprocess.prepared import CaseArrays, PreparedDataset
from lesionseg.preprocess.record import PrepareRecord
from lesionseg.preprocess.run import prepare_dataset

__all__ = ["CaseArrays", "PrepareConfig", "PrepareRecord", "PreparedCase", "PreparedDataset", "invert",
           "prepare_case", "prepare_dataset", "prepare_images", "stack_on_grid"]
