"""side="auto" reading each slice only in the orientations that can change the result
(lesionseg.infer.sides.read_both_sides): the result equals choose_orientation of two full passes, on
hand-made probability maps whose full passes are known, and the slices read are the ones documented."""

from __future__ import annotations

import numpy as np
import pytest

from lesionseg.infer.sides import AS_IS, MIRRORED, choose_orientation, read_both_sides

N, S, THRESHOLD = 30, 12, 0.5
EVEN = set(range(0, N, 2))


class Passes:
    """Fake passes: the rows of two known full passes, and the slices each was asked for."""

    def __init__(self, as_is: np.ndarray, mirrored: np.ndarray, variances=None) -> None:
        self.full, self.variances = (as_is, mirrored), variances
        self.asked: tuple[list[int], list[int]] = ([], [])

    def __call__(self, orientation: int, which: np.ndarray):
        self.asked[orientation].extend(int(i) for i in which)
        spread = None if self.variances is None else self.variances[orientation][which]
        return self.full[orientation][which], spread


def maps() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 0.3, (N, S, S)).astype(np.float32), rng.uniform(0, 0.3, (N, S, S)).astype(np.float32))


def lesion(stack: np.ndarray, slices: range, value: float = 0.9, size: int = 4) -> None:
    stack[slices.start:slices.stop, 2:2 + size, 2:2 + size] = value


def same_as_two_full_passes(as_is: np.ndarray, mirrored: np.ndarray, stride: int = 2) -> tuple[set, set]:
    """Run it; check the result against two full passes and that no slice is read twice; the slices read."""
    fake = Passes(as_is, mirrored)
    combined, use_mirrored, _, read = read_both_sides(N, fake, THRESHOLD, stride=stride)
    expected, expected_use = choose_orientation(as_is, mirrored, THRESHOLD)
    assert np.array_equal(combined, expected) and np.array_equal(use_mirrored, expected_use)
    for orientation in (AS_IS, MIRRORED):
        asked = fake.asked[orientation]
        assert len(asked) == len(set(asked)) and sorted(asked) == np.flatnonzero(read[orientation]).tolist()
    return set(fake.asked[AS_IS]), set(fake.asked[MIRRORED])


def test_stride_1_reads_every_slice_in_both_orientations():
    as_is, mirrored = maps()
    lesion(as_is, range(10, 14))
    assert same_as_two_full_passes(as_is, mirrored, stride=1) == (set(range(N)), set(range(N)))


@pytest.mark.parametrize("main", [AS_IS, MIRRORED])
def test_a_one_sided_lesion_reads_the_other_orientation_on_samples_and_where_the_lesion_is(main):
    as_is, mirrored = maps()
    lesion((as_is, mirrored)[main], range(11, 14))
    (mirrored, as_is)[main][12, 0, 0] = 0.7  # a false positive of the other pass: read, and dropped
    read = same_as_two_full_passes(as_is, mirrored)
    assert read[main] == set(range(N))
    assert read[1 - main] == EVEN | {11, 12, 13}


@pytest.mark.parametrize("start", [5, 6])  # the other orientation's lesion starts on an unsampled or a sampled slice
def test_a_lesion_only_the_other_orientation_shows_is_read_over_its_whole_extent(start):
    as_is, mirrored = maps()
    lesion(as_is, range(20, 24))  # the main lesion
    lesion(mirrored, range(start, start + 2))  # half its mass: both sides count, slice by slice
    read_as_is, read_mirrored = same_as_two_full_passes(as_is, mirrored)
    assert read_as_is == set(range(N)) and set(range(start, start + 2)) <= read_mirrored
    assert len(read_mirrored) < N


def test_no_lesion_anywhere_reads_one_orientation_and_half_the_other():
    as_is, mirrored = maps()
    assert same_as_two_full_passes(as_is, mirrored) == (set(range(N)), EVEN)


def test_the_documented_limit_a_one_slice_lesion_of_the_other_orientation_between_samples_is_not_read():
    as_is, mirrored = maps()
    lesion(as_is, range(3, 8))  # the main lesion, mass 5 x 16 x 0.9 = 72
    lesion(mirrored, range(21, 22), size=5)  # one slice, mass 22.5 (at least a quarter), odd: not sampled
    fake = Passes(as_is, mirrored)
    _, use_mirrored, _, read = read_both_sides(N, fake, THRESHOLD, stride=2)
    assert not read[MIRRORED, 21] and not use_mirrored.any()
    _, expected_use = choose_orientation(as_is, mirrored, THRESHOLD)
    assert expected_use[21]  # two full passes would have kept it


def test_the_kept_orientations_variance_comes_back_in_place():
    as_is, mirrored = maps()
    lesion(mirrored, range(10, 14))
    lesion(as_is, range(20, 23))  # both sides count: slices 10-13 mirrored, the rest as is
    rng = np.random.default_rng(1)
    spreads = tuple(rng.uniform(0, 0.01, (N, S, S)).astype(np.float32) for _ in range(2))
    _, use_mirrored, variance, _ = read_both_sides(N, Passes(as_is, mirrored, spreads), THRESHOLD)
    assert use_mirrored.tolist() == [10 <= i < 14 for i in range(N)]
    assert np.array_equal(variance, np.where(use_mirrored[:, None, None], spreads[1], spreads[0]))


def test_a_stride_below_1_is_refused():
    as_is, mirrored = maps()
    with pytest.raises(ValueError, match="stride must be at least 1"):
        read_both_sides(N, Passes(as_is, mirrored), THRESHOLD, stride=0)
