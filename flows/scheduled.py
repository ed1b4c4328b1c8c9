"""new_downlink: the scheduled automatic run (everything new in the archive)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.artifacts import emit_alert_events, publish_artifacts
from flows.common import prune_results, settings_for
from flows.params import IngestParams, PerijoveParams, Sources
from flows.perijove import qa_report
from flows.runners import with_runner
from flows.stages import calibrate, extract_hotspots, ingest_downlink, publish_catalog


@flow(name="new-downlink", log_prints=True)
def new_downlink(sources: Sources | None = None) -> dict:
    """Ingest whatever is new, then process the perijoves it touched and publish."""
    sources = sources or Sources()
    log = get_run_logger()
    pruned = prune_results(settings_for(sources))
    if pruned:
        log.info(f"deleted {pruned} expired Prefect result records")
    ing = ingest_downlink(IngestParams(perijoves=None, sources=sources))
    pjs = ing.get("perijoves", [])
    if not pjs:
        note = (f"nothing new: no product in the archive that is not already ingested "
                f"({len(ing.get('quarantined', []))} quarantined)")
        log.info(note)
        create_markdown_artifact(key="qa-summary", markdown=f"# New downlink\n\n{note}\n")
        return {"ingest": ing, "note": "nothing new"}
    params = PerijoveParams(perijoves=pjs, sources=sources)
    settings = settings_for(sources)
    cal = with_runner(calibrate, settings)(params)
    ext = with_runner(extract_hotspots, settings)(params)
    pub = publish_catalog(params, artifacts=False)
    publish_artifacts(settings, pub, qa_markdown=qa_report(params, ing, cal, ext, pub))
    emit_alert_events(pub)
    return {"ingest": ing, "calibrate": cal, "extract": ext,
            "publish": {k: v for k, v in pub.items() if k != "alerts"}}
