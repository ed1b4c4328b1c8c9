"""Hotspot maps over the Io basemap: simple cylindrical and polar (orthographic), PNG bytes.

* :func:`map_png` -- one perijove's hotspots (``perijove=N``) or all of them
  (cumulative, each hotspot at its largest power), West longitude on the x
  axis from 360 at the left to 0 at the right (the basemap's own layout,
  :mod:`iovolc.publish.basemap`).
* :func:`polar_map_png` -- both poles seen from above (orthographic, to the
  equator), for the high-latitude sources that the cylindrical map stretches.

Symbol area grows with log power (legend gives 1, 10, 100, 1000 GW); new
sources (flag NEW_SOURCE or empty ``ref_id``) are red stars, Davies et al.
(2024) sources gold circles; a power lower limit has a cyan edge; hotspots
without a power are small open circles. Plotting uses matplotlib's
object API on an Agg canvas (no pyplot state).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from io import BytesIO

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from iovolc.publish._common import is_lower_limit, is_new_source, require
from iovolc.publish.basemap import BASEMAP_EXTENT, load_basemap

__all__ = ["map_png", "map_pngs", "polar_map_png", "marker_area_pt2", "map_points",
           "LEGEND_POWERS_GW"]

LEGEND_POWERS_GW = (1.0, 10.0, 100.0, 1000.0)
_KNOWN = {"marker": "o", "facecolor": "gold", "edgecolor": "black"}
_NEW = {"marker": "*", "facecolor": "red", "edgecolor": "white"}
_LIMIT_EDGE = "cyan"


def marker_area_pt2(power_gw) -> np.ndarray:
    """Scatter marker area (pt^2) for a power (GW): ``15 (1 + log10 max(P, 1))^2``; 8 if unknown."""
    p = np.asarray(power_gw, dtype=float)
    s = 15.0 * (1.0 + np.log10(np.maximum(np.where(np.isfinite(p), p, 1.0), 1.0))) ** 2
    return np.where(np.isfinite(p), s, 8.0)


def map_points(catalog: pd.DataFrame, *, perijove: int | None = None) -> pd.DataFrame:
    """One point per hotspot to draw: ``hotspot_id``, ``name``, ``lat_deg``,
    ``lon_west_deg``, ``power_gw`` (the perijove's, or the largest over all),
    ``is_new``, ``lower_limit``. Positions are the hotspots' all-perijove positions."""
    require(catalog, ("hotspot_id", "lat_deg", "lon_west_deg", "perijove", "power_gw"),
            "catalog")
    cat = catalog if perijove is None else catalog[catalog["perijove"] == perijove]
    cols = ["hotspot_id", "name", "lat_deg", "lon_west_deg", "power_gw", "is_new", "lower_limit"]
    if cat.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    cat = cat.assign(is_new=is_new_source(cat), lower_limit=is_lower_limit(cat),
                     _p=cat["power_gw"].astype(float).fillna(-np.inf))
    cat = cat.sort_values(["hotspot_id", "_p"], ascending=[True, False], kind="stable")
    first = cat.groupby("hotspot_id", sort=True).head(1)
    out = first.assign(is_new=cat.groupby("hotspot_id", sort=True)["is_new"].any().to_numpy())
    name = out["name"] if "name" in out else pd.Series([""] * len(out), index=out.index)
    out = out.assign(name=name.fillna("").astype(str))
    return out[cols].reset_index(drop=True)


def _label(row) -> str:
    text = row["name"] or str(row["hotspot_id"]).removeprefix("IVC-")
    return text.strip('"')


def _annotate(ax, text: str, x: float, y: float, *, right_edge: bool):
    """Label a point; to its left where the point is near the plot's right edge."""
    return ax.annotate(text, (x, y), xytext=(-5 if right_edge else 5, 4),
                       textcoords="offset points", ha="right" if right_edge else "left",
                       fontsize=7, color="white", clip_on=True)


def _scatter(ax, x, y, pts: pd.DataFrame, *, zorder: int = 3) -> list:
    """The symbols (module docstring); returns the artists added."""
    out = []
    size = marker_area_pt2(pts["power_gw"].to_numpy(float))
    finite = np.isfinite(pts["power_gw"].to_numpy(float))
    new = pts["is_new"].to_numpy(bool)
    lim = pts["lower_limit"].to_numpy(bool)
    for mask_kind, style in ((~new, _KNOWN), (new, _NEW)):
        for has_power in (True, False):
            m = mask_kind & (finite == has_power)
            if not m.any():
                continue
            edge = np.where(lim[m], _LIMIT_EDGE, style["edgecolor"])
            out.append(ax.scatter(x[m], y[m], s=size[m] * (2.2 if style is _NEW else 1.0),
                                  marker=style["marker"],
                                  facecolors=style["facecolor"] if has_power else "none",
                                  edgecolors=edge if has_power else style["facecolor"],
                                  linewidths=1.0, zorder=zorder))
    return out


def _legend(fig: Figure) -> None:
    handles = [
        Line2D([], [], linestyle="none", marker="o", markerfacecolor="gold",
               markeredgecolor="black", markersize=8, label="Davies et al. (2024) source"),
        Line2D([], [], linestyle="none", marker="*", markerfacecolor="red",
               markeredgecolor="white", markersize=12, label="new source"),
        Line2D([], [], linestyle="none", marker="o", markerfacecolor="gold",
               markeredgecolor=_LIMIT_EDGE, markersize=8, label="power lower limit"),
    ]
    for p in LEGEND_POWERS_GW:
        handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="gold",
                              markeredgecolor="black",
                              markersize=float(np.sqrt(marker_area_pt2(p))),
                              label=f"{p:g} GW"))
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncol=len(handles),
               title="total power sigma T^4 A (symbol area ~ log P)", title_fontsize=8,
               frameon=False)


def _credit(fig: Figure) -> None:
    fig.text(0.995, 0.998, "Basemap: USGS Astrogeology Io Galileo SSI/Voyager mosaic "
             "(public domain)", fontsize=6, color="0.35", ha="right", va="top")


def _png(fig: Figure, *, dpi: int) -> bytes:
    """Render and save as a 256-colour palette PNG (a photographic basemap as RGB PNG
    is ~1.2 MB; the palette version ~0.4 MB and looks the same at this size)."""
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    return _encode(np.asarray(canvas.buffer_rgba()))


def _encode(rgba: np.ndarray) -> bytes:
    """An Agg RGBA buffer as the palette PNG of :func:`_png`."""
    return _encode_rgb(rgba[..., :3].copy())


def _encode_rgb(rgb: np.ndarray) -> bytes:
    """:func:`_encode` of the buffer's RGB copy (Pillow's quantize and deflate release
    the GIL: :func:`map_pngs` runs this in a thread while it draws the next map)."""
    from PIL import Image

    img = Image.fromarray(rgb, mode="RGB")
    pal = img.quantize(palette=_palette(), dither=Image.Dither.NONE)
    buf = BytesIO()
    # zlib level 6: half the time of `optimize` (level 9) for 0.4 % more bytes (a map:
    # 31.8 vs 61.3 ms, 432.5 vs 430.8 kB)
    pal.save(buf, format="PNG", compress_level=6, pnginfo=_pnginfo())
    return buf.getvalue()


#: colours kept exactly in the PNG palette (symbols, text, grid), besides the basemap's
_FIXED_COLOURS = ("red", "gold", "cyan", "white", "black", "C0", "C1", "C2", "C3", "#e67e22")


@lru_cache(maxsize=1)
def _palette():
    """A 256-entry palette: 200 colours of the basemap (median cut), the symbol
    colours of :data:`_FIXED_COLOURS`, and 46 greys."""
    from matplotlib.colors import to_rgb
    from PIL import Image

    base = Image.fromarray(np.ascontiguousarray(load_basemap()), mode="RGB")
    base_pal = base.quantize(colors=200, method=Image.Quantize.MEDIANCUT).getpalette()[:600]
    fixed = [int(round(255 * v)) for c in _FIXED_COLOURS for v in to_rgb(c)]
    greys = [g for v in np.linspace(0, 255, 256 - 200 - len(_FIXED_COLOURS)).astype(int)
             for g in (int(v),) * 3]
    pal_img = Image.new("P", (1, 1))
    pal_img.putpalette(base_pal + fixed + greys)
    return pal_img


def _pnginfo():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "iovolc.publish")
    return info


def _cylindrical_axes(fig: Figure):
    """The cylindrical map's fixed parts: basemap, axes, ticks, labels, grid."""
    ax = fig.add_subplot()
    ax.imshow(load_basemap(), extent=BASEMAP_EXTENT, origin="upper", interpolation="antialiased")
    ax.set_xlim(360.0, 0.0)
    ax.set_ylim(-90.0, 90.0)
    ax.set_xticks(np.arange(360, -1, -30))
    ax.set_yticks(np.arange(-90, 91, 30))
    ax.set_xlabel("West longitude (deg)")
    ax.set_ylabel("Latitude (deg, planetocentric)")
    ax.grid(color="white", alpha=0.3, linewidth=0.5)
    return ax


def _symbols(ax, pts: pd.DataFrame, *, n_labels: int) -> list:
    """The hotspots' symbols and the ``n_labels`` most powerful's labels; their artists."""
    if not len(pts):
        return []
    x = pts["lon_west_deg"].to_numpy(float)
    y = pts["lat_deg"].to_numpy(float)
    out = _scatter(ax, x, y, pts)
    order = np.argsort(-pts["power_gw"].astype(float).fillna(-1.0).to_numpy())[:n_labels]
    return out + [_annotate(ax, _label(pts.iloc[i]), x[i], y[i], right_edge=x[i] < 40.0)
                  for i in order]


def _title(pts: pd.DataFrame, perijove: int | None) -> str:
    what = f"perijove {perijove}" if perijove is not None else "all perijoves (largest power)"
    return f"Io hotspots, {what}: {len(pts)} sources"


def map_pngs(catalog: pd.DataFrame, perijoves, *, n_labels: int = 12,
             dpi: int = 110) -> dict:
    """:func:`map_png` of each of ``perijoves`` (None: the cumulative map), by perijove.

    The same maps at a fraction of the cost: the fixed parts (basemap,
    axes, legend, credit) are laid out and drawn once; each map then draws
    only its symbols, labels and title over a copy of that drawing (Agg
    "blitting"). A catalog publishes a map per perijove: with 70 perijoves
    drawing them one by one was most of a publish.
    """
    fig = Figure(figsize=(12.0, 7.0), layout="constrained")
    ax = _cylindrical_axes(fig)
    _legend(fig)
    # a title of the usual height reserves its room in the layout
    ax.set_title(_title(catalog.iloc[:0], None), fontsize=11)
    _credit(fig)
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    fig.set_layout_engine("none")  # the layout found stays as it is
    title_at = ax.title.get_position()  # a drawing moves an invisible title: kept here
    ax.title.set_visible(False)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    _palette()  # built once here, not raced for by the encoding thread
    with ThreadPoolExecutor(max_workers=1) as encoder:
        pending: deque = deque()

        def encode(rgb):
            pending.append(encoder.submit(_encode_rgb, rgb))
            if len(pending) > 2:  # at most two frames' copies waiting
                pending.popleft().result()
            return pending[-1]

        futures = _draw_maps(catalog, perijoves, canvas, ax, background, title_at,
                             n_labels=n_labels, encode=encode)
        return {pj: f.result() for pj, f in futures.items()}


def _draw_maps(catalog, perijoves, canvas, ax, background, title_at, *, n_labels, encode):
    """Each perijove's symbols, labels and title over the fixed drawing, its RGB handed
    to ``encode`` (the next map is drawn while the last is encoded: stop 33)."""
    out = {}
    for pj in perijoves:
        pts = map_points(catalog, perijove=pj)
        canvas.restore_region(background)
        added = _symbols(ax, pts, n_labels=n_labels)
        ax.title.set_text(_title(pts, pj))
        ax.title.set_position(title_at)
        ax.title.set_visible(True)
        try:
            for artist in added:  # in the order a full drawing draws them (zorder, then order)
                ax.draw_artist(artist)
            ax.draw_artist(ax.title)
            out[pj] = encode(np.asarray(canvas.buffer_rgba())[..., :3].copy())
        finally:
            for artist in added:
                artist.remove()
            ax.title.set_visible(False)
    return out


def map_png(
    catalog: pd.DataFrame,
    *,
    perijove: int | None = None,
    title: str | None = None,
    n_labels: int = 12,
    dpi: int = 110,
) -> bytes:
    """PNG of hotspots over the basemap (simple cylindrical, West longitude 360 -> 0).

    ``perijove``: only that perijove's rows (its powers); None: all rows, each
    hotspot at its largest power (cumulative map). The ``n_labels`` most
    powerful hotspots are labelled by name (else id).
    """
    pts = map_points(catalog, perijove=perijove)
    fig = Figure(figsize=(12.0, 7.0), layout="constrained")
    ax = _cylindrical_axes(fig)
    _symbols(ax, pts, n_labels=n_labels)
    _legend(fig)
    ax.set_title(title or _title(pts, perijove), fontsize=11)
    _credit(fig)
    return _png(fig, dpi=dpi)


def _ortho_forward(lat_deg, lon_west_deg, *, north: bool) -> tuple[np.ndarray, np.ndarray]:
    """Screen (x, y) in Io radii seen from above a pole: 0 W at the bottom (north view)
    or top (south view), 90 W on the left in both."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=float))
    lon_e = -np.deg2rad(np.asarray(lon_west_deg, dtype=float))
    c = np.cos(lat)
    return c * np.sin(lon_e), (-1.0 if north else 1.0) * c * np.cos(lon_e)


def _ortho_image(basemap: np.ndarray, *, north: bool, size_px: int) -> np.ndarray:
    """RGBA orthographic view of one hemisphere (transparent off the disc)."""
    s = np.linspace(-1.0, 1.0, size_px)
    sx, sy = np.meshgrid(s, s[::-1])
    r2 = sx * sx + sy * sy
    on = r2 <= 1.0
    z = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    bx = -sy if north else sy
    by = sx
    lat = np.rad2deg(np.arcsin(z if north else -z))
    lon_w = np.mod(-np.rad2deg(np.arctan2(by, bx)), 360.0)
    rows, cols = basemap.shape[:2]
    col = np.clip(((360.0 - lon_w) / 360.0 * cols).astype(int), 0, cols - 1)
    row = np.clip(((90.0 - lat) / 180.0 * rows).astype(int), 0, rows - 1)
    out = np.zeros((size_px, size_px, 4), dtype=np.uint8)
    out[..., :3] = basemap[row, col]
    out[..., 3] = np.where(on, 255, 0)
    return out


def _polar_panel(ax, pts: pd.DataFrame, *, north: bool, min_abs_lat_deg: float,
                 n_labels: int) -> int:
    ax.imshow(_ortho_image(load_basemap(), north=north, size_px=700),
              extent=(-1, 1, -1, 1), origin="upper", interpolation="antialiased")
    sign = 1.0 if north else -1.0
    t = np.linspace(0.0, 360.0, 361)
    for lat in (30.0, 60.0):
        gx, gy = _ortho_forward(np.full_like(t, sign * lat), t, north=north)
        ax.plot(gx, gy, color="white", alpha=0.35, linewidth=0.6)
    ax.plot(np.cos(np.deg2rad(t)), np.sin(np.deg2rad(t)), color="0.3", linewidth=0.8)
    for lon in range(0, 360, 30):
        gx, gy = _ortho_forward(sign * np.array([0.0, 90.0]), np.array([lon, lon]), north=north)
        ax.plot(gx, gy, color="white", alpha=0.35, linewidth=0.6)
        lx, ly = _ortho_forward(0.0, lon, north=north)
        ax.annotate(f"{lon}W", (1.1 * lx, 1.1 * ly), ha="center", va="center", fontsize=7)
    lat = pts["lat_deg"].to_numpy(float) if len(pts) else np.array([])
    sel = (sign * lat) > 0
    sub = pts[sel].reset_index(drop=True)
    if len(sub):
        x, y = _ortho_forward(sub["lat_deg"].to_numpy(float), sub["lon_west_deg"].to_numpy(float),
                              north=north)
        _scatter(ax, x, y, sub)
        high = np.abs(sub["lat_deg"].to_numpy(float)) >= min_abs_lat_deg
        order = [i for i in np.argsort(-sub["power_gw"].astype(float).fillna(-1.0).to_numpy())
                 if high[i]][:n_labels]
        for i in order:
            _annotate(ax, _label(sub.iloc[i]), x[i], y[i], right_edge=x[i] > 0.6)
    n_high = int(np.count_nonzero(np.abs(sub["lat_deg"].to_numpy(float)) >= min_abs_lat_deg)) \
        if len(sub) else 0
    gx, gy = _ortho_forward(np.full_like(t, sign * min_abs_lat_deg), t, north=north)
    ax.plot(gx, gy, color="cyan", alpha=0.6, linewidth=0.8, linestyle="--")
    ax.set_xlim(-1.22, 1.22)
    ax.set_ylim(-1.22, 1.22)
    ax.set_aspect("equal")
    ax.set_axis_off()
    pole = "North" if north else "South"
    ax.set_title(f"{pole} polar view (orthographic): {len(sub)} sources, "
                 f"{n_high} at |lat| >= {min_abs_lat_deg:g} deg (dashed)", fontsize=9)
    return len(sub)


def polar_map_png(
    catalog: pd.DataFrame,
    *,
    perijove: int | None = None,
    min_abs_lat_deg: float = 60.0,
    n_labels: int = 10,
    dpi: int = 110,
) -> bytes:
    """PNG with both polar views (orthographic from above each pole, to the equator).

    Each hemisphere's sources are drawn; those at ``|lat| >= min_abs_lat_deg``
    (inside the dashed circle) are labelled. ``perijove`` as in :func:`map_png`.
    """
    pts = map_points(catalog, perijove=perijove)
    fig = Figure(figsize=(13.0, 7.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, north in zip(axes, (True, False), strict=True):
        _polar_panel(ax, pts, north=north, min_abs_lat_deg=min_abs_lat_deg, n_labels=n_labels)
    _legend(fig)
    what = f"perijove {perijove}" if perijove is not None else "all perijoves (largest power)"
    fig.suptitle(f"Io polar hotspots, {what}; West longitude labelled at the rim", fontsize=11)
    _credit(fig)
    return _png(fig, dpi=dpi)
