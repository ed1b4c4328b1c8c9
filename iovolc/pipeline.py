"""The science chain for a group of frames, in memory (no Prefect, no storage).

``process_group(products)`` takes the JIRAM products of one observation
sequence (same mode and exposure, a few spins apart), with the SPICE kernel
pool already loaded by the caller's :class:`~iovolc.spice.KernelSet`, and
returns per-frame results (cleaned radiance, masks, geometry backplanes,
registration, summary) and the detection table.

Steps per frame: calibration (EDR -> radiance with the matching dark, or the
RDR as is; saturation and bad-pixel masks; radiation hits found across the
sequence and replaced), geometry from SPICE at mid-exposure, limb
registration and the corrected attitude, backplanes, hotspot extraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from iovolc import jiram, reference
from iovolc.calibrate import calibrate_sequence
from iovolc.extract import DETECTION_COLUMNS, ExtractionConfig, extract_frame
from iovolc.geometry import FrameState, PixelGeometry, pixel_geometry
from iovolc.pds3 import JiramProduct
from iovolc.registration import Registration, corrected_attitude, register_frame

#: a new group starts after a gap longer than this between frames (s)
GROUP_GAP_S = 120.0


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline derived for one frame."""

    product_id: str
    radiance: np.ndarray
    saturated: np.ndarray
    bad: np.ndarray
    hits: np.ndarray
    geometry: PixelGeometry
    registration: Registration
    summary: dict = field(default_factory=dict)
    #: camera -> J2000 rotation after registration (reconstructed if not registered)
    cam_to_j2000: np.ndarray | None = None


def group_products(products: Sequence[JiramProduct], *, gap_s: float = GROUP_GAP_S):
    """Split products into sequences: same mode and exposure, no long gaps."""
    ordered = sorted(products, key=lambda p: p.et_mid)
    groups: list[list[JiramProduct]] = []
    for p in ordered:
        g = groups[-1] if groups else None
        if (g and g[-1].mode == p.mode and abs(g[-1].exposure_s - p.exposure_s) < 1e-9
                and p.et_mid - g[-1].et_mid <= gap_s):
            g.append(p)
        else:
            groups.append([p])
    return groups


def perijove_check(product: JiramProduct) -> tuple[int, str]:
    """Perijove from START_TIME and the perijove table, checked against the label."""
    pj = int(reference.perijove_for_et(product.et_mid).pj)
    note = ""
    if product.orbit_number is not None and int(product.orbit_number) != pj:
        note = (f"label ORBIT_NUMBER {product.orbit_number} disagrees with the perijove "
                f"table (PJ{pj} from START_TIME)")
    return pj, note


def _io_in_view(state: FrameState, *, mode: str, margin_px: float = 5.0) -> bool:
    """Could any part of Io's disc be in the frame (given the pointing error)?"""
    cl, cs, _ = state.project_points(np.zeros((1, 3)))
    if not np.isfinite(cl[0]):
        return False
    rng_km = float(np.linalg.norm(state.io_pos))
    r_px = np.tan(np.arcsin(min(1.0, state.radii_km.max() / rng_km))) / jiram.IFOV_RAD
    row0 = jiram.frame_to_detector_line(mode, 0)
    n_rows = jiram.mode_lines(mode)
    # the despinning-mirror error can move the scene ~150 px along lines
    return (cl[0] + r_px + 160 > row0 - margin_px and cl[0] - r_px - 160 < row0 + n_rows
            and cs[0] + r_px + 40 > -margin_px and cs[0] - r_px - 40 < jiram.N_SAMPLES)


def calibrate_group(products: Sequence[JiramProduct]) -> list[FrameResult]:
    """Calibrate, register and compute geometry backplanes for one sequence.

    The caller has loaded the kernels these products need.
    """
    if not products:
        return []
    modes = {p.mode for p in products}
    if len(modes) != 1:
        raise ValueError(f"a group must have one mode, got {sorted(modes)}")
    mode = products[0].mode
    exposure_s = products[0].exposure_s
    kind = products[0].product_type
    cal = calibrate_sequence([p.image for p in products], mode=mode, exposure_s=exposure_s,
                             kind=kind)
    results = []
    n_rows = jiram.mode_lines(mode)
    row0 = jiram.frame_to_detector_line(mode, 0)
    ll, ss = np.mgrid[0:n_rows, 0:jiram.N_SAMPLES]
    for p, c in zip(products, cal, strict=True):
        pj, note = perijove_check(p)
        state = FrameState.from_spice(p.et_mid)
        summary = {
            "product_id": p.product_id, "perijove": pj, "orbit_number": p.orbit_number,
            "et_mid": p.et_mid, "start_time_utc": p.start_time_utc, "mode": mode,
            "exposure_s": exposure_s, "target_name": p.target_name, "product_type": kind,
            "perijove_note": note, "io_in_view": False, "registered": False,
            "registration_reason": "", "offset_line_px": 0.0, "offset_sample_px": 0.0,
            "offset_sigma_px": float("nan"), "n_detections": 0,
            "n_saturated_px": int(c.saturated.sum()), "n_hit_px": int(c.hits.sum()),
        }
        valid = ~(c.bad | c.hits)
        if _io_in_view(state, mode=mode):
            reg = register_frame(c.radiance, state, mode=mode, valid=valid)
            if reg.ok:
                state = replace(state, cam_to_j2000=corrected_attitude(state, reg, mode=mode))
        else:
            reg = Registration(0.0, 0.0, False, 0.0, 0, "Io is not in the field of view")
        geom = pixel_geometry(state, ll + row0, ss)
        summary.update({
            "io_in_view": bool(geom.on_disc.any()), "registered": reg.ok,
            "registration_reason": reg.reason, "offset_line_px": reg.d_line_px,
            "offset_sample_px": reg.d_sample_px, "offset_sigma_px": reg.sigma_px,
            **_sub_spacecraft(state),
        })
        results.append(FrameResult(p.product_id, c.radiance, c.saturated, c.bad, c.hits,
                                   geom, reg, summary, state.cam_to_j2000))
    return results


def extract_group(results: Sequence[FrameResult], *,
                  config: ExtractionConfig = ExtractionConfig()) -> pd.DataFrame:
    """Detections in calibrated frames (kernels loaded by the caller)."""
    dets = []
    for r in results:
        s = r.summary
        if not s.get("io_in_view", False):
            continue
        state = FrameState.from_spice(s["et_mid"], cam_to_j2000=r.cam_to_j2000)
        det = extract_frame(r.radiance, state, mode=s["mode"], exposure_s=s["exposure_s"],
                            registered=bool(s["registered"]), saturated=r.saturated,
                            invalid=r.bad, config=config)
        det.insert(0, "product_id", r.product_id)
        det.insert(1, "perijove", int(s["perijove"]))
        det.insert(2, "et_mid", float(s["et_mid"]))
        det.insert(3, "utc", s["start_time_utc"])
        s["n_detections"] = len(det)
        dets.append(det)
    if not dets:
        return pd.DataFrame(columns=["product_id", "perijove", "et_mid", "utc",
                                     *DETECTION_COLUMNS])
    return pd.concat(dets, ignore_index=True)


def process_group(
    products: Sequence[JiramProduct],
    *,
    config: ExtractionConfig = ExtractionConfig(),
) -> tuple[list[FrameResult], pd.DataFrame]:
    """:func:`calibrate_group` then :func:`extract_group`."""
    results = calibrate_group(products)
    return results, extract_group(results, config=config)


def _sub_spacecraft(state: FrameState) -> dict:
    """Sub-spacecraft point, range, pixel scale and phase at Io's centre."""
    from iovolc.geometry import latlon_west

    obs_bf = -(state.rot @ state.io_pos)
    a, b, c = state.radii_km
    u = obs_bf / np.linalg.norm(obs_bf)
    r = 1.0 / np.sqrt((u[0] / a) ** 2 + (u[1] / b) ** 2 + (u[2] / c) ** 2)
    lat, lon_w = latlon_west(u * r)
    rng = float(np.linalg.norm(state.io_pos))
    cosp = np.dot(state.sun_bf, obs_bf) / (np.linalg.norm(state.sun_bf) * np.linalg.norm(obs_bf))
    return {
        "sub_lat_deg": float(lat), "sub_lon_west_deg": float(lon_w), "range_km": rng,
        "pixel_scale_km": rng * jiram.IFOV_RAD,
        "phase_deg": float(np.degrees(np.arccos(np.clip(cosp, -1, 1)))),
    }


@dataclass(frozen=True)
class LocalRun:
    """Result of :func:`run_local`."""

    frames: pd.DataFrame
    detections: pd.DataFrame
    catalog: object  # iovolc.catalog.CatalogResult
    errors: tuple[tuple[str, str], ...] = ()


def discover_products(archive_root: str, *, perijoves: Sequence[int] | None = None,
                      prefer: str = "RDR") -> tuple[list[str], list[tuple[str, str]]]:
    """Label URLs of the imager products in an archive (one per frame).

    Uses each volume's INDEX; RDRs are preferred, an EDR is used for a frame
    with no RDR. Returns (label URLs, [(volume, error)]).
    """
    from iovolc.pds3 import ProductError, list_volumes, read_index, volume_kind, volume_orbit

    chosen: dict[str, tuple[str, str]] = {}
    errors: list[tuple[str, str]] = []
    for vol in list_volumes(archive_root):
        try:
            orbit = volume_orbit(vol)
            if perijoves is not None and orbit not in perijoves:
                continue
            kind = volume_kind(vol)
            idx = read_index(vol)
        except ProductError as exc:
            errors.append((vol, str(exc)))
            continue
        for _, row in idx.iterrows():
            pid = str(row.get("product_id", ""))
            if not pid.upper().startswith("JIR_IMG_"):
                continue
            frame_key = pid.upper().replace("_EDR_", "_").replace("_RDR_", "_")
            if frame_key not in chosen or (kind == prefer and chosen[frame_key][0] != prefer):
                chosen[frame_key] = (kind, row["label_url"])
    return [url for _, url in sorted(chosen.values(), key=lambda t: t[1])], errors


def run_local(archive_root: str, kernel_root: str, *, cache_dir, perijoves=None,
              config: ExtractionConfig = ExtractionConfig()) -> LocalRun:
    """Whole chain without orchestration (tests, benchmarks, quick looks)."""
    from pathlib import Path

    from iovolc.catalog import build_catalog
    from iovolc.kernels import kernel_set_for
    from iovolc.pds3 import ProductError, read_jiram_product

    urls, errors = discover_products(archive_root, perijoves=perijoves)
    products = []
    for url in urls:
        try:
            products.append(read_jiram_product(url))
        except ProductError as exc:
            errors.append((url, str(exc)))
    frames, dets = [], []
    for group in group_products(products):
        kset = kernel_set_for(group[0], kernel_root=kernel_root, cache_dir=Path(cache_dir))
        with kset:
            results, det = process_group(group, config=config)
        frames += [r.summary for r in results]
        dets.append(det)
    det = pd.concat(dets, ignore_index=True) if dets else pd.DataFrame()
    catalog = build_catalog(det) if len(det) else None
    return LocalRun(pd.DataFrame(frames), det, catalog, tuple(errors))
