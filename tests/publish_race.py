"""Two publishes of different content at the same time (used by the local and the
SeaweedFS tests): each process lands its own perijove's detections, waits for the
other at a barrier, then publishes with its own configuration hash."""

from __future__ import annotations

import multiprocessing as mp

import pandas as pd


def _publish_one(store_url: str, pj: int, det_path: str, config: str, barrier) -> dict:
    from iovolc.settings import load_settings
    from iovolc.store import Store, object_key
    from tasks import work

    settings = load_settings(store_url=store_url)
    store = Store.from_settings(settings)
    barrier.wait(timeout=120)
    # lands its perijove only now: the other publish may or may not see it
    store.put_parquet(object_key("result", perijove=pj, filename="detections.parquet"),
                      pd.read_parquet(det_path), overwrite=True)
    res = work.publish(settings, perijoves=[pj], config_hash=config)
    return {"version": res["version"], "changed": res["changed"], "perijoves": res["perijoves"]}


def race(store_url: str, det_by_pj: dict[int, str]) -> list[dict]:
    """Run one publish per perijove at once (spawned processes); their results."""
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(len(det_by_pj))
        with ctx.Pool(len(det_by_pj)) as pool:
            jobs = [pool.apply_async(_publish_one, (store_url, pj, path, f"config-{pj}", barrier))
                    for pj, path in det_by_pj.items()]
            return [j.get(timeout=600) for j in jobs]


def check_no_lost_update(store, results: list[dict], perijoves: list[int]) -> None:
    """Consecutive versions, one per publish; the last holds every perijove; every
    version complete (its files exist; its alert record names it)."""
    from iovolc.store import object_key

    versions = sorted(r["version"] for r in results)
    assert all(r["changed"] for r in results), results
    assert versions == [f"v{i:04d}" for i in range(1, len(results) + 1)], results
    latest = store.get_json(object_key("catalog_latest"))
    assert latest["version"] == versions[-1]
    assert latest["perijoves"] == sorted(perijoves), latest["perijoves"]
    for v in versions:
        manifest = store.get_json(object_key("catalog", version=v, filename="manifest.json"))
        assert manifest, v
        assert store.get_json(object_key("alerts", version=v))["catalog_version"] == v
    last = store.get_parquet(latest["files"]["catalog.parquet"])
    assert set(last["perijove"].astype(int)) == set(perijoves)
