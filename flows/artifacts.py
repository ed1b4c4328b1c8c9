"""What a run shows in the Prefect UI, and the alert events it emits.

Created on the run the user launched (the parent flow), never only on a
subflow: the QA summary, a readable hotspot table (key columns, every row),
the map, the changes since the previous version, the alerts, and a link to the
catalog page. Each alert record becomes a Prefect event
(``iovolc.alert.<kind>``) that the automation in
``deployments/automations.yaml`` reacts to.

How the map gets into the UI, and why (measured with Prefect 3.9.1's server
and headless Chromium; ``docs/screenshots/capture.py`` re-checks it):

* It is a PNG embedded as a ``data:`` URI in a markdown artifact. Both UIs
  (the default one and ``/v2``) render it: the ``<img>`` loads with
  ``naturalWidth`` 900. It needs nothing but the Prefect database, so it works
  whatever the store, on any machine that can open the UI, and never expires.
* Not an image artifact (``create_image_artifact(image_url=...)``): it only
  stores a URL. A ``file://`` URL never loads from the UI's http page
  (``naturalWidth`` 0), and an S3 presigned URL expires (7 days here) and needs
  the browser to reach the S3 endpoint. A ``data:`` URI in an image artifact
  renders too, but shows no title or link; the markdown artifact has both.
* The embedded copy is downscaled to 900 px (Lanczos, in RGB) and stored with
  a 256-colour palette: ~150 kB instead of ~500 kB of full colour, so the
  artifact stays light in the database and the page loads fast.

Links: on an S3 store the catalog page and the full-resolution map are
presigned URLs (valid ``LINK_EXPIRY_S``) that open from the UI. On a local
store there is no URL a web page may open: the default UI keeps ``file://``
links but Chromium refuses to follow them from an http page, and the V2 UI
drops the ``href`` altogether. So for a local store the artifacts also print
the path as text, to paste into a browser or a shell on that machine.
"""

from __future__ import annotations

import base64
import io
import json

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from iovolc.settings import Settings
from iovolc.store import Store

#: hotspot table columns shown in the UI (every column is in the catalog files)
TABLE_COLUMNS = ["hotspot_id", "name", "lat_deg", "lon_west_deg", "n_perijoves",
                 "mean_power_gw", "max_power_gw", "median_temperature_k", "notes"]
#: the UI never wraps table cells: flags become short notes (the full flag names are
#: in every catalog file); the legend is in the artifact's description
NOTES = (("NEW_SOURCE", "new"), ("POWER_LOWER_LIMIT", "P>="), ("SATURATED", "sat"),
         ("NONLINEAR", "nonlin"), ("T_ASSUMED", "T?"), ("LOW_CONFIDENCE", "faint"))


def _notes(flags: int) -> str:
    from iovolc.flags import Flag

    return " ".join(short for name, short in NOTES if int(flags) & int(Flag[name]))
#: presigned links stay valid this long (s)
LINK_EXPIRY_S = 7 * 24 * 3600


def _is_s3(store: Store) -> bool:
    return store.url.startswith(("s3://", "s3a://"))


def catalog_url(store: Store, key: str) -> str:
    """A URL a browser can open: presigned on S3, ``file://`` on a local store."""
    if _is_s3(store):
        return store.fs.sign(store.path(key), expiration=LINK_EXPIRY_S)
    url = store.url_for(key)
    return url if "://" in url else "file://" + url


def _local_path(store: Store, key: str) -> str | None:
    """The plain filesystem path of ``key`` on a local store; None otherwise."""
    if _is_s3(store):
        return None
    url = catalog_url(store, key)
    if not url.startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path)


def _small_png(data: bytes, *, width_px: int = 900) -> bytes:
    """``data`` (an image) as a PNG at most ``width_px`` wide with a 256-colour palette."""
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")  # resample in RGB, not the palette
    if img.width > width_px:
        img = img.resize((width_px, round(img.height * width_px / img.width)),
                         Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # octree keeps small saturated marks (the red new-source stars) their colour
    img.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, format="PNG", optimize=True)
    return out.getvalue()


def publish_artifacts(settings: Settings, res: dict, *, qa_markdown: str | None = None) -> None:
    """The launched run's artifacts for a publish result (see the module docstring)."""
    store = Store.from_settings(settings)
    if qa_markdown:
        create_markdown_artifact(key="qa-summary", markdown=qa_markdown,
                                 description="frames in/out, pointing, quarantined, catalog")
    if not res.get("version"):
        create_markdown_artifact(key="catalog", markdown="# No catalog\n\nNothing detected "
                                 "in the processed perijoves yet.\n")
        return
    latest = store.get_json(res["latest_key"])
    files = latest["files"]
    version = latest["version"]
    hot = store.get_parquet(files["hotspots.parquet"])
    if "flags" in hot.columns:
        hot = hot.assign(notes=hot["flags"].map(_notes))
    cols = [c for c in TABLE_COLUMNS if c in hot.columns]
    table = hot.sort_values("mean_power_gw", ascending=False)[cols].round(2)
    legend = ", ".join(f"{short} = {name}" for name, short in NOTES)
    create_table_artifact(key="hotspots", table=table.astype(str).to_dict("records"),
                          description=f"Catalog {version}: {len(table)} hotspots, all rows; "
                                      f"notes: {legend} (every column is in hotspots.csv)")
    page = catalog_url(store, files["catalog.html"])
    page_path = _local_path(store, files["catalog.html"])
    where = ("presigned, 7 days" if page.startswith("http") else
             "local store: open the path in a browser on that machine" if page_path else "link")
    create_link_artifact(
        key="catalog", link=page,
        link_text=f"catalog {version} (page)" + (f": {page_path}" if page_path else ""),
        description=f"Catalog {version}: page, maps, tables ({where})")
    if "map.png" in files:
        png = base64.b64encode(_small_png(store.get_bytes(files["map.png"]))).decode()
        map_path = _local_path(store, files["map.png"])
        full = (f"`{map_path}` (local store)" if map_path else
                f"[{files['map.png']}]({catalog_url(store, files['map.png'])})")
        create_markdown_artifact(key="map", markdown=(
            f"# Hotspots of catalog {version}\n\n![hotspot map](data:image/png;base64,{png})\n\n"
            f"Full resolution: {full}\n"),
            description=f"Map of catalog {version} over the USGS Io basemap")
    if "diff.md" in files:
        create_markdown_artifact(key="catalog-diff",
                                 markdown=store.get_bytes(files["diff.md"]).decode(),
                                 description=f"What changed in catalog {version}")
    alerts = res.get("alerts") or json.loads(store.get_bytes(files["alerts.json"]))["alerts"] \
        if "alerts.json" in files else []
    lines = [f"# Alerts of catalog {version}: {len(alerts)}", ""]
    lines += [f"- **{a['kind']}** `{a['id']}` PJ{a['perijove']}: {a['reason']}"
              for a in alerts] or ["None."]
    create_markdown_artifact(key="alerts", markdown="\n".join(lines) + "\n",
                             description="New hotspots and brightenings beyond their history")


def emit_alert_events(res: dict) -> int:
    """One Prefect event per new alert of a publish result; returns how many."""
    from prefect.events import emit_event

    from iovolc.publish.alerts import alert_events

    alerts = res.get("alerts") or []
    if not res.get("changed") or not alerts:
        return 0
    for event, resource, payload in alert_events(alerts, catalog_version=res.get("version")):
        emit_event(event=event, resource=resource, payload=payload)
    return len(alerts)
