"""The simulator's own geometry: a vectorised ray/ellipsoid caster and point projector.

Independent of the pipeline's geometry code. SPICE (spiceypy) is used only for
the ephemerides and frame rotations it was given as kernels (a handful of
calls per frame); everything per pixel or per source is numpy:

* light time converged per ray and per point (CSPICE ``CN``): Io's centre and
  orientation are expanded to first order around ``et - lt0`` (``lt0`` = light
  time to Io's centre); over the few milliseconds by which a surface point's
  light time differs from the centre's, the neglected second-order terms are
  below a millimetre;
* stellar aberration from Juno's barycentric velocity, in SPICE's (classical)
  form: the apparent direction is the geometric one turned toward the velocity
  by ``asin(|u x v/c|)``; rays are un-aberrated by the opposite turn (the
  difference from an exact inverse is ~(v/c)^2 ~ 1e-8 rad);
* Io is the PCK's triaxial ellipsoid (IAU_IO); latitudes planetocentric,
  longitudes West.

Checked against ``sincpt``/``spkcpt``/``subpnt``/``ilumin`` in
``tests/test_simulator.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spiceypy

C_KM_S = 299_792.458
IO_MEAN_RADIUS_KM = 1821.6


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def surface_point(lat_deg, lon_west_deg, radii) -> np.ndarray:
    """Body-fixed point (..., 3) of the ellipsoid at planetocentric lat / West lon."""
    lat = np.radians(np.asarray(lat_deg, dtype=float))
    lon_e = -np.radians(np.asarray(lon_west_deg, dtype=float))
    u = np.stack([np.cos(lat) * np.cos(lon_e), np.cos(lat) * np.sin(lon_e), np.sin(lat)], -1)
    r = 1.0 / np.sqrt(np.sum((u / np.asarray(radii, dtype=float)) ** 2, axis=-1))
    return u * r[..., None]


def latlon_west(points) -> tuple[np.ndarray, np.ndarray]:
    """Planetocentric latitude and West longitude [0, 360) (deg) of body-fixed points."""
    p = np.asarray(points, dtype=float)
    lat = np.degrees(np.arctan2(p[..., 2], np.hypot(p[..., 0], p[..., 1])))
    lon_w = np.mod(-np.degrees(np.arctan2(p[..., 1], p[..., 0])), 360.0)
    return lat, lon_w


def great_circle_km(lat1, lon1, lat2, lon2, radius_km: float = IO_MEAN_RADIUS_KM):
    """Great-circle distance on a sphere (deg inputs, West or East longitudes alike)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon1) - np.asarray(lon2))
    c = np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(dl)
    return radius_km * np.arccos(np.clip(c, -1.0, 1.0))


@dataclass(frozen=True)
class Intercept:
    """Where rays meet Io: ``hit`` mask and, on hits, body-fixed point and angles (deg)."""

    hit: np.ndarray
    point_bf: np.ndarray
    distance_km: np.ndarray
    lat_deg: np.ndarray
    lon_west_deg: np.ndarray
    incidence_deg: np.ndarray
    emission_deg: np.ndarray
    phase_deg: np.ndarray


@dataclass(frozen=True)
class Projection:
    """Apparent J2000 directions of body-fixed points seen from Juno."""

    direction: np.ndarray
    distance_km: np.ndarray
    emission_deg: np.ndarray
    incidence_deg: np.ndarray
    visible: np.ndarray


@dataclass(frozen=True)
class IoView:
    """Io seen from Juno at one epoch (all J2000 unless said otherwise)."""

    et: float
    observer_ssb: np.ndarray  # Juno state wrt the SSB at et (6)
    io_ssb: np.ndarray  # Io state wrt the SSB at t0 = et - lt0 (6)
    lt0: float  # converged light time Io centre -> Juno (s)
    rot0: np.ndarray  # J2000 -> IAU_IO at t0
    drot: np.ndarray  # its time derivative
    radii: np.ndarray
    sun_bf: np.ndarray  # Sun relative to Io's centre, IAU_IO at t0 (apparent from Io)

    @classmethod
    def from_spice(cls, et: float) -> IoView:
        """Build from the loaded kernels (SPK of Juno/Io/Sun, PCK, LSK)."""
        obs = np.array(spiceypy.spkezr("JUNO", et, "J2000", "NONE", "SOLAR SYSTEM BARYCENTER")[0])
        _, lt0 = spiceypy.spkezr("IO", et, "J2000", "CN", "JUNO")
        t0 = et - lt0
        io = np.array(spiceypy.spkezr("IO", t0, "J2000", "NONE", "SOLAR SYSTEM BARYCENTER")[0])
        xf = np.array(spiceypy.sxform("J2000", "IAU_IO", t0))
        sun = np.array(spiceypy.spkpos("SUN", t0, "IAU_IO", "LT+S", "IO")[0])
        radii = np.array(spiceypy.bodvrd("IO", "RADII", 3)[1])
        return cls(float(et), obs, io, float(lt0), xf[:3, :3], xf[3:, :3], radii, sun)

    # --- aberration ----------------------------------------------------------------
    def _turn(self, u: np.ndarray, sign: float) -> np.ndarray:
        beta = sign * self.observer_ssb[3:] / C_KM_S
        h = np.cross(u, beta)
        sin2 = np.sum(h * h, axis=-1, keepdims=True)
        return u * np.sqrt(1.0 - sin2) + np.cross(h, u)

    def aberrate(self, u_geometric: np.ndarray) -> np.ndarray:
        """Geometric unit directions -> apparent (stellar aberration)."""
        return self._turn(_unit(u_geometric), 1.0)

    def unaberrate(self, u_apparent: np.ndarray) -> np.ndarray:
        """Apparent unit directions -> geometric."""
        return self._turn(_unit(u_apparent), -1.0)

    # --- rays -> surface -----------------------------------------------------------
    def intercept(self, u_apparent: np.ndarray, *, iterations: int = 4) -> Intercept:
        """Cast apparent J2000 rays (N, 3) from Juno onto Io's ellipsoid."""
        d = self.unaberrate(np.atleast_2d(u_apparent))
        n = d.shape[0]
        c0 = self.io_ssb[:3] - self.observer_ssb[:3]
        vel = self.io_ssb[3:]
        m0d, mdd = d @ self.rot0.T, d @ self.drot.T
        a0 = self.rot0 @ c0
        a1 = self.rot0 @ vel + self.drot @ c0
        a2 = self.drot @ vel
        inv_r2 = 1.0 / self.radii**2
        lt = np.full(n, self.lt0)
        hit = np.zeros(n, dtype=bool)
        t = np.zeros(n)
        for _ in range(iterations):
            dt = (self.lt0 - lt)[:, None]
            origin = -(a0 + a1 * dt + a2 * dt * dt)
            db = m0d + mdd * dt
            qa = np.sum(db * db * inv_r2, axis=1)
            qb = 2.0 * np.sum(origin * db * inv_r2, axis=1)
            qc = np.sum(origin * origin * inv_r2, axis=1) - 1.0
            disc = qb * qb - 4.0 * qa * qc
            hit = disc >= 0.0
            t = np.where(hit, (-qb - np.sqrt(np.where(hit, disc, 0.0))) / (2.0 * qa), np.nan)
            hit &= t > 0
            lt = np.where(hit, t / C_KM_S, self.lt0)
        point = origin + db * t[:, None]
        normal = point * inv_r2
        to_obs = -db
        to_sun = self.sun_bf - point
        lat, lon = latlon_west(point)
        return Intercept(hit, point, t, lat, lon, _angle_deg(normal, to_sun),
                         _angle_deg(normal, to_obs), _angle_deg(to_sun, to_obs))

    # --- surface -> apparent directions --------------------------------------------
    def project(self, points_bf: np.ndarray, *, iterations: int = 4) -> Projection:
        """Apparent J2000 directions from Juno of body-fixed points (N, 3)."""
        x = np.atleast_2d(np.asarray(points_bf, dtype=float))
        c0 = self.io_ssb[:3] - self.observer_ssb[:3]
        vel = self.io_ssb[3:]
        xm0, xmd = x @ self.rot0, x @ self.drot
        lt = np.full(x.shape[0], self.lt0)
        for _ in range(iterations):
            dt = (self.lt0 - lt)[:, None]
            rel = c0 + vel * dt + xm0 + xmd * dt
            dist = np.linalg.norm(rel, axis=1)
            lt = dist / C_KM_S
        dt = (self.lt0 - lt)[:, None]
        rel_bf = rel @ self.rot0.T + (rel @ self.drot.T) * dt
        normal = x / self.radii**2
        at_centre = ~np.any(x, axis=1)
        emission = np.where(at_centre, 0.0, _angle_deg(normal, -rel_bf))
        incidence = np.where(at_centre, 0.0, _angle_deg(normal, self.sun_bf - x))
        visible = at_centre | (emission < 90.0)
        return Projection(self.aberrate(rel / dist[:, None]), dist, emission, incidence, visible)

    def centre_direction(self) -> np.ndarray:
        """Apparent J2000 unit direction of Io's centre."""
        return self.project(np.zeros((1, 3))).direction[0]

    def sub_observer(self, *, iterations: int = 5) -> tuple[float, float]:
        """Planetocentric lat, West lon (deg) of the sub-Juno point ('INTERCEPT/ELLIPSOID').

        Where the line from Juno to Io's centre meets the ellipsoid, with Io's
        position and orientation at the epoch the point's light left it, and
        Io's centre shifted by the stellar aberration of the Juno-point vector.
        """
        c0 = self.io_ssb[:3] - self.observer_ssb[:3]
        inv_r2 = 1.0 / self.radii**2
        lt, shift, point = self.lt0, np.zeros(3), np.zeros(3)
        for _ in range(iterations):
            dt = self.lt0 - lt
            rot = self.rot0 + self.drot * dt
            centre = c0 + self.io_ssb[3:] * dt
            obs = -(rot @ (centre + shift))
            d = -obs / np.linalg.norm(obs)
            qb, qc = 2.0 * np.sum(obs * d * inv_r2), np.sum(obs * obs * inv_r2) - 1.0
            qa = np.sum(d * d * inv_r2)
            point = obs + d * (-qb - np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
            srf = centre + rot.T @ point
            lt = np.linalg.norm(srf) / C_KM_S
            shift = self.aberrate(srf[None, :])[0] * np.linalg.norm(srf) - srf
        lat, lon = latlon_west(point)
        return float(lat), float(lon)

    def sky_radius_rad(self) -> float:
        """Apparent angular radius of Io (largest radius)."""
        return float(np.arcsin(min(1.0, self.radii.max() / self.range_km())))

    def range_km(self) -> float:
        """Juno - Io centre distance, light-time corrected."""
        return float(self.lt0 * C_KM_S)

