"""Intensity models of the phantom's modalities: tissue values, lesion contrast, bias field and noise.

Modalities and units (all stored as int16; the perfusion maps ``tmax``, ``cbf``, ``cbv`` and ``mtt`` are
float32 and made by :mod:`lesionseg.synth.perfusion`):

- ``flair``: FLAIR-like MRI, arbitrary positive units (white matter drawn between 300 and 900); CSF dark,
  grey matter brighter than white matter, lesion hyperintense.
- ``dwi``: diffusion-weighted (b = 1000 s/mm²) MRI, arbitrary positive units; lesion hyperintense.
- ``adc``: apparent diffusion coefficient in 1e-6 mm²/s (white matter ~ 700, CSF ~ 3000); lesion
  hypointense. Computed from the DWI acquisition, so it shares the DWI's misalignment and has no bias.
- ``ct``: CT in Hounsfield units: air -1000, soft tissue 20-50, bone 900-1500, CSF 4-12, white matter
  25-30, grey matter 35-42; lesion a few HU below the tissue it replaces. The case options ``ct_lesion_hu`` and
  ``ct_noise_hu`` draw the lesion offset and the noise in given ranges instead (:func:`ct_hu_model`), and
  ``beam_hardening`` adds a brightening near the skull (:mod:`lesionseg.synth.ct_artefacts`).
- ``t1``: T1-weighted-like MRI, arbitrary positive units (white matter drawn between 300 and 900); CSF
  dark (15-35 % of white matter), grey matter darker than white matter (60-75 %), deep nuclei 72-85 %,
  scalp fat bright; lesion hypointense, from 3 % (age 0) to about 37 % (age 1) below the replaced tissue.

Lesion contrast follows one drawn *lesion age* per case (0 = hyperacute, 1 = late): FLAIR and CT contrast
grow with age (FLAIR from +5 % to +180 % over the replaced tissue, see :func:`flair_contrast`, so that
cases range from barely visible to obvious; CT from -1.5 to -8 HU; T1 from -3 % to -37 %), DWI
hyperintensity and ADC drop fade. Each lesion scales the case's contrast by its own factor and a smooth
internal texture (+-10 %). The ``lesion_contrast`` case option multiplies every channel's drawn lesion
contrast by one factor per case (:func:`scale_lesion_contrast`).

Random tissue contrast (``tissue_contrast="random"``, :func:`randomise_contrast`): every MRI channel's
tissue values are drawn independently per class (SynthSeg-style domain randomisation) and the lesion is
hyperintense in 75 % of cases, else hypointense; CT keeps its Hounsfield model.

MRI intensities (FLAIR, DWI, T1) are multiplied by a smooth bias field (a random cubic polynomial of the grid's mm
coordinates, exponentiated) whose peak-to-peak amplitude, ``(max - min) / mean`` over the brain mask,
is drawn between 25 % and 50 %; then Rician noise is added (Gaussian for ADC and CT).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from lesionseg.synth.geometry import Grid

# New names go last (stream codes); the perfusion maps are made by lesionseg.synth.perfusion, not here.
MODALITIES: tuple[str, ...] = ("flair", "dwi", "adc", "ct", "t1", "tmax", "cbf", "cbv", "mtt")
# Channels that come from one acquisition share one misalignment.
ACQUISITION: dict[str, str] = {"flair": "flair", "dwi": "dwi", "adc": "dwi", "ct": "ct", "t1": "t1",
                               "tmax": "tmax", "cbf": "tmax", "cbv": "tmax", "mtt": "tmax"}
_BIAS_MODALITIES = ("flair", "dwi", "t1")
RANDOM_TISSUE_RANGE = (0.1, 1.6)  # random tissue values, relative to the channel's white-matter value
HYPERINTENSE_PROBABILITY = 0.75


@dataclass
class ModalityParams:
    """Drawn intensity model of one channel of one case."""

    modality: str
    tissue_values: dict[int, float]  # tissue label -> noise-free value in output units
    lesion_contrast: float  # relative change (MRI) or HU offset (CT) of lesion over replaced tissue
    noise_sigma: float  # in output units
    noise_kind: str  # "rician" or "gaussian"
    bias_peak_to_peak: float | None  # drawn bias amplitude, None for channels without bias
    lesion_range_hu: tuple[float, float] | None = None  # CT: every lesion voxel's offset kept in -high..-low HU

    def to_dict(self) -> dict:
        out = asdict(self)
        out["tissue_values"] = {str(k): v for k, v in self.tissue_values.items()}
        if self.lesion_range_hu is None:
            del out["lesion_range_hu"]  # as recorded before the CT options existed
        else:
            out["lesion_range_hu"] = list(self.lesion_range_hu)
        return out


_GOLDEN = 0.6180339887498949


def draw_lesion_age(seed: int, index: int) -> float:
    """The lesion age in [0, 1] (0 hyperacute, 1 late subacute) of case ``index`` of cohort ``seed``.

    Ages follow a golden-ratio sequence over the case index from a seed-drawn start, plus a little jitter,
    so that any run of consecutive cases covers the whole range evenly: a 20-case cohort then always spans
    nearly invisible to obvious lesions, whatever the seed. It depends only on (seed, index).
    """
    start = np.random.default_rng([seed, 0x5EED]).uniform()
    jitter = np.random.default_rng([seed, index, 0xA9E]).uniform(-0.02, 0.02)
    return float(np.clip((start + index * _GOLDEN) % 1.0 + jitter, 0.0, 1.0))


def flair_contrast(age: float) -> float:
    """Relative FLAIR lesion contrast for a lesion age: from 0.05 (age 0) to 1.8 (age 1).

    The logarithm of the contrast grows as ``age ** 1.6``, so that about half of the cases have subtle
    lesions (+5 % to +15 %, Fisher contrast mostly below 1) and the rest spread up to obvious ones.
    """
    return float(0.05 * (1.8 / 0.05) ** (age ** 1.6))


def draw_modality(rng: np.random.Generator, modality: str, age: float) -> ModalityParams:
    """Draw the tissue values, lesion contrast and noise of one channel.

    Args:
        rng: Random generator for this channel (consumed in a fixed order).
        modality: One of ``MODALITIES``.
        age: The case's lesion age in [0, 1].

    Returns:
        The channel's :class:`ModalityParams`.
    """
    u = rng.uniform
    if modality == "flair":
        scale = u(300.0, 900.0)
        csf = u(0.15, 0.35)
        rel = {0: 0.0, 1: u(0.7, 1.2), 2: u(0.05, 0.15), 3: csf, 4: u(1.04, 1.14), 5: 1.0,
               6: csf * u(0.8, 1.0), 7: u(1.0, 1.08)}
        values = {k: v * scale for k, v in rel.items()}
        contrast = flair_contrast(age) * u(0.85, 1.15)
        sigma, kind = u(0.015, 0.03) * scale, "rician"
    elif modality == "dwi":
        scale = u(150.0, 500.0)
        csf = u(0.15, 0.3)
        rel = {0: 0.0, 1: u(0.25, 0.5), 2: 0.05, 3: csf, 4: u(1.1, 1.25), 5: 1.0, 6: csf, 7: u(1.0, 1.15)}
        values = {k: v * scale for k, v in rel.items()}
        contrast = (1.8 - 1.0 * age) * u(0.85, 1.15)
        sigma, kind = u(0.05, 0.09) * scale, "rician"
    elif modality == "adc":
        csf = u(2800.0, 3200.0)
        values = {0: 0.0, 1: u(900.0, 1300.0), 2: u(200.0, 500.0), 3: csf, 4: u(800.0, 900.0),
                  5: u(680.0, 780.0), 6: csf, 7: u(720.0, 820.0)}
        contrast = -(0.45 - 0.2 * age) * u(0.85, 1.15)
        sigma, kind = u(40.0, 80.0), "gaussian"
    elif modality == "t1":
        scale = u(300.0, 900.0)
        csf = u(0.15, 0.35)
        rel = {0: 0.0, 1: u(0.7, 1.2), 2: u(0.05, 0.15), 3: csf, 4: u(0.6, 0.75), 5: 1.0,
               6: csf * u(0.9, 1.0), 7: u(0.72, 0.85)}
        values = {k: v * scale for k, v in rel.items()}
        contrast = -(0.03 + 0.34 * age) * u(0.85, 1.15)
        sigma, kind = u(0.015, 0.03) * scale, "rician"
    else:  # ct
        csf = u(4.0, 12.0)
        values = {0: -1000.0, 1: u(20.0, 50.0), 2: u(900.0, 1500.0), 3: csf, 4: u(35.0, 42.0),
                  5: u(25.0, 30.0), 6: csf, 7: u(32.0, 40.0)}
        contrast = -(1.5 + 6.5 * age) * u(0.85, 1.15)
        sigma, kind = u(2.5, 5.0), "gaussian"
    bias = float(u(0.25, 0.5)) if modality in _BIAS_MODALITIES else None
    return ModalityParams(modality, {k: float(v) for k, v in values.items()}, float(contrast),
                          float(sigma), kind, bias)


def ct_hu_model(rng: np.random.Generator, params: ModalityParams, lesion_hu, noise_hu) -> ModalityParams:
    """A CT channel's model with a drawn lesion offset and noise level (the ``ct_lesion_hu``, ``ct_noise_hu``
    options); other channels are returned unchanged.

    Args:
        rng: The case's generator for these draws (lesion offset first, then noise).
        params: The channel's drawn model.
        lesion_hu: None, or ``(low, high)`` HU: the case's lesion offset is drawn uniformly in ``-high..-low``
            and every lesion voxel's offset (its lesion's factor and texture included) is clipped into that
            range, so each lesion lies ``low`` to ``high`` HU below the tissue it replaces.
        noise_hu: None, or ``(low, high)``: the Gaussian noise sigma (HU) drawn uniformly in it.
    """
    if params.modality != "ct":
        return params
    if lesion_hu is not None:
        low, high = (float(v) for v in lesion_hu)
        params = replace(params, lesion_contrast=-float(rng.uniform(low, high)), lesion_range_hu=(low, high))
    if noise_hu is not None:
        params = replace(params, noise_sigma=float(rng.uniform(*(float(v) for v in noise_hu))))
    return params


def scale_lesion_contrast(params: ModalityParams, factor: float) -> ModalityParams:
    """The channel's model with its lesion contrast times ``factor`` (the ``lesion_contrast`` option)."""
    return replace(params, lesion_contrast=float(params.lesion_contrast * factor))


def draw_polarity(rng: np.random.Generator) -> float:
    """+1 (hyperintense lesion, probability ``HYPERINTENSE_PROBABILITY``) or -1 (hypointense)."""
    return 1.0 if rng.uniform() < HYPERINTENSE_PROBABILITY else -1.0


def randomise_contrast(rng: np.random.Generator, params: ModalityParams, age: float,
                       polarity: float) -> ModalityParams:
    """Random tissue values and lesion contrast for one MRI channel (``tissue_contrast="random"``).

    Each class (soft tissue, bone, CSF, grey matter, white matter, deep grey) gets a value drawn uniformly
    in ``RANDOM_TISSUE_RANGE`` times the channel's own white-matter value (so noise keeps its level);
    ventricles get the CSF value within 10 %; air stays 0. The lesion changes the replaced tissue by
    ``+flair_contrast(age)`` (hyperintense) or ``-(0.05 + 0.45 age)`` (hypointense), times 0.85-1.15.
    CT channels are returned unchanged (their values are Hounsfield units).

    Args:
        rng: This channel's generator for the random contrast.
        params: The channel's drawn model (noise, bias and modality are kept).
        age: The case's lesion age in [0, 1].
        polarity: +1 or -1 (see :func:`draw_polarity`), one per case.

    Returns:
        The channel's randomised :class:`ModalityParams`.
    """
    if params.modality == "ct":
        return params
    scale = abs(params.tissue_values[5])
    rel = {label: float(rng.uniform(*RANDOM_TISSUE_RANGE)) for label in (1, 2, 3, 4, 5, 7)}
    rel[6] = rel[3] * float(rng.uniform(0.9, 1.1))
    values = {label: (0.0 if label == 0 else rel[label] * scale) for label in range(8)}
    jitter = float(rng.uniform(0.85, 1.15))
    contrast = flair_contrast(age) * jitter if polarity > 0 else -(0.05 + 0.45 * age) * jitter
    return replace(params, tissue_values=values, lesion_contrast=float(contrast))


def bias_field(rng: np.random.Generator, grid: Grid, brain: np.ndarray, peak_to_peak: float) -> np.ndarray:
    """A smooth multiplicative bias field with a given peak-to-peak amplitude inside the brain.

    The field is ``exp(a * P)`` with ``P`` a random cubic polynomial of the grid-aligned mm coordinates
    (``origin + spacing * index`` per axis; the scanner frame, so it does not move with the head), and
    ``a`` solved so that ``(max - min) / mean`` over ``brain`` equals ``peak_to_peak``.

    Args:
        rng: Random generator for this field.
        grid: The image grid.
        brain: Boolean brain mask (z, y, x) over which the amplitude is measured.
        peak_to_peak: Wanted ``(max - min) / mean`` inside the brain (e.g. 0.3 for 30 %).

    Returns:
        float32 array (z, y, x), mean 1 over the brain.
    """
    degree = 3
    coeffs = rng.standard_normal((degree + 1,) * 3)
    powers = np.add.outer(np.add.outer(np.arange(degree + 1), np.arange(degree + 1)), np.arange(degree + 1))
    coeffs = np.where((powers <= degree) & (powers > 0), coeffs / (1.0 + powers), 0.0)
    axes = []
    for n, s, o in zip(grid.size_xyz, grid.spacing_mm, grid.origin_mm):
        x = (o + s * np.arange(n)) / 100.0  # decimetres keep the powers near 1
        axes.append(np.stack([x ** p for p in range(degree + 1)]))  # (degree + 1, n)
    # Separable evaluation: sum_abc C[a, b, c] X_a(x) Y_b(y) Z_c(z) as three small tensor contractions.
    t = np.einsum("abc,cz->abz", coeffs, axes[2])
    t = np.einsum("abz,by->azy", t, axes[1])
    poly = np.einsum("azy,ax->zyx", t, axes[0]).astype(np.float32)
    values = poly[brain]
    if values.size == 0:
        return np.ones(grid.shape_zyx, np.float32)
    low, high = float(values.min()), float(values.max())
    centred = (poly - 0.5 * (low + high)) / max(high - low, 1e-9)  # in [-0.5, 0.5] inside the brain
    sample = centred[brain][:: max(1, values.size // 20000)].astype(np.float64)

    def amplitude(a: float) -> float:
        return (np.exp(a / 2) - np.exp(-a / 2)) / float(np.mean(np.exp(a * sample)))

    lo, hi = 0.0, 5.0  # amplitude(a) increases with a; bisection
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if amplitude(mid) < peak_to_peak else (lo, mid)
    field = np.exp(0.5 * (lo + hi) * centred)
    field /= float(field[brain].mean())
    return field.astype(np.float32)


def render(
    params: ModalityParams,
    fractions: dict[int, np.ndarray],
    lesion_fraction: np.ndarray,
    lesion_contrast: np.ndarray,
    bias: np.ndarray | None,
    rng: np.random.Generator | None,
    distractors=None,
    offset: np.ndarray | None = None,
) -> np.ndarray:
    """Render one channel from tissue fractions, the lesion, the bias field and noise.

    Args:
        params: The channel's intensity model.
        fractions: Tissue fractions by label (z, y, x), summing to 1 (partial volume).
        lesion_fraction: Fraction of each voxel that is lesion (z, y, x), at most its tissue fraction.
        lesion_contrast: Per-voxel factor on the case's lesion contrast (lesion factor x texture).
        bias: Multiplicative bias field (z, y, x) or None.
        rng: Noise generator, or None for a noise-free channel.
        distractors: None, or an object whose ``apply(image, params, fractions)`` adds the lesion
            look-alikes to the noise-free tissue image (see :mod:`lesionseg.synth.distractors`).
        offset: None, or an additive field (z, y, x) in output units added before bias and noise (CT beam
            hardening, see :mod:`lesionseg.synth.ct_artefacts`).

    Returns:
        int16 array (z, y, x) in the modality's units.
    """
    values = params.tissue_values
    image = np.full(lesion_fraction.shape, np.float32(values[0]), np.float32)
    for label, frac in fractions.items():
        if label != 0:  # fractions sum to 1: start from air and add each tissue's difference to it
            image += np.float32(values[label] - values[0]) * frac
    if distractors is not None:
        distractors.apply(image, params, fractions)
    tissue = fractions[4] + fractions[5] + fractions[7]
    frac_lesion = np.minimum(lesion_fraction, tissue)
    if np.any(frac_lesion > 0):
        mask = frac_lesion > 0
        t = tissue[mask]
        replaced = (values[4] * fractions[4][mask] + values[5] * fractions[5][mask]
                    + values[7] * fractions[7][mask]) / np.maximum(t, 1e-6)
        change = params.lesion_contrast * lesion_contrast[mask]
        if params.lesion_range_hu is not None:
            change = np.clip(change, -params.lesion_range_hu[1], -params.lesion_range_hu[0])
        if params.modality == "ct":
            image[mask] += frac_lesion[mask] * change
        else:
            image[mask] += frac_lesion[mask] * replaced * change
    if offset is not None:
        image += offset
    if bias is not None:
        image *= bias
    if rng is not None:
        sigma = np.float32(params.noise_sigma)
        if params.noise_kind == "rician":
            real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
            imag = sigma * rng.standard_normal(image.shape, dtype=np.float32)
            image = np.hypot(real, imag)
        else:
            image += sigma * rng.standard_normal(image.shape, dtype=np.float32)
    if params.modality == "adc":
        np.maximum(image, 0.0, out=image)
    np.rint(image, out=image)
    return np.clip(image, -32768, 32767).astype(np.int16)
