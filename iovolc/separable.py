"""Separable image operations compiled (numba), the same bits as scipy's: the
predicted disc's PSF blur (``scipy.ndimage.gaussian_filter``, ``mode="constant"``)
and the noise map's bilinear zoom (``scipy.ndimage.zoom``, ``order=1``,
``mode="nearest"``, ``grid_mode=True``).

scipy builds the 1-D kernel in numpy (``exp(-0.5 / sigma**2 * x**2)`` over
``x = -r..r``, ``r = int(truncate * sigma + 0.5)``, divided by its sum) and
correlates each axis in turn, axis 0 first. For a symmetric kernel its C loop
(``NI_Correlate1D``) takes, per output value, the centre tap times the centre
weight, then adds ``(left + right) * weight`` for the outermost pair first and
the innermost last; values beyond the edge are the constant 0.0. This module
builds the kernel with the same numpy calls and sums in that order, over whole
rows at a time (LLVM vectorises the rows: every shifted read is a slice, so no
index can be negative), instead of scipy's copy of every line into a padded
buffer. ``tests/test_speed_equivalence.py`` compares the
bits with scipy's. Cached by the package's source digest (:mod:`iovolc.jitcache`).

The zoom (stop 21) follows scipy's ``NI_ZoomShift`` for order 1: per output
index along each axis the input coordinate ``((k + 0.5) * zoom - 0.5)`` (zoom =
input size / output size), the first of its two input indices
``floor(coordinate)``, both clamped to the axis (nearest), and the weights
``w0 = 1 - frac``, ``w1 = 1 - w0`` (scipy's spline weights: the last is one
minus the others); each output value is ``0.0`` plus, in the order (0, 0),
(0, 1), (1, 0), (1, 1), ``value * row weight * column weight``. The output
shape and the zoom factors are computed as ``scipy.ndimage.zoom`` computes
them (Python's ``round``). Tested bit for bit against scipy.

The cubic B-spline prefilter (stop 22; the limb fit's canvases) follows scipy's
``spline_filter(order=3, mode="constant")``: axis 0, then axis 1; per line of
more than one value (scipy's ``apply_filter``): every value times the gain
``(1 - z)(1 - 1/z)`` (pole ``z = sqrt(3) - 2``, scipy's literal), the causal
mirror start ``c0 + z^(n-1) c[n-1]``, plus ``z^i (c[i] + z^(n-1) c[n-1-i])`` for
``i = 1..n-2`` (``z^i`` by repeated products, ``z^(n-1)`` by ``pow``), over
``1 - z^(2(n-1))``; ``c[i] += z c[i-1]`` forward; the anticausal mirror end
``(z c[n-2] + c[n-1]) z / (z^2 - 1)``; ``c[i] = z (c[i+1] - c[i])`` backward (from
scipy's ``ni_splines.c``: mode "constant" takes the mirror starts). Here every
line of an axis runs at once, each value of a line in scipy's order: the lines of
axis 1 are the columns of a transposed copy. Tested bit for bit against scipy.

Stop 36: the same blur in scipy's default mode "reflect" (``d c b a | a b c d``;
float32 rounded between the axes, as scipy's output array is), and
``map_coordinates(order=1, mode="nearest")`` at scattered positions with a fill
outside the image (the coarse registration's strip template); see
:func:`gaussian_blur_reflect` and :func:`sample_linear_nearest`, tested in
``tests/test_scipy_replicas.py``.

Stop 37: a kernel of radius 3 (the PSF's sigma 0.7; sigma 0.625-0.874) sums its seven
taps per value in registers, each pass over a line once, instead of adding each tap
pair to the whole line in turn (seven passes over memory): per value the same
additions in the same order, so the same bits (``tests/test_scipy_replicas.py``
compares both modes with scipy at every radius; the old loop is
``symmetric_blur_taps_in_turn`` in ``tests/_speed_reference.py``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from iovolc.jitcache import njit


def gaussian_weights(sigma: float, *, truncate: float = 4.0) -> np.ndarray:
    """scipy's Gaussian kernel for ``sigma`` (its own numpy steps; reversed as scipy
    correlates with it, a no-op on these exactly symmetric weights)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return (phi / phi.sum())[::-1].copy()


def gaussian_blur_constant(x: np.ndarray, sigma: float, *, truncate: float = 4.0
                           ) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(x, sigma, mode="constant")`` of a 2-D float
    array, exactly (a copy for ``sigma <= 1e-15``, as scipy's)."""
    x = np.ascontiguousarray(x, dtype=float)
    if not sigma > 1e-15:  # scipy filters no axis then: a copy
        return x.copy()
    w = gaussian_weights(sigma, truncate=truncate)
    out = np.empty_like(x)
    symmetric_blur(x, w, out)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def symmetric_blur(x, w, out):
    """Correlate ``x`` with the symmetric odd kernel ``w`` along axis 0, then axis 1,
    zeros beyond the edges, into ``out`` (scipy's order of operations, see above)."""
    n0, n1 = x.shape
    r = (w.size - 1) // 2
    tmp = np.empty((n0, n1))
    zero = np.zeros(n1)
    for i in range(n0):
        t = tmp[i]
        src = x[i]
        wc = w[r]
        if r == 3:  # the PSF's sigma 0.7: the seven taps summed in registers (stop 37)
            a0 = x[i - 3] if i - 3 >= 0 else zero
            b0 = x[i + 3] if i + 3 < n0 else zero
            a1 = x[i - 2] if i - 2 >= 0 else zero
            b1 = x[i + 2] if i + 2 < n0 else zero
            a2 = x[i - 1] if i - 1 >= 0 else zero
            b2 = x[i + 1] if i + 1 < n0 else zero
            _seven_taps(src, a0, b0, a1, b1, a2, b2, w, t)
            continue
        for j in range(n1):
            t[j] = src[j] * wc
        for jj in range(-r, 0):
            a = x[i + jj] if i + jj >= 0 else zero
            b = x[i - jj] if i - jj < n0 else zero
            wj = w[r + jj]
            for j in range(n1):
                t[j] += (a[j] + b[j]) * wj
    buf = np.zeros(n1 + 2 * r)
    for i in range(n0):
        o = out[i]
        t = tmp[i]
        for j in range(n1):  # buf[r:r + n1] = t: a loop (morphology._line_extreme, stop 41)
            buf[r + j] = t[j]
        _padded_row_pass(buf, w, o)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _seven_taps(c, a0, b0, a1, b1, a2, b2, w, out):
    """``out[j]`` = a 7-tap symmetric kernel ``w`` on one line: ``c[j] * w[3]``, then
    ``(a[j] + b[j]) * w[k]`` for the pairs from the outermost in (``a0``/``b0`` the
    values 3 before and after ``j``, ``a2``/``b2`` 1), in scipy's order, summed in a
    register (stop 37)."""
    wc, w0, w1, w2 = w[3], w[0], w[1], w[2]
    for j in range(out.size):
        acc = c[j] * wc
        acc += (a0[j] + b0[j]) * w0
        acc += (a1[j] + b1[j]) * w1
        acc += (a2[j] + b2[j]) * w2
        out[j] = acc


@njit(cache=True, nogil=True, error_model="numpy")
def _padded_row_pass(buf, w, out):
    """One line of an axis-1 pass: ``out[j]`` = the symmetric kernel ``w`` (radius r)
    correlated with ``buf`` (the line with r values of its extension either side), in
    scipy's order: the centre tap, then the pairs from the outermost in."""
    n1 = out.size
    r = (w.size - 1) // 2
    wc = w[r]
    if r == 3:  # the seven taps summed in registers, the same additions (stop 37)
        _seven_taps(buf[3:3 + n1], buf[0:n1], buf[6:6 + n1], buf[1:1 + n1], buf[5:5 + n1],
                    buf[2:2 + n1], buf[4:4 + n1], w, out)
        return
    for j in range(n1):
        out[j] = buf[r + j] * wc
    for jj in range(-r, 0):
        # slices, not buf[r + j + jj]: numba would add its negative-index
        # wraparound to a shifted index, and LLVM would not vectorise the loop
        left = buf[r + jj:r + jj + n1]
        right = buf[r - jj:r - jj + n1]
        wj = w[r + jj]
        for j in range(n1):
            out[j] += (left[j] + right[j]) * wj


def gaussian_blur_reflect(x: np.ndarray, sigma: float, *, truncate: float = 4.0
                          ) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(x, sigma)`` (its default ``mode="reflect"``) of a
    2-D float32 or float64 array, exactly, in its dtype (stop 36): scipy sums each axis in
    double and rounds the axis-0 pass to the output's dtype before the axis-1 pass reads
    it; so does this. scipy's own call for another dtype, a kernel reaching past an
    axis's length (its reflection repeats then) or ``sigma <= 1e-15``."""
    x = np.asarray(x)
    if not sigma > 1e-15 or x.ndim != 2 or x.dtype not in (np.float32, np.float64):
        return ndi.gaussian_filter(x, sigma, truncate=truncate)
    w = gaussian_weights(sigma, truncate=truncate)
    if (w.size - 1) // 2 >= min(x.shape):
        return ndi.gaussian_filter(x, sigma, truncate=truncate)
    x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    out = np.empty_like(x)
    symmetric_blur_reflect(x, w, out)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def symmetric_blur_reflect(x, w, out):
    """Correlate ``x`` with the symmetric odd kernel ``w`` (radius < both axes' lengths)
    along axis 0, then axis 1, each line extended by its mirror (``d c b a | a b c d``),
    every sum in double in scipy's order, each pass rounded to ``out``'s dtype."""
    n0, n1 = x.shape
    r = (w.size - 1) // 2
    wc = w[r]
    tmp = np.empty_like(out)
    acc = np.empty(n1)
    for i in range(n0):
        src = x[i]
        for j in range(n1):
            acc[j] = np.float64(src[j]) * wc
        for jj in range(-r, 0):
            ia, ib = i + jj, i - jj
            a = x[ia if ia >= 0 else -ia - 1]
            b = x[ib if ib < n0 else 2 * n0 - 1 - ib]
            wj = w[r + jj]
            for j in range(n1):
                acc[j] += (np.float64(a[j]) + np.float64(b[j])) * wj
        t = tmp[i]
        for j in range(n1):
            t[j] = acc[j]
    buf = np.empty(n1 + 2 * r)
    for i in range(n0):
        t = tmp[i]
        for j in range(n1):
            buf[r + j] = t[j]
        for k in range(r):  # the mirror: buf[r - 1 - k] = t[k], buf[r + n1 + k] = t[n1 - 1 - k]
            buf[r - 1 - k] = t[k]
            buf[r + n1 + k] = t[n1 - 1 - k]
        _padded_row_pass(buf, w, acc)
        o = out[i]
        for j in range(n1):
            o[j] = acc[j]


def sample_linear_nearest(x: np.ndarray, line: np.ndarray, sample: np.ndarray,
                          fill: float) -> np.ndarray:
    """``np.where(inside, map_coordinates(x, [nan_to_num(line), nan_to_num(sample)],
    order=1, mode="nearest"), fill)`` of a 2-D float32 or float64 ``x``, exactly, in its
    dtype (stop 36); ``inside``: the positions within the pixels' edges,
    ``-0.5 < line < n0 - 0.5`` and so for ``sample`` (NaN: outside).

    scipy's order-1 interpolation (``NI_GeometricTransform``): per coordinate ``c`` the
    indices ``floor(c)`` and ``floor(c) + 1``, each clamped to the axis (mode
    "nearest": the coordinate itself is not, so a position in the edge pixels' outer
    halves weighs the edge value twice), the weights ``w0 = 1 - frac`` and
    ``w1 = 1 - w0``; the value ``0.0`` plus, in the order (0, 0), (0, 1), (1, 0), (1, 1),
    ``value * line weight * sample weight`` in double, rounded to ``x``'s dtype, as
    ``np.where`` rounds ``fill``. Another dtype or an axis shorter than 2: scipy's."""
    x = np.asarray(x)
    line, sample = np.asarray(line, dtype=float), np.asarray(sample, dtype=float)
    if x.ndim != 2 or x.dtype not in (np.float32, np.float64) or min(x.shape) < 2:
        vals = ndi.map_coordinates(x, [np.nan_to_num(line), np.nan_to_num(sample)], order=1,
                                   mode="nearest")
        inside = (line > -0.5) & (line < x.shape[0] - 0.5) & (sample > -0.5) & \
            (sample < x.shape[1] - 0.5)
        return np.where(inside, vals, fill)
    x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    out = np.empty(np.broadcast_shapes(line.shape, sample.shape), dtype=x.dtype)
    lf, sf = (np.ascontiguousarray(np.broadcast_to(a, out.shape)).reshape(-1)
              for a in (line, sample))
    bilinear_at(x, lf, sf, out.dtype.type(fill), out.reshape(-1))
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def bilinear_at(x, line, sample, fill, out):
    """:func:`sample_linear_nearest` into the flat ``out``."""
    n0, n1 = x.shape
    for k in range(out.size):
        cl, cs = line[k], sample[k]
        if not (cl > -0.5 and cl < n0 - 0.5 and cs > -0.5 and cs < n1 - 0.5):
            out[k] = fill
            continue
        fl, fs = math.floor(cl), math.floor(cs)
        a0 = 1.0 - (cl - fl)
        a1 = 1.0 - a0
        b0 = 1.0 - (cs - fs)
        b1 = 1.0 - b0
        i0, j0 = min(max(int(fl), 0), n0 - 1), min(max(int(fs), 0), n1 - 1)
        i1, j1 = min(max(int(fl) + 1, 0), n0 - 1), min(max(int(fs) + 1, 0), n1 - 1)
        t = 0.0
        t += np.float64(x[i0, j0]) * a0 * b0
        t += np.float64(x[i0, j1]) * a0 * b1
        t += np.float64(x[i1, j0]) * a1 * b0
        t += np.float64(x[i1, j1]) * a1 * b1
        out[k] = t


def zoom_linear_nearest(x: np.ndarray, zoom: tuple[float, float]) -> np.ndarray:
    """``scipy.ndimage.zoom(x, zoom, order=1, mode="nearest", grid_mode=True)`` of a
    2-D float array, exactly."""
    x = np.ascontiguousarray(x, dtype=float)
    z = (float(zoom[0]), float(zoom[1]))
    shape = tuple(int(round(n * f)) for n, f in zip(x.shape, z, strict=True))
    if z == (1.0, 1.0):  # scipy returns the input then
        return x.copy()
    div = np.array(shape)
    factors = np.divide(np.array(x.shape), div, out=np.ones(2), where=div != 0)
    out = np.empty(shape)
    if out.size and x.size:
        bilinear_zoom(x, float(factors[0]), float(factors[1]), out)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _axis_weights(n_in, zoom, idx0, idx1, w0, w1):
    """Per output index of one axis: the two input indices (clamped) and weights."""
    for k in range(idx0.size):
        cc = float(k)
        cc += 0.5
        cc *= zoom
        cc -= 0.5
        cc += 0.0  # scipy adds its pre-padding, 0 here
        frac = cc - math.floor(cc)
        w0[k] = 1.0 - frac
        w1[k] = 1.0 - w0[k]
        start = int(math.floor(cc))
        idx0[k] = min(max(start, 0), n_in - 1)
        idx1[k] = min(max(start + 1, 0), n_in - 1)


@njit(cache=True, nogil=True, error_model="numpy")
def bilinear_zoom(x, zoom0, zoom1, out):
    """The order-1 zoom of ``x`` into ``out`` (its shape: the output's), zoom factors
    ``input size / output size`` per axis, edges clamped (see the module)."""
    n0, n1 = out.shape
    r0, r1 = np.empty(n0, np.int64), np.empty(n0, np.int64)
    wr0, wr1 = np.empty(n0), np.empty(n0)
    c0, c1 = np.empty(n1, np.int64), np.empty(n1, np.int64)
    wc0, wc1 = np.empty(n1), np.empty(n1)
    _axis_weights(x.shape[0], zoom0, r0, r1, wr0, wr1)
    _axis_weights(x.shape[1], zoom1, c0, c1, wc0, wc1)
    for i in range(n0):
        top, bottom = x[r0[i]], x[r1[i]]
        a, b = wr0[i], wr1[i]
        o = out[i]
        for j in range(n1):
            t = 0.0
            t += top[c0[j]] * a * wc0[j]
            t += top[c1[j]] * a * wc1[j]
            t += bottom[c0[j]] * b * wc0[j]
            t += bottom[c1[j]] * b * wc1[j]
            o[j] = t


#: scipy's pole of the cubic B-spline prefilter, sqrt(3) - 2 (its literal)
_CUBIC_POLE = -0.267949192431122706472553658494127633


def spline_filter_cubic(x: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.spline_filter(x, order=3, mode="constant")`` of a 2-D array, exactly
    (float64 out)."""
    if np.iscomplexobj(x):
        raise TypeError("spline_filter_cubic: real input only")
    out = np.array(x, dtype=float, order="C")
    if out.ndim != 2:
        raise ValueError(f"spline_filter_cubic: a 2-D array, not {out.ndim}-D")
    if out.size:
        _cubic_prefilter(out, _CUBIC_POLE)
    return out


#: rows of axis 1 filtered together (a transposed block: each row a column of it)
_ROW_BLOCK = 8


@njit(cache=True, nogil=True, error_model="numpy")
def _cubic_prefilter(c, z):
    """scipy's cubic prefilter of ``c`` in place: axis 0 (every column at once), then
    axis 1 (blocks of rows, transposed into a small buffer); axes of one value are
    left alone, as scipy leaves them."""
    n0, n1 = c.shape
    if n0 > 1:
        _cubic_prefilter_columns(c, z)
    if n1 > 1:
        buf = np.zeros((n1, _ROW_BLOCK))
        for r0 in range(0, n0, _ROW_BLOCK):
            nb = min(_ROW_BLOCK, n0 - r0)
            for r in range(nb):
                row = c[r0 + r]
                for i in range(n1):
                    buf[i, r] = row[i]
            _cubic_prefilter_columns(buf, z)  # columns nb.. hold stale values: unread
            for r in range(nb):
                row = c[r0 + r]
                for i in range(n1):
                    row[i] = buf[i, r]


@njit(cache=True, nogil=True, error_model="numpy")
def _cubic_prefilter_columns(c, z):
    """The cubic prefilter of every column of ``c`` (n >= 2 rows), in place, each value
    in scipy's order of operations (see the module)."""
    n, m = c.shape
    gain = 1.0
    gain *= (1.0 - z) * (1.0 - 1.0 / z)
    for i in range(n):
        r = c[i]
        for j in range(m):
            r[j] *= gain
    # causal start (mirror): every column's c[0]
    z_n_1 = math.pow(z, float(n - 1))
    acc = np.empty(m)
    first, last = c[0], c[n - 1]
    for j in range(m):
        acc[j] = first[j] + z_n_1 * last[j]
    z_i = z
    for i in range(1, n - 1):
        a, b = c[i], c[n - 1 - i]
        for j in range(m):
            acc[j] += z_i * (a[j] + z_n_1 * b[j])
        z_i *= z
    den = 1 - z_n_1 * z_n_1
    for j in range(m):
        first[j] = acc[j] / den
    for i in range(1, n):
        r, p = c[i], c[i - 1]
        for j in range(m):
            r[j] += z * p[j]
    # anticausal start (mirror), then backward
    prev = c[n - 2]
    zz = z * z - 1
    for j in range(m):
        last[j] = (z * prev[j] + last[j]) * z / zz
    for i in range(n - 2, -1, -1):
        r, nx = c[i], c[i + 1]
        for j in range(m):
            r[j] = z * (nx[j] - r[j])


def warm_up() -> None:
    """Compile (or load from the cache) the loops."""
    _cubic_prefilter(np.zeros((3, 2)), _CUBIC_POLE)
    symmetric_blur(np.zeros((2, 3)), np.array([0.25, 0.5, 0.25]), np.empty((2, 3)))
    bilinear_zoom(np.zeros((2, 3)), 0.5, 0.5, np.empty((4, 6)))
    for dt in (np.float32, np.float64):
        symmetric_blur_reflect(np.zeros((3, 3), dt), np.array([0.25, 0.5, 0.25]),
                               np.empty((3, 3), dt))
        bilinear_at(np.zeros((2, 2), dt), np.zeros(1), np.zeros(1), dt(0.0), np.empty(1, dt))
    # read-only positions (numpy's broadcast views, as sample_linear_nearest passes when
    # they already have the output's shape): a signature of their own
    fixed = np.zeros(1)
    fixed.setflags(write=False)
    bilinear_at(np.zeros((2, 2), np.float32), fixed, fixed, np.float32(0.0),
                np.empty(1, np.float32))
