"""Two runs publishing different content at once (a backfill does this) give two
consecutive versions and lose nothing (local store: O_EXCL lock; the SeaweedFS
variant is in tests/e2e)."""

from __future__ import annotations

import pytest
from publish_race import check_no_lost_update, race
from test_catalog import _detections, _truth_sources

from iovolc.settings import load_settings
from iovolc.store import Store


@pytest.fixture(scope="module")
def det_files(tmp_path_factory):
    det, _ = _detections(_truth_sources(), seed=3)
    out = tmp_path_factory.mktemp("race")
    pjs = sorted(det["perijove"].unique())[:2]
    paths = {}
    for pj in pjs:
        paths[int(pj)] = str(out / f"pj{pj}.parquet")
        det[det["perijove"] == pj].to_parquet(paths[int(pj)])
    return paths


def test_concurrent_publishes_give_consecutive_versions(det_files, tmp_path):
    url = (tmp_path / "store").as_uri()
    results = race(url, det_files)
    store = Store.from_settings(load_settings(store_url=url))
    check_no_lost_update(store, results, list(det_files))
    assert not store.list("locks/")  # released
