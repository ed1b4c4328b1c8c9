"""A frame's detection records and table (:func:`iovolc.extract.extract_frame`'s output).

Split from :mod:`iovolc.extract` at stop 29: the columns, the flags of each source
and its position uncertainty, and the table's one construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from iovolc import jiram
from iovolc.flags import Flag

DETECTION_COLUMNS = [
    "band", "line", "sample", "lat_deg", "lon_west_deg", "emission_deg", "incidence_deg",
    "range_km", "pixel_scale_km", "peak_radiance_w_m2_sr", "radiance_sum_w_m2_sr",
    "power_gw_per_um", "snr", "n_pixels", "flags", "raw_peak_dn", "pointing_method",
    "pointing_sigma_px", "position_sigma_km",
]


def detection_rows(idx: np.ndarray, *, band: str, sl: slice, shape: tuple[int, int], src,
                   geom, near_limb: np.ndarray, power: np.ndarray, pointing_method: str,
                   pointing_sigma_px: float, config) -> list[dict]:
    """One band's detection records (DETECTION_COLUMNS) for sources ``idx``: ``src``, the
    band's sources (``extract._Sources``), ``geom`` the geometry at their centres,
    ``config`` the :class:`iovolc.extract.ExtractionConfig`; ``sl`` the band's rows.

    The flags and the position uncertainty are taken for every source at once (stop 29:
    they were numpy scalar calls, ~15 us a detection): the same comparisons, and the
    same ufuncs on the same float64 values (a ufunc's loop gives an element the same
    bits whether it is alone or in an array; ``max(x, c)`` of the loop and
    ``np.maximum(x, c)`` pick the same value, NaN included)."""
    if not idx.size:
        return []
    cen, sat = src.cen[idx], np.asarray(src.sat, dtype=bool)[idx]
    peak_dn = src.peak_dn[idx]
    emission = geom.emission_deg[idx]
    snr = np.asarray(src.snr[idx], dtype=float)
    c_r, c_s = cen[:, 0], cen[:, 1]
    flags = np.full(idx.size, int(_POINTING_FLAG.get(pointing_method, Flag(0))), np.int64)
    with np.errstate(invalid="ignore"):
        for flag, where in (
                (Flag.SATURATED, sat),
                (Flag.NONLINEAR, np.isfinite(peak_dn) & (peak_dn >= jiram.NONLINEAR_DN) & ~sat),
                (Flag.NEAR_LIMB, near_limb[idx]),
                (Flag.HIGH_EMISSION, emission > config.high_emission_deg),
                (Flag.LOW_CONFIDENCE, snr < config.confident_snr),
                (Flag.FRAME_EDGE, (c_r < 2) | (c_r > shape[0] - 3) | (c_s < 2)
                 | (c_s > shape[1] - 3) | np.asarray(src.cut, dtype=bool)[idx])):
            flags[where] |= int(flag)
    # centroid (~PSF sigma / SNR) and pointing, foreshortened
    sig_px = np.hypot(config.psf_sigma_px / np.maximum(snr, 1.0), pointing_sigma_px)
    stretch = 1.0 / np.sqrt(np.maximum(np.cos(np.radians(emission)), 0.05))
    position_sigma_km = sig_px * geom.pixel_scale_km[idx] * stretch
    out = []
    for i, k in enumerate(idx):
        out.append({
            "band": band, "line": float(cen[i, 0] + sl.start), "sample": float(cen[i, 1]),
            "lat_deg": float(geom.lat_deg[k]), "lon_west_deg": float(geom.lon_west_deg[k]),
            "emission_deg": float(emission[i]),
            "incidence_deg": float(geom.incidence_deg[k]),
            "range_km": float(geom.range_km[k]),
            "pixel_scale_km": float(geom.pixel_scale_km[k]),
            "peak_radiance_w_m2_sr": float(src.peak[k]),
            "radiance_sum_w_m2_sr": float(src.flux[k]),
            "power_gw_per_um": float(power[k]), "snr": float(snr[i]),
            "n_pixels": int(src.npix[k]), "flags": int(flags[i]),
            "raw_peak_dn": float(peak_dn[i]), "pointing_method": pointing_method,
            "pointing_sigma_px": float(pointing_sigma_px),
            "position_sigma_km": float(position_sigma_km[i]),
        })
    return out


def detection_table(rows: list[dict], leading: dict) -> pd.DataFrame:
    """The rows as a table of ``leading``'s columns then DETECTION_COLUMNS. With rows, the
    leading values go into each row's record, one construction (stop 27: the same
    table, dtypes included, as inserting each column after, at half the cost); with
    none, they are inserted, which types an empty column by its value."""
    if not rows or not leading:
        det = pd.DataFrame(rows, columns=DETECTION_COLUMNS)
        for i, (col, value) in enumerate(leading.items()):
            det.insert(i, col, value)
        return det
    return pd.DataFrame([{**leading, **row} for row in rows],
                        columns=[*leading, *DETECTION_COLUMNS])


_POINTING_FLAG = {"pass": Flag.POINTING_PASS, "constellation": Flag.POINTING_CONSTELLATION,
                  "none": Flag.UNREGISTERED}
