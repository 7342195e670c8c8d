"""Small hand-made datasets for the tests (tiny volumes with known voxels, in the layouts discover reads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from lesionseg.io import write_image


def small_volume(seed: int, spacing=(1.0, 1.0, 3.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(np.random.default_rng(seed).integers(0, 500, (6, 10, 12)).astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin((-6.0, -5.0, -9.0))
    return image


def small_mask(seed: int, reference: sitk.Image, labels=(1,)) -> sitk.Image:
    array = np.zeros((6, 10, 12), np.uint8)
    rng = np.random.default_rng(seed)
    for label in labels:
        z, y, x = rng.integers(0, 4), rng.integers(0, 7), rng.integers(0, 9)
        array[z:z + 2, y:y + 3, x:x + 3] = label
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(reference)
    return mask


def write_isles_public(root: Path, n: int = 3, channels=("flair", "dwi", "adc")) -> dict[str, np.ndarray]:
    suffix = {"flair": ("anat", "FLAIR"), "dwi": ("dwi", "dwi"), "adc": ("dwi", "adc"), "ct": ("anat", "ct")}
    truth = {}
    for i in range(1, n + 1):
        subject = f"sub-strokecase{i:04d}"
        reference = None
        for j, channel in enumerate(channels):
            folder, name = suffix[channel]
            image = small_volume(10 * i + j)
            reference = reference or image
            write_image(image, root / subject / "ses-0001" / folder / f"{subject}_ses-0001_{name}.nii.gz")
        mask = small_mask(i, reference)
        truth[subject] = sitk.GetArrayFromImage(mask)
        write_image(mask, root / "derivatives" / subject / "ses-0001" / f"{subject}_ses-0001_msk.nii.gz")
    return truth
