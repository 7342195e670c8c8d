"""Checks of a CT's values before brain extraction and windowing: Hounsfield units, and a skull already removed.

Every CT step of preprocessing (the 0-100 HU brain window of brain extraction, the brain and stroke windows of
normalisation) assumes Hounsfield units. Two inputs break that without an error of their own:

- *Arbitrary units*: a CT exported without its rescale slope and intercept holds the scanner's stored values
  (often 0-4095, air near 0 and brain near 1,050) instead of HU. Detected when almost nothing is near air's
  -1000 HU (the 0.1st percentile above ``AIR_LIMIT_HU``) and, leaving out the lowest values (within 100 of
  that percentile: the air, or the fill value of a stripped scan), more than 1 % of the voxels remain and
  their commonest value (10-unit bins) lies in ``STORED_TISSUE``: soft tissue and brain stored without the
  usual -1024 intercept. Such a CT is refused (:func:`check_hounsfield`), because any window would be wrong.
  (A CT in HU cropped so tightly that it holds no air and mostly bone would be refused too; head CTs hold
  air around the head.)
- *Skull already removed*: a skull-stripped CT has no bone: fewer than ``STRIPPED_BONE_FRACTION`` of its
  0-100 HU voxels other than the background value are above ``BONE_HU`` (the partial-volume voxels at the
  edge of a stripped brain stay below it; a head with its skull has 25-70 %). It is handled
  (:func:`is_skull_stripped`, :func:`stripped_brain_mask`):
  its brain is every voxel that is not the background value (the commonest value on the volume's faces),
  closed, hole-filled and reduced to its largest component, and brain extraction says so in its note.

Statistics come from a strided sample of at most about two million voxels, so a 512 x 512 x 300 CT is
checked in a fraction of a second.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from lesionseg.errors import InputFileError

AIR_LIMIT_HU = -500.0
STORED_TISSUE = (874.0, 1174.0)
BONE_HU = 700.0
STRIPPED_BONE_FRACTION = 0.05
_SAMPLE = 2_000_000


def _sample(image: sitk.Image) -> np.ndarray:
    values = sitk.GetArrayViewFromImage(image).ravel()
    return np.asarray(values[:: max(1, values.size // _SAMPLE)], np.float64)


def background_value(image: sitk.Image) -> float:
    """The commonest value on the volume's six faces (the air or the fill value of a stripped scan)."""
    array = sitk.GetArrayViewFromImage(image)
    faces = np.concatenate([array[i].ravel() for i in (0, -1)] + [array[:, i].ravel() for i in (0, -1)]
                           + [array[:, :, i].ravel() for i in (0, -1)])
    values, counts = np.unique(faces, return_counts=True)
    return float(values[int(np.argmax(counts))])


def check_hounsfield(image: sitk.Image, *, who: str = "", channel: str = "ct") -> None:
    """Refuse a CT whose values are not Hounsfield units (see the module docstring).

    Args:
        image: the CT channel, any grid.
        who: message prefix naming the case (``"case X: "``) or "".
        channel: the channel named in the message.

    Raises:
        InputFileError: one sentence giving the values found and the fix.
    """
    sample = _sample(image)
    lowest = float(np.percentile(sample, 0.1)) if sample.size else 0.0
    if sample.size == 0 or lowest < AIR_LIMIT_HU:
        return
    head = sample[sample > lowest + 100.0]
    if head.size <= 0.01 * sample.size:
        return  # no air and almost nothing above the lowest values: a skull-stripped scan's brain, in HU
    counts, edges = np.histogram(head, bins=np.arange(lowest + 100.0, float(head.max()) + 20.0, 10.0))
    mode = float(edges[int(np.argmax(counts))] + 5.0)
    if not STORED_TISSUE[0] <= mode <= STORED_TISSUE[1]:
        return
    raise InputFileError(
        f"{who}the {channel.upper()} image is not in Hounsfield units (values {float(sample.min()):.0f} to "
        f"{float(sample.max()):.0f}, nothing near air's -1000 HU, soft tissue near {mode:.0f}); the rescale slope "
        "and intercept were probably not applied: convert it to HU (stored value x slope + intercept) and try again.")


def is_skull_stripped(image: sitk.Image) -> bool:
    """Whether a CT (in HU) has no skull: almost none of its brain-window voxels have bone beside them."""
    sample = _sample(image)
    sample = sample[sample != background_value(image)]
    window = np.count_nonzero((sample >= 0.0) & (sample <= 100.0))
    bone = np.count_nonzero(sample > BONE_HU)
    return window > 0 and bone < STRIPPED_BONE_FRACTION * window


def stripped_brain_mask(image: sitk.Image, closing_mm: float = 2.0) -> sitk.Image:
    """The brain of a skull-stripped CT: its voxels other than the background value, closed (``closing_mm``),
    hole-filled, the largest component; uint8 0/1 on the image's grid."""
    mask = sitk.Cast(sitk.GetImageFromArray(
        (sitk.GetArrayViewFromImage(image) != background_value(image)).astype(np.uint8)), sitk.sitkUInt8)
    mask.CopyInformation(image)
    radius = [max(1, int(round(closing_mm / s))) for s in image.GetSpacing()]
    mask = sitk.BinaryMorphologicalClosing(mask, radius, sitk.sitkBall, 1)
    mask = sitk.BinaryFillhole(mask, fullyConnected=False, foregroundValue=1)
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    return sitk.Cast(labels == 1, sitk.sitkUInt8)
