"""A static HTML page per catalog version (no server, no CDN, no external resource).

:func:`catalog_page` returns one self-contained HTML document: version and
provenance, alerts, what changed, the maps and time-series images, download
links, and a table of every catalog row whose headers sort the rows when
clicked (small inline script; numbers sort numerically, ``inf`` last
ascending, blanks always last). Every image and link is a **relative** file
name of the same folder (checked: no scheme, no leading ``/``, no ``..``), so
the page works from a local folder (``file://``) or a folder of an object
store served over HTTP.
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd

from iovolc.publish._common import with_plain_ids

__all__ = ["PAGE_COLUMNS", "catalog_page", "check_relative"]

#: catalog columns shown in the page's table (all rows; every column is in the downloads)
PAGE_COLUMNS: tuple[str, ...] = (
    "hotspot_id", "name", "ref_id", "perijove", "lat_deg", "lon_west_deg", "power_gw",
    "power_gw_lo", "power_gw_hi", "temperature_k", "area_km2", "position_uncertainty_km",
    "n_detections", "flag_names", "first_seen_utc",
)

_RELATIVE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")

_SCRIPT = """
(function () {
  var table = document.getElementById('catalog');
  var heads = table.tHead.rows[0].cells;
  function key(cell, numeric) {
    var v = cell.getAttribute('data-v');
    if (v === null || v === '') return null;
    return numeric ? parseFloat(v) : v.toLowerCase();
  }
  function sortBy(col) {
    var th = heads[col];
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    var numeric = th.getAttribute('data-type') === 'number';
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute('aria-sort');
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
  }
  for (var i = 0; i < heads.length; i++) {
    (function (col) {
      heads[col].addEventListener('click', function () { sortBy(col); });
    })(i);
  }
})();
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; white-space: nowrap; }
.scroll { overflow-x: auto; }
th { background: #eee; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.new td { background: #fff1f0; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
.alert { background: #fff4e5; border-left: 4px solid #e67e22; padding: 4px 8px; margin: 4px 0; }
"""


def check_relative(name: str) -> str:
    """``name`` if it is a plain relative file name (``a.png``, ``sub/b.csv``), else ValueError."""
    if not isinstance(name, str) or not _RELATIVE.match(name) or ".." in name.split("/"):
        raise ValueError(f"not a relative file name of the catalog folder: {name!r}")
    return name


def _cell(v, col: str) -> str:
    if isinstance(v, (bool, np.bool_)):
        return f'<td data-v="{int(v)}">{"yes" if v else ""}</td>'
    if isinstance(v, (int, np.integer)):
        return f'<td class="num" data-v="{int(v)}">{int(v)}</td>'
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return '<td class="num" data-v=""></td>'
        if math.isinf(f):
            return f'<td class="num" data-v="{"Infinity" if f > 0 else "-Infinity"}">' \
                   f'{"inf" if f > 0 else "-inf"}</td>'
        digits = 2 if col.endswith("_deg") else 3
        text = f"{f:.{digits}f}" if col.endswith("_deg") else f"{f:.{digits}g}"
        return f'<td class="num" data-v="{f!r}">{html.escape(text)}</td>'
    s = "" if v is None else str(v)
    return f'<td data-v="{html.escape(s)}">{html.escape(s)}</td>'


def _table(cat: pd.DataFrame, columns: list[str]) -> str:
    numeric = {c: pd.api.types.is_numeric_dtype(cat[c]) for c in columns}
    head = "".join(
        f'<th data-type="{"number" if numeric[c] else "text"}" data-col="{html.escape(c)}" '
        f'title="click to sort">{html.escape(c)}</th>' for c in columns)
    new = (cat["ref_id"].fillna("").astype(str) == "").to_numpy() if "ref_id" in cat else \
        np.zeros(len(cat), bool)
    body = []
    for i, rec in enumerate(cat[columns].itertuples(index=False)):
        cls = ' class="new"' if new[i] else ""
        body.append(f"<tr{cls}>" + "".join(_cell(v, c) for v, c in zip(rec, columns, strict=True))
                    + "</tr>")
    return (f'<div class="scroll"><table id="catalog"><thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody></table></div>")


def catalog_page(
    catalog: pd.DataFrame,
    *,
    version: str,
    pipeline_version: str = "",
    config_hash: str = "",
    map_file: str | None = "map.png",
    polar_map_file: str | None = "map_polar.png",
    perijove_map_files: dict[int, str] | None = None,
    timeseries_file: str | None = "timeseries_top.png",
    downloads: list[str] | None = None,
    alerts: list[dict] | None = None,
    diff_summary: str | None = None,
    columns: tuple[str, ...] = PAGE_COLUMNS,
    images: dict[str, bytes] | None = None,
) -> str:
    """HTML page of one catalog version (see the module docstring).

    ``catalog``: the rows to tabulate (ids shown as plain tokens). File
    arguments are names relative to the page's folder (None omits the item).
    ``diff_summary``: one line, e.g. "1 new, 2 moved"; ``alerts``: the records
    of :func:`iovolc.publish.alerts.alerts_for`. ``images``: PNG bytes by file
    name; those images are embedded in the page (data URIs), so that the page
    shows them from any single URL -- a presigned S3 link included -- while its
    download links stay relative.
    """
    import base64

    images = images or {}

    def src(name: str) -> str:
        name = check_relative(name)
        if name in images:
            return "data:image/png;base64," + base64.b64encode(images[name]).decode()
        return name

    cat = with_plain_ids(catalog).sort_values(["hotspot_id", "perijove"], kind="stable")
    cols = [c for c in columns if c in cat.columns]
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Io volcanic hotspot catalog {e(version)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Io volcanic hotspot catalog <span id=\"version\">{e(version)}</span></h1>",
        f"<p>{cat['hotspot_id'].nunique()} hotspots, {len(cat)} rows (one per hotspot per "
        f"perijove), perijoves {e(', '.join(str(p) for p in sorted(cat['perijove'].unique())))}. "
        f"Pipeline {e(pipeline_version or '?')}, configuration hash "
        f"<code>{e(config_hash or '?')}</code>. Latitude planetocentric (deg N), longitude "
        "West (deg, 0-360); power = total sigma T<sup>4</sup> A in GW, "
        "interval ~90 % (hi = inf: lower limit).</p>",
    ]
    if alerts is not None:
        parts.append(f"<h2>Alerts ({len(alerts)})</h2>")
        parts += [f'<div class="alert"><b>{e(a["kind"])}</b> {e(a["id"])} at perijove '
                  f'{int(a["perijove"])}: {e(a["reason"])}</div>' for a in alerts] or \
            ["<p>None.</p>"]
    if diff_summary is not None:
        parts.append(f"<h2>Changes</h2><p>{e(diff_summary)}</p>")
    if map_file:
        parts.append(f'<h2>Map</h2><img id="map" src="{e(src(map_file))}" '
                     'alt="hotspot map over the Io basemap">')
    if polar_map_file:
        parts.append(f'<img id="map-polar" src="{e(src(polar_map_file))}" '
                     'alt="polar views">')
    if perijove_map_files:
        links = " ".join(f'<a href="{e(check_relative(f))}">PJ{int(p)}</a>'
                         for p, f in sorted(perijove_map_files.items()))
        parts.append(f"<p>Per-perijove maps: {links}</p>")
    if timeseries_file:
        parts.append(f'<h2>Power per perijove</h2><img id="timeseries" '
                     f'src="{e(src(timeseries_file))}" alt="power time series">')
    if downloads:
        items = "".join(f'<li><a href="{e(check_relative(f))}">{e(f)}</a></li>'
                        for f in downloads)
        parts.append(f"<h2>Files</h2><ul>{items}</ul>")
    parts += ["<h2>Catalog</h2><p>Click a column header to sort; new sources are shaded.</p>",
              _table(cat, cols), f"<script>{_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"
