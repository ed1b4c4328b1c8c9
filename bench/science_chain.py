"""Science-chain speed: this tree against a baseline commit, side by side in one run.

The in-memory chain of :func:`iovolc.pipeline.run_local` (read, calibrate,
register, geometry, extract, pass pointing, constellations/ties/transients,
catalog) runs on the same simulated downlink in a fresh subprocess per tree,
alternating baseline and current ``--repeats`` times (machines are shared and
noisy: each step keeps its fastest repeat). The baseline is a ``git worktree``
of ``--baseline`` in a temporary folder; each subprocess imports ``iovolc``
from its own tree (``PYTHONPATH``) with the same virtual environment, on one
thread (``OMP_NUM_THREADS=1`` etc.).

Per step, CPU ms per frame (``time.process_time`` inside the subprocess, each
step's own time, nested steps excluded), measured by wrapping functions that
exist in both trees; the product code is not changed:

* read: PDS3 label + image (``read_jiram_product``), not part of the chain;
* kernels: kernel sets found, then loaded into the pool around each stage;
* calibrate: ``calibrate_sequence`` (radiance, masks, radiation hits, cleaning);
* register: ``register_frame`` (every limb fit: each frame's wide one, the
  re-registration around the pass solution);
* spice state: ``FrameState.from_spice``;
* extract: ``extract_frame`` (background, noise, peaks, segmentation,
  centroids, geometry at the detections), every call (re-extractions too);
* pass and rest: the rest of the stages (frame summaries, the view geometry,
  pass pointing, constellations, sequence ties, transients, tables);
* catalog: ``build_catalog``, not part of the chain.

"science chain" = calibrate + register + spice state + extract + pass and
rest: the frames per second per core are over that CPU time.

By default each subprocess times its first run: the per-process start (numba
loading its cached kernels, astropy's first time conversion, first calls) is
counted in the frames of that run. ``--warm-up`` runs, untimed, another
simulated pass (perijove 40, 16 frames, its own data) in each subprocess
first, so that the timed runs measure what a long-lived worker pays per
frame (the mission's worker processes run many passes each); before the
timed repeats each tree runs the cases once untimed (``--no-prime`` skips it),
so that numba's compiled kernels are in both trees' caches (the baseline's
worktree is new: without it, a kernel the warm-up pass does not reach is
compiled inside the baseline's first timed repeat; stop 34). The warm-up is
a different pass, so no cache keyed by a frame's content can serve the timed
frames (stop 25). Both runs share the kernel cache: the checks of the generic
kernels (LSK, PCK, FK, IK) made in the warm-up serve the timed run, as they
serve a mission's later passes (the "kernels" step, outside the chain). Then the two
runs' outputs are compared: catalog rows (same hotspot ids, perijoves, flags),
the largest position difference (deg), the largest relative power
difference, and the same for the detection table.

Run: ``uv run python bench/science_chain.py [--baseline COMMIT] [--cases 57:1:7.3,58:2:-7.7]
[--frames-per-pass 32] [--repeats 2] [--warm-up] [--data-root DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the commit the speed work of issue 11 started from
BASELINE = "0efa47facf440427ccec9e622b3a3d4b243ae126"
REPO = Path(__file__).resolve().parents[1]
#: (module, attribute) wrapped in the subprocess, and the step they are counted in
STEPS = [
    ("iovolc.reader", "read_jiram_product", "read"),
    ("iovolc.kernels", "kernel_set_for", "kernels"),
    ("iovolc.spice", "KernelSet.__enter__", "kernels"),
    ("iovolc.spice", "KernelSet.__exit__", "kernels"),
    ("iovolc.spice", "LoadedKernels.use", "kernels"),
    ("iovolc.spice", "LoadedKernels.close", "kernels"),
    ("iovolc.pipeline", "calibrate_sequence", "calibrate"),
    ("iovolc.pipeline", "register_frame", "register"),
    ("iovolc.geometry", "FrameState.from_spice", "spice state"),
    ("iovolc.pipeline", "extract_frame", "extract"),
    ("iovolc.pipeline", "calibrate_group", "pass and rest"),
    ("iovolc.pipeline", "solve_pointing", "pass and rest"),
    ("iovolc.pipeline", "extract_group", "pass and rest"),
    ("iovolc.pipeline", "finish_pass", "pass and rest"),
    ("iovolc.catalog", "build_catalog", "catalog"),
]
#: the pass ``--warm-up`` runs untimed first (perijove, seed, pointing offset deg)
WARM_UP_CASE = (40, 9, 7.3)
CHAIN = ("calibrate", "register", "spice state", "extract", "pass and rest")
ORDER = ("read", "kernels", *CHAIN, "catalog")


# --- the subprocess: one tree, every case --------------------------------------------


def _instrument(totals: dict) -> None:
    """Wrap the STEPS functions: exclusive CPU time per step into ``totals``."""
    import functools
    import importlib

    stack: list[float] = []  # CPU time spent in nested wrapped calls, per open call

    def wrap(fn, step):
        @functools.wraps(fn)
        def timed(*a, **k):
            t0 = time.process_time()
            stack.append(0.0)
            try:
                return fn(*a, **k)
            finally:
                spent = time.process_time() - t0
                nested = stack.pop()
                totals[step] = totals.get(step, 0.0) + spent - nested
                if stack:
                    stack[-1] += spent
        return timed

    for mod_name, attr, step in STEPS:
        mod = importlib.import_module(mod_name)
        owner_name, _, name = attr.rpartition(".")
        owner = getattr(mod, owner_name) if owner_name else mod
        raw = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if raw is None:
            continue
        if isinstance(raw, classmethod):
            setattr(owner, name, classmethod(wrap(raw.__func__, step)))
        else:
            setattr(owner, name, wrap(raw, step))


def child(args) -> None:
    import iovolc

    totals: dict[str, float] = {}
    _instrument(totals)
    from iovolc.pipeline import run_local

    out = {"iovolc": iovolc.__file__, "cases": {}}
    if args.warm_up_dir:
        run_local(str(Path(args.warm_up_dir) / "archive"), str(Path(args.warm_up_dir) / "kernels"),
                  cache_dir=Path(args.out) / "cache")
    for case in args.case_dirs:
        totals.clear()
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        run = run_local(str(Path(case) / "archive"), str(Path(case) / "kernels"),
                        cache_dir=Path(args.out) / "cache")
        cpu = time.process_time() - t_cpu
        steps = dict(totals)
        steps["run_local other"] = cpu - sum(totals.values())
        out["cases"][case] = {"n_frames": len(run.frames), "steps_s": steps, "cpu_s": cpu,
                              "wall_s": time.perf_counter() - t_wall}
        with open(Path(args.out) / f"{Path(case).name}.pkl", "wb") as fh:
            pickle.dump({"frames": run.frames, "detections": run.detections,
                         "catalog": run.catalog.catalog if run.catalog else None}, fh)
    (Path(args.out) / "timing.json").write_text(json.dumps(out))


# --- the parent ------------------------------------------------------------------------


def simulate_cases(cases: list[tuple[int, int, float]], frames: int, root: Path) -> list[Path]:
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    dirs = []
    for pj, seed, offset in cases:
        d = root / f"pj{pj}_seed{seed}_{offset:+.1f}deg_{frames}"
        if not (d / "archive").is_dir():
            simulate(scenario_for([pj], seed=seed, frames_per_pass=frames,
                                  pointing_offset_deg=offset), out_dir=d, seed=seed)
        dirs.append(d)
    return dirs


def run_tree(tree: Path, case_dirs: list[Path], out: Path, *,
             warm_up_dir: Path | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--out", str(out),
           *(["--warm-up-dir", str(warm_up_dir)] if warm_up_dir else []), *map(str, case_dirs)]
    subprocess.run(cmd, check=True, env=env, cwd=tree)
    res = json.loads((out / "timing.json").read_text())
    if not res["iovolc"].startswith(str(tree)):
        raise SystemExit(f"the subprocess imported {res['iovolc']}, not the tree {tree}")
    return res


def _max_rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return 0.0
    return float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(a[both]), 1e-300)))


def _max_deg(a_lat, a_lon, b_lat, b_lon) -> float:
    import numpy as np

    dlat = np.abs(np.asarray(a_lat, float) - np.asarray(b_lat, float))
    dlon = np.abs((np.asarray(a_lon, float) - np.asarray(b_lon, float) + 180.0) % 360.0 - 180.0)
    return float(np.nanmax(np.r_[dlat, dlon, 0.0]))


def compare(base: dict, cur: dict) -> list[str]:
    """Catalog and detection equivalence of two runs of one case, as report lines."""
    lines = []
    cb, cc = base["catalog"], cur["catalog"]
    keys = ["hotspot_id", "perijove", "flags"]
    same = (cb is None and cc is None) or (
        cb is not None and cc is not None and len(cb) == len(cc)
        and all((cb[k].astype(str).to_numpy() == cc[k].astype(str).to_numpy()).all()
                for k in keys))
    lines.append(f"catalog: {0 if cb is None else len(cb)} vs {0 if cc is None else len(cc)} "
                 f"rows; same rows (hotspot id, perijove, flags): {'yes' if same else 'NO'}")
    if same and cb is not None:
        pw = [c for c in cb.columns if c.startswith("power_gw")]
        lines.append(f"catalog: max position difference "
                     f"{_max_deg(cb.lat_deg, cb.lon_west_deg, cc.lat_deg, cc.lon_west_deg):.1e} deg,"
                     f" max relative power difference "
                     f"{max(_max_rel(cb[c], cc[c]) for c in pw):.1e} ({', '.join(pw)})")
    db, dc = base["detections"], cur["detections"]
    if len(db) == len(dc) and (db["flags"].to_numpy() == dc["flags"].to_numpy()).all():
        px = max(float((db[k] - dc[k]).abs().max()) if len(db) else 0.0
                 for k in ("line", "sample"))
        lines.append(f"detections: {len(db)} rows, same flags; max position difference "
                     f"{_max_deg(db.lat_deg, db.lon_west_deg, dc.lat_deg, dc.lon_west_deg):.1e}"
                     f" deg ({px:.1e} px), max relative power difference "
                     f"{_max_rel(db.power_gw_per_um, dc.power_gw_per_um):.1e}")
    else:
        lines.append(f"detections: {len(db)} vs {len(dc)} rows or flags DIFFER")
    return lines


def report(results: dict[str, list[dict]], case_dirs: list[Path]) -> None:
    def best(tree: str, case: str, step: str) -> float:
        return min(r["cases"][case]["steps_s"].get(step, 0.0) for r in results[tree])

    cases = [str(c) for c in case_dirs]
    n = sum(results["baseline"][0]["cases"][c]["n_frames"] for c in cases)
    print(f"\nCPU ms per frame over {n} frames (best of {len(results['current'])} repeats "
          f"per step)")
    print(f"{'step':<16}{'baseline':>10}{'current':>10}{'ratio':>8}")
    chain = {"baseline": 0.0, "current": 0.0}
    for step in (*ORDER, "run_local other"):
        b = sum(best("baseline", c, step) for c in cases) * 1e3 / n
        c_ = sum(best("current", c, step) for c in cases) * 1e3 / n
        if step in CHAIN:
            chain["baseline"] += b
            chain["current"] += c_
        tag = "  (chain)" if step in CHAIN else ""
        print(f"{step:<16}{b:>10.1f}{c_:>10.1f}{(b / c_ if c_ > 0 else float('nan')):>7.1f}x"
              f"{tag}")
    b, c_ = chain["baseline"], chain["current"]
    print(f"{'science chain':<16}{b:>10.1f}{c_:>10.1f}{b / c_:>7.1f}x")
    print(f"frames/s/core (science chain): baseline {1e3 / b:.1f}, current {1e3 / c_:.1f}")
    for tree in ("baseline", "current"):
        tot = [sum(r["cases"][c]["cpu_s"] for c in cases) for r in results[tree]]
        wall = [sum(r["cases"][c]["wall_s"] for c in cases) for r in results[tree]]
        print(f"whole run_local, {tree}: CPU {min(tot) * 1e3 / n:.0f} ms/frame, wall "
              f"{min(wall) * 1e3 / n:.0f} ms/frame (best repeat)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("case_dirs", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--baseline", default=BASELINE, help="commit to compare against")
    p.add_argument("--cases", default="57:1:7.3,58:2:-7.7",
                   help="perijove:seed:pointing offset (deg) of each simulated pass")
    p.add_argument("--frames-per-pass", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--warm-up", action="store_true",
                   help="run another pass untimed first in each subprocess (steady state)")
    p.add_argument("--no-prime", dest="prime", action="store_false",
                   help="with --warm-up, do not run each tree once untimed first (by "
                   "default that run fills each tree's numba cache)")
    p.add_argument("--warm-up-dir", help=argparse.SUPPRESS)
    p.add_argument("--data-root", type=Path, default=None,
                   help="where simulated passes are kept between runs (default: a temp dir)")
    args = p.parse_args()
    if args.child:
        return child(args)
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)
    cases = [(int(a), int(b), float(c)) for a, b, c in
             (s.split(":") for s in args.cases.split(","))]
    with tempfile.TemporaryDirectory(prefix="iovolc-bench-") as tmp:
        tmp = Path(tmp)
        data_root = args.data_root or tmp / "data"
        t0 = time.perf_counter()
        case_dirs = simulate_cases(cases, args.frames_per_pass, data_root)
        warm = simulate_cases([WARM_UP_CASE], 16, data_root)[0] if args.warm_up else None
        print(f"data: {', '.join(c.name for c in case_dirs)} under {data_root} "
              f"({time.perf_counter() - t0:.0f} s)")
        print("timed: " + (f"after an untimed run of {warm.name} in each subprocess (steady "
                           "state)" if warm else "each subprocess's first run (its start "
                           "included)"))
        commit = subprocess.run(["git", "rev-parse", args.baseline], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout.strip()
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "iovolc"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        print(f"baseline: {commit}; current: the working tree {REPO} (HEAD {head[:12]}"
              f"{', with uncommitted changes under iovolc/' if dirty else ''})")
        base_tree = tmp / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), commit], cwd=REPO,
                       check=True, capture_output=True)
        try:
            if args.warm_up and args.prime:
                # numba compiles a kernel for each new argument type on first use and
                # keeps it beside the module (cache=True): the baseline's fresh worktree
                # has none, and the warm-up pass need not reach every kernel the timed
                # passes do, so one untimed run per tree fills both caches first (stop 34)
                for name, tree in (("baseline", base_tree), ("current", REPO)):
                    t0 = time.perf_counter()
                    run_tree(tree, case_dirs, tmp / f"{name}-prime", warm_up_dir=None)
                    print(f"prime: {name} ran in {time.perf_counter() - t0:.0f} s (untimed: "
                          "numba's kernels compiled into its tree's cache)", flush=True)
            results: dict[str, list[dict]] = {"baseline": [], "current": []}
            for r in range(args.repeats):
                for name, tree in (("baseline", base_tree), ("current", REPO)):
                    t0 = time.perf_counter()
                    results[name].append(run_tree(tree, case_dirs, tmp / f"{name}{r}",
                                                  warm_up_dir=warm))
                    print(f"repeat {r + 1}: {name} ran in {time.perf_counter() - t0:.0f} s",
                          flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO,
                           check=False, capture_output=True)
        report(results, case_dirs)
        print("\nsame outputs? (baseline vs current, last repeat)")
        for c in case_dirs:
            print(f"{c.name}:")
            runs = {}
            for name in ("baseline", "current"):
                with open(tmp / f"{name}{args.repeats - 1}" / f"{c.name}.pkl", "rb") as fh:
                    runs[name] = pickle.load(fh)
            for line in compare(runs["baseline"], runs["current"]):
                print("  " + line)


if __name__ == "__main__":
    main()
