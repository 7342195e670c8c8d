"""Evaluation metrics for lesion segmentation, in millimetres, with documented empty-mask values.

Masks are numpy arrays (bool or 0/1), 2D ``(y, x)`` or 3D ``(z, y, x)``. ``spacing`` is always required
and given in mm per voxel **in the array's axis order** (``spacing_from_image`` converts SimpleITK's
``(x, y, z)``). Conventions (details in each module and in METRICS-NOTES.md):

- Dice: both empty -> 1.0; exactly one empty -> 0.0.
- HD, HD95, ASSD (:mod:`.surface`): MONAI's surface (voxels minus erosion) and HD95 (max of the two
  directed 95th percentiles); both empty -> 0; exactly one empty -> the image diagonal in mm, flagged
  with ``empty_prediction`` / ``empty_truth``. Never NaN or inf.
- Lesion-wise TP/FN/FP/F1 (:mod:`.lesionwise`): ISLES'22 any-overlap rules, 26-connectivity by default,
  ``"atlas2"`` = 6-connectivity.
- Detection rate (:mod:`.detection`): lesion slices with a prediction / lesion slices; ``None`` without
  lesion slices.
- Volume difference in mL from the voxel volume; absolute lesion count difference.
- Multi-label masks (:mod:`.multiclass`): every metric per class, each class as its own binary mask.
"""

from lesionseg.metrics._checks import image_diagonal_mm, spacing_from_image
from lesionseg.metrics.detection import DetectionResult, detection_rate
from lesionseg.metrics.evaluate import (
    CaseMetrics,
    SliceMetrics,
    evaluate_case,
    evaluate_case_images,
    evaluate_slices,
)
from lesionseg.metrics.lesionwise import (
    LESIONWISE_CONVENTIONS,
    LesionVolume,
    LesionwiseCounts,
    label_lesions,
    lesion_count_difference,
    lesion_volume_ratios,
    lesionwise_counts,
    resolve_connectivity,
)
from lesionseg.metrics.multiclass import CLASS_METRICS, class_columns, class_row, class_slug, evaluate_classes
from lesionseg.metrics.overlap import absolute_volume_difference_ml, dice, lesion_volume_ml, voxel_volume_ml
from lesionseg.metrics.summary import summarize
from lesionseg.metrics.surface import (
    SurfaceDistances,
    directed_surface_distances,
    surface_distances,
    surface_voxels,
)

__all__ = [
    "CLASS_METRICS",
    "class_columns",
    "class_row",
    "class_slug",
    "evaluate_classes",
    "LESIONWISE_CONVENTIONS",
    "CaseMetrics",
    "DetectionResult",
    "LesionVolume",
    "LesionwiseCounts",
    "SliceMetrics",
    "SurfaceDistances",
    "absolute_volume_difference_ml",
    "detection_rate",
    "dice",
    "directed_surface_distances",
    "evaluate_case",
    "evaluate_case_images",
    "lesion_volume_ratios",
    "evaluate_slices",
    "image_diagonal_mm",
    "label_lesions",
    "lesion_count_difference",
    "lesion_volume_ml",
    "lesionwise_counts",
    "resolve_connectivity",
    "spacing_from_image",
    "summarize",
    "surface_distances",
    "surface_voxels",
    "voxel_volume_ml",
]
