"""lesionseg.mrml against slicer-core's real MRML classes: geometry, segmentations, colour maps, tables, plots.

Truth comes from elsewhere than lesionseg.mrml: Slicer's own storage nodes (reading and writing files),
SimpleITK reading the same files, matplotlib's inferno colour map, and hand-counted histograms.
"""

from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")
vtk = pytest.importorskip("vtk")

from lesionseg.errors import GeometryError, ParameterError  # noqa: E402
from lesionseg.io import geometry_difference, read_segment, write_image  # noqa: E402
from lesionseg.labels import STROKE_LESION, SegmentLabel  # noqa: E402
from lesionseg.mrml import (  # noqa: E402
    curve_chart_node,
    histogram_chart_node,
    image_from_volume_node,
    mask_from_segmentation_node,
    probability_color_node,
    probability_volume_node,
    segment_names,
    segment_terminology,
    segmentation_node_from_labelmap,
    subject_hierarchy,
    table_node_from_columns,
    table_node_from_rows,
    volume_node_from_image,
)

REPO = Path(__file__).resolve().parents[1]


def oblique_image(shape_zyx=(7, 10, 12), dtype=np.int16, seed=0) -> sitk.Image:
    """Anisotropic spacing, an off-centre origin and a direction rotated about an oblique axis."""
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.integers(-100, 1000, size=shape_zyx).astype(dtype))
    image.SetSpacing((0.7, 1.3, 4.0))
    image.SetOrigin((-12.5, 30.25, 7.0))
    image.SetDirection(sitk.VersorTransform((0.3, -0.2, 1.0), 0.4).GetMatrix())
    return image


def lesion_labelmap(reference: sitk.Image) -> sitk.Image:
    """An ellipsoidal 0/1 lesion on the reference grid, off-centre so that flips would show."""
    z, y, x = np.indices(sitk.GetArrayViewFromImage(reference).shape)
    inside = ((z - 3) / 2.5) ** 2 + ((y - 3) / 2.2) ** 2 + ((x - 7) / 3.1) ** 2 <= 1.0
    labelmap = sitk.GetImageFromArray(inside.astype(np.uint8))
    labelmap.CopyInformation(reference)
    return labelmap


def ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def read_volume_with_slicer(scene, path: Path, node_class="vtkMRMLScalarVolumeNode"):
    node = scene.AddNewNodeByClass(node_class, path.name)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    return node


# ----------------------------------------------------------------------------- volumes
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_volume_node_image_node_round_trip_is_exact(tmp_path, slicer_scene, dtype):
    _, scene, _ = slicer_scene
    original = oblique_image(dtype=dtype)
    path = write_image(original, tmp_path / "oblique.nrrd")
    node = read_volume_with_slicer(scene, path)  # a node placed by Slicer's own reader

    image = image_from_volume_node(node)
    from_file = sitk.ReadImage(str(path))  # SimpleITK's own reading of the file Slicer read
    assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(from_file))
    assert sitk.GetArrayFromImage(image).dtype == np.dtype(dtype)
    np.testing.assert_allclose(image.GetSpacing(), from_file.GetSpacing(), rtol=1e-12)
    np.testing.assert_allclose(image.GetOrigin(), from_file.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(image.GetDirection(), from_file.GetDirection(), atol=1e-9)

    again = volume_node_from_image(scene, image, "again")
    assert np.array_equal(ijk_to_ras(again), ijk_to_ras(node))  # exact, not approximately equal
    assert again.GetSpacing() == node.GetSpacing() and again.GetOrigin() == node.GetOrigin()
    assert np.array_equal(slicer.util.arrayFromVolume(again), slicer.util.arrayFromVolume(node))
    assert again.GetDisplayNode() is not None


def test_image_node_image_round_trip_is_exact_and_slicer_writes_the_same_geometry(tmp_path, slicer_scene):
    _, scene, _ = slicer_scene
    image = oblique_image(dtype=np.float32)
    node = volume_node_from_image(scene, image, "FLAIR")
    back = image_from_volume_node(node)
    assert back.GetDirection() == image.GetDirection()
    assert back.GetOrigin() == image.GetOrigin() and back.GetSpacing() == image.GetSpacing()
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    # Slicer's writer (RAS -> file) and SimpleITK's reader (file -> LPS) agree with our conversion.
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "written_by_slicer.nrrd"))
    assert storage.WriteData(node)
    written = sitk.ReadImage(str(tmp_path / "written_by_slicer.nrrd"))
    np.testing.assert_allclose(written.GetDirection(), image.GetDirection(), atol=1e-9)
    np.testing.assert_allclose(written.GetOrigin(), image.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(written.GetSpacing(), image.GetSpacing(), rtol=1e-12)
    assert np.array_equal(sitk.GetArrayFromImage(written), sitk.GetArrayFromImage(image))


def test_labelmap_nodes_and_bad_images(slicer_scene):
    _, scene, _ = slicer_scene
    labelmap = lesion_labelmap(oblique_image())
    node = volume_node_from_image(scene, labelmap, "lesion", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    assert np.array_equal(sitk.GetArrayFromImage(image_from_volume_node(node)), sitk.GetArrayFromImage(labelmap))
    with pytest.raises(ParameterError, match="64-bit"):
        volume_node_from_image(scene, sitk.Cast(labelmap, sitk.sitkInt64), "wide")
    with pytest.raises(ParameterError, match="3D"):
        volume_node_from_image(scene, sitk.Image(4, 5, sitk.sitkUInt8), "flat")
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(ParameterError, match="'empty' holds no voxels"):
        image_from_volume_node(empty)


# ----------------------------------------------------------------------------- segmentations
def test_segmentation_from_labelmap_survives_seg_nrrd_in_a_fresh_scene(tmp_path, slicer_scene):
    _, scene, _ = slicer_scene
    volume_image = oblique_image()
    volume_path = write_image(volume_image, tmp_path / "flair.nrrd")
    volume = read_volume_with_slicer(scene, volume_path)
    labelmap = lesion_labelmap(volume_image)
    expected = sitk.GetArrayFromImage(labelmap)
    assert 20 < expected.sum() < expected.size // 4

    node = segmentation_node_from_labelmap(scene, labelmap, volume)
    assert node.GetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole()) == volume.GetID()
    assert node.AddDefaultStorageNode()
    storage = node.GetStorageNode()
    seg_path = tmp_path / "lesion.seg.nrrd"
    storage.SetFileName(str(seg_path))
    assert storage.WriteData(node)

    fresh = slicer.vtkMRMLScene()
    try:
        fresh_volume = read_volume_with_slicer(fresh, volume_path)
        read_back = fresh.AddNewNodeByClass("vtkMRMLSegmentationNode")
        fresh_storage = slicer.vtkMRMLSegmentationStorageNode()
        fresh.AddNode(fresh_storage)
        fresh_storage.SetFileName(str(seg_path))
        assert fresh_storage.ReadData(read_back)
        segmentation = read_back.GetSegmentation()
        assert segmentation.GetNumberOfSegments() == 1
        segment = segmentation.GetNthSegment(0)
        assert segment.GetName() == "Stroke lesion"
        np.testing.assert_allclose(segment.GetColor(), STROKE_LESION.color, atol=1e-4)
        assert segment_terminology(segment) == STROKE_LESION.terminology
        assert "SCT^55641003^Infarct" in segment_terminology(segment)
        # the same voxels, through Slicer's export onto the volume's grid ...
        mask = mask_from_segmentation_node(fresh, read_back, "Stroke lesion", reference_volume=fresh_volume)
        assert geometry_difference(mask, volume_image) is None
        assert np.array_equal(sitk.GetArrayFromImage(mask), expected)
        # ... onto the stored reference geometry when no volume is given ...
        whole = mask_from_segmentation_node(fresh, read_back)
        assert geometry_difference(whole, volume_image) is None
        assert np.array_equal(sitk.GetArrayFromImage(whole), expected)
        # ... and as SimpleITK reads the file, resampled by physical position onto the volume.
        assert np.array_equal(sitk.GetArrayFromImage(read_segment(seg_path, reference=volume_image)), expected)
    finally:
        fresh.Clear(1)


def test_segmentation_is_placed_under_the_volume_study(slicer_scene):
    _, scene, _ = slicer_scene
    image = oblique_image()
    volume = volume_node_from_image(scene, image, "FLAIR")
    hierarchy = subject_hierarchy(scene)
    patient = hierarchy.CreateSubjectItem(hierarchy.GetSceneItemID(), "Patient 1")
    study = hierarchy.CreateStudyItem(patient, "MRI 2024-01-01")
    hierarchy.CreateItem(study, volume)  # what the application does when a DICOM series is loaded
    node = segmentation_node_from_labelmap(scene, lesion_labelmap(image), volume)
    item = hierarchy.GetItemByDataNode(node)
    assert item and hierarchy.GetItemParent(item) == study
    probability = sitk.Cast(lesion_labelmap(image), sitk.sitkFloat32)
    map_node = probability_volume_node(scene, probability, reference_volume=volume)
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(map_node)) == study

    loose = volume_node_from_image(scene, image, "no study")  # no item: the result goes to the top level
    other = segmentation_node_from_labelmap(scene, lesion_labelmap(image), loose)
    assert hierarchy.GetItemParent(hierarchy.GetItemByDataNode(other)) == hierarchy.GetSceneItemID()


def test_writing_into_an_existing_segmentation_replaces_only_the_lesion(slicer_scene):
    _, scene, _ = slicer_scene
    image = oblique_image()
    volume = volume_node_from_image(scene, image, "FLAIR")
    labelmap = lesion_labelmap(image)
    node = segmentation_node_from_labelmap(scene, labelmap, volume)
    other = sitk.GetImageFromArray(np.zeros((7, 10, 12), np.uint8))
    other.CopyInformation(image)
    other[0:3, 0:2, 5] = 1  # SimpleITK index order (x, y, z)
    edema = SegmentLabel("Edema", 1, (0.2, 0.6, 0.9))
    segmentation_node_from_labelmap(scene, other, volume, label=edema, node=node)
    assert segment_names(node) == ["Stroke lesion", "Edema"]

    smaller = sitk.BinaryErode(labelmap, [1, 1, 0])
    assert 0 < sitk.GetArrayViewFromImage(smaller).sum() < sitk.GetArrayViewFromImage(labelmap).sum()
    segmentation_node_from_labelmap(scene, smaller, volume, node=node)
    assert segment_names(node) == ["Stroke lesion", "Edema"]
    lesion = mask_from_segmentation_node(scene, node, "Stroke lesion", reference_volume=volume)
    assert np.array_equal(sitk.GetArrayFromImage(lesion), sitk.GetArrayFromImage(smaller))
    kept = mask_from_segmentation_node(scene, node, "edema", reference_volume=volume)  # case-insensitive
    assert np.array_equal(sitk.GetArrayFromImage(kept), sitk.GetArrayFromImage(other))

    nodes_before = scene.GetNumberOfNodes()
    with pytest.raises(ParameterError, match="no segment named 'Core'; its segments are: Stroke lesion, Edema"):
        mask_from_segmentation_node(scene, node, "Core")
    mask_from_segmentation_node(scene, node)
    assert scene.GetNumberOfNodes() == nodes_before  # the temporary export nodes are gone


def test_empty_prediction_gives_an_empty_named_segment_and_other_grids_are_refused(slicer_scene):
    _, scene, _ = slicer_scene
    image = oblique_image()
    volume = volume_node_from_image(scene, image, "FLAIR")
    empty = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(image)
    node = segmentation_node_from_labelmap(scene, empty, volume)
    assert segment_names(node) == ["Stroke lesion"]
    assert sitk.GetArrayFromImage(mask_from_segmentation_node(scene, node, reference_volume=volume)).sum() == 0

    shifted = lesion_labelmap(image)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(GeometryError, match="not on the grid of the volume 'FLAIR'"):
        segmentation_node_from_labelmap(scene, shifted, volume)


# ----------------------------------------------------------------------------- probability maps
def test_probability_map_uses_an_inferno_colour_map_over_0_to_1(slicer_scene):
    _, scene, _ = slicer_scene
    colormaps = pytest.importorskip("matplotlib").colormaps
    image = oblique_image(dtype=np.float32)
    values = np.linspace(0.0, 1.0, sitk.GetArrayViewFromImage(image).size, dtype=np.float32)
    probability = sitk.GetImageFromArray(values.reshape(sitk.GetArrayViewFromImage(image).shape))
    probability.CopyInformation(image)
    node = probability_volume_node(scene, probability)
    assert np.array_equal(slicer.util.arrayFromVolume(node), sitk.GetArrayFromImage(probability))
    display = node.GetDisplayNode()
    assert not display.GetAutoWindowLevel()
    assert (display.GetWindow(), display.GetLevel()) == (1.0, 0.5)
    colour = display.GetColorNode()
    assert colour.GetName() == "LesionSeg probability"  # slicer-core has no "Inferno" colour file
    transfer = colour.GetColorTransferFunction()
    inferno = colormaps["inferno"]
    for value in np.linspace(0, 1, 9):
        np.testing.assert_allclose(transfer.GetColor(value), inferno(value)[:3], atol=0.01)
    for value in np.linspace(0, 1, 41):  # linear between nine control points: close to inferno everywhere
        np.testing.assert_allclose(transfer.GetColor(value), inferno(value)[:3], atol=0.08)
    # the node is made once per scene; a scene with Slicer's "Inferno" table uses that one instead
    assert probability_color_node(scene).GetID() == colour.GetID()
    inferno_node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "Inferno")
    assert probability_volume_node(scene, probability).GetDisplayNode().GetColorNodeID() == inferno_node.GetID()


# ----------------------------------------------------------------------------- tables
def test_table_nodes_hold_typed_columns_and_slicer_writes_the_numbers(tmp_path, slicer_scene):
    _, scene, _ = slicer_scene
    rows = [
        {"case_id": "sub-01", "slice_index": 12, "area_mm2": 153.125, "contrast_valid": True},
        {"case_id": "sub-01", "slice_index": 13, "area_mm2": 0.5, "contrast_fisher": 2.41, "contrast_valid": False},
        {"case_id": "sub-02", "slice_index": 7, "area_mm2": float("nan"), "contrast_fisher": np.float32(0.25)},
    ]
    node = table_node_from_rows(scene, rows, "Difficulty", units={"area_mm2": "mm2"})
    table = node.GetTable()
    assert [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())] == [
        "case_id", "slice_index", "area_mm2", "contrast_valid", "contrast_fisher"]
    assert table.GetNumberOfRows() == 3
    assert table.GetColumnByName("case_id").IsA("vtkStringArray")
    for name in ("slice_index", "area_mm2", "contrast_valid", "contrast_fisher"):
        assert table.GetColumnByName(name).IsA("vtkDoubleArray"), name
    column = lambda name: [table.GetColumnByName(name).GetValue(i) for i in range(3)]  # noqa: E731
    assert column("case_id") == ["sub-01", "sub-01", "sub-02"]
    assert column("slice_index") == [12.0, 13.0, 7.0]
    assert column("area_mm2")[:2] == [153.125, 0.5] and math.isnan(column("area_mm2")[2])
    assert column("contrast_valid")[:2] == [1.0, 0.0] and math.isnan(column("contrast_valid")[2])
    assert math.isnan(column("contrast_fisher")[0]) and column("contrast_fisher")[1:] == [2.41, 0.25]
    assert node.GetColumnUnitLabel("area_mm2") == "mm2"

    storage = slicer.vtkMRMLTableStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "difficulty.csv"))
    assert storage.WriteData(node)
    with open(tmp_path / "difficulty.csv", encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [row["case_id"] for row in written] == ["sub-01", "sub-01", "sub-02"]
    assert [float(row["area_mm2"]) for row in written[:2]] == [153.125, 0.5]
    assert float(written[1]["contrast_fisher"]) == 2.41


def test_table_columns_of_different_lengths_are_refused_and_a_node_can_be_refilled(slicer_scene):
    _, scene, _ = slicer_scene
    with pytest.raises(ParameterError, match="different lengths: fold 3, dice 2"):
        table_node_from_columns(scene, {"fold": [0, 1, 2], "dice": [0.7, 0.8]}, "Folds")
    node = table_node_from_columns(scene, {"fold": [0, 1], "dice": [0.7, 0.8]}, "Folds")
    table_node_from_columns(scene, {"fold": [0, 1, 2], "hd95_mm": [4.0, 5.5, 3.25]}, "Folds", node=node)
    table = node.GetTable()
    assert table.GetNumberOfColumns() == 2 and table.GetColumnByName("dice") is None
    assert [table.GetColumnByName("hd95_mm").GetValue(i) for i in range(3)] == [4.0, 5.5, 3.25]


# ----------------------------------------------------------------------------- plots
def test_curve_chart_holds_each_curve(slicer_scene):
    _, scene, _ = slicer_scene
    curves = {"fold 0": ([0, 1, 2, 3], [0.9, 0.6, 0.45, 0.4]), "fold 1": ([0, 1], [0.95, 0.7])}
    chart = curve_chart_node(scene, curves, title="Training loss", x_label="epoch", y_label="loss")
    assert (chart.GetTitle(), chart.GetXAxisTitle(), chart.GetYAxisTitle()) == ("Training loss", "epoch", "loss")
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    for index, (name, (x, y)) in enumerate(curves.items()):
        series = chart.GetNthPlotSeriesNode(index)
        assert series.GetName() == name
        assert series.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter
        table = series.GetTableNode().GetTable()
        x_column = table.GetColumnByName(series.GetXColumnName())
        y_column = table.GetColumnByName(series.GetYColumnName())
        assert [x_column.GetValue(i) for i in range(table.GetNumberOfRows())] == x
        assert [y_column.GetValue(i) for i in range(table.GetNumberOfRows())] == y
    with pytest.raises(ParameterError, match="3 x values and 2 y values"):
        curve_chart_node(scene, {"bad": ([0, 1, 2], [1, 2])}, title="Bad", x_label="x", y_label="y")


def test_histogram_chart_counts_by_hand(slicer_scene):
    _, scene, _ = slicer_scene
    samples = {"G1": [0.0, 0.1, 0.2, 0.9, 1.0], "G2": [0.6, 0.7, float("nan")]}
    chart = histogram_chart_node(scene, samples, title="Contrast", x_label="Fisher contrast", bins=2)
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    expected = {"G1": [3, 2], "G2": [0, 2]}  # bins [0, 0.5) and [0.5, 1]
    for index, name in enumerate(samples):
        series = chart.GetNthPlotSeriesNode(index)
        assert series.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeBar
        table = series.GetTableNode().GetTable()
        counts = table.GetColumnByName(series.GetYColumnName())
        assert [counts.GetValue(i) for i in range(table.GetNumberOfRows())] == expected[name]
        centres = table.GetColumnByName(series.GetXColumnName())
        assert [centres.GetValue(i) for i in range(2)] == [0.25, 0.75]
        labels = table.GetColumnByName(series.GetLabelColumnName())
        assert [labels.GetValue(i) for i in range(2)] == ["0 - 0.5", "0.5 - 1"]


# ----------------------------------------------------------------------------- the one door to Slicer
def test_only_lesionseg_mrml_imports_slicer():
    offenders = []
    for path in (REPO / "lesionseg").rglob("*.py"):
        if "mrml" in path.relative_to(REPO / "lesionseg").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] in ("slicer", "qt", "ctk") for name in names):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_refilling_a_chart_replaces_its_series_and_tables(slicer_scene):
    from lesionseg.mrml import curve_chart_node

    slicer, scene, _ = slicer_scene
    chart = curve_chart_node(scene, {"fold 0": ([0, 1, 2], [1.0, 0.8, 0.7])}, title="loss", x_label="epoch",
                             y_label="loss")
    before = scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode"), scene.GetNumberOfNodesByClass("vtkMRMLTableNode")
    curve_chart_node(scene, {"fold 0": ([0, 1, 2, 3], [1.0, 0.8, 0.7, 0.6])}, title="loss", x_label="epoch",
                     y_label="loss", chart=chart)
    after = scene.GetNumberOfNodesByClass("vtkMRMLPlotSeriesNode"), scene.GetNumberOfNodesByClass("vtkMRMLTableNode")
    assert before == after == (1, 1)
    assert chart.GetNumberOfPlotSeriesNodes() == 1
    table = chart.GetNthPlotSeriesNode(0).GetTableNode()
    assert table.GetNumberOfRows() == 4 and table.GetTable().GetColumn(1).GetValue(3) == 0.6
