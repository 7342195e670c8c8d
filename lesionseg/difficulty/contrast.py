"""Fisher-ratio contrast between a lesion and the healthy tissue of its hemisphere, on one 2D slice.

``F = (mu_h - mu_l)² / (s_h² + s_l²)``, where ``mu_l, s_l`` are the mean and standard deviation of the
image over the lesion pixels and ``mu_h, s_h`` over the healthy brain of the lesion's hemisphere:

    healthy = brain & (same half of the slice as the lesion) & not lesion & not (lesion dilated by margin_px)

Standard deviations are population ones (``ddof=0``). Slices are the prepared ones: the mid-sagittal plane
falls between columns ``W//2 - 1`` and ``W//2`` and columns ``>= W//2`` are the patient's left
hemisphere (see :mod:`lesionseg.preprocess.grid`). With ``hemisphere="auto"`` the lesion's hemisphere is
the half holding more of its pixels (a tie goes to the left). F is measured on the normalised intensities
of the prepared slice; being a ratio of squared differences to variances it does not change under an
affine intensity change, so the z-score does not alter it.

When a slice has fewer than ``min_lesion_pixels`` lesion pixels or ``min_healthy_pixels`` healthy pixels,
or no intensity variance at all, F cannot be measured: the result is :data:`INVALID_CONTRAST` (0.0, "no
measurable contrast", i.e. the hardest value) with ``valid=False`` and the reason, never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import disk

from lesionseg.errors import ParameterError

#: The contrast given to slices on which F cannot be measured (no measurable contrast = hardest).
INVALID_CONTRAST = 0.0
#: Default minimum number of lesion pixels for F to be measured.
MIN_LESION_PIXELS = 5
#: Default minimum number of healthy pixels (same hemisphere) for F to be measured.
MIN_HEALTHY_PIXELS = 20
HEMISPHERES = ("left", "right", "auto")


@dataclass(frozen=True)
class ContrastMeasurement:
    """The Fisher contrast of one slice and what it was computed from.

    Attributes:
        value: F, or :data:`INVALID_CONTRAST` when not ``valid``.
        valid: whether F could be measured.
        reason: why not (empty when valid).
        side: the hemisphere used for the healthy tissue, "left" or "right" (patient's).
        lesion_pixels, healthy_pixels: the pixel counts of the two regions.
        lesion_mean, lesion_std, healthy_mean, healthy_std: the statistics (NaN for an empty region;
            they are diagnostics, ``value`` never is).
    """

    value: float
    valid: bool
    reason: str
    side: str
    lesion_pixels: int
    healthy_pixels: int
    lesion_mean: float
    lesion_std: float
    healthy_mean: float
    healthy_std: float


def _check_slices(image: np.ndarray, lesion: np.ndarray, brain: np.ndarray) -> tuple[np.ndarray, ...]:
    image = np.asarray(image)
    lesion = np.asarray(lesion)
    brain = np.asarray(brain)
    if image.ndim != 2:
        raise ParameterError(f"the image must be one 2D slice (H, W), not shape {image.shape}.")
    if lesion.shape != image.shape or brain.shape != image.shape:
        raise ParameterError(
            f"image {image.shape}, lesion {lesion.shape} and brain {brain.shape} must have the same (H, W) shape."
        )
    return image.astype(np.float64, copy=False), lesion != 0, brain != 0


def check_contrast_options(hemisphere: str = "auto", margin_px: int = 0,
                           min_lesion_pixels: int = MIN_LESION_PIXELS,
                           min_healthy_pixels: int = MIN_HEALTHY_PIXELS) -> None:
    """Raise :class:`ParameterError` for a contrast option that cannot be used (see :func:`measure_contrast`)."""
    if hemisphere not in HEMISPHERES:
        raise ParameterError(f"hemisphere must be one of {', '.join(HEMISPHERES)}, not {hemisphere!r}.")
    for name, value, low in (("margin_px", margin_px, 0), ("min_lesion_pixels", min_lesion_pixels, 1),
                             ("min_healthy_pixels", min_healthy_pixels, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ParameterError(f"{name} must be a whole number >= {low}, not {value!r}.")


def lesion_hemisphere(lesion: np.ndarray) -> str:
    """The half of a prepared slice ``(H, W)`` holding more lesion pixels: "left" (columns >= W//2) or
    "right"; a tie (or no lesion) gives "left"."""
    lesion = np.asarray(lesion) != 0
    half = lesion.shape[-1] // 2
    return "right" if np.count_nonzero(lesion[:, :half]) > np.count_nonzero(lesion[:, half:]) else "left"


def healthy_region(lesion: np.ndarray, brain: np.ndarray, side: str, margin_px: int = 0) -> np.ndarray:
    """Healthy brain of one hemisphere of a prepared slice: brain, that half, outside the lesion and its margin.

    Args:
        lesion, brain: 2D masks ``(H, W)``.
        side: "left" (columns >= W//2) or "right" (columns < W//2).
        margin_px: pixels within this distance of the lesion (a disk dilation) are excluded too.

    Returns:
        A boolean mask ``(H, W)``.
    """
    lesion = np.asarray(lesion) != 0
    region = np.asarray(brain) != 0
    half = lesion.shape[-1] // 2
    region = region.copy()
    if side == "left":
        region[:, :half] = False
    else:
        region[:, half:] = False
    excluded = lesion
    if margin_px > 0:
        excluded = ndimage.binary_dilation(lesion, structure=disk(int(margin_px)).astype(bool))
    return region & ~excluded


def measure_contrast(image: np.ndarray, lesion: np.ndarray, brain: np.ndarray, *, hemisphere: str = "auto",
                     margin_px: int = 0, min_lesion_pixels: int = MIN_LESION_PIXELS,
                     min_healthy_pixels: int = MIN_HEALTHY_PIXELS) -> ContrastMeasurement:
    """Measure the Fisher contrast of a lesion on one prepared slice, with its diagnostics.

    Args:
        image: the slice's intensities ``(H, W)`` (one channel).
        lesion: the lesion mask ``(H, W)`` (nonzero = lesion).
        brain: the brain mask ``(H, W)``.
        hemisphere: the side of the healthy tissue, "left", "right" or "auto" (the side with more lesion).
        margin_px: exclude healthy pixels within this many pixels of the lesion (0 = only the lesion).
        min_lesion_pixels, min_healthy_pixels: fewer pixels than this in a region: not measurable.

    Returns:
        A :class:`ContrastMeasurement`; its ``value`` is finite.

    Raises:
        ParameterError: shapes that differ, a bad option, or a non-finite intensity in the measured regions.
    """
    check_contrast_options(hemisphere, margin_px, min_lesion_pixels, min_healthy_pixels)
    image, lesion, brain = _check_slices(image, lesion, brain)
    side = lesion_hemisphere(lesion) if hemisphere == "auto" else hemisphere
    healthy = healthy_region(lesion, brain, side, margin_px)
    lesion_values, healthy_values = image[lesion], image[healthy]
    if not (np.all(np.isfinite(lesion_values)) and np.all(np.isfinite(healthy_values))):
        raise ParameterError(
            "the image slice holds NaN or infinite intensities inside the lesion or healthy region."
        )

    def stats(values: np.ndarray) -> tuple[float, float]:
        return (float(values.mean()), float(values.std())) if values.size else (float("nan"), float("nan"))

    mu_l, s_l = stats(lesion_values)
    mu_h, s_h = stats(healthy_values)
    reason = ""
    if lesion_values.size < min_lesion_pixels:
        reason = f"{lesion_values.size} lesion pixel(s), fewer than {min_lesion_pixels}"
    elif healthy_values.size < min_healthy_pixels:
        reason = (f"{healthy_values.size} healthy pixel(s) in the {side} hemisphere, "
                  f"fewer than {min_healthy_pixels}")
    elif s_l * s_l + s_h * s_h <= 0.0:
        reason = "no intensity variance in the lesion or the healthy tissue"
    if reason:
        value = INVALID_CONTRAST
    else:
        value = (mu_h - mu_l) ** 2 / (s_h * s_h + s_l * s_l)
    return ContrastMeasurement(float(value), not reason, reason, side, int(lesion_values.size),
                               int(healthy_values.size), mu_l, s_l, mu_h, s_h)


def fisher_contrast(image: np.ndarray, lesion: np.ndarray, brain: np.ndarray, *, hemisphere: str = "auto",
                    margin_px: int = 0, min_lesion_pixels: int = MIN_LESION_PIXELS,
                    min_healthy_pixels: int = MIN_HEALTHY_PIXELS) -> float:
    """The Fisher contrast F of a lesion on one prepared slice (see the module docstring).

    Args: as :func:`measure_contrast`.

    Returns:
        F >= 0, or :data:`INVALID_CONTRAST` (0.0) when too few pixels (or no variance) make it
        unmeasurable; never NaN. Use :func:`measure_contrast` to tell the two apart.

    Raises:
        ParameterError: as :func:`measure_contrast`.
    """
    return measure_contrast(image, lesion, brain, hemisphere=hemisphere, margin_px=margin_px,
                            min_lesion_pixels=min_lesion_pixels, min_healthy_pixels=min_healthy_pixels).value
