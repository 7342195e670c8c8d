"""Running 3D networks over a whole volume by overlapping patches (MONAI ``sliding_window_inference``).

A 3D network trained on patches of size ``(z, y, x)`` is applied to a volume window by window: windows of
the training patch size, overlapping by half a window along each axis, their softmax probabilities blended
with a Gaussian weight (more weight to a window's centre than to its edges). An ensemble's members are
averaged inside each window, which gives the same blended result as averaging the members' blended maps
(the blend is linear). A volume thinner than a window along an axis is padded on both sides with each
channel's minimum (the background of prepared images, as the training patches were padded) and the
result cropped back.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as functional

#: window overlap and blending of :func:`sliding_window_probabilities`
OVERLAP = 0.5
BLEND_MODE = "gaussian"


def _pad_to(volume: torch.Tensor, size: Sequence[int]) -> tuple[torch.Tensor, list[slice]]:
    """Pad ``(1, C, Z, Y, X)`` up to ``size`` per spatial axis with each channel's minimum; the crop back."""
    spatial = volume.shape[2:]
    before = [max(0, s - n) // 2 for s, n in zip(size, spatial)]
    after = [max(0, s - n) - b for s, n, b in zip(size, spatial, before)]
    crop = [slice(b, b + n) for b, n in zip(before, spatial)]
    if not any(before) and not any(after):
        return volume, crop
    pads: list[int] = []
    for b, a in zip(reversed(before), reversed(after)):
        pads += [b, a]
    channels = [functional.pad(volume[:, c:c + 1], pads, value=float(volume[:, c].min()))
                for c in range(volume.shape[1])]
    return torch.cat(channels, dim=1), crop


def sliding_window_probabilities(networks: Sequence[torch.nn.Module], volume: np.ndarray,
                                 patch_size: Sequence[int], *, device: torch.device | str = "cpu",
                                 batch_size: int = 4, overlap: float = OVERLAP, mode: str = BLEND_MODE,
                                 before_window: Callable[[], None] | None = None) -> np.ndarray:
    """Lesion probability of every voxel of a volume, from 3D networks run on overlapping windows.

    Args:
        networks: one or more networks (an ensemble) mapping ``(B, C, z, y, x)`` to logits
            ``(B, classes, z, y, x)``; they are used as they are (put them in eval mode first).
        volume: ``(C, Z, Y, X)`` float image, axes ``(z, y, x)``.
        patch_size: the window ``(z, y, x)``, a size the networks accept (their training patch size).
        device: where the networks are; the stitched result is kept on the CPU.
        batch_size: windows per network call.
        overlap: fraction of a window shared with its neighbour along each axis.
        mode: "gaussian" or "constant" blending of overlapping windows.
        before_window: called before each network call (e.g. to raise on a cancel request).

    Returns:
        ``(Z, Y, X)`` float32 lesion probabilities (softmax channel 1, averaged over the networks).
    """
    from monai.inferers import sliding_window_inference

    def predict(windows: torch.Tensor) -> torch.Tensor:
        if before_window is not None:
            before_window()
        total = None
        for network in networks:
            probability = torch.softmax(network(windows).float(), dim=1)
            total = probability if total is None else total + probability
        return total / len(networks)

    tensor = torch.as_tensor(np.ascontiguousarray(volume), dtype=torch.float32)[None]
    tensor, crop = _pad_to(tensor, patch_size)
    with torch.inference_mode():
        blended = sliding_window_inference(tensor.to(device), roi_size=tuple(int(s) for s in patch_size),
                                           sw_batch_size=int(batch_size), predictor=predict, overlap=overlap,
                                           mode=mode, sw_device=device, device="cpu")
    return np.asarray(blended[(0, 1, *crop)].detach().cpu(), dtype=np.float32)
