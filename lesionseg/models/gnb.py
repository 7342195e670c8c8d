"""A voxel-wise Gaussian naive Bayes classifier as a network: prepared slices in, class log-posteriors out.

The classical baseline of the transfer paper (LesionGnb-style). Per voxel, the features are, for every input
channel (the prepared channels, with their mirrored differences when prepared with them,
:mod:`lesionseg.preprocess.mirror_difference`): the intensity, then its local means at the scales of
``sigmas_px`` (in-plane Gaussian filters on the prepared slice, edges continued by their nearest pixel, the
kernel cut at 4 sigma as :func:`scipy.ndimage.gaussian_filter` does). Feature ``f`` of class ``k`` is
Gaussian with mean ``means[k][f]`` and variance ``variances[k][f]``, independently of the others, so

    log p(k | x) = log priors[k] - 1/2 sum_f [log(2 pi var_kf) + (x_f - mu_kf)^2 / var_kf] - log Z(x).

The module returns the unnormalised log-posteriors as "logits": a softmax over them is the posterior, so
the predictor, the batch path and the evaluation use it exactly like a U-Net (threshold, brain mask and
smallest lesion afterwards). It has no trainable parameters: its numbers are persistent buffers (the
bundle's weights file) built from its JSON configuration (the bundle's manifest), which hold the same
values; :mod:`lesionseg.train.gnb` fits them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional

#: the kernel is cut at this many sigmas on each side (SciPy's default ``truncate``)
TRUNCATE = 4.0


def gaussian_kernel(sigma_px: float) -> torch.Tensor:
    """The normalised 1D Gaussian of ``sigma_px`` pixels, radius ``int(4 sigma + 0.5)`` as in SciPy."""
    radius = int(TRUNCATE * float(sigma_px) + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / float(sigma_px)) ** 2)
    return (kernel / kernel.sum()).float()


def local_mean(slices: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """In-plane Gaussian local mean of ``(B, C, H, W)`` slices (each channel alone, edges replicated)."""
    kernel = gaussian_kernel(sigma_px).to(slices.device, slices.dtype)
    radius = (kernel.numel() - 1) // 2
    channels = slices.shape[1]
    rows = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    columns = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    padded = functional.pad(slices, (radius, radius, radius, radius), mode="replicate")
    return functional.conv2d(functional.conv2d(padded, rows, groups=channels), columns, groups=channels)


def feature_names(channels: Sequence[str], scales_mm: Sequence[float]) -> list[str]:
    """Names of the features, in the order :meth:`GaussianNaiveBayes.features` stacks them."""
    names = list(channels)
    for scale in scales_mm:
        names += [f"{name} mean {scale:g} mm" for name in channels]
    return names


class GaussianNaiveBayes(nn.Module):
    """Gaussian naive Bayes on per-voxel features (see the module docstring).

    Args:
        in_channels: C, the input channels of the slices.
        out_channels: K, the classes (2: background, lesion).
        means, variances: K x F nested lists, F = C * (1 + len(sigmas_px)).
        priors: K class probabilities.
        sigmas_px: Gaussian sigma of each local-mean scale, in prepared pixels.
        scales_mm, pixel_mm, features: what the scales mean (for the record; not used in the computation).

    Raises:
        ValueError: shapes that do not fit, a non-positive variance or prior.
    """

    def __init__(self, in_channels: int, out_channels: int = 2, *, means: Sequence[Sequence[float]],
                 variances: Sequence[Sequence[float]], priors: Sequence[float], sigmas_px: Sequence[float],
                 scales_mm: Sequence[float] = (), pixel_mm: float | None = None,
                 features: Sequence[str] = ()) -> None:
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.sigmas_px = [float(s) for s in sigmas_px]
        count = self.in_channels * (1 + len(self.sigmas_px))
        mean = torch.tensor(means, dtype=torch.float64)
        variance = torch.tensor(variances, dtype=torch.float64)
        prior = torch.tensor(priors, dtype=torch.float64)
        if mean.shape != (self.out_channels, count) or variance.shape != mean.shape:
            raise ValueError(f"means and variances must be {self.out_channels} x {count} (classes x features), "
                             f"not {tuple(mean.shape)} and {tuple(variance.shape)}")
        if prior.shape != (self.out_channels,) or bool((prior <= 0).any()) or bool((variance <= 0).any()):
            raise ValueError("priors (one per class) and variances must be positive")
        if any(s <= 0 for s in self.sigmas_px):
            raise ValueError(f"sigmas_px must be positive, not {self.sigmas_px}")
        self.register_buffer("means", mean.float())
        self.register_buffer("variances", variance.float())
        # the class's constant: log prior - 1/2 sum_f log(2 pi var_kf), in double precision before the cast
        constant = torch.log(prior) - 0.5 * torch.log(2.0 * math.pi * variance).sum(dim=1)
        self.register_buffer("constants", constant.float())

    def features(self, slices: torch.Tensor) -> torch.Tensor:
        """Per-voxel features ``(B, F, H, W)`` of slices ``(B, C, H, W)``: the channels, then their local means
        at each scale (channel order within each block)."""
        parts = [slices] + [local_mean(slices, sigma) for sigma in self.sigmas_px]
        return torch.cat(parts, dim=1)

    def log_posteriors(self, features: torch.Tensor) -> torch.Tensor:
        """Unnormalised class log-posteriors ``(B, K, H, W)`` of features ``(B, F, H, W)``."""
        x = features.float().unsqueeze(1)  # (B, 1, F, H, W)
        mean = self.means[None, :, :, None, None]
        variance = self.variances[None, :, :, None, None]
        distance = ((x - mean) ** 2 / variance).sum(dim=2)  # (B, K, H, W)
        return self.constants[None, :, None, None] - 0.5 * distance

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        """Log-posteriors ``(B, K, H, W)`` of slices ``(B, C, H, W)`` (a softmax gives the posteriors)."""
        if slices.dim() != 4 or slices.shape[1] != self.in_channels:
            raise ValueError(f"expected slices (B, {self.in_channels}, H, W), got {tuple(slices.shape)}")
        return self.log_posteriors(self.features(slices.float()))


def build_gnb(in_channels: int, out_channels: int, **kwargs: Any) -> GaussianNaiveBayes:
    """The registry's builder (keywords as in :class:`GaussianNaiveBayes`)."""
    return GaussianNaiveBayes(in_channels, out_channels, **kwargs)
