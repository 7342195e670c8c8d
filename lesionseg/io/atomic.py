"""Atomic writes: a file appears complete under its final name or not at all.

A writer produces the file under a temporary name in the same folder and renames it into place with
:func:`os.replace`, which is atomic on POSIX and Windows when both names are on one file system. A crash
or a kill leaves at most a stray ``.tmp-*`` file, never a half-written output under the real name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


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

    The parent folder is created when missing.

    Example:
        >>> with atomic_path(out / "case.nii.gz") as tmp:
        ...     sitk.WriteImage(image, str(tmp))
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(final)
    try:
        yield temporary
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
