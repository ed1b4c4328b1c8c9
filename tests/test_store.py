"""Object store: layout, write-then-finalize, idempotent reruns, quarantine; file://, memory://, s3:// (moto)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import numpy as np
import pandas as pd
import pytest

from iovolc.settings import load_settings
from iovolc.store import (
    KINDS,
    Store,
    check_key,
    checksum_bytes,
    is_temp_key,
    object_key,
    quarantine,
)

RAW = "raw/JNOJIR_2057/DATA/JIR_IMG_RDR_2023364T083012_V01.IMG"


# -- object_key ------------------------------------------------------------------

EXPECTED = {
    "raw": ({"volume_id": "JNOJIR_2057", "relative_path": "DATA/JIR_IMG_RDR_2023364T083012_V01.IMG"},
            RAW),
    "raw_checksum": ({"volume_id": "JNOJIR_2057", "relative_path": "INDEX/INDEX.TAB"},
                     "raw/JNOJIR_2057/INDEX/INDEX.TAB.sha256"),
    "kernel": ({"name": "juno_sc_rec_sim_pj057_v01.bc"}, "kernels/ck/juno_sc_rec_sim_pj057_v01.bc"),
    "calibrated": ({"perijove": 57, "product_id": "JIR_IMG_RDR_2023364T083012_V01"},
                   "calibrated/pj057/JIR_IMG_RDR_2023364T083012_V01.fits"),
    "detections": ({"perijove": 5, "group_id": "g0003"}, "detections/pj005/g0003.parquet"),
    "frames": ({"perijove": 123, "group_id": "g0003"}, "frames/pj123/g0003.parquet"),
    "pointing": ({"perijove": 57}, "pointing/pj057.parquet"),
    "result": ({"perijove": 58, "filename": "detections.parquet"},
               "results/pj058/detections.parquet"),
    "catalog": ({"version": "v0002", "filename": "hotspots.csv"}, "catalog/v0002/hotspots.csv"),
    "catalog_latest": ({}, "catalog/latest.json"),
    "quarantine": ({"stage": "calibrate", "name": "JIR_X"}, "quarantine/calibrate/JIR_X.json"),
    "quarantine_object": ({"stage": "ingest", "name": "JIR_X", "filename": "JIR_X.IMG"},
                          "quarantine/ingest/JIR_X/JIR_X.IMG"),
    "manifest": ({"stage": "extract", "perijove": 57}, "manifests/extract/pj057.json"),
    "ingest_state": ({"volume_id": "JNOJIR_2057"}, "state/ingested/JNOJIR_2057.json"),
    "alerts": ({"version": "v0003"}, "alerts/v0003.json"),
    "lock": ({"name": "publish"}, "locks/publish.lock"),
}


def test_object_key_every_kind():
    assert set(EXPECTED) == set(KINDS)
    for kind, (parts, key) in EXPECTED.items():
        assert object_key(kind, **parts) == key
        assert not key.startswith("/") and ".." not in key


def test_object_key_kernel_subdirs():
    assert object_key("kernel", name="naif0012.tls") == "kernels/lsk/naif0012.tls"
    assert object_key("kernel", name="pck00010.tpc") == "kernels/pck/pck00010.tpc"
    assert object_key("kernel", name="juno_v12_mod2.tf") == "kernels/fk/juno_v12_mod2.tf"
    with pytest.raises(ValueError, match="unknown SPICE kernel type"):
        object_key("kernel", name="notes.txt")


@pytest.mark.parametrize(
    ("kind", "parts", "match"),
    [
        ("nope", {}, "unknown object kind 'nope'"),
        ("raw", {"volume_id": "JNOJIR_2057"}, "missing part.*relative_path"),
        ("calibrated", {"perijove": 57}, "missing part.*product_id"),
        ("catalog_latest", {"version": "v1"}, "unexpected part.*version"),
        ("raw", {"volume_id": "V", "relative_path": "/DATA/X.IMG"}, "relative"),
        ("raw", {"volume_id": "V", "relative_path": "DATA/../../etc/passwd"}, "relative_path"),
        ("raw", {"volume_id": "V", "relative_path": "DATA//X.IMG"}, "relative_path"),
        ("raw", {"volume_id": "..", "relative_path": "X.IMG"}, "volume_id"),
        ("raw", {"volume_id": "A/B", "relative_path": "X.IMG"}, "volume_id"),
        ("calibrated", {"perijove": "57", "product_id": "P"}, "perijove"),
        ("calibrated", {"perijove": 1000, "product_id": "P"}, "perijove"),
        ("calibrated", {"perijove": True, "product_id": "P"}, "perijove"),
        ("calibrated", {"perijove": 57, "product_id": ""}, "product_id"),
        ("quarantine", {"stage": "s", "name": "a\\b"}, "name"),
        ("catalog", {"version": "v1", "filename": 3}, "filename"),
        ("pointing", {"perijove": 57, "filename": "x.parquet"}, "unexpected part.*filename"),
        ("result", {"perijove": 57, "filename": "../x.parquet"}, "filename"),
        ("result", {"perijove": 57}, "missing part.*filename"),
    ],
)
def test_object_key_bad_input(kind, parts, match):
    with pytest.raises(ValueError, match=match):
        object_key(kind, **parts)


def test_check_key():
    assert check_key(RAW) == RAW
    for bad in ("", "/abs", "a//b", "a/../b", "./a", "a\\b", f"x.tmp-{uuid.uuid4().hex}"):
        with pytest.raises(ValueError):
            check_key(bad)
    assert is_temp_key(f"a/b.json.tmp-{uuid.uuid4().hex}")
    assert not is_temp_key("a/b.json")


def test_checksum_bytes():
    assert checksum_bytes(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# -- Store on file:// and memory:// ------------------------------------------------------


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    if request.param == "file":
        yield Store(f"file://{tmp_path}/store")
    else:
        url = f"memory://iovolc-test-{uuid.uuid4().hex}"
        s = Store(url)
        yield s
        if s.fs.exists(s.root):
            s.fs.rm(s.root, recursive=True)


def test_put_get_and_no_temp_left(store):
    assert not store.exists(RAW)
    assert store.put_bytes(RAW, b"pixels") is True
    assert store.exists(RAW)
    assert store.get_bytes(RAW) == b"pixels"
    assert store.sha256(RAW) == checksum_bytes(b"pixels")
    assert store.list() == [RAW]
    assert store.list_temp() == []
    # nothing but the final object exists on the filesystem
    assert [p for p in store.fs.find(store.root)] == [store.path(RAW)]
    assert store.stats.n_writes == 1


def test_rerun_writes_nothing(store, tmp_path):
    df = pd.DataFrame({"x": np.arange(5, dtype="f8"), "name": list("abcde")})
    local = tmp_path / "local.bin"
    local.write_bytes(b"local file" * 1000)
    keys = {
        "b": object_key("raw", volume_id="V", relative_path="DATA/A.IMG"),
        "f": object_key("kernel", name="naif0012.tls"),
        "j": object_key("manifest", stage="ingest", perijove=57),
        "p": object_key("detections", perijove=57, group_id="g1"),
    }

    def run(s: Store) -> list[bool]:
        return [
            s.put_bytes(keys["b"], b"abc"),
            s.put_file(keys["f"], local),
            s.put_json(keys["j"], {"b": 1, "a": [1, 2.5, None]}),
            s.put_parquet(keys["p"], df),
        ]

    assert run(store) == [True] * 4
    assert store.stats.n_writes == 4
    rerun = Store(store.url, store.storage_options)
    assert run(rerun) == [False] * 4
    assert rerun.stats.n_writes == 0
    assert rerun.stats.n_unchanged == 4
    assert store.list() == sorted(keys.values())


def test_conflicting_overwrite_raises(store):
    key = object_key("catalog_latest")
    store.put_json(key, {"version": "v1"})
    with pytest.raises(FileExistsError, match="catalog/latest.json"):
        store.put_json(key, {"version": "v2"})
    assert store.get_json(key) == {"version": "v1"}
    assert store.put_json(key, {"version": "v2"}, overwrite=True) is True
    assert store.get_json(key) == {"version": "v2"}
    assert store.list_temp() == []


def test_put_file_conflict_and_get_file(store, tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"A" * 3000)
    b = tmp_path / "b.bin"
    b.write_bytes(b"B" * 3000)  # same size, different content
    key = object_key("raw", volume_id="V", relative_path="DATA/X.IMG")
    assert store.put_file(key, a)
    with pytest.raises(FileExistsError, match="DATA/X.IMG"):
        store.put_file(key, b)
    out = store.get_file(key, tmp_path / "down" / "x.img")
    assert out.read_bytes() == a.read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["x.img"]
    with pytest.raises(FileNotFoundError, match="nope"):
        store.get_file("raw/nope", tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="nope"):
        store.get_bytes("raw/nope")


def test_crash_between_temp_write_and_finalize(store, monkeypatch):
    key = object_key("calibrated", perijove=57, product_id="P1")

    def crash(self, tmp_path, final_path):
        raise RuntimeError("killed before finalize")

    # a real crash runs no cleanup: the temp object stays behind
    monkeypatch.setattr(Store, "_finalize", crash)
    monkeypatch.setattr(Store, "_discard", lambda self, tmp: None)
    with pytest.raises(RuntimeError, match="killed"):
        store.put_bytes(key, b"fits")
    assert not store.exists(key)
    assert store.list() == []  # temps are invisible
    assert len(store.list_temp()) == 1 and store.list_temp()[0].startswith(key + ".tmp-")
    assert store.stats.n_writes == 0

    monkeypatch.undo()
    assert store.put_bytes(key, b"fits") is True  # the rerun completes
    assert store.get_bytes(key) == b"fits"
    assert store.list() == [key]
    assert store.clean_temp(older_than=3600) == 0  # too young: maybe a live writer
    assert store.clean_temp(older_than=0) == 1
    assert store.list_temp() == []


def test_failed_finalize_cleans_its_temp(store, monkeypatch):
    key = object_key("frames", perijove=57, group_id="g1")

    def fail(self, tmp_path, final_path):
        raise OSError("finalize failed")

    monkeypatch.setattr(Store, "_finalize", fail)
    with pytest.raises(OSError, match="finalize failed"):
        store.put_bytes(key, b"x")
    assert store.list_temp() == [] and store.list() == []


def test_list_prefixes(store):
    keys = [
        object_key("calibrated", perijove=57, product_id="A"),
        object_key("calibrated", perijove=57, product_id="B"),
        object_key("calibrated", perijove=58, product_id="A"),
        object_key("catalog_latest"),
    ]
    for k in keys:
        store.put_bytes(k, k.encode())
    assert store.list() == sorted(keys)
    assert store.list("calibrated/") == keys[:3]
    assert store.list("calibrated/pj057/") == keys[:2]
    assert store.list("calibrated/pj05") == keys[:3]
    assert store.list("catalog/latest.json") == [keys[3]]
    assert store.list("detections/") == []
    with pytest.raises(ValueError):
        store.list("../x")


def test_parquet_and_json_round_trip(store):
    df = pd.DataFrame({
        "frame": np.arange(4, dtype="i8"),
        "lat": np.array([1.5, -2.25, np.nan, 89.0]),
        "name": ["Loki", "Pele", "Tvashtar", "Masubi"],
    })
    key = object_key("detections", perijove=57, group_id="g2")
    store.put_parquet(key, df)
    pd.testing.assert_frame_equal(store.get_parquet(key), df)
    with pytest.raises(FileExistsError):
        store.put_parquet(key, df.assign(lat=df["lat"] + 1))

    obj = {"products": ["A", "B"], "n": 2, "ok": True, "x": 0.1, "none": None}
    jkey = object_key("ingest_state", volume_id="JNOJIR_2057")
    store.put_json(jkey, obj)
    assert store.get_json(jkey) == obj
    assert store.get_bytes(jkey).startswith(b'{\n  "n": 2')  # canonical: sorted, indented
    with pytest.raises(ValueError):
        store.put_json(object_key("catalog_latest"), {"x": float("nan")})


def test_equivalent_content_with_other_bytes_is_unchanged(store):
    key = object_key("ingest_state", volume_id="V")
    store.put_bytes(key, b'{"a": 1, "b": [1, 2]}')  # as another tool might have written it
    assert store.put_json(key, {"b": [1, 2], "a": 1}) is False
    assert store.stats.n_writes == 1 and store.stats.n_unchanged == 1


def test_delete(store):
    key = object_key("catalog", version="v1", filename="a.csv")
    store.put_bytes(key, b"a")
    assert store.delete(key) is True
    assert not store.exists(key)
    assert store.delete(key) is False
    assert store.stats.n_deletes == 1


def test_quarantine(store):
    src = object_key("raw", volume_id="V", relative_path="DATA/BAD.IMG")
    store.put_bytes(src, b"corrupt")
    rk = quarantine(store, stage="ingest", name="BAD", reason="size mismatch", payload_key=src)
    assert rk == "quarantine/ingest/BAD.json"
    rec = store.get_json(rk)
    assert rec["stage"] == "ingest" and rec["name"] == "BAD" and rec["reason"] == "size mismatch"
    assert rec["source_key"] == src
    assert rec["payload_key"] == "quarantine/ingest/BAD/BAD.IMG"
    assert rec["payload_sha256"] == checksum_bytes(b"corrupt")
    assert len(rec["utc"]) == len("2023-12-30T08:36:00.000") and not rec["utc"].endswith("Z")
    assert store.get_bytes(rec["payload_key"]) == b"corrupt"

    # quarantining the same thing again writes nothing
    again = Store(store.url, store.storage_options)
    assert quarantine(again, stage="ingest", name="BAD", reason="size mismatch",
                      payload_key=src) == rk
    assert again.stats.n_writes == 0
    assert again.get_json(rk)["utc"] == rec["utc"]

    # a new reason replaces the record; bytes-only payloads get a default name
    quarantine(store, stage="ingest", name="BAD", reason="checksum", payload_key=src)
    assert store.get_json(rk)["reason"] == "checksum"
    rk2 = quarantine(store, stage="calibrate", name="P2", reason="all NaN",
                     payload_bytes=b"\x00\x01")
    assert store.get_bytes("quarantine/calibrate/P2/payload.bin") == b"\x00\x01"
    # a payload that never reached the store is recorded as missing
    rk3 = quarantine(store, stage="ingest", name="GONE", reason="download failed",
                     payload_key="raw/V/DATA/GONE.IMG")
    assert store.get_json(rk3)["payload_missing"] is True
    assert store.get_json(rk3)["payload_key"] is None
    assert rk2 in store.list("quarantine/")


def test_store_from_settings_and_repr_hides_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    s = load_settings(store_url="s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:1")
    st = Store.from_settings(s)
    assert st.url == "s3://bucket/prefix"
    assert st.storage_options["client_kwargs"] == {"endpoint_url": "http://127.0.0.1:1"}
    assert st.storage_options["secret"] == "very-secret"
    assert "very-secret" not in repr(st) and "AKIDEXAMPLE" not in repr(st)
    assert "127.0.0.1:1" in repr(st)
    local = Store.from_settings(load_settings(store_url=str(tmp_path / "s")))
    assert local.url == f"file://{tmp_path}/s" and dict(local.storage_options) == {}
    assert hash(local) == hash(Store(local.url))


# -- Store on s3:// (moto server) ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def moto_endpoint(tmp_path):
    port = _free_port()
    log_path = tmp_path / "moto.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            "moto server did not start: " + log_path.read_text()
                        ) from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_store_on_s3_moto(moto_endpoint, monkeypatch):
    for name in list(os.environ):
        if name.startswith("IOVOLC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    bucket = f"iovolc-{uuid.uuid4().hex[:8]}"
    settings = load_settings(store_url=f"s3://{bucket}/prefix", s3_endpoint_url=moto_endpoint)
    fs, _ = settings.fs(f"s3://{bucket}")
    fs.mkdir(bucket)

    store = Store.from_settings(settings)
    assert store.root == f"{bucket}/prefix"
    assert not store.exists(RAW)
    assert store.put_bytes(RAW, b"pixels") is True
    assert store.exists(RAW)
    assert store.get_bytes(RAW) == b"pixels"
    assert store.list() == [RAW]
    assert store.list("raw/JNOJIR_2057/") == [RAW]
    assert store.list_temp() == []
    with pytest.raises(FileExistsError, match=RAW):
        store.put_bytes(RAW, b"other")

    # rerun with a fresh Store: reads only
    rerun = Store.from_settings(settings)
    assert rerun.put_bytes(RAW, b"pixels") is False
    mkey = object_key("manifest", stage="ingest", perijove=57)
    assert store.put_json(mkey, {"n": 1})
    assert rerun.put_json(mkey, {"n": 1}) is False
    assert rerun.stats.n_writes == 0
    assert rerun.list() == sorted([RAW, mkey])
    # the objects are where the layout says, under the prefix
    assert fs.cat_file(f"{bucket}/prefix/{RAW}") == b"pixels"


def test_lock_excludes_then_releases_and_breaks_a_stale_one(tmp_path):
    import os
    import time

    store = Store((tmp_path / "s").as_uri())
    key = object_key("lock", name="publish")
    with store.lock("publish", timeout_s=5):
        assert store.exists(key)
        with pytest.raises(TimeoutError, match="still held"), \
                store.lock("publish", timeout_s=0.3, poll_s=0.05):
            pass
    assert not store.exists(key)  # released
    # a lock left by a killed holder (older than the TTL) is broken
    assert store.create_exclusive(key, b'{"token": "dead"}')
    path = store.path(key)
    os.utime(path, (time.time() - 100, time.time() - 100))
    with store.lock("publish", ttl_s=50, timeout_s=5, poll_s=0.05):
        assert b"dead" not in store.get_bytes(key)
    assert not store.exists(key)
