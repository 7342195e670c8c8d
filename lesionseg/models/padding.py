"""Running a network on inputs whose size is not a multiple of its downsampling factor."""

from __future__ import annotations

import torch
import torch.nn.functional as functional


def forward_padded(network: torch.nn.Module, batch: torch.Tensor, multiple: int, minimum: int = 0) -> torch.Tensor:
    """Pad the spatial axes of ``batch`` (B, C, *spatial) up to a multiple of ``multiple`` (and at least
    ``minimum``), run ``network`` and crop its output back to the input's spatial size.

    Padding is split evenly before and after, with the batch's minimum value (background after
    normalisation), so the content stays centred.
    """
    spatial = batch.shape[2:]
    targets = [max(minimum, -(-n // multiple) * multiple) for n in spatial]
    if list(spatial) == targets:
        return network(batch)
    pads: list[int] = []
    for n, target in zip(reversed(spatial), reversed(targets)):
        before = (target - n) // 2
        pads += [before, target - n - before]
    padded = functional.pad(batch, pads, value=float(batch.min()))
    output = network(padded)
    slices = [slice(None), slice(None)]
    for n, target in zip(spatial, targets):
        before = (target - n) // 2
        slices.append(slice(before, before + n))
    return output[tuple(slices)]
