"""What a perijove run's stage subflows cost Prefect: subflows against inline stage bodies.

A backfill's perijove runs call the ingest, calibrate and extract flows'
bodies inline (``PerijoveParams.stage_subflows=False``) instead of as three
subflow runs (docs/decisions.md, "Backfill"). This measures the difference
on Prefect alone, with no stage work: ``--runs`` perijove-like flow runs
(``--concurrent`` at once, in threads, as the local backfill runs them), each
calling three stage flows of ``--tasks`` trivial tasks (10 ms sleeps), once
as subflows and once inline, alternating, ``--repeats`` times, against a
temporary Prefect API (``prefect_test_harness``, SQLite). Printed per
variant: wall time, CPU of this (flow) process and of the temporary server.

Run: ``uv run python bench/subflow_cost.py [--runs 40] [--repeats 2]``
(~3 min on 2 cores).
"""

from __future__ import annotations

import argparse
import contextvars
import os
import time
from concurrent.futures import ThreadPoolExecutor

import _common


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=40, help="perijove-like runs per variant")
    p.add_argument("--concurrent", type=int, default=6, help="runs at once")
    p.add_argument("--tasks", type=int, default=2, help="trivial tasks per stage")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    _common.print_command()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from prefect import flow, task
    from prefect.testing.utilities import prefect_test_harness

    @task
    def work(i: int) -> int:
        time.sleep(0.01)
        return i

    @flow(name="stage")
    def stage(n: int) -> int:
        return sum(f.result() for f in [work.submit(i) for i in range(n)])

    @flow(name="perijove")
    def perijove(inline: bool, n: int) -> int:
        return sum(stage.fn(n) if inline else stage(n) for _ in range(3))

    @flow(name="backfill-like")
    def top(inline: bool, runs: int, concurrent: int, n: int) -> None:
        ctxs = [contextvars.copy_context() for _ in range(runs)]
        with ThreadPoolExecutor(concurrent) as pool:
            list(pool.map(lambda c: c.run(perijove, inline, n), ctxs))

    rows: dict[str, list[tuple[float, float, float]]] = {"subflows": [], "inline": []}
    with prefect_test_harness(server_startup_timeout=120):
        top(True, 2, 2, args.tasks)  # warm: the flows registered, the engine imported
        for _ in range(args.repeats):
            for name, inline in (("subflows", False), ("inline", True)):
                c0, s0, t0 = time.process_time(), _common.children_cpu(), time.perf_counter()
                top(inline, args.runs, args.concurrent, args.tasks)
                rows[name].append((time.perf_counter() - t0, time.process_time() - c0,
                                   _common.children_cpu() - s0))
    print(f"\n{args.runs} perijove-like runs ({args.concurrent} at once), 3 stages of "
          f"{args.tasks} trivial tasks each; best of {args.repeats}")
    print(f"{'stages as':>10} {'wall s':>8} {'flow CPU s':>11} {'server CPU s':>13} "
          f"{'CPU per run s':>14}")
    best = {}
    for name, r in rows.items():
        wall, flow_cpu, server_cpu = (min(x[i] for x in r) for i in range(3))
        best[name] = flow_cpu + server_cpu
        print(f"{name:>10} {wall:>8.1f} {flow_cpu:>11.1f} {server_cpu:>13.1f} "
              f"{(flow_cpu + server_cpu) / args.runs:>14.3f}")
    print(f"subflows cost {(best['subflows'] - best['inline']) / args.runs:.3f} s of CPU "
          f"per perijove more than inline stages ({best['subflows'] / best['inline']:.2f}x)")


if __name__ == "__main__":
    main()
