"""The per-lesion table of a predicted mask: volume, hemisphere and centroid of each connected lesion."""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from lesionseg.infer.postprocess import foreground_box
from lesionseg.io.geometry import crop_to_box
from lesionseg.preprocess.midplane import Midplane


def lesion_table(mask: sitk.Image, midplane: Midplane | None = None,
                 probabilities: sitk.Image | None = None) -> list[dict[str, Any]]:
    """One row per connected lesion (26-connectivity), largest first.

    Columns: ``lesion`` (1, 2, ...), ``volume_ml``, ``hemisphere`` ("left"/"right" of the patient, from the
    mid-sagittal plane; "unknown" without one), ``centroid_lps_mm`` and ``centroid_ras_mm`` (x, y, z),
    ``voxels``, and ``mean_probability`` when probabilities are given.
    """
    box = foreground_box(mask)  # the lesions' box: labelling the whole grid of a CT costs seconds
    if box is None:
        return []
    mask = crop_to_box(mask, box)
    probabilities = None if probabilities is None else crop_to_box(probabilities, box)
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.Cast(mask > 0, sitk.sitkUInt8), True),
                                   sortByObjectSize=True)
    statistics = sitk.LabelShapeStatisticsImageFilter()
    statistics.Execute(labels)
    intensity = None
    if probabilities is not None:
        intensity = sitk.LabelStatisticsImageFilter()
        intensity.Execute(sitk.Cast(probabilities, sitk.sitkFloat32), labels)
    rows = []
    for label in sorted(statistics.GetLabels()):
        centroid = np.array(statistics.GetCentroid(label))
        hemisphere = "unknown"
        if midplane is not None:
            hemisphere = "left" if float(midplane.signed_distance(centroid[None])[0]) >= 0 else "right"
        row = {
            "lesion": int(label),
            "volume_ml": float(statistics.GetPhysicalSize(label)) / 1000.0,
            "voxels": int(statistics.GetNumberOfPixels(label)),
            "hemisphere": hemisphere,
            "centroid_lps_mm": [round(float(v), 2) for v in centroid],
            "centroid_ras_mm": [round(float(-centroid[0]), 2), round(float(-centroid[1]), 2), round(float(centroid[2]), 2)],
        }
        if intensity is not None:
            row["mean_probability"] = float(intensity.GetMean(label))
        rows.append(row)
    return rows
