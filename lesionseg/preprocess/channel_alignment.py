"""Bringing a case's channels and its lesion mask onto the reference channel's grid, for preparation.

* :func:`register_channels`: each channel's transform from the reference grid. Channels on one grid (same
  size, spacing, origin and direction within :func:`lesionseg.io.geometry_difference`'s tolerance) are
  taken to be aligned, as the scans of one acquisition are (DWI and the ADC computed from it): a channel on
  the reference grid is not registered, and of several channels sharing another grid only the first is
  registered, the others taking its transform (``PrepareConfig.register_aligned`` registers each on its
  own instead).
* :func:`mask_source_channel` and :func:`carry_lesion`: a lesion mask drawn on another channel's grid
  (ISLES'22 masks are on the DWI grid) is carried to the reference through that channel's registration onto
  the reference, as ``lesionseg transfer-mask`` carries a mask (:func:`lesionseg.preprocess.registration.register`,
  then each lesion resampled keeping its volume), and the transfer is recorded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.data import Case
from lesionseg.errors import PreprocessingError
from lesionseg.io import Geometry, geometry_difference, image_extension, read_geometry
from lesionseg.preprocess.config import PrepareConfig


def mask_source_channel(case: Case, reference_name: str, reference: sitk.Image) -> str | None:
    """The channel whose grid the case's mask is on when that is not the reference grid, else None.

    A ``.seg.nrrd`` is resampled by physical position (None). The channel may be one that is not prepared
    (e.g. DWI, whose grid ISLES'22 masks are on, for a FLAIR-only dataset).

    Raises:
        GeometryError: the mask is on no channel's grid.
    """
    from lesionseg.data.alignment import channel_geometries, mask_grid_channel

    if case.mask is None or image_extension(case.mask) == ".seg.nrrd":
        return None
    if geometry_difference(read_geometry(case.mask), reference) is None:
        return None
    known = case.metadata.get("mask_channel")
    if known in case.channels and known != reference_name \
            and geometry_difference(read_geometry(case.mask), read_geometry(case.channels[known])) is None:
        return known
    geometries = channel_geometries(case)
    geometries[reference_name] = Geometry.of(reference)
    return mask_grid_channel(case, geometries, prefer=reference_name)


def _mask_volume_ml(mask: sitk.Image) -> float:
    return float(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) * float(np.prod(mask.GetSpacing())) / 1000.0


def register_channels(images: dict[str, sitk.Image], channels: list[str], reference_name: str, config: PrepareConfig,
                      case_id: str) -> tuple[dict[str, sitk.Transform | None], dict[str, Any]]:
    """Transforms (reference points to channel points; None = identity) and records of every channel
    (see the module docstring for which are registered).

    Raises:
        PreprocessingError: a channel off the reference grid with registration off, or a failed registration.
    """
    from lesionseg.preprocess.registration import register

    reference = images[reference_name]
    transforms: dict[str, sitk.Transform | None] = {reference_name: None}
    records: dict[str, Any] = {reference_name: None}
    registered: list[str] = []  # channels registered so far, whose grids others may share
    for name in channels:
        if name == reference_name:
            continue
        on_grid = geometry_difference(images[name], reference) is None
        twin = next((other for other in registered if geometry_difference(images[other], images[name]) is None), None)
        if on_grid and not config.register_aligned:
            transforms[name] = None
            records[name] = {"stages": [], "skipped": f"already on the grid of {reference_name}"}
        elif not config.registration:
            if not on_grid:
                raise PreprocessingError(f"channel '{name}' is not on the reference grid and registration is off.")
            transforms[name] = None
            records[name] = {"stages": []}
        elif twin is not None and not config.register_aligned:
            transforms[name] = transforms[twin]
            records[name] = {"stages": [], "shared_with": twin,
                             "skipped": f"on the grid of {twin}, whose registration onto {reference_name} it takes"}
        else:
            result = register(reference, images[name], stages=tuple(config.registration), deformable=config.deformable,
                              fixed_mask=None, seed=config.seed, case_id=case_id, channel=name,
                              fixed_channel=reference_name)
            transforms[name] = result.transform
            records[name] = result.record
            registered.append(name)
    return transforms, records


def carry_lesion(lesion: sitk.Image, source: tuple[str, sitk.Image], reference_name: str,
                 images: dict[str, sitk.Image], transforms: dict[str, sitk.Transform | None], records: dict[str, Any],
                 config: PrepareConfig, case_id: str,
                 mask_name: str) -> tuple[sitk.Image, sitk.Transform | None, dict[str, Any]]:
    """Carry a mask drawn on another channel's grid to the reference grid (the module docstring).

    Args:
        lesion: the 0/1 mask, on the grid of ``source``'s image.
        source: ``(channel name, image)`` of the scan the mask was drawn on.
        reference_name: the reference channel; ``images[reference_name]`` is its image.
        images: the prepared channels' images.
        transforms, records: what :func:`register_channels` returned (reused when the source channel, or a
            channel on its grid, was registered).
        config: preparation parameters (registration stages, seed).
        case_id, mask_name: named in errors.

    Returns:
        The mask on the reference grid (each lesion keeping its volume), the transform from reference
        points to the mask's points (None = identity), and the record of the transfer.
    """
    from lesionseg.preprocess.mask_resampling import resample_mask_image_keeping_volumes
    from lesionseg.preprocess.registration import register

    source_name, source_image = source
    reference = images[reference_name]
    difference = geometry_difference(lesion, source_image)
    if difference is not None:
        raise PreprocessingError(f"the mask {mask_name} is not on the grid of channel '{source_name}' ({difference}).")
    record: dict[str, Any] = {"from_channel": source_name, "to_channel": reference_name,
                              "method": "registration of the channel onto the reference, then each lesion "
                                        "resampled keeping its volume (as lesionseg transfer-mask)"}
    twin = None if source_name in transforms or config.register_aligned else next(
        (name for name, transform in transforms.items()
         if transform is not None and geometry_difference(images[name], source_image) is None), None)
    if source_name in transforms:
        transform = transforms[source_name]
        shared = (records.get(source_name) or {}).get("shared_with")
        record["registration"] = f"the registration of channel {shared or source_name} onto {reference_name}"
        if transform is None:
            record["registration"] = f"none: {source_name} is on the grid of {reference_name}"
    elif twin is not None:
        transform = transforms[twin]
        record["registration"] = f"the registration of channel {twin} onto {reference_name} (on the same grid)"
    elif not config.registration:
        raise PreprocessingError(
            f"the mask {mask_name} is on the grid of channel '{source_name}', not of the reference "
            f"'{reference_name}', and registration is off; drop --no-register so that it is carried to "
            f"'{reference_name}', or choose '{source_name}' as the reference.")
    else:
        result = register(reference, source_image, stages=tuple(config.registration), deformable=config.deformable,
                          fixed_mask=None, seed=config.seed, case_id=case_id, channel=source_name,
                          fixed_channel=reference_name)
        transform = result.transform
        record["registration"] = result.record
    on_reference = resample_mask_image_keeping_volumes(lesion, reference, transform)
    record["volume_ml"] = {"drawn": _mask_volume_ml(lesion), "on_reference": _mask_volume_ml(on_reference)}
    return on_reference, transform, record
