"""Task batches: whole groups in few, evenly filled batches, by their cost in frames.

Policy for the flows (what goes in one task), kept here with the numbers it
rests on; it never changes a result, only how work is grouped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: calibration cost of a frame of a sequence Io cannot reach, in frames Io can reach:
#: such a frame gets a summary row only (no calibration, no limb fit). Measured in the
#: workers of two mission backfills on the same 2 cores (``bench/mission_backfill.py``,
#: 4.1 % and 10 % of the frames on Io): ~6.6 ms against ~146 ms of ``calibrate_groups``
#: work per frame (docs/decisions.md, "Batches by cost")
OUT_OF_REACH_COST = 0.05


def calibration_costs(groups: Sequence[Sequence], reach: Sequence[bool | None]) -> list[float]:
    """Each group's calibration cost in frames: its frame count, times
    :data:`OUT_OF_REACH_COST` when Io cannot reach it (``reach`` False); a group whose
    reach is unknown (None) counts in full."""
    if len(groups) != len(reach):
        raise ValueError(f"{len(groups)} groups but {len(reach)} reach answers")
    return [len(g) * (OUT_OF_REACH_COST if r is False else 1.0)
            for g, r in zip(groups, reach, strict=True)]


def chunks(items: Sequence, *, max_items: int) -> list[list]:
    """``items`` in order, in the fewest runs of at most ``max_items``, as even as can be
    (1,000 products at 400 per task: 334 + 333 + 333, not 400 + 400 + 200)."""
    items = list(items)
    if not items:
        return []
    n = math.ceil(len(items) / max(1, max_items))
    q, r = divmod(len(items), n)
    out, start = [], 0
    for k in range(n):
        size = q + (1 if k < r else 0)
        out.append(items[start:start + size])
        start += size
    return out


def _frames(group) -> int:
    if isinstance(group, list):
        return len(group)
    return len(group.get("fits_keys", [])) or 1


def pack(groups: list, *, max_frames: int, costs: Sequence[float] | None = None
         ) -> list[list]:
    """Whole groups, in order, in few, evenly filled batches of at most ``max_frames``
    frames (a group larger than that is a batch of its own).

    ``costs``: each group's cost in frames (default: its frames; an extraction
    group, a dict, counts its calibrated frames, at least 1). With ``n``
    batches, a group goes to the batch its middle falls in when the total
    cost is cut into ``n`` equal runs: 64 frames at 48 per task are 32 + 32,
    not 48 + 16 (which would leave a second worker idle for two thirds of the
    stage). ``n`` starts at ``ceil(total / max_frames)`` and grows until no
    batch of several groups is over the bound.
    """
    if not groups:
        return []
    sizes = [float(c) for c in costs] if costs is not None else \
        [float(_frames(g)) for g in groups]
    if len(sizes) != len(groups) or any(not math.isfinite(s) or s < 0 for s in sizes):
        raise ValueError(f"pack: {len(groups)} groups need as many finite costs >= 0")
    total = sum(sizes)
    bound = max(1, max_frames)
    n = max(1, math.ceil(total / bound - 1e-9))
    while True:
        batches: list[list] = [[] for _ in range(n)]
        counts = [0.0] * n
        start = 0.0
        for g, size in zip(groups, sizes, strict=True):
            k = min(n - 1, int((start + size / 2) * n // total)) if total > 0 else 0
            batches[k].append(g)
            counts[k] += size
            start += size
        if n >= len(groups) or all(c <= bound + 1e-9 or len(b) == 1
                                   for b, c in zip(batches, counts, strict=True)):
            return [b for b in batches if b]
        n += 1
