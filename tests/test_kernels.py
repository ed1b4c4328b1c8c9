"""Kernel sets from labels (iovolc.kernels), checked with spiceypy itself.

The kernel names come from a simulated product's label; the files from the
simulated NAIF-layout kernel tree, reached through ``file://`` and
``memory://`` URLs; spiceypy (ktotal, str2et, spkpos) is the reference.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import spiceypy

from iovolc.kernels import (
    CorruptKernelError,
    MissingKernelError,
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
