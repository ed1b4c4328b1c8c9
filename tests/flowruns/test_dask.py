"""Scale-out: the same perijove on Prefect's thread pool and on a 2-worker Dask cluster."""

from __future__ import annotations

import pandas as pd
import pytest
from prefect.task_runners import ThreadPoolTaskRunner

from flows.params import PerijoveParams, Sources
from flows.perijove import process_perijove
from flows.runners import parse_address, task_runner_for, with_runner
from flows.stages import calibrate
from iovolc.settings import load_settings
from iovolc.store import Store, object_key


def _published(sources: Sources) -> tuple[dict, dict[str, pd.DataFrame]]:
    store = Store.from_settings(load_settings(store_url=sources.store_url))
    latest = store.get_json(object_key("catalog_latest"))
    tables = {name: store.get_parquet(key) for name, key in latest["files"].items()
              if name.endswith(".parquet")}
    return latest, tables


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    key = [c for c in ("hotspot_id", "product_id", "perijove", "line", "sample", "et")
           if c in df.columns]
    return df.sort_values(key, kind="stable").reset_index(drop=True) if key else df


@pytest.mark.slow
@pytest.mark.usefixtures("harness")
def test_pj57_on_dask_publishes_the_same_catalog(downlink, tmp_path, monkeypatch):
    monkeypatch.setenv("IOVOLC_CACHE_DIR", str(tmp_path / "cache"))
    common = {"archive_url": (downlink / "archive").as_uri(),
              "kernels_url": (downlink / "kernels").as_uri()}
    src_a = Sources(store_url=(tmp_path / "store-a").as_uri(), **common)
    src_b = Sources(store_url=(tmp_path / "store-b").as_uri(), **common)
    # several tasks per stage, so the two Dask workers both get work
    small = {"perijoves": [57], "frames_per_task": 4}

    monkeypatch.delenv("IOVOLC_DASK_ADDRESS", raising=False)
    state_a = process_perijove(PerijoveParams(sources=src_a, **small), return_state=True)
    assert state_a.is_completed(), state_a

    from flows._dask import close_local_clusters

    monkeypatch.setenv("IOVOLC_DASK_ADDRESS", "local:2")
    try:
        state_b = process_perijove(PerijoveParams(sources=src_b, **small), return_state=True)
    finally:
        close_local_clusters()  # the process-wide local:2 cluster, not left for exit
    assert state_b.is_completed(), state_b
    result_b = state_b.result()
    assert result_b["calibrate"][57]["frames"] > 0

    latest_a, tables_a = _published(src_a)
    latest_b, tables_b = _published(src_b)
    assert latest_a["content_sha256"] == latest_b["content_sha256"]
    assert latest_a["n_hotspots"] == latest_b["n_hotspots"] > 0
    assert latest_a["n_rows"] == latest_b["n_rows"] > 10
    assert set(tables_a) == set(tables_b) >= {"catalog.parquet", "hotspots.parquet",
                                              "detections.parquet"}
    for name in tables_a:
        pd.testing.assert_frame_equal(_sorted(tables_a[name]), _sorted(tables_b[name]),
                                      check_exact=True, obj=name)

    # the Dask run really ran its stage tasks on Dask workers, not on the thread pool
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        subs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(
                any_=[state_b.state_details.flow_run_id])))
        names = {s.name: s for s in subs}
        runs = []
        for sub in subs:
            if sub.flow_id and client.read_flow(sub.flow_id).name in ("calibrate",
                                                                      "extract-hotspots"):
                runs += client.read_task_runs(flow_run_filter=FlowRunFilter(
                    id={"any_": [sub.id]}))
    assert names and len(runs) >= 4
    assert all(r.state is not None and r.state.is_completed() for r in runs)


def test_runner_choice_from_settings(monkeypatch):
    from flows._dask import IovolcDaskTaskRunner, local_cluster_kwargs

    monkeypatch.delenv("IOVOLC_DASK_ADDRESS", raising=False)
    default = task_runner_for(load_settings(max_concurrency=3))
    assert isinstance(default, ThreadPoolTaskRunner) and default._max_workers == 3

    local = task_runner_for(load_settings(dask_address="local:3"))
    assert isinstance(local, IovolcDaskTaskRunner) and local.local_workers == 3
    assert local.address is None  # the shared cluster starts on first use, not here
    assert local.duplicate() == local and local.duplicate().local_workers == 3
    assert task_runner_for(load_settings(dask_address="local", max_concurrency=4)
                           ).local_workers == 4
    assert local_cluster_kwargs(3) == {"n_workers": 3, "threads_per_worker": 1,
                                       "processes": True, "dashboard_address": ":0"}

    remote = task_runner_for("tcp://scheduler:8786")
    assert isinstance(remote, IovolcDaskTaskRunner) and remote.address == "tcp://scheduler:8786"
    assert remote.duplicate() == remote  # Prefect duplicates the runner per flow run

    monkeypatch.setenv("IOVOLC_DASK_ADDRESS", "local:2")
    flow = with_runner(calibrate, load_settings())
    assert isinstance(flow.task_runner, IovolcDaskTaskRunner) and flow.name == calibrate.name
    assert isinstance(calibrate.task_runner, ThreadPoolTaskRunner)  # original unchanged

    assert parse_address("") == ("default", None)
    for bad in ("local:0", "locals", "local:x"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_worker_with_threads_is_refused():
    """Two threads in one worker process would share CSPICE: the plugin refuses it."""
    import os

    from distributed import Client, LocalCluster

    from flows._dask import PLUGIN_NAME, SpiceSafeWorker

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        with pytest.raises(RuntimeError, match="one thread per worker"):
            client.register_plugin(SpiceSafeWorker(), name=PLUGIN_NAME)
    before = os.environ.get("IOVOLC_PROCESSES")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.register_plugin(SpiceSafeWorker(), name=PLUGIN_NAME)
        env = client.run(lambda: os.environ.get("IOVOLC_PROCESSES"))
        assert list(env.values()) == ["0"]
    assert os.environ.get("IOVOLC_PROCESSES") == before  # only the worker's environment
