"""Intensity normalisation: z-score inside the brain for MRI, HU windowing for CT, and non-finite voxels.

All functions take and return ``SimpleITK.Image`` volumes and keep the input's grid (size, spacing,
origin, direction). Outputs are float32.

- :func:`normalise_mri`: clip every voxel to the brain's ``(0.5, 99.99)`` percentiles (by default), then
  subtract the mean and divide by the standard deviation of the clipped brain voxels. The upper percentile
  is high on purpose: a stroke lesion is the brightest tissue of a FLAIR or DWI and can fill several
  per cent of the brain, so clipping at 99.5 % (as for CT) flattened every lesion voxel to the value of
  the brightest healthy tissue, and a lesion in a bright (bias-field) region became invisible. 99.99 %
  still removes single hot voxels. Voxels outside the
  brain are clipped the same way and go through the same affine map (they are not zeroed), so the image
  stays continuous at the brain's edge and the brain's statistics alone set the scale. Because the map is
  affine in the input, multiplying an MRI by any positive factor gives the same output.
- :func:`window_ct`: clip Hounsfield units to a window (default 0-80 HU, the usual brain window) and scale
  it linearly to [0, 1] (window low -> 0, window high -> 1). HU are absolute, so no statistics are used.
- :func:`check_finite`: refuse NaN or infinite voxels with a sentence naming the case and channel, or,
  when asked, replace them by the image's smallest finite value (the background of an MRI or the air of a
  CT, so a replaced voxel looks like "no signal" rather than like tissue) and count them.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import GeometryError, ParameterError, PreprocessingError
from lesionseg.io.geometry import geometry_difference
from lesionseg.preprocess.config import DEFAULT_CLIP_PERCENTILES  # noqa: F401  (the percentiles clipped by default)

#: Default CT window in Hounsfield units (brain window).
DEFAULT_CT_WINDOW = (0.0, 80.0)


def _float_image(array_zyx: np.ndarray, like: sitk.Image) -> sitk.Image:
    """A float32 image from a (z, y, x) array with ``like``'s grid."""
    out = sitk.GetImageFromArray(np.ascontiguousarray(array_zyx, dtype=np.float32))
    out.CopyInformation(like)
    return out


def _label(case_id: str) -> str:
    """The message prefix naming the case ("case X: "), or nothing without a case id."""
    return f"case {case_id}: " if case_id else ""


def normalise_mri(image: sitk.Image, brain_mask: sitk.Image, *,
                  clip_percentiles: tuple[float, float] = DEFAULT_CLIP_PERCENTILES,
                  case_id: str = "", channel: str = "mri") -> sitk.Image:
    """Z-score an MRI with the statistics of its brain voxels after percentile clipping.

    Steps: ``lo, hi`` = the brain voxels' ``clip_percentiles``; every voxel (inside and outside the brain)
    is clipped to ``[lo, hi]``; ``mean`` and ``std`` are taken over the clipped brain voxels; the output is
    ``(clipped - mean) / std``. Inside the brain the result has mean 0 and standard deviation 1.

    Args:
        image: the MRI channel (any scalar pixel type, finite values; see :func:`check_finite`).
        brain_mask: 0/1 mask (non-zero = brain) on the image's grid.
        clip_percentiles: lower and upper percentiles in [0, 100], lower < upper.
        case_id: case named in error messages.
        channel: channel named in error messages.

    Returns:
        float32 image on the input's grid.

    Raises:
        ParameterError: percentiles out of range or not increasing.
        GeometryError: the mask is not on the image's grid.
        PreprocessingError: an empty brain mask, or a brain of constant intensity (nothing to normalise).
    """
    low_p, high_p = (float(p) for p in clip_percentiles)
    if not (0.0 <= low_p < high_p <= 100.0):
        raise ParameterError(
            f"clip percentiles must satisfy 0 <= low < high <= 100, not {clip_percentiles!r}.")
    difference = geometry_difference(image, brain_mask)
    if difference is not None:
        raise GeometryError(f"{_label(case_id)}the brain mask is not on the {channel} image's grid "
                            f"({difference}); resample it first.")
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    inside = sitk.GetArrayViewFromImage(brain_mask) != 0
    if not inside.any():
        raise PreprocessingError(f"{_label(case_id)}the brain mask of channel {channel} is empty, "
                                 "so the intensities cannot be normalised.")
    # Hand-written rather than MONAI's NormalizeIntensity: the statistics come from a mask (not "non-zero
    # voxels") and apply to the whole volume, which that transform does not offer.
    low, high = np.percentile(array[inside], [low_p, high_p])
    np.clip(array, low, high, out=array)
    brain = array[inside]
    mean, std = float(brain.mean()), float(brain.std())
    if not std > 0.0:
        raise PreprocessingError(f"{_label(case_id)}channel {channel} has the same intensity ({mean:g}) "
                                 "everywhere in the brain, so it cannot be normalised.")
    return _float_image((array - mean) / std, image)


def window_ct(image: sitk.Image, *, window: tuple[float, float] = DEFAULT_CT_WINDOW) -> sitk.Image:
    """Clip a CT to a Hounsfield-unit window and scale the window linearly to [0, 1].

    Args:
        image: CT in Hounsfield units (any scalar pixel type).
        window: (low, high) HU, low < high; low maps to 0 and high to 1.

    Returns:
        float32 image on the input's grid with values in [0, 1].

    Raises:
        ParameterError: a window whose low end is not below its high end.
    """
    low, high = (float(v) for v in window)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ParameterError(f"the CT window must be two finite HU values, low < high, not {window!r}.")
    return sitk.IntensityWindowing(sitk.Cast(image, sitk.sitkFloat32), windowMinimum=low, windowMaximum=high,
                                   outputMinimum=0.0, outputMaximum=1.0)


def check_finite(image: sitk.Image, *, case_id: str, channel: str,
                 replace: bool = False) -> tuple[sitk.Image, int]:
    """Refuse NaN or infinite voxels, or replace them by the smallest finite value and count them.

    Integer images cannot hold NaN and are returned unchanged with a count of 0.

    Args:
        image: the channel.
        case_id: case named in the message.
        channel: channel named in the message.
        replace: replace non-finite voxels instead of refusing them.

    Returns:
        ``(image, count)``: the image (the input itself when nothing was replaced, otherwise a copy with
        the same pixel type and grid) and the number of non-finite voxels found.

    Raises:
        PreprocessingError: non-finite voxels and ``replace`` is False, or no finite voxel at all.
    """
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return image, 0
    array = sitk.GetArrayViewFromImage(image)
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if count == 0:
        return image, 0
    if count == bad.size:
        raise PreprocessingError(f"{_label(case_id)}channel {channel} has no finite voxel "
                                 f"(all {count} are NaN or infinite).")
    if not replace:
        raise PreprocessingError(
            f"{_label(case_id)}channel {channel} has {count} NaN or infinite voxels; fix the image or "
            "allow replacing them by the smallest finite value.")
    fixed = array.copy()
    fixed[bad] = array[~bad].min()
    out = sitk.GetImageFromArray(fixed)
    out.CopyInformation(image)
    return out, count
