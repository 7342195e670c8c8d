"""The built-in synthetic stroke cohort: a 3D head phantom with lesions, in memory or written to disk.

Public API:

- :func:`make_case` -> :class:`SynthCase`: one case in memory (channels, masks, phantom truth).
- :func:`write_cohort` -> list of :class:`CaseFiles`: a cohort written in the ISLES'22 public layout
  (or a flat ``rawdata``/``derivatives`` layout), with the phantom truth under
  ``derivatives/lesionseg-synth``; :func:`write_case` writes one in-memory case, :func:`case_files`
  gives the paths without writing.
- Label tables ``TISSUE_LABELS`` (brain mask = ``BRAIN_LABELS``) and ``TERRITORY_LABELS``; ``MODALITIES``.
- :func:`varied_case_options`: per-case options for heavily varied cohorts (recipes ``"starter"`` and
  ``"heldout"``), for ``write_cohort(..., case_options_fn=...)``; ``LESION_PATTERNS``.

Modules: :mod:`~lesionseg.synth.phantom` (anatomy), :mod:`~lesionseg.synth.lesions` (territories,
lesions), :mod:`~lesionseg.synth.modalities` (intensities, bias, noise), :mod:`~lesionseg.synth.geometry`
(frames, grids, head pose, misalignment convention), :mod:`~lesionseg.synth.fields` (smooth random
fields), :mod:`~lesionseg.synth.sampling` (phantom on a grid), :mod:`~lesionseg.synth.patterns` (lesion
patterns), :mod:`~lesionseg.synth.perfusion` (core and penumbra, perfusion maps),
:mod:`~lesionseg.synth.distractors` (lesion look-alikes), :mod:`~lesionseg.synth.options`,
:mod:`~lesionseg.synth.records` (the case's data), :mod:`~lesionseg.synth.case`,
:mod:`~lesionseg.synth.writer` and :mod:`~lesionseg.synth.variety` (varied cohorts).
"""

from lesionseg.synth.case import LesionInfo, SynthCase, case_id_for, check_case_options, make_case
from lesionseg.synth.lesions import TERRITORIES, TERRITORY_LABELS
from lesionseg.synth.modalities import MODALITIES
from lesionseg.synth.patterns import PATTERNS as LESION_PATTERNS
from lesionseg.synth.phantom import BRAIN_LABELS, PARENCHYMA_LABELS, TISSUE_LABELS
from lesionseg.synth.variety import RECIPES, varied_case_options
from lesionseg.synth.writer import LAYOUTS, CaseFiles, case_files, write_case, write_cohort

__all__ = [
    "BRAIN_LABELS",
    "CaseFiles",
    "LAYOUTS",
    "LESION_PATTERNS",
    "LesionInfo",
    "MODALITIES",
    "PARENCHYMA_LABELS",
    "RECIPES",
    "SynthCase",
    "TERRITORIES",
    "TERRITORY_LABELS",
    "TISSUE_LABELS",
    "case_files",
    "case_id_for",
    "check_case_options",
    "make_case",
    "varied_case_options",
    "write_case",
    "write_cohort",
]
