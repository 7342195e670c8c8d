"""One synthetic case in memory: :func:`make_case` and the :class:`SynthCase` it returns.

Randomness: case ``index`` of ``seed`` draws from generators seeded with ``[seed, index, stream, ...]``,
one stream per job (anatomy, territories and lesions, each modality's intensities, noise and bias, each
acquisition's misalignment, and for the variety options the lesion pattern, the contrast multiplier, the
oblique grid, the head tilt, random tissue contrast and the look-alikes); the lesion age follows a
golden-ratio sequence over the index from a seed-drawn start (see ``draw_lesion_age``). A case therefore
depends only on ``(seed, index)``, and its anatomy and lesions do not change when other modalities,
another grid or another pose are asked for (the phantom is defined in continuous millimetre coordinates
and only sampled on the grid). A variety option left at its default draws nothing, so the default case is
the same, bit for bit, as before those options existed.

Cost: the phantom is sampled once per acquisition that sees different content (once in all when there
is no misalignment); about 0.8 s of CPU per single-channel 192 x 224 x 48 case, writing included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.synth.ct_artefacts import beam_hardening_offset, draw_beam_hardening
from lesionseg.synth.distractors import draw_distractors
from lesionseg.synth.geometry import (
    Grid, HeadPose, content_to_head, covering_size, euler_transform, rotation_angle_deg, rotation_xyz, rotation_z,
)
from lesionseg.synth.lesions import draw_territories
from lesionseg.synth.modalities import (
    ACQUISITION, MODALITIES, bias_field, ct_hu_model, draw_lesion_age, draw_modality, draw_polarity,
    randomise_contrast, render, scale_lesion_contrast,
)
from lesionseg.synth.options import CASE_OPTION_DEFAULTS, check_options
from lesionseg.synth.patterns import choose_pattern, draw_pattern
from lesionseg.synth.perfusion import (
    PERFUSION_MAPS, draw_fields, draw_perfusion, draw_tissue_fate, fate_from_instances, render_perfusion,
)
from lesionseg.synth.phantom import draw_anatomy, params_dict, vary_cortex
from lesionseg.synth.records import LesionInfo, SynthCase, case_id_for
from lesionseg.synth.sampling import Content, sample_content
from lesionseg.synth.skull_base import draw_skull_base

_STREAM = {"anatomy": 1, "lesions": 2, "modality": 4, "noise": 5, "bias": 6, "misalignment": 7, "pattern": 8,
           "contrast": 9, "oblique": 10, "tilt": 11, "tissue_contrast": 12, "distractors": 13, "ct": 14,
           "perfusion": 15, "cortex": 16}
_CT_KEY = {"hu": 1, "beam_hardening": 2, "skull_thickness": 3, "skull_base": 4}  # sub-streams of "ct"
_CT_OPTIONS = ("ct_lesion_hu", "ct_noise_hu", "beam_hardening", "skull_thickness_mm", "skull_base")
_CODE = {name: i for i, name in enumerate(MODALITIES)}
_POLARITY_KEY = 99  # tissue_contrast stream key of the case's lesion polarity

__all__ = ["LesionInfo", "SynthCase", "case_id_for", "check_case_options", "make_case"]


def check_case_options(modalities, **options) -> tuple[str, ...]:
    """Validate ``make_case`` options without generating anything; returns the modality names.

    Raises:
        ParameterError: An unknown option name or an unusable value.
    """
    return check_options(modalities, **options)


def make_case(
    index: int,
    seed: int = 0,
    modalities=("flair",),
    size_xyz=(192, 224, 48),
    spacing_mm=(1.0, 1.0, 3.0),
    misalignment=None,
    head_pose=None,
    noise: bool = True,
    bias: bool = True,
    lesion_age=(0.0, 1.0),
    lesion_pattern: str = "default",
    lesion_contrast=None,
    oblique_deg: float | None = None,
    head_tilt_deg: float | None = None,
    skull: bool = True,
    tissue_contrast: str | None = None,
    distractors: bool = False,
    ct_lesion_hu=None,
    ct_noise_hu=None,
    beam_hardening: bool = False,
    skull_thickness_mm=None,
    skull_base: bool = False,
    varied_cortex: bool = False,
) -> SynthCase:
    """Generate one synthetic stroke case in memory.

    Args:
        index: 1-based case number (the id is ``sub-strokecase{index:04d}``).
        seed: Cohort seed; the case depends only on ``(seed, index)``.
        modalities: Channel names among ``flair``, ``dwi``, ``adc``, ``ct``, ``t1`` and the perfusion maps
            ``tmax``, ``cbf``, ``cbv``, ``mtt``; the first is the reference. With any perfusion map the case
            is a perfusion case (:mod:`lesionseg.synth.perfusion`): its tissue fate is drawn first (an
            ischaemic core inside a hypoperfused region of one territory), the maps (float32, one
            acquisition) are made from it, the structural channels show the core only, and ``lesion_mask``
            holds 1 core and 2 penumbra (``lesion_instances``: 1 the hypoperfused region, 2 the core).
        size_xyz: Grid size in voxels (x, y, z); an oblique grid or a tilted head may get more (see
            ``oblique_deg``).
        spacing_mm: Voxel spacing in mm (x, y, z); e.g. (1, 1, 5) for thick axial slices.
        misalignment: None, or ``(max_degrees, max_mm)``: every acquisition other than the reference's is
            moved by a rigid transform with angles about x, y, z drawn in [-max_degrees, max_degrees] and
            translations in [-max_mm, max_mm], about the head centre (DWI and ADC move together).
        head_pose: None (head centred, mid-sagittal plane x = 0), or ``((dx, dy, dz) mm, degrees)``:
            shift of the head from its default place (within 50 mm) and rotation about the superior (z)
            axis through the head centre (within 45 degrees); ``midplane_*`` follow it exactly.
        noise: Add noise (set False for noise-free images in tests).
        bias: Apply the MRI bias fields (set False for none).
        lesion_age: ``(low, high)`` in [0, 1]: the range the case's lesion age is spread over (see
            :func:`~lesionseg.synth.modalities.draw_lesion_age`). The default (0, 1) spans hyperacute lesions
            that FLAIR barely shows to late ones; (0.5, 1) resembles FLAIR a few days after the stroke
            (the curriculum paper's day-6 FLAIR), where lesions are hyperintense but still of varied contrast.
        lesion_pattern: ``"default"`` (1-5 lesions of radius 2-11 mm), ``"territorial"`` (one infarct of
            8-120 mL in one arterial territory, 0-2 satellites), ``"embolic"`` (4-15 lesions of radius
            1.5-5 mm), ``"lacunar"`` (1-3 deep lesions of radius 2-7 mm) or ``"mixed"`` (one of those four
            per case); see :mod:`lesionseg.synth.patterns`.
        lesion_contrast: None, or a multiplier range ``(low, high)`` (0 <= low <= high <= 4): one factor
            drawn uniformly per case multiplies every channel's lesion contrast (relative change, or HU
            offset on CT); e.g. (1.0, 1.6) takes a late FLAIR lesion from 2.8x to up to 3.9x its tissue.
        oblique_deg: None (grid axes along LPS), or a maximum angle in degrees (<= 45): the grid is stored
            obliquely, its direction matrix rotated about x and y by angles drawn in +-oblique_deg and
            about z in +-oblique_deg / 4 (``rotation_xyz``, recorded under ``parameters["variety"]``). It
            stays centred on the physical point (0, 0, 0) and gains voxels where its rotation would
            otherwise cut more of the cranium than the upright grid does (the neck may be cut).
        head_tilt_deg: None, or a maximum angle in degrees (<= 30): the head nods (pitch about its
            left-right axis, drawn in +-head_tilt_deg) and rolls (about its anterior-posterior axis, in
            +-head_tilt_deg / 3), composed with ``head_pose``'s turn about z; ``midplane_*`` stay exact.
            The grid gains voxels as for ``oblique_deg`` so the cranium stays covered.
        skull: True; False gives a skull-stripped scan: every voxel outside the intracranial (brain) mask
            of its acquisition is 0 in every channel.
        tissue_contrast: None (each modality's own intensity model) or ``"random"``: every MRI channel draws
            its tissue values per class independently and the lesion is hyperintense in 75 % of cases,
            hypointense otherwise (see :func:`~lesionseg.synth.modalities.randomise_contrast`); CT keeps HU.
        distractors: False; True adds lesion look-alikes that are not in the lesion mask (white-matter
            hyperintensities, sometimes an old infarct; see :mod:`lesionseg.synth.distractors`).
        ct_lesion_hu: None, or ``(low, high)`` HU (CT only): the case's lesion offset is drawn in it and every
            lesion voxel lies ``low`` to ``high`` HU below the tissue it replaces (replaces the age-based CT
            contrast and ``lesion_contrast``'s effect on CT; see :func:`~lesionseg.synth.modalities.ct_hu_model`).
        ct_noise_hu: None, or ``(low, high)``: the CT noise sigma (HU) drawn in it (default model: 2.5-5 HU).
        beam_hardening: False; True brightens CT brain near the skull (and sometimes adds cupping), see
            :mod:`lesionseg.synth.ct_artefacts`.
        skull_thickness_mm: None (5-8 mm drawn with the anatomy), or ``(low, high)`` mm (within 2-16): the
            skull's thickness drawn in it (e.g. (9, 14) for thick skulls).
        skull_base: False; True cuts a foramen magnum through the skull's floor (neck soft tissue meets the
            intracranial CSF) and raises two petrous ridges into the cranium (see
            :mod:`lesionseg.synth.skull_base`).
        varied_cortex: False; True redraws the cortical folding from wider ranges (sulci 10-22 mm deep,
            cortex 2-3.4 mm, narrow to wide gyri; :func:`~lesionseg.synth.phantom.vary_cortex`) from its own
            stream, so the rest of the case is drawn as without it.

    Returns:
        The :class:`SynthCase`; by default the grid has identity direction and its centre at LPS (0, 0, 0).

    Raises:
        ParameterError: If an argument has an unusable value.
    """
    options = dict(size_xyz=size_xyz, spacing_mm=spacing_mm, misalignment=misalignment, head_pose=head_pose,
                   noise=noise, bias=bias, lesion_age=lesion_age, lesion_pattern=lesion_pattern,
                   lesion_contrast=lesion_contrast, oblique_deg=oblique_deg, head_tilt_deg=head_tilt_deg,
                   skull=skull, tissue_contrast=tissue_contrast, distractors=distractors, ct_lesion_hu=ct_lesion_hu,
                   ct_noise_hu=ct_noise_hu, beam_hardening=beam_hardening, skull_thickness_mm=skull_thickness_mm,
                   skull_base=skull_base, varied_cortex=varied_cortex)
    mods = check_options(modalities, index=index, seed=seed, **options)
    index, seed = int(index), int(seed)

    def stream(name: str, *keys: int) -> np.random.Generator:
        return np.random.default_rng([seed, index, _STREAM[name], *keys])

    tilt = (0.0, 0.0)
    if head_tilt_deg is not None:
        limit = float(head_tilt_deg)
        tilt_rng = stream("tilt")
        tilt = (float(tilt_rng.uniform(-limit, limit)), float(tilt_rng.uniform(-limit / 3, limit / 3)))
    pose = HeadPose.from_option(head_pose, tilt)
    grid, oblique_angles = _draw_grid(stream("oblique"), size_xyz, spacing_mm, oblique_deg, pose,
                                      head_tilt_deg is not None)
    anatomy = draw_anatomy(stream("anatomy"))
    if skull_thickness_mm is not None:  # drawn apart, so the rest of the anatomy stays as it was
        anatomy.params.skull_thickness = float(stream("ct", _CT_KEY["skull_thickness"]).uniform(
            *(float(v) for v in skull_thickness_mm)))
    if varied_cortex:
        vary_cortex(anatomy, stream("cortex"))
    if skull_base:
        anatomy.skull_base = draw_skull_base(stream("ct", _CT_KEY["skull_base"]), anatomy.params.brain_axes)
    lesion_rng = stream("lesions")
    territories = draw_territories(lesion_rng)
    perfusion = [m for m in mods if m in PERFUSION_MAPS]
    pattern = "perfusion" if perfusion else choose_pattern(stream("pattern"), lesion_pattern)
    if perfusion:  # tissue fate first (region, then core), the maps from it below
        specs = draw_tissue_fate(lesion_rng, anatomy, territories)
    else:
        specs = draw_pattern(lesion_rng, pattern, anatomy, territories)
    age_low, age_high = (float(v) for v in lesion_age)
    age = age_low + (age_high - age_low) * draw_lesion_age(seed, index)
    params = {m: draw_modality(stream("modality", _CODE[m]), m, age) for m in mods if m not in PERFUSION_MAPS}
    perfusion_params = draw_perfusion(stream("perfusion")) if perfusion else None
    hidden = frozenset({1}) if perfusion else frozenset()  # structural scans show the core, not the penumbra
    randomised, polarity = set(), None
    if tissue_contrast == "random":
        polarity = draw_polarity(stream("tissue_contrast", _POLARITY_KEY))
        for m in params:
            params[m] = randomise_contrast(stream("tissue_contrast", _CODE[m]), params[m], age, polarity)
            randomised |= {m} if m != "ct" else set()
    multiplier = None
    if lesion_contrast is not None:
        multiplier = float(stream("contrast").uniform(*(float(v) for v in lesion_contrast)))
        params = {m: scale_lesion_contrast(p, multiplier) for m, p in params.items()}
    if ct_lesion_hu is not None or ct_noise_hu is not None:
        params = {m: ct_hu_model(stream("ct", _CT_KEY["hu"]), p, ct_lesion_hu, ct_noise_hu) for m, p in params.items()}
    hardening = draw_beam_hardening(stream("ct", _CT_KEY["beam_hardening"])) if beam_hardening else None
    look_alikes = draw_distractors(stream("distractors"), anatomy, territories, specs) if distractors else []
    reference = mods[0]
    groups: dict[str, list[str]] = {}  # acquisition -> its channels; the reference's acquisition first
    for m in mods:
        groups.setdefault(ACQUISITION[m], []).append(m)
    transforms = {
        group: _draw_transform(stream("misalignment", _CODE[group]),
                               misalignment if group != ACQUISITION[reference] else None, pose)
        for group in groups
    }

    channels: dict[str, sitk.Image] = {}
    bias_images: dict[str, sitk.Image] = {}
    truth: Content | None = None
    fractions = None
    for group, members in groups.items():
        if truth is None or misalignment is not None:  # an aligned acquisition sees the reference content
            is_reference = truth is None
            content = sample_content(grid, pose, anatomy, territories, specs,
                                     None if is_reference else transforms[group],
                                     with_labels=is_reference or group == ACQUISITION["tmax"], distractors=look_alikes,
                                     hidden=hidden, with_depth=hardening is not None)
            truth = content if is_reference else truth
            fractions = content.maps.fractions()
        brain = truth.labels >= 3
        perfusion_maps = None
        for m in members:
            if m in PERFUSION_MAPS:
                if perfusion_maps is None:
                    perfusion_maps = _perfusion_maps(
                        perfusion_params, content, grid, pose,
                        None if group == ACQUISITION[reference] or misalignment is None else transforms[group],
                        specs[0].side, (stream("perfusion", 1), stream("perfusion", 2)), noise)
                channels[m] = grid.image_from_array(perfusion_maps[m])
                continue
            field_array = None
            if bias and params[m].bias_peak_to_peak is not None:
                field_array = bias_field(stream("bias", _CODE[m]), grid, brain, params[m].bias_peak_to_peak)
                bias_images[m] = grid.image_from_array(field_array)
            noise_rng = stream("noise", _CODE[m]) if noise else None
            extras = None
            if content.distractors is not None:
                extras = content.distractors.for_channel(m, m in randomised, params[m].lesion_contrast)
            offset = None
            if hardening is not None and m == "ct":
                intracranial = fractions[3] + fractions[4] + fractions[5] + fractions[6] + fractions[7]
                offset = beam_hardening_offset(hardening, content.skull_depth_mm, intracranial)
            array = render(params[m], fractions, content.lesion_fraction, content.lesion_contrast,
                           field_array, noise_rng, extras, offset)
            if not skull:
                array[~(brain if content is truth else content.maps.skull_inner >= 0.5)] = 0
            channels[m] = grid.image_from_array(array)

    brain = truth.labels >= 3
    head_to_physical = pose.head_to_physical()
    voxel_mm3 = float(np.prod(grid.spacing_mm))
    lesions = [
        LesionInfo(number, spec.side, spec.territory,
                   tuple(float(v) for v in head_to_physical.apply(spec.centres[0])), spec.radius_mm,
                   float(np.count_nonzero(truth.instances == number)) * voxel_mm3, spec.contrast_factor,
                   spec.kind)
        for number, spec in enumerate(specs, start=1)
    ]
    parameters = {
        "anatomy": params_dict(anatomy),
        "territories": vars(territories),
        "lesion_age": age,
        "lesions": [spec.to_dict() for spec in specs],
        "modalities": {m: params[m].to_dict() for m in params},
        "perfusion": None if perfusion_params is None else perfusion_params.to_dict(),
        "bias_peak_to_peak_measured": {
            m: _peak_to_peak(sitk.GetArrayViewFromImage(image), brain) for m, image in bias_images.items()
        },
        "grid": {"size_xyz": list(grid.size_xyz), "spacing_mm": list(grid.spacing_mm),
                 "origin_mm": list(grid.origin_mm), "direction": list(grid.direction)},
        "head_pose": {"centre_mm": list(pose.centre_mm), "rotation_deg": pose.rotation_deg},
        "misalignment": None if misalignment is None else [float(v) for v in misalignment],
        "noise": noise,
        "bias": bias,
        "variety": {
            "lesion_pattern": pattern,
            "lesion_contrast_multiplier": multiplier,
            "oblique_angles_deg": oblique_angles,
            "oblique_angle_deg": (None if oblique_angles is None
                                  else rotation_angle_deg(rotation_xyz(oblique_angles))),
            "oblique_convention": "direction = R_z(az) @ R_y(ay) @ R_x(ax), angles (ax, ay, az) in degrees",
            "head_tilt_deg": {"pitch": pose.pitch_deg, "roll": pose.roll_deg},
            "skull": bool(skull),
            "tissue_contrast": tissue_contrast,
            "lesion_polarity": polarity,
            "distractors": [d.to_dict() for d in look_alikes],
            **({} if hardening is None else {"beam_hardening": hardening.to_dict()}),
            **({} if anatomy.skull_base is None else {"skull_base": anatomy.skull_base.to_dict()}),
        },
        "options": _json_ready(options),
    }
    point, normal = pose.midplane()
    return SynthCase(
        case_id=case_id_for(index),
        index=index,
        seed=seed,
        channels={m: channels[m] for m in mods},
        lesion_mask=grid.image_from_array(fate_from_instances(truth.instances) if perfusion
                                          else (truth.instances > 0).astype(np.uint8)),
        lesion_instances=grid.image_from_array(truth.instances),
        brain_mask=grid.image_from_array(brain.astype(np.uint8)),
        tissue_labels=grid.image_from_array(truth.labels),
        territory_labels=grid.image_from_array(truth.territories),
        bias_fields=bias_images,
        midplane_point_mm=point,
        midplane_normal=normal,
        lesions=lesions,
        transforms={m: transforms[ACQUISITION[m]] for m in mods},
        reference_channel=reference,
        parameters=parameters,
        distractor_labels=(None if truth.distractors is None
                           else grid.image_from_array(truth.distractors.labels)),
    )


def _perfusion_maps(params, content: Content, grid: Grid, pose: HeadPose, transform, side: str,
                    rngs: tuple[np.random.Generator, np.random.Generator], noise: bool) -> dict[str, np.ndarray]:
    """The perfusion maps of the acquisition that ``content`` samples (see :mod:`lesionseg.synth.perfusion`).

    ``transform`` is the acquisition's misalignment (None when aligned); ``rngs`` the fields' and the noise's
    generators.
    """
    physical_to_head = content_to_head(pose, transform)
    fields = [field.sample_grid(grid, physical_to_head) for field in draw_fields(rngs[0])]
    brain = content.labels >= 3
    hemisphere = np.isin(content.territories, (1, 2, 3) if side == "left" else (4, 5, 6))
    return render_perfusion(params, content.maps.fractions(), fate_from_instances(content.instances), brain,
                            hemisphere, tuple(reversed(grid.spacing_mm)), fields, rngs[1] if noise else None)


def _draw_grid(rng: np.random.Generator, size_xyz, spacing_mm, oblique_deg, pose: HeadPose,
               tilted: bool) -> tuple[Grid, list[float] | None]:
    """The case's grid and its oblique angles (degrees about x, y, z; None when not oblique).

    Without ``oblique_deg`` and without a head tilt this is ``Grid.centred(size_xyz, spacing_mm)`` and
    draws nothing; otherwise the grid may gain voxels (:func:`~lesionseg.synth.geometry.covering_size`).
    """
    if oblique_deg is None and not tilted:
        return Grid.centred(size_xyz, spacing_mm), None
    angles = None
    direction = np.eye(3)
    if oblique_deg is not None:
        limit = float(oblique_deg)
        angles = [float(rng.uniform(-limit, limit)), float(rng.uniform(-limit, limit)),
                  float(rng.uniform(-limit / 4, limit / 4))]
        direction = rotation_xyz(angles)
    size = covering_size(size_xyz, spacing_mm, direction, pose.rotation(), rotation_z(pose.rotation_deg))
    grid = Grid.oblique(size, spacing_mm, angles) if angles is not None else Grid.centred(size, spacing_mm)
    return grid, angles


def _json_ready(options: dict[str, Any]) -> dict[str, Any]:
    """Options as JSON values (tuples as lists, NumPy scalars as Python numbers)."""
    def convert(value):
        if isinstance(value, (tuple, list)):
            return [convert(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value
    # the CT options are recorded only when used, so the truth files of cases made without them stay as they were
    return {name: convert(options.get(name, default)) for name, default in CASE_OPTION_DEFAULTS.items()
            if name not in _CT_OPTIONS or options.get(name, default) != default}


def _draw_transform(rng: np.random.Generator, misalignment, pose: HeadPose) -> sitk.Euler3DTransform:
    """An acquisition's rigid transform about the head centre; identity when ``misalignment`` is None."""
    angles, shift = np.zeros(3), np.zeros(3)
    if misalignment is not None:
        angles = rng.uniform(-misalignment[0], misalignment[0], 3)
        shift = rng.uniform(-misalignment[1], misalignment[1], 3)
    return euler_transform(angles, shift, pose.centre_mm)


def _peak_to_peak(field_array: np.ndarray, brain: np.ndarray) -> float:
    """``(max - min) / mean`` of a field over a mask."""
    values = field_array[brain]
    return float((values.max() - values.min()) / values.mean()) if values.size else 0.0
