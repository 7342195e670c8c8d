"""side="auto" reading the mirrored orientation only where needed (lesionseg.infer.sides.read_other_side):
the result equals choose_orientation of two full passes, on hand-made probability maps whose full mirrored
pass is known, and the slices read are the ones documented."""

from __future__ import annotations

import numpy as np
import pytest

from lesionseg.infer.sides import choose_orientation, read_other_side

N, S, THRESHOLD = 30, 12, 0.5


class Mirrored:
    """A fake mirrored pass: the rows of a known full pass, and the slices it was asked for."""

    def __init__(self, full: np.ndarray, variance: np.ndarray | None = None) -> None:
        self.full, self.variance, self.asked = full, variance, []

    def __call__(self, which: np.ndarray):
        self.asked.extend(int(i) for i in which)
        return self.full[which], None if self.variance is None else self.variance[which]


def maps() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 0.3, (N, S, S)).astype(np.float32), rng.uniform(0, 0.3, (N, S, S)).astype(np.float32))


def lesion(stack: np.ndarray, slices: range, value: float = 0.9, size: int = 4) -> None:
    stack[slices.start:slices.stop, 2:2 + size, 2:2 + size] = value


def check_same_as_two_full_passes(as_is: np.ndarray, mirrored: np.ndarray, stride: int = 2) -> Mirrored:
    fake = Mirrored(mirrored)
    combined, use_mirrored, _, read = read_other_side(as_is, fake, THRESHOLD, stride=stride)
    expected, expected_use = choose_orientation(as_is, mirrored, THRESHOLD)
    assert np.array_equal(combined, expected) and np.array_equal(use_mirrored, expected_use)
    assert sorted(fake.asked) == sorted(set(fake.asked)) == np.flatnonzero(read).tolist()  # each slice once
    return fake


def test_stride_1_reads_every_slice_once_like_two_full_passes():
    as_is, mirrored = maps()
    lesion(as_is, range(10, 14))
    fake = check_same_as_two_full_passes(as_is, mirrored, stride=1)
    assert sorted(fake.asked) == list(range(N))


def test_a_lesion_on_the_as_is_side_reads_its_slices_their_neighbours_and_every_second_slice():
    as_is, mirrored = maps()
    lesion(as_is, range(11, 14))
    mirrored[12, 0, 0] = 0.7  # a false positive of the mirrored pass where the lesion is: read, and dropped
    fake = check_same_as_two_full_passes(as_is, mirrored)
    assert sorted(fake.asked) == sorted(set(range(0, N, 2)) | set(range(10, 15)))


@pytest.mark.parametrize("start", [5, 6])  # the mirrored-only lesion starts on an unsampled or a sampled slice
def test_a_lesion_only_the_mirrored_pass_sees_is_read_over_its_whole_extent(start):
    as_is, mirrored = maps()
    lesion(mirrored, range(start, start + 2))
    fake = check_same_as_two_full_passes(as_is, mirrored)  # as-is finds nothing: every slice is read
    assert len(fake.asked) == N
    lesion(as_is, range(20, 24))  # now the as-is pass finds a larger lesion elsewhere: both sides count
    sampled = check_same_as_two_full_passes(as_is, mirrored)
    assert set(range(start, start + 2)) <= set(sampled.asked) and len(sampled.asked) < N


def test_lesions_in_both_hemispheres_are_read_slice_by_slice():
    as_is, mirrored = maps()
    lesion(as_is, range(3, 6))
    lesion(mirrored, range(20, 24))  # more than a quarter of the as-is lesion: both sides are read
    mirrored[4, 0, 0] = 0.8
    fake = check_same_as_two_full_passes(as_is, mirrored)
    assert set(range(19, 25)) <= set(fake.asked) and len(fake.asked) < N


def test_a_case_read_mirrored_everywhere_reads_every_slice():
    as_is, mirrored = maps()
    lesion(as_is, range(10, 11), value=0.55, size=2)
    lesion(mirrored, range(9, 16))  # the main side is the mirrored one: every slice is read in it
    fake = check_same_as_two_full_passes(as_is, mirrored)
    assert sorted(fake.asked) == list(range(N))


def test_the_documented_limit_a_one_slice_mirrored_lesion_between_samples_is_not_read():
    as_is, mirrored = maps()
    lesion(as_is, range(3, 8))  # the main lesion, mass 5 x 16 x 0.9 = 72
    lesion(mirrored, range(21, 22), size=5)  # one slice, mass 22.5 (at least a quarter): not sampled (odd)
    fake = Mirrored(mirrored)
    combined, use_mirrored, _, read = read_other_side(as_is, fake, THRESHOLD)
    assert not read[21] and not use_mirrored.any()
    expected, expected_use = choose_orientation(as_is, mirrored, THRESHOLD)
    assert expected_use[21]  # two full passes would have kept it


def test_variance_of_the_mirrored_slices_read_comes_back_in_place():
    as_is, mirrored = maps()
    lesion(mirrored, range(10, 14))
    spread = np.random.default_rng(1).uniform(0, 0.01, (N, S, S)).astype(np.float32)
    combined, use_mirrored, variance, read = read_other_side(as_is, Mirrored(mirrored, spread), THRESHOLD)
    assert variance is not None and use_mirrored.all() and read.all()
    assert np.array_equal(variance, spread)
