"""The refinement section of LesionSegCurriculum and the Segment Editor effect's computation, in a real MRML
scene (slicer-core): proposed changes shown as "Added"/"Removed" segments, accept, reject, review marks, the
queue file, and a segment refined through the scene giving the same voxels as the tool on the plain images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import SMALL_PHANTOM, run_cli
from lesionseg.data import discover
from lesionseg.errors import ParameterError
from lesionseg.refine import RevisionStore, current_state, degrade_mask, read_marks
from lesionseg.refine.tools import call_tool


pytestmark = pytest.mark.usefixtures("slicer_module_folders")


@pytest.fixture()
def dilated_dataset(tmp_path) -> tuple[Path, str, np.ndarray]:
    """Two phantom cases; the first one's latest revision is its truth dilated by 2 voxels in-plane."""
    from lesionseg.synth import write_cohort

    root = tmp_path / "isles"
    write_cohort(root, 2, modalities=("flair",), seed=4, **SMALL_PHANTOM)
    case = discover(root)[0]
    store = RevisionStore.for_case(case, dataset=root)
    truth = store.read("original")
    store.add(degrade_mask(truth, "dilate"), tool="manual", source="original", comment="rough outline")
    return root, case.case_id, sitk.GetArrayFromImage(truth) != 0


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image) != 0


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_a_proposal_is_shown_as_added_and_removed_voxels_then_rejected(slicer_scene, dilated_dataset):
    from LesionSegCurriculumLib import RefinementLogic
    from lesionseg.mrml import mask_from_segmentation_node

    _slicer, scene, _logic = slicer_scene
    dataset, case_id, truth = dilated_dataset
    logic = RefinementLogic(str(dataset), scene=scene, author="ann")
    proposal = logic.propose(case_id, "intensity")
    before, after = _array(proposal.before), _array(proposal.after)
    assert proposal.source == "rev-0001" and proposal.changed
    assert _dice(after, truth) > _dice(before, truth) + 0.05  # the proposal repairs the dilation
    shown = logic.show(proposal)
    added = _array(mask_from_segmentation_node(scene, shown.change, "Added", reference_volume=shown.volume))
    removed = _array(mask_from_segmentation_node(scene, shown.change, "Removed", reference_volume=shown.volume))
    current = _array(mask_from_segmentation_node(scene, shown.current, reference_volume=shown.volume))
    np.testing.assert_array_equal(added, after & ~before)
    np.testing.assert_array_equal(removed, before & ~after)
    np.testing.assert_array_equal(current, before)
    voxel_ml = float(np.prod(proposal.after.GetSpacing())) / 1000.0
    assert shown.removed_ml == pytest.approx(np.count_nonzero(before & ~after) * voxel_ml)
    assert shown.added_ml == pytest.approx(np.count_nonzero(after & ~before) * voxel_ml)
    colors = {shown.change.GetSegmentation().GetNthSegment(i).GetName():
              tuple(shown.change.GetSegmentation().GetNthSegment(i).GetColor()) for i in range(2)}
    assert colors["Added"][1] > colors["Added"][0] and colors["Removed"][0] > colors["Removed"][1]  # green, magenta

    store = logic.open(case_id).store
    log_before = store.log_path.read_bytes()
    change_id, current_id = shown.change.GetID(), shown.current.GetID()
    logic.reject()
    assert scene.GetNodeByID(change_id) is None and scene.GetNodeByID(current_id) is None
    assert store.log_path.read_bytes() == log_before and store.ids() == ["original", "rev-0001"]
    with pytest.raises(ParameterError, match="no proposed change"):
        logic.accept()


def test_accepting_stores_a_revision_and_marks_feed_the_ratings(slicer_scene, dilated_dataset):
    from LesionSegCurriculumLib import RefinementLogic
    from lesionseg.refine import case_ratings

    _slicer, scene, _logic = slicer_scene
    dataset, case_id, _truth = dilated_dataset
    logic = RefinementLogic(str(dataset), scene=scene, author="ann")
    grown = logic.propose(case_id, "intensity")
    logic.show(grown)
    refinement = logic.accept(comment="boundary fixed")
    store = logic.open(case_id).store
    assert refinement.revision.id == "rev-0002" and refinement.source == "rev-0001"
    entry = store.get("rev-0002")
    assert entry.author == "ann" and entry.tool == "intensity" and entry.comment == "boundary fixed"
    np.testing.assert_array_equal(_array(store.read("rev-0002")), _array(grown.after))
    assert logic.shown is None

    mark = logic.rate(case_id, "flagged", rating="hard", comment="check the cortex")
    assert mark.revision == "rev-0002"
    state = current_state(read_marks(store.folder))
    assert (state["status"], state["rating"], state["comment"]) == ("flagged", "hard", "check the cortex")
    logic.rate(case_id, "reviewed")
    assert current_state(read_marks(store.folder))["rating"] == "hard"  # the last rating given still holds
    assert case_ratings(dataset, [case_id]) == {case_id: "hard"}
    with pytest.raises(ParameterError, match="review mark"):
        logic.rate(case_id, "done")
    with pytest.raises(ParameterError, match="rating"):
        logic.rate(case_id, "reviewed", rating="impossible")
    with pytest.raises(ParameterError, match="unknown refinement tool"):
        logic.propose(case_id, "transfer")


def test_the_queue_file_of_the_background_job_is_read_in_rank_order(dilated_dataset):
    import csv

    from LesionSegCurriculumLib import QUEUE_COLUMNS, ReviewQueueParameters, next_case, read_queue
    from lesionseg.errors import InputFileError

    dataset, case_id, _truth = dilated_dataset
    parameters = ReviewQueueParameters(dataset=str(dataset))
    assert parameters.validate() == (True, "")
    assert parameters.queue_csv == dataset / "derivatives" / "lesionseg" / "revisions" / "review_queue.csv"
    result = run_cli("review-queue", *parameters.arguments(), "--progress", "none")
    assert result.returncode == 0, result.stderr
    rows = read_queue(parameters.queue_csv)
    assert [row.rank for row in rows] == [1, 2] and {row.case_id for row in rows} == {c.case_id for c in discover(dataset)}
    assert {row.case_id: row.revision for row in rows}[case_id] == "rev-0001"
    written = {line["case_id"]: line for line in csv.DictReader(parameters.queue_csv.open(encoding="utf-8"))}
    for row in rows:  # the panel's "Est. 1-Dice" column is the queue's estimated_dice_loss, as written ...
        line = written[row.case_id]
        cell = row.cells[QUEUE_COLUMNS.index("Est. 1-Dice")]
        if line["intensity_misfit"] == line["model_disagreement"] == "":  # ... unless nothing judged the outline
            assert row.estimated_dice_loss is None and cell == "-"
        else:
            assert row.estimated_dice_loss == pytest.approx(float(line["estimated_dice_loss"]))
            assert cell == f"{row.estimated_dice_loss:.2f}"
    assert next_case(rows, None) == rows[0].case_id
    assert next_case(rows, rows[0].case_id) == rows[1].case_id
    assert next_case(rows, rows[1].case_id) == rows[0].case_id  # wraps round
    assert next_case(rows, rows[0].case_id, done=[rows[1].case_id]) is None
    assert not ReviewQueueParameters(dataset=str(dataset), bundle=str(dataset / "none.lsb")).validate()[0]
    (dataset / "other.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="not a review queue"):
        read_queue(dataset / "other.csv")


def test_the_editor_effect_refines_a_segment_as_the_tool_does_on_plain_images(slicer_scene, dilated_dataset):
    from LesionSegCurriculumLib.EffectTools import guess_modality, refine_segment
    from lesionseg.io import read_mask
    from lesionseg.mrml import mask_from_segmentation_node, segmentation_node_from_labelmap, volume_node_from_image

    slicer, scene, _logic = slicer_scene
    dataset, case_id, _truth = dilated_dataset
    case = discover(dataset)[0]
    image = case.read_channel("flair")
    rough = read_mask(RevisionStore.for_case(case, dataset=dataset).path("rev-0001"))
    volume = volume_node_from_image(scene, image, "flair")
    segmentation = segmentation_node_from_labelmap(scene, rough, volume)
    segment_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName("Stroke lesion")
    for tool in ("intensity", "cleanup"):
        result = refine_segment(segmentation, segment_id, volume, tool)
        expected = call_tool(tool, image, rough, modality=guess_modality(image))
        np.testing.assert_array_equal(_array(result.mask), _array(expected))
        # what the editor receives (a vtkOrientedImageData) lands on the same voxels when written to the segment
        target = segmentation_node_from_labelmap(scene, rough, volume, name=f"target {tool}")
        segment_id = target.GetSegmentation().GetSegmentIdBySegmentName("Stroke lesion")
        assert slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
            result.labelmap, target, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE)
        written = mask_from_segmentation_node(scene, target, reference_volume=volume)
        np.testing.assert_array_equal(_array(written), _array(expected))
    assert "removed" in result.message or "No change" in result.message
    ct = sitk.Image(8, 8, 8, sitk.sitkFloat32) - 1000.0
    assert guess_modality(ct) == "ct" and guess_modality(image) == "mri"
    empty = segmentation_node_from_labelmap(scene, rough * 0, volume, name="empty")
    with pytest.raises(ParameterError, match="is empty"):
        refine_segment(empty, empty.GetSegmentation().GetNthSegmentID(0), volume, "intensity")
    with pytest.raises(ParameterError, match="unknown refinement tool"):
        refine_segment(segmentation, segment_id, volume, "transfer")
    with pytest.raises(ParameterError, match="has no segment with ID"):
        refine_segment(segmentation, "no such ID", volume, "intensity")
