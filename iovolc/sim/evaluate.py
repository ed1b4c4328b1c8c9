"""Compare pipeline output with the simulator's truth.

Used by the tests and by ``iovolc demo``. Matching is by position only (a
catalog entry and a truth source are the same if they lie within the
tolerance), never by the reference IDs the pipeline assigned, so the ID
accuracy is measured, not assumed.

Detection limit (docs/decisions.md): a truth source counts as *detectable*
at a perijove when, in at least ``min_frames`` frames that the pipeline
registered, its expected peak signal-to-noise ratio is at least
``min_peak_snr``, its emission angle at most ``max_emission_deg`` and it lies
at least 4 px inside the band strip, and no other source at least a quarter
as bright lies within ``min_separation_px`` (3 px: closer pairs blend into
one detection at that resolution). The expected peak is the truth
pixel-summed radiance times the PSF's peak-pixel fraction; the noise is the
robust scatter measured in the frame around the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import erf

from iovolc.catalog import great_circle_km

IO_RADIUS_KM = 1821.6
MIN_PEAK_SNR = 10.0
MIN_FRAMES = 2
MAX_EMISSION_DEG = 70.0
MIN_SEPARATION_PX = 3.0


def _isolation_px(px: pd.DataFrame, *, brightness_ratio: float = 0.25) -> np.ndarray:
    """Distance (px) to the nearest other source at least ``ratio`` as bright, same frame."""
    out = np.full(len(px), np.inf)
    pos = {k: i for i, k in enumerate(px.index)}
    for _, g in px.groupby("product_id"):
        if len(g) < 2:
            continue
        ln, sm = g.line.to_numpy(), g["sample"].to_numpy()
        rad = g.radiance_sum_w_m2_sr.to_numpy()
        d = np.hypot(ln[:, None] - ln[None, :], sm[:, None] - sm[None, :])
        bright = rad[None, :] >= brightness_ratio * rad[:, None]
        np.fill_diagonal(d, np.inf)
        d = np.where(bright, d, np.inf)
        for k, idx in enumerate(g.index):
            out[pos[idx]] = d[k].min()
    return out


@dataclass(frozen=True)
class Truth:
    frames: pd.DataFrame
    sources: pd.DataFrame
    pixels: pd.DataFrame
    hits: pd.DataFrame


def load_truth(out_dir: Path | str) -> Truth:
    t = Path(out_dir) / "truth"
    read = lambda name: pd.read_csv(t / name, keep_default_na=False,  # noqa: E731
                                    na_values=[""])
    return Truth(read("frames.csv"), read("sources.csv"), read("source_pixels.csv"),
                 read("radiation_hits.csv"))


def peak_fraction(psf_sigma_px) -> np.ndarray:
    """Fraction of a centred Gaussian's flux in its brightest pixel."""
    s = np.asarray(psf_sigma_px, dtype=float)
    return erf(0.5 / (np.sqrt(2) * s)) ** 2


def detectable_sources(truth: Truth, frame_results: pd.DataFrame, noise: pd.DataFrame, *,
                       min_peak_snr: float = MIN_PEAK_SNR, min_frames: int = MIN_FRAMES,
                       max_emission_deg: float = MAX_EMISSION_DEG,
                       min_separation_px: float = MIN_SEPARATION_PX) -> pd.DataFrame:
    """(perijove, ref_id) of truth sources above the detection limit.

    ``frame_results``: the pipeline's frame summaries (product_id, registered).
    ``noise``: per truth pixel row (index aligned with ``truth.pixels``) the
    measured noise sigma around the source.
    """
    px = truth.pixels.copy()
    reg = frame_results.set_index("product_id")["registered"]
    px["registered"] = px.product_id.map(reg).fillna(False).astype(bool)
    lines = truth.frames.set_index("product_id")["lines"]
    band_line = np.where(px.band == "M", px.line - (lines.reindex(px.product_id).to_numpy() - 128),
                         px.line)
    px["inside"] = (band_line > 4) & (band_line < 124) & (px["sample"] > 4) & (px["sample"] < 428)
    px["peak_snr"] = (px.radiance_sum_w_m2_sr * peak_fraction(px.psf_sigma_px)
                      / noise.reindex(px.index).to_numpy())
    px["isolated"] = _isolation_px(px) >= min_separation_px
    ok = px.registered & px.inside & px.isolated & (px.emission_deg <= max_emission_deg) & \
        (px.peak_snr >= min_peak_snr)
    n = px[ok].groupby(["perijove", "ref_id"]).product_id.nunique()
    return n[n >= min_frames].reset_index()[["perijove", "ref_id"]]


def measure_noise(truth: Truth, read_image) -> pd.Series:
    """Robust scatter of the frame around each truth source (15x15 minus 5x5)."""
    out = pd.Series(np.nan, index=truth.pixels.index)
    for pid, grp in truth.pixels.groupby("product_id"):
        img = read_image(pid)
        for i, p in grp.iterrows():
            r, s = int(round(p.line)), int(round(p["sample"]))
            r0, r1 = max(r - 7, 0), min(r + 8, img.shape[0])
            s0, s1 = max(s - 7, 0), min(s + 8, img.shape[1])
            win = img[r0:r1, s0:s1].astype(float).copy()
            win[max(r - 2 - r0, 0):r + 3 - r0, max(s - 2 - s0, 0):s + 3 - s0] = np.nan
            v = win[np.isfinite(win)]
            if v.size > 20:
                out[i] = 1.4826 * np.median(np.abs(v - np.median(v)))
    return out


def match_catalog(catalog: pd.DataFrame, truth_sources: pd.DataFrame, *,
                  tol_km: float = 60.0) -> pd.DataFrame:
    """Nearest truth source (same perijove) for each catalog row, within ``tol_km``."""
    rows = []
    for pj, cat in catalog.groupby("perijove"):
        ts = truth_sources[truth_sources.perijove == pj]
        if ts.empty:
            continue
        for i, c in cat.iterrows():
            lat = c.get("lat_deg_pj", c.lat_deg)
            lon = c.get("lon_west_deg_pj", c.lon_west_deg)
            d = great_circle_km(lat, lon, ts.lat_deg.to_numpy(), ts.lon_west_deg.to_numpy())
            j = int(np.argmin(d))
            if d[j] <= tol_km:
                t = ts.iloc[j]
                rows.append({"index": i, "truth_ref_id": t.ref_id,
                             "distance_km": float(d[j]),
                             "distance_deg": float(np.degrees(d[j] / IO_RADIUS_KM)),
                             "truth_power_gw": float(t.power_gw),
                             "truth_temperature_k": float(t.temperature_k)})
    return pd.DataFrame(rows).set_index("index") if rows else pd.DataFrame(
        columns=["truth_ref_id", "distance_km", "distance_deg", "truth_power_gw",
                 "truth_temperature_k"])


def score(catalog: pd.DataFrame, detectable: pd.DataFrame, truth: Truth, *,
          detections: pd.DataFrame | None = None, tol_km: float = 60.0) -> dict:
    """Recall, position and power errors, ID accuracy, catalog entries on hits."""
    m = match_catalog(catalog, truth.sources, tol_km=tol_km)
    cat = catalog.join(m, how="left")
    found = set(zip(cat.perijove[cat.truth_ref_id.notna()],
                    cat.truth_ref_id[cat.truth_ref_id.notna()], strict=True))
    det_set = set(zip(detectable.perijove, detectable.ref_id, strict=True))
    recall = len(det_set & found) / len(det_set) if det_set else float("nan")
    matched = cat[cat.truth_ref_id.notna()]
    pos = matched.distance_deg.to_numpy()
    power_err = (matched.power_gw / matched.truth_power_gw - 1.0).abs().to_numpy()
    id_ok = (matched.ref_id == matched.truth_ref_id).to_numpy()
    out = {
        "n_catalog": len(cat), "n_matched": len(matched), "n_detectable": len(det_set),
        "recall": recall,
        "position_median_deg": float(np.median(pos)) if pos.size else float("nan"),
        "position_p95_deg": float(np.percentile(pos, 95)) if pos.size else float("nan"),
        "power_median_rel_err": float(np.median(power_err)) if power_err.size else float("nan"),
        "ref_id_accuracy": float(id_ok.mean()) if id_ok.size else float("nan"),
        "unmatched_catalog": int(cat.truth_ref_id.isna().sum()),
    }
    if detections is not None:
        out["entries_on_hits"] = count_entries_on_hits(catalog, detections, truth)
    return out


def count_entries_on_hits(catalog: pd.DataFrame, detections: pd.DataFrame, truth: Truth, *,
                          radius_px: float = 1.5, tol_km: float = 30.0) -> int:
    """Catalog entries built from a detection that sits on a radiation hit (and on no source).

    An entry's member detections are those of its perijove within ``tol_km``
    of its per-perijove position.
    """
    hits = truth.hits.groupby("product_id")
    srcs = truth.pixels.groupby("product_id")
    on_hit = np.zeros(len(detections), dtype=bool)
    for k, (_, d) in enumerate(detections.iterrows()):
        if d.product_id not in hits.groups:
            continue
        h = hits.get_group(d.product_id)
        if not (np.hypot(h.line - d.line, h["sample"] - d["sample"]) < radius_px).any():
            continue
        if d.product_id in srcs.groups:
            s = srcs.get_group(d.product_id)
            if (np.hypot(s.line - d.line, s["sample"] - d["sample"]) < 3.0).any():
                continue
        on_hit[k] = True
    bad = detections[on_hit]
    n_bad = 0
    for _, c in catalog.iterrows():
        b = bad[bad.perijove == c.perijove]
        if b.empty:
            continue
        lat = c.get("lat_deg_pj", c.lat_deg)
        lon = c.get("lon_west_deg_pj", c.lon_west_deg)
        if (great_circle_km(lat, lon, b.lat_deg.to_numpy(), b.lon_west_deg.to_numpy())
                < tol_km).any():
            n_bad += 1
    return n_bad
