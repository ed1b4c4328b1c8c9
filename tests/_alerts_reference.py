"""``iovolc.publish.alerts.alerts_for`` as it was before stop 29 (kept verbatim for
``tests/test_publish_diff_alerts.py``): each new row's history taken by a boolean mask
over the known rows' table (``known[mine]``), ~0.5 ms a row; the module now takes each
hotspot's rows once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from iovolc.catalog import great_circle_km
from iovolc.flags import Flag
from iovolc.publish._common import require, with_plain_ids
from iovolc.publish.alerts import (
    _NEEDED,
    _Z90,
    BRIGHTENING_FACTOR,
    BRIGHTENING_N_SIGMA,
    MIN_ALERT_FRAMES,
    SHORT_HISTORY_REL_SIGMA,
    _record,
    _tol_km,
)


def _row_sigma(rows: pd.DataFrame) -> np.ndarray:
    lo = rows["power_gw_lo"].to_numpy(float)
    hi = rows["power_gw_hi"].to_numpy(float)
    s = (hi - lo) / (2.0 * _Z90)
    return s[np.isfinite(s) & (s > 0)]


def alerts_for_masks(
    previous_catalog: pd.DataFrame | None,
    new_catalog: pd.DataFrame,
    *,
    reference: pd.DataFrame | None = None,
) -> list[dict]:
    """Alert records (JSON-able dicts) for ``new_catalog`` given ``previous_catalog``
    (None for a first version). The rule is the module docstring's.

    Each record: ``id`` (plain hotspot id), ``kind`` (``new-hotspot`` |
    ``brightening``), ``perijove``, ``lat_deg``, ``lon_west_deg`` (West),
    ``power_gw`` / ``_lo`` / ``_hi`` (``None`` for inf), ``power_lower_limit``,
    ``name``, ``ref_id``, ``first_seen_utc``, ``history_n``,
    ``history_max_power_gw``, ``history_mean_power_gw``, ``reason``. Sorted by
    perijove, kind, id. ``reference`` defaults to Davies et al. (2024) Table A1.
    """
    require(new_catalog, _NEEDED, "new catalog")
    new = with_plain_ids(new_catalog)
    if previous_catalog is not None and len(previous_catalog):
        require(previous_catalog, _NEEDED, "previous catalog")
        prev = with_plain_ids(previous_catalog)
    else:
        prev = new.iloc[0:0]
    if reference is None:
        from iovolc.reference import load_davies2024

        reference = load_davies2024()
    prev_pairs = set(zip(prev["hotspot_id"], prev["perijove"].astype(int), strict=True))
    # every known row: the new catalog, plus previous rows the new one no longer has
    new_pairs = set(zip(new["hotspot_id"], new["perijove"].astype(int), strict=True))
    keep_prev = [(h, int(p)) not in new_pairs for h, p in zip(prev["hotspot_id"],
                                                              prev["perijove"], strict=True)]
    known = pd.concat([new, prev[keep_prev]], ignore_index=True)
    # the columns the rule reads, as arrays (a row's selections are masks on them)
    prev_pj = prev["perijove"].astype(int).to_numpy()
    prev_lat, prev_lon = (prev[c].to_numpy(float) for c in ("lat_deg", "lon_west_deg"))
    known_pj = known["perijove"].astype(int).to_numpy()
    known_id = known["hotspot_id"].to_numpy()
    known_lat, known_lon = (known[c].to_numpy(float) for c in ("lat_deg", "lon_west_deg"))
    ref_lat, ref_lon = (reference[c].to_numpy(float) for c in ("lat_deg", "lon_west_deg"))
    alerts: list[dict] = []
    for _, r in new.iterrows():
        pj = int(r["perijove"])
        if (r["hotspot_id"], pj) in prev_pairs:
            continue
        if "n_frames" in r.index and not (float(r["n_frames"]) >= MIN_ALERT_FRAMES):
            continue  # unconfirmed: one frame only
        if int(r.get("flags", 0)) & int(Flag.LOW_CONFIDENCE):
            continue  # unconfirmed: faint
        tol = _tol_km(r["pixel_scale_km"])
        same_pj = prev_pj == pj
        if same_pj.any() and np.any(np.asarray(great_circle_km(
                r["lat_deg"], r["lon_west_deg"], prev_lat[same_pj], prev_lon[same_pj])) <= tol):
            continue  # the same source under another id (renamed): not a new row
        earlier = known_pj < pj
        mine = earlier & (known_id == r["hotspot_id"])
        hist_rows = known[mine]
        hist = hist_rows["power_gw"].to_numpy(float)
        hist = hist[np.isfinite(hist) & (hist > 0)]
        if len(hist_rows) == 0:
            if str(r["ref_id"] or ""):
                continue
            d_ref = np.asarray(great_circle_km(r["lat_deg"], r["lon_west_deg"], ref_lat, ref_lon))
            if d_ref.size and d_ref.min() <= tol:
                continue
            if earlier.any() and np.any(np.asarray(great_circle_km(
                    r["lat_deg"], r["lon_west_deg"], known_lat[earlier],
                    known_lon[earlier])) <= tol):
                continue
            near = float(d_ref.min()) if d_ref.size else float("nan")
            alerts.append(_record(r, "new-hotspot",
                                  f"first detection at {r['lat_deg']:.1f} N, "
                                  f"{r['lon_west_deg']:.1f} W: no earlier perijove row and no "
                                  f"Davies et al. (2024) source within {tol:.0f} km (nearest "
                                  f"{near:.0f} km); power {r['power_gw']:.3g} GW", hist))
            continue
        lo = float(r["power_gw_lo"])
        if not hist.size or not np.isfinite(lo):
            continue
        m, mx = float(hist.mean()), float(hist.max())
        sd = float(hist.std(ddof=1)) if hist.size >= 2 else 0.0
        row_sig = _row_sigma(hist_rows)
        sigma = max(sd, SHORT_HISTORY_REL_SIGMA * m,
                    float(np.median(row_sig)) if row_sig.size else 0.0)
        if lo > BRIGHTENING_FACTOR * mx and lo > m + BRIGHTENING_N_SIGMA * sigma:
            alerts.append(_record(r, "brightening",
                                  f"power_gw_lo {lo:.3g} GW > {BRIGHTENING_FACTOR:g} x history max "
                                  f"{mx:.3g} GW and > mean {m:.3g} + {BRIGHTENING_N_SIGMA:g} x "
                                  f"{sigma:.3g} GW (n = {hist.size} earlier perijoves)", hist))
    alerts.sort(key=lambda a: (a["perijove"], a["kind"], a["id"]))
    return alerts
