"""iovolc.publish: the bundle of one catalog version and its static page in a real browser.

The browser test needs Debian's Chromium at /usr/bin/chromium
(``apt-get install -y chromium``); Playwright never downloads a browser here.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from iovolc.publish import build_bundle
from iovolc.publish.page import catalog_page, check_relative
from iovolc.publish.synthetic import synthetic_catalog

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VERSIONS = {"pipeline_version": "0.1.0", "config_hash": "3f2a9c"}


@pytest.fixture(scope="module")
def bundles():
    first = build_bundle(synthetic_catalog(perijoves=(57, 58)), version="v0001",
                         previous=None, **VERSIONS)
    previous = pd.read_parquet(io.BytesIO(first["catalog.parquet"]))
    second = build_bundle(synthetic_catalog(perijoves=(57, 58, 59), outburst=(59, 3000.0)),
                          version="v0002", previous=previous, **VERSIONS)
    return first, second


@pytest.fixture(scope="module")
def folder(bundles, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("catalog_v0002")
    for name, data in bundles[1].items():
        (out / name).write_bytes(data)
    return out


def test_bundle_files(bundles):
    first, second = bundles
    expected = {"catalog.parquet", "catalog.ecsv", "catalog.csv", "hotspots.parquet",
                "hotspots.ecsv", "hotspots.csv", "catalog.geojson", "hotspots.geojson",
                "catalog.vot", "map.png", "map_pj057.png", "map_pj058.png", "map_pj059.png",
                "map_polar.png", "timeseries.csv", "timeseries_top.png", "diff.md",
                "diff.json", "alerts.json", "catalog.html", "manifest.json"}
    assert set(second) == expected
    assert all(isinstance(b, bytes) and b for b in second.values())
    alerts = json.loads(second["alerts.json"])
    assert [a["id"] for a in alerts["alerts"]] == ["IVC-NEW-0002"]
    assert json.loads(first["alerts.json"])["alerts"][0]["id"] == "IVC-NEW-0001"
    diff = json.loads(second["diff.json"])
    assert diff["old_version"] == "v0001" and diff["new_version"] == "v0002"
    assert [c["hotspot_id"] for c in diff["changes"] if c["kind"] == "new"] == ["IVC-NEW-0002"]
    manifest = json.loads(second["manifest.json"])
    assert manifest["catalog_version"] == "v0002"
    assert set(manifest["files"]) == expected - {"manifest.json"}
    cat = pd.read_parquet(io.BytesIO(second["catalog.parquet"]))
    assert (cat["catalog_version"] == "v0002").all() and (cat["config_hash"] == "3f2a9c").all()


def test_page_uses_relative_links_only(bundles):
    page = bundles[1]["catalog.html"].decode()
    # the figures are embedded (data URIs: the page works from any one URL); the rest
    # of the page must link only relative files
    embedded = re.findall(r'src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', page)
    assert len(embedded) >= 2 and re.search(r'<img id="map" src="data:image/png', page)
    for uri in embedded:
        assert uri.startswith("data:image/png;base64,iVBORw0KGgo")  # a PNG signature
        page = page.replace(uri, "data:")
    refs = [r for r in re.findall(r'(?:src|href)="([^"]*)"', page) if r != "data:"]
    assert "map.png" in refs and "catalog.vot" in refs
    for ref in refs:
        assert check_relative(ref) == ref
        assert "://" not in ref and not ref.startswith("/") and ".." not in ref
    assert "/tmp" not in page and "file:" not in page and "http" not in page
    assert "<script src" not in page and "<link" not in page  # no CDN, nothing external
    with pytest.raises(ValueError):
        catalog_page(synthetic_catalog().catalog, version="v", map_file="/abs/map.png")
    for bad in ("../map.png", "file:///tmp/map.png", "https://cdn.example/x.png", "a\\b.png"):
        with pytest.raises(ValueError):
            check_relative(bad)


def test_page_in_headless_chromium(folder, bundles, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (CI: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    n_rows = len(pd.read_parquet(io.BytesIO(bundles[1]["catalog.parquet"])))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto((folder / "catalog.html").as_uri())
            page.wait_for_load_state("load")
            assert page.locator("#version").inner_text() == "v0002"
            for img in ("#map", "#map-polar", "#timeseries"):
                width = page.eval_on_selector(img, "e => e.complete ? e.naturalWidth : 0")
                assert width > 0, img
            assert page.locator("#catalog tbody tr").count() == n_rows
            assert page.locator(".alert").count() == 1

            col = page.locator("#catalog thead th").all_inner_texts().index("power_gw")
            cells = f"#catalog tbody tr td:nth-child({col + 1})"

            def powers() -> list[float]:
                return [float(v) for v in page.eval_on_selector_all(
                    cells, "tds => tds.map(td => td.getAttribute('data-v'))")]

            header = page.locator(f"#catalog thead th:nth-child({col + 1})")
            header.click()
            asc = powers()
            assert asc == sorted(asc) and len(asc) == n_rows
            assert header.get_attribute("aria-sort") == "ascending"
            header.click()
            desc = powers()
            assert desc == sorted(desc, reverse=True)
            assert desc[0] == pytest.approx(max(asc))
            # text column: hotspot ids sort alphabetically
            page.locator("#catalog thead th:nth-child(1)").click()
            ids = page.eval_on_selector_all(
                "#catalog tbody tr td:nth-child(1)", "tds => tds.map(td => td.textContent)")
            assert ids == sorted(ids, key=str.lower)
            assert failed == []
            page.screenshot(path=str(tmp_path / "catalog_page.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "catalog_page.png").stat().st_size > 10_000
