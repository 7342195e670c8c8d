"""Logic of the LesionSegInference Slicer module, importable without Qt or the Slicer application.

The LesionSegCurriculum module imports its background-run layer (``BackgroundJob``, ``JobProgress``,
launchers) and dependency checks (``InstallLogic``) from here.
"""

from .BundleCatalog import (
    BUNDLE_SETTINGS_KEY,
    FOLDER_SETTINGS_KEY,
    RESEARCH_NOTICE,
    STARTER_LABEL,
    BundleCatalog,
    BundleEntry,
    MemorySettings,
    made_by_line,
    shipped_starter_path,
)
from .Devices import DeviceOption, available_device_choices, detect_devices
from .DicomSegExport import DICOM_UIDS_ATTRIBUTE, export_dicom_seg, export_readiness, source_instance_uids
from .ExtensionResources import (
    REQUIREMENTS_FILE_NAME,
    TERMINOLOGY_FILE_NAME,
    extension_resource_candidates,
    find_extension_resource,
)
from .InstallLogic import (
    PROTECTED_PACKAGES,
    InstallLogic,
    RequirementStatus,
    pytorch_extension_installer,
    read_requirements,
    requirement_status,
    slicer_pip_installer,
)
from .JobProgress import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_PARTIAL,
    JobProgress,
    JobResult,
    ProgressParser,
)
from .Logic import InferenceLogic, RunOutcome, channel_volume_names
from .Parameters import (
    DEFAULT_MIN_LESION_MM3,
    DEVICE_CHOICES,
    DEVICE_LABELS,
    SIDE_CHOICES,
    SIDE_LABELS,
    InferenceParameters,
)
from .Process import BackgroundJob, SubprocessLauncher, job_environment, lesionseg_command, python_executable, run_lesionseg
from .Results import LESION_COLUMNS, InferenceResult, display_rows, jump_target
from .Validation import validate_run

__all__ = [
    "DICOM_UIDS_ATTRIBUTE", "export_dicom_seg", "export_readiness", "source_instance_uids",
    "BUNDLE_SETTINGS_KEY", "DEFAULT_MIN_LESION_MM3", "DEVICE_CHOICES", "DEVICE_LABELS", "EXIT_BAD_INPUT",
    "EXIT_CANCELLED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_PARTIAL", "FOLDER_SETTINGS_KEY", "LESION_COLUMNS",
    "PROTECTED_PACKAGES", "REQUIREMENTS_FILE_NAME", "RESEARCH_NOTICE", "SIDE_CHOICES", "SIDE_LABELS", "STARTER_LABEL",
    "TERMINOLOGY_FILE_NAME", "BackgroundJob", "BundleCatalog", "BundleEntry", "DeviceOption", "InferenceLogic",
    "InferenceParameters", "InferenceResult", "InstallLogic", "JobProgress", "JobResult", "MemorySettings",
    "ProgressParser", "RequirementStatus", "RunOutcome", "SubprocessLauncher", "available_device_choices",
    "channel_volume_names", "detect_devices", "display_rows", "extension_resource_candidates",
    "find_extension_resource", "job_environment", "jump_target", "lesionseg_command", "made_by_line",
    "python_executable", "pytorch_extension_installer", "read_requirements", "requirement_status", "run_lesionseg",
    "shipped_starter_path", "slicer_pip_installer", "validate_run",
]
