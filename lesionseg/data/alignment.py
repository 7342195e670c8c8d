"""Which channels of a case share the reference channel's grid, and what ``prepare`` will register.

Multimodal MRI is usually stored on several grids: in the public ISLES'22 release each FLAIR has its own
(e.g. 512 x 512 x 28 voxels of 0.45 x 0.45 x 5 mm) and DWI and ADC share another (112 x 112 x 72 of
2 mm), with the lesion mask on the DWI grid. ``prepare`` keeps the reference channel's grid, registers
each channel on another grid onto the reference, leaves a channel already on the reference grid as it
is, registers once the channels that share another grid (the first of them; the others take its
transform), and carries a mask drawn on another channel's grid to the reference through that channel's
registration. :func:`alignment_plan` says which, from the files' headers only (it follows
:func:`lesionseg.preprocess.channel_alignment.register_channels`; ``prepare --register-aligned`` registers
every channel on its own instead).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lesionseg.data.case import Case
from lesionseg.errors import GeometryError
from lesionseg.io import Geometry, geometry_difference, image_extension, read_geometry


@dataclass(frozen=True)
class AlignmentPlan:
    """What ``prepare`` does to bring a case onto its reference channel's grid.

    Attributes:
        reference: the reference channel (its grid is the case's native grid).
        aligned: other channels already on the reference grid (within the tolerance of
            :func:`lesionseg.io.geometry_difference`): not registered.
        registered: channels on other grids, registered onto the reference.
        shared: ``(channel, other)`` pairs: a channel on the grid of ``other`` (a registered channel), which
            takes ``other``'s registration instead of its own (DWI and the ADC computed from it).
        mask_channel: the channel whose grid the lesion mask is on (None without a mask, or for a
            ``.seg.nrrd``, which is resampled by position).
        mask_carried: the mask is not on the reference grid and is carried to it through the registration
            of ``mask_channel`` onto the reference.
    """

    reference: str
    aligned: tuple[str, ...]
    registered: tuple[str, ...]
    mask_channel: str | None = None
    mask_carried: bool = False
    shared: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """A short phrase: ``one grid`` or e.g. ``registers flair onto dwi; mask carried from dwi``."""
        parts = []
        if self.registered:
            parts.append(f"registers {', '.join(self.registered)} onto {self.reference}")
        for name, other in self.shared:
            parts.append(f"{name} takes {other}'s registration (same grid)")
        if self.mask_carried:
            parts.append(f"mask carried from {self.mask_channel} to {self.reference}")
        return "; ".join(parts) if parts else "one grid"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aligned"], data["registered"] = list(self.aligned), list(self.registered)
        data["shared"] = [list(pair) for pair in self.shared]
        return data


def channel_geometries(case: Case, names: list[str] | None = None) -> dict[str, Geometry]:
    """The grids of a case's channels (all of them, or ``names``), read from the headers."""
    return {name: read_geometry(case.channel_path(name)) for name in (names or case.channel_names)}


def mask_grid_channel(case: Case, geometries: dict[str, Geometry], prefer: str | None = None) -> str | None:
    """The channel whose grid the case's mask is on (``prefer`` when the mask is on its grid too).

    Returns None without a mask or for a ``.seg.nrrd`` (resampled by physical position, not by grid).

    Raises:
        InputFileError: an unreadable mask (through :func:`read_geometry`).
        GeometryError: the mask is on no channel's grid.
    """
    if case.mask is None or image_extension(case.mask) == ".seg.nrrd":
        return None
    mask_geometry = read_geometry(case.mask)
    matching = [name for name, geometry in geometries.items() if geometry_difference(geometry, mask_geometry) is None]
    if not matching:
        first = next(iter(geometries))
        raise GeometryError(
            f"case {case.case_id}: the mask {case.mask} is not on the grid of channel '{first}' "
            f"({geometry_difference(geometries[first], mask_geometry)}) nor of any other channel; resample the "
            "mask onto the channel it was drawn on.")
    return prefer if prefer in matching else matching[0]


def alignment_plan(case: Case, channels: list[str] | None = None, reference: str | None = None,
                   geometries: dict[str, Geometry] | None = None) -> AlignmentPlan:
    """What ``prepare`` will register for this case (see the module docstring).

    Args:
        case: the case.
        channels: the channels prepared (default: all of the case's, in its order).
        reference: the reference channel (default: the first of ``channels``).
        geometries: the grids of the case's channels when already read (all channels, so that a mask on
            the grid of a channel that is not prepared is found).

    Raises:
        DatasetError: a channel is missing.
        GeometryError: the mask is on no channel's grid.
        InputFileError: an unreadable header.
    """
    names = list(channels or case.channel_names)
    reference = reference or names[0]
    for name in dict.fromkeys(names + [reference]):
        case.channel_path(name)  # DatasetError naming the channels the case has
    geometries = dict(geometries) if geometries is not None else {}
    for name in case.channel_names:
        if name not in geometries:
            geometries[name] = read_geometry(case.channel_path(name))
    others = [name for name in names if name != reference]
    aligned = tuple(n for n in others if geometry_difference(geometries[reference], geometries[n]) is None)
    registered: list[str] = []
    shared: list[tuple[str, str]] = []
    for name in others:
        if name in aligned:
            continue
        twin = next((r for r in registered if geometry_difference(geometries[r], geometries[name]) is None), None)
        if twin is None:
            registered.append(name)
        else:
            shared.append((name, twin))
    mask_channel = mask_grid_channel(case, geometries, prefer=reference)
    carried = mask_channel is not None and geometry_difference(geometries[mask_channel],
                                                               geometries[reference]) is not None
    return AlignmentPlan(reference, aligned, tuple(registered), mask_channel, carried, tuple(shared))
