"""What the headless batch scripts share: their arguments, progress lines, and exit codes.

The scripts run as ``Slicer --no-splash --no-main-window --python-script <script> [--] ARGS`` (Slicer
hands the script its own arguments, sometimes after a ``--`` separator, which is dropped here) or as
``python <script> ARGS``. They run ``lesionseg`` commands to the end in a background process
(:func:`~.Process.run_lesionseg`), print one line per progress step, and exit with the command's code:
0 done, 1 internal error, 2 bad input, 3 some cases failed, 130 cancelled.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence, TextIO

from .ExtensionResources import REQUIREMENTS_FILE_NAME, find_extension_resource
from .InstallLogic import InstallLogic
from .JobProgress import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_OK, EXIT_PARTIAL, JobProgress, JobResult

#: The exit codes a script passes on as they are; anything else becomes 1.
KNOWN_EXIT_CODES = (EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_PARTIAL, EXIT_CANCELLED)


def script_arguments(argv: Sequence[str]) -> list[str]:
    """The script's own arguments: ``argv[1:]`` without a ``--`` separator in front of them."""
    arguments = list(argv[1:])
    if arguments and arguments[0] == "--":
        arguments = arguments[1:]
    return arguments


def exit_code(result: JobResult) -> int:
    """The exit code a script ends with for a job's result (the command's own when it is a known one)."""
    if result.state == "cancelled":
        return EXIT_CANCELLED
    return result.returncode if result.returncode in KNOWN_EXIT_CODES else EXIT_INTERNAL


def format_progress(progress: JobProgress, label: str = "lesionseg") -> str:
    """One line for a progress step, e.g. ``"[ 40%] segment: sub-strokecase0002"`` or
    ``"[ 50%] train: epoch 1/2 of fold 0 (loss 1.33, val_dice 0.0023)"``.

    Args:
        progress: the job's progress.
        label: the stage shown when the job names none (e.g. the command).
    """
    percent = "    " if progress.fraction is None else f"{round(100 * progress.fraction):3d}%"
    text = f"[{percent}] {progress.stage or label}"
    if progress.message:
        text += f": {progress.message}"
    if progress.epoch is not None and progress.message.startswith("epoch "):
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in progress.metrics.items()
                            if name in ("loss", "val_dice"))
        text += f" ({metrics})" if metrics else ""
    return text


class ProgressPrinter:
    """Prints a progress line whenever the line changes (a callback for ``on_progress``).

    Args:
        stream: where to print (default stdout).
        label: the stage shown when the job names none (e.g. the command).
    """

    def __init__(self, stream: TextIO | None = None, label: str = "lesionseg") -> None:
        self.stream = stream or sys.stdout
        self.label = label
        self._last = ""

    def __call__(self, progress: JobProgress) -> None:
        line = format_progress(progress, self.label)
        if line != self._last:
            self._last = line
            print(line, file=self.stream, flush=True)


def log_printer(stream: TextIO | None = None) -> Callable[[str], None]:
    """A callback for ``on_log`` that passes the job's log lines (warnings, the error sentence) on to stderr."""
    target = stream or sys.stderr

    def log(line: str) -> None:
        print(line, file=target, flush=True)

    return log


def report(result: JobResult, stream: TextIO | None = None) -> int:
    """Print how the job ended and return the exit code for it."""
    target = stream or sys.stdout
    if result.state == "succeeded":
        print("done" + (f": {result.summary}" if result.summary else ""), file=target, flush=True)
    else:
        print(f"{result.state}: {result.error}", file=target, flush=True)
    return exit_code(result)


def missing_dependencies(module_folder: str | os.PathLike) -> str:
    """"" when torch and the extension's requirements are installed, else a sentence naming what is missing.

    A script never installs anything (there is nobody to ask); the module's panel does, on first use.
    """
    requirements = find_extension_resource(module_folder, REQUIREMENTS_FILE_NAME)
    if requirements is None:  # a plain lesionseg installation: pip installed its dependencies with it
        return ""
    install = InstallLogic(requirements)
    missing = [status.describe() for status in (install.torch_status(), *install.missing()) if not status.satisfied]
    if not missing:
        return ""
    return (f"lesionseg needs {', '.join(missing)}; open a LesionSeg module in Slicer once to install them "
            "(torch through the PyTorch extension).")
