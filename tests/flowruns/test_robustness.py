"""Bad products cost only themselves: a corpus of bad products added to a clean archive.

A clean distant pass (PJ60, 20 frames, EDR + RDR; one frame has only its EDR)
goes through ``process_perijove`` once; then a copy of the archive with more
than 40 kinds of bad products ADDED (``tests/badproducts.py``: bad times,
paths out of the archive, bad INDEX rows, duplicate ids, garbled labels, bad
pixel values, truncated/missing/uncovering kernels, links to /etc/passwd ...)
goes through it into a fresh store. The run completes, every bad product is
quarantined with a one-line reason naming it and the keyword or file and the
value, nothing else is quarantined, and the published catalog equals the
clean run's. The corpus ingest runs in this process (``IOVOLC_PROCESSES=0``)
under an audit hook: no file outside the archive, the kernel tree, the store,
the cache, the Python installation and the test's own temp folders is opened.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from badproducts import build_corpus, escapes, make_clean, record_opens  # tests/

from flows.params import IngestParams, PerijoveParams, Sources
from flows.perijove import process_perijove
from flows.stages import ingest_downlink
from iovolc.settings import load_settings
from iovolc.store import Store, object_key

pytestmark = pytest.mark.usefixtures("harness")

PJ = 60


def _store(url: str) -> Store:
    return Store.from_settings(load_settings(store_url=url))


def _run(sources: Sources, cache: Path, monkeypatch) -> tuple:
    monkeypatch.setenv("IOVOLC_CACHE_DIR", str(cache))
    state = process_perijove(PerijoveParams(perijoves=[PJ], sources=sources), return_state=True)
    assert state.is_completed(), state
    store = _store(sources.store_url)
    latest = store.get_json(object_key("catalog_latest"))
    return state, store, latest


def _table(store: Store, latest: dict, name: str) -> pd.DataFrame:
    df = store.get_parquet(latest["files"][name])
    key = "hotspot_id" if "hotspot_id" in df.columns else df.columns[0]
    return df.sort_values(key, ignore_index=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The clean pass, its archive (one frame EDR-only) and its published catalog."""
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    base = tmp_path_factory.mktemp("robust-clean")
    simulate(scenario_for([PJ], seed=3, frames_per_pass=20), out_dir=base / "downlink", seed=3)
    archive, lone_rdr = make_clean(base / "downlink" / "archive", base / "archive")
    sources = Sources(archive_url=archive.as_uri(),
                      kernels_url=(base / "downlink" / "kernels").as_uri(),
                      store_url=(base / "store").as_uri())
    with pytest.MonkeyPatch.context() as mp:
        t0 = time.perf_counter()
        _, store, latest = _run(sources, base / "cache", mp)
        print(f"clean run: {time.perf_counter() - t0:.1f} s")
    assert not [k for k in store.list("quarantine/") if k.endswith(".json")]
    return {"base": base, "archive": archive, "kernels": base / "downlink" / "kernels",
            "lone_rdr": lone_rdr, "store": store, "latest": latest}


def test_bad_products_cost_only_themselves(clean, tmp_path, monkeypatch):
    corpus = build_corpus(clean["archive"], clean["kernels"], tmp_path / "corpus",
                          edr_alone_rdr=clean["lone_rdr"])
    assert len({b.kind for b in corpus.bad}) >= 25
    sources = Sources(archive_url=corpus.archive.as_uri(), kernels_url=corpus.kernels.as_uri(),
                      store_url=(tmp_path / "store").as_uri())
    cache = tmp_path / "cache"

    # 1. the ingest stage, in this process, under the audit hook
    monkeypatch.setenv("IOVOLC_CACHE_DIR", str(cache))
    monkeypatch.setenv("IOVOLC_PROCESSES", "0")
    t0 = time.perf_counter()
    with record_opens() as opened:
        ing = ingest_downlink(IngestParams(perijoves=[PJ], sources=sources), return_state=True)
    t_ingest = time.perf_counter() - t0
    assert ing.is_completed(), ing
    assert any(p.startswith(str(corpus.archive)) for p in opened)
    out = escapes(opened, corpus, tmp_path / "store", cache, test_base=tmp_path.parent.parent)
    assert not out, out[:20]
    # the check itself sees an escape (links resolved too)
    planted = ["/etc/passwd", str(corpus.outside[0] / "X.IMG"), str(corpus.outside[1] / "P98.LBL"),
               str(next(corpus.archive.glob("JNOJIR_2*/DATA/*.IMG")).parent / "nothing")]
    link = next(p for p in corpus.archive.glob("JNOJIR_2*/DATA/*.IMG") if p.is_symlink())
    assert len(escapes([*planted, str(link)], corpus, tmp_path / "store", cache,
                       test_base=tmp_path.parent.parent)) == 4
    if os.environ.get("IOVOLC_SHOW_OPENS"):
        tops = sorted({"/".join(os.path.realpath(p).split("/")[:5]) for p in opened})
        print(len(opened), "opened:", *tops, sep="\n  ")

    # 2. the whole run (ingest again: bad products are retried and quarantined again)
    monkeypatch.setenv("IOVOLC_PROCESSES", "1")
    t0 = time.perf_counter()
    state, store, latest = _run(sources, cache, monkeypatch)
    print(f"corpus ingest {t_ingest:.1f} s, run {time.perf_counter() - t0:.1f} s")

    # every bad product quarantined, with its reason; nothing else
    records = {k.split("/")[-1][:-5]: store.get_json(k) for k in store.list("quarantine/")
               if k.endswith(".json") and k.count("/") == 2}
    assert all(k.startswith("quarantine/ingest/") for k in store.list("quarantine/"))
    matched: set[str] = set()
    problems = []
    for b in corpus.bad:
        names = [n for n in records if n == b.name or (b.name.endswith("-dup-")
                                                        and n.startswith(b.name))]
        if len(names) != 1:
            problems.append(f"{b.kind}: records {names} (expected {b.name})")
            continue
        reason = records[names[0]]["reason"]
        matched.add(names[0])
        if "\n" in reason or not reason.startswith(b.starts) or \
                not all(w in reason for w in b.words) or not reason.isprintable():
            problems.append(f"{b.kind}: {reason!r} (expected {b.starts!r} ... {b.words})")
    assert not problems, "\n".join(problems)
    assert set(records) == matched, sorted(set(records) - matched)
    # the run reports every one of them (its QA summary lists them with their reasons)
    reported = state.result()["ingest"]["quarantined"]
    assert len(reported) == len(records), (len(reported), len(records))

    # the good products (the EDR volume's too, around its bad row) are all in
    def manifest(s: Store) -> set[str]:
        return {m["product_id"] for m in s.get_json(object_key("manifest", stage="ingest",
                                                                perijove=PJ))}
    assert manifest(store) == manifest(clean["store"])

    # the EDR standing alone was calibrated as an EDR, exactly as in the clean run
    from astropy.io import fits

    key = object_key("calibrated", perijove=PJ, product_id=corpus.edr_alone)
    rdr_key = object_key("calibrated", perijove=PJ, product_id=clean["lone_rdr"])
    assert store.exists(key) and not store.exists(rdr_key)
    with fits.open(store.path(key)) as ours:
        assert ours[0].header["PRODTYPE"] == "EDR"
    from iovolc.products import fits_to_frame

    mine = fits_to_frame(store.get_bytes(key))
    theirs = fits_to_frame(clean["store"].get_bytes(key))
    assert mine.radiance.shape == theirs.radiance.shape and mine.radiance.size
    np.testing.assert_array_equal(mine.radiance, theirs.radiance)

    # the published catalog is the clean run's
    for name in ("catalog.parquet", "hotspots.parquet"):
        if name in clean["latest"]["files"]:
            pd.testing.assert_frame_equal(_table(store, latest, name),
                                          _table(clean["store"], clean["latest"], name))
    assert latest["n_hotspots"] == clean["latest"]["n_hotspots"] > 10
