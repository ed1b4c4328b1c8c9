"""The sliding-window median of a rank image, compiled (numba): the inner loop of
:func:`iovolc.imaging.median_filter_nearest`.

The image's values are replaced by their ranks (unique integers ``0..N-1``), so
a window's median is its ``k``-th smallest rank, ``k = size**2 // 2``, the
value ``np.partition(window, k)[k]`` gives (what the numpy form did, a few
rows at a time). Here each output row slides its window along the columns:

* the ranks in the window are bits of an ``N``-bit set (``N / 64`` words);
* the current median ``m`` is a rank in the window, with ``k`` window ranks
  below it;
* a step removes the leaving column (``size`` ranks) and adds the entering
  one, counting ``lt``, the window ranks now below ``m``; then ``m`` jumps to
  the rank with exactly ``k`` below it: the ``lt - k``-th set bit below ``m``,
  or the ``k - lt``-th above it (one more when ``m`` itself left), found by
  counting set bits word by word (``popcount``), then picking the bit in its
  word (stop 38; it used to walk there one set bit at a time, a scan of the
  words per bit: on a strip of noise the window's 225 ranks are ~300 ranks
  apart, ~2.4 walks and ~10 words a step, each scan ending on a data-dependent
  branch).

A step costs ``2 size`` bit updates and one scan of the words between the old
median and the new, not a partial sort of ``size**2`` values. The result is the
same integer rank, so the same value (scipy's ``median_filter(mode="nearest")``'s
value, as tested in ``tests/test_speed_equivalence.py``; a zero may carry the other
sign than scipy's, as the partial sorts' did). Each row starts from a sort of its
first window. Cached by the package's source digest (:mod:`iovolc.jitcache`).
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core.extending import intrinsic
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

from iovolc.jitcache import njit

_ONE = np.uint64(1)


@intrinsic
def _popcount(typingctx, src):
    """The number of set bits of an integer (LLVM's ``ctpop``: one instruction where
    the host has one)."""
    if not isinstance(src, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [args[0].type])
        return builder.call(fn, [args[0]])

    return src(src), codegen


@njit(cache=True, nogil=True, inline="always")
def _nth_above(bits, p, d):
    """The ``d``-th smallest rank ``> p`` in the set, ``d >= 1`` (one exists: the
    caller's invariant; the scan stops at the set's end regardless, numba does not
    check bounds)."""
    q = p + 1
    w = q >> 6
    word = bits[w] & ~((_ONE << np.uint64(q & 63)) - _ONE)
    c = np.int64(_popcount(word))
    while c < d:
        d -= c
        w += 1
        if w == bits.size:
            raise RuntimeError("window_medians: too few ranks above the median")
        word = bits[w]
        c = np.int64(_popcount(word))
    for _ in range(d - 1):  # the word's d-th lowest set bit
        word &= word - _ONE
    return (w << 6) + int(trailing_zeros(word))


@njit(cache=True, nogil=True, inline="always")
def _nth_below(bits, p, d):
    """The ``d``-th largest rank ``< p`` in the set, ``d >= 1`` (one exists: the
    caller's invariant)."""
    w = p >> 6
    word = bits[w] & ((_ONE << np.uint64(p & 63)) - _ONE)
    c = np.int64(_popcount(word))
    while c < d:
        d -= c
        w -= 1
        if w < 0:
            raise RuntimeError("window_medians: too few ranks below the median")
        word = bits[w]
        c = np.int64(_popcount(word))
    for _ in range(d - 1):  # the word's d-th highest set bit
        word ^= _ONE << np.uint64(63 - int(leading_zeros(word)))
    return (w << 6) + 63 - int(leading_zeros(word))


@njit(cache=True, nogil=True)
def window_medians(rank, size, out):
    """``out[r, c]``: the median rank of ``rank[r:r + size, c:c + size]``.

    ``rank``: the edge-padded rank image, ``(n0 + size - 1, n1 + size - 1)``,
    unique non-negative integers below ``rank.size``; ``size`` odd. The window
    always holds ``size**2 > k`` ranks, so the rank a step jumps to exists; size 1
    is a copy.
    """
    n0, n1 = out.shape
    if size == 1:  # the median of one value: the pixel's rank
        for r in range(n0):
            for c in range(n1):
                out[r, c] = rank[r, c]
        return
    k = size * size // 2
    bits = np.zeros((rank.size + 63) // 64 + 1, np.uint64)
    first = np.empty(size * size, np.int64)
    for r in range(n0):
        q = 0
        for i in range(size):
            for j in range(size):
                x = np.int64(rank[r + i, j])
                bits[x >> 6] |= _ONE << np.uint64(x & 63)
                first[q] = x
                q += 1
        first.sort()
        m = first[k]
        out[r, 0] = m
        for c in range(1, n1):
            lost = 0
            lt = k  # the window's ranks below m, before the step
            for i in range(size):
                # counted without branches (a comparison is a coin toss here)
                x = np.int64(rank[r + i, c - 1])
                bits[x >> 6] &= ~(_ONE << np.uint64(x & 63))
                y = np.int64(rank[r + i, c + size - 1])
                bits[y >> 6] |= _ONE << np.uint64(y & 63)
                lt += np.int64(y < m) - np.int64(x < m)
                lost |= np.int64(x == m)
            # the median has k ranks below it: lt - k of the set's ranks lie in
            # [median, m), or k - lt in [m, median) (and m among them only if it stayed)
            if lt > k:
                m = _nth_below(bits, m, lt - k)
            elif lt < k or lost:
                m = _nth_above(bits, m, k - lt + lost)
            out[r, c] = m
        for i in range(size):
            for j in range(n1 - 1, n1 - 1 + size):
                x = np.int64(rank[r + i, j])
                bits[x >> 6] &= ~(_ONE << np.uint64(x & 63))


#: the median of nine values by 19 compare-exchanges (Paeth's network, as in Devillard's
#: "Fast median search", 1998): after them the fifth position holds the fifth smallest
_MED9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
         (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))
_MED9_A = np.array([a for a, _ in _MED9], dtype=np.int64)
_MED9_B = np.array([b for _, b in _MED9], dtype=np.int64)


@njit(cache=True, nogil=True)
def median3_nearest(x, out):
    """``scipy.ndimage.median_filter(x, size=3, mode="nearest")`` of a finite 2-D ``x``
    into ``out`` (stop 36): each 3 x 3 window (edge pixels repeated beyond the edges) put
    through the compare-exchange network :data:`_MED9`. A median is one of the window's
    values, so the same value as scipy's selection (a zero may carry the other sign, as
    the rank path's may). For the noise map's few hundred cells, where the rank path's
    sort and scipy's call cost more than the medians."""
    n0, n1 = x.shape
    a_idx, b_idx = _MED9_A, _MED9_B
    p = np.empty(9, x.dtype)
    for i in range(n0):
        r0, r2 = max(i - 1, 0), min(i + 1, n0 - 1)
        for j in range(n1):
            c0, c2 = max(j - 1, 0), min(j + 1, n1 - 1)
            p[0], p[1], p[2] = x[r0, c0], x[r0, j], x[r0, c2]
            p[3], p[4], p[5] = x[i, c0], x[i, j], x[i, c2]
            p[6], p[7], p[8] = x[r2, c0], x[r2, j], x[r2, c2]
            for q in range(19):
                a, b = a_idx[q], b_idx[q]
                if p[a] > p[b]:
                    p[a], p[b] = p[b], p[a]
            out[i, j] = p[4]


def warm_up() -> None:
    """Compile (or load from the cache) the loop for the rank types in use."""
    for dtype in (np.uint16, np.uint32):
        rank = np.arange(9, dtype=dtype).reshape(3, 3)
        window_medians(rank, 3, np.empty((1, 1), dtype))
    median3_nearest(np.zeros((2, 2)), np.empty((2, 2)))
