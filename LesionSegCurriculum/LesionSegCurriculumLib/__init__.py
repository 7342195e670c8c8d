"""Logic of the LesionSegCurriculum Slicer module, importable without Qt or the Slicer application."""

from .Logic import CaseRow, CurriculumLogic

__all__ = ["CaseRow", "CurriculumLogic"]
