"""Vectorised observation geometry on Io for the JIRAM imager.

SPICE (spiceypy) gives the per-frame state: observer and Io states, Io's
orientation and its rate, the Sun, and the instrument attitude
(``JUNO_JIRAM_I`` -> J2000 from the CK + FK); the per-pixel work is compiled
(:mod:`iovolc.raytrace`, numba).
Each band's pixel model is a :class:`iovolc.jiram.BandCamera` read from the
kernel pool (IK + FK band frames). The aberration model is CSPICE's ``CN+S``
as used by ``sincpt``/``ilumin``: light time is solved *per surface point*
(target position and orientation at ``et - lt``), and the pixel's apparent
ray is corrected for stellar aberration from the observer's velocity
relative to the solar-system barycentre.

A pointing correction is a rotation of the instrument attitude:
``true(JUNO_JIRAM_I -> J2000) = recon @ axisar(s, along) @ axisar(c, cross)``
with ``s`` Juno's spin axis in JUNO_JIRAM_I (from the FK) and
``c = s x boresight`` (:func:`pointing_correction`). A clock offset of a
spinning spacecraft is exactly such an ``along`` rotation.

Conventions (docs/decisions.md): planetocentric latitude (deg N), West
longitude in [0, 360) (Io literature; Davies et al. 2024), angles in degrees,
distances in km. Pixel coordinates are 0-based pixel centres of one band's
128-line strip (``line``) and of the 432 samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import spiceypy

from iovolc import jiram, raytrace
from iovolc.jiram import BandCamera

C_KM_S = 299792.458


def axis_rotation(axis, angle_rad: float) -> np.ndarray:
    """Matrix rotating vectors by ``angle_rad`` about ``axis`` (right-handed; SPICE ``axisar``)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def pointing_correction(spin_axis_inst, along_rad: float, cross_rad: float) -> np.ndarray:
    """``axisar(s, along) @ axisar(c, cross)`` in JUNO_JIRAM_I (see the module docstring)."""
    s = np.asarray(spin_axis_inst, dtype=float)
    s0, s1, s2 = (float(v) for v in s)
    # np.cross(s, [0, 0, 1]), its products and differences written out (stop 29: the
    # call cost ~15 us, for a frame's every pass and Jacobian): the same bits
    c = np.array([s1 * 1.0 - s2 * 0.0, s2 * 0.0 - s0 * 1.0, s0 * 0.0 - s1 * 0.0])
    return axis_rotation(s, along_rad) @ axis_rotation(c, cross_rad)


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
    (IAU_IO, LT+S), ``inst_to_j2000`` the JUNO_JIRAM_I attitude (corrected
    or as reconstructed), ``cameras`` the band cameras from the kernel pool
    and ``spin_axis`` Juno's spin axis in JUNO_JIRAM_I.
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
    inst_to_j2000: np.ndarray
    cameras: Mapping[str, BandCamera]
    spin_axis: np.ndarray

    @classmethod
    def from_spice(
        cls,
        et: float,
        *,
        bands: tuple[str, ...] = jiram.BAND_ORDER,
        inst_to_j2000: np.ndarray | None = None,
        observer: str = "JUNO",
        target: str = "IO",
    ) -> FrameState:
        """Query the loaded kernel pool (the caller holds a KernelSet)."""
        obs = spiceypy.spkssb(spiceypy.bods2c(observer), et, "J2000")
        _, lt0 = spiceypy.spkpos(target, et, "J2000", "LT", observer)
        tgt = spiceypy.spkssb(spiceypy.bods2c(target), et - lt0, "J2000")
        xf = np.array(spiceypy.sxform("J2000", f"IAU_{target}", et - lt0))
        sun_st, _ = spiceypy.spkezr("SUN", et - lt0, f"IAU_{target}", "LT+S", target)
        radii = np.array(spiceypy.bodvrd(target, "RADII", 3)[1])
        if inst_to_j2000 is None:
            inst_to_j2000 = np.array(spiceypy.pxform(jiram.FRAME_JIRAM_I, "J2000", et))
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
            inst_to_j2000=np.asarray(inst_to_j2000, dtype=float),
            cameras={b: jiram.band_camera(b) for b in bands},
            spin_axis=jiram.spin_axis_instrument(),
        )

    def corrected(self, along_rad: float, cross_rad: float) -> FrameState:
        """This state with the attitude rotated by a pointing correction."""
        out = replace(self, inst_to_j2000=self.inst_to_j2000
                      @ pointing_correction(self.spin_axis, along_rad, cross_rad))
        centre = self.__dict__.get("centre_direction_j2000")
        if centre is not None:  # the attitude does not enter it: carried over
            out.__dict__["centre_direction_j2000"] = centre
        return out

    @cached_property
    def centre_direction_j2000(self) -> np.ndarray:
        """Io's centre's apparent direction (J2000, (1, 3)), as :meth:`apparent_directions`
        gives it for the body-fixed origin: computed once per state and the states
        :meth:`corrected` makes from it, whose attitude alone differs (stop 26: the
        disc drawing asked for it per band and per pass). Read-only; not a field, so
        no part of the state's equality, its repr or :func:`dataclasses.replace`."""
        u = self.apparent_directions(np.zeros((1, 3)))["u_j2000"]
        u.setflags(write=False)
        return u

    def centre_pixel(self, band: str) -> tuple[np.ndarray, np.ndarray]:
        """``project_points(origin, band)``'s (line, sample) of Io's centre, (1,) each."""
        return self.camera(band).pixels(self.centre_direction_j2000 @ self.inst_to_j2000)

    def camera(self, band: str) -> BandCamera:
        try:
            return self.cameras[band]
        except KeyError:
            raise KeyError(f"no {band}-band camera in this frame state "
                           f"({sorted(self.cameras)})") from None

    @property
    def range_km(self) -> float:
        return float(np.linalg.norm(self.io_pos))

    def project_points(self, points_bf, band: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apparent (line, sample) in ``band``'s strip of body-fixed points, visibility.

        Visible = on the observer-facing side of the ellipsoid (emission < 90).
        """
        out = self.project_points_full(points_bf, band)
        return out["line"], out["sample"], out["visible"]

    def apparent_directions(self, points_bf) -> dict[str, np.ndarray]:
        """Apparent unit directions (J2000) of body-fixed points, emission, range."""
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
        normal = p / self.radii_km**2
        # point -> observer in the body frame (first order in dt)
        obs_bf = -(vec @ self.rot.T - dt * (vec @ self.drot.T))
        with np.errstate(invalid="ignore", divide="ignore"):
            cos_e = np.einsum("ni,ni->n", normal, obs_bf) / (
                np.linalg.norm(normal, axis=-1) * np.linalg.norm(obs_bf, axis=-1))
        return {"u_j2000": u_app, "visible": cos_e > 0,
                "emission_deg": np.degrees(np.arccos(np.clip(cos_e, -1, 1))), "range_km": rng}

    def project_points_full(self, points_bf, band: str) -> dict[str, np.ndarray]:
        """As :meth:`project_points`, plus emission angle (deg) and range (km)."""
        d = self.apparent_directions(points_bf)
        line, sample = self.camera(band).pixels(d["u_j2000"] @ self.inst_to_j2000)
        return {"line": line, "sample": sample, "visible": d["visible"],
                "emission_deg": d["emission_deg"], "range_km": d["range_km"]}

    # -- inverse: rays -> surface ------------------------------------------------
    def intercept(self, band: str, line, sample):
        """Surface intercepts of pixel rays (body-fixed km), observer vectors, mask, dt."""
        d_inst = self.camera(band).directions(line, sample)
        return self.intercept_directions(d_inst @ self.inst_to_j2000.T)

    def intercept_directions(self, u_app_j2000):
        """Surface intercepts of apparent J2000 ray directions (..., 3).

        Returns ``(point, obs_bf, hit, dt)``: body-fixed intercepts (NaN where the
        ray misses), point -> observer vectors, the hit mask and each point's
        light-time offset from ``lt0`` (s).
        """
        u, shape = _rays(u_app_j2000)
        n = u.shape[0]
        point, obs_bf, hit, dt = np.empty((n, 3)), np.empty((n, 3)), np.empty(n, bool), np.empty(n)
        raytrace.surface(u.reshape(-1), _trace_constants(self), point.reshape(-1),
                         obs_bf.reshape(-1), hit, dt)
        return (point.reshape(*shape, 3), obs_bf.reshape(*shape, 3), hit.reshape(shape),
                dt.reshape(shape))


# --- rays -> surface: the per-pixel loops are compiled (iovolc.raytrace) ---------------


def _trace_constants(state: FrameState) -> np.ndarray:
    """The per-frame constants of :mod:`iovolc.raytrace`'s loops (its layout).

    The observer in the body frame at ``et - lt0 - dt`` is ``o0 + dt o1`` to
    first order in ``dt`` (target position ``io_pos - io_vel dt``, rotation
    ``rot - drot dt``); ``c_0..c_2`` are that line's ellipsoid terms.
    """
    inv_a2 = 1.0 / state.radii_km**2
    r_p, dr_p = state.rot @ state.io_pos, state.drot @ state.io_pos
    r_v = state.rot @ state.io_vel
    o0, o1 = -r_p, r_v + dr_p
    c = [o0 @ (o0 * inv_a2), o0 @ (o1 * inv_a2), o1 @ (o1 * inv_a2)]
    k = np.concatenate([
        state.obs_vel / C_KM_S, state.rot.ravel(), state.drot.ravel(), o0, o1, inv_a2,
        [state.lt0], c, state.radii_km**2, state.sun_bf, state.sun_bf_rate,
        (state.rot @ state.drot.T).ravel()]).astype(float)
    assert k.size == raytrace.N_CONST
    return k


def _rays(u_app_j2000) -> tuple[np.ndarray, tuple]:
    u = np.asarray(u_app_j2000, dtype=float)
    return np.ascontiguousarray(u.reshape(-1, 3)), u.shape[:-1]


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


#: the order of raytrace.backplanes' planes
_PLANES = ("lat_deg", "lon_west_deg", "emission_deg", "incidence_deg", "phase_deg",
           "range_km", "pixel_scale_km")


def _dot(a, b) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


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


def pixel_geometry(state: FrameState, band: str, line, sample) -> PixelGeometry:
    """Geometry backplanes for pixel coordinates of a band (any shape); NaN off the disc."""
    u, shape = _pixel_rays(state, band, line, sample)
    return _geometry(state, u, shape, ifov_rad=state.camera(band).ifov_rad)


def disc_cosines(state: FrameState, band: str, line, sample
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(on_disc, cos incidence, cos emission)`` of pixel coordinates (any shape).

    The two cosines of :func:`pixel_geometry`'s angles without the angles (NaN
    off the disc): what a photometric model needs, at a fraction of the cost.
    """
    line, sample = np.broadcast_arrays(np.asarray(line, dtype=float),
                                       np.asarray(sample, dtype=float))
    hit, cos_i, cos_e = DiscRays.of(state, band).cosines(line.ravel(), sample.ravel())
    return hit.reshape(line.shape), cos_i.reshape(line.shape), cos_e.reshape(line.shape)


@dataclass(frozen=True, eq=False)
class DiscRays:
    """One frame's and band's ray-tracing constants (:mod:`iovolc.raytrace`'s layouts),
    taken once for several :meth:`cosines` calls: the disc canvas traces the pixel
    centres, then the limb pixels' sub-pixel rays (stop 37; each constant vector
    costs tens of microseconds of small numpy steps)."""

    camera: np.ndarray
    trace: np.ndarray

    @classmethod
    def of(cls, state: FrameState, band: str) -> DiscRays:
        return cls(_camera_constants(state, band), _trace_constants(state))

    def cosines(self, line: np.ndarray, sample: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`disc_cosines` of flat pixel coordinates (float64, one value per ray)."""
        line = np.ascontiguousarray(line, dtype=float)
        sample = np.ascontiguousarray(sample, dtype=float)
        if line.ndim != 1 or line.shape != sample.shape:
            raise ValueError(f"DiscRays.cosines: flat coordinates of one length, not "
                             f"{line.shape} and {sample.shape}")
        n = line.size
        u = np.empty(3 * n)
        raytrace.pixel_rays(line, sample, self.camera, u)
        hit, cos_i, cos_e = np.empty(n, bool), np.empty(n), np.empty(n)
        raytrace.cosines(u, self.trace, hit, cos_i, cos_e)
        return hit, cos_i, cos_e


def disc_cosines_directions(state: FrameState, u_app_j2000
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`disc_cosines`, for apparent J2000 ray directions (..., 3)."""
    return _cosines(state, *_rays(u_app_j2000))


def _cosines(state: FrameState, u: np.ndarray, shape: tuple):
    n = u.shape[0]
    hit, cos_i, cos_e = np.empty(n, bool), np.empty(n), np.empty(n)
    raytrace.cosines(u.reshape(-1), _trace_constants(state), hit, cos_i, cos_e)
    return hit.reshape(shape), cos_i.reshape(shape), cos_e.reshape(shape)


def _pixel_rays(state: FrameState, band: str, line, sample) -> tuple[np.ndarray, tuple]:
    """Apparent J2000 unit rays (n, 3) of a band's pixel coordinates, and their shape."""
    line, sample = np.broadcast_arrays(np.asarray(line, dtype=float),
                                       np.asarray(sample, dtype=float))
    u = np.empty((line.size, 3))
    raytrace.pixel_rays(np.ascontiguousarray(line).ravel(), np.ascontiguousarray(sample).ravel(),
                        _camera_constants(state, band), u.reshape(-1))
    return u, line.shape


def _camera_constants(state: FrameState, band: str) -> np.ndarray:
    """The constants of :func:`iovolc.raytrace.pixel_rays` for a band (its layout)."""
    cam = state.camera(band)
    return np.concatenate([
        [cam.center_line, cam.center_sample, cam.pixel_size_mm, cam.focal_length_mm],
        jiram.LINE_AXIS, jiram.SAMPLE_AXIS, np.asarray(cam.to_instrument, float).ravel(),
        state.inst_to_j2000.ravel()]).astype(float)


def _geometry(state: FrameState, u: np.ndarray, shape: tuple, *,
              ifov_rad: float) -> PixelGeometry:
    n = u.shape[0]
    hit, planes = np.empty(n, bool), np.empty((len(_PLANES), n))
    raytrace.backplanes(u.reshape(-1), _trace_constants(state), float(ifov_rad), hit, planes)
    return PixelGeometry(on_disc=hit.reshape(shape),
                         **{k: planes[j].reshape(shape) for j, k in enumerate(_PLANES)})


def disc_radius_rad(state: FrameState) -> float:
    """Angular radius of Io's disc (largest radius) seen from the observer."""
    return float(np.arcsin(min(1.0, state.radii_km.max() / state.range_km)))


def centre_direction_inst(state: FrameState) -> np.ndarray:
    """Apparent direction of Io's centre in JUNO_JIRAM_I."""
    d = state.centre_direction_j2000[0]
    return state.inst_to_j2000.T @ d


def io_within_reach(state: FrameState, bands, *, along_rad: float, cross_rad: float,
                    margin_px: float = 8.0) -> bool:
    """Whether Io's disc can fall on a band strip under any pointing correction within
    ``along_rad`` (about the spin axis) and ``cross_rad``.

    A rotation by an angle moves every direction by at most that angle, so the
    disc can reach a strip only if the angle between Io's apparent centre and
    the strip's central pixel is at most: the disc's angular radius + the
    strip's largest centre-to-corner angle + ``along_rad`` + ``cross_rad`` +
    ``margin_px`` pixels. False says Io is out of reach for sure (a frame of
    Jupiter); True only that it may be in reach.
    """
    c = centre_direction_inst(state)
    for band in bands:
        cam = state.camera(band)
        mid = cam.directions(0.5 * (cam.n_lines - 1), 0.5 * (cam.n_samples - 1))
        ll, ss = np.meshgrid([-0.5, cam.n_lines - 0.5], [-0.5, cam.n_samples - 0.5],
                             indexing="ij")
        corners = cam.directions(ll.ravel(), ss.ravel())
        half = float(np.max(np.arccos(np.clip(corners @ mid, -1.0, 1.0))))
        reach = disc_radius_rad(state) + half + abs(along_rad) + abs(cross_rad) \
            + margin_px * cam.ifov_rad
        if float(np.arccos(np.clip(c @ mid, -1.0, 1.0))) <= reach:
            return True
    return False


def disc_pixel_box(state: FrameState, band: str, *, margin_px: float = 8.0,
                   n_edge: int = 128) -> tuple[slice, slice] | None:
    """The lines and samples of a band strip where Io's disc can be (None: nowhere).

    The cone around Io's apparent centre with the disc's angular radius (its
    largest radius) holds every ray that can meet Io; its outline (``n_edge``
    directions) is projected into the strip, and ``margin_px`` covers the
    aberration and light-time differences across the disc (< 1 px) and the
    outline's chords. The whole strip when the cone reaches behind the camera.
    """
    cam = state.camera(band)
    full = (slice(0, cam.n_lines), slice(0, cam.n_samples))
    alpha = disc_radius_rad(state) + margin_px * cam.ifov_rad
    if alpha >= 1.2:
        return full
    c = centre_direction_inst(state)
    p1 = np.cross(c, [0.0, 0.0, 1.0] if abs(c[2]) < 0.9 else [1.0, 0.0, 0.0])
    p1 /= np.linalg.norm(p1)
    p2 = np.cross(c, p1)
    phi = np.linspace(0.0, 2.0 * np.pi, n_edge, endpoint=False)[:, None]
    edge = np.cos(alpha) * c + np.sin(alpha) * (np.cos(phi) * p1 + np.sin(phi) * p2)
    line, sample = cam.pixels(edge)
    if not (np.isfinite(line).all() and np.isfinite(sample).all()):
        return full
    m = margin_px
    l0, l1 = int(max(np.floor(line.min() - m), 0)), int(min(np.ceil(line.max() + m) + 1,
                                                             cam.n_lines))
    s0, s1 = int(max(np.floor(sample.min() - m), 0)), int(min(np.ceil(sample.max() + m) + 1,
                                                               cam.n_samples))
    if l1 <= l0 or s1 <= s0:
        return None
    return slice(l0, l1), slice(s0, s1)

