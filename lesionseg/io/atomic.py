"""Atomic writes: a file appears complete under its final name or not at all.

A writer produces the file under a temporary name in the same folder and renames it into place with
:func:`os.replace`, which is atomic on POSIX and Windows when both names are on one file system. A crash
or a kill leaves at most a stray ``.tmp-*`` file, never a half-written output under the real name.

Permissions: :func:`tempfile.mkstemp` creates its file readable by its owner only (0600), and a rename
keeps the mode, so the file is given the mode an ordinary ``open(path, "w")`` would have given it
(0666 minus the process umask) before it is renamed into place: other users of a shared folder read the
results as they read any other file there.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (e.g. 0o022), read without changing it where the system allows.

    Linux reports it in ``/proc/self/status``; elsewhere it is read by setting and restoring it (the only
    portable way), under a lock so that two threads of this process do not race each other.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _give_default_mode(path: Path) -> None:
    """Set a file's mode to what creating it with ``open()`` would give: 0666 minus the umask."""
    os.chmod(path, 0o666 & ~current_umask())


def _temporary_name(final: Path) -> Path:
    """A unique temporary path beside ``final`` that keeps its full suffix (``.nii.gz``, ``.seg.nrrd``).

    The suffix matters: SimpleITK and NumPy choose the format from the extension.
    """
    suffix = "".join(final.suffixes) if final.suffixes else ""
    handle, name = tempfile.mkstemp(prefix=f".tmp-{final.name[: -len(suffix)] if suffix else final.name}-",
                                    suffix=suffix, dir=final.parent)
    os.close(handle)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is renamed to ``path``, on error removed.

    The parent folder is created when missing; the file ends with the mode the umask gives new files
    (see the module docstring), whatever mode the temporary file had.

    Example:
        >>> with atomic_path(out / "case.nii.gz") as tmp:
        ...     sitk.WriteImage(image, str(tmp))
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(final)
    try:
        yield temporary
        _give_default_mode(temporary)
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int = 2) -> None:
    """Write ``data`` as JSON to ``path`` atomically (NaN and infinity are refused, as JSON has none)."""
    write_text_atomic(path, json.dumps(data, indent=indent, allow_nan=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    """Serialise numpy scalars/arrays and paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")
