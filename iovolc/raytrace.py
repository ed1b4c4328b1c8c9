"""Compiled per-pixel ray tracing on Io's ellipsoid (numba): the inner loop of :mod:`iovolc.geometry`.

One pass over the rays does, per ray and in registers, what the numpy
formulation did as some forty whole-array operations (each a trip through
memory): apparent ray -> stellar aberration undone -> body frame at the
point's own light time (first order in ``dt``, three iterations) ->
ellipsoid intercept -> the surface vectors -> the backplanes. The
arithmetic is the same, in the same order, as the numpy version it
replaced (kept as the reference in ``tests/_geometry_numpy.py``; equality
to 1e-12 is tested in ``tests/test_speed_equivalence.py``, and agreement
with CSPICE ``sincpt``/``ilumin`` CN+S in ``tests/test_geometry.py``).

The frame constants (observer terms, rotations, Sun) are prepared once per
call by :func:`iovolc.geometry._trace_constants`; here only the loops live.
No fast-math: IEEE arithmetic, no reassociation; numpy's error model (a
division by zero gives inf/NaN as in numpy, not an exception). Compiled code is cached
(``cache=True``, by the package's source digest: :mod:`iovolc.jitcache`) so worker
processes, and any checkout of the same source, load it instead of compiling.

The loops are written so that LLVM vectorises them (several rays per SIMD
register; stop 21): no branch per ray (the three light-time iterations are
selects, not a ``break``), the frame constants held in a tuple (registers, so
no output store can alias them), the ray's surface step inlined into the loops
by numba (``inline="always"``: left to LLVM, the loops stay scalar; the small
helpers LLVM inlines itself), and the rays passed flat, ``(3 n,)``: with a
``(n, 3)`` array the element stride is the runtime ``shape[1]`` and the
vectoriser's versioned loop (``shape[1] == 1``) never runs. Vector ``sqrt`` and
division are IEEE correctly rounded, as the scalar ones, and nothing is
contracted or reassociated, so every ray's value is the same bit for bit as the
scalar loop's, a NaN's sign bit aside (tested against a frozen copy in
``tests/_raytrace_scalar.py``).
Trigonometry is a libm call, which LLVM does not vectorise, so
:func:`backplanes` does it in a second, scalar pass.
"""

from __future__ import annotations

import math

import numpy as np

from iovolc.jitcache import njit

C_KM_S = 299792.458
_DEG = 180.0 / np.pi
#: constant vector layout (float64, see iovolc.geometry._trace_constants)
N_CONST = 52


@njit(cache=True, nogil=True, error_model="numpy")
def _dot(a0, a1, a2, b0, b1, b2):
    return a0 * b0 + a1 * b1 + a2 * b2


@njit(cache=True, nogil=True, error_model="numpy")
def _rot(m, o, x0, x1, x2):
    """Row-major 3x3 ``m`` stored at ``m[o:o+9]`` (array or tuple) times (x0, x1, x2)."""
    return (m[o] * x0 + m[o + 1] * x1 + m[o + 2] * x2,
            m[o + 3] * x0 + m[o + 4] * x1 + m[o + 5] * x2,
            m[o + 6] * x0 + m[o + 7] * x1 + m[o + 8] * x2)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _consts(k):
    """The constant vector as a tuple (held in registers inside the loops)."""
    return (k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[11], k[12],
            k[13], k[14], k[15], k[16], k[17], k[18], k[19], k[20], k[21], k[22], k[23], k[24],
            k[25], k[26], k[27], k[28], k[29], k[30], k[31], k[32], k[33], k[34], k[35], k[36],
            k[37], k[38], k[39], k[40], k[41], k[42], k[43], k[44], k[45], k[46], k[47], k[48],
            k[49], k[50], k[51])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _root(qa, qb, qc):
    """Nearer root of ``qa t^2 + qb t + qc`` and whether it is a hit (real, t > 0)."""
    disc = qb * qb - 4 * qa * qc
    hit = disc >= 0
    t = (-qb - math.sqrt(disc if hit else 0.0)) / (2 * qa)
    return hit and t > 0, t


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _surface(k, ua0, ua1, ua2):
    """One apparent J2000 ray: (hit, dt, point, point -> observer), body-fixed km.

    ``k`` (the tuple of :func:`_consts`) holds: 0-2 obs_vel / c, 3-11 rot,
    12-20 drot, 21-23 o0, 24-26 o1, 27-29 1 / radii^2, 30 lt0, 31-33 c_0 c_1 c_2.
    No branch: a ray that misses in an iteration keeps that iteration's ``t``
    (it becomes NaN) and the previous ``dt``, and no later iteration changes
    them, exactly as a ``break`` out of the iterations would.
    """
    w0, w1, w2 = ua0 - k[0], ua1 - k[1], ua2 - k[2]
    nw = math.sqrt(_dot(w0, w1, w2, w0, w1, w2))
    u0, u1, u2 = w0 / nw, w1 / nw, w2 / nw
    ru0, ru1, ru2 = _rot(k, 3, u0, u1, u2)
    dr0, dr1, dr2 = _rot(k, 12, u0, u1, u2)
    ia0, ia1, ia2 = k[27], k[28], k[29]
    wr0, wr1, wr2 = ru0 * ia0, ru1 * ia1, ru2 * ia2
    wd0, wd1, wd2 = dr0 * ia0, dr1 * ia1, dr2 * ia2
    o00, o01, o02 = k[21], k[22], k[23]
    o10, o11, o12 = k[24], k[25], k[26]
    a_0 = _dot(ru0, ru1, ru2, wr0, wr1, wr2)
    a_1 = _dot(ru0, ru1, ru2, wd0, wd1, wd2)
    a_2 = _dot(dr0, dr1, dr2, wd0, wd1, wd2)
    b_00 = _dot(wr0, wr1, wr2, o00, o01, o02)
    b_01 = _dot(wr0, wr1, wr2, o10, o11, o12)
    b_10 = _dot(wd0, wd1, wd2, o00, o01, o02)
    b_11 = _dot(wd0, wd1, wd2, o10, o11, o12)
    b_d = b_01 - b_10
    lt0, c_0, c_1, c_2 = k[30], k[31], k[32], k[33]
    hit, t = _root(a_0, 2 * b_00, c_0 - 1.0)
    dt = t / C_KM_S - lt0 if hit else 0.0
    for _ in range(2):
        dt2 = dt * dt
        h, tn = _root(a_0 - 2 * dt * a_1 + dt2 * a_2,
                      2 * (b_00 + dt * b_d - dt2 * b_11),
                      c_0 + 2 * dt * c_1 + dt2 * c_2 - 1.0)
        t = tn if hit else t
        dtn = tn / C_KM_S - lt0
        dt = dtn if (hit and h) else dt
        hit = hit and h
    t = t if hit else np.nan
    p0 = o00 + dt * o10 + t * (ru0 - dt * dr0)
    p1 = o01 + dt * o11 + t * (ru1 - dt * dr1)
    p2 = o02 + dt * o12 + t * (ru2 - dt * dr2)
    # apparent line of sight in the body frame at the point's own epoch
    r0, r1, r2 = _rot(k, 3, ua0, ua1, ua2)
    d0, d1, d2 = _rot(k, 12, ua0, ua1, ua2)
    ob0 = p0 - (r0 - dt * d0) * t
    ob1 = p1 - (r1 - dt * d1) * t
    ob2 = p2 - (r2 - dt * d2) * t
    return hit, dt, p0, p1, p2, ob0, ob1, ob2


@njit(cache=True, nogil=True, error_model="numpy")
def _vectors(k, dt, p0, p1, p2, ob0, ob1, ob2):
    """Normal, point -> observer, point -> Sun (aberrated by the point's motion).

    ``k`` (tuple) 34-36 radii^2, 37-39 sun_bf, 40-42 sun_bf_rate, 43-51 rot @ drot^T.
    """
    n0, n1, n2 = p0 / k[34], p1 / k[35], p2 / k[36]
    to0, to1, to2 = ob0 - p0, ob1 - p1, ob2 - p2
    s0 = (k[37] - dt * k[40]) - p0
    s1 = (k[38] - dt * k[41]) - p1
    s2 = (k[39] - dt * k[42]) - p2
    v0, v1, v2 = _rot(k, 43, p0, p1, p2)
    v0, v1, v2 = v0 / C_KM_S, v1 / C_KM_S, v2 / C_KM_S
    dist = math.sqrt(_dot(s0, s1, s2, s0, s1, s2))
    us0, us1, us2 = s0 / dist, s1 / dist, s2 / dist
    ud = _dot(us0, us1, us2, v0, v1, v2)
    s0 = dist * (us0 + v0 - ud * us0)
    s1 = dist * (us1 + v1 - ud * us1)
    s2 = dist * (us2 + v2 - ud * us2)
    return n0, n1, n2, to0, to1, to2, s0, s1, s2


@njit(cache=True, nogil=True, error_model="numpy")
def _cos(a0, a1, a2, b0, b1, b2):
    return _dot(a0, a1, a2, b0, b1, b2) / math.sqrt(
        _dot(a0, a1, a2, a0, a1, a2) * _dot(b0, b1, b2, b0, b1, b2))


@njit(cache=True, nogil=True, error_model="numpy")
def _angle_deg(c):
    return math.acos(min(max(c, -1.0), 1.0)) * _DEG


@njit(cache=True, nogil=True, error_model="numpy")
def pixel_rays(line, sample, cam, out):
    """Apparent J2000 unit rays of pixel coordinates into ``out``, flat ``(3 n,)``.

    ``cam``: 0 centre line, 1 centre sample, 2 pixel size mm, 3 focal length
    mm, 4-6 line axis, 7-9 sample axis, 10-18 band -> JUNO_JIRAM_I,
    19-27 JUNO_JIRAM_I -> J2000 (row-major).
    """
    c = (cam[0], cam[1], cam[2], cam[3], cam[4], cam[5], cam[6], cam[7], cam[8], cam[9],
         cam[10], cam[11], cam[12], cam[13], cam[14], cam[15], cam[16], cam[17], cam[18],
         cam[19], cam[20], cam[21], cam[22], cam[23], cam[24], cam[25], cam[26], cam[27])
    for i in range(line.size):
        dl = (line[i] - c[0]) * c[2]
        ds = (sample[i] - c[1]) * c[2]
        # dl * line_axis + ds * sample_axis + f * (0, 0, 1), term for term as the
        # camera's numpy `directions` adds them (so -0.0 sums alike)
        v0 = dl * c[4] + ds * c[7] + c[3] * 0.0
        v1 = dl * c[5] + ds * c[8] + c[3] * 0.0
        v2 = dl * c[6] + ds * c[9] + c[3] * 1.0
        nv = math.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
        v0, v1, v2 = v0 / nv, v1 / nv, v2 / nv
        d0, d1, d2 = _rot(c, 10, v0, v1, v2)
        out[3 * i], out[3 * i + 1], out[3 * i + 2] = _rot(c, 19, d0, d1, d2)


@njit(cache=True, nogil=True, error_model="numpy")
def surface(u, k, point, obs_bf, hit, dt):
    """Intercepts of apparent J2000 rays ``u`` (flat ``(3 n,)``): point and
    point -> observer (flat ``(3 n,)``), hit, dt."""
    kt = _consts(k)
    for i in range(u.size // 3):
        h, d, p0, p1, p2, o0, o1, o2 = _surface(kt, u[3 * i], u[3 * i + 1], u[3 * i + 2])
        hit[i], dt[i] = h, d
        point[3 * i], point[3 * i + 1], point[3 * i + 2] = p0, p1, p2
        obs_bf[3 * i], obs_bf[3 * i + 1], obs_bf[3 * i + 2] = o0, o1, o2


@njit(cache=True, nogil=True, error_model="numpy")
def cosines(u, k, hit, cos_i, cos_e):
    """Hit mask, cos incidence and cos emission (NaN off the disc) of rays ``u``
    (flat ``(3 n,)``).

    Two passes, as :func:`backplanes` does (stop 35): the ray tracing stores the hit
    and the two raw cosines, then a pass clamps them to [-1, 1] on the disc and
    writes NaN off it. The same values as clamping and choosing inside the one
    loop, but the first loop has no per-ray select, and LLVM vectorises it on
    hosts where it did not vectorise the one loop (an AMD EPYC, AVX2: 115 -> 51 ns
    per ray, ``bench/kernels_simd.py``; vector square roots and divisions round as
    the scalar ones do)."""
    kt = _consts(k)
    n = u.size // 3
    for i in range(n):
        h, d, p0, p1, p2, o0, o1, o2 = _surface(kt, u[3 * i], u[3 * i + 1], u[3 * i + 2])
        n0, n1, n2, to0, to1, to2, s0, s1, s2 = _vectors(kt, d, p0, p1, p2, o0, o1, o2)
        hit[i] = h
        cos_i[i] = _cos(n0, n1, n2, s0, s1, s2)
        cos_e[i] = _cos(n0, n1, n2, to0, to1, to2)
    for i in range(n):
        if hit[i]:
            cos_i[i] = min(max(cos_i[i], -1.0), 1.0)
            cos_e[i] = min(max(cos_e[i], -1.0), 1.0)
        else:
            cos_i[i] = np.nan
            cos_e[i] = np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def backplanes(u, k, ifov_rad, hit, planes):
    """Hit mask and backplanes (7, n): lat, lon W, emission, incidence, phase (deg),
    range and pixel scale (km); NaN off the disc. ``u`` flat ``(3 n,)``.

    First a vectorised pass stores the sine of latitude, the point's x, the
    three cosines, the range and the scale (and y aside); then a scalar pass
    takes the arcsines, arctangent and arccosines.
    """
    kt = _consts(k)
    n = u.size // 3
    y = np.empty(n)
    for i in range(n):
        h, d, p0, p1, p2, o0, o1, o2 = _surface(kt, u[3 * i], u[3 * i + 1], u[3 * i + 2])
        n0, n1, n2, to0, to1, to2, s0, s1, s2 = _vectors(kt, d, p0, p1, p2, o0, o1, o2)
        hit[i] = h
        r = math.sqrt(_dot(p0, p1, p2, p0, p1, p2))
        planes[0, i] = min(max(p2 / r, -1.0), 1.0)
        planes[1, i] = p0
        y[i] = p1
        planes[2, i] = _cos(n0, n1, n2, to0, to1, to2)
        planes[3, i] = _cos(n0, n1, n2, s0, s1, s2)
        planes[4, i] = _cos(s0, s1, s2, to0, to1, to2)
        rng = math.sqrt(_dot(to0, to1, to2, to0, to1, to2))
        planes[5, i] = rng
        planes[6, i] = rng * ifov_rad
    for i in range(n):
        if not hit[i]:
            for j in range(7):
                planes[j, i] = np.nan
            continue
        planes[0, i] = math.asin(planes[0, i]) * _DEG
        lon = -(math.atan2(y[i], planes[1, i]) * _DEG)
        planes[1, i] = lon % 360.0
        for j in range(2, 5):
            planes[j, i] = _angle_deg(planes[j, i])


@njit(cache=True, nogil=True, error_model="numpy")
def lit_factors(hit, cos_i, cos_e, lit, mu0, mu):
    """The Minnaert factors' inputs of :func:`iovolc.shading._lit_factors` in one pass over
    flat arrays (stop 22): ``lit`` = on the disc and ``cos i > 0``; the lit pixels' ``cos i``
    and ``cos e`` floored at 0.02, in order, into ``mu0`` and ``mu``; returns how many.

    Each value is numpy's: ``nan_to_num`` (NaN -> -1 for ``cos i``, 0 for ``cos e``;
    +-inf -> +-the largest double) then ``clip`` at 0 and at 0.02 (on a lit pixel
    ``cos i > 0``, so its value is kept as it is)."""
    big = np.finfo(np.float64).max
    n = 0
    for p in range(hit.size):
        ci = cos_i[p]
        if ci == np.inf:
            ci = big
        ok = hit[p] and ci > 0.0  # NaN and -inf are not > 0
        lit[p] = ok
        if ok:
            ce = cos_e[p]
            if ce != ce:
                ce = 0.0
            elif ce == np.inf:
                ce = big
            mu0[n] = ci
            mu[n] = ce if ce >= 0.02 else 0.02
            n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def spin_grid(row, cos_col, col, out):
    """Unit directions on an open grid of spin angles, flat ``(n m 3,)`` into ``out``:
    ``out[i, j] = cos_col[j] * row[i] + col[j]`` (``row`` (n, 3): the rows' ``sin phi
    e_x + cos phi e_z``; ``col`` (m, 3): the columns' ``sin psi e_s``). The products and
    sums numpy's broadcast of :func:`iovolc.registration._from_spin` makes, one pass
    with no (n, m, 3) temporary (stop 27): the same bits for finite values (LLVM may
    order a product's operands otherwise, which only a NaN's sign bit shows)."""
    n, m = row.shape[0], cos_col.shape[0]
    for i in range(n):
        r0, r1, r2 = row[i, 0], row[i, 1], row[i, 2]
        base = 3 * m * i
        for j in range(m):
            c = cos_col[j]
            out[base + 3 * j] = c * r0 + col[j, 0]
            out[base + 3 * j + 1] = c * r1 + col[j, 1]
            out[base + 3 * j + 2] = c * r2 + col[j, 2]


def warm_up() -> None:
    """Compile (or load from the cache) every loop: an image build step, so that
    workers start with compiled code (``NUMBA_CACHE_DIR`` names a writable cache)."""
    k = np.zeros(N_CONST)
    k[27:30] = k[34:37] = 1.0
    k[31] = 2.0  # an observer outside the unit sphere: every ray misses, nothing divides by 0
    u = np.array([0.0, 0.0, 1.0])
    one = np.zeros(1)
    constants = np.r_[np.zeros(3), 1.0, np.zeros(24)]
    pixel_rays(one, one, constants, np.empty(3))
    # read-only pixel positions (numpy's broadcast views: geometry._pixel_rays)
    fixed = np.zeros(1)
    fixed.setflags(write=False)
    pixel_rays(fixed, fixed, constants, np.empty(3))
    surface(u, k, np.empty(3), np.empty(3), np.empty(1, np.bool_), np.empty(1))
    cosines(u, k, np.empty(1, np.bool_), np.empty(1), np.empty(1))
    backplanes(u, k, 1e-4, np.empty(1, np.bool_), np.empty((7, 1)))
    lit_factors(np.ones(1, np.bool_), one, one, np.empty(1, np.bool_), np.empty(1), np.empty(1))
    spin_grid(np.zeros((1, 3)), one, np.zeros((1, 3)), np.empty(3))
