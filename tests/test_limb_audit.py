"""A limb fit that is confidently wrong is caught by the frame's own hotspots.

PJ58-like pass, seed 6, a +7.8 deg clock offset: one frame of the second
sequence (about 35,000 km, phase 84 deg, a partial limb in a 128-line strip)
fits the limb 4.5 px away from the truth with a formal error of 0.2 px. The
pass consensus cannot see it (the per-spin jitter of the truth is several
pixels) and, before the audit, its sequence's other frames were tied to it:
seven single-frame NEW rows 1.1-1.4 deg away from the true sources.
:func:`iovolc.placement.limb_audit` matches each limb frame's hotspots to
those of the pass's other limb frames and re-places the contradicted frame
on them. Checked against the simulator's truth pointing, not against the
pipeline's own numbers.
"""

from __future__ import annotations

import dataclasses

import _speed_reference as ref
import numpy as np
import pandas as pd
import pytest

from iovolc import placement
from iovolc.geometry import FrameState
from iovolc.kernels import kernel_set_for
from iovolc.pipeline import discover_products, run_local
from iovolc.pointing import _best_shift
from iovolc.reader import read_jiram_product
from iovolc.sim import evaluate as ev
from iovolc.sim.downlink import simulate
from iovolc.sim.scenario import scenario_for


@pytest.fixture(scope="module")
def run_and_truth(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit58")
    simulate(scenario_for([58], seed=6, frames_per_pass=32, pointing_offset_deg=7.8),
             out_dir=out, seed=6)
    run = run_local(str(out / "archive"), str(out / "kernels"), cache_dir=out / "cache")
    return run, ev.load_truth(out), out


def _errors_px(run, truth):
    fr = run.frames.set_index("product_id")
    t = truth.frames.set_index("product_id").loc[fr.index]
    px = fr["ifov_rad"]
    return fr, np.hypot((fr["along_rad"] - np.radians(t["pointing_along_deg"])) / px,
                        (fr["cross_rad"] - np.radians(t["pointing_cross_deg"])) / px)


def test_contradicted_limb_fit_is_replaced(run_and_truth):
    run, truth, _ = run_and_truth
    fr, err = _errors_px(run, truth)
    audited = fr["pointing_note"].str.startswith("limb fit contradicted")
    assert audited.any(), "the audit should catch this pass's false limb fit"
    assert (fr.loc[audited, "pointing_method"] == "constellation").all()
    assert err[audited].max() < 1.0, err[audited]
    # every frame with hotspots placed absolutely (limb or hotspots) is within 1 px of the
    # truth, and none is farther from it than 3 of its own stated sigmas + 0.5 px. (The
    # two closest frames, ~4,000 km, 1 km/px, no hotspots, fit the limb 1.8-2.5 px off:
    # Io's limb is not the ellipsoid to a km; their stated 0.2 px is too small.)
    used = fr["n_detections"] > 0
    absolute = used & fr["pointing_method"].isin(["limb", "constellation"])
    assert err[absolute].max() < 1.0, err[absolute].sort_values().tail()
    assert (err[used] <= 3 * fr.loc[used, "pointing_sigma_px"] + 0.5).all(), (
        err[used], fr.loc[used, "pointing_sigma_px"])


def test_no_row_placed_far_from_its_source(run_and_truth):
    run, truth, _ = run_and_truth
    cat = run.catalog.catalog
    m = ev.match_catalog(cat, truth.sources)
    d = cat.join(m, how="left")["distance_deg"].dropna()
    # before the audit: seven rows 1.1-1.4 deg away (one false limb fit)
    assert d.max() < 1.0, d.sort_values().tail()


def test_hotspot_fit_is_the_pandas_loop(run_and_truth):
    """The reference hotspots and each frame's fit on arrays (stop 20; the columns taken
    once per pass, stop 22) are what the pandas forms gave, bit for bit: every frame of
    the pass against the references with and without its own hotspots; the frame states
    kept once per pass (stop 23) are SPICE's."""
    run, _, out = run_and_truth
    urls, _ = discover_products(str(out / "archive"))
    kset = kernel_set_for(read_jiram_product(urls[0]), kernel_root=str(out / "kernels"),
                          cache_dir=out / "cache")
    det = run.detections
    cl, members = placement._limb_members(det)
    own = placement._by_product_arrays(det)
    clusters = placement._ClusterArrays.of(cl, members)
    recon_of = placement._ReconStates()  # one state per frame, as finish_pass keeps them
    n_fits = 0
    with kset:
        for _, f in run.frames.iterrows():
            mine_df = det[det["product_id"] == f["product_id"]]
            mine = placement._Detections.of(mine_df)
            if f["product_id"] in own:  # the per-pass grouping: the same rows, in order
                for a, b in zip(own[f["product_id"]], mine, strict=True):
                    assert np.array_equal(a, b)
            for without in (None, f["product_id"]):
                refs = placement._references(cl, members, without=without)
                pd.testing.assert_frame_equal(
                    refs, ref.references_pandas(cl, members, without=without),
                    check_exact=True)
                arrays = placement._reference_arrays(clusters, without=without)
                for a, k in zip(arrays, ("lat_deg", "lon_west_deg", "sigma_km"), strict=True):
                    assert np.array_equal(a, refs[k].to_numpy(float))
                fit, recon = placement._hotspot_fit_arrays(f, mine, arrays, recon_of)
                fresh = FrameState.from_spice(f["et_mid"], bands=tuple(f["bands"]))
                if recon is None:  # nothing to match: no state computed
                    recon = fresh
                    assert fit is None
                else:  # the state kept for the frame is SPICE's, and kept once
                    assert recon is recon_of(f)
                    for fld in dataclasses.fields(FrameState):
                        a, b = getattr(recon, fld.name), getattr(fresh, fld.name)
                        if fld.name == "cameras":
                            assert a.keys() == b.keys()
                            assert all(np.array_equal(getattr(a[k], c.name),
                                                      getattr(b[k], c.name))
                                       for k in a for c in dataclasses.fields(a[k]))
                        else:
                            assert np.array_equal(a, b), fld.name
                pairs = ref.hotspot_pairs_pandas(
                    f, mine_df, refs, recon.corrected(f["along_rad"], f["cross_rad"]))
                if pairs.empty:
                    assert fit is None
                    continue
                o = pairs[["d_line", "d_sample"]].to_numpy(float)
                want = ref.fit_constellation_pandas(
                    pairs, _best_shift(o, pairs["tol_px"].to_numpy(float),
                                       pairs["detection"].to_numpy()))
                got = None if fit is None else (fit.d_line_px, fit.d_sample_px, fit.sigma_px,
                                                fit.n_matched, fit.n_candidates)
                assert got == want, (f["product_id"], without)
                n_fits += fit is not None
    assert n_fits >= 10  # the pass has hotspots in many frames: the check is not empty
