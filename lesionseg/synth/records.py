"""What a synthetic case is made of: :class:`SynthCase` (images and phantom truth) and :class:`LesionInfo`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import SimpleITK as sitk

from lesionseg.synth.lesions import TERRITORY_LABELS
from lesionseg.synth.phantom import TISSUE_LABELS


@dataclass
class LesionInfo:
    """What a test needs to know about one drawn lesion.

    Attributes:
        label: Its value in ``SynthCase.lesion_instances`` (1, 2, ...).
        side: Hemisphere, ``"left"`` or ``"right"`` (patient's side; left is +x in LPS).
        territory: ``"ACA"``, ``"MCA"`` or ``"PCA"``; the lesion lies inside that territory's label.
        kind: ``"focal"``, ``"territorial"`` or ``"lacunar"`` (see :mod:`lesionseg.synth.patterns`).
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
    kind: str = "focal"


@dataclass
class SynthCase:
    """A synthetic case with its phantom truth. All images share one grid (the reference grid).

    Attributes:
        case_id: ISLES'22-style id, ``"sub-strokecase0001"`` for index 1.
        index, seed: What the case was made from.
        channels: Images by modality name (``flair``, ``dwi``, ``adc``, ``ct``, ``t1``), int16, and the
            perfusion maps (``tmax``, ``cbf``, ``cbv``, ``mtt``), float32 in their units; with
            ``skull=False`` every voxel outside ``brain_mask`` (outside its own acquisition's brain when
            misaligned) is 0.
        lesion_mask: uint8 0/1 lesion mask of the reference channel's content; in a perfusion case the tissue
            fate, 1 core and 2 penumbra (:data:`lesionseg.synth.perfusion.FATE_LABELS`).
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
        parameters: Every drawn parameter (anatomy, lesions, intensities, transforms, the case's options
            under ``"options"`` and the variety draws under ``"variety"``), JSON-ready.
        distractor_labels: uint8 truth of the lesion look-alikes (1 WMH look-alike, 2 old-infarct cavity,
            3 its rim; see :mod:`lesionseg.synth.distractors`), or None without ``distractors``.
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
    distractor_labels: sitk.Image | None = None

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
