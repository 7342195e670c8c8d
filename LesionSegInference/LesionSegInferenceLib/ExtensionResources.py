"""Where the extension-wide resources (terminology, requirements) are, in a source tree or an installed one.

The top-level ``Resources/`` folder of the repository sits beside the module folders. The extension's
CMake copies it, with the ``lesionseg`` package, into Slicer's scripted-modules folder, where the module
files themselves are installed. So a resource is either in ``<module folder>/Resources/`` (built or
installed extension) or in ``<module folder>/../Resources/`` (running from the source tree).
"""

from __future__ import annotations

import os
from pathlib import Path

#: Slicer terminology for the "Stroke lesion" segment (SNOMED CT codes, recommended colour).
TERMINOLOGY_FILE_NAME = "LesionSeg.term.json"
#: Third-party packages lesionseg needs inside Slicer, in pip's requirements format.
REQUIREMENTS_FILE_NAME = "requirements.txt"
#: The optional learned brain extractors (the package's ``[brain]`` extra), installed when a panel needs them.
BRAIN_REQUIREMENTS_FILE_NAME = "requirements-brain.txt"


def extension_resource_candidates(module_dir: str | os.PathLike, name: str) -> list[Path]:
    """The places where an extension-wide resource may be, most likely first.

    Args:
        module_dir: the folder holding the module's ``<Module>.py`` file.
        name: the resource's file name, e.g. :data:`TERMINOLOGY_FILE_NAME`.

    Returns:
        ``<module_dir>/Resources/<name>`` (built or installed layout) and
        ``<module_dir>/../Resources/<name>`` (source tree).
    """
    module_dir = Path(module_dir)
    return [module_dir / "Resources" / name, module_dir.parent / "Resources" / name]


def find_extension_resource(module_dir: str | os.PathLike, name: str) -> Path | None:
    """The first existing file among :func:`extension_resource_candidates`, or None when there is none.

    A missing resource is a broken installation, not a user error: the caller logs it and goes on.
    """
    for candidate in extension_resource_candidates(module_dir, name):
        if candidate.is_file():
            return candidate
    return None
