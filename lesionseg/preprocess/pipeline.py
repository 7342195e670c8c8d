"""Preparing one case: native volumes in, prepared S x S slices and their record out.

Order of steps (each recorded): read and check the channels; brain extraction on the reference
channel (a user-supplied brain mask wins); registration of the other channels onto the reference (a
channel already on the reference grid is left as it is unless ``config.register_aligned``); a lesion mask
drawn on another channel's grid is carried to the reference through that channel's registration (the
registration ``lesionseg transfer-mask`` runs, computed for the purpose when that channel is not among the
prepared ones); the lesion must lie in the brain; the axial frame; the mid-sagittal plane; the prepared
grid; one resampling of every channel, the lesion mask (each lesion keeping its volume) and the brain mask
onto the prepared grid; intensity normalisation on that grid (MRI z-score inside the brain, CT window or
windows, perfusion maps by their units and physiological ranges: :mod:`lesionseg.preprocess.perfusion`);
the mirrored differences when asked (:mod:`lesionseg.preprocess.mirror_difference`); slice selection
(training: lesion slices and a fraction of lesion-free brain slices; inference: every brain slice);
hemisphere flip (training: each slice's lesion into the chosen hemisphere).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.data import CT_CHANNELS, PERFUSION_CHANNELS, Case
from lesionseg.errors import LesionSegError, PreprocessingError
from lesionseg.io import Geometry, geometry_difference, read_image, read_mask
from lesionseg.preprocess.channel_alignment import carry_lesion, mask_source_channel, register_channels
from lesionseg.preprocess.config import PrepareConfig
from lesionseg.preprocess.grid import frame_slices_of, prepared_grid, sample_onto_grid
from lesionseg.preprocess.midplane import estimate_midplane
from lesionseg.preprocess.orientation import axial_frame
from lesionseg.preprocess.record import PrepareRecord


@dataclass
class PreparedCase:
    """The prepared slices of one case.

    Attributes:
        images: (N, C, S, S) float32, the planes named by ``record.channels`` (``config.input_planes`` of the
            input channels: a CT channel gives one plane per window of ``config.ct_windows``, and with
            ``config.mirror_difference`` each plane's mirrored difference follows).
        masks: (N, S, S) uint8 lesion masks (zeros when the case has no mask).
        brains: (N, S, S) uint8 brain masks.
        record: how they were made (and how to map predictions back).
        rows: one dict per slice for ``slices.csv`` (slice_index, flipped, lesion_pixels,
            lesion_area_mm2, has_lesion).
        native_brain: the brain mask on the reference channel's native grid (uint8 0/1).
        context: (N, C, 2k, S, S) float32 neighbouring slices (``config.context_slices`` = k on each side,
            flipped with their centre slice; see :mod:`lesionseg.preprocess.context`), None when k = 0.
    """

    images: np.ndarray
    masks: np.ndarray
    brains: np.ndarray
    record: PrepareRecord
    rows: list[dict[str, Any]] = field(default_factory=list)
    native_brain: sitk.Image | None = None
    context: np.ndarray | None = None

    def network_input(self, context_slices: int | None = None) -> np.ndarray:
        """(N, C * (2k + 1), S, S): the slices with k neighbours each (default k: all that are stored)."""
        from lesionseg.preprocess.context import network_input

        stored = 0 if self.context is None else self.context.shape[2] // 2
        return network_input(self.images, self.context, stored if context_slices is None else context_slices)


def _modality(channel: str) -> str:
    return "ct" if channel in CT_CHANNELS else "mri"


def _in_case(error: LesionSegError, case_id: str) -> LesionSegError:
    """The same error with the case named in front, unless it already names it."""
    message = str(error)
    if case_id in message:
        return error
    return type(error)(f"case {case_id}: {message}")


def _normalise_map(native: sitk.Image, stack: sitk.Image, brain: sitk.Image, name: str, case_id: str):
    """A perfusion map normalised with the units its reader attached (their presence is checked first)."""
    from lesionseg.preprocess.perfusion import UNITS_METADATA_KEY, normalise_perfusion

    return normalise_perfusion(stack, brain, name, native.GetMetaData(UNITS_METADATA_KEY), case_id=case_id)


def read_case_channels(case: Case, channels: list[str], config: PrepareConfig) -> dict[str, sitk.Image]:
    """Read the chosen channels as float32 and refuse (or replace) NaN and infinite voxels."""
    from lesionseg.preprocess.normalise import check_finite

    images = {}
    for name in channels:
        image = read_image(case.channel_path(name), pixel_type=sitk.sitkFloat32)
        image, replaced = check_finite(image, case_id=case.case_id, channel=name, replace=config.replace_nonfinite)
        if name in PERFUSION_CHANNELS:  # a map's units travel with its voxels (lesionseg.preprocess.perfusion)
            from lesionseg.data.sidecar import map_units
            from lesionseg.preprocess.perfusion import UNITS_METADATA_KEY

            image.SetMetaData(UNITS_METADATA_KEY, map_units(case.channel_path(name), name))
        images[name] = image
        if replaced:
            case.metadata.setdefault("nonfinite_replaced", {})[name] = int(replaced)
    return images


def _lesion_onto_grid(lesion: sitk.Image, grid, transform: sitk.Transform | None, n_classes: int) -> np.ndarray:
    """The lesion mask on the prepared grid, (slices, S, S) uint8, each lesion keeping its volume.

    With several classes (``n_classes`` >= 2, the mask holding class indices 1..K) each class is resampled on
    its own and written over the others in reverse order, so that a voxel two classes claim at their border
    goes to the class listed first (the ischaemic core before the penumbra).
    """
    if n_classes < 2:
        return sample_onto_grid(lesion, grid, is_mask=True, keep_lesion_volumes=True, transform=transform)
    stack = None
    for index in range(n_classes, 0, -1):
        one_class = sitk.Cast(sitk.Equal(lesion, index), sitk.sitkUInt8)
        resampled = sample_onto_grid(one_class, grid, is_mask=True, keep_lesion_volumes=True, transform=transform)
        stack = np.zeros_like(resampled) if stack is None else stack
        stack[resampled > 0] = index
    return stack


def prepare_case(case: Case, config: PrepareConfig, *, training: bool = True,
                 side: str | None = None) -> PreparedCase:
    """Prepare one case from its files.

    Args:
        case: the case (its mask is needed when ``training``).
        config: preparation parameters.
        training: keep lesion slices plus a fraction of lesion-free brain slices and flip lesions into
            ``config.lesion_side``; otherwise keep every brain slice, unflipped (or all flipped when
            ``side`` says the lesion is in the other hemisphere than the model was trained on).
        side: inference only: the hemisphere of the lesion, "left" or "right"; slices are flipped when it
            differs from ``config.lesion_side``. None: no flip.

    Returns:
        The prepared slices and their record.

    Raises:
        LesionSegError: bad input, with a sentence naming the case.
    """
    try:
        channels = list(config.channels or case.channel_names)
        images = read_case_channels(case, channels, config)
        reference_name = config.reference_channel(case.channel_names)
        reference = images.get(reference_name)
        user_brain = None
        if case.metadata.get("brain_mask") and reference is not None:
            user_brain = read_mask(case.metadata["brain_mask"], reference=reference)
        lesion = None
        lesion_source = None
        if training and reference is not None:
            source_name = mask_source_channel(case, reference_name, reference)
            if config.classes:
                lesion = case.read_class_mask([entry["value"] for entry in config.classes])
                if source_name is not None:
                    raise PreprocessingError(
                        f"the mask {case.mask} was drawn on channel '{source_name}', not on the reference "
                        f"'{reference_name}'; masks with several lesion classes must lie on the reference's grid.")
            else:
                lesion = case.read_mask(reference=reference)
            if source_name is not None:
                source_image = images.get(source_name)
                if source_image is None:
                    source_image = read_case_channels(case, [source_name], config)[source_name]
                lesion_source = (source_name, source_image)
            else:
                difference = geometry_difference(lesion, reference)
                if difference is not None:
                    raise PreprocessingError(
                        f"the mask {case.mask} is not on the grid of channel '{reference_name}' ({difference}).")
        prepared = prepare_images(images, config, case_id=case.case_id, patient_id=case.patient_id, lesion=lesion,
                                  user_brain=user_brain, training=training, side=side,
                                  mask_name=str(case.mask) if case.mask else "the lesion mask",
                                  lesion_source=lesion_source)
        prepared.record.steps["nonfinite_replaced"] = dict(case.metadata.get("nonfinite_replaced", {}))
        return prepared
    except LesionSegError as error:
        raise _in_case(error, case.case_id) from error


def prepare_images(images: dict[str, sitk.Image], config: PrepareConfig, *, case_id: str, patient_id: str | None = None,
                   lesion: sitk.Image | None = None, user_brain: sitk.Image | None = None, training: bool = False,
                   side: str | None = None, mask_name: str = "the lesion mask",
                   lesion_source: tuple[str, sitk.Image] | None = None) -> PreparedCase:
    """Prepare one case from volumes in memory (the predictor's entry point; see :func:`prepare_case`).

    Args:
        images: channel name -> native volume (float32, finite: see ``read_case_channels``), any grids.
        config: preparation parameters; ``config.channels`` (default: the keys of ``images``) fixes the
            order of the prepared channels and ``config.reference`` the reference.
        case_id, patient_id: recorded, and named in errors.
        lesion: the lesion mask (needed when ``training``) on the reference channel's grid, or on the grid of
            ``lesion_source``.
        user_brain: a brain mask on the reference grid that replaces brain extraction.
        training, side: as in :func:`prepare_case`.
        mask_name: how errors name the lesion mask.
        lesion_source: ``(channel name, image)`` of the scan the mask was drawn on when that is not the
            reference (e.g. DWI for a FLAIR reference in ISLES'22): the mask is carried to the reference
            through that scan's registration onto the reference (the channel's own when it is prepared,
            else one run for the purpose) and ``record.steps["mask_transfer"]`` says so.
    """
    return prepare_images_at_sizes(images, config, [config.size], case_id=case_id, patient_id=patient_id,
                                   lesion=lesion, user_brain=user_brain, training=training, side=side,
                                   mask_name=mask_name, lesion_source=lesion_source)[0]


def prepare_images_at_sizes(images: dict[str, sitk.Image], config: PrepareConfig, sizes: list[int], *,
                            case_id: str, patient_id: str | None = None, lesion: sitk.Image | None = None,
                            user_brain: sitk.Image | None = None, training: bool = False, side: str | None = None,
                            mask_name: str = "the lesion mask",
                            lesion_source: tuple[str, sitk.Image] | None = None) -> list[PreparedCase]:
    """One case prepared at several slice sizes: :func:`prepare_images` for each size of ``sizes``, with the
    steps on the native grid (brain extraction, registration, axial frame, mid-sagittal plane, brain extent)
    run once and only the prepared grid and what follows it (resampling, normalisation, slice selection, flip)
    run per size. The predictor's several readings of one scan (:mod:`lesionseg.bundle.slice_size`) use it.

    Args:
        sizes: slice sizes S in pixels, each at least 16; ``config.size`` is ignored.
        the rest: as in :func:`prepare_images`.

    Returns:
        One :class:`PreparedCase` per size, in the order of ``sizes``; all share one ``native_brain``.
    """
    from dataclasses import replace

    if not sizes:
        raise PreprocessingError("no slice size was given to prepare the case at.")
    try:
        native = _native_stage(images, config, case_id=case_id, lesion=lesion, user_brain=user_brain,
                               training=training, mask_name=mask_name, lesion_source=lesion_source)
        return [_grid_stage(native, replace(config, size=int(size)), case_id=case_id,
                            patient_id=patient_id or case_id, training=training, side=side)
                for size in sizes]
    except LesionSegError as error:
        raise _in_case(error, case_id) from error


@dataclass
class _NativeStage:
    """What preparing a case finds on its native grids, whatever the slice size: the inputs, the brain mask on
    the reference grid, the registrations, the lesion mask on the reference grid, the axial frame, the
    mid-sagittal plane and the brain's extent in that frame (mm), the record's steps so far, and each channel's
    value outside its field of view on the grid (CT: air; MRI: the channel's lowest value)."""

    images: dict[str, sitk.Image]
    channels: list[str]
    reference_name: str
    brain: sitk.Image
    transforms: dict[str, Any]
    lesion: sitk.Image | None
    lesion_native: sitk.Image | None
    lesion_transform: sitk.Transform | None
    frame: Any
    midplane: Any
    extent: Any
    steps: dict[str, Any]
    outside: dict[str, float]


def _native_stage(images: dict[str, sitk.Image], config: PrepareConfig, *, case_id: str, lesion: sitk.Image | None,
                  user_brain: sitk.Image | None, training: bool, mask_name: str,
                  lesion_source: tuple[str, sitk.Image] | None = None) -> _NativeStage:
    from lesionseg.preprocess.brain import run_brain_extraction
    from lesionseg.preprocess.perfusion import UNITS_METADATA_KEY

    channels = list(config.channels or images)
    reference_name = config.reference_channel(channels)
    if reference_name not in channels:
        raise PreprocessingError(f"the reference channel '{reference_name}' is not among the channels {channels}.")
    missing = [name for name in channels if name not in images]
    if missing:
        raise PreprocessingError(f"no image was given for channel(s) {', '.join(missing)}.")
    reference = images[reference_name]
    steps: dict[str, Any] = {}
    unitless = [n for n in channels if n in PERFUSION_CHANNELS and not images[n].HasMetaDataKey(UNITS_METADATA_KEY)]
    if unitless:
        raise PreprocessingError(f"the {unitless[0]} perfusion map was given without its units; read it with its "
                                 f"JSON sidecar (e.g. {{\"Units\": \"s\"}}) or set the image's "
                                 f"'{UNITS_METADATA_KEY}' metadata.")

    # brain mask on the reference grid; perfusion maps are zero outside the head (as perfusion software writes
    # them), and their support is the mask: no intensity-based extraction suits a Tmax or CBF map
    if user_brain is None and reference_name in PERFUSION_CHANNELS:
        from lesionseg.preprocess.perfusion import maps_brain_mask

        same_grid = [images[n] for n in channels if n in PERFUSION_CHANNELS
                     and geometry_difference(images[n], reference) is None]
        user_brain = maps_brain_mask(*same_grid)
        steps["brain_from_maps"] = len(same_grid)
    extraction = run_brain_extraction(reference, _modality(reference_name), user_mask=user_brain,
                                      method=config.brain_extraction, case_id=case_id,
                                      working_spacing_mm=config.working_spacing_mm)
    brain = extraction.mask
    steps["brain_extraction"] = extraction.to_record()

    if training and lesion is None:
        raise PreprocessingError("training slices need a lesion mask and none was given.")

    # registration of the other channels onto the reference (whole head: inside the brain CT has almost no
    # contrast and the skull carries the match, so a brain mask for the metric made CT-to-FLAIR fail)
    transforms, registrations = register_channels(images, channels, reference_name, config, case_id)
    steps["registration"] = registrations

    # the lesion mask on the reference grid (carried there when drawn on another channel's grid)
    lesion_native, lesion_transform = lesion, None
    if lesion is not None and lesion_source is not None and lesion_source[0] != reference_name:
        lesion_native, lesion_transform, steps["mask_transfer"] = carry_lesion(
            lesion, lesion_source, reference_name, images, transforms, registrations, config, case_id, mask_name)

    # the lesion mask must lie in the brain
    if training:
        lesion_voxels = np.count_nonzero(sitk.GetArrayViewFromImage(lesion_native))
        if lesion_voxels:
            near_brain = sitk.BinaryDilate(brain, [2] * 3)
            inside = np.count_nonzero((sitk.GetArrayViewFromImage(lesion_native) > 0)
                                      & (sitk.GetArrayViewFromImage(near_brain) > 0))
            if inside < config.min_lesion_in_brain * lesion_voxels:
                raise PreprocessingError(
                    f"the lesion mask {mask_name} lies mostly outside the brain ({100.0 * inside / lesion_voxels:.0f} % "
                    "inside); check that the mask belongs to this scan, or give a brain mask."
                )

    frame = axial_frame(reference, config.max_obliquity_deg)
    midplane = estimate_midplane(reference, brain, frame.geometry)  # native grid: see its module docstring
    extent = None
    if config.brain_margin_mm is not None:
        from lesionseg.preprocess.grid import brain_extent_mm

        extent = brain_extent_mm(brain, frame, config.brain_margin_mm)
    outside = {name: -1024.0 if _modality(name) == "ct" else float(np.min(sitk.GetArrayViewFromImage(images[name])))
               for name in channels}
    return _NativeStage(images, channels, reference_name, brain, transforms, lesion, lesion_native, lesion_transform,
                        frame, midplane, extent, steps, outside)


def _grid_stage(native: _NativeStage, config: PrepareConfig, *, case_id: str, patient_id: str, training: bool,
                side: str | None) -> PreparedCase:
    """The case on its prepared grid of ``config.size`` pixels: resampling, normalisation, slice selection, flip."""
    from lesionseg.preprocess.antialias import antialias_sigmas_mm, smooth_for_grid
    from lesionseg.preprocess.bias import correct_bias_n4
    from lesionseg.preprocess.normalise import normalise_mri, window_ct

    images, channels, reference_name, brain = native.images, native.channels, native.reference_name, native.brain
    transforms, lesion, lesion_native = native.transforms, native.lesion, native.lesion_native
    lesion_transform, frame, midplane = native.lesion_transform, native.frame, native.midplane
    reference = images[reference_name]
    steps = dict(native.steps)  # each size records its own normalisation and slices
    grid = prepared_grid(frame, midplane, config.size, config.min_rotation_deg, brain_extent=native.extent)

    # one resampling onto the prepared grid, then normalisation there
    brain_stack = sample_onto_grid(brain, grid, is_mask=True)
    brain_on_grid = sitk.GetImageFromArray(brain_stack)
    channel_stacks = []
    normalisation = {}
    antialiased: dict[str, list[float]] = {}
    for name in channels:
        source = images[name]
        if config.antialias:  # a prepared pixel averages the native voxels it covers
            antialiased[name] = antialias_sigmas_mm(source, grid.geometry)
            source = smooth_for_grid(source, grid.geometry, transforms[name], sigmas_mm=antialiased[name])
        stack = sample_onto_grid(source, grid, is_mask=False, default_value=native.outside[name],
                                 transform=transforms[name])
        stack_image = sitk.GetImageFromArray(stack)
        if name in PERFUSION_CHANNELS:
            normalised, normalisation[name] = _normalise_map(images[name], stack_image, brain_on_grid, name, case_id)
        elif _modality(name) == "ct" and config.ct_windows:  # one plane per window (config.input_planes)
            windows = {w: config.ct_window_hu(w) for w in config.ct_windows}
            for window in windows.values():
                channel_stacks.append(sitk.GetArrayFromImage(window_ct(stack_image, window=window)).astype(np.float32))
            normalisation[name] = {"kind": "ct_windows", "windows_hu": {w: list(v) for w, v in windows.items()}}
            continue
        elif _modality(name) == "ct":
            normalised = window_ct(stack_image, window=tuple(config.ct_window))
            normalisation[name] = {"kind": "ct_window", "window_hu": list(config.ct_window)}
        else:
            bias_record = None
            if config.bias_correction == "n4":
                stack_image, bias_record = correct_bias_n4(stack_image, brain_on_grid)
            normalised = normalise_mri(stack_image, brain_on_grid, clip_percentiles=tuple(config.clip_percentiles),
                                      case_id=case_id, channel=name)
            normalisation[name] = {"kind": "zscore_in_brain", "clip_percentiles": list(config.clip_percentiles)}
            if bias_record is not None:
                normalisation[name]["bias_correction"] = bias_record
        channel_stacks.append(sitk.GetArrayFromImage(normalised).astype(np.float32))
    steps["normalisation"] = normalisation
    if config.antialias:  # the Gaussian's sigma (mm) along each channel's axes x, y, z
        steps["antialias_sigma_mm"] = antialiased
    images_on_grid = np.stack(channel_stacks, axis=1)  # (slices, C, S, S)
    if config.mirror_difference:  # (slices, 2C, S, S): each channel's difference from the other hemisphere
        from lesionseg.preprocess.mirror_difference import add_mirror_differences

        images_on_grid, steps["mirror_difference"] = add_mirror_differences(images_on_grid, brain_stack, grid,
                                                                            midplane)

    if lesion is not None:  # straight from the grid the mask was drawn on: one interpolation
        lesion_stack = _lesion_onto_grid(lesion, grid, lesion_transform, len(config.classes or ()))
        native_lesion_pixels = (frame_slices_of(lesion_native, frame) > 0).reshape(grid.n_slices, -1).sum(axis=1)
    else:
        lesion_stack = np.zeros_like(brain_stack)
        native_lesion_pixels = np.zeros(grid.n_slices, dtype=np.int64)

    # slice selection
    brain_slices = np.flatnonzero(brain_stack.reshape(grid.n_slices, -1).any(axis=1))
    if brain_slices.size == 0:
        raise PreprocessingError("no axial slice contains brain after brain extraction.")
    if training:
        lesion_slices = np.flatnonzero(native_lesion_pixels > 0)
        candidates = np.setdiff1d(brain_slices, lesion_slices)
        rng = np.random.default_rng([config.seed, zlib.crc32(case_id.encode())])
        count = int(round(config.negatives * candidates.size))
        negatives = np.sort(rng.choice(candidates, size=count, replace=False)) if count else np.array([], int)
        kept = np.union1d(lesion_slices, negatives).astype(int)
        steps["slices"] = {"lesion": int(lesion_slices.size), "negatives": int(negatives.size),
                           "brain": int(brain_slices.size), "negatives_fraction": config.negatives}
    else:
        kept = brain_slices.astype(int)
        steps["slices"] = {"brain": int(brain_slices.size)}

    # hemisphere flip: columns >= S/2 are the patient's left
    half = config.size // 2
    flips = []
    if training:
        left = (lesion_stack[:, :, half:] > 0).reshape(grid.n_slices, -1).sum(axis=1)
        right = (lesion_stack[:, :, :half] > 0).reshape(grid.n_slices, -1).sum(axis=1)
        case_flip = bool((right.sum() > left.sum()) if config.lesion_side == "left" else (left.sum() > right.sum()))
        for index in kept:
            if left[index] + right[index] == 0:
                flips.append(case_flip)  # a lesion-free slice follows the case's dominant side
            elif config.lesion_side == "left":
                flips.append(bool(right[index] > left[index]))
            else:
                flips.append(bool(left[index] > right[index]))
        lesion_side: str | None = config.lesion_side
    else:
        flip_all = side is not None and side != config.lesion_side
        flips = [flip_all] * len(kept)
        lesion_side = side

    def select(stack: np.ndarray) -> np.ndarray:
        return flip_slices(stack[kept])

    def flip_slices(chosen: np.ndarray) -> np.ndarray:
        for position, flip in enumerate(flips):
            if flip:
                chosen[position] = chosen[position][..., ::-1]
        return np.ascontiguousarray(chosen)

    record = PrepareRecord(
        case_id=case_id, patient_id=patient_id, reference_channel=reference_name,
        channels=config.input_planes(channels),
        native=Geometry.of(reference), frame=frame, midplane=midplane, grid=grid,
        slice_indices=[int(i) for i in kept], flipped=[bool(f) for f in flips], lesion_side=lesion_side,
        steps=steps,
    )
    pixel_area = grid.frame_pixel_mm[0] * grid.frame_pixel_mm[1]
    rows = [{
        "case_id": case_id, "patient_id": patient_id, "slice_index": int(index), "flipped": bool(flip),
        "lesion_pixels": int(native_lesion_pixels[index]),
        "lesion_area_mm2": float(native_lesion_pixels[index] * pixel_area),
        "has_lesion": bool(native_lesion_pixels[index] > 0),
    } for index, flip in zip(kept, flips)]
    context = None
    if config.context_slices:
        from lesionseg.preprocess.context import gather_context

        context = flip_slices(gather_context(images_on_grid, kept, config.context_slices))
    return PreparedCase(select(images_on_grid), select(lesion_stack), select(brain_stack), record, rows, brain,
                        context)
