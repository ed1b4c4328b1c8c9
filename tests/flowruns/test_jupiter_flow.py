"""A perijove whose downlink is mostly frames of Jupiter, through the Prefect flows.

The orchestrated stages (tasks/work.py) store no calibrated FITS for the
sequences Io cannot reach, keep every frame in the frame table, extract
only the Io frames, and a rerun of finished work writes nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from flows.params import PerijoveParams, Sources
from flows.perijove import process_perijove
from iovolc.settings import load_settings
from iovolc.store import Store, object_key

pytestmark = pytest.mark.usefixtures("harness")


@pytest.fixture(scope="module")
def mostly_jupiter(tmp_path_factory):
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    out = tmp_path_factory.mktemp("jupiter-downlink")
    simulate(scenario_for([20], seed=2, frames_per_pass=30, io_share=0.3), out_dir=out, seed=2,
             products=("RDR",))
    return out


def _snapshot(store: Store) -> dict[str, str]:
    root = Path(store.root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_jupiter_frames_are_listed_not_calibrated(mostly_jupiter, tmp_path, monkeypatch):
    monkeypatch.setenv("IOVOLC_CACHE_DIR", str(tmp_path / "cache"))
    src = Sources(archive_url=(mostly_jupiter / "archive").as_uri(),
                  kernels_url=(mostly_jupiter / "kernels").as_uri(),
                  store_url=(tmp_path / "store").as_uri())
    # 8 frames per task: the pass does not fit one batch, so calibration asks the reach
    params = PerijoveParams(perijoves=[20], sources=src, frames_per_task=8)
    state = process_perijove(params, return_state=True)
    assert state.is_completed(), state
    store = Store.from_settings(load_settings(store_url=src.store_url))
    truth = pd.read_csv(mostly_jupiter / "truth" / "frames.csv")
    jup = set(truth.loc[truth.target_name == "JUPITER", "product_id"])
    io = set(truth.product_id) - jup
    assert len(jup) >= 15 and len(io) >= 6
    fits = {Path(k).stem for k in store.list("calibrated/pj020/")}
    assert fits == io  # Jupiter frames: landed raw, never calibrated
    assert {Path(k).stem for k in store.list("raw/")} >= jup | io
    fr = store.get_parquet(object_key("result", perijove=20, filename="frames.parquet"))
    assert set(fr.product_id) == jup | io  # every frame the instrument took has its row
    f = fr.set_index("product_id")
    assert not f.loc[sorted(jup), "calibrated"].any() and f.loc[sorted(io), "calibrated"].all()
    assert not f.loc[sorted(jup), "io_in_view"].any()
    det = store.get_parquet(object_key("result", perijove=20, filename="detections.parquet"))
    assert len(det) > 0 and set(det.product_id) <= io
    # the flow batched calibration by reach_of_groups: it answers what calibration decided
    from tasks.work import manifest_groups, reach_of_groups

    groups = manifest_groups(store.get_json(object_key("manifest", stage="ingest", perijove=20)))
    reach = reach_of_groups(load_settings(store_url=src.store_url), groups=groups)
    assert reach == [bool(f.loc[[m["product_id"] for m in g], "calibrated"].all())
                     for g in groups]
    assert True in reach and False in reach
    # a row without kernel names: unknown, so batched by frames
    old = [[{k: v for k, v in m.items() if k != "kernels"} for m in groups[0]]]
    assert reach_of_groups(load_settings(store_url=src.store_url), groups=old) == [None]
    before = _snapshot(store)
    again = process_perijove(params, return_state=True)
    assert again.is_completed() and again.result()["note"].startswith("nothing to do")
    assert _snapshot(store) == before
    # without reach answers (the task fails) calibration batches by frames: nothing to redo
    from flows.stages import calibrate
    from tasks.stages import reset_faults

    monkeypatch.setenv("IOVOLC_FAULTS", "reach:9:fatal")
    reset_faults()
    try:
        out = calibrate(params, return_state=True)
    finally:
        reset_faults()
    assert out.is_completed() and out.result()[20]["frames"] == len(io)
    data = ("raw/", "calibrated/", "frames/", "results/")
    assert {k: v for k, v in _snapshot(store).items() if k.startswith(data)} == \
        {k: v for k, v in before.items() if k.startswith(data)}
