"""side="auto": the orientation each slice is read in (lesionseg.infer.sides), on hand-made probability maps."""

from __future__ import annotations

import numpy as np

from lesionseg.infer.sides import choose_orientation, lesion_mass


def _maps(n: int = 6, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, size, size), np.float32), np.zeros((n, size, size), np.float32)


def test_lesion_mass_counts_only_voxels_at_or_above_the_threshold():
    maps, _ = _maps(2)
    maps[0, :2, :2] = 0.5  # 4 voxels at the threshold
    maps[1, :3, :3] = 0.49  # below it
    assert np.allclose(lesion_mass(maps, 0.5), [2.0, 0.0])


def test_one_sided_case_drops_the_other_passes_false_positives_in_every_slice():
    as_is, mirrored = _maps()
    as_is[1:3, 4:9, 4:9] = 0.9  # the lesion: mass 2 x 25 x 0.9 = 45
    as_is[4, 0, 0] = 0.6
    mirrored[4, 10:12, 10:12] = 0.8  # false positives: mass 3.2 + 1.6, about a tenth of the lesion's
    mirrored[0, 0:2, 0] = 0.8
    combined, use_mirrored = choose_orientation(as_is, mirrored, 0.5)
    assert not use_mirrored.any()
    assert np.array_equal(combined, as_is)  # slice 4 too, although the mirrored pass has more there
    # the same case mirrored: the other pass is the main one
    swapped, use_swapped = choose_orientation(mirrored, as_is, 0.5)
    assert use_swapped.all() and np.array_equal(swapped, as_is)


def test_a_lesion_in_each_hemisphere_is_read_slice_by_slice():
    as_is, mirrored = _maps()
    as_is[1:3, 4:9, 4:9] = 0.9  # mass 45
    mirrored[4, 2:7, 2:7] = 0.9  # another lesion, mass 22.5: at least a quarter of the first
    mirrored[1, 0, 0] = 0.7  # a false positive beside the first lesion's slices
    combined, use_mirrored = choose_orientation(as_is, mirrored, 0.5)
    assert use_mirrored.tolist() == [False, False, False, False, True, False]
    assert np.array_equal(combined[4], mirrored[4]) and np.array_equal(combined[1], as_is[1])
    assert combined[1, 0, 0] == 0.0


def test_no_lesion_anywhere_keeps_the_slices_as_they_are():
    as_is, mirrored = _maps()
    as_is[:] = 0.1
    mirrored[:] = 0.2
    combined, use_mirrored = choose_orientation(as_is, mirrored, 0.5)
    assert not use_mirrored.any() and np.array_equal(combined, as_is)
