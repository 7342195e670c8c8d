"""Checks on a case before anything is computed from it: readable 3D files, one grid, a binary mask."""

from __future__ import annotations

from typing import Sequence

import SimpleITK as sitk

from lesionseg.data.case import Case
from lesionseg.errors import GeometryError, LesionSegError
from lesionseg.io import geometry_difference, image_extension, read_geometry


def validate_case(case: Case, *, allow_unaligned_channels: bool = True, read_mask: bool = True,
                  class_values: Sequence[int] | None = None) -> None:
    """Check that a case's files can be used together; errors name the case (see :func:`_validate`).

    ``class_values``: the label values of a multi-class dataset's classes (its label table); the mask may then
    hold any of them and nothing else. None: the mask must hold one label.
    """
    try:
        _validate(case, allow_unaligned_channels=allow_unaligned_channels, read_mask=read_mask,
                  class_values=class_values)
    except LesionSegError as error:
        if case.case_id in str(error):
            raise
        raise type(error)(f"case {case.case_id}: {error}") from error


def _validate(case: Case, *, allow_unaligned_channels: bool, read_mask: bool,
              class_values: Sequence[int] | None = None) -> None:
    """Check that a case's files can be used together.

    Checks: every channel file is a readable 3D scalar volume (headers only, plus NIfTI truncation);
    channels on different grids are accepted (``prepare`` registers them onto the reference) unless
    ``allow_unaligned_channels`` is False (the strict mode of ``lesionseg cases --require-aligned``);
    the mask, when present, is on the grid of a channel (the first such channel is recorded as
    ``case.metadata["mask_channel"]``; a ``.seg.nrrd`` is resampled instead) and, with ``read_mask``, holds
    one label (see :func:`lesionseg.io.binarise_mask`). What ``prepare`` will register, with the first
    channel as the reference, is recorded as ``case.metadata["alignment"]``
    (:meth:`lesionseg.data.alignment.AlignmentPlan.to_dict`).

    Raises:
        InputFileError: an unreadable, truncated, 2D or 4D file, or a multi-label mask.
        GeometryError: channels on different grids (strict mode), or a mask on no channel's grid.
    """
    from lesionseg.data.alignment import alignment_plan

    geometries = {name: read_geometry(path) for name, path in case.channels.items()}
    names = list(geometries)
    reference = names[0]
    if not allow_unaligned_channels:
        for name in names[1:]:
            difference = geometry_difference(geometries[reference], geometries[name])
            if difference is not None:
                raise GeometryError(
                    f"case {case.case_id}: channel '{name}' ({case.channels[name]}) is not on the grid of "
                    f"channel '{reference}' ({case.channels[reference]}): {difference} "
                    f"('{reference}' first); all channels must share one grid with --require-aligned "
                    f"(without it, prepare registers '{name}' onto the reference channel)."
                )
    plan = alignment_plan(case, geometries=geometries)
    case.metadata["alignment"] = plan.to_dict()
    if case.mask is None:
        return
    if class_values is not None:
        if read_mask:
            case.read_class_mask(class_values)
        case.metadata.setdefault("mask_channel", plan.mask_channel)
        return
    if image_extension(case.mask) == ".seg.nrrd":
        if read_mask:
            case.read_mask(reference=geometries[reference].reference_image())
        return
    case.metadata.setdefault("mask_channel", plan.mask_channel)
    if read_mask:
        from lesionseg.io import read_mask as read_mask_file

        read_mask_file(case.mask, label=case.metadata.get("label"))


def lesion_volume_ml(mask: sitk.Image) -> float:
    """Lesion volume of a 0/1 mask in millilitres (voxel count x voxel volume in mm³ / 1000)."""
    import numpy as np

    voxel_mm3 = float(np.prod(mask.GetSpacing()))
    return float(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) * voxel_mm3 / 1000.0
