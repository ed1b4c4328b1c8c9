"""Scenarios of the simulated downlink: Io passes, their geometry and observation plans.

A *pass* is one perijove's Io observation. Its geometry is a straight-line
design of Juno relative to Io around a reference time ``t_ref`` (closest
approach for the flybys, the middle of a distant pass), turned into a
Jupiter-centric conic for the SPK (:mod:`iovolc.sim.plan`). Its plan is a list
of *segments*, each a stretch of time filled with imaging sequences of one
frame per 30.5 s spin.

* PJ57 (closest approach 2023-12-30 08:36 UTC, ~1500 km altitude, real):
  close frames 08:33-08:42 at ~3,300-11,200 km, phase ~84-113 deg, mostly
  night side (css.earth's orbit-57 receipt), plus lit frames at 20,000-70,000 km
  before closest approach (phase ~74 deg) whose limb is in view.
* PJ58 (2024-02-03 17:48 UTC, real): close frames inbound at ~17,800-3,300 km,
  phase ~89-147 deg, plus lit frames farther out before them (phase ~82-87 deg).
* Any other perijove: a distant pass a few hours before perijove, 1.2-4e5 km,
  lit (phase 20-60 deg at its middle), or with ``night=True`` on Io's anti-Sun
  side (phase 155-170 deg) moving radially.

Relative speed ~30 km/s for the flybys (Juno ~23.6 km/s at Io's orbit on a
33-day orbit and Io's 17.3 km/s, roughly crossed); the distant passes move
slowly enough (<= 25 km/s) that range and phase stay in their bands however
many frames are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

IO_MEAN_RADIUS_KM = 1821.6
#: one frame per spin (css.earth receipts 30.46-31.0 s; jiram_catalog 30.5 s)
CADENCE_S = 30.5
#: perijoves simulated by the full-mission mode (assumption: Io imaged at each)
MISSION_PERIJOVES = tuple(range(5, 76))
#: the perijoves simulated as close flybys (fewer frames delivered than designed)
CLOSE_FLYBYS = (57, 58)
#: frames per pass in full-mission mode (71 passes -> ~28,000 frames)
MISSION_FRAMES_PER_PASS = 400
#: frames per pass when not asked (flybys / distant passes)
DEFAULT_FRAMES = {"flyby": 64, "distant": 48, "night": 48}
#: largest SEQUENCE_SAMPLES (the real label JIR_IMG_RDR_2017033T114006_V02 has 13)
MAX_SEQUENCE = 13


@dataclass(frozen=True)
class Segment:
    """A stretch of a pass observed one way (minutes relative to ``t_ref``)."""

    name: str
    start_min: float
    stop_min: float
    #: share of the pass's frames
    weight: float
    #: 'limb' (lit limb in view), 'surface' (points on the disc, night side
    #: favoured), 'centre' (the whole disc in a strip), 'away' (Jupiter's centre:
    #: the frames without Io that make up most of the real archive)
    aim: str
    exposures_ms: tuple[int, ...]


@dataclass(frozen=True)
class PassDesign:
    """Geometry and observation plan of one Io pass."""

    perijove: int
    kind: str  # 'flyby' | 'distant' | 'night'
    t_ref_utc: str
    #: Juno - Io distance at t_ref (km) and relative speed (km/s)
    ref_range_km: float
    rel_speed_km_s: float
    #: Sun-Io-Juno angle at t_ref and angle between the relative velocity and the
    #: Sun direction seen from Io (deg); 'night' passes move radially
    ref_phase_deg: float
    velocity_sun_deg: float
    #: which of the two mirror solutions (+1 / -1)
    side: int
    segments: tuple[Segment, ...]
    frames: int
    hits_per_frame: float = 12.0
    #: force the sub-spacecraft point at t_ref (lat, West lon), e.g. over an eruption
    sub_point: tuple[float, float] | None = None


@dataclass(frozen=True)
class Scenario:
    """A named set of passes written into one downlink, and the scene options."""

    name: str
    passes: tuple[PassDesign, ...] = field(default_factory=tuple)
    #: forced pass-wide along-spin pointing offset (signed deg); None: drawn
    pointing_offset_deg: float | None = None
    #: perijove of the giant south-polar eruption (None: no eruption)
    eruption_perijove: int | None = None
    #: per-perijove source power variability (dex); 0 also keeps every source on
    variability_dex: float = 0.3
    #: sources absent from the Davies et al. 2024 catalog
    n_new_sources: int = 25
    #: share of each pass's frames that look at Io (the rest look at Jupiter)
    io_share: float = 1.0


def close_flyby(perijove: int, *, frames: int | None = None) -> PassDesign:
    """The real close Io flybys (times and altitude real, the rest designed).

    ``ref_phase_deg`` / ``velocity_sun_deg`` are fitted (grid search) so that the
    phase over the close window spans the observed range for a straight line at
    30 km/s past a 3321.6 km closest approach (see docs/simulator.md).
    """
    n = frames or DEFAULT_FRAMES["flyby"]
    if perijove == 57:
        return PassDesign(
            57, "flyby", "2023-12-30T08:36:00", IO_MEAN_RADIUS_KM + 1500.0, 30.0,
            ref_phase_deg=105.5, velocity_sun_deg=106.5, side=1, frames=n, hits_per_frame=15.0,
            segments=(Segment("approach", -39.0, -11.5, 0.5, "limb", (1, 2)),
                      Segment("close", -3.0, 6.0, 0.5, "surface", (2, 3))))
    if perijove == 58:
        return PassDesign(
            58, "flyby", "2024-02-03T17:48:00", IO_MEAN_RADIUS_KM + 1500.0, 30.0,
            ref_phase_deg=145.0, velocity_sun_deg=100.0, side=-1, frames=n, hits_per_frame=15.0,
            segments=(Segment("approach", -40.0, -12.0, 0.5, "limb", (1, 2)),
                      Segment("close", -9.7, 0.5, 0.5, "surface", (2, 3))))
    raise ValueError(f"PJ{perijove} was not a close Io flyby (close flybys: 57, 58)")


def _span_min(frames: int) -> float:
    """Minutes a distant pass needs for ``frames`` delivered frames (with gaps)."""
    n_seq = max(1, int(np.ceil(frames / (MAX_SEQUENCE - 1))))
    return (frames + n_seq) * CADENCE_S * 1.5 / 60.0


def distant_pass(perijove: int, *, perijove_utc: str, seed: int, night: bool = False,
                 frames: int | None = None, sub_point=None) -> PassDesign:
    """A distant Io pass a few hours before perijove (seeded choices)."""
    from iovolc.reference import utc_to_et

    kind = "night" if night else "distant"
    n = frames or DEFAULT_FRAMES[kind]
    rng = np.random.default_rng([seed, perijove, 7])
    span = _span_min(n)
    hours_before = span / 120.0 + rng.uniform(2.0, 6.0)
    t_ref = _et_to_utc(utc_to_et(perijove_utc) - hours_before * 3600.0)
    if night:
        rng_km = float(rng.uniform(2.6e5, 3.2e5))
        speed = float(min(20.0, 0.8e5 / (span * 30.0)))
        phase, vel_sun = float(rng.uniform(155.0, 170.0)), 0.0
    else:
        rng_km = float(rng.uniform(1.4e5, 2.6e5))
        speed = float(np.clip(0.8 * rng_km / (span * 30.0), 3.0, 25.0))
        phase, vel_sun = float(rng.uniform(20.0, 60.0)), 90.0
    expo = (2, 3) if night else (1, 2)
    return PassDesign(
        perijove, kind, t_ref, rng_km, speed, ref_phase_deg=phase, velocity_sun_deg=vel_sun,
        side=int(rng.choice([-1, 1])), frames=n, hits_per_frame=8.0, sub_point=sub_point,
        segments=(Segment(kind, -span / 2.0, span / 2.0, 1.0, "centre", expo),))


def _et_to_utc(et: float) -> str:
    from astropy.time import Time

    return Time(2451545.0 + et / 86400.0, format="jd", scale="tdb").utc.isot[:23]


def scenario_for(perijoves: list[int], *, seed: int, night: bool = False,
                 frames_per_pass: int | None = None, pointing_offset_deg: float | None = None,
                 eruption_perijove: int | None = None, variability_dex: float = 0.3,
                 n_new_sources: int = 25, io_share: float = 1.0) -> Scenario:
    """PJ57/58 as the close flybys, any other perijove as a distant pass.

    ``pointing_offset_deg`` forces the pass-wide along-spin pointing offset
    (signed degrees, e.g. -7.4) of every pass; ``eruption_perijove`` adds the
    giant south-polar eruption at that perijove (its distant pass is then
    designed over the south pole); ``variability_dex`` is the per-perijove
    power scatter of every source (0: steady, none switched off); ``io_share`` < 1
    turns that share of each pass's frames to Jupiter (:func:`with_jupiter_frames`).
    """
    from iovolc.reference import load_perijoves

    if variability_dex < 0:
        raise ValueError(f"variability_dex must be >= 0, not {variability_dex}")
    if not 0.0 < io_share <= 1.0:
        raise ValueError(f"io_share must be in (0, 1], not {io_share}")
    table = load_perijoves().set_index("pj")
    passes = []
    for pj in perijoves:
        if pj in CLOSE_FLYBYS and not night:
            passes.append(close_flyby(pj, frames=frames_per_pass))
            continue
        if pj not in table.index:
            raise ValueError(f"PJ{pj} is not in the perijove table")
        sub = (-45.0, 110.0) if pj == eruption_perijove else None
        passes.append(distant_pass(pj, perijove_utc=table.loc[pj, "perijove_utc"], seed=seed,
                                   night=night, frames=frames_per_pass, sub_point=sub))
    if io_share < 1.0:
        passes = [with_jupiter_frames(p, io_share) for p in passes]
    label = "night" if night else "downlink"
    return Scenario(f"{label}-pj{'-'.join(str(p) for p in perijoves)}", tuple(passes),
                    pointing_offset_deg=pointing_offset_deg, eruption_perijove=eruption_perijove,
                    variability_dex=float(variability_dex), n_new_sources=int(n_new_sources),
                    io_share=float(io_share))


def with_jupiter_frames(design: PassDesign, io_share: float) -> PassDesign:
    """The pass with ``1 - io_share`` of its frames turned to Jupiter.

    Most JIRAM imager frames do not show Io: Perry et al. 2025 used 2,374 Io
    images from PJ5-PJ55, of an archive of ~85,000 imager frames (jiram_catalog's
    mirror counts 85,108), i.e. a few percent. The Jupiter frames form their own
    segment (whole sequences) starting 10 min after the pass's Io segments; the
    pass keeps ``frames`` in all.
    """
    n_away = int(round(design.frames * (1.0 - io_share)))
    if n_away <= 0:
        return design
    w_io = sum(s.weight for s in design.segments)
    start = max(s.stop_min for s in design.segments) + 10.0
    away = Segment("jupiter", start, start + _span_min(n_away), w_io * n_away /
                   max(design.frames - n_away, 1), "away", (1, 2))
    return replace(design, segments=(*design.segments, away))


def with_frames(design: PassDesign, frames: int) -> PassDesign:
    """The same pass with another frame count."""
    return replace(design, frames=int(frames))
