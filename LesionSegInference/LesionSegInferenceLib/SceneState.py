"""The Inference panel's settings and its last result, kept in the scene's parameter node.

Saved with the scene (``.mrml`` / ``.mrb``) like any node, so that a reloaded scene restores the panel (bundle,
input volume per channel, options, output) and reconnects the result: the threshold slider and the lesion table
act again on the segment LesionSeg wrote. The result is stored as references to its nodes (reference volume,
segmentation, probability map, brain mask, lesion table), the ID of the segment written for each label of the
bundle, the bundle that made it and the post-processing that made the segment; on restoring, the probabilities
and the brain mask are read back from their nodes and the segment LesionSeg wrote is computed again from them
(so that a later edit of the segment is still recognised as an edit).

The storage follows :mod:`.ParameterNode` (the format of Slicer's ``parameterNodeWrapper``).
"""

from __future__ import annotations

from typing import Any

from .ParameterNode import BOOL, FLOAT, NODE, NODE_DICT, STR, STR_DICT, Field, ParameterStore
from .Parameters import DEFAULT_MIN_LESION_MM3, InferenceParameters
from .Results import InferenceResult

MODULE_NAME = "LesionSegInference"

#: Inputs and options (what the panel shows); a threshold of 0 stands for "the bundle's own".
PANEL_FIELDS = {
    "bundlePath": Field(STR, ""),
    "inputVolumes": Field(NODE_DICT, {}),
    "device": Field(STR, "auto"),
    "side": Field(STR, "auto"),
    "tta": Field(BOOL, False),
    "threshold": Field(FLOAT, 0.0),
    "minLesionMm3": Field(FLOAT, DEFAULT_MIN_LESION_MM3),
    "fillHoles": Field(BOOL, True),
    "outputSegmentation": Field(NODE, None),
}
#: The result the post-processing controls act on.
RESULT_FIELDS = {
    "resultBundlePath": Field(STR, ""),
    "resultReferenceVolume": Field(NODE, None),
    "resultSegmentation": Field(NODE, None),
    "resultSegmentIds": Field(STR_DICT, {}),
    "resultSegmentValues": Field(STR_DICT, {}),
    "resultProbability": Field(NODE, None),
    "resultBrainMask": Field(NODE, None),
    "resultLesionTable": Field(NODE, None),
    "resultThreshold": Field(FLOAT, 0.5),
    "resultMinLesionMm3": Field(FLOAT, DEFAULT_MIN_LESION_MM3),
    "resultFillHoles": Field(BOOL, True),
}
FIELDS = {**PANEL_FIELDS, **RESULT_FIELDS}


def store_panel(node, parameters: InferenceParameters) -> None:
    """Write the panel's inputs and options into the parameter node."""
    ParameterStore(node, FIELDS).write(
        bundlePath=str(parameters.bundle_path or ""), inputVolumes=dict(parameters.input_volumes or {}),
        device=parameters.device, side=parameters.side, tta=parameters.tta,
        threshold=0.0 if parameters.threshold is None else float(parameters.threshold),
        minLesionMm3=float(parameters.min_lesion_mm3), fillHoles=bool(parameters.fill_holes),
        outputSegmentation=parameters.output_segmentation)


def restore_panel(node) -> InferenceParameters:
    """The panel's inputs and options as the parameter node holds them (defaults for what it does not hold)."""
    values = ParameterStore(node, FIELDS).read()
    return InferenceParameters(
        bundle_path=values["bundlePath"],
        input_volumes={channel: volume for channel, volume in values["inputVolumes"].items() if volume is not None},
        device=values["device"], side=values["side"], tta=values["tta"],
        threshold=values["threshold"] if values["threshold"] > 0.0 else None,
        min_lesion_mm3=values["minLesionMm3"], fill_holes=values["fillHoles"],
        output_segmentation=values["outputSegmentation"])


def store_result(node, result: InferenceResult | None) -> None:
    """Write the result's nodes and post-processing into the parameter node (None forgets the result)."""
    store = ParameterStore(node, FIELDS)
    if result is None:
        store.write(resultBundlePath="", resultReferenceVolume=None, resultSegmentation=None, resultSegmentIds={},
                    resultSegmentValues={}, resultProbability=None, resultBrainMask=None, resultLesionTable=None)
        return
    store.write(resultBundlePath=result.bundle_path, resultReferenceVolume=result.reference_volume,
                resultSegmentation=result.segmentation_node, resultSegmentIds=dict(result.segment_ids),
                resultSegmentValues={label.name: str(label.value) for label in result.labels},
                resultProbability=result.probability_node, resultBrainMask=result.brain_node,
                resultLesionTable=result.table_node, resultThreshold=float(result.threshold),
                resultMinLesionMm3=float(result.min_lesion_mm3), resultFillHoles=bool(result.fill_holes))


def restore_result(scene, node) -> InferenceResult | None:
    """The result the parameter node refers to, rebuilt from its nodes; None when there is none or a node is gone.

    Raises:
        LesionSegError: a node's voxels cannot be read back (e.g. a volume without voxels).
    """
    values = ParameterStore(node, FIELDS).read()
    reference, segmentation = values["resultReferenceVolume"], values["resultSegmentation"]
    probability_node, segment_ids = values["resultProbability"], values["resultSegmentIds"]
    if reference is None or segmentation is None or probability_node is None or not segment_ids:
        return None
    if any(segmentation.GetSegmentation().GetSegment(segment_id) is None for segment_id in segment_ids.values()):
        return None
    import SimpleITK as sitk

    from lesionseg.infer import lesion_mask, lesion_table
    from lesionseg.labels import STROKE_LESION_NAME
    from lesionseg.mrml import image_from_volume_node

    from .Results import _carry_hemispheres

    probabilities = sitk.Cast(image_from_volume_node(probability_node), sitk.sitkFloat32)
    brain_node = values["resultBrainMask"]
    brain = sitk.Cast(image_from_volume_node(brain_node) > 0, sitk.sitkUInt8) if brain_node is not None else None
    threshold, minimum, fill = values["resultThreshold"], values["resultMinLesionMm3"], values["resultFillHoles"]
    labelmap = lesion_mask(probabilities, threshold=threshold, min_lesion_mm3=minimum, fill_holes=fill, brain=brain)
    lesions = lesion_table(labelmap, None, probabilities)
    _carry_hemispheres(lesions, labelmap, labelmap, _table_rows(values["resultLesionTable"]))
    labels = _restored_labels(values["resultBundlePath"], list(segment_ids), values["resultSegmentValues"])
    lesion_label = next((label for label in labels if label.name == STROKE_LESION_NAME), labels[0])
    return InferenceResult(
        reference_volume=reference, segmentation_node=segmentation, probability_node=probability_node,
        brain_node=brain_node, table_node=values["resultLesionTable"], probabilities=probabilities, brain=brain,
        labelmap=labelmap, lesions=lesions, threshold=threshold, min_lesion_mm3=minimum, fill_holes=fill,
        source_labelmap=labelmap, source_lesions=lesions, bundle_path=values["resultBundlePath"],
        segment_ids=dict(segment_ids), lesion_label=lesion_label, labels=labels)


def _restored_labels(bundle_path: str, names: list[str], values: dict[str, str]) -> list[Any]:
    """The result's labels (``SegmentLabel``) in the order of its segments: the bundle's own when it can still be
    read and lists every name (colours, terminology, values); else the values the scene stored (a class value
    such as penumbra 2 is kept; default colours); else values 1, 2, ... in order (scenes saved before values were
    stored)."""
    from lesionseg.errors import LesionSegError
    from lesionseg.labels import SegmentLabel, known_label

    from .Results import segment_labels

    if bundle_path:
        try:
            from lesionseg.bundle import read_manifest, segment_labels_of

            by_name = {label.name: label for label in segment_labels_of(read_manifest(bundle_path).get("labels", []))}
            if all(name in by_name for name in names):
                return [by_name[name] for name in names]
        except (LesionSegError, OSError):
            pass  # the bundle was moved or deleted since: the stored values below
    defaults = segment_labels(names)
    try:
        return [known_label(SegmentLabel(name, int(values[name]), default.color)) if name in values else default
                for name, default in zip(names, defaults)]
    except ValueError:
        return defaults


def _table_rows(table_node) -> list[dict[str, Any]]:
    """The lesion number and hemisphere of each row of a lesion table node (hemispheres are not recomputable:
    the job knew the brain's mid-sagittal plane)."""
    if table_node is None or table_node.GetTable() is None:
        return []
    table = table_node.GetTable()
    lesion, hemisphere = table.GetColumnByName("lesion"), table.GetColumnByName("hemisphere")
    if lesion is None or hemisphere is None:
        return []
    rows = []
    for row in range(table.GetNumberOfRows()):
        try:
            rows.append({"lesion": int(float(str(lesion.GetValue(row)))), "hemisphere": str(hemisphere.GetValue(row))})
        except ValueError:
            continue
    return rows
