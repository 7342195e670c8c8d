"""Python dependencies inside Slicer: what is missing, and installing it after the user agrees.

- The requirements are the pinned ranges of the extension's ``Resources/requirements.txt``.
- What is installed is read with ``importlib.metadata`` (no import of the packages themselves).
- Packages Slicer ships or the PyTorch extension manages (:data:`PROTECTED_PACKAGES`: NumPy, SimpleITK,
  SciPy, Pillow, torch) are never installed by pip: a requirements line naming one is ignored, and the
  pip call gets a constraints file pinning the installed version of each, so that no dependency can
  replace them either.
- torch comes through the PyTorch extension (``PyTorchUtils``), which picks the build for the machine's GPU.
- Installing asks first (an injected ``confirm``) and never happens in testing mode.

The installers are injected: :func:`slicer_pip_installer` and :func:`pytorch_extension_installer` inside
Slicer, fakes in tests. Nothing here imports Qt or Slicer when the file is loaded.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

#: Never installed or replaced by LesionSeg (normalised names).
PROTECTED_PACKAGES = frozenset({"numpy", "simpleitk", "scipy", "pillow", "torch"})
#: The torch versions LesionSeg installs or accepts inside Slicer. Slicer 5.10 ships NumPy 2.0, and torch
#: wheels built against NumPy 1 (2.2 and older) cannot hand arrays to it; 2.3 was the first release built
#: against NumPy 2, and the Windows wheels of 2.4.0 were still NumPy-1 builds (fixed in 2.4.1).
TORCH_REQUIREMENT = ">=2.4.1"
#: The NumPy that Slicer 5.10, the oldest Slicer LesionSeg supports, ships.
SLICER_MIN_NUMPY = "2.0.2"
#: Errors an installer may raise (pip's failure, a missing executable, Slicer's process errors).
INSTALL_ERRORS = (OSError, RuntimeError, ValueError, subprocess.CalledProcessError)

Installer = Callable[[list[str]], None]
TorchInstaller = Callable[[str], None]


def normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_class():
    try:
        from packaging.requirements import Requirement
    except ImportError:  # Slicer's Python always has pip, which carries its own copy
        from pip._vendor.packaging.requirements import Requirement
    return Requirement


def read_requirements(path: str | os.PathLike) -> list[str]:
    """The requirement lines of a pip requirements file (comments and blank lines dropped)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [text for text in (line.split("#", 1)[0].strip() for line in lines) if text]


def installed_version(name: str) -> str | None:
    """The installed version of a distribution, or None (``importlib.metadata``, caches refreshed)."""
    importlib.invalidate_caches()
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class RequirementStatus:
    """One requirement against what is installed.

    Attributes:
        requirement: the requirement as written, e.g. ``"monai>=1.4,<1.7"``.
        name: the distribution name.
        installed: the installed version, or None.
        satisfied: whether the installed version is in the range.
    """

    requirement: str
    name: str
    installed: str | None
    satisfied: bool

    def describe(self) -> str:
        """``"monai (not installed)"`` or ``"monai 1.3.0 (needs >=1.4,<1.7)"``."""
        if self.installed is None:
            return f"{self.name} (not installed)"
        specifier = self.requirement[len(self.name):].strip()
        return f"{self.name} {self.installed}" + ("" if self.satisfied else f" (needs {specifier})")


def requirement_status(requirement: str, version_of: Callable[[str], str | None] = installed_version) -> RequirementStatus:
    """Whether one requirement is met.

    Args:
        requirement: a pip requirement, e.g. ``"scikit-image>=0.21,<0.27"``.
        version_of: name -> installed version or None (default: ``importlib.metadata``).
    """
    parsed = _requirement_class()(requirement)
    version = version_of(parsed.name)
    satisfied = version is not None and parsed.specifier.contains(version, prereleases=True)
    return RequirementStatus(requirement, parsed.name, version, satisfied)


class InstallLogic:
    """Checks and installs lesionseg's dependencies in the running Python (Slicer's).

    Args:
        requirements_path: the extension's ``requirements.txt``.
        installer: receives pip ``install`` arguments (default: none; see :func:`slicer_pip_installer`).
        confirm: receives the question, returns True when the user agrees (default: never agrees).
        testing: Slicer's testing mode: report, never install.
        torch_installer: receives the torch version range (default: none, see
            :func:`pytorch_extension_installer`).
        version_of: name -> installed version or None (default: ``importlib.metadata``).
        work_folder: where the constraints file is written (default: a temporary folder).
    """

    def __init__(self, requirements_path: str | os.PathLike, *, installer: Installer | None = None,
                 confirm: Callable[[str], bool] | None = None, testing: bool = False,
                 torch_installer: TorchInstaller | None = None,
                 version_of: Callable[[str], str | None] = installed_version,
                 work_folder: str | os.PathLike | None = None) -> None:
        self.requirements_path = Path(requirements_path)
        self.installer = installer
        self.confirm = confirm or (lambda question: False)
        self.testing = testing
        self.torch_installer = torch_installer
        self.version_of = version_of
        self.work_folder = work_folder

    def requirements(self) -> list[str]:
        """The requirements LesionSeg may install: the file's lines minus the protected packages."""
        Requirement = _requirement_class()
        return [line for line in read_requirements(self.requirements_path)
                if normalise(Requirement(line).name) not in PROTECTED_PACKAGES]

    def missing(self) -> list[RequirementStatus]:
        """The requirements that are not installed, or not in their range."""
        statuses = [requirement_status(line, self.version_of) for line in self.requirements()]
        return [status for status in statuses if not status.satisfied]

    def torch_status(self) -> RequirementStatus:
        """torch against :data:`TORCH_REQUIREMENT`."""
        return requirement_status(f"torch{TORCH_REQUIREMENT}", self.version_of)

    def constraints(self) -> list[str]:
        """``name==version`` for each protected package that is installed (pip must keep them as they are)."""
        pins = []
        for name in sorted(PROTECTED_PACKAGES):
            version = self.version_of(name)
            if version is not None:
                pins.append(f"{name}=={version}")
        return pins

    def pip_arguments(self, missing: Sequence[RequirementStatus], constraints_file: Path) -> list[str]:
        """The arguments after ``pip install``: the missing requirements and ``-c <constraints>``."""
        return [status.requirement for status in missing] + ["-c", str(constraints_file)]

    # ---- the whole check ---------------------------------------------------------------------------------
    def ensure(self) -> tuple[bool, str]:
        """Make sure everything lesionseg needs is installed, asking before installing.

        Returns:
            ``(True, message)`` when all is there (message says what was installed, or ""), else
            ``(False, reason)``: one sentence saying what is missing and what to do.
        """
        ok, message = self._ensure_torch()
        if not ok:
            return ok, message
        missing = self.missing()
        if not missing:
            return True, message
        listed = ", ".join(status.describe() for status in missing)
        if self.testing:
            return False, f"LesionSeg needs {listed}; nothing is installed in testing mode, install them first."
        if self.installer is None:
            return False, f"LesionSeg needs {listed}; install them with pip into this Python."
        question = (f"LesionSeg needs these Python packages: {listed}. Install them now into Slicer's Python? "
                    "This may take a few minutes; Slicer's own NumPy and SimpleITK are kept.")
        if not self.confirm(question):
            return False, f"LesionSeg needs {listed}; apply again and accept the installation to use it."
        with tempfile.TemporaryDirectory(prefix="lesionseg-install-", dir=self.work_folder) as folder:
            constraints_file = Path(folder) / "constraints.txt"
            constraints_file.write_text("\n".join(self.constraints()) + "\n", encoding="utf-8")
            try:
                self.installer(self.pip_arguments(missing, constraints_file))
            except INSTALL_ERRORS as error:
                return False, f"Installing {listed} failed ({error}); see the Python console for pip's output."
        still = self.missing()
        if still:
            return False, (f"After installing, {', '.join(s.describe() for s in still)} is still missing; "
                           "restart Slicer and try again.")
        return True, f"Installed {', '.join(status.requirement for status in missing)}."

    def _ensure_torch(self) -> tuple[bool, str]:
        status = self.torch_status()
        if status.satisfied:
            return True, ""
        if status.installed is not None:  # never replaced here: the PyTorch extension owns it
            return False, (f"torch {status.installed} is older than LesionSeg needs ({TORCH_REQUIREMENT}); "
                           "update it in the PyTorch Utils module.")
        if self.testing:
            return False, "PyTorch is not installed; nothing is installed in testing mode, install it first."
        if self.torch_installer is None:
            return False, ("PyTorch is not installed; install the PyTorch extension from the Extensions Manager, "
                           "restart Slicer and apply again.")
        try:
            self.torch_installer(TORCH_REQUIREMENT)
        except INSTALL_ERRORS as error:
            return False, f"Installing PyTorch failed ({error}); install it in the PyTorch Utils module."
        if not self.torch_status().satisfied:
            return False, "PyTorch was not installed; install it in the PyTorch Utils module and apply again."
        return True, "Installed PyTorch."


# ----------------------------------------------------------------------------- installers inside Slicer
def slicer_pip_installer() -> Installer:
    """``slicer.util.pip_install`` with a list of arguments (runs pip in Slicer's Python, blocking)."""

    def install(arguments: list[str]) -> None:
        import slicer

        slicer.util.pip_install(list(arguments))

    return install


def pytorch_extension_installer() -> TorchInstaller | None:
    """The PyTorch extension's installer (it asks the user itself), or None when the extension is absent."""
    try:
        import PyTorchUtils
    except ImportError:
        return None

    def install(requirement: str) -> None:
        PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True, torchVersionRequirement=requirement)

    return install


def slicer_install_logic(module_folder: str | os.PathLike, requirements_name: str | None = None) -> InstallLogic | None:
    """The install logic of a module inside the Slicer application, or None without a requirements file.

    Installs with Slicer's pip and the PyTorch extension, asks with an OK/Cancel dialog, and never installs
    in testing mode (``slicer.app.testingEnabled()``). ``requirements_name`` picks another requirements file of
    the extension's resources, e.g. ``BRAIN_REQUIREMENTS_FILE_NAME`` for an optional extra (default: the
    packages every panel needs).
    """
    import slicer

    from .ExtensionResources import REQUIREMENTS_FILE_NAME, find_extension_resource

    requirements = find_extension_resource(module_folder, requirements_name or REQUIREMENTS_FILE_NAME)
    if requirements is None:
        return None
    return InstallLogic(requirements, installer=slicer_pip_installer(),
                        confirm=lambda question: bool(slicer.util.confirmOkCancelDisplay(question)),
                        testing=bool(slicer.app.testingEnabled()), torch_installer=pytorch_extension_installer(),
                        work_folder=slicer.app.temporaryPath)
