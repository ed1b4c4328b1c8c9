"""Frames that do not show Io (most of the real archive: Jupiter) cost little and change
nothing.

Perry et al. 2025 used 2,374 Io images from PJ5-PJ55, of an archive of ~85,000
JIRAM imager frames: a backfill mostly reads frames of Jupiter. A sequence
whose frames Io's disc cannot reach under any pointing correction searched
is not calibrated (its frames keep a summary row). Where Io cannot reach a
strip of a calibrated frame, the pipeline skips the work whose result could
only be discarded: the limb fit stops at its predicted canvas (before masking
the strip), the extraction skips the strip (no centre there can be on the
disc), sequence ties and hotspot placement skip frames without hotspots.
These tests check the shortcuts on a simulated pass whose frames are partly
aimed at Jupiter: the extraction against the full search of every strip, the
limb fit's exit against its predicted canvas, the reach against random
corrections. (The grouping in sequence ties and hotspot placement only skips
frames without hotspots, which gave no equation before; bench/science_chain.py
shows the Io passes' outputs identical.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iovolc import extract as extract_mod
from iovolc import imaging
from iovolc.calibrate import calibrate_sequence
from iovolc.geometry import FrameState, disc_pixel_box, io_within_reach
from iovolc.pipeline import (
    OUT_OF_REACH,
    REACH_ALONG_RAD,
    REACH_CROSS_RAD,
    FrameResult,
    _disc_on_grid,
    _strips,
    calibrate_group,
    group_products,
    run_local,
)
from iovolc.registration import register_frame


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    root = tmp_path_factory.mktemp("mixed")
    simulate(scenario_for([20], seed=4, frames_per_pass=36, io_share=1 / 3), out_dir=root,
             seed=4, products=("RDR",))
    truth = pd.read_csv(root / "truth" / "frames.csv")
    run = run_local(str(root / "archive"), str(root / "kernels"), cache_dir=root / "cache")
    return root, truth, run


def test_every_frame_is_reported_and_jupiter_frames_give_nothing(mixed):
    root, truth, run = mixed
    fr = run.frames.set_index("product_id")
    assert set(fr.index) == set(truth.product_id)  # counted on everything the instrument saw
    jup = truth[truth.target_name == "JUPITER"].product_id
    io = truth[truth.target_name != "JUPITER"].product_id
    assert len(jup) >= 18 and len(io) >= 8
    assert not fr.loc[jup, "io_in_view"].any() and fr.loc[io, "io_in_view"].all()
    assert (fr.loc[jup, "limb_reason"] == OUT_OF_REACH).all()
    assert not fr.loc[jup, "calibrated"].any() and fr.loc[io, "calibrated"].all()
    assert fr.loc[jup, "range_km"].gt(0).all() and fr.loc[jup, "pointing_method"].eq("pass").all()
    assert not run.detections.product_id.isin(jup).any()
    assert fr.loc[io, "limb_ok"].sum() >= 0.75 * len(io)
    assert run.detections.product_id.isin(io).sum() > 0


def _calibrated(root: Path, kind: str):
    """(products, calibrated results, kernel set) of the first sequence of ``kind``, every
    frame calibrated (whether Io is in reach or not)."""
    from iovolc.kernels import kernel_set_for
    from iovolc.pipeline import discover_products
    from iovolc.reader import read_jiram_product

    urls, _ = discover_products(str(root / "archive"))
    groups = group_products([read_jiram_product(u) for u in urls])
    g = next(g for g in groups if (g[0].target_name == "JUPITER") == (kind == "jupiter"))
    kset = kernel_set_for(g[0], kernel_root=str(root / "kernels"), cache_dir=root / "cache")
    cal = calibrate_sequence([p.image for p in g], bands=tuple(g[0].bands),
                             exposure_s=float(g[0].exposure_s),
                             kinds=[p.product_type for p in g])
    return g, [FrameResult(p.product_id, c.radiance, c.saturated, c.bad, c.hits)
               for p, c in zip(g, cal, strict=True)], kset


def test_sequences_io_cannot_reach_are_left_uncalibrated(mixed):
    """Out of reach for sure: under 200 random corrections within the reach (and its
    corners) the disc never meets a strip; in reach: Io sequences, calibrated whole."""
    root, _, _ = mixed
    rng = np.random.default_rng(0)
    for kind in ("jupiter", "io"):
        g, _, kset = _calibrated(root, kind)
        bands = tuple(g[0].bands)
        with kset:
            out = calibrate_group(g)
            for p in g:
                st = FrameState.from_spice(p.et_mid, bands=bands)
                reach = io_within_reach(st, bands, along_rad=REACH_ALONG_RAD,
                                        cross_rad=REACH_CROSS_RAD)
                assert reach == (kind == "io")
                if kind == "jupiter":
                    a = np.r_[rng.uniform(-1, 1, 200), -1, -1, 1, 1] * REACH_ALONG_RAD
                    c = np.r_[rng.uniform(-1, 1, 200), -1, 1, -1, 1] * REACH_CROSS_RAD
                    assert all(disc_pixel_box(st.corrected(x, y), b) is None
                               for x, y in zip(a, c, strict=True) for b in bands)
                    # the summary's io_in_view (false by the reach, not traced): the
                    # traced grid of the nominal pointing agrees
                    assert not any(_disc_on_grid(st, b) for b in bands)
        assert [r.product_id for r in out] == [p.product_id for p in g]
        if kind == "jupiter":
            assert all(r.radiance is None and r.hits is None for r in out)
            assert all(not r.summary["calibrated"] and not r.summary["io_in_view"]
                       for r in out)
        else:
            assert all(r.radiance is not None and r.summary["calibrated"] for r in out)


def test_limb_fit_of_a_jupiter_frame_stops_before_reading_the_strip(mixed, monkeypatch):
    """The predicted lit disc over the whole search box is empty for a Jupiter frame
    (the search's first exit, whatever the pixels), and the fit now stops there
    without masking the strips; an Io frame's canvas is drawn."""
    from iovolc.registration import (
        COARSE_STEP_PX,
        SEARCH_ALONG_DEG,
        SEARCH_CROSS_DEG,
        _coarse_canvas,
    )

    root, _, _ = mixed

    def no_strip_work(*a, **k):
        raise AssertionError("the strip was masked for a frame without Io in reach")

    for kind in ("jupiter", "io"):
        g, results, kset = _calibrated(root, kind)
        with kset:
            for p, r in zip(g, results, strict=True):
                bands = tuple(p.bands)
                state = FrameState.from_spice(p.et_mid, bands=bands)
                a, c = np.radians(SEARCH_ALONG_DEG), np.radians(SEARCH_CROSS_DEG)
                drawn = _coarse_canvas(bands, state, along=(-a, a), cross=(-c, c),
                                       step_rad=COARSE_STEP_PX * state.camera(bands[0]).ifov_rad)
                assert (drawn is None) == (kind == "jupiter")
                if kind == "jupiter":
                    monkeypatch.setattr(imaging, "hot_pixels", no_strip_work)
                    fit = register_frame(_strips(r, bands), state)
                    monkeypatch.undo()
                    assert not fit.ok and fit.n_limb_px == 0
                    assert fit.reason == "no lit disc is predicted in the search range"


@pytest.mark.parametrize("kind", ["jupiter", "io"])
def test_skipping_strips_io_cannot_reach_changes_no_detection(mixed, monkeypatch, kind):
    """The extraction with the disc-box shortcut equals the extraction of every strip."""
    root, _, run = mixed
    g, results, kset = _calibrated(root, kind)
    pointing = run.frames.set_index("product_id")
    n_skipped = 0
    with kset:
        for p, r in zip(g, results, strict=True):
            row = pointing.loc[p.product_id]
            bands = tuple(p.bands)
            state = FrameState.from_spice(p.et_mid, bands=bands).corrected(
                row["along_rad"], row["cross_rad"])
            n_skipped += sum(disc_pixel_box(state, b) is None for b in bands)
            kw = dict(bands=bands, exposure_s=float(p.exposure_s), pointing_method="pass",
                      pointing_sigma_px=1.0, saturated=r.saturated, invalid=r.bad)
            fast = extract_mod.extract_frame(r.radiance, state, **kw)
            extract_mod._NO_DISC_SOURCES.clear()
            # every strip searched: the box never says "nowhere"
            monkeypatch.setattr(extract_mod, "disc_pixel_box",
                                lambda st, b: (slice(0, 128), slice(0, 432)))
            full = extract_mod.extract_frame(r.radiance, state, **kw)
            monkeypatch.undo()
            pd.testing.assert_frame_equal(fast, full)
    assert (n_skipped > 0) == (kind == "jupiter")
    if kind == "jupiter":
        assert n_skipped == sum(len(p.bands) for p in g)


def test_a_skipped_strip_with_hot_features_still_gives_nothing(mixed, monkeypatch):
    """The simulator draws no Jupiter, so bright features are added to a Jupiter frame
    here: searched anyway, they are found, and every one of them is dropped as off the
    disc, as the shortcut assumes."""
    root, _, run = mixed
    g, results, kset = _calibrated(root, "jupiter")
    p, r = g[0], results[0]
    bands = tuple(p.bands)
    img = np.array(r.radiance, float)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    rng = np.random.default_rng(0)
    amp = 50 * np.nanstd(img)
    for line, sample in zip(rng.uniform(5, img.shape[0] - 5, 12), rng.uniform(5, 427, 12),
                            strict=True):
        img += amp * np.exp(-((yy - line) ** 2 + (xx - sample) ** 2) / (2 * 1.2 ** 2))
    row = run.frames.set_index("product_id").loc[p.product_id]
    with kset:
        state = FrameState.from_spice(p.et_mid, bands=bands).corrected(row["along_rad"],
                                                                       row["cross_rad"])
        kw = dict(bands=bands, exposure_s=float(p.exposure_s), pointing_method="pass",
                  pointing_sigma_px=1.0, saturated=r.saturated, invalid=r.bad)
        fast = extract_mod.extract_frame(img, state, **kw)
        found = []
        real_strip_sources = extract_mod._strip_sources

        def spy(*a, **k):
            out = real_strip_sources(*a, **k)
            found.append(0 if out is None else len(out.cen))
            return out

        monkeypatch.setattr(extract_mod, "_strip_sources", spy)
        monkeypatch.setattr(extract_mod, "disc_pixel_box",
                            lambda st, b: (slice(0, 128), slice(0, 432)))
        full = extract_mod.extract_frame(img, state, **kw)
    assert fast.empty and full.empty
    assert sum(found) >= 10  # the full search found the features, and dropped them all


def test_the_reach_covers_every_pointing_the_chain_can_reach(mixed):
    """The 2 deg beyond the limb search cover what can be added to it: each of up to 4
    fine passes moves the fit by at most 2 x fine_search_px, and re-registration
    searches PRIOR_SEARCH_PX around the pass solution (pixels at the kernel's IFOV)."""
    import inspect

    from iovolc import pipeline, registration

    root, _, _ = mixed
    g, _, kset = _calibrated(root, "io")
    with kset:
        ifov = FrameState.from_spice(g[0].et_mid, bands=tuple(g[0].bands)).camera(
            g[0].bands[0]).ifov_rad
    fine = inspect.signature(registration.register_frame).parameters["fine_search_px"].default
    added_px = 4 * 2 * fine + pipeline.PRIOR_SEARCH_PX
    assert REACH_ALONG_RAD - np.radians(registration.SEARCH_ALONG_DEG) >= added_px * ifov
    assert REACH_CROSS_RAD - np.radians(registration.SEARCH_CROSS_DEG) >= added_px * ifov


def test_a_bad_product_in_a_sequence_out_of_reach_is_still_refused(mixed):
    """Leaving a sequence uncalibrated does not skip the checks that refuse a product
    (the flows quarantine the sequence with this one-line reason)."""
    from dataclasses import replace

    root, _, _ = mixed
    g, _, kset = _calibrated(root, "jupiter")
    bad = [replace(g[0], image=g[0].image[:100]), *g[1:]]
    with kset, pytest.raises(ValueError, match="frames must be"):
        calibrate_group(bad)
    edr = [replace(p, product_type="EDR", exposure_s=0.0042) for p in g]
    with kset, pytest.raises(ValueError, match="no JIRAM dark frame for exposure"):
        calibrate_group(edr)
