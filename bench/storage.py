"""Calibrated-frame storage: bytes per frame, and the catalog from frames read back.

On a simulated downlink (default: the PJ57 close flyby, seed 1, +7.3 deg
clock offset, and PJ58, seed 2, -7.7 deg; 32 frames each), the frames are
calibrated once (``calibrate_group``) and written in each of these ways:

* ``uncompressed``: format 2 (float32 radiance in the primary HDU, uint8
  mask, summary table), for reference;
* ``format 3 (astropy)``: the previous writer -- astropy's ``CompImageHDU``,
  GZIP_1, one tile per row, no quantisation, each tile's gzip time zeroed;
* ``format 4 (written now)``: :func:`iovolc.products.frame_to_fits` through
  :mod:`iovolc.tiled_fits` -- the same standard layout and compression,
  16-row tiles, written directly, deflated by ISA-L (stop 23);
* ``format 4, zlib``: the same, deflated (and inflated) by zlib, as before
  stop 23;
* ``RICE_1 q=16`` (not used; for comparison): the radiance quantised to
  1/16 of each tile's noise (cfitsio's ``quantize_level=16``, subtractive
  dithering), then Rice-coded -- quantisation error ~ noise/55 rms.

Encode: FrameResult to bytes, each writer timed on the same frames. Decode:
:func:`iovolc.products.fits_to_frame`, and for format 3 also astropy's
read, the previous reader.
Each set is then read back the way the orchestrated flows do
(``fits_to_frame`` before extraction and for every re-extraction of the
pass) and the rest of the chain runs on it (``solve_pointing``,
``extract_group``, ``finish_pass``, ``build_catalog``). Printed: MB per frame
(mean, largest), encode and decode ms per frame, the store's size per 1,000
frames and for the mission's 85,108 imager frames, and the catalog of each
set against the uncompressed one (same rows, largest position and relative
power differences).

Run: ``uv run python bench/storage.py [--cases 57:1:7.3,58:2:-7.7] [--frames-per-pass 32]``.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from iovolc import tiled_fits as tf
from iovolc.catalog import build_catalog
from iovolc.kernels import kernel_set_for
from iovolc.pipeline import (
    calibrate_group,
    discover_products,
    extract_frame_result,
    extract_group,
    finish_pass,
    group_products,
    solve_pointing,
)
from iovolc.products import FORMAT_VERSION, _jsonable, fits_to_frame, frame_to_fits
from iovolc.reader import read_jiram_product
from iovolc.sim.downlink import simulate
from iovolc.sim.scenario import scenario_for

MISSION_FRAMES = 85_108


def uncompressed(r, kernels) -> bytes:
    """The same frame in the uncompressed layout (format 2)."""
    with fits.open(io.BytesIO(frame_to_fits(r, kernels=kernels))) as h:
        hdr = h[0].header.copy()
        hdr["FORMAT"] = "iovolc-calibrated-2"
        hdus = [fits.PrimaryHDU(np.array(h["RADIANCE"].data), header=hdr),
                fits.ImageHDU(np.array(h["MASK"].data), name="MASK"),
                fits.BinTableHDU(h["SUMMARY"].data, name="SUMMARY")]
        buf = io.BytesIO()
        fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def format3(r, kernels) -> bytes:
    """The previous writer: astropy, GZIP_1 one tile per row, gzip times zeroed."""
    s = r.summary
    hdr = fits.Header()
    hdr["FORMAT"] = ("iovolc-calibrated-3", "iovolc calibrated frame format")
    hdr["PRODUCT"] = (r.product_id, "source PDS3 product")
    hdr["BUNIT"] = "W/(m**2*sr)"
    for key, name in (("PERIJOVE", "perijove"), ("ETMID", "et_mid"), ("MODE", "mode"),
                      ("BANDS", "bands"), ("EXPOSURE", "exposure_s"),
                      ("STARTUTC", "start_time_utc"), ("PRODTYPE", "product_type")):
        hdr[key] = s[name]
    hdr["LIMBOK"] = (bool(s.get("limb_ok", False)), "own limb fit accepted")
    for key, name in (("LIMBALNG", "limb_along_rad"), ("LIMBCRSS", "limb_cross_rad")):
        v = float(s.get(name, 0.0))
        hdr[key] = v if np.isfinite(v) else 0.0
    hdr["CONFIGH"] = ("", "pipeline configuration hash")
    for k, name in enumerate(kernels, start=1):
        hdr[f"KERN{k:03d}"] = name[:68]
    mask = (r.saturated * 1 + r.bad * 2 + r.hits * 4).astype(np.uint8)
    comp = {"compression_type": "GZIP_1", "quantize_level": 0.0}
    js = json.dumps(_jsonable(s), sort_keys=True)
    rad = fits.CompImageHDU(np.asarray(r.radiance, dtype=np.float32), name="RADIANCE", **comp)
    rad.header["BUNIT"] = "W/(m**2*sr)"
    hdus = [fits.PrimaryHDU(header=hdr), rad,
            fits.CompImageHDU(mask, name="MASK", **comp),
            fits.BinTableHDU.from_columns([fits.Column(name="SUMMARY", format=f"{len(js)}A",
                                                       array=np.array([js]))], name="SUMMARY")]
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    out = bytearray(buf.getvalue())
    with fits.open(io.BytesIO(bytes(out)), disable_image_compression=True) as hdul:
        for i in (1, 2):  # zero each tile's gzip write time, as format 3 did
            h = hdul[i].header
            start = hdul.fileinfo(i)["datLoc"]
            heap = start + h["NAXIS1"] * h["NAXIS2"]
            rows = np.frombuffer(bytes(out), ">i4", count=h["NAXIS2"] * 2,
                                 offset=start).reshape(-1, 2)
            for count, offset in rows:
                at = heap + int(offset)
                if count >= 10 and out[at:at + 2] == b"\x1f\x8b":
                    out[at + 4:at + 8] = b"\0\0\0\0"
    return bytes(out)


def astropy_read(blob: bytes):
    """The previous reader: astropy's."""
    with fits.open(io.BytesIO(blob)) as h:
        return (np.array(h["RADIANCE"].data, dtype=np.float32), np.array(h["MASK"].data),
                json.loads(h["SUMMARY"].data["SUMMARY"][0]))


def rice(r, kernels) -> bytes:
    """The same frame with the radiance RICE_1-coded, quantised at 1/16 of the noise."""
    with fits.open(io.BytesIO(frame_to_fits(r, kernels=kernels))) as h:
        hdus = [fits.PrimaryHDU(header=h[0].header),
                fits.CompImageHDU(np.array(h["RADIANCE"].data), name="RADIANCE",
                                  compression_type="RICE_1", quantize_level=16.0,
                                  quantize_method=1, dither_seed=1),
                fits.CompImageHDU(np.array(h["MASK"].data), name="MASK",
                                  compression_type="GZIP_1"),
                fits.BinTableHDU(h["SUMMARY"].data, name="SUMMARY")]
        buf = io.BytesIO()
        fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def calibrate_case(case: Path, cache: Path):
    """(frames as FrameResults by product id, kernel set by product id, kernel names)."""
    urls, errors = discover_products(str(case / "archive"))
    if errors:
        raise SystemExit(f"archive errors: {errors}")
    products = [read_jiram_product(u) for u in urls]
    frames, ksets, names = {}, {}, {}
    for g in group_products(products):
        kset = kernel_set_for(g[0], kernel_root=str(case / "kernels"), cache_dir=cache)
        with kset:
            for r in calibrate_group(g):
                frames[r.product_id] = r
                ksets[r.product_id] = kset
                names[r.product_id] = list(g[0].spice_file_names)
    return frames, ksets, names


def chain_from_store(blobs: dict[str, bytes], ksets: dict) -> pd.DataFrame:
    """Pointing, extraction, pass finishing and catalog, frames read from ``blobs``."""
    results = {pid: fits_to_frame(b) for pid, b in blobs.items()}
    frames = pd.DataFrame([r.summary for r in results.values()])
    pointing = solve_pointing(frames)
    dets, summaries = [], {}
    for _, seq in frames.groupby("sequence", sort=False):
        pids = list(seq["product_id"])
        with ksets[pids[0]]:
            det, ss = extract_group([results[p] for p in pids], pointing)
        dets.append(det)
        summaries.update({s["product_id"]: s for s in ss})
    det = pd.concat([d for d in dets if len(d)], ignore_index=True)
    frames = pd.DataFrame(list(summaries.values()))
    out = []
    for _, fr in frames.groupby("perijove"):
        with ksets[fr["product_id"].iloc[0]]:
            _, d = finish_pass(fr, det[det["perijove"] == fr["perijove"].iloc[0]],
                               lambda pid, pt: extract_frame_result(
                                   fits_to_frame(blobs[pid]), pt, reregister=False))
        out.append(d)
    det = pd.concat(out, ignore_index=True).sort_values(["et_mid", "band", "line", "sample"],
                                                       ignore_index=True)
    return build_catalog(det).catalog


def compare(ref: pd.DataFrame, cat: pd.DataFrame) -> str:
    same = len(ref) == len(cat) and all(
        (ref[k].astype(str).to_numpy() == cat[k].astype(str).to_numpy()).all()
        for k in ("hotspot_id", "perijove", "flags"))
    if not same:
        return f"{len(cat)} rows vs {len(ref)}: rows DIFFER"
    dpos = max(float(np.max(np.abs(ref.lat_deg - cat.lat_deg))),
               float(np.max(np.abs((ref.lon_west_deg - cat.lon_west_deg + 180) % 360 - 180))))
    a, b = ref.power_gw.to_numpy(float), cat.power_gw.to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    dpow = float(np.max(np.abs(a[ok] - b[ok]) / np.abs(a[ok]))) if ok.any() else 0.0
    identical = ref.reset_index(drop=True).equals(cat.reset_index(drop=True))
    return (f"same {len(cat)} rows; max position difference {dpos:.1e} deg, max relative "
            f"power difference {dpow:.1e}{'; every value identical' if identical else ''}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="57:1:7.3,58:2:-7.7",
                   help="perijove:seed:pointing offset (deg) of each simulated pass")
    p.add_argument("--frames-per-pass", type=int, default=32)
    args = p.parse_args()
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)
    print(f"format written: {FORMAT_VERSION}")
    now, by_zlib = "format 4 (now)", "format 4, zlib"
    variants = {"uncompressed": uncompressed, "format 3 (astropy)": format3,
                now: lambda r, k: frame_to_fits(r, kernels=k),
                by_zlib: lambda r, k: frame_to_fits(r, kernels=k), "RICE_1 q=16": rice}
    # the writers compared (the others are derived)
    timed = ("format 3 (astropy)", now, by_zlib)
    fast = tf.CODEC
    sizes = {k: [] for k in variants}
    enc = {k: 0.0 for k in variants}
    dec = {k: 0.0 for k in variants}
    dec_astropy = 0.0
    cats = {k: [] for k in variants}
    n = 0
    with tempfile.TemporaryDirectory(prefix="iovolc-storage-") as tmp:
        for spec in args.cases.split(","):
            pj, seed, offset = int(spec.split(":")[0]), int(spec.split(":")[1]), \
                float(spec.split(":")[2])
            case = Path(tmp) / f"pj{pj}"
            simulate(scenario_for([pj], seed=seed, frames_per_pass=args.frames_per_pass,
                                  pointing_offset_deg=offset), out_dir=case, seed=seed)
            frames, ksets, names = calibrate_case(case, Path(tmp) / "cache")
            n += len(frames)
            for name, encode in variants.items():
                tf.CODEC = zlib if name == by_zlib else fast  # writing and reading
                blobs = {}
                for pid, r in frames.items():
                    t0 = time.perf_counter()
                    b = encode(r, names[pid])
                    enc[name] += time.perf_counter() - t0
                    blobs[pid] = b
                    sizes[name].append(len(b))
                    t0 = time.perf_counter()
                    back = fits_to_frame(b)
                    dec[name] += time.perf_counter() - t0
                    if name == "format 3 (astropy)":
                        t0 = time.perf_counter()
                        astropy_read(b)
                        dec_astropy += time.perf_counter() - t0
                    if encode is not rice:  # lossless: every pixel and mask bit back
                        assert np.array_equal(back.radiance, r.radiance, equal_nan=True)
                        assert all(np.array_equal(getattr(back, k), getattr(r, k))
                                   for k in ("saturated", "bad", "hits"))
                cats[name].append(chain_from_store(blobs, ksets))
                tf.CODEC = fast
            print(f"PJ{pj}: {len(frames)} frames calibrated, catalogs built from each set",
                  flush=True)
    print(f"\n{'format':<20}{'MB/frame':>10}{'largest':>10}{'encode ms':>11}{'decode ms':>11}"
          f"{'GB/1000 frames':>16}{'GB mission':>12}")
    for name in variants:
        s = np.array(sizes[name]) / 1e6
        e = f"{enc[name] * 1e3 / n:.1f}" if name in timed else "-"
        print(f"{name:<20}{s.mean():>10.3f}{s.max():>10.3f}{e:>11}{dec[name] * 1e3 / n:>11.1f}"
              f"{s.mean():>16.3f}{s.mean() * MISSION_FRAMES / 1e3:>12.1f}")
    print(f"(store size per 1,000 frames = 1,000 x the mean; mission = {MISSION_FRAMES:,} "
          "imager frames; calibrated frames only; decode = fits_to_frame)")
    f3 = "format 3 (astropy)"
    print(f"format 3 read by astropy (the previous reader): {dec_astropy * 1e3 / n:.1f} ms "
          f"per frame; writing: astropy (format 3) / ours (format 4) = "
          f"{enc[f3] / enc[now]:.1f}x; reading the same format 3 files: astropy / fits_to_frame "
          f"= {dec_astropy / dec[f3]:.1f}x; astropy on format 3 / fits_to_frame on format 4 = "
          f"{dec_astropy / dec[now]:.1f}x")
    print(f"format 4 deflated by {fast.__name__} / by zlib: writing {enc[now] / enc[by_zlib]:.2f} "
          f"of the time ({enc[by_zlib] / enc[now]:.1f}x faster), reading "
          f"{dec[now] / dec[by_zlib]:.2f}, bytes {np.mean(sizes[now]) / np.mean(sizes[by_zlib]):.3f}")
    print("\ncatalog from the frames read back, against the uncompressed frames':")
    for name in ("format 3 (astropy)", now, by_zlib, "RICE_1 q=16"):
        for k, (ref, cat) in enumerate(zip(cats["uncompressed"], cats[name], strict=True)):
            print(f"  {name}, pass {k + 1}: {compare(ref, cat)}")


if __name__ == "__main__":
    main()
