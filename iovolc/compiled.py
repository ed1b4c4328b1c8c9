"""Compiled inner loops (numba) of the limb fit and the image steps, in one module.

Numba caches compiled code per source file and notices changes to that file
only: a kernel that called a kernel of another file could keep running the
other's old code after an edit. So the kernels that call each other live
here together (:mod:`iovolc.raytrace`, which calls nothing, has its own
file). They are written as plain loops over arrays: numba compiles loops in
a fraction of the time its array expressions, ``np.median``, ``np.sort`` or
``np.linalg`` take, and a fresh clone compiles every kernel once (the image
build does it, ``warm_up``). Each is checked against the numpy or scipy
form it replaced in ``tests/test_speed_kernels.py``.

**Image kernels** (used by :mod:`iovolc.imaging` and :mod:`iovolc.extract`):
the NCC's window sums and normalisation (the same bits as the ``np.cumsum``
form), the median by radix selection (``np.median``'s value), the
background's sigma-clipped local mean (its box means are
``ndimage.uniform_filter``'s running sums: the same bits as its numpy loop),
the cross dilation (``ndimage.binary_dilation``).

**The limb fit** (:func:`fit_shift_spanned`, with the zone's :func:`zone_spans`
taken once per pass, used by :func:`iovolc.registration._fit_exponent`; stop 27
split them, and ``tests/_speed_reference.py`` keeps the whole fit in one call as
``fit_shift``): per Minnaert exponent, the shift that
puts the predicted limb on the observed one. The numpy formulation made some
sixty small array calls per band and step (the limb zone's pixels, a scipy
spline evaluation of five point sets, up to four SVD least squares, medians,
a 2x2 solve); :func:`fit_shift_spanned` runs the whole loop of steps at once:

* the fitted pixels: the strip's usable pixels whose canvas pixel (the
  rounded shifted position, half to even as ``np.round``) lies in the limb
  zone, row by row (the order ``np.nonzero`` gives);
* the predicted canvas (its cubic B-spline coefficients) at each pixel and
  at +-0.5 px in line and sample, as ``scipy.ndimage.map_coordinates``
  (``order=3, mode="constant", prefilter=False``) evaluates it: 0 outside
  ``[0, n - 1]`` on either axis, and inside, the coefficients extended by
  reflection (``np.pad(..., mode="reflect")``: measured against scipy,
  tests/test_speed_kernels.py);
* the robust linear fit of ``[m, m ln, m sn, 1]`` (the model, its linear
  amplitude trend, an offset): normal equations solved by Cholesky, or,
  when the Gram matrix is near singular, the minimum-norm solution with
  ``np.linalg.lstsq``'s cut of small singular values, from a Jacobi SVD
  (:func:`_lstsq_svd`);
* the Jacobian sums ``J^T J``, ``J^T r``, ``chi^2`` and degrees of freedom,
  summed over the bands; the step, its formal error and the reduced chi^2
  from the 2x2 normal equations.

The arithmetic differs from the numpy path only by rounding: sums in loop
order (numpy sums pairwise and BLAS in blocks, e.g. the means of the line
and sample coordinates), normal equations against SVD, the 2x2 solve in
closed form, the basis products grouped ``c1 * m * ln``; ~1e-12 relative,
far below the 1e-3 px the fit converges to (measured: docs/decisions.md,
"The limb fit and the image kernels compiled"). Degenerate cases: a model
flat on the fitted pixels skips the band (see :func:`_varies`); a Gram matrix
with a NaN or a determinant that is not > 0 ends the fit (numpy's
``det <= 0`` let a NaN one go on stepping with NaN). No fast-math. Cached
by the package's source digest (:mod:`iovolc.jitcache`, stop 39).
"""

from __future__ import annotations

import math

import numpy as np

from iovolc.jitcache import njit

_EPS = float(np.finfo(np.float64).eps)
_FLOAT_MAX = float(np.finfo(np.float64).max)

# --- image kernels ------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def _window_sums(x, m, n, square):
    """Sums of ``x`` over every m x n window lying wholly inside: running sums down the
    columns, then along the rows of window-row sums, differenced (the order of
    ``np.cumsum`` on each axis: the same bits as that numpy form; a window of zeros sums
    to exactly zero). ``square``: of ``x * x``."""
    n0, n1 = x.shape
    r0 = n0 - m + 1
    col = np.empty((n0 + 1, n1))  # running sums down the columns, 0 first
    for j in range(n1):
        col[0, j] = 0.0
        col[1, j] = x[0, j] * x[0, j] if square else x[0, j]
    for i in range(1, n0):
        for j in range(n1):
            col[i + 1, j] = col[i, j] + (x[i, j] * x[i, j] if square else x[i, j])
    out = np.empty((r0, n1 - n + 1))
    run = np.empty(n1 + 1)  # running sums along a row of window-row sums, 0 first
    run[0] = 0.0
    for i in range(r0):
        run[1] = col[i + m, 0] - col[i, 0]
        for j in range(1, n1):
            run[j + 1] = run[j] + (col[i + m, j] - col[i, j])
        for j in range(n1 - n + 1):
            out[i, j] = run[j + n] - run[j]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _ncc_normalise(xcorr, image, m, n, t_mean, t_ssd, out):
    """The NCC from the correlation and the image's window sums (as :func:`ncc` did in
    numpy, operation for operation)."""
    s1 = _window_sums(image, m, n, False)
    s2 = _window_sums(image, m, n, True)
    eps = _EPS
    mn = m * n
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            num = xcorr[i, j] - s1[i, j] * t_mean
            den = math.sqrt(max((s2[i, j] - s1[i, j] * s1[i, j] / mn) * t_ssd, 0.0))
            out[i, j] = num / den if den > eps else 0.0


_SIGN = np.uint64(1 << 63)


@njit(cache=True, nogil=True, error_model="numpy")
def _order_key(bits):
    """An IEEE double's bits as an unsigned key in the order of the values."""
    return ~bits if bits & _SIGN else bits | _SIGN


#: below this many values the selections run the radix selection on all of them
BRACKET_MIN = 4096
#: values sampled (evenly spaced) to bracket an order statistic
BRACKET_SAMPLE = 1024


@njit(cache=True, nogil=True, error_model="numpy")
def _bracketed(a, k, k_next):
    """The values of ``a`` that bracket its order statistics of ranks ``k`` and ``k_next``
    (``k <= k_next``), and how many lie below them: ``(values, n_below)``, or an empty
    array and -1 when the bracket does not hold both ranks (or ``a`` has a NaN).

    Stop 35: the bounds ``lo <= hi`` are order statistics of 1,024 evenly spaced
    values, three standard deviations of the sample's rank either side of the ranks
    sought; a vectorised pass counts the values below ``lo``, within and above ``hi``,
    and only when the ranks fall within does a second pass copy the ~10 % within (in
    order, without a branch: 8x faster than one here). A value below ``lo`` is below
    every value within, and so is its order key, so the rank of a value within, among
    them, is its rank in ``a`` less the count below. A -0.0 and a 0.0 compare equal, so
    a bound never splits the zeros: all are below, within or above, and
    :func:`_kth_radix` orders them among the values within by their keys, as in ``a``.
    A NaN is neither below, within nor above: the three counts then do not add up to
    ``a.size``."""
    n = a.size
    s = BRACKET_SAMPLE
    sample = np.empty(s)
    for i in range(s):  # spread over all of ``a``
        sample[i] = a[i * n // s]
    spread = int(3.0 * math.sqrt(s * (k / n) * (1.0 - k / n))) + 2
    lo = _kth_radix(sample, max(int(k / n * s) - spread, 0))
    hi = _kth_radix(sample, min(int(k_next / n * s) + spread, s - 1))
    n_lo, n_in, n_hi = 0, 0, 0
    for i in range(n):  # without branches: vectorised
        v = a[i]
        n_lo += v < lo
        n_in += (v >= lo) & (v <= hi)
        n_hi += v > hi
    if n_lo + n_in + n_hi != n or k < n_lo or k_next >= n_lo + n_in:
        return np.empty(0), -1
    within = np.empty(n_in + 1)
    m = 0
    for i in range(n):  # each value stored, kept (the next one after it) if within
        v = a[i]
        within[m] = v
        m += (v >= lo) & (v <= hi)
    return within[:n_in], n_lo


@njit(cache=True, nogil=True, error_model="numpy")
def _kth(a, k):
    """The k-th smallest (0-based) of ``a`` (no NaN): :func:`_kth_radix` on the values
    :func:`_bracketed` keeps, when ``a`` is large and the bracket holds (stop 35; the
    same value, bits and all), else on all of ``a``."""
    if a.size >= BRACKET_MIN:
        within, n_below = _bracketed(a, k, k)
        if n_below >= 0:
            return _kth_radix(within, k - n_below)
    return _kth_radix(a, k)


@njit(cache=True, nogil=True, error_model="numpy")
def _kth_radix(a, k):
    """The k-th smallest (0-based) of ``a`` (no NaN), by radix selection on the values'
    order keys: a few bits at a time, from the highest bit in which the remaining keys
    differ, only the members of the bin that holds rank k are kept.

    The bins are 12 bits wide for many values and fewer for few (stop 29: clearing and
    scanning 4,096 counts cost more than the ~460 residuals of a limb step's median).
    Any width selects the same value: each pass keeps exactly the keys of the bin that
    holds rank k, and the first pass splits -0.0 from 0.0 (their keys differ in the top
    bit), so the few values sorted at the end are ordered as their keys are."""
    vals = np.ascontiguousarray(a)
    bits = vals.view(np.uint64)
    rank = k
    width = 12 if vals.size >= 8192 else (10 if vals.size >= 320 else 8)
    n_bins = 1 << width
    mask = np.uint64(n_bins - 1)
    k_min, k_max = _order_key(bits[0]), _order_key(bits[0])
    for i in range(vals.size):
        key = _order_key(bits[i])
        k_min = min(k_min, key)
        k_max = max(k_max, key)
    counts = np.empty(n_bins, np.int64)
    while k_min != k_max and vals.size > 32:
        top = 63
        while not (k_min ^ k_max) >> np.uint64(top) & np.uint64(1):
            top -= 1
        shift = np.uint64(max(top - (width - 1), 0))
        counts[:] = 0
        for i in range(vals.size):
            counts[(_order_key(bits[i]) >> shift) & mask] += 1
        pick = 0
        for b in range(n_bins):
            if counts[b] > rank:
                pick = b
                break
            rank -= counts[b]
        kept = np.empty(counts[pick])
        m = 0
        k_min, k_max = ~np.uint64(0), np.uint64(0)
        for i in range(vals.size):
            key = _order_key(bits[i])
            if (key >> shift) & mask == pick:
                kept[m] = vals[i]
                m += 1
                k_min = min(k_min, key)
                k_max = max(k_max, key)
        vals = kept
        bits = vals.view(np.uint64)
    if k_min == k_max:
        return vals[0]
    return _sorted_copy(vals)[rank]


@njit(cache=True, nogil=True, error_model="numpy")
def _sorted_copy(a):
    """``a`` sorted ascending (insertion sort: for the few values :func:`_kth` leaves)."""
    out = a.copy()
    for i in range(1, out.size):
        x = out[i]
        j = i - 1
        while j >= 0 and out[j] > x:
            out[j + 1] = out[j]
            j -= 1
        out[j + 1] = x
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _median(a):
    n = a.size
    has_nan = False
    for i in range(n):  # without a branch: vectorised (stop 35)
        has_nan |= a[i] != a[i]
    if has_nan:
        return np.nan
    if n == 0:
        return np.nan
    if n % 2:
        return _kth(a, n // 2)
    lo, hi = _kth_and_next(a, n // 2 - 1)
    return (lo + hi) / 2.0


@njit(cache=True, nogil=True, error_model="numpy")
def _median_not_positive(a):
    """``_median(a) <= 0``, from one pass (stop 37: the limb fit asks only the sign of
    its amplitudes' median, once per band and step). A NaN makes the median NaN (False).
    With ``n_le`` of the n values <= 0: an odd count's middle value is <= 0 when
    ``n_le > n // 2``; an even count's two middle values (h = n / 2) are both <= 0 when
    ``n_le > h`` (their mean too), both > 0 when ``n_le < h`` (their mean too, even
    rounded: it is at least the smaller), and when ``n_le == h`` they are the largest
    value <= 0 and the least > 0, the pair :func:`_kth_and_next` returns (the zeros'
    signs change no sum with a positive value), whose mean is then taken as there."""
    n = a.size
    if n == 0:
        return False
    has_nan = False
    n_le = 0
    lo, hi = -np.inf, np.inf
    for i in range(n):
        x = a[i]
        has_nan |= x != x
        if x <= 0:
            n_le += 1
            lo = max(lo, x)
        else:
            hi = min(hi, x)
    if has_nan:
        return False
    h = n // 2
    if n % 2:
        return n_le > h
    if n_le != h:
        return n_le > h
    return (lo + hi) / 2.0 <= 0


@njit(cache=True, nogil=True, error_model="numpy")
def _tail(a, t):
    """The values of ``a`` that are >= ``t`` (in order) and how many are below it: the
    tail of the sorted values from ``t``'s first rank, where an order statistic of rank
    >= that rank is found among far fewer values (stop 26). With zeros in the tail the
    selection may order -0.0 and 0.0 otherwise than on the whole array (see
    :func:`iovolc.imaging._percentile64`, which uses it above a positive ``t`` only)."""
    n_less = 0
    for i in range(a.size):
        n_less += a[i] < t
    out = np.empty(a.size - n_less)
    m = 0
    for i in range(a.size):
        if not a[i] < t:
            out[m] = a[i]
            m += 1
    return out, n_less


@njit(cache=True, nogil=True, error_model="numpy")
def _tail_kth_and_next(a, t, k):
    """:func:`_kth_and_next` ``(a, k)`` from the values >= ``t``, an order statistic of
    ``a`` of rank <= ``k`` (no NaN, ``k + 1 < a.size``)."""
    tail, n_less = _tail(a, t)
    return _kth_and_next(tail, k - n_less)


@njit(cache=True, nogil=True, error_model="numpy")
def _tail_kth(a, t, k):
    """:func:`_kth` ``(a, k)`` from the values >= ``t`` (as :func:`_tail_kth_and_next`)."""
    tail, n_less = _tail(a, t)
    return _kth(tail, k - n_less)


@njit(cache=True, nogil=True, error_model="numpy")
def _row_medians(a, out):
    """:func:`_median` of each row of the 2-D ``a`` (C order) into ``out``."""
    for i in range(a.shape[0]):
        out[i] = _median(a[i])


@njit(cache=True, nogil=True, error_model="numpy")
def _kth_and_next(a, k):
    """The k-th and (k+1)-th smallest (0-based) of ``a`` (no NaN, ``k + 1 < a.size``):
    :func:`_kth_and_next_scan` on the values :func:`_bracketed` keeps when ``a`` is large
    and the bracket holds both ranks (stop 35), else on all of ``a``. The same pair:
    the first is the k-th as :func:`_kth` finds it; the second is the first again when
    more than k + 1 values are <= it, else the least value above it, and the values
    below the bracket are <= it, those above it above the k + 1-th, which is within."""
    if a.size >= BRACKET_MIN:
        within, n_below = _bracketed(a, k, k + 1)
        if n_below >= 0:
            return _kth_and_next_scan(within, k - n_below)
    return _kth_and_next_scan(a, k)


@njit(cache=True, nogil=True, error_model="numpy")
def _kth_and_next_scan(a, k):
    """The k-th and (k+1)-th smallest (0-based) of ``a`` (no NaN, ``k + 1 < a.size``)."""
    lo = _kth_radix(a, k)
    # the next one up: lo again if it fills rank k + 1 too, else the least value above it
    n_le = 0
    above = np.inf
    for i in range(a.size):  # without branches: the comparisons are unpredictable
        x = a[i]
        n_le += x <= lo
        above = min(above, x if x > lo else np.inf)
    return lo, (lo if n_le > k + 1 else above)


@njit(cache=True, nogil=True, error_model="numpy")
def _row_box_means(col_a, col_b, size, row_a, row_b):
    """``ndimage.uniform_filter1d(size, mode="nearest")`` of two rows at once, into
    ``row_a`` and ``row_b``: a running sum that each step adds (entering - leaving)
    to, over ``size`` (the order scipy adds in: the same bits; the window is
    ``size // 2`` before the pixel and the rest after, for an even size too). The two
    sums are independent, so their additions overlap in the processor."""
    n1 = col_a.size
    h = size // 2
    h_hi = size - 1 - h
    acc_a = 0.0
    acc_b = 0.0
    for k in range(size):
        c = min(max(k - h, 0), n1 - 1)
        acc_a += col_a[c]
        acc_b += col_b[c]
    row_a[0] = acc_a
    row_b[0] = acc_b
    for j in range(1, n1):
        c_in = min(j + h_hi, n1 - 1)
        c_out = max(j - h - 1, 0)
        acc_a += col_a[c_in] - col_a[c_out]
        acc_b += col_b[c_in] - col_b[c_out]
        row_a[j] = acc_a
        row_b[j] = acc_b
    for j in range(n1):  # the same divisions, vectorised, out of the sums' chain (stop 28)
        row_a[j] = row_a[j] / size
        row_b[j] = row_b[j] / size


@njit(cache=True, nogil=True, error_model="numpy")
def clipped_local_mean(img, weight, size, n_iter, clip):
    """Local mean of ``img`` over the pixels of ``weight`` in ``size`` x ``size`` windows
    (edges extended), sigma-clipped ``n_iter`` times at ``clip`` x 1.4826 MAD of the
    weighted pixels' deviations; NaN where no weight reaches (see
    :func:`iovolc.extract.background_model`).

    Each window mean is the box means of ``img * w`` and of ``w`` (columns, then rows:
    ``uniform_filter1d``'s running sums, the same additions in the same order), one
    output row at a time (stop 21): the column sums of both run together, then the
    row sums of both, then the row's means and deviations, with no whole-image
    intermediate (the same bits as the passes over whole images it replaced). A
    ``size`` of 1 takes each pixel as it is, as ``ndimage.uniform_filter`` does (the
    running sums' ``x0 + (x1 - x0)`` is not always ``x1``). The last round's mean is
    the answer: its deviations, their median and the clipping after it, which nothing
    reads, are not computed (stop 26)."""
    n0, n1 = img.shape
    if n0 == 0 or n1 == 0:
        return np.zeros((n0, n1))
    big = _FLOAT_MAX
    h = size // 2
    h_hi = size - 1 - h
    w = np.empty((n0, n1))
    for i in range(n0):
        for j in range(n1):
            w[i, j] = 1.0 if weight[i, j] else 0.0
    nxt = np.empty((n0, n1))
    mean = np.zeros((n0, n1))
    ad = np.empty(n0 * n1)
    acc_a = np.empty(n1)
    acc_b = np.empty(n1)
    col_a = np.empty(n1)
    col_b = np.empty(n1)
    num = np.empty(n1)
    den = np.empty(n1)
    for it in range(n_iter):
        last = it == n_iter - 1  # its mean is the answer: no clipping after it (stop 26)
        n_ad = 0
        any_w = False
        acc_a[:] = 0.0
        acc_b[:] = 0.0
        for k in range(size):
            r = min(max(k - h, 0), n0 - 1)
            for j in range(n1):
                acc_a[j] += img[r, j] * w[r, j]
                acc_b[j] += w[r, j]
        for i in range(n0):
            if i:
                r_in = min(i + h_hi, n0 - 1)
                r_out = max(i - h - 1, 0)
                for j in range(n1):
                    acc_a[j] += img[r_in, j] * w[r_in, j] - img[r_out, j] * w[r_out, j]
                    acc_b[j] += w[r_in, j] - w[r_out, j]
            if size > 1:
                for j in range(n1):
                    col_a[j] = acc_a[j] / size
                    col_b[j] = acc_b[j] / size
                _row_box_means(col_a, col_b, size, num, den)
            else:  # scipy's uniform_filter leaves a size-1 axis alone: the pixel itself
                for j in range(n1):
                    num[j] = img[i, j] * w[i, j]
                    den[j] = w[i, j]
            m_row = mean[i]
            for j in range(n1):  # the means, vectorised; then the deviations (stop 28)
                m_row[j] = num[j] / den[j] if den[j] > 1e-6 else np.nan
            if not last:
                w_row, i_row = w[i], img[i]
                for j in range(n1):
                    if w_row[j] > 0:
                        any_w = True
                        d = abs(i_row[j] - m_row[j])
                        if not math.isnan(d):
                            ad[n_ad] = d
                            n_ad += 1
        if last:
            break
        if n_ad:
            scatter = 1.4826 * _median(ad[:n_ad])
        else:
            scatter = np.nan if any_w else 0.0
        limit = clip * scatter + 1e-12
        # keep = weight and |d| < limit, |d| of a NaN taken as 0 and of an inf as the
        # largest double; selects and a count, so the loop vectorises (stop 28)
        n_changed = 0
        for i in range(n0):
            i_row, m_row, g_row, w_row, n_row = img[i], mean[i], weight[i], w[i], nxt[i]
            for j in range(n1):
                a = abs(i_row[j] - m_row[j])
                a = 0.0 if a != a else (big if a == np.inf else a)
                keep = g_row[j] and a < limit
                n_changed += keep != (w_row[j] > 0)
                n_row[j] = 1.0 if keep else 0.0
        if n_changed == 0:
            break
        w, nxt = nxt, w
    return mean


@njit(cache=True, nogil=True, error_model="numpy")
def _row_holds(x, i):
    """Whether row ``i`` of ``x`` holds a non-zero (True, NaN) value: an OR over the row
    without a branch, which LLVM vectorises."""
    acc = False
    for j in range(x.shape[1]):
        acc |= x[i, j] != 0
    return acc


@njit(cache=True, nogil=True, error_model="numpy")
def nonzero_box(x):
    """First and last row and column holding a non-zero (True, NaN) value of the 2-D
    ``x``: ``(r0, r1, c0, c1)``, inclusive; ``(-1, -1, -1, -1)`` when there is none. The
    rows from each end until one holds a value, then the columns' OR over the rows
    between (stop 28)."""
    n0, n1 = x.shape
    r0 = 0
    while r0 < n0 and not _row_holds(x, r0):
        r0 += 1
    if r0 == n0:
        return -1, -1, -1, -1
    r1 = n0 - 1
    while not _row_holds(x, r1):
        r1 -= 1
    cols = np.zeros(n1, np.bool_)
    for i in range(r0, r1 + 1):
        for j in range(n1):
            cols[j] |= x[i, j] != 0
    c0 = 0
    while not cols[c0]:
        c0 += 1
    c1 = n1 - 1
    while not cols[c1]:
        c1 -= 1
    return r0, r1, c0, c1


@njit(cache=True, nogil=True, error_model="numpy")
def _grow(mask, n):
    """The pixels within city-block distance ``n`` of ``mask`` (distances capped at n + 1):
    ``binary_dilation(mask, iterations=n)`` with the cross (:func:`iovolc.imaging.grow`).

    A sparse mask (k pixels with k (2n + 1)^2 at most a quarter of the image's pixels)
    gets each pixel's diamond set directly (stop 26: a strip's hot pixels, its sources); a denser
    one two passes of the distance (int32: the cap is small) over the mask's box widened
    by ``n`` (stop 26: a distant disc's limb ring, its lit pixels), False beyond."""
    n0, n1 = mask.shape
    k = 0
    r0, r1, c0, c1 = n0, -1, n1, -1  # the mask's box
    for i in range(n0):
        row_k = 0
        for j in range(n1):
            if mask[i, j]:
                row_k += 1
                c0 = min(c0, j)
                c1 = max(c1, j)
        if row_k:
            k += row_k
            r0 = min(r0, i)
            r1 = i
    out = np.zeros((n0, n1), np.bool_)
    if k == 0:
        return out
    if k * (2 * n + 1) * (2 * n + 1) <= (n0 * n1) // 4:
        for i in range(n0):
            for j in range(n1):
                if not mask[i, j]:
                    continue
                for di in range(max(-n, -i), min(n, n0 - 1 - i) + 1):
                    w = n - abs(di)
                    row = out[i + di]
                    for jj in range(max(j - w, 0), min(j + w, n1 - 1) + 1):
                        row[jj] = True
        return out
    # the distance passes on the mask's box widened by n (every pixel within n of the
    # mask is there; beyond it the passes would only find distances > n)
    a0, a1 = max(r0 - n, 0), min(r1 + n, n0 - 1)
    b0, b1 = max(c0 - n, 0), min(c1 + n, n1 - 1)
    cap = n + 1
    d = np.empty((a1 - a0 + 1, b1 - b0 + 1), np.int32)
    for i in range(a0, a1 + 1):  # city-block distance to the mask: down and right ...
        for j in range(b0, b1 + 1):
            if mask[i, j]:
                d[i - a0, j - b0] = 0
            else:
                v = cap
                if i > a0:
                    v = min(v, d[i - a0 - 1, j - b0] + 1)
                if j > b0:
                    v = min(v, d[i - a0, j - b0 - 1] + 1)
                d[i - a0, j - b0] = v
    for i in range(a1, a0 - 1, -1):  # ... then up and left
        for j in range(b1, b0 - 1, -1):
            v = d[i - a0, j - b0]
            if i < a1:
                v = min(v, d[i - a0 + 1, j - b0] + 1)
            if j < b1:
                v = min(v, d[i - a0, j - b0 + 1] + 1)
            d[i - a0, j - b0] = v
            out[i, j] = v <= n
    return out


# --- the limb fit -------------------------------------------------------------------------

#: ``band_step`` status codes
OK, SKIP = 0, 1
#: a Gram matrix whose Cholesky pivot falls below this fraction of its diagonal is
#: solved by SVD least squares instead
_PIVOT_FLOOR = 1e-10


@njit(cache=True, nogil=True, error_model="numpy")
def _weights(x):
    """First index and the 4 cubic B-spline weights at coordinate ``x``."""
    i0 = math.floor(x)
    w0, w1, w2, w3 = _fraction_weights(x - i0)
    return int(i0) - 1, w0, w1, w2, w3


@njit(cache=True, nogil=True, error_model="numpy")
def _fraction_weights(t):
    """The 4 cubic B-spline weights at fractional position ``t`` (0 <= t < 1; -0.0 for
    ``x = -0.0``): a function of ``t`` alone, so equal fractions give the same bits,
    but for the sign of a zero weight (``t`` = -0.0 or 0.0)."""
    s = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    return (s * s * s / 6.0, (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
            (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0, t3 / 6.0)


@njit(cache=True, nogil=True, error_model="numpy")
def _inside(x, n):
    """Whether a spline coordinate lies in ``[0, n - 1]`` (the spline is 0 outside; NaN
    is outside)."""
    return x >= 0.0 and x <= n - 1


@njit(cache=True, nogil=True, error_model="numpy")
def _column_weights(x, n, last_t, w0, w1, w2, w3):
    """:func:`_axis_weights` ``(x, n)`` with the weights of the last call passed back in:
    ``(inside, first index (padded), fraction, w0, w1, w2, w3)``. The weights are computed
    only when ``x``'s fraction differs from ``last_t``, and are left as given outside
    ``[0, n - 1]`` (where no caller reads them). A fitted row's columns all share one
    shift, so their fractions differ only between binades (stop 27). Equal fractions
    give the same weights, but for ``x = -0.0``, whose fraction -0.0 equals 0.0: its
    last weight is then +0.0 where it was -0.0, which no output shows (each spline
    value's sum starts from +0.0, and the fit's positions are never -0.0)."""
    if not _inside(x, n):
        return False, 0, last_t, w0, w1, w2, w3
    i0 = math.floor(x)
    t = x - i0
    if not t == last_t:  # equal fractions: the same weights (see above for -0.0)
        w0, w1, w2, w3 = _fraction_weights(t)
    return True, int(i0) - 1 + PAD, t, w0, w1, w2, w3


#: rows and columns of reflected coefficients around a canvas's (see :func:`padded`)
PAD = 3


def padded(coeffs: np.ndarray) -> np.ndarray:
    """A canvas's spline coefficients extended by reflection, as scipy's constant mode
    reads them inside the canvas."""
    return np.pad(np.asarray(coeffs, dtype=float), PAD, mode="reflect")


@njit(cache=True, nogil=True, error_model="numpy")
def _row_sum(c, row, j, b0, b1, b2, b3):
    """One coefficient row's four weighted coefficients (each term of :func:`_spline_sum`)."""
    return b0 * c[row, j] + b1 * c[row, j + 1] + b2 * c[row, j + 2] + b3 * c[row, j + 3]


@njit(cache=True, nogil=True, error_model="numpy")
def _spline_sum(c, i, j, a0, a1, a2, a3, b0, b1, b2, b3):
    """The cubic spline of padded coefficients ``c`` from first indices ``i``, ``j``
    (padded) and the two coordinates' weights: per row, the row's weight times its four
    weighted coefficients."""
    out = 0.0
    for di, a in ((0, a0), (1, a1), (2, a2), (3, a3)):
        out += a * _row_sum(c, i + di, j, b0, b1, b2, b3)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _axis_weights(x, n):
    """One coordinate's range test (inside ``[0, n - 1]``; the spline is 0 outside) and
    weights: ``(inside, first index (padded), w0, w1, w2, w3)``."""
    if not _inside(x, n):
        return False, 0, 0.0, 0.0, 0.0, 0.0
    i, w0, w1, w2, w3 = _weights(x)
    return True, i + PAD, w0, w1, w2, w3


@njit(cache=True, nogil=True, error_model="numpy")
def spline_points(coeffs, n0, n1, rr, cc, out):
    """``out`` (5, n): the spline at (rr, cc), (rr +- 0.5, cc), (rr, cc +- 0.5).

    Each value is the per-point evaluation's it replaced (``spline_at`` in
    ``tests/_speed_reference.py``), the same operations in the same order; the
    weights of a line position are computed once for a run of equal ``rr`` (the
    fitted pixels come row by row), and those of a sample position once per pixel
    for its three uses (stop 22). The three values at ``cc`` share their column
    weights, and their rows overlap (first rows ``i - 1``, ``i``, ``i + 1`` at most):
    each row's weighted sum is taken once, five rows instead of twelve (stop 26). The
    column weights are computed only when a column position's fraction changes (stop 27).
    """
    last = np.nan
    ok0 = ok1 = ok2 = False
    i0 = i1 = i2 = lo = hi = 0
    p0 = p1 = p2 = p3 = q0 = q1 = q2 = q3 = u0 = u1 = u2 = u3 = 0.0
    b0 = b1 = b2 = b3 = e0 = e1 = e2 = e3 = f0 = f1 = f2 = f3 = 0.0
    tc = tp = tm = np.nan  # the column positions' last fractions (:func:`_column_weights`)
    rows = np.empty(6)  # the row sums of rows lo..hi (hi - lo <= 5)
    for k in range(rr.size):
        r, s = rr[k], cc[k]
        if not r == last:
            last = r
            ok0, i0, p0, p1, p2, p3 = _axis_weights(r, n0)
            ok1, i1, q0, q1, q2, q3 = _axis_weights(r + 0.5, n0)
            ok2, i2, u0, u1, u2, u3 = _axis_weights(r - 0.5, n0)
            lo, hi = 1 << 30, -1
            for ok, i in ((ok0, i0), (ok1, i1), (ok2, i2)):
                if ok:
                    lo = min(lo, i)
                    hi = max(hi, i + 3)
        okc, j, tc, b0, b1, b2, b3 = _column_weights(s, n1, tc, b0, b1, b2, b3)
        if okc and hi >= lo:
            for row in range(lo, hi + 1):
                rows[row - lo] = _row_sum(coeffs, row, j, b0, b1, b2, b3)
        out[0, k] = _rows_sum(rows, i0 - lo, p0, p1, p2, p3) if ok0 and okc else 0.0
        out[1, k] = _rows_sum(rows, i1 - lo, q0, q1, q2, q3) if ok1 and okc else 0.0
        out[2, k] = _rows_sum(rows, i2 - lo, u0, u1, u2, u3) if ok2 and okc else 0.0
        okp, jp, tp, e0, e1, e2, e3 = _column_weights(s + 0.5, n1, tp, e0, e1, e2, e3)
        out[3, k] = _spline_sum(coeffs, i0, jp, p0, p1, p2, p3, e0, e1, e2, e3) \
            if ok0 and okp else 0.0
        okm, jm, tm, f0, f1, f2, f3 = _column_weights(s - 0.5, n1, tm, f0, f1, f2, f3)
        out[4, k] = _spline_sum(coeffs, i0, jm, p0, p1, p2, p3, f0, f1, f2, f3) \
            if ok0 and okm else 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _rows_sum(rows, at, a0, a1, a2, a3):
    """:func:`_spline_sum` from row sums taken already (``rows[at:at + 4]``): the same
    additions in the same order."""
    out = 0.0
    out += a0 * rows[at]
    out += a1 * rows[at + 1]
    out += a2 * rows[at + 2]
    out += a3 * rows[at + 3]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _round_half_even(x):
    f = math.floor(x)
    d = x - f
    if d > 0.5 or (d == 0.5 and f % 2 != 0):
        return int(f) + 1
    return int(f)


@njit(cache=True, nogil=True, error_model="numpy")
def _zone_pixels(zone, z_shape, z_span, usable, img, search_px, d_line, d_samp, rr, cc, data):
    """The fitted pixels at a shift into ``rr``, ``cc`` (strip positions in canvas
    coordinates) and ``data`` (values), in row-major order; returns how many.

    ``z_span`` (zone rows, 2): each zone row's first and last zone column (first >
    last: none). A strip column's zone column does not decrease along the row, so
    only the strip columns between the first that reaches the row's first zone
    column and the first past its last can be in the zone: the scan skips the rest
    of the row (stop 21), whose pixels the per-pixel test would all have refused.
    """
    n_r, n_c = img.shape
    z0, z1 = z_shape[0], z_shape[1]
    ci = np.empty(n_c, np.int64)
    c_ok = np.empty(n_c, np.bool_)
    for c in range(n_c):
        x = (c + search_px) - d_samp
        ci[c] = min(max(_round_half_even(x), 0), z1 - 1)
        c_ok[c] = not (x < 0 or x > z1 - 1)
    # first_c[z]: the first strip column whose zone column is >= z (n_c if none)
    first_c = np.empty(z1 + 1, np.int64)
    c = 0
    for z in range(z1 + 1):
        while c < n_c and ci[c] < z:
            c += 1
        first_c[z] = c
    n = 0
    for r in range(n_r):
        x = (r + search_px) - d_line
        if x < 0 or x > z0 - 1:
            continue
        zr = min(max(_round_half_even(x), 0), z0 - 1)
        lo, hi = z_span[zr, 0], min(z_span[zr, 1], z1 - 1)
        if lo > hi:
            continue
        for c in range(first_c[lo], first_c[hi + 1]):
            if c_ok[c] and zone[zr, ci[c]] and usable[r, c]:
                rr[n] = x
                cc[n] = (c + search_px) - d_samp
                data[n] = img[r, c]
                n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def zone_spans(shapes, zones, usables):
    """What :func:`fit_shift_spanned` needs of the zones, fixed during a fit and the same
    for every exponent of one pass (stop 27): per band, each canvas row's span of zone
    columns (first > last: none), and room for the fitted pixels: every one is a usable
    strip pixel (two strip pixels can fall on one zone pixel when a shift ends in exactly
    .5, so the zone's size is no bound)."""
    n_b = zones.shape[0]
    z_span = np.empty((n_b, zones.shape[1], 2), np.int64)
    room = 0
    for b in range(n_b):
        for i in range(zones.shape[1]):
            z_span[b, i, 0], z_span[b, i, 1] = zones.shape[2], -1
            if i >= shapes[b, 0]:
                continue
            for j in range(shapes[b, 1]):  # the band's own canvas, not the padding
                if zones[b, i, j]:
                    z_span[b, i, 0] = min(z_span[b, i, 0], j)
                    z_span[b, i, 1] = j
        n_usable = 0
        for i in range(usables.shape[1]):
            for j in range(usables.shape[2]):
                n_usable += usables[b, i, j]
        room = max(room, n_usable)
    return z_span, room


@njit(cache=True, nogil=True, error_model="numpy")
def fit_shift_spanned(coeffs, shapes, zones, z_span, room, usables, imgs, search_px, d_line,
                      d_samp, max_steps):
    """Gauss-Newton for the common shift from ``(d_line, d_samp)``: up to ``max_steps``
    steps, each clipped to +-1 px, until one is < 1e-3 px. Per band (the first axis,
    arrays padded to common shapes): padded coefficients, the canvas shape, the limb zone
    (canvas), its :func:`zone_spans` (``z_span``, ``room``), the strip's usable pixels
    (False in any padding) and values. Returns ``(d_line, d_samp, sigma_line,
    sigma_samp, reduced chi2)``; the sigmas and chi2 are inf when no step was made."""
    n_b = coeffs.shape[0]
    sig0 = sig1 = red = np.inf
    sums = np.empty(7)
    rr = np.empty(room)
    cc = np.empty(room)
    data = np.empty(room)
    for _ in range(max_steps):
        j00 = j01 = j11 = r0 = r1 = chi2 = 0.0
        dof = 0
        for b in range(n_b):
            n = _zone_pixels(zones[b], shapes[b], z_span[b], usables[b], imgs[b], search_px,
                             d_line, d_samp, rr, cc, data)
            if n < 20:
                continue
            at = np.empty((5, n))
            spline_points(coeffs[b], shapes[b, 0], shapes[b, 1], rr[:n], cc[:n], at)
            if band_step(at, rr[:n], cc[:n], data[:n], sums) != OK:
                continue
            j00 += sums[0]
            j01 += sums[1]
            j11 += sums[2]
            r0 += sums[3]
            r1 += sums[4]
            chi2 += sums[5]
            dof += int(sums[6])
        det = j00 * j11 - j01 * j01
        if dof <= 0 or not det > 0:
            break
        step0 = (j11 * r0 - j01 * r1) / det
        step1 = (j00 * r1 - j01 * r0) / det
        sig0 = math.sqrt(j11 / det * chi2 / dof)
        sig1 = math.sqrt(j00 / det * chi2 / dof)
        red = chi2 / dof
        d_line += min(max(step0, -1.0), 1.0)
        d_samp += min(max(step1, -1.0), 1.0)
        if math.hypot(step0, step1) < 1e-3:
            break
    return d_line, d_samp, sig0, sig1, red


@njit(cache=True, nogil=True, error_model="numpy")
def _fit(m, ln, sn, data, v):
    """Least-squares ``coef`` of ``data ~ c0 m + c1 m ln + c2 m sn + c3`` on ``v``."""
    # the normal equations' sums in scalars, each added to in the pixels' order as the
    # loop over a row array did (the same bits; stop 29: the array's stores and loads
    # were on every sum's dependency chain)
    b0 = b1 = b2 = b3 = 0.0
    g00 = g10 = g11 = g20 = g21 = g22 = g30 = g31 = g32 = g33 = 0.0
    for i in range(m.size):
        if not v[i]:
            continue
        r0, r1, r2, r3, d = m[i], m[i] * ln[i], m[i] * sn[i], 1.0, data[i]
        b0 += r0 * d
        g00 += r0 * r0
        b1 += r1 * d
        g10 += r1 * r0
        g11 += r1 * r1
        b2 += r2 * d
        g20 += r2 * r0
        g21 += r2 * r1
        g22 += r2 * r2
        b3 += r3 * d
        g30 += r3 * r0
        g31 += r3 * r1
        g32 += r3 * r2
        g33 += r3 * r3
    g = np.zeros((4, 4))
    g[0, 0], g[1, 0], g[1, 1], g[2, 0], g[2, 1], g[2, 2] = g00, g10, g11, g20, g21, g22
    g[3, 0], g[3, 1], g[3, 2], g[3, 3] = g30, g31, g32, g33
    b = np.array([b0, b1, b2, b3])
    low = np.zeros((4, 4))
    ok = True
    for p in range(4):
        for q in range(p + 1):
            acc = g[p, q]
            for r in range(q):
                acc -= low[p, r] * low[q, r]
            if p == q:
                if not acc > _PIVOT_FLOOR * g[p, p]:
                    ok = False
                    break
                low[p, p] = math.sqrt(acc)
            else:
                low[p, q] = acc / low[q, q]
        if not ok:
            break
    if ok:
        y = np.empty(4)
        for p in range(4):
            acc = b[p]
            for r in range(p):
                acc -= low[p, r] * y[r]
            y[p] = acc / low[p, p]
        coef = np.empty(4)
        for p in range(3, -1, -1):
            acc = y[p]
            for r in range(p + 1, 4):
                acc -= low[r, p] * coef[r]
            coef[p] = acc / low[p, p]
        return coef
    n_v = 0
    for i in range(m.size):
        n_v += v[i]
    a = np.empty((n_v, 4))
    y = np.empty(n_v)
    k = 0
    for i in range(m.size):
        if v[i]:
            a[k, 0], a[k, 1], a[k, 2], a[k, 3] = m[i], m[i] * ln[i], m[i] * sn[i], 1.0
            y[k] = data[i]
            k += 1
    # numpy's default cut for small singular values
    return _lstsq_svd(a, y, _EPS * max(n_v, 4))


@njit(cache=True, nogil=True, error_model="numpy")
def _lstsq_svd(a, y, rcond):
    """The minimum-norm least-squares solution of ``a x = y`` with singular values below
    ``rcond`` x the largest taken as zero (``np.linalg.lstsq``'s), from a one-sided
    Jacobi SVD (columns of ``a`` rotated until orthogonal; their norms are the singular
    values). For the near-singular fits only: it agrees with LAPACK to rounding."""
    n, p = a.shape
    u = a.copy()
    w = np.zeros((p, p))
    for i in range(p):
        w[i, i] = 1.0
    for _ in range(60):
        worst = 0.0
        for i in range(p - 1):
            for j in range(i + 1, p):
                alpha = beta = gamma = 0.0
                for k in range(n):
                    alpha += u[k, i] * u[k, i]
                    beta += u[k, j] * u[k, j]
                    gamma += u[k, i] * u[k, j]
                if gamma == 0.0:
                    continue
                worst = max(worst, abs(gamma) / math.sqrt(alpha * beta))
                zeta = (beta - alpha) / (2.0 * gamma)
                t = (1.0 if zeta >= 0 else -1.0) / (abs(zeta) + math.sqrt(1.0 + zeta * zeta))
                c = 1.0 / math.sqrt(1.0 + t * t)
                s = c * t
                for k in range(n):
                    ui, uj = u[k, i], u[k, j]
                    u[k, i], u[k, j] = c * ui - s * uj, s * ui + c * uj
                for k in range(p):
                    wi, wj = w[k, i], w[k, j]
                    w[k, i], w[k, j] = c * wi - s * wj, s * wi + c * wj
        if worst <= 1e-15:
            break
    sv = np.empty(p)
    for i in range(p):
        acc = 0.0
        for k in range(n):
            acc += u[k, i] * u[k, i]
        sv[i] = math.sqrt(acc)
    x = np.zeros(p)
    s_max = 0.0
    for i in range(p):
        s_max = max(s_max, sv[i])
    for i in range(p):
        if not sv[i] > rcond * s_max:
            continue
        proj = 0.0
        for k in range(n):
            proj += u[k, i] * y[k]
        for q in range(p):
            x[q] += w[q, i] * proj / (sv[i] * sv[i])
    return x


@njit(cache=True, nogil=True, error_model="numpy")
def _varies(m, v):
    """Whether ``m`` takes more than one value on ``v``. (The numpy path asked
    ``np.std(m[v]) == 0``, whose rounding can leave ~1e-17 for equal values and fit a
    degenerate basis: a model flat on 20 limb pixels, which no disc gives.)"""
    seen = False
    first = 0.0
    for i in range(m.size):
        if v[i]:
            if not seen:
                seen, first = True, m[i]
            elif m[i] != first:
                return True
    return False


@njit(cache=True, nogil=True, error_model="numpy")
def band_step(at, rr, cc, data, out):
    """One band's normal equations for the shift, from ``at`` (5, n) of :func:`spline_points`.

    ``out`` receives ``J^T J`` (00, 01, 11), ``J^T r`` (0, 1), chi^2 and the degrees
    of freedom. Returns :data:`OK` or :data:`SKIP` (the band adds nothing).
    """
    n = rr.size
    m = at[0]
    gl = np.empty(n)
    gs = np.empty(n)
    grad = np.empty(n)
    g_max = -np.inf
    for i in range(n):
        gl[i] = at[1, i] - at[2, i]
        gs[i] = at[3, i] - at[4, i]
        grad[i] = math.hypot(gl[i], gs[i])
        if math.isnan(grad[i]):  # numpy: a NaN maximum selects no pixel
            return SKIP
        g_max = max(g_max, grad[i])
    if n == 0 or g_max <= 0:
        return SKIP
    v = np.empty(n, np.bool_)
    n_v = 0
    for i in range(n):
        v[i] = grad[i] > 0.02 * g_max
        n_v += v[i]
    # the disc's brightness (albedo) varies along the limb: the model's amplitude varies
    # linearly across the frame so that it does not bias the edge
    ln = np.empty(n)
    sn = np.empty(n)
    r_mean, c_mean = _mean(rr), _mean(cc)
    for i in range(n):
        ln[i] = (rr[i] - r_mean) / 128.0
        sn[i] = (cc[i] - c_mean) / 432.0
    coef = np.zeros(4)
    resid = np.empty(n)
    buf = np.empty(n)
    for _ in range(3):  # robust: drop hotspots and spikes on the limb
        if n_v < 20 or not _varies(m, v):
            break
        coef = _fit(m, ln, sn, data, v)
        k = 0
        for i in range(n):
            resid[i] = data[i] - (coef[0] * m[i] + coef[1] * m[i] * ln[i]
                                  + coef[2] * m[i] * sn[i] + coef[3])
            if v[i]:
                buf[k] = abs(resid[i])
                k += 1
        limit = 4 * (1.4826 * _median(buf[:k])) + 1e-12
        n_keep = 0
        for i in range(n):
            keep = v[i] and abs(resid[i]) < limit
            v[i] = keep
            n_keep += keep
        if n_keep == n_v:
            break
        n_v = n_keep
    if n_v < 20 or not _varies(m, v):
        return SKIP
    coef = _fit(m, ln, sn, data, v)
    k = 0
    for i in range(n):
        if v[i]:
            buf[k] = coef[0] + coef[1] * ln[i] + coef[2] * sn[i]  # the amplitude here
            k += 1
    if _median_not_positive(buf[:k]):  # _median(buf[:k]) <= 0, without the selection
        return SKIP
    j00 = j01 = j11 = r0 = r1 = chi2 = 0.0
    k = 0
    for i in range(n):
        if not v[i]:
            continue
        res = data[i] - (coef[0] * m[i] + coef[1] * m[i] * ln[i] + coef[2] * m[i] * sn[i]
                         + coef[3])
        # d(model)/d(d_line) = -amp * gl (shifting the scene down moves samples up)
        amp = buf[k]
        k += 1
        ja = -amp * gl[i]
        jb = -amp * gs[i]
        j00 += ja * ja
        j01 += ja * jb
        j11 += jb * jb
        r0 += ja * res
        r1 += jb * res
        chi2 += res * res
    out[0], out[1], out[2], out[3], out[4], out[5] = j00, j01, j11, r0, r1, chi2
    out[6] = n_v - 2
    return OK


@njit(cache=True, nogil=True, error_model="numpy")
def support_counts(o, tol2, codes, n_codes, score, undecided):
    """For each candidate shift ``o[k]`` (rows of (n, 2)): how many distinct ``codes`` the
    shifts ``o[j]`` within their own tolerance of it hold (``score[k]``), decided on
    squares as :func:`iovolc.pointing._best_shift`'s numpy blocks decide them
    (``dl * dl + ds * ds`` against ``tol2[j]`` times 1 -+ 1e-9). A pair within 1e-9 of
    its edge is left to numpy's ``hypot`` there (a SIMD ``hypot`` may differ from
    libm's by an ulp): its candidate is marked ``undecided`` and its score is the
    caller's to take (stop 29)."""
    n = o.shape[0]
    stamp = np.full(n_codes, -1, np.int64)
    for k in range(n):
        o0, o1 = o[k, 0], o[k, 1]
        s = 0
        und = False
        for j in range(n):
            dl = o[j, 0] - o0
            ds = o[j, 1] - o1
            sq = dl * dl + ds * ds
            if sq < tol2[j] * (1.0 - 1e-9):
                c = codes[j]
                if stamp[c] != k:
                    stamp[c] = k
                    s += 1
            elif sq <= tol2[j] * (1.0 + 1e-9):
                und = True
        score[k] = s
        undecided[k] = und


@njit(cache=True, nogil=True, error_model="numpy")
def _mean(x):
    acc = 0.0
    for i in range(x.size):
        acc += x[i]
    return acc / x.size


def warm_up() -> None:
    """Compile (or load from the cache) every kernel: an image build step, as
    :func:`iovolc.raytrace.warm_up`."""
    warm_up_image()
    warm_up_fit()


def warm_up_image() -> None:
    """:func:`warm_up` for the image kernels of this file and :mod:`iovolc.morphology`'s
    (about half the compiling, for one of two processes: see :func:`warm_up_fit`)."""
    x = np.arange(12.0).reshape(3, 4)
    _window_sums(x, 2, 2, False)
    _ncc_normalise(x[:2, :3].copy(), x, 2, 2, 0.0, 1.0, np.empty((2, 3)))
    _median(np.arange(40.0))
    _median_not_positive(np.arange(40.0))
    _kth_and_next(np.arange(40.0), 3)
    _tail_kth_and_next(np.arange(40.0), 3.0, 5)
    _tail_kth(np.arange(40.0), 3.0, 5)
    _row_medians(x, np.empty(3))
    clipped_local_mean(x, x > 2, 3, 1, 3.0)
    _grow(x > 5, 1)
    nonzero_box(x)
    nonzero_box(x > 5)
    from iovolc import greedy, linefit, morphology  # own files: no kernel of this one

    morphology.warm_up()
    greedy.warm_up()
    linefit.warm_up()


def warm_up_fit() -> None:
    """:func:`warm_up` for the limb fit's kernels, the median filter's and the PSF
    blur's (the other half of the compiling)."""
    canvas = np.zeros((1, 8, 8))
    zone = np.zeros((1, 8, 8), np.bool_)
    shapes = np.array([[8, 8]], np.int64)
    fit_shift_spanned(np.stack([padded(canvas[0])]), shapes, zone,
                      *zone_spans(shapes, zone, zone), zone, canvas, 0, 0.0, 0.0, 1)
    _lstsq_svd(np.eye(4), np.ones(4), 1e-15)
    offsets = np.zeros((2, 2))
    for writable in (True, False):  # then read-only, as pandas' arrays are (pointing)
        offsets.setflags(write=writable)
        support_counts(offsets, np.ones(2), np.zeros(2, np.int64), 1, np.empty(2, np.int64),
                       np.empty(2, np.bool_))
    from iovolc import rank_median, separable, supersample  # own files: no kernel of this one

    rank_median.warm_up()
    separable.warm_up()
    supersample.warm_up()
