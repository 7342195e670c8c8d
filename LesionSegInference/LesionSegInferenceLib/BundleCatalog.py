"""The bundle chooser's data: a folder of model bundles (``.lsb``) listed with each one's model card.

The folder is remembered in a settings object with ``value(key, default)`` and ``setValue(key, value)``:
``qt.QSettings()`` inside Slicer, :class:`MemorySettings` in scripts and tests. A bundle's card is read
from its manifest alone (``lesionseg.bundle.read_manifest``: no weights, no torch), and cached until the
file changes. A bundle that cannot be read is still listed, with the sentence saying why, so the user sees
it and is not left wondering where it went.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

#: The settings key of the remembered bundle folder.
FOLDER_SETTINGS_KEY = "LesionSeg/BundleFolder"
#: The settings key of the last chosen bundle file.
BUNDLE_SETTINGS_KEY = "LesionSeg/BundlePath"
BUNDLE_SUFFIX = ".lsb"
#: Shown with every model card (the issue's wording).
RESEARCH_NOTICE = "Research use only, not for clinical decisions."


class Settings(Protocol):
    """What the catalog needs of ``qt.QSettings``."""

    def value(self, key: str, default: Any = None) -> Any:
        """The stored value, or ``default``."""

    def setValue(self, key: str, value: Any) -> None:  # noqa: N802 - Qt's spelling
        """Store a value."""


class MemorySettings:
    """Settings kept in a dictionary (scripts, tests)."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})

    def value(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def setValue(self, key: str, value: Any) -> None:  # noqa: N802 - Qt's spelling
        self.values[key] = value


@dataclass(frozen=True)
class BundleEntry:
    """One bundle of the list.

    Attributes:
        path: the ``.lsb`` file.
        card: ``lesionseg.bundle.model_card(manifest)`` ({} when unreadable).
        text: ``lesionseg.bundle.format_model_card(manifest)``, or the error sentence.
        error: why the bundle cannot be used ("" when it can).
    """

    path: Path
    card: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the bundle's manifest was read."""
        return not self.error

    @property
    def channels(self) -> list[str]:
        """Input channel names in the bundle's order ([] when unreadable)."""
        return list(self.card.get("channels", []))

    @property
    def reference_channel(self) -> str:
        """The channel whose grid the output is on ("" when unreadable)."""
        return str(self.card.get("reference_channel", ""))

    @property
    def threshold(self) -> float:
        """The bundle's probability threshold (0.5 when unreadable)."""
        return float(self.card.get("threshold", 0.5))

    @property
    def label(self) -> str:
        """The list's line: ``"name (flair, dwi) - model.lsb"``, or the file name and "cannot be read"."""
        if not self.ok:
            return f"{self.path.name} (cannot be read)"
        name = self.card.get("name") or self.path.stem
        return f"{name} ({', '.join(self.channels)}) - {self.path.name}"

    def card_text(self) -> str:
        """The model card for the panel, ending with the research-use notice."""
        return f"{self.text}\n\n{RESEARCH_NOTICE}"


class BundleCatalog:
    """Lists the bundles of a folder and remembers the folder.

    Args:
        settings: where the folder is remembered (default: a fresh :class:`MemorySettings`).
        read_manifest: ``lesionseg.bundle.read_manifest`` when None (tests may pass another).
    """

    def __init__(self, settings: Settings | None = None,
                 read_manifest: Callable[[Path], dict[str, Any]] | None = None) -> None:
        self.settings = settings if settings is not None else MemorySettings()
        self._read_manifest = read_manifest
        self._cache: dict[Path, tuple[tuple[float, int], BundleEntry]] = {}

    # ---- the remembered folder and bundle ---------------------------------------------------------------
    @property
    def folder(self) -> str:
        """The remembered bundle folder ("" before one was chosen)."""
        return str(self.settings.value(FOLDER_SETTINGS_KEY, "") or "")

    @folder.setter
    def folder(self, value: str | os.PathLike) -> None:
        self.settings.setValue(FOLDER_SETTINGS_KEY, str(value or ""))

    @property
    def last_bundle(self) -> str:
        """The bundle chosen last ("" before one was chosen)."""
        return str(self.settings.value(BUNDLE_SETTINGS_KEY, "") or "")

    @last_bundle.setter
    def last_bundle(self, value: str | os.PathLike) -> None:
        self.settings.setValue(BUNDLE_SETTINGS_KEY, str(value or ""))

    # ---- listing ----------------------------------------------------------------------------------------
    @staticmethod
    def bundle_files(folder: str | os.PathLike) -> list[Path]:
        """The ``.lsb`` files in ``folder`` and in its sub-folders one level down (a training run folder
        holds ``model.lsb``), sorted by path; [] when the folder does not exist."""
        root = Path(str(folder or "")).expanduser()
        if not str(folder or "").strip() or not root.is_dir():
            return []
        found = {*root.glob(f"*{BUNDLE_SUFFIX}"), *root.glob(f"*/*{BUNDLE_SUFFIX}")}
        return sorted(path for path in found if path.is_file())

    def entries(self, folder: str | os.PathLike | None = None) -> list[BundleEntry]:
        """The bundles of ``folder`` (default: the remembered one), each with its model card or its error."""
        return [self.entry(path) for path in self.bundle_files(self.folder if folder is None else folder)]

    def entry(self, path: str | os.PathLike) -> BundleEntry:
        """One bundle's model card (cached until the file's modification time or size changes).

        Returns:
            The entry; ``error`` says what is wrong when the file is missing or unreadable.
        """
        path = Path(str(path)).expanduser()
        try:
            status = path.stat()
        except OSError:
            return BundleEntry(path, error=f"The model bundle '{path}' does not exist; choose another one.")
        if not path.is_file():
            return BundleEntry(path, error=f"The model bundle '{path}' is a folder; choose the .lsb file itself.")
        stamp = (status.st_mtime, status.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        entry = self._read(path)
        self._cache[path] = (stamp, entry)
        return entry

    def _read(self, path: Path) -> BundleEntry:
        from lesionseg.bundle import format_model_card, model_card
        from lesionseg.errors import LesionSegError

        read_manifest = self._read_manifest
        if read_manifest is None:
            from lesionseg.bundle import read_manifest
        try:
            manifest = read_manifest(path)
            return BundleEntry(path, model_card(manifest), format_model_card(manifest))
        except LesionSegError as error:
            reason = f"The model bundle '{path.name}' cannot be read: {error}"
            return BundleEntry(path, error=reason if reason.endswith(".") else reason + ".")
