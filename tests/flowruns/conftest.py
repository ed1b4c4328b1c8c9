"""Flow tests: one Prefect test harness for the session, small simulated downlinks."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("IOVOLC_PROCESSES", "1")


@pytest.fixture(scope="session")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def downlink(tmp_path_factory):
    """PJ56 (distant), PJ57 and PJ58 (close flybys), a few frames each."""
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    out = tmp_path_factory.mktemp("flows-downlink")
    simulate(scenario_for([56, 57, 58], seed=0, frames_per_pass=8), out_dir=out, seed=0)
    return out


@pytest.fixture()
def sources(downlink, tmp_path, monkeypatch):
    from flows.params import Sources

    monkeypatch.setenv("IOVOLC_CACHE_DIR", str(tmp_path / "cache"))
    return Sources(archive_url=(downlink / "archive").as_uri(),
                   kernels_url=(downlink / "kernels").as_uri(),
                   store_url=(tmp_path / "store").as_uri())
