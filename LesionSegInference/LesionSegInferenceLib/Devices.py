"""The device choices the panel offers, with the detected GPU's name and memory.

Detection imports torch (inside the function, so this file loads without it) and describes devices with
``lesionseg.device.describe_device``. A GPU kind the machine does not have is listed as unavailable, so
the panel can grey it out and validation can refuse it before a process starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .Parameters import DEVICE_CHOICES, DEVICE_LABELS

#: Below this much GPU memory (GB) the label warns that large volumes may fall back to the CPU.
LOW_GPU_MEMORY_GB = 4.0


@dataclass(frozen=True)
class DeviceOption:
    """One entry of the device list.

    Attributes:
        choice: the ``--device`` value ("auto", "cpu", "cuda", "mps").
        label: what the panel shows, e.g. ``"NVIDIA GPU (CUDA): RTX A4000, 16.0 GB"``.
        available: whether this machine can run on it.
    """

    choice: str
    label: str
    available: bool = True


def detect_devices() -> list[DeviceOption]:
    """The device choices in :data:`DEVICE_CHOICES` order, each labelled with what this machine has.

    Returns:
        One :class:`DeviceOption` per choice. Without torch, only "auto" and "cpu" are available and say so.
    """
    try:
        import torch

        from lesionseg.device import describe_device
    except (ImportError, OSError):  # not installed yet, or a broken installation (a missing library)
        note = " - PyTorch is not installed yet"
        return [DeviceOption("auto", DEVICE_LABELS["auto"] + note), DeviceOption("cpu", DEVICE_LABELS["cpu"]),
                DeviceOption("cuda", DEVICE_LABELS["cuda"] + note, False),
                DeviceOption("mps", DEVICE_LABELS["mps"] + note, False)]

    mps = getattr(torch.backends, "mps", None)
    available = {"auto": True, "cpu": True, "cuda": bool(torch.cuda.is_available()),
                 "mps": bool(mps is not None and mps.is_available())}
    details: dict[str, str] = {}
    for choice in ("cuda", "mps"):
        if available[choice]:
            info = describe_device(torch.device(choice))
            memory = f", {info.memory_gb:.1f} GB" if info.memory_gb else ""
            warning = (" (little memory: large volumes may fall back to the CPU)"
                       if info.memory_gb and info.memory_gb < LOW_GPU_MEMORY_GB else "")
            details[choice] = f"{info.name}{memory}{warning}"
        else:
            details[choice] = "not found on this computer"
    details["cpu"] = describe_device(torch.device("cpu")).name
    gpu = next((choice for choice in ("cuda", "mps") if available[choice]), None)
    details["auto"] = f"uses {DEVICE_LABELS[gpu]}" if gpu else "uses the CPU: no GPU found"
    return [DeviceOption(choice, f"{DEVICE_LABELS[choice]}: {details[choice]}", available[choice])
            for choice in DEVICE_CHOICES]


def available_device_choices(options: list[DeviceOption]) -> tuple[str, ...]:
    """The choices of ``options`` that this machine can run on."""
    return tuple(option.choice for option in options if option.available)
