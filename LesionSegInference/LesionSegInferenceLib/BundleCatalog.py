"""The bundle chooser's data: a folder of model bundles (``.lsb``) listed with each one's model card.

The folder is remembered in a settings object with ``value(key, default)`` and ``setValue(key, value)``:
``qt.QSettings()`` inside Slicer, :class:`MemorySettings` in scripts and tests. A bundle's card is read
from its manifest alone (``lesionseg.bundle.read_manifest``: no weights, no torch), and cached until the
file changes. A bundle that cannot be read is still listed, with the sentence saying why, so the user sees
it and is not left wondering where it went.

The starter model shipped inside lesionseg (``lesionseg.starter.starter_bundle_path()``; trained on synthetic
data only, to be fine-tuned) is listed first whatever folder is chosen, when this installation holds it; when
it does not, nothing is listed for it. The other shipped starters (the CT one) follow it, each on its own
line. A starter's card says how it was made (``provenance.made_by``: the script, seed and cohorts), a line
added here for every bundle that records it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

#: The settings key of the remembered bundle folder.
FOLDER_SETTINGS_KEY = "LesionSeg/BundleFolder"
#: The settings key of the last chosen bundle file.
BUNDLE_SETTINGS_KEY = "LesionSeg/BundlePath"
BUNDLE_SUFFIX = ".lsb"
#: Shown with every model card (the issue's wording).
RESEARCH_NOTICE = "Research use only, not for clinical decisions."
#: The starter model's line in the list.
STARTER_LABEL = "Starter model (synthetic data; fine-tune on your scans)"
#: The lines of the other shipped starters (``lesionseg.starter.STARTERS`` but the FLAIR one), by modality.
OTHER_STARTER_LABELS = {"ct": "CT starter model (synthetic data; fine-tune on your CT scans)"}


def shipped_starter_path() -> Path | None:
    """The starter bundle shipped in lesionseg, or None when this installation holds none (or lesionseg is not
    installed yet). ``lesionseg.starter`` imports neither torch nor the bundle code."""
    try:
        from lesionseg import starter
        from lesionseg.errors import LesionSegError
    except ImportError:
        return None
    try:
        return Path(starter.starter_bundle_path())
    except LesionSegError:  # "the starter model ... is not part of this installation"
        return None


def shipped_other_starters() -> dict[str, Path]:
    """The starters shipped in lesionseg besides the FLAIR one (the CT starter), by modality; {} when none."""
    try:
        from lesionseg import starter
    except ImportError:
        return {}
    return {modality: Path(path) for modality, path in starter.available_starters().items()
            if modality in OTHER_STARTER_LABELS}


def made_by_line(manifest: Mapping[str, Any]) -> str:
    """The model card's line on how a bundle was made (``provenance.made_by``), "" when it does not say.

    E.g. ``"Made by scripts/make_starter.py (seed 0, 30 minutes) from synthetic cohorts varied (40 cases),
    hard (20 cases); log lesionseg/starter/starter.log"``.
    """
    made_by = (manifest.get("provenance") or {}).get("made_by")
    if not made_by:
        return ""
    if not isinstance(made_by, Mapping):
        return f"Made by {made_by}"
    details = [f"seed {made_by['seed']}"] if made_by.get("seed") is not None else []
    if made_by.get("minutes") is not None:
        details.append(f"{made_by['minutes']:g} minutes" if isinstance(made_by["minutes"], (int, float))
                       else f"{made_by['minutes']} minutes")
    line = f"Made by {made_by.get('script') or 'a script'}" + (f" ({', '.join(details)})" if details else "")
    cohorts = made_by.get("cohorts")
    if isinstance(cohorts, Mapping) and cohorts:
        named = [f"{name} ({info['cases']} cases)" if isinstance(info, Mapping) and "cases" in info else str(name)
                 for name, info in cohorts.items()]
        line += " from synthetic cohorts " + ", ".join(named)
    elif isinstance(cohorts, (list, tuple)) and cohorts:
        line += " from synthetic cohorts " + ", ".join(map(str, cohorts))
    if made_by.get("log"):
        line += f"; log {made_by['log']}"
    return line


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
        text: ``lesionseg.bundle.format_model_card(manifest)`` with the :func:`made_by_line`, or the error
            sentence.
        error: why the bundle cannot be used ("" when it can).
        starter: the starter model shipped in lesionseg.
        starter_label: the list's line of another shipped starter (the CT one), "" for other bundles.
    """

    path: Path
    card: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    error: str = ""
    starter: bool = False
    starter_label: str = ""

    @property
    def ok(self) -> bool:
        """True when the bundle's manifest was read."""
        return not self.error

    @property
    def labels(self) -> list[str]:
        """The names of the bundle's labels other than background, in label-value order ([] when unreadable)."""
        return list(self.card.get("labels", []))

    @property
    def segment_labels(self) -> list[Any]:
        """The bundle's lesion classes as ``lesionseg.labels.SegmentLabel`` (value, colour and terminology as the
        bundle gives them; e.g. core red and penumbra yellow), [] when unreadable."""
        from lesionseg.bundle import segment_labels_of

        return segment_labels_of(self.card.get("segments", []))

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
        """The list's line: ``"name (flair, dwi) - model.lsb"``, or the file name and "cannot be read";
        :data:`STARTER_LABEL` for the starter."""
        if self.starter or self.starter_label:
            shown = self.starter_label or STARTER_LABEL
            return shown if self.ok else f"{shown} (cannot be read)"
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
        starter_path: where the starter model is, or None when there is none (default:
            :func:`shipped_starter_path`, asked at each listing).
        other_starters: the other shipped starters by modality (default: :func:`shipped_other_starters`, or none
            when ``starter_path`` is given).
    """

    def __init__(self, settings: Settings | None = None,
                 read_manifest: Callable[[Path], dict[str, Any]] | None = None,
                 starter_path: Callable[[], Path | None] | None = None,
                 other_starters: Callable[[], Mapping[str, Path]] | None = None) -> None:
        self.settings = settings if settings is not None else MemorySettings()
        self._read_manifest = read_manifest
        self._starter_path = starter_path if starter_path is not None else shipped_starter_path
        if other_starters is None:
            other_starters = shipped_other_starters if starter_path is None else dict
        self._other_starters = other_starters
        self._cache: dict[tuple[Path, bool], tuple[tuple[float, int], BundleEntry]] = {}

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

    def starter(self) -> Path | None:
        """The starter model's file, None when this installation holds none."""
        path = self._starter_path()
        return Path(path) if path is not None and Path(path).is_file() else None

    def entries(self, folder: str | os.PathLike | None = None) -> list[BundleEntry]:
        """The starter model first (when there is one), then the other shipped starters (the CT one), then the
        bundles of ``folder`` (default: the remembered one), each with its model card or its error."""
        starter = self.starter()
        shipped = [self.entry(starter)] if starter is not None else []
        for modality, path in self._other_starters().items():
            if Path(path).is_file():
                entry = self.entry(path)
                shipped.append(dataclasses.replace(entry, starter_label=OTHER_STARTER_LABELS.get(modality, "")))
        found = [self.entry(path) for path in self.bundle_files(self.folder if folder is None else folder)]
        return shipped + [entry for entry in found if not any(_same_file(entry.path, s.path) for s in shipped)]

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
        starter = self.starter()
        key = (path, starter is not None and _same_file(path, starter))
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        entry = self._read(path, starter=key[1])
        self._cache[key] = (stamp, entry)
        return entry

    def _read(self, path: Path, starter: bool = False) -> BundleEntry:
        from lesionseg.bundle import format_model_card, model_card
        from lesionseg.errors import LesionSegError

        read_manifest = self._read_manifest
        if read_manifest is None:
            from lesionseg.bundle import read_manifest
        try:
            manifest = read_manifest(path)
            card, lines = model_card(manifest), format_model_card(manifest).split("\n")
        except LesionSegError as error:
            reason = f"The model bundle '{path.name}' cannot be read: {error}"
            return BundleEntry(path, error=reason if reason.endswith(".") else reason + ".", starter=starter)
        made_by = made_by_line(manifest)
        if made_by:  # before the closing "Created ..." line
            lines.insert(max(len(lines) - 1, 1), made_by)
        card["made_by"] = (manifest.get("provenance") or {}).get("made_by")
        return BundleEntry(path, card, "\n".join(lines), starter=starter)


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.resolve() == second.resolve()
    except OSError:
        return first == second
