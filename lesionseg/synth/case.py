"""One synthetic case in memory: :func:`make_case` and the :class:`SynthCase` it returns.

Randomness: case ``index`` of ``seed`` draws from generators seeded with ``[seed, index, stream, ...]``,
one stream per job (anatomy, territories and lesions, each modality's intensities, noise and bias, each
acquisition's misalignment); the lesion age follows a golden-ratio sequence over the index from a
seed-drawn start (see ``draw_lesion_age``). A case therefore depends only on ``(seed, index)``, and its
anatomy and lesions do not change when other modalities, another grid or another pose are asked for (the
phantom is defined in continuous millimetre coordinates and only sampled on the grid).

Cost: the phantom is sampled once per acquisition that sees different content (once in all when there
is no misalignment); about 0.8 s of CPU per single-channel 192 x 224 x 48 case, writing included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.synth.geometry import Grid, HeadPose, euler_transform
from lesionseg.synth.lesions import TERRITORY_LABELS, draw_lesions, draw_territories
from lesionseg.synth.modalities import (
    ACQUISITION, MODALITIES, bias_field, draw_lesion_age, draw_modality, render,
)
from lesionseg.synth.options import check_options
from lesionseg.synth.phantom import TISSUE_LABELS, draw_anatomy, params_dict
from lesionseg.synth.sampling import Content, sample_content

_STREAM = {"anatomy": 1, "lesions": 2, "modality": 4, "noise": 5, "bias": 6, "misalignment": 7}
_CODE = {name: i for i, name in enumerate(MODALITIES)}


@dataclass
class LesionInfo:
    """What a test needs to know about one drawn lesion.

    Attributes:
        label: Its value in ``SynthCase.lesion_instances`` (1, 2, ...).
        side: Hemisphere, ``"left"`` or ``"right"`` (patient's side; left is +x in LPS).
        territory: ``"ACA"``, ``"MCA"`` or ``"PCA"``; the lesion lies inside that territory's label.
        centre_mm: Physical LPS point (mm) of the main blob's centre, after the head pose.
        radius_mm: Nominal equivalent radius drawn for it (before clipping to tissue and territory).
        volume_mm3: Volume on the reference grid (voxel count x voxel volume); 0 if too small to show.
        contrast_factor: Its contrast relative to the case's lesion contrast.
    """

    label: int
    side: str
    territory: str
    centre_mm: tuple[float, float, float]
    radius_mm: float
    volume_mm3: float
    contrast_factor: float


@dataclass
class SynthCase:
    """A synthetic case with its phantom truth. All images share one grid (the reference grid).

    Attributes:
        case_id: ISLES'22-style id, ``"sub-strokecase0001"`` for index 1.
        index, seed: What the case was made from.
        channels: Images by modality name (``flair``, ``dwi``, ``adc``, ``ct``), int16.
        lesion_mask: uint8 0/1 lesion mask of the reference channel's content.
        lesion_instances: uint8, 0 background and ``LesionInfo.label`` per lesion (later lesions win
            where two overlap).
        brain_mask: uint8 0/1 intracranial volume (tissue labels 3-7, see ``TISSUE_LABELS``).
        tissue_labels: uint8 tissue labels of the healthy anatomy (table ``TISSUE_LABELS``).
        territory_labels: uint8 arterial territories over the brain mask (table ``TERRITORY_LABELS``).
        bias_fields: float32 multiplicative bias field applied to each MRI channel that has one.
        midplane_point_mm, midplane_normal: The exact mid-sagittal plane (physical LPS; the unit normal
            points to the patient's left).
        lesions: One :class:`LesionInfo` per lesion.
        transforms: Per channel, the rigid transform ``T`` mapping a reference-grid physical point to
            where that channel shows the same anatomy (identity when aligned);
            ``sitk.Resample(channel, reference, T)`` realigns the channel.
        reference_channel: The channel whose content the masks and labels describe (never misaligned).
        parameters: Every drawn parameter (anatomy, lesions, intensities, transforms), JSON-ready.
    """

    case_id: str
    index: int
    seed: int
    channels: dict[str, sitk.Image]
    lesion_mask: sitk.Image
    lesion_instances: sitk.Image
    brain_mask: sitk.Image
    tissue_labels: sitk.Image
    territory_labels: sitk.Image
    bias_fields: dict[str, sitk.Image]
    midplane_point_mm: tuple[float, float, float]
    midplane_normal: tuple[float, float, float]
    lesions: list[LesionInfo]
    transforms: dict[str, sitk.Euler3DTransform]
    reference_channel: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def lesion_sides(self) -> list[str]:
        """Hemisphere of each lesion, in ``lesions`` order."""
        return [lesion.side for lesion in self.lesions]

    def truth(self) -> dict[str, Any]:
        """The phantom truth as a JSON-ready dict (what the writer stores next to the images)."""
        return {
            "case_id": self.case_id,
            "index": self.index,
            "seed": self.seed,
            "reference_channel": self.reference_channel,
            "midplane": {"point_mm": list(self.midplane_point_mm), "normal": list(self.midplane_normal),
                         "frame": "LPS"},
            "lesions": [vars(lesion) | {"centre_mm": list(lesion.centre_mm)} for lesion in self.lesions],
            "transforms": {
                name: {"type": "Euler3DTransform", "parameters": list(t.GetParameters()),
                       "parameter_order": "angle_x, angle_y, angle_z (rad), translation x, y, z (mm)",
                       "center_mm": list(t.GetCenter()),
                       "maps": "reference-grid physical point -> same anatomy in this channel (LPS mm)"}
                for name, t in self.transforms.items()
            },
            "tissue_labels": {str(k): v for k, v in TISSUE_LABELS.items()},
            "territory_labels": {str(k): v for k, v in TERRITORY_LABELS.items()},
            "parameters": self.parameters,
        }


def case_id_for(index: int) -> str:
    """ISLES'22-style subject id for a 1-based case index."""
    return f"sub-strokecase{index:04d}"


def check_case_options(modalities, **options) -> tuple[str, ...]:
    """Validate ``make_case`` options without generating anything; returns the modality names.

    Raises:
        ParameterError: An unknown option name or an unusable value.
    """
    return check_options(modalities, **options)


def make_case(
    index: int,
    seed: int = 0,
    modalities=("flair",),
    size_xyz=(192, 224, 48),
    spacing_mm=(1.0, 1.0, 3.0),
    misalignment=None,
    head_pose=None,
    noise: bool = True,
    bias: bool = True,
    lesion_age=(0.0, 1.0),
) -> SynthCase:
    """Generate one synthetic stroke case in memory.

    Args:
        index: 1-based case number (the id is ``sub-strokecase{index:04d}``).
        seed: Cohort seed; the case depends only on ``(seed, index)``.
        modalities: Channel names among ``flair``, ``dwi``, ``adc``, ``ct``; the first is the reference.
        size_xyz: Grid size in voxels (x, y, z).
        spacing_mm: Voxel spacing in mm (x, y, z); e.g. (1, 1, 5) for thick axial slices.
        misalignment: None, or ``(max_degrees, max_mm)``: every acquisition other than the reference's is
            moved by a rigid transform with angles about x, y, z drawn in [-max_degrees, max_degrees] and
            translations in [-max_mm, max_mm], about the head centre (DWI and ADC move together).
        head_pose: None (head centred, mid-sagittal plane x = 0), or ``((dx, dy, dz) mm, degrees)``:
            shift of the head from its default place (within 50 mm) and rotation about the superior (z)
            axis through the head centre (within 45 degrees); ``midplane_*`` follow it exactly.
        noise: Add noise (set False for noise-free images in tests).
        bias: Apply the MRI bias fields (set False for none).
        lesion_age: ``(low, high)`` in [0, 1]: the range the case's lesion age is spread over (see
            :func:`~lesionseg.synth.modalities.draw_lesion_age`). The default (0, 1) spans hyperacute lesions
            that FLAIR barely shows to late ones; (0.5, 1) resembles FLAIR a few days after the stroke
            (the curriculum paper's day-6 FLAIR), where lesions are hyperintense but still of varied contrast.

    Returns:
        The :class:`SynthCase`; the grid has identity direction and its centre at LPS (0, 0, 0).

    Raises:
        ParameterError: If an argument has an unusable value.
    """
    mods = check_options(modalities, index=index, seed=seed, size_xyz=size_xyz, spacing_mm=spacing_mm,
                         misalignment=misalignment, head_pose=head_pose, noise=noise, bias=bias,
                         lesion_age=lesion_age)
    index, seed = int(index), int(seed)

    def stream(name: str, *keys: int) -> np.random.Generator:
        return np.random.default_rng([seed, index, _STREAM[name], *keys])

    grid = Grid.centred(size_xyz, spacing_mm)
    pose = HeadPose.from_option(head_pose)
    anatomy = draw_anatomy(stream("anatomy"))
    lesion_rng = stream("lesions")
    territories = draw_territories(lesion_rng)
    specs = draw_lesions(lesion_rng, anatomy, territories)
    age_low, age_high = (float(v) for v in lesion_age)
    age = age_low + (age_high - age_low) * draw_lesion_age(seed, index)
    params = {m: draw_modality(stream("modality", _CODE[m]), m, age) for m in mods}
    reference = mods[0]
    groups: dict[str, list[str]] = {}  # acquisition -> its channels; the reference's acquisition first
    for m in mods:
        groups.setdefault(ACQUISITION[m], []).append(m)
    transforms = {
        group: _draw_transform(stream("misalignment", _CODE[group]),
                               misalignment if group != ACQUISITION[reference] else None, pose)
        for group in groups
    }

    channels: dict[str, sitk.Image] = {}
    bias_images: dict[str, sitk.Image] = {}
    truth: Content | None = None
    fractions = None
    for group, members in groups.items():
        if truth is None or misalignment is not None:  # an aligned acquisition sees the reference content
            is_reference = truth is None
            content = sample_content(grid, pose, anatomy, territories, specs,
                                     None if is_reference else transforms[group], with_labels=is_reference)
            truth = content if is_reference else truth
            fractions = content.maps.fractions()
        brain = truth.labels >= 3
        for m in members:
            field_array = None
            if bias and params[m].bias_peak_to_peak is not None:
                field_array = bias_field(stream("bias", _CODE[m]), grid, brain, params[m].bias_peak_to_peak)
                bias_images[m] = grid.image_from_array(field_array)
            noise_rng = stream("noise", _CODE[m]) if noise else None
            array = render(params[m], fractions, content.lesion_fraction, content.lesion_contrast,
                           field_array, noise_rng)
            channels[m] = grid.image_from_array(array)

    brain = truth.labels >= 3
    head_to_physical = pose.head_to_physical()
    voxel_mm3 = float(np.prod(grid.spacing_mm))
    lesions = [
        LesionInfo(number, spec.side, spec.territory,
                   tuple(float(v) for v in head_to_physical.apply(spec.centres[0])), spec.radius_mm,
                   float(np.count_nonzero(truth.instances == number)) * voxel_mm3, spec.contrast_factor)
        for number, spec in enumerate(specs, start=1)
    ]
    parameters = {
        "anatomy": params_dict(anatomy),
        "territories": vars(territories),
        "lesion_age": age,
        "lesions": [spec.to_dict() for spec in specs],
        "modalities": {m: params[m].to_dict() for m in mods},
        "bias_peak_to_peak_measured": {
            m: _peak_to_peak(sitk.GetArrayViewFromImage(image), brain) for m, image in bias_images.items()
        },
        "grid": {"size_xyz": list(grid.size_xyz), "spacing_mm": list(grid.spacing_mm),
                 "origin_mm": list(grid.origin_mm)},
        "head_pose": {"centre_mm": list(pose.centre_mm), "rotation_deg": pose.rotation_deg},
        "misalignment": None if misalignment is None else [float(v) for v in misalignment],
        "noise": noise,
        "bias": bias,
    }
    point, normal = pose.midplane()
    return SynthCase(
        case_id=case_id_for(index),
        index=index,
        seed=seed,
        channels={m: channels[m] for m in mods},
        lesion_mask=grid.image_from_array((truth.instances > 0).astype(np.uint8)),
        lesion_instances=grid.image_from_array(truth.instances),
        brain_mask=grid.image_from_array(brain.astype(np.uint8)),
        tissue_labels=grid.image_from_array(truth.labels),
        territory_labels=grid.image_from_array(truth.territories),
        bias_fields=bias_images,
        midplane_point_mm=point,
        midplane_normal=normal,
        lesions=lesions,
        transforms={m: transforms[ACQUISITION[m]] for m in mods},
        reference_channel=reference,
        parameters=parameters,
    )


def _draw_transform(rng: np.random.Generator, misalignment, pose: HeadPose) -> sitk.Euler3DTransform:
    """An acquisition's rigid transform about the head centre; identity when ``misalignment`` is None."""
    angles, shift = np.zeros(3), np.zeros(3)
    if misalignment is not None:
        angles = rng.uniform(-misalignment[0], misalignment[0], 3)
        shift = rng.uniform(-misalignment[1], misalignment[1], 3)
    return euler_transform(angles, shift, pose.centre_mm)


def _peak_to_peak(field_array: np.ndarray, brain: np.ndarray) -> float:
    """``(max - min) / mean`` of a field over a mask."""
    values = field_array[brain]
    return float((values.max() - values.min()) / values.mean()) if values.size else 0.0
