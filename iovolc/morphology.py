"""Compiled grey morphology (numba): h-maxima by grey reconstruction, and the
compact-feature top-hat of line openings.

It replaces ``skimage.morphology.h_maxima``, whose per-call overhead, not its
arithmetic, was the cost (a frame makes ~30 small calls, ~0.3 ms each), and
gives its answer bit for bit: the reconstruction only compares and copies
values, and it is unique whatever order its pixels are visited in; the one
subtraction, the shifted seed, is written as scikit-image writes it.
Checked against ``skimage.morphology.h_maxima`` in
``tests/test_speed_kernels.py``.

The top-hat (:func:`compact_tophat`, stop 21) is ``min over the 4 directions of
x - opening(x)`` with 9-pixel line openings, edges extended, as the numpy
form it replaced (``tests/_speed_reference.py``) computed it from shifted
views: each running extreme folds in the same offsets in the same order with
numpy's choice between two equal values (``np.minimum(a, b)`` is ``a if a < b
else b`` on finite values), so the result is the same bits for finite input
(``hot_pixels`` fills every non-finite pixel first). Each row is folded with
plain slices, so the index is never negative and LLVM vectorises the loop (a
shifted index ``j + k`` made numba emit its negative-index wraparound, which
kept the loops scalar); and no per-direction image is allocated. Checked
against the numpy form in ``tests/test_speed_equivalence.py``. ``hot_pixels``
needs only the top-hat's threshold (:func:`compact_hot`, stop 28): the first
direction's opening over the image, the others' at the few pixels still above
the threshold; the same mask (``tests/test_speed_kernels.py``). Since then
nothing in the pipeline calls :func:`compact_tophat`: it is the reference the
mask is tested against (and the bench's stop-21 pair), and no build compiles it.

The hot-pixel inputs (:func:`fill_and_highpass`, stop 22) are what
``imaging.hot_pixels`` computed with numpy around the top-hat: the image with
every unusable pixel set to the median of the usable ones (in the image's
dtype, as ``np.where`` with a Python float gives it), the 4-neighbour
high-pass ``x - 0.25 (((up + down) + left) + right)`` with ``np.roll``'s
wrap-around, and ``|high-pass|`` at the valid pixels. Only copies, compares
and the same additions in the same order: the same bits (checked against the
numpy form in ``tests/test_speed_equivalence.py``).

The radiation-hit finder's ring excess (:func:`ring_excess`, stop 23) is
``x - (box5 - box3) / 16`` from the summed-area table of the reflect-padded
image, as the numpy form (``tests/_speed_reference.py``) built it: the
columns' running sums, then the rows', each a sequential sum as numpy's
``cumsum`` is (the first value copied, not added to zero), and each box
``((A - B) - C) + D``; its 3x3 dilation of the few pixels found
(:func:`dilate_square3`) sets the neighbours of each, as
``ndimage.binary_dilation`` with a 3x3 square and a False border does. The
same bits and the same mask (``tests/test_speed_exact.py``). Its neighbourhoods
(:func:`gather_reflect`: the values around given pixels, the image mirrored at its
edges as ``np.pad(mode="reflect")`` mirrors it; :func:`window_max`: the largest value
around given pixels, ``-inf`` beyond the image as the ``-inf`` padding gave, NaN if one
is NaN as ``np.max`` gives) are copies and comparisons, read from the image itself
without padding it.

The hit finder's frame offsets (stop 26) use three more, each the same bits as the
numpy form it replaced (``tests/_speed_reference.py``, checked in
``tests/test_speed_kernels.py``): the 2x2 grey opening (:func:`open2x2`), the 2x2
binning in numpy's order of its mean (:func:`bin2x2_mean`) and the 4-neighbour
high-pass from the reflect-padded image (:func:`mean4_highpass`).

Nothing here calls another module's kernel (numba's cache notices edits to a
kernel's own file only; see :mod:`iovolc.compiled`). No fast-math; cached
by the package's source digest (:mod:`iovolc.jitcache`).
"""

from __future__ import annotations

import math

import numpy as np

from iovolc.jitcache import njit

#: numpy's float64 resolution (``np.finfo(np.float64).resolution``), as scikit-image uses it
_RESOLUTION = float(np.finfo(np.float64).resolution)


@njit(cache=True, nogil=True)
def _reconstruct(seed, mask, rec):
    """Grey reconstruction by dilation of ``seed`` under ``mask`` (8-connected), into
    ``rec`` (Vincent 1993: a raster and an anti-raster scan, then a FIFO queue).
    ``seed <= mask`` everywhere."""
    n0, n1 = seed.shape
    for i in range(n0):
        for j in range(n1):
            rec[i, j] = seed[i, j]
    for i in range(n0):  # raster: the neighbours already visited
        for j in range(n1):
            m = rec[i, j]
            if j > 0 and rec[i, j - 1] > m:
                m = rec[i, j - 1]
            if i > 0:
                for jj in range(max(j - 1, 0), min(j + 2, n1)):
                    if rec[i - 1, jj] > m:
                        m = rec[i - 1, jj]
            rec[i, j] = m if m < mask[i, j] else mask[i, j]
    # a ring of pixels waiting to pass their value on, each in it at most once at a time
    # (raised while waiting, it passes on its latest value)
    size = n0 * n1
    ring = np.empty(size, np.int64)
    waiting = np.zeros(size, np.bool_)
    head, count = 0, 0
    for i in range(n0 - 1, -1, -1):  # anti-raster, queueing what can still rise
        for j in range(n1 - 1, -1, -1):
            m = rec[i, j]
            if j < n1 - 1 and rec[i, j + 1] > m:
                m = rec[i, j + 1]
            if i < n0 - 1:
                for jj in range(max(j - 1, 0), min(j + 2, n1)):
                    if rec[i + 1, jj] > m:
                        m = rec[i + 1, jj]
            v = m if m < mask[i, j] else mask[i, j]
            rec[i, j] = v
            rises = j < n1 - 1 and rec[i, j + 1] < v and rec[i, j + 1] < mask[i, j + 1]
            if i < n0 - 1:
                for jj in range(max(j - 1, 0), min(j + 2, n1)):
                    if rec[i + 1, jj] < v and rec[i + 1, jj] < mask[i + 1, jj]:
                        rises = True
            if rises:
                ring[(head + count) % size] = i * n1 + j
                waiting[i * n1 + j] = True
                count += 1
    while count:
        p = ring[head]
        head = (head + 1) % size
        count -= 1
        waiting[p] = False
        i, j = p // n1, p % n1
        v = rec[i, j]
        for ii in range(max(i - 1, 0), min(i + 2, n0)):
            for jj in range(max(j - 1, 0), min(j + 2, n1)):
                if rec[ii, jj] < v and rec[ii, jj] != mask[ii, jj]:
                    rec[ii, jj] = v if v < mask[ii, jj] else mask[ii, jj]
                    q = ii * n1 + jj
                    if not waiting[q]:
                        ring[(head + count) % size] = q
                        waiting[q] = True
                        count += 1


@njit(cache=True, nogil=True)
def h_maxima(image, h):
    """``skimage.morphology.h_maxima(image, h) > 0`` for a finite float64 image and
    h > 0, default (3x3) footprint (scikit-image 0.26 crashes on NaN or inf): the regional maxima at least ``h`` above their
    surroundings. As scikit-image: all False when ``h`` exceeds the image's range;
    the seed is ``image - h - 2 * resolution * |image|``."""
    n0, n1 = image.shape
    out = np.zeros((n0, n1), np.bool_)
    if n0 == 0 or n1 == 0:
        return out
    lo, hi = image[0, 0], image[0, 0]
    for i in range(n0):
        for j in range(n1):
            v = image[i, j]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
    if h > hi - lo:
        return out
    seed = np.empty((n0, n1))
    r2 = 2 * _RESOLUTION
    for i in range(n0):
        for j in range(n1):
            seed[i, j] = image[i, j] - h - r2 * abs(image[i, j])
    rec = np.empty((n0, n1))
    _reconstruct(seed, image, rec)
    for i in range(n0):
        for j in range(n1):
            out[i, j] = image[i, j] - rec[i, j] >= h
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _line_extreme(src, dl, ds, h, take_max, out):
    """Running max (``take_max``) or min of ``src`` over ``2 h + 1`` pixels along
    (``dl``, ``ds``), edges extended, into ``out``: the centre, then offsets
    ``-h..h``, each kept value numpy's choice (the new one on a tie)."""
    n0, n1 = src.shape
    for i in range(n0):
        o = out[i]
        row = src[i]
        for j in range(n1):  # o[:] = row, as a loop: no slice assignment's shape check,
            o[j] = row[j]  # whose error message costs ~1.6 s of compiling (stop 41)
        for k in range(-h, h + 1):
            if k == 0:
                continue
            s = src[min(max(i + k * dl, 0), n0 - 1)]
            off = k * ds
            lo = min(max(-off, 0), n1)  # the columns whose j + off lies inside the row
            hi = max(min(n1 - off, n1), lo)
            for j in range(lo):  # edge extension on the left ...
                a, v = o[j], s[min(max(j + off, 0), n1 - 1)]
                o[j] = (a if a > v else v) if take_max else (a if a < v else v)
            for j in range(hi, n1):  # ... and on the right
                a, v = o[j], s[min(max(j + off, 0), n1 - 1)]
                o[j] = (a if a > v else v) if take_max else (a if a < v else v)
            ov = o[lo:hi]  # the interior, as slices: vectorised
            sv = s[lo + off:hi + off]
            if take_max:
                for t in range(hi - lo):
                    a, v = ov[t], sv[t]
                    ov[t] = a if a > v else v
            else:
                for t in range(hi - lo):
                    a, v = ov[t], sv[t]
                    ov[t] = a if a < v else v


@njit(cache=True, nogil=True, error_model="numpy")
def compact_tophat(x, directions, length):
    """``min_d (x - opening_d(x))`` over the line directions ``directions`` (d, 2), each
    opening a running min then max over ``length`` pixels, edges extended; the min in
    the directions' order with numpy's choice on ties. ``x`` finite."""
    n0, n1 = x.shape
    h = length // 2
    ero = np.empty((n0, n1))
    opn = np.empty((n0, n1))
    out = np.empty((n0, n1))
    for d in range(directions.shape[0]):
        _line_extreme(x, directions[d, 0], directions[d, 1], h, False, ero)
        _line_extreme(ero, directions[d, 0], directions[d, 1], h, True, opn)
        for i in range(n0):
            xo, po, oo = x[i], opn[i], out[i]
            if d == 0:
                for j in range(n1):
                    oo[j] = xo[j] - po[j]
            else:
                for j in range(n1):
                    t = xo[j] - po[j]
                    p = oo[j]
                    oo[j] = p if p < t else t
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _opening_at(x, i, j, dl, ds, h):
    """The line opening of :func:`compact_tophat` at pixel (i, j) alone: the max over the
    ``2 h + 1`` positions along (``dl``, ``ds``) of the min over ``2 h + 1`` pixels along it,
    each index clamped to its axis (edges extended) as the whole-image passes clamp it."""
    n0, n1 = x.shape
    best = -np.inf
    for k in range(-h, h + 1):
        qi = min(max(i + k * dl, 0), n0 - 1)
        qj = min(max(j + k * ds, 0), n1 - 1)
        low = np.inf
        for m in range(-h, h + 1):
            v = x[min(max(qi + m * dl, 0), n0 - 1), min(max(qj + m * ds, 0), n1 - 1)]
            low = v if v < low else low
        best = low if low > best else best
    return best


@njit(cache=True, nogil=True, error_model="numpy")
def compact_hot(x, valid, directions, length, limit, out):
    """``out = valid & (compact_tophat(x, directions, length) > limit)`` without the whole
    top-hat (stop 28): the first direction's opening on the whole image, the others'
    only at the pixels still above ``limit`` (:func:`_opening_at`), the test stopping at
    the first direction that fails. A pixel is in the mask when ``x - opening > limit``
    in every direction, which is the min's test. The openings' values are the same
    minima and maxima of the same finite values as the whole-image passes'; numpy's
    choice on a tie shows only in the sign of a zero, and ``x - 0.0`` and ``x - (-0.0)``
    compare alike with any ``limit``: the same mask. ``x`` finite, C order."""
    n0, n1 = x.shape
    h = length // 2
    ero = np.empty((n0, n1))
    opn = np.empty((n0, n1))
    _line_extreme(x, directions[0, 0], directions[0, 1], h, False, ero)
    _line_extreme(ero, directions[0, 0], directions[0, 1], h, True, opn)
    for i in range(n0):
        for j in range(n1):
            hot = valid[i, j] and x[i, j] - opn[i, j] > limit
            d = 1
            while hot and d < directions.shape[0]:
                hot = x[i, j] - _opening_at(x, i, j, directions[d, 0], directions[d, 1],
                                            h) > limit
                d += 1
            out[i, j] = hot


@njit(cache=True, nogil=True, error_model="numpy")
def usable_values(img, valid, out):
    """The values of ``img`` at ``valid`` finite pixels, as float64, into ``out``; how
    many (row-major order)."""
    n = 0
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            v = img[i, j]
            if valid[i, j] and math.isfinite(v):
                out[n] = v
                n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def fill_and_highpass(img, valid, fill, x, hp, abs_valid):
    """``x``: ``img`` (float64) at valid finite pixels, ``fill`` (already in ``img``'s
    dtype) elsewhere; ``hp``: its 4-neighbour high-pass with wrap-around; ``abs_valid``:
    ``|hp|`` at the valid pixels, row-major; returns how many."""
    n0, n1 = img.shape
    for i in range(n0):
        for j in range(n1):
            v = img[i, j]
            x[i, j] = v if (valid[i, j] and math.isfinite(v)) else fill
    n = 0
    for i in range(n0):
        up = x[i - 1 if i > 0 else n0 - 1]
        down = x[i + 1 if i < n0 - 1 else 0]
        row = x[i]
        for j in range(n1):
            left = row[j - 1 if j > 0 else n1 - 1]
            right = row[j + 1 if j < n1 - 1 else 0]
            h = row[j] - 0.25 * (((up[j] + down[j]) + left) + right)
            hp[i, j] = h
            if valid[i, j]:
                abs_valid[n] = abs(h)
                n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def ring_excess(x, padded, out):
    """``x`` minus the mean of its 16-pixel ring at distance 2 (``padded``: ``x``
    reflect-padded by 2), from the summed-area table (see the module docstring), into
    ``out`` (``x``'s shape, float64; a sequence's frames write into one stack: stop 29)."""
    h, w = x.shape
    n0, n1 = padded.shape
    ii = np.zeros((n0 + 1, n1 + 1))
    col = np.empty(n1)
    for i in range(n0):
        for j in range(n1):
            col[j] = padded[i, j] if i == 0 else col[j] + padded[i, j]
        acc = col[0]
        ii[i + 1, 1] = acc
        for j in range(1, n1):
            acc = acc + col[j]
            ii[i + 1, j + 1] = acc
    for r in range(h):
        for c in range(w):
            box5 = ((ii[5 + r, 5 + c] - ii[r, 5 + c]) - ii[5 + r, c]) + ii[r, c]
            box3 = ((ii[4 + r, 4 + c] - ii[1 + r, 4 + c]) - ii[4 + r, 1 + c]) + ii[1 + r, 1 + c]
            out[r, c] = x[r, c] - (box5 - box3) / 16.0
    return out


@njit(cache=True, nogil=True)
def dilate_square3(mask):
    """``ndimage.binary_dilation(mask, structure=np.ones((3, 3)))`` of a sparse mask: the
    neighbours (8-connected) of each set pixel and the pixel itself, within the image."""
    h, w = mask.shape
    out = np.zeros((h, w), dtype=np.bool_)
    for i in range(h):
        for j in range(w):
            if mask[i, j]:
                for a in range(max(i - 1, 0), min(i + 2, h)):
                    for b in range(max(j - 1, 0), min(j + 2, w)):
                        out[a, b] = True
    return out


@njit(cache=True, nogil=True)
def _mirror(k, n):
    """Index ``k`` (within ``n - 1`` of the image) mirrored into ``0..n-1`` without
    repeating the edge (``np.pad``'s "reflect")."""
    if k < 0:
        return -k
    if k >= n:
        return 2 * (n - 1) - k
    return k


@njit(cache=True, nogil=True)
def gather_reflect(x, rr, cc, half):
    """``out[k]``: the ``(2 half + 1)**2`` values around ``(rr[k], cc[k])``, row by row,
    the image mirrored at its edges (``half`` < each side)."""
    n0, n1 = x.shape
    size = 2 * half + 1
    out = np.empty((rr.size, size * size), dtype=x.dtype)
    for k in range(rr.size):
        m = 0
        for a in range(rr[k] - half, rr[k] + half + 1):
            ra = _mirror(a, n0)
            for b in range(cc[k] - half, cc[k] + half + 1):
                out[k, m] = x[ra, _mirror(b, n1)]
                m += 1
    return out


@njit(cache=True, nogil=True)
def fill_median3(out, todo, done):
    """:func:`iovolc.hits.fill_invalid`'s rounds in one pass (stop 25): each round, every
    pixel still to fill (row-major) takes the median of its 3x3 neighbours (the image
    mirrored at its edges) that are not to fill, from the values the round started
    with; the pixels filled leave ``todo`` for ``done``. Until none is left, or none
    has such a neighbour. The median of k values: the sorted values'
    ``0.5 (v[(k-1)//2] + v[k//2])``, as numpy's masked one computes it (as
    :func:`iovolc.imaging.median`, a median of zeros may be -0.0 where numpy's SIMD
    sort gives 0.0, or the reverse). The values read must be finite (numpy's sort
    places NaN differently): returns False, at once and before the round writes
    anything, when a median is not (a sum past the float range); True when done.
    Each side > 1."""
    n0, n1 = out.shape
    vals = np.empty(9)
    while True:
        n = 0
        for i in range(n0):
            for j in range(n1):
                n += todo[i, j]
        if n == 0:
            return True
        rr = np.empty(n, np.int64)
        cc = np.empty(n, np.int64)
        med = np.empty(n)
        has = np.zeros(n, np.bool_)
        n = 0
        for i in range(n0):
            for j in range(n1):
                if todo[i, j]:
                    rr[n], cc[n] = i, j
                    n += 1
        n_has = 0
        for k in range(n):
            m = 0
            for a in range(rr[k] - 1, rr[k] + 2):
                ra = _mirror(a, n0)
                for b in range(cc[k] - 1, cc[k] + 2):
                    cb = _mirror(b, n1)
                    if not todo[ra, cb]:
                        x = out[ra, cb]
                        t = m - 1  # insertion: the values ascending
                        while t >= 0 and vals[t] > x:
                            vals[t + 1] = vals[t]
                            t -= 1
                        vals[t + 1] = x
                        m += 1
            if m:
                med[k] = 0.5 * (vals[(m - 1) // 2] + vals[m // 2])
                has[k] = True
                n_has += 1
        if n_has == 0:
            return True
        for k in range(n):
            if has[k] and not math.isfinite(med[k]):
                return False
        for k in range(n):
            if has[k]:
                out[rr[k], cc[k]] = med[k]
                todo[rr[k], cc[k]] = False
                done[rr[k], cc[k]] = True


@njit(cache=True, nogil=True)
def window_max(x, rr, cc, half):
    """The largest value within ``half`` px (a square) of each ``(rr[k], cc[k])``;
    ``-inf`` where the square holds no pixel of the image, NaN where one is NaN."""
    n0, n1 = x.shape
    out = np.empty(rr.size)
    for k in range(rr.size):
        best = -np.inf
        for a in range(max(rr[k] - half, 0), min(rr[k] + half + 1, n0)):
            for b in range(max(cc[k] - half, 0), min(cc[k] + half + 1, n1)):
                v = x[a, b]
                if v > best or np.isnan(v):
                    best = v
                    if np.isnan(v):
                        break
            if np.isnan(best):
                break
        out[k] = best
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def open2x2(x):
    """Grey opening of a finite 2-D float64 ``x`` with a 2x2 square, edges extended:
    the numpy form it replaced (``tests/_speed_reference.py::open2x2_numpy``), the same
    bits on finite values (stop 26; a NaN would not propagate). The erosion is the
    minimum of each 2x2 block of the edge-padded image (rows ``i, i + 1``, columns
    ``j, j + 1`` of the padding, ``(h + 1, w + 1)`` blocks), the dilation the maximum
    of each 2x2 block of those; each pair folded as numpy's ``minimum(a, b)`` /
    ``maximum(a, b)`` choose on finite values (``a if a < b else b``), in its order:
    ``min(min(p00, p01), min(p10, p11))``."""
    h, w = x.shape
    ero = np.empty((h + 1, w + 1))
    for i in range(h + 1):
        r0 = x[min(max(i - 1, 0), h - 1)]
        r1 = x[min(i, h - 1)]
        for j in range(w + 1):
            j0 = min(max(j - 1, 0), w - 1)
            j1 = min(j, w - 1)
            a, b = r0[j0], r0[j1]
            c, d = r1[j0], r1[j1]
            m0 = a if a < b else b
            m1 = c if c < d else d
            ero[i, j] = m0 if m0 < m1 else m1
    out = np.empty((h, w))
    for i in range(h):
        e0, e1 = ero[i], ero[i + 1]
        for j in range(w):
            a, b = e0[j], e0[j + 1]
            c, d = e1[j], e1[j + 1]
            m0 = a if a > b else b
            m1 = c if c > d else d
            out[i, j] = m0 if m0 > m1 else m1
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def bin2x2_mean(x):
    """The means of the 2x2 blocks of a 2-D float64 ``x`` (an odd last row or column
    dropped) as ``x.reshape(h, 2, w, 2).mean(axis=(1, 3))`` gives them when the binned
    image is at least 2 columns wide: ``((0 + (a + b)) + (c + d)) / 4`` for the block's
    rows ``(a, b)`` and ``(c, d)`` -- numpy's order for that reduction (stop 26; on a
    1-column result numpy adds in another order: its caller, ``hits.estimate_offsets``,
    bins only images 4 or more columns wide).
    Checked against numpy on every size in ``tests/test_speed_kernels.py``."""
    hb, wb = x.shape[0] // 2, x.shape[1] // 2
    out = np.empty((hb, wb))
    for i in range(hb):
        r0, r1 = x[2 * i], x[2 * i + 1]
        for j in range(wb):
            out[i, j] = ((0.0 + (r0[2 * j] + r0[2 * j + 1]))
                         + (r1[2 * j] + r1[2 * j + 1])) / 4
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def mean4_highpass(x):
    """``x - 0.25 * (((up + down) + left) + right)`` of a 2-D float64 ``x`` at least 2 x 2,
    its 4 neighbours from the reflect-padded image (``np.pad(x, 1, mode="reflect")``):
    the hit finder's high-pass, the same additions in the same order as its numpy form
    (stop 26; ``tests/_speed_reference.py``): the same bits, but for the sign of a NaN
    (its callers take the absolute value)."""
    h, w = x.shape
    out = np.empty((h, w))
    for i in range(h):
        up = x[_mirror(i - 1, h)]
        down = x[_mirror(i + 1, h)]
        row = x[i]
        for j in range(w):
            left = row[_mirror(j - 1, w)]
            right = row[_mirror(j + 1, w)]
            out[i, j] = row[j] - 0.25 * (((up[j] + down[j]) + left) + right)
    return out


def warm_up() -> None:
    """Compile (or load from the cache) the kernels (see :func:`iovolc.compiled.warm_up`)."""
    x = np.arange(20.0).reshape(4, 5)
    ring_excess(x, np.pad(x, 2, mode="reflect"), np.empty_like(x))
    dilate_square3(x > 10)
    at = np.array([0, 3], np.int64)
    gather_reflect(x, at, at, 2)
    gather_reflect(x > 3, at, at, 1)
    window_max(x, at, at, 3)
    fill_median3(x.copy(), x > 15, np.zeros(x.shape, np.bool_))
    h_maxima(x, 1.0)
    compact_hot(x, x > 3, np.array([[0, 1], [1, -1]], np.int64), 3, 1.0,
                np.empty(x.shape, np.bool_))
    open2x2(x)
    bin2x2_mean(x)
    mean4_highpass(x)
    ok = x > 3
    for img in (x, x.astype(np.float32)):
        usable_values(img, ok, np.empty(x.size))
        fill_and_highpass(img, ok, 1.0, np.empty(x.shape), np.empty(x.shape), np.empty(x.size))
