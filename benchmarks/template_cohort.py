"""A held-out cohort on real brain anatomy: FLAIR-like stroke cases drawn on the MNI152 template.

Our phantom (:mod:`lesionseg.synth`) draws its anatomy from implicit surfaces; a model trained on it may learn
the phantom's shapes rather than the lesions. These cases use a real brain instead: the ICBM 2009a
nonlinear symmetric template's grey- and white-matter probability maps (1 mm, skull-stripped), as nilearn
ships them inside its wheel (the ``[bench]`` extra installs it; nothing is downloaded). Everything drawn on it is
built here, independently of :mod:`lesionseg.synth`, so that the two generators share no code and no bias:

- a random warp per case (an affine that shrinks the template's large brain to 1.0-1.9 L, with 8 degrees
  of rotation and 6 mm of shift about the brain's centre, then a B-spline displacement of about 3 mm);
- FLAIR-like tissue intensities drawn per case (grey matter 10-35 % over white matter, CSF at 15-40 % of
  white matter), a smooth texture of 3 %, and in half the cases periventricular hyperintense caps (10-30 %
  brighter white matter along the ventricles) that are *not* lesions;
- 1-5 lesions: unions of 1-3 rotated ellipsoids with a rough surface (smooth noise of 25 % of the radius),
  clipped to grey and white matter, the first of 4-14 mm radius, the others 2.5-10 mm, and in a third of
  the cases one large lesion of 15-24 mm radius; lesion contrast +30 % to +150 % over the tissue it replaces
  (one draw per case, times 0.7-1.3 per lesion, with a 15 % internal texture; ``lesion_contrast_range`` draws another
  range, e.g. +150 % to +300 % for the very bright large lesions whose interiors a model may miss);
- the acquisition: in-plane spacing 0.85-1.2 mm, slices of 3-5 mm (a box profile: each slice averages its
  thickness), half of the cases stored obliquely (up to 20 degrees of pitch, 8 of roll and yaw, written in
  the header's direction), a multiplicative bias field of 10-30 % peak to peak, Rician noise of 2-5 % of white
  matter; the truth mask is the lesion's partial-volume fraction >= 0.5 on the acquired grid.

``modality="ct"`` draws non-contrast CT heads on the same anatomy instead (:func:`make_template_ct_case`):
Hounsfield units per case (white matter 22-28, grey matter 8-14 above it, CSF 2-10), hypodense lesions 2-8 HU
below the tissue they replace (the 15 % texture included; no lesion of the 15-24 mm kind, so lesions of about
0.05-12 mL), a skull drawn around the template's brain (a CSF layer of 1-3 mm, bone of 4-8 mm at 900-1600 HU,
scalp of 3-6 mm, air), a brightening of 0-8 HU near the inner table (beam hardening), 5 mm slices from
0.7-1.0 mm pixels, a third stored obliquely (gantry tilt up to 20 degrees), and noise of 3-6 HU correlated
over about a pixel (``ct_noise_correlation_px``; 0: white noise, as the phantom draws it). The template is
symmetric; ``ct_asymmetry_mm`` adds a warp at the scale of gyri (about 2 mm) that makes the hemispheres differ as an
individual's do, for models that compare them (the mirrored-hemisphere difference).

Cases are written in the ISLES'22 public layout (FLAIR or CT, and mask), so that ``lesionseg prepare`` and
:func:`lesionseg.data.discover` read them as they read any published dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.transform import Rotation

from lesionseg.io import write_image
from lesionseg.synth.writer import case_files

_LESION_COUNT_PROBABILITY = (0.3, 0.25, 0.2, 0.15, 0.1)  # 1 .. 5 lesions
_TEMPLATE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"


@dataclass
class Template:
    """The template's maps on its own 1 mm grid (arrays z, y, x; fractions 0-1) and that grid."""

    grey: np.ndarray
    white: np.ndarray
    brain: np.ndarray  # bool, the template's (skull-stripped) brain
    reference: sitk.Image  # the grid, for geometry

    @property
    def csf(self) -> np.ndarray:
        return np.clip(self.brain.astype(np.float32) - self.grey - self.white, 0.0, 1.0)


def load_template() -> Template:
    """The MNI152 2009a maps from the installed nilearn package (ImportError with a sentence when absent)."""
    try:
        folder = resources.files("nilearn") / "datasets" / "data"
    except ModuleNotFoundError as error:
        raise ImportError("the template cohort needs nilearn's bundled MNI152 maps: "
                          "pip install -c constraints.txt -e '.[bench]'") from error
    images = {name: sitk.ReadImage(str(folder / _TEMPLATE.format(name)), sitk.sitkFloat32)
              for name in ("t1", "gm", "wm")}
    arrays = {name: sitk.GetArrayFromImage(image) / 255.0 for name, image in images.items()}
    return Template(arrays["gm"].astype(np.float32), arrays["wm"].astype(np.float32), arrays["t1"] > 0.02,
                    images["t1"])


def _smooth_noise(rng: np.random.Generator, shape, sigma_voxels: float) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_voxels)
    return field / max(float(field.std()), 1e-6)


def _draw_lesion(rng: np.random.Generator, parenchyma: np.ndarray, radius_mm: float) -> tuple | None:
    """One rough blob union inside the parenchyma: (slices of its box, bool mask in the box), or None."""
    candidates = np.argwhere(parenchyma > 0.9)
    centre = candidates[rng.integers(len(candidates))]
    half = int(np.ceil(radius_mm * 1.8)) + 3
    low = np.maximum(centre - half, 0)
    high = np.minimum(centre + half + 1, parenchyma.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    grid = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in box], indexing="ij"), -1).astype(np.float32)
    phi = np.full(grid.shape[:3], -np.inf, np.float32)
    for blob in range(int(rng.integers(1, 4))):
        blob_radius = radius_mm * (1.0 if blob == 0 else float(rng.uniform(0.4, 0.8)))
        offset = np.zeros(3) if blob == 0 else rng.normal(0.0, radius_mm * 0.6, 3)
        axes = blob_radius * rng.uniform(0.65, 1.35, 3)
        rotation = Rotation.random(random_state=rng).as_matrix()
        local = (grid - (centre + offset)) @ rotation
        distance = np.sqrt(((local / axes) ** 2).sum(-1))
        phi = np.maximum(phi, (1.0 - distance) * blob_radius)
    phi += 0.25 * radius_mm * _smooth_noise(rng, phi.shape, max(radius_mm / 3.0, 1.0))
    mask = (phi > 0) & (parenchyma[box] > 0.5)
    nominal_mm3 = 4.0 / 3.0 * np.pi * radius_mm ** 3
    if mask.sum() < max(50.0, 0.4 * nominal_mm3):  # lost too much to the clipping: redraw
        return None
    return box, mask


#: the range of the per-case lesion contrast (fraction over the tissue the lesion replaces) by default
DEFAULT_LESION_CONTRAST = (0.3, 1.5)


def _lesions(rng: np.random.Generator, template: Template,
             lesion_contrast_range: tuple[float, float] = DEFAULT_LESION_CONTRAST,
             large_probability: float = 1 / 3) -> tuple[np.ndarray, np.ndarray]:
    """Lesion fraction (0-1, partial volume) and per-voxel contrast on the template grid; one lesion of 15-24 mm
    radius in a case with ``large_probability``."""
    parenchyma = template.grey + template.white
    fraction = np.zeros_like(parenchyma)
    contrast = np.zeros_like(parenchyma)
    count = int(rng.choice(np.arange(1, 6), p=_LESION_COUNT_PROBABILITY))
    radii = [float(np.exp(rng.uniform(np.log(4.0), np.log(14.0))))]
    radii += [float(np.exp(rng.uniform(np.log(2.5), np.log(10.0)))) for _ in range(count - 1)]
    if rng.random() < large_probability:
        radii[0] = float(rng.uniform(15.0, 24.0))
    case_contrast = float(rng.uniform(*lesion_contrast_range))
    for radius in radii:
        for _ in range(30):
            drawn = _draw_lesion(rng, parenchyma, radius)
            if drawn is not None:
                break
        else:
            continue
        box, mask = drawn
        soft = ndimage.gaussian_filter(mask.astype(np.float32), 0.6) * np.minimum(parenchyma[box], 1.0)
        texture = 1.0 + 0.15 * _smooth_noise(rng, mask.shape, 2.0)
        lesion_contrast = case_contrast * float(rng.uniform(0.7, 1.3)) * texture
        contrast[box] = np.where(soft > fraction[box], lesion_contrast, contrast[box])
        fraction[box] = np.maximum(fraction[box], soft)
    return fraction, contrast


def _flair(rng: np.random.Generator, template: Template, lesion_fraction: np.ndarray,
           lesion_contrast: np.ndarray) -> np.ndarray:
    """FLAIR-like intensity on the template grid (white matter = 1)."""
    grey_level = float(rng.uniform(1.10, 1.35))
    csf_level = float(rng.uniform(0.15, 0.40))
    white = template.white.copy()
    if rng.random() < 0.5:  # periventricular caps: bright white matter along the ventricles, not a lesion
        ventricles = (template.csf > 0.5) & (ndimage.distance_transform_edt(template.brain) > 15)
        near = ndimage.distance_transform_edt(~ventricles) <= float(rng.uniform(2.0, 5.0))
        cap = near * np.clip(_smooth_noise(rng, near.shape, 4.0), 0, None) * float(rng.uniform(0.1, 0.3))
    else:
        cap = 0.0
    tissue = csf_level * template.csf + grey_level * template.grey + white * (1.0 + cap)
    tissue *= 1.0 + 0.03 * _smooth_noise(rng, tissue.shape, 2.0)
    return (tissue * (1.0 + lesion_contrast * lesion_fraction)).astype(np.float32)


def _warp(rng: np.random.Generator, template: Template, asymmetry_mm: float = 0.0,
          asymmetry_rng: np.random.Generator | None = None) -> sitk.Transform:
    """Random affine about the brain's centre followed by a smooth B-spline displacement (mm); with
    ``asymmetry_mm`` > 0 a finer B-spline displacement (control points about 18 mm apart, that standard deviation in
    mm, drawn from ``asymmetry_rng``) after it, which moves gyri and sulci of the two hemispheres apart."""
    centre = template.reference.TransformContinuousIndexToPhysicalPoint(
        [float(v) for v in np.argwhere(template.brain).mean(0)[::-1]])
    affine = sitk.AffineTransform(3)
    affine.SetCenter(centre)
    # The template's brain (1.89 L with its CSF) is larger than most: shrink it to 0.55-1.0 of its volume
    # (1.0-1.9 L), each axis by another +-5 %. The transform maps the acquired grid into the template, so
    # a brain shrunk by s needs the matrix 1 / s.
    scales = float(rng.uniform(0.82, 1.0)) * rng.uniform(0.95, 1.05, 3)
    matrix = Rotation.from_euler("xyz", rng.uniform(-8, 8, 3), degrees=True).as_matrix() @ np.diag(1.0 / scales)
    affine.SetMatrix(matrix.ravel().tolist())
    affine.SetTranslation(rng.uniform(-6, 6, 3).tolist())
    bspline = sitk.BSplineTransformInitializer(template.reference, [4, 4, 4])
    bspline.SetParameters((rng.normal(0.0, 3.0, len(bspline.GetParameters()))).tolist())
    transforms = [affine, bspline]
    if asymmetry_mm > 0:
        fine = sitk.BSplineTransformInitializer(template.reference, [10, 12, 10])
        fine.SetParameters(asymmetry_rng.normal(0.0, asymmetry_mm, len(fine.GetParameters())).tolist())
        transforms.append(fine)
    return sitk.CompositeTransform(transforms)


def _acquisition_grid(rng: np.random.Generator, template: Template, oblique: bool,
                      in_plane_range: tuple[float, float] = (0.85, 1.2),
                      thickness_range: tuple[float, float] = (3.0, 5.0),
                      extent_mm: tuple[float, float, float] = (190.0, 230.0, 175.0),
                      ) -> tuple[sitk.Image, int, dict]:
    """The fine grid (slices subdivided k times) in the stored orientation, k, and the drawn acquisition."""
    in_plane = float(rng.uniform(*in_plane_range))
    thickness = float(rng.uniform(*thickness_range))
    subdivisions = int(np.ceil(thickness / 0.75))
    angles = (rng.uniform(-20, 20), rng.uniform(-8, 8), rng.uniform(-8, 8)) if oblique else (0.0, 0.0, 0.0)
    direction = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    if rng.random() < 0.5:  # stored as a NIfTI from a RAS-oriented converter would be
        direction = direction @ np.diag([-1.0, -1.0, 1.0])
    extent = np.array(extent_mm)
    size = [int(np.ceil(extent[0] / in_plane)), int(np.ceil(extent[1] / in_plane)),
            int(np.ceil(extent[2] / thickness)) * subdivisions]
    spacing = [in_plane, in_plane, thickness / subdivisions]
    centre = np.array(template.reference.TransformContinuousIndexToPhysicalPoint(
        [float(v) for v in np.argwhere(template.brain).mean(0)[::-1]])) + rng.uniform(-5, 5, 3)
    origin = centre - direction @ (np.array(size) * np.array(spacing) / 2.0)
    fine = sitk.Image(size, sitk.sitkFloat32)
    fine.SetSpacing(spacing)
    fine.SetDirection(direction.ravel().tolist())
    fine.SetOrigin(origin.tolist())
    return fine, subdivisions, {"in_plane_mm": in_plane, "slice_mm": thickness, "oblique_deg": list(map(float, angles))}


def _thick_slices(fine: np.ndarray, subdivisions: int) -> np.ndarray:
    """Average each run of ``subdivisions`` fine slices (axis 0, z): the box slice profile."""
    return fine.reshape(fine.shape[0] // subdivisions, subdivisions, *fine.shape[1:]).mean(1)


def _acquire(array: np.ndarray, reference: sitk.Image, fine: sitk.Image, warp: sitk.Transform, subdivisions: int,
             outside: float = 0.0) -> np.ndarray:
    """An array (z, y, x) on ``reference``'s grid seen through ``warp`` on the fine grid (linear, ``outside`` beyond
    it), averaged into thick slices of ``subdivisions`` fine slices each."""
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    resampled = sitk.Resample(image, fine, warp, sitk.sitkLinear, outside, sitk.sitkFloat32)
    return _thick_slices(sitk.GetArrayFromImage(resampled), subdivisions)


def _stored_image(array: np.ndarray, pixel, fine: sitk.Image, subdivisions: int) -> sitk.Image:
    """A thick-slice array (z, y, x) as the stored image: the fine grid's in-plane spacing and direction, each slice
    ``subdivisions`` fine slices thick and centred on them."""
    image = sitk.GetImageFromArray(array.astype(pixel))
    image.SetSpacing(list(fine.GetSpacing()[:2]) + [fine.GetSpacing()[2] * subdivisions])
    image.SetDirection(fine.GetDirection())
    image.SetOrigin(fine.TransformContinuousIndexToPhysicalPoint([0.0, 0.0, (subdivisions - 1) / 2.0]))
    return image


def make_template_case(template: Template, seed: int, index: int,
                       lesion_contrast_range: tuple[float, float] = DEFAULT_LESION_CONTRAST,
                       ) -> tuple[sitk.Image, sitk.Image, dict]:
    """One case: (FLAIR int16 image, uint8 mask image, its drawn parameters). Another ``lesion_contrast_range``
    draws the same case (anatomy, lesion shapes, acquisition) with other lesion intensities."""
    rng = np.random.default_rng([seed, index])
    lesion_fraction, lesion_contrast = _lesions(rng, template, lesion_contrast_range)
    flair = _flair(rng, template, lesion_fraction, lesion_contrast)
    oblique = bool(rng.random() < 0.5)
    fine, subdivisions, acquisition = _acquisition_grid(rng, template, oblique)
    warp = _warp(rng, template)

    signal = _acquire(flair, template.reference, fine, warp, subdivisions)
    truth = _acquire(lesion_fraction, template.reference, fine, warp, subdivisions) >= 0.5
    shape = signal.shape
    bias_low = rng.standard_normal((3, 3, 3))
    bias = np.exp(ndimage.zoom(bias_low, np.array(shape) / 3.0, order=3)[: shape[0], : shape[1], : shape[2]]
                  * float(rng.uniform(0.1, 0.3)) / 4.0)
    sigma = float(rng.uniform(0.02, 0.05))
    noisy = np.hypot(signal * bias + rng.normal(0, sigma, shape), rng.normal(0, sigma, shape))
    noisy[signal <= 0] = 0.0  # skull-stripped: the background stays zero, as the template's
    mask = _stored_image(truth, np.uint8, fine, subdivisions)
    lesion_ml = float(truth.sum() * np.prod(mask.GetSpacing()) / 1000.0)
    parameters = {**acquisition, "seed": seed, "index": index, "noise": sigma, "lesion_ml": lesion_ml}
    return _stored_image(np.round(noisy * 500.0), np.int16, fine, subdivisions), mask, parameters


#: the per-case depth of CT lesions below their tissue (HU) and the range every lesion voxel's depth is kept in
CT_LESION_HU = (2.0, 8.0)
_CT_PAD_MM = 30  # room on the template's tight 1 mm grid for the skull and scalp drawn around its brain


def _ct_head(rng: np.random.Generator, template: Template, lesion_fraction: np.ndarray,
             lesion_depth_hu: np.ndarray, lesion_hu: tuple[float, float] = CT_LESION_HU,
             ) -> tuple[np.ndarray, sitk.Image, np.ndarray]:
    """A CT head in HU on the template grid padded by :data:`_CT_PAD_MM` on every side: (HU array z, y, x, the
    padded grid, the lesion fraction on it)."""
    pad = _CT_PAD_MM

    def padded(array: np.ndarray) -> np.ndarray:
        return np.pad(array, pad)

    grey, white, csf = padded(template.grey), padded(template.white), padded(template.csf)
    fraction = padded(lesion_fraction)
    depth = padded(np.where(lesion_fraction > 0, np.clip(lesion_depth_hu, *lesion_hu), 0.0))
    # the skull follows the brain's smoothed envelope: it bridges the interhemispheric fissure and the sulci
    envelope = ndimage.gaussian_filter(padded(template.brain).astype(np.float32), 4.0) > 0.35
    brain = ndimage.binary_fill_holes(envelope | padded(template.brain))
    outside_brain_mm = ndimage.distance_transform_edt(~brain)
    csf_layer = float(rng.uniform(1.0, 3.0))
    bone = 4.0 + 4.0 * (0.5 + 0.5 * np.tanh(_smooth_noise(rng, brain.shape, 12.0) / 2.0))  # 4-8 mm, smoothly varying
    scalp = float(rng.uniform(3.0, 6.0))
    intracranial = outside_brain_mm <= csf_layer
    skull = ~intracranial & (outside_brain_mm <= csf_layer + bone)
    soft = ~intracranial & ~skull & (outside_brain_mm <= csf_layer + bone + scalp)
    white_hu = float(rng.uniform(22.0, 28.0))
    grey_hu = white_hu + float(rng.uniform(8.0, 14.0))
    csf_hu = float(rng.uniform(2.0, 10.0))
    parenchyma_hu = grey_hu * grey + white_hu * white + csf_hu * csf
    hu = np.full(brain.shape, -1000.0, np.float32)
    hu[intracranial] = csf_hu
    hu[brain] = (parenchyma_hu + csf_hu * np.clip(1.0 - grey - white - csf, 0.0, 1.0))[brain]  # closed-in gaps: CSF
    hu -= depth * fraction  # hypodense lesions: each voxel darker by its share of lesion
    bone_hu = float(rng.uniform(900.0, 1600.0)) * (1.0 + 0.1 * _smooth_noise(rng, brain.shape, 6.0))
    hu[skull] = bone_hu[skull]
    hu[soft] = float(rng.uniform(20.0, 45.0))
    inner_table_mm = ndimage.distance_transform_edt(intracranial)  # 0 outside, else the distance to the bone
    hu += np.where(intracranial, float(rng.uniform(0.0, 8.0)) * np.exp(-inner_table_mm / 6.0), 0.0)
    reference = sitk.Image([int(v) for v in brain.shape[::-1]], sitk.sitkFloat32)
    reference.SetSpacing(template.reference.GetSpacing())
    reference.SetDirection(template.reference.GetDirection())
    reference.SetOrigin(template.reference.TransformIndexToPhysicalPoint([-pad, -pad, -pad]))
    return hu.astype(np.float32), reference, fraction


#: the CT noise's correlation length (pixels, the sigma of the Gaussian that filters white noise in each slice):
#: reconstruction kernels make CT noise grainy rather than white
CT_NOISE_CORRELATION_PX = 0.6


def make_template_ct_case(template: Template, seed: int, index: int,
                          noise_correlation_px: float = CT_NOISE_CORRELATION_PX,
                          lesion_hu: tuple[float, float] = CT_LESION_HU,
                          asymmetry_mm: float = 0.0) -> tuple[sitk.Image, sitk.Image, dict]:
    """One non-contrast CT case on the template's anatomy: (CT int16 image in HU, uint8 mask image, its drawn
    parameters); see the module's docstring. ``noise_correlation_px`` 0 draws white noise of the same sigma;
    ``lesion_hu`` (low, high) another lesion depth below the tissue (HU), e.g. (10, 15) for clear lesions.
    ``asymmetry_mm`` > 0 warps the anatomy further at the scale of gyri (:func:`_warp`, from a stream of its own, so
    everything else is drawn as without it): the template is symmetric, an individual brain is not, and a model
    that compares the hemispheres would otherwise be judged on a mirror-perfect brain."""
    rng = np.random.default_rng([seed, index, 7])  # another stream than the FLAIR case of the same index
    lesion_fraction, lesion_depth = _lesions(rng, template, lesion_hu, large_probability=0.0)
    hu, reference, fraction = _ct_head(rng, template, lesion_fraction, lesion_depth, lesion_hu)
    oblique = bool(rng.random() < 1 / 3)
    fine, subdivisions, acquisition = _acquisition_grid(rng, template, oblique, in_plane_range=(0.7, 1.0),
                                                        thickness_range=(5.0, 5.0), extent_mm=(240.0, 260.0, 190.0))
    warp = _warp(rng, template, asymmetry_mm, np.random.default_rng([seed, index, 8]))

    signal = _acquire(hu, reference, fine, warp, subdivisions, outside=-1000.0)
    truth = _acquire(fraction, reference, fine, warp, subdivisions) >= 0.5
    sigma_hu = float(rng.uniform(3.0, 6.0))
    noise = np.stack([ndimage.gaussian_filter(rng.standard_normal(signal.shape[1:]), noise_correlation_px)
                      for _ in range(signal.shape[0])])
    noisy = signal + sigma_hu * noise / noise.std()
    mask = _stored_image(truth, np.uint8, fine, subdivisions)
    lesion_ml = float(truth.sum() * np.prod(mask.GetSpacing()) / 1000.0)
    parameters = {**acquisition, "seed": seed, "index": index, "noise_hu": sigma_hu,
                  "noise_correlation_px": noise_correlation_px, "lesion_hu": list(lesion_hu), "lesion_ml": lesion_ml,
                  **({"asymmetry_mm": asymmetry_mm} if asymmetry_mm > 0 else {})}
    image = _stored_image(np.clip(np.round(noisy), -1024, 3071), np.int16, fine, subdivisions)
    return image, mask, parameters


def write_template_cohort(root: Path, count: int, seed: int, template: Template | None = None,
                          lesion_contrast_range: tuple[float, float] = DEFAULT_LESION_CONTRAST,
                          modality: str = "flair", ct_noise_correlation_px: float = CT_NOISE_CORRELATION_PX,
                          ct_lesion_hu: tuple[float, float] = CT_LESION_HU, ct_asymmetry_mm: float = 0.0) -> None:
    """Write ``count`` cases (ISLES'22 public layout, FLAIR or CT, and mask) unless the folder already holds them."""
    root = Path(root)
    if (root / "dataset_description.json").exists():
        return
    template = template or load_template()
    records = []
    for index in range(count):
        case_id = f"sub-strokecase{index + 1:04d}"
        files = case_files(root, case_id, (modality,))
        if modality == "ct":
            image, mask, parameters = make_template_ct_case(template, seed, index, ct_noise_correlation_px,
                                                            ct_lesion_hu, ct_asymmetry_mm)
        else:
            image, mask, parameters = make_template_case(template, seed, index, lesion_contrast_range)
        write_image(image, files.channels[modality])
        write_image(mask, files.mask)
        records.append({"case_id": case_id, **parameters})
    (root / "template_cases.json").write_text(json.dumps(records, indent=1))
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "LesionSeg template-anatomy cohort", "BIDSVersion": "1.8.0", "DatasetType": "raw",
         "GeneratedBy": [{"Name": "benchmarks/template_cohort.py", "Seed": seed, "Modality": modality,
                          "LesionContrast": list(ct_lesion_hu if modality == "ct" else lesion_contrast_range)}]},
        indent=1))
