"""Limb registration: find a frame's pointing correction from Io's lit disc.

The reconstructed attitude of JIRAM frames can be off by a rotation about
Juno's spin axis of up to ~10 deg (a pass-wide ~7-7.7 deg from orbit 44-51 on:
css.earth's registrations of real PJ51/57/58 frames, -518 to -564 lines;
Perry et al. 2025 shift frame times by 0.62 s), plus a small cross-spin part.
The correction is the rotation ``(along, cross)`` of
:func:`iovolc.geometry.pointing_correction`.

Two stages:

1. **Coarse, wide** (:func:`_coarse_canvas`, :func:`_coarse_match`): the predicted lit disc (Lambert
   ``cos i`` from the reconstructed geometry) is drawn on a canvas in
   *spin coordinates* of the instrument frame: ``phi`` = angle about the spin
   axis, ``psi`` = angle from the spin plane. A rotation about the spin axis
   is an exact shift in ``phi``, so the whole +-10 deg x +-0.5 deg search is a
   normalised cross-correlation of the observed band strips (resampled onto
   the same grid, hotspots clipped) with that canvas, summed over the bands.
2. **Fine** (:func:`_fine_fit`): with the coarse correction applied, the
   anti-aliased, PSF-blurred predicted disc is matched again over +-8 px, then
   refined by Gauss-Newton on the pixels near the lit limb (amplitude and
   offset free per band; the limb is sharp whatever the albedo). The pixel
   residual becomes a rotation increment through the numerical Jacobian of
   the projection, and the loop repeats until it converges.

A fit is *accepted* only when enough lit limb falls in the frame, the
correlation is high, the formal error small and the coarse peak not on the
search edge. The pass-level consensus (:mod:`iovolc.pointing`) then rejects
fits that disagree with the rest of the pass as false fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from iovolc import compiled, imaging, raytrace
from iovolc.geometry import (
    FrameState,
    centre_direction_inst,
    disc_cosines_directions,
    disc_radius_rad,
)
from iovolc.separable import gaussian_blur_reflect, sample_linear_nearest, spline_filter_cubic
from iovolc.shading import PSF_SIGMA_PX, predicted_shading

#: default search half-ranges (deg): along the spin, across it
SEARCH_ALONG_DEG = 10.0
SEARCH_CROSS_DEG = 0.5
#: coarse grid step in pixels (IFOV units)
COARSE_STEP_PX = 2
#: Minnaert exponents the fine fit tries (1 = Lambert, 0 = a uniform lit silhouette); the
#: one whose limb profile fits best is kept. Io's photometric function is not known a priori, and a wrong one
#: shifts the fitted limb (a Lambert model on a k = 0.7 disc: ~0.3 px). Combining two
#: of them linearly was tried: nearly degenerate with the edge, it biased the fit ~1 px.
FIT_EXPONENTS = (1.0, 0.8, 0.6, 0.0)


@dataclass(frozen=True)
class LimbFit:
    """A frame's fitted pointing correction (radians) and how much to trust it."""

    along_rad: float
    cross_rad: float
    ok: bool
    correlation: float
    n_limb_px: int
    reason: str = ""
    sigma_along_rad: float = float("nan")
    sigma_cross_rad: float = float("nan")
    #: formal error of the fine fit, pixels
    sigma_px: float = float("nan")


# --- spin coordinates ------------------------------------------------------------------


def _spin_basis(spin_axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e_s = spin_axis / np.linalg.norm(spin_axis)
    z = np.array([0.0, 0.0, 1.0])
    e_z = z - (z @ e_s) * e_s
    e_z /= np.linalg.norm(e_z)
    return np.cross(e_s, e_z), e_s, e_z  # e_x, e_s, e_z


def _to_spin(d: np.ndarray, basis) -> tuple[np.ndarray, np.ndarray]:
    e_x, e_s, e_z = basis
    return np.arctan2(d @ e_x, d @ e_z), np.arcsin(np.clip(d @ e_s, -1, 1))


def _from_spin(phi, psi, basis) -> np.ndarray:
    """Unit directions (n, m, 3) on the open grid of spin angles ``phi`` (a column,
    (n, 1)) and ``psi`` (a row, (1, m)), in float64: the angles' sines and cosines here,
    the grid's ``cos psi (sin phi e_x + cos phi e_z) + sin psi e_s`` in one compiled
    pass (:func:`iovolc.raytrace.spin_grid`, stop 27), the same bits as numpy's
    broadcast of that expression for finite angles (a NaN's sign bit may differ)."""
    e_x, e_s, e_z = basis
    phi, psi = np.asarray(phi, dtype=float), np.asarray(psi, dtype=float)
    if not (phi.ndim == 2 and phi.shape[1] == 1 and psi.ndim == 2 and psi.shape[0] == 1):
        raise ValueError(f"_from_spin: an open grid is a column of phi and a row of psi, "
                         f"got shapes {phi.shape} and {psi.shape}")
    row = np.sin(phi) * e_x + np.cos(phi) * e_z  # (n, 3)
    col = np.sin(psi[0])[:, None] * e_s  # (m, 3)
    out = np.empty((phi.shape[0], psi.shape[1], 3))
    raytrace.spin_grid(row, np.cos(psi[0]), col, out.reshape(-1))  # all fresh, C order
    return out


def _lambert(state: FrameState, d_inst: np.ndarray) -> np.ndarray:
    """cos(incidence) (>= 0) of instrument-frame rays under ``state``; 0 off the disc."""
    hit, cos_i, _ = disc_cosines_directions(state, d_inst @ state.inst_to_j2000.T)
    return np.where(hit, np.clip(np.nan_to_num(cos_i, nan=0.0), 0.0, None), 0.0)


# --- stage 1 ----------------------------------------------------------------------------


def _coarse_canvas(bands: tuple[str, ...], state: FrameState, *, along: tuple[float, float],
                   cross: tuple[float, float], step_rad: float):
    """The predicted lit disc on the spin grid that the strips shifted by every correction
    searched can see, with the grid's layout; None when no lit disc falls on it."""
    basis = _spin_basis(state.spin_axis)
    templates = {}
    for band in bands:
        cam = state.camera(band)
        ll, ss = np.meshgrid([-0.5, cam.n_lines - 0.5], [-0.5, cam.n_samples - 0.5],
                             indexing="ij")
        phi, psi = _to_spin(cam.directions(ll, ss), basis)
        templates[band] = (phi.min(), phi.max(), psi.min(), psi.max())
    # observed(phi, psi) = predicted(phi + along, psi - cross): the canvas spans the
    # strips shifted by every correction searched
    phi0 = min(t[0] for t in templates.values()) + along[0] - step_rad
    phi1 = max(t[1] for t in templates.values()) + along[1] + step_rad
    psi0 = min(t[2] for t in templates.values()) - cross[1] - step_rad
    psi1 = max(t[3] for t in templates.values()) - cross[0] + step_rad
    n_phi = int(np.ceil((phi1 - phi0) / step_rad)) + 1
    n_psi = int(np.ceil((psi1 - psi0) / step_rad)) + 1
    canvas = np.zeros((n_phi, n_psi))
    # the predicted disc only where it can be
    c_phi, c_psi = _to_spin(centre_direction_inst(state)[None, :], basis)
    r = disc_radius_rad(state) + 2 * step_rad
    i0 = int(np.clip(np.floor((c_phi[0] - r - phi0) / step_rad), 0, n_phi))
    i1 = int(np.clip(np.ceil((c_phi[0] + r - phi0) / step_rad) + 1, 0, n_phi))
    j0 = int(np.clip(np.floor((c_psi[0] - r - psi0) / step_rad), 0, n_psi))
    j1 = int(np.clip(np.ceil((c_psi[0] + r - psi0) / step_rad) + 1, 0, n_psi))
    if i1 <= i0 or j1 <= j0 or np.cos(c_phi[0]) < 0:
        return None
    # open grids: phi down the rows, psi across (each angle's sine and cosine once)
    pg = (phi0 + step_rad * np.arange(i0, i1))[:, None]
    sg = (psi0 + step_rad * np.arange(j0, j1))[None, :]
    canvas[i0:i1, j0:j1] = _lambert(state, _from_spin(pg, sg, basis))
    if canvas.max() <= 0:
        return None
    return canvas, basis, templates, phi0, psi0


def _band_template(band: str, img, state: FrameState, drawn, step_rad: float,
                   levels: StripLevels):
    """A band strip's coarse NCC template on the spin grid, aligned with the canvas grid:
    ``(a0, b0, template)``, the template's first row and column on the canvas (integer
    offsets); the template None when the strip has too few usable pixels. ``levels``:
    the strip's :func:`_strip_levels`."""
    _, basis, templates, phi0, psi0 = drawn
    t_phi0, t_phi1, t_psi0, t_psi1 = templates[band]
    a0 = int(np.floor((t_phi0 - phi0) / step_rad))
    b0 = int(np.floor((t_psi0 - psi0) / step_rad))
    na = int(np.ceil((t_phi1 - phi0) / step_rad)) - a0 + 1
    nb = int(np.ceil((t_psi1 - psi0) / step_rad)) - b0 + 1
    tp = (phi0 + step_rad * np.arange(a0, a0 + na))[:, None]
    ts = (psi0 + step_rad * np.arange(b0, b0 + nb))[None, :]
    line, sample = state.camera(band).pixels(_from_spin(tp, ts, basis))
    return a0, b0, _strip_template(img, line, sample,
                                   step_rad / state.camera(band).ifov_rad, levels=levels)


def _score_grid(*, along: tuple[float, float], cross: tuple[float, float],
                step_rad: float) -> np.ndarray:
    """The coarse match's (along, cross) cells, zeroed: one per grid step of the search."""
    n_a = int(round((along[1] - along[0]) / step_rad)) + 1
    n_c = int(round((cross[1] - cross[0]) / step_rad)) + 1
    return np.zeros((n_a, n_c))


def _best_cell(total: np.ndarray, n_strips: int, *, along: tuple[float, float],
               cross: tuple[float, float], step_rad: float):
    """The best cell of the strips' summed scores: ``(along, cross, mean NCC, on the
    search's edge)``."""
    total /= max(1, n_strips)
    k, m = np.unravel_index(int(np.argmax(total)), total.shape)
    on_edge = k in (0, total.shape[0] - 1) or m in (0, total.shape[1] - 1)
    return (along[0] + k * step_rad, cross[0] + m * step_rad, float(total[k, m]), on_edge)


def _add_scores(total: np.ndarray, res: np.ndarray, a0: int, b0: int, *,
                along: tuple[float, float], cross: tuple[float, float],
                step_rad: float) -> bool:
    """Add a band's NCC over the canvas (``res``, its template at ``(a0, b0)``) to the
    (along, cross) cells of ``total``; False when the search leaves the canvas."""
    n_a, n_c = total.shape
    # observed(phi) = predicted(phi + along): template at canvas row a0 + along/step
    ia = a0 + int(round(along[0] / step_rad))
    ic = b0 - int(round(cross[1] / step_rad))
    if ia < 0 or ic < 0:
        return False
    sub = res[ia:ia + n_a, ic:ic + n_c]
    if sub.shape != total.shape:
        return False
    total += sub[:, ::-1]  # cross increases as psi offsets decrease
    return True


def _coarse_match(strips: dict, state: FrameState, drawn, *, along: tuple[float, float],
                  cross: tuple[float, float], step_rad: float, levels: dict):
    """Stage 1's NCC of the strips with the canvas of :func:`_coarse_canvas`.

    A template window that holds no lit canvas row correlates to exactly 0 (a flat
    window), so the correlation runs on the canvas rows that some window touching the
    disc can reach (stop 25): a distant disc fills a few tens of the ~800 rows of the
    +-10 deg search. The window sums are the same bits (the rows left out are zeros);
    the correlation's FFT is shorter, so it differs by rounding (~1e-16 of the peak).
    ``levels``: each strip's :func:`_strip_levels`."""
    canvas = drawn[0]
    total = _score_grid(along=along, cross=cross, step_rad=step_rad)
    matched = [t for band, (img, _) in strips.items()
               if (t := _band_template(band, img, state, drawn, step_rad,
                                       levels[band]))[2]
               is not None]
    lit = np.flatnonzero(canvas.any(axis=1))  # not empty: the canvas has a lit disc
    m_max = max((t.shape[0] for _, _, t in matched), default=1)
    # every window that reaches a lit row (at least a template's height of rows)
    r0 = max(int(lit[0]) - m_max + 1, 0)
    r1 = min(int(lit[-1]) + m_max, canvas.shape[0])
    crop = canvas[r0:r1]
    spectrum = imaging.image_spectrum(crop) if matched else None
    for a0, b0, tmpl in matched:
        res = np.zeros((canvas.shape[0] - tmpl.shape[0] + 1, canvas.shape[1] - tmpl.shape[1] + 1))
        part = imaging.ncc(crop, tmpl, spectrum=spectrum)
        res[r0:r0 + part.shape[0]] = part
        if not _add_scores(total, res, a0, b0, along=along, cross=cross, step_rad=step_rad):
            return None
    return _best_cell(total, len(strips), along=along, cross=cross, step_rad=step_rad)


class StripLevels(NamedTuple):
    """A strip's usable pixels and the levels its NCC templates tame it with (0.0 without
    a usable pixel): :func:`_strip_levels`."""

    usable: np.ndarray
    n_usable: int
    median: float
    p99_5: float
    p99_7: float


def _strip_levels(img, valid) -> StripLevels:
    """:class:`StripLevels` of the usable (valid, finite) values of a strip. Taken once
    per frame (stop 26): the coarse template and the fine one used the same median,
    each computed it."""
    v = valid & np.isfinite(img)
    n = int(v.sum())
    if not n:
        return StripLevels(v, 0, 0.0, 0.0, 0.0)
    return StripLevels(v, n, *imaging.median_and_percentiles(img[v], (99.5, 99.7)))


def _strip_template(img, line, sample, binning: float,
                    levels: StripLevels) -> np.ndarray | None:
    """The band strip resampled onto the spin grid, hotspots and spikes tamed
    (``levels``: :func:`_strip_levels` of ``img`` and its valid pixels)."""
    if levels.n_usable < 100:
        return None
    v, med = levels.usable, levels.median
    x = np.where(v, np.clip(img, None, max(levels.p99_5, med)), med)
    if binning > 1.2:  # block-average to the grid step before sampling
        x = gaussian_blur_reflect(x, 0.5 * binning)  # scipy's gaussian_filter, compiled
    # np.where(inside the strip, map_coordinates(x, ..., order=1, mode="nearest"), med),
    # compiled (stop 36; the scipy form in tests/_speed_reference.py)
    out = sample_linear_nearest(x, line, sample, med)
    return out if np.ptp(out) > 0 else None


# --- stage 2 ------------------------------------------------------------------------


def _jacobian(state: FrameState, band: str, along: float, cross: float) -> np.ndarray:
    """d(line, sample)/d(along, cross) of a fixed sky direction at the strip centre."""
    cam = state.camera(band)
    base = state.corrected(along, cross)
    w = base.inst_to_j2000 @ cam.directions(0.5 * (cam.n_lines - 1), 0.5 * (cam.n_samples - 1))
    eps = 1e-5
    cols = []
    p0 = np.array(cam.pixels(base.inst_to_j2000.T @ w))
    for da, dc in ((eps, 0.0), (0.0, eps)):
        s = state.corrected(along + da, cross + dc)
        cols.append((np.array(cam.pixels(s.inst_to_j2000.T @ w)) - p0) / eps)
    return np.column_stack(cols)


def _fine_fit(strips: dict, state: FrameState, *, along: float, cross: float, search_px: int,
              psf_sigma_px: float, levels: dict, templates: dict | None = None,
              stacks: dict | None = None):
    """One fine pass at (along, cross): pixel shift, its sigma, NCC peak, limb pixels.

    The predicted disc is drawn once per Minnaert exponent of
    :data:`FIT_EXPONENTS`; the integer shift comes from the Lambert canvas, the
    sub-pixel shift from the exponent whose limb profile fits best (smallest
    reduced chi-square). ``levels``: each strip's :func:`_strip_levels`;
    ``templates``: the strips' NCC templates, ``stacks``: :func:`_limb_zones`'s stacked
    strips, kept between the passes of one fit.
    """
    templates = {} if templates is None else templates
    canvases = {}
    ncc, n_used = None, 0
    s_c = state.corrected(along, cross)
    for band, (img, _) in strips.items():
        nl, ns = img.shape
        stack, limb = predicted_shading(s_c, band, line0=-search_px, line1=nl + search_px,
                                        samp0=-search_px, samp1=ns + search_px,
                                        psf_sigma_px=psf_sigma_px, exponents=FIT_EXPONENTS)
        canvases[band] = (stack, limb)
        if not limb.any():
            continue
        if band not in templates:  # the strip, hotspots tamed: the same at every pass
            lv = levels[band]
            tmpl = np.where(lv.usable, np.clip(img, None, max(lv.p99_7, lv.median)), lv.median)
            templates[band] = None if np.ptp(tmpl) == 0 else imaging.Template(tmpl)
        if templates[band] is None:
            continue
        res = imaging.ncc(stack[0], templates[band])
        ncc = res if ncc is None else ncc + res
        n_used += 1
    if ncc is None:
        return None
    ncc = ncc / n_used  # the mean over the strips Io is predicted on
    i, j = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
    # res[i, j]: the strip's (0, 0) at canvas (i, j) = predicted (i - S, j - S); a scene
    # observed d lines further than predicted gives i = S - d
    start = (float(search_px - i), float(search_px - j))
    peak = float(ncc[i, j])
    best = None
    fitted = _limb_zones(strips, canvases, levels=levels, stacks=stacks)
    for k in range(len(FIT_EXPONENTS)):
        d_line, d_samp, sigma, red_chi2 = _fit_exponent(canvases, fitted, k,
                                                        search_px=search_px, start=start)
        if best is None or red_chi2 < best[3]:
            best = (d_line, d_samp, sigma, red_chi2)
    d_line, d_samp, sigma, _ = best
    n_limb = 0
    for band, (img, _) in strips.items():
        limb = canvases[band][1]
        r0 = int(round(search_px - d_line))
        c0 = int(round(search_px - d_samp))
        n_limb += int(limb[max(r0, 0):max(r0 + img.shape[0], 0),
                           max(c0, 0):max(c0 + img.shape[1], 0)].sum())
    return d_line, d_samp, float(np.hypot(*sigma)), peak, n_limb


def _fit_exponent(canvases: dict, fitted, k: int, *, search_px: int, start):
    """Gauss-Newton from ``start`` on canvas ``k`` of each band of ``fitted``
    (:func:`_limb_zones`): ``(d_line, d_samp, (sigma_line, sigma_samp), reduced chi2)``;
    the start, infinite sigmas and chi2 when no band has a limb or no step was made."""
    if fitted is None:  # no band has a predicted limb: nothing constrains the shift
        return *start, (np.inf, np.inf), np.inf
    bands, *inputs = fitted
    coeffs = _stacked_coefficients([canvases[b][0][k] for b in bands])
    d_line, d_samp, s_line, s_samp, red_chi2 = compiled.fit_shift_spanned(
        coeffs, *inputs, search_px, float(start[0]), float(start[1]), 8)
    return d_line, d_samp, (s_line, s_samp), red_chi2


def _limb_zones(strips: dict, canvases: dict, *, levels: dict, stacks: dict | None = None):
    """What no exponent changes of the fit's inputs
    (:func:`iovolc.compiled.fit_shift_spanned`),
    for the bands with a predicted limb, in order: their canvas shapes, the pixels within
    3 px of the limb, the zones' row spans and room (:func:`iovolc.compiled.zone_spans`,
    taken once for every exponent), the strips' usable pixels and values (one array
    each, the bands along the first axis, padded to common shapes); None when no band
    has a limb. ``levels``: each strip's :func:`_strip_levels` (their usable pixels);
    ``stacks``: the last two by the bands, kept between the passes of one fit (they do
    not change: stop 28)."""
    bands = [band for band in strips if canvases[band][1].any()]
    if not bands:
        return None
    shapes = np.array([canvases[b][1].shape for b in bands], dtype=np.int64)
    zones = _stacked([imaging.grow(canvases[b][1], 3) for b in bands], False)
    stacks = {} if stacks is None else stacks
    if tuple(bands) not in stacks:
        stacks[tuple(bands)] = (
            _stacked([levels[b].usable for b in bands], False),
            _stacked([np.asarray(strips[b][0], dtype=float) for b in bands], 0.0))
    usable, imgs = stacks[tuple(bands)]
    z_span, room = compiled.zone_spans(shapes, zones, usable)
    return bands, shapes, zones, z_span, room, usable, imgs


def _stacked(arrays: list, fill) -> np.ndarray:
    """2-D arrays stacked along a new first axis, padded with ``fill`` to common shapes."""
    n0 = max(a.shape[0] for a in arrays)
    n1 = max(a.shape[1] for a in arrays)
    out = np.full((len(arrays), n0, n1), fill, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, :a.shape[0], :a.shape[1]] = a
    return out


#: zeros kept around a canvas's lit part when its spline coefficients are computed: the
#: cubic B-spline prefilter's pole is z = sqrt(3) - 2, and |z|^32 ~ 5e-19
_SPLINE_PAD_PX = 32


def _spline_coefficients(canvas: np.ndarray, *, out: np.ndarray | None = None
                         ) -> np.ndarray:
    """``spline_filter(canvas, order=3, mode="constant")`` of a canvas that is 0 outside its
    lit part: computed on that part and 32 px of zeros around it, 0 beyond (where the
    full filter leaves values ~1e-18 of the disc's, which no limb pixel reads).
    ``out``: a zeroed array of the canvas's shape to write into."""
    out = np.zeros_like(canvas) if out is None else out
    win = imaging.box_of(canvas, _SPLINE_PAD_PX)
    if win is None:
        return out
    out[win] = spline_filter_cubic(canvas[win])  # scipy's, the same bits (compiled)
    return out


def _stacked_coefficients(canvases: list[np.ndarray]) -> np.ndarray:
    """``_stacked([compiled.padded(_spline_coefficients(c)) for c in canvases], 0.0)``, the
    same values written in place: each canvas's coefficients straight into its padded
    slot, the reflected border copied from them (stop 22)."""
    pad = compiled.PAD
    out = np.zeros((len(canvases), max(c.shape[0] for c in canvases) + 2 * pad,
                    max(c.shape[1] for c in canvases) + 2 * pad))
    for b, canvas in enumerate(canvases):
        n0, n1 = canvas.shape
        if n0 <= pad or n1 <= pad or canvas.dtype != np.float64:
            # np.pad's reflection repeats on so small a canvas; another dtype rounds the
            # coefficients to it first: the form this replaced, as it was
            out[b, :n0 + 2 * pad, :n1 + 2 * pad] = compiled.padded(_spline_coefficients(canvas))
            continue
        slot = out[b, :n0 + 2 * pad, :n1 + 2 * pad]
        _spline_coefficients(canvas, out=slot[pad:pad + n0, pad:pad + n1])
        for k in range(1, pad + 1):  # np.pad's "reflect": rows first, then columns
            slot[pad - k, pad:pad + n1] = slot[pad + k, pad:pad + n1]
            slot[pad + n0 - 1 + k, pad:pad + n1] = slot[pad + n0 - 1 - k, pad:pad + n1]
        for k in range(1, pad + 1):
            slot[:, pad - k] = slot[:, pad + k]
            slot[:, pad + n1 - 1 + k] = slot[:, pad + n1 - 1 - k]
    return out


# --- public ------------------------------------------------------------------------


def register_frame(
    strips: dict,
    state: FrameState,
    *,
    prior: tuple[float, float] | None = None,
    search_along_rad: float = np.radians(SEARCH_ALONG_DEG),
    search_cross_rad: float = np.radians(SEARCH_CROSS_DEG),
    min_limb_px: int = 40,
    min_correlation: float = 0.3,
    max_sigma_px: float = 0.3,
    psf_sigma_px: float = PSF_SIGMA_PX,
    fine_search_px: int = 8,
) -> LimbFit:
    """Fit the pointing correction of one frame from Io's lit limb.

    ``strips``: ``{band: (radiance strip, valid mask)}`` of the frame (128
    lines each). ``state``: the frame with its *reconstructed* attitude.
    ``prior``: ``(along, cross)`` to search around (e.g. the pass solution)
    instead of around zero; the search half-ranges apply around it.
    """
    if not strips:
        return LimbFit(0.0, 0.0, False, 0.0, 0, "no band strip to register")
    a0, c0 = prior if prior is not None else (0.0, 0.0)
    ifov = min(state.camera(b).ifov_rad for b in strips)
    step = COARSE_STEP_PX * ifov
    box = dict(along=(a0 - search_along_rad, a0 + search_along_rad),
               cross=(c0 - search_cross_rad, c0 + search_cross_rad), step_rad=step)
    # the canvas first: a frame of Jupiter (most of the archive) stops here, unread
    drawn = _coarse_canvas(tuple(strips), state, **box)
    if drawn is None:
        return LimbFit(a0, c0, False, 0.0, 0, "no lit disc is predicted in the search range")
    strips = {b: (img, valid & ~imaging.hot_pixels(img, valid)) for b, (img, valid) in strips.items()}
    levels = {b: _strip_levels(img, valid) for b, (img, valid) in strips.items()}
    coarse = _coarse_match(strips, state, drawn, levels=levels, **box)
    if coarse is None:
        return LimbFit(a0, c0, False, 0.0, 0, "no lit disc is predicted in the search range")
    along, cross, coarse_ncc, on_edge = coarse
    band0 = next(iter(strips))
    sigma_px, peak, n_limb = float("nan"), 0.0, 0
    templates: dict = {}
    stacks: dict = {}
    for _ in range(4):  # (the Jacobian is taken in the loop: at least one pass runs)
        fine = _fine_fit(strips, state, along=along, cross=cross, search_px=fine_search_px,
                         psf_sigma_px=psf_sigma_px, levels=levels, templates=templates,
                         stacks=stacks)
        if fine is None:
            return LimbFit(along, cross, False, coarse_ncc, 0,
                           "the lit limb does not fall in the frame")
        d_line, d_samp, sigma_px, peak, n_limb = fine
        jac = _jacobian(state, band0, along, cross)
        # observed = predicted + (d_line, d_samp) -> the correction moves the prediction there
        delta = np.linalg.solve(jac, [d_line, d_samp])
        along += float(delta[0])
        cross += float(delta[1])
        if np.hypot(d_line, d_samp) < 0.02:
            break
    sig = np.abs(np.linalg.solve(jac, [sigma_px, sigma_px])) if np.isfinite(sigma_px) \
        else np.array([np.nan, np.nan])
    if on_edge:
        ok, why = False, "the best coarse match lies on the edge of the search range"
    elif n_limb < min_limb_px:
        ok, why = False, f"lit limb pixels in the frame {n_limb} < {min_limb_px}"
    elif not sigma_px <= max_sigma_px:
        ok, why = False, f"formal offset error {sigma_px:.2f} px > {max_sigma_px} px"
    elif peak < min_correlation:
        ok, why = False, f"disc correlation {peak:.2f} < {min_correlation}"
    else:
        ok, why = True, ""
    return LimbFit(along, cross, ok, peak, n_limb, why, float(sig[0]), float(sig[1]), sigma_px)
