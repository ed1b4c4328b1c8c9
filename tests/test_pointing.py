"""Pass-level pointing (iovolc.pointing) on synthetic limb fits and hotspot pairs: the
pass consensus rejects false fits, a sequence with its own corroborated offset keeps it,
unregistered frames inherit their sequence's (else the pass's) solution, and a
constellation vote ignores wrong pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from iovolc.pointing import LIMB_FLOOR_PX, PASS_FLOOR_PX, fit_constellation, solve_pass

IFOV = 237.767e-6


def _frames(rows):
    """rows: (sequence, ok, along_px, cross_px)."""
    return pd.DataFrame([{
        "product_id": f"P{i:02d}", "sequence": seq, "limb_ok": ok,
        "limb_along_rad": a * IFOV, "limb_cross_rad": c * IFOV, "limb_sigma_px": 0.05,
        "ifov_rad": IFOV, "limb_reason": "" if ok else "no lit limb"}
        for i, (seq, ok, a, c) in enumerate(rows)])


def test_consensus_rejects_a_false_fit_and_places_the_unregistered():
    rng = np.random.default_rng(1)
    offset = -530.0  # the clock offset, lines
    rows = [("S1", True, offset + rng.normal(0, 0.5), rng.normal(0, 0.3)) for _ in range(8)]
    rows.append(("S1", True, offset + 40.0, 0.0))      # a false fit (another feature)
    rows.append(("S2", False, 0.0, 0.0))              # night side: no limb
    out = solve_pass(_frames(rows)).set_index("product_id")
    assert list(out["pointing_method"][:8]) == ["limb"] * 8
    assert (out["pointing_sigma_px"][:8] >= LIMB_FLOOR_PX).all()
    false = out.loc["P08"]
    assert false["pointing_method"] == "pass" and "disagrees" in false["pointing_note"]
    assert abs(false["along_rad"] / IFOV - offset) < 1.0  # put back on the pass
    night = out.loc["P09"]
    assert night["pointing_method"] == "pass" and night["pointing_sigma_px"] >= PASS_FLOOR_PX
    assert abs(night["along_rad"] / IFOV - offset) < 1.0


def test_a_sequence_with_its_own_corroborated_offset_keeps_it():
    rows = [("S1", True, -530.0 + d, 0.0) for d in (-0.4, 0.1, 0.3, 0.0, -0.2)]
    rows += [("S2", True, -560.0 + d, 0.0) for d in (0.2, -0.1)]  # two fits agree
    rows += [("S2", False, 0.0, 0.0)]
    out = solve_pass(_frames(rows)).set_index("product_id")
    assert (out["pointing_method"][:7] == "limb").all()
    # the unregistered frame of S2 takes S2's offset, not the pass's
    assert out.loc["P07", "pointing_method"] == "pass"
    assert abs(out.loc["P07", "along_rad"] / IFOV + 560.0) < 0.5


def test_no_registered_frame_leaves_the_pass_unplaced():
    out = solve_pass(_frames([("S1", False, 0, 0), ("S1", False, 0, 0)]))
    assert (out["pointing_method"] == "none").all()


def test_constellation_vote_ignores_wrong_pairs():
    true = np.array([3.2, -1.1])
    rows = []
    for k in range(4):  # four detections matched right
        rows.append({"detection": k, "reference": f"R{k}", "d_line": true[0] + 0.1 * k,
                     "d_sample": true[1] - 0.05 * k, "tol_px": 1.0})
    for k in range(4):  # each also has a wrong candidate, scattered
        rows.append({"detection": k, "reference": f"W{k}", "d_line": 10.0 + 7 * k,
                     "d_sample": -8.0 + 5 * k, "tol_px": 1.0})
    fit = fit_constellation(pd.DataFrame(rows))
    assert fit is not None and fit.n_matched == 4 and fit.n_candidates == 8
    assert np.hypot(fit.d_line_px - true[0], fit.d_sample_px - true[1]) < 0.3
    # one pair among several candidates is not enough
    assert fit_constellation(pd.DataFrame(rows[:1] + rows[4:5])) is None
