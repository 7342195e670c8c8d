"""Checking a segmentation run's inputs before any process starts, with a sentence saying what to do.

Refused: no bundle or an unreadable one; a channel the bundle expects without a volume; a labelmap, an
empty or a multi-component volume; one volume for two channels; channels on different grids or under
different transforms (the job reads the volumes' own grids: a parent transform is not applied, and the
output lands on the reference channel's grid); a device the machine does not have.

Volume nodes are used through their MRML methods only; ``lesionseg`` (and through ``lesionseg.mrml``,
``slicer``) is imported only when two volumes' grids must be compared.
"""

from __future__ import annotations

from typing import Any, Iterable

from .BundleCatalog import BundleEntry
from .Parameters import DEVICE_LABELS, InferenceParameters

Check = tuple[bool, str]
OK: Check = (True, "")


def validate_volume(volume: Any, channel: str) -> Check:
    """One channel's volume node: present, a grey-level scalar volume with voxels.

    Args:
        volume: a volume node or None.
        channel: the bundle's name for the channel (named in the sentence).
    """
    if volume is None:
        return False, f"Select an input volume for the '{channel}' channel."
    name = volume.GetName() or "(unnamed)"
    if volume.IsA("vtkMRMLLabelMapVolumeNode"):
        return False, (f"The '{channel}' volume '{name}' is a labelmap; select the {channel.upper()} image "
                       "(MRI or CT) instead.")
    if not volume.IsA("vtkMRMLScalarVolumeNode"):
        return False, f"The '{channel}' input '{name}' is not a scalar volume; select an MRI or CT volume."
    image = volume.GetImageData()
    if image is None or image.GetNumberOfPoints() == 0:
        return False, f"The '{channel}' volume '{name}' has no voxels; load an image into it first."
    components = image.GetNumberOfScalarComponents()
    if components != 1:
        return False, (f"The '{channel}' volume '{name}' has {components} values per voxel; select a "
                       "single-channel (grey-level) MRI or CT image.")
    return OK


def validate_bundle(bundle_path: str, entry: BundleEntry | None) -> Check:
    """The chosen bundle: given, and its manifest read (``entry`` from the :class:`BundleCatalog`)."""
    if not (bundle_path or "").strip():
        return False, "Choose a model bundle (.lsb): set the bundle folder and pick one in the list."
    if entry is None:
        return False, f"The model bundle '{bundle_path}' was not read; choose it again in the list."
    if not entry.ok:
        return False, entry.error
    if not entry.channels:
        return False, f"The model bundle '{entry.path.name}' names no input channel; choose another bundle."
    return OK


def validate_same_grid(volumes: dict[str, Any], reference_channel: str) -> Check:
    """Every channel's volume on the reference channel's grid, under the same transform.

    Args:
        volumes: channel -> volume node (all present and valid).
        reference_channel: the channel whose grid the others must share.
    """
    reference = volumes[reference_channel]
    reference_name = reference.GetName()
    for channel, volume in volumes.items():
        if channel == reference_channel:
            continue
        if (volume.GetTransformNodeID() or "") != (reference.GetTransformNodeID() or ""):
            return False, (f"The '{channel}' volume '{volume.GetName()}' and the '{reference_channel}' volume "
                           f"'{reference_name}' are under different transforms; harden the transforms "
                           "(Data module, right-click) so that both sit in the same place.")
    from lesionseg.io import geometry_difference
    from lesionseg.mrml import geometry_of_volume_node

    reference_grid = geometry_of_volume_node(reference)
    for channel, volume in volumes.items():
        if channel == reference_channel:
            continue
        difference = geometry_difference(geometry_of_volume_node(volume), reference_grid)
        if difference is not None:
            return False, (f"The '{channel}' volume '{volume.GetName()}' is not on the grid of the "
                           f"'{reference_channel}' volume '{reference_name}' ({difference}); resample it onto "
                           f"'{reference_name}' first (Resample Scalar/Vector/DWI Volume module, or register "
                           "it with General Registration (BRAINS) and harden the result).")
    return OK


def validate_run(parameters: InferenceParameters, entry: BundleEntry | None,
                 available_devices: Iterable[str] | None = None) -> Check:
    """All the checks of a run, in the order the panel's fields appear.

    Args:
        parameters: the run's settings.
        entry: the chosen bundle's catalog entry (None when it was not read).
        available_devices: the device choices this machine has (None: not checked).

    Returns:
        ``(True, "")`` or ``(False, reason)``: one sentence naming the input and what to do.
    """
    ok, reason = validate_bundle(parameters.bundle_path, entry)
    if not ok:
        return ok, reason
    volumes = {}
    for channel in entry.channels:
        volume = parameters.input_volumes.get(channel)
        ok, reason = validate_volume(volume, channel)
        if not ok:
            return ok, reason
        for other, chosen in volumes.items():
            if chosen is volume or (volume.GetID() and chosen.GetID() == volume.GetID()):
                return False, (f"The volume '{volume.GetName()}' is selected for both the '{other}' and the "
                               f"'{channel}' channels; select the {channel.upper()} image for '{channel}'.")
        volumes[channel] = volume
    ok, reason = validate_same_grid(volumes, entry.reference_channel or entry.channels[0])
    if not ok:
        return ok, reason
    output = parameters.output_segmentation
    if output is not None and not output.IsA("vtkMRMLSegmentationNode"):
        return False, f"The output '{output.GetName()}' is not a segmentation; choose a segmentation or a new one."
    ok, reason = parameters.validate()
    if not ok:
        return ok, reason
    if available_devices is not None and parameters.device not in set(available_devices):
        label = DEVICE_LABELS.get(parameters.device, parameters.device)
        return False, f"The device '{label}' is not available on this computer; choose Automatic or CPU."
    return OK
