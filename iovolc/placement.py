"""Placing a pass's frames by their hotspots, after the limb fits (per pass).

Run by :func:`finish_pass` once every frame of a pass is extracted on the
pass pointing (:func:`iovolc.pipeline.extract_group`); kernels loaded:

1. :func:`limb_audit` -- each limb-registered frame's hotspots against the
   hotspots of the pass's *other* limb-registered frames: a limb fit its own
   hotspots contradict is a false fit (a terminator or a partial limb taken
   for the limb), and the frame is placed on those hotspots instead;
2. :func:`constellation_updates` -- frames still on the pass solution are
   refined by their hotspots against hotspots of limb-registered frames;
3. :func:`sequence_ties` -- the rest of a sequence's pass frames tied to each
   other (and to its absolute frames) by shared hotspots;
4. :func:`flag_transients` -- detections no other frame of the sequence confirms.

Each re-placed frame is extracted again (``reextract``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from iovolc import jiram
from iovolc.geometry import FrameState, surface_point
from iovolc.pointing import fit_constellation, fit_shift_arrays

# --- constellation (per pass) ---------------------------------------------------------

#: detections used to match a constellation: confident ones only
CONSTELLATION_MIN_SNR = 8.0
#: a constellation fit replaces the pass solution only if its uncertainty is at most
#: this fraction of the pass's (two loose matches prove little)
CONSTELLATION_GAIN = 0.6


#: a reference hotspot: a cluster of >= 2 limb-frame detections, or one this bright
REFERENCE_SINGLE_SNR = 15.0
_REF_COLUMNS = ["lat_deg", "lon_west_deg", "sigma_km"]


def _limb_members(detections: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clusters of the limb frames' confident detections and one row per member.

    Members: ``cluster``, ``product_id``, ``snr``, ``weight`` (the merge's
    inverse variance) and unit vector ``x, y, z``.
    """
    from iovolc.catalog import _detection_sigma_km, _unit_xyz, merge_detections, usable_detections

    lim = detections[(detections["pointing_method"] == "limb")
                     & (detections["snr"] >= CONSTELLATION_MIN_SNR)]
    lim = usable_detections(lim)
    if lim.empty:
        return pd.DataFrame(), pd.DataFrame()
    cl = merge_detections(lim).reset_index(drop=True)
    idx = [i for ids in cl["detection_indices"] for i in ids]
    m = lim.loc[idx]
    xyz = _unit_xyz(m["lat_deg"].to_numpy(float), m["lon_west_deg"].to_numpy(float))
    members = pd.DataFrame({
        "cluster": np.repeat(np.arange(len(cl)), [len(ids) for ids in cl["detection_indices"]]),
        "product_id": m["product_id"].to_numpy(), "snr": m["snr"].to_numpy(float),
        "weight": 1.0 / _detection_sigma_km(m) ** 2,
        "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})
    return cl, members


def _references(cl: pd.DataFrame, members: pd.DataFrame, *,
                without: str | None = None) -> pd.DataFrame:
    """Reference hotspots from the clusters, leaving out one frame's detections.

    A cluster that loses members to the left-out frame is re-centred on the
    others (weighted mean, as the merge does) and its uncertainty grows as
    1/sqrt(n); it stays a reference only with >= 2 members left or one of SNR
    >= ``REFERENCE_SINGLE_SNR``. Leaving the frame out is what makes the check
    independent: a frame must never confirm its own pointing.
    """
    if cl.empty:
        return pd.DataFrame(columns=_REF_COLUMNS)
    lat, lon, sigma = _reference_arrays(_ClusterArrays(cl, members), without=without)
    return pd.DataFrame({"lat_deg": lat, "lon_west_deg": lon, "sigma_km": sigma})


class _ClusterArrays:
    """The columns of the clusters and their members that :func:`_reference_arrays`
    reads, as arrays taken once per pass (not once per frame: stop 22)."""

    def __init__(self, cl: pd.DataFrame, members: pd.DataFrame):
        self.n = len(cl)
        self.product_id = members["product_id"].to_numpy()
        self.cluster = members["cluster"].to_numpy()
        self.weight = members["weight"].to_numpy()
        self.snr = members["snr"].to_numpy()
        self.xyz = [members[k].to_numpy() for k in ("x", "y", "z")]
        self.sigma_km = cl["position_uncertainty_km"].to_numpy(float)
        self.lat_deg = cl["lat_deg"].to_numpy(float)
        self.lon_west_deg = cl["lon_west_deg"].to_numpy(float)
        self.n_all = np.bincount(self.cluster, minlength=self.n)

    @classmethod
    def of(cls, cl: pd.DataFrame, members: pd.DataFrame) -> _ClusterArrays | None:
        return None if cl.empty else cls(cl, members)


class _ReconStates:
    """``FrameState.from_spice(et, bands)`` of each frame once per :func:`finish_pass` (stop
    23): its steps ask for the same frames' reconstructed states, the kernel pool does not
    change in between, and SPICE gives the same numbers each time."""

    def __init__(self) -> None:
        self._states: dict[tuple, FrameState] = {}

    def __call__(self, f) -> FrameState:
        key = (f["et_mid"], tuple(f["bands"]))
        if key not in self._states:
            self._states[key] = FrameState.from_spice(f["et_mid"], bands=tuple(f["bands"]))
        return self._states[key]


def _reference_arrays(a: _ClusterArrays | None, *, without: str | None = None):
    """:func:`_references` as ``(lat_deg, lon_west_deg, sigma_km)`` arrays."""
    from iovolc.catalog import _latlon

    if a is None:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    keep = np.ones(len(a.cluster), bool) if without is None else (a.product_id != without)
    c = a.cluster[keep]
    w = a.weight[keep]
    n = np.bincount(c, minlength=a.n)
    best = np.zeros(a.n)
    np.maximum.at(best, c, a.snr[keep])
    sums = np.stack([np.bincount(c, w * v[keep], minlength=a.n) for v in a.xyz], axis=-1)
    ok = (n >= 2) | ((n == 1) & (best >= REFERENCE_SINGLE_SNR))
    lat, lon = _latlon(sums[ok])
    same = (n == a.n_all)[ok]
    sigma = a.sigma_km[ok] * np.sqrt(a.n_all[ok] / np.maximum(n[ok], 1))
    # untouched clusters keep the merge's own centre (bit for bit)
    lat = np.where(same, a.lat_deg[ok], lat)
    lon = np.where(same, a.lon_west_deg[ok], lon)
    return lat, lon, sigma


def constellation_references(detections: pd.DataFrame) -> pd.DataFrame:
    """Hotspots located in limb-registered frames: lat, lon, 1-sigma km (one pass)."""
    return _references(*_limb_members(detections))


class _Detections(NamedTuple):
    """The columns of a frame's detections that :func:`_hotspot_fit_arrays` reads (the
    index labels, then the table's columns of these names)."""

    index: np.ndarray
    snr: np.ndarray
    band: np.ndarray
    line: np.ndarray
    sample: np.ndarray
    pixel_scale_km: np.ndarray

    @classmethod
    def of(cls, det: pd.DataFrame) -> _Detections:
        return cls(det.index.to_numpy(), *(det[k].to_numpy() for k in cls._fields[1:]))

    def rows(self, rows) -> _Detections:
        return _Detections(*(c[rows] for c in self))


def _hotspot_fit_arrays(f, mine: _Detections, references, recon_of: _ReconStates):
    """One frame's hotspots against reference hotspots: ``(fit | None, recon state)``.

    ``mine``: the frame's detections; ``references``: ``(lat_deg, lon_west_deg,
    sigma_km)`` arrays (stop 22: no table per frame, see :func:`_reference_arrays`).
    ``fit`` is the pixel shift (observed - predicted on the frame's current
    pointing) with the most support (:func:`iovolc.pointing.fit_constellation`).
    ``(None, None)`` when the frame has no confident hotspot or there is no
    reference: no state is computed for nothing to match.
    """
    ref_lat, ref_lon, ref_sigma_km = references
    conf = mine.snr >= CONSTELLATION_MIN_SNR
    if not conf.any() or not len(ref_lat):
        return None, None
    recon = recon_of(f)
    state = recon.corrected(f["along_rad"], f["cross_rad"])
    pts = surface_point(ref_lat, ref_lon, state.radii_km)
    radius = max(12.0, 4.0 * float(f["pointing_sigma_px"]))
    ids = mine.index[conf]
    band_of = mine.band[conf]
    lines = mine.line[conf]
    samples = mine.sample[conf]
    scales = mine.pixel_scale_km[conf]
    det, o_line, o_sample, tol = [], [], [], []
    for band, sl in jiram.band_layout(tuple(f["bands"])).items():
        rows = np.flatnonzero(band_of == band)
        if not rows.size:
            continue
        pl, ps, vis = state.project_points(pts, band)
        # every detection of the band against every reference at once (stop 23): the
        # pairs in the order of the loop over detections it replaced, the same arithmetic
        dl = (np.asarray(lines[rows], dtype=float) - sl.start)[:, None] - pl[None, :]
        dsm = np.asarray(samples[rows], dtype=float)[:, None] - ps[None, :]
        r, near = np.nonzero(vis[None, :] & (np.hypot(dl, dsm) <= radius))
        det.append(ids[rows][r])
        o_line.append(dl[r, near])
        o_sample.append(dsm[r, near])
        tol.append(2.0 + 2.0 * ref_sigma_km[near] / np.asarray(scales[rows], dtype=float)[r])
    if not sum(a.size for a in det):
        return None, recon
    o = np.column_stack([np.concatenate(o_line), np.concatenate(o_sample)])
    return fit_shift_arrays(o, np.concatenate(tol), np.concatenate(det)), recon


def _by_product_arrays(detections: pd.DataFrame) -> dict[str, _Detections]:
    """Each frame's detections (rows in table order) as :class:`_Detections`, the columns
    taken once."""
    if detections.empty:
        return {}
    every = _Detections.of(detections)
    return {pid: every.rows(rows)
            for pid, rows in detections.groupby("product_id", sort=False).indices.items()}


def _shifted(f, recon: FrameState, fit, note: str) -> dict:
    """The frame's pointing moved by a constellation fit's shift (method constellation)."""
    from iovolc.registration import _jacobian

    jac = _jacobian(recon, tuple(f["bands"])[0], f["along_rad"], f["cross_rad"])
    delta = np.linalg.solve(jac, [fit.d_line_px, fit.d_sample_px])
    return {"pointing_method": "constellation",
            "along_rad": float(f["along_rad"] + delta[0]),
            "cross_rad": float(f["cross_rad"] + delta[1]),
            "pointing_sigma_px": fit.sigma_px, "pointing_note": note}


def constellation_updates(frames: pd.DataFrame, detections: pd.DataFrame,
                          references: pd.DataFrame, *,
                          recon_of: _ReconStates | None = None) -> dict[str, dict]:
    """New pointing for each 'pass' frame whose hotspots match the references.

    Frame by frame: a pass's frames share their offset only to a few pixels
    (the per-spin jitter), so each frame gets its own shift.
    ``frames``: frame summaries after extraction (one pass); ``detections``:
    their detections. Returns ``{product_id: pointing}`` (kernels loaded).
    """
    out: dict[str, dict] = {}
    if references.empty or frames.empty:
        return out
    # a frame without hotspots has nothing to match (most frames of a backfill: Jupiter)
    have = set(detections.loc[detections["snr"] >= CONSTELLATION_MIN_SNR, "product_id"])
    todo = frames[(frames["pointing_method"] == "pass") & frames["product_id"].isin(list(have))]
    own = _by_product_arrays(detections)  # every frame of todo has detections
    refs = tuple(references[k].to_numpy(float) for k in _REF_COLUMNS)
    recon_of = recon_of or _ReconStates()
    for _, f in todo.iterrows():
        fit, recon = _hotspot_fit_arrays(f, own[f["product_id"]], refs, recon_of)
        # worth it only if it pins the frame down better than the pass does
        if fit is None or not fit.sigma_px <= CONSTELLATION_GAIN * float(f["pointing_sigma_px"]):
            continue
        out[f["product_id"]] = _shifted(f, recon, fit, (
            f"{fit.n_matched} hotspots matched to limb-registered frames "
            f"(shift {fit.d_line_px:+.1f}, {fit.d_sample_px:+.1f} px)"))
    return out


# --- limb fits audited by hotspots (per pass) --------------------------------------------

#: a limb fit is contradicted when the frame's hotspots, matched to the other limb frames'
#: hotspots, say it is off by more than this (px) ...
AUDIT_MIN_SHIFT_PX = 2.5
#: ... and by more than this many of the hotspot fit's sigmas ...
AUDIT_NSIGMA = 3.0
#: ... on at least this many hotspots
AUDIT_MIN_MATCHES = 3


def limb_audit(frames: pd.DataFrame, detections: pd.DataFrame, *,
               recon_of: _ReconStates | None = None,
               members: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> dict[str, dict]:
    """Limb fits that the frame's own hotspots contradict, re-placed on those hotspots.

    A limb fit can be confidently wrong: a partial limb or the terminator near
    90 deg phase fits well several pixels away from the truth, inside the pass
    consensus (the per-spin jitter is several pixels, so the consensus cannot
    see it). The frame's hotspots are an independent check: each limb frame's
    detections are matched to the hotspots located in the pass's *other*
    limb-registered frames (:func:`constellation_references` without this
    frame). A shift beyond ``AUDIT_MIN_SHIFT_PX`` and ``AUDIT_NSIGMA`` times
    the hotspot fit's uncertainty, on at least ``AUDIT_MIN_MATCHES`` hotspots,
    makes the limb fit a false fit: the frame is placed by the hotspots
    (method ``constellation``) and the note says why. Kernels loaded.
    ``members``: :func:`_limb_members` of ``detections``, when the caller has it.
    """
    out: dict[str, dict] = {}
    limb = frames[frames["pointing_method"] == "limb"]
    if len(limb) < 2 or detections.empty:
        return out
    clusters = _ClusterArrays.of(*(members or _limb_members(detections)))
    own = _by_product_arrays(detections)
    recon_of = recon_of or _ReconStates()
    for _, f in limb.iterrows():
        mine = own.get(f["product_id"])
        if mine is None or not (mine.snr >= CONSTELLATION_MIN_SNR).any():
            continue  # no confident hotspot: nothing to audit with
        refs = _reference_arrays(clusters, without=f["product_id"])
        fit, recon = _hotspot_fit_arrays(f, mine, refs, recon_of)
        if fit is None or fit.n_matched < AUDIT_MIN_MATCHES:
            continue
        shift = float(np.hypot(fit.d_line_px, fit.d_sample_px))
        if shift <= max(AUDIT_MIN_SHIFT_PX, AUDIT_NSIGMA * fit.sigma_px):
            continue
        out[f["product_id"]] = _shifted(f, recon, fit, (
            f"limb fit contradicted by {fit.n_matched} hotspots of the other limb frames "
            f"(shift {fit.d_line_px:+.1f}, {fit.d_sample_px:+.1f} px; a false fit): "
            "placed on those hotspots"))
    return out


# --- sequences tied together (per pass) -------------------------------------------------

#: detections used to tie frames of a sequence together
TIE_MIN_SNR = 8.0
#: a tie between two frames needs this many hotspots agreeing within TIE_TOL_PX
TIE_MIN_MATCHES = 2
TIE_TOL_PX = 1.5


def sequence_ties(frames: pd.DataFrame, detections: pd.DataFrame, *,
                  recon_of: _ReconStates | None = None) -> dict[str, dict]:
    """Per-spin jitter of 'pass' frames, from the hotspots they share with the other
    frames of their sequence (kernels loaded).

    A pass's frames share its offset only to a few pixels. Within a sequence, the
    same hotspots seen in two frames give those frames' *relative* shift; solving
    all pairs by least squares with the shifts' mean fixed at zero (the pass
    solution is their mean) removes the jitter. Frames with an absolute solution
    (limb, constellation) in the sequence fix the mean instead. Returns
    ``{product_id: pointing}`` for the frames tied (method stays ``pass``, with
    the smaller uncertainty).
    """
    from iovolc.registration import _jacobian

    out: dict[str, dict] = {}
    if frames.empty or detections.empty:
        return out
    det = detections[detections["snr"] >= TIE_MIN_SNR]
    by_frame = dict(tuple(det.groupby("product_id", sort=False)))
    recon_of = recon_of or _ReconStates()
    for _, seq in frames.groupby("sequence"):
        if (seq["pointing_method"] == "pass").sum() < 2:
            continue
        # a tie needs two frames with hotspots (a sequence of Jupiter has none)
        if seq["product_id"].isin(list(by_frame)).sum() < 2:
            continue
        rows = seq.reset_index(drop=True)
        states = {}
        for _, f in rows.iterrows():
            recon = recon_of(f)
            states[f["product_id"]] = (recon, recon.corrected(f["along_rad"], f["cross_rad"]))
        pids = list(rows["product_id"])
        eqs = []  # (i, j, d_line, d_sample): shift_i - shift_j
        for i in range(len(pids)):
            for j in range(len(pids)):
                if i == j or pids[i] not in by_frame or pids[j] not in by_frame:
                    continue
                d_i, d_j = by_frame[pids[i]], by_frame[pids[j]]
                st_i = states[pids[i]][1]
                pts = surface_point(d_j["lat_deg"], d_j["lon_west_deg"], st_i.radii_km)
                pairs = []
                bands_i = tuple(rows.loc[i, "bands"])
                for band, sl in jiram.band_layout(bands_i).items():
                    sel = (d_j["band"] == band).to_numpy()
                    di = d_i[d_i["band"] == band]
                    if not sel.any() or di.empty:
                        continue
                    pl, ps, vis = st_i.project_points(pts[sel], band)
                    for k in np.flatnonzero(vis):
                        dl = (di["line"].to_numpy(float) - sl.start) - pl[k]
                        dsm = di["sample"].to_numpy(float) - ps[k]
                        for m in np.flatnonzero(np.hypot(dl, dsm) <= 12.0):
                            pairs.append({"detection": di.index[m], "reference": k,
                                          "d_line": dl[m], "d_sample": dsm[m],
                                          "tol_px": TIE_TOL_PX})
                fit = fit_constellation(pd.DataFrame(pairs),
                                        min_matches=TIE_MIN_MATCHES) if pairs else None
                if fit is not None and fit.n_matched >= TIE_MIN_MATCHES:
                    eqs.append((i, j, fit.d_line_px, fit.d_sample_px))
        if not eqs:
            continue
        n = len(pids)
        fixed = [k for k in range(n) if rows.loc[k, "pointing_method"] in ("limb",
                                                                           "constellation")]
        a_rows, b_rows = [], []
        for i, j, dl, dsm in eqs:
            r = np.zeros(n)
            r[i], r[j] = 1.0, -1.0
            a_rows.append(r)
            b_rows.append((dl, dsm))
        if fixed:  # absolute frames: their shift is zero (already right)
            for k in fixed:
                r = np.zeros(n)
                r[k] = 10.0
                a_rows.append(r)
                b_rows.append((0.0, 0.0))
        else:  # the pass solution is the sequence's mean
            a_rows.append(np.ones(n))
            b_rows.append((0.0, 0.0))
        a_mat, b_mat = np.array(a_rows), np.array(b_rows)
        tied = {k for e in eqs for k in e[:2]}
        shifts, *_ = np.linalg.lstsq(a_mat, b_mat, rcond=None)
        resid = b_mat[:len(eqs)] - a_mat[:len(eqs)] @ shifts
        scatter = float(np.sqrt(np.mean(resid**2))) if len(eqs) > 1 else 1.0
        for k in tied:
            f = rows.loc[k]
            if f["pointing_method"] != "pass":
                continue
            recon = states[f["product_id"]][0]
            jac = _jacobian(recon, tuple(f["bands"])[0], f["along_rad"], f["cross_rad"])
            # observed = predicted + shift: the correction moves the prediction there
            delta = np.linalg.solve(jac, shifts[k])
            base = float(f["pointing_sigma_px"]) / np.sqrt(max(1, n)) if not fixed else 0.5
            out[f["product_id"]] = {
                "pointing_method": "pass", "along_rad": float(f["along_rad"] + delta[0]),
                "cross_rad": float(f["cross_rad"] + delta[1]),
                "pointing_sigma_px": float(np.hypot(base, max(scatter, 0.3))),
                "pointing_note": (f"tied to {len(tied) - 1} frames of its sequence by shared "
                                  f"hotspots (shift {shifts[k][0]:+.1f}, {shifts[k][1]:+.1f} px)")}
    return out


# --- transients (per pass) ----------------------------------------------------------------

#: a detection is confirmed by another frame's detection within this many pixels
CONFIRM_RADIUS_PX = 3.0
#: and must lie this far inside the other frame's strip to count as covered
COVER_MARGIN_PX = 4.0


def flag_transients(frames: pd.DataFrame, detections: pd.DataFrame, *,
                    recon_of: _ReconStates | None = None) -> pd.DataFrame:
    """Flag TRANSIENT the detections no other frame of their sequence confirms.

    A detection is *covered* by another frame of its sequence when its surface
    point projects inside that frame's strip of the same band (on the visible
    disc); it is TRANSIENT when covered by at least two other frames (one if
    its SNR is >= 10) and none has a detection within ``CONFIRM_RADIUS_PX``
    (plus the frames' pointing uncertainty). Kernels loaded.
    """
    from iovolc.flags import Flag

    if detections.empty or frames.empty:
        return detections
    det = detections.copy()
    fr = frames.set_index("product_id")
    states: dict[str, FrameState] = {}
    recon_of = recon_of or _ReconStates()

    def state(pid: str) -> FrameState:
        if pid not in states:
            f = fr.loc[pid]
            states[pid] = recon_of(f).corrected(f["along_rad"], f["cross_rad"])
        return states[pid]

    flags = det["flags"].to_numpy(np.int64).copy()
    for seq, d_seq in det.groupby("sequence"):
        pids = [p for p in fr.index[fr["sequence"] == seq]
                if fr.loc[p, "pointing_method"] != "none"]
        if len(pids) < 2:
            continue
        pid = d_seq["product_id"].to_numpy()
        band = d_seq["band"].to_numpy()
        line = d_seq["line"].to_numpy(float)
        sample = d_seq["sample"].to_numpy(float)
        pts = np.zeros((len(d_seq), 3))
        for p in np.unique(pid):
            at = pid == p
            pts[at] = surface_point(d_seq["lat_deg"].to_numpy(float)[at],
                                    d_seq["lon_west_deg"].to_numpy(float)[at],
                                    state(p).radii_km)
        covered = np.zeros(len(d_seq), int)
        confirmed = np.zeros(len(d_seq), int)
        for other in pids:  # each other frame, all the sequence's detections at once
            o_bands = fr.loc[other, "bands"]
            tol = CONFIRM_RADIUS_PX + 2.0 * float(np.nan_to_num(
                fr.loc[other, "pointing_sigma_px"]))
            for b, sl in jiram.band_layout(tuple(o_bands)).items():
                sel = np.flatnonzero((pid != other) & (band == b))
                if not sel.size:
                    continue
                pl, ps, vis = state(other).project_points(pts[sel], b)
                cover = vis & (COVER_MARGIN_PX <= pl) & (pl <= 127 - COVER_MARGIN_PX) \
                    & (COVER_MARGIN_PX <= ps) & (ps <= 431 - COVER_MARGIN_PX)
                mine = (pid == other) & (band == b)
                if mine.any():
                    dist = np.hypot(line[mine][None, :] - sl.start - pl[:, None],
                                    sample[mine][None, :] - ps[:, None])
                    confirmed[sel] += cover & (dist <= tol).any(axis=1)
                covered[sel] += cover
        need = np.where(d_seq["snr"].to_numpy(float) >= 10, 1, 2)
        transient = (confirmed == 0) & (covered >= need)
        flags[det.index.get_indexer(d_seq.index[transient])] |= int(Flag.TRANSIENT)
    det["flags"] = flags
    return det


# --- the pass, finished -------------------------------------------------------------------


def finish_pass(frames: pd.DataFrame, detections: pd.DataFrame, reextract
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Constellations, sequence ties, transients: one pass's final frames and detections.

    ``reextract(product_id, pointing) -> (detections, summary)`` extracts a frame
    again on a new pointing (:func:`extract_frame_result`, however the caller
    gets the calibrated frame). Kernels loaded.
    """
    summaries = {r["product_id"]: r for r in frames.to_dict("records")}
    det = detections

    def apply(updates: dict) -> None:
        nonlocal det
        for pid, pt in updates.items():
            new_det, s = reextract(pid, pt)
            det = pd.concat([det[det["product_id"] != pid], new_det], ignore_index=True)
            summaries[pid] = s

    recon_of = _ReconStates()  # each frame's reconstructed state, once for every step
    members = _limb_members(det)
    audit = limb_audit(frames, det, recon_of=recon_of, members=members)
    apply(audit)
    # the references from the same limb members, unless the audit moved a frame
    references = constellation_references(det) if audit else _references(*members)
    apply(constellation_updates(pd.DataFrame(list(summaries.values())), det, references,
                                recon_of=recon_of))
    apply(sequence_ties(pd.DataFrame(list(summaries.values())), det, recon_of=recon_of))
    final = pd.DataFrame([summaries[p] for p in frames["product_id"]])
    # the name for how each frame was placed (limb, constellation, pass, none)
    final["registration_method"] = final["pointing_method"]
    det = flag_transients(final, det, recon_of=recon_of)
    return final, det.sort_values(["et_mid", "band", "line", "sample"], ignore_index=True)
