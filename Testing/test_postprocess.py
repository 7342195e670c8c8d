"""Post-processing of probabilities: the mask and the lesion table against SciPy on the whole grid."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lesionseg.infer.lesions import lesion_table
from lesionseg.infer.postprocess import foreground_box, keep_confirmed_lesions, lesion_mask


def probability_image(shape_zyx=(40, 90, 80), seed: int = 3) -> tuple[sitk.Image, sitk.Image]:
    """Smoothed noise as probabilities (blobs of all sizes, some with holes, one at the grid's edge) and a
    brain mask (an ellipsoid) on a 1 x 1 x 3 mm grid with an origin and a turned direction."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random(shape_zyx), (1.0, 2.5, 2.5))
    field = (field - field.min()) / (field.max() - field.min())
    field[:3], field[-3:], field[..., :6], field[..., -8:] = 0.0, 0.0, 0.0, 0.0  # candidates in a box of the grid
    field[5:30, :6, 10:60] = 0.9  # a slab at the grid's edge (y = 0) with two holes:
    field[10:20, 0:3, 20:30] = 0.0  # open to the border: stays background
    field[10:14, 2:4, 40:44] = 0.0  # enclosed: filled
    z, y, x = np.indices(shape_zyx)
    brain = (((z - 20) / 22.0) ** 2 + ((y - 40) / 50.0) ** 2 + ((x - 40) / 36.0) ** 2) <= 1.0
    images = []
    for array in (field.astype(np.float32), brain.astype(np.uint8)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((1.0, 1.0, 3.0))
        image.SetOrigin((-40.0, 12.5, 7.0))
        image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
        images.append(image)
    return images[0], images[1]


def test_mask_in_the_candidates_box_is_scipys_on_the_whole_grid():
    probabilities, brain = probability_image()
    threshold, minimum_mm3 = 0.6, 40.0  # 40 mm³ = 14 voxels of 3 mm³
    mask = lesion_mask(probabilities, threshold=threshold, min_lesion_mm3=minimum_mm3, brain=brain)
    ours = sitk.GetArrayFromImage(mask)
    # the same steps written with SciPy on the whole grid (holes: background not 6-connected to the border)
    expected = (sitk.GetArrayFromImage(probabilities) >= threshold) & (sitk.GetArrayFromImage(brain) > 0)
    expected = ndimage.binary_fill_holes(expected)
    labels, count = ndimage.label(expected, np.ones((3, 3, 3)))
    sizes = ndimage.sum(expected, labels, range(1, count + 1))
    expected = np.isin(labels, 1 + np.flatnonzero(sizes >= np.ceil(minimum_mm3 / 3.0)))
    assert count > 5 and 0 < expected.sum() < 0.2 * expected.size  # many blobs, small ones removed
    assert expected[12, 3, 42] and not expected[15, 1, 25]  # the enclosed hole filled, the open one not
    np.testing.assert_array_equal(ours > 0, expected)
    box = foreground_box(sitk.Cast(probabilities >= threshold, sitk.sitkUInt8))
    assert box is not None and np.prod(box[1]) < expected.size  # the box was smaller than the grid

    # the table's volumes and voxel counts are SciPy's per component, largest first
    rows = lesion_table(mask)
    labels, count = ndimage.label(expected, np.ones((3, 3, 3)))
    counts = sorted(np.bincount(labels.ravel())[1:], reverse=True)
    assert [row["voxels"] for row in rows] == counts
    np.testing.assert_allclose([row["volume_ml"] for row in rows], np.array(counts) * 3.0 / 1000.0)


def test_empty_candidates_give_an_empty_mask_and_table():
    probabilities, brain = probability_image()
    mask = lesion_mask(probabilities, threshold=1.5, brain=brain)
    assert mask.GetSize() == probabilities.GetSize() and sitk.GetArrayViewFromImage(mask).sum() == 0
    assert lesion_table(mask) == []


def test_a_lesion_is_kept_whole_when_the_second_map_reaches_the_level_in_one_voxel():
    probabilities, brain = probability_image()
    mask = lesion_mask(probabilities, threshold=0.6, min_lesion_mm3=40.0, brain=brain)
    labels, count = ndimage.label(sitk.GetArrayFromImage(mask) > 0, np.ones((3, 3, 3)))
    assert count >= 3
    # the confirming map (float32, as the probabilities): 0.3 everywhere, one voxel at 0.45 in lesion 1 (stored as
    # 0.4499999881), 0.44 everywhere in lesion 2
    confirming = np.full(labels.shape, 0.3, np.float32)
    confirming[tuple(np.argwhere(labels == 1)[0])] = 0.45
    confirming[labels == 2] = 0.44
    confirming_image = sitk.GetImageFromArray(confirming)
    confirming_image.CopyInformation(mask)
    kept = sitk.GetArrayFromImage(keep_confirmed_lesions(mask, confirming_image, 0.45))
    np.testing.assert_array_equal(kept > 0, labels == 1)  # lesion 1 whole; 2 (just below) and the rest gone
    assert keep_confirmed_lesions(mask, confirming_image, 0.3).GetOrigin() == mask.GetOrigin()
    everything = sitk.GetArrayFromImage(keep_confirmed_lesions(mask, confirming_image, 0.3))
    np.testing.assert_array_equal(everything > 0, labels > 0)
