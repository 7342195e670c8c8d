"""Which channels preparation registers: none on the reference grid (unless asked), one per other grid.

The registration itself is replaced by a stub that records its calls (what it computes is tested in
test_registration.py); the grids are hand-built SimpleITK images.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import PreprocessingError
from lesionseg.preprocess import PrepareConfig
from lesionseg.preprocess import registration as registration_module
from lesionseg.preprocess.channel_alignment import register_channels
from lesionseg.preprocess.registration import RegistrationResult


def volume(size=(20, 22, 12), spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0), seed=0) -> sitk.Image:
    array = np.random.default_rng(seed).random(tuple(reversed(size))).astype(np.float32)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


@pytest.fixture()
def calls(monkeypatch):
    """Replace the registration by a stub: each call is recorded and returns a distinct translation."""
    made = []

    def fake_register(fixed, moving, *, channel="moving", fixed_channel="fixed", **_):
        made.append((channel, fixed_channel))
        transform = sitk.TranslationTransform(3, (float(len(made)), 0.0, 0.0))
        return RegistrationResult(transform, {"stages": ["rigid", "affine"], "stub": len(made)}, -1.0)

    monkeypatch.setattr(registration_module, "register", fake_register)
    return made


def isles_like() -> dict[str, sitk.Image]:
    dwi = volume(seed=1)
    adc = volume(seed=2)  # DWI's grid: the same acquisition
    flair = volume(size=(30, 32, 6), spacing=(1.5, 1.5, 5.0), origin=(-3.0, 2.0, 1.0), seed=3)
    return {"dwi": dwi, "adc": adc, "flair": flair}


def test_a_channel_on_the_reference_grid_is_not_registered_unless_asked(calls):
    images = isles_like()
    transforms, records = register_channels(images, ["dwi", "adc", "flair"], "dwi", PrepareConfig(), "case")
    assert calls == [("flair", "dwi")]  # ADC shares DWI's grid: taken as it is
    assert transforms["adc"] is None and records["adc"]["stages"] == []
    assert "already on the grid of dwi" in records["adc"]["skipped"]
    assert records["flair"]["stub"] == 1
    calls.clear()
    _, records = register_channels(images, ["dwi", "adc", "flair"], "dwi", PrepareConfig(register_aligned=True), "case")
    assert calls == [("adc", "dwi"), ("flair", "dwi")]
    assert records["adc"]["stages"] == ["rigid", "affine"]


def test_channels_sharing_a_grid_share_one_registration(calls):
    images = isles_like()
    transforms, records = register_channels(images, ["flair", "dwi", "adc"], "flair", PrepareConfig(), "case")
    assert calls == [("dwi", "flair")]
    assert transforms["adc"] is transforms["dwi"] and records["adc"]["shared_with"] == "dwi"
    calls.clear()
    register_channels(images, ["flair", "dwi", "adc"], "flair", PrepareConfig(register_aligned=True), "case")
    assert calls == [("dwi", "flair"), ("adc", "flair")]


def test_the_grid_tolerance_decides_what_is_on_the_reference_grid(calls):
    reference = volume()
    nudged = volume(origin=(0.005, 0.0, 0.0))  # 0.25 % of a voxel: within the tolerance (1 %)
    moved = volume(origin=(0.5, 0.0, 0.0))  # a quarter of a voxel: another grid
    tilted = volume()
    tilted.SetDirection(sitk.Euler3DTransform((0, 0, 0), 0.0, 0.0, np.radians(2.0)).GetMatrix())
    images = {"dwi": reference, "adc": nudged, "t2w": moved, "flair": tilted}
    register_channels(images, list(images), "dwi", PrepareConfig(), "case")
    assert calls == [("t2w", "dwi"), ("flair", "dwi")]


def test_without_registration_a_channel_off_the_grid_is_refused(calls):
    images = isles_like()
    transforms, _ = register_channels(images, ["dwi", "adc"], "dwi", PrepareConfig(registration=[]), "case")
    assert transforms["adc"] is None and not calls
    with pytest.raises(PreprocessingError, match="'flair' is not on the reference grid and registration is off"):
        register_channels(images, ["dwi", "flair"], "dwi", PrepareConfig(registration=[]), "case")
