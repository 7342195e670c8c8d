"""A 3D U-Net whose 3x3x3 convolutions are factorised into (2+1)D pairs.

Each 3x3x3 convolution of a classic 3D U-Net block is replaced by an in-plane ``(1, 3, 3)`` convolution
followed by a through-plane ``(3, 1, 1)`` convolution, kernel sizes in ``(z, y, x)`` order, with a
normalisation and activation between the two and after the second (the (2+1)D factorisation of Tran et
al., CVPR 2018, "A closer look at spatiotemporal convolutions"). The intermediate width is the block's
output width (the paper's parameter-matching width is not used; the network stays smaller than its 3D
twin).

The layout is otherwise MONAI's ``BasicUNet``: five resolution levels, two (factorised) convolutions per
level, 2x2x2 max-pooling down, 2x2x2 transposed convolution up, skip connections by concatenation, a final
1x1x1 convolution to the class logits. MONAI's ``BasicUNet`` hard-codes 3x3x3 kernels in its blocks,
which is why this network is written here from MONAI's ``Convolution`` and ``UpSample`` blocks. The
transposed convolutions (2x2x2) and the final 1x1x1 convolution have no 3x3x3 kernel to factorise.

Input ``(B, C, Z, Y, X)``; every spatial size must be a multiple of 16 (four poolings).
"""

from __future__ import annotations

from typing import Sequence

import torch
from monai.networks.blocks import Convolution, UpSample
from torch import nn

#: The two factors of a 3x3x3 kernel, in (z, y, x) order.
IN_PLANE_KERNEL = (1, 3, 3)
THROUGH_PLANE_KERNEL = (3, 1, 1)

_ACT = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True})
_NORM = ("instance", {"affine": True})


def _factorised_conv(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    """One (2+1)D convolution: (1,3,3) conv -> norm -> act -> (3,1,1) conv -> norm -> dropout -> act."""
    return nn.Sequential(
        Convolution(3, in_channels, out_channels, kernel_size=IN_PLANE_KERNEL, act=_ACT, norm=_NORM),
        Convolution(3, out_channels, out_channels, kernel_size=THROUGH_PLANE_KERNEL, act=_ACT, norm=_NORM,
                    dropout=dropout),
    )


class _TwoFactorisedConvs(nn.Sequential):
    """The two convolutions of a U-Net level, each factorised."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__(
            _factorised_conv(in_channels, out_channels, dropout),
            _factorised_conv(out_channels, out_channels, dropout),
        )


class _Up(nn.Module):
    """Transposed convolution up, concatenation with the skip, two factorised convolutions."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.upsample = UpSample(3, in_channels, in_channels // 2, scale_factor=2, mode="deconv")
        self.convs = _TwoFactorisedConvs(in_channels // 2 + skip_channels, out_channels, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([skip, self.upsample(x)], dim=1))


class UNet2Plus1D(nn.Module):
    """A five-level 3D U-Net with (2+1)D-factorised convolutions.

    Args:
        in_channels: input channels (modalities).
        out_channels: output classes (logits).
        features: widths of the five levels, finest first.
        dropout: dropout probability after each factorised convolution.

    Shapes: input ``(B, in_channels, Z, Y, X)``, output ``(B, out_channels, Z, Y, X)`` logits.
    """

    def __init__(self, in_channels: int, out_channels: int = 2,
                 features: Sequence[int] = (16, 32, 64, 128, 256), dropout: float = 0.0) -> None:
        super().__init__()
        f = [int(v) for v in features]
        if len(f) != 5:
            raise ValueError(f"features must have 5 widths (one per level); got {features!r}.")
        self.encoders = nn.ModuleList([_TwoFactorisedConvs(in_channels, f[0], dropout)])
        for level in range(1, 5):
            self.encoders.append(_TwoFactorisedConvs(f[level - 1], f[level], dropout))
        self.pool = nn.MaxPool3d(2)
        self.decoders = nn.ModuleList(
            [_Up(f[level], f[level - 1], f[level - 1], dropout) for level in range(4, 0, -1)]
        )
        self.head = nn.Conv3d(f[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for index, encoder in enumerate(self.encoders):
            x = encoder(x if index == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for decoder in self.decoders:
            x = decoder(x, skips.pop())
        return self.head(x)
