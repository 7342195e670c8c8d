"""An exclusive lock on a folder, held by one process at a time and released by the system when it dies.

POSIX ``flock`` (or ``msvcrt.locking`` on Windows) on a ``.lock`` file: unlike a lock file created with
``O_EXCL``, a killed process leaves no stale lock behind, which is what a store that must survive a
``kill -9`` in the middle of a write needs.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

from lesionseg.errors import DatasetError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def folder_lock(folder: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold the folder's lock for the duration of the block (waiting up to ``timeout_s`` seconds).

    Raises:
        DatasetError: another process held the lock for longer than ``timeout_s``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                raise DatasetError(f"{folder} is locked by another LesionSeg process (for more than "
                                   f"{timeout_s:g} s); wait for it to finish.")
            time.sleep(0.05)
        try:
            yield
        finally:
            _unlock(handle)
    finally:
        os.close(handle)


def _try_lock(handle: int) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(handle: int) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        os.lseek(handle, 0, os.SEEK_SET)
        msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle, fcntl.LOCK_UN)
