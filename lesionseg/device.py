"""Choosing the compute device and numeric precision: GPU when there is one, CPU otherwise, overridable."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

from lesionseg.errors import ParameterError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class DeviceInfo:
    """What a device choice resolved to, for logs and the Slicer panel."""

    device: str
    name: str
    memory_gb: float | None = None

    def describe(self) -> str:
        memory = f", {self.memory_gb:.1f} GB" if self.memory_gb else ""
        return f"{self.device} ({self.name}{memory})"


def resolve_device(choice: str = "auto"):
    """The torch device for ``choice``: auto picks CUDA, then MPS, then the CPU.

    Raises:
        ParameterError: an unknown choice, or a GPU that is asked for and absent.
    """
    import torch

    if choice not in DEVICE_CHOICES:
        raise ParameterError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, not {choice!r}.")
    mps = getattr(torch.backends, "mps", None)
    mps_available = bool(mps and mps.is_available())
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available else torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ParameterError("--device cuda was asked for but no CUDA GPU is available; use --device auto or cpu.")
    if choice == "mps" and not mps_available:
        raise ParameterError("--device mps was asked for but Apple's MPS backend is not available; use auto or cpu.")
    return torch.device(choice)


def describe_device(device) -> DeviceInfo:
    """Name and memory of a torch device."""
    import torch

    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return DeviceInfo("cuda", properties.name, properties.total_memory / 1024**3)
    if device.type == "mps":
        return DeviceInfo("mps", "Apple GPU")
    return DeviceInfo("cpu", f"{torch.get_num_threads()} threads")


def check_precision(precision: str, device) -> None:
    """Refuse a precision the device cannot run (fp16 needs a GPU; bf16 on a CPU needs support for it)."""
    import torch

    if precision not in PRECISIONS:
        raise ParameterError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision == "fp16" and device.type == "cpu":
        raise ParameterError("--precision fp16 needs a GPU; on the CPU use fp32 (or bf16 where the CPU supports it).")
    if precision == "bf16" and device.type == "cpu" and not _cpu_supports_bf16(torch):
        raise ParameterError("--precision bf16: this CPU has no bfloat16 support; use fp32.")


def _cpu_supports_bf16(torch) -> bool:
    backend = getattr(torch.backends, "mkldnn", None)
    checker = getattr(getattr(torch, "cpu", None), "_is_avx512_bf16_supported", None)
    if callable(checker):
        try:
            return bool(checker()) or bool(backend and backend.is_available())
        except RuntimeError:
            return False
    return bool(backend and backend.is_available())


@contextlib.contextmanager
def autocast(precision: str, device) -> Iterator[None]:
    """Mixed precision for the forward pass (no-op for fp32)."""
    import torch

    if precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
