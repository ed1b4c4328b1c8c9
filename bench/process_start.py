"""What a new process pays to import the pipeline: with the installed bytecode and without.

Every stage worker process, the demo, each ``uv run`` and each test subprocess
imports Prefect, pandas, SciPy, scikit-image, astropy and the pipeline. Where
``PYTHONDONTWRITEBYTECODE=1`` is set (this machine, many CI and container
images) and the installer wrote no ``.pyc`` files, each of those processes
compiles every imported module from source again. ``pyproject.toml`` sets
``[tool.uv] compile-bytecode = true`` so that ``uv sync``/``uv run`` install
the bytecode (docs/decisions.md, "Bytecode at install").

This starts ``--runs`` fresh interpreters per variant, alternating, each
importing what a stage worker and the CLI import:

* ``installed``: the environment as installed (its ``.pyc`` files are used);
* ``from source``: the same with ``PYTHONPYCACHEPREFIX`` pointing at a
  folder that holds only the standard library's bytecode (compiled into it
  first: the interpreter ships its own ``.pyc`` files, which the setting
  does not change) and ``PYTHONDONTWRITEBYTECODE=1``, so the packages'
  bytecode is neither found nor written: what every process paid before
  the setting.

Printed: wall and CPU seconds per start (best and median), and their ratio.

Run: ``uv run python bench/process_start.py [--runs 5]`` (~1 min).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import _common

IMPORTS = ("import prefect, pandas, scipy.ndimage, skimage.morphology, astropy.io.fits, "
           "spiceypy, s3fs, iovolc.pipeline, tasks.work, flows.backfill, iovolc.cli")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _start(env: dict) -> tuple[float, float]:
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], check=True, env=env,
                   cwd=Path(__file__).resolve().parents[1])
    return time.perf_counter() - t0, _children_cpu() - cpu0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="starts per variant")
    args = p.parse_args()
    _common.print_command()
    import prefect

    cached = sorted(Path(prefect.__file__).parent.glob("__pycache__/*.pyc"))
    print(f"installed bytecode for prefect: {len(cached)} .pyc files"
          + ("" if cached else " (none: both variants compile from source)"))
    with tempfile.TemporaryDirectory() as prefix:
        env = {**os.environ}
        variants = {"installed": env,
                    "from source": {**env, "PYTHONPYCACHEPREFIX": prefix,
                                    "PYTHONDONTWRITEBYTECODE": "1"}}
        stdlib = sysconfig.get_paths()["stdlib"]
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "-x",
                        r"[/\\](test|tests|idlelib|tkinter|turtledemo|lib2to3)[/\\]",
                        stdlib], env=variants["from source"], check=False,
                       stdout=subprocess.DEVNULL)
        print(f"standard library bytecode compiled into the prefix: "
              f"{sum(1 for _ in Path(prefix).rglob('*.pyc'))} .pyc files")
        _start(env)  # the file system's cache warmed once for both
        res: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
        for _ in range(args.runs):
            for name, e in variants.items():
                res[name].append(_start(e))
    print(f"{'variant':12s} {'wall best':>10s} {'wall median':>12s} {'CPU best':>9s} "
          f"{'CPU median':>11s}  (s per process start, {args.runs} starts each)")
    for name, rows in res.items():
        w, c = [r[0] for r in rows], [r[1] for r in rows]
        print(f"{name:12s} {min(w):10.2f} {statistics.median(w):12.2f} {min(c):9.2f} "
              f"{statistics.median(c):11.2f}")
    src, ins = res["from source"], res["installed"]
    print(f"from source / installed: wall {statistics.median(r[0] for r in src) / statistics.median(r[0] for r in ins):.2f}x, "
          f"CPU {statistics.median(r[1] for r in src) / statistics.median(r[1] for r in ins):.2f}x "
          f"({statistics.median(r[1] for r in src) - statistics.median(r[1] for r in ins):.2f} s CPU "
          "saved per process start)")


if __name__ == "__main__":
    main()
