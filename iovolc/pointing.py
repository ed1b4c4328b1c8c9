"""Pass-level pointing: one systematic offset per pass, and hotspot constellations.

The pointing error of JIRAM frames is systematic over a pass (a clock offset
of the spinning spacecraft is a rotation about its spin axis; css.earth's
registrations of real PJ51/57/58 frames share one offset per pass to within
~10 lines, and reject the frames that disagree as false fits). So:

* :func:`solve_pass` -- a robust consensus of the frames' own limb fits
  (:mod:`iovolc.registration`): their median; fits farther from it than
  4 robust sigmas of the fits (MAD), clipped to 3-10 px, along or across,
  are false fits, unless at least two fits of one observation sequence agree
  with each other (a sequence with its own offset). Every frame that could not register
  alone gets its sequence's solution, else the pass's (``pass``), with the
  scatter of the accepted fits as its pointing uncertainty.
* :func:`fit_constellation` -- refines the ``pass`` frames of one sequence
  (typically night-side frames with no lit limb) by matching their hotspots
  to hotspots already located in limb-registered frames of the same pass:
  the offsets between observed and predicted pixels vote for one shift,
  which becomes a rotation increment (``constellation``).

Methods, in decreasing trust: ``limb``, ``constellation``, ``pass``, ``none``
(no registered frame in the pass: the frame's detections are not catalogued).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: a fit farther than 4 robust sigmas of the pass's fits from their median is a false fit,
#: with this floor and cap (px): css.earth rejects fits > 8 px from the visit median,
#: and a pass shares its offset to within ~10 lines
TOL_FLOOR_PX = 3.0
TOL_CAP_PX = 10.0
#: floor of a limb fit's pointing uncertainty (px): formal errors are optimistic
LIMB_FLOOR_PX = 0.2
#: floor of the pass solution's uncertainty for frames placed on it (px)
PASS_FLOOR_PX = 1.5
#: floor of a constellation fit's uncertainty (px)
CONSTELLATION_FLOOR_PX = 0.3

METHODS = ("limb", "constellation", "pass", "none")


def _mad(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size else 0.0


def solve_pass(frames: pd.DataFrame, *, tol_floor_px: float = TOL_FLOOR_PX,
               tol_cap_px: float = TOL_CAP_PX) -> pd.DataFrame:
    """Per-frame pointing of one pass from its limb fits.

    ``frames`` columns: ``product_id``, ``sequence``, ``limb_ok``,
    ``limb_along_rad``, ``limb_cross_rad``, ``limb_sigma_px``, ``ifov_rad``,
    ``limb_reason``. Returns a copy with ``pointing_method``, ``along_rad``,
    ``cross_rad``, ``pointing_sigma_px`` and ``pointing_note``.
    """
    out = frames.copy()
    n = len(out)
    method = np.full(n, "none", dtype=object)
    along = np.zeros(n)
    cross = np.zeros(n)
    sigma = np.full(n, np.nan)
    note = np.array([str(r) if isinstance(r, str) else "" for r in
                     out.get("limb_reason", pd.Series([""] * n))], dtype=object)
    if n == 0:
        return out.assign(pointing_method=method, along_rad=along, cross_rad=cross,
                          pointing_sigma_px=sigma, pointing_note=note)
    ok = out["limb_ok"].to_numpy(bool)
    ifov = out["ifov_rad"].to_numpy(float)
    a = out["limb_along_rad"].to_numpy(float)
    c = out["limb_cross_rad"].to_numpy(float)
    seq = out["sequence"].astype(str).to_numpy()
    if not ok.any():
        note = np.where(note == "", "no frame of the pass registered on the limb", note)
        return out.assign(pointing_method=method, along_rad=along, cross_rad=cross,
                          pointing_sigma_px=sigma, pointing_note=note)
    px = np.nanmedian(ifov)
    med_a, med_c = np.median(a[ok]), np.median(c[ok])
    tol_a = float(np.clip(4 * _mad(a[ok] / px), tol_floor_px, tol_cap_px))
    tol_c = float(np.clip(4 * _mad(c[ok] / px), tol_floor_px, tol_cap_px))

    def near(x, y, xa, ya):
        return (np.abs(x - xa) / px <= tol_a) & (np.abs(y - ya) / px <= tol_c)

    accepted = ok & near(a, c, med_a, med_c)
    for s in np.unique(seq[ok & ~accepted]):
        idx = np.flatnonzero(ok & ~accepted & (seq == s))
        if idx.size < 2:
            continue
        sa, sc = np.median(a[idx]), np.median(c[idx])
        agree = idx[near(a[idx], c[idx], sa, sc)]
        if agree.size >= 2:  # corroborated: this sequence has its own offset
            accepted[agree] = True
    for i in np.flatnonzero(ok & ~accepted):
        note[i] = (f"limb fit disagrees with the pass by "
                   f"{(a[i] - med_a) / px:+.1f} lines-equivalent, {(c[i] - med_c) / px:+.1f} "
                   "samples-equivalent (a false fit)")
    acc = np.flatnonzero(accepted)
    pass_a, pass_c = np.median(a[acc]), np.median(c[acc])
    pass_sig = max(PASS_FLOOR_PX, float(np.hypot(_mad(a[acc] / px), _mad(c[acc] / px))))
    for i in range(n):
        if accepted[i]:
            method[i], along[i], cross[i] = "limb", a[i], c[i]
            sig = out["limb_sigma_px"].iloc[i]
            sigma[i] = max(LIMB_FLOOR_PX, float(sig) if np.isfinite(sig) else LIMB_FLOOR_PX)
            note[i] = ""
            continue
        same = acc[seq[acc] == seq[i]]
        if same.size:
            along[i], cross[i] = np.median(a[same]), np.median(c[same])
            spread = np.hypot(_mad(a[same] / px), _mad(c[same] / px)) if same.size > 2 else 0.0
            sigma[i] = max(PASS_FLOOR_PX, spread)
        else:
            along[i], cross[i], sigma[i] = pass_a, pass_c, pass_sig
        method[i] = "pass"
    return out.assign(pointing_method=method, along_rad=along, cross_rad=cross,
                      pointing_sigma_px=sigma, pointing_note=note)


@dataclass(frozen=True)
class ConstellationFit:
    """A pixel shift (observed - predicted) for a set of frames and its support."""

    d_line_px: float
    d_sample_px: float
    sigma_px: float
    n_matched: int
    n_candidates: int


def fit_constellation(pairs: pd.DataFrame, *, min_matches: int = 2) -> ConstellationFit | None:
    """One shift from candidate (detection, reference) pairs of a sequence's frames.

    ``pairs`` columns: ``detection`` (id), ``reference`` (id), ``d_line``,
    ``d_sample`` (observed - predicted, px), ``tol_px`` (match tolerance: the
    reference's position uncertainty in this frame's pixels plus centroiding).
    The shift with the most support wins (each detection counted once);
    a single pair is enough only when it is the only candidate. None when
    nothing is supported.
    """
    if pairs.empty:
        return None
    return fit_shift_arrays(pairs[["d_line", "d_sample"]].to_numpy(float),
                            pairs["tol_px"].to_numpy(float), pairs["detection"].to_numpy(),
                            min_matches=min_matches)


def fit_shift_arrays(o: np.ndarray, tol: np.ndarray, det: np.ndarray, *,
                     min_matches: int = 2) -> ConstellationFit | None:
    """:func:`fit_constellation` on arrays: ``o`` (n, 2) offsets (line, sample, px),
    ``tol`` (n,) tolerances (px), ``det`` (n,) detection ids; n >= 1.

    The pairs within tolerance of the best-supported shift, one per detection
    (the closest: a quicksort of the distances, then each detection's first,
    as ``sort_values("d").drop_duplicates`` did), are averaged with weights
    ``1 / tol^2`` in that order.
    """
    best = _best_shift(o, tol, det)
    d = np.hypot(*(o - o[best]).T)
    inl = np.flatnonzero(d <= tol)
    order = inl[np.argsort(d[inl], kind="quicksort")]
    first = np.unique(det[order], return_index=True)[1]
    idx = order[np.sort(first)]
    n_match = len(idx)
    unique_single = len(o) == 1
    if n_match < min_matches and not (n_match == 1 and unique_single):
        return None
    w = 1.0 / tol[idx] ** 2
    shift = (o[idx] * w[:, None]).sum(axis=0) / w.sum()
    sigma = max(CONSTELLATION_FLOOR_PX, float(np.sqrt(1.0 / w.sum())))
    return ConstellationFit(float(shift[0]), float(shift[1]), sigma, n_match, len(o))


def _best_shift(o: np.ndarray, tol: np.ndarray, det: np.ndarray) -> int:
    """The candidate shift (row of ``o``) with the most support: the distinct detections
    ``det`` whose shift lies within their tolerance ``tol`` of it; among equals the
    smallest shift, the first of equal ones.

    The supports are counted in one compiled pass (:func:`iovolc.compiled.support_counts`,
    stop 29); a candidate with a pair within 1e-9 of its tolerance is counted again by
    :func:`_support_numpy`, where numpy's ``hypot`` decides that pair."""
    from iovolc import compiled

    codes = np.ascontiguousarray(np.unique(det, return_inverse=True)[1].ravel(), dtype=np.int64)
    o = np.ascontiguousarray(o, dtype=float)
    tol2 = np.ascontiguousarray(tol * tol, dtype=float)
    score = np.empty(len(o), dtype=np.int64)
    undecided = np.empty(len(o), dtype=bool)
    compiled.support_counts(o, tol2, codes, int(codes.max()) + 1, score, undecided)
    rows = np.flatnonzero(undecided)
    if rows.size:
        score[rows] = _support_numpy(o, tol, codes, rows)
    tied = np.flatnonzero(score == score.max())
    best = int(tied[0])
    for k in tied[1:]:
        if np.linalg.norm(o[k]) < np.linalg.norm(o[best]):
            best = int(k)
    return best


def _support_numpy(o: np.ndarray, tol: np.ndarray, codes: np.ndarray,
                   rows: np.ndarray) -> np.ndarray:
    """The supports of candidates ``rows`` as numpy decides them (the blocks of stop 23):
    on squares except within 1e-9 of the edge, where ``np.hypot`` decides."""
    score = np.empty(len(rows), dtype=np.int64)
    tol2 = tol * tol
    for k0 in range(0, len(rows), 256):
        block = o[rows[k0:k0 + 256]]
        dl = o[None, :, 0] - block[:, None, 0]
        ds = o[None, :, 1] - block[:, None, 1]
        sq = dl * dl + ds * ds
        inl = sq < tol2 * (1.0 - 1e-9)
        edge = ~inl & (sq <= tol2 * (1.0 + 1e-9))
        inl[edge] = np.hypot(dl[edge], ds[edge]) <= np.broadcast_to(tol, inl.shape)[edge]
        seen = np.zeros((len(block), codes.max() + 1), dtype=bool)
        r, c = np.nonzero(inl)
        seen[r, codes[c]] = True
        score[k0:k0 + 256] = seen.sum(axis=1)
    return score
