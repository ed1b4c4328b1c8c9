"""The science chain, in memory (no Prefect, no storage): the stage functions.

The same functions run in the flows (``tasks/work.py`` loads and stores
around them) and in :func:`run_local` (tests, benchmarks, quick looks):

1. :func:`calibrate_group` -- one observation sequence (same bands and
   exposure, frames one spin apart): radiance (EDR with the real dark, RDR as
   is, chosen per product), impossible values, saturation, bad pixels,
   radiation hits across the sequence, cleaning; then each frame's own wide
   limb fit (:func:`iovolc.registration.register_frame`).
2. :func:`solve_pointing` -- per pass: the consensus of the limb fits
   (:func:`iovolc.pointing.solve_pass`).
3. :func:`extract_group` -- each frame on its pass pointing (re-registered on
   the limb around the pass solution where a limb is in view), geometry,
   hotspots.
4. :func:`iovolc.placement.finish_pass` -- per pass: limb fits audited
   against the hotspots of the other limb frames, frames still on the pass
   solution placed by their hotspots (constellations, sequence ties),
   transients flagged; re-placed frames are extracted again.

The caller holds the kernel set (:class:`iovolc.spice.KernelSet`) of the
products while calling 1, 3 and 4.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from iovolc import jiram, reference
from iovolc.calibrate import (
    calibrate_sequence,
    check_sequence,
    invalid_values,
    raw_dn_estimate,
)
from iovolc.detections import DETECTION_COLUMNS
from iovolc.extract import ExtractionConfig, extract_frame
from iovolc.geometry import FrameState, io_within_reach, latlon_west
from iovolc.placement import finish_pass  # noqa: F401  (the pass step; tasks import it here)
from iovolc.pointing import solve_pass
from iovolc.reader import JiramProduct
from iovolc.registration import SEARCH_ALONG_DEG, SEARCH_CROSS_DEG, LimbFit, register_frame

#: a new sequence starts after a gap longer than this between frames (s)
GROUP_GAP_S = 120.0
#: largest search half-range around the pass solution when re-registering a frame (px)
PRIOR_SEARCH_PX = 16
#: detection columns added by the chain
FRAME_DETECTION_COLUMNS = ["product_id", "perijove", "et_mid", "utc", "sequence"]
#: a sequence is calibrated if Io's disc can reach one of its frames under a pointing
#: correction this large (rad): the limb fit's search plus 2 deg for what the pass
#: solution, re-registration and hotspot placement can add around it
REACH_ALONG_RAD = float(np.radians(SEARCH_ALONG_DEG + 2.0))
REACH_CROSS_RAD = float(np.radians(SEARCH_CROSS_DEG + 2.0))
#: limb_reason of the frames of a sequence left uncalibrated
OUT_OF_REACH = ("Io out of reach: its disc cannot fall on any frame of the sequence under "
                "any pointing searched (not calibrated)")


@dataclass(frozen=True, eq=False)
class FrameResult:
    """A calibrated frame: cleaned radiance, masks, and what the chain knows of it.

    A frame of a sequence Io cannot reach (:func:`calibrate_group`) has no
    radiance or masks (None), only its summary (``calibrated`` false).
    """

    product_id: str
    radiance: np.ndarray | None
    saturated: np.ndarray | None
    bad: np.ndarray | None
    hits: np.ndarray | None
    summary: dict = field(default_factory=dict)


def _bands_key(p) -> tuple:
    return tuple(p.bands), round(float(p.exposure_s), 6)


def group_products(products: Sequence, *, gap_s: float = GROUP_GAP_S) -> list[list]:
    """Split products into sequences: same bands and exposure, no long gaps.

    Anything with ``et_mid``, ``bands`` and ``exposure_s`` works (manifest rows too).
    """
    ordered = sorted(products, key=lambda p: p.et_mid)
    groups: list[list] = []
    for p in ordered:
        g = groups[-1] if groups else None
        if g and _bands_key(g[-1]) == _bands_key(p) and p.et_mid - g[-1].et_mid <= gap_s:
            g.append(p)
        else:
            groups.append([p])
    return groups


def perijove_check(product: JiramProduct) -> tuple[int, str]:
    """Perijove from START_TIME and the perijove table, checked against the label.

    Raises ValueError when START_TIME is outside the table's orbits.
    """
    pj = int(reference.perijove_for_et(product.et_mid).pj)
    note = ""
    if product.orbit_number is not None and int(product.orbit_number) != pj:
        note = (f"label ORBIT_NUMBER {product.orbit_number} disagrees with the perijove "
                f"table (PJ{pj} from START_TIME)")
    return pj, note


def _strips(result: FrameResult, bands: tuple[str, ...]) -> dict:
    valid = ~(result.bad | result.hits)
    return {b: (result.radiance[sl], valid[sl]) for b, sl in jiram.band_layout(bands).items()}


def calibrate_group(products: Sequence[JiramProduct]) -> list[FrameResult]:
    """Calibrate one sequence and fit each frame's pointing on the limb (kernels loaded).

    A sequence where Io's disc cannot fall on any frame under any pointing
    correction the chain searches (:func:`iovolc.geometry.io_within_reach`,
    :data:`REACH_ALONG_RAD`): most of the archive, frames of Jupiter, is not
    calibrated. Its frames keep a summary (``calibrated`` false, the viewing
    geometry, ``io_in_view`` false) and nothing else. A sequence with one
    frame in reach is calibrated whole, so its results do not depend on this.
    """
    if not products:
        return []
    keys = {_bands_key(p) for p in products}
    if len(keys) != 1:
        raise ValueError(f"a group must have one band set and exposure, got {sorted(keys)}")
    bands, exposure_s = tuple(products[0].bands), float(products[0].exposure_s)
    check_sequence([p.image for p in products], bands=bands, exposure_s=exposure_s,
                   kinds=[p.product_type for p in products])
    states = [FrameState.from_spice(p.et_mid, bands=bands) for p in products]
    sequence = products[0].product_id
    if not any(in_reach(st, bands) for st in states):
        out = []
        for p, state in zip(products, states, strict=True):
            summary = _summary(p, state, bands, exposure_s, sequence, calibrated=False)
            # out of reach under every correction, so under none too: not in view
            summary.update(_limb_columns(LimbFit(0.0, 0.0, False, 0.0, 0, OUT_OF_REACH)),
                           **_view(state, bands, in_view=False))
            out.append(FrameResult(p.product_id, None, None, None, None, summary))
        return out
    cal = calibrate_sequence([p.image for p in products], bands=bands, exposure_s=exposure_s,
                             kinds=[p.product_type for p in products])
    out = []
    for p, c, state in zip(products, cal, states, strict=True):
        res = FrameResult(p.product_id, c.radiance, c.saturated, c.bad, c.hits)
        fit = register_frame(_strips(res, bands), state)
        summary = _summary(p, state, bands, exposure_s, sequence, calibrated=True)
        summary.update({"n_saturated_px": int(c.saturated.sum()), "n_hit_px": int(c.hits.sum()),
                        **_limb_columns(fit)})
        out.append(replace(res, summary=summary))
    return out


def in_reach(state: FrameState, bands: tuple[str, ...]) -> bool:
    """Whether Io's disc can fall on a frame under a pointing correction the chain
    searches (:data:`REACH_ALONG_RAD`, :data:`REACH_CROSS_RAD`); kernels loaded."""
    return io_within_reach(state, bands, along_rad=REACH_ALONG_RAD, cross_rad=REACH_CROSS_RAD)


def times_in_reach(et_mids: Sequence[float], *, bands: tuple[str, ...]) -> bool:
    """:func:`in_reach` for any of a sequence's frame times (kernels loaded): the
    decision :func:`calibrate_group` makes, from the times and bands alone."""
    return any(in_reach(FrameState.from_spice(float(et), bands=bands), bands) for et in et_mids)


def _summary(p: JiramProduct, state: FrameState, bands: tuple[str, ...], exposure_s: float,
             sequence: str, *, calibrated: bool) -> dict:
    """A frame's summary columns known before calibration (kernels loaded); the pixel
    counts are None until the frame is calibrated."""
    pj, note = perijove_check(p)
    _, why_invalid = invalid_values(p.image, product_type=p.product_type, exposure_s=exposure_s)
    return {
        "product_id": p.product_id, "perijove": pj, "orbit_number": p.orbit_number,
        "et_mid": p.et_mid, "start_time_utc": p.start_time_utc, "mode": p.mode,
        "bands": "".join(bands), "exposure_s": exposure_s, "target_name": p.target_name,
        "product_type": p.product_type, "perijove_note": note, "sequence": sequence,
        "sequence_number": p.sequence_number, "unit": p.unit,
        "ifov_rad": min(state.camera(b).ifov_rad for b in bands), "calibrated": calibrated,
        "n_saturated_px": None, "n_hit_px": None, "invalid_note": why_invalid,
    }


def _limb_columns(fit: LimbFit) -> dict:
    return {"limb_ok": bool(fit.ok), "limb_along_rad": fit.along_rad,
            "limb_cross_rad": fit.cross_rad, "limb_sigma_px": fit.sigma_px,
            "limb_reason": fit.reason, "limb_correlation": fit.correlation,
            "limb_n_px": fit.n_limb_px}


def calibrated_ids(frames: pd.DataFrame) -> list[str]:
    """The frames of a frame table that were calibrated (a missing value: a frame from
    before frames could be left uncalibrated, so calibrated)."""
    if "calibrated" not in frames:
        return frames["product_id"].tolist()
    return frames.loc[frames["calibrated"].ne(False), "product_id"].tolist()


def uncalibrated_results(frames: pd.DataFrame) -> dict[str, FrameResult]:
    """The frames of a frame table left uncalibrated, as summary-only results."""
    if "calibrated" not in frames:
        return {}
    rows = frames[frames["calibrated"].eq(False)].drop(columns=["tag", "iovolc_version"],
                                                       errors="ignore")
    return {r["product_id"]: FrameResult(r["product_id"], None, None, None, None, r)
            for r in rows.to_dict("records")}


def solve_pointing(frames: pd.DataFrame) -> pd.DataFrame:
    """Per-frame pointing (method, along/cross rad, sigma px) for each pass (perijove)."""
    if frames.empty:
        return frames.assign(pointing_method=[], along_rad=[], cross_rad=[],
                             pointing_sigma_px=[], pointing_note=[])
    parts = [solve_pass(g) for _, g in frames.groupby("perijove", sort=True)]
    cols = ["product_id", "pointing_method", "along_rad", "cross_rad", "pointing_sigma_px",
            "pointing_note"]
    return pd.concat(parts, ignore_index=True)[cols]


def _reregister(result: FrameResult, state: FrameState, pointing: dict) -> dict:
    """A 'pass' frame tried again on the limb, around the pass solution."""
    s = result.summary
    bands = tuple(s["bands"])
    ifov = float(s["ifov_rad"])
    # search no farther than the pass's own scatter allows
    window = float(np.clip(3.0 * pointing["pointing_sigma_px"], 4.0, PRIOR_SEARCH_PX))
    fit = register_frame(_strips(result, bands), state,
                         prior=(pointing["along_rad"], pointing["cross_rad"]),
                         search_along_rad=window * ifov, search_cross_rad=window * ifov)
    if not fit.ok:
        return pointing
    return {**pointing, "pointing_method": "limb", "along_rad": fit.along_rad,
            "cross_rad": fit.cross_rad,
            "pointing_sigma_px": max(0.2, fit.sigma_px if np.isfinite(fit.sigma_px) else 0.2),
            "pointing_note": "registered on the limb around the pass solution"}


def _frame_columns(s: dict) -> dict:
    """A frame summary's FRAME_DETECTION_COLUMNS, by name and in their order: the values
    every detection row of the frame starts with."""
    values = {"product_id": s["product_id"], "perijove": int(s["perijove"]),
              "et_mid": float(s["et_mid"]), "utc": s["start_time_utc"],
              "sequence": s["sequence"]}
    return {col: values[col] for col in FRAME_DETECTION_COLUMNS}


def extract_frame_result(result: FrameResult, pointing: dict, *,
                         config: ExtractionConfig = ExtractionConfig(),
                         reregister: bool = True) -> tuple[pd.DataFrame, dict]:
    """Detections of one calibrated frame on its pointing, and its updated summary.

    A frame left uncalibrated (Io out of reach) gets its pointing and no
    detections (no kernels needed).
    """
    s = dict(result.summary)
    bands = tuple(s["bands"])
    if result.radiance is None:
        s.update({k: pointing[k] for k in ("pointing_method", "along_rad", "cross_rad",
                                           "pointing_sigma_px", "pointing_note")})
        s["n_detections"] = 0
        return _no_detections().copy(), s
    recon = FrameState.from_spice(s["et_mid"], bands=bands)
    if reregister and pointing["pointing_method"] == "pass":
        pointing = _reregister(result, recon, pointing)
    method = pointing["pointing_method"]
    state = recon.corrected(pointing["along_rad"], pointing["cross_rad"])
    det = extract_frame(result.radiance, state, bands=bands, exposure_s=s["exposure_s"],
                        pointing_method=method,
                        pointing_sigma_px=float(pointing["pointing_sigma_px"])
                        if np.isfinite(pointing["pointing_sigma_px"]) else 0.0,
                        saturated=result.saturated, invalid=result.bad,
                        raw_dn=raw_dn_estimate(result.radiance, bands=bands,
                                               exposure_s=s["exposure_s"]),
                        config=config, leading=_frame_columns(s))
    s.update({k: pointing[k] for k in ("pointing_method", "along_rad", "cross_rad",
                                       "pointing_sigma_px", "pointing_note")})
    s.update(_view(state, bands))
    s["n_detections"] = len(det)
    return det, s


@functools.lru_cache(maxsize=1)
def _no_detections() -> pd.DataFrame:
    """The empty detection table (built once: a frame of Jupiter costs ~1 ms less)."""
    return pd.DataFrame(columns=FRAME_DETECTION_COLUMNS + DETECTION_COLUMNS)


def _disc_on_grid(state: FrameState, band: str) -> bool:
    """Any of a band's pixels on Io's disc: every 8th pixel and the strip's edges."""
    from iovolc.geometry import pixel_geometry

    ll, ss = np.mgrid[0:jiram.N_LINES_BAND:8, 0:jiram.N_SAMPLES:8]
    edge_l = np.concatenate([np.arange(128), np.arange(128), np.zeros(432), 127 + np.zeros(432)])
    edge_s = np.concatenate([np.zeros(128), 431 + np.zeros(128), np.arange(432), np.arange(432)])
    g = pixel_geometry(state, band, np.concatenate([ll.ravel(), edge_l]),
                       np.concatenate([ss.ravel(), edge_s]))
    return bool(g.on_disc.any())


def _view(state: FrameState, bands: tuple[str, ...], *, in_view: bool | None = None) -> dict:
    """Io in the field of view (any pixel on the disc) and the sub-spacecraft geometry.

    ``in_view``: already known (a frame out of reach), so not traced again.
    """
    if in_view is None:
        in_view = any(_disc_on_grid(state, b) for b in bands)
    obs_bf = -(state.rot @ state.io_pos)
    lat, lon_w = latlon_west(obs_bf)  # the sub-observer point along the line to the centre
    rng = state.range_km
    cosp = np.dot(state.sun_bf, obs_bf) / (np.linalg.norm(state.sun_bf) * np.linalg.norm(obs_bf))
    ifov = min(state.camera(b).ifov_rad for b in bands)
    return {"io_in_view": in_view, "sub_lat_deg": float(lat), "sub_lon_west_deg": float(lon_w),
            "range_km": rng, "pixel_scale_km": rng * ifov,
            "phase_deg": float(np.degrees(np.arccos(np.clip(cosp, -1, 1))))}


def extract_group(results: Sequence[FrameResult], pointing: pd.DataFrame, *,
                  config: ExtractionConfig = ExtractionConfig()) -> tuple[pd.DataFrame, list]:
    """Detections of a group's frames on their pointing; their updated summaries."""
    pt = pointing.set_index("product_id")
    dets, summaries = [], []
    for r in results:
        row = pt.loc[r.product_id].to_dict()
        det, s = extract_frame_result(r, row, config=config)
        dets.append(det)
        summaries.append(s)
    return _concat(dets), summaries


def _concat(dets: list[pd.DataFrame]) -> pd.DataFrame:
    dets = [d for d in dets if len(d)]
    if not dets:
        return pd.DataFrame(columns=FRAME_DETECTION_COLUMNS + DETECTION_COLUMNS)
    return pd.concat(dets, ignore_index=True)


# --- the whole chain in memory ----------------------------------------------------------


@dataclass(frozen=True)
class LocalRun:
    """Result of :func:`run_local`."""

    frames: pd.DataFrame
    detections: pd.DataFrame
    catalog: object  # iovolc.catalog.CatalogResult | None
    errors: tuple[tuple[str, str], ...] = ()


def discover_products(archive_root: str, *, perijoves: Sequence[int] | None = None,
                      prefer: str = "RDR") -> tuple[list[str], list[tuple[str, str]]]:
    """Label URLs of the imager products in an archive (one per frame).

    Uses each volume's INDEX; RDRs are preferred, an EDR is used for a frame
    with no RDR. Returns (label URLs, [(where, problem)]).
    """
    from iovolc.pds3 import ProductError
    from iovolc.pds3_index import list_volumes, read_index, volume_kind, volume_orbit

    chosen: dict[str, tuple[str, str]] = {}
    errors: list[tuple[str, str]] = []
    for vol in list_volumes(archive_root):
        try:
            if perijoves is not None and volume_orbit(vol) not in perijoves:
                continue
            kind = volume_kind(vol)
            idx = read_index(vol)
        except ProductError as exc:
            errors.append((vol, str(exc)))
            continue
        errors += [(vol, f"row {p['row']}: {p['reason']}") for p in idx.problems]
        for _, row in idx.rows.iterrows():
            pid = str(row.get("product_id", ""))
            if not pid.upper().startswith("JIR_IMG_"):
                continue
            key = frame_key(pid)
            if key not in chosen or (kind == prefer and chosen[key][0] != prefer):
                chosen[key] = (kind, row["label_url"])
    return [url for _, url in sorted(chosen.values(), key=lambda t: t[1])], errors


def frame_key(product_id: str) -> str:
    """The frame an EDR or RDR product belongs to (its id without the type)."""
    return product_id.upper().replace("_EDR_", "_").replace("_RDR_", "_")


def run_local(archive_root: str, kernel_root: str, *, cache_dir, perijoves=None,
              config: ExtractionConfig = ExtractionConfig()) -> LocalRun:
    """Whole chain without orchestration (tests, benchmarks, quick looks)."""
    from pathlib import Path

    from iovolc.catalog import build_catalog
    from iovolc.kernels import kernel_set_for
    from iovolc.pds3 import ProductError
    from iovolc.reader import read_jiram_product
    from iovolc.spice import LoadedKernels

    urls, errors = discover_products(archive_root, perijoves=perijoves)
    products = []
    for url in urls:
        try:
            products.append(read_jiram_product(url))
        except ProductError as exc:
            errors.append((url, str(exc)))
    groups = group_products(products)
    ksets = [kernel_set_for(g[0], kernel_root=kernel_root, cache_dir=Path(cache_dir))
             for g in groups]
    results: list[list[FrameResult]] = []
    # one pool over the stages: a set is loaded again only when it changes, and then
    # only its binary kernels when the text ones are the same (LoadedKernels)
    with LoadedKernels() as loaded:
        for g, kset in zip(groups, ksets, strict=True):
            loaded.use(kset)
            results.append(calibrate_group(g))
        frames = pd.DataFrame([r.summary for rs in results for r in rs])
        pointing = solve_pointing(frames)
        dets, summaries = [], {}
        for rs, kset in zip(results, ksets, strict=True):
            loaded.use(kset)
            det, ss = extract_group(rs, pointing, config=config)
            dets.append(det)
            summaries.update({s["product_id"]: s for s in ss})
        det = _concat(dets)
        frames = pd.DataFrame(list(summaries.values()))
        by_pid = {r.product_id: (r, kset) for rs, kset in zip(results, ksets, strict=True)
                  for r in rs}
        for pj, fr in frames.groupby("perijove"):
            loaded.use(by_pid[fr["product_id"].iloc[0]][1])
            fr_new, d_new = finish_pass(
                fr, det[det["perijove"] == pj],
                lambda pid, pt: extract_frame_result(by_pid[pid][0], pt, config=config,
                                                     reregister=False))
            det = pd.concat([det[det["perijove"] != pj], d_new], ignore_index=True)
            summaries.update({r["product_id"]: r for r in fr_new.to_dict("records")})
    frames = pd.DataFrame(list(summaries.values()))
    det = det.sort_values(["et_mid", "band", "line", "sample"], ignore_index=True)
    catalog = build_catalog(det) if len(det) else None
    return LocalRun(frames, det, catalog, tuple(errors))


def backplanes(result: FrameResult, pointing: dict):
    """Per-pixel geometry of a calibrated frame on its pointing (kernels loaded).

    ``{band: PixelGeometry}`` over each band strip: lat/lon (West), emission,
    incidence, phase, range, pixel scale; NaN off the disc. Computed once, only
    where the disc can be (:func:`iovolc.geometry.disc_pixel_box`); the rest of
    the strip is off the disc.
    """
    from iovolc.geometry import PixelGeometry, disc_pixel_box, pixel_geometry

    s = result.summary
    bands = tuple(s["bands"])
    state = FrameState.from_spice(s["et_mid"], bands=bands).corrected(
        pointing["along_rad"], pointing["cross_rad"])
    ll, ss = np.mgrid[0:jiram.N_LINES_BAND, 0:jiram.N_SAMPLES]
    out = {}
    for b in bands:
        planes = {k: np.full(ll.shape, np.nan) for k in (
            "lat_deg", "lon_west_deg", "emission_deg", "incidence_deg", "phase_deg",
            "range_km", "pixel_scale_km")}
        on = np.zeros(ll.shape, bool)
        box = disc_pixel_box(state, b)
        if box is not None:
            g = pixel_geometry(state, b, ll[box], ss[box])
            on[box] = g.on_disc
            for k, v in planes.items():
                v[box] = getattr(g, k)
        out[b] = PixelGeometry(on_disc=on, **planes)
    return out
