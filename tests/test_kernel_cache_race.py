"""Kernel cache stamps written by many threads at once: none fails, the last one wins.

A flaky failure of tests/flowruns/test_robustness.py (1 run in ~5) was a race: two
threads of one worker process fetching the same kernel wrote the source stamp through
the same per-process temp name, and the second ``os.replace`` found it gone
(``FileNotFoundError ... pck00010.tpc.src.<pid> -> pck00010.tpc.src``), which
quarantined a good product.
"""

from __future__ import annotations

import threading

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
