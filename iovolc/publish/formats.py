"""Published table formats as bytes: Parquet, ECSV, CSV, GeoJSON, VOTable.

Every published table has plain-token ids (:func:`~iovolc.publish.ids.plain_id`
applied to ``hotspot_id``; ``ref_id`` and ``name`` keep Davies et al.'s
spelling) and the version columns ``catalog_version``, ``pipeline_version``,
``config_hash`` on every row (:func:`published_table`).

**GeoJSON** (RFC 7946): a FeatureCollection of Points, one per row.
Coordinates are ``[lon, lat]`` in degrees with ``lon`` the **East** longitude
in [-180, 180): ``lon_E = -lon_W``, wrapped (GeoJSON positions are
longitude, latitude with longitude positive east). The frame is Io's
body-fixed IAU_IO frame, latitude planetocentric -- not WGS84, which RFC 7946
assumes; the collection's ``iovolc`` member says so. Properties are every
column (NaN and inf -> ``null``; ``power_gw_hi`` is ``null`` for a lower
limit, with ``power_lower_limit: true``), plus ``lon_east_deg`` and a
``units`` object ``{column: unit}``.

**VOTable** (astropy.io.votable, TABLEDATA): units in VOUnit syntax and a
UCD per field (:data:`UCDS`), descriptions from the column specs.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from iovolc.catalog import CATALOG_COLUMNS, HOTSPOT_COLUMNS
from iovolc.flags import flag_descriptions
from iovolc.publish._common import is_lower_limit, json_value, lon_east_180, with_plain_ids
from iovolc.publish.ids import VERSION_COLUMNS, add_version_columns

__all__ = [
    "UCDS",
    "PUBLISHED_CATALOG_COLUMNS",
    "PUBLISHED_HOTSPOT_COLUMNS",
    "published_table",
    "table_metadata",
    "parquet_bytes",
    "ecsv_bytes",
    "csv_bytes",
    "geojson_dict",
    "geojson_bytes",
    "votable_bytes",
]

PUBLISHED_CATALOG_COLUMNS = {**CATALOG_COLUMNS, **VERSION_COLUMNS}
PUBLISHED_HOTSPOT_COLUMNS = {**HOTSPOT_COLUMNS, **VERSION_COLUMNS}

#: UCD1+ of every published column (checked against the IVOA vocabulary in the tests)
UCDS: dict[str, str] = {
    "hotspot_id": "meta.id;meta.main",
    "ref_id": "meta.id.cross",
    "name": "meta.id",
    "lat_deg": "pos.bodyrc.lat",
    "lon_west_deg": "pos.bodyrc.lon",
    "perijove": "meta.id;obs.sequence",
    "n_detections": "meta.number",
    "peak_radiance_w_m2_sr": "phot.radiance;em.IR.4-8um;stat.max",
    "power_gw": "phys.luminosity",
    "power_gw_per_um": "phys.luminosity;em.IR.4-8um",
    "temperature_k": "phys.temperature",
    "flags": "meta.code.qual",
    "first_seen_utc": "time.start;obs",
    "last_seen_utc": "time.end;obs",
    "power_gw_per_um_l": "phys.luminosity;em.IR.3-4um",
    "area_km2": "phys.area",
    "position_uncertainty_km": "stat.error;pos.bodyrc",
    "pixel_scale_km": "instr.scale",
    "min_emission_deg": "pos.emergenceAng;stat.min",
    "match_distance_km": "pos.distance",
    "flag_names": "meta.code.qual",
    "lat_deg_pj": "pos.bodyrc.lat",
    "lon_west_deg_pj": "pos.bodyrc.lon",
    "position_uncertainty_km_pj": "stat.error;pos.bodyrc",
    "n_frames": "meta.number",
    "bands": "instr.bandpass",
    "power_gw_lo": "phys.luminosity;stat.min",
    "power_gw_hi": "phys.luminosity;stat.max",
    "temperature_k_lo": "phys.temperature;stat.min",
    "temperature_k_hi": "phys.temperature;stat.max",
    "n_perijoves": "meta.number;obs",
    "perijoves": "meta.id;obs.sequence",
    "mean_power_gw": "phys.luminosity;stat.mean",
    "std_power_gw": "phys.luminosity;stat.stdev",
    "min_power_gw": "phys.luminosity;stat.min",
    "max_power_gw": "phys.luminosity;stat.max",
    "mean_power_gw_per_um": "phys.luminosity;em.IR.4-8um;stat.mean",
    "median_temperature_k": "phys.temperature;stat.median",
    "n_power_lower_limit": "meta.number",
    "catalog_version": "meta.version;meta.dataset",
    "pipeline_version": "meta.version;meta.software",
    "config_hash": "meta.checksum;meta.software",
}

_STR_COLUMNS = frozenset({"hotspot_id", "ref_id", "name", "first_seen_utc", "last_seen_utc",
                          "flag_names", "bands", "perijoves", *VERSION_COLUMNS})
_INT_COLUMNS = frozenset({"perijove", "n_detections", "flags", "n_frames", "n_perijoves",
                          "n_power_lower_limit"})

_CONVENTIONS = ("latitude planetocentric deg N; longitude West in [0, 360) (lon_west_deg); "
                "frame IAU_IO")


def _spec_for(df: pd.DataFrame) -> dict:
    return PUBLISHED_CATALOG_COLUMNS if "perijove" in df.columns else PUBLISHED_HOTSPOT_COLUMNS


def published_table(
    df: pd.DataFrame,
    *,
    catalog_version: str,
    pipeline_version: str,
    config_hash: str,
) -> pd.DataFrame:
    """A catalog (has ``perijove``) or hotspot table ready to publish: plain ids,
    version columns, the spec's columns in order with canonical dtypes (str with
    '' for missing, int64, float64)."""
    spec = _spec_for(df)
    out = add_version_columns(with_plain_ids(df), catalog_version=catalog_version,
                              pipeline_version=pipeline_version, config_hash=config_hash)
    missing = [c for c in spec if c not in out.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}")
    res = pd.DataFrame(index=pd.RangeIndex(len(out)))
    for c in spec:
        v = out[c].reset_index(drop=True)
        if c in _STR_COLUMNS:
            res[c] = pd.Series(["" if (x is None or x is pd.NA
                                       or (isinstance(x, float) and np.isnan(x)))
                                else str(x) for x in v], dtype=object)
        elif c in _INT_COLUMNS:
            res[c] = v.astype(np.int64)
        else:
            res[c] = v.astype(np.float64)
    return res


def table_metadata(df: pd.DataFrame, *, title: str) -> dict:
    """Table-level metadata (JSON-able): title, versions, conventions, flags, columns."""
    spec = _spec_for(df)
    first = df.iloc[0] if len(df) else {}
    return {
        "title": title,
        "catalog_version": str(first.get("catalog_version", "")) if len(df) else "",
        "pipeline_version": str(first.get("pipeline_version", "")) if len(df) else "",
        "config_hash": str(first.get("config_hash", "")) if len(df) else "",
        "reference": "Davies et al. (2024), PSJ 5:121, doi:10.3847/PSJ/ad4346, Table A1",
        "conventions": _CONVENTIONS,
        "ids": "hotspot_id is a plain token (iovolc.publish.plain_id): [A-Za-z0-9_-]",
        "flags": {k: {"value": v, "description": d} for k, (v, d) in flag_descriptions().items()},
        "columns": {c: {"unit": u or "", "description": d, "ucd": UCDS.get(c, "")}
                    for c, (u, d) in spec.items() if c in df.columns},
    }


def parquet_bytes(df: pd.DataFrame, *, title: str) -> bytes:
    """Parquet with per-field ``unit``/``description``/``ucd`` metadata and an
    ``iovolc`` schema-metadata JSON (:func:`table_metadata`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = _spec_for(df)
    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = []
    for field in table.schema:
        unit, desc = spec.get(field.name, (None, ""))
        fields.append(field.with_metadata({"unit": unit or "", "description": desc,
                                           "ucd": UCDS.get(field.name, "")}))
    meta = dict(table.schema.metadata or {})
    meta[b"iovolc"] = json.dumps(table_metadata(df, title=title)).encode()
    table = table.cast(pa.schema(fields, metadata=meta))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _astropy_table(df: pd.DataFrame):
    from astropy.table import Column, Table

    spec = _spec_for(df)
    cols = []
    for c in df.columns:
        unit, desc = spec.get(c, (None, ""))
        data = df[c].to_numpy()
        if c in _STR_COLUMNS:
            data = np.array([str(x) for x in data], dtype=str) if len(data) else np.array([], str)
        cols.append(Column(data, name=c, unit=unit, description=desc))
    return Table(cols)


def ecsv_bytes(df: pd.DataFrame, *, title: str) -> bytes:
    """ECSV (astropy): unit and description per column, :func:`table_metadata` as meta."""
    t = _astropy_table(df)
    meta = table_metadata(df, title=title)
    del meta["columns"]
    t.meta.update(meta)
    buf = io.StringIO()
    t.write(buf, format="ascii.ecsv")
    return buf.getvalue().encode()


def csv_bytes(df: pd.DataFrame) -> bytes:
    """Plain CSV (header row, no index; NaN empty, inf as 'inf')."""
    return df.to_csv(index=False).encode()


def geojson_dict(df: pd.DataFrame, *, title: str) -> dict:
    """GeoJSON FeatureCollection (see the module docstring) of a published table."""
    spec = _spec_for(df)
    units = {c: spec[c][0] for c in df.columns if c in spec and spec[c][0]}
    units["lon_east_deg"] = "deg"
    lon_e = lon_east_180(df["lon_west_deg"].to_numpy(float))
    lat = df["lat_deg"].to_numpy(float)
    limit = is_lower_limit(df) if "power_gw_hi" in df else None
    records = df.to_dict(orient="records")
    features = []
    for i, rec in enumerate(records):
        props = {k: json_value(v) for k, v in rec.items()}
        props["lon_east_deg"] = json_value(lon_e[i])
        if limit is not None:
            props["power_lower_limit"] = bool(limit[i])
        props["units"] = units
        fid = rec["hotspot_id"] + (f"_pj{int(rec['perijove']):03d}" if "perijove" in rec else "")
        features.append({
            "type": "Feature",
            "id": fid,
            "geometry": {"type": "Point",
                         "coordinates": [round(float(lon_e[i]), 6), round(float(lat[i]), 6)]},
            "properties": props,
        })
    meta = table_metadata(df, title=title)
    return {
        "type": "FeatureCollection",
        "name": title,
        "iovolc": {
            "catalog_version": meta["catalog_version"],
            "pipeline_version": meta["pipeline_version"],
            "config_hash": meta["config_hash"],
            "coordinates": "[East longitude deg in [-180, 180), planetocentric latitude deg] on "
                           "Io (IAU_IO body-fixed frame, not WGS84); lon_E = -lon_W wrapped",
            "conventions": _CONVENTIONS,
            "reference": meta["reference"],
        },
        "features": features,
    }


def geojson_bytes(df: pd.DataFrame, *, title: str) -> bytes:
    """:func:`geojson_dict` as UTF-8 JSON (strict: no NaN/Infinity tokens)."""
    return json.dumps(geojson_dict(df, title=title), allow_nan=False, indent=1).encode()


def votable_bytes(df: pd.DataFrame, *, title: str) -> bytes:
    """VOTable 1.4+ (TABLEDATA) with units, UCDs and descriptions for every field."""
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    t = _astropy_table(df)
    vot = from_table(t, table_id="iovolc_catalog" if "perijove" in df else "iovolc_hotspots")
    resource = vot.resources[0]
    table = resource.tables[0]
    table.name = title
    table.description = f"{title}. {_CONVENTIONS}. Ids are plain tokens."
    spec = _spec_for(df)
    for field in table.fields:
        field.ucd = UCDS.get(field.name) or None
        if field.name in spec:
            field.description = spec[field.name][1]
    meta = table_metadata(df, title=title)
    for key in ("catalog_version", "pipeline_version", "config_hash", "reference", "conventions"):
        resource.infos.append(Info(name=key, value=meta[key] or "-"))
    buf = io.BytesIO()
    vot.to_xml(buf)
    return buf.getvalue()
