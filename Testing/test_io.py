"""lesionseg.io: formats, geometry, bad files, and Slicer's .seg.nrrd, checked against slicer-core."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from lesionseg.errors import InputFileError
from lesionseg.io import (
    Geometry,
    geometry_difference,
    read_geometry,
    read_image,
    read_mask,
    read_segment,
    write_image,
    write_seg_nrrd,
)


def oblique_image(shape_zyx=(6, 9, 11), dtype=np.int16, seed=0) -> sitk.Image:
    """A small volume with anisotropic spacing, an off-centre origin and a rotated direction."""
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.integers(-100, 1000, size=shape_zyx).astype(dtype))
    image.SetSpacing((0.7, 1.3, 4.0))
    image.SetOrigin((-12.5, 30.25, 7.0))
    rotation = sitk.VersorTransform((0.3, -0.2, 1.0), 0.4)  # axis, angle in radians
    image.SetDirection(rotation.GetMatrix())
    return image


@pytest.mark.parametrize("extension", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_round_trip_keeps_voxels_and_geometry(tmp_path, extension):
    image = oblique_image()
    path = write_image(image, tmp_path / f"volume{extension}")
    back = read_image(path)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    assert geometry_difference(back, image) is None
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-5)
    assert read_geometry(path).size == image.GetSize()


def test_dicom_series_folder_is_read_with_its_geometry(tmp_path):
    image = oblique_image(shape_zyx=(5, 8, 10))
    folder = tmp_path / "dicom"
    folder.mkdir()
    direction = np.array(image.GetDirection()).reshape(3, 3)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series_uid = "1.2.826.0.1.3680043.2.1125.1.123456"
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": "MR",
            "0020|000e": series_uid,
            "0020|000d": series_uid + ".0",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.6f}" for v in position),
            "0020|0037": "\\".join(f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1])),
            "0028|0030": f"{image.GetSpacing()[1]:.6f}\\{image.GetSpacing()[0]:.6f}",
            "0018|0050": f"{image.GetSpacing()[2]:.6f}",
            "0008|0018": f"{series_uid}.{k + 1}",
        }
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(slice_image)
    back = read_image(folder)
    assert back.GetSize() == image.GetSize()
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-4)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


# ---- bad files: one clear sentence naming the file ---------------------------------------------------

def _write_truncated(tmp_path: Path, name: str) -> Path:
    good = write_image(oblique_image(shape_zyx=(8, 16, 16)), tmp_path / ("good_" + name))
    data = good.read_bytes()
    bad = tmp_path / name
    bad.write_bytes(data[: len(data) * 2 // 3])
    return bad


def _file(folder: Path, name: str, content: bytes) -> Path:
    (folder / name).write_bytes(content)
    return folder / name


def _folder(parent: Path, name: str) -> Path:
    (parent / name).mkdir()
    return parent / name


@pytest.mark.parametrize("make_bad, phrase", [
    (lambda p: p / "missing.nii.gz", "does not exist"),
    (lambda p: _file(p, "zero.nii.gz", b""), "0 bytes"),
    (lambda p: _file(p, "text.nii.gz", b"not an image"), "not gzip"),
    (lambda p: _write_truncated(p, "cut.nii.gz"), "truncated"),
    (lambda p: _write_truncated(p, "cut.nii"), "truncated"),
    (lambda p: _folder(p, "empty"), "empty folder"),
    (lambda p: _file(p, "notes.txt", b"x"), "not a supported image"),
    (lambda p: _file(p, "fake.nii.gz", gzip.compress(b"plain text, no header")), "NIfTI header"),
])
def test_bad_files_are_refused_with_a_sentence_naming_them(tmp_path, make_bad, phrase):
    path = make_bad(tmp_path)
    with pytest.raises(InputFileError) as caught:
        read_image(path)
    message = str(caught.value)
    assert str(path) in message and phrase in message
    assert message.count("\n") == 0


def test_2d_and_4d_images_are_refused(tmp_path):
    flat = write_image(sitk.GetImageFromArray(np.zeros((8, 9), np.float32)), tmp_path / "flat.nii.gz")
    with pytest.raises(InputFileError, match="2D image"):
        read_image(flat)
    volumes = [sitk.GetImageFromArray(np.full((3, 4, 5), v, np.float32)) for v in range(2)]
    four = write_image(sitk.JoinSeries(volumes), tmp_path / "four.nii.gz")
    with pytest.raises(InputFileError, match="4D image"):
        read_image(four)
    with pytest.raises(InputFileError, match="4D image"):
        read_geometry(four)
    single = write_image(sitk.JoinSeries(volumes[:1]), tmp_path / "single.nii.gz")
    assert read_image(single).GetSize() == (5, 4, 3)  # a 4D file holding one volume is a 3D volume


def test_multi_label_mask_is_refused_listing_labels_unless_one_is_chosen(tmp_path):
    array = np.zeros((4, 5, 6), np.uint8)
    array[1, 1:3, 1:3] = 1
    array[2, 3, 4] = 2
    path = write_image(sitk.GetImageFromArray(array), tmp_path / "labels.nii.gz")
    with pytest.raises(InputFileError, match=r"labels found: 0, 1, 2"):
        read_mask(path)
    chosen = sitk.GetArrayFromImage(read_mask(path, label=2))
    assert chosen.sum() == 1 and chosen[2, 3, 4] == 1
    binary255 = write_image(sitk.GetImageFromArray((array > 0).astype(np.uint8) * 255), tmp_path / "b.nii.gz")
    assert sitk.GetArrayFromImage(read_mask(binary255)).max() == 1


# ---- Slicer: physical positions and segmentations, against slicer-core's own storage nodes ----------

def test_slicer_volume_storage_node_and_lesionseg_agree_on_every_voxel(tmp_path, slicer_scene):
    """Slicer's IJK-to-RAS and SimpleITK's index-to-LPS put every voxel at the same physical point."""
    slicer, scene, _ = slicer_scene
    image = oblique_image(shape_zyx=(7, 10, 12))
    path = write_image(image, tmp_path / "oblique.nii.gz")
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    ours = read_image(path)
    assert np.array_equal(slicer.util.arrayFromVolume(node), sitk.GetArrayFromImage(ours))  # both (k, j, i)
    import vtk

    ijk_to_ras = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(ijk_to_ras)
    matrix = np.array([[ijk_to_ras.GetElement(r, c) for c in range(4)] for r in range(4)])
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in ours.GetSize()), indexing="ij"), -1).reshape(-1, 3)
    ras = (matrix @ np.c_[grid, np.ones(len(grid))].T).T[:, :3]
    direction = np.array(ours.GetDirection()).reshape(3, 3)
    lps = np.array(ours.GetOrigin()) + (direction @ (grid * np.array(ours.GetSpacing())).T).T
    np.testing.assert_allclose(ras, lps * np.array([-1, -1, 1]), atol=1e-3)


def test_synthetic_case_is_placed_identically_by_slicer_and_lesionseg(synthetic_dataset, slicer_scene):
    slicer, scene, _ = slicer_scene
    flair = sorted(synthetic_dataset.rglob("*_FLAIR.nii.gz"))[0]
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(flair))
    assert storage.ReadData(node)
    ours = read_image(flair)
    assert np.array_equal(slicer.util.arrayFromVolume(node), sitk.GetArrayFromImage(ours))
    for ijk in [(0, 0, 0), tuple(n - 1 for n in ours.GetSize()), (5, 17, 3)]:
        ras = [0.0, 0.0, 0.0, 1.0]
        import vtk

        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        ras = matrix.MultiplyPoint((*ijk, 1.0))[:3]
        lps = ours.TransformIndexToPhysicalPoint(ijk)
        np.testing.assert_allclose(ras, (-lps[0], -lps[1], lps[2]), atol=1e-4)


def _import_segment(slicer, scene, logic, segmentation_node, array_kji, reference_node, name):
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    slicer.util.updateVolumeFromArray(labelmap, array_kji.astype(np.uint8))
    import vtk

    matrix = vtk.vtkMatrix4x4()
    reference_node.GetIJKToRASMatrix(matrix)
    labelmap.SetIJKToRASMatrix(matrix)
    assert logic.ImportLabelmapToSegmentationNode(labelmap, segmentation_node)
    segmentation = segmentation_node.GetSegmentation()
    segment_id = segmentation.GetNthSegmentID(segmentation.GetNumberOfSegments() - 1)
    segmentation.GetSegment(segment_id).SetName(name)


def test_layered_seg_nrrd_written_by_slicer_is_read_segment_by_segment(tmp_path, slicer_scene):
    slicer, scene, logic = slicer_scene
    image = oblique_image(shape_zyx=(8, 12, 14))
    reference_path = write_image(image, tmp_path / "reference.nrrd")
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(reference_path))
    assert storage.ReadData(volume)
    segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    shape = (8, 12, 14)
    lesion = np.zeros(shape, bool)
    lesion[2:5, 3:8, 4:9] = True
    edema = np.zeros(shape, bool)
    edema[3:6, 5:10, 6:12] = True  # overlaps the lesion: Slicer must store it in a second layer
    vessel = np.zeros(shape, bool)
    vessel[6:8, 1:3, 1:4] = True
    for array, name in ((lesion, "Stroke lesion"), (edema, "Edema"), (vessel, "Vessel")):
        _import_segment(slicer, scene, logic, segmentation_node, array, volume, name)
    assert segmentation_node.GetSegmentation().GetNumberOfLayers() >= 2
    seg_storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(seg_storage)
    segmentation_node.SetAndObserveStorageNodeID(seg_storage.GetID())
    seg_path = tmp_path / "three.seg.nrrd"
    seg_storage.SetFileName(str(seg_path))
    assert seg_storage.WriteData(segmentation_node)

    from lesionseg.io import read_seg_nrrd

    stored, segments = read_seg_nrrd(seg_path)
    assert stored.GetNumberOfComponentsPerPixel() == 2  # Slicer collapsed three segments into two layers
    assert sorted(s.layer for s in segments) == [0, 0, 1]
    reference = read_image(reference_path)
    for array, name in ((lesion, "Stroke lesion"), (edema, "Edema"), (vessel, "Vessel")):
        mask = read_segment(seg_path, name=name, reference=reference)
        assert geometry_difference(mask, reference) is None
        assert np.array_equal(sitk.GetArrayFromImage(mask).astype(bool), array), name
    default = sitk.GetArrayFromImage(read_mask(seg_path, reference=reference))
    assert np.array_equal(default.astype(bool), lesion)  # default: the segment named "Stroke lesion"
    with pytest.raises(InputFileError, match="no segment named 'Core'.*Stroke lesion, Edema, Vessel"):
        read_segment(seg_path, name="Core")


def test_seg_nrrd_we_write_opens_in_slicer_as_one_named_coloured_segment(tmp_path, slicer_scene):
    slicer, scene, _ = slicer_scene
    from lesionseg.labels import STROKE_LESION

    labelmap_array = np.zeros((6, 9, 11), np.uint8)
    labelmap_array[2:4, 3:7, 2:9] = 1
    labelmap = sitk.GetImageFromArray(labelmap_array)
    labelmap.CopyInformation(oblique_image())
    path = write_seg_nrrd(labelmap, tmp_path / "lesion.seg.nrrd")
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 1
    segment = segmentation.GetNthSegment(0)
    assert segment.GetName() == "Stroke lesion"
    np.testing.assert_allclose(segment.GetColor(), STROKE_LESION.color, atol=1e-4)
    import vtk

    tag = vtk.reference("")
    assert segment.GetTag("TerminologyEntry", tag)
    assert "SCT^55641003^Infarct" in str(tag)
    # the voxels Slicer holds equal ours: export through Slicer's logic onto the reference grid
    back = read_segment(path, reference=labelmap)
    assert np.array_equal(sitk.GetArrayFromImage(back), labelmap_array)
    assert Geometry.of(back) == Geometry.of(labelmap)


@pytest.mark.parametrize("extension", [".nii.gz", ".nii", ".nrrd"])
def test_nan_voxels_survive_reading(tmp_path, extension):
    """ITK's NIfTI reader turns NaN into 0; lesionseg puts them back so that preparation can refuse them."""
    values = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    values[1, 2, 3] = np.nan
    values[3, 0, 5] = np.inf
    path = write_image(sitk.GetImageFromArray(values), tmp_path / f"nan{extension}")
    back = sitk.GetArrayFromImage(read_image(path))
    assert np.isnan(back[1, 2, 3]) and not np.isfinite(back[3, 0, 5])
    assert np.count_nonzero(~np.isfinite(back)) == 2
    np.testing.assert_array_equal(back[np.isfinite(values)], values[np.isfinite(values)])


def test_box_holding_a_grid_by_hand_and_against_every_voxel_centre():
    from lesionseg.io.geometry import Geometry
    from scipy.spatial.transform import Rotation

    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    native = Geometry((100, 80, 40), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), identity)
    # x: the other grid spans 9 .. 49 mm (centres 10 .. 48 and half a voxel), so voxels 9 .. 49 and one more
    # each side; y: 19 .. 39 mm; z: 9 .. 19 mm, i.e. continuous indices 4.5 .. 9.5 of 2 mm slices
    inner = Geometry((20, 10, 5), (2.0, 2.0, 2.0), (10.0, 20.0, 10.0), identity)
    assert native.box_holding(inner) == ((8, 18, 3), (43, 23, 9))
    assert native.box_holding(inner, margin=0) == ((9, 19, 4), (41, 21, 7))
    far = Geometry((5, 5, 5), (1.0, 1.0, 1.0), (500.0, 0.0, 0.0), identity)
    assert 0 in native.box_holding(far)[1]
    sub = native.sub_grid((8, 18, 3), (43, 23, 9))
    assert sub.origin == (8.0, 18.0, 6.0) and sub.size == (43, 23, 9) and sub.spacing == native.spacing

    # a turned grid: every native voxel centre inside its extent lies in the box
    turn = Rotation.from_euler("xyz", [12, -9, 30], degrees=True).as_matrix()
    turned = Geometry((30, 24, 8), (1.3, 1.3, 3.0), (40.0, 35.0, 30.0), tuple(turn.ravel()))
    index, size = native.box_holding(turned, margin=0)
    k, j, i = np.meshgrid(*(np.arange(n) for n in native.size[::-1]), indexing="ij")
    points = np.stack([i, j, k * 2.0], -1).reshape(-1, 3)  # native: identity, origin 0, spacing (1, 1, 2)
    continuous = ((points - np.array(turned.origin)) @ turn) / np.array(turned.spacing)
    inside = np.all((continuous >= -0.5) & (continuous <= np.array(turned.size) - 0.5), axis=1)
    voxels = np.stack([i, j, k], -1).reshape(-1, 3)[inside]
    assert np.all(voxels.min(axis=0) >= index) and np.all(voxels.max(axis=0) <= np.add(index, size) - 1)
    # tight up to the corners' wedges: a turned box's corner may hold no voxel centre for a voxel or two
    assert np.all(np.subtract(voxels.min(axis=0), index) <= 3)
    assert np.all(np.subtract(np.add(index, size) - 1, voxels.max(axis=0)) <= 3)
