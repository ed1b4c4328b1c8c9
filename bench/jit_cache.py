"""A new checkout's compiled kernels: numba's cache beside the module vs the digest cache.

numba caches a compiled kernel beside its source file, under that file's path, so a
new checkout of the same source (a fresh clone, a CI clone, a benchmark's baseline
worktree, another install) compiles every kernel again. ``iovolc.jitcache`` keys the
cache by the package's source digest instead (docs/decisions.md, "Compiled kernels
cached by the source digest (stop 39)").

This copies the package twice to new paths (new files and times, no ``__pycache__``:
two fresh checkouts of the same source) and runs in each, in a fresh interpreter, what
a worker compiles first: ``raytrace.warm_up()`` and ``compiled.warm_up()`` (every
kernel the pipeline calls). Four runs, side by side:

* numba's own cache (``NUMBA_CACHE_LOCATOR_CLASSES=InTreeCacheLocator``, what every
  checkout had before): checkout A, then checkout B;
* the digest cache (an empty root, ``IOVOLC_JIT_CACHE_DIR``): checkout A, then B.

Printed per run: wall and CPU seconds, and the kernels loaded from the cache (hits)
and compiled (misses), summed over the package's kernels; then the second checkout's
wall time with numba's cache over that with the digest cache.

Run: ``uv run python bench/jit_cache.py`` (~2-3 min on 2 cores: three of the four runs
compile everything).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

from iovolc import jitcache

_WARM = """
import json, sys
from numba.core.registry import CPUDispatcher
from iovolc import compiled, raytrace
raytrace.warm_up()
compiled.warm_up()
hits = misses = 0
for m in list(sys.modules.values()):
    if getattr(m, "__name__", "").startswith("iovolc"):
        for obj in vars(m).values():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == m.__name__:
                hits += sum(obj.stats.cache_hits.values())
                misses += sum(obj.stats.cache_misses.values())
print(json.dumps({"file": compiled.__file__, "hits": hits, "misses": misses}))
"""


def _run(checkout: Path, env: dict) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _WARM], cwd=checkout, capture_output=True,
                         text=True, check=True, env={**env, "PYTHONPATH": str(checkout)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(res["file"]).is_relative_to(checkout):
        raise RuntimeError(f"imported {res['file']}, not the checkout {checkout}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**res, "wall": wall, "cpu": cpu}


def main() -> int:
    _common.print_command()
    src = Path(jitcache.__file__).parent
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES",
                        "IOVOLC_JIT_CACHE_DIR")}
    print(f"package source digest {jitcache.source_digest()} ({src})")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        for kind, extra in (("numba's cache beside the module",
                             {"NUMBA_CACHE_LOCATOR_CLASSES": "InTreeCacheLocator"}),
                            ("digest cache (empty root first)",
                             {"IOVOLC_JIT_CACHE_DIR": str(tmp / "jit")})):
            for name in ("A", "B"):
                checkout = tmp / f"{kind[:5]}-{name}"
                shutil.copytree(src, checkout / "iovolc",
                                ignore=shutil.ignore_patterns("__pycache__"))
                r = _run(checkout, {**env, **extra})
                rows.append((kind, name, r))
                print(f"{kind:34s} checkout {name}: wall {r['wall']:6.1f} s, CPU "
                      f"{r['cpu']:6.1f} s, kernels loaded {r['hits']:3d}, compiled "
                      f"{r['misses']:3d}", flush=True)
    old_b, new_b = rows[1][2], rows[3][2]
    print(f"\nthe second checkout of the same source: {old_b['wall']:.1f} s -> "
          f"{new_b['wall']:.1f} s wall ({old_b['wall'] / new_b['wall']:.1f}x), "
          f"CPU {old_b['cpu']:.1f} -> {new_b['cpu']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
