"""The settings of one segmentation run, as plain data (no Qt, no Slicer application)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Compute devices the user can choose, in the order the panel lists them. "auto" takes CUDA, then
#: Apple's MPS, then the CPU, whichever the machine has.
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

#: What the panel shows for each device choice.
DEVICE_LABELS: dict[str, str] = {
    "auto": "Automatic (GPU when available)",
    "cpu": "CPU",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (MPS)",
}


@dataclass
class InferenceParameters:
    """What the LesionSegInference panel (or a script) asks for.

    Attributes:
        input_volume: the volume to segment, a ``vtkMRMLScalarVolumeNode`` (None until one is chosen).
        bundle_path: the model bundle file (a trained model as one file, see ``lesionseg.bundle``).
        device: one of :data:`DEVICE_CHOICES`.
    """

    input_volume: Any = None
    bundle_path: str = ""
    device: str = "auto"
