"""Hotspot detection: iovolc's extract_frame vs SEP and photutils, on the same frames.

Every sequence of a simulated PJ57 downlink is calibrated from its RDRs
(``calibrate_sequence``: bad pixels and radiation hits found and replaced),
then each frame is searched, band half by band half (128 x 432), by

* ours, ``extract_frame(..., registered=False)``: kernels loaded,
  ``FrameState.from_spice(et_mid)`` (reconstructed pointing), median-filter
  background; only detections on Io's *predicted* disc are reported;
* ours, ``extract_frame(..., registered=True)`` with the pointing corrected
  by the pipeline's limb registration (taken from ``process_group``; the
  registration itself is not in this row's time), shading background;
* ours, ``pipeline.process_group`` on the whole sequence: the full chain
  (calibration, registration, geometry backplanes, extraction), its time
  divided by the number of frames;
* SEP: ``sep.Background(data)`` (defaults: 64 px boxes, 3x3 filter) +
  ``sep.extract(data - bkg, 5.0, err=bkg.globalrms)`` (defaults: minarea 5,
  3x3 matched filter, deblending, cleaning);
* photutils: ``Background2D(data, (32, 36), filter_size=(3, 3))`` (4 x 12
  boxes per half) + ``detect_sources(data - bkg, 5 * bkg_rms, n_pixels=2)``
  + ``SourceCatalog`` centroids; and the same with ``deblend_sources``
  (n_pixels=2) before the catalog;
* SEP and photutils once more on the raw RDR halves (hits and hot pixels
  still in) to show what the cleaning buys.

Truth (``truth/``): a source pixel row counts for the recall when its
expected peak SNR is >= 10: pixel-summed radiance x erf(0.5 / (sqrt(2)
psf_sigma))^2 over the robust scatter of the cleaned frame around it
(15 x 15 box minus the central 5 x 5; ``iovolc.sim.evaluate.measure_noise``).
It is found when a detection centroid of the same frame and band lies within
1.5 px. A detection with no truth source (any SNR) within 1.5 px is a false
positive; those within 1.5 px of a truth radiation-hit pixel are counted
apart, and so are those off Io's disc (the pipeline's registered geometry).
Timings are per frame (sum over its band halves), all methods run side by
side in this one process, frame after frame.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import replace
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
from iovolc.calibrate import calibrate_sequence
from iovolc.extract import extract_frame
from iovolc.geometry import FrameState
from iovolc.pipeline import group_products, process_group
from iovolc.registration import corrected_attitude
from iovolc.sim.evaluate import Truth, load_truth, measure_noise, peak_fraction

MATCH_PX = 1.5
MIN_PEAK_SNR = 10.0
SEP_THRESH = 5.0
PHOT_BOX = (32, 36)
PHOT_NSIGMA = 5.0
PHOT_NPIX = 2

METHODS = [
    ("ours", "ours extract_frame, registered=False"),
    ("ours_reg", "ours extract_frame, registered"),
    ("chain", "ours process_group (full chain)"),
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


def main():
    p = _common.base_parser(__doc__.splitlines()[0], frames_default=28,
                            frames_help="frames to use, as whole sequences spread over the pass "
                                        "(rounded up to whole sequences; default 28 = all)")
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
    n_halves = 0
    n_registered = 0
    with tempfile.TemporaryDirectory(prefix="iovolc-bench-") as tmp:
        tmp = Path(tmp)
        data = _common.ensure_data(args.data, tmp)
        truth = load_truth(data)
        products = _common.load_rdrs(data)
        groups = pick_groups(group_products(products), args.frames)
        frames = [f for g in groups for f in g]
        print(f"frames: {len(frames)} of {len(products)} RDRs in {len(groups)} sequences; "
              f"sep {sep.__version__}, photutils {photutils.__version__}\n")
        for group in groups:
            mode, exposure_s = group[0].mode, group[0].exposure_s
            with _common.kernels_for(group[0], data, tmp / "kcache"):
                dt, cal = timed(calibrate_sequence, [f.image for f in group], mode=mode,
                                exposure_s=exposure_s, kind="RDR")
                t_cal += dt
                dt, results_table = timed(process_group, group)
                times["chain"] += dt
                results, table = results_table
                dets["chain"].append(table[["product_id", "band", "line", "sample"]])
                for prod, c, res in zip(group, cal, results, strict=True):
                    pid = prod.product_id
                    cleaned[pid] = c.radiance
                    if res.geometry.on_disc.shape == c.radiance.shape:
                        on_disc[pid] = res.geometry.on_disc
                    kw = dict(mode=mode, exposure_s=exposure_s, saturated=c.saturated,
                              invalid=c.bad)
                    # ours, unregistered (the state query is part of the work)
                    t0 = time.perf_counter()
                    state = FrameState.from_spice(prod.et_mid)
                    d = extract_frame(c.radiance, state, registered=False, **kw)
                    times["ours"] += time.perf_counter() - t0
                    dets["ours"].append(d.assign(product_id=pid))
                    # ours, with the pipeline's registration applied to the pointing
                    reg = res.registration
                    n_registered += int(reg.ok)
                    st = state
                    if reg.ok:
                        st = replace(state, cam_to_j2000=corrected_attitude(state, reg,
                                                                            mode=mode))
                    dt, d = timed(extract_frame, c.radiance, st, registered=reg.ok, **kw)
                    times["ours_reg"] += dt
                    dets["ours_reg"].append(d.assign(product_id=pid))
                    # the third-party detectors, band half by band half
                    for band, sl in jiram.band_rows(mode).items():
                        n_halves += 1
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
        px["peak_snr"] = (px.radiance_sum_w_m2_sr * peak_fraction(px.psf_sigma_px)
                          / noise.reindex(px.index).to_numpy())
        hits = truth.hits[truth.hits.product_id.isin(pids)]

    n = len(frames)
    scores = {}
    for key, _ in METHODS:
        table = (pd.concat(dets[key], ignore_index=True) if dets[key]
                 else pd.DataFrame(columns=["product_id", "band", "line", "sample"]))
        scores[key] = score(table, px, hits, on_disc)
    n_target = scores["ours"]["n_target"]
    print(f"truth: {len(px)} source rows in these frames, {n_target} with expected peak SNR "
          f">= {MIN_PEAK_SNR:g}; {len(hits)} radiation-hit pixels; {n_halves} band halves; "
          f"{n_registered}/{n} frames registered by the pipeline")
    print(f"calibrate_sequence (input of every 'cleaned' row): {t_cal / n * 1e3:.1f} ms/frame; "
          f"deblend_sources alone: {t_deblend / n * 1e3:.1f} ms/frame\n")
    ref_t = times["ours"] / n
    ref = scores["ours"]
    hdr = (f"{'method':38s} {'ms/frame':>9s} {'t/ours':>7s} {'recall':>7s} {'found':>9s} "
           f"{'FP':>6s} {'FP/ours':>8s} {'on hits':>8s} {'off disc':>9s} {'med err px':>10s}")
    print(hdr)
    print("-" * len(hdr))
    for key, label in METHODS:
        s = scores[key]
        t = times[key] / n
        fp_ratio = s["fp"] / ref["fp"] if ref["fp"] else float("inf") if s["fp"] else 1.0
        fail = f"  ({failures[key]} halves failed)" if failures[key] else ""
        print(f"{label:38s} {t * 1e3:9.1f} {t / ref_t:6.2f}x {s['recall'] * 100:6.1f}% "
              f"{s['found']:4d}/{s['n_target']:<4d} {s['fp']:6d} {fp_ratio:7.1f}x "
              f"{s['fp_hits']:8d} {s['fp_off']:9d} {s['err_px']:10.3f}{fail}")
    print("-" * len(hdr))
    print("t/ours, FP/ours: ratio to the first row. recall: truth rows with peak SNR >= 10 "
          f"matched within {MATCH_PX} px. FP: detections with no truth source within "
          f"{MATCH_PX} px; 'on hits': of them within {MATCH_PX} px of a truth radiation-hit "
          "pixel; 'off disc': of them off Io's disc (registered geometry). med err: median "
          "distance truth -> detection centroid of the found sources.")
    print("Settings: sep.Background defaults (64 px boxes), sep.extract thresh 5 x globalrms, "
          f"minarea 5; photutils Background2D box {PHOT_BOX}, threshold {PHOT_NSIGMA:g} x "
          f"background_rms, n_pixels {PHOT_NPIX}.")


if __name__ == "__main__":
    main()
