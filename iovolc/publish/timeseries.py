"""Power of each hotspot across perijoves: a long table and PNG small multiples.

**What is compared with what.** Our ``power_gw`` is the total (bolometric)
power ``sigma T^4 A`` of a single-temperature fit, with its ~90 % interval
``[power_gw_lo, power_gw_hi]`` (``hi = inf``: a lower limit, drawn as an
arrow). Mura et al. (2024) Table 3 gives, per orbit (PJ41/43/47/49), the
**M-band output** in GW: the in-band power, not a bolometric one. Like is
compared with like: the Mura values are overlaid on our **M-band output**
``m_band_power_gw = power_gw_per_um x 0.4975 um`` (the M-band spectral power
times the band width ``jiram.DLAMBDA_UM['M']``, the same dlambda the
published radiance -> power relation divides by), never on ``power_gw``.

A hotspot is the same source as a Mura et al. row when their positions are
within :data:`MURA_MATCH_TOLERANCE_DEG` (great-circle degrees; Mura's table
gives integer degrees, ~32 km per degree on Io); the nearest row wins.
"""

from __future__ import annotations

import math
from io import BytesIO

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from iovolc.publish._common import (
    M_BAND_WIDTH_UM,
    angular_sep_deg,
    is_lower_limit,
    require,
    with_plain_ids,
)

__all__ = [
    "MURA_MATCH_TOLERANCE_DEG",
    "TIMESERIES_COLUMNS",
    "match_mura",
    "timeseries_table",
    "top_hotspots",
    "timeseries_png",
]

#: largest separation (great-circle deg) for a hotspot to be a Mura et al. (2024) source
MURA_MATCH_TOLERANCE_DEG = 2.0

#: long-form time series: column -> (unit, description)
TIMESERIES_COLUMNS: dict[str, tuple[str | None, str]] = {
    "hotspot_id": (None, "Hotspot id (plain token)"),
    "name": (None, "Davies et al. (2024) name ('' if new or unnamed)"),
    "lat_deg": ("deg", "Hotspot latitude (planetocentric, N)"),
    "lon_west_deg": ("deg", "Hotspot West longitude [0, 360)"),
    "perijove": (None, "Juno perijove number"),
    "perijove_utc": (None, "Perijove time (UTC, approximate)"),
    "observed": (None, "True if this catalog has the hotspot at this perijove"),
    "power_gw": ("GW", "Total power sigma T^4 A (NaN if not observed)"),
    "power_gw_lo": ("GW", "Lower end of the ~90 % interval of power_gw"),
    "power_gw_hi": ("GW", "Upper end of the interval (inf for a lower limit)"),
    "power_lower_limit": (None, "True if power_gw is a lower limit"),
    "m_band_power_gw": ("GW", "M-band output: power_gw_per_um x 0.4975 um"),
    "mura_name": (None, "Name of the matched Mura et al. (2024) Table 3 row ('' if none)"),
    "mura_sep_deg": ("deg", "Great-circle distance to that row (NaN if none)"),
    "mura_m_band_power_gw": ("GW", "Mura et al. (2024) Table 3 M-band output at this perijove"),
}


def _mura_orbits(mura: pd.DataFrame) -> list[int]:
    return sorted(int(c.removeprefix("m_power_gw_pj")) for c in mura.columns
                  if c.startswith("m_power_gw_pj"))


def match_mura(
    hotspots: pd.DataFrame,
    *,
    mura: pd.DataFrame | None = None,
    tolerance_deg: float = MURA_MATCH_TOLERANCE_DEG,
) -> pd.DataFrame:
    """Nearest Mura et al. (2024) row within ``tolerance_deg`` of each hotspot.

    ``hotspots``: any table with ``hotspot_id``, ``lat_deg``, ``lon_west_deg``
    (duplicates of an id are reduced to its first row). Returns one row per
    hotspot: ``hotspot_id``, ``mura_index`` (-1 if none), ``mura_name``,
    ``mura_sep_deg``.
    """
    if mura is None:
        from iovolc.reference import load_mura2024

        mura = load_mura2024()
    h = hotspots.drop_duplicates("hotspot_id")
    if h.empty or mura.empty:
        return pd.DataFrame({"hotspot_id": h["hotspot_id"].to_numpy(),
                             "mura_index": np.full(len(h), -1), "mura_name": [""] * len(h),
                             "mura_sep_deg": np.full(len(h), np.nan)})
    sep = angular_sep_deg(h["lat_deg"].to_numpy(float)[:, None],
                          h["lon_west_deg"].to_numpy(float)[:, None],
                          mura["lat_deg"].to_numpy(float)[None, :],
                          mura["lon_west_deg"].to_numpy(float)[None, :])
    j = np.argmin(sep, axis=1)
    d = sep[np.arange(len(h)), j]
    ok = d <= tolerance_deg
    names = mura["name"].astype(str).to_numpy()
    return pd.DataFrame({
        "hotspot_id": h["hotspot_id"].to_numpy(),
        "mura_index": np.where(ok, j, -1),
        "mura_name": np.where(ok, names[j], ""),
        "mura_sep_deg": np.where(ok, d, np.nan),
    })


def timeseries_table(
    catalog: pd.DataFrame,
    *,
    mura: pd.DataFrame | None = None,
    tolerance_deg: float = MURA_MATCH_TOLERANCE_DEG,
) -> pd.DataFrame:
    """Long-form power time series (:data:`TIMESERIES_COLUMNS`), one row per hotspot
    per perijove: the catalog's perijoves, plus the Mura et al. (2024) orbits of
    hotspots matched to a Mura row (``observed = False`` where only Mura has a value).
    Sorted by hotspot_id, perijove; ids are plain tokens."""
    require(catalog, ("hotspot_id", "name", "lat_deg", "lon_west_deg", "perijove", "power_gw",
                      "power_gw_lo", "power_gw_hi", "power_gw_per_um", "flags"), "catalog")
    if mura is None:
        from iovolc.reference import load_mura2024

        mura = load_mura2024()
    cat = with_plain_ids(catalog)
    ours = pd.DataFrame({
        "hotspot_id": cat["hotspot_id"].to_numpy(),
        "name": cat["name"].fillna("").astype(str).to_numpy(),
        "lat_deg": cat["lat_deg"].to_numpy(float),
        "lon_west_deg": cat["lon_west_deg"].to_numpy(float),
        "perijove": cat["perijove"].to_numpy(np.int64),
        "observed": True,
        "power_gw": cat["power_gw"].to_numpy(float),
        "power_gw_lo": cat["power_gw_lo"].to_numpy(float),
        "power_gw_hi": cat["power_gw_hi"].to_numpy(float),
        "power_lower_limit": is_lower_limit(cat),
        "m_band_power_gw": cat["power_gw_per_um"].to_numpy(float) * M_BAND_WIDTH_UM,
    })
    match = match_mura(ours, mura=mura, tolerance_deg=tolerance_deg).set_index("hotspot_id")
    extra = []
    orbits = _mura_orbits(mura)
    for hid, m in match.iterrows():
        if m["mura_index"] < 0:
            continue
        have = set(ours.loc[ours["hotspot_id"] == hid, "perijove"])
        first = ours[ours["hotspot_id"] == hid].iloc[0]
        for pj in orbits:
            if pj not in have and np.isfinite(mura[f"m_power_gw_pj{pj}"].iloc[m["mura_index"]]):
                extra.append({"hotspot_id": hid, "name": first["name"],
                              "lat_deg": first["lat_deg"], "lon_west_deg": first["lon_west_deg"],
                              "perijove": pj, "observed": False, "power_gw": np.nan,
                              "power_gw_lo": np.nan, "power_gw_hi": np.nan,
                              "power_lower_limit": False, "m_band_power_gw": np.nan})
    out = pd.concat([ours, pd.DataFrame(extra, columns=ours.columns)], ignore_index=True) \
        if extra else ours
    out = out.join(match[["mura_index", "mura_name", "mura_sep_deg"]], on="hotspot_id")
    mura_val = np.full(len(out), np.nan)
    for k, (idx, pj) in enumerate(zip(out["mura_index"], out["perijove"], strict=True)):
        col = f"m_power_gw_pj{int(pj)}"
        if idx >= 0 and col in mura.columns:
            mura_val[k] = float(mura[col].iloc[int(idx)])
    out["mura_m_band_power_gw"] = mura_val
    from iovolc.reference import load_perijoves

    pj_utc = load_perijoves().set_index("pj")["perijove_utc"]
    out["perijove_utc"] = [str(pj_utc.get(int(p), "")) for p in out["perijove"]]
    out["observed"] = out["observed"].astype(bool)
    out["power_lower_limit"] = out["power_lower_limit"].astype(bool)
    out["perijove"] = out["perijove"].astype(np.int64)
    out = out.sort_values(["hotspot_id", "perijove"], ignore_index=True)
    return out[list(TIMESERIES_COLUMNS)]


def top_hotspots(catalog: pd.DataFrame, *, n: int) -> list[str]:
    """Plain ids of the ``n`` hotspots with the largest power at any perijove."""
    cat = with_plain_ids(catalog)
    peak = cat.assign(_p=cat["power_gw"].astype(float).fillna(-np.inf)) \
        .groupby("hotspot_id")["_p"].max().sort_values(ascending=False, kind="stable")
    return list(peak.index[:n])


def _panel(ax, g: pd.DataFrame, *, title: str) -> None:
    obs = g[g["observed"] & np.isfinite(g["power_gw"]) & (g["power_gw"] > 0)]
    x = obs["perijove"].to_numpy(float)
    p = obs["power_gw"].to_numpy(float)
    lo = np.clip(np.nan_to_num(obs["power_gw_lo"].to_numpy(float), nan=p), 1e-9, p)
    hi = obs["power_gw_hi"].to_numpy(float)
    limit = obs["power_lower_limit"].to_numpy(bool) | ~np.isfinite(hi)
    hi_f = np.where(limit | ~np.isfinite(hi), p, np.maximum(hi, p))
    m = ~limit
    if m.any():
        ax.errorbar(x[m], p[m], yerr=[p[m] - lo[m], hi_f[m] - p[m]], fmt="o", color="C0",
                    ecolor="C0", capsize=3, markersize=5)
    for xi, pi in zip(x[limit], p[limit], strict=True):
        ax.plot([xi], [pi], marker="^", color="C3", markersize=7, linestyle="none")
        ax.annotate("", xy=(xi, pi * 3.0), xytext=(xi, pi),
                    arrowprops={"arrowstyle": "->", "color": "C3", "lw": 1.2})
    mb = g[np.isfinite(g["m_band_power_gw"]) & (g["m_band_power_gw"] > 0)]
    ax.plot(mb["perijove"], mb["m_band_power_gw"], linestyle="none", marker="s",
            markerfacecolor="none", markeredgecolor="C2", markersize=6)
    mu = g[np.isfinite(g["mura_m_band_power_gw"]) & (g["mura_m_band_power_gw"] > 0)]
    ax.plot(mu["perijove"], mu["mura_m_band_power_gw"], linestyle="none", marker="x",
            color="black", markersize=7)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("perijove", fontsize=8)
    ax.set_ylabel("GW", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="both", linewidth=0.4)
    pjs = g["perijove"].to_numpy(float)
    if pjs.size:
        ax.set_xlim(pjs.min() - 1.0, pjs.max() + 1.0)
    ys = np.concatenate([p, lo, mb["m_band_power_gw"].to_numpy(float),
                         mu["mura_m_band_power_gw"].to_numpy(float), p[limit] * 3.5])
    ys = ys[np.isfinite(ys) & (ys > 0)]
    if ys.size:
        ax.set_ylim(ys.min() / 2.0, ys.max() * 2.0)


def timeseries_png(
    catalog: pd.DataFrame,
    *,
    hotspot_ids: list[str] | None = None,
    top_n: int = 6,
    mura: pd.DataFrame | None = None,
    tolerance_deg: float = MURA_MATCH_TOLERANCE_DEG,
    dpi: int = 100,
) -> bytes:
    """PNG of the power time series of ``hotspot_ids`` (raw or plain ids), or of the
    ``top_n`` most powerful hotspots; one panel per hotspot, log power axis.

    Overlays (see the module docstring): our M-band output and Mura et al.
    (2024) Table 3's M-band output of the same source (within
    ``tolerance_deg``). ``ValueError`` for an id not in the catalog.
    """
    table = timeseries_table(catalog, mura=mura, tolerance_deg=tolerance_deg)
    if hotspot_ids is None:
        ids = top_hotspots(catalog, n=top_n)
    else:
        from iovolc.publish.ids import plain_id

        ids = [plain_id(str(h)) for h in hotspot_ids]
        unknown = sorted(set(ids) - set(table["hotspot_id"]))
        if unknown:
            raise ValueError(f"hotspot ids not in the catalog: {unknown}")
    n = max(len(ids), 1)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.2 * nrows + 1.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, hid in zip(axes, ids, strict=False):
        g = table[table["hotspot_id"] == hid]
        name = g["name"].iloc[0] if len(g) else ""
        lat, lon = (g["lat_deg"].iloc[0], g["lon_west_deg"].iloc[0]) if len(g) else (np.nan,) * 2
        mura_name = g["mura_name"].iloc[0] if len(g) else ""
        title = f"{hid}" + (f" ({name.strip(chr(34))})" if name else "") + \
            f"\n{lat:.1f} N, {lon:.1f} W" + (f"; Mura: {mura_name}" if mura_name else "")
        _panel(ax, g, title=title)
    for ax in axes[len(ids):]:
        ax.set_axis_off()
    handles = [
        Line2D([], [], marker="o", color="C0", linestyle="-",
               label="total power sigma T^4 A, ~90 % interval (this catalog)"),
        Line2D([], [], marker="^", color="C3", linestyle="none",
               label="total power lower limit (saturated)"),
        Line2D([], [], marker="s", markerfacecolor="none", markeredgecolor="C2",
               linestyle="none",
               label=f"M-band output = P_M (GW/um) x {M_BAND_WIDTH_UM:g} um (this catalog)"),
        Line2D([], [], marker="x", color="black", linestyle="none",
               label=f"Mura et al. 2024 Table 3 M-band output (same source within "
                     f"{tolerance_deg:g} deg)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle("Io hotspot power per perijove", fontsize=11)
    FigureCanvasAgg(fig)
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": "iovolc.publish"})
    return buf.getvalue()
