"""Limb registration: measure each frame's pointing offset from Io's disc.

JIRAM's despinning mirror leaves the reconstructed pointing off by up to
~2 deg along the spin (the line direction). We predict Io's lit disc from the
reconstructed geometry (Lambertian shading, uniform albedo, anti-aliased
limb, the instrument PSF), find the shift that best matches the observed band
halves (normalised cross-correlation over the whole search range), refine it
to sub-pixel precision by least squares (model amplitude and offset free per
band), and turn the shift into a small rotation of the camera attitude.

A frame is registered only when the match is trustworthy: enough of the limb
falls inside the frame at the fitted shift and the correlation is high.
Otherwise the reconstructed pointing is kept and the frame is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, gaussian_filter, map_coordinates, spline_filter
from skimage.feature import match_template

from iovolc import jiram
from iovolc.geometry import FrameState, pixel_geometry, pixel_to_camera

#: default search half-ranges (pixels): along the spin (lines), across (samples)
SEARCH_LINES_PX = 160
SEARCH_SAMPLES_PX = 40
PSF_SIGMA_PX = 0.7


@dataclass(frozen=True)
class Registration:
    """Fitted offset: observed position minus predicted position (pixels)."""

    d_line_px: float
    d_sample_px: float
    ok: bool
    correlation: float
    n_limb_px: int
    reason: str = ""
    significance: float = 0.0
    sigma_px: float = float("nan")

    @property
    def offset_px(self) -> float:
        return float(np.hypot(self.d_line_px, self.d_sample_px))


def _shading_canvas(state: FrameState, *, line0: int, line1: int, samp0: int, samp1: int,
                    psf_sigma_px: float):
    """Predicted relative radiance of the lit disc on a detector-line canvas."""
    nl, ns = line1 - line0, samp1 - samp0
    canvas = np.zeros((nl, ns))
    limb = np.zeros((nl, ns), dtype=bool)
    cl, cs, _ = state.project_points(np.zeros((1, 3)))
    rng_km = float(np.linalg.norm(state.io_pos))
    ang = np.arcsin(min(1.0, state.radii_km.max() / rng_km))
    r_px = np.tan(ang) / jiram.IFOV_RAD + 3
    if not np.isfinite(cl[0]):
        return canvas, limb
    lo_l = int(max(line0, np.floor(cl[0] - r_px)))
    hi_l = int(min(line1, np.ceil(cl[0] + r_px) + 1))
    lo_s = int(max(samp0, np.floor(cs[0] - r_px)))
    hi_s = int(min(samp1, np.ceil(cs[0] + r_px) + 1))
    if hi_l <= lo_l or hi_s <= lo_s:
        return canvas, limb
    ll, ss = np.mgrid[lo_l:hi_l, lo_s:hi_s]
    g = pixel_geometry(state, ll, ss)
    mu0 = np.clip(np.cos(np.radians(np.nan_to_num(g.incidence_deg, nan=180.0))), 0, None)
    sub = np.where(g.on_disc, mu0, 0.0)
    hit = g.on_disc
    # anti-alias the limb (2x2 super-sampling of pixels next to it)
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
        g2 = pixel_geometry(state, el[:, None] + dl.ravel(), es[:, None] + ds.ravel())
        mu2 = np.clip(np.cos(np.radians(np.nan_to_num(g2.incidence_deg, nan=180.0))), 0, None)
        sub[edge] = np.where(g2.on_disc, mu2, 0.0).mean(axis=1)
    canvas[lo_l - line0:hi_l - line0, lo_s - samp0:hi_s - samp0] = sub
    limb[lo_l - line0:hi_l - line0, lo_s - samp0:hi_s - samp0] = edge & (mu0 > 0.05)
    if psf_sigma_px > 0:
        canvas = gaussian_filter(canvas, psf_sigma_px, mode="constant")
    return canvas, limb


def register_frame(
    radiance: np.ndarray,
    state: FrameState,
    *,
    mode: str,
    valid: np.ndarray | None = None,
    search_lines_px: int = SEARCH_LINES_PX,
    search_samples_px: int = SEARCH_SAMPLES_PX,
    min_limb_px: int = 40,
    min_correlation: float = 0.2,
    max_sigma_px: float = 0.15,
    psf_sigma_px: float = PSF_SIGMA_PX,
) -> Registration:
    """Fit the offset of Io's disc in ``radiance`` relative to ``state``'s prediction."""
    radiance = np.asarray(radiance, dtype=float)
    n_rows = radiance.shape[0]
    row0 = int(jiram.frame_to_detector_line(mode, 0))
    line0, line1 = row0 - search_lines_px, row0 + n_rows + search_lines_px
    samp0, samp1 = -search_samples_px, jiram.N_SAMPLES + search_samples_px
    canvas, limb = _shading_canvas(state, line0=line0, line1=line1, samp0=samp0, samp1=samp1,
                                   psf_sigma_px=psf_sigma_px)
    if not limb.any():
        return Registration(0.0, 0.0, False, 0.0, 0, "Io's limb is not predicted near the frame")
    img = radiance.copy()
    search_lines_px += search_lines_px % 2  # even, for the 2x2-binned coarse search
    search_samples_px += search_samples_px % 2
    canvas_b = _bin2(canvas)
    if valid is None:
        valid = np.isfinite(img)
    valid = valid & np.isfinite(img)
    # tame hotspots and remaining spikes: they must not drive the fit
    bands = jiram.band_rows(mode)
    ncc = None
    halves = []
    for _band, sl in bands.items():
        half = img[sl]
        v = valid[sl]
        med = np.median(half[v]) if v.any() else 0.0
        hi = np.percentile(half[v], 99.7) if v.any() else 0.0
        halves.append((sl, np.where(v, half, med)))
        # coarse search on 2x2-binned images (4x cheaper), refined below
        tmpl = _bin2(np.where(v, np.clip(half, None, max(hi, med)), med))
        res = match_template(canvas_b, tmpl)
        # res[i, j]: the half's top-left at binned canvas (i, j); for a scene
        # observed d lines / e samples further than predicted,
        # 2i = sl.start + S - d and 2j = S_s - e
        i0 = sl.start // 2
        sub = res[i0:i0 + search_lines_px + 1, :search_samples_px + 1]
        ncc = sub if ncc is None else ncc + sub
    ncc = ncc / len(bands)
    i, j = np.unravel_index(np.nanargmax(ncc), ncc.shape)
    d_line = float(search_lines_px - 2 * i)
    d_samp = float(search_samples_px - 2 * j)
    peak = float(ncc[i, j])
    # how far the best match stands out of the correlation map's noise
    med = float(np.median(ncc))
    mad = float(np.median(np.abs(ncc - med))) * 1.4826
    significance = (peak - med) / mad if mad > 0 else 0.0
    # sub-pixel: least squares on the model shifted by (d_line, d_samp), on
    # the pixels within 3 px of the lit limb (the terminator is soft and
    # depends on the unknown albedo; the limb is sharp)
    limb_zone = binary_dilation(limb, iterations=3)
    coeffs = spline_filter(canvas, order=3, mode="constant")
    sigma = np.array([np.inf, np.inf])
    for _ in range(8):
        out = _lsq_step(halves, coeffs, limb_zone, valid, row0=row0, line0=line0, samp0=samp0,
                        d_line=d_line, d_samp=d_samp)
        if out is None:
            break
        step, sigma = out
        d_line += float(np.clip(step[0], -1, 1))
        d_samp += float(np.clip(step[1], -1, 1))
        if np.hypot(*step) < 1e-3:
            break
    # limb pixels inside the observed frame at the fitted shift
    rows = np.arange(n_rows) + row0 - d_line - line0
    cols = np.arange(jiram.N_SAMPLES) - d_samp - samp0
    rr, cc = np.meshgrid(np.round(rows).astype(int), np.round(cols).astype(int), indexing="ij")
    inside = (rr >= 0) & (rr < limb.shape[0]) & (cc >= 0) & (cc < limb.shape[1])
    n_limb = int(limb[rr[inside], cc[inside]].sum())
    sigma_px = float(np.hypot(*sigma))
    if n_limb < min_limb_px:
        ok, reason = False, f"limb pixels in frame {n_limb} < {min_limb_px}"
    elif not sigma_px <= max_sigma_px:
        ok, reason = False, f"formal offset error {sigma_px:.2f} px > {max_sigma_px} px"
    elif peak < min_correlation:
        ok, reason = False, f"disc correlation {peak:.2f} < {min_correlation}"
    else:
        ok, reason = True, ""
    return Registration(d_line, d_samp, ok, peak, n_limb, reason, significance, sigma_px)


def _bin2(a: np.ndarray) -> np.ndarray:
    """2x2 block mean (odd edges dropped)."""
    n0, n1 = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    return a[:n0, :n1].reshape(n0 // 2, 2, n1 // 2, 2).mean(axis=(1, 3))


def _lsq_step(halves, coeffs, limb_zone, valid, *, row0, line0, samp0, d_line, d_samp):
    """One Gauss-Newton step for the shift (amplitude, offset free per band).

    Returns ``(step, sigma)``: the shift update and its formal 1-sigma error
    (pixels, from the residual scatter), or None when nothing constrains it.
    """
    jtj = np.zeros((2, 2))
    jtr = np.zeros(2)
    chi2, dof = 0.0, 0
    for sl, half in halves:
        n_r, n_c = half.shape
        rows = np.arange(sl.start, sl.start + n_r) + row0 - d_line - line0
        cols = np.arange(n_c) - d_samp - samp0
        ri = np.clip(np.round(rows).astype(int), 0, limb_zone.shape[0] - 1)
        ci = np.clip(np.round(cols).astype(int), 0, limb_zone.shape[1] - 1)
        zone = limb_zone[ri[:, None], ci[None, :]] & valid[sl]
        zone[(rows < 0) | (rows > limb_zone.shape[0] - 1), :] = False
        zone[:, (cols < 0) | (cols > limb_zone.shape[1] - 1)] = False
        if zone.sum() < 20:
            continue
        pr, pc = np.nonzero(zone)
        rr, cc = rows[pr], cols[pc]
        data = half[pr, pc]

        def at(dr, dc, rr=rr, cc=cc):
            return map_coordinates(coeffs, [rr + dr, cc + dc], order=3, mode="constant",
                                   prefilter=False)

        m = at(0, 0)
        gl = at(0.5, 0) - at(-0.5, 0)
        gs = at(0, 0.5) - at(0, -0.5)
        # fit only where the model has sharp structure (the limb): the edge's
        # position does not depend on the unknown albedo pattern of the disc
        grad = np.hypot(gl, gs)
        if grad.max() <= 0:
            continue
        v = grad > 0.02 * grad.max()
        half = data
        # the disc's brightness (albedo) varies along the limb: let the model's
        # amplitude vary linearly across the frame so it does not bias the edge
        ln = (rr - rr.mean()) / 128.0
        sn = (cc - cc.mean()) / 432.0
        basis = np.stack([m, m * ln, m * sn, np.ones_like(m)], axis=-1)
        for _ in range(3):  # robust: drop hotspots and spikes on the limb
            if v.sum() < 20 or np.std(m[v]) == 0:
                break
            coef, *_ = np.linalg.lstsq(basis[v], half[v], rcond=None)
            resid_all = half - basis @ coef
            scatter = 1.4826 * np.median(np.abs(resid_all[v]))
            keep = v & (np.abs(resid_all) < 4 * scatter + 1e-12)
            if keep.sum() == v.sum():
                break
            v = keep
        if v.sum() < 20 or np.std(m[v]) == 0:
            continue
        coef, *_ = np.linalg.lstsq(basis[v], half[v], rcond=None)
        amp = coef[0] + coef[1] * ln[v] + coef[2] * sn[v]
        if np.median(amp) <= 0:
            continue
        resid = half[v] - basis[v] @ coef
        # d(model)/d(d_line) = -amp * gl (shifting the scene down moves samples up)
        jac = -amp[:, None] * np.column_stack([gl[v], gs[v]])
        jtj += jac.T @ jac
        jtr += jac.T @ resid
        chi2 += float(resid @ resid)
        dof += int(v.sum()) - 2
    if dof <= 0 or np.linalg.det(jtj) <= 0:
        return None
    cov = np.linalg.inv(jtj) * chi2 / dof
    return np.linalg.solve(jtj, jtr), np.sqrt(np.diag(cov))


def corrected_attitude(state: FrameState, reg: Registration, *, mode: str) -> np.ndarray:
    """Camera->J2000 rotation corrected by the fitted offset (a small rotation).

    The rotation takes the predicted direction of Io's centre to the
    observed one, so the whole frame moves rigidly with the attitude.
    """
    cl, cs, _ = state.project_points(np.zeros((1, 3)))
    l0 = float(cl[0]) if np.isfinite(cl[0]) else jiram.CENTER_LINE
    s0 = float(cs[0]) if np.isfinite(cs[0]) else jiram.CENTER_SAMPLE
    v_pred = pixel_to_camera(l0, s0)
    v_obs = pixel_to_camera(l0 + reg.d_line_px, s0 + reg.d_sample_px)
    axis = np.cross(v_obs, v_pred)
    s = np.linalg.norm(axis)
    if s < 1e-15:
        return state.cam_to_j2000
    axis /= s
    ang = np.arctan2(s, np.dot(v_obs, v_pred))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(ang) * k + (1 - np.cos(ang)) * (k @ k)
    # a world direction seen at v_pred (predicted) is truly seen at v_obs:
    # true cam_to_j2000 maps v_obs to where the old one mapped v_pred
    return state.cam_to_j2000 @ rot
