"""Published reference data shipped with iovolc, and the Juno orbit clock.

* :func:`load_davies2024` -- Davies et al. (2024), PSJ 5:121,
  doi:10.3847/PSJ/ad4346, Table A1 (CC BY 4.0): 343 Io thermal sources.
* :func:`load_mura2024` -- Mura et al. (2024), Front. Astron. Space Sci.
  11:1369472, doi:10.3389/fspas.2024.1369472, Table 3 (CC BY 4.0): M-band
  output per orbit (PJ41/43/47/49) of 90 hotspots (third-party transcription).
* :func:`load_perijoves` -- Juno perijove times (jpmorgen/IoIO ``juno.py``;
  approximate to minutes, entries after 2025 are planned, not flown).
* :func:`utc_to_et`, :func:`orbit_number_for_et`, :func:`perijove_for_et`.

Orbit numbering follows the JIRAM labels (``ORBIT_NUMBER``, volume number):
orbits are bounded by **apojoves**, so orbit N runs from the apojove before
PJ N to the apojove after it, and an Io pass a few hours before PJ N is
orbit N. The apojove is approximated as the midpoint in time between
consecutive perijoves.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "load_davies2024",
    "load_mura2024",
    "load_perijoves",
    "utc_to_et",
    "orbit_number_for_et",
    "perijove_for_et",
    "PerijovePass",
    "DAVIES2024_N_SOURCES",
]

_DAVIES_FILE = "davies2024_table_a1.txt"
_MURA_FILE = "mura2024_table3_mband.json"
_PERIJOVE_FILE = "perijoves.csv"

#: J2000 epoch (TDB) as a Julian date
_J2000_JD = 2451545.0
_SECONDS_PER_DAY = 86400.0

#: Davies Table A1 label -> (our column, expected units in the table header)
_DAVIES_COLUMNS: dict[str, tuple[str, str]] = {
    "Rank": ("rank", "---"),
    "Status": ("status", "---"),
    "ID": ("id", "---"),
    "Name": ("name", "---"),
    "Lat": ("lat_deg", "deg"),
    "Long": ("lon_west_deg", "deg"),
    "Area": ("area_km2", "km2"),
    "Temp": ("temperature_k", "K"),
    "Power": ("power_gw", "GW"),
}
#: names in the table that are placeholders, not identifiers
_PLACEHOLDER_NAMES = {"", "no name"}
DAVIES2024_N_SOURCES = 343


def _reference_bytes(name: str) -> bytes:
    return (resources.files("iovolc") / "data" / "reference" / name).read_bytes()


# --- AAS machine-readable table ------------------------------------------------

_BYTE_FIELD = re.compile(
    r"^\s*(?:(?P<start>\d+)\s*-\s*)?(?P<end>\d+)\s+(?P<fmt>[AIFE]\d+(?:\.\d+)?)\s+"
    r"(?P<units>\S+)\s+(?P<label>\S+)"
)


class _MrtField(NamedTuple):
    start: int  # 0-based byte offset
    end: int  # exclusive
    fmt: str
    units: str
    label: str


def _parse_mrt(raw: bytes) -> tuple[list[_MrtField], list[bytes]]:
    """Split an AAS MRT file into its byte-by-byte field list and data lines.

    Fields come from the table's own ``Bytes Format Units Label`` block; data
    lines are everything after the last all-dashes separator line.
    """
    lines = raw.splitlines()
    text = [ln.decode("utf-8", errors="replace") for ln in lines]
    try:
        head = next(
            i for i, t in enumerate(text) if re.match(r"^\s*Bytes\s+Format\s+Units\s+Label", t)
        )
    except StopIteration:
        raise ValueError("not an AAS MRT table: no 'Bytes Format Units Label' header") from None
    separators = [i for i, t in enumerate(text) if re.fullmatch(r"-{10,}\s*", t)]
    after_head = [i for i in separators if i > head]
    if len(after_head) < 2:
        raise ValueError("malformed AAS MRT header: missing separator lines")
    fields: list[_MrtField] = []
    for t in text[after_head[0] + 1 : after_head[1]]:
        m = _BYTE_FIELD.match(t)
        if m is None:
            continue  # continuation of an explanation
        end = int(m["end"])
        start = int(m["start"]) if m["start"] else end
        fields.append(_MrtField(start - 1, end, m["fmt"], m["units"], m["label"]))
    if not fields:
        raise ValueError("AAS MRT header declares no fields")
    data = [ln for ln in lines[separators[-1] + 1 :] if ln.strip()]
    return fields, data


def _mrt_value(raw_field: bytes, fmt: str) -> object:
    s = raw_field.decode("utf-8").strip()
    if fmt.startswith("A"):
        return s
    if not s:
        return None
    if fmt.startswith("I"):
        return int(s)
    return float(s)


@lru_cache(maxsize=1)
def _davies2024() -> pd.DataFrame:
    fields, data = _parse_mrt(_reference_bytes(_DAVIES_FILE))
    by_label = {f.label: f for f in fields}
    missing = set(_DAVIES_COLUMNS) - set(by_label)
    if missing:
        raise ValueError(f"Davies 2024 table: header lacks fields {sorted(missing)}")
    for label, (_, units) in _DAVIES_COLUMNS.items():
        if by_label[label].units != units:
            raise ValueError(
                f"Davies 2024 table: field {label} has units {by_label[label].units!r}, "
                f"expected {units!r}"
            )
    records = []
    for line in data:
        rec = {}
        for label, (col, _) in _DAVIES_COLUMNS.items():
            f = by_label[label]
            rec[col] = _mrt_value(line[f.start : f.end], f.fmt)
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    # a fully duplicated line would be an extraction artefact: keep the first
    df = df.drop_duplicates(ignore_index=True)
    if df["rank"].isna().any() or not df["rank"].is_unique:
        raise ValueError("Davies 2024 table: ranks must be present and unique")

    def ref_id(row: pd.Series) -> str:
        if row["id"]:
            return row["id"]
        if row["name"].lower() not in _PLACEHOLDER_NAMES:
            return row["name"]
        return f"D2024-{int(row['rank']):03d}"

    out = pd.DataFrame(
        {
            "rank": df["rank"].astype("int64"),
            "status": pd.array(df["status"], dtype="Int64"),
            "ref_id": df.apply(ref_id, axis=1).astype(str),
            "name": df["name"].astype(str),
            "lat_deg": df["lat_deg"].astype(float),
            "lon_west_deg": df["lon_west_deg"].astype(float),
            "area_km2": df["area_km2"].astype(float),
            "temperature_k": df["temperature_k"].astype(float),
            "power_gw": df["power_gw"].astype(float),
        }
    )
    # ref_id must identify a source: keep the first of any repeat
    out = out.drop_duplicates(subset="ref_id", keep="first", ignore_index=True)
    return out.sort_values("rank", ignore_index=True)


def load_davies2024() -> pd.DataFrame:
    """Davies et al. (2024) Table A1: Io's volcanic thermal sources, by power.

    Parsed with the byte ranges declared in the file's own AAS header.
    Columns: ``rank`` (1 = faintest, 343 = Loki Patera), ``status`` (Int64:
    1 new JIRAM detection, 0 Keck/Gemini, <NA> Veeder et al. 2015),
    ``ref_id``, ``name``, ``lat_deg`` (N, planetocentric), ``lon_west_deg``,
    ``area_km2``, ``temperature_k``, ``power_gw`` (blank fields -> NaN).

    ``ref_id`` is the table's ID (``JRMnnn``) when present, otherwise the
    name (e.g. ``P197``, ``Loki P.``). Two rows (ranks 255 and 264) are
    named only "no name": they get ``D2024-<rank>`` (e.g. ``D2024-255``).
    ``ref_id`` is unique; fully duplicated lines (none in the shipped file)
    and repeated ``ref_id`` would be dropped, keeping the first.
    """
    return _davies2024().copy()


@lru_cache(maxsize=1)
def _mura2024() -> pd.DataFrame:
    doc = json.loads(_reference_bytes(_MURA_FILE))
    rows = doc["rows"]
    orbits = sorted({int(k) for r in rows for k in r["mBandOutputGW"]})
    data: dict[str, list] = {
        "name": [r["name"] for r in rows],
        "lat_deg": [float(r["latitude"]) for r in rows],
        "lon_west_deg": [float(r["longitudeWest"]) for r in rows],
    }
    for pj in orbits:
        data[f"m_power_gw_pj{pj}"] = [float(r["mBandOutputGW"].get(str(pj), np.nan)) for r in rows]
    return pd.DataFrame(data)


def load_mura2024() -> pd.DataFrame:
    """Mura et al. (2024) Table 3: M-band total output (GW) of 90 hotspots per orbit.

    Columns ``name``, ``lat_deg``, ``lon_west_deg`` and one
    ``m_power_gw_pj<N>`` per orbit (41, 43, 47, 49); NaN where the table has
    no value. Names are not unique ("Unnamed", "Unrecognized").
    """
    return _mura2024().copy()


# --- time ------------------------------------------------------------------

#: what _normalise_utc makes of a day-of-year time: astropy's "yday" format
_YDAY = re.compile(r"^\d{4}:\d{3}:")
_DOY_ISO = re.compile(r"^(\d{4})-(\d{3})(?:T(\d{2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?)?$")


def _normalise_utc(s: str) -> str:
    """ISO strings for astropy: drop a trailing 'Z'; PDS day-of-year -> yday."""
    s = str(s).strip()
    if s.endswith("Z"):
        s = s[:-1]
    m = _DOY_ISO.match(s)
    if m:
        year, doy, hh, mm, ss = m.groups()
        return f"{year}:{doy}:{hh or '00'}:{mm or '00'}:{ss or '00'}"
    return s


def utc_to_et(utc: str | ArrayLike) -> float | np.ndarray:
    """UTC string(s) -> ephemeris time (TDB seconds past J2000), like SPICE ``str2et``.

    Uses astropy (``Time(utc, scale='utc').tdb``), so no SPICE kernel state
    is touched; agrees with ``spiceypy.str2et`` (naif0012.tls) to < 1 ms.
    Accepts ISO calendar (``2023-10-15T06:50:00.5``, optional ``Z``) and PDS
    day-of-year (``2023-288T06:50:00``) forms, scalar or array. An array converts in
    one astropy call when its times share a form (a label's START and STOP: ~0.11 ms
    for the two instead of ~0.23), else each on its own; the same bits as the scalar.
    An empty array gives an empty array.
    """
    from astropy.time import Time

    if isinstance(utc, str):
        # one label time: name the format instead of letting astropy try its formats
        # one by one (ISO times 0.14 instead of 0.41 ms; the same parser and
        # conversions, so the same bits: tests/test_reference.py compares the two)
        norm = _normalise_utc(utc)
        try:
            t = Time(norm, format="yday" if _YDAY.match(norm) else "isot", scale="utc").tdb
        except ValueError:
            t = Time(norm, scale="utc").tdb
        return float(((t.jd1 - _J2000_JD) + t.jd2) * _SECONDS_PER_DAY)
    arr = np.asarray(utc, dtype=object)
    norm = np.vectorize(_normalise_utc, otypes=[object])(arr)
    yday = [bool(_YDAY.match(v)) for v in norm.ravel()]
    et = None
    if all(yday) or not any(yday):  # one form: one call, its format named (stop 26)
        try:
            t = Time(norm.tolist() if norm.ndim else str(norm[()]),
                     format="yday" if all(yday) else "isot", scale="utc").tdb
            et = ((np.asarray(t.jd1) - _J2000_JD) + np.asarray(t.jd2)) * _SECONDS_PER_DAY
        except ValueError:
            pass
    if et is None:  # forms astropy reads one by one: each as one time (the same bits)
        et = np.array([utc_to_et(v) for v in norm.ravel()]).reshape(norm.shape)
    return float(et) if np.ndim(et) == 0 else et


@lru_cache(maxsize=1)
def _perijoves() -> pd.DataFrame:
    from io import BytesIO

    df = pd.read_csv(BytesIO(_reference_bytes(_PERIJOVE_FILE)), dtype={"perijove_utc": str})
    df["pj"] = df["pj"].astype("int64")
    df = df.sort_values("pj", ignore_index=True)
    df["et"] = np.asarray(utc_to_et(df["perijove_utc"].to_numpy()), dtype=float)
    if not np.all(np.diff(df["et"].to_numpy()) > 0):
        raise ValueError("perijove table: times must increase with PJ number")
    if not np.all(np.diff(df["pj"].to_numpy()) == 1):
        raise ValueError("perijove table: PJ numbers must be consecutive")
    return df[["pj", "perijove_utc", "et"]]


def load_perijoves() -> pd.DataFrame:
    """Juno perijove table: ``pj`` (int), ``perijove_utc`` (str), ``et`` (TDB s past J2000).

    PJ0 is orbit insertion (2016-07-05). Times are approximate (minutes);
    entries after 2025 are planned, not flown.
    """
    return _perijoves().copy()


@lru_cache(maxsize=1)
def _orbit_bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PJ numbers, PJ ets, and orbit boundaries (len + 1): apojove ~ PJ midpoints.

    The first and last orbits are closed by extending half of the adjacent
    perijove interval before the first / after the last perijove. Computed once per
    process from the cached table (stop 29: each product asked for it again), read-only.
    """
    df = _perijoves()
    pj = df["pj"].to_numpy().copy()
    et = df["et"].to_numpy().copy()
    mid = 0.5 * (et[1:] + et[:-1])
    lo = et[0] - 0.5 * (et[1] - et[0])
    hi = et[-1] + 0.5 * (et[-1] - et[-2])
    out = (pj, et, np.concatenate([[lo], mid, [hi]]))
    for a in out:
        a.setflags(write=False)
    return out


def _orbit_index(et: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pj, pj_et, bounds = _orbit_bounds()
    e = np.asarray(et, dtype=float)
    bad = ~((e >= bounds[0]) & (e < bounds[-1]))
    if np.any(bad):
        raise ValueError(
            f"et outside the perijove table's orbits ({bounds[0]:.1f} .. {bounds[-1]:.1f} s "
            f"past J2000, PJ{pj[0]}..PJ{pj[-1]}): {e[bad] if e.ndim else e}"
        )
    idx = np.searchsorted(bounds, e, side="right") - 1
    return idx, pj, pj_et


def orbit_number_for_et(et: ArrayLike) -> int | np.ndarray:
    """Juno orbit number (as in JIRAM labels) for ephemeris time(s) ``et``.

    Orbit N spans from the apojove before PJ N to the apojove after it
    (apojove ~ midpoint between perijoves). Raises ``ValueError`` outside the
    table (before PJ0 minus half an orbit, after the last PJ plus half).
    """
    idx, pj, _ = _orbit_index(et)
    out = pj[idx]
    return int(out) if np.ndim(out) == 0 else out


class PerijovePass(NamedTuple):
    """Perijove of the orbit containing an et, and the signed time to it."""

    pj: int | np.ndarray
    #: ``(et_perijove - et) / 3600``: positive before perijove, negative after
    hours_to_perijove: float | np.ndarray


def perijove_for_et(et: ArrayLike) -> PerijovePass:
    """PJ number of the orbit containing ``et`` and hours until that perijove.

    ``hours_to_perijove`` is positive before perijove (e.g. +4.6 for an Io
    pass 4.6 h before PJ53) and negative after. Vectorised; raises
    ``ValueError`` outside the table (see :func:`orbit_number_for_et`).
    """
    idx, pj, pj_et = _orbit_index(et)
    hours = (pj_et[idx] - np.asarray(et, dtype=float)) / 3600.0
    if np.ndim(idx) == 0:
        return PerijovePass(int(pj[idx]), float(hours))
    return PerijovePass(pj[idx], hours)
