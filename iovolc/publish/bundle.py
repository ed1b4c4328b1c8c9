"""Every file of one published catalog version, as ``{relative name: bytes}``.

:func:`build_bundle` is what the publish stage calls; it writes nothing
itself (the caller puts each item at ``object_key("catalog", version=...,
filename=name)``). Files:

===========================  ==================================================
``catalog.parquet/.ecsv/.csv``  catalog rows (plain ids, version columns)
``hotspots.parquet/.ecsv/.csv`` one row per hotspot
``catalog.geojson``             catalog rows as GeoJSON Points (East longitude)
``hotspots.geojson``            hotspots as GeoJSON Points
``catalog.vot``                 catalog rows as a VOTable (units, UCDs)
``map.png``                     all perijoves over the Io basemap
``map_pjNNN.png``               one per perijove (3-digit, like the store's pjNNN)
``map_polar.png``               both polar views
``timeseries.csv``              long-form power per hotspot per perijove (+ Mura)
``timeseries_top.png``          the top-N hotspots' time series
``diff.md`` / ``diff.json``     changes since ``previous``
``alerts.json``                 alert records (:func:`~iovolc.publish.alerts.alerts_for`)
``catalog.html``                the static page: maps embedded, downloads relative
``manifest.json``               name -> size and sha256 of every other file
===========================  ==================================================
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from iovolc.catalog import CatalogResult
from iovolc.publish import formats
from iovolc.publish.alerts import alerts_for
from iovolc.publish.diff import diff_catalogs, diff_json, diff_markdown
from iovolc.publish.maps import map_pngs, polar_map_png
from iovolc.publish.page import catalog_page
from iovolc.publish.timeseries import timeseries_png, timeseries_table

__all__ = ["build_bundle", "perijove_map_name"]


def perijove_map_name(perijove: int) -> str:
    """File name of one perijove's map: ``map_pj057.png``."""
    return f"map_pj{int(perijove):03d}.png"


def _previous_version(previous: pd.DataFrame | None) -> str | None:
    if previous is None or "catalog_version" not in previous.columns or previous.empty:
        return None
    versions = sorted({str(v) for v in previous["catalog_version"] if str(v)})
    return versions[-1] if versions else None


def build_bundle(
    result: CatalogResult,
    *,
    version: str,
    previous: pd.DataFrame | None,
    pipeline_version: str,
    config_hash: str,
    previous_version: str | None = None,
    top_n: int = 6,
    reference: pd.DataFrame | None = None,
    mura: pd.DataFrame | None = None,
) -> dict[str, bytes]:
    """All files of catalog ``version`` by relative file name (module docstring).

    ``previous``: the previous version's catalog (per-perijove rows, as read
    back from its ``catalog.parquet``) or None for a first version; it feeds
    ``diff.*`` and ``alerts.json``. ``previous_version`` names it in the diff
    (default: its ``catalog_version`` column, if it has one). ``reference`` (Davies et al. 2024) and
    ``mura`` (Mura et al. 2024) default to the shipped tables.
    """
    versions = {"catalog_version": version, "pipeline_version": pipeline_version,
                "config_hash": config_hash}
    cat = formats.published_table(result.catalog, **versions)
    hot = formats.published_table(result.hotspots, **versions)
    files: dict[str, bytes] = {}
    cat_title = f"iovolc Io volcanic hotspot catalog {version}"
    hot_title = f"iovolc Io volcanic hotspots {version}"
    files["catalog.parquet"] = formats.parquet_bytes(cat, title=cat_title)
    files["catalog.ecsv"] = formats.ecsv_bytes(cat, title=cat_title)
    files["catalog.csv"] = formats.csv_bytes(cat)
    files["hotspots.parquet"] = formats.parquet_bytes(hot, title=hot_title)
    files["hotspots.ecsv"] = formats.ecsv_bytes(hot, title=hot_title)
    files["hotspots.csv"] = formats.csv_bytes(hot)
    files["catalog.geojson"] = formats.geojson_bytes(cat, title=cat_title)
    files["hotspots.geojson"] = formats.geojson_bytes(hot, title=hot_title)
    files["catalog.vot"] = formats.votable_bytes(cat, title=cat_title)

    pjs = sorted(int(p) for p in cat["perijove"].unique())
    drawn = map_pngs(cat, [None, *pjs])  # map_png's maps, the fixed parts drawn once
    files["map.png"] = drawn[None]
    pj_maps = {}
    for pj in pjs:
        pj_maps[pj] = perijove_map_name(pj)
        files[pj_maps[pj]] = drawn[pj]
    files["map_polar.png"] = polar_map_png(cat)
    files["timeseries.csv"] = formats.csv_bytes(timeseries_table(cat, mura=mura))
    if len(cat):
        files["timeseries_top.png"] = timeseries_png(cat, top_n=top_n, mura=mura)

    old_version = previous_version or _previous_version(previous)
    diff = diff_catalogs(previous, cat)
    files["diff.md"] = diff_markdown(diff, old_version=old_version, new_version=version).encode()
    files["diff.json"] = diff_json(diff, old_version=old_version, new_version=version)
    alerts = alerts_for(previous, cat, reference=reference)
    files["alerts.json"] = json.dumps({"catalog_version": version, "alerts": alerts},
                                      allow_nan=False, indent=1).encode()
    counts = diff["kind"].value_counts()
    summary = ", ".join(f"{int(counts[k])} {k}" for k in counts.index) or "no changes"
    downloads = [n for n in files if not n.startswith("map_pj")]
    files["catalog.html"] = catalog_page(
        cat, version=version, pipeline_version=pipeline_version, config_hash=config_hash,
        perijove_map_files=pj_maps,
        timeseries_file="timeseries_top.png" if "timeseries_top.png" in files else None,
        downloads=downloads + ["manifest.json"], alerts=alerts,
        images={n: files[n] for n in ("map.png", "map_polar.png", "timeseries_top.png")
                if n in files},
        diff_summary=f"since {old_version or 'nothing (first version)'}: {summary} "
                     "(diff.md)").encode()
    files["manifest.json"] = json.dumps({
        **versions,
        "files": {n: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                  for n, b in sorted(files.items())},
    }, indent=1).encode()
    return files
