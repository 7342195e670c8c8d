"""The clinical threshold rule on a dataset's cases: each case's maps in their units, a brain mask, the mid-plane.

:func:`lesionseg.infer.perfusion_threshold.threshold_perfusion` needs Tmax in seconds, CBF and CBV in their
standard units, a brain mask and the mid-sagittal plane. For one case of a dataset
(:func:`lesionseg.data.discover`):

- each map is read with the units its JSON sidecar gives (``{"Units": "s"}``; :func:`lesionseg.data.sidecar.map_units`,
  refused without them) and converted to s, mL/100 g/min and mL/100 g (:func:`lesionseg.preprocess.perfusion.unit_factor`);
- the brain mask is the case's own when the dataset gives one (a manifest's ``brain_mask`` column), else the
  voxels where any of the three maps holds a value (perfusion software writes zero outside the head): the
  largest connected part, its holes filled slice by slice;
- the mid-sagittal plane is estimated on the CBV map (:func:`lesionseg.preprocess.midplane.estimate_midplane`),
  the map whose tissue contrast is most symmetric in a healthy head.
"""

from __future__ import annotations

from dataclasses import dataclass

import SimpleITK as sitk

from lesionseg.errors import DatasetError, GeometryError
from lesionseg.infer.perfusion_threshold import (
    CORE_RELATIVE_CBF, MIN_TISSUE_CBV, PENUMBRA_TMAX_S, ThresholdResult, threshold_perfusion,
)
from lesionseg.infer.postprocess import DEFAULT_MIN_LESION_MM3

#: the maps the rule reads
REQUIRED_MAPS = ("tmax", "cbf", "cbv")


@dataclass(frozen=True)
class ThresholdSettings:
    """The rule's thresholds (see :mod:`lesionseg.infer.perfusion_threshold`)."""

    core_relative_cbf: float = CORE_RELATIVE_CBF
    penumbra_tmax_s: float = PENUMBRA_TMAX_S
    min_cbv: float = MIN_TISSUE_CBV
    min_lesion_mm3: float = DEFAULT_MIN_LESION_MM3


def read_map(case, channel: str) -> sitk.Image:
    """The case's ``channel`` map as float32 in its standard unit (s, mL/100 g/min or mL/100 g).

    Raises:
        InputFileError: the map has no sidecar giving its units.
        PreprocessingError: units the map cannot be in.
    """
    from lesionseg.data.sidecar import map_units
    from lesionseg.io import read_image
    from lesionseg.preprocess.perfusion import unit_factor

    path = case.channel_path(channel)
    factor = unit_factor(channel, map_units(path, channel), case_id=case.case_id)
    image = read_image(path, pixel_type=sitk.sitkFloat32)
    return image * float(factor) if factor != 1.0 else image


def threshold_case(case, settings: ThresholdSettings = ThresholdSettings(),
                   max_obliquity_deg: float = 3.0) -> ThresholdResult:
    """Core and penumbra of one dataset case by the threshold rule.

    Args:
        case: a :class:`lesionseg.data.Case` with ``tmax``, ``cbf`` and ``cbv`` channels.
        settings: the thresholds.
        max_obliquity_deg: the axial frame's tolerance (as ``prepare``'s).

    Raises:
        DatasetError: a map is missing. GeometryError: the maps or the brain mask are on different grids.
        InputFileError, PreprocessingError: a map without units or in units it cannot be in.
    """
    from lesionseg.io import read_mask
    from lesionseg.io.geometry import geometry_difference
    from lesionseg.preprocess.midplane import estimate_midplane
    from lesionseg.preprocess.orientation import axial_frame
    from lesionseg.preprocess.perfusion import maps_brain_mask

    missing = [name for name in REQUIRED_MAPS if name not in case.channels]
    if missing:
        raise DatasetError(f"case {case.case_id} has no {', '.join(missing)} map (the threshold rule reads "
                           f"{', '.join(REQUIRED_MAPS)}; it has {', '.join(case.channels) or 'no channel'}).")
    maps = {name: read_map(case, name) for name in REQUIRED_MAPS}
    given = (case.metadata or {}).get("brain_mask")
    if given:
        brain = read_mask(given)
        difference = geometry_difference(brain, maps["tmax"])
        if difference is not None:
            raise GeometryError(f"case {case.case_id}: the brain mask {given} is not on the maps' grid ({difference}).")
    else:
        brain = maps_brain_mask(*maps.values())
    frame = axial_frame(maps["cbv"], max_obliquity_deg)
    midplane = estimate_midplane(maps["cbv"], brain, frame.geometry)
    return threshold_perfusion(maps["tmax"], maps["cbf"], maps["cbv"], brain, midplane,
                               core_relative_cbf=settings.core_relative_cbf, penumbra_tmax_s=settings.penumbra_tmax_s,
                               min_cbv=settings.min_cbv, min_lesion_mm3=settings.min_lesion_mm3)
