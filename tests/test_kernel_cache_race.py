"""Kernel cache stamps written by many threads at once: none fails, the last one wins.

A flaky failure of tests/flowruns/test_robustness.py (1 run in ~5) was a race: two
threads of one worker process fetching the same kernel wrote the source stamp through
the same per-process temp name, and the second ``os.replace`` found it gone
(``FileNotFoundError ... pck00010.tpc.src.<pid> -> pck00010.tpc.src``), which
quarantined a good product.
"""

from __future__ import annotations

import threading

from iovolc import kernels
from iovolc.kernels import _read_stamp, _write_stamp


def test_concurrent_stamp_writes(tmp_path):
    dest = tmp_path / "pck" / "pck00010.tpc"
    dest.parent.mkdir()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write(k: int) -> None:
        start.wait()
        try:
            for i in range(200):
                _write_stamp(dest, f"{k}|{i}")
        except BaseException as exc:  # noqa: BLE001 -- collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    stamp = _read_stamp(dest)
    assert stamp is not None and stamp.endswith("|199")
    # no temp file left behind
    assert sorted(p.name for p in dest.parent.iterdir()) == ["pck00010.tpc.src"]


def test_a_changed_source_replaces_the_cached_file_without_removing_it(tmp_path, monkeypatch):
    """A kernel whose source changed since it was cached is fetched again over the cached
    copy (``os.replace``), which stays readable until then: two workers of a re-run on a
    re-made downlink each saw the old stamp, and one removed the file the other had just
    fetched and was checking (``FileNotFoundError``: a good product quarantined)."""
    root = tmp_path / "kernels" / "lsk"
    root.mkdir(parents=True)
    src = root / "naif0012.tls"
    src.write_text("KPL/LSK\n\\begindata\nDELTET/DELTA_T_A = 32.184\n\\begintext\n")
    cache = tmp_path / "cache"
    (dest,) = kernels.resolve_kernels(["naif0012.tls"], kernel_root=str(tmp_path / "kernels"),
                                      cache_dir=cache)
    old_stamp = _read_stamp(dest)
    src.write_text(src.read_text() + "\n")  # re-made: new size and time
    fetch = kernels._fetch
    seen = []

    def checked_fetch(fs, source, target):
        seen.append(target.is_file())  # the stale copy is still there while fetching
        fetch(fs, source, target)

    monkeypatch.setattr(kernels, "_fetch", checked_fetch)
    (again,) = kernels.resolve_kernels(["naif0012.tls"], kernel_root=str(tmp_path / "kernels"),
                                       cache_dir=cache)
    assert again == dest and seen == [True]
    assert dest.read_bytes() == src.read_bytes() and _read_stamp(dest) != old_stamp
