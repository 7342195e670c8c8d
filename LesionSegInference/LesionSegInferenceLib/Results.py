"""A finished ``lesionseg segment`` job's files -> nodes in the scene; the threshold slider; lesion jump targets.

The job writes, on the reference volume's grid: the 0/1 lesion labelmap, the float32 probability map, the
brain mask it used and the per-lesion table (JSON). They become a segmentation with the "Stroke lesion"
segment (its reference geometry the input volume's), a probability volume with a colour map, a brain
labelmap volume for checking, and a table node; all through ``lesionseg.mrml``.

Re-thresholding runs ``lesionseg.infer.lesion_mask`` on the probability map kept in memory (the same
post-processing as the job: threshold, holes filled, small lesions removed, inside the brain) and rewrites
the segment: no network is run. The per-lesion table is recomputed with ``lesionseg.infer.lesion_table``;
the hemisphere of a lesion is carried over from the job's lesions it overlaps (the job knew the brain's
mid-sagittal plane, the panel does not), "unknown" for a lesion that overlaps none.

``lesionseg``, SimpleITK and ``slicer`` are imported inside the functions.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The files a segmentation job writes into its work folder.
LABELMAP_FILE = "lesion.nrrd"
PROBABILITY_FILE = "probability.nrrd"
BRAIN_FILE = "brain.nrrd"
LESIONS_FILE = "lesions.json"
#: Columns of the lesion table node, in order (RAS centroid in mm, in the volume's own frame).
LESION_COLUMNS = ("lesion", "volume_ml", "hemisphere", "mean_probability", "centroid_r_mm", "centroid_a_mm",
                  "centroid_s_mm", "voxels")
LESION_UNITS = {"volume_ml": "mL", "centroid_r_mm": "mm", "centroid_a_mm": "mm", "centroid_s_mm": "mm"}


@dataclass
class InferenceResult:
    """A segmentation run's outcome in the scene, and what the threshold slider needs.

    Attributes:
        reference_volume: the input volume of the reference channel (the output grid).
        segmentation_node: the segmentation holding the "Stroke lesion" segment.
        probability_node: the lesion probability map (scalar volume, 0..1).
        brain_node: the brain mask the job used (labelmap volume), None when the job wrote none.
        table_node: one row per lesion (:data:`LESION_COLUMNS`).
        probabilities: the probability map (``SimpleITK.Image``, float32, reference grid).
        brain: the brain mask (0/1 ``SimpleITK.Image``) or None.
        labelmap: the current 0/1 lesion mask (``SimpleITK.Image``).
        lesions: the current per-lesion rows (``lesionseg.infer.lesion_table`` format).
        threshold, min_lesion_mm3, fill_holes: the post-processing that made ``labelmap``.
        source_labelmap, source_lesions: the job's own mask and rows (hemispheres come from them).
        warnings: the job's warnings (e.g. a voxel size far from the training data's).
        bundle_path: the bundle that made the result (its post-processing controls belong to it).
        segment_ids: label name -> ID of the segment written for it (one segment per label of the bundle);
            segments are found by ID, so renaming a segment or adding one of the same name changes nothing.
        lesion_label: the label whose probabilities the job wrote (``lesionseg.labels.SegmentLabel``; None: the
            stroke lesion).
        labels: every label of the bundle, one segment each (``SegmentLabel``, its value as in the job's labelmap);
            [] for a result of the lesion alone.
    """

    reference_volume: Any
    segmentation_node: Any
    probability_node: Any
    brain_node: Any
    table_node: Any
    probabilities: Any
    brain: Any
    labelmap: Any
    lesions: list[dict[str, Any]]
    threshold: float
    min_lesion_mm3: float
    fill_holes: bool
    source_labelmap: Any = None
    source_lesions: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bundle_path: str = ""
    segment_ids: dict[str, str] = field(default_factory=dict)
    lesion_label: Any = None
    labels: list[Any] = field(default_factory=list)

    @property
    def segment_id(self) -> str:
        """The ID of the lesion segment LesionSeg wrote (the post-processing controls update that one only)."""
        from lesionseg.labels import STROKE_LESION_NAME

        name = self.lesion_label.name if self.lesion_label is not None else STROKE_LESION_NAME
        return self.segment_ids.get(name) or next(iter(self.segment_ids.values()), "")

    @property
    def lesion_volume_ml(self) -> float:
        """Total lesion volume in mL (sum over the lesions)."""
        return float(sum(row["volume_ml"] for row in self.lesions))

    def summary(self) -> str:
        """One sentence: ``"2 lesions, 3.45 mL in all (threshold 0.50)."``."""
        count = len(self.lesions)
        noun = "lesion" if count == 1 else "lesions"
        return f"{count} {noun}, {self.lesion_volume_ml:.2f} mL in all (threshold {self.threshold:.2f})."


#: Colours (RGB 0..1) of the segments of labels other than the stroke lesion, in turn.
OTHER_LABEL_COLORS = ((0.95, 0.75, 0.1), (0.2, 0.6, 0.9), (0.45, 0.8, 0.35), (0.7, 0.4, 0.85))


def segment_labels(names: list[str] | None):
    """The segments of a bundle's labels (``lesionseg.labels.SegmentLabel``), one per label, values 1, 2, ... in
    the bundle's order; the "Stroke lesion" label keeps its colour and terminology. No names: the lesion alone."""
    from lesionseg.labels import STROKE_LESION, SegmentLabel

    labels = []
    for value, name in enumerate(names or [STROKE_LESION.name], start=1):
        if name == STROKE_LESION.name and value == STROKE_LESION.value:
            labels.append(STROKE_LESION)
        else:
            labels.append(SegmentLabel(name, value, OTHER_LABEL_COLORS[(value - 1) % len(OTHER_LABEL_COLORS)]))
    return labels


def output_files(folder: Path) -> dict[str, Path]:
    """The files a job writes into ``folder``: labelmap, probability, brain, lesions."""
    return {"labelmap": folder / LABELMAP_FILE, "probability": folder / PROBABILITY_FILE,
            "brain": folder / BRAIN_FILE, "lesions": folder / LESIONS_FILE}


def _on_reference_grid(image, reference_volume, what: str):
    """The image with the reference volume's exact grid (after checking it is the same within tolerance)."""
    from lesionseg.errors import GeometryError
    from lesionseg.io import geometry_difference
    from lesionseg.mrml import geometry_of_volume_node

    grid = geometry_of_volume_node(reference_volume)
    difference = geometry_difference(image, grid)
    if difference is not None:
        raise GeometryError(f"the {what} the job wrote is not on the grid of '{reference_volume.GetName()}' "
                            f"({difference}); run the segmentation again.")
    image.SetSpacing(grid.spacing)
    image.SetOrigin(grid.origin)
    image.SetDirection(grid.direction)
    return image


def display_rows(lesions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lesion rows as the table node shows them (:data:`LESION_COLUMNS`; RAS centroid split in columns)."""
    rows = []
    for lesion in lesions:
        r, a, s = lesion.get("centroid_ras_mm") or (None, None, None)
        rows.append({"lesion": lesion["lesion"], "volume_ml": round(float(lesion["volume_ml"]), 4),
                     "hemisphere": lesion.get("hemisphere", "unknown"),
                     "mean_probability": lesion.get("mean_probability"), "centroid_r_mm": r,
                     "centroid_a_mm": a, "centroid_s_mm": s, "voxels": lesion.get("voxels")})
    return rows


def _alive(scene, node):
    return node if node is not None and scene.IsNodePresent(node) else None


class SegmentEditedError(Exception):
    """The result's segment was edited (e.g. in the Segment Editor) since LesionSeg last wrote it."""


def load_results(scene, folder: Path, reference_volume, *, threshold: float, min_lesion_mm3: float,
                 fill_holes: bool, output_node=None, previous: InferenceResult | None = None,
                 warnings: list[str] | None = None, bundle_path: str = "", labels=None) -> InferenceResult:
    """Read a finished job's files and show them in the scene.

    Args:
        scene: the MRML scene.
        folder: the job's work folder (see :func:`output_files`).
        reference_volume: the reference channel's volume node.
        threshold, min_lesion_mm3, fill_holes: the post-processing the job applied.
        output_node: the segmentation to write into (None: a new "<volume> lesion" segmentation).
        previous: the last result on the same volume; its probability, brain and table nodes are reused.
        warnings: the job's warnings.
        bundle_path: the bundle that made the files.
        labels: the bundle's labels (:func:`segment_labels`; default the stroke lesion alone): one segment each,
            from the voxels of its value in the job's labelmap. The probabilities, and so the threshold slider,
            are the stroke lesion's.

    Returns:
        The :class:`InferenceResult`.

    Raises:
        LesionSegError: a file is missing or unreadable, or not on the volume's grid.
    """
    import SimpleITK as sitk

    from lesionseg.errors import InputFileError
    from lesionseg.io import read_image
    from lesionseg.labels import STROKE_LESION_NAME
    from lesionseg.mrml import probability_volume_node, write_label_segment

    files = output_files(Path(folder))
    for key in ("labelmap", "probability", "lesions"):
        if not files[key].is_file():
            raise InputFileError(f"the segmentation job wrote no {files[key].name}; see the log for why.")
    labels = list(labels or segment_labels(None))
    values = _on_reference_grid(sitk.Cast(read_image(files["labelmap"]), sitk.sitkUInt8), reference_volume, "labelmap")
    lesion_label = next((label for label in labels if label.name == STROKE_LESION_NAME), labels[0])
    labelmap = sitk.Cast(values == lesion_label.value, sitk.sitkUInt8)
    probabilities = _on_reference_grid(read_image(files["probability"], pixel_type=sitk.sitkFloat32),
                                       reference_volume, "probability map")
    brain = None
    if files["brain"].is_file():
        brain = _on_reference_grid(sitk.Cast(read_image(files["brain"]) > 0, sitk.sitkUInt8), reference_volume,
                                   "brain mask")
    lesions = json.loads(files["lesions"].read_text(encoding="utf-8"))
    reuse = previous if previous is not None and previous.reference_volume is reference_volume else None
    name = reference_volume.GetName()

    segmentation, segment_ids = output_node, {}
    for label in labels:
        segmentation, segment_ids[label.name] = write_label_segment(
            scene, values, reference_volume, label=label, node=segmentation, name=f"{name} lesion")
    probability_node = probability_volume_node(
        scene, probabilities, name=f"{name} lesion probability", reference_volume=reference_volume,
        node=_alive(scene, reuse.probability_node) if reuse else None)
    brain_node = None
    if brain is not None:
        brain_node = _brain_node(scene, brain, reference_volume,
                                 _alive(scene, reuse.brain_node) if reuse else None)
    result = InferenceResult(
        reference_volume=reference_volume, segmentation_node=segmentation, probability_node=probability_node,
        brain_node=brain_node, table_node=None, probabilities=probabilities, brain=brain, labelmap=labelmap,
        lesions=lesions, threshold=float(threshold), min_lesion_mm3=float(min_lesion_mm3),
        fill_holes=bool(fill_holes), source_labelmap=labelmap, source_lesions=lesions,
        warnings=list(warnings or []), bundle_path=str(bundle_path), segment_ids=segment_ids, lesion_label=lesion_label,
        labels=labels)
    result.table_node = _table_node(scene, result, _alive(scene, reuse.table_node) if reuse else None)
    return result


def _brain_node(scene, brain, reference_volume, node):
    from lesionseg.mrml import place_beside, volume_node_from_image

    node = volume_node_from_image(scene, brain, f"{reference_volume.GetName()} brain mask", labelmap=True, node=node)
    node.SetAndObserveTransformNodeID(reference_volume.GetTransformNodeID())
    place_beside(scene, node, reference_volume)
    return node


def _table_node(scene, result: InferenceResult, node):
    from lesionseg.mrml import place_beside, table_node_from_rows

    table = table_node_from_rows(scene, display_rows(result.lesions), f"{result.reference_volume.GetName()} lesions",
                                 columns=LESION_COLUMNS, node=node, units=LESION_UNITS)
    place_beside(scene, table, result.reference_volume)
    return table


def segment_edited(result: InferenceResult) -> bool:
    """Whether the result's segment differs from what LesionSeg last wrote into it (a manual edit).

    Raises:
        ParameterError: the segment (or its segmentation) is no longer in the scene.
    """
    import numpy as np
    import SimpleITK as sitk

    from lesionseg.errors import ParameterError
    from lesionseg.mrml import mask_from_segment

    current = mask_from_segment(result.segmentation_node, result.segment_id, result.reference_volume)
    if current is None:
        raise ParameterError("the lesion segment of the last result was deleted; click Apply to segment again.")
    return not np.array_equal(sitk.GetArrayViewFromImage(current) > 0, sitk.GetArrayViewFromImage(result.labelmap) > 0)


def rethreshold(scene, result: InferenceResult, threshold: float, *, min_lesion_mm3: float | None = None,
                fill_holes: bool | None = None, replace_edits: bool = False) -> InferenceResult:
    """Make the segment again from the stored probabilities at another threshold (no network run).

    Args:
        scene: the MRML scene holding the result's nodes.
        result: a result from :func:`load_results` (updated in place and returned).
        threshold: the new probability threshold, strictly between 0 and 1.
        min_lesion_mm3, fill_holes: new post-processing options (default: the result's).
        replace_edits: overwrite the segment even when it was edited since LesionSeg wrote it.

    Returns:
        ``result``, with the segment, labelmap, lesion rows and table node updated.

    Raises:
        ParameterError: a threshold outside (0, 1), a negative minimum size, or the segment was deleted.
        SegmentEditedError: the segment was edited since LesionSeg wrote it and ``replace_edits`` is False
            (nothing is changed).
    """
    from lesionseg.errors import ParameterError
    import SimpleITK as sitk

    from lesionseg.infer import lesion_mask, lesion_table
    from lesionseg.labels import STROKE_LESION
    from lesionseg.mrml import write_label_segment

    if not 0.0 < float(threshold) < 1.0:
        raise ParameterError(f"the threshold must lie strictly between 0 and 1, not {threshold}.")
    minimum = result.min_lesion_mm3 if min_lesion_mm3 is None else float(min_lesion_mm3)
    if minimum < 0:
        raise ParameterError(f"the minimum lesion size must be 0 mm³ or more, not {minimum}.")
    fill = result.fill_holes if fill_holes is None else bool(fill_holes)
    if segment_edited(result) and not replace_edits:
        raise SegmentEditedError(f"the segment '{_segment_name(result)}' was edited since LesionSeg wrote it.")
    labelmap = lesion_mask(result.probabilities, threshold=float(threshold), min_lesion_mm3=minimum,
                           fill_holes=fill, brain=result.brain)
    lesions = lesion_table(labelmap, None, result.probabilities)
    _carry_hemispheres(lesions, labelmap, result.source_labelmap, result.source_lesions)
    label = result.lesion_label or STROKE_LESION
    values = sitk.Cast(labelmap, sitk.sitkUInt8) * int(label.value)
    _node, segment_id = write_label_segment(scene, values, result.reference_volume, node=result.segmentation_node,
                                            segment_id=result.segment_id, label=label)
    result.segment_ids = {**result.segment_ids, label.name: segment_id}
    result.labelmap, result.lesions = labelmap, lesions
    result.threshold, result.min_lesion_mm3, result.fill_holes = float(threshold), minimum, fill
    result.table_node = _table_node(scene, result, _alive(scene, result.table_node))
    return result


def _segment_name(result: InferenceResult) -> str:
    segment = result.segmentation_node.GetSegmentation().GetSegment(result.segment_id)
    return segment.GetName() if segment is not None else result.segment_id


def _lesion_labels(mask):
    """Connected lesions numbered as ``lesionseg.infer.lesion_table`` numbers them (26-connected, largest
    first), as a (z, y, x) array; the same two SimpleITK calls, so that label k is row ``lesion == k``."""
    import SimpleITK as sitk

    labels = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.Cast(mask > 0, sitk.sitkUInt8), True),
                                   sortByObjectSize=True)
    return sitk.GetArrayFromImage(labels)  # a copy: a view would outlive its image


def _carry_hemispheres(lesions: list[dict[str, Any]], labelmap, source_labelmap, source_lesions) -> None:
    """Give each new lesion the hemisphere of the job's lesions it overlaps most (by voxels), in place."""
    if source_labelmap is None or not source_lesions:
        return
    hemisphere_of = {row["lesion"]: row.get("hemisphere", "unknown") for row in source_lesions}
    old = _lesion_labels(source_labelmap)
    new = _lesion_labels(labelmap)
    for row in lesions:
        votes: Counter[str] = Counter()
        overlapped = old[(new == row["lesion"]) & (old > 0)]
        for label, count in zip(*_unique_counts(overlapped)):
            votes[hemisphere_of.get(int(label), "unknown")] += int(count)
        row["hemisphere"] = votes.most_common(1)[0][0] if votes else "unknown"


def _unique_counts(values):
    import numpy as np

    return np.unique(values, return_counts=True)


def jump_target(result: InferenceResult, row_index: int) -> tuple[float, float, float]:
    """The world RAS point (mm) of a lesion's centroid, for jumping the slice views to it.

    The lesion table holds centroids in the volume's own RAS frame; when the volume is under a transform,
    the point is carried through it into the world frame that slice views show.

    Args:
        result: the run's result.
        row_index: the row of the lesion table (0 = largest lesion).

    Raises:
        IndexError: no such row.
    """
    if not 0 <= row_index < len(result.lesions):
        raise IndexError(f"lesion row {row_index} does not exist; the table has {len(result.lesions)} rows.")
    point = [float(value) for value in result.lesions[row_index]["centroid_ras_mm"]]
    transform_node = result.reference_volume.GetParentTransformNode()
    if transform_node is None:
        return tuple(point)
    import vtk

    to_world = vtk.vtkGeneralTransform()
    transform_node.GetTransformToWorld(to_world)
    return tuple(float(value) for value in to_world.TransformPoint(point))
