"""process_perijove: the four stages for one or more perijoves, with a QA report."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.common import settings_for
from flows.params import IngestParams, PerijoveParams
from flows.runners import with_runner
from flows.stages import calibrate, extract_hotspots, ingest_downlink, publish_catalog
from iovolc.store import Store, object_key


@flow(name="process-perijove", log_prints=True,
      flow_run_name="pj{params.perijoves}")
def process_perijove(params: PerijoveParams = PerijoveParams()) -> dict:
    """Ingest -> calibrate -> extract -> publish for the given perijoves."""
    ing = ingest_downlink(IngestParams(perijoves=params.perijoves, sources=params.sources,
                                       force=params.force))
    settings = settings_for(params.sources)  # IOVOLC_DASK_ADDRESS picks the task runner
    cal = with_runner(calibrate, settings)(params)
    ext = with_runner(extract_hotspots, settings)(params)
    pub = publish_catalog(params)
    report = qa_report(params, ing, cal, ext, pub)
    create_markdown_artifact(key="qa-summary", markdown=report,
                             description="frames in/out, quarantined, per-stage counts")
    return {"ingest": ing, "calibrate": cal, "extract": ext, "publish": pub}


def qa_report(params: PerijoveParams, ing: dict, cal: dict, ext: dict, pub: dict) -> str:
    """Markdown QA summary of a run (also used by the CLI)."""
    settings = settings_for(params.sources)
    store = Store.from_settings(settings)
    lines = [f"# QA summary: PJ {', '.join(map(str, params.perijoves))}", "",
             "| perijove | frames ingested | frames calibrated | registered | detections |",
             "|---|---|---|---|---|"]
    for pj in params.perijoves:
        mkey = object_key("manifest", stage="ingest", perijove=pj)
        n_in = len(store.get_json(mkey)) if store.exists(mkey) else 0
        n_reg = n_cal = n_det = 0
        ckey = object_key("manifest", stage="calibrate", perijove=pj)
        for g in (store.get_json(ckey) if store.exists(ckey) else []):
            fr = store.get_parquet(g["frames_key"])
            n_cal += len(fr)
            n_reg += int(fr["registered"].sum())
        ekey = object_key("manifest", stage="extract", perijove=pj)
        for k in (store.get_json(ekey) if store.exists(ekey) else []):
            n_det += len(store.get_parquet(k))
        lines.append(f"| {pj} | {n_in} | {n_cal} | {n_reg} | {n_det} |")
    q = ing.get("quarantined", [])
    lines += ["", f"Quarantined at ingestion: **{len(q)}**"]
    lines += [f"- `{r['product_id']}`: {r['reason']}" for r in q[:50]]
    other = [k for k in store.list("quarantine/") if k.endswith(".json")
             and not k.startswith("quarantine/ingest/")]
    if other:
        lines += ["", f"Quarantined later: {len(other)}"] + [f"- `{k}`" for k in other[:50]]
    lines += ["", f"Catalog: **{pub.get('version')}** (changed: {pub.get('changed')}, "
              f"hotspots: {pub.get('n_hotspots')})"]
    return "\n".join(lines) + "\n"
