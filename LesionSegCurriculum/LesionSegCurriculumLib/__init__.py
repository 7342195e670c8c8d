"""Logic of the LesionSegCurriculum Slicer module, importable without Qt or the Slicer application.

It runs its jobs with the background-run layer of ``LesionSegInferenceLib`` (not a copy of it). Inside
Slicer the two module folders are on the module path (the installed extension puts both Libs in one
folder, and the Curriculum module declares the Inference module as a dependency so that it loads first);
when running from the source tree the sibling ``LesionSegInference/`` folder is added here if needed.
"""

import importlib.util as _importlib_util
import sys as _sys
from pathlib import Path as _Path

if _importlib_util.find_spec("LesionSegInferenceLib") is None:
    _sibling = _Path(__file__).resolve().parents[2] / "LesionSegInference"
    if (_sibling / "LesionSegInferenceLib" / "__init__.py").is_file():
        _sys.path.append(str(_sibling))

from .Difficulty import DifficultyDisplay, group_samples, show_difficulty  # noqa: E402
from .Logic import CaseRow, CurriculumLogic  # noqa: E402
from .Parameters import (  # noqa: E402
    BRAIN_EXTRACTION_LABELS,
    BRAIN_EXTRACTION_METHODS,
    CURRICULA,
    CURRICULUM_LABELS,
    DATA_METRICS,
    DEFAULT_PATCH_SIZE,
    DEVICES,
    LOSSES,
    NETWORKS,
    TRAIN_METRICS,
    VOLUME_NETWORKS,
    DifficultyParameters,
    PrepareParameters,
    TrainParameters,
)
from .Presets import (  # noqa: E402
    DEFAULT_EPOCHS,
    DEFAULT_MINUTES,
    PRESET_LABELS,
    PRESET_MINUTES,
    PRESET_NAMES,
    PRESET_PREPARE,
    preset_minutes,
)
from .Refinement import (  # noqa: E402
    QUEUE_COLUMNS,
    RATINGS,
    REFINE_TOOLS,
    REVIEW_STATES,
    QueueRow,
    RefinementLogic,
    ReviewQueueParameters,
    next_case,
    read_queue,
)
from .TrainingCurves import CHARTS, TrainingCurves, curve_name  # noqa: E402

__all__ = [
    "BRAIN_EXTRACTION_LABELS", "BRAIN_EXTRACTION_METHODS", "CHARTS", "CURRICULA", "CURRICULUM_LABELS", "DATA_METRICS", "DEFAULT_EPOCHS", "DEFAULT_MINUTES", "DEFAULT_PATCH_SIZE",
    "DEVICES", "LOSSES", "NETWORKS", "PRESET_LABELS", "PRESET_MINUTES", "PRESET_NAMES", "PRESET_PREPARE", "TRAIN_METRICS",
    "CaseRow", "CurriculumLogic", "DifficultyDisplay", "DifficultyParameters", "PrepareParameters",
    "QUEUE_COLUMNS", "QueueRow", "RATINGS", "REFINE_TOOLS", "REVIEW_STATES", "RefinementLogic", "ReviewQueueParameters",
    "TrainParameters", "TrainingCurves", "VOLUME_NETWORKS", "curve_name", "group_samples", "next_case", "preset_minutes", "read_queue",
    "show_difficulty",
]
