"""LesionSeg: stroke lesion segmentation on brain MRI and CT, with curriculum learning.

The package is pure Python (no Qt, no Slicer) and is used the same way by the ``lesionseg`` command, the
Slicer modules and the tests. Volumes travel as ``SimpleITK.Image`` so that geometry stays with the voxels.
"""

__version__ = "0.1.0"

from lesionseg.errors import LesionSegError  # noqa: E402  (re-exported for users)

__all__ = ["LesionSegError", "__version__"]
