"""Simulate a Juno JIRAM downlink: PDS3 archive + SPICE kernel tree + truth.

``simulate(scenario, out_dir=..., seed=...)`` writes three folders::

    out_dir/archive/JNOJIR_1nnn, JNOJIR_2nnn   PDS3 EDR/RDR volumes (real layout)
    out_dir/kernels/{lsk,pck,fk,ik,sclk,spk,ck} NAIF-layout kernel tree
    out_dir/truth/                              never inside the archive

Truth: ``frames.csv`` (per-frame geometry and pointing error),
``sources.csv`` (per perijove: every catalog source with the temperature,
area and power used), ``source_pixels.csv`` (where each source was drawn in
each frame), ``radiation_hits.csv`` (every hit pixel), ``scenario.json``, and
``kernels/ck/*true*.bc`` (the error-free attitude).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import spiceypy

from iovolc import jiram, physics, reference
from iovolc.geometry import FrameState, surface_point
from iovolc.sim import kernels as simk
from iovolc.sim.pds3_writer import JiramImageMeta, write_product, write_volume
from iovolc.sim.render import AlbedoPattern, Sources, expose, radiation_hits, render_radiance
from iovolc.sim.scenario import SPIN_PERIOD_S, PassDesign, Scenario
from iovolc.spice import KernelSet, base_kernels

#: temperatures assumed for catalog sources without one (uniform, K)
UNKNOWN_T_RANGE_K = (300.0, 700.0)
#: per-perijove variability of each source's power (log-normal sigma)
POWER_VARIABILITY_SIGMA = 0.3
#: mission span covered by the solar-system SPK
MISSION_SPAN_UTC = ("2016-01-01T00:00:00", "2026-12-31T00:00:00")
JUNO_PERIJOVE_RADIUS_KM = 75_800.0
CREATION_TIME = "2026-11-24T00:00:00.000"


@dataclass(frozen=True)
class SimulationSummary:
    out_dir: str
    archive: str
    kernels: str
    truth: str
    n_frames: int
    n_products: int
    n_volumes: int
    n_sources_visible: int
    n_radiation_hits: int
    elapsed_s: float
    perijoves: tuple[int, ...]

    @property
    def frames_per_s(self) -> float:
        return self.n_frames / self.elapsed_s if self.elapsed_s > 0 else float("nan")


def perijove_sources(perijove: int, *, seed: int) -> pd.DataFrame:
    """The Davies et al. 2024 sources with the T, area and power used at a perijove."""
    cat = reference.load_davies2024().reset_index(drop=True)
    rng_t = np.random.default_rng([seed, 3])
    t_guess = rng_t.uniform(*UNKNOWN_T_RANGE_K, len(cat))
    known_t = cat["temperature_k"].notna().to_numpy()
    temp = np.where(known_t, cat["temperature_k"].to_numpy(dtype=float, na_value=np.nan), t_guess)
    rng_p = np.random.default_rng([seed, perijove, 5])
    factor = np.exp(rng_p.normal(0.0, POWER_VARIABILITY_SIGMA, len(cat)))
    power = cat["power_gw"].to_numpy(dtype=float) * factor
    area = physics.area_km2_from_power(power_gw=power, temperature_k=temp)
    return pd.DataFrame({
        "perijove": perijove,
        "ref_id": cat["ref_id"],
        "name": cat["name"].fillna(""),
        "lat_deg": cat["lat_deg"].astype(float),
        "lon_west_deg": cat["lon_west_deg"].astype(float),
        "temperature_k": temp,
        "temperature_from_catalog": known_t,
        "area_km2": area,
        "power_gw": power,
        "power_gw_per_um_m": physics.spectral_power_gw_per_um("M", temperature_k=temp,
                                                              area_km2=area),
        "power_gw_per_um_l": physics.spectral_power_gw_per_um("L", temperature_k=temp,
                                                              area_km2=area),
    })


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _triad(primary_a, secondary_a, primary_b, secondary_b) -> np.ndarray:
    """Rotation M with M @ primary_a = primary_b (secondary as close as possible)."""
    def basis(p, s):
        t1 = _unit(p)
        t2 = _unit(np.cross(p, s))
        return np.column_stack([t1, t2, np.cross(t1, t2)])
    return basis(primary_b, secondary_b) @ basis(primary_a, secondary_a).T


def design_juno_state(design: PassDesign, *, et_ref: float, orbit_period_s: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Juno's Jupiter-centric J2000 state at the pass reference time.

    Velocity: Juno's eccentric polar orbit (perijove 1.06 RJ, the given
    period) at that radius, inbound, moving southward. Position: Io plus
    ``range_km`` toward the designed sub-spacecraft point (made perpendicular
    to the relative velocity so the reference time is closest approach), or
    on Io's anti-Sun side for a night pass. Needs the PCK and solar SPK.
    """
    gm = simk.GM_JUPITER_SYS_KM3_S2
    io = simk.io_state_wrt_jupiter(et_ref)[0]
    pole = np.array(spiceypy.pxform("IAU_JUPITER", "J2000", et_ref))[:, 2]
    sun_from_io = -(simk.jupiter_state_ssb(et_ref)[:3] + io[:3])
    if design.kind == "night":
        anti_sun = -_unit(sun_from_io)
        tilt = _unit(np.cross(anti_sun, pole))
        ang = np.radians(rng.uniform(10, 25))
        s_hat = _unit(np.cos(ang) * anti_sun + np.sin(ang) * tilt)
    else:
        rot = np.array(spiceypy.pxform("IAU_IO", "J2000", et_ref))
        s_hat = rot @ _unit(surface_point(design.sub_lat_deg, design.sub_lon_west_deg,
                                          [1.0, 1.0, 1.0]))
    a = (gm * (orbit_period_s / (2 * np.pi)) ** 2) ** (1.0 / 3.0)
    e = 1.0 - JUNO_PERIJOVE_RADIUS_KM / a
    h = np.sqrt(gm * a * (1 - e * e))
    direction = s_hat
    for _ in range(3):
        pos = io[:3] + design.range_km * direction
        r = np.linalg.norm(pos)
        r_hat = pos / r
        v2 = gm * (2.0 / r - 1.0 / a)
        v_t = h / r
        v_r = -np.sqrt(max(v2 - v_t * v_t, 0.0))
        t_hat = _unit(-(pole - np.dot(pole, r_hat) * r_hat))
        vel = v_r * r_hat + v_t * t_hat
        if design.kind == "night":
            break
        w = _unit(vel - io[3:])
        direction = _unit(s_hat - np.dot(s_hat, w) * w)
    return np.concatenate([pos, vel])


def _et_to_utc(et: float) -> str:
    return spiceypy.et2utc(et, "ISOC", 3)


def _plan_pass(design: PassDesign, *, et_ref: float, rng: np.random.Generator):
    """Sequences of frames: time, mode, exposure, aim and pointing error."""
    sc2cam = np.array(spiceypy.pxform(jiram.FRAME_SPACECRAFT, jiram.FRAME_JIRAM_I, et_ref))
    spin_cam = sc2cam @ np.array([0.0, 0.0, 1.0])
    frames = []
    t0 = et_ref + design.window_min[0] * 60.0
    t1 = et_ref + design.window_min[1] * 60.0
    n_seq = int(np.floor((t1 - t0) / (design.sequence_spacing_min * 60.0))) + 1
    year = int(_et_to_utc(et_ref)[:4])
    for k in range(n_seq):
        ts = t0 + k * design.sequence_spacing_min * 60.0
        kind = rng.choice(["I2", "I1M", "I1L"], p=[0.5, 0.3, 0.2])
        mode = "I2" if kind == "I2" else "I1"
        aim_line = 191.5 if kind in ("I2", "I1M") else 63.5
        io_app, _ = spiceypy.spkpos("IO", ts, "J2000", "LT+S", "JUNO")
        rng_km = np.linalg.norm(io_app)
        ang_r = np.arcsin(min(1.0, 1829.4 / rng_km))
        sun_app, _ = spiceypy.spkpos("SUN", ts, "J2000", "LT+S", "JUNO")
        # phase (Sun-Io-Juno) ~ 180 deg minus the Sun-Io elongation seen from Juno
        phase = 180.0 - np.degrees(np.arccos(np.dot(_unit(sun_app), _unit(io_app))))
        lit = phase < 100
        exposure_ms = int(rng.choice([1, 2])) if lit else int(rng.choice([2, 3]))
        # aim: the centre if the disc fits the band strip, else a point near the limb
        if 2 * ang_r / jiram.IFOV_RAD < 100:
            off = np.zeros(2)
        else:
            mag = rng.uniform(0.55, 0.95) * ang_r
            phi = rng.uniform(0, 2 * np.pi)
            off = mag * np.array([np.cos(phi), np.sin(phi)])
        e_along = float(np.clip(rng.normal(0, design.pointing_sigma_deg),
                                -design.pointing_cap_deg, design.pointing_cap_deg))
        e_cross = float(rng.normal(0, design.cross_sigma_deg))
        target = "N/A" if (year >= 2022 and rng.random() < 0.5) else "IO"
        for j in range(design.frames_per_sequence):
            frames.append({
                "et_mid": ts + j * SPIN_PERIOD_S,
                "mode": mode, "aim_line": aim_line, "exposure_ms": exposure_ms,
                "aim_offset_rad": off, "spin_cam": spin_cam, "sequence": k,
                "err_along_deg": e_along + float(rng.normal(0, design.jitter_sigma_deg)),
                "err_cross_deg": e_cross + float(rng.normal(0, design.jitter_sigma_deg / 4)),
                "target_name": target,
            })
    return frames, sc2cam


def _attitudes(frame: dict, sc2cam: np.ndarray):
    """(J2000->camera) reconstructed (aimed) and true (with error) rotations."""
    et = frame["et_mid"]
    io_app, _ = spiceypy.spkpos("IO", et, "J2000", "LT+S", "JUNO")
    sun_app, _ = spiceypy.spkpos("SUN", et, "J2000", "LT+S", "JUNO")
    u_io = _unit(io_app)
    # aim offset in a plane perpendicular to the line of sight
    e1 = _unit(np.cross(u_io, sun_app if np.linalg.norm(np.cross(u_io, _unit(sun_app))) > 0.1
                        else [0.0, 0.0, 1.0]))
    e2 = np.cross(u_io, e1)
    off = frame["aim_offset_rad"]
    u_aim = _unit(u_io + off[0] * e1 + off[1] * e2)
    d_aim = np.array([-(frame["aim_line"] - jiram.CENTER_LINE) * jiram.IFOV_RAD, 0.0, 1.0])
    secondary = _unit(sun_app)
    if abs(np.dot(secondary, u_aim)) > 0.98:
        secondary = np.array([0.0, 0.0, 1.0])
    # camera <- J2000: aim direction -> aim pixel, Sun as close to the spin axis as possible
    a_recon = _triad(u_aim, secondary, _unit(d_aim), frame["spin_cam"])
    ea, ec = np.radians(frame["err_along_deg"]), np.radians(frame["err_cross_deg"])
    err = np.array(spiceypy.rotate(ea, 2)) @ np.array(spiceypy.rotate(ec, 1))
    a_true = err @ a_recon
    return a_recon, a_true


def _kernel_names(perijove: int) -> tuple[str, ...]:
    return (
        *(p.name for p in base_kernels()),
        simk.IK_NAME, simk.SCLK_NAME, simk.SOLAR_SPK_NAME,
        simk.pass_spk_name(perijove), simk.pass_ck_name(perijove),
    )


def simulate_pass(design: PassDesign, *, out_dir: Path, seed: int,
                  products: tuple[str, ...] = ("EDR", "RDR")) -> dict:
    """Write one pass (kernels, products) and return its truth tables."""
    kroot = out_dir / "kernels"
    troot = out_dir / "truth"
    aroot = out_dir / "archive"
    rng = np.random.default_rng([seed, design.perijove, 1])
    pj_table = reference.load_perijoves().set_index("pj")
    pj = design.perijove
    et_ref = float(reference.utc_to_et(design.t_ref_utc))
    period = float(pj_table.loc[pj, "et"] - pj_table.loc[pj - 1, "et"]) if pj - 1 in \
        pj_table.index else 53.5 * 86400
    et_a = et_ref + design.window_min[0] * 60.0 - 3600.0
    et_b = et_ref + design.window_min[1] * 60.0 + 3600.0
    base = [kroot / p.parent.name / p.name for p in base_kernels()]
    solar = kroot / "spk" / simk.SOLAR_SPK_NAME
    ik = kroot / "ik" / simk.IK_NAME
    sclk = kroot / "sclk" / simk.SCLK_NAME
    with KernelSet.from_paths([*base, solar]):
        juno = design_juno_state(design, et_ref=et_ref, orbit_period_s=period, rng=rng)
        spk = kroot / "spk" / simk.pass_spk_name(pj)
        simk.write_pass_spk(spk, perijove=pj, et_start=et_a, et_stop=et_b,
                            juno_state_wrt_jupiter=juno, juno_epoch=et_ref)

    src = perijove_sources(pj, seed=seed)
    hits_rows, frame_rows, pix_rows = [], [], []
    index_rows: dict[str, list] = {}
    albedo = AlbedoPattern.seeded(seed)
    names = _kernel_names(pj)
    darks = {ms: jiram.load_dark_dn(ms) for ms in jiram.DARK_EXPOSURES_MS}
    with KernelSet.from_paths([*base, ik, sclk, solar, spk]):
        radii = np.array(spiceypy.bodvrd("IO", "RADII", 3)[1])
        sources = Sources(
            ref_id=src["ref_id"].to_numpy(), name=src["name"].to_numpy(),
            lat_deg=src["lat_deg"].to_numpy(), lon_west_deg=src["lon_west_deg"].to_numpy(),
            temperature_k=src["temperature_k"].to_numpy(), area_km2=src["area_km2"].to_numpy(),
            power_gw=src["power_gw"].to_numpy(),
            points_bf=surface_point(src["lat_deg"].to_numpy(), src["lon_west_deg"].to_numpy(),
                                    radii),
        )
        plan, sc2cam = _plan_pass(design, et_ref=et_ref, rng=rng)
        cam2sc = sc2cam.T
        recon, true = zip(*(_attitudes(f, sc2cam) for f in plan), strict=True)
        intervals = []
        for f in plan:
            half = f["exposure_ms"] / 2000.0
            intervals.append((f["et_mid"] - half - 0.5, f["et_mid"] + half + 0.5))
        simk.write_ck(kroot / "ck" / simk.pass_ck_name(pj), segment_id=f"JUNO PJ{pj} REC SIM",
                      intervals_et=intervals, c_matrices=np.array([cam2sc @ a for a in recon]))
        simk.write_ck(troot / "kernels" / "ck" / simk.pass_ck_name(pj, true=True),
                      segment_id=f"JUNO PJ{pj} TRUE SIM", intervals_et=intervals,
                      c_matrices=np.array([cam2sc @ a for a in true]))
        for f, a_rec, a_true in zip(plan, recon, true, strict=True):
            et = f["et_mid"]
            state = FrameState.from_spice(et, cam_to_j2000=a_true.T)
            sun_km = float(np.linalg.norm(spiceypy.spkpos("SUN", et, "J2000", "LT+S", "IO")[0]))
            radiance, drawn = render_radiance(state, mode=f["mode"], sources=sources,
                                              sun_distance_km=sun_km, albedo=albedo)
            n_rows = radiance.shape[0]
            hits = radiation_hits(rng, n_rows=n_rows, mean_count=design.hits_per_frame)
            edr, rdr = expose(radiance, mode=f["mode"], exposure_ms=f["exposure_ms"], rng=rng,
                              dark_full=darks[f["exposure_ms"]], hits=hits)
            half = f["exposure_ms"] / 2000.0
            start, stop = _et_to_utc(et - half), _et_to_utc(et + half)
            meta = dict(
                start_time_utc=start, stop_time_utc=stop,
                sclk_start=simk.sclk_string(et - half), sclk_stop=simk.sclk_string(et + half),
                orbit_number=int(reference.orbit_number_for_et(et)),
                target_name=f["target_name"], instrument_mode_id=f["mode"],
                exposure_duration_s=f["exposure_ms"] / 1000.0, spice_file_names=names,
                sequence_id=f"IO_PJ{pj:03d}_SEQ{f['sequence']:03d}",
                product_creation_time=CREATION_TIME,
            )
            pids = {}
            for ptype, img in (("EDR", edr), ("RDR", rdr)):
                if ptype not in products:
                    continue
                m = JiramImageMeta(product_type=ptype, **meta)
                vol = aroot / m.volume_id
                row = write_product(vol, m, img)
                index_rows.setdefault(m.volume_id, []).append((vol, m.data_set_id, row))
                pids[ptype] = m.product_id
            pid = pids.get("RDR") or pids.get("EDR")
            frame_rows.append(_frame_truth(state, a_rec, f, pid=pid, pids=pids, start=start,
                                           n_rows=n_rows, edr=edr, pj=pj, n_hits=len(hits)))
            for d in drawn:
                d.update(product_id=pid, perijove=pj)
                d["saturated"] = _near_saturated(rdr, d, f["exposure_ms"])
                pix_rows.append(d)
            for h, r, s, dn in hits:
                hits_rows.append({"product_id": pid, "perijove": pj, "hit": h, "line": r,
                                  "sample": s, "dn": dn})
    for vid, rows in index_rows.items():
        vol, dsid = rows[0][0], rows[0][1]
        write_volume(vol, volume_id=vid, data_set_id=dsid, index_rows=[r for _, _, r in rows])
    return {"frames": frame_rows, "pixels": pix_rows, "hits": hits_rows, "sources": src}


def _near_saturated(rdr: np.ndarray, d: dict, exposure_ms: int) -> bool:
    """Any pixel within 1 px of the source centre at the saturation level."""
    r, s = int(round(d["line"])), int(round(d["sample"]))
    win = rdr[max(r - 1, 0):r + 2, max(s - 1, 0):s + 2]
    sat = jiram.saturation_radiance(exposure_ms / 1000.0)
    return win.size > 0 and bool((win >= 0.99 * sat).any())


def _frame_truth(state: FrameState, a_rec, f, *, pid, pids, start, n_rows, edr, pj, n_hits):
    et = f["et_mid"]
    spoint, _, _ = spiceypy.subpnt("INTERCEPT/ELLIPSOID", "IO", et, "IAU_IO", "LT+S", "JUNO")
    r = np.linalg.norm(spoint)
    lat = np.degrees(np.arcsin(spoint[2] / r))
    lon_w = np.mod(-np.degrees(np.arctan2(spoint[1], spoint[0])), 360.0)
    io_app, _ = spiceypy.spkpos("IO", et, "J2000", "LT+S", "JUNO")
    rng_km = float(np.linalg.norm(io_app))
    to_obs = -(state.rot @ state.io_pos)
    phase = np.degrees(np.arccos(np.dot(_unit(state.sun_bf), _unit(to_obs))))
    # Io centre: where it truly is, and where the reconstructed pointing puts it
    true_line, true_sample, _ = state.project_points(np.zeros((1, 3)))
    rec_state = FrameState(**{**state.__dict__, "cam_to_j2000": a_rec.T})
    rec_line, rec_sample, _ = rec_state.project_points(np.zeros((1, 3)))
    row0 = float(jiram.frame_to_detector_line(f["mode"], 0))
    return {
        "product_id": pid, "edr_product_id": pids.get("EDR", ""), "perijove": pj,
        "sequence": f["sequence"], "start_time_utc": start, "et_mid": et,
        "mode": f["mode"], "exposure_ms": f["exposure_ms"], "target_name": f["target_name"],
        "orbit_number": int(reference.orbit_number_for_et(et)),
        "sub_lat_deg": lat, "sub_lon_west_deg": lon_w, "range_km": rng_km,
        "pixel_scale_km": rng_km * jiram.IFOV_RAD, "phase_deg": phase,
        "io_center_line": float(true_line[0]) - row0, "io_center_sample": float(true_sample[0]),
        "io_center_line_predicted": float(rec_line[0]) - row0,
        "io_center_sample_predicted": float(rec_sample[0]),
        "pointing_error_line_px": float(rec_line[0] - true_line[0]),
        "pointing_error_sample_px": float(rec_sample[0] - true_sample[0]),
        "pointing_error_along_deg": f["err_along_deg"],
        "pointing_error_cross_deg": f["err_cross_deg"],
        "io_radius_px": float(np.tan(np.arcsin(min(1.0, 1821.6 / rng_km))) / jiram.IFOV_RAD),
        "n_radiation_hits": n_hits,
        "n_saturated_pixels": int((edr >= jiram.ADC_FULL_SCALE_DN).sum()),
        "lines": n_rows,
    }


def write_common_kernels(out_dir: Path) -> None:
    """Real generic kernels, IK, SCLK and solar SPK (shared by all passes)."""
    kroot = out_dir / "kernels"
    simk.copy_base_kernels(kroot)
    simk.write_ik(kroot / "ik" / simk.IK_NAME)
    simk.write_sclk(kroot / "sclk" / simk.SCLK_NAME)
    solar = kroot / "spk" / simk.SOLAR_SPK_NAME
    et_a, et_b = (float(reference.utc_to_et(t)) for t in MISSION_SPAN_UTC)
    with KernelSet.from_paths(base_kernels()):
        simk.write_solar_spk(solar, et_start=et_a, et_stop=et_b)


def simulate(scenario: Scenario, *, out_dir: Path | str, seed: int = 0,
             products: tuple[str, ...] = ("EDR", "RDR"), progress=None,
             workers: int = 1) -> SimulationSummary:
    """Write the downlink of ``scenario`` under ``out_dir``."""
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    write_common_kernels(out_dir)
    troot = out_dir / "truth"
    troot.mkdir(parents=True, exist_ok=True)
    frames, pixels, hits, sources = [], [], [], []

    def collect(design: PassDesign, res: dict) -> None:
        frames.extend(res["frames"])
        pixels.extend(res["pixels"])
        hits.extend(res["hits"])
        sources.append(res["sources"])
        if progress is not None:
            progress(design.perijove, len(res["frames"]))

    if workers > 1 and len(scenario.passes) > 1:
        # SPICE is process-global: one pass per process, never threads
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futs = [pool.submit(simulate_pass, d, out_dir=out_dir, seed=seed, products=products)
                    for d in scenario.passes]
            for d, fut in zip(scenario.passes, futs, strict=True):
                collect(d, fut.result())
    else:
        for design in scenario.passes:
            collect(design, simulate_pass(design, out_dir=out_dir, seed=seed, products=products))
    fr = pd.DataFrame(frames)
    px = pd.DataFrame(pixels)
    src = pd.concat(sources, ignore_index=True)
    if len(px):
        seen = px.groupby(["perijove", "ref_id"]).agg(
            n_frames=("product_id", "nunique"), min_emission_deg=("emission_deg", "min"),
            best_pixel_scale_km=("pixel_scale_km", "min")).reset_index()
        src = src.merge(seen, on=["perijove", "ref_id"], how="left")
    else:
        src["n_frames"] = 0
    src["n_frames"] = src["n_frames"].fillna(0).astype(int)
    fr.to_csv(troot / "frames.csv", index=False)
    px.to_csv(troot / "source_pixels.csv", index=False)
    pd.DataFrame(hits, columns=["product_id", "perijove", "hit", "line", "sample", "dn"]).to_csv(
        troot / "radiation_hits.csv", index=False)
    src.to_csv(troot / "sources.csv", index=False)
    elapsed = time.perf_counter() - t_start
    (troot / "scenario.json").write_text(json.dumps({
        "scenario": scenario.name, "seed": seed, "products": list(products),
        "passes": [asdict(p) for p in scenario.passes],
        "n_frames": len(fr), "elapsed_s": elapsed,
    }, indent=2))
    n_products = len(fr) * len(products)
    return SimulationSummary(
        out_dir=str(out_dir), archive=str(out_dir / "archive"), kernels=str(out_dir / "kernels"),
        truth=str(troot), n_frames=len(fr), n_products=n_products,
        n_volumes=len(list((out_dir / "archive").glob("JNOJIR_*"))),
        n_sources_visible=int((src["n_frames"] > 0).sum()), n_radiation_hits=len(hits),
        elapsed_s=elapsed, perijoves=tuple(p.perijove for p in scenario.passes),
    )
