"""The axial frame of a volume: slices that are anatomically axial, whatever the storage orientation.

A volume's own axes may be stored sagittal, coronal or oblique. The *axial frame* is a grid whose third
axis runs inferior-superior and whose slices are therefore axial:

* when the volume's axes are within ``max_obliquity_deg`` of the patient axes, the frame is the volume
  reoriented by permuting and flipping axes (:func:`SimpleITK.DICOMOrient` to LPS): exactly the same
  voxels, no interpolation;
* otherwise (an oblique acquisition) the frame is an axis-aligned grid covering the volume, with the
  voxel sizes of the closest permuted axes; sampling onto it interpolates.

Nothing is resampled here: the frame is a :class:`~lesionseg.io.Geometry`. Later steps resample the
native volume straight onto the prepared grid built on this frame, so there is one interpolation only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from lesionseg.io import Geometry

#: axes further than this from the patient axes count as oblique (the frame is then resampled)
MAX_OBLIQUITY_DEG = 3.0


@dataclass(frozen=True)
class AxialFrame:
    """The axial frame of a volume and how it was obtained.

    Attributes:
        geometry: the frame's grid (third axis inferior-superior).
        orientation: the native orientation code of the volume (ITK/DICOM letters, e.g. ``"LPS"``, ``"ASL"``).
        obliquity_deg: angle between the native axes and the nearest patient axes.
        resampled: True when the frame is a new axis-aligned grid (oblique input), False when it is the
            native grid reoriented by an axis permutation and flips (exact).
    """

    geometry: Geometry
    orientation: str
    obliquity_deg: float
    resampled: bool

    def to_dict(self) -> dict:
        return {"geometry": self.geometry.to_dict(), "orientation": self.orientation,
                "obliquity_deg": self.obliquity_deg, "resampled": self.resampled}

    @classmethod
    def from_dict(cls, data: dict) -> "AxialFrame":
        return cls(Geometry.from_dict(data["geometry"]), data["orientation"], float(data["obliquity_deg"]),
                   bool(data["resampled"]))


def obliquity_deg(direction: np.ndarray) -> float:
    """Largest angle (degrees) between a 3x3 direction matrix's columns and their nearest patient axis."""
    cosines = np.abs(direction).max(axis=0).clip(-1.0, 1.0)
    return float(np.degrees(np.arccos(cosines)).max())


def axial_frame(image: sitk.Image, max_obliquity: float = MAX_OBLIQUITY_DEG) -> AxialFrame:
    """The axial frame of ``image`` (see the module docstring).

    Args:
        image: a 3D volume with its geometry.
        max_obliquity: axes more oblique than this (degrees) give a resampled, axis-aligned frame.
    """
    direction = np.array(image.GetDirection()).reshape(3, 3)
    orientation = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())
    angle = obliquity_deg(direction)
    reference = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    reference.CopyInformation(image)
    oriented = sitk.DICOMOrient(reference, "LPS")
    if angle <= max_obliquity:
        return AxialFrame(Geometry.of(oriented), orientation, angle, resampled=False)
    # oblique: an identity-direction grid over the volume's bounding box, voxel sizes of the permuted axes
    size = np.array(image.GetSize())
    corners = np.array([[i, j, k] for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)])
    points = np.array([image.TransformContinuousIndexToPhysicalPoint(c.astype(float).tolist()) for c in corners])
    spacing = np.array(oriented.GetSpacing())
    low, high = points.min(axis=0), points.max(axis=0)
    frame_size = np.floor((high - low) / spacing).astype(int) + 1
    return AxialFrame(Geometry(tuple(int(n) for n in frame_size), tuple(float(s) for s in spacing),
                               tuple(float(v) for v in low), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)),
                      orientation, angle, resampled=True)
