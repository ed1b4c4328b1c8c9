"""End to end against real servers: Prefect server + process worker + SeaweedFS S3.

The deployments of ``deployments/prefect.yaml`` are deployed to a fresh
server, a worker runs ``process-perijove`` for a simulated perijove (archive,
kernels and store all on S3), and the published catalog is scored against
the simulator's truth.
"""

from __future__ import annotations

import time

import pytest

# generous: servers start in ~45 s and the run takes ~1 min on 2 shared cores
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

DEPLOYMENT = "process-perijove/process-perijove"
RUN_TIMEOUT_S = 480


def test_s3_server_checks_signatures(s3_server):
    """The S3 server is not an open bucket: unsigned and badly signed requests fail."""
    assert s3_server.fs().exists(s3_server.bucket)
    for bad in (s3_server.fs(anon=True, key=None, secret=None),
                s3_server.fs(secret=s3_server.secret_key[::-1])):
        with pytest.raises(PermissionError):
            bad.ls(s3_server.bucket)


def _flow_run_logs(client, flow_run_ids) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
        any_=list(flow_run_ids))), sort=LogSort.TIMESTAMP_ASC, limit=200)
    return "\n".join(f"{log.timestamp:%H:%M:%S} {log.level:>2} {log.message}" for log in logs)


def test_process_perijove_deployment(s3_server, s3_downlink, prefect_client_settings,
                                     prefect_worker, deployments, monkeypatch):
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterParentFlowRunId,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment

    from iovolc.cli import compare_with_truth
    from iovolc.settings import load_settings
    from iovolc.store import Store, object_key

    assert set(deployments) == {"new-downlink/new-downlink", DEPLOYMENT, "backfill/backfill"}
    t0 = time.monotonic()
    run = run_deployment(DEPLOYMENT, parameters={"params": {"perijoves": [57]}}, timeout=0)
    with get_client(sync_client=True) as client:
        state = None
        while time.monotonic() - t0 < RUN_TIMEOUT_S:
            state = client.read_flow_run(run.id).state
            if state is not None and state.is_final():
                break
            time.sleep(2.0)
        elapsed = time.monotonic() - t0
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
        logs = _flow_run_logs(client, [run.id, *(c.id for c in children)])
        assert state is not None and state.is_completed(), (
            f"flow run {run.name} ended {state.name if state else None} after {elapsed:.0f} s:"
            f" {state.message if state else ''}\nflow run logs:\n{logs}")
        print(f"\nprocess-perijove run {run.name} completed in {elapsed:.1f} s "
              f"({len(children)} subflow runs)")
        assert {c.state.name for c in children} == {"Completed"}, [
            (c.name, c.state.name) for c in children]

        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
        qa = [a for a in artifacts if a.key == "qa-summary"]
        assert qa and qa[0].type == "markdown", [(a.key, a.type) for a in artifacts]
        assert "QA summary: PJ 57" in qa[0].data
        assert "| 57 |" in qa[0].data

        # the paused cron schedule started nothing (at most future runs wait, Scheduled)
        scheduled = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(
                any_=[deployments["new-downlink/new-downlink"].id])))
        assert all(r.state_type == StateType.SCHEDULED for r in scheduled), [
            (r.name, r.state_name) for r in scheduled]

    # the catalog is on S3 (this process reads it as any client would)
    for k, v in {**s3_server.env, "IOVOLC_S3_ENDPOINT_URL": s3_server.endpoint_url}.items():
        monkeypatch.setenv(k, v)
    store = Store.from_settings(load_settings(store_url=s3_downlink.store_url))
    assert store.url.startswith("s3://")
    latest = store.get_json(object_key("catalog_latest"))
    assert latest["version"] == "v0001" and latest["perijoves"] == [57]
    for name in ("catalog.parquet", "hotspots.parquet", "detections.parquet"):
        assert store.exists(latest["files"][name]), name
    assert store.list("raw/JNOJIR_1057/") and store.list("calibrated/pj057/")

    score = compare_with_truth(s3_downlink.sim_dir, s3_downlink.store_url)
    print("score vs truth:", {k: round(v, 3) if isinstance(v, float) else v
                              for k, v in score.items()})
    assert score["n_detectable"] > 0
    assert score["recall"] >= 0.9, score
    assert score["ref_id_accuracy"] >= 0.95, score
    assert score["entries_on_hits"] == 0, score


def test_concurrent_publishes_on_seaweedfs(s3_server, tmp_path, monkeypatch):
    """Two runs publishing different content at once on S3: the lock is an
    ``If-None-Match: *`` conditional PUT, which SeaweedFS honours; two consecutive
    versions, nothing lost."""
    import uuid

    from publish_race import check_no_lost_update, race
    from test_catalog import _detections, _truth_sources

    from iovolc.settings import load_settings
    from iovolc.store import Store

    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("IOVOLC_S3_ENDPOINT_URL", s3_server.endpoint_url)
    url = f"s3://{s3_server.bucket}/race-{uuid.uuid4().hex[:8]}"
    store = Store.from_settings(load_settings(store_url=url))
    # the conditional create itself: the second create of one key is refused
    assert store.create_exclusive("locks/probe.json", b"1")
    assert not store.create_exclusive("locks/probe.json", b"2")
    assert store.get_bytes("locks/probe.json") == b"1"
    store.delete("locks/probe.json")
    det, _ = _detections(_truth_sources(), seed=3)
    paths = {}
    for pj in sorted(det["perijove"].unique())[:2]:
        paths[int(pj)] = str(tmp_path / f"pj{pj}.parquet")
        det[det["perijove"] == pj].to_parquet(paths[int(pj)])
    results = race(url, paths)
    check_no_lost_update(store, results, list(paths))
    assert not store.list("locks/")
