"""One flow per stage: ingest_downlink, calibrate, extract_hotspots, publish_catalog."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.futures import wait

from flows.artifacts import emit_alert_events, publish_artifacts
from flows.common import config_hash, result_storage_for, settings_for
from flows.params import IngestParams, PerijoveParams
from iovolc.batches import calibration_costs, chunks, pack
from iovolc.store import Store, object_key
from tasks import stages as t
from tasks.work import manifest_groups


def _opts(task, settings):
    """The task with the store's result storage, if it persists results at all."""
    if not task.persist_result:
        return task
    return task.with_options(result_storage=result_storage_for(settings))


@flow(name="ingest-downlink", log_prints=True)
def ingest_downlink(params: IngestParams = IngestParams()) -> dict:
    """Discover products not yet ingested (per volume INDEX), land them unchanged with
    checksums and the SPICE kernels they name; quarantine bad ones with the reason."""
    log = get_run_logger()
    settings = settings_for(params.sources)
    if not settings.archive_url or not settings.kernels_url:
        raise ValueError("ingest needs an archive URL and a kernel root URL "
                         "(parameters, IOVOLC_ARCHIVE_URL/IOVOLC_KERNELS_URL or config)")
    store = Store.from_settings(settings)
    chash = config_hash()
    found = _opts(t.discover_products, settings)(settings, params.perijoves, params.force, chash)
    futures = []
    for vol, info in found["volumes"].items():
        _opts(t.land_index, settings)(settings, vol, info["volume_id"], chash)
        prods = info["products"]
        for batch in chunks(prods, max_items=params.products_per_task):
            futures.append((info["volume_id"], _opts(t.ingest_batch, settings).submit(
                settings, vol, info["volume_id"], batch, chash)))
    wait([f for _, f in futures])
    ingested, bad, by_volume = [], list(found["problems"]), {}
    for vid, f in futures:
        res = f.result()
        ingested += res["ingested"]
        bad += res["quarantined"]
        by_volume.setdefault(vid, []).extend(r["product_id"] for r in res["ingested"])
    for vid, pids in by_volume.items():  # the ingest state: one writer, after the batches
        key = object_key("ingest_state", volume_id=vid)
        done = set(store.get_json(key)) if store.exists(key) else set()
        if not set(pids) <= done:
            store.put_json(key, sorted(done | set(pids)), overwrite=True)
    per_pj: dict[int, list] = {}
    for row in ingested:
        per_pj.setdefault(int(row["perijove"]), []).append(row)
    for pj, rows in per_pj.items():
        key = object_key("manifest", stage="ingest", perijove=pj)
        old = store.get_json(key) if store.exists(key) else []
        merged = {r["product_id"]: r for r in old} | {r["product_id"]: r for r in rows}
        store.put_json(key, sorted(merged.values(), key=lambda r: r["et_mid"]), overwrite=True)
    log.info("ingested %d products, quarantined %d", len(ingested), len(bad))
    return {"ingested": len(ingested), "quarantined": bad, "perijoves": sorted(per_pj)}


@flow(name="calibrate", log_prints=True)
def calibrate(params: PerijoveParams = PerijoveParams()) -> dict:
    """Radiance, cleaning, each frame's limb fit, and the pass's pointing solution."""
    settings = settings_for(params.sources)
    store = Store.from_settings(settings)
    chash = config_hash(params.thresholds)
    summary = {}
    for pj in params.perijoves:
        mkey = object_key("manifest", stage="ingest", perijove=pj)
        if not store.exists(mkey):
            summary[pj] = {"groups": 0, "frames": 0, "note": "nothing ingested"}
            continue
        groups = manifest_groups(store.get_json(mkey))
        # batches by cost: a sequence Io cannot reach costs ~1/20 of its frames (a pass
        # that fits in one batch by frames needs no answer)
        reach = [None] * len(groups)
        if sum(map(len, groups)) > params.frames_per_task:
            try:
                reach = t.reach_of_groups(settings, pj, groups, chash)
            except Exception as exc:  # noqa: BLE001 - a hint: batches by frames without it
                get_run_logger().warning("PJ%d: no reach answers (%s: %s); calibration "
                                         "batches by frames", pj, type(exc).__name__, exc)
        futs = [_opts(t.calibrate_groups, settings).with_options(refresh_cache=params.force)
                .submit(settings, pj, batch, chash, params.force)
                for batch in pack(groups, max_frames=params.frames_per_task,
                                  costs=calibration_costs(groups, reach))]
        wait(futs)
        done = sorted((g for f in futs for g in f.result()), key=lambda g: g["group_id"])
        if not done:
            summary[pj] = {"groups": 0, "frames": 0, "note": "every product quarantined"}
            continue
        pointing = _opts(t.solve_pass, settings).with_options(refresh_cache=params.force)(
            settings, pj, [g["frames_key"] for g in done], chash)
        store.put_json(object_key("manifest", stage="calibrate", perijove=pj),
                       {"groups": done, **pointing}, overwrite=True)
        summary[pj] = {"groups": len(done), "frames": sum(len(g["fits_keys"]) for g in done),
                       "pointing": pointing["methods"]}
    return summary


@flow(name="extract-hotspots", log_prints=True)
def extract_hotspots(params: PerijoveParams = PerijoveParams()) -> dict:
    """Each frame on its pass's pointing: geometry, hotspots (positions, radiance, power,
    flags); then the pass's night-side frames refined by their hotspot constellations."""
    settings = settings_for(params.sources)
    store = Store.from_settings(settings)
    chash = config_hash(params.thresholds)
    cfg = params.thresholds.model_dump()
    summary = {}
    for pj in params.perijoves:
        mkey = object_key("manifest", stage="calibrate", perijove=pj)
        if not store.exists(mkey):
            summary[pj] = {"detection_tables": 0}
            continue
        cal = store.get_json(mkey)
        futs = [_opts(t.extract_groups, settings).with_options(refresh_cache=params.force)
                .submit(settings, pj, batch, cal["pointing_key"], cal["pointing_sha256"], cfg,
                        chash, params.force)
                for batch in pack(cal["groups"], max_frames=params.frames_per_task)]
        wait(futs)
        groups = sorted((g for f in futs for g in f.result()), key=lambda g: g["group_id"])
        final = _opts(t.finish_pass, settings).with_options(refresh_cache=params.force)(
            settings, pj, groups, cfg, chash)
        store.put_json(object_key("manifest", stage="extract", perijove=pj),
                       {"groups": groups, **final}, overwrite=True)
        summary[pj] = {"detection_tables": len(groups),
                       "constellation_frames": final.get("constellation_frames", 0)}
    return summary


@flow(name="publish-catalog", log_prints=True)
def publish_catalog(params: PerijoveParams = PerijoveParams(), artifacts: bool = True) -> dict:
    """Merge detections across frames and perijoves, name by cross-match, version, publish:
    tables, GeoJSON, VOTable, maps, time series, diff, alerts, page.

    ``artifacts``: show the result (and emit the alert events) on this run; a
    parent flow passes False and shows them on the run the user launched.
    """
    settings = settings_for(params.sources)
    # the catalog covers every perijove in the store, not only this run's
    res = t.publish(settings, params.perijoves, config_hash(params.thresholds))
    if artifacts:
        publish_artifacts(settings, res)
        emit_alert_events(res)
    log = get_run_logger()
    log.info("catalog %s (changed: %s, hotspots: %s, alerts: %d)", res.get("version"),
             res.get("changed"), res.get("n_hotspots"), len(res.get("alerts") or []))
    return res
