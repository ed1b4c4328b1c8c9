"""Alerts on a new catalog version: new hotspots and brightenings.

**The rule** (:func:`alerts_for`). Only confirmed rows are considered: seen
in at least ``MIN_ALERT_FRAMES`` (2) frames of their pass and not flagged
LOW_CONFIDENCE (peak SNR >= 8). A source in one frame only may be a radiation
hit, a noise peak or a limb residual; a real eruption is seen by every frame
of the pass that covers it. (A faint new source is still catalogued, flagged
NEW_SOURCE; it raises an alert once a pass confirms it.) Only rows that are new in this version are
looked at: a (hotspot, perijove) row of ``new_catalog`` that ``previous_catalog``
does not have (ids compared as plain tokens; a row at the same perijove and
the same place as a previous row under another id -- a renamed source -- is
not new). A quiet rerun on the same data has no new row, hence no alert. For
each new row at perijove ``p``, its *history* is the same hotspot's rows at
perijoves before ``p`` (in either catalog); ``tol_km = clip(3 x pixel_scale_km,
25, 150)``, the catalog's own linking tolerance.

* ``new-hotspot``: the row has no history, no Davies et al. (2024) match
  (empty ``ref_id`` *and* no Davies source within ``tol_km``), and no row of any
  hotspot at an earlier perijove lies within ``tol_km`` (the place was never
  catalogued before).
* ``brightening``: the row has a history of ``n >= 1`` finite powers, mean
  ``m``, max ``M``, and its ``power_gw_lo`` (the low end of its ~90 % interval)
  exceeds both ``BRIGHTENING_FACTOR x M`` (2 x) and ``m + BRIGHTENING_N_SIGMA x
  s`` (3 sigma), where ``s = max(sample std of the history (n >= 2),
  SHORT_HISTORY_REL_SIGMA x m, median 1-sigma of the history rows' own
  intervals)``. The floor ``0.3 m`` keeps one or two past values (std
  undefined or tiny) from making ordinary variability an alert; with it, 3
  sigma is >= 0.9 m, so for short histories the 2 x max term decides.
* The first detection of a Davies et al. (2024) source is neither (it is
  catalogued, and it has no history to brighten from).

:func:`alert_events` turns alert records into ``(event, resource, payload)``
triples for ``prefect.events.emit_event``: event ``iovolc.alert.<kind>``,
resource id ``iovolc.hotspot.<plain id>`` (``deployments/automations.yaml``
reacts to them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iovolc.catalog import great_circle_km
from iovolc.flags import Flag
from iovolc.publish._common import json_value, require, with_plain_ids

__all__ = [
    "BRIGHTENING_FACTOR",
    "BRIGHTENING_N_SIGMA",
    "SHORT_HISTORY_REL_SIGMA",
    "MIN_ALERT_FRAMES",
    "ALERT_KINDS",
    "alerts_for",
    "alert_events",
]

BRIGHTENING_FACTOR = 2.0
BRIGHTENING_N_SIGMA = 3.0
SHORT_HISTORY_REL_SIGMA = 0.3
#: an alert needs the row to be seen in at least this many frames of its pass
MIN_ALERT_FRAMES = 2
ALERT_KINDS = ("new-hotspot", "brightening")
#: z of the catalog's ~90 % power interval (power_gw_lo/hi = +-1.645 sigma)
_Z90 = 1.645
_NEEDED = ("hotspot_id", "ref_id", "name", "lat_deg", "lon_west_deg", "perijove", "power_gw",
           "power_gw_lo", "power_gw_hi", "pixel_scale_km")


def _tol_km(pixel_scale_km: float) -> float:
    return float(np.clip(3.0 * np.nan_to_num(pixel_scale_km, nan=50.0), 25.0, 150.0))


def _row_sigma(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    s = (hi - lo) / (2.0 * _Z90)
    return s[np.isfinite(s) & (s > 0)]


def _record(r: pd.Series, kind: str, reason: str, hist: np.ndarray) -> dict:
    return {
        "id": str(r["hotspot_id"]),
        "kind": kind,
        "perijove": int(r["perijove"]),
        "lat_deg": json_value(r["lat_deg"]),
        "lon_west_deg": json_value(r["lon_west_deg"]),
        "power_gw": json_value(r["power_gw"]),
        "power_gw_lo": json_value(r["power_gw_lo"]),
        "power_gw_hi": json_value(r["power_gw_hi"]),
        "power_lower_limit": bool(np.isposinf(float(r["power_gw_hi"]))),
        "name": str(r["name"] or ""),
        "ref_id": str(r["ref_id"] or ""),
        "first_seen_utc": str(r.get("first_seen_utc", "") or ""),
        "history_n": int(hist.size),
        "history_max_power_gw": json_value(hist.max()) if hist.size else None,
        "history_mean_power_gw": json_value(hist.mean()) if hist.size else None,
        "reason": reason,
    }


def alerts_for(
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
    known_lat, known_lon = (known[c].to_numpy(float) for c in ("lat_deg", "lon_west_deg"))
    ref_lat, ref_lon = (reference[c].to_numpy(float) for c in ("lat_deg", "lon_west_deg"))
    known_power = known["power_gw"].to_numpy(float)
    known_lo_hi = (known["power_gw_lo"].to_numpy(float), known["power_gw_hi"].to_numpy(float))
    # each hotspot's known rows (positions, in the table's order; the ids are plain
    # strings): a row's history is those before its perijove, the rows a mask over the
    # table would select, in the same order
    rows_of = known.reset_index(drop=True).groupby("hotspot_id", sort=False).indices
    no_rows = np.empty(0, dtype=np.intp)
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
        mine = rows_of.get(r["hotspot_id"], no_rows)
        mine = mine[known_pj[mine] < pj]
        hist = known_power[mine]
        hist = hist[np.isfinite(hist) & (hist > 0)]
        if mine.size == 0:
            if str(r["ref_id"] or ""):
                continue
            d_ref = np.asarray(great_circle_km(r["lat_deg"], r["lon_west_deg"], ref_lat, ref_lon))
            if d_ref.size and d_ref.min() <= tol:
                continue
            earlier = known_pj < pj
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
        row_sig = _row_sigma(known_lo_hi[0][mine], known_lo_hi[1][mine])
        sigma = max(sd, SHORT_HISTORY_REL_SIGMA * m,
                    float(np.median(row_sig)) if row_sig.size else 0.0)
        if lo > BRIGHTENING_FACTOR * mx and lo > m + BRIGHTENING_N_SIGMA * sigma:
            alerts.append(_record(r, "brightening",
                                  f"power_gw_lo {lo:.3g} GW > {BRIGHTENING_FACTOR:g} x history max "
                                  f"{mx:.3g} GW and > mean {m:.3g} + {BRIGHTENING_N_SIGMA:g} x "
                                  f"{sigma:.3g} GW (n = {hist.size} earlier perijoves)", hist))
    alerts.sort(key=lambda a: (a["perijove"], a["kind"], a["id"]))
    return alerts


def alert_events(alerts: list[dict], *, catalog_version: str | None = None,
                 ) -> list[tuple[str, dict[str, str], dict]]:
    """``(event, resource, payload)`` for ``prefect.events.emit_event(event=...,
    resource=..., payload=...)``, one per alert record.

    event ``iovolc.alert.<kind>``; resource ``{"prefect.resource.id":
    "iovolc.hotspot.<id>", "prefect.resource.name": name or id, "iovolc.kind",
    "iovolc.perijove"}`` (string labels); payload the record (+ ``catalog_version``).
    """
    out = []
    for a in alerts:
        if a["kind"] not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {a['kind']!r} (known: {ALERT_KINDS})")
        resource = {
            "prefect.resource.id": f"iovolc.hotspot.{a['id']}",
            "prefect.resource.name": a.get("name") or a["id"],
            "iovolc.kind": a["kind"],
            "iovolc.perijove": str(a["perijove"]),
        }
        payload = dict(a)
        if catalog_version is not None:
            payload["catalog_version"] = catalog_version
        out.append((f"iovolc.alert.{a['kind']}", resource, payload))
    return out
