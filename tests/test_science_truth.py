"""The science chain on PJ57- and PJ58-like passes, scored honestly against the truth.

Passes with the clock-offset pointing error of the real PJ51-58 data (a
pass-wide 7.0-7.8 deg along the spin, of either sign) and night-side close
frames; hotspots off the catalog positions, temperatures and powers not the
catalog's, new sources. Thresholds (issue "Real JIRAM"), counted over every
frame with Io in view (iovolc.sim.evaluate):

* recall >= 95 % of the detectable sources;
* median position error <= 0.2 deg, 95th percentile <= 0.5 deg;
* median power error <= 20 % for rows whose temperature was measured (T_FROM_LM);
* every row carries a power interval; for rows whose temperature was not
  measured it contains the true power in >= 90 % of cases, and the
  temperature source is flagged;
* >= 90 % of the new sources flagged NEW;
* no catalog row on a radiation hit; false detections (no true source within
  3 px) at most 2 % of the confident rows;
* >= 90 % of the night-side frames placed (their position error reported).
"""

from __future__ import annotations

import numpy as np
import pytest

from iovolc.flags import Flag
from iovolc.pipeline import run_local
from iovolc.reader import read_jiram_product
from iovolc.sim import evaluate as ev
from iovolc.sim.downlink import simulate
from iovolc.sim.scenario import scenario_for

#: (perijove, seed, forced pass-wide along-spin offset in deg; None: the simulator's own,
#: -7.0..-7.8 deg as css.earth measures on real PJ51-58 frames)
CASES = [(57, 0, None), (57, 1, 7.3), (58, 2, -7.7), (58, 3, 7.1)]


@pytest.fixture(scope="module", params=CASES,
                ids=[f"pj{p}-seed{s}-{'sim' if o is None else f'{o:+.1f}deg'}"
                     for p, s, o in CASES])
def scored(request, tmp_path_factory):
    pj, seed, offset = request.param
    out = tmp_path_factory.mktemp(f"sci{pj}_{seed}")
    kw = {} if offset is None else {"pointing_offset_deg": offset}
    simulate(scenario_for([pj], seed=seed, frames_per_pass=32, **kw), out_dir=out, seed=seed)
    run = run_local(str(out / "archive"), str(out / "kernels"), cache_dir=out / "cache")
    truth = ev.load_truth(out)
    labels = {p.stem: p for p in out.glob("archive/JNOJIR_2*/DATA/*.LBL")}
    noise = ev.measure_noise(truth, lambda pid: read_jiram_product(labels[pid]).image)
    detectable = ev.detectable_sources(truth, noise)
    score = ev.score(run.catalog.catalog, detectable, truth, detections=run.detections,
                     frames=run.frames)
    print(request.node.name, {k: (round(v, 4) if isinstance(v, float) else v)
                              for k, v in score.items()})
    return {"run": run, "truth": truth, "score": score}


def test_recall_over_every_frame_with_io_in_view(scored):
    s = scored["score"]
    assert s["n_detectable"] >= 30
    assert s["recall"] >= 0.95, s


def test_positions(scored):
    s = scored["score"]
    assert s["position_median_deg"] <= 0.2, s
    assert s["position_p95_deg"] <= 0.5, s


def test_power_where_the_temperature_was_measured(scored):
    s = scored["score"]
    if s["n_power_lm"] < 5:
        pytest.skip(f"only {s['n_power_lm']} rows with an L/M temperature in this pass")
    assert s["power_median_rel_err_lm"] <= 0.20, s


def test_every_row_has_a_power_interval_and_a_temperature_source(scored):
    s = scored["score"]
    cat = scored["run"].catalog.catalog
    assert s["every_row_has_power_interval"]
    t_flags = cat["flags"].astype("int64") & int(Flag.T_FROM_LM | Flag.T_FROM_REFERENCE
                                                 | Flag.T_ASSUMED)
    assert (t_flags != 0).all()
    # unmeasured temperatures: the interval (plausible range) holds the true power
    assert s["n_unmeasured_t"] >= 10
    assert s["power_interval_coverage_unmeasured_t"] >= 0.90, s


def test_new_sources_are_flagged_new(scored):
    s = scored["score"]
    if s["n_new_matched"] == 0:
        pytest.skip("no new source catalogued in this pass")
    assert s["new_flagged_new"] >= 0.90, s
    if s["n_new_detectable"]:
        assert s["new_recall"] >= 0.9, s


def test_no_catalog_row_on_a_radiation_hit(scored):
    s = scored["score"]
    assert s["entries_on_hits"] == 0, s
    assert s["unmatched_catalog"] <= max(1, 0.02 * s["n_catalog"]), s


def test_no_confident_false_detection(scored):
    """Catalog rows with no true source within max(60 km, 3 px): at most 2 % of the
    confident ones (the rows alerts are raised on), at most 5 % of all."""
    s = scored["score"]
    assert s["spurious_confident"] <= max(1, 0.02 * s["n_catalog"]), s
    assert s["spurious_rows"] <= max(1, 0.05 * s["n_catalog"]), s


def test_night_side_frames_are_placed(scored):
    s = scored["score"]
    assert s["n_night_frames"] >= 5
    assert s["night_frames_placed"] >= 0.90, s
    assert np.isfinite(s["night_pointing_error_median_px"])


def test_limb_registration_recovers_the_clock_offset(scored):
    frames = scored["run"].frames.set_index("product_id")
    truth = scored["truth"].frames.set_index("product_id")
    lim = frames[frames["pointing_method"] == "limb"]
    assert len(lim) >= 0.3 * len(frames)
    t = truth.loc[lim.index]
    px = lim["ifov_rad"]
    err = np.hypot((lim["along_rad"] - np.radians(t["pointing_along_deg"])) / px,
                   (lim["cross_rad"] - np.radians(t["pointing_cross_deg"])) / px)
    assert err.max() < 0.5, err.describe()
    # the offsets it corrects are the real clock offsets: 7.0-7.8 deg along the spin
    assert (np.abs(t["pointing_along_deg"]) > 6.9).all()
    every = frames.join(truth[["pointing_along_deg"]])
    assert (np.abs(np.degrees(every["along_rad"]) - every["pointing_along_deg"]) < 0.2).all()
