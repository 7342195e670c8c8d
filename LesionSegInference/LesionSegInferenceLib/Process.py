"""Running ``lesionseg <command>`` in a background process: progress, Cancel, and a blocking mode for scripts.

A :class:`BackgroundJob` builds the command ``[python, "-m", "lesionseg", command, *arguments, "--progress",
"jsonl"]`` (``python`` is Slicer's ``PythonSlicer`` inside the application, this interpreter elsewhere),
starts it through a :class:`Launcher`, feeds the output lines to a
:class:`~LesionSegInferenceLib.JobProgress.ProgressParser`, and reports through callbacks. The launcher is
injected: :class:`SubprocessLauncher` here (plain ``subprocess``, reader threads; used by tests and
headless scripts), the Slicer ones in ``SlicerLaunchers.py`` (callbacks on the GUI thread). Cancel kills
the whole process tree (see ``ProcessTree.py``).

Callbacks run on whatever thread the launcher reports from (reader threads for
:class:`SubprocessLauncher`, the GUI thread for the Slicer launchers); the job's own state is guarded by
a lock. No Qt, Slicer or lesionseg import happens when this file is loaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

from .JobProgress import JobProgress, JobResult, ProgressParser
from .ProcessTree import kill_process_tree, new_group_popen_options

LineCallback = Callable[[str], None]
FinishedCallback = Callable[[int], None]


class ProcessHandle(Protocol):
    """A started process, as a launcher returns it."""

    pid: int

    def kill_tree(self) -> None:
        """Kill the process and all its descendants."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the process has ended and ``on_finished`` was called; False on timeout."""


class Launcher(Protocol):
    """Starts a command and reports its output lines and its exit code."""

    def start(self, args: Sequence[str], on_line: LineCallback, on_finished: FinishedCallback, *,
              env: Mapping[str, str] | None = None, cwd: str | None = None) -> ProcessHandle:
        """Start ``args``; call ``on_line`` per output line (stdout and stderr) and then ``on_finished`` once.

        Args:
            args: the command line.
            on_line: receives each line of output, without its newline.
            on_finished: receives the exit code after the last line.
            env: variables to add to (or replace in) the environment.
            cwd: working folder (default: the current one).
        """


# ----------------------------------------------------------------------------- the command
def python_executable() -> str:
    """The Python that runs lesionseg jobs: PythonSlicer inside the Slicer application, else this one.

    Raises:
        RuntimeError: running inside Slicer but PythonSlicer cannot be found.
    """
    slicer = sys.modules.get("slicer")
    app = getattr(slicer, "app", None) if slicer is not None else None
    if app is None:  # plain Python, or slicer-core without the application
        return sys.executable
    name = "PythonSlicer.exe" if os.name == "nt" else "PythonSlicer"
    beside = Path(app.applicationDirPath()) / name
    if beside.is_file():
        return str(beside)
    found = shutil.which("PythonSlicer")  # the launcher puts Slicer's bin folder on the PATH
    if found:
        return found
    raise RuntimeError(f"PythonSlicer was not found next to {app.applicationDirPath()} nor on the PATH.")


def lesionseg_command(command: str, arguments: Sequence[str] = (), python: str | None = None) -> list[str]:
    """``[python, "-m", "lesionseg", command, *arguments, "--progress", "jsonl"]``."""
    return [python or python_executable(), "-m", "lesionseg", command, *map(str, arguments), "--progress", "jsonl"]


def job_environment() -> dict[str, str]:
    """Environment additions for a job: unbuffered UTF-8 output, the folder holding ``lesionseg`` on PYTHONPATH.

    Inside Slicer the package is installed in the extension's scripted-modules folder, which the
    application puts on its own ``sys.path`` but which a fresh PythonSlicer does not search.
    """
    environment = {"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    spec = importlib.util.find_spec("lesionseg")  # finds the package without importing it
    if spec is not None and spec.origin:
        package_parent = str(Path(spec.origin).resolve().parent.parent)
        existing = os.environ.get("PYTHONPATH", "")
        environment["PYTHONPATH"] = package_parent + (os.pathsep + existing if existing else "")
    return environment


# ----------------------------------------------------------------------------- plain subprocess launcher
class SubprocessHandle:
    """A ``subprocess.Popen`` leading its own process group, with reader threads for stdout and stderr."""

    def __init__(self, process: subprocess.Popen, on_line: LineCallback, on_finished: FinishedCallback) -> None:
        self.process = process
        self.pid = process.pid
        self._on_line = on_line
        self._on_finished = on_finished
        self._readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                         for stream in (process.stdout, process.stderr)]
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        for thread in (*self._readers, self._watcher):
            thread.start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self._on_line(line.rstrip("\r\n"))
        stream.close()

    def _watch(self) -> None:
        for reader in self._readers:
            reader.join()
        self._on_finished(self.process.wait())

    def kill_tree(self) -> None:
        """Kill the process group (POSIX) or the process tree (Windows)."""
        kill_process_tree(self.pid)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the output is read, the process reaped and ``on_finished`` called."""
        self._watcher.join(timeout)
        return not self._watcher.is_alive()


class SubprocessLauncher:
    """Starts jobs with ``subprocess.Popen`` in a new process group; callbacks come from reader threads."""

    def start(self, args: Sequence[str], on_line: LineCallback, on_finished: FinishedCallback, *,
              env: Mapping[str, str] | None = None, cwd: str | None = None) -> SubprocessHandle:
        environment = {**os.environ, **env} if env else None
        process = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
                                   bufsize=1, env=environment, cwd=cwd, **new_group_popen_options())
        return SubprocessHandle(process, on_line, on_finished)


# ----------------------------------------------------------------------------- one job
class BackgroundJob:
    """One ``lesionseg`` command run in a background process.

    States: "idle" -> "running" -> ("cancelling" ->) "succeeded" | "partial" | "failed" | "cancelled".

    Args:
        command: the lesionseg sub-command, e.g. "prepare", "train", "difficulty".
        arguments: its arguments (without ``--progress``, which is added).
        launcher: how to start the process (default :class:`SubprocessLauncher`).
        python: the interpreter (default :func:`python_executable`).
        on_progress: called with a :class:`JobProgress` after each JSON event.
        on_log: called with each non-JSON output line (log, warnings, the error sentence).
        on_finished: called once with the :class:`JobResult`.
        env: extra environment variables for the job (added to :func:`job_environment`).
        cwd: working folder of the job.
    """

    def __init__(self, command: str, arguments: Sequence[str] = (), *, launcher: Launcher | None = None,
                 python: str | None = None, on_progress: Callable[[JobProgress], None] | None = None,
                 on_log: LineCallback | None = None, on_finished: Callable[[JobResult], None] | None = None,
                 env: Mapping[str, str] | None = None, cwd: str | None = None) -> None:
        self.args = lesionseg_command(command, arguments, python)
        self.launcher = launcher or SubprocessLauncher()
        self.on_progress = on_progress
        self.on_log = on_log
        self.on_finished = on_finished
        self.env = {**job_environment(), **(env or {})}
        self.cwd = cwd
        self.parser = ProgressParser()
        self.state = "idle"
        self.result: JobResult | None = None
        self._handle: ProcessHandle | None = None
        self._cancelled = False
        self._lock = threading.RLock()

    @property
    def progress(self) -> JobProgress:
        """The progress read so far."""
        return self.parser.progress

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the end of the process."""
        return self.state in ("running", "cancelling")

    def start(self, waitForCompletion: bool = False) -> JobResult | None:  # noqa: N803 - Slicer's spelling
        """Launch the job.

        Args:
            waitForCompletion: block until the job ends (for scripts) and return its result.

        Returns:
            The :class:`JobResult` when waiting, else None (it comes through ``on_finished``).

        Raises:
            RuntimeError: the job was already started.
        """
        with self._lock:
            if self.state != "idle":
                raise RuntimeError(f"this job was already started (state {self.state}); make a new one.")
            self.state = "running"
        try:
            self._handle = self.launcher.start(self.args, self._line, self._finished, env=self.env, cwd=self.cwd)
        except OSError as error:  # the interpreter is missing or not executable
            self.parser.error = f"the job could not start: {error}."
            self._finished(127)
            return self.result if waitForCompletion else None
        if self._cancelled:  # cancelled from another thread while the process was being started
            self._handle.kill_tree()
        return self.wait() if waitForCompletion else None

    def wait(self, timeout: float | None = None) -> JobResult | None:
        """Block until the job ends; returns its result (None on timeout or when never started)."""
        if self._handle is not None and not self._handle.wait(timeout):
            return None
        return self.result

    def cancel(self) -> None:
        """Kill the job's whole process tree; the result will be "cancelled"."""
        with self._lock:
            if self.state != "running":
                return
            self.state = "cancelling"
            self._cancelled = True
            handle = self._handle
        if handle is not None:
            handle.kill_tree()

    def _line(self, line: str) -> None:
        with self._lock:
            event = self.parser.feed(line)
            progress = self.parser.progress
        if event is not None:
            if self.on_progress is not None:
                self.on_progress(progress)
        elif self.on_log is not None and line.strip():
            self.on_log(line)

    def _finished(self, returncode: int) -> None:
        with self._lock:
            if self.result is not None:
                return
            self.result = self.parser.result(returncode, cancelled=self._cancelled)
            self.state = self.result.state
        if self.on_finished is not None:
            self.on_finished(self.result)


def run_lesionseg(command: str, arguments: Sequence[str] = (), **options) -> JobResult:
    """Run a lesionseg command to the end in a background process and return its result (for scripts).

    Args:
        command, arguments: as for :class:`BackgroundJob`.
        **options: the other :class:`BackgroundJob` options (launcher, callbacks, env, cwd).
    """
    return BackgroundJob(command, arguments, **options).start(waitForCompletion=True)
