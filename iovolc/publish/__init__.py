"""Publishing a catalog version: maps, time series, formats, diffs, alerts, a static page.

Pure functions on the catalog DataFrames of :mod:`iovolc.catalog` (never
imports Prefect); :func:`build_bundle` returns every file of a version as
``{relative name: bytes}`` for the publish stage to write. See
``docs/publishing.md``.
"""

from iovolc.publish.alerts import alert_events, alerts_for
from iovolc.publish.bundle import build_bundle, perijove_map_name
from iovolc.publish.diff import diff_catalogs, diff_json, diff_markdown
from iovolc.publish.formats import (
    UCDS,
    csv_bytes,
    ecsv_bytes,
    geojson_bytes,
    geojson_dict,
    parquet_bytes,
    published_table,
    votable_bytes,
)
from iovolc.publish.ids import VERSION_COLUMNS, add_version_columns, plain_id, plain_ids
from iovolc.publish.maps import map_png, polar_map_png
from iovolc.publish.page import catalog_page
from iovolc.publish.timeseries import match_mura, timeseries_png, timeseries_table, top_hotspots

__all__ = [
    "UCDS",
    "VERSION_COLUMNS",
    "add_version_columns",
    "alert_events",
    "alerts_for",
    "build_bundle",
    "catalog_page",
    "csv_bytes",
    "diff_catalogs",
    "diff_json",
    "diff_markdown",
    "ecsv_bytes",
    "geojson_bytes",
    "geojson_dict",
    "map_png",
    "match_mura",
    "parquet_bytes",
    "perijove_map_name",
    "plain_id",
    "plain_ids",
    "polar_map_png",
    "published_table",
    "timeseries_png",
    "timeseries_table",
    "top_hotspots",
    "votable_bytes",
]
