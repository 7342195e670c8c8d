"""lesionseg.io.atomic: files written atomically get the mode the umask gives new files, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.io import write_image, write_json_atomic, write_text_atomic
from lesionseg.io.atomic import atomic_path, current_umask


@pytest.fixture()
def umask():
    """Set the process umask for one test and restore it afterwards; yields a setter."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _plain_file_mode(folder: Path) -> int:
    """The mode an ordinary open() gives a new file here: the independent truth for the atomic writers."""
    plain = folder / "plain.txt"
    with open(plain, "w", encoding="utf-8") as handle:
        handle.write("x")
    mode = _mode(plain)
    plain.unlink()
    return mode


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    expected = _plain_file_mode(tmp_path)
    assert expected == 0o666 & ~mask  # the system's own rule, checked once
    assert current_umask() == mask
    image = sitk.GetImageFromArray(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    written = [
        write_image(image, tmp_path / "image.nii.gz"),
        write_image(image, tmp_path / "image.nrrd"),
    ]
    write_json_atomic(tmp_path / "record.json", {"a": 1})
    write_text_atomic(tmp_path / "table.csv", "a,b\n1,2\n")
    with atomic_path(tmp_path / "arrays.npz") as temporary:
        with temporary.open("wb") as handle:
            np.savez_compressed(handle, x=np.zeros(3))
    written += [tmp_path / "record.json", tmp_path / "table.csv", tmp_path / "arrays.npz"]
    for path in written:
        assert _mode(Path(path)) == expected, (path, oct(_mode(Path(path))))
    assert not list(tmp_path.glob(".tmp-*"))
    # the umask is only read: it is the same after the writes
    assert os.umask(mask) == mask


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")
def test_a_failed_atomic_write_leaves_nothing(tmp_path, umask):
    umask(0o022)
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.json") as temporary:
            temporary.write_text("partial", encoding="utf-8")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
