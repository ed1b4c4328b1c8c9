"""iovolc.publish: plain ids, version columns, GeoJSON, VOTable, Parquet/ECSV/CSV."""

from __future__ import annotations

import io
import json

import jsonschema
import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.io.votable import parse
from astropy.io.votable.ucd import check_ucd
from astropy.table import Table

from iovolc.publish import formats
from iovolc.publish.ids import VERSION_COLUMNS, plain_id, plain_ids
from iovolc.publish.synthetic import synthetic_catalog
from iovolc.reference import load_davies2024

VERSIONS = {"catalog_version": "v0007", "pipeline_version": "0.1.0", "config_hash": "3f2a9c"}

#: a minimal GeoJSON (RFC 7946) FeatureCollection-of-Points schema
GEOJSON_SCHEMA = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "geometry", "properties"],
                "properties": {
                    "type": {"const": "Feature"},
                    "id": {"type": ["string", "number"]},
                    "geometry": {
                        "type": "object",
                        "required": ["type", "coordinates"],
                        "properties": {
                            "type": {"const": "Point"},
                            "coordinates": {
                                "type": "array", "minItems": 2, "maxItems": 3,
                                "prefixItems": [
                                    {"type": "number", "minimum": -180, "maximum": 180},
                                    {"type": "number", "minimum": -90, "maximum": 90},
                                ],
                                "items": {"type": "number"},
                            },
                        },
                    },
                    "properties": {"type": ["object", "null"]},
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def result():
    return synthetic_catalog(perijoves=(57, 58), outburst=(58, 3000.0))


@pytest.fixture(scope="module")
def published(result):
    return formats.published_table(result.catalog, **VERSIONS)


@pytest.mark.parametrize("raw, plain", [
    ("IVC-Tawhaki P.", "IVC-Tawhaki_P"),
    ('IVC-"Tawhaki P."', "IVC-Tawhaki_P"),
    ("IVC-Tvashtar 'C'", "IVC-Tvashtar_C"),
    ("IVC-JRM044", "IVC-JRM044"),
    ("IVC-NEW-0001", "IVC-NEW-0001"),
    ("IVC-Loki P.", "IVC-Loki_P"),
    ("IVC-Māui  /  x", "IVC-Maui_x"),
    ("  IVC- Pele ", "IVC-Pele"),
])
def test_plain_id(raw, plain):
    assert plain_id(raw) == plain
    assert plain_id(plain) == plain  # idempotent


def test_plain_id_rejects_empty_and_finds_collisions():
    with pytest.raises(ValueError):
        plain_id(' ".." ')
    with pytest.raises(ValueError, match="both become"):
        plain_ids(["IVC-Loki P.", "IVC-Loki_P"])


def test_plain_ids_of_every_davies_source_are_unique_tokens():
    ids = plain_ids("IVC-" + load_davies2024()["ref_id"])
    assert len(set(ids)) == len(ids) == 343
    assert all(pd.Series(ids).str.fullmatch(r"[A-Za-z0-9_-]+"))


def test_published_table_has_plain_ids_and_versions_on_every_row(published, result):
    assert list(published.columns) == list(formats.PUBLISHED_CATALOG_COLUMNS)
    assert len(published) == len(result.catalog)
    assert published["hotspot_id"].str.fullmatch(r"[A-Za-z0-9_-]+").all()
    for col, value in VERSIONS.items():
        assert (published[col] == value).all()
    # Davies spelling is kept in ref_id / name
    assert '"Tawhaki P."' in set(published["ref_id"])


def test_all_ucds_are_valid_ivoa_ucds():
    for col, ucd in formats.UCDS.items():
        assert check_ucd(ucd, check_controlled_vocabulary=True), (col, ucd)
    assert set(formats.PUBLISHED_CATALOG_COLUMNS) <= set(formats.UCDS)
    assert set(formats.PUBLISHED_HOTSPOT_COLUMNS) <= set(formats.UCDS)


def test_geojson_schema_coordinates_and_units(published):
    doc = json.loads(formats.geojson_bytes(published, title="t"))
    jsonschema.validate(doc, GEOJSON_SCHEMA)
    assert len(doc["features"]) == len(published)
    by_id = {f["id"]: f for f in doc["features"]}
    loki = by_id["IVC-Loki_P_pj057"]
    # 308.4 W -> -308.4 E -> 51.6 E
    assert loki["geometry"]["coordinates"] == pytest.approx([51.6, 12.8])
    props = loki["properties"]
    assert props["lon_west_deg"] == pytest.approx(308.4) and props["lon_east_deg"] == pytest.approx(51.6)
    assert props["units"]["power_gw"] == "GW" and props["units"]["lat_deg"] == "deg"
    assert props["catalog_version"] == "v0007" and props["config_hash"] == "3f2a9c"
    tv = by_id["IVC-Tvashtar_C_pj058"]["properties"]
    assert tv["power_gw_hi"] is None and tv["power_lower_limit"] is True
    assert by_id["IVC-Pele_pj057"]["geometry"]["coordinates"][0] == pytest.approx(104.4)
    assert "East longitude" in doc["iovolc"]["coordinates"]


def test_geojson_reads_in_geopandas(published):
    gpd = pytest.importorskip("geopandas")
    gdf = gpd.read_file(io.BytesIO(formats.geojson_bytes(published, title="t")))
    assert len(gdf) == len(published)
    row = gdf[gdf["hotspot_id"] == "IVC-Loki_P"].iloc[0]
    assert row.geometry.x == pytest.approx(51.6) and row.geometry.y == pytest.approx(12.8)
    assert (gdf.geometry.x.between(-180, 180)).all()


def test_votable_round_trip_units_ucds(published):
    vot = parse(io.BytesIO(formats.votable_bytes(published, title="iovolc test")))
    table = vot.get_first_table()
    fields = {f.name: f for f in table.fields}
    assert fields["lat_deg"].ucd == "pos.bodyrc.lat" and fields["lon_west_deg"].ucd == \
        "pos.bodyrc.lon"
    assert fields["power_gw"].ucd == "phys.luminosity"
    assert fields["temperature_k"].ucd == "phys.temperature"
    assert fields["hotspot_id"].ucd == "meta.id;meta.main"
    assert fields["first_seen_utc"].ucd.startswith("time.")
    assert fields["catalog_version"].ucd.startswith("meta.version")
    t = table.to_table()
    assert t["power_gw"].unit == u.GW and t["lat_deg"].unit == u.deg
    assert t["power_gw_per_um"].unit == u.GW / u.um
    assert t["area_km2"].unit == u.km**2
    assert t["peak_radiance_w_m2_sr"].unit == u.W / u.m**2 / u.sr
    np.testing.assert_allclose(np.asarray(t["power_gw"]), published["power_gw"])
    hi = np.asarray(t["power_gw_hi"], dtype=float)
    assert np.isposinf(hi).sum() == np.isposinf(published["power_gw_hi"]).sum() == 1
    assert list(t["hotspot_id"]) == list(published["hotspot_id"])
    assert set(t["catalog_version"]) == {"v0007"}
    infos = {i.name: i.value for i in vot.resources[0].infos}
    assert infos["config_hash"] == "3f2a9c"


def test_parquet_ecsv_csv_round_trip(published, result):
    pq = pd.read_parquet(io.BytesIO(formats.parquet_bytes(published, title="t")))
    pd.testing.assert_frame_equal(pq.reset_index(drop=True), published, check_dtype=False)
    import pyarrow.parquet as papq

    schema = papq.read_schema(io.BytesIO(formats.parquet_bytes(published, title="t")))
    assert schema.field("power_gw").metadata[b"unit"] == b"GW"
    assert schema.field("lat_deg").metadata[b"ucd"] == b"pos.bodyrc.lat"
    meta = json.loads(schema.metadata[b"iovolc"])
    assert meta["catalog_version"] == "v0007" and "NEW_SOURCE" in meta["flags"]

    t = Table.read(formats.ecsv_bytes(published, title="t").decode(), format="ascii.ecsv")
    assert t["power_gw"].unit == u.GW and t.meta["pipeline_version"] == "0.1.0"
    assert list(t["config_hash"]) == ["3f2a9c"] * len(published)

    csv = pd.read_csv(io.BytesIO(formats.csv_bytes(published)), keep_default_na=False)
    assert set(VERSION_COLUMNS) <= set(csv.columns)
    np.testing.assert_allclose(csv["power_gw"], published["power_gw"])

    hot = formats.published_table(result.hotspots, **VERSIONS)
    assert list(hot.columns) == list(formats.PUBLISHED_HOTSPOT_COLUMNS)
    json.loads(formats.geojson_bytes(hot, title="h"))
    parse(io.BytesIO(formats.votable_bytes(hot, title="h")))
