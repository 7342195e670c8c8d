"""Killing a background job with all its descendants (worker processes included), without psutil.

Killing only the process that was launched leaves its workers running (``prepare --workers N`` and
data-loader workers are separate processes). So a job is started as the leader of its own process
group and cancelled by killing the group:

- POSIX: the job runs in a new session, whose id is the process group id of the job and of every worker
  it starts (they inherit it), so ``os.killpg(group, SIGKILL)`` reaches all of them, even those whose
  parent has already died. With ``subprocess`` the launched process itself leads the session
  (``start_new_session=True``) and the group id is its pid. Slicer's ``launchConsoleProcess`` and
  ``QProcess`` cannot ask for a new session, and ``PythonSlicer`` is a launcher that runs the real Python
  as its child; so those launchers run :func:`session_leader_command`: the Python interpreter calls
  ``os.setsid()``, prints its pid as the first output line (:func:`session_marker_group`), then ``exec``s
  the real command in the same process. A descendant that starts its own session escapes (none of
  lesionseg's does).
- Windows: ``taskkill /T /F /PID pid`` kills the process and every process it started (found through
  their parent ids, so it must run while the launched process is alive, which is the case on Cancel).

SIGKILL (and ``taskkill /F``) rather than a polite signal: a cancelled lesionseg job needs no clean-up,
since every file it writes is written atomically and checkpoints let a run resume.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from typing import Any, Sequence

IS_WINDOWS = os.name == "nt"

#: First output line of a job started by :func:`session_leader_command`, followed by the group id.
SESSION_MARKER = "lesionseg process group "
#: Run by ``python -c``: lead a new session, say its id, then become the real command (same pid).
_SESSION_BOOTSTRAP = (
    "import os, sys; os.setsid(); print(%r + str(os.getpid()), flush=True); "
    "os.execv(sys.executable, [sys.executable] + sys.argv[1:])" % SESSION_MARKER
)


def new_group_popen_options() -> dict[str, Any]:
    """``subprocess.Popen`` keyword arguments that make the child lead a new process group (no console window)."""
    if IS_WINDOWS:
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        return {"creationflags": flags}
    return {"start_new_session": True}


def session_leader_command(args: Sequence[str]) -> list[str]:
    """The command that runs ``python ARGS...`` as the leader of a new session (POSIX; unchanged on Windows).

    Args:
        args: a Python command line, ``[python, "-m", "lesionseg", ...]``.

    Returns:
        ``[python, "-c", <setsid, print the group id, exec>, "-m", "lesionseg", ...]``: the same
        interpreter and arguments, leading its own process group, whose id is announced on the first
        output line (read it with :func:`session_marker_group`).
    """
    if IS_WINDOWS:
        return list(args)
    return [args[0], "-c", _SESSION_BOOTSTRAP, *args[1:]]


def session_marker_group(line: str) -> int | None:
    """The process group id announced by :func:`session_leader_command`'s first line, else None."""
    if not line.startswith(SESSION_MARKER):
        return None
    text = line[len(SESSION_MARKER):].strip()
    return int(text) if text.isdigit() else None


def kill_process_tree(pid: int) -> bool:
    """Kill a process launched as a group leader, and all its descendants.

    Args:
        pid: the launched process id (its process group id on POSIX).

    Returns:
        True when a kill was sent, False when nothing was left to kill.
    """
    if IS_WINDOWS:
        result = subprocess.run(["taskkill", "/T", "/F", "/PID", str(pid)], capture_output=True,
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0), check=False)
        return result.returncode == 0
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group id was reused by someone else's processes: leave them alone
        logging.getLogger(__name__).warning("process group %d is not ours; not killed", pid)
        return False
    return True
