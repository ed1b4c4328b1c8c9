"""Backfill scale-out: the calibrate + extract stages on Dask, 1 worker vs 2 workers.

Simulates a multi-perijove downlink of distant passes (default PJ40-43, a
few frames each), ingests it once into a base store (not timed), then for
each worker count N (default 1 and 2):

* starts a ``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)``
  and points ``IOVOLC_DASK_ADDRESS`` at it (the long-lived-cluster mode of
  ``flows/runners.py``); warms the workers up (imports), timed apart;
* runs the ``backfill`` flow (local subflows: one ``process_perijove`` per
  perijove, at most ``--max-concurrent`` at once, then a catalog publish) on a
  fresh copy of the base store, against a temporary local Prefect server
  (``prefect_test_harness``, SQLite);
* checks that every run published the same catalog.

Where the time goes is measured by wrapping functions inside this bench
(product code unchanged), in the Dask worker processes (a worker plugin) and
in this process:

* compute: time inside the core calls ``calibrate_group``,
  ``extract_group`` (workers) and ``build_catalog`` (publish, this process);
* I/O: time inside ``Store`` reads/writes/listings (outermost call only);
* other task work: the rest of the stage work functions
  (``calibrate_groups``/``extract_groups``: FITS encode/decode, kernel
  loading, table building);
* orchestration + idle: the rest of the wall time, i.e. wall minus the
  worker-side time spread over N workers, minus this process's compute and
  I/O: flow- and task-run bookkeeping against the API (~1 s per flow run
  here), result persistence, archive discovery, and workers waiting while a
  perijove is in a serial step (ingest check, publish).

Per task: Prefect task-run duration (from the API) vs the stage work inside it.

Run: ``uv run python bench/backfill_scaling.py [--perijoves 40-43] [--frames-per-pass 16]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import threading
import time
import types
from datetime import UTC, datetime
from pathlib import Path

import _common

REGISTRY = "_iovolc_bench_timings"
STORE_METHODS = ("exists", "get_bytes", "get_file", "get_json", "get_parquet", "list",
                 "put_bytes", "put_file", "put_json", "put_parquet", "sha256", "size")
COMPUTE = {"tasks.work": ("calibrate_group", "extract_group", "build_catalog")}
WORK = {"tasks.work": ("calibrate_groups", "extract_groups")}


# --- instrumentation (runs in this process and, via the plugin, in Dask workers) -----
def _registry() -> types.ModuleType:
    """Per-process timing counters, kept in sys.modules so every wrapper finds them."""
    reg = sys.modules.get(REGISTRY)
    if reg is None:
        reg = types.ModuleType(REGISTRY)
        reg.lock = threading.Lock()
        reg.local = threading.local()
        reg.totals = {}
        reg.calls = {}
        reg.work_calls = []
        reg.installed = False
        sys.modules[REGISTRY] = reg
    return reg


def _add(kind: str, seconds: float) -> None:
    reg = _registry()
    with reg.lock:
        reg.totals[kind] = reg.totals.get(kind, 0.0) + seconds
        reg.calls[kind] = reg.calls.get(kind, 0) + 1


def _timed(fn, kind: str, *, outermost: bool = False, record: bool = False,
           detail: bool = False):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        reg = _registry()
        depth = getattr(reg.local, kind, 0)
        if outermost and depth:
            return fn(*args, **kwargs)
        setattr(reg.local, kind, depth + 1)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            dt = time.perf_counter() - t0
            setattr(reg.local, kind, depth)
            _add(kind, dt)
            if detail:
                _add(f"{kind}:{fn.__name__}", dt)
            if record:
                with reg.lock:
                    reg.work_calls.append(dt)
    wrapper.__bench_wrapped__ = True
    return wrapper


def install_timers() -> bool:
    """Wrap Store methods, the core calls and the stage work functions (once per process)."""
    import importlib

    from iovolc.store import Store

    reg = _registry()
    if reg.installed:
        return False
    for name in STORE_METHODS:
        setattr(Store, name, _timed(getattr(Store, name), "io", outermost=True))
    for module, names in COMPUTE.items():
        mod = importlib.import_module(module)
        for name in names:
            setattr(mod, name, _timed(getattr(mod, name), "compute", detail=True))
    for module, names in WORK.items():
        mod = importlib.import_module(module)
        for name in names:
            setattr(mod, name, _timed(getattr(mod, name), "work", record=True))
    reg.installed = True
    return True


def reset_timers() -> None:
    reg = _registry()
    with reg.lock:
        reg.totals.clear()
        reg.calls.clear()
        reg.work_calls.clear()


def read_timers() -> dict:
    import resource

    reg = _registry()
    with reg.lock:
        return {"totals": dict(reg.totals), "calls": dict(reg.calls),
                "work_calls": list(reg.work_calls),
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def warm_up() -> float:
    """Import what a stage task needs (first-task cost of a fresh worker process)."""
    t0 = time.perf_counter()
    import prefect.task_engine  # noqa: F401

    import flows.common  # noqa: F401
    import iovolc.pipeline  # noqa: F401
    import tasks.stages  # noqa: F401
    import tasks.work  # noqa: F401

    return time.perf_counter() - t0


def _plugin():
    from distributed.diagnostics.plugin import WorkerPlugin

    class BenchTimers(WorkerPlugin):
        """Install this bench's timers in every worker process."""

        idempotent = True

        def setup(self, worker):
            install_timers()

    return BenchTimers()


# --- the run -----------------------------------------------------------------------
def parse_range(text: str) -> list[int]:
    if "-" in text:
        a, b = (int(x) for x in text.split("-", 1))
        return list(range(a, b + 1))
    return [int(x) for x in text.split(",")]


def simulate(out: Path, perijoves: list[int], frames_per_pass: int, seed: int) -> Path:
    from iovolc.sim.downlink import simulate as sim
    from iovolc.sim.scenario import scenario_for

    t0 = time.perf_counter()
    summary = sim(scenario_for(perijoves, seed=seed, frames_per_pass=frames_per_pass),
                  out_dir=out, seed=seed, workers=2)
    print(f"data: simulated PJ{perijoves[0]}-{perijoves[-1]} (distant passes, "
          f"--frames-per-pass {frames_per_pass}, seed {seed}): {summary.n_frames} frames, "
          f"{summary.n_products} products in {time.perf_counter() - t0:.1f} s")
    return out


def _task_runs_since(start) -> list:
    """Every task run that started after ``start`` (a backfill's perijove runs are
    top-level flow runs: the backfill starts them from its own threads)."""
    from prefect import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterStartTime

    out, page = [], 200
    flt = TaskRunFilter(start_time=TaskRunFilterStartTime(after_=start))
    with get_client(sync_client=True) as client:
        while True:
            batch = client.read_task_runs(task_run_filter=flt, limit=page, offset=len(out))
            out += batch
            if len(batch) < page:
                return out


def _flow_runs_since(start) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    flt = FlowRunFilter(start_time=FlowRunFilterStartTime(after_=start))
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=flt, limit=200)


def _stage_digest(store, prefix: str) -> str:
    """sha256 over every Parquet table under ``prefix``, by value, in key order."""
    import hashlib

    import pandas as pd

    h = hashlib.sha256()
    for key in sorted(k for k in store.list(prefix) if k.endswith(".parquet")):
        df = store.get_parquet(key)
        h.update(key.encode())
        h.update(pd.util.hash_pandas_object(df, index=False).values.tobytes())
    return h.hexdigest()


def run_one(n_workers: int, *, base: Path, data: Path, work: Path, pjs: list[int],
            max_concurrent: int) -> dict:
    from distributed import Client, LocalCluster

    from flows._dask import PLUGIN_NAME, SpiceSafeWorker, local_cluster_kwargs
    from flows.backfill import backfill
    from flows.params import BackfillParams, Sources
    from iovolc.settings import load_settings
    from iovolc.store import Store, object_key

    store_dir = work / f"store-{n_workers}w"
    shutil.copytree(base, store_dir, ignore=shutil.ignore_patterns("prefect-results"))
    sources = Sources(archive_url=(data / "archive").as_uri(),
                      kernels_url=(data / "kernels").as_uri(), store_url=store_dir.as_uri())
    t0 = time.perf_counter()
    cluster = LocalCluster(**local_cluster_kwargs(n_workers))
    client = Client(cluster)
    try:
        client.register_plugin(SpiceSafeWorker(), name=PLUGIN_NAME)
        start_s = time.perf_counter() - t0
        warm = client.run(warm_up)
        warm_s = time.perf_counter() - t0 - start_s
        client.register_plugin(_plugin(), name="iovolc-bench-timers")
        client.run(reset_timers)
        reset_timers()
        os.environ["IOVOLC_DASK_ADDRESS"] = cluster.scheduler_address
        params = BackfillParams(first_perijove=pjs[0], last_perijove=pjs[-1], mode="subflows",
                                max_concurrent=max_concurrent, sources=sources)
        started = datetime.now(UTC)
        load_before = os.getloadavg()[0]
        t1 = time.perf_counter()
        state = backfill(params, return_state=True)
        wall = time.perf_counter() - t1
        load_after = os.getloadavg()[0]
        if not state.is_completed():
            raise SystemExit(f"backfill with {n_workers} worker(s) ended {state.name}")
        workers = client.run(read_timers)
        local = read_timers()
    finally:
        os.environ.pop("IOVOLC_DASK_ADDRESS", None)
        client.close()
        cluster.close()
    runs = _task_runs_since(started)
    n_flow_runs = len(_flow_runs_since(started))
    stage_runs = [r for r in runs if r.name.startswith(("calibrate-groups", "extract-groups"))]
    durations = [(r.end_time - r.start_time).total_seconds() for r in stage_runs
                 if r.start_time and r.end_time]
    store = Store.from_settings(load_settings(store_url=sources.store_url))
    latest = store.get_json(object_key("catalog_latest"))
    catalog = store.get_parquet(latest["files"]["catalog.parquet"])
    detections = _stage_digest(store, "detections/")
    frames = _stage_digest(store, "frames/")
    w_tot: dict[str, float] = {}
    w_calls: dict[str, int] = {}
    work_calls: list[float] = []
    for rec in workers.values():
        for k, v in rec["calls"].items():
            w_calls[k] = w_calls.get(k, 0) + v
        for k, v in rec["totals"].items():
            w_tot[k] = w_tot.get(k, 0.0) + v
        work_calls += rec["work_calls"]
    return {"n": n_workers, "wall": wall, "start": start_s, "warm": warm_s,
            "warm_imports": max(warm.values()), "workers": w_tot, "local": local["totals"],
            "worker_calls": w_calls, "load": (load_before, load_after),
            "worker_rss": max(rec["max_rss_mb"] for rec in workers.values()),
            "local_rss": local["max_rss_mb"],
            "work_calls": work_calls, "task_runs": durations, "n_task_runs": len(runs),
            "n_flow_runs": n_flow_runs,
            "catalog": latest["content_sha256"], "n_hotspots": latest["n_hotspots"],
            "catalog_df": catalog, "detections": detections, "frames": frames,
            "version": latest["version"],
            "n_frames": sum(1 for _ in store.list("calibrated/"))}


def report(results: list[dict]) -> None:
    cols = [f"Dask {r['n']} worker{'s' if r['n'] > 1 else ''}" for r in results]
    w = max(14, *(len(c) for c in cols))

    def row(label: str, values: list[str]) -> None:
        print(f"{label:<46}" + "".join(f"{v:>{w + 2}}" for v in values))

    def fmt(x: float) -> str:
        return f"{x:.1f} s"

    print()
    row("", cols)
    row("cluster start (not in wall)", [fmt(r["start"]) for r in results])
    row("worker warm-up: imports (not in wall)", [fmt(r["warm"]) for r in results])
    row("  of which slowest worker's imports", [fmt(r["warm_imports"]) for r in results])
    row("backfill wall time", [fmt(r["wall"]) for r in results])
    row("1-min load average before / after the run",
        [f"{r['load'][0]:.1f} / {r['load'][1]:.1f}" for r in results])
    base = results[0]["wall"]
    row("speed-up vs first column", [f"{base / r['wall']:.2f}x" for r in results])
    print()
    print("where the time goes (worker-side sums are over all workers):")
    for r in results:
        wk, lc = r["workers"], r["local"]
        compute_w, io_w, work_w = wk.get("compute", 0.0), wk.get("io", 0.0), wk.get("work", 0.0)
        r["other_w"] = max(0.0, work_w - compute_w - io_w)
        r["busy_w"] = work_w
        r["orch"] = r["wall"] - work_w / r["n"] - lc.get("compute", 0.0) - lc.get("io", 0.0)
    row("  compute, workers (calibrate/extract_group)",
        [fmt(r["workers"].get("compute", 0.0)) for r in results])
    for name in ("calibrate_group", "extract_group"):
        row(f"    {name}", [fmt(r["workers"].get(f"compute:{name}", 0.0)) for r in results])
    row("  I/O, workers (Store)", [fmt(r["workers"].get("io", 0.0)) for r in results])
    row("  other task work, workers (FITS, kernels)", [fmt(r["other_w"]) for r in results])
    row("  = stage work on workers", [fmt(r["busy_w"]) for r in results])
    row("  stage work / N workers (ideal wall share)",
        [fmt(r["busy_w"] / r["n"]) for r in results])
    row("  compute, flow process (build_catalog)",
        [fmt(r["local"].get("compute", 0.0)) for r in results])
    row("  I/O, flow process (manifests, publish, QA)",
        [fmt(r["local"].get("io", 0.0)) for r in results])
    row("  orchestration + idle = wall - the above", [fmt(r["orch"]) for r in results])
    row("  orchestration + idle share of wall", [f"{100 * r['orch'] / r['wall']:.0f} %"
                                                 for r in results])
    row("  worker utilisation (work / (N x wall))",
        [f"{100 * r['busy_w'] / (r['n'] * r['wall']):.0f} %" for r in results])
    print()
    print("per stage task (calibrate-groups / extract-groups):")
    row("  task runs", [str(len(r["task_runs"])) for r in results])
    row("  mean task-run duration (API)",
        [fmt(sum(r["task_runs"]) / max(1, len(r["task_runs"]))) for r in results])
    row("  mean stage work inside a task",
        [fmt(sum(r["work_calls"]) / max(1, len(r["work_calls"]))) for r in results])
    row("  mean per-task overhead (engine, results)",
        [fmt((sum(r["task_runs"]) - sum(r["work_calls"])) / max(1, len(r["task_runs"])))
         for r in results])
    row("  all task runs / flow runs of the backfill",
        [f"{r['n_task_runs']} / {r['n_flow_runs']}" for r in results])
    print()
    row("calibrated frames", [str(r["n_frames"]) for r in results])
    row("stage work per frame (calibrate + extract)",
        [f"{r['busy_w'] / max(1, r['n_frames']):.2f} s" for r in results])
    row("peak RSS of a Dask worker process", [f"{r['worker_rss']:.0f} MB" for r in results])
    row("peak RSS of the flow process (+ client)", [f"{r['local_rss']:.0f} MB"
                                                    for r in results])
    row("hotspots in the published catalog", [str(r["n_hotspots"]) for r in results])
    row("catalog version published last", [r["version"] for r in results])
    same_stage = all(len({r[k] for r in results}) == 1 for k in ("detections", "frames"))
    print(f"stage outputs (frame and detection tables) identical across runs: "
          f"{'yes' if same_stage else 'NO'}")
    same = len({r["catalog"] for r in results}) == 1
    print(f"published catalogs identical across runs: {'yes' if same else 'no'}")
    if not same:
        a = results[0]["catalog_df"]
        for r in results[1:]:
            b = r["catalog_df"]
            cols = [c for c in a.columns if c in b.columns and len(a) == len(b)
                    and not a[c].equals(b[c])]
            print(f"  columns differing from the first run ({r['n']} workers): "
                  f"{', '.join(cols) or 'row count'}")
        print("  (the backfill publishes after each perijove, from concurrent subflows: the "
              "order of those\n   intermediate versions, which the final catalog's ids "
              "build on, depends on which perijove\n   finishes first)")
    if not same_stage:
        raise SystemExit("stage outputs differ between runs")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="output of `iovolc simulate` "
                   "(default: simulate --perijoves into a temporary folder)")
    p.add_argument("--perijoves", default="40-43", help="contiguous range A-B (distant "
                   "passes; default 40-43)")
    p.add_argument("--frames-per-pass", type=int, default=16)
    p.add_argument("--workers", default="1,2", help="Dask worker counts to compare")
    p.add_argument("--max-concurrent", type=int, default=2,
                   help="perijoves in flight in the backfill (default 2)")
    p.add_argument("--seed", type=int, default=_common.SEED)
    args = p.parse_args()
    _common.print_command()
    pjs = parse_range(args.perijoves)
    if pjs != list(range(pjs[0], pjs[-1] + 1)):
        raise SystemExit("--perijoves must be a contiguous range (backfill takes first..last)")
    counts = [int(x) for x in args.workers.split(",")]
    print(f"machine: {os.cpu_count()} cores (load average now {os.getloadavg()[0]:.1f}: "
          f"other processes share them); Prefect: temporary local server (SQLite); "
          f"Dask: LocalCluster, 1 thread per worker process; backfill: local subflows, "
          f"max_concurrent={args.max_concurrent}")

    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["IOVOLC_PROCESSES"] = "0"  # publish/ingest in this process (timed)
    os.environ.pop("IOVOLC_DASK_ADDRESS", None)
    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory(prefix="iovolc-bench-") as tmp:
        work = Path(tmp)
        data = args.data or simulate(work / "sim", pjs, args.frames_per_pass, args.seed)
        os.environ["IOVOLC_CACHE_DIR"] = str(work / "cache")
        t0 = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=180):
            print(f"prefect server up in {time.perf_counter() - t0:.1f} s")
            from flows.params import IngestParams, Sources
            from flows.stages import ingest_downlink

            base = work / "base-store"
            t1 = time.perf_counter()
            res = ingest_downlink(IngestParams(perijoves=pjs, sources=Sources(
                archive_url=(data / "archive").as_uri(),
                kernels_url=(data / "kernels").as_uri(), store_url=base.as_uri())))
            print(f"ingested {res['ingested']} products of PJ{pjs[0]}-{pjs[-1]} once "
                  f"(not timed below): {time.perf_counter() - t1:.1f} s")
            install_timers()
            results = []
            for n in counts:
                print(f"running: Dask {n} worker(s) ...", flush=True)
                results.append(run_one(n, base=base, data=data, work=work, pjs=pjs,
                                       max_concurrent=args.max_concurrent))
        report(results)


if __name__ == "__main__":
    main()
