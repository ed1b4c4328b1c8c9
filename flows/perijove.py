"""process_perijove: the four stages for one or more perijoves, with a QA report."""

from __future__ import annotations

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.artifacts import emit_alert_events, publish_artifacts
from flows.common import settings_for
from flows.params import IngestParams, PerijoveParams
from flows.runners import uses_dask, with_runner
from flows.stages import calibrate, extract_hotspots, ingest_downlink, publish_catalog
from iovolc.store import Store, object_key


@flow(name="process-perijove", log_prints=True,
      flow_run_name="pj{params.perijoves}")
def process_perijove(params: PerijoveParams = PerijoveParams()) -> dict:
    """Ingest -> calibrate -> extract -> publish for the given perijoves."""
    # URLs that cannot work fail here, before any task (ValueError: not retried);
    # IOVOLC_DASK_ADDRESS picks the task runner
    settings = settings_for(params.sources)
    ing_params = IngestParams(perijoves=params.perijoves, sources=params.sources,
                              force=params.force)
    if params.stage_subflows or uses_dask(settings):
        ing = ingest_downlink(ing_params)
        cal = with_runner(calibrate, settings)(params)
        ext = with_runner(extract_hotspots, settings)(params)
    else:  # the stage flows' bodies, their tasks in this run and on its task runner
        # (a backfill gives it the settings' one; decisions.md, "Inline stages")
        ing = ingest_downlink.fn(ing_params)
        cal = calibrate.fn(params)
        ext = extract_hotspots.fn(params)
    pub = publish_catalog(params, artifacts=False) if params.publish else \
        {"version": None, "changed": False, "alerts": [], "note": "not published (publish off)"}
    report = qa_report(params, ing, cal, ext, pub)
    # on the run the user launched: QA, hotspot table, map, diff, alerts, catalog link
    if params.publish:
        publish_artifacts(settings, pub, qa_markdown=report)
        emit_alert_events(pub)
    else:
        create_markdown_artifact(key="qa-summary", markdown=report,
                                 description="frames in/out, pointing, quarantined")
    out = {"ingest": ing, "calibrate": cal, "extract": ext,
           "publish": {k: v for k, v in pub.items() if k != "alerts"},
           "alerts": len(pub.get("alerts") or [])}
    if params.publish and not ing.get("ingested") and not pub.get("changed"):
        out["note"] = (f"nothing to do: no new product for PJ {params.perijoves} "
                       f"({len(ing.get('quarantined', []))} quarantined), catalog "
                       f"{pub.get('version') or '(none)'} unchanged")
        get_run_logger().info(out["note"])
    return out


def qa_report(params: PerijoveParams, ing: dict, cal: dict, ext: dict, pub: dict) -> str:
    """Markdown QA summary of a run (also used by the CLI)."""
    settings = settings_for(params.sources)
    store = Store.from_settings(settings)
    lines = [f"# QA summary: PJ {', '.join(map(str, params.perijoves))}", "",
             "| perijove | frames ingested | calibrated | Io out of reach (not calibrated) "
             "| Io in view | pointing: limb / constellation / pass / none | detections |",
             "|---|---|---|---|---|---|---|"]
    for pj in params.perijoves:
        mkey = object_key("manifest", stage="ingest", perijove=pj)
        n_in = len(store.get_json(mkey)) if store.exists(mkey) else 0
        fkey = object_key("result", perijove=pj, filename="frames.parquet")
        dkey = object_key("result", perijove=pj, filename="detections.parquet")
        if store.exists(fkey):
            fr = store.get_parquet(fkey)
            m = fr["pointing_method"].value_counts()
            methods = " / ".join(str(int(m.get(k, 0))) for k in
                                 ("limb", "constellation", "pass", "none"))
            cal_ok = fr["calibrated"].ne(False) if "calibrated" in fr else \
                pd.Series(True, index=fr.index)
            n_cal, n_far = int(cal_ok.sum()), int((~cal_ok).sum())
            n_view = int(fr["io_in_view"].sum())
            n_det = len(store.get_parquet(dkey)) if store.exists(dkey) else 0
        else:
            methods, n_cal, n_far, n_view, n_det = "-", 0, 0, 0, 0
        lines.append(f"| {pj} | {n_in} | {n_cal} | {n_far} | {n_view} | {methods} | {n_det} |")
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
