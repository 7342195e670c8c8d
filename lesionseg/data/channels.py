"""Canonical channel names and the file-name suffixes and labels that map onto them."""

from __future__ import annotations

#: canonical name -> accepted spellings (lower case): BIDS suffixes, nnU-Net channel names, CSV headers.
CHANNEL_ALIASES: dict[str, tuple[str, ...]] = {
    "flair": ("flair",),
    "dwi": ("dwi", "trace", "b1000"),
    "adc": ("adc",),
    "t1w": ("t1w", "t1"),
    "t2w": ("t2w", "t2"),
    "ct": ("ct", "ncct"),
    "cta": ("cta",),
    "tmax": ("tmax",),
    "ttp": ("ttp",),
    "cbf": ("cbf",),
    "cbv": ("cbv",),
    "mtt": ("mtt",),
}
_LOOKUP = {alias: name for name, aliases in CHANNEL_ALIASES.items() for alias in aliases}

#: channels measured in Hounsfield units (normalised by windowing, not z-score)
CT_CHANNELS = frozenset({"ct", "cta"})
#: perfusion maps (CT or MR perfusion: seconds, mL/100 g/min, mL/100 g); they need their own normalisation
PERFUSION_CHANNELS = frozenset({"tmax", "ttp", "cbf", "cbv", "mtt"})


def canonical_channel(label: str) -> str | None:
    """The canonical channel name for a suffix or label (case-insensitive), or None when unknown."""
    return _LOOKUP.get(label.strip().lower())


def channel_or_lower(label: str) -> str:
    """The canonical name when known, else the label in lower case (custom channels are allowed)."""
    return canonical_channel(label) or label.strip().lower()


def all_ct(labels: list[str]) -> bool:
    """Whether there is at least one channel and every one is a CT channel (:data:`CT_CHANNELS`, aliases allowed)."""
    return bool(labels) and all(channel_or_lower(label) in CT_CHANNELS for label in labels)
