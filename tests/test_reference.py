"""Tests of iovolc.reference: shipped published tables and the orbit clock."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
import spiceypy

from iovolc import reference


@pytest.fixture(scope="module")
def davies() -> pd.DataFrame:
    return reference.load_davies2024()


def test_davies_count_and_columns(davies):
    assert len(davies) == 343 == reference.DAVIES2024_N_SOURCES
    assert list(davies.columns) == [
        "rank",
        "status",
        "ref_id",
        "name",
        "lat_deg",
        "lon_west_deg",
        "area_km2",
        "temperature_k",
        "power_gw",
    ]
    assert davies["rank"].tolist() == list(range(1, 344))
    assert str(davies["status"].dtype) == "Int64"
    assert davies["ref_id"].is_unique
    assert (davies["ref_id"].str.len() > 0).all()
    assert davies["power_gw"].notna().all()
    # status: 1 = new JIRAM, 0 = Keck/Gemini, blank = Veeder et al. 2015
    assert set(davies["status"].dropna().unique()) == {0, 1}
    assert davies["status"].isna().sum() > 0
    # area and temperature are blank together
    assert (davies["area_km2"].isna() == davies["temperature_k"].isna()).all()


def test_davies_first_rows(davies):
    r1 = davies.iloc[0]
    assert (r1["rank"], r1["status"], r1["ref_id"], r1["name"]) == (1, 1, "JRM111", "")
    assert r1["lat_deg"] == pytest.approx(46.0)
    assert r1["lon_west_deg"] == pytest.approx(162.6)
    assert r1["area_km2"] == pytest.approx(0.0029)
    assert r1["temperature_k"] == pytest.approx(1035.0)
    assert r1["power_gw"] == pytest.approx(0.19)
    r2 = davies.iloc[1]
    assert pd.isna(r2["status"])
    assert (r2["ref_id"], r2["name"]) == ("P197", "P197")
    assert (r2["lat_deg"], r2["lon_west_deg"]) == pytest.approx((-47.3, 108.8))
    r3 = davies.iloc[2]
    assert (r3["ref_id"], r3["name"]) == ("JRM109", "P243")
    assert np.isnan(r3["area_km2"]) and np.isnan(r3["temperature_k"])


def test_davies_placeholder_names_get_unique_ids(davies):
    nameless = davies[davies["name"] == "no name"]
    assert nameless["ref_id"].tolist() == ["D2024-255", "D2024-264"]


def test_davies_loki(davies):
    loki = davies[davies["name"] == "Loki P."]
    assert len(loki) == 1
    row = loki.iloc[0]
    assert row["lat_deg"] == pytest.approx(12.8, abs=0.2)
    assert 308.0 <= row["lon_west_deg"] <= 310.0
    # the most powerful source in the table
    assert row["power_gw"] == davies["power_gw"].max()
    assert row["rank"] == 343


def test_davies_ranges(davies):
    assert ((davies["lon_west_deg"] >= 0) & (davies["lon_west_deg"] < 360)).all()
    assert ((davies["lat_deg"] >= -90) & (davies["lat_deg"] <= 90)).all()
    # ranked by power (ascending)
    assert davies["power_gw"].is_monotonic_increasing


def test_davies_loader_returns_copies():
    a = reference.load_davies2024()
    a.loc[0, "power_gw"] = -1.0
    assert reference.load_davies2024().loc[0, "power_gw"] == pytest.approx(0.19)


def test_mrt_parser_uses_header_byte_ranges():
    # same content, fields shifted by a changed header: the parser must follow the header
    raw = (
        b"Title: x\n"
        b"-----------------------------------\n"
        b"   Bytes Format Units Label   Explanations\n"
        b"-----------------------------------\n"
        b"   1-  2 I2     ---   Rank    Rank\n"
        b"   4-  9 A6     ---   ID      Identifier; a wrapped\n"
        b"                              explanation line\n"
        b"  11- 15 F5.1   deg   Lat     ? Latitude\n"
        b"-----------------------------------\n"
        b" 7 JRM001  12.5\n"
        b"12 P10         \n"
    )
    fields, data = reference._parse_mrt(raw)
    assert [(f.start, f.end, f.label) for f in fields] == [
        (0, 2, "Rank"),
        (3, 9, "ID"),
        (10, 15, "Lat"),
    ]
    assert len(data) == 2
    vals = [reference._mrt_value(data[1][f.start : f.end], f.fmt) for f in fields]
    assert vals == [12, "P10", None]


def test_mura2024():
    m = reference.load_mura2024()
    assert len(m) == 90
    assert list(m.columns[:3]) == ["name", "lat_deg", "lon_west_deg"]
    pj_cols = [c for c in m.columns if c.startswith("m_power_gw_pj")]
    assert pj_cols == [f"m_power_gw_pj{n}" for n in (41, 43, 47, 49)]
    assert m[pj_cols].notna().any(axis=1).all()
    assert ((m["lon_west_deg"] >= 0) & (m["lon_west_deg"] < 360)).all()
    shamash = m[m["name"] == "Shamash Patera"].iloc[0]
    assert shamash["m_power_gw_pj49"] == pytest.approx(2.34)
    assert np.isnan(shamash["m_power_gw_pj41"])


def test_perijove_table():
    p = reference.load_perijoves()
    assert list(p.columns) == ["pj", "perijove_utc", "et"]
    assert p["pj"].dtype == np.int64
    row = p.set_index("pj")
    assert row.loc[57, "perijove_utc"].startswith("2023-12-30T12:36")
    assert row.loc[58, "perijove_utc"].startswith("2024-02-03T21:47")
    assert row.loc[0, "perijove_utc"].startswith("2016-07-05")
    assert np.all(np.diff(p["et"]) > 0)


@pytest.fixture
def lsk():
    path = resources.files("iovolc") / "data" / "kernels" / "lsk" / "naif0012.tls"
    # load/unload only this file so other tests' SPICE state is left alone
    spiceypy.furnsh(str(path))
    try:
        yield
    finally:
        spiceypy.unload(str(path))


@pytest.mark.parametrize(
    "utc",
    [
        "2016-07-05T02:47:32",
        "2023-10-15T06:50:00",
        "2024-06-13T15:23:00.250",
        "2016-12-31T23:59:59.5",  # just before a leap second
        "2017-01-01T00:00:01",
        "2028-09-29T11:00:15.805",
    ],
)
def test_utc_to_et_agrees_with_spice(lsk, utc):
    assert reference.utc_to_et(utc) == pytest.approx(spiceypy.str2et(utc), abs=1e-3)


def test_utc_to_et_forms_and_vectorised():
    et = reference.utc_to_et("2023-10-15T06:50:00")
    assert isinstance(et, float)
    assert reference.utc_to_et("2023-288T06:50:00") == pytest.approx(et, abs=1e-6)
    assert reference.utc_to_et("2023-10-15T06:50:00Z") == pytest.approx(et, abs=1e-6)
    arr = reference.utc_to_et(np.array(["2023-10-15T06:50:00", "2023-10-15T07:50:00"]))
    assert arr.shape == (2,)
    assert arr[1] - arr[0] == pytest.approx(3600.0, abs=1e-6)


def test_utc_to_et_of_one_time_is_bitwise_the_format_guessing_path():
    """A scalar names its astropy format (speed); the bits must be those of astropy's
    own format guessing (the array path), for every form labels use."""
    rng = np.random.default_rng(7)
    base = reference.utc_to_et("2016-01-01T00:00:00")
    times = ["2016-12-31T23:59:60.5", "2016-366T23:59:60.25", "2023-10-15 06:50:00",
             "2023-10-15", "2023-288", "2023-10-15T06:50:00Z", "2024-034T01:02:03.123456789",
             "2017-001T00:00:00.000"]
    from astropy.time import Time
    for et in base + rng.uniform(0, 10 * 365.25 * 86400, 400):
        t = Time(2451545.0, et / 86400.0, format="jd", scale="tdb").utc
        digits = int(rng.integers(0, 7))
        times.append(t.to_value("isot", subfmt="date_hms") if digits == 0 else
                     t.strftime("%Y-%m-%dT%H:%M:%S") + "." + "".join(
                         str(d) for d in rng.integers(0, 10, digits)))
        times.append(t.strftime("%Y-%jT%H:%M:%S") + f".{int(rng.integers(0, 1000)):03d}")
    scalar = np.array([reference.utc_to_et(u) for u in times])
    # astropy's own guessing of the format (each form on its own), as ET
    guessed = []
    for u in times:
        t = Time([reference._normalise_utc(u)], scale="utc").tdb
        guessed.append(((t.jd1[0] - reference._J2000_JD) + t.jd2[0])
                       * reference._SECONDS_PER_DAY)
    assert scalar.tobytes() == np.array(guessed).tobytes()
    # several times of one form in one call (a label's START and STOP, stop 26): the
    # format named once for all, the same bits as each alone
    day_of_year = [bool(reference._YDAY.match(reference._normalise_utc(u))) for u in times]
    pairs = [[times[i], times[j]] for i in range(len(times)) for j in (i + 1, i + 2)
             if j < len(times) and day_of_year[i] == day_of_year[j]]
    assert len(pairs) > 300
    for pair in pairs:
        assert reference.utc_to_et(pair).tobytes() == np.array(
            [reference.utc_to_et(u) for u in pair]).tobytes(), pair


@pytest.mark.parametrize(
    ("utc", "orbit"),
    [
        ("2023-10-15T06:50:00", 55),  # PJ55 at 10:52
        ("2024-06-13T15:23:00", 62),  # PJ62 at 19:53
        ("2023-10-15T14:00:00", 55),  # just after PJ55
        ("2022-12-15T03:23:22", 47),
    ],
)
def test_orbit_number_examples(utc, orbit):
    assert reference.orbit_number_for_et(reference.utc_to_et(utc)) == orbit


def test_orbit_number_before_pj53():
    p = reference.load_perijoves().set_index("pj")
    et = p.loc[53, "et"] - 4.6 * 3600.0
    assert reference.orbit_number_for_et(et) == 53
    pj, hours = reference.perijove_for_et(et)
    assert pj == 53
    assert hours == pytest.approx(4.6)


def test_orbit_boundaries_at_apojove_midpoint():
    p = reference.load_perijoves().set_index("pj")
    mid = 0.5 * (p.loc[54, "et"] + p.loc[55, "et"])
    assert reference.orbit_number_for_et(mid - 1.0) == 54
    assert reference.orbit_number_for_et(mid + 1.0) == 55
    after = reference.perijove_for_et(mid - 1.0)
    assert after.pj == 54 and after.hours_to_perijove < 0


def test_orbit_vectorised_and_out_of_range():
    p = reference.load_perijoves()
    ets = p["et"].to_numpy()
    np.testing.assert_array_equal(reference.orbit_number_for_et(ets), p["pj"].to_numpy())
    res = reference.perijove_for_et(ets + 3600.0)
    np.testing.assert_array_equal(res.pj, p["pj"].to_numpy())
    np.testing.assert_allclose(res.hours_to_perijove, -1.0)
    with pytest.raises(ValueError):
        reference.orbit_number_for_et(ets[0] - 60 * 86400.0)
    with pytest.raises(ValueError):
        reference.perijove_for_et(np.array([ets[10], ets[-1] + 60 * 86400.0]))
