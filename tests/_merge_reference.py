"""``catalog.merge_detections`` as it was before stop 33 (issue 11), kept verbatim.

One loop over the clusters with numpy calls on each cluster's members; stop 33
took the per-cluster values for every cluster at once. ``tests/test_merge_exact.py``
compares the two tables exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iovolc import jiram
from iovolc.catalog import (
    CLUSTER_COLUMNS,
    DETECTION_COLUMNS,
    POWER_CAL_REL_ERR,
    _detection_sigma_km,
    _empty,
    _greedy_labels,
    _latlon,
    _position_uncertainty_km,
    _py,
    _require,
    _unit_xyz,
    _weighted_centre,
)
from iovolc.flags import CONFIDENT_SNR, HIGH_EMISSION_DEG, Flag


def _band_power(power: np.ndarray, saturated: np.ndarray) -> tuple[float, bool]:
    """(median over unsaturated values, else over saturated ones; saturated-only?).

    Non-finite powers are ignored; NaN if the band has none.
    """
    keep = np.isfinite(power)
    power, saturated = power[keep], saturated[keep]
    if power.size == 0:
        return float("nan"), False
    good = ~saturated
    if np.any(good):
        return float(np.median(power[good])), False
    return float(np.median(power)), True


def _band_rel_err(power: np.ndarray, snr: np.ndarray) -> float:
    """Relative 1-sigma error of a band's median power: noise ~ 1/SNR, the scatter
    of the detections / sqrt(n), and a calibration floor; NaN if the band has none."""
    keep = np.isfinite(power) & (power > 0)
    if not keep.any():
        return float("nan")
    p, s = power[keep], snr[keep]
    noise = 1.0 / max(float(np.nanmax(s)) if np.any(np.isfinite(s)) else 1.0, 1.0)
    scatter = 0.0
    if p.size > 1:
        scatter = 1.4826 * float(np.median(np.abs(p - np.median(p)))) / float(np.median(p))
        scatter /= np.sqrt(p.size)
    return float(np.sqrt(noise**2 + scatter**2 + POWER_CAL_REL_ERR**2))


def merge_detections_loop(
    det: pd.DataFrame, *, tol_px: float = 2.5, min_tol_km: float = 8.0
) -> pd.DataFrame:
    """Group the detections of each source within each perijove into clusters.

    Across frames **and** bands: detections are visited by descending SNR; a
    detection joins the nearest existing cluster whose centre is within
    ``max(tol_px * detection pixel scale, min_tol_km)`` km, else it seeds a new
    cluster. The cluster centre is the
    mean of the detections' unit vectors weighted by ``snr / pixel_scale_km^2``
    (so the 0/360 longitude wrap needs no special case).

    Returns one row per cluster with :data:`CLUSTER_COLUMNS`:

    * ``position_uncertainty_km``: max of the formal error of the weighted
      mean (each detection ``POSITION_SIGMA_PX * pixel_scale_km``) and the
      weighted rms scatter of the members / sqrt(n);
    * ``power_gw_per_um`` (M) / ``power_gw_per_um_l`` (L): median over the
      band's unsaturated detections; if all are saturated, over those and
      ``m_saturated_only`` / ``l_saturated_only`` is True; NaN if none;
    * ``flags``: SATURATED if any detection is; LOW_CONFIDENCE if
      ``n_frames == 1`` or ``max_snr < CONFIDENT_SNR``; HIGH_EMISSION if every
      emission angle > ``HIGH_EMISSION_DEG``; NEAR_LIMB, UNREGISTERED,
      FRAME_EDGE if every detection has it; POWER_LOWER_LIMIT if the power the
      area is based on (M, else L) is saturated-only;
    * ``first_utc`` / ``last_utc`` (and ``first_et`` / ``last_et``), the
      earliest / latest detection; ``pixel_scale_km`` the best (smallest);
    * ``position_weight``: sum of the member weights (for later averaging);
    * ``detection_indices``: list of the members' ``det`` index labels.

    ``cluster_id`` numbers clusters 0.. by perijove, then seed order.
    """
    _require(det, DETECTION_COLUMNS, "detection table")
    if not (tol_px > 0 and min_tol_km >= 0):
        raise ValueError("tol_px must be > 0 and min_tol_km >= 0")
    if det.empty:
        return _empty(CLUSTER_COLUMNS)
    lat = det["lat_deg"].to_numpy(dtype=float)
    lon = det["lon_west_deg"].to_numpy(dtype=float)
    scale = det["pixel_scale_km"].to_numpy(dtype=float)
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise ValueError("detection table: lat_deg / lon_west_deg must be finite")
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError("detection table: pixel_scale_km must be finite and > 0")
    bands = det["band"].astype(str).to_numpy()
    unknown = set(bands) - set(jiram.DLAMBDA_UM)
    if unknown:
        raise ValueError(f"detection table: unknown bands {sorted(unknown)}")

    xyz = _unit_xyz(lat, lon)
    snr = det["snr"].to_numpy(dtype=float)
    emission = det["emission_deg"].to_numpy(dtype=float)
    sigma_km = _detection_sigma_km(det)
    weight = 1.0 / sigma_km**2
    flags = det["flags"].to_numpy(dtype=np.int64)
    # saturated or beyond the linear range: the measured radiance is a lower bound
    saturated = (flags & int(Flag.SATURATED | Flag.NONLINEAR)) != 0
    power = det["power_gw_per_um"].to_numpy(dtype=float)
    peak = det["peak_radiance_w_m2_sr"].to_numpy(dtype=float)
    et = det["et_mid"].to_numpy(dtype=float)
    utc = det["utc"].astype(str).to_numpy()
    product = det["product_id"].astype(str).to_numpy()
    pj_all = det["perijove"].to_numpy(dtype=np.int64)
    index = det.index.to_numpy()

    rows = []
    for pj in np.unique(pj_all):
        sel = np.flatnonzero(pj_all == pj)
        labels = _greedy_labels(
            xyz[sel], scale[sel], snr[sel], weight[sel], tol_px=tol_px, min_tol_km=min_tol_km
        )
        for lab in range(labels.max() + 1):
            m = sel[labels == lab]
            m = m[np.lexsort((m, et[m]))]  # chronological members
            centre = _weighted_centre(xyz[m], weight[m])
            c_lat, c_lon = _latlon(centre)
            unc = _position_uncertainty_km(xyz[m], weight[m], centre, sigma_km[m])
            is_m = bands[m] == "M"
            is_l = bands[m] == "L"
            p_m, m_sat_only = _band_power(power[m][is_m], saturated[m][is_m])
            p_l, l_sat_only = _band_power(power[m][is_l], saturated[m][is_l])
            err_m = _band_rel_err(power[m][is_m], snr[m][is_m])
            err_l = _band_rel_err(power[m][is_l], snr[m][is_l])
            n_frames = len(set(product[m]))
            max_snr = float(np.nanmax(snr[m])) if np.any(np.isfinite(snr[m])) else float("nan")
            f = Flag(0)
            if np.any(flags[m] & Flag.SATURATED):
                f |= Flag.SATURATED
            if np.any(flags[m] & Flag.NONLINEAR):
                f |= Flag.NONLINEAR
            if n_frames == 1 or not (max_snr >= CONFIDENT_SNR):
                f |= Flag.LOW_CONFIDENCE
            if np.all(emission[m] > HIGH_EMISSION_DEG):
                f |= Flag.HIGH_EMISSION
            for every in (Flag.NEAR_LIMB, Flag.UNREGISTERED, Flag.FRAME_EDGE,
                          Flag.POINTING_PASS, Flag.POINTING_CONSTELLATION):
                if np.all(flags[m] & every):
                    f |= every
            if m_sat_only or (not np.any(is_m) and l_sat_only):
                f |= Flag.POWER_LOWER_LIMIT
            i_first, i_last = m[np.argmin(et[m])], m[np.argmax(et[m])]
            rows.append(
                {
                    "cluster_id": len(rows),
                    "perijove": int(pj),
                    "lat_deg": float(c_lat),
                    "lon_west_deg": float(c_lon),
                    "position_uncertainty_km": unc,
                    "n_detections": len(m),
                    "n_frames": n_frames,
                    "bands": "".join(sorted(set(bands[m]))),
                    "peak_radiance_w_m2_sr": float(np.nanmax(peak[m]))
                    if np.any(np.isfinite(peak[m]))
                    else float("nan"),
                    "power_gw_per_um": p_m,
                    "power_gw_per_um_l": p_l,
                    "power_rel_err_m": err_m,
                    "power_rel_err_l": err_l,
                    "m_saturated_only": m_sat_only,
                    "l_saturated_only": l_sat_only,
                    "max_snr": max_snr,
                    "min_emission_deg": float(np.min(emission[m])),
                    "pixel_scale_km": float(np.min(scale[m])),
                    "first_utc": utc[i_first],
                    "last_utc": utc[i_last],
                    "first_et": float(et[i_first]),
                    "last_et": float(et[i_last]),
                    "position_weight": float(np.sum(weight[m])),
                    "flags": int(f),
                    "detection_indices": [_py(v) for v in index[m]],
                }
            )
    out = pd.DataFrame(rows, columns=list(CLUSTER_COLUMNS))
    return out.astype(
        {"cluster_id": "int64", "perijove": "int64", "n_detections": "int64",
         "n_frames": "int64", "flags": "int64", "m_saturated_only": bool,
         "l_saturated_only": bool}
    )
