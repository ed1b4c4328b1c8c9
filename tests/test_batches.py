"""Task batches: whole groups, in order, bounded, and evenly filled (iovolc.pipeline.pack)."""

import pytest

from iovolc.pipeline import pack


def _sizes(batches):
    return [sum(len(g) for g in b) for b in batches]


@pytest.mark.parametrize("sizes, max_frames", [
    ([16] * 4, 48), ([1] * 282, 48), ([30, 30, 5], 48), ([100, 3], 48), ([7] * 9, 20),
    ([3, 50, 2, 2], 10), ([5], 48)])
def test_batches_keep_groups_whole_in_order_and_bounded(sizes, max_frames):
    groups = [[(i, k) for k in range(n)] for i, n in enumerate(sizes)]
    batches = pack(groups, max_frames=max_frames)
    assert [g for b in batches for g in b] == groups  # every group once, in order
    for b in batches:  # bounded, unless one group alone is larger
        assert sum(map(len, b)) <= max_frames or len(b) == 1


def test_batches_are_evenly_filled():
    # 64 frames at 48 per task: two workers get 32 each, not 48 and 16
    assert _sizes(pack([[0] * 16] * 4, max_frames=48)) == [32, 32]
    # a 282-frame pass at 48 per task: 6 batches (the fewest), none above 47
    assert _sizes(pack([[0]] * 282, max_frames=48)) == [47] * 6
    # extraction groups count their calibrated frames
    groups = [{"fits_keys": ["k"] * 10}] * 5
    assert _sizes([[g["fits_keys"] for g in b] for b in pack(groups, max_frames=40)]) == [20, 30]
    # the fewest batches, filled to within one group of each other
    # (groups of 7 at 20 per batch: at most two per batch, so 5 batches, not 4)
    for sizes, max_frames, fewest in (([3, 50, 2, 2], 60, 1), ([7] * 9, 20, 5),
                                      ([5] * 40, 48, 5)):
        got = _sizes(pack([[0] * n for n in sizes], max_frames=max_frames))
        assert len(got) == fewest and max(got) <= max_frames
        assert max(got) - min(got) <= max(sizes) or len(got) == 1
    assert pack([], max_frames=48) == []
