"""Slicer's own segmentation algorithms, called on numpy arrays through Slicer's VTK classes.

The Segment Editor's effects are built on these filters; calling the same ones here means a refinement run
from the command line gives what the same effect gives in Slicer:

- ``vtkImageGrowCutSegment`` (Segmentations logic): "Grow from seeds" (fast GrowCut, a Dijkstra race
  of the seed labels where a step costs the absolute intensity difference, 26-neighbourhood);
- ``vtkITKIslandMath`` (vtkITK): "Islands" (connected components relabelled by decreasing size, with a
  minimum size in voxels);
- ``vtkITKImageMargin`` (vtkITK): "Margin" (grow by a distance in mm from the segment);
- ``vtkITKMorphologicalContourInterpolator`` (vtkITK): "Fill between slices" (Albu et al.'s
  morphological contour interpolation).

Arrays are numpy ``(z, y, x)``; a ``vtkImageData`` stores x fastest, which is numpy's C order of
``(z, y, x)``, so the voxels are handed over without reordering: dimensions ``(x, y, z)``, spacing in
``(x, y, z)``, origin 0. The direction of the image does not matter to these filters (distances use the
spacing only; an orthonormal direction keeps them), so the results land back on the same grid.

Inside the Slicer application these classes are Slicer's own (``vtkITK`` and the Segmentations logic's
``vtkImageGrowCutSegment``, also known as ``slicer.vtkImageGrowCutSegment``);
outside it they come from the optional slicer-core wheel (``slicer_core.vtkITK`` and
``slicer_core.vtkSlicerSegmentationsModuleLogic``). :func:`slicer_core_available` says whether either is
found (:func:`slicer_naming` says which); the tools fall back to SimpleITK / scikit-image equivalents when
neither is (see each tool).

ITK threads: with its default thread pool, slicer-core's vtkITK (a separate ITK from SimpleITK's) can
crash the Python process at exit after the contour interpolator ran (seen with slicer-core 5.13 on Linux).
Before the first filter runs we therefore ask ITK for its "Platform" threader (threads joined after each
filter) unless the user chose a threader through ``ITK_GLOBAL_DEFAULT_THREADER``.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from lesionseg.errors import ParameterError

BACKENDS = ("auto", "slicer", "sitk")


#: Where Slicer's algorithms are found, in the order they are tried: inside the Slicer application (and
#: PythonSlicer) vtkITK is the top-level module ``vtkITK`` (Base/Python/vtkITK.py) and the Segmentations logic's
#: classes come from its compiled module ``vtkSlicerSegmentationsModuleLogicPython``, a top-level module that
#: Slicer also copies into ``slicer`` (``slicer.vtkImageGrowCutSegment``; see ``importVTKClassesFromDirectory`` in
#: Base/Python/slicer/util.py); the slicer-core wheel from PyPI puts both under ``slicer_core``. The compiled
#: module is imported rather than ``slicer``: in lesionseg only ``lesionseg.mrml`` imports ``slicer``.
NAMINGS = ("application", "slicer-core")


def _application_modules():
    import vtkITK as vtk_itk  # only the Slicer application (or PythonSlicer) has these top-level modules
    from vtkSlicerSegmentationsModuleLogicPython import vtkImageGrowCutSegment

    return vtk_itk, vtkImageGrowCutSegment


def _slicer_core_modules():
    import slicer_core.vtkITK as vtk_itk
    from slicer_core.vtkSlicerSegmentationsModuleLogic import vtkImageGrowCutSegment

    return vtk_itk, vtkImageGrowCutSegment


@functools.lru_cache(maxsize=1)
def _modules() -> dict[str, Any] | None:
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_THREADER", "Platform")
    try:
        import vtk
        from vtk.util import numpy_support
    except ImportError:
        return None
    for naming, find in zip(NAMINGS, (_application_modules, _slicer_core_modules)):
        try:
            vtk_itk, grow_cut = find()
        except ImportError:
            continue
        return {"vtk": vtk, "numpy_support": numpy_support, "vtkITK": vtk_itk, "GrowCut": grow_cut,
                "naming": naming}
    return None


def slicer_core_available() -> bool:
    """Whether Slicer's algorithms can be imported: inside Slicer, or with ``pip install slicer-core``."""
    return _modules() is not None


def slicer_naming() -> str | None:
    """Under which names Slicer's algorithms were found (one of :data:`NAMINGS`), or None when nowhere."""
    modules = _modules()
    return None if modules is None else modules["naming"]


def resolve_backend(backend: str) -> str:
    """``"slicer"`` or ``"sitk"``: the backend a tool will use.

    Args:
        backend: ``"auto"`` (Slicer's algorithm inside Slicer or with slicer-core, else the fallback),
            ``"slicer"`` (required) or ``"sitk"`` (the SimpleITK / scikit-image fallback).

    Raises:
        ParameterError: an unknown backend, or ``"slicer"`` outside Slicer without slicer-core.
    """
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")
    if backend == "auto":
        return "slicer" if slicer_core_available() else "sitk"
    if backend == "slicer" and not slicer_core_available():
        raise ParameterError("backend 'slicer' needs Slicer's algorithms: run inside Slicer or pip install slicer-core; "
                             "else use 'auto' or 'sitk'.")
    return backend


def _require() -> dict[str, Any]:
    modules = _modules()
    if modules is None:
        raise ParameterError("Slicer's algorithms are not available here (run inside Slicer or pip install slicer-core); "
                             "use backend 'sitk'.")
    return modules


def to_vtk(array: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0)):
    """A ``vtkImageData`` holding a copy of a ``(z, y, x)`` array, spacing given in ``(z, y, x)`` mm."""
    modules = _require()
    array = np.ascontiguousarray(array)
    image = modules["vtk"].vtkImageData()
    image.SetDimensions(int(array.shape[2]), int(array.shape[1]), int(array.shape[0]))
    image.SetSpacing(float(spacing_zyx[2]), float(spacing_zyx[1]), float(spacing_zyx[0]))
    image.GetPointData().SetScalars(modules["numpy_support"].numpy_to_vtk(array.ravel(), deep=True))
    return image


def from_vtk(image) -> np.ndarray:
    """A ``(z, y, x)`` numpy copy of a ``vtkImageData``'s scalars."""
    modules = _require()
    x, y, z = image.GetDimensions()
    return modules["numpy_support"].vtk_to_numpy(image.GetPointData().GetScalars()).reshape(z, y, x).copy()


def island_labels(mask: np.ndarray, *, min_voxels: int = 0, fully_connected: bool = False) -> np.ndarray:
    """Connected components of a mask, labelled 1, 2, ... by decreasing size (``vtkITKIslandMath``).

    Args:
        mask: bool ``(z, y, x)``.
        min_voxels: components with fewer voxels are dropped (label 0).
        fully_connected: 26-connectivity when True, 6-connectivity (Slicer's Islands effect) otherwise.

    Returns:
        uint32 labels ``(z, y, x)``.
    """
    modules = _require()
    islands = modules["vtkITK"].vtkITKIslandMath()
    islands.SetInputData(to_vtk(mask.astype(np.uint32)))
    islands.SetFullyConnected(bool(fully_connected))
    islands.SetMinimumSize(int(min_voxels))
    islands.Update()
    return from_vtk(islands.GetOutput())


def margin(mask: np.ndarray, spacing_zyx, margin_mm: float) -> np.ndarray:
    """Grow (``margin_mm`` > 0) or shrink (< 0) a mask by a distance in mm (``vtkITKImageMargin``).

    Shrinking grows the background and inverts it, as Slicer's Margin effect does (the distance then
    starts at the segment's border voxels, which is the more accurate way round).
    """
    modules = _require()
    mask = np.asarray(mask, dtype=bool)
    if margin_mm == 0:
        return mask.copy()
    source = mask if margin_mm > 0 else ~mask
    filt = modules["vtkITK"].vtkITKImageMargin()
    filt.SetInputData(to_vtk(source.astype(np.uint8), spacing_zyx))
    filt.CalculateMarginInMMOn()
    filt.SetOuterMarginMM(abs(float(margin_mm)))
    filt.Update()
    grown = from_vtk(filt.GetOutput()) != 0
    return grown if margin_mm > 0 else ~grown


def grow_cut(intensity: np.ndarray, seeds: np.ndarray, excluded: np.ndarray | None = None) -> np.ndarray:
    """Slicer's "Grow from seeds": every unlabelled voxel takes the label of the cheapest seed path.

    Args:
        intensity: float32 ``(z, y, x)``.
        seeds: uint8 labels ``(z, y, x)``, 0 = to be decided, 1, 2, ... = seed labels.
        excluded: optional bool ``(z, y, x)``; voxels where it is True are left out (label 0), like the
            Segment Editor's masking.

    Returns:
        uint8 labels ``(z, y, x)``. Voxels on the array's outer faces are not propagated into by the
        algorithm: callers give them a seed label.
    """
    modules = _require()
    segmenter = modules["GrowCut"]()
    segmenter.SetIntensityVolume(to_vtk(intensity.astype(np.float32)))
    segmenter.SetSeedLabelVolume(to_vtk(seeds.astype(np.uint8)))
    if excluded is not None:
        segmenter.SetMaskVolume(to_vtk(excluded.astype(np.uint8)))
    segmenter.SetDistancePenalty(0.0)
    segmenter.Update()
    return from_vtk(segmenter.GetOutput()).astype(np.uint8)


def interpolate_contours(mask: np.ndarray, axis: int) -> np.ndarray:
    """Slicer's "Fill between slices" along numpy ``axis`` (0 = z) (``vtkITKMorphologicalContourInterpolator``).

    Slices of ``mask`` along ``axis`` that are empty between two drawn slices are filled by morphological
    interpolation of the drawn contours; drawn slices are kept.
    """
    modules = _require()
    interpolator = modules["vtkITK"].vtkITKMorphologicalContourInterpolator()
    interpolator.SetInputData(to_vtk(np.asarray(mask, dtype=np.uint8)))
    interpolator.SetAxis(2 - int(axis))  # ITK counts axes (x, y, z)
    interpolator.SetLabel(1)
    interpolator.Update()
    return from_vtk(interpolator.GetOutput()) != 0
