"""Training augmentation of 2D slices (and 3D patches): MONAI transforms plus a k-space motion artefact, seeded.

A sample is ``{"image": (C, H, W) float, "mask": (1, H, W) 0/1}`` (numpy arrays or torch tensors; axes
channel, rows, columns of a prepared axial slice: rows run anterior-posterior, columns right-left with
columns >= W/2 on the patient's left). In this order, each with its own probability:

1. flip along the anterior-posterior axis only (MONAI ``RandFlipd``, array axis 0 of the (H, W) slice).
   NEVER left-right: training slices are flipped so that every lesion lies in one hemisphere
   (:mod:`lesionseg.preprocess`), and a random left-right flip would undo that;
2. small in-plane rotation (MONAI ``RandRotated``, uniform in ±``rotate_deg``);
3. elastic deformation (MONAI ``Rand2DElasticd``: Gaussian offsets of ``elastic_magnitude_px`` pixels on a
   control grid every ``elastic_spacing_px`` pixels, interpolated);
4. bias field (MONAI ``RandBiasFieldd``: a smooth multiplicative field, Legendre polynomials of
   ``bias_degree``);
5. motion artefact (:class:`RandKSpaceMotiond`, written here, see below);
6. Gaussian noise (MONAI ``RandGaussianNoised``: standard deviation drawn in [0, ``noise_std``], image units;
   prepared MRI is z-scored, so 0.05 = 5 % of the brain's intensity spread).

and, off unless asked for (the ``cpu`` and ``gpu`` presets ask for them, as nnU-Net's default augmentation
does; the curriculum paper's settings do not), so that a model meets lesions and tissue at other sizes
and intensities than its few training cases show:

7. zoom (MONAI ``RandZoomd``, a factor in ``zoom_range`` for both in-plane axes, the slice size kept; after
   the rotation, before the elastic deformation), so lesions come in more sizes;
8. intensity scale (MONAI ``RandScaleIntensityd``: the image times ``1 + f``, ``f`` in ``±scale_amount``)
   and shift (MONAI ``RandShiftIntensityd``: plus an offset in ``±shift_amount`` image units);
9. gamma (MONAI ``RandAdjustContrastd``: on the image's own [min, max] range, gamma in ``gamma_range``), so
   the brightness of a lesion relative to the tissue varies;
10. Gaussian blur (MONAI ``RandGaussianSmoothd``, sigma in ``blur_sigma_px``) and low resolution (MONAI
    ``RandSimulateLowResolutiond``: down by a factor in ``lowres_zoom`` and back), as thick or
    interpolated slices look;
11. lesion contrast (:class:`lesionseg.train.lesion_contrast.RandLesionContrastd`, written here: MONAI's
    intensity transforms act on the whole image): every lesion of the mask faded towards its surroundings
    by a factor in ``lesion_contrast_range``, so fainter (younger) lesions than the training cases hold are
    still lesions; after the geometric transforms, before the bias field, in 2D and 3D.

Patches of 3D networks (``spatial_dims=3``: ``{"image": (C, Z, Y, X), "mask": (1, Z, Y, X)}``, axes
slices, rows, columns) get the transforms that mean the same thing in 3D: the anterior-posterior flip
(array axis 1 of the (Z, Y, X) patch: rows), the lesion contrast, the bias field (a 3D polynomial field) and
Gaussian noise.
The in-plane rotation, the 2D elastic deformation and the per-slice k-space motion are 2D transforms and
are not applied to patches (their settings are ignored).

Geometric transforms (1-3) move image and mask with one shared draw; the image is interpolated bilinearly
(padded with its border values, since a prepared slice's background is its minimum, not 0) and the mask
nearest-neighbour (padded with 0), so the mask stays 0/1. Intensity transforms (4-6) touch the image only.

Randomness: the augmentation owns one ``numpy.random.Generator``. Each call draws a sample seed from it
(or takes the ``seed`` argument) and reseeds every MONAI transform from that seed before transforming, so
a call's result is a function of (config, sample, sample seed) alone. A trainer can therefore either pass
a seed derived from (run seed, epoch, index), which replays exactly in any worker and after any resume,
or save :meth:`Augmentation.get_state` in its checkpoint and restore it with :meth:`Augmentation.set_state`.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Hashable, Iterator, Mapping, Sequence

import numpy as np
from monai.transforms import MapTransform, RandomizableTransform

from lesionseg.errors import ParameterError

_MAX_SEED = 2**32 - 1
#: settings that are (low, high) pairs
_PAIRS = ("elastic_magnitude_px", "bias_coeff", "zoom_range", "gamma_range", "blur_sigma_px", "lowres_zoom",
          "lesion_contrast_range")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class AugmentConfig:
    """Which augmentations run, how often (probability per sample) and how strongly.

    Attributes:
        enabled: False turns every transform off (the augmentation returns its input).
        flip_prob: probability of an anterior-posterior flip (rows reversed; never left-right).
        rotate_prob, rotate_deg: probability and largest angle (degrees) of an in-plane rotation.
        elastic_prob, elastic_spacing_px, elastic_magnitude_px: probability, control-point spacing (pixels)
            and range (low, high) of the offsets' standard deviation (pixels) of the elastic deformation.
        bias_prob, bias_degree, bias_coeff: probability, polynomial degree and coefficient range of the bias field.
        motion_prob, motion_max_shift_px, motion_max_rotation_deg, motion_max_movements, motion_axis:
            probability of a motion artefact; largest translation (pixels) and rotation (degrees) of a
            movement; up to this many movements per slice; the phase-encode axis (0 = rows,
            anterior-posterior; 1 = columns).
        noise_prob, noise_std: probability and largest standard deviation (image units) of Gaussian noise.
        zoom_prob, zoom_range: probability and (low, high) zoom factor (2D only).
        scale_prob, scale_amount: probability and largest relative change of the intensity scale.
        shift_prob, shift_amount: probability and largest intensity offset (image units).
        gamma_prob, gamma_range: probability and (low, high) gamma.
        blur_prob, blur_sigma_px: probability and (low, high) Gaussian sigma in pixels (2D only).
        lowres_prob, lowres_zoom: probability and (low, high) downsampling factor (2D only).
        lesion_contrast_prob, lesion_contrast_range: probability and (low, high) factor of the lesions' remaining
            contrast to their surroundings (:mod:`lesionseg.train.lesion_contrast`; 1 = unchanged).
    """

    enabled: bool = True
    flip_prob: float = 0.5
    rotate_prob: float = 0.3
    rotate_deg: float = 10.0
    elastic_prob: float = 0.2
    elastic_spacing_px: float = 24.0
    elastic_magnitude_px: tuple[float, float] = (1.0, 3.0)
    bias_prob: float = 0.2
    bias_degree: int = 3
    bias_coeff: tuple[float, float] = (0.0, 0.1)
    motion_prob: float = 0.1
    motion_max_shift_px: float = 3.0
    motion_max_rotation_deg: float = 3.0
    motion_max_movements: int = 2
    motion_axis: int = 0
    noise_prob: float = 0.2
    noise_std: float = 0.05
    zoom_prob: float = 0.0
    zoom_range: tuple[float, float] = (0.8, 1.3)
    scale_prob: float = 0.0
    scale_amount: float = 0.25
    shift_prob: float = 0.0
    shift_amount: float = 0.3
    gamma_prob: float = 0.0
    gamma_range: tuple[float, float] = (0.7, 1.5)
    blur_prob: float = 0.0
    blur_sigma_px: tuple[float, float] = (0.5, 1.0)
    lowres_prob: float = 0.0
    lowres_zoom: tuple[float, float] = (0.5, 1.0)
    lesion_contrast_prob: float = 0.0
    lesion_contrast_range: tuple[float, float] = (0.4, 1.0)

    def __post_init__(self) -> None:
        for name in _PAIRS:
            value = getattr(self, name)
            try:
                low, high = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ParameterError(f"augmentation {name} must be two numbers (low, high), "
                                     f"not {value!r}.") from None
            setattr(self, name, (low, high))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the first value that cannot be used."""
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "enabled":
                if not isinstance(value, bool):
                    raise ParameterError(f"augmentation enabled must be true or false, not {value!r}.")
            elif item.name.endswith("_prob"):
                if not (_is_number(value) and 0.0 <= value <= 1.0):
                    raise ParameterError(f"augmentation {item.name} must be a probability in [0, 1], "
                                         f"not {value!r}.")
            elif item.name in ("bias_degree", "motion_max_movements"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ParameterError(f"augmentation {item.name} must be an integer >= 1, not {value!r}.")
            elif item.name == "motion_axis":
                if value not in (0, 1) or isinstance(value, bool):
                    raise ParameterError(f"augmentation motion_axis must be 0 (rows) or 1 (columns), "
                                         f"not {value!r}.")
            elif item.name in _PAIRS:
                low, high = value
                positive = item.name in ("zoom_range", "gamma_range", "lowres_zoom")
                if not 0.0 <= low <= high or (positive and low <= 0.0):
                    raise ParameterError(f"augmentation {item.name} must be (low, high) with 0 <= low <= high, "
                                         f"not {value!r}.")
            elif not (_is_number(value) and value >= 0.0):
                raise ParameterError(f"augmentation {item.name} must be a number >= 0, not {value!r}.")
        if self.elastic_spacing_px < 2.0:
            raise ParameterError(f"augmentation elastic_spacing_px must be at least 2 pixels, "
                                 f"not {self.elastic_spacing_px!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON types (tuples as lists)."""
        data = asdict(self)
        for name in _PAIRS:
            data[name] = list(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AugmentConfig":
        """The config from :meth:`to_dict` output or keyword arguments (unknown keys are refused)."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown augmentation setting {unknown[0]!r}; "
                                 f"the settings are {', '.join(sorted(known))}.")
        return cls(**dict(data))


def kspace_motion(image: np.ndarray, segments: Sequence[tuple[int, int, float, float, float]],
                  axis: int = 0) -> np.ndarray:
    """Simulate rigid motion during acquisition by mixing k-space lines of moved copies of an image.

    The slice is transformed to k-space (2D FFT per channel, ``numpy.fft``). Phase-encode lines are
    indexed along ``axis`` in sequential acquisition order, from frequency ``-N/2`` to ``N/2 - 1``
    (position ``N // 2`` is frequency 0, the k-space centre). For each segment ``(start, stop, dy, dx,
    angle)`` the lines ``start:stop`` are replaced by those of a copy rotated by ``angle`` degrees about
    the centre (``scipy.ndimage.affine_transform``, linear) and translated by ``(dy, dx)`` pixels (a
    linear phase ramp in k-space: exact and sub-pixel). The image is the real part of the inverse FFT.
    Translation changes only k-space phases, so the mean (the k-space centre, when its line is not
    replaced) and the energy of the replaced lines are kept; the artefact is ghosting and blurring along
    the phase-encode axis.

    Args:
        image: ``(C, H, W)`` float array.
        segments: line ranges and movements; lines not covered keep the original image's k-space.
        axis: phase-encode axis of the ``(H, W)`` slice (0 = rows, 1 = columns).

    Returns:
        ``(C, H, W)`` float32 array.
    """
    data = np.asarray(image, dtype=np.float64)
    height, width = data.shape[-2:]
    kspace = np.fft.fft2(data, axes=(-2, -1))
    count = data.shape[-2 + axis]
    # acquisition order position -> FFT index (position 0 = frequency -count/2)
    order = np.fft.fftshift(np.arange(count))
    frequency_y = np.fft.fftfreq(height)[:, None]
    frequency_x = np.fft.fftfreq(width)[None, :]
    for start, stop, dy, dx, angle in segments:
        if stop <= start:
            continue
        moved = _rotated(data, angle) if angle else data
        # translation by (dy, dx) = a linear phase ramp, separable in the two frequency axes
        ramp = np.exp(-2j * np.pi * frequency_y * dy) * np.exp(-2j * np.pi * frequency_x * dx)
        moved_k = np.fft.fft2(moved, axes=(-2, -1)) * ramp
        lines = order[int(start):int(stop)]
        if axis == 0:
            kspace[..., lines, :] = moved_k[..., lines, :]
        else:
            kspace[..., :, lines] = moved_k[..., :, lines]
    return np.real(np.fft.ifft2(kspace, axes=(-2, -1))).astype(np.float32)


def _rotated(data: np.ndarray, angle_deg: float) -> np.ndarray:
    """Each (H, W) channel rotated by ``angle_deg`` about the slice centre (linear, edges extended)."""
    from scipy import ndimage

    theta = math.radians(angle_deg)
    matrix = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    centre = (np.array(data.shape[-2:], dtype=float) - 1.0) / 2.0
    offset = centre - matrix @ centre
    return np.stack([ndimage.affine_transform(channel, matrix, offset=offset, order=1, mode="nearest")
                     for channel in data])


class RandKSpaceMotiond(RandomizableTransform, MapTransform):
    """Random motion artefact on image keys (dictionary transform, MONAI style: draw in ``randomize``).

    MONAI has no motion transform and TorchIO (whose ``RandomMotion`` does this) is not a dependency, so
    the k-space model is written here: one to ``max_movements`` movements happen at uniform random times
    during a sequential acquisition, splitting the phase-encode lines into segments; the segment holding
    the k-space centre is the reference position (no movement, as in TorchIO), every other segment gets a
    random translation (±``max_shift_px`` per axis) and rotation (±``max_rotation_deg``). All channels of
    a sample share the draw; masks are never touched (list only image keys).
    """

    def __init__(self, keys: Sequence[Hashable], prob: float = 0.1, max_shift_px: float = 3.0,
                 max_rotation_deg: float = 3.0, max_movements: int = 2, axis: int = 0) -> None:
        RandomizableTransform.__init__(self, prob)
        MapTransform.__init__(self, keys)
        self.max_shift_px = float(max_shift_px)
        self.max_rotation_deg = float(max_rotation_deg)
        self.max_movements = int(max_movements)
        self.axis = int(axis)
        self.segments: list[tuple[int, int, float, float, float]] = []

    def randomize(self, lines: int) -> None:  # type: ignore[override]
        """Draw whether to apply, the movement times and each segment's movement, for ``lines`` lines."""
        super().randomize(None)
        self.segments = []
        if not self._do_transform:
            return
        movements = int(self.R.randint(1, self.max_movements + 1))
        cuts = np.unique(np.round(np.sort(self.R.uniform(0.0, 1.0, movements)) * lines).astype(int))
        bounds = [0, *[c for c in cuts if 0 < c < lines], lines]
        centre = lines // 2  # acquisition position of frequency 0
        for start, stop in zip(bounds[:-1], bounds[1:]):
            dy, dx = self.R.uniform(-self.max_shift_px, self.max_shift_px, 2)
            angle = self.R.uniform(-self.max_rotation_deg, self.max_rotation_deg)
            if not start <= centre < stop:
                self.segments.append((int(start), int(stop), float(dy), float(dx), float(angle)))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        first = out[self.keys[0]]
        self.randomize(int(np.shape(first)[-2 + self.axis]))
        if not self.segments:
            return out
        for key in self.key_iterator(out):
            value = out[key]
            moved = kspace_motion(_to_numpy(value), self.segments, self.axis)
            out[key] = _like(moved, value, as_float=True)
        return out


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _like(array: np.ndarray, reference: Any, as_float: bool = False) -> Any:
    """``array`` as the type of ``reference`` (numpy array or plain torch tensor): float32 when
    ``as_float``, else ``reference``'s dtype (a mask keeps its integer type)."""
    import torch

    if isinstance(reference, torch.Tensor):
        dtype = torch.float32 if as_float else reference.dtype
        return torch.as_tensor(array).to(device=reference.device, dtype=dtype)
    return np.asarray(array, dtype=np.float32 if as_float else np.asarray(reference).dtype)


class Augmentation:
    """The augmentation a trainer calls on each sample: ``augmentation(sample, seed=None) -> sample``.

    Attributes:
        config: the :class:`AugmentConfig`.
        image_key, mask_keys: keys of the image (interpolated bilinearly, intensity transforms) and of the
            masks (nearest-neighbour, geometric transforms only). Other keys pass through untouched.
    """

    def __init__(self, config: AugmentConfig, seed: int = 0, image_key: str = "image",
                 mask_keys: Sequence[str] = ("mask",), spatial_dims: int = 2) -> None:
        if spatial_dims not in (2, 3):
            raise ParameterError(f"augmentation spatial_dims must be 2 or 3, not {spatial_dims!r}.")
        self.config = config
        self.image_key = image_key
        self.mask_keys = tuple(mask_keys)
        self.spatial_dims = spatial_dims
        self._generator = np.random.default_rng(int(seed))
        self._transforms = _transforms(config, image_key, self.mask_keys, spatial_dims) if config.enabled else None
        self._states = _random_states(self._transforms or [])

    def set_random_state(self, seed: int) -> None:
        """Restart the draws from ``seed`` (as a new augmentation with that seed)."""
        self._generator = np.random.default_rng(int(seed))

    def get_state(self) -> dict[str, Any]:
        """The random state (plain dicts, ints and strings: fits in a JSON file or a weights-only checkpoint)."""
        return copy.deepcopy(self._generator.bit_generator.state)

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continue the draws from a state returned by :meth:`get_state`."""
        generator = np.random.default_rng()
        try:
            generator.bit_generator.state = copy.deepcopy(dict(state))
        except (TypeError, ValueError, KeyError) as error:
            raise ParameterError(f"the augmentation state cannot be restored ({error}).") from None
        self._generator = generator

    def __call__(self, sample: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
        """Augment one sample.

        Args:
            sample: ``{"image": (C, H, W) float, "mask": (1, H, W) 0/1, ...}``, numpy arrays or torch tensors.
            seed: the sample's seed; None draws one from the augmentation's own generator.

        Returns:
            A new dictionary with the same keys; image and masks transformed, of the input's types and dtypes.
        """
        if self._transforms is None:
            return dict(sample)
        sample_seed = int(self._generator.integers(_MAX_SEED)) if seed is None else int(seed) % _MAX_SEED
        # Reseed every transform's RandomState in place: a new RandomState costs ~0.25 ms, a reseed ~2 us.
        seeds = np.random.SeedSequence(sample_seed).generate_state(len(self._states))
        for state, value in zip(self._states, seeds):
            state.seed(int(value))
        keys = (self.image_key, *self.mask_keys)
        missing = [key for key in keys if key not in sample]
        if missing:
            raise ParameterError(f"the sample to augment has no {missing[0]!r} "
                                 f"(keys: {', '.join(map(str, sample))}).")
        working = {key: _to_float_tensor(sample[key]) for key in keys}
        with _without_metadata():
            result = working
            for transform in self._transforms:
                result = transform(result)
        out = dict(sample)
        for key in keys:
            out[key] = _like(_to_numpy(result[key]), sample[key], as_float=key == self.image_key)
        return out


@contextlib.contextmanager
def _without_metadata() -> Iterator[None]:
    """Run MONAI transforms on plain tensors (no MetaTensor bookkeeping of applied operations).

    The outputs are turned into plain arrays anyway, and the bookkeeping about doubles the cost of a
    transform on a 192 x 192 slice. MONAI's switch is process-wide, so it is restored at once; DataLoader
    workers are processes, so no other thread sees it.
    """
    from monai.data import get_track_meta, set_track_meta

    previous = get_track_meta()
    set_track_meta(False)
    try:
        yield
    finally:
        set_track_meta(previous)


def _to_float_tensor(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32)
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


class _Sometimes(RandomizableTransform):
    """Apply a dictionary transform with probability ``prob`` (the transform itself is built with prob 1).

    MONAI's ``Rand2DElasticd`` resamples every key through an identity grid and draws a full-size random
    field even when its own probability says "not this time"; deciding outside spares that work.
    """

    def __init__(self, transform: Any, prob: float) -> None:
        super().__init__(prob)
        self.transform = transform

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        self.randomize(None)
        return self.transform(data) if self._do_transform else dict(data)


def _random_states(transforms: Sequence[Any]) -> list[np.random.RandomState]:
    """Every RandomState of the transforms and of the MONAI objects inside them, in a fixed order."""
    from monai.transforms import Randomizable

    found: list[np.random.RandomState] = []
    seen: set[int] = set()

    def visit(value: Any) -> None:
        if isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
            return
        if not isinstance(value, Randomizable) or id(value) in seen:
            return
        seen.add(id(value))
        found.append(value.R)
        for attribute in vars(value).values():
            visit(attribute)

    visit(list(transforms))
    return found


def _transforms(config: AugmentConfig, image_key: str, mask_keys: tuple[str, ...],
                spatial_dims: int = 2) -> list[Any]:
    """The enabled transforms in order, each wrapped with its probability (probability 0 = left out); for
    3D patches only the flip, the lesion contrast, the bias field and the noise (see the module docstring)."""
    from monai.transforms import Rand2DElasticd, RandBiasFieldd, RandFlipd, RandGaussianNoised, RandRotated

    keys = [image_key, *mask_keys]
    modes = ["bilinear", *["nearest"] * len(mask_keys)]
    padding = ["border", *["zeros"] * len(mask_keys)]
    transforms: list[Any] = []
    if config.flip_prob > 0:
        # the rows (anterior-posterior): spatial axis 0 of a (H, W) slice, 1 of a (Z, Y, X) patch; never
        # left-right (columns).
        rows = 0 if spatial_dims == 2 else 1
        transforms.append(_Sometimes(RandFlipd(keys, prob=1.0, spatial_axis=rows), config.flip_prob))
    planar = spatial_dims == 2
    if planar and config.rotate_prob > 0 and config.rotate_deg > 0:
        rotate = RandRotated(keys, range_x=math.radians(config.rotate_deg), prob=1.0, keep_size=True, mode=modes,
                             padding_mode=padding)
        transforms.append(_Sometimes(rotate, config.rotate_prob))
    if planar and config.zoom_prob > 0:
        from monai.transforms import RandZoomd

        zoom = RandZoomd(keys, prob=1.0, min_zoom=config.zoom_range[0], max_zoom=config.zoom_range[1],
                         mode=["bilinear", *["nearest"] * len(mask_keys)],
                         padding_mode=["edge", *["constant"] * len(mask_keys)], keep_size=True)
        transforms.append(_Sometimes(zoom, config.zoom_prob))
    if planar and config.elastic_prob > 0 and config.elastic_magnitude_px[1] > 0:
        spacing = float(config.elastic_spacing_px)
        elastic = Rand2DElasticd(keys, spacing=(spacing, spacing), magnitude_range=config.elastic_magnitude_px,
                                 prob=1.0, mode=modes, padding_mode=padding)
        transforms.append(_Sometimes(elastic, config.elastic_prob))
    if config.lesion_contrast_prob > 0 and mask_keys:
        from lesionseg.train.lesion_contrast import RandLesionContrastd

        fade = RandLesionContrastd(image_key, mask_keys[0], factor_range=config.lesion_contrast_range)
        transforms.append(_Sometimes(fade, config.lesion_contrast_prob))
    if config.bias_prob > 0:
        bias = RandBiasFieldd(image_key, degree=config.bias_degree, coeff_range=config.bias_coeff, prob=1.0)
        transforms.append(_Sometimes(bias, config.bias_prob))
    if planar and config.motion_prob > 0 and (config.motion_max_shift_px > 0 or config.motion_max_rotation_deg > 0):
        motion = RandKSpaceMotiond([image_key], prob=1.0, max_shift_px=config.motion_max_shift_px,
                                   max_rotation_deg=config.motion_max_rotation_deg,
                                   max_movements=config.motion_max_movements, axis=config.motion_axis)
        transforms.append(_Sometimes(motion, config.motion_prob))
    transforms += _intensity_transforms(config, image_key, planar)
    if config.noise_prob > 0 and config.noise_std > 0:
        noise = RandGaussianNoised(image_key, prob=1.0, mean=0.0, std=config.noise_std)
        transforms.append(_Sometimes(noise, config.noise_prob))
    return transforms


def _intensity_transforms(config: AugmentConfig, image_key: str, planar: bool) -> list[Any]:
    """Scale, shift, gamma, blur and low resolution (steps 8-10 of the module docstring), those enabled."""
    from monai.transforms import (
        RandAdjustContrastd, RandGaussianSmoothd, RandScaleIntensityd, RandShiftIntensityd, RandSimulateLowResolutiond,
    )

    transforms: list[Any] = []
    if config.scale_prob > 0 and config.scale_amount > 0:
        transforms.append(_Sometimes(RandScaleIntensityd(image_key, factors=config.scale_amount, prob=1.0),
                                     config.scale_prob))
    if config.shift_prob > 0 and config.shift_amount > 0:
        transforms.append(_Sometimes(RandShiftIntensityd(image_key, offsets=config.shift_amount, prob=1.0),
                                     config.shift_prob))
    if config.gamma_prob > 0:
        transforms.append(_Sometimes(RandAdjustContrastd(image_key, gamma=config.gamma_range, prob=1.0),
                                     config.gamma_prob))
    if planar and config.blur_prob > 0:
        sigma = config.blur_sigma_px
        transforms.append(_Sometimes(RandGaussianSmoothd(image_key, sigma_x=sigma, sigma_y=sigma, prob=1.0),
                                     config.blur_prob))
    if planar and config.lowres_prob > 0:
        lowres = RandSimulateLowResolutiond(image_key, prob=1.0, zoom_range=config.lowres_zoom, downsample_mode="nearest",
                                            upsample_mode="bilinear")
        transforms.append(_Sometimes(lowres, config.lowres_prob))
    return transforms


def build_augmentation(config: AugmentConfig | Mapping[str, Any] | None = None, seed: int = 0,
                       image_key: str = "image", mask_keys: Sequence[str] = ("mask",),
                       spatial_dims: int = 2) -> Augmentation:
    """The augmentation for a config (an :class:`AugmentConfig`, its dict, or None for the defaults).

    Args:
        config: what to apply; ``{"enabled": False}`` gives the identity.
        seed: seed of the augmentation's generator (used when a call passes no seed).
        image_key, mask_keys: the sample's image and mask keys.
        spatial_dims: 2 for slices, 3 for patches ``(C, Z, Y, X)`` (flip, bias field and noise only).

    Returns:
        A callable ``augmentation(sample, seed=None) -> sample`` (see :class:`Augmentation`).

    Raises:
        ParameterError: an unknown setting or a value out of range.
    """
    if config is None:
        config = AugmentConfig()
    elif not isinstance(config, AugmentConfig):
        config = AugmentConfig.from_dict(config)
    return Augmentation(config, seed, image_key, mask_keys, spatial_dims)
