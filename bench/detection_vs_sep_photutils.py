"""Hotspot detection: iovolc's extract_frame vs SEP and photutils, on the same frames.

Every sequence of a simulated PJ57 downlink is calibrated from its RDRs
(``calibrate_sequence``: bad pixels and radiation hits found and replaced),
then each frame is searched, band strip by band strip (128 x 432 rows of
``jiram.band_layout``), by

* ours, ``extract_frame(..., pointing_method="none")``: kernels loaded,
  ``FrameState.from_spice(et_mid)`` (reconstructed pointing), median-filter
  background; only detections on Io's *predicted* disc are reported;
* ours, ``extract_frame`` on the pointing the pipeline settled on (limb
  registration, pass solution, constellations, sequence ties: taken from the
  chain's frame table; the registration itself is not in this row's time),
  shading background;
* ours, ``pipeline.run_local`` on the whole archive: the full in-memory chain
  (read, calibration, registration, pass pointing, geometry, extraction,
  constellations/ties/transients, catalog), its time divided by the number
  of frames it ran on;
* SEP: ``sep.Background(data)`` (defaults: 64 px boxes, 3x3 filter) +
  ``sep.extract(data - bkg, 5.0, err=bkg.globalrms)`` (defaults: minarea 5,
  3x3 matched filter, deblending, cleaning);
* photutils: ``Background2D(data, (32, 36), filter_size=(3, 3))`` (4 x 12
  boxes per strip) + ``detect_sources(data - bkg, 5 * bkg_rms, n_pixels=2)``
  + ``SourceCatalog`` centroids; and the same with ``deblend_sources``
  (n_pixels=2) before the catalog;
* SEP and photutils once more on the raw RDR strips (hits and hot pixels
  still in) to show what the cleaning buys.

Truth (``truth/``): a source pixel row counts for the recall when its
expected peak SNR is >= 10: its noise-free brightest pixel
(``peak_radiance_w_m2_sr``) over the robust scatter of the cleaned frame
around it (15 x 15 box minus the central 5 x 5;
``iovolc.sim.evaluate.measure_noise``), as ``evaluate.detectable_sources``
counts it. It is found when a detection centroid of the same frame and band
lies within 1.5 px. A detection with no truth source (any SNR) within 1.5 px
is a false positive; those within 1.5 px of a truth radiation-hit pixel are
counted apart, and so are those off Io's disc (``pipeline.backplanes`` on
the pipeline's pointing). Timings are per frame (sum over its band strips),
all per-frame methods run side by side in this one process, frame after
frame, after the chain.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import _common
import numpy as np
import pandas as pd
import photutils
import sep
from photutils.background import Background2D, MedianBackground
from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources
from photutils.utils.exceptions import NoDetectionsWarning

from iovolc import jiram
from iovolc.calibrate import calibrate_sequence, raw_dn_estimate
from iovolc.extract import extract_frame
from iovolc.geometry import FrameState
from iovolc.pipeline import FrameResult, backplanes, group_products, run_local
from iovolc.sim.evaluate import Truth, load_truth, measure_noise

MATCH_PX = 1.5
MIN_PEAK_SNR = 10.0
SEP_THRESH = 5.0
PHOT_BOX = (32, 36)
PHOT_NSIGMA = 5.0
PHOT_NPIX = 2

METHODS = [
    ("ours", "ours extract_frame, unregistered"),
    ("ours_reg", "ours extract_frame, pipeline pointing"),
    ("chain", "ours run_local (full chain)"),
    ("sep", "sep (cleaned frames)"),
    ("phot", "photutils (cleaned)"),
    ("phot_db", "photutils + deblend (cleaned)"),
    ("sep_raw", "sep (raw RDR)"),
    ("phot_raw", "photutils (raw RDR)"),
]


def pick_groups(groups, n_frames):
    """Whole sequences spread over the pass, at least ``n_frames`` frames in all."""
    total = sum(len(g) for g in groups)
    if n_frames >= total:
        return groups
    for k in range(1, len(groups) + 1):
        idx = np.unique(np.round(np.linspace(0, len(groups) - 1, k)).astype(int))
        chosen = [groups[i] for i in idx]
        if sum(len(g) for g in chosen) >= n_frames:
            return chosen
    return groups


# --- the third-party detectors ------------------------------------------------------


def run_sep(img):
    bkg = sep.Background(img)
    obj = sep.extract(img - bkg, SEP_THRESH, err=bkg.globalrms)
    return obj["y"], obj["x"]


def run_photutils(img, *, deblend):
    """(lines, samples, deblend seconds)."""
    bkg = Background2D(img, PHOT_BOX, filter_size=(3, 3), bkg_estimator=MedianBackground())
    sub = img - bkg.background
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)  # an empty half: 0 rows
        segm = detect_sources(sub, PHOT_NSIGMA * bkg.background_rms, n_pixels=PHOT_NPIX)
    t_db = 0.0
    if segm is None:
        return np.zeros(0), np.zeros(0), t_db
    if deblend:
        t0 = time.perf_counter()
        segm = deblend_sources(sub, segm, n_pixels=PHOT_NPIX, progress_bar=False)
        t_db = time.perf_counter() - t0
    cat = SourceCatalog(sub, segm)
    return np.asarray(cat.y_centroid, float), np.asarray(cat.x_centroid, float), t_db


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return time.perf_counter() - t0, out


# --- scoring ---------------------------------------------------------------------------


def _nearest(ax, ay, bx, by):
    """Distance from each (ax, ay) to the nearest (bx, by) (inf if none)."""
    if len(bx) == 0 or len(ax) == 0:
        return np.full(len(ax), np.inf), np.zeros(len(ax), int)
    d = np.hypot(np.asarray(ax)[:, None] - np.asarray(bx)[None, :],
                 np.asarray(ay)[:, None] - np.asarray(by)[None, :])
    j = d.argmin(axis=1)
    return d[np.arange(len(ax)), j], j


def score(dets: pd.DataFrame, truth_px: pd.DataFrame, hits: pd.DataFrame, on_disc: dict):
    """Recall, false positives (on hits, off the disc), median centroid error."""
    found = 0
    n_target = 0
    errors = []
    n_fp = n_fp_hit = n_fp_off = 0
    for pid, tp in truth_px.groupby("product_id"):
        d = dets[dets.product_id == pid]
        target = tp[tp.peak_snr >= MIN_PEAK_SNR]
        n_target += len(target)
        for band, tb in target.groupby("band"):
            db = d[d.band == band]
            dist, _ = _nearest(tb.line.to_numpy(), tb["sample"].to_numpy(),
                               db.line.to_numpy(), db["sample"].to_numpy())
            ok = dist <= MATCH_PX
            found += int(ok.sum())
            errors.extend(dist[ok].tolist())
    for pid, d in dets.groupby("product_id"):
        tp = truth_px[truth_px.product_id == pid]
        dist, _ = _nearest(d.line.to_numpy(), d["sample"].to_numpy(),
                           tp.line.to_numpy(), tp["sample"].to_numpy())
        fp = d[dist > MATCH_PX]
        n_fp += len(fp)
        h = hits[hits.product_id == pid]
        dh, _ = _nearest(fp.line.to_numpy(), fp["sample"].to_numpy(),
                         h.line.to_numpy(), h["sample"].to_numpy())
        n_fp_hit += int((dh <= MATCH_PX).sum())
        disc = on_disc.get(pid)
        if disc is not None:
            r = np.clip(np.round(fp.line.to_numpy()).astype(int), 0, disc.shape[0] - 1)
            s = np.clip(np.round(fp["sample"].to_numpy()).astype(int), 0, disc.shape[1] - 1)
            n_fp_off += int((~disc[r, s]).sum())
    return {
        "found": found, "n_target": n_target,
        "recall": found / n_target if n_target else float("nan"),
        "fp": n_fp, "fp_hits": n_fp_hit, "fp_off": n_fp_off,
        "err_px": float(np.median(errors)) if errors else float("nan"),
    }


# --- main ------------------------------------------------------------------------------


def run_chain(data: Path, cache_dir: Path):
    """``run_local`` on the whole archive, timed: (run, seconds)."""
    return timed(run_local, str(data / "archive"), str(data / "kernels"), cache_dir=cache_dir)


def main():
    p = _common.base_parser(__doc__.splitlines()[0], frames_default=24,
                            frames_help="frames to compare on, as whole sequences spread over "
                                        "the pass (rounded up to whole sequences; default 24 = "
                                        "all); the chain row always runs the whole archive")
    args = p.parse_args()
    _common.print_command()
    sep.set_extract_pixstack(2_000_000)
    sep.set_sub_object_limit(4096)
    times = {k: 0.0 for k, _ in METHODS}
    t_cal = t_deblend = 0.0
    dets = {k: [] for k, _ in METHODS}
    failures = {k: 0 for k, _ in METHODS}
    cleaned: dict[str, np.ndarray] = {}
    on_disc: dict[str, np.ndarray] = {}
    n_strips = 0
    with tempfile.TemporaryDirectory(prefix="iovolc-bench-") as tmp:
        tmp = Path(tmp)
        data = _common.ensure_data(args.data, tmp)
        truth = load_truth(data)
        products = _common.load_rdrs(data)
        groups = pick_groups(group_products(products), args.frames)
        frames = [f for g in groups for f in g]
        print(f"frames: {len(frames)} of {len(products)} RDRs in {len(groups)} sequences; "
              f"sep {sep.__version__}, photutils {photutils.__version__}")
        # the full chain first: its frame table holds the pointing each frame ends on
        t_chain, run = run_chain(data, tmp / "kcache")
        n_chain = len(run.frames)
        times["chain"] = t_chain / n_chain * len(frames)  # per frame below, like the others
        chosen = {f.product_id for f in frames}
        dets["chain"].append(run.detections[run.detections.product_id.isin(chosen)]
                             [["product_id", "band", "line", "sample"]])
        pointing = run.frames.set_index("product_id")
        methods = pointing.loc[sorted(chosen), "pointing_method"].value_counts()
        print(f"chain: run_local on {n_chain} frames in {t_chain:.1f} s; pointing of the "
              "frames compared: " + ", ".join(f"{m} {n}" for m, n in methods.items()) + "\n")
        for group in groups:
            bands, exposure_s = tuple(group[0].bands), float(group[0].exposure_s)
            layout = jiram.band_layout(bands)
            with _common.kernels_for(group[0], data, tmp / "kcache"):
                dt, cal = timed(calibrate_sequence, [f.image for f in group], bands=bands,
                                exposure_s=exposure_s, kinds=[f.product_type for f in group])
                t_cal += dt
                for prod, c in zip(group, cal, strict=True):
                    pid = prod.product_id
                    cleaned[pid] = c.radiance
                    pt = pointing.loc[pid]
                    sigma = float(pt["pointing_sigma_px"])
                    sigma = sigma if np.isfinite(sigma) else 0.0
                    # where Io's disc is, on the pipeline's pointing (for the off-disc count)
                    res = FrameResult(pid, c.radiance, c.saturated, c.bad, c.hits,
                                      summary={"bands": "".join(bands), "et_mid": prod.et_mid})
                    planes = backplanes(res, pt.to_dict())
                    on_disc[pid] = np.concatenate([planes[b].on_disc for b in layout])
                    kw = dict(bands=bands, exposure_s=exposure_s, saturated=c.saturated,
                              invalid=c.bad)
                    # ours, unregistered (the state query is part of the work)
                    t0 = time.perf_counter()
                    state = FrameState.from_spice(prod.et_mid, bands=bands)
                    d = extract_frame(c.radiance, state, pointing_method="none",
                                      pointing_sigma_px=0.0,
                                      raw_dn=raw_dn_estimate(c.radiance, bands=bands,
                                                             exposure_s=exposure_s), **kw)
                    times["ours"] += time.perf_counter() - t0
                    dets["ours"].append(d.assign(product_id=pid))
                    # ours, on the pointing the pipeline settled on
                    t0 = time.perf_counter()
                    state = FrameState.from_spice(prod.et_mid, bands=bands).corrected(
                        float(pt["along_rad"]), float(pt["cross_rad"]))
                    d = extract_frame(c.radiance, state, pointing_method=pt["pointing_method"],
                                      pointing_sigma_px=sigma,
                                      raw_dn=raw_dn_estimate(c.radiance, bands=bands,
                                                             exposure_s=exposure_s), **kw)
                    times["ours_reg"] += time.perf_counter() - t0
                    dets["ours_reg"].append(d.assign(product_id=pid))
                    # the third-party detectors, band strip by band strip
                    for band, sl in layout.items():
                        n_strips += 1
                        img = np.ascontiguousarray(c.radiance[sl], dtype=np.float64)
                        raw = np.ascontiguousarray(prod.image[sl], dtype=np.float64)
                        for key, fn, x in (
                            ("sep", run_sep, img),
                            ("phot", lambda a: run_photutils(a, deblend=False), img),
                            ("phot_db", lambda a: run_photutils(a, deblend=True), img),
                            ("sep_raw", run_sep, raw),
                            ("phot_raw", lambda a: run_photutils(a, deblend=False), raw),
                        ):
                            t0 = time.perf_counter()
                            try:
                                out = fn(x)
                            except Exception:  # sep overflows: counted, reported
                                failures[key] += 1
                                times[key] += time.perf_counter() - t0
                                continue
                            times[key] += time.perf_counter() - t0
                            if key == "phot_db":
                                t_deblend += out[2]
                            ln, sm = out[0], out[1]
                            dets[key].append(pd.DataFrame({
                                "product_id": pid, "band": band,
                                "line": np.asarray(ln, float) + sl.start,
                                "sample": np.asarray(sm, float)}))

        # truth for the frames used; noise measured on the cleaned frames
        pids = set(cleaned)
        px = truth.pixels[truth.pixels.product_id.isin(pids)].copy()
        sub = Truth(truth.frames, truth.sources, px, truth.hits)
        noise = measure_noise(sub, lambda pid: cleaned[pid])
        px["peak_snr"] = px.peak_radiance_w_m2_sr / noise.reindex(px.index).to_numpy()
        hits = truth.hits[truth.hits.product_id.isin(pids)]

    n = len(frames)
    scores = {}
    for key, _ in METHODS:
        table = (pd.concat(dets[key], ignore_index=True) if dets[key]
                 else pd.DataFrame(columns=["product_id", "band", "line", "sample"]))
        scores[key] = score(table, px, hits, on_disc)
    n_target = scores["ours"]["n_target"]
    print(f"truth: {len(px)} source rows in these frames, {n_target} with expected peak SNR "
          f">= {MIN_PEAK_SNR:g}; {len(hits)} radiation-hit pixels; {n_strips} band strips")
    print(f"calibrate_sequence (input of every 'cleaned' row): {t_cal / n * 1e3:.1f} ms/frame; "
          f"deblend_sources alone: {t_deblend / n * 1e3:.1f} ms/frame\n")
    ref_t = times["ours_reg"] / n
    ref = scores["ours_reg"]
    hdr = (f"{'method':38s} {'ms/frame':>9s} {'t/ours':>7s} {'recall':>7s} {'found':>9s} "
           f"{'FP':>6s} {'FP/ours':>8s} {'on hits':>8s} {'off disc':>9s} {'med err px':>10s}")
    print(hdr)
    print("-" * len(hdr))
    for key, label in METHODS:
        s = scores[key]
        t = times[key] / n
        fp_ratio = s["fp"] / ref["fp"] if ref["fp"] else float("inf") if s["fp"] else 1.0
        fail = f"  ({failures[key]} strips failed)" if failures[key] else ""
        print(f"{label:38s} {t * 1e3:9.1f} {t / ref_t:6.2f}x {s['recall'] * 100:6.1f}% "
              f"{s['found']:4d}/{s['n_target']:<4d} {s['fp']:6d} {fp_ratio:7.1f}x "
              f"{s['fp_hits']:8d} {s['fp_off']:9d} {s['err_px']:10.3f}{fail}")
    print("-" * len(hdr))
    print("t/ours, FP/ours: ratio to the row 'ours extract_frame, pipeline pointing' (measured "
          f"in this run). recall: truth rows with peak SNR >= {MIN_PEAK_SNR:g} matched within "
          f"{MATCH_PX} px. FP: detections with no truth source within {MATCH_PX} px; 'on "
          f"hits': of them within {MATCH_PX} px of a truth radiation-hit pixel; 'off disc': of "
          "them off Io's disc (the pipeline's pointing). med err: median distance truth -> "
          "detection centroid of the found sources. run_local's ms/frame includes reading, "
          "registration, pass pointing and the catalog.")
    print("Settings: sep.Background defaults (64 px boxes), sep.extract thresh 5 x globalrms, "
          f"minarea 5; photutils Background2D box {PHOT_BOX}, threshold {PHOT_NSIGMA:g} x "
          f"background_rms, n_pixels {PHOT_NPIX}.")

if __name__ == "__main__":
    main()
