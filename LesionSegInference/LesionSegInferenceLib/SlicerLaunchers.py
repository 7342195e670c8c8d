"""Launchers for the Slicer application: callbacks on the GUI thread, so widgets can be updated from them.

- :class:`ConsoleProcessLauncher` (Slicer 5.12 and later): ``slicer.util.launchConsoleProcess(args,
  useStartupEnvironment, updateEnvironment, cwd, blocking=False, logCallback, completedCallback)``, which
  reads the output (stderr merged into stdout) on a thread and delivers lines through a ``QTimer``.
- :class:`QProcessLauncher` (older Slicer): a ``qt.QProcess`` with merged channels and its signals.

Both start the command through :func:`~LesionSegInferenceLib.ProcessTree.session_leader_command` and
learn the job's process group from its first line, so Cancel kills the whole tree (see
``ProcessTree.py``). ``qt`` and ``slicer`` are imported inside the methods: this file loads without them
(it is compiled, not run, by the tests outside Slicer).
"""

from __future__ import annotations

import inspect
import time
from typing import Mapping, Sequence

from .ProcessTree import IS_WINDOWS, kill_process_tree, session_leader_command, session_marker_group


class _SessionHandle:
    """What both Slicer launchers share: reading the group marker, killing the group, waiting with events."""

    def __init__(self, on_line, on_finished) -> None:
        self.pid = 0
        self.group: int | None = None
        self.finished = False
        self._kill_requested = False
        self._on_line = on_line
        self._on_finished = on_finished

    def line(self, text: str) -> None:
        group = session_marker_group(text) if self.group is None else None
        if group is None:
            self._on_line(text)
            return
        self.group = group
        if self._kill_requested:  # Cancel came before the job said which group it leads
            kill_process_tree(group)

    def done(self, returncode: int) -> None:
        self.finished = True
        self._on_finished(returncode)

    def kill_tree(self) -> None:
        if IS_WINDOWS:
            kill_process_tree(self.pid)
        elif self.group is not None:
            kill_process_tree(self.group)
        else:
            self._kill_requested = True
        self._kill_launched()

    def _kill_launched(self) -> None:
        """Kill the launched process itself (PythonSlicer's launcher is outside the job's group)."""

    def wait(self, timeout: float | None = None) -> bool:
        import slicer

        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished and (deadline is None or time.monotonic() < deadline):
            slicer.app.processEvents()
            time.sleep(0.02)
        return self.finished


class ConsoleProcessHandle(_SessionHandle):
    """A job started by ``slicer.util.launchConsoleProcess(..., blocking=False)``."""

    process = None

    def _kill_launched(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()


class ConsoleProcessLauncher:
    """Slicer 5.12+: ``launchConsoleProcess`` with a log callback and a completion callback."""

    def start(self, args: Sequence[str], on_line, on_finished, *, env: Mapping[str, str] | None = None,
              cwd: str | None = None) -> ConsoleProcessHandle:
        import slicer

        handle = ConsoleProcessHandle(on_line, on_finished)
        handle.process = slicer.util.launchConsoleProcess(
            session_leader_command(args), useStartupEnvironment=False, updateEnvironment=dict(env or {}), cwd=cwd,
            blocking=False, logCallback=handle.line, completedCallback=handle.done)
        handle.pid = handle.process.pid
        return handle


class QProcessHandle(_SessionHandle):
    """A job run by a ``qt.QProcess`` (merged output channels)."""

    process = None
    _pending = ""

    def read(self) -> None:
        self._pending += bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        *lines, self._pending = self._pending.split("\n")
        for text in lines:
            self.line(text.rstrip("\r"))

    def ended(self, exit_code: int, exit_status) -> None:
        import qt

        self.read()
        if self._pending:
            self.line(self._pending)
            self._pending = ""
        self.done(exit_code if exit_status == qt.QProcess.NormalExit else -9)

    def _kill_launched(self) -> None:
        if self.process is not None:
            self.process.kill()


class QProcessLauncher:
    """Slicer before 5.12: a ``QProcess`` whose output and end arrive as Qt signals on the GUI thread."""

    def start(self, args: Sequence[str], on_line, on_finished, *, env: Mapping[str, str] | None = None,
              cwd: str | None = None) -> QProcessHandle:
        import qt

        command = session_leader_command(args)
        handle = QProcessHandle(on_line, on_finished)
        process = qt.QProcess()
        handle.process = process
        environment = qt.QProcessEnvironment.systemEnvironment()
        for key, value in (env or {}).items():
            environment.insert(key, value)
        process.setProcessEnvironment(environment)
        process.setProcessChannelMode(qt.QProcess.MergedChannels)
        if cwd:
            process.setWorkingDirectory(cwd)
        process.connect("readyReadStandardOutput()", handle.read)
        process.connect("finished(int,QProcess::ExitStatus)", handle.ended)
        process.start(command[0], command[1:])
        if not process.waitForStarted(10000):
            raise OSError(f"{command[0]} could not be started: {process.errorString()}")
        handle.pid = int(process.processId())
        return handle


def has_console_process_callbacks() -> bool:
    """Whether this Slicer's ``launchConsoleProcess`` takes ``blocking=False`` with callbacks (5.12+)."""
    import slicer

    launch = getattr(slicer.util, "launchConsoleProcess", None)
    if launch is None:
        return False
    parameters = inspect.signature(launch).parameters
    return {"blocking", "logCallback", "completedCallback"} <= set(parameters)


def default_launcher():
    """The launcher for the Slicer application: ``launchConsoleProcess`` on 5.12+, else ``QProcess``."""
    return ConsoleProcessLauncher() if has_console_process_callbacks() else QProcessLauncher()
