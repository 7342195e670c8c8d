"""A dataset laid out exactly like the public ISLES'22 release, written by the tests.

The release (see ../shared/METRICS-NOTES.md and the ISLES'22 data description)::

    sub-strokecaseNNNN/ses-0001/anat/sub-strokecaseNNNN_ses-0001_FLAIR.nii.gz   (+ .json sidecar)
    sub-strokecaseNNNN/ses-0001/dwi/sub-strokecaseNNNN_ses-0001_dwi.nii.gz      (+ .json)
    sub-strokecaseNNNN/ses-0001/dwi/sub-strokecaseNNNN_ses-0001_adc.nii.gz      (+ .json)
    derivatives/sub-strokecaseNNNN/ses-0001/sub-strokecaseNNNN_ses-0001_msk.nii.gz
    dataset_description.json

Its structure, kept here: FLAIR on its own grid with thick slices (e.g. 512 x 512 x 28 voxels of
0.45 x 0.45 x 5 mm), DWI and ADC sharing another, isotropic grid (e.g. 112 x 112 x 72 voxels of 2 mm), the
lesion mask on the DWI grid, and the head a few degrees and millimetres away between the FLAIR and the
DWI acquisitions. Fewer voxels than the release (in-plane FLAIR pixels of 1.5 mm, DWI voxels of 2.5 mm)
keep the tests fast. Both acquisitions are made by :func:`lesionseg.synth.make_case` from the same
``(seed, index)``, so they show the same head and lesions; the FLAIR's own lesion mask (the phantom
sampled on the FLAIR grid, in its pose) is the truth a mask carried from DWI to FLAIR is compared with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lesionseg.io import write_image
from lesionseg.synth import make_case
from lesionseg.synth.geometry import HeadPose

#: FLAIR: thick axial slices, finer in-plane pixels than DWI (release: 0.45 x 0.45 x 5 mm)
FLAIR_GRID = {"size_xyz": (132, 150, 28), "spacing_mm": (1.5, 1.5, 5.0)}
#: DWI and ADC: one isotropic grid (release: 2 mm)
DWI_GRID = {"size_xyz": (80, 90, 56), "spacing_mm": (2.5, 2.5, 2.5)}
#: where the head is in the FLAIR acquisition relative to the DWI one: (shift in mm, turn about z in degrees)
FLAIR_POSE = ((3.0, -2.0, 2.0), 4.0)
SESSION = "ses-0001"


@dataclass
class ReleaseCase:
    """One written case: its files and the phantom truths.

    Attributes:
        case_id: ``sub-strokecaseNNNN``.
        flair, dwi, adc, mask: the written files (the mask on the DWI grid).
        flair_truth: the lesion mask of the same phantom on the FLAIR grid, in the FLAIR's head pose.
        dwi_brain: the phantom's intracranial mask on the DWI grid.
        flair_to_dwi: the true transform from FLAIR physical points to DWI physical points (LPS mm).
    """

    case_id: str
    flair: Path
    dwi: Path
    adc: Path
    mask: Path
    flair_truth: sitk.Image
    dwi_brain: sitk.Image
    flair_to_dwi: sitk.AffineTransform


def _sidecar(path: Path, fields: dict) -> None:
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(fields, indent=2), encoding="utf-8")


def true_flair_to_dwi() -> sitk.AffineTransform:
    """FLAIR physical point -> the DWI physical point showing the same anatomy (the head-pose difference)."""
    flair_head = HeadPose.from_option(FLAIR_POSE).head_to_physical()
    dwi_head = HeadPose.from_option(None).head_to_physical()
    composed = dwi_head @ flair_head.inverse()
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(np.asarray(composed.matrix, float).ravel().tolist())
    transform.SetTranslation(np.asarray(composed.offset, float).tolist())
    return transform


def write_isles22_release(root: Path, cases: int = 2, seed: int = 22) -> list[ReleaseCase]:
    """Write ``cases`` cases in the ISLES'22 public layout under ``root`` (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "ISLES 2022 (synthetic, LesionSeg tests)", "BIDSVersion": "1.4.0"}), encoding="utf-8")
    written = []
    for index in range(1, cases + 1):
        subject = f"sub-strokecase{index:04d}"
        stem = f"{subject}_{SESSION}"
        dwi_case = make_case(index, seed=seed, modalities=("dwi", "adc"), **DWI_GRID)
        flair_case = make_case(index, seed=seed, modalities=("flair",), head_pose=FLAIR_POSE, **FLAIR_GRID)
        folder = root / subject / SESSION
        flair = write_image(flair_case.channels["flair"], folder / "anat" / f"{stem}_FLAIR.nii.gz")
        dwi = write_image(dwi_case.channels["dwi"], folder / "dwi" / f"{stem}_dwi.nii.gz")
        adc = write_image(dwi_case.channels["adc"], folder / "dwi" / f"{stem}_adc.nii.gz")
        _sidecar(flair, {"Modality": "MR", "SeriesDescription": "FLAIR", "SliceThickness": 5})
        _sidecar(dwi, {"Modality": "MR", "SeriesDescription": "DWI b1000"})
        _sidecar(adc, {"Modality": "MR", "SeriesDescription": "ADC"})
        mask = write_image(dwi_case.lesion_mask, root / "derivatives" / subject / SESSION / f"{stem}_msk.nii.gz")
        written.append(ReleaseCase(subject, Path(flair), Path(dwi), Path(adc), Path(mask), flair_case.lesion_mask,
                                   dwi_case.brain_mask, true_flair_to_dwi()))
    return written
