"""Reading and writing the bundle file: a zip (``.lsb``) with ``manifest.json`` and one state dict per member.

Layout::

    manifest.json          the manifest (:mod:`lesionseg.bundle.manifest`), UTF-8 JSON
    weights/fold_0.pt      member 0's state dict, written by ``torch.save``
    weights/fold_1.pt      ...

Weights are read with ``torch.load(..., weights_only=True)``: PyTorch's restricted unpickler accepts only
tensors, plain containers and numbers, so a weights file carrying a pickled Python object (whose
``__reduce__`` could run any code) is refused before anything in it runs. There is no fallback to a full
unpickler. Reading checks the zip's CRC-32 of every entry it reads, so a damaged file is refused too.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from lesionseg.bundle.manifest import MANIFEST_NAME, check_format, find_identifiers, validate_manifest
from lesionseg.errors import BundleError

# Local-file-header signature: a file that starts with it but has no readable zip directory was cut short.
_ZIP_MAGIC = b"PK\x03\x04"


def _starts_like_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == _ZIP_MAGIC
    except OSError:
        return False


def _open_zip(path: Path) -> zipfile.ZipFile:
    """Open a bundle's zip, turning every failure into one sentence naming the file."""
    if not path.exists():
        raise BundleError(f"the model bundle {path} does not exist.")
    if path.is_dir():
        raise BundleError(f"{path} is a folder, not a model bundle file (.lsb).")
    try:
        return zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile:
        if _starts_like_zip(path):
            raise BundleError(f"{path} is truncated or damaged (its zip directory cannot be read); "
                              "copy the bundle again.") from None
        raise BundleError(f"{path} is not a LesionSeg model bundle (it is not a zip file).") from None
    except OSError as error:
        raise BundleError(f"the model bundle {path} cannot be read ({error.strerror or error}).") from None


def _read_entry(archive: zipfile.ZipFile, name: str, path: Path, what: str) -> bytes:
    """One entry's bytes, CRC-checked; a missing or damaged entry is a :class:`BundleError`."""
    try:
        return archive.read(name)
    except KeyError:
        raise BundleError(f"{path} is missing {what} {name}.") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
        # "Bad CRC-32", a truncated entry, an unsupported compression method
        raise BundleError(f"{path} is truncated or damaged ({what} {name}: {error}); "
                          "copy the bundle again.") from None


def _manifest_from(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    if MANIFEST_NAME not in archive.namelist():
        raise BundleError(f"{path} is not a LesionSeg model bundle (it has no {MANIFEST_NAME}).")
    raw = _read_entry(archive, MANIFEST_NAME, path, "its manifest")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{path} is not a LesionSeg model bundle "
                          f"(its {MANIFEST_NAME} is not JSON: {error}).") from None
    check_format(data, str(path))
    validate_manifest(data, str(path))
    return data


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a bundle's manifest without touching its weights (cheap: for a model card).

    Args:
        path: the ``.lsb`` file.

    Returns:
        The manifest dictionary (see :mod:`lesionseg.bundle.manifest`).

    Raises:
        BundleError: missing file, not a zip, truncated or damaged zip, no manifest, a foreign manifest,
            a newer format version, or a manifest that does not fit the schema.
    """
    path = Path(path)
    with _open_zip(path) as archive:
        return _manifest_from(archive, path)


def _plain_state_dict(value: Any) -> bool:
    import torch

    return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in value.items())


def _load_weights(data: bytes, path: Path, name: str) -> dict[str, Any]:
    import torch

    try:
        with warnings.catch_warnings():  # torch warns about unusual pickle protocols; the refusal below says enough
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        # weights_only refused a global (a class or function): the file carries a pickled Python object.
        raise BundleError(f"{path}: {name} holds something other than plain weights (a pickled Python "
                          "object); it was not loaded.") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError) as error:
        raise BundleError(f"{path}: {name} is not a readable weights file ({error}); "
                          "the bundle is damaged.") from None
    if not _plain_state_dict(state):
        raise BundleError(f"{path}: {name} holds something other than plain weights (expected a dictionary "
                          f"of tensors, found {type(state).__name__}); it was not loaded.")
    return state


def load_state_dicts(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The state dicts of every member, in the manifest's order, on the CPU.

    Args:
        path: the ``.lsb`` file.

    Returns:
        One ``{parameter name: torch.Tensor}`` per member.

    Raises:
        BundleError: as :func:`read_manifest`; a missing or damaged weights file; a weights file holding
            anything but tensors in a dictionary (a pickled object is refused without being run).
    """
    path = Path(path)
    with _open_zip(path) as archive:
        manifest = _manifest_from(archive, path)
        return [_load_weights(_read_entry(archive, member["file"], path, "its weights file"), path, member["file"])
                for member in manifest["members"]]


def _check_state_dicts(state_dicts: Sequence[Any], manifest: Mapping[str, Any], path: Path) -> None:
    if len(state_dicts) != len(manifest["members"]):
        raise BundleError(f"cannot write {path}: the manifest lists {len(manifest['members'])} members but "
                          f"{len(state_dicts)} sets of weights were given.")
    for index, state in enumerate(state_dicts):
        if not _plain_state_dict(state) or not state:
            raise BundleError(f"cannot write {path}: weights {index} are not a non-empty dictionary of tensors "
                              "(pass model.state_dict()).")


def _cpu_copy(state: Mapping[str, Any]) -> "OrderedDict[str, Any]":
    """The tensors copied to the CPU, keeping the module versions PyTorch stores in ``_metadata``."""
    copy = OrderedDict((key, value.detach().to("cpu").clone()) for key, value in state.items())
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        copy._metadata = metadata  # type: ignore[attr-defined]
    return copy


def save_bundle(path: str | os.PathLike, manifest: Mapping[str, Any], state_dicts: Sequence[Mapping[str, Any]],
                case_ids: Iterable[str] = ()) -> Path:
    """Write a bundle atomically: ``manifest.json`` and ``weights/fold_{i}.pt`` for each member.

    Args:
        path: the ``.lsb`` file to write (its folder is created; an existing file is replaced only once
            the new one is complete).
        manifest: from :func:`~lesionseg.bundle.make_manifest`.
        state_dicts: one ``model.state_dict()`` per member, in the order of ``manifest["members"]``
            (tensors are copied to the CPU).
        case_ids: the training cases' ids; the manifest must not contain any of them.

    Returns:
        The path written.

    Raises:
        BundleError: the manifest does not fit the schema, the member count differs from the number of
            state dicts, or the manifest contains something that could identify a patient (see
            :func:`~lesionseg.bundle.manifest.find_identifiers`).
    """
    import torch

    from lesionseg.io import atomic_path

    path = Path(path)
    validate_manifest(manifest, f"the bundle for {path}")
    _check_state_dicts(state_dicts, manifest, path)
    findings = find_identifiers(manifest, case_ids)
    if findings:
        raise BundleError(f"cannot write {path}: the manifest could identify patients ({'; '.join(findings)}); "
                          "keep only counts, metrics and a data hash in it.")
    try:
        text = json.dumps(manifest, indent=2, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BundleError(f"cannot write {path}: the manifest has a value JSON cannot store ({error}).") from None
    with atomic_path(path) as temporary:
        with zipfile.ZipFile(temporary, "w") as archive:
            archive.writestr(MANIFEST_NAME, text + "\n", compress_type=zipfile.ZIP_DEFLATED)
            for member, state in zip(manifest["members"], state_dicts):
                buffer = io.BytesIO()
                torch.save(_cpu_copy(state), buffer)
                # torch.save output is itself a zip of raw tensors: storing it uncompressed costs little
                archive.writestr(member["file"], buffer.getvalue(), compress_type=zipfile.ZIP_STORED)
    return path
