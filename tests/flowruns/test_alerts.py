"""Alerts end to end: the simulator's giant eruption raises exactly one alert, a quiet
rerun none (flows under the Prefect test harness, real store, real catalog)."""

from __future__ import annotations

import json

import pytest

from flows.params import PerijoveParams, Sources
from flows.perijove import process_perijove
from iovolc.settings import load_settings
from iovolc.store import Store, object_key

pytestmark = pytest.mark.usefixtures("harness")


@pytest.fixture(scope="module")
def eruption_downlink(tmp_path_factory):
    """PJ66 then PJ67 with a giant new eruption at PJ67; sources steady, no other new one."""
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    out = tmp_path_factory.mktemp("eruption")
    simulate(scenario_for([66, 67], seed=4, frames_per_pass=12, eruption_perijove=67,
                          variability_dex=0.0, n_new_sources=0), out_dir=out, seed=4)
    return out


def test_outburst_one_alert_quiet_rerun_none(eruption_downlink, tmp_path, monkeypatch):
    monkeypatch.setenv("IOVOLC_CACHE_DIR", str(tmp_path / "cache"))
    src = Sources(archive_url=(eruption_downlink / "archive").as_uri(),
                  kernels_url=(eruption_downlink / "kernels").as_uri(),
                  store_url=(tmp_path / "store").as_uri())
    store = Store.from_settings(load_settings(store_url=src.store_url))
    first = process_perijove(PerijoveParams(perijoves=[66], sources=src))
    assert first["publish"]["version"] == "v0001" and first["alerts"] == 0
    second = process_perijove(PerijoveParams(perijoves=[67], sources=src))
    assert second["publish"]["version"] == "v0002"
    assert second["alerts"] == 1
    record = store.get_json(object_key("alerts", version="v0002"))
    (alert,) = record["alerts"]
    assert alert["kind"] == "new-hotspot" and alert["perijove"] == 67
    truth = json.loads((eruption_downlink / "truth" / "scenario.json").read_text())
    assert truth  # the eruption is the scenario's only new source
    import pandas as pd

    from iovolc.catalog import great_circle_km

    src_truth = pd.read_csv(eruption_downlink / "truth" / "sources.csv")
    eruption = src_truth[src_truth["is_eruption"].astype(bool) & (src_truth["perijove"] == 67)]
    d = great_circle_km(alert["lat_deg"], alert["lon_west_deg"], eruption["lat_deg"].iloc[0],
                        eruption["lon_west_deg"].iloc[0])
    assert d < 150.0, (alert, eruption)
    # a quiet rerun: nothing new, no version, no alert
    again = process_perijove(PerijoveParams(perijoves=[67], sources=src))
    assert again["publish"]["version"] == "v0002" and not again["publish"]["changed"]
    assert again["alerts"] == 0
    assert not store.exists(object_key("alerts", version="v0003"))
