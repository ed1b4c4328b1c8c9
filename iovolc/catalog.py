"""Io hotspot catalog: detections -> per-perijove sources -> hotspots with stable ids.

The chain (each step a pure function on DataFrames; :func:`build_catalog` runs it):

1. :func:`merge_detections` -- within each perijove, group the detections of
   one source across frames and bands (greedy, by descending SNR) into
   *clusters* with an SNR- and resolution-weighted position.
2. :func:`cross_match` -- match each cluster to the nearest Davies et al.
   (2024) source within a resolution-scaled tolerance (one reference source
   per cluster per perijove); unmatched clusters are ``NEW_SOURCE``.
3. :func:`derive_power` -- temperature (L/M ratio, else the matched
   reference's, else :data:`DEFAULT_TEMPERATURE_K`), emitting area from the
   M-band spectral power and total power ``sigma T^4 A``.
4. :func:`link_perijoves` -- the same source over perijoves is one hotspot:
   ``IVC-<ref_id>`` for reference sources, registry ids ``IVC-NEW-nnnn``
   (stable across catalog versions) for new ones. One row per hotspot per
   perijove: the published per-perijove power time series.
5. :func:`summarise` -- one row per hotspot.

:func:`write_catalog` / :func:`read_catalog` handle the published files;
:data:`CATALOG_COLUMNS` and :data:`HOTSPOT_COLUMNS` document every column
(unit, description) and feed the ECSV/Parquet metadata and
``docs/catalog_schema.md``.

Conventions: latitude planetocentric, deg N; longitude **West** in [0, 360)
(``lon_west_deg``); distances are great-circle km on a sphere of radius
:data:`IO_RADIUS_KM`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from iovolc import greedy, jiram, physics, segments
from iovolc.flags import CONFIDENT_SNR, HIGH_EMISSION_DEG, Flag, flag_descriptions, flag_names

__all__ = [
    "IO_RADIUS_KM",
    "DEFAULT_TEMPERATURE_K",
    "POSITION_SIGMA_PX",
    "DETECTION_COLUMNS",
    "CLUSTER_COLUMNS",
    "CATALOG_COLUMNS",
    "HOTSPOT_COLUMNS",
    "NEW_ID_PREFIX",
    "CatalogResult",
    "great_circle_km",
    "merge_detections",
    "cross_match",
    "derive_power",
    "link_perijoves",
    "summarise",
    "build_catalog",
    "write_catalog",
    "read_catalog",
]

#: Io mean radius used for great-circle distances, km (IAU; = the simulator's)
IO_RADIUS_KM = 1821.6

#: Temperature assumed when a source has neither a usable L/M ratio nor a
#: reference temperature, K. It is the median temperature of the Davies et al.
#: (2024) Table A1 sources first detected by JIRAM (``status == 1``; their
#: temperatures come from JIRAM's L/M ratio): 446 K -> 450 K. That is the
#: typical colour temperature of the sources JIRAM resolves, so it is the
#: least-biased guess for a new JIRAM source. (The median over *all* Table A1
#: temperatures, ~227 K, is dominated by the Galileo-era whole-patera effective
#: temperatures of Veeder et al. 2015, a different kind of quantity.)
#: ``tests/test_catalog.py`` checks the constant against the table.
DEFAULT_TEMPERATURE_K = 450.0

#: 1-sigma position error of one detection, in pixels (centroiding + registration)
POSITION_SIGMA_PX = 0.5

#: prefix of registry ids of sources not in the reference catalog
NEW_ID_PREFIX = "IVC-NEW-"
_NEW_ID_RE = re.compile(r"^IVC-NEW-(\d+)$")

#: columns the detection table must have (extraction stage output)
DETECTION_COLUMNS: tuple[str, ...] = (
    "product_id",
    "perijove",
    "et_mid",
    "utc",
    "band",
    "lat_deg",
    "lon_west_deg",
    "emission_deg",
    "pixel_scale_km",
    "peak_radiance_w_m2_sr",
    "power_gw_per_um",
    "snr",
    "flags",
)

#: columns of the per-perijove cluster table (:func:`merge_detections`)
CLUSTER_COLUMNS: tuple[str, ...] = (
    "cluster_id",
    "perijove",
    "lat_deg",
    "lon_west_deg",
    "position_uncertainty_km",
    "n_detections",
    "n_frames",
    "bands",
    "peak_radiance_w_m2_sr",
    "power_gw_per_um",
    "power_gw_per_um_l",
    "power_rel_err_m",
    "power_rel_err_l",
    "m_saturated_only",
    "l_saturated_only",
    "max_snr",
    "min_emission_deg",
    "pixel_scale_km",
    "first_utc",
    "last_utc",
    "first_et",
    "last_et",
    "position_weight",
    "flags",
    "detection_indices",
)

_W_M2_SR = "W m-2 sr-1"

#: published catalog (one row per hotspot per perijove): column -> (unit, description)
CATALOG_COLUMNS: dict[str, tuple[str | None, str]] = {
    "hotspot_id": (
        None,
        "Hotspot identifier: 'IVC-' + ref_id for Davies et al. (2024) sources; "
        "'IVC-NEW-nnnn' registry id (stable across catalog versions) for new sources",
    ),
    "ref_id": (None, "Davies et al. (2024) Table A1 identifier of the matched source ('' if new)"),
    "name": (None, "Davies et al. (2024) name of the matched source ('' if new or unnamed)"),
    "lat_deg": ("deg", "Hotspot latitude over all perijoves (planetocentric, N), weighted mean"),
    "lon_west_deg": ("deg", "Hotspot West longitude over all perijoves, [0, 360), weighted mean"),
    "perijove": (None, "Juno perijove (orbit) number of this row's observations"),
    "n_detections": (None, "Number of detections (frames x bands) merged into this row"),
    "peak_radiance_w_m2_sr": (
        _W_M2_SR,
        "Maximum background-subtracted peak-pixel band radiance over the row's detections",
    ),
    "power_gw": (
        "GW",
        "Total thermal power sigma T^4 A (single-temperature blackbody; see temperature flags)",
    ),
    "power_gw_per_um": (
        "GW um-1",
        "M-band spectral power: median over unsaturated M detections (over saturated ones "
        "if none, then flagged POWER_LOWER_LIMIT); NaN if no M detection",
    ),
    "temperature_k": ("K", "Blackbody temperature used for area and power (see T_* flags)"),
    "flags": (None, "Bitmask of iovolc.flags.Flag (see flag_names and the table metadata)"),
    "first_seen_utc": (None, "UTC of the hotspot's first detection over all perijoves"),
    "last_seen_utc": (None, "UTC of the hotspot's last detection over all perijoves"),
    "power_gw_per_um_l": (
        "GW um-1",
        "L-band spectral power: median over unsaturated L detections (saturated if none); "
        "NaN if no L detection",
    ),
    "area_km2": ("km2", "Emitting area: M-band (else L-band) spectral power / blackbody at T"),
    "position_uncertainty_km": ("km", "1-sigma uncertainty of the hotspot position"),
    "pixel_scale_km": ("km", "Best (smallest) pixel scale among the row's detections"),
    "min_emission_deg": ("deg", "Smallest emission angle among the row's detections"),
    "match_distance_km": (
        "km",
        "Great-circle distance from this perijove's position to the matched reference "
        "source (NaN if new)",
    ),
    "flag_names": (None, "Human-readable flags, e.g. 'SATURATED|T_FROM_LM'"),
    "lat_deg_pj": ("deg", "Latitude from this perijove's detections only (planetocentric, N)"),
    "lon_west_deg_pj": ("deg", "West longitude from this perijove's detections only, [0, 360)"),
    "position_uncertainty_km_pj": ("km", "1-sigma uncertainty of this perijove's position"),
    "n_frames": (None, "Number of distinct frames (products) merged into this row"),
    "bands": (None, "JIRAM bands with detections in this row: 'L', 'M' or 'LM'"),
    "power_gw_lo": ("GW", "Lower end of the ~90 % interval of power_gw (band power +-1.645 "
                          "sigma over the temperature interval)"),
    "power_gw_hi": ("GW", "Upper end of that interval (inf for a lower limit)"),
    "temperature_k_lo": ("K", "Lower end of the temperature interval: from the L/M ratio's "
                              "error (T_FROM_LM), else the plausible range"),
    "temperature_k_hi": ("K", "Upper end of the temperature interval"),
}

#: hotspot summary (one row per hotspot): column -> (unit, description)
HOTSPOT_COLUMNS: dict[str, tuple[str | None, str]] = {
    "hotspot_id": CATALOG_COLUMNS["hotspot_id"],
    "ref_id": CATALOG_COLUMNS["ref_id"],
    "name": CATALOG_COLUMNS["name"],
    "lat_deg": CATALOG_COLUMNS["lat_deg"],
    "lon_west_deg": CATALOG_COLUMNS["lon_west_deg"],
    "position_uncertainty_km": CATALOG_COLUMNS["position_uncertainty_km"],
    "n_perijoves": (None, "Number of perijoves in which the hotspot was detected"),
    "perijoves": (None, "Comma-separated perijove numbers, ascending"),
    "n_detections": (None, "Total number of detections over all perijoves"),
    "mean_power_gw": ("GW", "Mean of the per-perijove total powers (NaN-skipping)"),
    "std_power_gw": ("GW", "Sample standard deviation of the per-perijove total powers"),
    "min_power_gw": ("GW", "Smallest per-perijove total power"),
    "max_power_gw": ("GW", "Largest per-perijove total power"),
    "mean_power_gw_per_um": ("GW um-1", "Mean of the per-perijove M-band spectral powers"),
    "median_temperature_k": ("K", "Median of the per-perijove temperatures"),
    "n_power_lower_limit": (None, "Number of perijoves whose power is a lower limit"),
    "pixel_scale_km": ("km", "Best pixel scale over all perijoves"),
    "min_emission_deg": ("deg", "Smallest emission angle over all perijoves"),
    "first_seen_utc": CATALOG_COLUMNS["first_seen_utc"],
    "last_seen_utc": CATALOG_COLUMNS["last_seen_utc"],
    "flags": (None, "OR of the per-perijove flags (iovolc.flags.Flag)"),
    "flag_names": CATALOG_COLUMNS["flag_names"],
}

_STR_COLUMNS = frozenset(
    {"hotspot_id", "ref_id", "name", "first_seen_utc", "last_seen_utc", "flag_names", "bands",
     "perijoves"}
)
_INT_COLUMNS = frozenset(
    {"perijove", "n_detections", "flags", "n_frames", "n_perijoves", "n_power_lower_limit"}
)

_T_FLAGS = Flag.T_FROM_LM | Flag.T_FROM_REFERENCE | Flag.T_ASSUMED


# --- geometry ----------------------------------------------------------------


def great_circle_km(
    lat1: ArrayLike,
    lon1: ArrayLike,
    lat2: ArrayLike,
    lon2: ArrayLike,
    *,
    radius_km: float = IO_RADIUS_KM,
) -> np.ndarray | float:
    """Great-circle distance (km) between points given in degrees (haversine).

    Vectorised with numpy broadcasting. Longitudes may be East or West (the
    same for both points) and in any range: the 0/360 wrap is handled.
    """
    p1 = np.deg2rad(np.asarray(lat1, dtype=float))
    p2 = np.deg2rad(np.asarray(lat2, dtype=float))
    dlon = np.deg2rad(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    h = np.sin(0.5 * (p2 - p1)) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(0.5 * dlon) ** 2
    d = 2.0 * radius_km * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return d[()] if d.ndim == 0 else d


def _unit_xyz(lat_deg: ArrayLike, lon_deg: ArrayLike) -> np.ndarray:
    """Unit vectors (..., 3) of lat/lon in degrees (longitude sense preserved)."""
    lat = np.deg2rad(np.asarray(lat_deg, dtype=float))
    lon = np.deg2rad(np.asarray(lon_deg, dtype=float))
    c = np.cos(lat)
    return np.stack([c * np.cos(lon), c * np.sin(lon), np.sin(lat)], axis=-1)


def _latlon(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lat_deg, lon_deg in [0, 360)) of (not necessarily unit) vectors (..., 3)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    lat = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    lon = np.mod(np.rad2deg(np.arctan2(y, x)), 360.0)
    lon = np.where(lon >= 360.0, lon - 360.0, lon)  # mod of a tiny negative -> 360.0
    return lat, lon


def _angle_km(a: np.ndarray, b: np.ndarray, radius_km: float = IO_RADIUS_KM) -> np.ndarray:
    """Great-circle km between unit vectors (broadcast over leading axes), from the chord."""
    diff = a - b
    chord = np.sqrt(np.sum(diff * diff, axis=-1))
    return 2.0 * radius_km * np.arcsin(np.minimum(0.5 * chord, 1.0))


def _weighted_centre(xyz: np.ndarray, w: np.ndarray) -> np.ndarray:
    s = np.sum(xyz * w[:, np.newaxis], axis=0)
    return s / np.linalg.norm(s)


def _position_uncertainty_km(
    xyz: np.ndarray, w: np.ndarray, centre: np.ndarray, sigma_km: np.ndarray
) -> float:
    """max(formal error of the weighted mean, weighted rms scatter / sqrt(n)).

    The formal error combines per-point sigmas inversely in quadrature; the
    scatter term catches registration errors larger than those sigmas.
    """
    d = _angle_km(xyz, centre[np.newaxis, :])
    formal = 1.0 / np.sqrt(np.sum(1.0 / sigma_km**2))
    scatter = np.sqrt(np.sum(w * d**2) / np.sum(w)) / np.sqrt(len(d))
    return float(max(formal, scatter))


def _require(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}")


# --- 1. merge detections -----------------------------------------------------


#: pointing-registration error floor of a detection's position (pixels)
REGISTRATION_FLOOR_PX = 0.05


def _detection_sigma_km(det: pd.DataFrame) -> np.ndarray:
    """1-sigma position error of each detection (km): the extraction's
    ``position_sigma_km`` (centroid + pointing, foreshortened) where given, else
    centroid ~1/SNR px and the registration floor, times the pixel scale."""
    if "position_sigma_km" in det:
        sig = det["position_sigma_km"].to_numpy(float)
        if np.all(np.isfinite(sig) & (sig > 0)):
            return sig
    snr = np.maximum(np.nan_to_num(det["snr"].to_numpy(float)), 1e-3)
    cos_e = np.cos(np.radians(np.clip(np.nan_to_num(det["emission_deg"].to_numpy(float),
                                                     nan=89.0), 0, 89.0)))
    sigma_px = np.maximum(POSITION_SIGMA_PX, 1.0 / snr)
    return sigma_px * det["pixel_scale_km"].to_numpy(float) / np.sqrt(cos_e)


def _detection_weights(snr: np.ndarray, pixel_scale_km: np.ndarray,
                       emission_deg: np.ndarray | None = None) -> np.ndarray:
    """Inverse variance of a detection's surface position (1/km^2), without pointing info.

    Centroid error ~ 1/SNR px (PSF sigma 0.7 px) and a registration floor of
    REGISTRATION_FLOOR_PX, in quadrature, times the pixel scale, stretched by
    foreshortening (1/sqrt(cos e) as a mean over the two directions).
    """
    s = np.maximum(np.where(np.isfinite(snr), snr, 0.0), 1e-3)
    sigma_px = np.hypot(1.0 / s, REGISTRATION_FLOOR_PX)
    stretch = 1.0
    if emission_deg is not None:
        cos_e = np.cos(np.radians(np.clip(np.nan_to_num(emission_deg, nan=89.0), 0, 89.0)))
        stretch = 1.0 / np.sqrt(cos_e)
    return 1.0 / (sigma_px * pixel_scale_km * stretch) ** 2


def _greedy_labels(
    xyz: np.ndarray,
    pixel_scale_km: np.ndarray,
    snr: np.ndarray,
    weight: np.ndarray,
    *,
    tol_px: float,
    min_tol_km: float,
) -> np.ndarray:
    """Cluster labels (0.., in seed order) for one perijove's detections.

    The most precise detections (largest inverse-variance ``weight``: high SNR
    at fine pixel scale) seed clusters first, so two sources resolved in the
    best frames stay two even where coarser frames blend them; a detection
    joins the nearest cluster within ``tol_px`` of its *own* pixel scale.
    """
    n = len(xyz)
    order = np.lexsort((np.arange(n), -np.where(np.isfinite(weight), weight, -np.inf)))
    # compiled (stop 24): the same labels as the loop it replaced (iovolc.greedy)
    return greedy.greedy_labels(xyz, pixel_scale_km, weight, order, tol_px=tol_px,
                                min_tol_km=min_tol_km, radius_km=IO_RADIUS_KM)


#: calibration floor of a band power's relative error (absolute radiometry)
POWER_CAL_REL_ERR = 0.05


def _empty(columns) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def merge_detections(
    det: pd.DataFrame, *, tol_px: float = 2.5, min_tol_km: float = 8.0
) -> pd.DataFrame:
    """Group the detections of each source within each perijove into clusters.

    Across frames **and** bands: detections are visited by descending SNR; a
    detection joins the nearest existing cluster whose centre is within
    ``max(tol_px * detection pixel scale, min_tol_km)`` km, else it seeds a new
    cluster. The cluster centre is the
    mean of the detections' unit vectors weighted by ``snr / pixel_scale_km^2``
    (so the 0/360 longitude wrap needs no special case).

    Returns one row per cluster with :data:`CLUSTER_COLUMNS`:

    * ``position_uncertainty_km``: max of the formal error of the weighted
      mean (each detection ``POSITION_SIGMA_PX * pixel_scale_km``) and the
      weighted rms scatter of the members / sqrt(n);
    * ``power_gw_per_um`` (M) / ``power_gw_per_um_l`` (L): median over the
      band's unsaturated detections; if all are saturated, over those and
      ``m_saturated_only`` / ``l_saturated_only`` is True; NaN if none;
    * ``flags``: SATURATED if any detection is; LOW_CONFIDENCE if
      ``n_frames == 1`` or ``max_snr < CONFIDENT_SNR``; HIGH_EMISSION if every
      emission angle > ``HIGH_EMISSION_DEG``; NEAR_LIMB, UNREGISTERED,
      FRAME_EDGE if every detection has it; POWER_LOWER_LIMIT if the power the
      area is based on (M, else L) is saturated-only;
    * ``first_utc`` / ``last_utc`` (and ``first_et`` / ``last_et``), the
      earliest / latest detection; ``pixel_scale_km`` the best (smallest);
    * ``position_weight``: sum of the member weights (for later averaging);
    * ``detection_indices``: list of the members' ``det`` index labels.

    ``cluster_id`` numbers clusters 0.. by perijove, then seed order.
    """
    _require(det, DETECTION_COLUMNS, "detection table")
    if not (tol_px > 0 and min_tol_km >= 0):
        raise ValueError("tol_px must be > 0 and min_tol_km >= 0")
    if det.empty:
        return _empty(CLUSTER_COLUMNS)
    lat = det["lat_deg"].to_numpy(dtype=float)
    lon = det["lon_west_deg"].to_numpy(dtype=float)
    scale = det["pixel_scale_km"].to_numpy(dtype=float)
    if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
        raise ValueError("detection table: lat_deg / lon_west_deg must be finite")
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError("detection table: pixel_scale_km must be finite and > 0")
    bands = det["band"].astype(str).to_numpy()
    unknown = set(bands) - set(jiram.DLAMBDA_UM)
    if unknown:
        raise ValueError(f"detection table: unknown bands {sorted(unknown)}")

    xyz = _unit_xyz(lat, lon)
    snr = det["snr"].to_numpy(dtype=float)
    emission = det["emission_deg"].to_numpy(dtype=float)
    sigma_km = _detection_sigma_km(det)
    weight = 1.0 / sigma_km**2
    flags = det["flags"].to_numpy(dtype=np.int64)
    # saturated or beyond the linear range: the measured radiance is a lower bound
    saturated = (flags & int(Flag.SATURATED | Flag.NONLINEAR)) != 0
    power = det["power_gw_per_um"].to_numpy(dtype=float)
    peak = det["peak_radiance_w_m2_sr"].to_numpy(dtype=float)
    et = det["et_mid"].to_numpy(dtype=float)
    utc = det["utc"].astype(str).to_numpy()
    product = det["product_id"].astype(str).to_numpy()
    pj_all = det["perijove"].to_numpy(dtype=np.int64)
    index = det.index.to_numpy()

    # every cluster at once (stop 33: this was one loop of numpy calls per cluster;
    # tests/test_merge_exact.py checks the table is the loop's, bit for bit)
    cid = np.empty(len(det), dtype=np.int64)  # cluster ids: 0.. by perijove, then seed order
    n_cl = 0
    for pj in np.unique(pj_all):
        sel = np.flatnonzero(pj_all == pj)
        labels = _greedy_labels(
            xyz[sel], scale[sel], snr[sel], weight[sel], tol_px=tol_px, min_tol_km=min_tol_km
        )
        cid[sel] = labels + n_cl
        n_cl += int(labels.max()) + 1
    # each cluster's members together, chronological (et, then row: the loop's
    # lexsort((m, et[m])) of the cluster's rows)
    o = np.lexsort((np.arange(len(det)), et, cid))
    c = cid[o]
    counts = np.bincount(c, minlength=n_cl)
    starts = segments.group_starts(counts)
    ends = starts + counts
    xyz_o, w_o, sig_o = xyz[o], weight[o], sigma_km[o]
    # sums stay numpy's own per cluster (pairwise sums: reduceat rounds differently)
    centres = np.empty((n_cl, 3))
    unc = np.empty(n_cl)
    pos_weight = np.empty(n_cl)
    for k, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        centres[k] = _weighted_centre(xyz_o[a:b], w_o[a:b])
        unc[k] = _position_uncertainty_km(xyz_o[a:b], w_o[a:b], centres[k], sig_o[a:b])
        pos_weight[k] = np.sum(w_o[a:b])
    c_lat, c_lon = _latlon(np.ascontiguousarray(centres.T).T)

    band_o, snr_o, flags_o, et_o = bands[o], snr[o], flags[o], et[o]
    is_m, is_l = band_o == "M", band_o == "L"
    p_m, m_sat_only = _band_powers(power[o], saturated[o], is_m, c, n_cl)
    p_l, l_sat_only = _band_powers(power[o], saturated[o], is_l, c, n_cl)
    err_m = _band_rel_errs(power[o], snr_o, is_m, c, n_cl)
    err_l = _band_rel_errs(power[o], snr_o, is_l, c, n_cl)
    # a missing product id is one value of its own, as in the loop's set() of them
    codes = pd.factorize(product[o], use_na_sentinel=False)[0].astype(np.int64)
    n_codes = int(codes.max()) + 1
    n_frames = np.bincount(np.unique(c * n_codes + codes) // n_codes, minlength=n_cl)
    max_snr = _finite_max(snr_o, starts)
    any_f = np.bitwise_or.reduceat(flags_o, starts)  # every cluster has a member
    all_f = np.bitwise_and.reduceat(flags_o, starts)
    f = np.zeros(n_cl, dtype=np.int64)
    for bit in (Flag.SATURATED, Flag.NONLINEAR):
        f |= any_f & int(bit)
    f[(n_frames == 1) | ~(max_snr >= CONFIDENT_SNR)] |= int(Flag.LOW_CONFIDENCE)
    f[np.logical_and.reduceat(emission[o] > HIGH_EMISSION_DEG, starts)] |= int(Flag.HIGH_EMISSION)
    for every in (Flag.NEAR_LIMB, Flag.UNREGISTERED, Flag.FRAME_EDGE,
                  Flag.POINTING_PASS, Flag.POINTING_CONSTELLATION):
        f |= all_f & int(every)
    has_m = np.logical_or.reduceat(is_m, starts)
    f[m_sat_only | (~has_m & l_sat_only)] |= int(Flag.POWER_LOWER_LIMIT)
    # np.argmin / np.argmax of the chronological members: the first NaN if any,
    # else the first member / the first one at the latest time
    nan_et = np.isnan(et_o)
    first_nan = segments.first_where(nan_et, starts)
    latest = np.fmax.reduceat(et_o, starts)
    i_first = o[np.where(first_nan < ends, first_nan, starts)]
    i_last = o[np.where(first_nan < ends, first_nan,
                        segments.first_where(et_o == latest[c], starts))]
    present = {b: np.logical_or.reduceat(band_o == b, starts) for b in sorted(set(bands))}
    band_sets = ["".join(b for b in present if present[b][k]) for k in range(n_cl)]
    members = index[o].tolist()  # the loop's _py of each label: numpy scalars -> Python
    if index.dtype == object:  # tolist() leaves an object array's numpy scalars as they are
        members = [_py(v) for v in members]
    out = pd.DataFrame({
        "cluster_id": np.arange(n_cl),
        "perijove": pj_all[o][starts],
        "lat_deg": c_lat,
        "lon_west_deg": c_lon,
        "position_uncertainty_km": unc,
        "n_detections": counts,
        "n_frames": n_frames,
        "bands": band_sets,
        "peak_radiance_w_m2_sr": _finite_max(peak[o], starts),
        "power_gw_per_um": p_m,
        "power_gw_per_um_l": p_l,
        "power_rel_err_m": err_m,
        "power_rel_err_l": err_l,
        "m_saturated_only": m_sat_only,
        "l_saturated_only": l_sat_only,
        "max_snr": max_snr,
        "min_emission_deg": np.minimum.reduceat(emission[o], starts),
        "pixel_scale_km": np.minimum.reduceat(scale[o], starts),
        "first_utc": utc[i_first].tolist(),  # lists: their dtype inferred as the loop's
        "last_utc": utc[i_last].tolist(),
        "first_et": et[i_first],
        "last_et": et[i_last],
        "position_weight": pos_weight,
        "flags": f,
        "detection_indices": [members[a:b] for a, b in zip(starts.tolist(), ends.tolist(),
                                                             strict=True)],
    }, columns=list(CLUSTER_COLUMNS))
    return out.astype(
        {"cluster_id": "int64", "perijove": "int64", "n_detections": "int64",
         "n_frames": "int64", "flags": "int64", "m_saturated_only": bool,
         "l_saturated_only": bool}
    )


def _finite_max(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each cluster's ``np.nanmax`` if it has a finite value, else NaN (rows by cluster)."""
    has = np.logical_or.reduceat(np.isfinite(values), starts)
    return np.where(has, np.fmax.reduceat(values, starts), np.nan)


def _band_powers(power: np.ndarray, saturated: np.ndarray, in_band: np.ndarray,
                 c: np.ndarray, n_cl: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, one band's power and whether it is saturated-only: the median of
    the band's finite unsaturated powers, else of its finite saturated ones (True);
    NaN (False) if the band has no finite power. Rows sorted by cluster ``c``."""
    keep = in_band & np.isfinite(power)
    n_unsat = np.bincount(c[keep & ~saturated], minlength=n_cl)
    n_keep = np.bincount(c[keep], minlength=n_cl)
    use = keep & (~saturated | (n_unsat[c] == 0))
    return segments.group_median(power[use], c[use], n_cl), (n_keep > 0) & (n_unsat == 0)


def _band_rel_errs(power: np.ndarray, snr: np.ndarray, in_band: np.ndarray,
                   c: np.ndarray, n_cl: int) -> np.ndarray:
    """Per cluster, the relative 1-sigma error of one band's median power: noise ~
    1/SNR, the scatter of the detections / sqrt(n), and a calibration floor
    (:data:`POWER_CAL_REL_ERR`); NaN if the band has no finite positive power.
    Rows sorted by cluster ``c``."""
    keep = in_band & np.isfinite(power) & (power > 0)
    p, s, ck = power[keep], snr[keep], c[keep]
    n = np.bincount(ck, minlength=n_cl)
    # np.nanmax of the SNRs (infinite ones too) where one is finite, else 1
    has_finite = np.bincount(ck[np.isfinite(s)], minlength=n_cl) > 0
    best = np.where(has_finite, segments.group_reduce(np.fmax, s, ck, n_cl, empty=np.nan), 1.0)
    noise = 1.0 / np.where(1.0 > best, 1.0, best)  # 1 / max(best, 1.0)
    med = segments.group_median(p, ck, n_cl)
    mad = segments.group_median(np.abs(p - med[ck]), ck, n_cl)
    with np.errstate(invalid="ignore", divide="ignore"):
        scatter = 1.4826 * mad / med / np.sqrt(n)
    out = np.full(n_cl, np.nan)
    # the last step as the loop's scalars: Python's and numpy's float ** (C's pow)
    for k in np.flatnonzero(n).tolist():
        sc = scatter[k] if n[k] > 1 else 0.0
        out[k] = float(np.sqrt(float(noise[k]) ** 2 + sc**2 + POWER_CAL_REL_ERR**2))
    return out


def _py(v):
    """numpy scalar -> Python scalar (for list cells)."""
    return v.item() if isinstance(v, np.generic) else v


# --- 2. cross-match ----------------------------------------------------------


def cross_match(
    clusters: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    tol_px: float = 3.0,
    min_tol_km: float = 25.0,
    max_tol_km: float = 150.0,
) -> pd.DataFrame:
    """Match clusters to reference sources (e.g. :func:`iovolc.reference.load_davies2024`).

    A cluster matches the nearest reference source within
    ``clip(tol_px * pixel_scale_km, min_tol_km, max_tol_km)`` km
    (``pixel_scale_km``: the cluster's best). A reference source matches at
    most one cluster per perijove: candidate pairs are accepted in order of
    increasing distance, so a conflict goes to the closer cluster and the
    other takes its next-nearest free source within tolerance, if any.

    Returns a copy of ``clusters`` with ``ref_id``, ``name`` (reference
    names; ``""`` if unmatched), ``match_distance_km`` (NaN if unmatched),
    ``ref_temperature_k`` (the reference ``temperature_k`` if it has that
    column, else NaN) and ``flags`` with NEW_SOURCE set exactly on unmatched
    clusters. ``reference`` needs ``ref_id``, ``name``, ``lat_deg``,
    ``lon_west_deg``.
    """
    _require(clusters, ("perijove", "lat_deg", "lon_west_deg", "pixel_scale_km", "flags"),
             "cluster table")
    _require(reference, ("ref_id", "name", "lat_deg", "lon_west_deg"), "reference table")
    if not (0 <= min_tol_km <= max_tol_km):
        raise ValueError("need 0 <= min_tol_km <= max_tol_km")
    out = clusters.copy()
    n = len(out)
    ref_id = np.full(n, "", dtype=object)
    name = np.full(n, "", dtype=object)
    dist = np.full(n, np.nan)
    ref_t = np.full(n, np.nan)
    if n and len(reference):
        c_xyz = _unit_xyz(out["lat_deg"].to_numpy(float), out["lon_west_deg"].to_numpy(float))
        r_xyz = _unit_xyz(reference["lat_deg"].to_numpy(float),
                          reference["lon_west_deg"].to_numpy(float))
        tol = np.clip(tol_px * out["pixel_scale_km"].to_numpy(float), min_tol_km, max_tol_km)
        pj = out["perijove"].to_numpy(np.int64)
        r_ids = reference["ref_id"].astype(str).to_numpy()
        r_names = reference["name"].fillna("").astype(str).to_numpy()
        r_temp = (reference["temperature_k"].to_numpy(float) if "temperature_k" in reference
                  else np.full(len(reference), np.nan))
        for p in np.unique(pj):  # one perijove at a time: bounded memory, own conflicts
            rows = np.flatnonzero(pj == p)
            d = _angle_km(c_xyz[rows, np.newaxis, :], r_xyz[np.newaxis, :, :])
            ci, rj = np.nonzero(d <= tol[rows, np.newaxis])
            taken: set[int] = set()
            done: set[int] = set()
            for k in np.lexsort((rj, ci, d[ci, rj])):
                i, j = int(ci[k]), int(rj[k])
                if i in done or j in taken:
                    continue
                done.add(i)
                taken.add(j)
                r = rows[i]
                ref_id[r], name[r], dist[r], ref_t[r] = r_ids[j], r_names[j], d[i, j], r_temp[j]
    out["ref_id"] = ref_id
    out["name"] = name
    out["match_distance_km"] = dist
    out["ref_temperature_k"] = ref_t
    f = out["flags"].to_numpy(np.int64) & ~np.int64(Flag.NEW_SOURCE)
    out["flags"] = np.where(ref_id == "", f | np.int64(Flag.NEW_SOURCE), f).astype(np.int64)
    return out


# --- 3. temperature and power ------------------------------------------------


#: plausible colour temperatures of Io's hotspots (K), for the power interval of rows
#: whose temperature is not measured. Davies et al. (2024) Table A1 JIRAM-derived
#: temperatures span 286-1035 K; basaltic lava erupts at ~1450 K and a source
#: cooler than ~250 K is too faint at 4.8 um for JIRAM. docs/decisions.md.
PLAUSIBLE_TEMPERATURE_K = (250.0, 1500.0)
#: the power interval is a ~90 % interval: +-1.645 sigma of the measured band powers
INTERVAL_Z = 1.645
_T_GRID_K = np.geomspace(150.0, 2000.0, 2001)


def _total_per_spectral(band: str, t_k) -> np.ndarray:
    """Total power per unit spectral power in ``band`` (GW per GW/um) at temperature(s)."""
    t = np.asarray(t_k, dtype=float)
    return np.asarray(physics.total_power_gw(temperature_k=t, area_km2=1.0), float) / \
        np.asarray(physics.spectral_power_gw_per_um(band, temperature_k=t, area_km2=1.0), float)


def _range_factor(band: str, t_lo, t_hi) -> tuple[np.ndarray, np.ndarray]:
    """min and max of :func:`_total_per_spectral` over [t_lo, t_hi] (per row)."""
    k = _total_per_spectral(band, _T_GRID_K)
    lo, hi = np.asarray(t_lo, float), np.asarray(t_hi, float)
    inside = (_T_GRID_K[None, :] >= lo[:, None]) & (_T_GRID_K[None, :] <= hi[:, None])
    kk = np.where(inside, k[None, :], np.nan)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmin(kk, axis=1), np.nanmax(kk, axis=1)


def derive_power(
    clusters: pd.DataFrame, *, default_temperature_k: float = DEFAULT_TEMPERATURE_K,
    plausible_temperature_k: tuple[float, float] = PLAUSIBLE_TEMPERATURE_K,
) -> pd.DataFrame:
    """Temperature, emitting area and total power of each cluster, with intervals.

    Temperature, in order of preference:

    1. **L/M ratio** (T_FROM_LM) when both bands have a spectral power and
       neither is saturated-only: ``r = (P_L * DLAMBDA_L) / (P_M * DLAMBDA_M)``
       (the band-radiance ratio; geometry cancels) ->
       :func:`iovolc.physics.temperature_from_lm_ratio` (NaN outside
       150-2000 K, then fall through); its interval from the ratio's error;
    2. the matched reference source's temperature, column ``ref_temperature_k``,
       if it lies in the plausible colour-temperature range (T_FROM_REFERENCE);
    3. ``default_temperature_k`` (T_ASSUMED; see :data:`DEFAULT_TEMPERATURE_K`).

    For 2 and 3 the temperature is not measured: its interval is the
    plausible range (:data:`PLAUSIBLE_TEMPERATURE_K`). Then ``area_km2 = P_M /
    spectral_power_gw_per_um('M', T, 1 km2)`` (L band if the cluster has no M
    detection), ``power_gw = sigma T^4 area``, and ``power_gw_lo``/``_hi`` the
    range of ``sigma T^4 area`` over the temperature interval with the band
    power at +-1.645 sigma (~90 %); ``power_gw_hi`` is infinite for a lower
    limit (POWER_LOWER_LIMIT). Returns a copy with these columns and the T_* flags.
    """
    _require(clusters, ("power_gw_per_um", "power_gw_per_um_l", "flags"), "cluster table")
    out = clusters.copy()
    n = len(out)
    p_m = out["power_gw_per_um"].to_numpy(float)
    p_l = out["power_gw_per_um_l"].to_numpy(float)
    m_sat = (out["m_saturated_only"].to_numpy(bool) if "m_saturated_only" in out
             else np.zeros(n, bool))
    l_sat = (out["l_saturated_only"].to_numpy(bool) if "l_saturated_only" in out
             else np.zeros(n, bool))
    err_m = (out["power_rel_err_m"].to_numpy(float) if "power_rel_err_m" in out
             else np.full(n, POWER_CAL_REL_ERR))
    err_l = (out["power_rel_err_l"].to_numpy(float) if "power_rel_err_l" in out
             else np.full(n, POWER_CAL_REL_ERR))
    lm_ok = (np.isfinite(p_m) & np.isfinite(p_l) & (p_m > 0) & (p_l > 0) & ~m_sat & ~l_sat)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (p_l * jiram.DLAMBDA_UM["L"]) / (p_m * jiram.DLAMBDA_UM["M"])
    t_lm = np.asarray(physics.temperature_from_lm_ratio(np.where(lm_ok, ratio, np.nan)),
                      float).reshape(n)
    use_lm = np.isfinite(t_lm)
    t_ref = (out["ref_temperature_k"].to_numpy(float) if "ref_temperature_k" in out
             else np.full(n, np.nan))
    # a reference temperature is used only if it is a plausible colour temperature:
    # Davies' Galileo-era whole-patera temperatures (75-200 K) are a different quantity
    t_min, t_max = plausible_temperature_k
    use_ref = ~use_lm & np.isfinite(t_ref) & (t_ref >= t_min) & (t_ref <= t_max)
    temperature = np.where(use_lm, t_lm, np.where(use_ref, t_ref, default_temperature_k))
    flags = out["flags"].to_numpy(np.int64) & ~np.int64(_T_FLAGS)
    flags = np.where(use_lm, flags | np.int64(Flag.T_FROM_LM), flags)
    flags = np.where(use_ref, flags | np.int64(Flag.T_FROM_REFERENCE), flags)
    flags = np.where(~use_lm & ~use_ref, flags | np.int64(Flag.T_ASSUMED), flags)
    # temperature interval: from the ratio's error, else the plausible range
    rel_ratio = np.hypot(np.nan_to_num(err_m, nan=1.0), np.nan_to_num(err_l, nan=1.0))
    with np.errstate(invalid="ignore", over="ignore"):
        t_lo_lm = np.asarray(physics.temperature_from_lm_ratio(
            ratio * np.exp(-INTERVAL_Z * rel_ratio)), float).reshape(n)
        t_hi_lm = np.asarray(physics.temperature_from_lm_ratio(
            ratio * np.exp(INTERVAL_Z * rel_ratio)), float).reshape(n)
    t_lo = np.where(use_lm, np.where(np.isfinite(t_lo_lm), t_lo_lm, t_min), t_min)
    t_hi = np.where(use_lm, np.where(np.isfinite(t_hi_lm), t_hi_lm, t_max), t_max)
    t_lo, t_hi = np.minimum(t_lo, temperature), np.maximum(t_hi, temperature)
    use_m = np.isfinite(p_m)
    per_km2_m = np.asarray(physics.spectral_power_gw_per_um("M", temperature_k=temperature,
                                                            area_km2=1.0), float)
    per_km2_l = np.asarray(physics.spectral_power_gw_per_um("L", temperature_k=temperature,
                                                            area_km2=1.0), float)
    with np.errstate(divide="ignore", invalid="ignore"):
        area = np.where(use_m, p_m / per_km2_m, p_l / per_km2_l)
    area = np.where(np.isfinite(area), area, np.nan)
    power = np.asarray(physics.total_power_gw(temperature_k=temperature, area_km2=area), float)
    k_lo_m, k_hi_m = _range_factor("M", t_lo, t_hi)
    k_lo_l, k_hi_l = _range_factor("L", t_lo, t_hi)
    p_band = np.where(use_m, p_m, p_l)
    rel = np.nan_to_num(np.where(use_m, err_m, err_l), nan=POWER_CAL_REL_ERR)
    lower_limit = (flags & int(Flag.POWER_LOWER_LIMIT)) != 0
    p_lo = p_band * np.clip(1.0 - INTERVAL_Z * rel, 0.05, None) * np.where(use_m, k_lo_m, k_lo_l)
    p_hi = np.where(lower_limit, np.inf,
                    p_band * (1.0 + INTERVAL_Z * rel) * np.where(use_m, k_hi_m, k_hi_l))
    out["temperature_k"] = temperature.astype(float)
    out["temperature_k_lo"] = t_lo.astype(float)
    out["temperature_k_hi"] = t_hi.astype(float)
    out["area_km2"] = area.astype(float)
    out["power_gw"] = power
    out["power_gw_lo"] = np.minimum(p_lo, power)
    out["power_gw_hi"] = np.maximum(p_hi, power)
    out["flags"] = flags.astype(np.int64)
    return out


# --- 4. link perijoves -------------------------------------------------------


def _link_tol(scale_a: ArrayLike, scale_b: ArrayLike, tol_px, min_tol_km, max_tol_km):
    s = np.maximum(np.nan_to_num(np.asarray(scale_a, float)),
                   np.nan_to_num(np.asarray(scale_b, float)))
    return np.clip(tol_px * s, min_tol_km, max_tol_km)


def _group_new(
    new: pd.DataFrame, *, tol_px: float, min_tol_km: float, max_tol_km: float
) -> np.ndarray:
    """Group unmatched clusters of different perijoves by position (labels 0..).

    Visited chronologically (first_et, lat, lon); a cluster joins the nearest
    group within tolerance that has no cluster of its perijove yet.
    """
    n = len(new)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    xyz = _unit_xyz(new["lat_deg"].to_numpy(float), new["lon_west_deg"].to_numpy(float))
    w = new["position_weight"].to_numpy(float)
    scale = new["pixel_scale_km"].to_numpy(float)
    pj = new["perijove"].to_numpy(np.int64)
    order = np.lexsort((new["lon_west_deg"].to_numpy(float), new["lat_deg"].to_numpy(float),
                        new["first_et"].to_numpy(float)))
    csum = np.zeros((n, 3))
    cscale = np.zeros(n)
    cpj: list[set[int]] = []
    for i in order:
        k = len(cpj)
        if k:
            centres = csum[:k] / np.linalg.norm(csum[:k], axis=1, keepdims=True)
            d = _angle_km(centres, xyz[i][np.newaxis, :])
            tol = _link_tol(scale[i], cscale[:k], tol_px, min_tol_km, max_tol_km)
            free = np.array([pj[i] not in s for s in cpj])
            d = np.where((d <= tol) & free, d, np.inf)
            j = int(np.argmin(d))
            if np.isfinite(d[j]):
                labels[i] = j
                csum[j] += w[i] * xyz[i]
                cscale[j] = min(cscale[j], scale[i])
                cpj[j].add(int(pj[i]))
                continue
        labels[i] = k
        csum[k] = w[i] * xyz[i]
        cscale[k] = scale[i]
        cpj.append({int(pj[i])})
    return labels


def _previous_new_sources(previous: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """Previous catalog's new-source registry: (one row per id, highest number)."""
    cols = ["hotspot_id", "number", "lat_deg", "lon_west_deg", "pixel_scale_km"]
    if previous is None or previous.empty:
        return pd.DataFrame(columns=cols), 0
    _require(previous, ("hotspot_id", "lat_deg", "lon_west_deg"), "previous catalog")
    ids = previous["hotspot_id"].astype(str)
    num = ids.str.extract(_NEW_ID_RE, expand=False)
    prev = previous.loc[num.notna()].copy()
    if prev.empty:
        return pd.DataFrame(columns=cols), 0
    prev["number"] = num[num.notna()].astype(np.int64)
    if "pixel_scale_km" not in prev:
        prev["pixel_scale_km"] = np.nan
    reg = prev.groupby("hotspot_id", sort=True).agg(
        number=("number", "first"), lat_deg=("lat_deg", "first"),
        lon_west_deg=("lon_west_deg", "first"), pixel_scale_km=("pixel_scale_km", "min"),
    ).reset_index()
    return reg[cols], int(reg["number"].max())


def link_perijoves(
    clusters: pd.DataFrame,
    *,
    previous: pd.DataFrame | None = None,
    tol_px: float = 3.0,
    min_tol_km: float = 25.0,
    max_tol_km: float = 150.0,
) -> pd.DataFrame:
    """Link per-perijove clusters into hotspots; return the published catalog.

    ``clusters`` is the output of :func:`derive_power` (after
    :func:`cross_match`). Linking:

    * clusters with the same ``ref_id`` are one hotspot, ``hotspot_id =
      "IVC-" + ref_id`` (e.g. ``IVC-JRM044``, ``IVC-Loki P.``);
    * unmatched clusters (``ref_id == ""``) are visited chronologically and
      join the nearest new-source group within
      ``clip(tol_px * max(pixel scales), min_tol_km, max_tol_km)`` km that has
      no cluster of their perijove yet, else start a new group.

    **Stable new-source ids (registry).** A position-derived id such as
    ``IVC-N+12.3045.6`` would change whenever a re-processing moves the
    weighted position, so new sources get registry numbers ``IVC-NEW-nnnn``:

    * with a ``previous`` catalog (any earlier catalog or hotspot table with
      ``hotspot_id``, ``lat_deg``, ``lon_west_deg`` and optionally
      ``pixel_scale_km``), each new-source group within tolerance of a
      previous ``IVC-NEW-`` hotspot keeps that id (one-to-one, closest pairs
      first);
    * the remaining groups get numbers after the highest number in
      ``previous`` (numbers are never reused, even of sources not seen
      again), assigned in order of first detection time (``first_seen_utc``),
      then latitude, then longitude; without ``previous`` numbering starts at
      ``IVC-NEW-0001``.

    A previous new source that now matches a reference source takes the
    ``IVC-<ref_id>`` id; its ``IVC-NEW-`` number is retired.

    Returns one row per hotspot per perijove with :data:`CATALOG_COLUMNS`,
    sorted by ``hotspot_id`` then ``perijove``. ``lat_deg`` /
    ``lon_west_deg`` / ``position_uncertainty_km`` are the hotspot's
    all-perijove values (clusters weighted by ``position_weight``);
    ``*_pj`` the perijove's own; ``first_seen_utc`` / ``last_seen_utc`` span
    all perijoves.
    """
    if clusters.empty:
        return _empty(CATALOG_COLUMNS).astype(_catalog_dtypes(CATALOG_COLUMNS))
    _require(clusters, ("perijove", "lat_deg", "lon_west_deg", "position_uncertainty_km",
                        "n_detections", "n_frames", "bands", "peak_radiance_w_m2_sr",
                        "power_gw_per_um", "power_gw_per_um_l", "min_emission_deg",
                        "pixel_scale_km", "first_utc", "last_utc", "first_et", "last_et",
                        "position_weight", "flags", "ref_id", "name", "match_distance_km",
                        "temperature_k", "area_km2", "power_gw"),
             "cluster table (run cross_match and derive_power first)")
    cl = clusters.reset_index(drop=True)
    ref = cl["ref_id"].fillna("").astype(str).to_numpy()
    from iovolc.publish.ids import plain_id

    key = np.array([plain_id(f"IVC-{r}") if r else "" for r in ref], dtype=object)

    is_new = ref == ""
    new = cl.loc[is_new]
    labels = _group_new(new, tol_px=tol_px, min_tol_km=min_tol_km, max_tol_km=max_tol_km)
    n_groups = int(labels.max()) + 1 if labels.size else 0
    group_ids = _assign_new_ids(new, labels, n_groups, previous,
                                tol_px=tol_px, min_tol_km=min_tol_km, max_tol_km=max_tol_km)
    key[np.flatnonzero(is_new)] = [group_ids[g] for g in labels]
    cl["hotspot_id"] = key

    return _normalise(_catalog_rows(cl), CATALOG_COLUMNS)


#: catalog columns taken from the hotspot's per-perijove cluster row as is
_CLUSTER_ROW_COLUMNS = (
    "perijove", "n_detections", "peak_radiance_w_m2_sr", "power_gw", "power_gw_per_um",
    "temperature_k", "flags", "power_gw_per_um_l", "area_km2", "pixel_scale_km",
    "min_emission_deg", "match_distance_km", "n_frames", "bands", "power_gw_lo",
    "power_gw_hi", "temperature_k_lo", "temperature_k_hi")


def _catalog_rows(cl: pd.DataFrame) -> pd.DataFrame:
    """One row per cluster of ``cl`` (with ``hotspot_id``): by hotspot, then perijove.

    The hotspot values (weighted position, its uncertainty, first/last seen,
    the first non-empty ref_id and name in ``cl`` order) are computed once per
    hotspot; the per-perijove values are taken column-wise (stop 30: the same
    table as the per-row dicts this replaced, tested against them).
    """
    lat = cl["lat_deg"].to_numpy(float)
    lon = cl["lon_west_deg"].to_numpy(float)
    w_all = cl["position_weight"].to_numpy(float)
    unc_all = cl["position_uncertainty_km"].to_numpy(float)
    first_et, last_et = cl["first_et"].to_numpy(float), cl["last_et"].to_numpy(float)
    first_utc, last_utc = cl["first_utc"].to_numpy(), cl["last_utc"].to_numpy()
    names, refs = cl["name"].astype(str).to_numpy(), cl["ref_id"].astype(str).to_numpy()
    pj = cl["perijove"].to_numpy()
    groups = cl.groupby("hotspot_id", sort=True).indices
    take, per_hotspot = [], []
    for hid in sorted(groups):  # groupby(sort=True)'s order
        ix = groups[hid]
        xyz = _unit_xyz(lat[ix], lon[ix])
        w = w_all[ix]
        centre = _weighted_centre(xyz, w)
        h_lat, h_lon = _latlon(centre)
        unc = _position_uncertainty_km(xyz, w, centre, unc_all[ix])
        named = [v for v in names[ix] if v]
        reffed = [v for v in refs[ix] if v]
        per_hotspot.append((hid, reffed[0] if reffed else "", named[0] if named else "",
                            float(h_lat), float(h_lon), unc,
                            first_utc[ix[np.argmin(first_et[ix])]],
                            last_utc[ix[np.argmax(last_et[ix])]]))
        # pandas' sort_values("perijove") on the group: numpy's default argsort
        take.append(ix[np.argsort(pj[ix], kind="quicksort")])
    counts = [len(t) for t in take]
    rows = np.concatenate(take)
    hot = list(zip(*per_hotspot, strict=True))

    def repeat(values) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=object), counts)

    out = {c: cl[c].to_numpy()[rows] for c in _CLUSTER_ROW_COLUMNS}
    for k, c in enumerate(("hotspot_id", "ref_id", "name", "lat_deg", "lon_west_deg",
                           "position_uncertainty_km", "first_seen_utc", "last_seen_utc")):
        out[c] = repeat(hot[k])
    out["lat_deg_pj"], out["lon_west_deg_pj"] = lat[rows], lon[rows]
    out["position_uncertainty_km_pj"] = unc_all[rows]
    names_of = {f: flag_names(f) for f in {int(f) for f in out["flags"]}}
    out["flag_names"] = np.array([names_of[int(f)] for f in out["flags"]], dtype=object)
    return pd.DataFrame({c: out[c] for c in CATALOG_COLUMNS})


def _assign_new_ids(
    new: pd.DataFrame,
    labels: np.ndarray,
    n_groups: int,
    previous: pd.DataFrame | None,
    *,
    tol_px: float,
    min_tol_km: float,
    max_tol_km: float,
) -> list[str]:
    if n_groups == 0:
        return []
    xyz = _unit_xyz(new["lat_deg"].to_numpy(float), new["lon_west_deg"].to_numpy(float))
    w = new["position_weight"].to_numpy(float)
    scale = new["pixel_scale_km"].to_numpy(float)
    first_et = new["first_et"].to_numpy(float)
    g_xyz = np.array([_weighted_centre(xyz[labels == g], w[labels == g])
                      for g in range(n_groups)])
    g_lat, g_lon = _latlon(g_xyz)
    g_scale = np.array([scale[labels == g].min() for g in range(n_groups)])
    g_first = np.array([first_et[labels == g].min() for g in range(n_groups)])

    ids: list[str | None] = [None] * n_groups
    reg, highest = _previous_new_sources(previous)
    if len(reg):
        p_xyz = _unit_xyz(reg["lat_deg"].to_numpy(float), reg["lon_west_deg"].to_numpy(float))
        d = _angle_km(g_xyz[:, np.newaxis, :], p_xyz[np.newaxis, :, :])
        tol = _link_tol(g_scale[:, np.newaxis], reg["pixel_scale_km"].to_numpy(float)[np.newaxis],
                        tol_px, min_tol_km, max_tol_km)
        gi, pk = np.nonzero(d <= tol)
        used: set[int] = set()
        for k in np.lexsort((pk, gi, d[gi, pk])):
            g, p = gi[k], pk[k]
            if ids[g] is None and p not in used:
                ids[g] = str(reg["hotspot_id"].iloc[p])
                used.add(int(p))
    todo = [g for g in range(n_groups) if ids[g] is None]
    todo.sort(key=lambda g: (g_first[g], g_lat[g], g_lon[g]))
    for k, g in enumerate(todo, start=highest + 1):
        ids[g] = f"{NEW_ID_PREFIX}{k:04d}"
    return [str(i) for i in ids]


# --- 5. summary, build -------------------------------------------------------


def summarise(catalog: pd.DataFrame) -> pd.DataFrame:
    """One row per hotspot (:data:`HOTSPOT_COLUMNS`) from a catalog (:func:`link_perijoves`).

    Power statistics skip NaN; lower-limit perijoves (POWER_LOWER_LIMIT) are
    included in them and counted in ``n_power_lower_limit``; ``flags`` is the
    OR over perijoves.
    """
    if catalog.empty:
        return _empty(HOTSPOT_COLUMNS).astype(_catalog_dtypes(HOTSPOT_COLUMNS))
    # per hotspot on numpy arrays in the order pandas' sort_values("perijove") gives
    # (stop 30: the same rows as the per-group pandas calls this replaced, tested)
    col = {c: catalog[c].to_numpy() for c in (
        "ref_id", "name", "lat_deg", "lon_west_deg", "position_uncertainty_km",
        "first_seen_utc", "last_seen_utc", "perijove")}
    p_all = catalog["power_gw"].to_numpy(float)
    pm_all = catalog["power_gw_per_um"].to_numpy(float)
    t_all = catalog["temperature_k"].to_numpy(float)
    flags_all = catalog["flags"].to_numpy(np.int64)
    ndet_all = catalog["n_detections"].to_numpy()
    scale_all = catalog["pixel_scale_km"].to_numpy(float)
    emission_all = catalog["min_emission_deg"].to_numpy(float)

    def skipna_min(x: np.ndarray) -> float:
        x = x[~np.isnan(x)]
        return float(x.min()) if x.size else np.nan

    groups = catalog.groupby("hotspot_id", sort=True).indices
    rows = []
    for hid in sorted(groups):
        ix = groups[hid]
        ix = ix[np.argsort(col["perijove"][ix], kind="quicksort")]
        i0 = ix[0]
        p = p_all[ix]
        finite = p[np.isfinite(p)]
        fl = flags_all[ix]
        f = int(np.bitwise_or.reduce(fl))
        pm = pm_all[ix]
        t = t_all[ix]
        pjs = np.unique(col["perijove"][ix])
        rows.append(
            {
                "hotspot_id": hid,
                "ref_id": col["ref_id"][i0],
                "name": col["name"][i0],
                "lat_deg": col["lat_deg"][i0],
                "lon_west_deg": col["lon_west_deg"][i0],
                "position_uncertainty_km": col["position_uncertainty_km"][i0],
                "n_perijoves": len(pjs),
                "perijoves": ",".join(str(v) for v in pjs),
                "n_detections": int(ndet_all[ix].sum()),
                "mean_power_gw": float(finite.mean()) if finite.size else np.nan,
                "std_power_gw": float(finite.std(ddof=1)) if finite.size > 1 else np.nan,
                "min_power_gw": float(finite.min()) if finite.size else np.nan,
                "max_power_gw": float(finite.max()) if finite.size else np.nan,
                "mean_power_gw_per_um": float(np.mean(pm[np.isfinite(pm)]))
                if np.any(np.isfinite(pm)) else np.nan,
                "median_temperature_k": float(np.median(t[np.isfinite(t)]))
                if np.any(np.isfinite(t)) else np.nan,
                "n_power_lower_limit": int(np.count_nonzero(fl & Flag.POWER_LOWER_LIMIT)),
                "pixel_scale_km": skipna_min(scale_all[ix]),
                "min_emission_deg": skipna_min(emission_all[ix]),
                "first_seen_utc": col["first_seen_utc"][i0],
                "last_seen_utc": col["last_seen_utc"][i0],
                "flags": f,
                "flag_names": flag_names(f),
            }
        )
    return _normalise(pd.DataFrame(rows, columns=list(HOTSPOT_COLUMNS)), HOTSPOT_COLUMNS)


@dataclass(frozen=True, eq=False)
class CatalogResult:
    """A built catalog: per-perijove rows and the per-hotspot summary."""

    #: one row per hotspot per perijove (:data:`CATALOG_COLUMNS`)
    catalog: pd.DataFrame
    #: one row per hotspot (:data:`HOTSPOT_COLUMNS`)
    hotspots: pd.DataFrame


#: detections steeper than this are kept in the detection table but not
#: catalogued (published maps use emission <= 75 deg: foreshortening makes
#: positions and powers unreliable near the limb)
CATALOG_MAX_EMISSION_DEG = 75.0


def usable_detections(det: pd.DataFrame, *,
                      max_emission_deg: float = CATALOG_MAX_EMISSION_DEG) -> pd.DataFrame:
    """Detections that may enter the catalog.

    Excluded: frames with no pointing solution (positions can be off by up to
    ~10 deg), sources cut by the frame edge (biased centre and flux),
    single-frame transients (radiation hits) and emission angles above
    ``max_emission_deg``.
    The excluded rows stay in the published detection table, flagged.
    """
    if det.empty:
        return det
    flags = det["flags"].astype("int64")
    keep = (((flags & int(Flag.UNREGISTERED | Flag.FRAME_EDGE | Flag.TRANSIENT)) == 0)
            & (det["emission_deg"] <= max_emission_deg))
    return det[keep]


def build_catalog(
    det: pd.DataFrame,
    *,
    reference: pd.DataFrame | None = None,
    previous: pd.DataFrame | None = None,
) -> CatalogResult:
    """Detection table -> catalog: merge, cross-match, derive power, link, summarise.

    ``reference`` defaults to Davies et al. (2024) Table A1
    (:func:`iovolc.reference.load_davies2024`); ``previous`` is an earlier
    catalog whose ``IVC-NEW-`` ids are kept (see :func:`link_perijoves`).
    Default tolerances of each step are used.
    """
    if reference is None:
        from iovolc.reference import load_davies2024

        reference = load_davies2024()
    clusters = merge_detections(usable_detections(det))
    clusters = cross_match(clusters, reference)
    clusters = derive_power(clusters)
    catalog = link_perijoves(clusters, previous=previous)
    return CatalogResult(catalog=catalog, hotspots=summarise(catalog))


# --- files -------------------------------------------------------------------


def _catalog_dtypes(spec: dict) -> dict[str, str]:
    return {c: ("object" if c in _STR_COLUMNS else "int64" if c in _INT_COLUMNS else "float64")
            for c in spec}


def _normalise(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Columns in ``spec`` order with canonical dtypes: str (''), int64, float64."""
    _require(df, spec, "catalog table")
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for c in spec:
        v = df[c].reset_index(drop=True)
        if c in _STR_COLUMNS:
            out[c] = pd.Series(
                ["" if (x is None or (isinstance(x, float) and np.isnan(x)) or x is np.ma.masked)
                 else str(x) for x in v], dtype=object)
        elif c in _INT_COLUMNS:
            out[c] = v.astype(np.int64)
        else:
            out[c] = v.astype(np.float64)
    return out


def _meta(version: str, spec: dict) -> dict:
    return {
        "name": "iovolc Io volcanic hotspot catalog",
        "version": version,
        "reference": "Davies et al. (2024), PSJ 5:121, doi:10.3847/PSJ/ad4346, Table A1",
        "conventions": "latitude planetocentric deg N; longitude West in [0, 360)",
        "power_method": (
            "T from the L/M band-radiance ratio (T_FROM_LM), else the matched Davies 2024 "
            f"temperature (T_FROM_REFERENCE), else {DEFAULT_TEMPERATURE_K:g} K assumed "
            "(T_ASSUMED); area = M-band spectral power / blackbody at T; power = sigma T^4 area"
        ),
        "flags": {k: {"value": v, "description": d} for k, (v, d) in flag_descriptions().items()},
        "columns": {c: {"unit": u or "", "description": d} for c, (u, d) in spec.items()},
    }


def _write_parquet(df: pd.DataFrame, path: Path, spec: dict, version: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    fields = []
    for field in table.schema:
        unit, desc = spec[field.name]
        fields.append(field.with_metadata({"unit": unit or "", "description": desc}))
    meta = dict(table.schema.metadata or {})
    meta[b"iovolc"] = json.dumps(_meta(version, spec)).encode()
    table = table.cast(pa.schema(fields, metadata=meta))
    pq.write_table(table, path)


def _write_ecsv(df: pd.DataFrame, path: Path, spec: dict, version: str) -> None:
    from astropy.table import Column, Table

    meta = _meta(version, spec)
    del meta["columns"]  # units and descriptions are per column in the header
    cols = []
    for c, (unit, desc) in spec.items():
        data = df[c].to_numpy()
        if c in _STR_COLUMNS:
            data = np.array([str(x) for x in data], dtype=str) if len(data) else np.array([], str)
        cols.append(Column(data, name=c, unit=unit, description=desc))
    Table(cols, meta=meta).write(path, format="ascii.ecsv", overwrite=True)


def write_catalog(result: CatalogResult, out_dir: Path, *, version: str) -> list[Path]:
    """Write ``catalog.parquet``, ``catalog.ecsv``, ``hotspots.parquet``, ``hotspots.csv``.

    Parquet files carry per-field ``unit`` / ``description`` metadata and an
    ``iovolc`` schema-metadata JSON (version, flags, method, columns); the
    ECSV carries a unit and description per column and the same table
    metadata (readable with ``astropy.table.Table.read``). Returns the paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cat = _normalise(result.catalog, CATALOG_COLUMNS)
    hot = _normalise(result.hotspots, HOTSPOT_COLUMNS)
    paths = [out_dir / n for n in ("catalog.parquet", "catalog.ecsv", "hotspots.parquet",
                                   "hotspots.csv")]
    _write_parquet(cat, paths[0], CATALOG_COLUMNS, version)
    _write_ecsv(cat, paths[1], CATALOG_COLUMNS, version)
    _write_parquet(hot, paths[2], HOTSPOT_COLUMNS, version)
    hot.to_csv(paths[3], index=False)
    return paths


def read_catalog(path: Path | str) -> pd.DataFrame:
    """Read a catalog or hotspot table written by :func:`write_catalog`.

    ``path``: a ``.parquet``, ``.ecsv`` or ``.csv`` file, or a directory
    (reads its ``catalog.parquet``). Columns and dtypes are normalised to
    :data:`CATALOG_COLUMNS` (or :data:`HOTSPOT_COLUMNS` for a hotspot table):
    strings (``''`` for missing), int64, float64.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "catalog.parquet"
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix == ".ecsv":
        from astropy.table import Table

        t = Table.read(path, format="ascii.ecsv")
        df = pd.DataFrame({c: (t[c].filled("") if hasattr(t[c], "filled") and t[c].dtype.kind
                               in "US" else np.asarray(t[c])) for c in t.colnames})
    elif suffix == ".csv":
        df = pd.read_csv(path, keep_default_na=False, na_values={
            c: ["", "nan", "NaN"] for c in set(CATALOG_COLUMNS) | set(HOTSPOT_COLUMNS)
            if c not in _STR_COLUMNS})
    else:
        raise ValueError(f"unknown catalog file type {path.suffix!r} (parquet, ecsv, csv)")
    spec = CATALOG_COLUMNS if "perijove" in df.columns else HOTSPOT_COLUMNS
    return _normalise(df, spec)
