"""The scalar ray-tracing loops that stop 21 made vectorisable: the exactness reference.

Verbatim from ``iovolc/raytrace.py`` before stop 21 (one ray per iteration, a
``break`` out of the light-time iterations on a miss, ``(n, 3)`` rays and the
constants read from the array). The unchanged helpers (``_dot``, ``_rot``,
``_vectors``, ``_cos``, ``_angle_deg``) are imported from the product, so this
file holds only what changed. ``tests/test_speed_equivalence.py`` asserts the
product's loops give the same values bit for bit. :func:`cosines_one_loop` is the
cosines' loop as it was from stop 21 to stop 34 (``bench/kernels_simd.py``'s pair).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from iovolc.raytrace import _DEG, C_KM_S, _angle_deg, _consts, _cos, _dot, _rot, _vectors
from iovolc.raytrace import _surface as _surface_flat


@njit(nogil=True, error_model="numpy")
def _surface(k, ua0, ua1, ua2):
    """One apparent J2000 ray: (hit, t, dt, point, point -> observer), body-fixed km.

    ``k`` holds: 0-2 obs_vel / c, 3-11 rot, 12-20 drot, 21-23 o0, 24-26 o1,
    27-29 1 / radii^2, 30 lt0, 31-33 c_0 c_1 c_2.
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
    dt = 0.0
    t = 0.0
    hit = False
    for it in range(3):
        if it == 0:
            qa, qb, qc = a_0, 2 * b_00, c_0 - 1.0
        else:
            dt2 = dt * dt
            qa = a_0 - 2 * dt * a_1 + dt2 * a_2
            qb = 2 * (b_00 + dt * b_d - dt2 * b_11)
            qc = c_0 + 2 * dt * c_1 + dt2 * c_2 - 1.0
        disc = qb * qb - 4 * qa * qc
        hit = disc >= 0
        t = (-qb - math.sqrt(disc if hit else 0.0)) / (2 * qa)
        hit = hit and t > 0
        if not hit:
            # dt is left as it was, so every later iteration would solve this
            # same quadratic again (with dt = 0 the dt terms add exact zeros to
            # the first one's): a miss stays a miss
            break
        dt = t / C_KM_S - lt0
    if not hit:
        t = np.nan
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


@njit(nogil=True, error_model="numpy")
def pixel_rays(line, sample, cam, out):
    """Apparent J2000 unit rays (n, 3) of pixel coordinates into ``out``.

    ``cam``: 0 centre line, 1 centre sample, 2 pixel size mm, 3 focal length
    mm, 4-6 line axis, 7-9 sample axis, 10-18 band -> JUNO_JIRAM_I,
    19-27 JUNO_JIRAM_I -> J2000 (row-major).
    """
    for i in range(line.size):
        dl = (line[i] - cam[0]) * cam[2]
        ds = (sample[i] - cam[1]) * cam[2]
        # dl * line_axis + ds * sample_axis + f * (0, 0, 1), term for term as the
        # camera's numpy `directions` adds them (so -0.0 sums alike)
        v0 = dl * cam[4] + ds * cam[7] + cam[3] * 0.0
        v1 = dl * cam[5] + ds * cam[8] + cam[3] * 0.0
        v2 = dl * cam[6] + ds * cam[9] + cam[3] * 1.0
        nv = math.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
        v0, v1, v2 = v0 / nv, v1 / nv, v2 / nv
        d0, d1, d2 = _rot(cam, 10, v0, v1, v2)
        out[i, 0], out[i, 1], out[i, 2] = _rot(cam, 19, d0, d1, d2)


@njit(nogil=True, error_model="numpy")
def surface(u, k, point, obs_bf, hit, dt):
    """Intercepts of apparent J2000 rays ``u`` (n, 3): point, point -> observer, hit, dt."""
    for i in range(u.shape[0]):
        h, d, p0, p1, p2, o0, o1, o2 = _surface(k, u[i, 0], u[i, 1], u[i, 2])
        hit[i], dt[i] = h, d
        point[i, 0], point[i, 1], point[i, 2] = p0, p1, p2
        obs_bf[i, 0], obs_bf[i, 1], obs_bf[i, 2] = o0, o1, o2


@njit(nogil=True, error_model="numpy")
def cosines(u, k, hit, cos_i, cos_e):
    """Hit mask, cos incidence and cos emission (NaN off the disc) of rays ``u``."""
    for i in range(u.shape[0]):
        h, d, p0, p1, p2, o0, o1, o2 = _surface(k, u[i, 0], u[i, 1], u[i, 2])
        hit[i] = h
        if not h:
            cos_i[i] = np.nan
            cos_e[i] = np.nan
            continue
        n0, n1, n2, to0, to1, to2, s0, s1, s2 = _vectors(k, d, p0, p1, p2, o0, o1, o2)
        cos_i[i] = min(max(_cos(n0, n1, n2, s0, s1, s2), -1.0), 1.0)
        cos_e[i] = min(max(_cos(n0, n1, n2, to0, to1, to2), -1.0), 1.0)


@njit(nogil=True, error_model="numpy")
def backplanes(u, k, ifov_rad, hit, planes):
    """Hit mask and backplanes (7, n): lat, lon W, emission, incidence, phase (deg),
    range and pixel scale (km); NaN off the disc."""
    for i in range(u.shape[0]):
        h, d, p0, p1, p2, o0, o1, o2 = _surface(k, u[i, 0], u[i, 1], u[i, 2])
        hit[i] = h
        if not h:
            for j in range(7):
                planes[j, i] = np.nan
            continue
        n0, n1, n2, to0, to1, to2, s0, s1, s2 = _vectors(k, d, p0, p1, p2, o0, o1, o2)
        r = math.sqrt(_dot(p0, p1, p2, p0, p1, p2))
        planes[0, i] = math.asin(min(max(p2 / r, -1.0), 1.0)) * _DEG
        lon = -(math.atan2(p1, p0) * _DEG)
        planes[1, i] = lon % 360.0
        planes[2, i] = _angle_deg(_cos(n0, n1, n2, to0, to1, to2))
        planes[3, i] = _angle_deg(_cos(n0, n1, n2, s0, s1, s2))
        planes[4, i] = _angle_deg(_cos(s0, s1, s2, to0, to1, to2))
        rng = math.sqrt(_dot(to0, to1, to2, to0, to1, to2))
        planes[5, i] = rng
        planes[6, i] = rng * ifov_rad


@njit(nogil=True, error_model="numpy")
def cosines_one_loop(u, k, hit, cos_i, cos_e):
    """``iovolc.raytrace.cosines`` from stop 21 to stop 34: flat rays, the clamps and the
    choice of NaN inside the one loop (which LLVM did not vectorise on an AMD EPYC
    host; stop 35 moved them to a second pass)."""
    kt = _consts(k)
    for i in range(u.size // 3):
        h, d, p0, p1, p2, o0, o1, o2 = _surface_flat(kt, u[3 * i], u[3 * i + 1], u[3 * i + 2])
        n0, n1, n2, to0, to1, to2, s0, s1, s2 = _vectors(kt, d, p0, p1, p2, o0, o1, o2)
        ci = min(max(_cos(n0, n1, n2, s0, s1, s2), -1.0), 1.0)
        ce = min(max(_cos(n0, n1, n2, to0, to1, to2), -1.0), 1.0)
        hit[i] = h
        cos_i[i] = ci if h else np.nan
        cos_e[i] = ce if h else np.nan
