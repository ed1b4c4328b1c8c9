"""Nothing outside the archive root is opened while the bad-product corpus is ingested.

The ingest core (:func:`iovolc.ingest.plan_discovery` + :func:`iovolc.ingest.land_products`,
what the ``ingest-downlink`` flow's tasks run) goes over the corpus of
``tests/badproducts.py`` in this process, under an audit hook that records every
``open`` (and directory listing): no path outside the archive, the kernel tree, the
store, the cache and the Python installation is opened, links resolved -- in particular
``/etc/passwd`` and the planted ``outside/`` folders never are, although labels,
INDEX rows and links lead there. The Prefect-level version of this check (the whole
flow, then the catalog) is ``tests/flowruns/test_robustness.py``.
"""

from __future__ import annotations

import pytest
from badproducts import PLANTED, build_corpus, escapes, make_clean, record_opens  # tests/

from iovolc.ingest import land_products, plan_discovery
from iovolc.kernels import KernelVerifier
from iovolc.settings import load_settings
from iovolc.store import Store


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    base = tmp_path_factory.mktemp("confinement")
    simulate(scenario_for([60], seed=3, frames_per_pass=20), out_dir=base / "downlink", seed=3)
    clean, lone = make_clean(base / "downlink" / "archive", base / "clean")
    return build_corpus(clean, base / "downlink" / "kernels", base / "corpus",
                        edr_alone_rdr=lone)


def test_ingest_opens_nothing_outside_the_archive(corpus, tmp_path):
    import fsspec

    fs = fsspec.filesystem("file")
    store = Store.from_settings(load_settings(store_url=(tmp_path / "store").as_uri()))
    cache = tmp_path / "cache"
    verifier = KernelVerifier(cache)
    rows = []
    with record_opens() as opened:
        plan = plan_discovery(str(corpus.archive), fs=fs)
        for vol, info in plan.volumes.items():
            rows += land_products(store, fs=fs, archive_url=str(corpus.archive), volume_url=vol,
                                  volume_id=info["volume_id"], products=info["products"],
                                  kernel_root=str(corpus.kernels), kfs=fs, cache_dir=cache,
                                  verifier=verifier)
    assert any(p.startswith(str(corpus.archive)) for p in opened)
    out = escapes(opened, corpus, tmp_path / "store", cache, test_base=tmp_path.parent.parent)
    assert not out, out[:20]
    # every bad product was refused (plan problems + landing), the good ones landed
    quarantined = [r for r in rows if r.get("quarantined")]
    assert len(plan.problems) + len(quarantined) == len(corpus.bad)
    assert len(rows) - len(quarantined) == 39  # 20 EDR + 19 RDR (one frame is EDR-only)
    assert verifier.n_runs <= len(plan.volumes)  # one run of the SPICE check process per batch
    # nothing of the outside folders reached the store either
    for key in store.list(""):
        assert PLANTED not in store.get_bytes(key), key


def test_land_index_copies_no_link_out_of_the_volume(corpus, tmp_path):
    from tasks.work import land_index

    vol = next(corpus.archive.glob("JNOJIR_2*"))
    secret = corpus.outside[1] / "secret.txt"
    secret.write_text("not for the store\n")
    link = vol / "INDEX" / "NOTES.TXT"
    link.symlink_to(secret)
    try:
        settings = load_settings(archive_url=corpus.archive.as_uri(),
                                 store_url=(tmp_path / "store").as_uri())
        with record_opens() as opened:
            land_index(settings, volume_url=vol.as_uri(), volume_id=vol.name)
        assert not escapes(opened, corpus, tmp_path / "store", test_base=tmp_path.parent.parent)
    finally:
        link.unlink()
