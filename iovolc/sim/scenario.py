"""Scenarios of the simulated downlink: Io passes and their observation plans.

A *pass* is one perijove's Io observation: Juno's flyby geometry at a
reference time (closest approach for the close flybys) and a plan of imaging
sequences. The close flybys follow the real ones (PJ57 2023-12-30 ~08:36 UTC,
PJ58 2024-02-03 ~17:48 UTC, ~1500 km altitude); the sub-spacecraft points at
closest approach, the sequence plans and the distant passes are our choices,
not mission records (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

IO_MEAN_RADIUS_KM = 1821.6
SPIN_PERIOD_S = 30.0
#: perijoves simulated by the full-mission mode (assumption: Io imaged at each)
MISSION_PERIJOVES = tuple(range(5, 76))
#: frames per distant pass in full-mission mode (71 passes -> ~28,000 frames)
MISSION_FRAMES_PER_PASS = 400


@dataclass(frozen=True)
class PassDesign:
    """Geometry and observation plan of one Io pass."""

    perijove: int
    #: UTC of the reference time (closest approach for flybys)
    t_ref_utc: str
    #: Juno-Io centre distance at the reference time (km)
    range_km: float
    #: 'flyby': the reference time is the closest approach, Juno above the
    #: given sub-spacecraft point; 'night': Juno on Io's anti-Sun side
    kind: str = "flyby"
    sub_lat_deg: float = 0.0
    sub_lon_west_deg: float = 0.0
    #: observation window relative to the reference time (minutes)
    window_min: tuple[float, float] = (-120.0, 40.0)
    sequence_spacing_min: float = 4.0
    frames_per_sequence: int = 4
    #: mean radiation hits per frame (Io's torus / Jupiter's belts)
    hits_per_frame: float = 15.0
    #: along-spin (line) pointing error sigma and cap (deg); cross-spin sigma
    pointing_sigma_deg: float = 0.6
    pointing_cap_deg: float = 2.0
    cross_sigma_deg: float = 0.08
    jitter_sigma_deg: float = 0.02


@dataclass(frozen=True)
class Scenario:
    """A named set of passes written into one downlink."""

    name: str
    passes: tuple[PassDesign, ...] = field(default_factory=tuple)


def close_flyby(perijove: int) -> PassDesign:
    """The real close Io flybys (times and altitude real, the rest chosen)."""
    if perijove == 57:
        return PassDesign(57, "2023-12-30T08:36:00", IO_MEAN_RADIUS_KM + 1500.0,
                          sub_lat_deg=25.0, sub_lon_west_deg=300.0)
    if perijove == 58:
        return PassDesign(58, "2024-02-03T17:48:00", IO_MEAN_RADIUS_KM + 1500.0,
                          sub_lat_deg=-40.0, sub_lon_west_deg=20.0)
    raise ValueError(f"PJ{perijove} was not a close Io flyby (close flybys: 57, 58)")


def distant_pass(perijove: int, *, perijove_utc: str, seed: int, night: bool = False,
                 frames_per_pass: int | None = None) -> PassDesign:
    """A distant Io pass a few hours before perijove (seeded choices)."""
    from iovolc.reference import utc_to_et

    rng = np.random.default_rng([seed, perijove, 7])
    hours_before = rng.uniform(2.0, 9.0)
    et_ref = utc_to_et(perijove_utc) - hours_before * 3600.0
    t_ref = _et_to_utc(et_ref)
    design = PassDesign(
        perijove,
        t_ref,
        float(rng.uniform(1.2e5, 4.0e5)) if not night else float(rng.uniform(2.5e5, 3.5e5)),
        kind="night" if night else "flyby",
        sub_lat_deg=float(rng.uniform(-60, 60)),
        sub_lon_west_deg=float(rng.uniform(0, 360)),
        window_min=(-60.0, 60.0),
        sequence_spacing_min=6.0,
        frames_per_sequence=4,
        hits_per_frame=8.0,
    )
    if frames_per_pass:
        n_seq = max(1, int(np.ceil(frames_per_pass / design.frames_per_sequence)))
        span = design.window_min[1] - design.window_min[0]
        design = replace(design, sequence_spacing_min=span / n_seq)
    return design


def _et_to_utc(et: float) -> str:
    from astropy.time import Time

    t = Time(2451545.0 + et / 86400.0, format="jd", scale="tdb").utc
    return t.isot[:23]


def scenario_for(perijoves: list[int], *, seed: int, night: bool = False,
                 frames_per_pass: int | None = None) -> Scenario:
    """PJ57/58 as the close flybys, any other perijove as a distant pass."""
    from iovolc.reference import load_perijoves

    table = load_perijoves().set_index("pj")
    passes = []
    for pj in perijoves:
        if pj in (57, 58) and not night:
            p = close_flyby(pj)
            if frames_per_pass:
                n_seq = max(1, int(np.ceil(frames_per_pass / p.frames_per_sequence)))
                span = p.window_min[1] - p.window_min[0]
                p = replace(p, sequence_spacing_min=span / n_seq)
            passes.append(p)
        else:
            if pj not in table.index:
                raise ValueError(f"PJ{pj} is not in the perijove table")
            passes.append(distant_pass(pj, perijove_utc=table.loc[pj, "perijove_utc"], seed=seed,
                                       night=night, frames_per_pass=frames_per_pass))
    label = "night" if night else "downlink"
    return Scenario(f"{label}-pj{'-'.join(str(p) for p in perijoves)}", tuple(passes))
