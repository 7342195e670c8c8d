"""Small helpers shared by the sub-commands."""

from __future__ import annotations

from typing import Iterable

from lesionseg.errors import ParameterError


def parse_channel_list(text: str, option: str, allowed: Iterable[str] | None = None) -> list[str]:
    """Split ``"flair,dwi"`` into canonical channel names, refusing empties, repeats and unknown names."""
    from lesionseg.data.channels import channel_or_lower

    names = [channel_or_lower(part) for part in text.split(",") if part.strip()]
    if not names:
        raise ParameterError(f"{option} needs at least one channel name, e.g. flair.")
    if len(set(names)) != len(names):
        raise ParameterError(f"{option} names a channel twice: {text!r}.")
    if allowed is not None:
        allowed = tuple(allowed)
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise ParameterError(f"{option}: unknown channel {unknown[0]!r}; choose among {', '.join(allowed)}.")
    return names


def parse_float_pair(text: str, option: str) -> tuple[float, float]:
    """Parse ``"0,80"`` into (0.0, 80.0); ParameterError naming the option otherwise."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise ParameterError(f"{option} must be two numbers like 0,80, not {text!r}.") from None
    return low, high
