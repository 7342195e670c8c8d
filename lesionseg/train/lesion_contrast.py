"""Lesion contrast augmentation: fade each lesion of a training sample towards the tissue around it.

A stroke lesion's contrast depends on its age, the sequence and the scanner: the same infarct is a faint
+10 % on a FLAIR of the first hours and twice the brightness of white matter a week later, and a hospital's
ten training cases show only a few of these contrasts. A model trained on them marks lesions as bright as
those it saw and confidently misses fainter ones (on held-out synthetic cases, whole 0.2-0.9 mL lesions at
1.1-1.25 times their surroundings got probabilities below 0.4 while the training cases held lesions at
1.1-4.2). Global intensity transforms (scale, gamma) keep a lesion's contrast to its surroundings almost
unchanged; this transform changes exactly that, using the mask.

For each connected lesion of the sample's mask (8-connected in 2D, 26 in 3D), per image channel:

- the lesion's surroundings are a ring of ``ring_px`` pixels around it, outside every lesion (dilated by one
  pixel), and their median is the local background ``b``;
- the image becomes ``b + (I - b) * (1 - (1 - f) * w)``, where ``f`` is the sample's fade factor (drawn
  uniformly in ``factor_range``; 1 leaves the image as it is, 0.5 halves every lesion's difference to its
  surroundings) and ``w`` is 1 on the lesion and falls smoothly to 0 within about two pixels outside it
  (``min(1, 2 * G(lesion))`` outside it, ``G`` a Gaussian blur of ``edge_sigma_px``), so no new edge appears.

Dark lesions (ADC, CT) fade towards their surroundings the same way, since only the difference is scaled.
With 2.5D inputs the neighbouring-slice channels get the centre slice's lesion footprint: a lesion that is
larger on a neighbour keeps its contrast outside the footprint's taper (a mild inconsistency, as between
two slices of a real scan). A lesion whose ring is empty (it fills its slice) is left alone. The mask never
changes.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping

import numpy as np
from monai.transforms import MapTransform, RandomizableTransform
from scipy import ndimage

from lesionseg.errors import ParameterError


def fade_lesions(image: np.ndarray, mask: np.ndarray, factor: float, ring_px: int = 3,
                 edge_sigma_px: float = 1.0) -> np.ndarray:
    """Scale each lesion's difference to its surroundings by ``factor`` (see the module docstring).

    Args:
        image: (C, *spatial) float array: (C, H, W) slices or (C, Z, Y, X) patches; any intensity units.
        mask: (*spatial) 0/1 lesion mask of the same spatial shape.
        factor: the lesions' remaining contrast, >= 0 (1 = unchanged).
        ring_px: width in pixels of the ring whose median is a lesion's background, >= 1.
        edge_sigma_px: Gaussian sigma in pixels of the taper at the lesion's edge, > 0.

    Returns:
        A new float32 array of the image's shape.
    """
    if image.ndim != mask.ndim + 1 or image.shape[1:] != mask.shape:
        raise ParameterError(f"lesion contrast augmentation needs an image (C, *spatial) and a mask (*spatial) of "
                             f"the same spatial shape, not {image.shape} and {mask.shape}.")
    out = np.array(image, dtype=np.float32, copy=True)
    lesions = mask > 0
    if factor == 1.0 or not lesions.any():
        return out
    structure = np.ones((3,) * mask.ndim, dtype=bool)
    labels, count = ndimage.label(lesions, structure=structure)
    blocked = ndimage.binary_dilation(lesions, structure=structure)
    margin = ring_px + int(np.ceil(3 * edge_sigma_px)) + 1
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        # work in the lesion's bounding box grown by the ring and the taper: a slice has up to tens of lesions
        window = tuple(slice(max(0, s.start - margin), min(n, s.stop + margin)) for s, n in zip(box, mask.shape))
        lesion = labels[window] == index
        ring = ndimage.binary_dilation(lesion, structure=structure, iterations=ring_px) & ~blocked[window]
        if not ring.any():
            continue
        taper = np.minimum(1.0, 2.0 * ndimage.gaussian_filter(lesion.astype(np.float32), edge_sigma_px))
        weight = np.where(lesion, 1.0, taper)
        for channel in out:
            region = channel[window]
            background = float(np.median(region[ring]))
            region += (factor - 1.0) * weight * (region - background)
    return out


class RandLesionContrastd(RandomizableTransform, MapTransform):
    """Fade the lesions of a sample towards their surroundings by a random factor (dictionary transform).

    The image key's array is ``(C, *spatial)``, the mask key's ``(1, *spatial)``; the factor is drawn uniformly
    in ``factor_range`` once per sample (all lesions and channels share it). See :func:`fade_lesions`.
    """

    def __init__(self, image_key: Hashable, mask_key: Hashable, factor_range: tuple[float, float] = (0.4, 1.0),
                 prob: float = 1.0, ring_px: int = 3, edge_sigma_px: float = 1.0) -> None:
        RandomizableTransform.__init__(self, prob)
        MapTransform.__init__(self, [image_key])
        low, high = (float(v) for v in factor_range)
        if not 0.0 <= low <= high:
            raise ParameterError(f"lesion contrast factor_range must be (low, high) with 0 <= low <= high, "
                                 f"not {factor_range!r}.")
        self.image_key, self.mask_key = image_key, mask_key
        self.factor_range = (low, high)
        self.ring_px, self.edge_sigma_px = int(ring_px), float(edge_sigma_px)
        self.factor = 1.0

    def randomize(self, data: Any = None) -> None:
        """Draw whether to apply and the fade factor."""
        super().randomize(None)
        self.factor = float(self.R.uniform(*self.factor_range)) if self._do_transform else 1.0

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        import torch

        out = dict(data)
        self.randomize()
        if self.factor == 1.0:
            return out
        image, mask = out[self.image_key], out[self.mask_key]
        faded = fade_lesions(_as_numpy(image), _as_numpy(mask)[0], self.factor, self.ring_px, self.edge_sigma_px)
        out[self.image_key] = torch.as_tensor(faded) if isinstance(image, torch.Tensor) else faded
        return out


def _as_numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
