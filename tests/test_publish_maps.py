"""iovolc.publish: the basemap's longitude direction, maps and time series."""

from __future__ import annotations

import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iovolc.publish import maps, timeseries
from iovolc.publish.basemap import load_basemap, lonlat_to_pixel, pixel_to_lonlat
from iovolc.publish.synthetic import synthetic_catalog

SHARED_BASEMAP = (Path(__file__).resolve().parents[2] / "shared" / "reference" / "basemap"
                  / "Io_GalileoSSI-Voyager_Global_Mosaic_ClrMerge_2km_180W.jpg")
LOKI = (12.8, 308.4)  # lat N, lon W (Davies et al. 2024 Table A1)


def _dark_fraction(img: np.ndarray, lat: float, lon_west: float, *, half_deg: float = 3.0):
    """Fraction of pixels darker than 0.6 x the map median in a +-half_deg box."""
    grey = img.astype(float).mean(axis=2)
    dark = grey < 0.6 * np.median(grey)
    col, row = lonlat_to_pixel(lon_west, lat, shape=grey.shape)
    k = int(round(half_deg * grey.shape[1] / 360.0))
    c, r = int(round(float(col))), int(round(float(row)))
    return float(dark[r - k:r + k + 1, c - k:c + k + 1].mean()), float(dark.mean())


def test_basemap_longitude_direction_loki():
    """Loki Patera's dark horseshoe is where our mapping puts 308.4 W, not at 51.6 W."""
    img = load_basemap()
    assert img.shape == (1024, 2048, 3)
    at_loki, map_wide = _dark_fraction(img, *LOKI)
    mirrored, _ = _dark_fraction(img, LOKI[0], 360.0 - LOKI[1])
    assert at_loki > 0.2 and at_loki > 10 * map_wide  # 0.33 vs 0.016 map-wide
    assert mirrored < 0.02  # 0.0
    # x: 360 W at the left edge, 0 W at the right edge
    col, _ = lonlat_to_pixel(LOKI[1], LOKI[0], shape=img.shape[:2])
    assert col == pytest.approx((360.0 - 308.4) / 360.0 * 2048 - 0.5)


@pytest.mark.skipif(not SHARED_BASEMAP.exists(), reason="../shared basemap not present")
def test_original_basemap_has_the_same_layout():
    """The same check on the full-resolution original: the downscaled copy kept its layout."""
    with Image.open(SHARED_BASEMAP) as im:
        img = np.asarray(im.convert("RGB").reduce(2))
    at_loki, map_wide = _dark_fraction(img, *LOKI)
    mirrored, _ = _dark_fraction(img, LOKI[0], 360.0 - LOKI[1])
    assert at_loki > 0.2 and at_loki > 10 * map_wide
    assert mirrored < 0.02


def test_pixel_mapping_round_trip():
    lon = np.array([0.0, 0.1, 90.0, 180.0, 308.4, 359.9])
    lat = np.array([0.0, 89.0, -45.0, 12.8, 12.8, -89.0])
    col, row = lonlat_to_pixel(lon, lat, shape=(1024, 2048))
    lon2, lat2 = pixel_to_lonlat(col, row, shape=(1024, 2048))
    np.testing.assert_allclose(lat2, lat, atol=1e-9)
    np.testing.assert_allclose(np.mod(lon2 - lon + 180, 360) - 180, 0.0, atol=1e-9)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(BytesIO(data)) as im:
        return im.size


def test_maps_are_pngs_and_symbols_keep_their_colours():
    cat = synthetic_catalog(perijoves=(57, 58), outburst=(58, 3000.0)).catalog
    full = maps.map_png(cat)
    one = maps.map_png(cat, perijove=57)
    polar = maps.polar_map_png(cat)
    for png in (full, one, polar):
        w, h = _png_size(png)
        assert w > 800 and h > 500
        assert len(png) < 1_000_000
    with Image.open(BytesIO(full)) as im:
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    colours = {tuple(c) for c in np.unique(rgb, axis=0)}
    assert (255, 0, 0) in colours  # new-source stars stay pure red in the palette PNG
    assert (255, 215, 0) in colours  # gold circles


def test_maps_drawn_over_one_drawing_of_the_fixed_parts_are_the_same_files():
    """map_pngs (basemap, axes, legend drawn once; each map's symbols over a copy) gives
    map_png's files byte for byte: the cumulative map, each perijove's, and a perijove
    without hotspots."""
    cat = synthetic_catalog(perijoves=(57, 58), outburst=(58, 3000.0)).catalog
    which = [None, 57, 58, 60]
    fast = maps.map_pngs(cat, which)
    assert list(fast) == which
    for pj in which:
        assert fast[pj] == maps.map_png(cat, perijove=pj), pj


def test_map_points_new_sources_and_cumulative_power():
    res = synthetic_catalog(perijoves=(57, 58), outburst=(58, 3000.0))
    pts = maps.map_points(res.catalog).set_index("hotspot_id")
    assert pts.loc["IVC-NEW-0001", "is_new"] and pts.loc["IVC-NEW-0002", "is_new"]
    assert not pts.loc["IVC-Loki P.", "is_new"]
    loki = res.catalog[res.catalog["hotspot_id"] == "IVC-Loki P."]
    assert pts.loc["IVC-Loki P.", "power_gw"] == pytest.approx(loki["power_gw"].max())
    one = maps.map_points(res.catalog, perijove=57)
    assert "IVC-NEW-0002" not in set(one["hotspot_id"])
    s = maps.marker_area_pt2([1.0, 10.0, 1000.0, np.nan])
    assert s[0] < s[1] < s[2] and s[3] == 8.0


def test_timeseries_table_lower_limit_and_mura_overlay():
    cat = synthetic_catalog(perijoves=(47, 49, 57)).catalog
    t = timeseries.timeseries_table(cat)
    assert list(t.columns) == list(timeseries.TIMESERIES_COLUMNS)
    assert set(t["hotspot_id"]) >= {"IVC-Tawhaki_P", "IVC-Loki_P", "IVC-Tvashtar_C"}
    # the Tvashtar 'C' lower limit at the last perijove
    tv = t[(t["hotspot_id"] == "IVC-Tvashtar_C") & t["observed"]].set_index("perijove")
    assert tv.loc[57, "power_lower_limit"] and np.isposinf(tv.loc[57, "power_gw_hi"])
    assert not tv.loc[47, "power_lower_limit"]
    # Tawhaki matches Mura's "Tawhaki Patera" (4 N, 75 W; 1.3 deg away) and is compared
    # in the M band: Mura's PJ47 value next to our M-band output at PJ47
    ta = t[t["hotspot_id"] == "IVC-Tawhaki_P"].set_index("perijove")
    assert ta["mura_name"].iloc[0] == "Tawhaki Patera"
    assert ta["mura_sep_deg"].iloc[0] == pytest.approx(1.34, abs=0.05)
    assert ta.loc[47, "mura_m_band_power_gw"] == pytest.approx(3.28)
    assert not ta.loc[41, "observed"] and ta.loc[41, "mura_m_band_power_gw"] == 1.63
    m_band = cat.loc[(cat["hotspot_id"] == 'IVC-"Tawhaki P."') & (cat["perijove"] == 47),
                     "power_gw_per_um"].iloc[0] * 0.4975
    assert ta.loc[47, "m_band_power_gw"] == pytest.approx(m_band)
    # Loki has no Mura Table 3 row within 2 deg
    assert (t.loc[t["hotspot_id"] == "IVC-Loki_P", "mura_name"] == "").all()


def test_timeseries_png_top_and_on_request():
    cat = synthetic_catalog(perijoves=(47, 49, 57)).catalog
    assert timeseries.top_hotspots(cat, n=2) == ["IVC-Loki_P", "IVC-Tvashtar_C"]
    w, h = _png_size(timeseries.timeseries_png(cat, top_n=4))
    assert w > 600 and h > 300
    _png_size(timeseries.timeseries_png(cat, hotspot_ids=['IVC-"Tawhaki P."']))
    with pytest.raises(ValueError, match="not in the catalog"):
        timeseries.timeseries_png(cat, hotspot_ids=["IVC-Nowhere"])


def test_publish_never_imports_prefect():
    code = ("import sys, iovolc.publish; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
