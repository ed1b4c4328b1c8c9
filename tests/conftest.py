"""Shared fixtures: small simulated downlinks (session-scoped) and a clean SPICE pool."""

from __future__ import annotations

import os

import pytest
import spiceypy

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(autouse=True)
def _clean_spice_pool():
    """CSPICE is process-global: every test starts and ends with an empty pool."""
    spiceypy.kclear()
    yield
    spiceypy.kclear()


def _simulate(tmp_path_factory, name: str, perijoves: list[int], *, seed: int,
              frames_per_pass: int, night: bool = False):
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    out = tmp_path_factory.mktemp(name)
    scenario = scenario_for(perijoves, seed=seed, night=night, frames_per_pass=frames_per_pass)
    summary = simulate(scenario, out_dir=out, seed=seed)
    return out, summary


@pytest.fixture(scope="session")
def pj57_small(tmp_path_factory):
    """A small PJ57 close-flyby downlink (seed 0): (out_dir, summary)."""
    return _simulate(tmp_path_factory, "pj57", [57], seed=0, frames_per_pass=32)


@pytest.fixture(scope="session")
def night_small(tmp_path_factory):
    """A distant night-side pass (PJ60, seed 2)."""
    return _simulate(tmp_path_factory, "night", [60], seed=2, frames_per_pass=16, night=True)


@pytest.fixture(scope="session")
def pj57_tiny(tmp_path_factory):
    """A tiny PJ57 downlink (seed 0, ~12 frames): the readers' and kernels' test bed."""
    out, _ = _simulate(tmp_path_factory, "pj57_tiny", [57], seed=0, frames_per_pass=8)
    return out
