"""What changed between two catalog versions: a table, Markdown and JSON.

:func:`diff_catalogs` takes two catalogs (one row per hotspot per perijove)
or two hotspot tables (one row per hotspot) -- or one of each -- and lists:

* ``new`` -- a hotspot id in ``new`` only (ids compared as plain tokens);
* ``lost`` -- an id in ``old`` only;
* ``renamed`` -- a ``lost`` and a ``new`` id at the same place (within
  ``rename_tolerance_km``), e.g. an ``IVC-NEW-nnnn`` source now matched to a
  Davies et al. (2024) source; reported once, instead of new + lost;
* ``power_changed`` -- the hotspot's current power interval does not overlap
  the old one. Current = the row of its latest perijove, interval
  ``[power_gw_lo, power_gw_hi]`` (a lower limit has hi = inf, so only a drop
  below it is certain). For a hotspot table, the interval is
  ``[min_power_gw, max_power_gw]`` over its perijoves;
* ``moved`` -- the great-circle distance between the old and new positions
  exceeds ``n_sigma_position`` x the two position uncertainties in quadrature
  (``position_uncertainty_km``), and ``min_move_km``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from iovolc.catalog import great_circle_km
from iovolc.publish._common import json_value, require, with_plain_ids

__all__ = ["DIFF_COLUMNS", "diff_catalogs", "diff_markdown", "diff_json"]

#: diff table: column -> description
DIFF_COLUMNS: dict[str, str] = {
    "kind": "new | lost | renamed | power_changed | moved",
    "hotspot_id": "plain id (the new one for renamed)",
    "old_hotspot_id": "plain id in the old version ('' for new)",
    "name": "Davies et al. (2024) name ('' if none)",
    "lat_deg": "latitude (new version; old for lost)",
    "lon_west_deg": "West longitude (new version; old for lost)",
    "old_value": "old power (GW) or position shift 0; NaN when not applicable",
    "new_value": "new power (GW) or position shift (km); NaN when not applicable",
    "detail": "human-readable explanation",
}


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per hotspot (index plain id): lat, lon, pos unc, power, lo, hi, perijove."""
    require(df, ("hotspot_id", "lat_deg", "lon_west_deg"), "catalog")
    d = with_plain_ids(df)
    if "perijove" in d.columns:
        d = d.sort_values(["hotspot_id", "perijove"], kind="stable")
        last = d.groupby("hotspot_id", sort=True).tail(1).set_index("hotspot_id")
        out = pd.DataFrame({
            "power": last["power_gw"].astype(float),
            "lo": last["power_gw_lo"].astype(float) if "power_gw_lo" in last else np.nan,
            "hi": last["power_gw_hi"].astype(float) if "power_gw_hi" in last else np.nan,
            "perijove": last["perijove"].astype("int64"),
        })
    else:
        last = d.drop_duplicates("hotspot_id").set_index("hotspot_id")
        out = pd.DataFrame({
            "power": last["max_power_gw"].astype(float) if "max_power_gw" in last else np.nan,
            "lo": last["min_power_gw"].astype(float) if "min_power_gw" in last else np.nan,
            "hi": last["max_power_gw"].astype(float) if "max_power_gw" in last else np.nan,
            "perijove": -1,
        }, index=last.index)
    out["lat"] = last["lat_deg"].astype(float)
    out["lon"] = last["lon_west_deg"].astype(float)
    out["unc_km"] = (last["position_uncertainty_km"].astype(float)
                     if "position_uncertainty_km" in last else 0.0)
    out["name"] = last["name"].fillna("").astype(str) if "name" in last else ""
    return out


def _row(kind, hid, old_id, s, old_value, new_value, detail) -> dict:
    return {"kind": kind, "hotspot_id": hid, "old_hotspot_id": old_id, "name": s["name"],
            "lat_deg": float(s["lat"]), "lon_west_deg": float(s["lon"]),
            "old_value": old_value, "new_value": new_value, "detail": detail}


def diff_catalogs(
    old: pd.DataFrame | None,
    new: pd.DataFrame,
    *,
    n_sigma_position: float = 3.0,
    min_move_km: float = 5.0,
    rename_tolerance_km: float = 25.0,
) -> pd.DataFrame:
    """Differences from ``old`` to ``new`` (:data:`DIFF_COLUMNS`); see the module
    docstring. ``old=None``: every hotspot is ``new``. Sorted by kind, then id."""
    s_new = _summary(new)
    s_old = _summary(old) if old is not None and len(old) else s_new.iloc[0:0]
    rows: list[dict] = []
    only_new = [h for h in s_new.index if h not in s_old.index]
    only_old = [h for h in s_old.index if h not in s_new.index]
    renamed: dict[str, str] = {}
    if only_new and only_old:
        a, b = s_new.loc[only_new], s_old.loc[only_old]
        d = np.asarray(great_circle_km(a["lat"].to_numpy()[:, None], a["lon"].to_numpy()[:, None],
                                       b["lat"].to_numpy()[None, :], b["lon"].to_numpy()[None, :]))
        for flat in np.argsort(d, axis=None):
            i, j = np.unravel_index(flat, d.shape)
            if d[i, j] > rename_tolerance_km:
                break
            if only_new[i] in renamed or only_old[j] in renamed.values():
                continue
            renamed[only_new[i]] = only_old[j]
    for h in only_new:
        s = s_new.loc[h]
        if h in renamed:
            rows.append(_row("renamed", h, renamed[h], s, np.nan, np.nan,
                             f"{renamed[h]} is now {h} (same place)"))
        else:
            rows.append(_row("new", h, "", s, np.nan, float(s["power"]),
                             f"new hotspot at {s['lat']:.1f} N, {s['lon']:.1f} W"))
    for h in only_old:
        if h not in renamed.values():
            s = s_old.loc[h]
            rows.append(_row("lost", h, h, s, float(s["power"]), np.nan,
                             "no longer in the catalog"))
    pairs = [(h, h) for h in s_new.index if h in s_old.index] + list(renamed.items())
    for h_new, h_old in pairs:
        n, o = s_new.loc[h_new], s_old.loc[h_old]
        lo_n, hi_n = _interval(n)
        lo_o, hi_o = _interval(o)
        if np.isfinite(lo_n) and np.isfinite(lo_o) and (lo_n > hi_o or hi_n < lo_o):
            way = "up" if lo_n > hi_o else "down"
            rows.append(_row("power_changed", h_new, h_old, n, float(o["power"]),
                             float(n["power"]),
                             f"power {way}: {o['power']:.3g} GW [{lo_o:.3g}, {hi_o:.3g}] -> "
                             f"{n['power']:.3g} GW [{lo_n:.3g}, {hi_n:.3g}]"))
        dist = float(great_circle_km(o["lat"], o["lon"], n["lat"], n["lon"]))
        sigma = float(np.hypot(np.nan_to_num(o["unc_km"]), np.nan_to_num(n["unc_km"])))
        limit = max(n_sigma_position * sigma, min_move_km)
        if dist > limit:
            rows.append(_row("moved", h_new, h_old, n, 0.0, dist,
                             f"moved {dist:.1f} km (> {limit:.1f} km = max({n_sigma_position:g} "
                             f"sigma, {min_move_km:g} km))"))
    out = pd.DataFrame(rows, columns=list(DIFF_COLUMNS))
    order = {k: i for i, k in enumerate(("new", "renamed", "lost", "power_changed", "moved"))}
    out["_k"] = out["kind"].map(order)
    return out.sort_values(["_k", "hotspot_id"], ignore_index=True).drop(columns="_k")


def _interval(s: pd.Series) -> tuple[float, float]:
    lo = float(s["lo"]) if np.isfinite(s["lo"]) else float(s["power"])
    hi = float(s["hi"]) if not np.isnan(s["hi"]) else float(s["power"])
    return lo, hi


def diff_markdown(diff: pd.DataFrame, *, old_version: str | None, new_version: str) -> str:
    """Markdown summary of :func:`diff_catalogs`: counts, then one table per kind."""
    title = f"# Catalog {new_version}: changes since {old_version or '(no previous version)'}"
    if diff.empty:
        return f"{title}\n\nNo changes.\n"
    counts = diff["kind"].value_counts()
    lines = [title, "", ", ".join(f"{int(counts[k])} {k}" for k in counts.index), ""]
    for kind, g in diff.groupby("kind", sort=False):
        lines += [f"## {kind} ({len(g)})", "", "| hotspot | name | lat (deg N) | lon (deg W) | "
                  "detail |", "|---|---|---|---|---|"]
        for _, r in g.iterrows():
            name = str(r["name"]).replace("|", "/")
            lines.append(f"| {r['hotspot_id']} | {name} | {r['lat_deg']:.2f} | "
                         f"{r['lon_west_deg']:.2f} | {r['detail']} |")
        lines.append("")
    return "\n".join(lines)


def diff_json(diff: pd.DataFrame, *, old_version: str | None, new_version: str) -> bytes:
    """The diff as JSON: ``{"old_version", "new_version", "changes": [records]}`` (NaN -> null)."""
    changes = [{k: json_value(v) for k, v in rec.items()}
               for rec in diff.to_dict(orient="records")]
    doc = {"old_version": old_version, "new_version": new_version, "changes": changes}
    return json.dumps(doc, allow_nan=False, indent=1).encode()
