"""The README's first command, end to end: ``iovolc demo`` in a process of its own.

The demo simulates the PJ57 downlink, starts Prefect's temporary API beside the
simulator, runs the four flows on it and scores the published catalog against the
simulator's truth. Run twice on one folder it must score the same and write nothing
(the simulator's truth is kept, the flows find every object already final).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.timeout(600)  # two runs of ~15-25 s; ~55 s if the loops compile


def _demo(out: Path, prefect_home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    script = Path(sys.executable).with_name("iovolc")  # the console script `uv run` runs
    res = subprocess.run([str(script), "demo", "--out", str(out)], env=env, cwd=out.parent,
                         capture_output=True, text=True, timeout=540)
    assert res.returncode == 0, f"iovolc demo exited {res.returncode}:\n{res.stderr[-4000:]}"
    assert "Traceback" not in res.stderr, res.stderr[-4000:]
    return res


def _score(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("comparison with the sim"))
    score = {}
    for ln in lines[start + 1:]:
        if not ln.startswith("  "):
            break
        key, value = ln.split()
        score[key] = value
    return score


def _where(stdout: str) -> dict[str, Path]:
    """The files the demo says the catalog is in (``name  file://...`` lines)."""
    files = {}
    for ln in stdout.splitlines():
        parts = ln.split()
        urls = [p for p in parts if p.startswith("file://")]
        if urls:
            files[parts[0]] = Path(urlparse(urls[0]).path)
    return files


def _store_files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in root.rglob("*") if p.is_file()}


def _processes_with(prefect_home: Path) -> list[int]:
    """Live processes started with this test's PREFECT_HOME (the temporary API's server)."""
    needle = f"PREFECT_HOME={prefect_home}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def test_the_readme_demo_end_to_end_and_its_rerun_writes_nothing(tmp_path):
    out, home = tmp_path / "demo", tmp_path / "prefect"
    first = _demo(out, home)
    assert "simulated" in first.stderr and "QA summary: PJ 57" in first.stdout
    assert "(changed: True" in first.stdout
    score = _score(first.stdout)
    # over every frame with Io in view; recall, names and hits at tests/e2e/test_servers.py's bar
    assert int(score["n_detectable"]) > 0, score
    assert float(score["recall"]) >= 0.9, score
    assert float(score["ref_id_accuracy"]) >= 0.95, score
    assert int(score["entries_on_hits"]) == 0 and int(score["spurious_confident"]) == 0, score
    assert score["every_row_has_power_interval"] == "True", score
    assert float(score["night_frames_placed"]) >= 0.9, score

    files = _where(first.stdout)
    assert set(files) >= {"catalog", "map.png", "catalog.html", "hotspots.csv",
                          "catalog.parquet"}, first.stdout
    assert all(p.is_relative_to(out / "store") and p.is_file() for p in files.values()), files
    assert files["map.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert files["catalog.html"].read_text().lstrip().lower().startswith("<!doctype html")
    n_rows = int(first.stdout.split("hotspots: ")[1].split(")")[0])
    assert len(files["hotspots.csv"].read_text().strip().splitlines()) == n_rows + 1
    if Path("/proc/self/environ").exists():
        assert _processes_with(home) == [], "the demo left Prefect's temporary API running"

    before = _store_files(out / "store"), _store_files(out / "downlink")
    second = _demo(out, home)
    assert "simulated" not in second.stderr  # the downlink and its truth are kept
    assert "(changed: False" in second.stdout
    assert _score(second.stdout) == score
    assert (_store_files(out / "store"), _store_files(out / "downlink")) == before
