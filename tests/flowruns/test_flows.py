"""The Prefect flows end to end on a local store (prefect_test_harness)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from flows.backfill import backfill
from flows.params import BackfillParams, IngestParams, PerijoveParams, Sources
from flows.perijove import process_perijove
from flows.stages import calibrate, ingest_downlink
from iovolc.settings import load_settings
from iovolc.store import Store, object_key
from tasks import stages as task_stages

pytestmark = pytest.mark.usefixtures("harness")


def _store(sources: Sources) -> Store:
    return Store.from_settings(load_settings(store_url=sources.store_url))


def _snapshot(store: Store) -> dict[str, str]:
    root = Path(store.root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _task_runs(flow_run_id):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}))
        subflows = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        for sub in subflows:
            runs += client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [sub.id]}))
    return runs


def test_full_pj57_run_then_rerun_writes_nothing(sources):
    params = PerijoveParams(perijoves=[57], sources=sources)
    state = process_perijove(params, return_state=True)
    assert state.is_completed(), state
    store = _store(sources)
    latest = store.get_json(object_key("catalog_latest"))
    assert latest["version"] == "v0001" and latest["perijoves"] == [57]
    for key in latest["files"].values():
        assert store.exists(key)
    cat = store.get_parquet(latest["files"]["catalog.parquet"])
    assert len(cat) > 10 and cat.ref_id.str.len().gt(0).mean() > 0.9
    assert store.list("calibrated/pj057/") and store.list("detections/pj057/")
    before = _snapshot(store)
    assert store.list("prefect-results/")  # the expensive tasks' results, cached
    # a rerun of finished work writes nothing (no new objects, no changed bytes), Prefect's
    # result records included
    again = process_perijove(params, return_state=True)
    assert again.is_completed()
    assert again.result()["note"].startswith("nothing to do")
    assert _snapshot(store) == before
    # expired result records are pruned, nothing else is touched
    from flows.common import prune_results

    settings = load_settings(store_url=sources.store_url)
    assert prune_results(settings) == 0
    old = Path(store.root) / store.list("prefect-results/")[0]
    os.utime(old, (old.stat().st_atime, old.stat().st_mtime - 31 * 86400))
    assert prune_results(settings) == 1 and not old.exists()
    assert store.get_json(object_key("catalog_latest"))["version"] == "v0001"


def test_transient_failure_twice_then_success(sources, monkeypatch):
    ingest_downlink(IngestParams(perijoves=[58], sources=sources))
    monkeypatch.setenv("IOVOLC_FAULTS", "calibrate:2")
    task_stages.reset_faults()
    state = calibrate(PerijoveParams(perijoves=[58], sources=sources), return_state=True)
    assert state.is_completed(), state
    runs = [r for r in _task_runs(state.state_details.flow_run_id)
            if r.name.startswith("calibrate-groups")]
    assert runs and max(r.run_count for r in runs) == 3  # failed twice, then succeeded
    assert _store(sources).list("calibrated/pj058/")


def test_corrupt_product_quarantined_rest_published(downlink, tmp_path, sources):
    archive = tmp_path / "archive"
    shutil.copytree(downlink / "archive", archive)
    victim = sorted(archive.glob("JNOJIR_2057/DATA/*.IMG"))[2]
    victim.write_bytes(victim.read_bytes()[:1000])  # truncated in transit
    src = sources.model_copy(update={"archive_url": archive.as_uri()})
    state = process_perijove(PerijoveParams(perijoves=[57], sources=src), return_state=True)
    assert state.is_completed(), state
    store = _store(src)
    records = [store.get_json(k) for k in store.list("quarantine/ingest/")
               if k.endswith(".json")]
    assert len(records) == 1
    assert victim.stem in records[0]["name"] and "bytes" in records[0]["reason"]
    latest = store.get_json(object_key("catalog_latest"))
    assert store.get_parquet(latest["files"]["catalog.parquet"]).shape[0] > 10
    ingested = store.get_json(object_key("manifest", stage="ingest", perijove=57))
    assert victim.stem not in {m["product_id"] for m in ingested}


def test_backfill_three_perijoves(sources):
    state = backfill(BackfillParams(first_perijove=56, last_perijove=58, max_concurrent=2,
                                    mode="subflows", sources=sources), return_state=True)
    assert state.is_completed(), state
    res = state.result()
    assert set(res["results"]) == {56, 57, 58}
    assert all(v == "Completed" for v in res["results"].values())
    store = _store(sources)
    latest = store.get_json(object_key("catalog_latest"))
    assert latest["perijoves"] == [56, 57, 58]
    # one version for the whole backfill, not one per perijove
    assert latest["version"] == "v0001" and not store.list("catalog/v0002/")
    # its perijove runs hold the stages' tasks themselves: no stage subflow runs
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        # the perijove runs are the backfill's subflows
        pj_runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(
                any_=[state.state_details.flow_run_id])))
        pj_runs = [r for r in pj_runs if r.name.startswith("pj[")]
        assert sorted(r.name for r in pj_runs) == ["pj[56]", "pj[57]", "pj[58]"]
        assert not client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[r.id for r in pj_runs])))
        for r in pj_runs:
            names = {t.name.rsplit("-", 1)[0] for t in client.read_task_runs(
                flow_run_filter=FlowRunFilter(id={"any_": [r.id]}))}
            assert {"discover-products", "ingest-batch", "calibrate-groups",
                    "extract-groups", "finish-pass"} <= names, (r.name, names)


def test_retried_run_reexecutes_only_the_failed_part(sources, monkeypatch):
    from prefect import get_client
    from prefect.flow_engine import run_flow
    from prefect.states import AwaitingRetry

    monkeypatch.setenv("IOVOLC_FAULTS", "extract:1:fatal")
    task_stages.reset_faults()
    params = PerijoveParams(perijoves=[58], sources=sources)
    first = process_perijove(params, return_state=True)
    assert first.is_failed()
    store = _store(sources)
    assert store.list("calibrated/pj058/") and not store.list("detections/pj058/")
    before = _snapshot(store)
    run_id = first.state_details.flow_run_id
    first_attempt = {r.id for r in _task_runs(run_id)}
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, AwaitingRetry(), force=True)
        flow_run = client.read_flow_run(run_id)
    retried = run_flow(process_perijove, flow_run=flow_run, parameters={"params": params},
                       return_type="state")
    assert retried.is_completed(), retried
    after = _snapshot(store)
    # finished work was not redone: calibrated frames untouched, detections added
    changed = {k for k in before if before[k] != after.get(k)}
    assert not {k for k in changed if k.startswith(("calibrated/", "raw/", "kernels/"))}
    assert store.list("detections/pj058/")
    # the same flow run id (a UI Retry): the retry's calibration tasks come back
    # Cached, they are not re-run
    cal_runs = [r for r in _task_runs(run_id) if r.name.startswith(("calibrate-groups",
                                                                    "solve-pass-pointing"))
                and r.id not in first_attempt]
    assert cal_runs and all(r.state.name == "Cached" for r in cal_runs), \
        [(r.name, r.state.name) for r in cal_runs]
