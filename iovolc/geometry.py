"""Vectorised observation geometry on Io for the JIRAM imager.

SPICE (spiceypy) gives the per-frame state: observer and Io states, Io's
orientation and its rate, the Sun; numpy does the per-pixel work. The
aberration model is CSPICE's ``LT+S`` as used by ``sincpt``/``ilumin``:
light time is solved *per surface point* (target position and orientation
at ``et - lt``), and the pixel's apparent ray is corrected for stellar
aberration from the observer's velocity relative to the solar-system
barycentre.

Conventions (docs/decisions.md): planetocentric latitude (deg N), West
longitude in [0, 360) (Io literature; Davies et al. 2024), angles in degrees,
distances in km. Pixel coordinates are 0-based pixel centres of the full
256-line detector (``line_det``) and of the 432 samples; the pinhole camera
model is the one our IK states: focal-plane ``x = -(line_det - 127.5)``,
``y = +(sample - 215.5)`` pixel pitches, boresight +Z of JUNO_JIRAM_I.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spiceypy

from iovolc import jiram

C_KM_S = 299792.458


# --- camera model ---------------------------------------------------------
def pixel_to_camera(line_det, sample, *, ifov_rad: float = jiram.IFOV_RAD) -> np.ndarray:
    """Unit vectors in JUNO_JIRAM_I for detector pixel coordinates (..., 3)."""
    line_det = np.asarray(line_det, dtype=float)
    sample = np.asarray(sample, dtype=float)
    x = -(line_det - jiram.CENTER_LINE) * ifov_rad
    y = (sample - jiram.CENTER_SAMPLE) * ifov_rad
    v = np.stack(np.broadcast_arrays(x, y, np.ones_like(x)), axis=-1)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def camera_to_pixel(vec_cam, *, ifov_rad: float = jiram.IFOV_RAD):
    """Inverse of :func:`pixel_to_camera`: (line_det, sample); NaN behind."""
    v = np.asarray(vec_cam, dtype=float)
    z = v[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(z > 0, v[..., 0] / z, np.nan)
        y = np.where(z > 0, v[..., 1] / z, np.nan)
    return jiram.CENTER_LINE - x / ifov_rad, jiram.CENTER_SAMPLE + y / ifov_rad


# --- aberration -----------------------------------------------------------
def stellar_aberration(u, vobs_km_s) -> np.ndarray:
    """Apparent direction of geometric unit vectors ``u`` (CSPICE ``stelab``).

    ``stelab`` rotates ``u`` toward the velocity by ``asin(|u x v/c|)``,
    which is exactly ``u cos(phi) + (v/c - (u.v/c) u)``.
    """
    u = np.asarray(u, dtype=float)
    v = np.asarray(vobs_km_s, dtype=float) / C_KM_S
    uv = u @ v
    cos_phi = np.sqrt(np.clip(1.0 - v @ v + uv * uv, 0.0, None))
    return u * (cos_phi - uv)[..., None] + v


def inverse_stellar_aberration(u_app, vobs_km_s) -> np.ndarray:
    """Geometric unit vectors whose apparent direction is ``u_app`` (exact).

    From ``a = u (cos(phi) - u.v/c) + v/c`` with a positive scalar factor:
    ``u = (a - v/c) / |a - v/c|``.
    """
    w = np.asarray(u_app, dtype=float) - np.asarray(vobs_km_s, dtype=float) / C_KM_S
    return w / np.sqrt(np.einsum("...i,...i->...", w, w))[..., None]


# --- per-frame state from SPICE --------------------------------------------
@dataclass(frozen=True)
class FrameState:
    """Everything SPICE says about one exposure, at mid-exposure ``et``.

    ``io_pos``/``io_vel`` are Io's geometric state relative to the observer
    at ``et - lt0`` (J2000), ``rot``/``drot`` the J2000 -> IAU_IO rotation and
    its time derivative there, ``sun_bf`` the Sun as seen from Io's centre
    (IAU_IO, LT+S) and ``cam_to_j2000`` the camera orientation.
    """

    et: float
    lt0: float
    obs_vel: np.ndarray
    io_pos: np.ndarray
    io_vel: np.ndarray
    rot: np.ndarray
    drot: np.ndarray
    sun_bf: np.ndarray
    #: d(sun_bf)/dt (km/s; mostly Io's rotation), for per-point light time
    sun_bf_rate: np.ndarray
    radii_km: np.ndarray
    cam_to_j2000: np.ndarray

    @classmethod
    def from_spice(
        cls,
        et: float,
        *,
        cam_to_j2000: np.ndarray | None = None,
        observer: str = "JUNO",
        target: str = "IO",
        camera_frame: str = jiram.FRAME_JIRAM_I,
    ) -> FrameState:
        """Query the loaded kernel pool (the caller holds a KernelSet)."""
        obs = spiceypy.spkssb(spiceypy.bods2c(observer), et, "J2000")
        _, lt0 = spiceypy.spkpos(target, et, "J2000", "LT", observer)
        tgt = spiceypy.spkssb(spiceypy.bods2c(target), et - lt0, "J2000")
        xf = np.array(spiceypy.sxform("J2000", f"IAU_{target}", et - lt0))
        sun_st, _ = spiceypy.spkezr("SUN", et - lt0, f"IAU_{target}", "LT+S", target)
        radii = np.array(spiceypy.bodvrd(target, "RADII", 3)[1])
        if cam_to_j2000 is None:
            cam_to_j2000 = np.array(spiceypy.pxform(camera_frame, "J2000", et))
        return cls(
            et=float(et),
            lt0=float(lt0),
            obs_vel=np.array(obs[3:]),
            io_pos=np.array(tgt[:3]) - np.array(obs[:3]),
            io_vel=np.array(tgt[3:]),
            rot=xf[:3, :3].copy(),
            drot=xf[3:, :3].copy(),
            sun_bf=np.array(sun_st[:3]),
            sun_bf_rate=np.array(sun_st[3:]),
            radii_km=radii,
            cam_to_j2000=np.asarray(cam_to_j2000, dtype=float),
        )

    def project_points(self, points_bf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apparent detector (line_det, sample) of body-fixed points, visibility.

        Visible = on the observer-facing side of the ellipsoid (emission < 90).
        """
        out = self.project_points_full(points_bf)
        return out["line_det"], out["sample"], out["visible"]

    def project_points_full(self, points_bf) -> dict[str, np.ndarray]:
        """As :meth:`project_points`, plus emission angle (deg) and range (km)."""
        p = np.atleast_2d(np.asarray(points_bf, dtype=float))
        # target at et - lt0 - dt: (rot - drot dt)^T p + io_pos - io_vel dt
        rtp = p @ self.rot
        drtp = p @ self.drot
        dt = np.zeros((p.shape[0], 1))
        for _ in range(4):
            vec = self.io_pos + rtp - dt * (self.io_vel + drtp)
            dt = np.linalg.norm(vec, axis=-1, keepdims=True) / C_KM_S - self.lt0
        vec = self.io_pos + rtp - dt * (self.io_vel + drtp)
        rng = np.linalg.norm(vec, axis=-1)
        u_app = stellar_aberration(vec / rng[:, None], self.obs_vel)
        cam = u_app @ self.cam_to_j2000  # (cam_to_j2000^T u)
        line, sample = camera_to_pixel(cam)
        normal = p / self.radii_km**2
        # point -> observer in the body frame (first order in dt)
        obs_bf = -(vec @ self.rot.T - dt * (vec @ self.drot.T))
        with np.errstate(invalid="ignore", divide="ignore"):
            cos_e = np.einsum("ni,ni->n", normal, obs_bf) / (
                np.linalg.norm(normal, axis=-1) * np.linalg.norm(obs_bf, axis=-1))
        return {
            "line_det": line, "sample": sample, "visible": cos_e > 0,
            "emission_deg": np.degrees(np.arccos(np.clip(cos_e, -1, 1))), "range_km": rng,
        }

    # -- inverse: pixels -> surface -------------------------------------------
    def intercept(self, line_det, sample):
        """Surface intercepts of pixel rays (body-fixed km) and validity mask."""
        d_cam = pixel_to_camera(line_det, sample)
        shape = d_cam.shape[:-1]
        u_app = d_cam.reshape(-1, 3) @ self.cam_to_j2000.T
        u = inverse_stellar_aberration(u_app, self.obs_vel)
        n = u.shape[0]
        inv_a2 = 1.0 / self.radii_km**2
        # observer and ray in the body frame at et - lt0 - dt, to first order
        # in dt: rot(dt) = rot - drot dt, target pos(dt) = io_pos - io_vel dt
        r_p, dr_p = self.rot @ self.io_pos, self.drot @ self.io_pos
        r_v = self.rot @ self.io_vel
        ru, dru = u @ self.rot.T, u @ self.drot.T
        # apparent line of sight in the body frame (ilumin's angles use it)
        app_bf = u_app @ self.rot.T
        dt = np.zeros(n)
        o0, o1 = -r_p, r_v + dr_p  # observer o(dt) = o0 + dt o1
        # ellipsoid quadratic, expanded in dt (d = ru - dt dru), per pixel
        w_ru = ru * inv_a2
        w_dru = dru * inv_a2
        a_0, a_1, a_2 = (np.einsum("ij,ij->i", ru, w_ru), np.einsum("ij,ij->i", ru, w_dru),
                         np.einsum("ij,ij->i", dru, w_dru))
        b_00, b_01 = w_ru @ o0, w_ru @ o1
        b_10, b_11 = w_dru @ o0, w_dru @ o1
        c_0, c_1, c_2 = o0 @ (o0 * inv_a2), o0 @ (o1 * inv_a2), o1 @ (o1 * inv_a2)
        for _ in range(3):
            qa = a_0 - 2 * dt * a_1 + dt * dt * a_2
            qb = 2 * (b_00 + dt * (b_01 - b_10) - dt * dt * b_11)
            qc = c_0 + 2 * dt * c_1 + dt * dt * c_2 - 1.0
            disc = qb * qb - 4 * qa * qc
            hit = disc >= 0
            t = (-qb - np.sqrt(np.where(hit, disc, 0.0))) / (2 * qa)
            hit &= t > 0
            dt = np.where(hit, t / C_KM_S - self.lt0, dt)
        o = o0[None, :] + dt[:, None] * o1[None, :]
        d = ru - dt[:, None] * dru
        point = o + t[:, None] * d
        t = np.where(hit, t, np.nan)
        dt = dt[:, None]
        # apparent line of sight in the body frame at each point's own epoch
        app_pt = app_bf - dt * (u_app @ self.drot.T)
        obs_bf = point - app_pt * t[:, None]
        self_dt = dt
        point[~hit] = np.nan
        return (point.reshape(*shape, 3), obs_bf.reshape(*shape, 3), hit.reshape(shape),
                self_dt.reshape(shape))


@dataclass(frozen=True)
class PixelGeometry:
    """Per-pixel geometry backplanes (NaN off the disc)."""

    on_disc: np.ndarray
    lat_deg: np.ndarray
    lon_west_deg: np.ndarray
    emission_deg: np.ndarray
    incidence_deg: np.ndarray
    phase_deg: np.ndarray
    range_km: np.ndarray
    pixel_scale_km: np.ndarray


def _dot(a, b) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _angle_deg(a, b) -> np.ndarray:
    c = _dot(a, b) / np.sqrt(_dot(a, a) * _dot(b, b))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def latlon_west(points_bf) -> tuple[np.ndarray, np.ndarray]:
    """Planetocentric latitude and West longitude (deg) of body-fixed points."""
    p = np.asarray(points_bf, dtype=float)
    r = np.sqrt(_dot(p, p))
    lat = np.degrees(np.arcsin(np.clip(p[..., 2] / r, -1, 1)))
    lon_w = np.mod(-np.degrees(np.arctan2(p[..., 1], p[..., 0])), 360.0)
    return lat, lon_w


def surface_point(lat_deg, lon_west_deg, radii_km) -> np.ndarray:
    """Body-fixed point on the ellipsoid at planetocentric lat / West lon."""
    lat = np.radians(np.asarray(lat_deg, dtype=float))
    lon_e = -np.radians(np.asarray(lon_west_deg, dtype=float))
    u = np.stack([np.cos(lat) * np.cos(lon_e), np.cos(lat) * np.sin(lon_e), np.sin(lat)], -1)
    a, b, c = np.asarray(radii_km, dtype=float)
    r = 1.0 / np.sqrt((u[..., 0] / a) ** 2 + (u[..., 1] / b) ** 2 + (u[..., 2] / c) ** 2)
    return u * r[..., None]


def pixel_geometry(state: FrameState, line_det, sample, *, ifov_rad: float = jiram.IFOV_RAD):
    """Geometry backplanes for pixel coordinates (any shape); NaN off the disc."""
    point, obs_bf, hit, dt = state.intercept(line_det, sample)
    shape = hit.shape
    out = {k: np.full(shape, np.nan) for k in (
        "lat_deg", "lon_west_deg", "emission_deg", "incidence_deg", "phase_deg", "range_km")}
    if hit.any():
        p = point[hit]  # the rest only where a ray meets Io
        lat, lon_w = latlon_west(p)
        normal = p / state.radii_km**2
        to_obs = obs_bf[hit] - p
        to_sun = state.sun_bf - dt[hit][:, None] * state.sun_bf_rate - p
        # stellar aberration of the Sun from the moving surface point: the
        # point's rotational velocity (body frame: rot drot^T p) adds to Io's
        dv = p @ (state.rot @ state.drot.T).T / C_KM_S
        dist = np.sqrt(_dot(to_sun, to_sun))[:, None]
        u_sun = to_sun / dist
        to_sun = dist * (u_sun + dv - _dot(u_sun, dv)[:, None] * u_sun)
        for key, val in (("lat_deg", lat), ("lon_west_deg", lon_w),
                         ("emission_deg", _angle_deg(normal, to_obs)),
                         ("incidence_deg", _angle_deg(normal, to_sun)),
                         ("phase_deg", _angle_deg(to_sun, to_obs)),
                         ("range_km", np.sqrt(_dot(to_obs, to_obs)))):
            out[key][hit] = val
    return PixelGeometry(on_disc=hit, pixel_scale_km=out["range_km"] * ifov_rad, **out)
