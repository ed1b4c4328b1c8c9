"""The numpy forms that compiled or vectorised science-chain pieces replaced (issue 11).

Kept verbatim as references for ``tests/test_speed_kernels.py`` (like
``_geometry_numpy.py`` for the ray tracing): the limb fit's Gauss-Newton step
and loop (``registration._lsq_step`` and ``_fine_fit``'s loop before they were
compiled into ``iovolc.compiled.fit_shift_spanned``; :func:`fit_shift`, the whole fit
in one call as it was before stop 27 took the zone's spans once per pass), the
background's sigma-clipped
local mean (``extract._clipped_local_mean``) and the constellation fit
(``pointing.fit_constellation``'s choice of shift) before their loops were
vectorised; the constellation fit's pair selection and ``placement._hotspot_fit_arrays``'
pairs and the reference hotspots (``placement._references``) in the pandas form they
had before they moved to arrays (stop 20); the median filter's partial sorts and
the compact-feature top-hat from shifted views, before stop 21 compiled them
(``bench/kernels_simd.py`` times them side by side); the shading's Minnaert
factors (``photometry_canvases``, on ``shading._lit_factors``) and the hot-pixel mask (``imaging.hot_pixels``)
before stop 22 took their inputs from compiled passes; the coarse grid's directions
(``registration._from_spin``) and the detection table with its inserted columns,
before stop 27; ``imaging.box_of`` by numpy's ``any`` along each axis, before
stop 28; the limb fit's normal equations summed through a row array, before stop 29,
and the k-th value in the order of the values' keys (what the radix selection finds);
the median by radix selection on all the values (:func:`median_radix`), before stop 35
bracketed the rank; the sliding median's walk one set bit at a time
(:func:`window_medians_stepwise`), before stop 38 counted its way there by popcount;
the source windows gathered from padded copies of the strip, and each detection's
record, flags and position uncertainty from numpy scalar calls, before stop 29.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros
from scipy import ndimage as ndi
from scipy.ndimage import binary_dilation, map_coordinates, spline_filter

from iovolc.compiled import _EPS, _PIVOT_FLOOR, _kth_and_next_scan, _kth_radix, _lstsq_svd


def _limb_models(strips: dict, canvases: dict, k: int, zones: dict) -> dict:
    """Per band with a predicted limb: the cubic-spline coefficients of canvas ``k``, the
    pixels within 3 px of the limb, and the strip's usable pixels (fixed during a fit).
    ``zones``: the last two per band, kept for the other exponents."""
    out = {}
    for band, (img, valid) in strips.items():
        stack, limb = canvases[band]
        if not limb.any():
            continue
        if band not in zones:
            zones[band] = (binary_dilation(limb, iterations=3), valid & np.isfinite(img))
        out[band] = (spline_filter(stack[k], order=3, mode="constant"), *zones[band])
    return out


def _lsq_step(strips: dict, models: dict, *, search_px: int, d_line: float, d_samp: float,
              zones: dict | None = None):
    """One Gauss-Newton step for the common pixel shift (amplitude, offset free per band).

    ``models``: :func:`_limb_models`; ``zones``: a cache of the fitted pixels per
    band and integer shift (they depend on nothing else). Returns ``(step, sigma,
    reduced chi2)``: the shift update, its formal 1-sigma error (pixels, from the
    residual scatter) and the fit's reduced chi-square, or None when nothing
    constrains it.
    """
    zones = {} if zones is None else zones
    jtj = np.zeros((2, 2))
    jtr = np.zeros(2)
    chi2, dof = 0.0, 0
    for band, (coeffs, limb_zone, usable) in models.items():
        img = strips[band][0]
        n_r, n_c = img.shape
        rows = np.arange(n_r) + search_px - d_line
        cols = np.arange(n_c) + search_px - d_samp
        ri = np.clip(np.round(rows).astype(int), 0, limb_zone.shape[0] - 1)
        ci = np.clip(np.round(cols).astype(int), 0, limb_zone.shape[1] - 1)
        r_out = (rows < 0) | (rows > limb_zone.shape[0] - 1)
        c_out = (cols < 0) | (cols > limb_zone.shape[1] - 1)
        key = (band, ri.tobytes(), ci.tobytes(), r_out.tobytes(), c_out.tobytes())
        if key not in zones:
            zone = limb_zone[ri[:, None], ci[None, :]] & usable
            zone[r_out, :] = False
            zone[:, c_out] = False
            pr, pc = np.nonzero(zone)
            zones[key] = (pr, pc, img[pr, pc].astype(float))
        pr, pc, data = zones[key]
        if pr.size < 20:
            continue
        rr, cc = rows[pr], cols[pc]
        # the model and its central differences (+-0.5 px) in one spline evaluation
        n = rr.size
        at = map_coordinates(coeffs, [np.concatenate([rr, rr + 0.5, rr - 0.5, rr, rr]),
                                      np.concatenate([cc, cc, cc, cc + 0.5, cc - 0.5])],
                             order=3, mode="constant", prefilter=False)
        m = at[:n]
        gl = at[n:2 * n] - at[2 * n:3 * n]
        gs = at[3 * n:4 * n] - at[4 * n:]
        grad = np.hypot(gl, gs)
        if grad.max() <= 0:
            continue
        v = grad > 0.02 * grad.max()
        # the disc's brightness (albedo) varies along the limb: the model's amplitude
        # varies linearly across the frame so it does not bias the edge. (Free
        # amplitudes per 16 px tile were tried: they let the fit slide along the limb.)
        ln = (rr - rr.mean()) / 128.0
        sn = (cc - cc.mean()) / 432.0
        basis = np.stack([m, m * ln, m * sn, np.ones_like(m)], axis=-1)
        for _ in range(3):  # robust: drop hotspots and spikes on the limb
            if v.sum() < 20 or np.std(m[v]) == 0:
                break
            coef, *_ = np.linalg.lstsq(basis[v], data[v], rcond=None)
            resid_all = data - basis @ coef
            scatter = 1.4826 * np.median(np.abs(resid_all[v]))
            keep = v & (np.abs(resid_all) < 4 * scatter + 1e-12)
            if keep.sum() == v.sum():
                break
            v = keep
        if v.sum() < 20 or np.std(m[v]) == 0:
            continue
        coef, *_ = np.linalg.lstsq(basis[v], data[v], rcond=None)
        amp = coef[0] + coef[1] * ln[v] + coef[2] * sn[v]
        if np.median(amp) <= 0:
            continue
        resid = data[v] - basis[v] @ coef
        # d(model)/d(d_line) = -amp * gl (shifting the scene down moves samples up)
        jac = -amp[:, None] * np.column_stack([gl[v], gs[v]])
        jtj += jac.T @ jac
        jtr += jac.T @ resid
        chi2 += float(resid @ resid)
        dof += int(v.sum()) - 2
    if dof <= 0 or np.linalg.det(jtj) <= 0:
        return None
    cov = np.linalg.inv(jtj) * chi2 / dof
    return np.linalg.solve(jtj, jtr), np.sqrt(np.diag(cov)), chi2 / dof


def fit_one_exponent(strips: dict, canvases: dict, k: int, *, search_px: int, start):
    """``_fine_fit``'s Gauss-Newton loop for exponent ``k`` as it was: (d_line, d_samp,
    sigma (2,), reduced chi2)."""
    zones: dict = {}
    d_line, d_samp = start
    sigma, red_chi2 = np.array([np.inf, np.inf]), np.inf
    models = _limb_models(strips, canvases, k, {})
    for _ in range(8):
        out = _lsq_step(strips, models, search_px=search_px, d_line=d_line, d_samp=d_samp,
                        zones=zones)
        if out is None:
            break
        step, sigma, red_chi2 = out
        d_line += float(np.clip(step[0], -1, 1))
        d_samp += float(np.clip(step[1], -1, 1))
        if np.hypot(*step) < 1e-3:
            break
    return d_line, d_samp, sigma, red_chi2


def _clipped_local_mean(img, weight, size, *, n_iter=3, clip=3.0):
    """Local mean of ``img`` over pixels with ``weight`` (sigma-clipped)."""
    w = weight.astype(float)
    mean = np.zeros_like(img)
    for _ in range(n_iter):
        num = ndi.uniform_filter(img * w, size, mode="nearest")
        den = ndi.uniform_filter(w, size, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(den > 1e-6, num / den, np.nan)
        dev = img - mean
        ad = np.abs(dev[w > 0])
        ad = ad[~np.isnan(ad)]  # np.nanmedian's median, without its copies
        scatter = 1.4826 * np.median(ad) if ad.size else (np.nan if (w > 0).any() else 0.0)
        new_w = weight & (np.abs(np.nan_to_num(dev)) < clip * scatter + 1e-12)
        if (new_w == (w > 0)).all():
            break
        w = new_w.astype(float)
    return mean


def best_shift(o: np.ndarray, tol: np.ndarray, det: np.ndarray) -> int:
    """``pointing.fit_constellation``'s choice of the best-supported shift as the loop
    over candidates it was (now ``pointing._best_shift``)."""
    best, best_score = None, -1.0
    for k in range(len(o)):
        d = np.hypot(*(o - o[k]).T)
        inl = d <= tol
        score = float(len(set(det[inl])))
        if score > best_score or (score == best_score and best is not None
                                  and np.linalg.norm(o[k]) < np.linalg.norm(o[best])):
            best, best_score = k, score
    return best


def fit_constellation_pandas(pairs: pd.DataFrame, best: int, *, min_matches: int = 2):
    """``pointing.fit_constellation`` after the choice of shift ``best``, as pandas did it:
    ``(d_line, d_sample, sigma, n_matched, n_candidates)`` or None."""
    from iovolc.pointing import CONSTELLATION_FLOOR_PX

    o = pairs[["d_line", "d_sample"]].to_numpy(float)
    tol = pairs["tol_px"].to_numpy(float)
    det = pairs["detection"].to_numpy()
    d = np.hypot(*(o - o[best]).T)
    inl = d <= tol
    sel = pd.DataFrame({"det": det, "d": d, "i": np.arange(len(d))})[inl]
    sel = sel.sort_values("d").drop_duplicates("det")
    idx = sel["i"].to_numpy()
    n_match = len(idx)
    if n_match < min_matches and not (n_match == 1 and len(pairs) == 1):
        return None
    w = 1.0 / tol[idx] ** 2
    shift = (o[idx] * w[:, None]).sum(axis=0) / w.sum()
    sigma = max(CONSTELLATION_FLOOR_PX, float(np.sqrt(1.0 / w.sum())))
    return float(shift[0]), float(shift[1]), sigma, n_match, len(pairs)


def hotspot_pairs_pandas(f, detections: pd.DataFrame, references: pd.DataFrame, state,
                         min_snr: float = 8.0) -> pd.DataFrame:
    """``placement._hotspot_fit_arrays``' candidate pairs as the pandas loop built them."""
    from iovolc import jiram
    from iovolc.geometry import surface_point

    d = detections[(detections["product_id"] == f["product_id"])
                   & (detections["snr"] >= min_snr)]
    pts = surface_point(references["lat_deg"], references["lon_west_deg"], state.radii_km)
    radius = max(12.0, 4.0 * float(f["pointing_sigma_px"]))
    pairs: dict[str, list] = {"detection": [], "reference": [], "d_line": [], "d_sample": [],
                              "tol_px": []}
    ref_sigma_km = references["sigma_km"].to_numpy()
    for band, sl in jiram.band_layout(tuple(f["bands"])).items():
        db = d[d["band"] == band]
        if db.empty:
            continue
        pl, ps, vis = state.project_points(pts, band)
        for di, line, sample, scale_km in zip(db.index, db["line"].to_numpy(),
                                              db["sample"].to_numpy(),
                                              db["pixel_scale_km"].to_numpy(), strict=True):
            dl = (line - sl.start) - pl
            dsm = sample - ps
            near = np.flatnonzero(vis & (np.hypot(dl, dsm) <= radius))
            pairs["detection"] += [di] * near.size
            pairs["reference"] += near.tolist()
            pairs["d_line"] += dl[near].tolist()
            pairs["d_sample"] += dsm[near].tolist()
            pairs["tol_px"] += (2.0 + 2.0 * ref_sigma_km[near] / scale_km).tolist()
    return pd.DataFrame(pairs)


def references_pandas(cl: pd.DataFrame, members: pd.DataFrame, *,
                      without: str | None = None) -> pd.DataFrame:
    """``placement._references`` with the DataFrame mask it had before stop 20."""
    from iovolc.catalog import _latlon
    from iovolc.placement import REFERENCE_SINGLE_SNR

    if cl.empty:
        return pd.DataFrame(columns=["lat_deg", "lon_west_deg", "sigma_km"])
    keep = np.ones(len(members), bool) if without is None else \
        (members["product_id"] != without).to_numpy()
    m = members[keep]
    n_all = np.bincount(members["cluster"], minlength=len(cl))
    c = m["cluster"].to_numpy()
    w = m["weight"].to_numpy()
    n = np.bincount(c, minlength=len(cl))
    best = np.zeros(len(cl))
    np.maximum.at(best, c, m["snr"].to_numpy())
    sums = np.stack([np.bincount(c, w * m[k].to_numpy(), minlength=len(cl))
                     for k in ("x", "y", "z")], axis=-1)
    ok = (n >= 2) | ((n == 1) & (best >= REFERENCE_SINGLE_SNR))
    lat, lon = _latlon(sums[ok])
    same = (n == n_all)[ok]
    sigma = cl["position_uncertainty_km"].to_numpy(float)[ok] * np.sqrt(
        n_all[ok] / np.maximum(n[ok], 1))
    lat = np.where(same, cl["lat_deg"].to_numpy(float)[ok], lat)
    lon = np.where(same, cl["lon_west_deg"].to_numpy(float)[ok], lon)
    return pd.DataFrame({"lat_deg": lat, "lon_west_deg": lon, "sigma_km": sigma})


def median_filter_partition(x: np.ndarray, size: int) -> np.ndarray:
    """``imaging.median_filter_nearest`` before stop 21 (odd ``size``, finite ``x``): the
    values' ranks (``imaging.edge_ranks``, unchanged), then a partial sort of each
    window's ranks, 8 rows at a time (what stop 21 replaced)."""
    from numpy.lib.stride_tricks import sliding_window_view

    from iovolc.imaging import edge_ranks

    h = size // 2
    flat, order, rank = edge_ranks(x, h)
    out = np.empty(x.shape, rank.dtype)
    k = size * size // 2
    n0, n1 = x.shape
    for r0 in range(0, n0, 8):
        r1 = min(r0 + 8, n0)
        win = sliding_window_view(rank[r0:r1 + 2 * h], (size, size))
        out[r0:r1] = np.partition(win.reshape(r1 - r0, n1, size * size), k, axis=-1)[..., k]
    return flat[order][out]


def line_extreme(x: np.ndarray, direction: tuple[int, int], length: int, op) -> np.ndarray:
    """``imaging.line_extreme`` before stop 21: running ``op`` (np.minimum /
    np.maximum) over a centred line of ``length`` pixels along ``direction``, edges
    extended by their nearest pixel, from shifted views of the padded image."""
    h = length // 2
    dl, ds = direction
    p = np.pad(x, h, mode="edge")
    n0, n1 = x.shape
    out = p[h:h + n0, h:h + n1].copy()
    for k in range(-h, h + 1):
        if k:
            op(out, p[h + k * dl:h + k * dl + n0, h + k * ds:h + k * ds + n1], out=out)
    return out


def line_opening(x: np.ndarray, direction: tuple[int, int], length: int) -> np.ndarray:
    """A grey opening with a line footprint (``imaging.line_opening`` before stop 21)."""
    return line_extreme(line_extreme(x, direction, length, np.minimum), direction, length,
                        np.maximum)


def compact_tophat_numpy(x: np.ndarray, length: int) -> np.ndarray:
    """``hot_pixels``' top-hat before stop 21: the minimum over the four directions of
    ``x - line_opening(x)`` (shifted numpy views)."""
    from iovolc.imaging import LINE_DIRECTIONS

    return np.min([x - line_opening(x, d, length) for d in LINE_DIRECTIONS], axis=0)


def photometry_numpy(on_disc, cos_i, cos_e, exponents) -> list[np.ndarray]:
    """``photometry_canvases`` before stop 22 (numpy's nan_to_num, clip and masks)."""
    mu0 = np.clip(np.nan_to_num(cos_i, nan=-1.0), 0, None)
    mu = np.clip(np.nan_to_num(cos_e, nan=0.0), 0.02, None)
    lit = on_disc & (mu0 > 0)  # elsewhere every model is 0
    m0, m = mu0[lit], mu[lit]
    out = []
    for k in exponents:
        c = np.zeros(np.shape(on_disc))
        c[lit] = 1.0 if k == 0 else (m0 if k == 1 else m0 ** k * m ** (k - 1.0))
        out.append(c)
    return out


def hot_pixels_numpy(img, valid, *, k_sigma: float = 6.0, grow_px: int = 3) -> np.ndarray:
    """``imaging.hot_pixels`` before stop 22 (numpy fill, roll high-pass and masks)."""
    from iovolc.imaging import _DIRECTIONS, LINE_OPENING_PX, grow, median, nanmedian
    from iovolc.morphology import compact_tophat

    x = np.where(valid & np.isfinite(img), img, np.nan)
    fill = nanmedian(x) if np.isfinite(x).any() else 0.0
    x = np.where(np.isfinite(x), x, fill).astype(float)
    tophat = compact_tophat(x, _DIRECTIONS, LINE_OPENING_PX)
    hp = x - 0.25 * (np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 1))
    sigma = 1.4826 * median(np.abs(hp[valid])) / np.sqrt(1.25) if valid.any() else 0.0
    hot = valid & (tophat > k_sigma * sigma) if sigma > 0 else np.zeros_like(valid)
    return grow(hot, grow_px) if hot.any() else hot


def spline_points_per_point():
    """``compiled.spline_points`` before stop 22: each of the five values per point from
    ``spline_at`` (its own weights for both coordinates), compiled as it was."""
    from numba import njit

    from iovolc.compiled import PAD, _weights

    @njit(nogil=True, error_model="numpy")
    def spline_at(c, n0, n1, r, s):
        """The spline of padded coefficients ``c`` (canvas ``n0`` x ``n1``) at (r, s)."""
        if not (r >= 0.0 and r <= n0 - 1 and s >= 0.0 and s <= n1 - 1):
            return 0.0
        i, a0, a1, a2, a3 = _weights(r)
        j, b0, b1, b2, b3 = _weights(s)
        i += PAD
        j += PAD
        out = 0.0
        for di, a in ((0, a0), (1, a1), (2, a2), (3, a3)):
            row = i + di
            out += a * (b0 * c[row, j] + b1 * c[row, j + 1] + b2 * c[row, j + 2]
                        + b3 * c[row, j + 3])
        return out

    @njit(nogil=True, error_model="numpy")
    def run(coeffs, n0, n1, rr, cc, out):
        for i in range(rr.size):
            r, s = rr[i], cc[i]
            out[0, i] = spline_at(coeffs, n0, n1, r, s)
            out[1, i] = spline_at(coeffs, n0, n1, r + 0.5, s)
            out[2, i] = spline_at(coeffs, n0, n1, r - 0.5, s)
            out[3, i] = spline_at(coeffs, n0, n1, r, s + 0.5)
            out[4, i] = spline_at(coeffs, n0, n1, r, s - 0.5)

    return run


def ncc_full_transform(image, t):
    """``imaging.ncc`` before stop 22: scipy's whole rfft2 / irfft2 (every row)."""
    from scipy import fft as sp_fft

    from iovolc import compiled

    m, n = t.shape
    shape = tuple(sp_fft.next_fast_len(k, real=True) for k in image.shape)
    xc = sp_fft.irfft2(sp_fft.rfft2(image, shape)
                       * np.conj(sp_fft.rfft2(t.astype(float), shape)), shape)
    n_i, n_j = image.shape[0] - m + 1, image.shape[1] - n + 1
    out = np.empty((n_i, n_j))
    compiled._ncc_normalise(np.ascontiguousarray(xc[:n_i, :n_j]), image, m, n,
                            float(t.mean()), float(np.sum((t - t.mean()) ** 2)), out)
    return out


def limb_model_sigma_whole(bg, shading, *, pointing_sigma_px: float, floor_px: float):
    """``extract.limb_model_sigma`` before stop 23 (the whole strip)."""
    from iovolc.imaging import grow

    d = max(float(pointing_sigma_px) if np.isfinite(pointing_sigma_px) else 0.0, floor_px)
    if not shading.max() > 0:
        return np.zeros_like(bg)
    disc = shading > 0.05 * shading.max()
    edge = disc ^ ndi.binary_erosion(disc, border_value=1)
    zone = grow(edge, int(np.ceil(d)) + 2)
    g0, g1 = np.gradient(bg)
    grad = ndi.maximum_filter(np.hypot(g0, g1), size=3)
    return np.where(zone, d * grad, 0.0)


def albedo_term_whole(bg, r, shading):
    """``background_model``'s last step before stop 23: ``r`` extended to every far pixel
    by the distance transform of the whole strip, times the shading, added to ``bg``."""
    far = ~np.isfinite(r)
    if far.any() and (~far).any():
        idx = ndi.distance_transform_edt(far, return_distances=False, return_indices=True)
        r = r[tuple(idx)]
    return bg + np.nan_to_num(r) * shading


def ring_mean_excess_numpy(x: np.ndarray) -> np.ndarray:
    """``hits._ring_mean_excess`` before stop 23 (numpy's cumsum and box slices)."""
    h, w = x.shape
    ii = np.zeros((h + 5, w + 5))
    ii[1:, 1:] = np.pad(x, 2, mode="reflect").cumsum(axis=0).cumsum(axis=1)

    def box(k: int) -> np.ndarray:
        o = 2 - k // 2
        return (ii[o + k:o + k + h, o + k:o + k + w] - ii[o:o + h, o + k:o + k + w]
                - ii[o + k:o + k + h, o:o + w] + ii[o:o + h, o:o + w])

    return x - (box(5) - box(3)) / 16.0


def greedy_labels_numpy(xyz, pixel_scale_km, snr, weight, *, tol_px, min_tol_km):
    """``catalog._greedy_labels`` before stop 24 compiled its loop (``iovolc.greedy``)."""
    from iovolc.catalog import _angle_km

    n = len(xyz)
    order = np.lexsort((np.arange(n), -np.where(np.isfinite(weight), weight, -np.inf)))
    labels = np.full(n, -1, dtype=np.int64)
    csum = np.zeros((n, 3))
    centres = np.zeros((n, 3))
    cscale = np.zeros(n)
    k = 0
    for i in order:
        if k:
            d = _angle_km(centres[:k], xyz[i])
            tol = np.maximum(tol_px * pixel_scale_km[i], min_tol_km)
            d = np.where(d <= tol, d, np.inf)
            j = int(np.argmin(d))
            if np.isfinite(d[j]):
                labels[i] = j
                csum[j] += weight[i] * xyz[i]
                centres[j] = csum[j] / np.sqrt(csum[j] @ csum[j])
                cscale[j] = min(cscale[j], pixel_scale_km[i])
                continue
        labels[i] = k
        csum[k] = weight[i] * xyz[i]
        centres[k] = xyz[i]
        cscale[k] = pixel_scale_km[i]
        k += 1
    return labels


def fill_invalid_numpy(x: np.ndarray, invalid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hits.fill_invalid`` before stop 25 compiled its rounds (reflect-padded 3x3
    gathers in numpy, and ``hits._masked_median``, unchanged)."""
    from iovolc.hits import _masked_median

    def patches(img, rr, cc):
        p = np.pad(img, 1, mode="reflect")
        return np.stack([p[rr + 1 + a, cc + 1 + b] for a in (-1, 0, 1) for b in (-1, 0, 1)],
                        axis=1)

    out = np.array(x, dtype=np.float64, copy=True)
    todo = np.array(invalid, dtype=bool, copy=True)
    done = np.zeros_like(todo)
    if not todo.any() or todo.all():
        return out, done
    while todo.any():
        rr, cc = np.nonzero(todo)
        med, has = _masked_median(patches(out, rr, cc), patches(~todo, rr, cc))
        if not has.any():
            break
        out[rr[has], cc[has]] = med[has]
        todo[rr[has], cc[has]] = False
        done[rr[has], cc[has]] = True
    return out, done


def coarse_match_whole_canvas(strips: dict, state, drawn, *, along: tuple[float, float],
                              cross: tuple[float, float], step_rad: float):
    """``registration._coarse_match`` before stop 25 cropped the canvas to the rows a
    window touching the lit disc reaches: every row correlated (the templates, the
    cells, their sums and the best cell are the module's own)."""
    from iovolc import imaging
    from iovolc.registration import (
        _add_scores,
        _band_template,
        _best_cell,
        _score_grid,
        _strip_levels,
    )

    canvas = drawn[0]
    total = _score_grid(along=along, cross=cross, step_rad=step_rad)
    spectrum = None  # the canvas's FFT: the same canvas for every band
    for band, (img, valid) in strips.items():
        a0, b0, tmpl = _band_template(band, img, state, drawn, step_rad,
                                      _strip_levels(img, valid))
        if tmpl is None:
            continue
        spectrum = spectrum or imaging.image_spectrum(canvas)
        res = imaging.ncc(canvas, tmpl, spectrum=spectrum)
        if not _add_scores(total, res, a0, b0, along=along, cross=cross, step_rad=step_rad):
            return None
    return _best_cell(total, len(strips), along=along, cross=cross, step_rad=step_rad)


def open2x2_numpy(x):
    """``hits._open2x2`` before stop 26 (now ``morphology.open2x2``): the grey opening
    with a 2x2 square, min over 2x2 blocks of the edge-padded image, then max."""
    p = np.pad(x, 1, mode="edge")
    ero = np.minimum(np.minimum(p[:-1, :-1], p[:-1, 1:]), np.minimum(p[1:, :-1], p[1:, 1:]))
    return np.maximum(np.maximum(ero[:-1, :-1], ero[:-1, 1:]),
                      np.maximum(ero[1:, :-1], ero[1:, 1:]))


def mean4_highpass_numpy(x):
    """``hits._mean4_highpass``'s numpy form (compiled at stop 26)."""
    p = np.pad(x, 1, mode="reflect")
    return x - 0.25 * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])


def from_spin_numpy(phi, psi, basis):
    """``registration._from_spin`` as numpy's broadcast, before stop 27 compiled the grid."""
    e_x, e_s, e_z = basis
    return np.cos(psi)[..., None] * (np.sin(phi)[..., None] * e_x
                                     + np.cos(phi)[..., None] * e_z) \
        + np.sin(psi)[..., None] * e_s


def detection_table_inserted(rows: list[dict], leading: dict) -> pd.DataFrame:
    """The detection table as the pipeline built it before stop 27: the rows' table, then
    each leading column inserted in front."""
    from iovolc.detections import DETECTION_COLUMNS

    det = pd.DataFrame(rows, columns=DETECTION_COLUMNS)
    for i, (col, value) in enumerate(leading.items()):
        det.insert(i, col, value)
    return det


def box_of_any(x: np.ndarray, margin: int):
    """``imaging.box_of`` before stop 28: numpy's ``any`` along each axis."""
    rows = np.flatnonzero(x.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(x.any(axis=0))
    n0, n1 = x.shape
    return (slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + 1 + margin, n0)),
            slice(max(int(cols[0]) - margin, 0), min(int(cols[-1]) + 1 + margin, n1)))


def fit_shift(coeffs, shapes, zones, usables, imgs, search_px, d_line, d_samp, max_steps):
    """``compiled.fit_shift`` before stop 27 took the zone's spans once per pass: the
    spans taken by each fit, then the same Gauss-Newton (``compiled.fit_shift_spanned``)."""
    from iovolc import compiled

    z_span, room = compiled.zone_spans(shapes, zones, usables)
    return compiled.fit_shift_spanned(coeffs, shapes, zones, z_span, room, usables, imgs,
                                      search_px, d_line, d_samp, max_steps)


def limb_fit_rows(m, ln, sn, data, v):
    """``compiled._fit`` before stop 29, verbatim: the normal equations summed through
    each pixel's basis row in an array (the test compiles it with numba, as the kernel
    was); stop 29 keeps the sums in scalars."""
    g = np.zeros((4, 4))
    b = np.zeros(4)
    row = np.empty(4)
    for i in range(m.size):
        if not v[i]:
            continue
        row[0], row[1], row[2], row[3] = m[i], m[i] * ln[i], m[i] * sn[i], 1.0
        for p in range(4):
            b[p] += row[p] * data[i]
            for q in range(p + 1):
                g[p, q] += row[p] * row[q]
    low = np.zeros((4, 4))
    ok = True
    for p in range(4):
        for q in range(p + 1):
            acc = g[p, q]
            for r in range(q):
                acc -= low[p, r] * low[q, r]
            if p == q:
                if not acc > _PIVOT_FLOOR * g[p, p]:
                    ok = False
                    break
                low[p, p] = np.sqrt(acc)
            else:
                low[p, q] = acc / low[q, q]
        if not ok:
            break
    if ok:
        y = np.empty(4)
        for p in range(4):
            acc = b[p]
            for r in range(p):
                acc -= low[p, r] * y[r]
            y[p] = acc / low[p, p]
        coef = np.empty(4)
        for p in range(3, -1, -1):
            acc = y[p]
            for r in range(p + 1, 4):
                acc -= low[r, p] * coef[r]
            coef[p] = acc / low[p, p]
        return coef
    n_v = 0
    for i in range(m.size):
        n_v += v[i]
    a = np.empty((n_v, 4))
    y = np.empty(n_v)
    k = 0
    for i in range(m.size):
        if v[i]:
            a[k, 0], a[k, 1], a[k, 2], a[k, 3] = m[i], m[i] * ln[i], m[i] * sn[i], 1.0
            y[k] = data[i]
            k += 1
    return _lstsq_svd(a, y, _EPS * max(n_v, 4))

def kth_by_order_keys(a: np.ndarray, k: int) -> float:
    """The k-th smallest of ``a`` in the order of the IEEE values' keys (-0.0 below 0.0):
    what ``compiled._kth``'s radix selection finds, whatever its bins' width."""
    bits = np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)
    sign = np.uint64(1 << 63)
    keys = np.where(bits & sign, ~bits, bits | sign)
    key = np.sort(keys)[k]
    out = np.array([key ^ sign if key & sign else ~key], dtype=np.uint64)
    return float(out.view(np.float64)[0])


def padded_windows(a: np.ndarray, rows, cols, half: int) -> np.ndarray:
    """The (2*half+1)^2 windows around (rows, cols) gathered from ``np.pad(a, half,
    mode="constant")``, as ``extract._psf_fit`` and ``_second_moment_sigma`` read them
    before stop 29."""
    off = np.arange(-half, half + 1)
    dr, ds = np.meshgrid(off, off, indexing="ij")
    pad = np.pad(a, half, mode="constant")
    return pad[rows[:, None] + dr.ravel()[None, :] + half, cols[:, None] + ds.ravel()[None, :] + half]


def second_moment_sigma_padded(resid, rows, cols, half=2, *, labels=None):
    """``extract._second_moment_sigma`` before stop 29 (windows from padded copies)."""
    off = np.arange(-half, half + 1)
    dr, ds = np.meshgrid(off, off, indexing="ij")
    pad = np.pad(resid, half, mode="constant")
    at = (rows[:, None] + dr.ravel() + half, cols[:, None] + ds.ravel() + half)
    win = np.clip(pad[at], 0, None)
    if labels is not None:
        own = np.pad(labels, half, mode="constant")[at] == (np.arange(rows.size) + 1)[:, None]
        win = np.where(own, win, 0.0)
    tot = win.sum(1) + 1e-30
    mr = (win * dr.ravel()).sum(1) / tot
    ms = (win * ds.ravel()).sum(1) / tot
    var = (win * ((dr.ravel() - mr[:, None]) ** 2 + (ds.ravel() - ms[:, None]) ** 2)).sum(1) / tot
    return np.sqrt(var / 2.0)


def detection_rows_per_source(idx, *, band, sl, shape, src, geom, near_limb, power,
                              pointing_method, pointing_sigma_px, config) -> list[dict]:
    """``extract_frame``'s per-source loop before stop 29 (``detections.detection_rows``)."""
    from iovolc import jiram
    from iovolc.flags import Flag

    pointing_flag = {"pass": Flag.POINTING_PASS, "constellation": Flag.POINTING_CONSTELLATION,
                     "none": Flag.UNREGISTERED}
    cen, flux, sat, cut, peak_dn = src.cen, src.flux, src.sat, src.cut, src.peak_dn
    rows_out = []
    for k in idx:
        f = Flag(0)
        if sat[k]:
            f |= Flag.SATURATED
        if np.isfinite(peak_dn[k]) and peak_dn[k] >= jiram.NONLINEAR_DN and not sat[k]:
            f |= Flag.NONLINEAR
        if near_limb[k]:
            f |= Flag.NEAR_LIMB
        if geom.emission_deg[k] > config.high_emission_deg:
            f |= Flag.HIGH_EMISSION
        snr = float(src.snr[k])
        if snr < config.confident_snr:
            f |= Flag.LOW_CONFIDENCE
        f |= pointing_flag.get(pointing_method, Flag(0))
        c_r, c_s = cen[k]
        if (c_r < 2 or c_r > shape[0] - 3 or c_s < 2 or c_s > shape[1] - 3
                or cut[k]):
            f |= Flag.FRAME_EDGE
        sig_px = float(np.hypot(config.psf_sigma_px / max(snr, 1.0), pointing_sigma_px))
        stretch = 1.0 / np.sqrt(max(np.cos(np.radians(geom.emission_deg[k])), 0.05))
        rows_out.append({
            "band": band, "line": float(c_r + sl.start), "sample": float(c_s),
            "lat_deg": float(geom.lat_deg[k]), "lon_west_deg": float(geom.lon_west_deg[k]),
            "emission_deg": float(geom.emission_deg[k]),
            "incidence_deg": float(geom.incidence_deg[k]),
            "range_km": float(geom.range_km[k]),
            "pixel_scale_km": float(geom.pixel_scale_km[k]),
            "peak_radiance_w_m2_sr": float(src.peak[k]),
            "radiance_sum_w_m2_sr": float(flux[k]),
            "power_gw_per_um": float(power[k]), "snr": snr, "n_pixels": int(src.npix[k]),
            "flags": int(f), "raw_peak_dn": float(peak_dn[k]),
            "pointing_method": pointing_method,
            "pointing_sigma_px": float(pointing_sigma_px),
            "position_sigma_km": float(sig_px * geom.pixel_scale_km[k] * stretch),
        })
    return rows_out


def catalog_rows_iterrows(cl: pd.DataFrame) -> pd.DataFrame:
    """link_perijoves' row building before stop 30, verbatim (a dict per row via iterrows)."""
    from iovolc.catalog import (
        CATALOG_COLUMNS,
        _latlon,
        _position_uncertainty_km,
        _unit_xyz,
        _weighted_centre,
    )
    from iovolc.flags import flag_names

    rows = []
    for hid, g in cl.groupby("hotspot_id", sort=True):
        xyz = _unit_xyz(g["lat_deg"].to_numpy(float), g["lon_west_deg"].to_numpy(float))
        w = g["position_weight"].to_numpy(float)
        centre = _weighted_centre(xyz, w)
        h_lat, h_lon = _latlon(centre)
        unc = _position_uncertainty_km(xyz, w, centre, g["position_uncertainty_km"].to_numpy(float))
        first = g["first_utc"].to_numpy()[np.argmin(g["first_et"].to_numpy(float))]
        last = g["last_utc"].to_numpy()[np.argmax(g["last_et"].to_numpy(float))]
        names = [v for v in g["name"].astype(str) if v]
        refs = [v for v in g["ref_id"].astype(str) if v]
        for _, r in g.sort_values("perijove").iterrows():
            rows.append(
                {
                    "hotspot_id": hid,
                    "ref_id": refs[0] if refs else "",
                    "name": names[0] if names else "",
                    "lat_deg": float(h_lat),
                    "lon_west_deg": float(h_lon),
                    "perijove": r["perijove"],
                    "n_detections": r["n_detections"],
                    "peak_radiance_w_m2_sr": r["peak_radiance_w_m2_sr"],
                    "power_gw": r["power_gw"],
                    "power_gw_per_um": r["power_gw_per_um"],
                    "temperature_k": r["temperature_k"],
                    "flags": r["flags"],
                    "first_seen_utc": first,
                    "last_seen_utc": last,
                    "power_gw_per_um_l": r["power_gw_per_um_l"],
                    "area_km2": r["area_km2"],
                    "position_uncertainty_km": unc,
                    "pixel_scale_km": r["pixel_scale_km"],
                    "min_emission_deg": r["min_emission_deg"],
                    "match_distance_km": r["match_distance_km"],
                    "flag_names": flag_names(int(r["flags"])),
                    "lat_deg_pj": r["lat_deg"],
                    "lon_west_deg_pj": r["lon_west_deg"],
                    "position_uncertainty_km_pj": r["position_uncertainty_km"],
                    "n_frames": r["n_frames"],
                    "bands": r["bands"],
                    "power_gw_lo": r["power_gw_lo"],
                    "power_gw_hi": r["power_gw_hi"],
                    "temperature_k_lo": r["temperature_k_lo"],
                    "temperature_k_hi": r["temperature_k_hi"],
                }
            )
    return pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))


def summarise_pandas(catalog: pd.DataFrame) -> pd.DataFrame:
    """summarise before stop 30, verbatim (pandas calls per hotspot group)."""
    from iovolc.catalog import HOTSPOT_COLUMNS, _normalise
    from iovolc.flags import Flag, flag_names

    rows = []
    for hid, g in catalog.groupby("hotspot_id", sort=True):
        g = g.sort_values("perijove")
        p = g["power_gw"].to_numpy(float)
        finite = p[np.isfinite(p)]
        f = int(np.bitwise_or.reduce(g["flags"].to_numpy(np.int64)))
        pm = g["power_gw_per_um"].to_numpy(float)
        t = g["temperature_k"].to_numpy(float)
        rows.append(
            {
                "hotspot_id": hid,
                "ref_id": g["ref_id"].iloc[0],
                "name": g["name"].iloc[0],
                "lat_deg": g["lat_deg"].iloc[0],
                "lon_west_deg": g["lon_west_deg"].iloc[0],
                "position_uncertainty_km": g["position_uncertainty_km"].iloc[0],
                "n_perijoves": g["perijove"].nunique(),
                "perijoves": ",".join(str(v) for v in sorted(g["perijove"].unique())),
                "n_detections": int(g["n_detections"].sum()),
                "mean_power_gw": float(finite.mean()) if finite.size else np.nan,
                "std_power_gw": float(finite.std(ddof=1)) if finite.size > 1 else np.nan,
                "min_power_gw": float(finite.min()) if finite.size else np.nan,
                "max_power_gw": float(finite.max()) if finite.size else np.nan,
                "mean_power_gw_per_um": float(np.mean(pm[np.isfinite(pm)]))
                if np.any(np.isfinite(pm)) else np.nan,
                "median_temperature_k": float(np.median(t[np.isfinite(t)]))
                if np.any(np.isfinite(t)) else np.nan,
                "n_power_lower_limit": int(
                    np.count_nonzero(g["flags"].to_numpy(np.int64) & Flag.POWER_LOWER_LIMIT)),
                "pixel_scale_km": float(g["pixel_scale_km"].min()),
                "min_emission_deg": float(g["min_emission_deg"].min()),
                "first_seen_utc": g["first_seen_utc"].iloc[0],
                "last_seen_utc": g["last_seen_utc"].iloc[0],
                "flags": f,
                "flag_names": flag_names(f),
            }
        )
    return _normalise(pd.DataFrame(rows, columns=list(HOTSPOT_COLUMNS)), HOTSPOT_COLUMNS)


def brightest_raster_first(values, lab, n):
    """Each label 1..n's largest value's position, the first in raster order among equals
    ((0, 0) for a label with no pixel): the rule of ``imaging.brightest_of_labels``
    since stop 30, written out as a plain loop."""
    out = []
    for k in range(1, n + 1):
        at = np.argwhere(lab == k)  # raster order
        if at.size == 0:
            out.append((0, 0))
            continue
        v = values[at[:, 0], at[:, 1]]
        r, c = at[np.flatnonzero(v == v.max())[0]]
        out.append((int(r), int(c)))
    return out



@njit(nogil=True, error_model="numpy")
def median_radix(a):
    """``compiled._median`` before stop 35: a NaN looked for with an early exit, then the
    radix selection on all the values (``_kth_radix``, ``_kth_and_next_scan``: the
    selections as they were, kept under these names)."""
    n = a.size
    for i in range(n):
        if math.isnan(a[i]):
            return np.nan
    if n == 0:
        return np.nan
    if n % 2:
        return _kth_radix(a, n // 2)
    lo, hi = _kth_and_next_scan(a, n // 2 - 1)
    return (lo + hi) / 2.0


def strip_template_scipy(img, line, sample, binning: float, levels):
    """``registration._strip_template`` before stop 36: scipy's ``gaussian_filter``
    (mode "reflect") and ``map_coordinates`` (order 1, mode "nearest"), the positions
    outside the strip filled with the median by ``np.where``."""
    if levels.n_usable < 100:
        return None
    v, med = levels.usable, levels.median
    x = np.where(v, np.clip(img, None, max(levels.p99_5, med)), med)
    if binning > 1.2:
        x = ndi.gaussian_filter(x, 0.5 * binning)
    inside = (line > -0.5) & (line < img.shape[0] - 0.5) & (sample > -0.5) & \
        (sample < img.shape[1] - 0.5)
    vals = map_coordinates(x, [np.nan_to_num(line), np.nan_to_num(sample)], order=1,
                           mode="nearest")
    out = np.where(inside, vals, med)
    return out if np.ptp(out) > 0 else None


def shading_numpy(state, band, *, line0, line1, samp0, samp1, psf_sigma_px, exponents):
    """``iovolc.shading._shading`` before stop 37: the box by ``np.mgrid``, the limb pixels
    by comparing with the edge-padded hit mask, the sub-pixel centres by broadcasting,
    their means by ``mean(axis=1)``, and each trace taking its constants anew."""
    from iovolc.geometry import _cosines, _pixel_rays, disc_radius_rad
    from iovolc.separable import gaussian_blur_constant
    nl, ns = line1 - line0, samp1 - samp0
    canvases = [np.zeros((nl, ns)) for _ in exponents]
    limb = np.zeros((nl, ns), dtype=bool)
    cl, cs = state.centre_pixel(band)
    if not np.isfinite(cl[0]):
        return canvases, limb
    ang = disc_radius_rad(state)
    r_px = (np.tan(ang) if ang < 1.5 else 1e6) / state.camera(band).ifov_rad + 3
    lo_l = int(max(line0, np.floor(cl[0] - r_px)))
    hi_l = int(min(line1, np.ceil(cl[0] + r_px) + 1))
    lo_s = int(max(samp0, np.floor(cs[0] - r_px)))
    hi_s = int(min(samp1, np.ceil(cs[0] + r_px) + 1))
    if hi_l <= lo_l or hi_s <= lo_s:
        return canvases, limb
    ll, ss = np.mgrid[lo_l:hi_l, lo_s:hi_s]
    hit, cos_i, cos_e = _cosines(state, *_pixel_rays(state, band, ll, ss))
    subs = photometry_canvases(hit, cos_i, cos_e, exponents)
    pad = np.pad(hit, 1, mode="edge")
    edge = np.zeros_like(hit)
    for dl in (0, 2):
        edge |= pad[dl:dl + hit.shape[0], 1:-1] != hit
    for ds in (0, 2):
        edge |= pad[1:-1, ds:ds + hit.shape[1]] != hit
    if edge.any():
        k = 4  # 4x4 super-sampling of the pixels the limb crosses
        off = (np.arange(k) + 0.5) / k - 0.5
        dl, ds = np.meshgrid(off, off, indexing="ij")
        el, es = ll[edge], ss[edge]
        fine = _cosines(state, *_pixel_rays(state, band, el[:, None] + dl.ravel(),
                                            es[:, None] + ds.ravel()))
        for sub, sub2 in zip(subs, photometry_canvases(*fine, exponents), strict=True):
            sub[edge] = sub2.mean(axis=1)
    limb[lo_l - line0:hi_l - line0, lo_s - samp0:hi_s - samp0] = edge & (cos_i > 0.05)
    pad = int(np.ceil(4.0 * psf_sigma_px)) + 2
    win = (slice(max(lo_l - line0 - pad, 0), min(hi_l - line0 + pad, nl)),
           slice(max(lo_s - samp0 - pad, 0), min(hi_s - samp0 + pad, ns)))
    out = []
    for canvas, sub in zip(canvases, subs, strict=True):
        canvas[lo_l - line0:hi_l - line0, lo_s - samp0:hi_s - samp0] = sub
        if psf_sigma_px > 0:
            canvas[win] = gaussian_blur_constant(canvas[win], psf_sigma_px)
        out.append(canvas)
    return out, limb


def symmetric_blur_taps_in_turn():
    """``separable.symmetric_blur`` before stop 37 (compiled on first use): each tap pair
    added to the whole row in turn, for every radius (since stop 37 a radius of 3 sums
    its seven taps per value in registers; the same additions in the same order)."""

    @njit(nogil=True, error_model="numpy")
    def blur(x, w, out):
        n0, n1 = x.shape
        r = (w.size - 1) // 2
        tmp = np.empty((n0, n1))
        zero = np.zeros(n1)
        for i in range(n0):
            t = tmp[i]
            src = x[i]
            wc = w[r]
            for j in range(n1):
                t[j] = src[j] * wc
            for jj in range(-r, 0):
                a = x[i + jj] if i + jj >= 0 else zero
                b = x[i - jj] if i - jj < n0 else zero
                wj = w[r + jj]
                for j in range(n1):
                    t[j] += (a[j] + b[j]) * wj
        buf = np.zeros(n1 + 2 * r)
        for i in range(n0):
            o = out[i]
            buf[r:r + n1] = tmp[i]
            for j in range(n1):
                o[j] = buf[r + j] * wc
            for jj in range(-r, 0):
                left = buf[r + jj:r + jj + n1]
                right = buf[r - jj:r - jj + n1]
                wj = w[r + jj]
                for j in range(n1):
                    o[j] += (left[j] + right[j]) * wj

    return blur


def photometry_canvases(on_disc, cos_i, cos_e, exponents) -> list[np.ndarray]:
    """``shading._photometry`` from stop 22 to stop 36: one dense array per exponent,
    ``mu0^k mu^(k-1)`` on the lit pixels and 0 elsewhere, from ``shading._lit_factors``
    and ``shading._minnaert`` (since stop 37 ``_shading`` writes the lit values straight
    into its canvases)."""
    from iovolc.shading import _lit_factors, _minnaert

    lit, m0, m = _lit_factors(on_disc, cos_i, cos_e)
    out = []
    for k in exponents:
        c = np.zeros(np.shape(on_disc))
        c[lit] = 1.0 if k == 0 else _minnaert(k, m0, m)
        out.append(c)
    return out


# --- stop 38: the sliding median's walk, one set bit at a time (iovolc.rank_median as it
# was): the reference of its popcount jumps, rank for rank

_ONE = np.uint64(1)


@njit(nogil=True)
def _next_at_or_after_ref(bits, p):
    """The smallest rank ``>= p`` in the set (one exists: the caller's invariant; the
    scan stops at the set's end regardless, numba does not check bounds)."""
    w = p >> 6
    word = bits[w] & ~((_ONE << np.uint64(p & 63)) - _ONE)
    while word == 0:
        w += 1
        if w == bits.size:
            raise RuntimeError("window_medians: no rank above the median")
        word = bits[w]
    return (w << 6) + int(trailing_zeros(word))


@njit(nogil=True)
def _prev_at_or_before_ref(bits, p):
    """The largest rank ``<= p`` in the set (one exists: the caller's invariant)."""
    w = p >> 6
    b = p & 63
    word = bits[w] & (((_ONE << np.uint64(b)) - _ONE) | (_ONE << np.uint64(b)))
    while word == 0:
        w -= 1
        if w < 0:
            raise RuntimeError("window_medians: no rank below the median")
        word = bits[w]
    return (w << 6) + 63 - int(leading_zeros(word))


@njit(nogil=True)
def window_medians_stepwise(rank, size, out):
    """``out[r, c]``: the median rank of ``rank[r:r + size, c:c + size]``.

    ``rank``: the edge-padded rank image, ``(n0 + size - 1, n1 + size - 1)``,
    unique non-negative integers below ``rank.size``; ``size`` odd. A window
    of 3 x 3 or more always keeps a rank on either side of the median during a step
    (at most ``size`` ranks leave below it, ``k + size < size**2``); size 1 is a copy.
    """
    n0, n1 = out.shape
    if size == 1:
        # the median of one value (a step could remove the median and leave no rank
        # above it: the sliding scan below needs a window of 3 x 3 or more)
        for r in range(n0):
            for c in range(n1):
                out[r, c] = rank[r, c]
        return
    k = size * size // 2
    bits = np.zeros((rank.size + 63) // 64 + 1, np.uint64)
    first = np.empty(size * size, np.int64)
    for r in range(n0):
        q = 0
        for i in range(size):
            for j in range(size):
                x = np.int64(rank[r + i, j])
                bits[x >> 6] |= _ONE << np.uint64(x & 63)
                first[q] = x
                q += 1
        first.sort()
        m = first[k]
        lt = k
        out[r, 0] = m
        for c in range(1, n1):
            lost = 0
            for i in range(size):
                # counted without branches (a comparison is a coin toss here)
                x = np.int64(rank[r + i, c - 1])
                bits[x >> 6] &= ~(_ONE << np.uint64(x & 63))
                y = np.int64(rank[r + i, c + size - 1])
                bits[y >> 6] |= _ONE << np.uint64(y & 63)
                lt += np.int64(y < m) - np.int64(x < m)
                lost |= np.int64(x == m)
            if lost:
                # ``lt`` counts the ranks below the old median; the next rank up
                # has exactly as many below it
                m = _next_at_or_after_ref(bits, m)
            while lt > k:
                m = _prev_at_or_before_ref(bits, m - 1)
                lt -= 1
            while lt < k:
                lt += 1
                m = _next_at_or_after_ref(bits, m + 1)
            out[r, c] = m
        for i in range(size):
            for j in range(n1 - 1, n1 - 1 + size):
                x = np.int64(rank[r + i, j])
                bits[x >> 6] &= ~(_ONE << np.uint64(x & 63))
