"""The compiled kernels' cache keyed by the package's source digest (iovolc.jitcache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from iovolc import compiled, jitcache


def _package(root: Path, files: dict[str, bytes]) -> Path:
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


FILES = {"a.py": b"x = 1\n", "sub/b.py": b"def f():\n    return 2\n", "data.txt": b"not code"}


def test_digest_follows_the_bytes_not_the_path_or_the_times(tmp_path):
    one = _package(tmp_path / "one", FILES)
    two = _package(tmp_path / "elsewhere" / "two", FILES)
    os.utime(two / "a.py", (1e9, 1e9))
    assert jitcache.source_digest(one) == jitcache.source_digest(two)
    assert len(jitcache.source_digest(one)) == 32
    variants = {
        "a byte": {**FILES, "a.py": b"x = 2\n"},
        "a file added": {**FILES, "c.py": b""},
        "a file renamed": {"a2.py": FILES["a.py"], "sub/b.py": FILES["sub/b.py"]},
        "bytes moved across files": {"a.py": b"x = 1\ndef f():\n", "sub/b.py": b"    return 2\n"},
    }
    for i, (what, files) in enumerate(variants.items()):
        other = _package(tmp_path / f"v{i}", files)
        assert jitcache.source_digest(other) != jitcache.source_digest(one), what
    # a file that is not Python source changes nothing
    other = _package(tmp_path / "txt", {**FILES, "data.txt": b"other"})
    assert jitcache.source_digest(other) == jitcache.source_digest(one)
    # the environment is in it too
    assert jitcache.source_digest(one, tag="a") != jitcache.source_digest(one, tag="b")
    assert jitcache.source_digest(one) == jitcache.source_digest(
        one, tag=jitcache.environment_tag())
    with pytest.raises(OSError, match="no Python source"):
        jitcache.source_digest(_package(tmp_path / "none", {"data.txt": b""}))


def test_environment_tag_holds_what_numbas_keys_leave_out(monkeypatch):
    import llvmlite
    import numba
    import numpy
    from numba.core import config

    tag = jitcache.environment_tag()
    for version in (numba.__version__, llvmlite.__version__, numpy.__version__, sys.version):
        assert repr(version) in tag
    monkeypatch.setattr(config, "BOUNDSCHECK", 1)
    assert jitcache.environment_tag() != tag
    monkeypatch.undo()
    monkeypatch.setattr(config, "OPT", 0)
    assert jitcache.environment_tag() != tag


def test_a_source_changed_after_its_digest_is_seen(tmp_path):
    pkg = _package(tmp_path / "pkg", FILES)
    jitcache.source_digest(pkg)
    assert jitcache.source_unchanged(pkg)
    path = pkg / "sub" / "b.py"
    path.write_bytes(b"def f():\n    return 3\n")  # the same size
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert not jitcache.source_unchanged(pkg)
    assert not jitcache.source_unchanged(tmp_path / "never-digested")


@pytest.mark.skipif(bool(os.environ.get("NUMBA_CACHE_DIR")
                         or os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES")),
                    reason="numba's own cache was asked for")
def test_the_package_kernels_are_cached_in_the_digest_folder():
    """Every cached kernel of every module of the package (no compiling: the locator
    is chosen when a kernel is decorated), and every module with cached kernels takes
    ``njit`` from iovolc.jitcache."""
    import importlib

    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher

    here = jitcache.cache_root() / jitcache.source_digest()
    assert here.is_dir()
    package = Path(jitcache.__file__).parent
    kernels = 0
    for path in sorted(package.glob("*.py")):
        text = path.read_text()
        if "cache=True" not in text or path.name == "jitcache.py":
            continue
        assert "from iovolc.jitcache import njit" in text, path.name
        module = importlib.import_module(f"iovolc.{path.stem}")
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__ \
                    and isinstance(obj._cache, FunctionCache):
                assert Path(obj._cache.cache_path) == here, (path.name, obj.__name__)
                kernels += 1
    assert kernels >= 80  # 8 modules' kernels (stop 39: 93)


def test_locator_only_for_the_package_and_a_writable_root(tmp_path, monkeypatch):
    fn = compiled.clipped_local_mean.py_func
    monkeypatch.setenv("IOVOLC_JIT_CACHE_DIR", str(tmp_path / "jit"))
    loc = jitcache.SourceDigestLocator.from_function(fn, compiled.__file__)
    assert loc is not None
    assert loc.get_cache_path() == str(tmp_path / "jit" / jitcache.source_digest())
    assert loc.get_source_stamp() == jitcache.source_digest()
    assert loc.get_disambiguator() == str(fn.__code__.co_firstlineno)
    # a module outside the package: numba's own locators
    outside = tmp_path / "mod.py"
    outside.write_text("def g():\n    return 1\n")
    assert jitcache.SourceDigestLocator.from_function(fn, str(outside)) is None
    # not a real file of the package (python -c run in the package's folder)
    monkeypatch.chdir(Path(jitcache.__file__).parent)
    assert jitcache.SourceDigestLocator.from_function(fn, "<string>") is None
    # a root that cannot be created (under a regular file): numba's own locators
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("IOVOLC_JIT_CACHE_DIR", str(tmp_path / "file" / "jit"))
    assert jitcache.SourceDigestLocator.from_function(fn, compiled.__file__) is None
    # no home folder at all (HOME unset, a uid with no passwd entry)
    for name in ("IOVOLC_JIT_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)
    with pytest.raises(OSError, match="no home folder"):
        jitcache.cache_root()
    assert jitcache.SourceDigestLocator.from_function(fn, compiled.__file__) is None
    assert jitcache.install()  # already installed: nothing raised either


def test_prune_removes_only_old_digest_folders(tmp_path):
    now = time.time()
    old, recent, keep = "a" * 32, "b" * 32, "c" * 32
    others = ["not-a-digest", "photos_2024_summer_trip_backup_x", "A" * 32]  # 32 long
    for name in (old, recent, keep, *others):
        (tmp_path / name).mkdir()
    (tmp_path / ("d" * 32)).write_text("a file, not a folder")
    for name in (old, keep, *others, "d" * 32):
        os.utime(tmp_path / name, (now - 40 * 86400, now - 40 * 86400))
    os.utime(tmp_path / recent, (now - 5 * 86400, now - 5 * 86400))
    assert jitcache.prune(tmp_path, keep=keep, older_than_days=30, now=now) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [recent, keep, *others, "d" * 32])
    assert jitcache.prune(tmp_path / "missing", keep=keep) == []


_PROBE = """
import json, sys, numpy as np, iovolc, iovolc.jitcache
if len(sys.argv) > 1:  # the checkout changes under the running process
    with open(sys.argv[1], "a") as f:
        f.write("# changed after the digest was taken\\n")
from iovolc import compiled
compiled.nonzero_box(np.zeros((3, 4), dtype=bool))
st = compiled.nonzero_box.stats
print(json.dumps({"file": iovolc.__file__, "path": compiled.nonzero_box._cache.cache_path,
                  "hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values())}))
"""


def _probe(package_parent: Path, env: dict, *edit: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE, *edit], env={**env, "PYTHONPATH":
                         str(package_parent)}, cwd=package_parent, capture_output=True,
                         text=True, timeout=600, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(res["file"]).parent.parent == package_parent  # this copy was imported
    return res


def test_another_checkout_of_the_same_source_loads_the_compiled_kernel(tmp_path):
    """Two copies of the package at two paths (new files, new times), one cache root:
    the second loads what the first compiled; a copy with one other file edited
    compiles again, into another folder. numba's NUMBA_CACHE_DIR still wins."""
    src = Path(jitcache.__file__).parent
    copies = []
    for name in ("a", "b", "edited"):
        shutil.copytree(src, tmp_path / name / "iovolc",
                        ignore=shutil.ignore_patterns("__pycache__"))
        copies.append(tmp_path / name)
    with open(copies[2] / "iovolc" / "greedy.py", "a") as f:  # not the probed kernel's file
        f.write("\n# an edit elsewhere in the package\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES")}
    env["IOVOLC_JIT_CACHE_DIR"] = str(tmp_path / "jit")
    first, second, edited = (_probe(c, env) for c in copies)
    assert (first["misses"], first["hits"]) == (1, 0)
    assert (second["misses"], second["hits"]) == (0, 1)
    assert second["path"] == first["path"]
    assert Path(first["path"]).parent == tmp_path / "jit"
    assert (edited["misses"], edited["hits"]) == (1, 0)
    assert edited["path"] != first["path"]
    # numba's own save ran under the lock (stop 40)
    assert sorted(p.name for p in Path(first["path"]).glob("*.lock")) == sorted(
        p.name + ".lock" for p in Path(first["path"]).glob("*.nbi"))
    own = _probe(copies[1], {**env, "NUMBA_CACHE_DIR": str(tmp_path / "numba")})
    assert Path(own["path"]).is_relative_to(tmp_path / "numba")
    assert own["misses"] == 1
    assert list((tmp_path / "numba").rglob("*.nbi"))
    assert not list((tmp_path / "numba").rglob("*.lock"))  # numba's cache: as numba has it
    # a file edited after the digest was taken, before compiled.py was imported: its
    # kernels go to numba's own cache beside the module, not under the stale digest
    late = _probe(copies[0], env, str(copies[0] / "iovolc" / "greedy.py"))
    assert late["path"] == str(copies[0] / "iovolc" / "__pycache__")
    assert late["misses"] == 1


def _saves_at_once(save, folder: Path, n: int = 4) -> dict:
    """``n`` threads save ``n`` keys of one kernel's cache file into ``folder`` at once,
    through ``save``; what a new reader then loads for each key. Each writer waits
    0.2 s after reading the index, so without a lock every one reads it before any
    writes it."""
    from numba.core import caching

    class SlowIndex(caching.IndexDataCacheFile):
        def _load_index(self):
            out = super()._load_index()
            time.sleep(0.2)
            return out

    keys = [f"signature {i}" for i in range(n)]
    barrier = threading.Barrier(n)

    def write(key):
        f = SlowIndex(str(folder), "kernel-12.py311", "stamp")
        barrier.wait()
        save(f, key, {"code for": key})

    threads = [threading.Thread(target=write, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = caching.IndexDataCacheFile(str(folder), "kernel-12.py311", "stamp")
    return {k: reader.load(k) for k in keys}


def test_saves_at_once_keep_every_signature_with_its_own_code(tmp_path, monkeypatch):
    """numba's save takes the first data-file number its read of the index leaves free:
    writers at once take the same one, and the index names another writer's code or
    loses entries. In a folder the locator hands out the save holds a lock (stop 40)."""
    from numba.core import caching

    monkeypatch.setenv("IOVOLC_JIT_CACHE_DIR", str(tmp_path / "root"))
    locked = caching.IndexDataCacheFile.save
    assert getattr(locked, "iovolc_locked", False)  # installed when iovolc was imported
    kernel = compiled.nonzero_box.py_func
    folder = Path(jitcache.SourceDigestLocator.from_function(
        kernel, compiled.__file__).get_cache_path())  # a folder the locator hands out
    got = _saves_at_once(locked, folder)
    assert got == {k: {"code for": k} for k in got}
    assert (folder / "kernel-12.py311.nbi.lock").is_file()
    # the control: numba's own save, the same writers at once, loses or mixes entries
    # (numba 0.68; should numba lock its saves one day, this fails: drop the wrapper then)
    other = tmp_path / "root" / ("cd" * 16)
    other.mkdir()
    got = _saves_at_once(locked.__wrapped__, other)
    assert got != {k: {"code for": k} for k in got}
    # any other numba cache (a folder the locator did not hand out): numba's own save
    for where in (tmp_path / "elsewhere", tmp_path / "root" / "not-a-digest",
                  tmp_path / "root" / ("ab" * 16)):
        where.mkdir()
        f = caching.IndexDataCacheFile(str(where), "k-1.py311", "stamp")
        f.save("s", {"x": 1})
        assert f.load("s") == {"x": 1}
        assert not list(where.glob("*.lock"))
    # a folder the locator handed out is locked though the root moved since
    monkeypatch.setenv("IOVOLC_JIT_CACHE_DIR", str(tmp_path / "root2"))
    loc = jitcache.SourceDigestLocator.from_function(kernel, compiled.__file__)
    monkeypatch.setenv("IOVOLC_JIT_CACHE_DIR", str(tmp_path / "moved"))
    f = caching.IndexDataCacheFile(loc.get_cache_path(), "k-3.py311", "stamp")
    f.save("s", {"z": 3})
    assert f.load("s") == {"z": 3}
    assert (Path(loc.get_cache_path()) / "k-3.py311.nbi.lock").is_file()
    monkeypatch.setenv("IOVOLC_JIT_CACHE_DIR", str(tmp_path / "root"))
    # a lock held elsewhere all along (a stopped holder): a wait, then numba's own save
    import fcntl

    monkeypatch.setattr(jitcache, "LOCK_WAIT_S", 0.3)
    holder = os.open(folder / "k-2.py311.nbi.lock", os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        f = caching.IndexDataCacheFile(str(folder), "k-2.py311", "stamp")
        t0 = time.monotonic()
        f.save("s", {"w": 4})
        assert time.monotonic() - t0 >= 0.3
        assert f.load("s") == {"w": 4}
    finally:
        os.close(holder)

    # flock refused (some network file systems): numba's own save, at once
    def refuse(fd, op):
        raise OSError("flock refused")

    monkeypatch.setattr(fcntl, "flock", refuse)
    f = caching.IndexDataCacheFile(str(folder), "k-5.py311", "stamp")
    t0 = time.monotonic()
    f.save("s", {"y": 2})
    assert time.monotonic() - t0 < 0.3
    assert f.load("s") == {"y": 2}
    assert jitcache.install() and caching.IndexDataCacheFile.save is locked  # wrapped once


_WRITER = """
import json, sys, time, numpy as np
from numba.core import caching
from iovolc import compiled
load_index = caching.IndexDataCacheFile._load_index
def slow(self):  # every writer waits after reading the index: unlocked, all read it first
    out = load_index(self)
    time.sleep(0.3)
    return out
caching.IndexDataCacheFile._load_index = slow
x = np.zeros((5, 7), dtype=sys.argv[1])
x[1:3, 2:6] = 1
while time.time() < float(sys.argv[2]):  # every writer compiles from the same instant
    time.sleep(0.001)
st = compiled.nonzero_box.stats
print(json.dumps({"box": [int(v) for v in compiled.nonzero_box(x)],
                  "misses": sum(st.cache_misses.values()), "hits": sum(st.cache_hits.values())}))
"""

_DTYPES = ("bool", "float64", "int32", "uint8")


def test_processes_compiling_at_once_leave_a_cache_others_load(tmp_path):
    """Four processes compile four signatures of one package kernel at the same instant
    into one fresh cache root; a fifth loads all four (no compiling) and each gives the
    right answer for its own types. Each writer waits 0.3 s after reading the index
    (numba's saves take milliseconds against the processes' tens of milliseconds of
    jitter: without that wait, unlocked, this passed 3 runs of 3 here)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES")}
    env["IOVOLC_JIT_CACHE_DIR"] = str(tmp_path / "jit")
    start = time.time() + 12.0  # past every writer's imports, on a busy machine too
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, dt, repr(start)], env=env,
                              stdout=subprocess.PIPE, text=True) for dt in _DTYPES]
    outs = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [o["box"] for o in outs] == [[1, 2, 2, 5]] * len(_DTYPES)
    assert sum(o["misses"] for o in outs) == len(_DTYPES)
    check = """
import json, sys, numpy as np
from iovolc import compiled
out = []
for dt in sys.argv[1:]:
    x = np.zeros((6, 9), dtype=dt)
    x[2:5, 1:4] = 1
    out.append([int(v) for v in compiled.nonzero_box(x)])
st = compiled.nonzero_box.stats
print(json.dumps({"boxes": out, "misses": sum(st.cache_misses.values()),
                  "hits": sum(st.cache_hits.values())}))
"""
    res = subprocess.run([sys.executable, "-c", check, *_DTYPES], env=env, capture_output=True,
                         text=True, timeout=600, check=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["boxes"] == [[2, 4, 1, 3]] * len(_DTYPES)
    assert (got["hits"], got["misses"]) == (len(_DTYPES), 0)
