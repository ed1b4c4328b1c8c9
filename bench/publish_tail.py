"""The publish stage (the backfill's serial tail) of this tree against a baseline commit, side by side.

A backfill publishes one catalog version after its last perijove: every
perijove's detections read, the catalog built, every file of the version
written (``tasks.work.publish``). While it runs the other workers are idle, so
its wall time adds to the mission's. This bench runs that publish on the
results of a finished backfill (``bench/mission_backfill.py --workdir DIR``
keeps them in ``DIR/store``), once per tree per repeat, alternating baseline
and current, each in a fresh subprocess that imports ``iovolc`` and ``tasks``
from its own tree (the baseline is a ``git worktree`` in a temporary folder),
each into its own copy of the store's ``results/`` (no earlier version, so
both write version v0001).

Printed: the best wall and CPU time per tree, the ratio, and whether the two
versions' files are the same bytes (each file's sha256 from the manifest,
except ``manifest.json`` and ``catalog.html``, which name the
pipeline version).

Run: ``uv run python bench/publish_tail.py --store DIR/store [--baseline COMMIT] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _common

REPO = Path(__file__).resolve().parents[1]
#: stop 30's code: before the cluster merge on arrays and the maps' encoding thread
BASELINE = "bc7e9f8"
_CHILD = """
import json, sys, time
from iovolc.settings import Settings
from tasks.work import publish
t, c = time.perf_counter(), time.process_time()
res = publish(Settings(store_url=sys.argv[1]), config_hash="bench")
print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c,
                  "files": res["files"], "n_rows": res["n_rows"]}))
"""


def run_publish(tree: Path, results: Path, work: Path) -> dict:
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(results, store / "results")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(store)], cwd=tree, env=env,
                         check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    manifest = json.loads((store / res["files"]["manifest.json"]).read_bytes())
    res["sha"] = {n: v["sha256"] for n, v in manifest["files"].items()}
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, required=True,
                   help="a backfill's store (bench/mission_backfill.py --workdir DIR: DIR/store)")
    p.add_argument("--baseline", default=BASELINE)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    _common.print_command()
    results = args.store / "results"
    if not results.is_dir():
        raise SystemExit(f"--store {args.store}: no results/ (run bench/mission_backfill.py "
                         "--workdir DIR first)")
    with tempfile.TemporaryDirectory(prefix="iovolc-publish-") as tmp:
        tmp = Path(tmp)
        base = tmp / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.baseline],
                       cwd=REPO, check=True, capture_output=True)
        try:
            runs = {"baseline": [], "current": []}
            for _ in range(args.repeats):
                runs["baseline"].append(run_publish(base, results, tmp / "b"))
                runs["current"].append(run_publish(REPO, results, tmp / "c"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO,
                           check=False, capture_output=True)
    b, c = runs["baseline"], runs["current"]
    print(f"catalog rows: {b[0]['n_rows']} (baseline) {c[0]['n_rows']} (current); "
          f"best of {args.repeats}, alternating")
    for what in ("wall", "cpu"):
        tb, tc = min(r[what] for r in b), min(r[what] for r in c)
        print(f"publish {what:4s}: baseline {tb:6.2f} s  current {tc:6.2f} s  {tb / tc:5.2f}x")
    skip = {"manifest.json", "catalog.html"}
    names = sorted(set(b[0]["sha"]) | set(c[0]["sha"]))
    differ = [n for n in names if n not in skip and b[0]["sha"].get(n) != c[0]["sha"].get(n)]
    print(f"files compared: {len(names) - len(skip & set(names))}; "
          + ("all the same bytes" if not differ else f"DIFFERENT: {', '.join(differ)}"))


if __name__ == "__main__":
    main()
