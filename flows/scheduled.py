"""new_downlink: the scheduled automatic run (everything new in the archive)."""

from __future__ import annotations

from prefect import flow

from flows.common import settings_for
from flows.params import IngestParams, PerijoveParams, Sources
from flows.runners import with_runner
from flows.stages import calibrate, extract_hotspots, ingest_downlink, publish_catalog


@flow(name="new-downlink", log_prints=True)
def new_downlink(sources: Sources | None = None) -> dict:
    """Ingest whatever is new, then process the perijoves it touched and publish."""
    sources = sources or Sources()
    ing = ingest_downlink(IngestParams(perijoves=None, sources=sources))
    pjs = ing.get("perijoves", [])
    if not pjs:
        return {"ingest": ing, "note": "nothing new"}
    params = PerijoveParams(perijoves=pjs, sources=sources)
    settings = settings_for(sources)
    cal = with_runner(calibrate, settings)(params)
    ext = with_runner(extract_hotspots, settings)(params)
    pub = publish_catalog(params)
    return {"ingest": ing, "calibrate": cal, "extract": ext, "publish": pub}
