"""The starter models shipped inside the package: small 2.5D bundles to fine-tune, never downloaded.

Two starters, one per kind of scan, each an ordinary bundle (:mod:`lesionseg.bundle`) made by
``scripts/make_starter.py`` on heavily varied synthetic cohorts (:func:`lesionseg.synth.variety.varied_case_options`):

- ``starter.lsb``: FLAIR-like, one channel ``flair`` (also trained on DWI-, T1- and CT-like contrasts);
- ``ct_starter.lsb``: non-contrast head CT, one channel ``ct`` in the default brain window
  (``make_starter.py --modality ct``).

Each manifest's ``provenance.made_by`` gives the script, the seed, the cohorts and the training settings, and
the log beside the bundle is the script's log. They are trained on synthetic data only: fine-tune them on
your scans (``lesionseg train ... --finetune starter`` picks the one whose channel is the dataset's; the
``cpu`` preset does it by default when one fits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lesionseg.errors import BundleError


@dataclass(frozen=True)
class Starter:
    """One shipped starter: its bundle and log file names (in this package's folder), its name and card."""

    file: str
    log: str
    name: str
    description: str


#: the starters by the channel they were trained on
STARTERS: dict[str, Starter] = {
    "flair": Starter("starter.lsb", "starter.log", "starter",
                     "starter model trained on synthetic data only (FLAIR-like, 2.5D); fine-tune it on your scans"),
    "ct": Starter("ct_starter.lsb", "ct_starter.log", "ct_starter",
                  "CT starter model trained on synthetic data only (non-contrast head CT, brain window, 2.5D); "
                  "fine-tune it on your scans. It finds clear white-matter hypodensities and misses most small or "
                  "cortical ones (a darkened cortex reaches white matter's density): check the cortex yourself"),
}
STARTER_FILE = STARTERS["flair"].file
STARTER_LOG = STARTERS["flair"].log


def starter_bundle_path(modality: str = "flair") -> Path:
    """The shipped starter bundle trained on ``modality`` (``flair`` or ``ct``).

    Raises:
        BundleError: no starter for that modality, or this copy of the package does not hold it (e.g. a
            source tree where the script has not been run).
    """
    if modality not in STARTERS:
        raise BundleError(f"there is no starter model for {modality!r}; the starters are for "
                          f"{', '.join(STARTERS)}.")
    path = Path(__file__).with_name(STARTERS[modality].file)
    if not path.is_file():
        raise BundleError(f"the starter model {path.name} is not part of this installation; make it with "
                          f"'python scripts/make_starter.py --modality {modality}' or train --from-scratch.")
    return path


def available_starters() -> dict[str, Path]:
    """The shipped starters present in this installation, by modality (FLAIR first)."""
    return {modality: Path(__file__).with_name(starter.file) for modality, starter in STARTERS.items()
            if Path(__file__).with_name(starter.file).is_file()}
