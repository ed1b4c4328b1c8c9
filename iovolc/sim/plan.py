"""Pass geometry, observation plan, aim and pointing error.

* :func:`design_juno_state` -- Juno's Jupiter-centric state at ``t_ref`` from a
  :class:`~iovolc.sim.scenario.PassDesign` (Io's state and the Sun direction
  come from the loaded simulated kernels).
* :func:`plan_frames` -- sequences of frames: one per 30.5 s spin, frame 1 of
  each sequence planned but never delivered (jiram_catalog: "frame 1 is never
  delivered"), mode, exposure, TARGET_NAME. Frames of an 'away' segment look
  at Jupiter's centre (TARGET_NAME JUPITER): the archive's frames without Io.
* :func:`true_attitude` -- the error-free JUNO_JIRAM_I -> J2000 rotation that
  puts the frame's aim point on its aim pixel, with the spin axis as close to
  the Sun direction (Juno's spin axis points near Earth) as that allows.
* :func:`pointing_errors` / :func:`recon_from_true` -- the along/cross-spin
  error of the reconstructed attitude, with the contract's convention
  ``TRUE = RECON @ axisar(s, a) @ axisar(c, b)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spiceypy

from iovolc.sim import instrument as ins
from iovolc.sim import kernels as simk
from iovolc.sim.raycast import IoView, surface_point
from iovolc.sim.scenario import CADENCE_S, MAX_SEQUENCE, PassDesign

#: 'limb' frames: the limb at most this far (px) from the aim pixel
LIMB_MAX_PX = 45.0


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _basis_perp(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([0.0, 0.0, 1.0]) if abs(a[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = _unit(np.cross(a, helper))
    return e1, np.cross(a, e1)


# --- trajectory --------------------------------------------------------------------------
def design_juno_state(design: PassDesign, *, et_ref: float, orbit_period_s: float) -> np.ndarray:
    """Juno's J2000 state wrt Jupiter at ``et_ref`` (solar SPK and PCK loaded).

    Relative to Io: position ``R n`` and velocity ``w u`` with the designed
    angles to the Sun direction; the one free angle (a turn of the pair about
    the Sun direction, or about ``n`` when the sub-spacecraft point is forced)
    is chosen so that Juno's speed matches its orbit's vis-viva speed best.
    """
    io = simk.io_state_wrt_jupiter(et_ref)[0]
    sun = _unit(-(simk.jupiter_state_ssb(et_ref)[:3] + io[:3]))
    gm = simk.GM_JUPITER_SYS_KM3_S2
    a_orbit = (gm * (orbit_period_s / (2 * np.pi)) ** 2) ** (1.0 / 3.0)
    candidates = []
    for psi in np.radians(np.arange(0.0, 360.0, 2.0)):
        n_hat, u_hat = _pair(design, sun, psi, et_ref)
        pos = io[:3] + design.ref_range_km * n_hat
        vel = io[3:] + design.rel_speed_km_s * u_hat
        v_orbit = np.sqrt(gm * (2.0 / np.linalg.norm(pos) - 1.0 / a_orbit))
        candidates.append((abs(np.linalg.norm(vel) - v_orbit), psi, pos, vel))
    _, _, pos, vel = min(candidates, key=lambda c: c[0])
    return np.concatenate([pos, vel])


def _pair(design: PassDesign, sun: np.ndarray, psi: float, et: float):
    """(n, u): unit position and velocity directions of Juno relative to Io."""
    if design.sub_point is not None:
        rot = np.array(spiceypy.pxform("IAU_IO", "J2000", et))
        n_hat = _unit(rot @ surface_point(*design.sub_point, [1.0, 1.0, 1.0]))
        e1, e2 = _basis_perp(n_hat)
        return n_hat, np.cos(psi) * e1 + np.sin(psi) * e2
    e1, e2 = _basis_perp(sun)
    ring = np.cos(psi) * e1 + np.sin(psi) * e2
    phase = np.radians(design.ref_phase_deg)
    if design.kind == "night":  # radial: moving away from Io along n
        n_hat = np.cos(phase) * sun + np.sin(phase) * ring
        return n_hat, n_hat
    tw = np.radians(design.velocity_sun_deg)
    u_hat = np.cos(tw) * sun + np.sin(tw) * ring
    f1 = _unit(sun - np.cos(tw) * u_hat)
    f2 = np.cross(u_hat, f1)
    cos_b = np.clip(np.cos(phase) / np.sin(tw), -1.0, 1.0)
    n_hat = cos_b * f1 + design.side * np.sqrt(1.0 - cos_b**2) * f2
    return n_hat, u_hat


# --- plan --------------------------------------------------------------------------------
@dataclass
class PlannedFrame:
    """One delivered frame of the plan."""

    et_start: float
    start_utc: str
    sequence: int
    sequence_number: int  # 1-based; 1 is never delivered
    sequence_samples: int
    segment: str
    aim: str
    mode: str
    exposure_ms: int
    target_name: str
    aim_band: str
    aim_line: float
    aim_sample: float
    aim_point_bf: np.ndarray | None
    aim_offset: tuple[float, float]
    #: 'away' frames: the apparent J2000 direction aimed at (Jupiter's centre)
    aim_dir_j2000: np.ndarray | None = None

    @property
    def et_mid(self) -> float:
        return self.et_start + self.exposure_ms / 2000.0


def _sequences(n_frames: int, slots: int) -> list[tuple[int, int]]:
    """(first slot, planned frames) of sequences delivering ~n_frames within ``slots``."""
    n_frames = max(1, n_frames)
    n_seq = int(np.ceil(n_frames / (MAX_SEQUENCE - 1)))
    while n_frames + n_seq > slots and n_frames > 1:
        n_frames -= 1
        n_seq = int(np.ceil(n_frames / (MAX_SEQUENCE - 1)))
    sizes = [n_frames // n_seq + (1 if k < n_frames % n_seq else 0) + 1 for k in range(n_seq)]
    free = max(0, slots - sum(sizes))
    gap = free // n_seq
    out, slot = [], gap // 2
    for size in sizes:
        out.append((slot, size))
        slot += size + gap
    return out


def plan_frames(design: PassDesign, *, et_ref: float, rng: np.random.Generator) -> list:
    """Delivered frames of a pass (LSK loaded)."""
    weights = np.array([s.weight for s in design.segments])
    wanted = np.floor(design.frames * weights / weights.sum() + 0.5).astype(int)
    frames: list[PlannedFrame] = []
    year = int(spiceypy.et2utc(et_ref, "ISOC", 0)[:4])
    seq_id = 0
    for seg, n_want in zip(design.segments, wanted, strict=True):
        slots = int(np.floor((seg.stop_min - seg.start_min) * 60.0 / CADENCE_S)) + 1
        t_seg = et_ref + seg.start_min * 60.0
        for first, size in _sequences(int(n_want), slots):
            mode = str(rng.choice(list(ins.MODES), p=[0.35, 0.45, 0.2]))
            expo = int(rng.choice(seg.exposures_ms))
            target = "N/A" if (year >= 2022 and rng.random() < 0.5) else "IO"
            if seg.aim == "away":
                target = "JUPITER"
            bands = ins.MODES[mode]
            aim_band = str(rng.choice(bands))
            aim_line = float(rng.uniform(44.0, 84.0)) if seg.aim == "centre" else 63.5
            aim_sample = float(rng.uniform(170.0, 262.0)) if seg.aim == "centre" else \
                float(rng.uniform(150.0, 282.0))
            offset = (float(rng.uniform(0.7, 0.92)), float(rng.uniform(-50.0, 50.0)))
            # sequence start on a whole UTC millisecond
            t0 = t_seg + first * CADENCE_S + rng.uniform(0.0, 1.0)
            start0 = spiceypy.str2et(spiceypy.et2utc(t0, "ISOC", 3))
            for k in range(1, size):  # frame 1 (k = 0) is never delivered
                utc = spiceypy.et2utc(start0 + k * CADENCE_S, "ISOC", 3)
                band = aim_band if len(bands) == 1 else bands[(k + bands.index(aim_band)) % 2]
                frames.append(PlannedFrame(
                    et_start=float(spiceypy.str2et(utc)), start_utc=utc, sequence=seq_id,
                    sequence_number=k + 1, sequence_samples=size, segment=seg.name, aim=seg.aim,
                    mode=mode, exposure_ms=expo, target_name=target, aim_band=band,
                    aim_line=aim_line, aim_sample=aim_sample, aim_point_bf=None,
                    aim_offset=offset))
            seq_id += 1
    return frames


def choose_surface_aim(view: IoView, rng: np.random.Generator, *, night_share: float = 0.75):
    """A body-fixed point on the visible disc (emission < 65 deg), night side favoured."""
    centre = view.centre_direction()
    e1, e2 = _basis_perp(centre)
    ang = view.sky_radius_rad()
    rho = np.sqrt(rng.uniform(0.0, 0.8, 400)) * np.sin(ang)
    phi = rng.uniform(0.0, 2 * np.pi, 400)
    dirs = centre + np.tan(np.arcsin(rho))[:, None] * (np.cos(phi)[:, None] * e1
                                                        + np.sin(phi)[:, None] * e2)
    hit = view.intercept(dirs / np.linalg.norm(dirs, axis=1, keepdims=True))
    ok = hit.hit & (hit.emission_deg < 65.0)
    night = ok & (hit.incidence_deg > 92.0)
    pool = np.flatnonzero(night if (night.any() and rng.random() < night_share) else ok)
    if pool.size == 0:
        return np.zeros(3)
    return hit.point_bf[int(rng.choice(pool))]


def aim_direction(frame: PlannedFrame, view: IoView) -> np.ndarray:
    """Apparent J2000 direction the frame's aim pixel must see."""
    if frame.aim == "away":
        if frame.aim_dir_j2000 is None:
            raise ValueError("an 'away' frame needs aim_dir_j2000")
        return _unit(frame.aim_dir_j2000)
    if frame.aim == "surface" and frame.aim_point_bf is not None:
        return view.project(frame.aim_point_bf[None, :]).direction[0]
    centre = view.centre_direction()
    if frame.aim == "centre":
        return centre
    # 'limb': toward the sunlit limb, a fraction of Io's apparent radius from the centre
    sun_sky = view.rot0.T @ view.sun_bf
    sun_sky = sun_sky - np.dot(sun_sky, centre) * centre
    e1 = _unit(sun_sky)
    e2 = np.cross(centre, e1)
    frac, ang_deg = frame.aim_offset
    a = np.radians(ang_deg)
    radius_px = np.tan(view.sky_radius_rad()) / ins.IFOV_RAD
    frac = max(frac, 1.0 - LIMB_MAX_PX / radius_px)  # keep the limb within the strip
    off = np.tan(view.sky_radius_rad()) * frac
    return _unit(centre + off * (np.cos(a) * e1 + np.sin(a) * e2))


def _triad(a_from, b_from, a_to, b_to) -> np.ndarray:
    """Rotation M with M a_from = a_to and M b_from as close to b_to as possible."""
    def basis(p, s):
        t1 = _unit(p)
        t2 = _unit(np.cross(p, s))
        return np.column_stack([t1, t2, np.cross(t1, t2)])
    return basis(a_to, b_to) @ basis(a_from, b_from).T


def true_attitude(frame: PlannedFrame, view: IoView, *, spin_in_i: np.ndarray) -> np.ndarray:
    """Error-free JUNO_JIRAM_I -> J2000 rotation for a frame."""
    target = aim_direction(frame, view)
    pix = ins.pixel_to_band(frame.aim_line, frame.aim_sample) @ ins.band_to_jiram_i(
        frame.aim_band).T
    sun = _unit(view.rot0.T @ view.sun_bf + (view.io_ssb[:3] - view.observer_ssb[:3]))
    if abs(np.dot(sun, target)) > 0.999:
        sun = _basis_perp(target)[0]
    return _triad(pix, spin_in_i, target, sun)


# --- pointing error ----------------------------------------------------------------------
def spin_and_cross(sc_to_i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contract axes in JUNO_JIRAM_I: s = spin axis, c = unit(s x Z)."""
    s = _unit(sc_to_i @ np.array([0.0, 0.0, 1.0]))
    return s, _unit(np.cross(s, [0.0, 0.0, 1.0]))


def pointing_errors(n_frames: int, *, orbit: int, rng: np.random.Generator,
                    offset_deg: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame along (a) and cross (b) error angles (deg) of one pass.

    Orbits >= 44 (despinning mirror no longer used; Mura et al. 2024 sec 2.1):
    a pass-wide along offset of 7.0-7.8 deg, negative by default (the scene
    appears ~545 lines above its predicted place, as css.earth measures),
    jitter N(0, 3 px); cross U(-20, 20) px pass-wide plus N(0, 1.5 px). Orbits
    < 44: along N(0, 6 px), cross N(0, 3 px) pass-wide, same jitter.
    """
    px = np.degrees(ins.IFOV_RAD)
    if orbit >= 44:
        along0 = -rng.uniform(7.0, 7.8)
        cross0 = rng.uniform(-20.0, 20.0) * px
    else:
        along0 = rng.normal(0.0, 6.0) * px
        cross0 = rng.normal(0.0, 3.0) * px
    if offset_deg is not None:
        along0 = float(offset_deg)
    along = along0 + rng.normal(0.0, 3.0, n_frames) * px
    cross = cross0 + rng.normal(0.0, 1.5, n_frames) * px
    return along, cross


def error_rotation(a_deg: float, b_deg: float, s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """E = axisar(s, a) @ axisar(c, b)."""
    return np.array(spiceypy.axisar(s, np.radians(a_deg))) @ np.array(
        spiceypy.axisar(c, np.radians(b_deg)))


def recon_from_true(true_i2j: np.ndarray, err: np.ndarray) -> np.ndarray:
    """RECON(I -> J2000) from TRUE = RECON @ E."""
    return true_i2j @ err.T
