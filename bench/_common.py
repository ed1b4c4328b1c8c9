"""Shared helpers of the bench scripts: command line, simulated data, products, kernels.

Not a benchmark itself. The scripts import it as ``_common`` (``bench/`` is
``sys.path[0]`` when a script in it is run).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from iovolc.kernels import kernel_set_for
from iovolc.pipeline import discover_products
from iovolc.reader import JiramProduct, read_jiram_product
from iovolc.spice import KernelSet

PERIJOVE = 57
FRAMES_PER_PASS = 24
SEED = 0


def base_parser(description: str, *, frames_help: str, frames_default: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, default=None,
                   help="output of `iovolc simulate` (archive/, kernels/, truth/); default: "
                        f"simulate PJ{PERIJOVE} ({FRAMES_PER_PASS} frames per pass, seed "
                        f"{SEED}) into a temporary folder")
    p.add_argument("--frames", type=int, default=frames_default, help=frames_help)
    return p


def children_cpu(*, exclude=()) -> float:
    """CPU seconds (user + system, with their own waited-for children) of this process's
    child processes, except the pids in ``exclude`` (Linux /proc; 0 elsewhere): e.g. a
    temporary Prefect server."""
    import os

    skip = set(exclude)
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and int(stat.parent.name) not in skip:
            total += sum(int(x) for x in fields[11:15]) / tick
    return total


def print_command() -> None:
    """The command line that produced this output (first line of every report)."""
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)


def ensure_data(data: Path | None, workdir: Path) -> Path:
    """``data`` if given, else a fresh simulated downlink under ``workdir``."""
    if data is not None:
        if not (data / "archive").is_dir() or not (data / "kernels").is_dir():
            raise SystemExit(f"--data {data}: expected archive/ and kernels/ from `iovolc simulate`")
        print(f"data: {data}")
        return data
    out = workdir / "sim"
    cmd = [sys.executable, "-m", "iovolc.cli", "simulate", "--perijove", str(PERIJOVE),
           "--frames-per-pass", str(FRAMES_PER_PASS), "--out", str(out), "--seed", str(SEED)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"data: simulated with `iovolc simulate --perijove {PERIJOVE} --frames-per-pass "
          f"{FRAMES_PER_PASS} --seed {SEED}` into a temp dir ({time.perf_counter() - t0:.1f} s)")
    return out


def load_rdrs(data: Path) -> list[JiramProduct]:
    """Every RDR of the archive, in time order."""
    urls, errors = discover_products(str(data / "archive"), prefer="RDR")
    if errors:
        raise SystemExit(f"archive errors: {errors}")
    products = [read_jiram_product(u) for u in urls]
    products = [p for p in products if p.product_type == "RDR"]
    if not products:
        raise SystemExit(f"no RDR products under {data / 'archive'}")
    return sorted(products, key=lambda p: p.et_mid)


def kernels_for(product: JiramProduct, data: Path, cache_dir: Path) -> KernelSet:
    """The product's label kernels (reconstructed CK) from ``data/kernels``."""
    return kernel_set_for(product, kernel_root=str(data / "kernels"), cache_dir=cache_dir)


def timed_call(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), seconds)``, measured where it runs (e.g. a pool worker)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0
