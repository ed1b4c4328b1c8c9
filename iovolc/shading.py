"""The predicted lit disc on a band canvas: what the limb fit matches and the extraction's
background shape (Minnaert photometry, anti-aliased limb, PSF blur).

The disc is drawn from the frame's geometry (:class:`iovolc.geometry.DiscRays`,
the compiled ray tracing): one ray per pixel centre over the box the disc can
cover, then 4x4 sub-pixel rays on the pixels the limb crosses
(:mod:`iovolc.supersample`).
"""

from __future__ import annotations

import numpy as np

from iovolc import raytrace, supersample
from iovolc.geometry import DiscRays, FrameState, disc_radius_rad
from iovolc.separable import gaussian_blur_constant

#: the default PSF (Gaussian sigma, pixels) of the predicted disc
PSF_SIGMA_PX = 0.7
#: the limb pixels' super-sampling: _SUB_PX x _SUB_PX rays at these offsets from the centre
_SUB_PX = 4
_SUB_OFFSETS = (np.arange(_SUB_PX) + 0.5) / _SUB_PX - 0.5


def _lit_factors(on_disc, cos_i, cos_e) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lit pixels (on the disc, ``cos i > 0``; the input's shape) and, in their order,
    their ``mu0`` and ``mu`` (floored at 0.02): one compiled pass
    (:func:`iovolc.raytrace.lit_factors`, numpy's ``nan_to_num`` and ``clip`` values)."""
    if not np.shape(on_disc) == np.shape(cos_i) == np.shape(cos_e):
        raise ValueError(f"_lit_factors: shapes {np.shape(on_disc)}, {np.shape(cos_i)}, "
                         f"{np.shape(cos_e)} differ")
    if np.asarray(cos_i).dtype != np.float64 or np.asarray(cos_e).dtype != np.float64:
        raise TypeError("_lit_factors: the cosines must be float64 (the ray tracing's)")
    hit = np.ascontiguousarray(on_disc, dtype=bool).reshape(-1)
    lit = np.empty(hit.size, dtype=bool)
    m0, m = np.empty(hit.size), np.empty(hit.size)
    n = raytrace.lit_factors(hit, np.ascontiguousarray(cos_i, dtype=float).reshape(-1),
                             np.ascontiguousarray(cos_e, dtype=float).reshape(-1), lit, m0, m)
    return lit.reshape(np.shape(on_disc)), m0[:n], m[:n]


def _minnaert(k: float, m0: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The lit pixels' ``mu0^k mu^(k-1)`` (1 for k = 0, ``mu0`` for k = 1), by numpy's
    powers (its ``pow`` may be a SIMD one, not libm's)."""
    if k == 0:
        return np.ones(m0.size)
    return m0 if k == 1 else m0 ** k * m ** (k - 1.0)


def predicted_shading(state: FrameState, band: str, *, line0: int, line1: int, samp0: int,
                      samp1: int, psf_sigma_px: float = PSF_SIGMA_PX,
                      exponents: tuple[float, ...] | None = None):
    """Predicted relative radiance of the lit disc on a band canvas.

    Lambert ``cos i`` by default; with ``exponents``, one canvas per Minnaert
    exponent k (``mu0^k mu^(k-1)``), so that a fit can combine them: Io's
    photometric function is not known a priori, and the limb position must not
    depend on it. Canvas rows ``line0..line1-1`` and columns ``samp0..samp1-1``
    of the band strip's pixel coordinates (they may extend beyond the strip).
    The limb is anti-aliased by 4x4 super-sampling, the canvas blurred by a
    Gaussian PSF. Returns ``(canvas, limb)`` (a list of canvases with
    ``exponents``): ``limb`` marks lit pixels the limb crosses.
    """
    ks = (1.0,) if exponents is None else tuple(exponents)
    canvases, limb = _shading(state, band, line0=line0, line1=line1, samp0=samp0, samp1=samp1,
                              psf_sigma_px=psf_sigma_px, exponents=ks)
    return (canvases[0] if exponents is None else canvases), limb


def _shading(state, band, *, line0, line1, samp0, samp1, psf_sigma_px, exponents):
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
    # the box's pixel centres, their limb pixels and those pixels' 4 x 4 sub-pixel
    # centres, each in one compiled loop, the ray-tracing constants taken once for both
    # traces; each exponent's values written straight into its canvas, the limb pixels'
    # sub-pixel means over them (stop 37; the numpy steps, the same values, are
    # tests/_speed_reference.py's shading_numpy)
    rays = DiscRays.of(state, band)
    box = (hi_l - lo_l, hi_s - lo_s)
    inner = (slice(lo_l - line0, hi_l - line0), slice(lo_s - samp0, hi_s - samp0))
    line, sample = np.empty(box[0] * box[1]), np.empty(box[0] * box[1])
    supersample.box_positions(lo_l, hi_l, lo_s, hi_s, line, sample)
    hit, cos_i, cos_e = (a.reshape(box) for a in rays.cosines(line, sample))
    lit, m0, m = _lit_factors(hit, cos_i, cos_e)
    for canvas, k in zip(canvases, exponents, strict=True):
        supersample.scatter_lit(lit, _minnaert(k, m0, m), canvas[inner])
    edge = np.empty_like(hit)
    n_edge = supersample.limb_crossings(hit, edge)
    if n_edge:
        line, sample = np.empty(n_edge * _SUB_PX**2), np.empty(n_edge * _SUB_PX**2)
        supersample.subpixel_positions(edge, lo_l, lo_s, _SUB_OFFSETS, line, sample)
        lit, m0, m = _lit_factors(*rays.cosines(line, sample))
        for canvas, k in zip(canvases, exponents, strict=True):
            supersample.put_means(lit, _minnaert(k, m0, m), edge, canvas[inner])
    # mu0 = clip(nan_to_num(cos i, nan=-1), 0) > 0.05 is cos i > 0.05 (NaN: False)
    limb[inner] = edge & (cos_i > 0.05)
    # the blur reaches ceil(4 sigma) px beyond the box (scipy truncates at 4 sigma); the
    # canvas is 0 elsewhere, so blurring that window alone gives the same numbers
    pad = int(np.ceil(4.0 * psf_sigma_px)) + 2
    win = (slice(max(lo_l - line0 - pad, 0), min(hi_l - line0 + pad, nl)),
           slice(max(lo_s - samp0 - pad, 0), min(hi_s - samp0 + pad, ns)))
    if psf_sigma_px > 0:  # scipy's gaussian_filter(mode="constant"), the same bits
        for canvas in canvases:
            canvas[win] = gaussian_blur_constant(canvas[win], psf_sigma_px)
    return canvases, limb
