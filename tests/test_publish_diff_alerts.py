"""iovolc.publish: what changed between versions, and alerts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from iovolc.publish.alerts import (
    BRIGHTENING_FACTOR,
    alert_events,
    alerts_for,
)
from iovolc.publish.diff import diff_catalogs, diff_json, diff_markdown
from iovolc.publish.synthetic import OUTBURST_POSITION, synthetic_catalog


@pytest.fixture(scope="module")
def old():
    return synthetic_catalog(perijoves=(57, 58)).catalog


def _set(cat: pd.DataFrame, hid: str, pj: int | None = None, **values) -> pd.DataFrame:
    cat = cat.copy()
    m = cat["hotspot_id"] == hid
    if pj is not None:
        m &= cat["perijove"] == pj
    for k, v in values.items():
        cat.loc[m, k] = v
    return cat


def _with_power(cat, hid, pj, power):
    return _set(cat, hid, pj, power_gw=power, power_gw_lo=0.8 * power, power_gw_hi=1.25 * power)


def test_diff_kinds(old):
    new = synthetic_catalog(perijoves=(57, 58), outburst=(58, 3000.0)).catalog
    new = new[new["hotspot_id"] != "IVC-JRM227"]  # lost
    new = _set(new, "IVC-NEW-0001", hotspot_id="IVC-JRM999", ref_id="JRM999")  # renamed
    new = _with_power(new, "IVC-Pele", 58, 3000.0)  # power_changed (up)
    loki_lat = float(old.loc[old["hotspot_id"] == "IVC-Loki P.", "lat_deg"].iloc[0])
    new = _set(new, "IVC-Loki P.", lat_deg=loki_lat + 1.0)  # moved ~32 km (> 3 x 5.7 km)
    taw = 'IVC-"Tawhaki P."'
    p_taw = float(old.loc[(old["hotspot_id"] == taw) & (old["perijove"] == 58), "power_gw"].iloc[0])
    new = _with_power(new, taw, 58, 1.05 * p_taw)  # within its interval: not a change
    d = diff_catalogs(old, new)
    kinds = dict(zip(d["hotspot_id"], d["kind"], strict=True))
    assert kinds == {"IVC-NEW-0002": "new", "IVC-JRM999": "renamed", "IVC-JRM227": "lost",
                     "IVC-Pele": "power_changed", "IVC-Loki_P": "moved"}
    ren = d[d["kind"] == "renamed"].iloc[0]
    assert ren["old_hotspot_id"] == "IVC-NEW-0001"
    moved = d[d["kind"] == "moved"].iloc[0]
    assert moved["new_value"] == pytest.approx(np.deg2rad(1.0) * 1821.6, rel=1e-3)
    assert "power up" in d.loc[d["kind"] == "power_changed", "detail"].iloc[0]
    md = diff_markdown(d, old_version="v0001", new_version="v0002")
    assert "## moved (1)" in md and "IVC-NEW-0002" in md and "since v0001" in md
    doc = json.loads(diff_json(d, old_version="v0001", new_version="v0002"))
    assert len(doc["changes"]) == 5 and doc["new_version"] == "v0002"


def test_diff_quiet_rerun_lower_limit_and_hotspot_tables(old):
    assert diff_catalogs(old, old).empty
    assert "No changes" in diff_markdown(diff_catalogs(old, old), old_version="a",
                                         new_version="b")
    res = synthetic_catalog(perijoves=(57, 58))
    everything_new = diff_catalogs(None, res.hotspots)
    assert set(everything_new["kind"]) == {"new"} and len(everything_new) == 6
    assert diff_catalogs(res.hotspots, res.hotspots).empty


def test_diff_lower_limit_rules(old):
    lim = _set(old, "IVC-Pele", 58, power_gw_hi=np.inf)
    higher = _with_power(old, "IVC-Pele", 58, 5000.0)
    # old interval [240, inf): a higher new power is never "beyond" a lower limit
    assert diff_catalogs(lim, higher).empty
    lower = _with_power(old, "IVC-Pele", 58, 50.0)  # [40, 62.5] < 0.8 x 310: certain drop
    d = diff_catalogs(lim, lower)
    assert list(d["kind"]) == ["power_changed"] and "down" in d["detail"].iloc[0]


def test_quiet_rerun_gives_no_alert(old):
    assert alerts_for(old, old) == []
    # a new perijove with ordinary variability only: no alert either
    quiet = synthetic_catalog(perijoves=(57, 58, 59)).catalog
    assert alerts_for(old, quiet) == []


def test_outburst_gives_exactly_one_alert(old):
    new = synthetic_catalog(perijoves=(57, 58, 59), outburst=(59, 3000.0)).catalog
    alerts = alerts_for(old, new)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a["id"], a["kind"], a["perijove"]) == ("IVC-NEW-0002", "new-hotspot", 59)
    assert (a["lat_deg"], a["lon_west_deg"]) == OUTBURST_POSITION
    assert a["power_gw"] == 3000.0 and "no Davies" in a["reason"]
    json.dumps(alerts, allow_nan=False)  # JSON-able
    # the same again is quiet
    assert alerts_for(new, new) == []


def test_brightening_rule_and_short_history_floor(old):
    base = synthetic_catalog(perijoves=(57, 58, 59)).catalog
    pele_hist = old.loc[old["hotspot_id"] == "IVC-Pele", "power_gw"]
    m, mx = pele_hist.mean(), pele_hist.max()
    # lo = 0.8 P: P = 2.4 x max -> lo = 1.92 x max < 2 x max: no alert
    assert alerts_for(old, _with_power(base, "IVC-Pele", 59, 2.4 * mx)) == []
    # P = 3 x max -> lo = 2.4 x max > 2 x max and > mean + 3 sigma (sigma = 0.3 mean floor)
    alerts = alerts_for(old, _with_power(base, "IVC-Pele", 59, 3.0 * mx))
    assert [(a["id"], a["kind"]) for a in alerts] == [("IVC-Pele", "brightening")]
    assert alerts[0]["history_n"] == 2
    assert alerts[0]["power_gw_lo"] > BRIGHTENING_FACTOR * mx
    assert alerts[0]["history_mean_power_gw"] == pytest.approx(m)
    # a one-perijove history: the same rule with the 0.3 x mean floor
    one = old[old["perijove"] == 57]
    p57 = float(one.loc[one["hotspot_id"] == "IVC-Pele", "power_gw"].iloc[0])
    nxt = synthetic_catalog(perijoves=(57, 58)).catalog
    assert alerts_for(one, _with_power(nxt, "IVC-Pele", 58, 2.4 * p57)) == []
    assert len(alerts_for(one, _with_power(nxt, "IVC-Pele", 58, 2.6 * p57))) == 1


def test_new_source_near_known_place_is_not_new_hotspot(old):
    base = synthetic_catalog(perijoves=(57, 58, 59)).catalog
    row = base[base["hotspot_id"] == "IVC-NEW-0001"].iloc[[-1]].copy()
    # (a) uncatalogued id next to a Davies source (Pele, 10 km away): catalogued place
    near_pele = row.assign(hotspot_id="IVC-NEW-0005", lat_deg=-18.8 + 0.3, lon_west_deg=255.6,
                           perijove=59)
    assert alerts_for(old, pd.concat([base, near_pele], ignore_index=True)) == []
    # (b) a new id where an earlier perijove already had a source (IVC-NEW-0001's place)
    again = row.assign(hotspot_id="IVC-NEW-0006", perijove=59,
                       lat_deg=row["lat_deg"] + 0.1)
    assert alerts_for(old, pd.concat([base, again], ignore_index=True)) == []
    # (c) a renamed source at an old perijove is not a new row
    renamed = _set(old, "IVC-NEW-0001", hotspot_id="IVC-NEW-0009")
    assert alerts_for(old, renamed) == []


def test_first_version_alerts_new_sources_once(old):
    alerts = alerts_for(None, old)
    assert [(a["id"], a["perijove"]) for a in alerts] == [("IVC-NEW-0001", 57)]


def test_alert_events_triples(old):
    new = synthetic_catalog(perijoves=(57, 58, 59), outburst=(59, 3000.0)).catalog
    [(event, resource, payload)] = alert_events(alerts_for(old, new), catalog_version="v0002")
    assert event == "iovolc.alert.new-hotspot"
    assert resource["prefect.resource.id"] == "iovolc.hotspot.IVC-NEW-0002"
    assert all(isinstance(v, str) for v in resource.values())
    assert payload["catalog_version"] == "v0002" and payload["perijove"] == 59
    json.dumps(payload, allow_nan=False)
    with pytest.raises(ValueError, match="unknown alert kind"):
        alert_events([{**payload, "kind": "meh"}])


def test_alerts_with_each_hotspots_rows_taken_once_are_the_masked_ones():
    """alerts_for (each hotspot's known rows indexed once) against the form that took a
    boolean mask over the known table for every new row (tests/_alerts_reference.py):
    the same records, as JSON, on first versions, grown catalogs, brightenings over
    long histories, dropped rows, a new source, and an id given as None (published as
    the plain token "None")."""
    from _alerts_reference import alerts_for_masks

    rng = np.random.default_rng(29)
    n_alerts = {"new-hotspot": 0, "brightening": 0}
    for seed in range(6):
        pjs = tuple(range(40, 40 + 4 + seed * 3))
        cat = synthetic_catalog(perijoves=pjs, seed=seed, outburst=(pjs[-1], 3000.0)).catalog
        bright = cat.copy()
        late = bright["perijove"] >= pjs[len(pjs) // 2]
        factor = np.where(rng.random(len(bright)) < 0.5, 4.0, 1.0)
        for c in ("power_gw", "power_gw_lo", "power_gw_hi"):
            bright.loc[late, c] = bright.loc[late, c] * factor[late.to_numpy()]
        if seed == 5:  # a row without an id among the known ones
            bright.loc[bright.index[:2], "hotspot_id"] = None
        cut = pjs[len(pjs) // 2]
        cases = [(None, cat), (cat[cat["perijove"] < cut], cat),
                 (cat[cat["perijove"] < cut], bright),
                 (cat.sample(frac=0.7, random_state=seed), bright), (cat, cat)]
        for previous, new in cases:
            want = alerts_for_masks(previous, new)
            got = alerts_for(previous, new)
            assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
            for a in want:
                n_alerts[a["kind"]] += 1
    assert n_alerts["new-hotspot"] > 5 and n_alerts["brightening"] > 5, n_alerts
