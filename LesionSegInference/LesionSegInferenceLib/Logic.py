"""Logic of the LesionSegInference module: checks a run's inputs; the science is in ``lesionseg``.

Nothing here imports Qt or needs the Slicer application: volume nodes are used only through their
MRML methods (``GetName``, ``GetImageData``, ``IsA``), so real nodes from slicer-core, or stand-ins, work
in tests. ``lesionseg`` is imported inside the methods that need it, so that the module still loads
(and can tell the user what is missing) when the package or its dependencies are not installed yet.
"""

from __future__ import annotations

from pathlib import Path

from .Parameters import DEVICE_CHOICES, InferenceParameters


class InferenceLogic:
    """Validates inputs for segmenting a stroke lesion with a model bundle.

    Running the bundle (in a background process, with progress and cancel) comes with the inference
    issue; until then :meth:`validate` is the logic's whole job besides :meth:`check_lesionseg`.
    """

    def validate(self, parameters: InferenceParameters) -> tuple[bool, str]:
        """Check that a run could start with these parameters.

        Args:
            parameters: the input volume node, bundle path and device.

        Returns:
            ``(True, "")`` when the inputs are usable, else ``(False, reason)`` with one sentence that
            names the input and what is wrong.
        """
        ok, reason = self._validate_volume(parameters.input_volume)
        if not ok:
            return ok, reason
        ok, reason = self._validate_bundle_path(parameters.bundle_path)
        if not ok:
            return ok, reason
        if parameters.device not in DEVICE_CHOICES:
            return False, f"The device {parameters.device!r} is not one of {', '.join(DEVICE_CHOICES)}."
        return True, ""

    @staticmethod
    def _validate_volume(volume) -> tuple[bool, str]:
        if volume is None:
            return False, "Select an input volume to segment."
        name = volume.GetName() or "(unnamed)"
        if volume.IsA("vtkMRMLLabelMapVolumeNode"):
            return False, f"The input volume '{name}' is a labelmap; select an MRI or CT image instead."
        image = volume.GetImageData()
        if image is None or image.GetNumberOfPoints() == 0:
            return False, f"The input volume '{name}' has no voxels; load an image into it first."
        components = image.GetNumberOfScalarComponents()
        if components != 1:
            return False, (
                f"The input volume '{name}' has {components} values per voxel; select a single-channel "
                "(grey-level) MRI or CT image."
            )
        return True, ""

    @staticmethod
    def _validate_bundle_path(bundle_path: str) -> tuple[bool, str]:
        text = (bundle_path or "").strip()
        if not text:
            return False, "Choose a model bundle file."
        path = Path(text).expanduser()
        if not path.exists():
            return False, f"The model bundle '{path}' does not exist."
        if not path.is_file():
            return False, f"The model bundle '{path}' is a folder; choose the bundle file itself."
        return True, ""

    @staticmethod
    def check_lesionseg() -> tuple[bool, str]:
        """Whether the ``lesionseg`` package imports in this Python.

        Returns:
            ``(True, "lesionseg <version>")`` or ``(False, reason)`` when the package cannot be imported.
        """
        try:
            import lesionseg
        except ImportError as error:
            return False, (
                f"The lesionseg package cannot be imported ({error}); reinstall the LesionSeg extension."
            )
        return True, f"lesionseg {lesionseg.__version__}"
