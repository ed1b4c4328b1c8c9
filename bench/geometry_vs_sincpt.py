"""Vectorised pixel geometry (iovolc.geometry) vs a per-pixel CSPICE loop.

For a few frames of a simulated PJ57 downlink, with each frame's label
kernels loaded (reconstructed CK), times

* ours: ``FrameState.from_spice(et_mid)`` + ``pixel_geometry`` on ALL
  lines x 432 pixels of the frame (best of ``--repeat``);
* CSPICE: per pixel ``sincpt`` (Ellipsoid, IO, IAU_IO, LT+S, JUNO,
  JUNO_JIRAM_I) + ``ilumin`` + ``reclat`` on a random subset of pixels,
  half on Io's disc and half off it (an off-disc ray costs only a
  ``sincpt``), extrapolated to the whole frame with the frame's on/off
  pixel counts;

and reports the largest disagreement on the subset: latitude, West
longitude, emission / incidence / phase (deg), and the ray direction
difference in pixels (the component of the intercept difference across the
line of sight, divided by the range and the IFOV). The CSPICE rays use the
IK's IFOV from the kernel pool and the IK's pinhole model: x = -(L - 127.5)
IFOV, y = +(S - 215.5) IFOV, z = 1 in JUNO_JIRAM_I, with detector line
L = frame line (+128 for 128-line M-band frames).

Both sides run in this process, one after the other, per frame.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import _common
import numpy as np
import spiceypy

from iovolc import jiram
from iovolc.geometry import FrameState, pixel_geometry
from iovolc.pipeline import group_products


def pick_frames(products, n):
    """First frame of ``n`` sequences spread over the pass (or spread frames)."""
    groups = group_products(products)
    if n <= len(groups):
        idx = np.unique(np.round(np.linspace(0, len(groups) - 1, n)).astype(int))
        return [groups[i][0] for i in idx]
    idx = np.unique(np.round(np.linspace(0, len(products) - 1, n)).astype(int))
    return [products[i] for i in idx]


def spice_pixels(et, line_det, sample, ifov):
    """Per-pixel CSPICE loop: sincpt + ilumin + reclat. Arrays (NaN off the disc)."""
    n = len(line_det)
    out = {k: np.full(n, np.nan) for k in
           ("lat", "lon_w", "emission", "incidence", "phase", "range")}
    spoints = np.full((n, 3), np.nan)
    srfvecs = np.full((n, 3), np.nan)
    found_all = np.zeros(n, dtype=bool)
    with spiceypy.no_found_check():
        for k in range(n):
            dvec = [-(line_det[k] - jiram.CENTER_LINE) * ifov,
                    (sample[k] - jiram.CENTER_SAMPLE) * ifov, 1.0]
            spoint, _, srfvec, found = spiceypy.sincpt(
                "Ellipsoid", "IO", et, "IAU_IO", "LT+S", "JUNO", "JUNO_JIRAM_I", dvec)
            if not found:
                continue
            _, _, phase, inc, emi = spiceypy.ilumin(
                "Ellipsoid", "IO", et, "IAU_IO", "LT+S", "JUNO", spoint)
            _, lon, lat = spiceypy.reclat(spoint)
            found_all[k] = True
            spoints[k] = spoint
            srfvecs[k] = srfvec
            out["lat"][k] = lat
            out["lon_w"][k] = -lon
            out["emission"][k] = emi
            out["incidence"][k] = inc
            out["phase"][k] = phase
    for key in ("lat", "lon_w", "emission", "incidence", "phase"):
        out[key] = np.degrees(out[key])
    out["lon_w"] = np.mod(out["lon_w"], 360.0)
    return found_all, spoints, srfvecs, out


def time_spice(et, line_det, sample, ifov):
    t0 = time.perf_counter()
    res = spice_pixels(et, line_det, sample, ifov)
    return time.perf_counter() - t0, res


def bench_frame(product, data, cache_dir, *, n_subset, repeat, rng):
    mode = product.mode
    n_lines = jiram.mode_lines(mode)
    row0 = jiram.frame_to_detector_line(mode, 0)
    kset = _common.kernels_for(product, data, cache_dir)
    with kset:
        et = product.et_mid
        ifov = float(spiceypy.gdpool("INS-61410_IFOV", 0, 1)[0])
        ll, ss = np.mgrid[0:n_lines, 0:jiram.N_SAMPLES]
        line_det = ll + row0
        t_state, t_geom = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            state = FrameState.from_spice(et)
            t1 = time.perf_counter()
            geom = pixel_geometry(state, line_det, ss)
            t2 = time.perf_counter()
            t_state.append(t1 - t0)
            t_geom.append(t2 - t1)
        n_pix = line_det.size
        t_ours = min(t_state) + min(t_geom)
        on = geom.on_disc.ravel()
        n_on = int(on.sum())
        # stratified subset: half on the disc, half off
        flat_on, flat_off = np.flatnonzero(on), np.flatnonzero(~on)
        pick_on = rng.choice(flat_on, min(n_subset // 2, flat_on.size), replace=False)
        pick_off = rng.choice(flat_off, min(n_subset - pick_on.size, flat_off.size),
                              replace=False)
        t_sp_on, res_on = time_spice(et, line_det.ravel()[pick_on].astype(float),
                                     ss.ravel()[pick_on].astype(float), ifov)
        t_sp_off, res_off = time_spice(et, line_det.ravel()[pick_off].astype(float),
                                       ss.ravel()[pick_off].astype(float), ifov)
    per_on = t_sp_on / max(pick_on.size, 1)
    per_off = t_sp_off / max(pick_off.size, 1)
    t_spice_frame = per_on * n_on + per_off * (n_pix - n_on)

    # disagreement on the subset (both strata)
    pick = np.concatenate([pick_on, pick_off])
    found = np.concatenate([res_on[0], res_off[0]])
    spo = np.concatenate([res_on[1], res_off[1]])
    srf = np.concatenate([res_on[2], res_off[2]])
    sp = {k: np.concatenate([res_on[3][k], res_off[3][k]]) for k in res_on[3]}
    ours_on = on[pick]
    both = found & ours_on
    g = {
        "lat": geom.lat_deg.ravel()[pick], "lon_w": geom.lon_west_deg.ravel()[pick],
        "emission": geom.emission_deg.ravel()[pick],
        "incidence": geom.incidence_deg.ravel()[pick], "phase": geom.phase_deg.ravel()[pick],
    }
    diff = {}
    for k in ("lat", "emission", "incidence", "phase"):
        diff[k] = np.abs(g[k][both] - sp[k][both])
    dlon = np.abs((g["lon_w"][both] - sp["lon_w"][both] + 180.0) % 360.0 - 180.0)
    # longitude is degenerate at the poles: also report it as an arc on the surface
    diff["lon_w"] = dlon
    diff["lon_arc"] = dlon * np.cos(np.radians(sp["lat"][both]))
    # ray direction difference: intercept offset across the line of sight, in pixels
    p_ours = _intercepts(state, line_det.ravel()[pick][both], ss.ravel()[pick][both])
    los = srf[both]
    rng_km = np.linalg.norm(los, axis=1)
    u = los / rng_km[:, None]
    d = p_ours - spo[both]
    perp = d - np.sum(d * u, axis=1, keepdims=True) * u
    diff["ray_px"] = np.linalg.norm(perp, axis=1) / rng_km / ifov
    emi = sp["emission"][both]
    return {
        "product": product, "mode": mode, "n_pix": n_pix, "n_on": n_on,
        "t_state": min(t_state), "t_geom": min(t_geom), "t_ours": t_ours,
        "per_on": per_on, "per_off": per_off, "t_spice_frame": t_spice_frame,
        "n_sub_on": pick_on.size, "n_sub_off": pick_off.size,
        "disc_mismatch": int((found != ours_on).sum()), "n_both": int(both.sum()),
        "diff": diff, "emission": emi,
    }


def _intercepts(state, line_det, sample):
    # first element: body-fixed intercepts (the tuple's length varies across versions)
    return state.intercept(np.asarray(line_det, float), np.asarray(sample, float))[0]


def main():
    p = _common.base_parser(__doc__.splitlines()[0], frames_default=3,
                            frames_help="frames to time (first frame of sequences spread "
                                        "over the pass; default 3)")
    p.add_argument("--subset", type=int, default=2000,
                   help="pixels per frame for the CSPICE loop (half on the disc; default 2000)")
    p.add_argument("--repeat", type=int, default=5,
                   help="repeats of the vectorised geometry (best is kept; default 5)")
    p.add_argument("--seed", type=int, default=1, help="seed of the pixel subset")
    args = p.parse_args()
    _common.print_command()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="iovolc-bench-") as tmp:
        tmp = Path(tmp)
        data = _common.ensure_data(args.data, tmp)
        products = _common.load_rdrs(data)
        frames = pick_frames(products, args.frames)
        print(f"frames: {len(frames)} of {len(products)} RDRs; CSPICE subset {args.subset} "
              f"px/frame (half on the disc); vectorised geometry best of {args.repeat}")
        print(f"spiceypy {spiceypy.__version__}, {spiceypy.tkvrsn('TOOLKIT')}\n")
        rows = [bench_frame(f, data, tmp / "kcache", n_subset=args.subset, repeat=args.repeat,
                            rng=rng) for f in frames]

    us = 1e6
    print("per-pixel time (us); CSPICE = sincpt + ilumin + reclat, extrapolated to the frame "
          "from the on/off-disc subsets")
    hdr = (f"{'product':32s} {'mode':4s} {'pixels':>7s} {'on-disc':>7s} {'ours ms':>8s} "
           f"{'ours/px':>8s} {'spice on':>9s} {'spice off':>9s} {'spice/px':>9s} {'speed-up':>9s}")
    print(hdr)
    print("-" * len(hdr))
    tot_ours = tot_spice = 0.0
    tot_pix = 0
    for r in rows:
        tot_ours += r["t_ours"]
        tot_spice += r["t_spice_frame"]
        tot_pix += r["n_pix"]
        print(f"{r['product'].product_id:32s} {r['mode']:4s} {r['n_pix']:7d} {r['n_on']:7d} "
              f"{r['t_ours'] * 1e3:8.2f} {r['t_ours'] / r['n_pix'] * us:8.3f} "
              f"{r['per_on'] * us:9.2f} {r['per_off'] * us:9.2f} "
              f"{r['t_spice_frame'] / r['n_pix'] * us:9.2f} "
              f"{r['t_spice_frame'] / r['t_ours']:8.0f}x")
    print("-" * len(hdr))
    print(f"{'all frames':32s} {'':4s} {tot_pix:7d} {sum(r['n_on'] for r in rows):7d} "
          f"{tot_ours * 1e3:8.2f} {tot_ours / tot_pix * us:8.3f} {'':9s} {'':9s} "
          f"{tot_spice / tot_pix * us:9.2f} {tot_spice / tot_ours:8.0f}x")
    print("\n(ours ms = FrameState.from_spice + pixel_geometry for the whole frame; of it, "
          "from_spice: " + ", ".join(f"{r['t_state'] * 1e3:.2f}" for r in rows) + " ms)")
    speedup = tot_spice / tot_ours
    print(f"\nSPEED-UP (CSPICE loop / vectorised), whole frames: {speedup:.0f}x "
          f"(target >= 100x: {'met' if speedup >= 100 else 'NOT met'})")

    print("\nmax |ours - CSPICE| on the subset pixels both call on the disc")
    keys = [("lat", "lat (deg)"), ("lon_w", "lon W (deg)"), ("lon_arc", "lon*cos(lat)"),
            ("emission", "emission"), ("incidence", "incidence"), ("phase", "phase"),
            ("ray_px", "ray (px)")]
    hdr = f"{'product':32s} {'n':>5s} " + " ".join(f"{h:>12s}" for _, h in keys) + \
        f" {'disc mism.':>10s}"
    print(hdr)
    print("-" * len(hdr))
    all_diff = {k: [] for k, _ in keys}
    all_emi = []
    for r in rows:
        cells = []
        for k, _ in keys:
            v = r["diff"][k]
            all_diff[k].append(v)
            cells.append(f"{v.max():12.2e}" if v.size else f"{'-':>12s}")
        all_emi.append(r["emission"])
        print(f"{r['product'].product_id:32s} {r['n_both']:5d} " + " ".join(cells) +
              f" {r['disc_mismatch']:10d}")
    cat = {k: np.concatenate(v) for k, v in all_diff.items()}
    emi = np.concatenate(all_emi)
    print("-" * len(hdr))
    print(f"{'all (max)':32s} {cat['lat'].size:5d} " +
          " ".join(f"{cat[k].max():12.2e}" for k, _ in keys) +
          f" {sum(r['disc_mismatch'] for r in rows):10d}")
    low = emi <= 80.0
    print(f"{'all, emission <= 80 deg (max)':32s} {int(low.sum()):5d} " +
          " ".join(f"{cat[k][low].max():12.2e}" for k, _ in keys))
    print("\n(disc mism. = subset pixels that one side puts on Io's disc and the other not; "
          "lon*cos(lat) = longitude difference as an arc, deg)")


if __name__ == "__main__":
    main()
