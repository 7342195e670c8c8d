"""The clinical threshold rule for ischaemic core and penumbra on perfusion maps: the baseline a network must match.

The rule clinical software applies (RAPID-style, e.g. the DEFUSE 3 and EXTEND trials):

- core = relative CBF < 30 %, where relative CBF is the voxel's CBF over the **median** CBF of the tissue
  of the **contralateral** (unaffected) hemisphere. The median, not the mean: it ignores the few very high
  values of vessels and the noise tail, and it stays in healthy tissue even if some hypoperfusion crosses
  the midline. The affected hemisphere is the one with more tissue at Tmax > 6 s.
- penumbra = Tmax > 6 s minus core;
- both restricted to brain tissue: voxels of the brain mask whose CBV is at least ``min_cbv`` (0.6 mL/100 g):
  CSF and ventricles hold almost no blood, so their CBF is far below 30 % of tissue and would otherwise all
  be called core (software removes them the same way, by a CBV/CBF floor or by the CT's CSF density);
- then, per class, connected components (26-connectivity) smaller than ``min_lesion_mm3`` are removed
  (:func:`lesionseg.infer.postprocess.lesion_mask`, the network's own post-processing, without hole
  filling: a hole in a core is tissue the rule saw as not core).

Labels of the result: 0 background, 1 core, 2 penumbra (the synthetic perfusion cases' label table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import GeometryError, PreprocessingError
from lesionseg.infer.postprocess import DEFAULT_MIN_LESION_MM3, lesion_mask
from lesionseg.io import geometry_difference
from lesionseg.preprocess.midplane import Midplane

CORE_RELATIVE_CBF = 0.30
PENUMBRA_TMAX_S = 6.0
MIN_TISSUE_CBV = 0.6  # mL/100 g
CORE_LABEL, PENUMBRA_LABEL = 1, 2


@dataclass(frozen=True)
class ThresholdResult:
    """What the threshold rule found.

    Attributes:
        labels: uint8 image on the maps' grid: 0 background, 1 core, 2 penumbra.
        reference_cbf: median CBF of the contralateral tissue (mL/100 g/min), the 100 % of relative CBF.
        affected_side: ``"left"`` or ``"right"`` (patient's), the hemisphere with more tissue at Tmax > 6 s.
    """

    labels: sitk.Image
    reference_cbf: float
    affected_side: str


def _left_of_midplane(image: sitk.Image, midplane: Midplane) -> np.ndarray:
    """bool (z, y, x): voxel centres on the patient's left of the plane."""
    size = image.GetSize()
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in reversed(size)), indexing="ij")
    index = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1)
    matrix = np.asarray(image.GetDirection(), float).reshape(3, 3) @ np.diag(image.GetSpacing())
    points = index @ matrix.T + np.asarray(image.GetOrigin(), float)
    return (midplane.signed_distance(points) > 0).reshape(k.shape)


def threshold_perfusion(tmax: sitk.Image, cbf: sitk.Image, cbv: sitk.Image, brain: sitk.Image, midplane: Midplane,
                        *, core_relative_cbf: float = CORE_RELATIVE_CBF, penumbra_tmax_s: float = PENUMBRA_TMAX_S,
                        min_cbv: float = MIN_TISSUE_CBV,
                        min_lesion_mm3: float = DEFAULT_MIN_LESION_MM3) -> ThresholdResult:
    """Core and penumbra by the clinical thresholds (see the module docstring).

    Args:
        tmax: Tmax in seconds.
        cbf: CBF in mL/100 g/min.
        cbv: CBV in mL/100 g (for the tissue floor).
        brain: 0/1 brain mask. All four on one grid.
        midplane: the mid-sagittal plane (LPS mm; e.g. from
            :func:`lesionseg.preprocess.midplane.estimate_midplane`, or a synthetic case's truth).
        core_relative_cbf: core threshold on relative CBF (0.30).
        penumbra_tmax_s: penumbra threshold on Tmax in seconds (6).
        min_cbv: tissue floor on CBV (mL/100 g).
        min_lesion_mm3: smaller components of either class are removed.

    Returns:
        The :class:`ThresholdResult`.

    Raises:
        GeometryError: the images are not on one grid.
        PreprocessingError: no tissue in one hemisphere, so no contralateral reference.
    """
    for name, image in (("CBF", cbf), ("CBV", cbv), ("brain mask", brain)):
        difference = geometry_difference(image, tmax)
        if difference is not None:
            raise GeometryError(f"the {name} is not on the Tmax map's grid ({difference}); resample it first.")
    t = sitk.GetArrayViewFromImage(tmax)
    f = sitk.GetArrayViewFromImage(cbf)
    tissue = (sitk.GetArrayViewFromImage(brain) > 0) & (sitk.GetArrayViewFromImage(cbv) >= min_cbv)
    left = _left_of_midplane(tmax, midplane)
    slow = tissue & (t > penumbra_tmax_s)
    affected_left = np.count_nonzero(slow & left) >= np.count_nonzero(slow & ~left)
    contralateral = tissue & (~left if affected_left else left)
    if not contralateral.any():
        raise PreprocessingError("the hemisphere opposite the hypoperfusion holds no brain tissue (CBV >= "
                                 f"{min_cbv:g} mL/100 g), so relative CBF has no reference; check the brain mask.")
    reference = float(np.median(f[contralateral]))
    core = tissue & (f < core_relative_cbf * reference)
    penumbra = slow & ~core

    def clean(mask: np.ndarray) -> np.ndarray:
        image = sitk.GetImageFromArray(mask.astype(np.float32))
        image.CopyInformation(tmax)
        return sitk.GetArrayFromImage(lesion_mask(image, threshold=0.5, min_lesion_mm3=min_lesion_mm3,
                                                  fill_holes=False)) > 0

    labels = np.zeros(t.shape, np.uint8)
    labels[clean(penumbra)] = PENUMBRA_LABEL
    labels[clean(core)] = CORE_LABEL
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(tmax)
    return ThresholdResult(out, reference, "left" if affected_left else "right")
