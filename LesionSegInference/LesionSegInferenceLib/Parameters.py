"""The settings of one segmentation run, as plain data (no Qt, no Slicer application)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: Compute devices the user can choose, in the order the panel lists them. "auto" takes CUDA, then
#: Apple's MPS, then the CPU, whichever the machine has.
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

#: What the panel shows for each device choice (the detected GPU's name and memory are added to it).
DEVICE_LABELS: dict[str, str] = {
    "auto": "Automatic (GPU when available)",
    "cpu": "CPU",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (MPS)",
}

#: Where the lesion is: "auto" runs the network on both hemisphere orientations (``lesionseg segment --side``).
SIDE_CHOICES: tuple[str, ...] = ("auto", "left", "right")
SIDE_LABELS: dict[str, str] = {
    "auto": "Unknown (try both hemispheres)",
    "left": "Patient's left hemisphere",
    "right": "Patient's right hemisphere",
}

#: Lesions smaller than this are removed by default, in mm³ (``lesionseg.infer.postprocess``'s default).
DEFAULT_MIN_LESION_MM3 = 10.0


@dataclass
class InferenceParameters:
    """What the LesionSegInference panel (or a script) asks for.

    Attributes:
        bundle_path: the model bundle file (``.lsb``, see ``lesionseg.bundle``).
        input_volumes: channel name (as the bundle names it, e.g. "flair", "dwi") -> the
            ``vtkMRMLScalarVolumeNode`` holding it; the bundle's reference channel gives the output grid.
        device: one of :data:`DEVICE_CHOICES`.
        side: one of :data:`SIDE_CHOICES`.
        tta: test-time augmentation (anterior-posterior flips averaged).
        threshold: lesion probability threshold in (0, 1); None for the bundle's own.
        min_lesion_mm3: connected lesions smaller than this volume (mm³) are removed.
        fill_holes: fill holes enclosed in a lesion.
        output_segmentation: the ``vtkMRMLSegmentationNode`` to write into; None for a new one.
    """

    bundle_path: str = ""
    input_volumes: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    side: str = "auto"
    tta: bool = False
    threshold: float | None = None
    min_lesion_mm3: float = DEFAULT_MIN_LESION_MM3
    fill_holes: bool = True
    output_segmentation: Any = None

    def validate(self) -> tuple[bool, str]:
        """Check the options that need neither the bundle nor the volumes.

        Returns:
            ``(True, "")`` or ``(False, reason)``: one sentence naming the option and what to do.
        """
        return validate_segment_options(self.device, self.side, self.threshold, self.min_lesion_mm3)


def validate_segment_options(device: str, side: str, threshold: float | None,
                             min_lesion_mm3: float) -> tuple[bool, str]:
    """The segmentation options shared by one volume and a folder run: device, side, threshold (None: the
    bundle's) and the smallest lesion kept (mm³).

    Returns:
        ``(True, "")`` or ``(False, reason)``: one sentence naming the option and what to do.
    """
    if device not in DEVICE_CHOICES:
        return False, f"The device {device!r} is not one of {', '.join(DEVICE_CHOICES)}; choose one of those."
    if side not in SIDE_CHOICES:
        return False, f"The side {side!r} is not one of {', '.join(SIDE_CHOICES)}; choose one of those."
    if threshold is not None and not (_finite(threshold) and 0.0 < threshold < 1.0):
        return False, f"The threshold {threshold} must lie strictly between 0 and 1; move the slider inside."
    if not (_finite(min_lesion_mm3) and min_lesion_mm3 >= 0.0):
        return False, (f"The minimum lesion size {min_lesion_mm3} mm³ must be a number of 0 or more; "
                       "set it to 0 to keep every lesion.")
    return True, ""


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
