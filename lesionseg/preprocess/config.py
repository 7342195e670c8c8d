"""Preparation parameters, saved as ``prepare.json`` with the prepared dataset and inside model bundles."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lesionseg.errors import ParameterError

SIDES = ("left", "right")
BRAIN_METHODS = ("auto", "classical", "deepbet", "hdbet")  # lesionseg.preprocess.brain.METHODS
REGISTRATION_STAGES = ("rigid", "affine")
BIAS_CORRECTIONS = ("none", "n4")  # MRI bias-field correction (lesionseg.preprocess.bias)
#: MRI intensity percentiles clipped before the z-score (see lesionseg.preprocess.normalise, which uses it too);
#: defined here so that the command line's parsers read it without importing SimpleITK
DEFAULT_CLIP_PERCENTILES = (0.5, 99.99)
#: Named CT windows (HU, low-high) that ``ct_windows`` may ask for: "brain" is ``ct_window`` (0-80 HU by
#: default, centre 40, width 80); "stroke" is the narrow stroke window (centre 40, width 40) in which an early
#: infarct's few HU of hypodensity span a larger part of the range
STROKE_WINDOW_HU = (20.0, 60.0)
CT_WINDOW_NAMES = ("brain", "stroke")

#: suffix of a channel's mirrored-difference channel in the prepared arrays
MIRROR_SUFFIX = "-mirror"


def array_channel_names(channels: list[str], mirror_difference: bool) -> list[str]:
    """The prepared arrays' channels for input ``channels``: the channels, then (``mirror_difference``) each
    one's mirrored difference, named ``<channel>-mirror``; what a bundle's network takes, before context."""
    return list(channels) + ([f"{name}{MIRROR_SUFFIX}" for name in channels] if mirror_difference else [])


def check_classes(classes: Any) -> list[dict[str, Any]]:
    """Validate :attr:`PrepareConfig.classes`: at least two classes, each with a name and a distinct positive
    whole-number value; colours (RGB in 0..1) default to none given. Returns JSON-ready copies."""
    if not isinstance(classes, (list, tuple)) or len(classes) < 2:
        raise ParameterError(f"classes must list at least two lesion classes (one class needs none), not {classes!r}.")
    checked, values = [], set()
    for entry in classes:
        if not isinstance(entry, dict) or not str(entry.get("name", "")).strip():
            raise ParameterError(f"each of classes needs a name and a value, not {entry!r}.")
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value in values:
            raise ParameterError(f"class {entry['name']!r}: its value must be a whole number above 0 that no other "
                                 f"class has, not {value!r}.")
        values.add(value)
        item = {"name": str(entry["name"]), "value": int(value)}
        if entry.get("color") is not None:
            item["color"] = [float(c) for c in entry["color"]]
        if entry.get("terminology"):
            item["terminology"] = str(entry["terminology"])
        checked.append(item)
    return checked


@dataclass
class PrepareConfig:
    """How cases are prepared for 2D training and inference.

    Attributes:
        channels: channels to use, in this order (None: every channel of the first case).
        reference: the channel whose grid is the reference (None: the first of ``channels``).
        size: S, the side of the prepared slices in pixels (the paper's 192).
        negatives: fraction of a case's lesion-free brain slices kept for training (0 = none).
        lesion_side: hemisphere (patient's) that training lesions are flipped into.
        brain_extraction: "auto" (classical; a learned extractor where the classical mask's volume is
            atypical and one is installed), "classical", "deepbet" or "hdbet" (MRI; the ``[brain]`` extra);
            see :mod:`lesionseg.preprocess.brain`.
        registration: stages registering other channels onto the reference (empty: assume aligned).
        register_aligned: also register channels already on the reference grid (same size, spacing,
            origin and direction within :func:`lesionseg.io.geometry_difference`'s tolerance); by default
            they are taken as they are (DWI and ADC share one acquisition and one grid).
        deformable: add a deformable (B-spline) stage after the affine one.
        clip_percentiles: MRI intensity percentiles (inside the brain) clipped before the z-score (the upper
            one high, so that hyperintense lesions keep their contrast; see :mod:`lesionseg.preprocess.normalise`).
        ct_window: CT window in Hounsfield units (low, high); the "brain" window of ``ct_windows``.
        ct_windows: None (one plane per CT channel, windowed with ``ct_window``: what older versions prepared),
            or names among ``CT_WINDOW_NAMES`` (e.g. ``["brain", "stroke"]``): every CT channel becomes one input
            plane per window, named ``<channel>-<window>`` (:meth:`input_planes`).
        replace_nonfinite: replace NaN/inf voxels (and count them) instead of refusing the case.
        max_obliquity_deg: volumes more oblique than this are resampled onto an axial grid.
        min_rotation_deg: smaller mid-plane angles are not corrected.
        min_lesion_in_brain: a mask with less than this fraction inside the brain is refused.
        seed: seed for the choice of negative slices.
        mask_revision: which mask revision to use ("original", "latest" or a revision id).
        bias_correction: "none" or "n4": MRI channels divided by an N4 bias field fitted inside the brain
            before the z-score (:mod:`lesionseg.preprocess.bias`); CT is never corrected.
        context_slices: neighbouring slices stored on each side of every kept slice (2.5D input, see
            :mod:`lesionseg.preprocess.context`); 0 = none (what older versions prepared).
        brain_margin_mm: frame the slices on the brain with this margin (mm) instead of the whole field of
            view (:func:`lesionseg.preprocess.grid.brain_extent_mm`): more pixels per millimetre of brain at
            the same size; None = the whole slice (the paper's "resized without cropping").
        working_spacing_mm: brain extraction works on the volume block-averaged to about this spacing (mm),
            the mask refined at full resolution at its edge
            (:mod:`lesionseg.preprocess.brain_edges`); None: on the native grid throughout (the slow way of
            older versions; a fine grid such as a 512 x 512 x 300 CT then takes over a minute).
        mirror_difference: also store, for every channel, its normalised intensity minus its reflection about
            the mid-sagittal plane as an extra channel ``<channel>-mirror`` after the channels
            (:mod:`lesionseg.preprocess.mirror_difference`; see :meth:`array_channels`). Off by default: on
            held-out synthetic FLAIR it lowered the Gaussian naive Bayes baseline's Dice from 0.51 to 0.33
            (``benchmarks/results/gnb.txt``); for CT and for the networks it is still to be measured.
        classes: None (one lesion class: masks are read as 0/1) or the lesion classes of multi-label masks,
            in class order, each ``{"name", "value", "color"}`` (+ ``"terminology"``): the dataset's label
            table (:func:`lesionseg.data.label_table.find_label_table`). Prepared masks then hold class
            indices (``k`` for the ``k``-th class, whatever its value in the files) and the network has one
            output per class plus the background.
    """

    channels: list[str] | None = None
    reference: str | None = None
    size: int = 192
    negatives: float = 0.1
    lesion_side: str = "left"
    brain_extraction: str = "auto"
    registration: list[str] = field(default_factory=lambda: ["rigid", "affine"])
    register_aligned: bool = False
    deformable: bool = False
    clip_percentiles: tuple[float, float] = DEFAULT_CLIP_PERCENTILES
    ct_window: tuple[float, float] = (0.0, 80.0)
    ct_windows: list[str] | None = None
    replace_nonfinite: bool = False
    max_obliquity_deg: float = 3.0
    min_rotation_deg: float = 1.0
    min_lesion_in_brain: float = 0.5
    seed: int = 0
    mask_revision: str = "original"
    bias_correction: str = "none"
    context_slices: int = 0
    brain_margin_mm: float | None = None
    working_spacing_mm: float | None = 2.0
    mirror_difference: bool = False
    classes: list[dict[str, Any]] | None = None
    antialias: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ParameterError` for a value that cannot be used."""
        if not isinstance(self.size, int) or self.size < 16:
            raise ParameterError(f"size must be an integer of at least 16 pixels, not {self.size!r}.")
        if not 0.0 <= float(self.negatives) <= 1.0:
            raise ParameterError(f"negatives must be a fraction between 0 and 1, not {self.negatives!r}.")
        if self.lesion_side not in SIDES:
            raise ParameterError(f"lesion_side must be 'left' or 'right', not {self.lesion_side!r}.")
        if self.brain_extraction not in BRAIN_METHODS:
            raise ParameterError(f"brain_extraction must be one of {', '.join(BRAIN_METHODS)}, not {self.brain_extraction!r}.")
        unknown = [stage for stage in self.registration if stage not in REGISTRATION_STAGES]
        if unknown:
            raise ParameterError(f"registration stages must be among {', '.join(REGISTRATION_STAGES)}, not {unknown[0]!r}.")
        if self.bias_correction not in BIAS_CORRECTIONS:
            raise ParameterError(f"bias_correction must be one of {', '.join(BIAS_CORRECTIONS)}, "
                                 f"not {self.bias_correction!r}.")
        if not isinstance(self.context_slices, int) or isinstance(self.context_slices, bool) \
                or not 0 <= self.context_slices <= 4:
            raise ParameterError(f"context_slices must be a whole number from 0 to 4, not {self.context_slices!r}.")
        if self.brain_margin_mm is not None and not (isinstance(self.brain_margin_mm, (int, float))
                                                      and not isinstance(self.brain_margin_mm, bool)
                                                      and 0.0 <= self.brain_margin_mm <= 100.0):
            raise ParameterError(f"brain_margin_mm must be None or a margin from 0 to 100 mm, "
                                 f"not {self.brain_margin_mm!r}.")
        if self.working_spacing_mm is not None and not (isinstance(self.working_spacing_mm, (int, float))
                                                         and not isinstance(self.working_spacing_mm, bool)
                                                         and 0.5 <= self.working_spacing_mm <= 8.0):
            raise ParameterError(f"working_spacing_mm must be None or a spacing from 0.5 to 8 mm, "
                                 f"not {self.working_spacing_mm!r}.")
        if not isinstance(self.mirror_difference, bool):
            raise ParameterError(f"mirror_difference must be true or false, not {self.mirror_difference!r}.")
        low, high = self.clip_percentiles
        if not 0.0 <= low < high <= 100.0:
            raise ParameterError(f"clip_percentiles must satisfy 0 <= low < high <= 100, not {self.clip_percentiles!r}.")
        if not self.ct_window[0] < self.ct_window[1]:
            raise ParameterError(f"ct_window must be (low, high) with low < high, not {self.ct_window!r}.")
        if self.ct_windows is not None:
            names = list(self.ct_windows) if isinstance(self.ct_windows, (list, tuple)) else [self.ct_windows]
            if not names or any(n not in CT_WINDOW_NAMES for n in names) or len(set(names)) != len(names):
                raise ParameterError(f"ct_windows must be distinct names among {', '.join(CT_WINDOW_NAMES)} "
                                     f"(e.g. brain,stroke), not {self.ct_windows!r}.")
            self.ct_windows = names
        if self.classes is not None:
            self.classes = check_classes(self.classes)
        if self.channels is not None and self.reference is not None and self.reference not in self.channels:
            raise ParameterError(f"reference channel {self.reference!r} is not among the channels {self.channels}.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["clip_percentiles"] = list(self.clip_percentiles)
        data["ct_window"] = list(self.ct_window)
        for key in ("ct_windows", "classes"):  # left out when unset, so that older folders keep their fingerprints
            if data[key] is None:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PrepareConfig":
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for key in ("clip_percentiles", "ct_window"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def n_outputs(self) -> int:
        """The network's outputs for data prepared so: the background and each lesion class (2 when binary)."""
        return 1 + (len(self.classes) if self.classes else 1)

    def bundle_labels(self) -> list[dict[str, Any]] | None:
        """A bundle's ``labels`` for these classes (background first, then each class with its value in the
        dataset's files, name, colour and terminology), or None for one lesion class (the bundle's default)."""
        if not self.classes:
            return None
        return [{"name": "background", "value": 0}] + [dict(entry) for entry in self.classes]

    def ct_window_hu(self, name: str) -> tuple[float, float]:
        """The HU window (low, high) of a name among ``CT_WINDOW_NAMES``."""
        return tuple(self.ct_window) if name == "brain" else STROKE_WINDOW_HU

    def input_planes(self, channels: list[str]) -> list[str]:
        """The names along the prepared arrays' channel axis (the network's inputs, before context slices), in
        order: each channel's normalised plane, except that with ``ct_windows`` a CT channel gives
        ``<channel>-<window>`` per window; then, with ``mirror_difference``, each plane's mirrored difference
        ``<plane>-mirror`` in the same order (:func:`array_channel_names`). The one place that counts them."""
        from lesionseg.data.channels import CT_CHANNELS

        planes: list[str] = []
        for name in channels:
            if self.ct_windows and str(name).lower() in CT_CHANNELS:
                planes += [f"{name}-{window}" for window in self.ct_windows]
            else:
                planes.append(name)
        return array_channel_names(planes, self.mirror_difference)

    def reference_channel(self, available: list[str]) -> str:
        """The reference channel among ``available`` (the configured one, or the first channel)."""
        channels = self.channels or available
        return self.reference or channels[0]
