"""Exporting the panel's result as a DICOM Segmentation (SEG) that refers to the DICOM series it was made on.

A volume that Slicer loaded from its DICOM database carries the SOP Instance UIDs of its files in the node
attribute ``DICOM.instanceUIDs``; the database gives each one's file. The SEG is written by
``lesionseg.io.write_dicom_seg`` (highdicom) from the lesion segment as it is now (edits included) on the
volume's grid, with the segment's terminology (SNOMED CT "Infarct"); a bundle of several classes (e.g. core and
penumbra) gives one SEG segment per class, each from its segment as it is now. It loads back through Slicer's DICOM SEG
plugin once the file is imported into the DICOM database.

Only volumes loaded from DICOM can be exported: a SEG must refer to its source series, and a volume read from
NIfTI or NRRD has none (save the segmentation as ``.seg.nrrd`` instead). highdicom needs pydicom 3; Slicer
5.10 ships pydicom 2.4, where the export says so instead of replacing Slicer's pydicom.

Nothing here imports Qt or the Slicer application; ``lesionseg`` is imported inside the functions.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

#: The attribute in which Slicer's DICOM plugins store the SOP Instance UIDs of a loaded volume's files.
DICOM_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"


def source_instance_uids(volume_node: Any) -> list[str]:
    """The SOP Instance UIDs of the DICOM files a volume node was loaded from ([] when it was not)."""
    text = volume_node.GetAttribute(DICOM_UIDS_ATTRIBUTE) if volume_node is not None else None
    return str(text or "").split()


@functools.lru_cache(maxsize=1)
def highdicom_problem() -> str:
    """"" when highdicom can write SEGs in this Python, else one sentence saying why not and what to do (checked
    once: a package installed later is seen after a restart, as Python imports it once)."""
    try:
        import highdicom  # noqa: F401
    except ImportError:
        return ("Writing DICOM SEG needs the highdicom package (with pydicom 3), which this Python does not have; "
                "use Slicer's own DICOM export of the segmentation (Data module, right-click, Export to DICOM) or "
                "lesionseg segment --format dcm-seg outside Slicer.")
    except Exception as error:  # e.g. highdicom installed over a pydicom 2 that it cannot use
        return (f"highdicom cannot be used in this Python ({type(error).__name__}: {error}); Slicer 5.10 ships "
                "pydicom 2.4, highdicom needs pydicom 3. Use Slicer's own DICOM export of the segmentation instead.")
    return ""


def export_readiness(result: Any, scene: Any = None, *,
                     problem: Callable[[], str] = highdicom_problem) -> tuple[bool, str]:
    """Whether the result can be exported as a DICOM SEG now.

    Args:
        result: the panel's ``InferenceResult`` (None when there is none).
        scene: the scene, to check that the segmentation still exists (None: not checked).
        problem: says why highdicom cannot be used ("" when it can).

    Returns:
        ``(True, "")`` or ``(False, reason)``: one sentence saying what is missing.
    """
    if result is None:
        return False, "There is no segmentation to export yet; click Apply first."
    if scene is not None and not scene.IsNodePresent(result.segmentation_node):
        return False, "The segmentation of the last result was deleted; click Apply again."
    if not source_instance_uids(result.reference_volume):
        name = result.reference_volume.GetName() if result.reference_volume is not None else "the input"
        return False, (f"The volume {name} was not loaded from DICOM, so a DICOM SEG would have no series to refer "
                       "to; save the segmentation as .seg.nrrd instead, or load the scan through the DICOM module.")
    reason = problem()
    return (not reason), reason


def export_dicom_seg(result: Any, path: str | os.PathLike, file_for_instance: Callable[[str], str]) -> Path:
    """Write the result's lesion segment as a DICOM SEG referring to its volume's DICOM series.

    Args:
        result: the panel's ``InferenceResult``; its reference volume must come from DICOM.
        path: the ``.dcm`` file to write.
        file_for_instance: SOP Instance UID -> file (``slicer.dicomDatabase.fileForInstance``; "" when unknown).

    Returns:
        The file written.

    Raises:
        LesionSegError: the volume is not from DICOM, its files are gone, the segment is not on the volume's
            grid, or highdicom is missing; one sentence.
    """
    from lesionseg.errors import InputFileError, ParameterError
    from lesionseg.io import dicom_series_from_files, write_dicom_seg
    from lesionseg.labels import STROKE_LESION
    from lesionseg.mrml import mask_from_segment

    ok, reason = export_readiness(result, problem=lambda: "")
    if not ok:
        raise ParameterError(reason)
    uids = source_instance_uids(result.reference_volume)
    files = [file_for_instance(uid) or "" for uid in uids]
    missing = [uid for uid, file in zip(uids, files) if not file or not Path(file).is_file()]
    if missing:
        raise InputFileError(f"{len(missing)} of the {len(uids)} DICOM files of {result.reference_volume.GetName()} "
                             f"are no longer in the DICOM database (e.g. {missing[0]}); import the series again.")
    series = dicom_series_from_files(files)
    model = Path(result.bundle_path).stem if result.bundle_path else ""
    labels = list(getattr(result, "labels", None) or [])
    if len(labels) > 1:  # one segment per class (e.g. core and penumbra), each as it is now
        values = _class_values(result, labels)
        return write_dicom_seg(values, series, Path(path), labels=labels, model_name=model)
    mask = mask_from_segment(result.segmentation_node, result.segment_id, result.reference_volume)
    if mask is None:
        raise ParameterError("the lesion segment of the last result was removed; click Apply again.")
    return write_dicom_seg(mask, series, Path(path), label=result.lesion_label or STROKE_LESION, model_name=model)


def _class_values(result: Any, labels: list[Any]) -> Any:
    """One labelmap on the volume's grid holding each label's value where its segment is (the first label listed
    wins where segments overlap after an edit, as in the job's labelmap: the core before the penumbra).

    Raises:
        ParameterError: a label's segment was removed.
    """
    import SimpleITK as sitk

    from lesionseg.errors import ParameterError
    from lesionseg.mrml import mask_from_segment

    values = None
    for label in reversed(labels):
        segment_id = result.segment_ids.get(label.name, "")
        mask = mask_from_segment(result.segmentation_node, segment_id, result.reference_volume) if segment_id else None
        if mask is None:
            raise ParameterError(f"the segment '{label.name}' of the last result was removed; click Apply again.")
        mask = sitk.Cast(mask > 0, sitk.sitkUInt8)
        if values is None:
            values = sitk.Image(mask.GetSize(), sitk.sitkUInt8)
            values.CopyInformation(mask)
        values = sitk.Mask(values, mask, outsideValue=int(label.value), maskingValue=1)
    return values
