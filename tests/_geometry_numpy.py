"""The numpy ray tracing that ``iovolc.raytrace`` (numba) replaced: the equivalence reference.

The per-pixel geometry of ``iovolc.geometry`` as it was before issue 11's
compiled loops, unchanged: one whole-array numpy operation per step, on
(3, n) component arrays. ``tests/test_speed_equivalence.py`` checks the
compiled loops against it to 1e-12 (and ``tests/test_geometry.py`` checks
both against CSPICE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iovolc.geometry import C_KM_S, FrameState, PixelGeometry


def rays(state: FrameState, band: str, line, sample) -> np.ndarray:
    return state.camera(band).directions(line, sample) @ state.inst_to_j2000.T


def pixel_geometry(state: FrameState, band: str, line, sample) -> PixelGeometry:
    u = np.asarray(rays(state, band, line, sample), dtype=float)
    surf = _intercept(state, _components(u))
    return _backplanes_of(state, surf, u.shape[:-1], ifov_rad=state.camera(band).ifov_rad)


def intercept(state: FrameState, band: str, line, sample):
    u = np.asarray(rays(state, band, line, sample), dtype=float)
    shape = u.shape[:-1]
    s = _intercept(state, _components(u))
    return (_stack(s.point, shape), _stack(s.obs_bf, shape), s.hit.reshape(shape),
            s.dt.reshape(shape))


def disc_cosines(state: FrameState, band: str, line, sample):
    return disc_cosines_directions(state, rays(state, band, line, sample))


@dataclass(frozen=True)
class _Surface:
    """Intercepts of n rays: point and point -> observer (body-fixed, 3 x n), hit, dt."""

    point: np.ndarray
    obs_bf: np.ndarray
    hit: np.ndarray
    dt: np.ndarray


def _components(v: np.ndarray) -> np.ndarray:
    """(..., 3) vectors -> a contiguous (3, n) array."""
    return np.ascontiguousarray(np.asarray(v, dtype=float).reshape(-1, 3).T)


def _stack(c: np.ndarray, shape: tuple) -> np.ndarray:
    return np.moveaxis(c, 0, -1).reshape(*shape, 3)


def _rotate(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``m @ v`` for the columns of a (3, n) array."""
    return np.stack([m[i, 0] * c[0] + m[i, 1] * c[1] + m[i, 2] * c[2] for i in range(3)])


def _dot3(a: np.ndarray, b) -> np.ndarray:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _intercept(state: FrameState, u_app: np.ndarray) -> _Surface:
    """Surface intercepts of apparent J2000 directions ``u_app`` (3, n): CN+S.

    Light time is solved per point (target position and orientation at
    ``et - lt0 - dt``, to first order in ``dt``), the apparent ray corrected for
    stellar aberration from the observer's velocity (exact inverse of ``stelab``).
    """
    v = state.obs_vel / C_KM_S
    w = u_app - v[:, None]
    u = w / np.sqrt(_dot3(w, w))
    inv_a2 = 1.0 / state.radii_km**2
    # observer and ray in the body frame at et - lt0 - dt, to first order in dt:
    # rot(dt) = rot - drot dt, target pos(dt) = io_pos - io_vel dt
    r_p, dr_p = state.rot @ state.io_pos, state.drot @ state.io_pos
    r_v = state.rot @ state.io_vel
    ru, dru = _rotate(state.rot, u), _rotate(state.drot, u)
    o0, o1 = -r_p, r_v + dr_p  # observer o(dt) = o0 + dt o1
    # ellipsoid quadratic, expanded in dt (d = ru - dt dru), per ray
    w_ru = ru * inv_a2[:, None]
    w_dru = dru * inv_a2[:, None]
    a_0, a_1, a_2 = _dot3(ru, w_ru), _dot3(ru, w_dru), _dot3(dru, w_dru)
    b_00, b_01 = _dot3(w_ru, o0), _dot3(w_ru, o1)
    b_10, b_11 = _dot3(w_dru, o0), _dot3(w_dru, o1)
    b_d = b_01 - b_10
    c_0, c_1, c_2 = o0 @ (o0 * inv_a2), o0 @ (o1 * inv_a2), o1 @ (o1 * inv_a2)
    n = u.shape[1]
    dt = np.zeros(n)
    t = np.zeros(n)
    hit = np.zeros(n, dtype=bool)
    for k in range(3):
        if k == 0:  # dt = 0
            qa, qb, qc = a_0, 2 * b_00, c_0 - 1.0
        else:
            dt2 = dt * dt
            qa = a_0 - 2 * dt * a_1 + dt2 * a_2
            qb = 2 * (b_00 + dt * b_d - dt2 * b_11)
            qc = c_0 + 2 * dt * c_1 + dt2 * c_2 - 1.0
        disc = qb * qb - 4 * qa * qc
        hit = disc >= 0
        t = (-qb - np.sqrt(np.where(hit, disc, 0.0))) / (2 * qa)
        hit &= t > 0
        dt = np.where(hit, t / C_KM_S - state.lt0, dt)
    t = np.where(hit, t, np.nan)
    point = o0[:, None] + dt * o1[:, None] + t * (ru - dt * dru)
    # apparent line of sight in the body frame at each point's own epoch (ilumin's angles)
    app_pt = _rotate(state.rot, u_app) - dt * _rotate(state.drot, u_app)
    obs_bf = point - app_pt * t
    return _Surface(point, obs_bf, hit, dt)


def disc_cosines_directions(state: FrameState, u_app_j2000
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`disc_cosines`, for apparent J2000 ray directions (..., 3)."""
    u = np.asarray(u_app_j2000, dtype=float)
    shape = u.shape[:-1]
    surf = _intercept(state, _components(u))
    cos_i = np.full(surf.hit.shape, np.nan)
    cos_e = np.full(surf.hit.shape, np.nan)
    if surf.hit.any():
        _, normal, to_obs, to_sun = _surface_vectors(state, surf)
        cos_i[surf.hit] = np.clip(_cos_angle(normal, to_sun), -1.0, 1.0)
        cos_e[surf.hit] = np.clip(_cos_angle(normal, to_obs), -1.0, 1.0)
    return surf.hit.reshape(shape), cos_i.reshape(shape), cos_e.reshape(shape)


def _surface_vectors(state: FrameState, surf: _Surface):
    """Where a ray meets Io: point, normal, point -> observer, point -> Sun (3 x n_hit).

    The Sun's direction is aberrated by the moving surface point: the point's
    rotational velocity (body frame: rot drot^T p) adds to Io's.
    """
    h = surf.hit
    p = surf.point[:, h]
    normal = p / (state.radii_km**2)[:, None]
    to_obs = surf.obs_bf[:, h] - p
    to_sun = (state.sun_bf[:, None] - surf.dt[h] * state.sun_bf_rate[:, None]) - p
    dv = _rotate(state.rot @ state.drot.T, p) / C_KM_S
    dist = np.sqrt(_dot3(to_sun, to_sun))
    u_sun = to_sun / dist
    to_sun = dist * (u_sun + dv - _dot3(u_sun, dv) * u_sun)
    return p, normal, to_obs, to_sun


def _cos_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _dot3(a, b) / np.sqrt(_dot3(a, a) * _dot3(b, b))


def _angle_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(_cos_angle(a, b), -1.0, 1.0)))


def _backplanes_of(state: FrameState, surf: _Surface, shape: tuple, *,
                   ifov_rad: float) -> PixelGeometry:
    n = surf.hit.size
    out = {k: np.full(n, np.nan) for k in (
        "lat_deg", "lon_west_deg", "emission_deg", "incidence_deg", "phase_deg", "range_km")}
    if surf.hit.any():  # the rest only where a ray meets Io
        p, normal, to_obs, to_sun = _surface_vectors(state, surf)
        r = np.sqrt(_dot3(p, p))
        h = surf.hit
        out["lat_deg"][h] = np.degrees(np.arcsin(np.clip(p[2] / r, -1, 1)))
        out["lon_west_deg"][h] = np.mod(-np.degrees(np.arctan2(p[1], p[0])), 360.0)
        out["emission_deg"][h] = _angle_of(normal, to_obs)
        out["incidence_deg"][h] = _angle_of(normal, to_sun)
        out["phase_deg"][h] = _angle_of(to_sun, to_obs)
        out["range_km"][h] = np.sqrt(_dot3(to_obs, to_obs))
    out = {k: v.reshape(shape) for k, v in out.items()}
    return PixelGeometry(on_disc=surf.hit.reshape(shape), pixel_scale_km=out["range_km"] * ifov_rad,
                         **out)


