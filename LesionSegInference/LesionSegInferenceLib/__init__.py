"""Logic of the LesionSegInference Slicer module, importable without Qt or the Slicer application."""

from .ExtensionResources import (
    REQUIREMENTS_FILE_NAME,
    TERMINOLOGY_FILE_NAME,
    extension_resource_candidates,
    find_extension_resource,
)
from .Logic import InferenceLogic
from .Parameters import DEVICE_CHOICES, DEVICE_LABELS, InferenceParameters

__all__ = [
    "DEVICE_CHOICES",
    "DEVICE_LABELS",
    "REQUIREMENTS_FILE_NAME",
    "TERMINOLOGY_FILE_NAME",
    "InferenceLogic",
    "InferenceParameters",
    "extension_resource_candidates",
    "find_extension_resource",
]
