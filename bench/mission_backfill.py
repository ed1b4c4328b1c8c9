"""Mission-scale backfill on this machine: every perijove of a simulated mission, one run.

Simulates (or reuses, ``--data``) a mission downlink -- an Io pass at every
perijove 5-75, RDR products only (the pipeline prefers RDRs; EDRs would only
be landed) -- then runs the ``backfill`` flow over all of it, in local
subflows (at most ``--max-concurrent`` perijoves at once) against a
temporary Prefect API (``prefect_test_harness``, SQLite), with the stage work
in a pool of ``IOVOLC_PROCESSES`` processes (default: the machine's cores).
One catalog version is published at the end.

Printed, all from this one run:

* frames (how many look at Io, how many at Jupiter), wall time, frames/s,
  and the extrapolation to the real archive's 85,000 frames at the measured
  rate and this mix (``--io-share``: the share of frames that look at Io;
  default 1, every frame; most real frames are of Jupiter);
* **linearity**: the wall time at which 1k, 4k, 16k, ... frames were done
  (perijove runs' end times against the cumulative frames of the perijoves
  done), and the seconds per 1,000 frames over each interval;
* **orchestration share**: 1 - (stage work / processes) / wall, where stage
  work is the time measured *inside* the worker processes around each stage
  call (``tasks.stages.run_in_process``); what remains is Prefect's
  bookkeeping (flow/task runs against the API, result records), the
  publish, and idle workers; with the CPU time of the flow process and of
  the temporary Prefect server (both share the machine's cores with the
  workers), the number of stage calls per stage, and how long 0, 1, ...
  workers were busy (each call spans its worker time before its return);
* the store size per 1,000 frames.

With ``--frames-per-task A,B`` (the backfill's batch size, stop 24), the backfill
runs once per size on the same downlink, one after the other (each with its own
kernel cache and fresh worker processes, into its own store), and a table puts
them side by side with whether they published the same catalog, hotspots and
detections (``check_exact``).

Run: ``uv run python bench/mission_backfill.py [--frames 20000] [--io-share 1]
[--data DIR] [--frames-per-task 48,300]``
(~20,000 frames take tens of minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common

REAL_ARCHIVE_FRAMES = 85_000
_WORK: list[tuple[str, float, float]] = []  # (stage, seconds in the worker, parent clock at return)
_LOCK = threading.Lock()


def _install_work_timer() -> None:
    """Wrap tasks.stages.run_in_process so each stage call reports its time in the worker."""
    from tasks import stages

    def run_in_process(fn, *args, timeout_s: float = 3600.0, **kwargs):
        if os.environ.get("IOVOLC_PROCESSES") == "0":
            out, dt = _common.timed_call(fn, *args, **kwargs)
        else:
            fut = stages.process_pool().submit(_common.timed_call, fn, *args, **kwargs)
            out, dt = fut.result(timeout=timeout_s)
        with _LOCK:
            _WORK.append((fn.__name__, dt, time.perf_counter()))
        return out

    stages.run_in_process = run_in_process


def _busy_profile(t0: float, wall: float, processes: int) -> list[float]:
    """Seconds of the wall during which 0, 1, ... ``processes`` workers were busy
    (each stage call spans [return - its worker time, return] on the parent's clock)."""
    events = sorted([(end - dt - t0, 1) for _, dt, end in _WORK]
                    + [(end - t0, -1) for _, dt, end in _WORK])
    out = [0.0] * (processes + 1)
    busy, prev = 0, 0.0
    for t, step in events:
        t = min(max(t, 0.0), wall)
        out[min(busy, processes)] += t - prev
        busy, prev = busy + step, t
    out[0] += wall - prev
    return out


def _new_pool() -> None:
    """Shut the stage workers down: the next stage call starts fresh ones (nothing kept
    in memory from a run before: kernel hashes, verifications, loaded code)."""
    from tasks import stages

    if stages._POOL is not None:
        stages._POOL.shutdown(wait=True)
        stages._POOL = None


def _other_children_cpu() -> float:
    """CPU seconds of this process's children that are not stage workers: the temporary
    Prefect server (Linux /proc; 0 elsewhere)."""
    from tasks import stages

    return _common.children_cpu(
        exclude=(stages._POOL._processes or {}) if stages._POOL else ())


def simulate(out: Path, frames: int, seed: int, workers: int, perijoves: str | None,
             io_share: float = 1.0) -> Path:
    import subprocess

    from iovolc.sim.scenario import CLOSE_FLYBYS, MISSION_PERIJOVES

    if perijoves:  # a smaller range (smoke runs)
        a, b = (int(x) for x in perijoves.split("-"))
        which, pjs = ["--perijove", perijoves], range(a, b + 1)
    else:
        which, pjs = ["--mission"], MISSION_PERIJOVES
    # the close flybys deliver far fewer frames than designed (Io crosses the
    # field fast): the distant passes carry the count, so that at least `frames` exist
    n = max(1, sum(pj not in CLOSE_FLYBYS for pj in pjs))
    fpp = math.ceil(frames / n)
    cmd = [sys.executable, "-m", "iovolc.cli", "simulate", *which, "--frames-per-pass",
           str(fpp), "--products", "RDR", "--out", str(out), "--seed", str(seed),
           "--workers", str(workers), "--io-share", str(io_share)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"simulated: {' '.join(cmd[2:])} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def _frames_per_perijove(data: Path) -> tuple[dict[int, int], int]:
    """Frames per perijove, and how many of all look at Io (not at Jupiter)."""
    import pandas as pd

    f = pd.read_csv(data / "truth" / "frames.csv",
                    usecols=["perijove", "target_name", "io_in_view"])
    if ((f["target_name"] == "JUPITER") & f["io_in_view"].astype(bool)).any():
        print("NOTE: some frames aimed at Jupiter have Io in view (truth)", flush=True)
    return ({int(k): int(v) for k, v in f["perijove"].value_counts().items()},
            int((f["target_name"] != "JUPITER").sum()))


def _perijove_end_times(start) -> dict[int, float]:
    """{perijove: seconds after ``start`` its process-perijove run ended}."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    out, runs = {}, []
    with get_client(sync_client=True) as client:
        while True:  # every page: 71 perijoves are ~210 flow runs with their subflows
            page = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                start_time=FlowRunFilterStartTime(after_=start)), limit=200, offset=len(runs))
            runs += page
            if len(page) < 200:
                break
    for r in runs:  # a perijove run again after an API error has several runs: the last
        if r.name.startswith("pj[") and r.end_time is not None:
            pjs = json.loads(r.name[2:])
            if len(pjs) == 1:
                t = (r.end_time - start).total_seconds()
                out[int(pjs[0])] = max(t, out.get(int(pjs[0]), t))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20_000, help="frames to simulate (mission)")
    p.add_argument("--data", type=Path, default=None, help="reuse an `iovolc simulate "
                   "--mission` output instead of simulating")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--perijoves", default=None, help="A-B instead of the whole mission "
                   "(smoke runs)")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="perijoves at once (default: the backfill flow's default)")
    p.add_argument("--io-share", type=float, default=1.0,
                   help="share of the frames that look at Io; the rest look at Jupiter, "
                        "as most of the real archive does (Perry et al. 2025: 2,374 Io "
                        "images PJ5-PJ55; the archive has ~85,000 imager frames)")
    p.add_argument("--stage-subflows", action="store_true",
                   help="each perijove's stages as subflow runs (BackfillParams."
                        "stage_subflows; default: inline, their tasks in the perijove's run)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the store here")
    p.add_argument("--frames-per-task", default=None, help="BackfillParams.frames_per_task "
                   "(default: the backfill's); a comma list (48,300) runs the backfill once "
                   "per value, one after the other, and prints them side by side with "
                   "whether the catalogs are the same")
    args = p.parse_args()
    _common.print_command()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("IOVOLC_PROCESSES", str(os.cpu_count() or 2))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="iovolc-mission-"))
    work.mkdir(parents=True, exist_ok=True)
    data = args.data or simulate(work / "sim", args.frames, args.seed,
                                 int(os.environ["IOVOLC_PROCESSES"]), args.perijoves,
                                 args.io_share)
    per_pj, n_io = _frames_per_perijove(data)
    n_frames = sum(per_pj.values())
    pjs = sorted(per_pj)
    if n_frames < args.frames:
        print(f"NOTE: the downlink holds {n_frames} frames, fewer than the {args.frames} "
              "asked", flush=True)
    os.environ["IOVOLC_CACHE_DIR"] = str(work / "cache")
    _install_work_timer()

    from flows.params import BACKFILL_FRAMES_PER_TASK, BackfillParams

    if args.max_concurrent is None:
        args.max_concurrent = BackfillParams().max_concurrent
    sizes = [int(x) for x in (args.frames_per_task or str(BACKFILL_FRAMES_PER_TASK)).split(",")]
    if len(set(sizes)) != len(sizes):
        p.error(f"--frames-per-task {args.frames_per_task}: each size once (a run per size)")
    runs = []
    for size in sizes:
        store = work / ("store" if len(sizes) == 1 else f"store-{size}")
        if len(sizes) > 1:
            # each run from the same start: its own kernel cache, fresh worker processes
            print(f"\n=== frames per task {size} ===", flush=True)
            os.environ["IOVOLC_CACHE_DIR"] = str(work / f"cache-{size}")
            _new_pool()
        runs.append(_run(args, data, pjs, per_pj, n_frames, n_io, store, size))
    if len(sizes) > 1:
        _side_by_side(runs, n_frames)


def _run(args, data: Path, pjs: list[int], per_pj: dict[int, int], n_frames: int, n_io: int,
         store: Path, frames_per_task: int) -> dict:
    """One backfill of the whole downlink into ``store``; prints its report."""
    from datetime import UTC, datetime

    from prefect.testing.utilities import prefect_test_harness

    from flows.backfill import backfill
    from flows.params import BackfillParams, Sources

    _WORK.clear()
    with prefect_test_harness(server_startup_timeout=120):
        start = datetime.now(UTC)
        server_cpu0 = _other_children_cpu()
        t0, cpu0 = time.perf_counter(), time.process_time()
        state = backfill(BackfillParams(
            first_perijove=pjs[0], last_perijove=pjs[-1], max_concurrent=args.max_concurrent,
            mode="subflows", stage_subflows=args.stage_subflows,
            frames_per_task=frames_per_task,
            sources=Sources(archive_url=(data / "archive").as_uri(),
                            kernels_url=(data / "kernels").as_uri(),
                            store_url=store.as_uri())), return_state=True)
        wall = time.perf_counter() - t0
        flow_cpu = time.process_time() - cpu0
        server_cpu = _other_children_cpu() - server_cpu0
        ends = _perijove_end_times(start)
    res = state.result()
    ok = sum(v == "Completed" for v in res["results"].values())
    processes = int(os.environ["IOVOLC_PROCESSES"])
    work_s = sum(dt for _, dt, _ in _WORK)
    by_stage: dict[str, float] = {}
    calls: dict[str, int] = {}
    for name, dt, _ in _WORK:
        by_stage[name] = by_stage.get(name, 0.0) + dt
        calls[name] = calls.get(name, 0) + 1
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())

    print(f"\nframes {n_frames} in {len(pjs)} perijoves; perijove runs completed {ok}/"
          f"{len(res['results'])}; processes {processes}, perijoves at once "
          f"{args.max_concurrent}")
    print(f"frames looking at Io {n_io} ({100 * n_io / n_frames:.1f} %), at Jupiter "
          f"{n_frames - n_io}")
    print(f"wall {wall:.0f} s  ->  {n_frames / wall:.2f} frames/s "
          f"({n_frames / wall / processes:.2f} frames/s/core)")
    print(f"extrapolated to {REAL_ARCHIVE_FRAMES:,} frames with this Io share "
          f"({100 * n_io / n_frames:.1f} %): "
          f"{REAL_ARCHIVE_FRAMES / (n_frames / wall) / 60:.0f} min on this machine")
    print(f"stage work inside the workers {work_s:.0f} s in {len(_WORK)} calls: "
          + ", ".join(f"{k} {v:.0f} s ({calls[k]})"
                      for k, v in sorted(by_stage.items(), key=lambda kv: -kv[1])))
    share = 1.0 - (work_s / processes) / wall
    print(f"orchestration + publish + idle share of wall: {100 * share:.1f} %")
    print(f"CPU of the flow process (Prefect's flow and task runs, the flow-side steps): "
          f"{flow_cpu:.0f} s ({100 * flow_cpu / processes / wall:.1f} % of the cores' time); "
          f"of the temporary Prefect server: {server_cpu:.0f} s "
          f"({100 * server_cpu / processes / wall:.1f} %)")
    prof = _busy_profile(t0, wall, processes)
    print("wall with 0, 1, ... workers busy: "
          + ", ".join(f"{k}: {v:.0f} s" for k, v in enumerate(prof)))
    print(f"store: {size / 1e9:.2f} GB, {size / 1e6 / (n_frames / 1000):.0f} MB per 1,000 frames")
    # linearity: wall at which cumulative frames crossed each mark
    done = sorted((t, pj) for pj, t in ends.items())
    cum, marks, out_rows = 0, [1000, 4000, 16000, n_frames], []
    for t, pj in done:
        cum += per_pj.get(pj, 0)
        while marks and cum >= marks[0]:
            out_rows.append((marks.pop(0), cum, t))
    print("\nlinearity (perijove runs in end-time order):")
    print(f"{'mark':>8} {'frames done':>12} {'wall s':>8} {'s per 1k frames':>16}")
    prev_f, prev_t = 0, 0.0
    for mark, f, t in out_rows:
        rate = (t - prev_t) / max(f - prev_f, 1) * 1000
        print(f"{mark:>8} {f:>12} {t:>8.0f} {rate:>16.1f}")
        prev_f, prev_t = f, t
    print(f"(publish of the single catalog version after the last perijove: "
          f"{wall - (done[-1][0] if done else 0):.0f} s)")

    return {"frames_per_task": frames_per_task, "wall": wall, "flow_cpu": flow_cpu,
            "server_cpu": server_cpu, "work_s": work_s, "calls": len(_WORK), "store": store}


def _side_by_side(runs: list[dict], n_frames: int) -> None:
    """The runs' figures in one table, and whether they published the same catalog."""
    import pandas as pd

    print("\nside by side (one run each, one after the other):")
    print(f"{'frames/task':>11} {'wall s':>7} {'frames/s':>9} {'85k min':>8} {'stage s':>8} "
          f"{'calls':>6} {'server CPU s':>13} {'flow CPU s':>11}")
    for r in runs:
        rate = n_frames / r["wall"]
        print(f"{r['frames_per_task']:>11} {r['wall']:>7.0f} {rate:>9.2f} "
              f"{REAL_ARCHIVE_FRAMES / rate / 60:>8.0f} {r['work_s']:>8.0f} {r['calls']:>6} "
              f"{r['server_cpu']:>13.0f} {r['flow_cpu']:>11.0f}")
    def latest(store: Path, name: str) -> Path:  # the version the run published last
        files = json.loads((store / "catalog" / "latest.json").read_text())["files"]
        return store / files[name]

    base = runs[0]
    for r in runs[1:]:
        same = []
        for name in ("catalog.parquet", "hotspots.parquet", "detections.parquet"):
            a = pd.read_parquet(latest(base["store"], name))
            b = pd.read_parquet(latest(r["store"], name))
            try:
                pd.testing.assert_frame_equal(a, b, check_exact=True)
                same.append(f"{name} identical ({len(a)} rows)")
            except AssertionError as exc:
                same.append(f"{name} DIFFERS: {str(exc).splitlines()[0]}")
        print(f"{r['frames_per_task']} vs {base['frames_per_task']} frames per task: "
              + "; ".join(same))


if __name__ == "__main__":
    main()
