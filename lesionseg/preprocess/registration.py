"""Registration of one channel onto another (SimpleITK), its JSON record, inverse, and mask transfer.

Convention (ITK's): a registration transform ``T`` maps a physical point (LPS, mm) of the FIXED image to
the physical point of the MOVING image that shows the same anatomy. That is what resampling needs:
``sitk.Resample(moving, fixed, T, ...)`` (see :func:`resample_onto_fixed`) puts the moving image on the
fixed grid. To carry something from the fixed grid back to the moving grid, resample with
:func:`invert_transform` ``(T)``.

Method: Mattes mutual information (32 bins; works across FLAIR, DWI, ADC, T1 and CT), linear
interpolation, a fixed number of randomly placed sample points per pyramid level drawn with a fixed
seed (same inputs + same seed = the same transform, up to the summation order of ITK's threads, which
moves points by far less than a micrometre), regular-step gradient descent with parameter scales
estimated from physical shifts. Stages run in order, each starting from the previous result:

- ``rigid`` (``VersorRigid3DTransform``): pyramid shrink 4, 2, 1 with Gaussian smoothing 2, 1, 0 mm;
- ``affine`` (``AffineTransform``, 12 parameters): shrink 2, 1 only (see ``PYRAMIDS``). Scans of one head
  differ by a rigid motion plus a few percent of scaling at most, so an affine result with a scale
  outside ``AFFINE_SCALE_RANGE`` is rejected and the rigid result kept (``record["affine_rejected"]``);
  the result of rigid+affine is one ``AffineTransform``;
- optional deformable stage: a cubic B-spline with control points about every 50 mm, regular steps of
  at most 1 mm, 30 iterations at shrink 2, on top of the linear result. It is meant for small residual
  distortions (EPI stretch of DWI), not large warps. The transform is then a
  ``CompositeTransform([linear, bspline])``, i.e. ``T(p) = linear(bspline(p))``.

Initialisation: the rigid stage starts from whichever of three centred candidates has the best metric:
the images' physical coordinates as they are (scanner space), their geometric centres aligned, or the
centres of mass of their head masks (Otsu foreground) aligned.

Inverse: linear transforms are inverted exactly. A B-spline has no closed-form inverse: its
displacement field is sampled on its own domain (3 mm grid) and inverted iteratively
(``sitk.InvertDisplacementField``); the inverse is then a ``DisplacementFieldTransform`` accurate to a
small fraction of a millimetre for smooth fields, not exactly.

Record: :func:`transform_to_record` / :func:`transform_from_record` turn any transform built here
(Euler, affine, B-spline, translation, composite of these) into a JSON-ready dict and back, bit for bit
(Python's float repr round-trips doubles exactly).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import GeometryError, ParameterError, PreprocessingError
from lesionseg.io.geometry import Geometry, geometry_difference
from lesionseg.preprocess.normalise import check_finite

LOGGER = logging.getLogger(__name__)

STAGES = ("rigid", "affine")
#: Mattes histogram bins and the number of fixed-image points sampled at each pyramid level.
HISTOGRAM_BINS = 32
SAMPLES_PER_LEVEL = {"rigid": 20000, "affine": 20000, "bspline": 10000}
#: Pyramid per stage: (shrink factors, Gaussian sigmas in mm). The affine stage skips the coarsest level:
#: with thick slices, a 4x shrink leaves a dozen 12 mm slices, on which an affine fit shears and squashes.
PYRAMIDS = {"rigid": ((4, 2, 1), (2.0, 1.0, 0.0)), "affine": ((2, 1), (1.0, 0.0)), "bspline": ((2,), (1.0,))}
ITERATIONS = {"rigid": 300, "affine": 100, "bspline": 30}
BSPLINE_CONTROL_SPACING_MM = 50.0
INVERSE_FIELD_SPACING_MM = 3.0
#: Scans of one head differ by a rigid motion plus at most a few percent of scanner scaling or EPI
#: stretch. An affine result whose singular values leave this range has traded anatomy for a better
#: metric (mutual information can gain by shrinking one head inside the other): it is rejected and the
#: rigid result kept (recorded as ``affine_rejected``).
AFFINE_SCALE_RANGE = (0.9, 1.1)
RECORD_CONVENTION = "maps fixed-image physical points (LPS mm) to moving-image physical points"


@dataclass
class RegistrationResult:
    """The outcome of :func:`register`.

    Attributes:
        transform: maps fixed physical points to moving physical points (ITK convention).
        record: JSON-ready description; :func:`transform_from_record` rebuilds ``transform`` from it.
        final_metric: Mattes mutual information at the end of the last stage (lower is better; negative).
    """

    transform: sitk.Transform
    record: dict
    final_metric: float


def _who(case_id: str) -> str:
    """The message prefix naming the case ("case X: "), or nothing without a case id."""
    return f"case {case_id}: " if case_id else ""


def require_not_flat(image: sitk.Image, *, case_id: str, channel: str) -> None:
    """Raise :class:`PreprocessingError` when an image has no contrast (constant, or no finite voxel)."""
    array = sitk.GetArrayViewFromImage(image)
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if finite.size == 0:
        raise PreprocessingError(f"{_who(case_id)}channel {channel} has no finite voxel, so it cannot be "
                                 "registered.")
    low, high = finite.min(), finite.max()
    if low == high:
        raise PreprocessingError(f"{_who(case_id)}channel {channel} is flat (every voxel is "
                                 f"{float(low):g}), so it cannot be registered.")


def _head_mask(image: sitk.Image) -> sitk.Image:
    """Otsu foreground of an image (used only to centre the initial transform)."""
    return sitk.OtsuThreshold(image, 0, 1, 128)


def _centred_candidates(fixed: sitk.Image, moving: sitk.Image) -> list[tuple[str, sitk.Euler3DTransform]]:
    """Rigid starting points, all rotating about the fixed image's centre."""
    size = np.asarray(fixed.GetSize(), float)
    centre = fixed.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2))
    identity = sitk.Euler3DTransform()
    identity.SetCenter(centre)
    candidates = [("scanner", identity)]
    geometry = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                                 sitk.CenteredTransformInitializerFilter.GEOMETRY)
    candidates.append(("geometry", sitk.Euler3DTransform(geometry)))
    try:
        moments = sitk.CenteredTransformInitializer(_head_mask(fixed), _head_mask(moving),
                                                    sitk.Euler3DTransform(),
                                                    sitk.CenteredTransformInitializerFilter.MOMENTS)
        candidates.append(("moments", sitk.Euler3DTransform(moments)))
    except RuntimeError:  # an empty foreground: the moments candidate is simply not offered
        pass
    return candidates


def _method(fixed: sitk.Image, seed: int, fixed_mask: sitk.Image | None,
            stage: str) -> sitk.ImageRegistrationMethod:
    """A registration method with the metric, sampling and pyramid of ``stage`` (see the module docstring)."""
    shrink, sigmas = PYRAMIDS[stage]
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=HISTOGRAM_BINS)
    method.SetMetricSamplingStrategy(method.RANDOM)
    size = np.asarray(fixed.GetSize(), float)
    fractions = [min(1.0, SAMPLES_PER_LEVEL[stage] / float(np.prod(np.ceil(size / f)))) for f in shrink]
    # SimpleITK reads seed 0 as "seed from the wall clock", so the user's seed is shifted by one.
    method.SetMetricSamplingPercentagePerLevel(fractions, int(seed) + 1)
    method.SetInterpolator(sitk.sitkLinear)
    if fixed_mask is not None:
        method.SetMetricFixedMask(fixed_mask)
    method.SetShrinkFactorsPerLevel(list(shrink))
    method.SetSmoothingSigmasPerLevel(list(sigmas))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return method


def _choose_start(fixed, moving, fixed_mask, seed) -> tuple[str, sitk.Euler3DTransform]:
    """The candidate start with the best metric, evaluated on images shrunk by 4."""
    shrink = [max(1, min(4, n // 16)) for n in fixed.GetSize()]
    small_fixed = sitk.Shrink(sitk.SmoothingRecursiveGaussian(fixed, 2.0), shrink)
    small_moving = sitk.Shrink(sitk.SmoothingRecursiveGaussian(moving, 2.0),
                               [max(1, min(4, n // 16)) for n in moving.GetSize()])
    small_mask = None
    if fixed_mask is not None:
        small_mask = sitk.Resample(fixed_mask, small_fixed, sitk.Transform(), sitk.sitkNearestNeighbor)
    best = None
    for name, transform in _centred_candidates(fixed, moving):
        method = sitk.ImageRegistrationMethod()
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=HISTOGRAM_BINS)
        method.SetInterpolator(sitk.sitkLinear)
        if small_mask is not None:
            method.SetMetricFixedMask(small_mask)
        method.SetInitialTransform(transform, inPlace=False)
        try:
            value = method.MetricEvaluate(small_fixed, small_moving)
        except RuntimeError:  # no overlap for this candidate
            continue
        LOGGER.debug("start %s: metric %.4f", name, value)
        if best is None or value < best[0]:
            best = (value, name, transform)
    if best is None:
        raise RuntimeError("the images do not overlap from any starting position")
    return best[1], best[2]


def _run_linear_stage(fixed, moving, transform, fixed_mask, seed, stage: str) -> tuple[sitk.Transform, float]:
    method = _method(fixed, seed, fixed_mask, stage)
    # A slow step decay (0.8): with 0.5 the step collapses on the sampled metric's noise and the search
    # stops a degree or two short on CT-to-MRI pairs.
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0 if stage == "rigid" else 1.0, minStep=1e-3, numberOfIterations=ITERATIONS[stage],
        relaxationFactor=0.8, gradientMagnitudeTolerance=1e-8)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetInitialTransform(transform, inPlace=True)
    method.Execute(fixed, moving)
    return transform, float(method.GetMetricValue())


def _as_affine(transform: sitk.Transform) -> sitk.AffineTransform:
    """An AffineTransform equal to a matrix-offset transform (same centre, matrix and translation)."""
    affine = sitk.AffineTransform(3)
    affine.SetCenter(transform.GetCenter())
    affine.SetMatrix(transform.GetMatrix())
    affine.SetTranslation(transform.GetTranslation())
    return affine


def _as_versor(transform: sitk.Transform) -> sitk.VersorRigid3DTransform:
    """A VersorRigid3DTransform equal to a rigid matrix-offset transform (the rigid stage's parameters)."""
    versor = sitk.VersorRigid3DTransform()
    versor.SetCenter(transform.GetCenter())
    versor.SetMatrix(transform.GetMatrix())
    versor.SetTranslation(transform.GetTranslation())
    return versor


def _run_bspline_stage(fixed, moving, linear, fixed_mask, seed) -> tuple[sitk.Transform, float]:
    extent = np.asarray(fixed.GetSize()) * np.asarray(fixed.GetSpacing())
    mesh = [max(1, int(round(e / BSPLINE_CONTROL_SPACING_MM))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
    method = _method(fixed, seed, fixed_mask, "bspline")
    # Every B-spline parameter is a displacement in mm, so the default unit scales are physical already;
    # the regular step bounds each update to 1 mm, which keeps the warp smooth (L-BFGS-B, unbounded,
    # bent the skull edge of a CT by 15 mm to gain mutual information on a purely rigid test case).
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-2, relaxationFactor=0.7,
                                                    numberOfIterations=ITERATIONS["bspline"])
    method.SetMovingInitialTransform(linear)
    method.SetInitialTransform(bspline, inPlace=True)
    method.Execute(fixed, moving)
    return sitk.CompositeTransform([linear, bspline]), float(method.GetMetricValue())


def _scales(transform: sitk.Transform) -> np.ndarray:
    """Singular values of a linear transform's matrix (1, 1, 1 if rigid); negated if it mirrors."""
    matrix = np.asarray(transform.GetMatrix(), float).reshape(3, 3)
    return np.linalg.svd(matrix, compute_uv=False) * np.sign(np.linalg.det(matrix))


def register(fixed: sitk.Image, moving: sitk.Image, *, stages: tuple[str, ...] = STAGES,
             deformable: bool = False, fixed_mask: sitk.Image | None = None, seed: int = 0, case_id: str = "",
             channel: str = "moving", fixed_channel: str = "fixed") -> RegistrationResult:
    """Register ``moving`` onto ``fixed`` (see the module docstring for the method).

    Args:
        fixed: the reference image (its grid is the target grid).
        moving: the image to align (any grid, any modality).
        stages: linear stages in order, a non-empty ordered subset of ``("rigid", "affine")``.
        deformable: add a B-spline stage after the linear stages.
        fixed_mask: optional 0/1 mask on the fixed grid restricting where the metric is sampled. Leave it
            None for CT: inside the brain CT has little contrast, and restricting a CT-to-MRI metric to the
            brain raised the error on the phantom from about 0.3 to 2 mm (the skull's edges carry it).
        seed: random seed of the metric sampling (same inputs and seed give the same transform).
        case_id: case named in error messages.
        channel: the moving channel's name, for messages.
        fixed_channel: the fixed channel's name, for messages.

    Returns:
        A :class:`RegistrationResult` whose transform maps fixed physical points to moving ones.

    Raises:
        ParameterError: unknown or mis-ordered stages, or no stage at all.
        GeometryError: a fixed mask that is not on the fixed image's grid.
        PreprocessingError: a flat (constant) image, an optimiser failure, or an implausible result.
    """
    stages = tuple(stages)
    if not stages and not deformable:
        raise ParameterError("registration needs at least one stage among rigid, affine (or deformable).")
    unknown = [s for s in stages if s not in STAGES]
    if unknown or list(stages) != sorted(stages, key=STAGES.index) or len(set(stages)) != len(stages):
        raise ParameterError(
            f"registration stages must be an ordered subset of {', '.join(STAGES)}, not {stages!r}.")
    for image, name in ((fixed, fixed_channel), (moving, channel)):
        check_finite(image, case_id=case_id, channel=name)
        require_not_flat(image, case_id=case_id, channel=name)
    mask = None
    if fixed_mask is not None:
        difference = geometry_difference(fixed, fixed_mask)
        if difference is not None:
            raise GeometryError(f"{_who(case_id)}the registration mask is not on the {fixed_channel} grid "
                                f"({difference}).")
        mask = sitk.Cast(fixed_mask != 0, sitk.sitkUInt8)
    who = f"{_who(case_id)}registration of channel {channel} onto {fixed_channel}"
    fixed_f = sitk.Cast(fixed, sitk.sitkFloat32)
    moving_f = sitk.Cast(moving, sitk.sitkFloat32)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    metrics: dict[str, float] = {}
    rejected: str | None = None
    try:
        start_name, transform = _choose_start(fixed_f, moving_f, mask, seed)
        for stage in stages:
            tic = time.perf_counter()
            previous = transform
            transform = _as_affine(transform) if stage == "affine" else _as_versor(transform)
            transform, metrics[stage] = _run_linear_stage(fixed_f, moving_f, transform, mask, seed, stage)
            timings[stage] = round(time.perf_counter() - tic, 3)
            if stage == "affine":
                scales = _scales(transform)
                if scales.min() < AFFINE_SCALE_RANGE[0] or scales.max() > AFFINE_SCALE_RANGE[1]:
                    if "rigid" not in stages:
                        raise PreprocessingError(
                            f"{who} did not converge (the affine fit ended with scales "
                            f"{', '.join(f'{v:.2f}' for v in scales)}); try the rigid stage first.")
                    rejected = f"scales {', '.join(f'{v:.3f}' for v in scales)} outside {AFFINE_SCALE_RANGE}"
                    LOGGER.warning("%s: affine stage rejected (%s); keeping the rigid result", who, rejected)
                    transform = previous
        if deformable:
            tic = time.perf_counter()
            transform, metrics["bspline"] = _run_bspline_stage(fixed_f, moving_f, transform, mask, seed)
            timings["bspline"] = round(time.perf_counter() - tic, 3)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1][:200] if str(error).strip() else type(error).__name__
        raise PreprocessingError(
            f"{who} failed ({reason}); check that both images show the same head.") from error
    last = "bspline" if deformable else ("rigid" if rejected else stages[-1])
    record = {
        "convention": RECORD_CONVENTION,
        "affine_rejected": rejected,
        "transform": transform_to_record(transform),
        "stages": list(stages) + (["bspline"] if deformable else []),
        "start": start_name,
        "metric": "mattes_mutual_information",
        "metric_values": metrics,
        "seed": int(seed),
        "seconds": {**timings, "total": round(time.perf_counter() - started, 3)},
        "fixed_geometry": Geometry.of(fixed).to_dict(),
        "moving_geometry": Geometry.of(moving).to_dict(),
    }
    LOGGER.debug("%s: %s in %.1f s, metric %.4f", who, "+".join(record["stages"]), record["seconds"]["total"],
                 metrics[last])
    return RegistrationResult(transform, record, metrics[last])


# --- records -------------------------------------------------------------------------------------------

_SIMPLE_TRANSFORMS = {
    "Euler3DTransform": sitk.Euler3DTransform,
    "AffineTransform": lambda: sitk.AffineTransform(3),
    "TranslationTransform": lambda: sitk.TranslationTransform(3),
    "VersorRigid3DTransform": sitk.VersorRigid3DTransform,
    "Similarity3DTransform": sitk.Similarity3DTransform,
    "ScaleTransform": lambda: sitk.ScaleTransform(3),
}


def transform_to_record(transform: sitk.Transform) -> dict:
    """A JSON-ready dict describing ``transform`` exactly (class, parameters, fixed parameters).

    Composite transforms list their parts in order of addition (the last part acts first on a point).

    Raises:
        ParameterError: a transform class this module does not record (e.g. a displacement field).
    """
    name = transform.GetName()
    if name == "CompositeTransform":
        composite = sitk.CompositeTransform(transform)
        parts = [composite.GetNthTransform(i) for i in range(composite.GetNumberOfTransforms())]
        return {"class": name, "transforms": [transform_to_record(p) for p in parts]}
    if name not in _SIMPLE_TRANSFORMS and name != "BSplineTransform":
        raise ParameterError(
            f"cannot record a {name}; only linear, B-spline and composite transforms are recorded.")
    record = {"class": name, "parameters": [float(v) for v in transform.GetParameters()],
              "fixed_parameters": [float(v) for v in transform.GetFixedParameters()]}
    if name == "BSplineTransform":
        record["order"] = int(sitk.BSplineTransform(transform).GetOrder())
    return record


def transform_from_record(record: dict) -> sitk.Transform:
    """Rebuild the transform described by :func:`transform_to_record` (or a :func:`register` record).

    Raises:
        ParameterError: a record that does not describe a known transform.
    """
    if "transform" in record and "class" not in record:
        record = record["transform"]
    name = record.get("class")
    try:
        if name == "CompositeTransform":
            return sitk.CompositeTransform([transform_from_record(part) for part in record["transforms"]])
        if name == "BSplineTransform":
            transform = sitk.BSplineTransform(3, int(record.get("order", 3)))
        elif name in _SIMPLE_TRANSFORMS:
            transform = _SIMPLE_TRANSFORMS[name]()
        else:
            raise ParameterError(f"a transform record names an unknown transform class {name!r}.")
        transform.SetFixedParameters([float(v) for v in record["fixed_parameters"]])
        transform.SetParameters([float(v) for v in record["parameters"]])
    except (KeyError, TypeError, RuntimeError) as error:
        raise ParameterError(f"a {name} transform record is incomplete or malformed ({error}).") from error
    return transform


# --- applying and inverting ---------------------------------------------------------------------------

def resample_onto_fixed(moving: sitk.Image, fixed: sitk.Image, transform: sitk.Transform, is_mask: bool,
                        default_value: float | None = None) -> sitk.Image:
    """Resample ``moving`` onto ``fixed``'s grid through a fixed-to-moving transform.

    Args:
        moving: the image (or mask) to move.
        fixed: the grid to land on.
        transform: maps fixed physical points to moving ones (as :func:`register` returns).
        is_mask: nearest-neighbour interpolation (labels stay labels) instead of linear.
        default_value: value where the fixed grid sees outside the moving image; by default 0 for masks
            and the moving image's minimum (air / background) for images.

    Returns:
        The resampled image, with ``moving``'s pixel type, on ``fixed``'s grid.
    """
    if default_value is None:
        default_value = 0.0 if is_mask else float(sitk.GetArrayViewFromImage(moving).min())
    interpolator = sitk.sitkNearestNeighbor if is_mask else sitk.sitkLinear
    return sitk.Resample(moving, fixed, transform, interpolator, default_value, moving.GetPixelID())


def _invert_bspline(bspline: sitk.BSplineTransform) -> sitk.Transform:
    """Numerical inverse of a B-spline: its displacement field on its domain (3 mm grid), inverted.

    A B-spline with control points 50 mm apart is smooth at 3 mm: linear interpolation of the sampled
    field errs by a few hundredths of a millimetre.
    """
    origin = np.asarray(bspline.GetTransformDomainOrigin(), float)
    extent = np.asarray(bspline.GetTransformDomainPhysicalDimensions(), float)
    direction = bspline.GetTransformDomainDirection()
    spacing = INVERSE_FIELD_SPACING_MM
    size = [int(np.ceil(e / spacing)) + 1 for e in extent]
    field = sitk.TransformToDisplacementField(bspline, sitk.sitkVectorFloat64, size, tuple(origin),
                                              (spacing,) * 3, direction)
    inverse = sitk.InvertDisplacementField(field, maximumNumberOfIterations=30,
                                           maxErrorToleranceThreshold=0.01, meanErrorToleranceThreshold=0.001,
                                           enforceBoundaryCondition=True)
    return sitk.DisplacementFieldTransform(inverse)


def invert_transform(transform: sitk.Transform) -> sitk.Transform:
    """The inverse of a registration transform (maps moving physical points to fixed ones).

    Linear transforms are inverted exactly; B-spline parts numerically (see the module docstring);
    a composite is inverted part by part in reverse order.
    """
    name = transform.GetName()
    if name == "CompositeTransform":
        composite = sitk.CompositeTransform(transform)
        parts = [composite.GetNthTransform(i) for i in range(composite.GetNumberOfTransforms())]
        return sitk.CompositeTransform([invert_transform(p) for p in reversed(parts)])
    if name == "BSplineTransform":
        return _invert_bspline(sitk.BSplineTransform(transform))
    return transform.GetInverse()


def mean_distance_mm(first: sitk.Transform, second: sitk.Transform, mask: sitk.Image) -> float:
    """Mean distance (mm) between where two transforms send the centres of the mask's non-zero voxels.

    Used to measure registration error against a known transform.
    """
    index = np.argwhere(sitk.GetArrayViewFromImage(mask) != 0)[:, ::-1]  # (x, y, z) voxel indices
    if len(index) > 20000:  # a regular subsample is plenty for a mean
        index = index[:: len(index) // 20000]
    distances = [np.linalg.norm(np.subtract(first.TransformPoint(p), second.TransformPoint(p)))
                 for p in (mask.TransformIndexToPhysicalPoint([int(v) for v in i]) for i in index)]
    return float(np.mean(distances))


# --- mask transfer ------------------------------------------------------------------------------------

def transfer_mask(mask: sitk.Image, source: sitk.Image, target: sitk.Image, *, deformable: bool = False,
                  stages: tuple[str, ...] = STAGES, seed: int = 0, case_id: str = "",
                  source_name: str = "source", target_name: str = "target") -> sitk.Image:
    """Carry a mask drawn on ``source`` onto ``target``'s grid (another scan of the same head).

    ``source`` is registered onto ``target`` (target fixed), then the mask is resampled through the
    transform so that each lesion keeps its volume
    (:func:`lesionseg.preprocess.mask_resampling.resample_mask_image_keeping_volumes`: each lesion keeps
    the target voxels its linearly interpolated indicator covers most). Nearest neighbour would pick one
    source voxel per target voxel, which between grids of different voxel size or orientation makes
    staircase edges and drops or doubles thin slices; one threshold at 0.5 of the interpolated indicator
    shrinks small lesions, and loses those that fall between thick target slices.

    Args:
        mask: 0/1 mask on ``source``'s grid.
        source: the scan the mask was drawn on.
        target: the scan to carry the mask to.
        deformable: add the B-spline stage.
        stages: linear stages (see :func:`register`).
        seed: registration seed.
        case_id: case named in messages.
        source_name: name of the source scan in messages (e.g. its file name).
        target_name: name of the target scan in messages.

    Returns:
        uint8 0/1 mask on ``target``'s grid.

    Raises:
        GeometryError: the mask is not on the source's grid.
        PreprocessingError: the registration fails (flat image, no convergence).
    """
    difference = geometry_difference(mask, source)
    if difference is not None:
        raise GeometryError(f"{_who(case_id)}the mask is not on the grid of {source_name} ({difference}); "
                            "give the scan the mask was drawn on.")
    from lesionseg.preprocess.mask_resampling import resample_mask_image_keeping_volumes

    result = register(target, source, stages=stages, deformable=deformable, seed=seed, case_id=case_id,
                      channel=source_name, fixed_channel=target_name)
    return resample_mask_image_keeping_volumes(mask, target, result.transform)
