"""What a run shows in the Prefect UI, and the alert events it emits.

Created on the run the user launched (the parent flow), never only on a
subflow: the QA summary, a readable hotspot table (key columns, every row),
the map (embedded in a markdown artifact: a data URI works whatever the store),
the changes since the previous version, the alerts, and a real link to the
catalog page -- a presigned URL for an S3 store, a file URL for a local one.
Each alert record becomes a Prefect event (``iovolc.alert.<kind>``) that the
automation in ``deployments/automations.yaml`` reacts to.
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
TABLE_COLUMNS = ["hotspot_id", "name", "lat_deg", "lon_west_deg", "n_perijoves", "perijoves",
                 "mean_power_gw", "max_power_gw", "median_temperature_k", "flag_names"]
#: presigned links stay valid this long (s)
LINK_EXPIRY_S = 7 * 24 * 3600


def catalog_url(store: Store, key: str) -> str:
    """A URL a browser can open: presigned on S3, ``file://`` on a local store."""
    if store.url.startswith(("s3://", "s3a://")):
        return store.fs.sign(store.path(key), expiration=LINK_EXPIRY_S)
    url = store.url_for(key)
    return url if "://" in url else "file://" + url


def _small_png(data: bytes, *, width_px: int = 900) -> bytes:
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    if img.width > width_px:
        img = img.resize((width_px, round(img.height * width_px / img.width)))
    out = io.BytesIO()
    img.convert("RGB").save(out, format="PNG", optimize=True)
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
    cols = [c for c in TABLE_COLUMNS if c in hot.columns]
    table = hot.sort_values("mean_power_gw", ascending=False)[cols].round(3)
    create_table_artifact(key="hotspots", table=table.astype(str).to_dict("records"),
                          description=f"Catalog {version}: {len(table)} hotspots (all rows; "
                                      "every column is in hotspots.csv)")
    page = catalog_url(store, files["catalog.html"])
    create_link_artifact(key="catalog", link=page, link_text=f"catalog {version} (page)",
                         description=f"Catalog {version}: page, maps, tables "
                                     f"({'presigned, 7 days' if page.startswith('http') else 'local'})")
    if "map.png" in files:
        png = base64.b64encode(_small_png(store.get_bytes(files["map.png"]))).decode()
        create_markdown_artifact(key="map", markdown=(
            f"# Hotspots of catalog {version}\n\n![hotspot map](data:image/png;base64,{png})\n\n"
            f"Full resolution: [{files['map.png']}]({catalog_url(store, files['map.png'])})\n"),
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
