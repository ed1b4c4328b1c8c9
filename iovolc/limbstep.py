"""Compiled Gauss-Newton limb fit (numba): the common pixel shift of a frame's band strips.

:func:`iovolc.registration._fine_fit` fits, per Minnaert exponent, the shift
that puts the predicted limb on the observed one. The numpy formulation made
some sixty small array calls per band and step (the limb zone's pixels, a
scipy spline evaluation of five point sets, up to four SVD least squares,
medians, a 2x2 solve); :func:`fit_shift` runs the whole loop of steps at once:

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
  amplitude trend, an offset): normal equations solved by Cholesky, or the
  SVD least squares when the Gram matrix is near singular (the numpy
  path's ``lstsq`` gives the minimum-norm answer there);
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
beside the module like :mod:`iovolc.raytrace`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: ``band_step`` status codes
OK, SKIP = 0, 1
#: a Gram matrix whose Cholesky pivot falls below this fraction of its diagonal is
#: solved by SVD least squares instead
_PIVOT_FLOOR = 1e-10


@njit(cache=True, nogil=True, error_model="numpy")
def _weights(x):
    """First index and the 4 cubic B-spline weights at coordinate ``x``."""
    i0 = math.floor(x)
    t = x - i0
    s = 1.0 - t
    t2 = t * t
    t3 = t2 * t
    return (int(i0) - 1, s * s * s / 6.0, (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
            (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0, t3 / 6.0)


#: rows and columns of reflected coefficients around a canvas's (see :func:`padded`)
PAD = 3


def padded(coeffs: np.ndarray) -> np.ndarray:
    """A canvas's spline coefficients extended by reflection, as scipy's constant mode
    reads them inside the canvas."""
    return np.pad(np.asarray(coeffs, dtype=float), PAD, mode="reflect")


@njit(cache=True, nogil=True, error_model="numpy")
def _spline_at(c, n0, n1, r, s):
    """The spline of padded coefficients ``c`` (canvas ``n0`` x ``n1``) at (r, s)."""
    if not (r >= 0.0 and r <= n0 - 1 and s >= 0.0 and s <= n1 - 1):
        return 0.0
    i, a0, a1, a2, a3 = _weights(r)
    j, b0, b1, b2, b3 = _weights(s)
    i += PAD
    j += PAD
    out = 0.0
    for di, a in ((0, a0), (1, a1), (2, a2), (3, a3)):
        row = i + di
        out += a * (b0 * c[row, j] + b1 * c[row, j + 1] + b2 * c[row, j + 2]
                    + b3 * c[row, j + 3])
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def spline_points(coeffs, n0, n1, rr, cc, out):
    """``out`` (5, n): the spline at (rr, cc), (rr +- 0.5, cc), (rr, cc +- 0.5)."""
    for i in range(rr.size):
        r, s = rr[i], cc[i]
        out[0, i] = _spline_at(coeffs, n0, n1, r, s)
        out[1, i] = _spline_at(coeffs, n0, n1, r + 0.5, s)
        out[2, i] = _spline_at(coeffs, n0, n1, r - 0.5, s)
        out[3, i] = _spline_at(coeffs, n0, n1, r, s + 0.5)
        out[4, i] = _spline_at(coeffs, n0, n1, r, s - 0.5)


@njit(cache=True, nogil=True, error_model="numpy")
def _round_half_even(x):
    f = math.floor(x)
    d = x - f
    if d > 0.5 or (d == 0.5 and f % 2 != 0):
        return int(f) + 1
    return int(f)


@njit(cache=True, nogil=True, error_model="numpy")
def _zone_pixels(zone, z_shape, row_any, usable, img, search_px, d_line, d_samp, rr, cc, data):
    """The fitted pixels at a shift into ``rr``, ``cc`` (strip positions in canvas
    coordinates) and ``data`` (values), in row-major order; returns how many."""
    n_r, n_c = img.shape
    z0, z1 = z_shape[0], z_shape[1]
    ci = np.empty(n_c, np.int64)
    c_ok = np.empty(n_c, np.bool_)
    for c in range(n_c):
        x = (c + search_px) - d_samp
        ci[c] = min(max(_round_half_even(x), 0), z1 - 1)
        c_ok[c] = not (x < 0 or x > z1 - 1)
    n = 0
    for r in range(n_r):
        x = (r + search_px) - d_line
        if x < 0 or x > z0 - 1:
            continue
        zr = min(max(_round_half_even(x), 0), z0 - 1)
        if not row_any[zr]:
            continue
        for c in range(n_c):
            if c_ok[c] and zone[zr, ci[c]] and usable[r, c]:
                rr[n] = x
                cc[n] = (c + search_px) - d_samp
                data[n] = img[r, c]
                n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def fit_shift(coeffs, shapes, zones, usables, imgs, search_px, d_line, d_samp, max_steps):
    """Gauss-Newton for the common shift from ``(d_line, d_samp)``: up to ``max_steps``
    steps, each clipped to +-1 px, until one is < 1e-3 px. Per band (the first axis,
    arrays padded to common shapes): padded coefficients, the canvas shape, the limb zone
    (canvas), the strip's usable pixels (False in any padding) and values. Returns
    ``(d_line, d_samp, sigma_line, sigma_samp, reduced chi2)``; the sigmas and chi2 are
    inf when no step was made."""
    n_b = coeffs.shape[0]
    sig0 = sig1 = red = np.inf
    sums = np.empty(7)
    # per band, fixed during the fit: the canvas rows the zone touches, and room for the
    # fitted pixels: every one is a usable strip pixel (two strip pixels can fall on one
    # zone pixel when a shift ends in exactly .5, so the zone's size is no bound)
    row_any = np.zeros((n_b, zones.shape[1]), np.bool_)
    room = 0
    for b in range(n_b):
        for i in range(zones.shape[1]):
            for j in range(zones.shape[2]):
                if zones[b, i, j]:
                    row_any[b, i] = True
                    break
        n_usable = 0
        for i in range(usables.shape[1]):
            for j in range(usables.shape[2]):
                n_usable += usables[b, i, j]
        room = max(room, n_usable)
    rr = np.empty(room)
    cc = np.empty(room)
    data = np.empty(room)
    for _ in range(max_steps):
        j00 = j01 = j11 = r0 = r1 = chi2 = 0.0
        dof = 0
        for b in range(n_b):
            n = _zone_pixels(zones[b], shapes[b], row_any[b], usables[b], imgs[b], search_px,
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
    g = np.zeros((4, 4))
    b = np.zeros(4)
    row = np.empty(4)
    for i in range(m.size):
        if not v[i]:
            continue
        row[0], row[1], row[2], row[3] = m[i], m[i] * ln[i], m[i] * sn[i], 1.0
        for p in range(4):
            b[p] += row[p] * data[i]
            for q in range(p + 1):
                g[p, q] += row[p] * row[q]
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
    idx = np.nonzero(v)[0]
    a = np.empty((idx.size, 4))
    for k in range(idx.size):
        i = idx[k]
        a[k, 0], a[k, 1], a[k, 2], a[k, 3] = m[i], m[i] * ln[i], m[i] * sn[i], 1.0
    # numpy's default cut for small singular values (numba's default is eps alone)
    return np.linalg.lstsq(a, data[idx], rcond=np.finfo(np.float64).eps * max(a.shape))[0]


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
    gl = at[1] - at[2]
    gs = at[3] - at[4]
    grad = np.hypot(gl, gs)
    gmax = grad.max()
    if gmax <= 0:
        return SKIP
    v = grad > 0.02 * gmax
    ln = (rr - rr.mean()) / 128.0
    sn = (cc - cc.mean()) / 432.0
    n_v = v.sum()
    coef = np.zeros(4)
    resid = np.empty(n)
    for _ in range(3):  # robust: drop hotspots and spikes on the limb
        if n_v < 20 or not _varies(m, v):
            break
        coef = _fit(m, ln, sn, data, v)
        for i in range(n):
            resid[i] = data[i] - (coef[0] * m[i] + coef[1] * m[i] * ln[i]
                                  + coef[2] * m[i] * sn[i] + coef[3])
        scatter = 1.4826 * np.median(np.abs(resid[v]))
        keep = v & (np.abs(resid) < 4 * scatter + 1e-12)
        n_keep = keep.sum()
        if n_keep == n_v:
            break
        v = keep
        n_v = n_keep
    if n_v < 20 or not _varies(m, v):
        return SKIP
    coef = _fit(m, ln, sn, data, v)
    amp = coef[0] + coef[1] * ln[v] + coef[2] * sn[v]
    if np.median(amp) <= 0:
        return SKIP
    j00 = j01 = j11 = r0 = r1 = chi2 = 0.0
    k = 0
    for i in range(n):
        if not v[i]:
            continue
        res = data[i] - (coef[0] * m[i] + coef[1] * m[i] * ln[i] + coef[2] * m[i] * sn[i]
                         + coef[3])
        # d(model)/d(d_line) = -amp * gl (shifting the scene down moves samples up)
        ja = -amp[k] * gl[i]
        jb = -amp[k] * gs[i]
        k += 1
        j00 += ja * ja
        j01 += ja * jb
        j11 += jb * jb
        r0 += ja * res
        r1 += jb * res
        chi2 += res * res
    out[0], out[1], out[2], out[3], out[4], out[5] = j00, j01, j11, r0, r1, chi2
    out[6] = n_v - 2
    return OK


def warm_up() -> None:
    """Compile (or load from the cache) the fit's loops: an image build step, as
    :func:`iovolc.raytrace.warm_up`."""
    canvas = np.zeros((1, 8, 8))
    zone = np.zeros((1, 8, 8), np.bool_)
    fit_shift(np.stack([padded(canvas[0])]), np.array([[8, 8]], np.int64), zone, zone,
              canvas, 0, 0.0, 0.0, 1)
