"""Tests of iovolc.catalog against synthetic detections of known sources.

The synthetic detection tables are built from Davies et al. (2024) sources
(and a few brand-new ones) with known temperature and area: spectral powers
from :func:`iovolc.physics.spectral_power_gw_per_um`, positions perturbed by
0.3 pixel (1 sigma, north and east) at pixel scales of 10-80 km, each
detection carrying that sigma as ``position_sigma_km`` as the extraction
stage reports it, 2-6 frames per perijove.

A reference temperature outside the plausible colour-temperature range
(250-1500 K: the Table A1 temperatures below 250 K, mostly Galileo-era
whole-patera effective temperatures, are a different quantity) is not a
usable colour temperature: a source with only such a reference temperature
and no L band is simulated at the assumed default, like a source whose
reference has no temperature at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from iovolc import catalog as C
from iovolc import jiram, physics
from iovolc.flags import Flag, flag_names
from iovolc.publish.ids import plain_id
from iovolc.reference import load_davies2024, load_perijoves

PERIJOVES = (41, 43, 47)
#: relative 1-sigma noise of each detection's spectral power. Kept small on
#: purpose: at 200 K, d ln P / d ln T = 4 - hc / (lambda_M k T) ~ -11, so the
#: 5 % power criterion needs the L/M temperature to ~0.5 %.
PHOTOMETRIC_NOISE = 0.005
#: 1-sigma position error of a detection, pixels (north and east each)
POSITION_NOISE_PX = 0.3
#: plausible colour temperatures of Io's hotspots, K (docs/catalog_schema.md)
PLAUSIBLE_T_K = (250.0, 1500.0)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "catalog_schema.md"


@dataclass(frozen=True)
class Source:
    key: str
    ref_id: str  # "" for a new source
    lat_deg: float
    lon_west_deg: float
    temperature_k: float  # reference or L/M-measurable temperature (NaN: none)
    area_km2: float
    has_l: bool
    perijoves: tuple[int, ...]


# --- synthetic data ------------------------------------------------------------


def _sphere_offset(lat_deg, lon_deg, north_km, east_km):
    """Move a point by small north/east offsets (km); West longitude decreases eastward."""
    lat = lat_deg + np.rad2deg(north_km / C.IO_RADIUS_KM)
    lon = lon_deg - np.rad2deg(east_km / (C.IO_RADIUS_KM * np.cos(np.deg2rad(lat_deg))))
    return lat, np.mod(lon, 360.0)


def _select_sources(ref: pd.DataFrame, rng, *, n=60, min_sep_km=400.0, min_nn_km=50.0):
    """~n reference sources, mutually > min_sep_km apart and resolvable (no other
    reference source within min_nn_km); one near the 0/360 wrap is forced in."""
    lat = ref["lat_deg"].to_numpy()
    lon = ref["lon_west_deg"].to_numpy()
    d = C.great_circle_km(lat[:, None], lon[:, None], lat[None], lon[None])
    np.fill_diagonal(d, np.inf)
    ok = d.min(axis=1) > min_nn_km
    wrap = [i for i in np.flatnonzero(ok) if min(lon[i], 360 - lon[i]) < 3.0]
    chosen = [wrap[0]]
    for i in rng.permutation(len(ref)):
        if len(chosen) == n:
            break
        if ok[i] and i not in chosen and np.all(d[i, chosen] > min_sep_km):
            chosen.append(int(i))
    return chosen


def _new_positions(ref, taken_lat, taken_lon, rng, *, n, min_ref_km=250.0, min_sep_km=400.0):
    lat_r = ref["lat_deg"].to_numpy()
    lon_r = ref["lon_west_deg"].to_numpy()
    out = []
    while len(out) < n:
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        la = float(np.rad2deg(np.arcsin(v[2])))
        lo = float(np.mod(np.rad2deg(np.arctan2(v[1], v[0])), 360.0))
        if abs(la) > 70:
            continue
        if np.min(C.great_circle_km(la, lo, lat_r, lon_r)) < min_ref_km:
            continue
        tl = np.array(list(taken_lat) + [p[0] for p in out])
        tn = np.array(list(taken_lon) + [p[1] for p in out])
        if tl.size and np.min(C.great_circle_km(la, lo, tl, tn)) < min_sep_km:
            continue
        out.append((la, lo))
    return out


def _truth_sources(seed=20240121):
    rng = np.random.default_rng(seed)
    ref = load_davies2024()
    chosen = _select_sources(ref, rng)
    sources = []
    for i in chosen:
        r = ref.iloc[i]
        t_ref = float(r["temperature_k"])
        if np.isfinite(t_ref):
            t_true = t_ref
            has_l = 200.0 <= t_ref <= 1100.0 and rng.random() < 0.5
        else:  # the reference has no T: some measured in L, others assumed
            has_l = rng.random() < 0.5
            t_true = float(rng.uniform(300, 900)) if has_l else np.nan
        src = Source(str(r["ref_id"]), str(r["ref_id"]), float(r["lat_deg"]),
                     float(r["lon_west_deg"]), t_true, np.nan, has_l, ())
        area = float(r["area_km2"])
        if not np.isfinite(area):
            area = float(physics.area_km2_from_power(power_gw=r["power_gw"],
                                                     temperature_k=_true_temperature(src)))
        n_pj = int(rng.integers(2, 4))
        pjs = tuple(sorted(rng.choice(PERIJOVES, size=n_pj, replace=False).tolist()))
        sources.append(Source(src.key, src.ref_id, src.lat_deg, src.lon_west_deg, t_true, area,
                              has_l, pjs))
    lat0 = [s.lat_deg for s in sources]
    lon0 = [s.lon_west_deg for s in sources]
    for k, (la, lo) in enumerate(_new_positions(ref, lat0, lon0, rng, n=5)):
        has_l = k % 2 == 0
        t_true = float(rng.uniform(350, 800)) if has_l else np.nan
        pjs = PERIJOVES if k < 3 else PERIJOVES[1:]
        sources.append(Source(f"NEW{k}", "", la, lo, t_true, float(rng.uniform(0.5, 5)),
                              has_l, pjs))
    return sources


def _reference_t_usable(s: Source) -> bool:
    """A reference temperature the catalog may use (a plausible colour temperature)."""
    return bool(s.ref_id) and PLAUSIBLE_T_K[0] <= s.temperature_k <= PLAUSIBLE_T_K[1]


def _true_temperature(s: Source) -> float:
    """The simulated colour temperature: measured (L), the usable reference, else the default."""
    if np.isfinite(s.temperature_k) and (s.has_l or _reference_t_usable(s)):
        return s.temperature_k
    return C.DEFAULT_TEMPERATURE_K


def _detections(sources, seed, *, saturated_only=frozenset(), one_saturated=frozenset()):
    """Detection table + truth key per row; (key, pj) in ``saturated_only``: every M
    detection saturated (power 0.6 x true); in ``one_saturated``: the first M one is."""
    rng = np.random.default_rng(seed)
    pj_table = load_perijoves().set_index("pj")
    rows, keys = [], []
    for s in sources:
        t = _true_temperature(s)
        p_true = {b: float(physics.spectral_power_gw_per_um(b, temperature_k=t,
                                                            area_km2=s.area_km2))
                  for b in ("L", "M")}
        for pj in s.perijoves:
            pj_utc = datetime.fromisoformat(pj_table.loc[pj, "perijove_utc"].replace("Z", ""))
            pj_et = float(pj_table.loc[pj, "et"])
            base = rng.uniform(10, 80)
            n_frames = int(rng.integers(2, 7))
            offsets = np.sort(rng.uniform(-4 * 3600, -2 * 3600, n_frames))
            for k, off in enumerate(offsets):
                scale = float(np.clip(base * rng.uniform(0.9, 1.1), 10, 80))
                emission = float(rng.uniform(5, 70))
                bands = ("M", "L") if s.has_l else ("M",)
                for band in bands:
                    sat = band == "M" and ((s.key, pj) in saturated_only
                                           or ((s.key, pj) in one_saturated and k == 0))
                    north, east = rng.normal(0, POSITION_NOISE_PX * scale, 2)
                    lat, lon = _sphere_offset(s.lat_deg, s.lon_west_deg, north, east)
                    power = p_true[band] * (1 + PHOTOMETRIC_NOISE * rng.normal()) * (0.6 if sat else 1.0)
                    range_km = scale / jiram.IFOV_RAD
                    rad_sum = float(physics.radiance_from_power_gw_per_um(
                        power, band=band, range_km=range_km, emission_deg=emission))
                    rows.append({
                        "product_id": f"JIR_IMG_RDR_PJ{pj}_{s.key}_{k:02d}",
                        "perijove": pj,
                        "et_mid": pj_et + off,
                        "utc": (pj_utc + timedelta(seconds=float(off))).isoformat(
                            timespec="milliseconds"),
                        "band": band,
                        "line": float(rng.uniform(0, 128)),
                        "sample": float(rng.uniform(0, 432)),
                        "lat_deg": float(lat),
                        "lon_west_deg": float(lon),
                        "emission_deg": emission,
                        "incidence_deg": float(rng.uniform(95, 170)),
                        "range_km": range_km,
                        "pixel_scale_km": scale,
                        "peak_radiance_w_m2_sr": 0.4 * rad_sum,
                        "radiance_sum_w_m2_sr": rad_sum,
                        "power_gw_per_um": power,
                        "snr": float(rng.uniform(6, 80)),
                        "n_pixels": int(rng.integers(1, 10)),
                        "flags": int(Flag.SATURATED if sat else 0),
                        "position_sigma_km": POSITION_NOISE_PX * scale,
                    })
                    keys.append(s.key)
    det = pd.DataFrame(rows)
    return det, pd.Series(keys, index=det.index)


@pytest.fixture(scope="module")
def truth():
    sources = _truth_sources()
    by_key = {s.key: s for s in sources}
    with_m_ref = [s for s in sources if s.ref_id]
    sat_only = {(with_m_ref[i].key, with_m_ref[i].perijoves[0]) for i in (3, 11, 17)}
    one_sat = {(with_m_ref[i].key, with_m_ref[i].perijoves[-1]) for i in (4, 12)}
    det, keys = _detections(sources, seed=7, saturated_only=sat_only, one_saturated=one_sat)
    return {"sources": sources, "by_key": by_key, "det": det, "keys": keys,
            "sat_only": sat_only, "one_sat": one_sat}


@pytest.fixture(scope="module")
def built(truth):
    return C.build_catalog(truth["det"])


def _hotspot_of(catalog: pd.DataFrame, s: Source, pj: int) -> pd.Series:
    """The catalog row of source s at perijove pj (nearest per-perijove position)."""
    rows = catalog[catalog["perijove"] == pj]
    d = np.asarray(C.great_circle_km(rows["lat_deg_pj"].to_numpy(), rows["lon_west_deg_pj"].to_numpy(),
                                     s.lat_deg, s.lon_west_deg))
    i = int(np.argmin(d))
    assert d[i] < 100.0, f"{s.key} PJ{pj}: no catalog row near the true position"
    return rows.iloc[i]


# --- tests ---------------------------------------------------------------------------


def test_default_temperature_is_davies_jiram_median():
    ref = load_davies2024()
    jiram_t = ref.loc[ref["status"] == 1, "temperature_k"].dropna()
    assert len(jiram_t) > 20
    median = float(jiram_t.median())
    assert abs(C.DEFAULT_TEMPERATURE_K - median) <= 0.1 * median
    assert C.DEFAULT_TEMPERATURE_K == pytest.approx(median, abs=10.0)


def test_flag_values_and_docs():
    # published values: never renumbered, new flags only appended
    expected = {"SATURATED": 1, "NEAR_LIMB": 2, "HIGH_EMISSION": 4, "LOW_CONFIDENCE": 8,
                "UNREGISTERED": 16, "FRAME_EDGE": 32, "T_FROM_LM": 64,
                "T_FROM_REFERENCE": 128, "T_ASSUMED": 256, "POWER_LOWER_LIMIT": 512,
                "NEW_SOURCE": 1024, "NONLINEAR": 2048, "POINTING_PASS": 4096,
                "POINTING_CONSTELLATION": 8192, "TRANSIENT": 16384}
    assert {m.name: m.value for m in Flag} == expected
    assert all(len(m.__doc__) > 20 for m in Flag)
    assert flag_names(int(Flag.SATURATED | Flag.T_FROM_LM)) == "SATURATED|T_FROM_LM"
    assert flag_names(0) == ""
    assert list(flag_names(np.array([0, 1024, 16384 | 2048]))) == ["", "NEW_SOURCE",
                                                                   "NONLINEAR|TRANSIENT"]


def test_great_circle_km():
    quarter = 0.5 * np.pi * C.IO_RADIUS_KM
    assert C.great_circle_km(0.0, 0.0, 90.0, 123.0) == pytest.approx(quarter)
    assert C.great_circle_km(0.0, 10.0, 0.0, 100.0) == pytest.approx(quarter)
    # across the 0/360 wrap
    assert C.great_circle_km(0.0, 359.9, 0.0, 0.1) == pytest.approx(
        np.deg2rad(0.2) * C.IO_RADIUS_KM)
    d = C.great_circle_km(np.zeros((3, 1)), np.zeros((3, 1)), np.zeros(4), np.arange(4.0))
    assert d.shape == (3, 4)
    assert C.great_circle_km(1.0, 2.0, 1.0, 2.0, radius_km=1.0) == 0.0


def test_merge_groups_each_source_and_perijove_once(truth):
    clusters = C.merge_detections(truth["det"])
    keys = truth["keys"]
    seen = set()
    for _, c in clusters.iterrows():
        members = set(keys.loc[c["detection_indices"]])
        assert len(members) == 1, f"cluster mixes sources {members}"
        seen_key = (members.pop(), c["perijove"])
        assert seen_key not in seen, f"{seen_key} split into several clusters"
        seen.add(seen_key)
    expected = {(s.key, pj) for s in truth["sources"] for pj in s.perijoves}
    assert seen == expected
    assert clusters["detection_indices"].map(len).sum() == len(truth["det"])
    assert set(clusters["bands"]) <= {"M", "LM"}


def test_every_source_is_one_hotspot_with_correct_ref_id(truth, built):
    cat = built.catalog
    hotspot_of_source = {}
    for s in truth["sources"]:
        ids = {_hotspot_of(cat, s, pj)["hotspot_id"] for pj in s.perijoves}
        assert len(ids) == 1, f"{s.key} split into {ids}"
        hotspot_of_source[s.key] = ids.pop()
        assert (cat["hotspot_id"] == hotspot_of_source[s.key]).sum() == len(s.perijoves)
    assert len(set(hotspot_of_source.values())) == len(truth["sources"])
    assert cat["hotspot_id"].nunique() == len(truth["sources"])
    assert len(built.hotspots) == len(truth["sources"])

    known = [s for s in truth["sources"] if s.ref_id]
    correct = sum(hotspot_of_source[s.key] == plain_id("IVC-" + s.ref_id) for s in known)
    assert correct >= 0.98 * len(known)
    for s in truth["sources"]:
        rows = cat[cat["hotspot_id"] == hotspot_of_source[s.key]]
        if s.ref_id:
            assert (rows["ref_id"] == s.ref_id).all()
            assert not (rows["flags"] & Flag.NEW_SOURCE).any()
            assert (rows["match_distance_km"] < 150).all()
        else:
            assert hotspot_of_source[s.key].startswith("IVC-NEW-")
            assert (rows["flags"] & Flag.NEW_SOURCE).all()
            assert (rows["ref_id"] == "").all() and rows["match_distance_km"].isna().all()
        # hotspot position close to the truth, consistent with its uncertainty
        d = C.great_circle_km(rows["lat_deg"].iloc[0], rows["lon_west_deg"].iloc[0],
                              s.lat_deg, s.lon_west_deg)
        assert d < max(5 * rows["position_uncertainty_km"].iloc[0], 3.0)
    new_ids = sorted(v for v in hotspot_of_source.values() if v.startswith("IVC-NEW-"))
    assert new_ids == [f"IVC-NEW-{k:04d}" for k in range(1, len(new_ids) + 1)]


def test_positions_without_extraction_sigma(truth):
    """A detection table without ``position_sigma_km`` (older extraction output, an
    external table): the catalog falls back on its own per-detection error model,
    and the hotspot positions must still be consistent with their stated uncertainty
    (the same check as above, on the same detections)."""
    cat = C.build_catalog(truth["det"].drop(columns="position_sigma_km")).catalog
    off = []
    for s in truth["sources"]:
        row = _hotspot_of(cat, s, s.perijoves[0])
        d = float(C.great_circle_km(row["lat_deg"], row["lon_west_deg"], s.lat_deg,
                                    s.lon_west_deg))
        if not d < max(5 * row["position_uncertainty_km"], 3.0):
            off.append((s.key, round(d, 1), round(float(row["position_uncertainty_km"]), 2)))
    assert not off, f"(source, km from the truth, stated 1-sigma km): {off}"


def test_temperature_and_power_recovered(truth, built):
    cat = built.catalog
    n_lm = n_ref = n_assumed = n_implausible_ref = 0
    for s in truth["sources"]:
        t_true = _true_temperature(s)
        p_true = float(physics.total_power_gw(temperature_k=t_true, area_km2=s.area_km2))
        for pj in s.perijoves:
            row = _hotspot_of(cat, s, pj)
            f = int(row["flags"])
            if (s.key, pj) in truth["sat_only"]:
                assert f & Flag.POWER_LOWER_LIMIT and f & Flag.SATURATED
                assert "POWER_LOWER_LIMIT" in row["flag_names"]
                assert row["power_gw"] < p_true
                assert row["power_gw_lo"] <= row["power_gw"] and np.isinf(row["power_gw_hi"])
                assert row["power_gw_lo"] <= p_true
                continue
            assert not f & Flag.POWER_LOWER_LIMIT
            if (s.key, pj) in truth["one_sat"]:
                assert f & Flag.SATURATED
            if s.has_l:
                assert f & Flag.T_FROM_LM, (s.key, pj, row["flag_names"])
                assert row["temperature_k"] == pytest.approx(t_true, rel=0.02)
                n_lm += 1
            elif _reference_t_usable(s):
                assert f & Flag.T_FROM_REFERENCE, (s.key, pj, row["flag_names"])
                assert row["temperature_k"] == s.temperature_k
                n_ref += 1
            else:
                # no reference temperature, or an implausible one (not a colour temperature)
                assert f & Flag.T_ASSUMED, (s.key, pj, s.temperature_k, row["flag_names"])
                assert row["temperature_k"] == C.DEFAULT_TEMPERATURE_K
                n_assumed += 1
                n_implausible_ref += bool(s.ref_id and np.isfinite(s.temperature_k))
            if not f & Flag.T_FROM_LM:
                # an unmeasured temperature: its interval is the plausible range
                assert (row["temperature_k_lo"], row["temperature_k_hi"]) == PLAUSIBLE_T_K
            else:
                assert row["temperature_k_lo"] <= t_true <= row["temperature_k_hi"]
            assert bin(f & int(Flag.T_FROM_LM | Flag.T_FROM_REFERENCE | Flag.T_ASSUMED)).count(
                "1") == 1
            assert row["power_gw"] == pytest.approx(p_true, rel=0.05)
            assert row["area_km2"] == pytest.approx(s.area_km2, rel=0.08)
            # the ~90 % power interval holds the power and the truth
            assert row["power_gw_lo"] <= row["power_gw"] <= row["power_gw_hi"]
            assert row["power_gw_lo"] <= p_true <= row["power_gw_hi"]
    assert n_lm > 20 and n_ref > 20 and n_assumed > 5 and n_implausible_ref > 5


def test_catalog_schema_and_summary(built):
    cat, hot = built.catalog, built.hotspots
    assert list(cat.columns) == list(C.CATALOG_COLUMNS)
    assert list(hot.columns) == list(C.HOTSPOT_COLUMNS)
    assert (cat["lon_west_deg"].between(0, 360, inclusive="left")).all()
    assert (cat["lon_west_deg_pj"].between(0, 360, inclusive="left")).all()
    assert list(cat["flag_names"]) == list(flag_names(cat["flags"].to_numpy()))
    for hid, g in cat.groupby("hotspot_id"):
        assert g["first_seen_utc"].nunique() == 1 and g["lat_deg"].nunique() == 1
        assert g["perijove"].is_unique
        h = hot.set_index("hotspot_id").loc[hid]
        assert h["n_perijoves"] == len(g)
        assert h["mean_power_gw"] == pytest.approx(g["power_gw"].mean())
        assert h["n_detections"] == g["n_detections"].sum()
        assert h["first_seen_utc"] <= h["last_seen_utc"]
    assert (cat["first_seen_utc"] <= cat["last_seen_utc"]).all()


def test_new_source_ids_are_stable(truth, built):
    rng = np.random.default_rng(99)
    sources = truth["sources"]
    (la, lo), = _new_positions(load_davies2024(), [s.lat_deg for s in sources],
                               [s.lon_west_deg for s in sources], rng, n=1)
    # seen in the *earliest* perijove: an id derived from first-seen order would shift
    extra = Source("EXTRA", "", la, lo, np.nan, 2.0, False, PERIJOVES[:2])
    det_extra, _ = _detections([extra], seed=123)
    det2 = pd.concat([truth["det"], det_extra], ignore_index=True)
    cat1 = built.catalog
    cat2 = C.build_catalog(det2, previous=cat1).catalog

    old_new = {s.key: _hotspot_of(cat1, s, s.perijoves[0])["hotspot_id"]
               for s in sources if not s.ref_id}
    for s in sources:
        if not s.ref_id:
            assert _hotspot_of(cat2, s, s.perijoves[0])["hotspot_id"] == old_new[s.key]
    highest = max(int(v.rsplit("-", 1)[1]) for v in old_new.values())
    extra_id = _hotspot_of(cat2, extra, PERIJOVES[0])["hotspot_id"]
    assert extra_id == f"IVC-NEW-{highest + 1:04d}"
    assert set(cat2["hotspot_id"]) == set(cat1["hotspot_id"]) | {extra_id}
    # without the registry the numbering would have changed (why `previous` exists)
    cat3 = C.build_catalog(det2).catalog
    assert _hotspot_of(cat3, extra, PERIJOVES[0])["hotspot_id"] != extra_id
    # ids also survive a round trip through the hotspot summary as `previous`
    cat4 = C.build_catalog(det2, previous=built.hotspots).catalog
    assert set(cat4["hotspot_id"]) == set(cat2["hotspot_id"])


def test_lon_wrap_merges_and_matches(truth, built):
    rng = np.random.default_rng(5)
    src = Source("WRAP", "", 12.0, 0.02, 600.0, 1.0, True, (41,))
    det, _ = _detections([src], seed=11)
    # perturb so the detections straddle 0/360
    det["lon_west_deg"] = np.mod(0.02 + rng.uniform(-0.4, 0.4, len(det)), 360.0)
    det.loc[det.index[0], "lon_west_deg"] = 359.7
    det.loc[det.index[1], "lon_west_deg"] = 0.3
    assert (det["lon_west_deg"] > 300).any() and (det["lon_west_deg"] < 60).any()
    clusters = C.merge_detections(det)
    assert len(clusters) == 1
    c = clusters.iloc[0]
    assert 0.0 <= c["lon_west_deg"] < 360.0
    assert C.great_circle_km(c["lat_deg"], c["lon_west_deg"], 12.0, 0.02) < 15.0
    ref = pd.DataFrame({"ref_id": ["R1"], "name": ["Wrap P."], "lat_deg": [12.0],
                        "lon_west_deg": [359.98], "temperature_k": [np.nan]})
    cat = C.build_catalog(det, reference=ref).catalog
    assert list(cat["hotspot_id"]) == ["IVC-R1"]
    assert cat["name"].iloc[0] == "Wrap P."
    # the forced wrap source of the big synthetic set is one hotspot with the right id
    s = truth["sources"][0]
    assert min(s.lon_west_deg, 360 - s.lon_west_deg) < 3.0
    ids = {_hotspot_of(built.catalog, s, pj)["hotspot_id"] for pj in s.perijoves}
    assert ids == {plain_id("IVC-" + s.ref_id)}


def test_cross_match_one_reference_per_cluster_per_perijove():
    clusters = pd.DataFrame({
        "perijove": [41, 41, 43],
        "lat_deg": [0.0, 0.0, 0.0],
        "lon_west_deg": [10.0, 10.5, 10.5],
        "pixel_scale_km": [20.0, 20.0, 20.0],
        "flags": [0, int(Flag.NEW_SOURCE), 0],
    })
    ref = pd.DataFrame({"ref_id": ["A"], "name": [""], "lat_deg": [0.0],
                        "lon_west_deg": [10.1], "temperature_k": [300.0]})
    out = C.cross_match(clusters, ref)
    assert list(out["ref_id"]) == ["A", "", "A"]  # the closer cluster of PJ41 wins
    assert list(out["flags"] & Flag.NEW_SOURCE) == [0, int(Flag.NEW_SOURCE), 0]
    assert out["match_distance_km"].iloc[0] == pytest.approx(
        C.great_circle_km(0.0, 10.0, 0.0, 10.1))
    assert out["ref_temperature_k"].iloc[2] == 300.0
    # tolerance: 3 px of 20 km = 60 km; a source 0.5 deg (~16 km) away matches,
    # one 5 deg (~159 km) away does not
    far = C.cross_match(clusters.assign(lon_west_deg=[15.1, 15.1, 15.1]), ref)
    assert (far["ref_id"] == "").all()


def test_cluster_flags_and_lower_limit():
    det, _ = _detections([Source("S", "", 0.0, 100.0, 500.0, 1.0, True, (41,))], seed=3)
    det["snr"] = 5.0
    det["flags"] = np.where(det["band"] == "M", int(Flag.SATURATED | Flag.NEAR_LIMB),
                            int(Flag.NEAR_LIMB))
    det["emission_deg"] = 80.0
    c = C.merge_detections(det).iloc[0]
    f = Flag(int(c["flags"]))
    assert Flag.SATURATED in f and Flag.NEAR_LIMB in f and Flag.HIGH_EMISSION in f
    assert Flag.LOW_CONFIDENCE in f and Flag.POWER_LOWER_LIMIT in f
    assert c["m_saturated_only"] and not c["l_saturated_only"]
    # a saturated-only M band is not used for the L/M ratio
    d = C.derive_power(C.cross_match(C.merge_detections(det), load_davies2024().iloc[:0]))
    assert Flag(int(d["flags"].iloc[0])) & Flag.T_ASSUMED
    # one frame only -> LOW_CONFIDENCE even at high SNR
    one = det[det["product_id"] == det["product_id"].iloc[0]].assign(snr=50.0, flags=0)
    assert C.merge_detections(one)["flags"].iloc[0] & Flag.LOW_CONFIDENCE


def test_write_read_round_trip(built, tmp_path):
    paths = C.write_catalog(built, tmp_path / "v1", version="1.2.3")
    assert [p.name for p in paths] == ["catalog.parquet", "catalog.ecsv", "hotspots.parquet",
                                       "hotspots.csv"]
    cat = built.catalog
    pd.testing.assert_frame_equal(C.read_catalog(paths[0]), cat, check_exact=True)
    pd.testing.assert_frame_equal(C.read_catalog(tmp_path / "v1"), cat, check_exact=True)
    pd.testing.assert_frame_equal(C.read_catalog(paths[1]), cat, check_exact=True)
    pd.testing.assert_frame_equal(C.read_catalog(paths[2]), built.hotspots, check_exact=True)
    pd.testing.assert_frame_equal(C.read_catalog(paths[3]), built.hotspots, check_exact=True)

    t = Table.read(paths[1], format="ascii.ecsv")
    assert t.colnames == list(C.CATALOG_COLUMNS)
    assert t.meta["version"] == "1.2.3"
    assert t.meta["flags"]["NEW_SOURCE"]["value"] == 1024
    for name, (unit, desc) in C.CATALOG_COLUMNS.items():
        assert t[name].description == desc
        assert (t[name].unit is None) if unit is None else (t[name].unit == unit)
        if name in ("hotspot_id", "ref_id", "name", "flag_names", "bands"):
            assert list(np.asarray(t[name].filled("") if hasattr(t[name], "filled")
                                   else t[name], dtype=str)) == list(cat[name])
        elif cat[name].dtype.kind == "f":
            np.testing.assert_array_equal(np.asarray(t[name], dtype=float), cat[name])
        else:
            assert list(np.asarray(t[name])) == list(cat[name])


def test_empty_detections():
    det = pd.DataFrame({c: pd.Series(dtype=float) for c in C.DETECTION_COLUMNS})
    res = C.build_catalog(det)
    assert res.catalog.empty and list(res.catalog.columns) == list(C.CATALOG_COLUMNS)
    assert res.hotspots.empty and list(res.hotspots.columns) == list(C.HOTSPOT_COLUMNS)


def test_schema_doc_covers_every_column_and_flag():
    text = DOCS.read_text()
    for name in list(C.CATALOG_COLUMNS) + list(C.HOTSPOT_COLUMNS):
        assert f"`{name}`" in text, name
    for m in Flag:
        assert f"`{m.name}`" in text, m.name
    assert "450" in text
    # the plausible colour-temperature range (T_FROM_REFERENCE, temperature intervals)
    assert C.PLAUSIBLE_TEMPERATURE_K == PLAUSIBLE_T_K
    assert "250–1500 K" in text
