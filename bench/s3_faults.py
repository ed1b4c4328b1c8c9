"""S3 faults: the pipeline's wall time fault-free vs. with 20 % of S3 requests faulted.

In one run, on 127.0.0.1 only:

1. starts SeaweedFS (``weed mini`` from the venv, one access key: every
   request is signed) and, in front of it, the fault proxy of
   ``bench/_faultproxy.py``: each request is faulted with probability
   ``--p-fault`` (default 0.20), half of the faults **failed** (500
   InternalError or 503 SlowDown) and half **dropped** (connection closed or
   reset after the request was read, no response). Hangs are not in the mix
   (see ``bench/_faultproxy.py``);
2. simulates a PJ57 downlink (``scenario_for([57], seed=0,
   frames_per_pass=12)``) and uploads ``archive/`` and ``kernels/`` to the
   bucket directly (not through the proxy);
3. runs the real pipeline twice, ``iovolc run --perijove 57`` in a subprocess
   (Prefect local mode, fresh ``PREFECT_HOME`` and ``IOVOLC_CACHE_DIR``
   each), with archive, kernels and store all on S3: first with the endpoint
   = SeaweedFS directly (fault-free), then with the endpoint = the proxy
   (faulty), each into its own store prefix;
4. prints the wall times side by side, their ratio, the proxy's request and
   fault counts, and whether the two stores are identical: every object's key
   and sha256, with any difference listed and explained: Prefect's result
   records (``prefect-results/``) are named by a cache key over inputs that
   include the store URL and endpoint, and carry run metadata; they are paired
   by their payload, which must be identical. Everything else must be
   byte-identical.

Everything started is stopped at the end, also on error, Ctrl-C or SIGTERM.

Run: ``uv run python bench/s3_faults.py [--p-fault 0.2] [--seed 0] [--keep]``
(~3-5 min here: two pipeline runs of ~55-110 s each, plus simulation and set-up).
The client's retry and timeout settings measured here are in
``iovolc/s3retry.py``; the numbers are in ``docs/decisions.md``, "S3 retries
and timeouts (issue 10)".
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _faultproxy import FaultProxy, ProxyStats, seaweedfs, stop_tree

PERIJOVE = 57
SIM_SEED = 0
FRAMES_PER_PASS = 12


def _sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt(f"signal {signum}")


def simulate(out: Path) -> float:
    code = ("import sys; from pathlib import Path; from iovolc.sim.downlink import simulate; "
            "from iovolc.sim.scenario import scenario_for; "
            f"simulate(scenario_for([{PERIJOVE}], seed={SIM_SEED}, "
            f"frames_per_pass={FRAMES_PER_PASS}), out_dir=Path(sys.argv[1]), seed={SIM_SEED})")
    t0 = time.perf_counter()
    # cwd: not the repository (``-c`` puts the cwd first on sys.path, before --code)
    run_child([sys.executable, "-c", code, str(out)], env=dict(os.environ), cwd=out.parent,
              log=out.parent / "simulate.log")
    return time.perf_counter() - t0


def run_child(cmd: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> float:
    """Run ``cmd`` in its own session; wall seconds. Stops its whole tree if
    interrupted; fails with the log tail on a non-zero exit."""
    t0 = time.perf_counter()
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        rc = proc.wait()
    except BaseException:
        stop_tree(proc)
        raise
    wall = time.perf_counter() - t0
    if rc != 0:
        text = log.read_text(errors="replace")
        raise SystemExit(f"command failed (exit {rc}): {shlex.join(cmd)}\n"
                         f"--- last lines of {log} ---\n{text[-6000:]}")
    return wall


def run_pipeline(name: str, *, endpoint: str, bucket: str, s3_env: dict[str, str],
                 workdir: Path) -> float:
    home = workdir / name
    (home / "prefect").mkdir(parents=True)
    (home / "cache").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "PREFECT_", "IOVOLC_"))}
    env.update(s3_env)
    env.update(PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               IOVOLC_CACHE_DIR=str(home / "cache"), PYTHONUNBUFFERED="1",
               # a fresh SQLite database is migrated at start: slow on a busy machine
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300")
    cmd = [sys.executable, "-m", "iovolc.cli", "run", "--perijove", str(PERIJOVE),
           "--archive", f"s3://{bucket}/dl/archive", "--kernels", f"s3://{bucket}/dl/kernels",
           "--store", f"s3://{bucket}/{name}", "--s3-endpoint", endpoint]
    print(f"  $ iovolc run --perijove {PERIJOVE} --archive s3://{bucket}/dl/archive "
          f"--kernels s3://{bucket}/dl/kernels --store s3://{bucket}/{name} "
          f"--s3-endpoint {endpoint}", flush=True)
    # cwd: an empty folder, so no iovolc.toml is picked up
    load = os.getloadavg()[0]
    wall = run_child(cmd, env=env, cwd=home, log=home / "run.log")
    print(f"    {wall:.1f} s (load average {load:.1f} before, {os.getloadavg()[0]:.1f} after; "
          f"{os.cpu_count()} cores)", flush=True)
    return wall


# --- store comparison --------------------------------------------------------------
def snapshot(fs, root: str) -> dict[str, bytes]:
    """key -> bytes of every object under ``root`` (read directly, no proxy)."""
    fs.invalidate_cache()
    return {p[len(root) + 1:]: fs.cat_file(p) for p in sorted(fs.find(root))}


def _json_diff(a, b, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'faulty' if k not in a else 'fault-free'}")
            else:
                out += _json_diff(a[k], b[k], f"{path}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _json_diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path or '/'}: {_short(a)} vs {_short(b)}"]


def _short(v) -> str:
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def explain(key: str, a: bytes, b: bytes) -> str:
    """What differs between two versions of one object."""
    if key.endswith(".json") or a[:1] in (b"{", b"["):
        try:
            diffs = _json_diff(json.loads(a), json.loads(b))
        except ValueError:
            diffs = None
        if diffs is not None:
            return "JSON fields differ: " + "; ".join(diffs[:6]) + (
                f" (+{len(diffs) - 6} more)" if len(diffs) > 6 else "")
    if key.endswith(".parquet"):
        import pandas as pd

        ta, tb = pd.read_parquet(io.BytesIO(a)), pd.read_parquet(io.BytesIO(b))
        try:
            pd.testing.assert_frame_equal(ta, tb, check_exact=True)
            return "Parquet bytes differ, tables equal"
        except AssertionError as exc:
            return "Parquet tables differ: " + str(exc).splitlines()[0]
    return f"{len(a)} vs {len(b)} bytes"


RESULTS = "prefect-results/"


def _records(objs: dict[str, bytes], keys: list[str]) -> dict[str, tuple[str, dict]]:
    """Prefect result records among ``keys``: payload -> (key, metadata)."""
    out = {}
    for k in keys:
        if k.startswith(RESULTS):
            try:
                rec = json.loads(objs[k])
                out[rec["result"]] = (k, rec.get("metadata", {}))
            except (ValueError, KeyError, TypeError):
                pass
    return out


def compare(free: dict[str, bytes], faulty: dict[str, bytes]) -> tuple[list[str], bool, bool]:
    """(report lines, data objects identical, catalog/ identical).

    "Data objects" are all but Prefect's result records (``prefect-results/``):
    those are named by the task's cache key, a hash of the task's inputs,
    which include the run's store URL and S3 endpoint, and their metadata
    holds the run's expiry time and the id of the result-storage block saved
    in that run's own Prefect database. They are paired here by payload.
    """
    sha = {name: {k: hashlib.sha256(v).hexdigest() for k, v in objs.items()}
           for name, objs in (("free", free), ("faulty", faulty))}
    only_free = sorted(set(free) - set(faulty))
    only_faulty = sorted(set(faulty) - set(free))
    both = sorted(set(free) & set(faulty))
    differ = [k for k in both if sha["free"][k] != sha["faulty"][k]]
    lines = [f"objects: {len(free)} fault-free, {len(faulty)} faulty; {len(both)} keys in both, "
             f"{len(both) - len(differ)} of them with equal sha256"]
    rec_free, rec_faulty = _records(free, only_free), _records(faulty, only_faulty)
    paired = sorted(set(rec_free) & set(rec_faulty), key=lambda r: rec_free[r][0])
    paired_keys = {rec_free[r][0] for r in paired} | {rec_faulty[r][0] for r in paired}
    if paired:
        fields = sorted({d.split(":")[0].lstrip("/") for r in paired
                         for d in _json_diff(rec_free[r][1], rec_faulty[r][1])})
        lines.append(f"{len(paired)} Prefect result records differ only in name and metadata "
                     f"({', '.join(fields) or 'none'}), with byte-identical payloads:")
        for r in paired:
            lines.append(f"  {rec_free[r][0]} (fault-free) = {rec_faulty[r][0]} (faulty)")
        lines.append("  (name = the task's cache key, a hash of inputs that hold the run's store "
                     "URL and endpoint; expiration = run time + 30 d; storage_block_id = the "
                     "block saved in the run's own Prefect database)")
    for k in only_free:
        if k not in paired_keys:
            lines.append(f"only fault-free: {k}")
    for k in only_faulty:
        if k not in paired_keys:
            lines.append(f"only faulty:     {k}")
    for k in differ:
        lines.append(f"differs: {k}: {explain(k, free[k], faulty[k])}")
    unexplained = [k for k in only_free + only_faulty + differ if k not in paired_keys]
    data_ok = not unexplained and any(not k.startswith(RESULTS) for k in both)
    catalog_ok = not any(k.startswith("catalog/") for k in unexplained) \
        and any(k.startswith("catalog/") for k in both)
    return lines, data_ok, catalog_ok


def stage_seconds(log: Path) -> float | None:
    """From the first flow run's start to the temporary API's stop (log timestamps):
    the run without interpreter start-up and the temporary Prefect server's start."""
    start = end = None
    for line in log.read_text(errors="replace").splitlines():
        stamp = line[:12]
        if start is None and "Beginning flow run" in line:
            start = stamp
        if "Stopping temporary server" in line:
            end = stamp
    if start is None or end is None:
        return None

    def secs(t: str) -> float:
        h, m, s = t.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    return (secs(end) - secs(start)) % 86400


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--p-fault", type=float, default=0.20,
                    help="probability that a request is failed or dropped (half each)")
    ap.add_argument("--seed", type=int, default=0, help="fault proxy seed")
    ap.add_argument("--faulty-first", action="store_true",
                    help="run the faulty run first (the second run of a pair tends to be a few "
                         "seconds faster: warm caches)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    ap.add_argument("--code", type=Path, default=None,
                    help="run the simulator and the pipeline from this checkout instead (put "
                         "first on PYTHONPATH), e.g. `git archive COMMIT | tar -x -C DIR` of a "
                         "commit with another S3 client configuration")
    args = ap.parse_args()
    print("$ python " + shlex.join(sys.argv), flush=True)
    if args.code is not None:
        if not (args.code / "iovolc" / "cli.py").is_file():
            raise SystemExit(f"--code {args.code}: no iovolc/cli.py there")
        code = str(args.code.resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [code] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
        print(f"code: {code} (PYTHONPATH)")
    signal.signal(signal.SIGTERM, _sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="iovolc-s3faults-"))
    try:
        with seaweedfs(workdir) as s3, \
                FaultProxy(("127.0.0.1", s3.port), p_fault=args.p_fault, seed=args.seed) as proxy:
            print(f"SeaweedFS {s3.endpoint_url}; fault proxy {proxy.url} "
                  f"(p_fault={args.p_fault}: half failed 500/503, half dropped; seed {args.seed})")
            sim_s = simulate(workdir / "downlink")
            fs = s3.fs()
            t0 = time.perf_counter()
            for part in ("archive", "kernels"):
                fs.put(str(workdir / "downlink" / part), f"{s3.bucket}/dl/{part}", recursive=True)
            n_up = len(fs.find(f"{s3.bucket}/dl"))
            print(f"downlink: PJ{PERIJOVE}, {FRAMES_PER_PASS} frames per pass, seed {SIM_SEED} "
                  f"(simulated in {sim_s:.0f} s); {n_up} objects uploaded directly in "
                  f"{time.perf_counter() - t0:.1f} s")
            print("runs" + (" (faulty first)" if args.faulty_first else "") + ":")

            def free_run() -> tuple[float, ProxyStats]:
                proxy.reset()
                wall = run_pipeline("run-faultfree", endpoint=s3.endpoint_url,
                                    bucket=s3.bucket, s3_env=s3.env, workdir=workdir)
                return wall, proxy.reset()  # no request should reach the proxy

            def faulty_run() -> tuple[float, ProxyStats]:
                proxy.reset()
                wall = run_pipeline("run-faulty", endpoint=proxy.url, bucket=s3.bucket,
                                    s3_env=s3.env, workdir=workdir)
                return wall, proxy.reset()

            if args.faulty_first:
                wall_faulty, stats = faulty_run()
                wall_free, stray = free_run()
            else:
                wall_free, stray = free_run()
                wall_faulty, stats = faulty_run()
            free = snapshot(fs, f"{s3.bucket}/run-faultfree")
            faulty = snapshot(fs, f"{s3.bucket}/run-faulty")
        lines, data_ok, catalog_ok = compare(free, faulty)
        identical = free.keys() == faulty.keys() and all(free[k] == faulty[k] for k in free)
        ratio = wall_faulty / wall_free
        st_free = stage_seconds(workdir / "run-faultfree" / "run.log")
        st_faulty = stage_seconds(workdir / "run-faulty" / "run.log")
        w = 30
        print()
        print(f"{'':{w}s}{'fault-free':>14s}{'faulty':>14s}")
        print(f"{'endpoint':{w}s}{'SeaweedFS':>14s}{'fault proxy':>14s}")
        print(f"{'wall time (s)':{w}s}{wall_free:14.1f}{wall_faulty:14.1f}")
        print(f"{'ratio faulty / fault-free':{w}s}{'':14s}{ratio:14.2f}   "
              f"({'within' if ratio <= 2 else 'NOT within'} 2x)")
        if st_free and st_faulty:
            print(f"{'  stages only (s)':{w}s}{st_free:14.1f}{st_faulty:14.1f}   "
                  f"(ratio {st_faulty / st_free:.2f}; first flow run to the temporary "
                  f"API's stop)")
        print(f"{'requests seen by the proxy':{w}s}{stray.requests:14d}{stats.requests:14d}")
        print(f"{'  forwarded to SeaweedFS':{w}s}{'':14s}{stats.forwarded:14d}")
        print(f"{'  faults injected':{w}s}{'':14s}{stats.faults:14d}   "
              f"({stats.faults / max(stats.requests, 1):.1%} of requests)")
        print(f"{'    failed 500 / 503':{w}s}{'':14s}{stats.failed_500:>7d} / {stats.failed_503:<4d}")
        print(f"{'    dropped close / reset':{w}s}{'':14s}{stats.dropped_close:>7d} / "
              f"{stats.dropped_reset:<4d}")
        print(f"{'  client connections':{w}s}{'':14s}{stats.connections:14d}")
        print()
        print("stores (every object's key and sha256, read directly from SeaweedFS):")
        for line in lines:
            print("  " + line)
        print(f"  whole stores byte-identical: {'yes' if identical else 'no'}; data objects "
              f"(all but {RESULTS}) byte-identical: {'yes' if data_ok else 'NO'}; "
              f"catalog/ byte-identical: {'yes' if catalog_ok else 'NO'}")
        return 0 if data_ok and catalog_ok else 1
    except KeyboardInterrupt:
        print("interrupted; stopping everything started", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
