"""The slice sizes a 2D bundle reads new scans at: its training size and finer ones, combined.

The prepared slice is a square of S pixels over the brain's extent plus a margin (about 180 mm), so its pixel
is about 1.4 mm at the cpu preset's S = 128, coarser than the 0.8-1.2 mm in-plane voxels of a clinical FLAIR.
Resampled that coarsely, a lesion of 5-7 mm (50-250 mm³) keeps only part of its contrast, and the network,
trained at the same pixel size, passes over it (probability 0.00 on lesions of 130-220 mm³ that are plainly
brighter than their cortex). Read at 1.25 times the training size (160 pixels, about 1.1 mm) the same weights
find many of them (the network, trained with zoom augmentation of 0.8-1.3, sees the lesions it learned 1.25
times larger), but they then under-segment the largest, fainter lesions (a 91 mL infarct on real anatomy found
at 0.25 of its volume instead of 0.49). So the bundle reads both and keeps, voxel by voxel, the larger of the
two probabilities: the small lesions of the finer reading and the whole large lesions of the training-size one.
A lesion of that maximum is kept only where the readings agree enough: the mean of the readings must reach
:data:`READING_AGREEMENT` times the threshold (0.45 at 0.5) at one of its voxels at least, so that a speck one
reading calls lesion with confidence and the other not at all is dropped, while the maximum still sets the extent
of the lesions kept. Measured on the three phantom and three template models below (same weights, only the rule
changed): the maximum alone gave lesion F1 0.725 (phantom) and 0.849 (template); agreement at 0.45 gives 0.745 and
0.863, Dice unchanged (0.781 -> 0.781, 0.772 -> 0.772), and no model loses F1. The mean alone (0.5) removes more
false lesions on the phantom (F1 0.765) but also lesions one reading finds alone on real anatomy (one template
model 0.855 -> 0.817); 0.3-0.4 lie between (benchmarks/results/reading-sizes.txt).
Measured on 15-minute cpu-preset models (benchmarks/results/reading-sizes.txt): on the MNI152 template's
anatomy, over three models, held-out Dice 0.700 -> 0.772 and lesion F1 0.811 -> 0.849 (every model gains both),
the under-segmented large lesions a little closer to whole; on the phantom, over three models, Dice 0.759 -> 0.781
and lesion F1 0.707 -> 0.725 (one model's F1 0.724 -> 0.716), 0.3 more false lesions per case. The cost: small
bright look-alikes are seen better too (the demo's cohort: lesion F1 0.92 -> 0.69-0.74 on four cases).
Read alone at finer sizes still (192, 224 pixels) false lesions multiply: the tissue's texture is then further
from anything the network saw.

On CT, read with the maximum alone, the finer reading cost lesion F1 (0.247 -> 0.214): under CT's 3-6 HU of noise
it calls more specks lesion. With the agreement at the threshold itself (:data:`CT_READING_AGREEMENT`: the readings'
mean must call a lesion lesion somewhere in it) the two readings gain on CT over the training size alone: on three
CT models (two fine-tuned from the CT starter, the starter untrained) Dice +0.036, +0.008, +0.015 and lesion F1
+0.047, +0.022, -0.005, false lesions per case 1.75 -> 0.60, 1.00 -> 0.60, 0.45 -> 0.25, the large lesions' volumes
closer to whole (benchmarks/results/ct-budget.txt). At 0.9 CT kept more false lesions (2.25 and 1.60 per case). So
``auto`` (the cpu preset's choice) adds the finer reading for every modality, and the trainer records the agreement
in the bundle: :data:`READING_AGREEMENT` for MRI, :data:`CT_READING_AGREEMENT` when every channel is CT
(:func:`reading_agreement_for`).

A third reading, at 1.5 times the training size (192 pixels, about 0.95 mm), added to the two with the same rule
(the maximum's lesions kept where the three readings' mean reaches the agreement level) gains Dice on every
real-anatomy model measured: four template models 0.774 -> 0.811 on average (+0.029 to +0.054 each, lesion F1 0.864 ->
0.865); on CT 0.351 -> 0.359 and 0.318 -> 0.346 (F1 -0.015, +0.018); on the phantom four of six models gain a little
and two lose a little (the five fine-tuned ones 0.783 -> 0.787, F1 0.753 -> 0.763). The finer readings draw the
lesions' edges closer to the native voxels and fill more of the large, faint lesions the coarse one finds in part;
the three-way mean keeps the 192 reading's specks out. 192 with 128 but without 160 kept more false lesions on the
phantom (F1 0.727 against 0.766). So ``auto`` reads at the training size and at :data:`AUTO_SCALES` times it (128,
160 and 192 pixels for the cpu preset); a case then takes x1.36 the time of one reading
(benchmarks/bench_reading_cost.py; benchmarks/results/reading-sizes.txt).

A bundle records its readings in its manifest (``reading_sizes``, pixels, e.g. ``[128, 160]``, and
``reading_agreement``); bundles without them read at their training size alone, or with :data:`READING_AGREEMENT`
(bundles trained before the third reading keep the two they record).
The trainer sets them from ``TrainConfig.inference_scale`` and the run's channels.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from lesionseg.errors import ParameterError

#: ``inference_scale="auto"``: bundles read at their training size and at these many times it
AUTO_SCALES = (1.25, 1.5)

#: several readings: a lesion of their maximum is kept when their mean reaches this fraction of the threshold at
#: one of its voxels (1: the mean must call it lesion; 1 / the number of readings: every lesion of the maximum);
#: MRI bundles and bundles that do not record their own
READING_AGREEMENT = 0.9

#: the reading agreement of CT bundles (every channel CT)
CT_READING_AGREEMENT = 1.0

#: the reading size's smallest and largest scale of the training size (further, the network sees lesions at
#: sizes its zoom augmentation never showed it)
SCALE_RANGE = (0.5, 2.0)


def scaled_slice_size(size: int, scale: float, multiple: int) -> int:
    """``size * scale`` rounded to the nearest multiple of ``multiple`` (at least one multiple).

    Args:
        size: the training slice size in pixels.
        scale: the reading size over the training size.
        multiple: the network's size multiple (2 ** its number of down-samplings).

    Returns:
        The reading size in pixels, e.g. 160 for (128, 1.25, 16).
    """
    check_scale(scale)
    return max(int(multiple), int(round(size * float(scale) / multiple)) * int(multiple))


def check_scale(scale: Any) -> None:
    """Refuse a reading scale that is neither ``"auto"`` nor inside :data:`SCALE_RANGE` (ParameterError naming
    the option)."""
    low, high = SCALE_RANGE
    if scale == "auto":
        return
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not low <= float(scale) <= high:
        raise ParameterError(f"--inference-scale must be auto or a number from {low:g} to {high:g} (the reading size "
                             f"over the training size), not {scale!r}.")


def resolved_scales(scale: float | str) -> tuple[float, ...]:
    """The reading scales of a run besides its training size: ``(scale,)``, or :data:`AUTO_SCALES` for ``"auto"``."""
    check_scale(scale)
    return AUTO_SCALES if scale == "auto" else (float(scale),)


def scaled_reading_sizes(size: int, scale: float | str, multiple: int) -> list[int]:
    """The slice sizes (pixels) a model trained at ``size`` reads at: ``size`` first, then its scales by ``scale``
    (:func:`resolved_scales`, rounded by :func:`scaled_slice_size`) that differ from it, without repeats,
    e.g. [128, 160, 192] for (128, "auto", 16)."""
    sizes = [int(size)]
    for factor in resolved_scales(scale):
        scaled = scaled_slice_size(size, factor, multiple)
        if scaled not in sizes:
            sizes.append(scaled)
    return sizes


def reading_agreement_for(channels: Sequence[str]) -> float:
    """The reading agreement a bundle of these input ``channels`` records: :data:`CT_READING_AGREEMENT` when every
    one is CT, else :data:`READING_AGREEMENT`."""
    from lesionseg.data.channels import all_ct

    return CT_READING_AGREEMENT if all_ct(list(channels)) else READING_AGREEMENT


def reading_sizes(manifest: Mapping[str, Any], requested: Sequence[int] | None, minimum: int,
                  source: str) -> list[int]:
    """The slice sizes (pixels) a predictor reads at, the first one the network's own: ``requested`` when given,
    else the manifest's ``reading_sizes``, else its training size (``preprocessing.size``) alone.

    A size that is not a multiple of the network's size multiple is read as it is and padded for the network
    (as the training size is).

    Raises:
        ParameterError: no size, a repeated one, a size that is not a whole number of pixels or is below
            ``minimum`` (and 16), or one farther than :data:`SCALE_RANGE` from the training size.
    """
    trained = int(manifest["preprocessing"]["size"])
    chosen = list(requested) if requested is not None else list(manifest.get("reading_sizes") or [trained])
    option = "--slice-size" if requested is not None else f"the reading_sizes of {source}"
    smallest = max(int(minimum), 16)
    if not chosen or len(set(chosen)) != len(chosen):
        raise ParameterError(f"{option} must name one or more different slice sizes, not {chosen!r}.")
    low, high = SCALE_RANGE
    for size in chosen:
        if isinstance(size, bool) or not isinstance(size, int) or size < smallest:
            raise ParameterError(f"{option} must be whole numbers of pixels, each at least {smallest}, not {size!r}.")
        if not low * trained <= size <= high * trained:
            raise ParameterError(f"{option} {size} is too far from the {trained} pixels the model was trained at; "
                                 f"choose from {int(low * trained)} to {int(high * trained)}.")
    return [int(size) for size in chosen]
