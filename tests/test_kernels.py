"""Kernel sets from labels (iovolc.kernels), checked with spiceypy itself.

The kernel names come from a simulated product's label; the files from the
simulated NAIF-layout kernel tree, reached through ``file://`` and
``memory://`` URLs; spiceypy (ktotal, str2et, spkpos) is the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import spiceypy

from iovolc import spicecheck
from iovolc.kernels import (
    CorruptKernelError,
    KernelCoverageError,
    KernelVerifier,
    MissingKernelError,
    file_sha256,
    kernel_manifest,
    kernel_set_for,
    resolve_kernels,
)
from iovolc.reader import read_jiram_product
from iovolc.reference import utc_to_et


@pytest.fixture(scope="module")
def sim(pj57_tiny) -> Path:
    return pj57_tiny


@pytest.fixture(scope="module")
def product(sim):
    label = sorted((sim / "archive" / "JNOJIR_2057" / "DATA").glob("*.LBL"))[0]
    return read_jiram_product(label)


@pytest.fixture(scope="module")
def kernel_url(sim) -> str:
    return (sim / "kernels").as_uri()


def test_resolve_load_and_clear(sim, product, kernel_url, tmp_path):
    cache = tmp_path / "cache"
    names = product.spice_file_names
    assert len(names) >= 5
    paths = resolve_kernels(names, kernel_root=kernel_url, cache_dir=cache)
    assert [p.name for p in paths] == list(names)  # label order
    for p in paths:
        src = next((sim / "kernels").rglob(p.name))
        assert p.parent.parent.parent == cache and p.parent.name == src.parent.name
        assert p.read_bytes() == src.read_bytes()
    assert not list(cache.rglob("*.part"))

    kset = kernel_set_for(product, kernel_root=kernel_url, cache_dir=cache)
    kinds = [p.parent.name for p in kset.paths]
    order = ["lsk", "pck", "fk", "ik", "sclk", "spk", "ck"]
    assert kinds == sorted(kinds, key=order.index)
    with kset:
        assert spiceypy.ktotal("ALL") == len(names)
        assert spiceypy.ktotal("SPK") == sum(n.endswith(".bsp") for n in names)
        et = spiceypy.str2et(product.start_time_utc)
        assert et == pytest.approx(float(utc_to_et(product.start_time_utc)), abs=1e-3)
        pos, _ = spiceypy.spkpos("IO", product.et_mid, "J2000", "NONE", "JUNO")
        assert np.isfinite(pos).all() and 1e3 < np.linalg.norm(pos) < 2e6
    assert spiceypy.ktotal("ALL") == 0


def test_loaded_kernels_load_a_set_once_and_hold_what_with_would(sim, product, kernel_url,
                                                                 tmp_path, monkeypatch):
    """Consecutive uses of one set load it once; another set replaces it; the pool holds
    the files ``with kset:`` loads, in its order; exit clears."""
    from iovolc.spice import KernelSet, LoadedKernels

    kset = kernel_set_for(product, kernel_root=kernel_url, cache_dir=tmp_path / "cache")
    with kset:
        want = [spiceypy.kdata(i, "ALL")[0] for i in range(spiceypy.ktotal("ALL"))]
    loads = []
    real = spiceypy.furnsh
    monkeypatch.setattr(spiceypy, "furnsh", lambda p: (loads.append(p), real(p))[1])
    smaller = KernelSet(kset.paths[:-1])
    with LoadedKernels() as loaded:
        for _ in range(3):
            loaded.use(kernel_set_for(product, kernel_root=kernel_url,
                                      cache_dir=tmp_path / "cache"))
            assert [spiceypy.kdata(i, "ALL")[0] for i in range(spiceypy.ktotal("ALL"))] == want
        assert len(loads) == len(want)
        # the last kernel (a CK) dropped, then taken back: only it is unloaded and loaded
        # again (stop 34), the text kernels stay parsed
        assert kset.paths[-1].suffix == ".bc"
        loaded.use(smaller)
        assert spiceypy.ktotal("ALL") == len(want) - 1 and len(loads) == len(want)
        loaded.use(kset)
        assert spiceypy.ktotal("ALL") == len(want) and len(loads) == len(want) + 1
        assert [spiceypy.kdata(i, "ALL")[0] for i in range(spiceypy.ktotal("ALL"))] == want
        n = len(loads)
        # a kernel replaced at its path (a cache refresh) is another set: loaded again
        ck = next(p for p in kset.paths if p.suffix == ".bc")
        data = ck.read_bytes()
        ck.unlink()
        ck.write_bytes(data)
        loaded.use(kset)
        assert loads[n:] == [str(ck)]
        # a text kernel replaced: the whole set is loaded again
        lsk = kset.paths[0]
        assert lsk.suffix == ".tls"
        data = lsk.read_bytes()
        lsk.unlink()
        lsk.write_bytes(data)
        loaded.use(kset)
        assert len(loads) == n + 1 + len(want)
        assert [spiceypy.kdata(i, "ALL")[0] for i in range(spiceypy.ktotal("ALL"))] == want
        with pytest.raises(FileNotFoundError):
            loaded.use(KernelSet((*kset.paths, tmp_path / "absent.bc")))
        # a set with a file gone raises before anything changes
        assert spiceypy.ktotal("ALL") == len(want)
    assert spiceypy.ktotal("ALL") == 0
    import threading

    from iovolc.spice import _POOL_LOCK
    got = []

    def other_thread():  # the pool's lock is free again after the exit
        ok = _POOL_LOCK.acquire(timeout=5)
        got.append(ok)
        if ok:
            _POOL_LOCK.release()

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert got == [True]


def _pool_answers(product) -> tuple:
    """What the loaded pool says: its files in order, a text variable, Io's state from
    Juno, the JIRAM frame's orientation and Juno's clock at the frame's time."""
    def ask(fn, *args):  # a value, or the SPICE error's short name (no data loaded)
        try:
            out = fn(*args)
        except spiceypy.utils.exceptions.SpiceyError as exc:
            return exc.short
        return [np.asarray(o).tolist() for o in out] if isinstance(out, tuple) else \
            np.asarray(out).tolist()

    files = [spiceypy.kdata(i, "ALL")[:2] for i in range(spiceypy.ktotal("ALL"))]
    et = product.et_mid
    return (files, ask(spiceypy.gdpool, "BODY501_RADII", 0, 3),
            ask(spiceypy.spkezr, "IO", et, "J2000", "LT+S", "JUNO"),
            ask(spiceypy.pxform, "JUNO_JIRAM_I", "J2000", et), ask(spiceypy.sce2c, -61, et))


def test_binary_tail_swap_gives_a_fresh_loads_pool(product, kernel_url, tmp_path,
                                                   monkeypatch):
    """Sets that differ only in binary kernels after a common prefix: the pool after the
    swap answers what a fresh load of the new set answers, bit for bit, with the files
    listed in the same order; the text kernels are not parsed again."""
    from iovolc.spice import BINARY_KERNELS, KernelSet, LoadedKernels

    kset = kernel_set_for(product, kernel_root=kernel_url, cache_dir=tmp_path / "cache")
    text = [p for p in kset.paths if p.suffix not in BINARY_KERNELS]
    binary = [p for p in kset.paths if p.suffix in BINARY_KERNELS]
    spks = [p for p in binary if p.suffix == ".bsp"]
    ck = next(p for p in binary if p.suffix == ".bc")
    assert len(spks) >= 2 and kset.paths[:len(text)] == tuple(text)
    # the same files in other orders and subsets (a binary file's priority is its order)
    variants = [KernelSet((*text, *spks, ck)), KernelSet((*text, ck, *spks[::-1])),
                KernelSet((*text, *spks[::-1], ck)), KernelSet((*text, *spks)),
                KernelSet((*text, *spks, ck))]
    fresh = []
    for v in variants:
        with v:
            fresh.append(_pool_answers(product))
    assert fresh[0][0] != fresh[1][0]  # the orders are seen by kdata
    assert isinstance(fresh[0][3], list) and isinstance(fresh[3][3], str)  # no CK: no pxform
    loads, unloads = [], []
    real_load, real_unload = spiceypy.furnsh, spiceypy.unload
    monkeypatch.setattr(spiceypy, "furnsh", lambda p: (loads.append(p), real_load(p))[1])
    monkeypatch.setattr(spiceypy, "unload", lambda p: (unloads.append(p), real_unload(p))[1])
    with LoadedKernels() as loaded:
        for v, want in zip(variants, fresh, strict=True):
            loaded.use(v)
            assert _pool_answers(product) == want
    assert spiceypy.ktotal("ALL") == 0
    # the text kernels were loaded once; every later change touched binary files alone
    assert sum(p in map(str, text) for p in loads) == len(text)
    assert unloads and all(Path(p).suffix in BINARY_KERNELS for p in unloads)


def _juno_spk_near_io(path: Path, et: float) -> Path:
    """A one-segment SPK putting Juno 100,000 km from Io around ``et``: it overlaps the
    simulated Juno SPK, so which of the two answers depends on their load order."""
    handle = spiceypy.spkopn(str(path), "overlap", 0)
    states = [[1.0e5, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0e5, 0.0, 0.0, 0.0, 0.0, 0.0]]
    spiceypy.spkw08(handle, -61, 501, "J2000", et - 1000.0, et + 1000.0, "overlap", 1, 2,
                    states, et - 1000.0, 2000.0)
    spiceypy.spkcls(handle)
    return path


def test_binary_swaps_keep_the_priority_of_overlapping_spks(product, kernel_url, tmp_path):
    """Two SPKs for Juno over the same time: the later loaded answers. Swapping them back
    and forth by their binary tails answers as a fresh load of each order does."""
    from iovolc.spice import BINARY_KERNELS, KernelSet, LoadedKernels

    kset = kernel_set_for(product, kernel_root=kernel_url, cache_dir=tmp_path / "cache")
    text = [p for p in kset.paths if p.suffix not in BINARY_KERNELS]
    binary = [p for p in kset.paths if p.suffix in BINARY_KERNELS]
    fake = _juno_spk_near_io(tmp_path / "overlap.bsp", product.et_mid)
    orders = [KernelSet((*text, *binary, fake)), KernelSet((*text, fake, *binary)),
              KernelSet((*text, *binary[:-1], fake, binary[-1]))]

    def io_from_juno():
        return spiceypy.spkezr("IO", product.et_mid, "J2000", "NONE", "JUNO")[0].tolist()

    fresh = []
    for v in orders:
        with v:
            fresh.append(io_from_juno())
    assert fresh[0] != fresh[1]  # the order decides
    assert np.linalg.norm(fresh[0][:3]) == pytest.approx(1.0e5)
    with LoadedKernels() as loaded:
        for i in (0, 1, 0, 2, 1, 2, 0):
            loaded.use(orders[i])
            assert io_from_juno() == fresh[i]


def test_a_set_with_a_text_change_loads_afresh(product, kernel_url, tmp_path):
    """A text kernel among the differing files (dropped or added): cleared and loaded as
    ``with kset:`` does (the pool lists the new set alone, in its order)."""
    from iovolc.spice import BINARY_KERNELS, KernelSet, LoadedKernels

    kset = kernel_set_for(product, kernel_root=kernel_url, cache_dir=tmp_path / "cache")
    text = [p for p in kset.paths if p.suffix not in BINARY_KERNELS]
    binary = [p for p in kset.paths if p.suffix in BINARY_KERNELS]
    only_binary = KernelSet(tuple(binary))
    fewer_text = KernelSet((*text[:-1], *binary))
    with LoadedKernels() as loaded:
        for v in (kset, only_binary, kset, fewer_text, kset):
            loaded.use(v)
            assert [spiceypy.kdata(i, "ALL")[0] for i in range(spiceypy.ktotal("ALL"))] == \
                [str(p) for p in v.paths]


def test_cache_reuse_and_refetch(sim, product, kernel_url, tmp_path):
    cache = tmp_path / "cache"
    first = resolve_kernels(product.spice_file_names, kernel_root=kernel_url, cache_dir=cache)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    os.utime(first[0], ns=(1, 1))  # an untouched cached file keeps its old stamp
    again = resolve_kernels(product.spice_file_names, kernel_root=kernel_url, cache_dir=cache)
    assert again == first
    assert first[0].stat().st_mtime_ns == 1
    assert all(p.stat().st_mtime_ns == stamps[p] for p in first[1:])
    # a cached file whose size differs from the source is fetched again
    spk = next(p for p in first if p.suffix == ".bsp")
    good = spk.read_bytes()
    spk.write_bytes(good[: len(good) // 2])
    resolve_kernels([spk.name], kernel_root=kernel_url, cache_dir=cache)
    assert spk.read_bytes() == good
    # source unreachable: a valid cached copy still serves
    src = next((sim / "kernels").rglob(spk.name))
    moved = tmp_path / "moved.bsp"
    shutil.move(src, moved)
    try:
        assert resolve_kernels([spk.name], kernel_root=kernel_url, cache_dir=cache) == [spk]
    finally:
        shutil.move(moved, src)
    # another kernel root never shares the cache (same name, other content)
    other = tmp_path / "other_root" / "spk"
    other.mkdir(parents=True)
    shutil.copy(src, other / spk.name)
    again = resolve_kernels([spk.name], kernel_root=str(other.parent), cache_dir=cache)
    assert again != [spk] and again[0].read_bytes() == good


def test_names_with_folders_and_flat_roots(sim, product, tmp_path):
    ck = next(n for n in product.spice_file_names if n.endswith(".bc"))
    spk = [n for n in product.spice_file_names if n.endswith(".bsp")][-1]
    labelled = [f"$KERNELS/ck/{ck}", f"spk/{spk}", "lsk\\naif0012.tls"]
    paths = resolve_kernels(labelled, kernel_root=str(sim / "kernels"), cache_dir=tmp_path / "c1")
    assert [(p.parent.name, p.name) for p in paths] == [
        ("ck", ck),
        ("spk", spk),
        ("lsk", "naif0012.tls"),
    ]
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in (ck, "naif0012.tls"):
        shutil.copy(next((sim / "kernels").rglob(name)), flat / name)
    paths = resolve_kernels(
        [ck, "naif0012.tls"], kernel_root=flat.as_uri(), cache_dir=tmp_path / "c2"
    )
    assert ["/".join(p.relative_to(tmp_path / "c2").parts[1:]) for p in paths] == [
        f"ck/{ck}",
        "lsk/naif0012.tls",
    ]


def test_memory_kernel_root(sim, tmp_path):
    mem = fsspec.filesystem("memory")
    root = f"memory://iovolc-kernels-{uuid.uuid4().hex}"
    try:
        for sub, name in (("lsk", "naif0012.tls"), ("pck", "pck00010.tpc")):
            mem.pipe(f"{root}/{sub}/{name}", (sim / "kernels" / sub / name).read_bytes())
        paths = resolve_kernels(
            ["naif0012.tls", "pck00010.tpc"], kernel_root=root, cache_dir=tmp_path / "c"
        )
        kset = kernel_set_for(
            ["pck00010.tpc", "naif0012.tls"], kernel_root=root, cache_dir=tmp_path / "c"
        )
        assert [p.name for p in kset.paths] == ["naif0012.tls", "pck00010.tpc"]
        with kset:
            assert spiceypy.ktotal("TEXT") == 2
            assert spiceypy.bodvrd("IO", "RADII", 3)[1][0] == pytest.approx(1829.4)
        assert paths == list(kset.paths)
    finally:
        mem.rm(root, recursive=True)


def test_missing_kernel_names_the_file(sim, kernel_url, tmp_path):
    with pytest.raises(MissingKernelError) as e:
        resolve_kernels(
            ["naif0012.tls", "juno_sc_rec_999999_999999_v01.bc"],
            kernel_root=kernel_url,
            cache_dir=tmp_path / "c",
        )
    err = e.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    assert err.kernel_name == "juno_sc_rec_999999_999999_v01.bc"
    assert "juno_sc_rec_999999_999999_v01.bc not found" in msg
    assert f"{kernel_url}/ck/juno_sc_rec_999999_999999_v01.bc" in msg  # where it looked
    assert "download it from NAIF's JUNO kernels" in msg and f"{kernel_url}/ck/" in msg
    assert str(pickle.loads(pickle.dumps(err))) == msg
    with pytest.raises(ValueError, match="unknown SPICE kernel type"):
        resolve_kernels(["juno_shape.xyz"], kernel_root=kernel_url, cache_dir=tmp_path / "c")


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("juno_fake.bsp", b"KPL/SPK\nthis is text, not a DAF\n", "does not start with 'DAF/'"),
        ("juno_fake.bc", b"DAFETF NAIF DAF ENCODED TRANSFER FILE\n", "does not start with 'DAF/'"),
        ("fake.tls", b"\\begindata\nDELTET/DELTA_T_A = 32.184\n", "does not start with 'KPL/'"),
        ("fake.tsc", b"", "file is empty"),
    ],
)
def test_corrupt_kernel(tmp_path, name, content, reason):
    from iovolc.spice import kernel_subdir

    root = tmp_path / "root"
    (root / kernel_subdir(name)).mkdir(parents=True)
    (root / kernel_subdir(name) / name).write_bytes(content)
    cache = tmp_path / "cache"
    with pytest.raises(CorruptKernelError) as e:
        resolve_kernels([name], kernel_root=root.as_uri(), cache_dir=cache)
    assert isinstance(e.value, ValueError)
    assert name in str(e.value) and reason in str(e.value)
    assert str(pickle.loads(pickle.dumps(e.value))) == str(e.value)
    assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing half-trusted left behind


def test_kernel_manifest(sim, product, kernel_url, tmp_path):
    paths = resolve_kernels(product.spice_file_names, kernel_root=kernel_url, cache_dir=tmp_path)
    manifest = kernel_manifest(paths)
    assert [m["name"] for m in manifest] == list(product.spice_file_names)
    for m, p in zip(manifest, paths, strict=True):
        data = p.read_bytes()
        assert m == {"name": p.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


# --- verification by SPICE in a check process (iovolc.kernels.KernelVerifier) --------------


@pytest.fixture(scope="module")
def products(sim):
    labels = sorted((sim / "archive").glob("JNOJIR_*/DATA/*.LBL"))
    return [read_jiram_product(p) for p in labels]


def _kernels(product, kernel_url, cache):
    return resolve_kernels(product.spice_file_names, kernel_root=kernel_url, cache_dir=cache)


def test_kernels_verified_once_in_one_process(products, kernel_url, tmp_path):
    cache = tmp_path / "cache"
    sets = [_kernels(p, kernel_url, cache) for p in products]
    verifier = KernelVerifier(cache)
    n_jobs = verifier.prepare(sets)
    assert verifier.n_runs == 1  # one run of the check process for every kernel of the batch
    distinct = {file_sha256(k) for s in sets for k in s}
    assert n_jobs == len(distinct) + 1  # each kernel once, + the CK through its SCLK
    for p, s in zip(products, sets, strict=True):
        verifier.check(s, p.et_mid, when=f"START_TIME {p.start_time_utc}")
    assert verifier.n_runs == 1 and verifier.n_processes <= 1
    # a new verifier (another process, later) finds every verdict cached by content
    again = KernelVerifier(cache)
    assert again.prepare(sets) == 0 and again.n_runs == again.n_processes == 0
    again.check(sets[0], products[0].et_mid)
    assert again.n_runs == again.n_processes == 0
    # the cached CK coverage is SPICE's own (ckcov in TDB through the label's SCLK and LSK)
    ck = next(k for k in sets[0] if k.suffix == ".bc")
    for k in sets[0]:
        if k.suffix in (".tls", ".tsc"):
            spiceypy.furnsh(str(k))
    cover = spiceypy.ckcov(str(ck), -61000, False, "INTERVAL", 0.0, "TDB")
    spiceypy.kclear()
    want = [list(spiceypy.wnfetd(cover, i)) for i in range(spiceypy.wncard(cover))]
    cached = [json.loads(f.read_text()) for f in (cache / "kernel-checks").glob("ck-*.json")]
    assert len(cached) == 1
    np.testing.assert_allclose(cached[0]["windows"], want, rtol=0, atol=1e-6)
    assert all(any(a <= p.et_mid <= b for a, b in want) for p in products)


def test_truncated_kernels_are_refused(products, kernel_url, tmp_path):
    cache = tmp_path / "cache"
    kset = _kernels(products[0], kernel_url, cache)
    ck = next(k for k in kset if k.suffix == ".bc")
    spk = next(k for k in kset if k.suffix == ".bsp" and "_pj" in k.name)
    root = tmp_path / "root"
    for sub in ("ck", "spk"):
        (root / sub).mkdir(parents=True)
    data_ck, data_spk = ck.read_bytes(), spk.read_bytes()
    (root / "ck" / "cut.bc").write_bytes(data_ck[: len(data_ck) // 2 // 1024 * 1024])
    (root / "spk" / "cut.bsp").write_bytes(data_spk[: len(data_spk) // 2 + 100])
    # CSPICE itself loads the record-aligned cut CK without a word: a header check is not enough
    spiceypy.furnsh(str(root / "ck" / "cut.bc"))
    spiceypy.kclear()
    verifier = KernelVerifier(cache)
    for name, words in (("cut.bc", "data run to byte"), ("cut.bsp", "1024-byte DAF records")):
        cut = resolve_kernels([name], kernel_root=str(root), cache_dir=cache)
        paths = [k for k in kset if k.suffix != Path(name).suffix] + cut
        with pytest.raises(CorruptKernelError) as e:
            verifier.check(paths, products[0].et_mid)
        assert e.value.kernel_name == name and "truncated" in str(e.value)
        assert words in str(e.value)
    assert verifier.n_runs == 2  # the good kernels were verified with the first cut


def test_time_and_bodies_not_covered(products, kernel_url, tmp_path):
    cache = tmp_path / "cache"
    p = products[0]
    kset = _kernels(p, kernel_url, cache)
    verifier = KernelVerifier(cache)
    verifier.check(kset, p.et_mid)
    with pytest.raises(KernelCoverageError, match=r"START_TIME X is not covered by CK "
                                                  r".*\.bc for JUNO_SPACECRAFT \(-61000\)"):
        verifier.check(kset, p.et_mid + 10.0, when="START_TIME X")
    no_pass_spk = [k for k in kset if not (k.suffix == ".bsp" and "_pj" in k.name)]
    with pytest.raises(KernelCoverageError, match=r"not covered by SPK .* JUNO \(-61\)"):
        verifier.check(no_pass_spk, p.et_mid)
    with pytest.raises(KernelCoverageError, match="no SCLK kernel"):
        verifier.check([k for k in kset if k.suffix != ".tsc"], p.et_mid)
    with pytest.raises(KernelCoverageError, match="no CK holding JUNO_SPACECRAFT"):
        verifier.check([k for k in kset if k.suffix != ".bc"], p.et_mid)
    assert verifier.n_runs == 1


def test_a_check_process_that_dies_fails_only_its_kernel(products, kernel_url, tmp_path):
    cache = tmp_path / "cache"
    kset = _kernels(products[0], kernel_url, cache)
    spicecheck.stop()  # a new check process cannot even start in 1 ms
    slow = KernelVerifier(cache, timeout_s=0.001)
    with pytest.raises(CorruptKernelError, match="check process died on it .*timed out"):
        slow.check(kset, products[0].et_mid)
    assert not list((cache / "kernel-checks").glob("*.json"))  # a timeout is never cached
    KernelVerifier(cache).check(kset, products[0].et_mid)


def test_the_check_process_serves_every_batch_and_is_replaced_when_it_dies(
        products, kernel_url, tmp_path, monkeypatch):
    kset = _kernels(products[0], kernel_url, tmp_path / "c0")
    spicecheck.stop()
    first = KernelVerifier(tmp_path / "c1")
    first.check(kset, products[0].et_mid)
    pid = spicecheck._PROCESS.proc.pid
    # another batch (nothing cached): the same process answers, with the same verdicts
    second = KernelVerifier(tmp_path / "c2")
    second.check(kset, products[0].et_mid)
    assert (first.n_processes, second.n_processes, second.n_runs) == (1, 0, 1)
    assert spicecheck._PROCESS.proc.pid == pid
    verdicts = [sorted(p.name for p in (tmp_path / c / "kernel-checks").glob("*.json"))
                for c in ("c1", "c2")]
    assert verdicts[0] == verdicts[1] and len(verdicts[0]) == len(kset) + 1
    for name in verdicts[0]:
        assert json.loads((tmp_path / "c1" / "kernel-checks" / name).read_text()) == \
            json.loads((tmp_path / "c2" / "kernel-checks" / name).read_text())
    # killed between batches: the next batch starts a new one
    os.kill(pid, 9)
    third = KernelVerifier(tmp_path / "c3")
    third.check(kset, products[0].et_mid)
    assert third.n_processes == 1 and spicecheck._PROCESS.proc.pid != pid
    # a process that dies on a job fails that job only; the rest go to a new process
    spicecheck.stop()
    monkeypatch.setattr(spicecheck, "_CHILD",
                        "import sys; sys.stdin.readline(); print('boom', file=sys.stderr); "
                        "sys.exit(3)")
    jobs = [{"id": str(i), "op": "kernel", "path": str(k)} for i, k in enumerate(kset[:3])]
    res, started = spicecheck.run_checks(jobs, timeout_s=60.0)
    assert started == 3 and sorted(res) == ["0", "1", "2"]
    assert all(r["error"] == "the SPICE check process died on it (exit code 3: boom)"
               and not r["transient"] for r in res.values())
    spicecheck.stop()
    monkeypatch.undo()
    res, started = spicecheck.run_checks(jobs, timeout_s=60.0)
    assert started == 1 and all(r["error"] == "" for r in res.values())


def test_kernel_names_never_leave_the_kernel_root(sim, tmp_path):
    root = tmp_path / "kernels"
    (root / "ck").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    real_ck = next((sim / "kernels" / "ck").glob("*.bc"))
    shutil.copy(real_ck, outside / "evil.bc")
    os.symlink(outside / "evil.bc", root / "ck" / "linked.bc")
    for name in ("ck/../../outside/evil.bc", "linked.bc"):
        with pytest.raises(MissingKernelError):
            resolve_kernels([name], kernel_root=str(root), cache_dir=tmp_path / "c")
    # a link inside the tree is fine
    shutil.copy(real_ck, root / "ck" / "real.bc")
    os.symlink(root / "ck" / "real.bc", root / "ck" / "alias.bc")
    assert resolve_kernels(["alias.bc"], kernel_root=str(root), cache_dir=tmp_path / "c")


def test_changed_kernel_or_product_under_an_old_name_costs_only_its_products(sim, tmp_path):
    """Kernels are immutable by name: a product naming ``x.bc`` whose bytes differ from the
    ``x.bc`` already landed (other products are processed with that one) is quarantined,
    as is a product re-issued with other bytes under an id already landed."""
    from iovolc.ingest import land_products
    from iovolc.pds3_index import read_index
    from iovolc.settings import load_settings
    from iovolc.store import Store

    fs = fsspec.filesystem("file")
    store = Store.from_settings(load_settings(store_url=(tmp_path / "store").as_uri()))
    archive = tmp_path / "archive"
    shutil.copytree(sim / "archive", archive)
    vol = archive / "JNOJIR_2057"
    rows = [(r.product_id, r.relative_path) for r in read_index(vol).rows.itertuples()]

    def land(products, kernels):
        return land_products(store, fs=fs, archive_url=str(archive), volume_url=str(vol),
                             volume_id=vol.name, products=products, kernel_root=str(kernels),
                             kfs=fs, cache_dir=tmp_path / "cache")

    assert not any(r.get("quarantined") for r in land(rows[:2], sim / "kernels"))
    other = tmp_path / "kernels"
    shutil.copytree(sim / "kernels", other)
    ck = next((other / "ck").glob("*.bc"))
    ck.write_bytes(next((sim / "truth" / "kernels" / "ck").glob("*.bc")).read_bytes())
    res = land(rows[2:4], other)
    assert [r.get("quarantined") for r in res] == [True, True]
    for (pid, _), r in zip(rows[2:4], res, strict=True):
        assert r["reason"].startswith(f"{pid}: SPICE_FILE_NAME {ck.name}: ")
        assert "differs from the" in r["reason"] and "already landed" in r["reason"]
    # a product re-issued under its landed id with other bytes
    label = vol / rows[0][1]
    label.write_bytes(label.read_bytes().replace(b"IOVOLC SIMULATOR", b"IOVOLC SIMULATED"))
    res = land(rows[:1], sim / "kernels")
    assert res[0]["quarantined"] and "differs from the copy landed before" in res[0]["reason"]
    assert not any(r.get("quarantined") for r in land(rows[1:2], sim / "kernels"))
