"""Simulate a Juno JIRAM downlink: PDS3 archive + SPICE kernel tree + truth.

``simulate(scenario, out_dir=..., seed=...)`` writes three folders::

    out_dir/archive/JNOJIR_1nnn, JNOJIR_2nnn   PDS3 EDR/RDR volumes (real layout)
    out_dir/kernels/{lsk,pck,fk,ik,sclk,spk,ck} NAIF-layout kernel tree
    out_dir/truth/                              never inside the archive

Truth (docs/simulator_contract.md): ``frames.csv``, ``sources.csv`` (one row
per source per perijove), ``source_pixels.csv`` (where each source was drawn
in each frame), ``radiation_hits.csv``, ``scenario.json`` and
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
from iovolc.sim import instrument as ins
from iovolc.sim import kernels as simk
from iovolc.sim import plan as pl
from iovolc.sim.detector import expose, noise_free_flags, radiation_hits
from iovolc.sim.frame import band_to_j2000, render_frame
from iovolc.sim.pds3_label import RDR_UNITS
from iovolc.sim.pds3_writer import JiramImageMeta, write_product, write_volume
from iovolc.sim.raycast import IoView, surface_point
from iovolc.sim.render import AlbedoPattern, SourceSet
from iovolc.sim.scenario import PassDesign, Scenario
from iovolc.sim.scene import perijove_sources
from iovolc.spice import KernelSet, base_kernels

#: mission span covered by the solar-system SPK
MISSION_SPAN_UTC = ("2016-01-01T00:00:00", "2026-12-31T00:00:00")
CREATION_TIME = "2026-11-24T00:00:00.000"
HIT_COLUMNS = ["product_id", "perijove", "hit", "line", "sample", "dn"]


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


def kernel_names(perijove: int) -> tuple[str, ...]:
    """SPICE_FILE_NAME of a pass's products, in the real labels' order (FK, IK, LSK, PCK,
    SCLK, SPK, CK)."""
    lsk, pck, fk = (p.name for p in base_kernels())
    return (fk, simk.IK_NAME, lsk, pck, simk.SCLK_NAME, simk.SOLAR_SPK_NAME,
            simk.pass_spk_name(perijove), simk.pass_ck_name(perijove))


def _source_set(src: pd.DataFrame, radii: np.ndarray) -> SourceSet:
    on = src[src["active"]]
    pts = surface_point(on["lat_deg"].to_numpy(), on["lon_west_deg"].to_numpy(), radii)
    normals = pts / radii**2
    return SourceSet(on["source_id"].to_numpy(), on["ref_id"].to_numpy(), pts,
                     normals / np.linalg.norm(normals, axis=1, keepdims=True),
                     on["temperature_k"].to_numpy(float), on["area_km2"].to_numpy(float))


def simulate_pass(design: PassDesign, *, out_dir: Path, seed: int,
                  products: tuple[str, ...] = ("EDR", "RDR"), scenario: Scenario | None = None
                  ) -> dict:
    """Write one pass (kernels, products) and return its truth tables."""
    sc = scenario or Scenario("pass", (design,))
    kroot, troot, aroot = out_dir / "kernels", out_dir / "truth", out_dir / "archive"
    pj = design.perijove
    rng = np.random.default_rng([seed, pj, 1])
    pj_table = reference.load_perijoves().set_index("pj")
    et_ref = float(reference.utc_to_et(design.t_ref_utc))
    period = float(pj_table.loc[pj, "et"] - pj_table.loc[pj - 1, "et"]) \
        if pj - 1 in pj_table.index else 53.5 * 86400
    base = [kroot / p.parent.name / p.name for p in base_kernels()]
    solar = kroot / "spk" / simk.SOLAR_SPK_NAME
    spk = kroot / "spk" / simk.pass_spk_name(pj)
    with KernelSet.from_paths([*base, solar]):
        juno = pl.design_juno_state(design, et_ref=et_ref, orbit_period_s=period)
        plan = pl.plan_frames(design, et_ref=et_ref, rng=rng)
        ets = [f.et_mid for f in plan]
        simk.write_pass_spk(spk, perijove=pj, et_start=min(ets) - 900.0,
                            et_stop=max(ets) + 900.0, juno_state_wrt_jupiter=juno,
                            juno_epoch=et_ref)

    src = perijove_sources(pj, seed=seed, variability_dex=sc.variability_dex,
                           n_new_sources=sc.n_new_sources, eruption=(pj == sc.eruption_perijove))
    kset = KernelSet.from_paths([*base, kroot / "ik" / simk.IK_NAME,
                                 kroot / "sclk" / simk.SCLK_NAME, solar, spk])
    with kset:
        sources = _source_set(src, np.array(spiceypy.bodvrd("IO", "RADII", 3)[1]))
        sc_to_i = np.array(spiceypy.pxform(ins.FRAME_SPACECRAFT, ins.FRAME_JIRAM_I, et_ref))
        spin, cross = pl.spin_and_cross(sc_to_i)
        orbit = int(reference.orbit_number_for_et(et_ref))
        along, across = pl.pointing_errors(len(plan), orbit=orbit, rng=rng,
                                           offset_deg=sc.pointing_offset_deg)
        views, trues, recons, aims = [], [], [], {}
        for f in plan:
            view = IoView.from_spice(f.et_mid)
            if f.aim == "surface":
                if f.sequence not in aims:
                    aims[f.sequence] = pl.choose_surface_aim(view, rng)
                f.aim_point_bf = aims[f.sequence]
            elif f.aim == "away":  # a Jupiter frame: its centre on the aim pixel
                f.aim_dir_j2000 = np.array(
                    spiceypy.spkpos("JUPITER", f.et_mid, "J2000", "LT+S", "JUNO")[0])
            true = pl.true_attitude(f, view, spin_in_i=spin)
            err = pl.error_rotation(along[len(trues)], across[len(trues)], spin, cross)
            views.append(view)
            trues.append(true)
            recons.append(pl.recon_from_true(true, err))
        intervals = [(f.et_start - 0.5, f.et_start + f.exposure_ms / 1000.0 + 0.5) for f in plan]
        for name, rots, folder in (("REC", recons, kroot), ("TRUE", trues, troot / "kernels")):
            simk.write_ck(folder / "ck" / simk.pass_ck_name(pj, true=name == "TRUE"),
                          segment_id=f"JUNO PJ{pj} {name} SIM", intervals_et=intervals,
                          c_matrices=[sc_to_i.T @ r.T for r in rots])
        out = _render_pass(design, plan, views, trues, recons, along, across, sources, src,
                           rng=rng, seed=seed, products=products, aroot=aroot)
    out["sources"] = src
    return out


def _render_pass(design, plan, views, trues, recons, along, across, sources, src, *, rng,
                 seed, products, aroot) -> dict:
    pj = design.perijove
    albedo = AlbedoPattern.seeded(seed)
    darks = {ms: jiram.load_dark_dn(ms) for ms in jiram.DARK_EXPOSURES_MS}
    names = kernel_names(pj)
    label_rng = np.random.default_rng([seed, pj, 9])
    frame_rows, pix_rows, hit_rows, index_rows = [], [], [], {}
    for k, f in enumerate(plan):
        view = views[k]
        sun_km = float(np.linalg.norm(view.sun_bf))
        irr = {b: float(physics.solar_band_irradiance(b, sun_distance_km=sun_km)) for b in "LM"}
        img = render_frame(view, mode=f.mode, i_to_j2000=trues[k], sources=sources,
                           albedo=albedo, irradiance=irr)
        hits = radiation_hits(rng, n_rows=img.radiance.shape[0], mean_count=design.hits_per_frame)
        exp = expose(img.radiance, mode=f.mode, exposure_ms=f.exposure_ms, rng=rng,
                     dark_full=darks[f.exposure_ms], hits=hits)
        stop = spiceypy.et2utc(f.et_start + f.exposure_ms / 1000.0, "ISOC", 3)
        meta = dict(
            start_time_utc=f.start_utc, stop_time_utc=stop,
            sclk_start=simk.sclk_string(f.et_start),
            sclk_stop=simk.sclk_string(f.et_start + f.exposure_ms / 1000.0),
            orbit_number=int(reference.orbit_number_for_et(f.et_mid)),
            target_name=f.target_name, instrument_mode_id=f.mode,
            exposure_duration_s=f.exposure_ms / 1000.0, spice_file_names=names,
            sequence_number=f.sequence_number, sequence_samples=f.sequence_samples,
            product_creation_time=CREATION_TIME)
        pids, unit = {}, "DN"
        for ptype, pixels in (("EDR", exp.edr), ("RDR", exp.rdr)):
            rdr_unit = RDR_UNITS[int(label_rng.integers(0, 2))]
            m = JiramImageMeta(product_type=ptype, rdr_unit=rdr_unit,
                               write_exposure=bool(label_rng.random() >= 0.1),
                               band_block_as_object=bool(label_rng.random() < 0.15), **meta)
            if ptype not in products:
                continue
            vol = aroot / m.volume_id
            index_rows.setdefault(m.volume_id, (vol, m.data_set_id, []))[2].append(
                write_product(vol, m, pixels))
            pids[ptype] = m.product_id
            unit = m.unit if ptype == "RDR" else unit
        pid = pids.get("RDR") or pids.get("EDR")
        frame_rows.append(_frame_truth(f, view, trues[k], recons[k], img, exp, pid=pid,
                                       pids=pids, unit=unit, pj=pj, along=along[k],
                                       cross=across[k], n_hits=len({h[0] for h in hits})))
        for d in img.drawn:
            sat, nonlin = noise_free_flags(img.radiance, mode=f.mode, exposure_ms=f.exposure_ms,
                                           dark_full=darks[f.exposure_ms], line=d["line"],
                                           sample=d["sample"])
            pix_rows.append({"product_id": pid, "perijove": pj, **d, "saturated": sat,
                             "nonlinear": nonlin})
        hit_rows += [{"product_id": pid, "perijove": pj, "hit": h, "line": r, "sample": s,
                      "dn": dn} for h, r, s, dn in hits]
    for vid, (vol, dsid, rows) in index_rows.items():
        write_volume(vol, volume_id=vid, data_set_id=dsid, index_rows=rows)
    return {"frames": frame_rows, "pixels": pix_rows, "hits": hit_rows}


def _io_centre_pixel(view: IoView, i_to_j2000: np.ndarray, mode: str) -> tuple[float, float]:
    band = "M" if "M" in ins.MODES[mode] else "L"
    line, sample, _ = ins.band_to_pixel(band_to_j2000(i_to_j2000, band).T @
                                        view.centre_direction())
    return float(line) + ins.band_row0(mode, band), float(sample)


def _frame_truth(f, view: IoView, true, recon, img, exp, *, pid, pids, unit, pj, along, cross,
                 n_hits) -> dict:
    sub_lat, sub_lon = view.sub_observer()
    to_obs = view.rot0 @ (view.observer_ssb[:3] - view.io_ssb[:3])
    cos_ph = np.dot(to_obs, view.sun_bf) / np.linalg.norm(to_obs) / np.linalg.norm(view.sun_bf)
    line_t, sample_t = _io_centre_pixel(view, true, f.mode)
    line_p, sample_p = _io_centre_pixel(view, recon, f.mode)
    rng_km = view.range_km()
    return {
        "product_id": pid, "rdr_product_id": pids.get("RDR", ""),
        "edr_product_id": pids.get("EDR", ""), "perijove": pj, "sequence": f.sequence,
        "sequence_number": f.sequence_number, "sequence_samples": f.sequence_samples,
        "segment": f.segment, "start_time_utc": f.start_utc, "et_mid": f.et_mid,
        "mode": f.mode, "bands": "".join(ins.MODES[f.mode]), "lines": ins.mode_lines(f.mode),
        "exposure_ms": f.exposure_ms, "unit": unit, "target_name": f.target_name,
        "orbit_number": int(reference.orbit_number_for_et(f.et_mid)), "range_km": rng_km,
        "pixel_scale_km": rng_km * ins.IFOV_RAD,
        "phase_deg": float(np.degrees(np.arccos(np.clip(cos_ph, -1, 1)))),
        "sub_lat_deg": sub_lat, "sub_lon_west_deg": sub_lon,
        "io_in_view": img.disc_pixels > 0, "disc_pixels": img.disc_pixels,
        "lit_disc_pixels": img.lit_disc_pixels, "limb_in_frame": img.limb_in_frame,
        "night_side": bool(img.disc_pixels > 0 and img.lit_disc_pixels < 0.05 * img.disc_pixels),
        "pointing_along_deg": float(along), "pointing_cross_deg": float(cross),
        "io_center_line_true": line_t, "io_center_line_predicted": line_p,
        "io_center_sample_true": sample_t, "io_center_sample_predicted": sample_p,
        "n_radiation_hits": n_hits, "n_saturated_pixels": exp.n_saturated,
        "n_nonlinear_pixels": exp.n_nonlinear,
    }


def write_common_kernels(out_dir: Path) -> None:
    """Real generic kernels, IK, SCLK and solar SPK (shared by all passes)."""
    kroot = out_dir / "kernels"
    simk.copy_base_kernels(kroot)
    simk.write_ik(kroot / "ik" / simk.IK_NAME)
    simk.write_sclk(kroot / "sclk" / simk.SCLK_NAME)
    et_a, et_b = (float(reference.utc_to_et(t)) for t in MISSION_SPAN_UTC)
    with KernelSet.from_paths(base_kernels()):
        simk.write_solar_spk(kroot / "spk" / simk.SOLAR_SPK_NAME, et_start=et_a, et_stop=et_b)


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

    kw = dict(out_dir=out_dir, seed=seed, products=tuple(products), scenario=scenario)
    if workers > 1 and len(scenario.passes) > 1:
        # SPICE is process-global: one pass per process, never threads
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futs = [pool.submit(simulate_pass, d, **kw) for d in scenario.passes]
            for d, fut in zip(scenario.passes, futs, strict=True):
                collect(d, fut.result())
    else:
        for design in scenario.passes:
            collect(design, simulate_pass(design, **kw))
    fr, px = pd.DataFrame(frames), pd.DataFrame(pixels)
    src = pd.concat(sources, ignore_index=True)
    if len(px):
        seen = px.groupby(["perijove", "source_id"]).product_id.nunique().rename("n_frames")
        src = src.merge(seen.reset_index(), on=["perijove", "source_id"], how="left")
    src["n_frames"] = src.get("n_frames", pd.Series(0, index=src.index)).fillna(0).astype(int)
    fr.to_csv(troot / "frames.csv", index=False)
    px.to_csv(troot / "source_pixels.csv", index=False)
    pd.DataFrame(hits, columns=HIT_COLUMNS).to_csv(troot / "radiation_hits.csv", index=False)
    src.to_csv(troot / "sources.csv", index=False)
    elapsed = time.perf_counter() - t_start
    (troot / "scenario.json").write_text(json.dumps({
        "scenario": scenario.name, "seed": seed, "products": list(products),
        "options": {k: v for k, v in asdict(scenario).items() if k not in ("name", "passes")},
        "passes": [asdict(p) for p in scenario.passes], "n_frames": len(fr),
    }, indent=2))
    return SimulationSummary(
        out_dir=str(out_dir), archive=str(out_dir / "archive"), kernels=str(out_dir / "kernels"),
        truth=str(troot), n_frames=len(fr), n_products=len(fr) * len(products),
        n_volumes=len(list((out_dir / "archive").glob("JNOJIR_*"))),
        n_sources_visible=int((src["n_frames"] > 0).sum()), n_radiation_hits=len(hits),
        elapsed_s=elapsed, perijoves=tuple(p.perijove for p in scenario.passes),
    )
