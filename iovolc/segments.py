"""Per-group values of a table whose rows are grouped by an integer id, for every group at once.

Groups are ``0 .. n_groups - 1``; ``group`` gives each value's group. Each
function returns one value per group, and what it gives an empty group is
stated. They replace loops that called numpy on each group's few rows (stop
33, issue 11); each is written to give the bits numpy's per-group call gave:

* :func:`group_median` is ``np.median`` of the group's values: the middle
  value of the sorted values, or the two middle ones' sum halved (what
  ``np.median``'s mean of the two does), for finite values;
* :func:`group_reduce` is ``ufunc.reduce`` over the group's values in their
  order (use it for exact, order-free reductions: max, min, fmax, bitwise);
* :func:`first_where` is the position of the group's first true value.

Sums are not here: numpy's sum of a group (pairwise) and ``np.add.reduceat``
round differently, so sums stay per-group numpy calls.
"""

from __future__ import annotations

import numpy as np

__all__ = ["group_median", "group_reduce", "first_where", "group_starts"]


def group_starts(counts: np.ndarray) -> np.ndarray:
    """Start of each group in rows sorted by group, from the groups' sizes."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def group_reduce(ufunc: np.ufunc, values: np.ndarray, group: np.ndarray, n_groups: int, *,
                 empty) -> np.ndarray:
    """``ufunc.reduce`` of each group's values (in their order); ``empty`` for a group with none.

    ``group`` must be sorted (non-decreasing): the rows of one group together.
    """
    values = np.asarray(values)
    out = np.full(n_groups, empty, dtype=values.dtype)
    if values.size:
        present, first = np.unique(group, return_index=True)
        out[present] = ufunc.reduceat(values, first)
    return out


def group_median(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """``np.median`` of each group's finite ``values`` (any order); NaN for an empty group.

    Values must be finite (``np.median`` of a NaN is NaN; callers drop them).
    """
    values = np.asarray(values, dtype=float)
    group = np.asarray(group, dtype=np.int64)
    out = np.full(n_groups, np.nan)
    if not values.size:
        return out
    v = values[np.lexsort((values, group))]
    counts = np.bincount(group, minlength=n_groups)
    starts = group_starts(counts)
    has = counts > 0
    s, k = starts[has], counts[has]
    mid = v[s + k // 2]
    even = k % 2 == 0
    # np.median: the middle value (odd), or mean() of the two middle ones: their sum / 2
    mid[even] = (v[(s + k // 2 - 1)[even]] + mid[even]) / 2.0
    out[has] = mid
    return out


def first_where(flag: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Position (in the rows) of each group's first true ``flag``; ``len(flag)`` if none.

    Rows sorted by group, ``starts`` their groups' starts (every group non-empty).
    """
    pos = np.where(flag, np.arange(flag.size), flag.size)
    return np.minimum.reduceat(pos, starts) if flag.size else np.zeros(0, np.int64)
