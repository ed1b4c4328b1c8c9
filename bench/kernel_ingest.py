"""Ingest time per product vs kernel size: the simulated kernels against real-size ones.

Simulates one distant pass (default PJ60, 60 RDR products), then builds a
second kernel tree, identical except for two files the labels name:

* the pass's reconstructed CK (``kernels/ck/*.bc``) rewritten at real size
  (default ~40 MB): type-3 segments of quaternions + angular velocity at
  ``--ck-hz`` (default 10 Hz) over a span around the pass (one segment per
  hour, overlapping by one record, as NAIF's reconstructed CKs come). Inside
  every interval the original CK covers, the records are the original's
  attitude sampled with ``ckgpav`` at the same rate plus the interval's ends,
  each interval its own interpolation interval, so the attitude at every
  product time is unchanged; between them, a 2 rpm spin continuing from the
  neighbouring frame (its own interpolation intervals, never read by the
  pipeline);
* the planetary SPK (``de_sim_v01.bsp``) rewritten at real size (default
  ~100 MB, like a planetary + satellite SPK): its original segments copied
  unchanged (``spksub``), plus dense type-13 state tables of four other
  Jovian moons over its whole coverage.

Before timing, the bench checks that both trees give the same attitude (at
21 epochs in each frame's CK interval and at each product's mid time) and the
same Io, Juno and Jupiter states at each product time.

Then, for each repeat and each tree (order alternating between repeats), the
same products are ingested into a fresh store with a fresh kernel cache,
through the stage work functions the ``ingest-downlink`` flow runs
(``tasks.work.discover``, then ``tasks.work.ingest_batch`` per batch of
``--batch`` products; no Prefect here), each batch timed where it runs, in
a spawned worker process like ``tasks/stages.py``'s process pool:

1. batch 1, cold: fresh cache, fresh store, fresh worker process;
2. batch 2, warm cache, same worker process;
3. the rest, warm cache, a new worker process (the cache on disk shared
   across processes; the in-process sha256 memo empty again).

Kernel work is counted and timed by wrapping functions inside the worker
(product code unchanged): ``iovolc.kernels._fetch`` (copy into the cache),
``iovolc.kernels._run_checks`` (the SPICE verification process),
``file_sha256`` calls that hash (memo misses), ``Store.put_file`` /
``Store.sha256`` on kernel keys (landing a kernel in the store). One-time
kernel cost = the sum of those; per-product cost = (batch wall - one-time
kernel cost) / products. The kernel cache files' mtimes are compared after
the last batch with those after the first (a re-fetch would rewrite them).

``--profile`` prints the top functions (cProfile, cumulative) of the warm
batch of each tree.

Run: ``uv run python bench/kernel_ingest.py [--frames 60] [--batch 20]
[--ck-mb 40] [--spk-mb 100] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _common
import numpy as np

SPIN_RAD_S = 2 * np.pi / 30.0  # Juno spins at 2 rpm
JUNO_SC = -61000
JUNO = -61
#: (NAIF id, orbit radius km, period days): satellites added to the big SPK (never read)
EXTRA_MOONS = ((502, 671_100.0, 3.551181), (503, 1_070_400.0, 7.154553),
               (504, 1_882_700.0, 16.689017), (505, 181_400.0, 0.498179))
CK_RECORD_BYTES = 8 * 8 + 8 / 100  # epoch + quaternion + angular velocity, epoch directory
SPK13_RECORD_BYTES = 7 * 8 + 8 / 100  # epoch + state, epoch directory


# --- big kernels (this process; SPICE on the main thread) -------------------------
def _qxq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SPICE quaternion product (scalar first), vectorised: m2q(A @ B) = qxq(m2q(A), m2q(B))."""
    a0, a1, a2, a3 = np.moveaxis(a, -1, 0)
    b0, b1, b2, b3 = np.moveaxis(b, -1, 0)
    return np.stack([a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
                     a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2,
                     a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1,
                     a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0], axis=-1)


def _spin_records(ticks: np.ndarray, edge: float, cmat: np.ndarray, ticks_per_s: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Quaternions and angular velocities of a 2 rpm spin about the spacecraft +Z, equal to
    ``cmat`` at SCLK ``edge``: C(t) = rotate(w (t - edge), 3) @ cmat."""
    import spiceypy

    half = 0.5 * SPIN_RAD_S * (ticks - edge) / ticks_per_s
    qz = np.stack([np.cos(half), np.zeros_like(half), np.zeros_like(half), -np.sin(half)], -1)
    quats = _qxq(qz, np.asarray(spiceypy.m2q(cmat)))
    av = np.broadcast_to(SPIN_RAD_S * np.asarray(cmat)[2], (len(ticks), 3))
    return quats, np.ascontiguousarray(av)


def _attitude(sclk: float, who: str) -> tuple[np.ndarray, np.ndarray]:
    """JUNO_SPACECRAFT C-matrix and angular velocity (J2000) at encoded SCLK ``sclk``."""
    import spiceypy

    try:
        cmat, av, _ = spiceypy.ckgpav(JUNO_SC, sclk, 0.0, "J2000")
    except spiceypy.utils.exceptions.NotFoundError:
        raise SystemExit(f"{who}: no JUNO_SPACECRAFT attitude at SCLK {sclk}") from None
    return np.asarray(cmat), np.asarray(av)


def write_big_ck(small: Path, big: Path, *, text_kernels: list[Path], target_mb: float,
                 hz: float) -> dict:
    """The real-size CK (see the module docstring); returns what was written."""
    import spiceypy

    from iovolc.sim.kernels import TICKS_PER_SECOND

    spiceypy.kclear()
    try:
        for k in text_kernels:
            spiceypy.furnsh(str(k))
        cover = spiceypy.ckcov(str(small), JUNO_SC, False, "INTERVAL", 0.0, "SCLK")
        windows = [spiceypy.wnfetd(cover, i) for i in range(spiceypy.wncard(cover))]
        spiceypy.furnsh(str(small))
        step = TICKS_PER_SECOND / hz
        chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # interpolation intervals
        frame_c: list[np.ndarray] = []
        for a, b in windows:
            ticks = np.arange(a, b, step)
            ticks = np.append(ticks[ticks < b - 1.0], b)
            q, av = [], []
            for t in ticks:
                cmat, w = _attitude(float(t), small.name)
                q.append(spiceypy.m2q(cmat))
                av.append(w)
            chunks.append((ticks, np.array(q), np.array(av)))
            frame_c.append(_attitude(float(a), small.name)[0])
        n_target = target_mb * 1e6 / CK_RECORD_BYTES
        mid = 0.5 * (windows[0][0] + windows[-1][1])
        start = min(windows[0][0] - step, mid - 0.5 * n_target * step)
        stop = max(windows[-1][1] + step, mid + 0.5 * n_target * step)
        gaps = [(start, windows[0][0] - step, windows[0][0], frame_c[0])]
        gaps += [(b + step, a2 - step, b, frame_c[i])
                 for i, ((_, b), (a2, _)) in enumerate(zip(windows[:-1], windows[1:],
                                                           strict=True))]
        gaps.append((windows[-1][1] + step, stop, windows[-1][1], frame_c[-1]))
        for g0, g1, edge, cmat in gaps:
            ticks = np.arange(g0, g1 + 0.5 * step, step)
            if len(ticks) >= 2:
                chunks.append((ticks, *_spin_records(ticks, edge, cmat, TICKS_PER_SECOND)))
        chunks.sort(key=lambda c: c[0][0])
        # one segment per hour of records; a chunk cut at a segment boundary goes on in the
        # next segment from its last record (continuous coverage across segments)
        per_seg = int(round(3600 * hz))
        segments: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[]]
        count = 0
        for ticks, q, av in chunks:
            i = 0
            while True:
                room = per_seg - count
                if len(ticks) - i <= room or room < 2:
                    if room < 2:
                        segments.append([])
                        count = 0
                        continue
                    segments[-1].append((ticks[i:], q[i:], av[i:]))
                    count += len(ticks) - i
                    break
                segments[-1].append((ticks[i:i + room], q[i:i + room], av[i:i + room]))
                i += room - 1
                segments.append([])
                count = 0
        big.parent.mkdir(parents=True, exist_ok=True)
        big.unlink(missing_ok=True)
        handle = spiceypy.ckopn(str(big), "iovolc bench real-size CK", 0)
        n_rec = n_int = 0
        try:
            for k, seg in enumerate(s for s in segments if s):
                ticks = np.concatenate([c[0] for c in seg])
                starts = np.array([c[0][0] for c in seg])
                spiceypy.ckw03(handle, float(ticks[0]), float(ticks[-1]), JUNO_SC, "J2000", True,
                               f"JUNO SC BENCH REAL-SIZE {k:03d}", len(ticks), ticks,
                               np.concatenate([c[1] for c in seg]),
                               np.concatenate([c[2] for c in seg]), len(starts), starts)
                n_rec += len(ticks)
                n_int += len(starts)
        finally:
            spiceypy.ckcls(handle)
    finally:
        spiceypy.kclear()
    return {"records": n_rec, "segments": sum(1 for s in segments if s), "intervals": n_int,
            "hours": (stop - start) / TICKS_PER_SECOND / 3600, "hz": hz,
            "mb": big.stat().st_size / 1e6}


def write_big_spk(small: Path, big: Path, *, target_mb: float) -> dict:
    """The real-size planetary SPK (see the module docstring); returns what was written."""
    import spiceypy

    handle = spiceypy.dafopr(str(small))
    originals = []
    try:
        spiceypy.dafbfs(handle)
        while spiceypy.daffna():
            summary = spiceypy.dafgs(5)
            dc, ic = spiceypy.dafus(summary, 2, 6)
            originals.append((np.array(summary), spiceypy.dafgn(), float(dc[0]), float(dc[1])))
    finally:
        spiceypy.dafcls(handle)
    et0, et1 = min(o[2] for o in originals), max(o[3] for o in originals)
    n = int(target_mb * 1e6 / SPK13_RECORD_BYTES / len(EXTRA_MOONS))
    epochs = np.linspace(et0, et1, n)
    big.unlink(missing_ok=True)
    out = spiceypy.spkopn(str(big), "iovolc bench real-size SPK", 4096)
    src = spiceypy.dafopr(str(small))
    try:
        for body, radius, period_d in EXTRA_MOONS:
            w = 2 * np.pi / (period_d * 86400.0)
            ang = w * (epochs - et0)
            c, s = np.cos(ang), np.sin(ang)
            states = np.stack([radius * c, radius * s, np.zeros(n),
                               -radius * w * s, radius * w * c, np.zeros(n)], axis=-1)
            spiceypy.spkw13(out, body, 5, "J2000", et0, et1, f"BENCH MOON {body}", 7, n,
                            states, epochs)
        for summary, name, b, e in originals:  # written last: they win any overlap
            spiceypy.spksub(src, summary, name, b, e, out)
    finally:
        spiceypy.dafcls(src)
        spiceypy.spkcls(out)
    return {"segments": len(EXTRA_MOONS) + len(originals), "states": n * len(EXTRA_MOONS),
            "mb": big.stat().st_size / 1e6}


def build_big_tree(small_root: Path, big_root: Path, *, ck_name: str, spk_name: str,
                   ck_mb: float, ck_hz: float, spk_mb: float) -> dict:
    for src in small_root.rglob("*"):
        if src.is_file() and src.name not in (ck_name, spk_name):
            dest = big_root / src.relative_to(small_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    text = [next(small_root.glob("lsk/*.tls")), next(small_root.glob("sclk/*.tsc"))]
    out = {"ck_name": ck_name, "spk_name": spk_name}
    t0 = time.perf_counter()
    out["ck"] = write_big_ck(small_root / "ck" / ck_name, big_root / "ck" / ck_name,
                             text_kernels=text, target_mb=ck_mb, hz=ck_hz)
    if spk_mb > 0:
        out["spk"] = write_big_spk(small_root / "spk" / spk_name, big_root / "spk" / spk_name,
                                   target_mb=spk_mb)
    else:
        shutil.copy2(small_root / "spk" / spk_name, big_root / "spk" / spk_name)
    out["seconds"] = time.perf_counter() - t0
    return out


def _geometry(root: Path, names: list[str], ets: np.ndarray, ck_ticks: np.ndarray) -> dict:
    """Attitude at ``ck_ticks`` and Io / Juno / Jupiter states at ``ets`` from a tree."""
    import spiceypy

    from iovolc.spice import kernel_subdir

    spiceypy.kclear()
    try:
        for n in names:
            spiceypy.furnsh(str(root / kernel_subdir(n) / n))
        cmats = [_attitude(float(t), str(root))[0] for t in ck_ticks]
        states = [[spiceypy.spkgeo(body, float(et), "J2000", center)[0]
                   for body, center in ((501, 599), (JUNO, 599), (599, 10))] for et in ets]
        return {"cmat": np.array(cmats), "states": np.array(states)}
    finally:
        spiceypy.kclear()


def same_geometry(small_root: Path, big_root: Path, products) -> tuple[float, float, int]:
    """Largest attitude difference (rad) and state difference (km) between the trees, and
    the number of attitude epochs compared."""
    import spiceypy

    names = [n.split("/")[-1] for n in products[0].spice_file_names]
    if any([n.split("/")[-1] for n in p.spice_file_names] != names for p in products):
        raise SystemExit("the products name different kernel sets; this bench expects one pass")
    ck = small_root / "ck" / next(n for n in names if n.endswith(".bc"))
    spiceypy.kclear()
    try:
        for k in ("lsk/*.tls", "sclk/*.tsc"):
            spiceypy.furnsh(str(next(small_root.glob(k))))
        cover = spiceypy.ckcov(str(ck), JUNO_SC, False, "INTERVAL", 0.0, "SCLK")
        wins = [spiceypy.wnfetd(cover, i) for i in range(spiceypy.wncard(cover))]
        ets = np.array([p.et_mid for p in products])
        ticks = np.concatenate([np.linspace(a, b, 21) for a, b in wins]
                               + [[spiceypy.sce2c(JUNO, float(et)) for et in ets]])
    finally:
        spiceypy.kclear()
    a = _geometry(small_root, names, ets, ticks)
    b = _geometry(big_root, names, ets, ticks)
    d_att = float(np.abs(a["cmat"] - b["cmat"]).max())
    d_pos = float(np.abs(a["states"][..., :3] - b["states"][..., :3]).max())
    return d_att, d_pos, len(ticks)


# --- the worker side (a spawned process, like tasks/stages.py's pool) -------------
_COUNTS: dict = {}


def _count(kind: str, seconds: float, n_bytes: int = 0, name: str = "") -> None:
    c = _COUNTS.setdefault(kind, {"n": 0, "s": 0.0, "bytes": 0, "names": {}})
    c["n"] += 1
    c["s"] += seconds
    c["bytes"] += n_bytes
    if name:
        c["names"][name] = c["names"].get(name, 0) + 1


def _install_counters() -> None:
    """Wrap the kernel work (once per process; product code unchanged)."""
    import iovolc.ingest as ingest
    import iovolc.kernels as kernels
    from iovolc.store import Store

    if getattr(kernels, "_bench_counted", False):
        return
    fetch, run_checks, sha = kernels._fetch, kernels._run_checks, kernels.file_sha256
    put_file, store_sha = Store.put_file, Store.sha256

    @functools.wraps(fetch)
    def counted_fetch(fs, src, dest):
        t0 = time.perf_counter()
        try:
            return fetch(fs, src, dest)
        finally:
            _count("fetch", time.perf_counter() - t0, Path(dest).stat().st_size, Path(dest).name)

    @functools.wraps(run_checks)
    def counted_checks(jobs, **kw):
        t0 = time.perf_counter()
        try:
            return run_checks(jobs, **kw)
        finally:
            _count("verify", time.perf_counter() - t0)
            for j in jobs:
                _count("verify_job", 0.0, 0, Path(j.get("path") or j.get("ck")).name
                       + (" (TDB coverage)" if j["op"] != "kernel" else ""))

    @functools.wraps(sha)
    def counted_sha(path):
        p = Path(path)
        st = p.stat()
        miss = (str(p.resolve()), st.st_size, st.st_mtime_ns) not in kernels._HASHES
        t0 = time.perf_counter()
        try:
            return sha(path)
        finally:
            if miss:
                _count("hash", time.perf_counter() - t0, st.st_size, p.name)

    def is_kernel(key: str) -> bool:
        return str(key).startswith("kernels/")

    @functools.wraps(put_file)
    def counted_put_file(self, key, local_path, **kw):
        t0 = time.perf_counter()
        try:
            return put_file(self, key, local_path, **kw)
        finally:
            if is_kernel(key):
                _count("land", time.perf_counter() - t0, Path(local_path).stat().st_size,
                       Path(local_path).name)

    @functools.wraps(store_sha)
    def counted_store_sha(self, key):
        t0 = time.perf_counter()
        try:
            return store_sha(self, key)
        finally:
            if is_kernel(key):
                _count("store_hash", time.perf_counter() - t0, 0, str(key).rsplit("/", 1)[-1])

    kernels._fetch, kernels._run_checks = counted_fetch, counted_checks
    kernels.file_sha256 = ingest.file_sha256 = counted_sha
    Store.put_file, Store.sha256 = counted_put_file, counted_store_sha
    kernels._bench_counted = True


def worker_init() -> None:
    """Imports of the ingest path, before any timing (a warm pool worker)."""
    import iovolc.pipeline  # noqa: F401  (imported lazily by ingest's perijove check)
    import tasks.work  # noqa: F401

    _install_counters()


def run_batch(settings, volume_url: str, volume_id: str, products: list, *,
              profile: bool = False) -> dict:
    """One ``tasks.work.ingest_batch``, timed in this worker, with the kernel counters."""
    import tasks.work

    _COUNTS.clear()
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    res, seconds = _common.timed_call(tasks.work.ingest_batch, settings, volume_url=volume_url,
                                      volume_id=volume_id, products=products)
    text = ""
    if prof is not None:
        import io
        import pstats

        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
        text = buf.getvalue()
    return {"seconds": seconds, "ingested": len(res["ingested"]),
            "quarantined": [q["reason"] for q in res["quarantined"]],
            "counts": {k: dict(v) for k, v in _COUNTS.items()}, "profile": text,
            "pid": os.getpid()}


def _pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=worker_init)


# --- the run -----------------------------------------------------------------------
def _cache_mtimes(cache: Path) -> dict[str, int]:
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*")
            if p.is_file() and "root-" in p.parts[len(cache.parts)]
            and not p.name.endswith(".src")}


def ingest_run(kernel_root: Path, *, data: Path, work: Path, tag: str, batch: int,
               profile: bool) -> dict:
    from iovolc.settings import load_settings
    from tasks.work import discover

    store, cache = work / f"store-{tag}", work / f"cache-{tag}"
    settings = load_settings(archive_url=(data / "archive").as_uri(),
                             kernels_url=kernel_root.as_uri(), store_url=store.as_uri(),
                             cache_dir=cache)
    found = discover(settings, perijoves=None, force=False)
    todo = [(vol, info["volume_id"], p) for vol, info in found["volumes"].items()
            for p in info["products"]]
    vol, vid = todo[0][0], todo[0][1]
    if any(v != vol for v, _, _ in todo):
        raise SystemExit("expected one volume (one pass)")
    prods = [p for _, _, p in todo]
    chunks = [prods[:batch], prods[batch:2 * batch], prods[2 * batch:]]
    if not all(chunks):
        raise SystemExit(f"need more than {2 * batch} products for three batches, "
                         f"have {len(prods)}")
    out = []
    pool = _pool()
    try:
        for i, chunk in enumerate(chunks):
            if i == 2:  # a new worker process: the disk cache is shared, the memo is not
                pool.shutdown()
                pool = _pool()
            r = pool.submit(run_batch, settings, vol, vid, chunk,
                            profile=profile and i == 1).result()
            if r["quarantined"] or r["ingested"] != len(chunk):
                raise SystemExit(f"{tag}: batch {i + 1} quarantined {r['quarantined']}")
            r["n"] = len(chunk)
            if i == 0:
                first = _cache_mtimes(cache)
            out.append(r)
    finally:
        pool.shutdown()
    last = _cache_mtimes(cache)
    rewritten = sorted(k for k in first if last.get(k) != first[k])
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return {"batches": out, "rewritten": rewritten, "cached": len(first)}


def one_time(r: dict) -> float:
    """Kernel work in a batch that does not scale with its products."""
    c = r["counts"]
    return sum(c.get(k, {}).get("s", 0.0) for k in ("fetch", "verify", "hash", "land",
                                                    "store_hash"))


def report(runs: dict[str, list[dict]], kernels: dict[str, dict], batch_names: list[str]
           ) -> None:
    kinds = list(runs)

    def med(fn, kind: str) -> float:
        return statistics.median(fn(r) for r in runs[kind])

    def row(label: str, values: list[str]) -> None:
        print(f"{label:<52}" + "".join(f"{v:>16}" for v in values))

    print()
    row("", [*kinds, "big / small"])
    for name in ("CK", "planetary SPK", "all kernels a label names"):
        vals = [kernels[k][name] for k in kinds]
        row(f"{name} size", [f"{v / 1e6:.2f} MB" for v in vals] + [f"{vals[1] / vals[0]:.0f}x"])
    n_rep = len(runs[kinds[0]])
    print(f"(median of {n_rep} repeat(s); each repeat: fresh store, fresh kernel cache)")
    for i, bname in enumerate(batch_names):
        print()
        n = runs[kinds[0]][0]["batches"][i]["n"]
        print(f"batch {i + 1}: {bname} ({n} products)")

        def b(r, i=i):
            return r["batches"][i]

        def cnt(kind, key, i=i):
            return lambda r: b(r, i)["counts"].get(kind, {}).get(key, 0)

        wall = [med(lambda r, i=i: b(r, i)["seconds"], k) for k in kinds]
        row("  wall", [f"{w * 1e3:.0f} ms" for w in wall] + [f"{wall[1] / wall[0]:.2f}"])
        for kind, label in (("fetch", "kernel fetches into the cache"),
                            ("verify_job", "SPICE verification jobs"),
                            ("verify", "SPICE verification processes"),
                            ("hash", "kernel sha256 computed (memo misses)"),
                            ("land", "kernels copied into the store")):
            vals = [med(cnt(kind, "n"), k) for k in kinds]
            secs = [med(cnt(kind, "s"), k) for k in kinds]
            row(f"  {label}", [f"{v:.0f} / {s * 1e3:.0f} ms" for v, s in
                               zip(vals, secs, strict=True)] + [""])
        ot = [med(lambda r, i=i: one_time(b(r, i)), k) for k in kinds]
        row("  = one-time kernel cost (fetch+verify+hash+land)",
            [f"{x * 1e3:.0f} ms" for x in ot] + [f"{ot[1] / max(ot[0], 1e-9):.1f}"])
        per = [med(lambda r, i=i: (b(r, i)["seconds"] - one_time(b(r, i))) / b(r, i)["n"], k)
               for k in kinds]
        row("  per product (wall - one-time) / products",
            [f"{x * 1e3:.1f} ms" for x in per] + [f"{per[1] / per[0]:.2f}"])
    print()
    print("over all batches of a repeat (first repeat), per kernel file:")
    for k in kinds:
        tot: dict[str, dict[str, int]] = {}
        for bt in runs[k][0]["batches"]:
            for kind in ("fetch", "verify_job", "hash", "land"):
                for name, v in bt["counts"].get(kind, {}).get("names", {}).items():
                    tot.setdefault(name, {}).setdefault(kind, 0)
                    tot[name][kind] += v
        n_prod = sum(bt["n"] for bt in runs[k][0]["batches"])
        print(f"  {k} ({n_prod} products in {len(batch_names)} batches, 2 worker processes):")
        for name, v in sorted(tot.items()):
            print(f"    {name:<34} fetched {v.get('fetch', 0)}, verified "
                  f"{v.get('verify_job', 0)}, hashed {v.get('hash', 0)}, landed "
                  f"{v.get('land', 0)}")
        rew = sorted({x for r in runs[k] for x in r["rewritten"]})
        print(f"    kernel cache files rewritten after batch 1: {len(rew)} of "
              f"{runs[k][0]['cached']}{' (' + ', '.join(rew) + ')' if rew else ''}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None,
                   help="output of `iovolc simulate` for one pass (default: simulate "
                        "--perijove into a temporary folder)")
    p.add_argument("--perijove", type=int, default=60)
    p.add_argument("--frames", type=int, default=60, help="frames (RDR products) of the pass")
    p.add_argument("--batch", type=int, default=20, help="products of batches 1 and 2")
    p.add_argument("--ck-mb", type=float, default=40.0)
    p.add_argument("--ck-hz", type=float, default=10.0, help="CK records per second")
    p.add_argument("--spk-mb", type=float, default=100.0, help="0: keep the small SPK")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=_common.SEED)
    p.add_argument("--profile", action="store_true",
                   help="print cProfile's top functions of batch 2 (warm) of each tree")
    args = p.parse_args()
    _common.print_command()
    print(f"machine: {os.cpu_count()} cores (load average now {os.getloadavg()[0]:.1f}: "
          "other processes share them); every batch runs in a spawned worker process, "
          "timed there")
    os.environ.pop("IOVOLC_CACHE_DIR", None)
    with tempfile.TemporaryDirectory(prefix="iovolc-kbench-") as tmp:
        work = Path(tmp)
        data = args.data
        if data is None:
            from iovolc.sim.downlink import simulate
            from iovolc.sim.scenario import scenario_for

            data = work / "sim"
            t0 = time.perf_counter()
            s = simulate(scenario_for([args.perijove], seed=args.seed,
                                      frames_per_pass=args.frames),
                         out_dir=data, seed=args.seed, products=("RDR",))
            print(f"data: simulated PJ{args.perijove} ({args.frames} frames, seed {args.seed}, "
                  f"RDR only): {s.n_products} products in {time.perf_counter() - t0:.1f} s")
        small_root, big_root = data / "kernels", work / "kernels-big"
        products = _common.load_rdrs(data)
        names = [n.split("/")[-1] for n in products[0].spice_file_names]
        from iovolc.sim.kernels import SOLAR_SPK_NAME

        built = build_big_tree(small_root, big_root,
                               ck_name=next(n for n in names if n.endswith(".bc")),
                               spk_name=SOLAR_SPK_NAME, ck_mb=args.ck_mb, ck_hz=args.ck_hz,
                               spk_mb=args.spk_mb)
        ck = built["ck"]
        print(f"big CK {built['ck_name']}: {ck['mb']:.1f} MB, {ck['records']} type-3 records "
              f"at {ck['hz']:g} Hz over {ck['hours']:.1f} h, {ck['segments']} segments, "
              f"{ck['intervals']} interpolation intervals")
        if "spk" in built:
            sp = built["spk"]
            print(f"big SPK {built['spk_name']}: {sp['mb']:.1f} MB, {sp['segments']} segments "
                  f"({sp['states']} type-13 states added)")
        print(f"(written in {built['seconds']:.1f} s, not timed below)")
        d_att, d_pos, n_att = same_geometry(small_root, big_root, products)
        print(f"same science: largest C-matrix element difference {d_att:.1e} over {n_att} "
              f"epochs in the frames' CK intervals; largest Io/Juno/Jupiter position "
              f"difference {d_pos:.1e} km at the {len(products)} product times")
        if d_att > 1e-12 or d_pos > 1e-6:
            raise SystemExit("the big kernels change the geometry")

        def sizes(root: Path) -> dict[str, int]:
            from iovolc.spice import kernel_subdir

            return {"CK": (root / "ck" / built["ck_name"]).stat().st_size,
                    "planetary SPK": (root / "spk" / built["spk_name"]).stat().st_size,
                    "all kernels a label names": sum(
                        (root / kernel_subdir(n) / n).stat().st_size for n in names)}

        trees = {"small kernels": small_root, "big kernels": big_root}
        kernels = {k: sizes(v) for k, v in trees.items()}
        runs: dict[str, list[dict]] = {k: [] for k in trees}
        for rep in range(args.repeats):
            order = list(trees) if rep % 2 == 0 else list(trees)[::-1]
            for kind in order:
                print(f"repeat {rep + 1}: {kind} ...", flush=True)
                runs[kind].append(ingest_run(trees[kind], data=data, work=work,
                                             tag=f"{kind.split()[0]}-{rep}", batch=args.batch,
                                             profile=args.profile and rep == 0))
        report(runs, kernels, ["cold cache, fresh store, new worker process",
                               "warm cache, same worker process",
                               "warm cache, new worker process"])
        if args.profile:
            for kind in trees:
                print(f"\nprofile of batch 2 (warm), {kind}:")
                print(runs[kind][0]["batches"][1]["profile"])


if __name__ == "__main__":
    main()
