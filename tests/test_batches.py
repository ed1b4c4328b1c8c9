"""Task batches: whole groups, in order, bounded, evenly filled, by cost (iovolc.batches)."""

import pytest

from iovolc.batches import OUT_OF_REACH_COST, calibration_costs, pack


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


def _pack_by_frames(groups, max_frames):
    """The rule of ``pack`` written out for integer frame counts: n batches from
    ceil(total / max), each group in the batch its middle frame falls in."""
    sizes = [len(g) for g in groups]
    total = sum(sizes)
    n = max(1, -(-total // max_frames))
    while True:
        out, start = [[] for _ in range(n)], 0
        for g, s in zip(groups, sizes, strict=True):
            out[min(n - 1, (2 * start + s) * n // (2 * total))].append(g)
            start += s
        if n >= len(groups) or all(sum(map(len, b)) <= max_frames or len(b) == 1
                                   for b in out):
            return [b for b in out if b]
        n += 1


@pytest.mark.parametrize("seed", range(20))
def test_costs_equal_to_frame_counts_give_the_frame_batches(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    groups = [[0] * int(n) for n in rng.integers(1, 40, rng.integers(1, 30))]
    max_frames = int(rng.integers(5, 100))
    want = _pack_by_frames(groups, max_frames)
    assert pack(groups, max_frames=max_frames) == want
    assert pack(groups, max_frames=max_frames, costs=[len(g) for g in groups]) == want


def test_sequences_io_cannot_reach_pack_by_their_cost():

    # a mostly-Jupiter perijove: 28 sequences of 10 frames out of reach, 2 of 6 in reach
    groups = [[0] * 10] * 14 + [[1] * 6] * 2 + [[0] * 10] * 14
    reach = [False] * 14 + [True] * 2 + [False] * 14
    costs = calibration_costs(groups, reach)
    assert costs == [10 * OUT_OF_REACH_COST] * 14 + [6.0, 6.0] + [10 * OUT_OF_REACH_COST] * 14
    assert len(pack(groups, max_frames=48)) >= 7  # by frames: 292 frames, 7 tasks or more
    one = pack(groups, max_frames=48, costs=costs)  # by cost: 26 frames' worth, 1 task
    assert one == [groups]
    # unknown reach (None) counts in full, as before
    assert pack(groups, max_frames=48, costs=calibration_costs(groups, [None] * 30)) == \
        pack(groups, max_frames=48)
    # bounded by cost: 40 sequences of 48 frames out of reach are 96 frames' worth
    many = [[0] * 48] * 40
    got = pack(many, max_frames=48, costs=calibration_costs(many, [False] * 40))
    assert [len(b) for b in got] == [20, 20]
    with pytest.raises(ValueError, match="reach answers"):
        calibration_costs(groups, reach[:-1])
    with pytest.raises(ValueError, match="finite costs"):
        pack(groups, max_frames=48, costs=[float("nan")] * 30)


def test_chunks_are_even_ordered_and_bounded():
    from iovolc.batches import chunks

    assert [len(c) for c in chunks(range(1000), max_items=400)] == [334, 333, 333]
    assert [len(c) for c in chunks(range(290), max_items=400)] == [290]
    assert [len(c) for c in chunks(range(800), max_items=400)] == [400, 400]
    assert chunks([], max_items=400) == []
    for n, m in ((1, 1), (7, 3), (401, 400), (99, 10)):
        got = chunks(list(range(n)), max_items=m)
        assert [x for c in got for x in c] == list(range(n))
        assert max(map(len, got)) <= m and max(map(len, got)) - min(map(len, got)) <= 1
        assert len(got) == -(-n // m)
