"""The predicted disc's anti-aliased limb (:func:`iovolc.shading._shading`), compiled.

Stop 37: the numpy steps around the ray tracing of a disc canvas, each a few
whole-array operations per call (the canvas is drawn ~5 times per frame), in
one loop each, with the same values:

* :func:`box_positions`: the canvas box's pixel centres, as ``np.mgrid`` made
  them (integers, then float64 for the rays);
* :func:`limb_crossings`: the pixels whose 4-neighbours' hit differs from their
  own, as comparing with ``np.pad(hit, 1, mode="edge")`` shifted found them (a
  border pixel's missing neighbour is itself);
* :func:`subpixel_positions`: those pixels' k x k sub-pixel centres, as
  ``el[:, None] + dl.ravel()`` added the integer position and the offset
  (``meshgrid(off, off, indexing="ij")``: the line offset varies slowest);
* :func:`scatter_lit`: ``c = np.zeros(box); c[lit] = values`` then
  ``canvas[box] = c``, as one write of the lit pixels' values into the canvas
  (already 0 elsewhere);
* :func:`put_means`: ``canvas[box][edge] = sub.mean(axis=1)`` of the sub-pixel
  rays' values (0 where unlit): numpy sums a row of ``k * k`` contiguous values
  pairwise (``pairwise_sum`` in its loops: eight running sums, then ``((r0 +
  r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the rest in order; fewer
  than eight, one running sum from 0), adds that to the reduction's start 0.0
  (so a row of -0.0 sums to +0.0), then divides by the count.

The old forms are kept in ``tests/_speed_reference.py`` (``shading_numpy``);
``tests/test_supersample_exact.py`` compares them byte for byte.
"""

from __future__ import annotations

import numpy as np

from iovolc.jitcache import njit

#: numpy's pairwise summation block (``PW_BLOCKSIZE``): rows up to this long are
#: summed with the eight running sums alone
PW_BLOCKSIZE = 128


@njit(cache=True, nogil=True, error_model="numpy")
def box_positions(lo_l, hi_l, lo_s, hi_s, line, sample):
    """Rows ``lo_l..hi_l-1`` x columns ``lo_s..hi_s-1``, row-major, into flat ``line``
    and ``sample`` (float64)."""
    k = 0
    for i in range(lo_l, hi_l):
        for j in range(lo_s, hi_s):
            line[k] = i
            sample[k] = j
            k += 1


@njit(cache=True, nogil=True, error_model="numpy")
def limb_crossings(hit, edge):
    """``edge``: the pixels of ``hit`` (2-D bool) with a 4-neighbour of the other value
    (none beyond the border); returns how many."""
    n0, n1 = hit.shape
    n = 0
    for i in range(n0):
        for j in range(n1):
            h = hit[i, j]
            e = ((i > 0 and hit[i - 1, j] != h) or (i + 1 < n0 and hit[i + 1, j] != h)
                 or (j > 0 and hit[i, j - 1] != h) or (j + 1 < n1 and hit[i, j + 1] != h))
            edge[i, j] = e
            n += e
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def subpixel_positions(edge, lo_l, lo_s, off, line, sample):
    """For each ``edge`` pixel (row-major; canvas box origin ``lo_l``, ``lo_s``) its
    ``off.size ** 2`` sub-pixel centres, line offset slowest, into flat ``line`` and
    ``sample``."""
    n0, n1 = edge.shape
    m = off.size
    k = 0
    for i in range(n0):
        for j in range(n1):
            if not edge[i, j]:
                continue
            fi = float(lo_l + i)
            fj = float(lo_s + j)
            for a in range(m):
                for b in range(m):
                    line[k] = fi + off[a]
                    sample[k] = fj + off[b]
                    k += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _pairwise_sum(a):
    """numpy's sum of ``a`` (contiguous float64, ``a.size <= PW_BLOCKSIZE``), before its
    reduction's start is added."""
    n = a.size
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@njit(cache=True, nogil=True, error_model="numpy")
def _count(mask):
    """How many of a flat bool array are True."""
    n = 0
    for i in range(mask.size):
        n += mask[i]
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def scatter_lit(lit, vals, out):
    """``out[lit] = vals``: ``vals`` holds the lit pixels' values in row-major order;
    ``out`` (a view into a canvas, any strides) keeps its values elsewhere."""
    n0, n1 = lit.shape
    if _count(lit.ravel()) != vals.size:
        raise ValueError("scatter_lit: not one value per lit pixel")
    k = 0
    for i in range(n0):
        for j in range(n1):
            if lit[i, j]:
                out[i, j] = vals[k]
                k += 1


@njit(cache=True, nogil=True, error_model="numpy")
def put_means(lit, vals, edge, out):
    """``out[edge] = v.reshape(-1, m).mean(axis=1)`` where ``v`` holds the sub-pixel
    rays' values: ``vals`` (in order) where ``lit`` (flat, ``m`` rays per ``edge`` pixel,
    ``m <= PW_BLOCKSIZE``), 0 elsewhere."""
    n0, n1 = edge.shape
    n_edge = 0
    for i in range(n0):
        for j in range(n1):
            n_edge += edge[i, j]
    if n_edge == 0:
        return
    m = lit.size // n_edge
    if m * n_edge != lit.size or m > PW_BLOCKSIZE:
        raise ValueError("put_means: not rows of one length <= 128 per edge pixel")
    if _count(lit) != vals.size:
        raise ValueError("put_means: not one value per lit ray")
    row = np.empty(m)
    k = 0  # the next sub-pixel ray
    v = 0  # the next lit ray's value
    for i in range(n0):
        for j in range(n1):
            if not edge[i, j]:
                continue
            for q in range(m):
                if lit[k]:
                    row[q] = vals[v]
                    v += 1
                else:
                    row[q] = 0.0
                k += 1
            # numpy's reduction starts from the identity 0.0 (a sum of -0.0s is +0.0)
            out[i, j] = (0.0 + _pairwise_sum(row)) / m


def warm_up() -> None:
    """Compile (or load from the cache) every kernel: an image build step."""
    hit = np.zeros((3, 4), np.bool_)
    hit[1, 1] = True
    edge = np.empty_like(hit)
    n = limb_crossings(hit, edge)
    off = np.array([-0.25, 0.25])
    line, sample = np.empty(4 * n), np.empty(4 * n)
    subpixel_positions(edge, 0, 0, off, line, sample)
    lit = np.ones(4 * n, np.bool_)
    canvas = np.zeros((5, 6))
    # a window of a canvas, and a whole one when the disc's box spans the canvas's width
    for window in (canvas[1:4, 1:5], np.zeros((3, 4))):
        put_means(lit, np.ones(4 * n), edge, window)
        scatter_lit(hit, np.ones(1), window)
    box_positions(0, 3, 0, 4, np.empty(12), np.empty(12))
