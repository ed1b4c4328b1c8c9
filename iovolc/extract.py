"""Hotspot extraction: background, threshold, segmentation, centroid, power.

For each band strip of a calibrated, geometrically registered frame:

1. **Background**. The lit disc is modelled as predicted Minnaert shading
   ``S`` (anti-aliased limb, from the registered geometry; the exponent that
   fits this strip best, :func:`fitted_shading`) times a smooth albedo field
   ``R`` (sigma-clipped local mean of ``image / S`` where the disc is well
   lit); the sky and the night side get a sigma-clipped local mean over a
   wider window. Two passes: the second without the sources found by the
   first. Frames whose pointing could not be registered fall back to a median
   filter (and are flagged).
2. **Noise**: a local robust scatter (MAD of the residual, 15 px windows),
   floored by the frame's sky scatter, plus the background's own uncertainty
   at the limb (:func:`limb_model_sigma`: pointing uncertainty x gradient).
3. **Detection**: regional maxima of the residual SNR with a prominence
   (h-maxima in asinh(SNR/4)) above ``k_sigma`` (5; the published "median +
   5 x MAD") that are not lone spikes (a PSF-blurred source always lights a
   neighbour), deblended by watershed segmentation of the residual above 1
   sigma, each segment at least the 3 px aperture around its peak.
4. **Measurement**: background-subtracted peak and segment sum; sub-pixel
   centre by a PSF fit on a local plane (compact, unsaturated sources) or by
   first moments of the source's own segment (saturated or resolved ones);
   geometry at the centre, spectral power by the published relation, flags
   (a segment cut by the strip's border is FRAME_EDGE).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.special import erf
from skimage.segmentation import watershed

from iovolc import compiled, imaging, jiram, linefit, physics
from iovolc.detections import detection_rows, detection_table
from iovolc.geometry import FrameState, disc_pixel_box, pixel_geometry
from iovolc.separable import zoom_linear_nearest
from iovolc.shading import predicted_shading

K_SIGMA = 5.0
CONFIDENT_SNR = 8.0
HIGH_EMISSION_DEG = 75.0
APERTURE_RADIUS_PX = 3
#: the background of the sky and the night side uses a window this many times wider
NIGHT_WINDOW_FACTOR = 3
#: Minnaert exponents tried for the lit disc's photometry (:func:`fitted_shading`)
PHOTOMETRY_EXPONENTS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
#: smallest limb misplacement (px) the background's limb uncertainty assumes (PSF and
#: photometry mismatch, limb-fit error): :func:`limb_model_sigma`
LIMB_SHIFT_FLOOR_PX = 0.3
#: sources are masked, grown by this many pixels, for the second background pass
SOURCE_MASK_GROW_PX = 4


@dataclass(frozen=True)
class ExtractionConfig:
    """Detection thresholds (documented in docs/decisions.md)."""

    k_sigma: float = K_SIGMA
    confident_snr: float = CONFIDENT_SNR
    high_emission_deg: float = HIGH_EMISSION_DEG
    background_size_px: int = 15
    noise_size_px: int = 15
    psf_sigma_px: float = 0.7


def _clipped_local_mean(img, weight, size, *, n_iter=3, clip=3.0):
    """Local mean of ``img`` over pixels with ``weight`` (sigma-clipped; compiled:
    :func:`iovolc.compiled.clipped_local_mean`).

    On a finite image, computed on the box of the weighted pixels and a window's reach
    around it, NaN beyond (stop 25: a distant disc's albedo field is a few hundred of a
    strip's 55,000 pixels). The same bits: outside the box every weight is 0, so the
    running sums enter it at exactly 0 as they do in the whole image, and no window
    beyond it holds a weight."""
    img = np.ascontiguousarray(img, dtype=float)
    weight = np.ascontiguousarray(weight, dtype=bool)
    size = int(size)
    win = imaging.box_of(weight, size // 2 + 1)
    if (win is None or size < 1 or n_iter < 1 or not np.isfinite(img).all()
            or (win[0].stop - win[0].start) * (win[1].stop - win[1].start) > 0.8 * img.size):
        return compiled.clipped_local_mean(img, weight, size, int(n_iter), float(clip))
    out = np.full(img.shape, np.nan)
    out[win] = compiled.clipped_local_mean(np.ascontiguousarray(img[win]),
                                           np.ascontiguousarray(weight[win]), size,
                                           int(n_iter), float(clip))
    return out


def background_model(img: np.ndarray, shading: np.ndarray | None, *, valid: np.ndarray,
                     size: int = 15) -> np.ndarray:
    """Background of one band half (see module docstring)."""
    if shading is None:
        filled = np.where(valid, img, imaging.median(img[valid]) if valid.any() else 0.0)
        # most of the strip one fill value: the stable sort ranks it faster (stop 28)
        return imaging.median_filter_nearest(filled, size, plateau=2 * valid.sum() < valid.size)
    top = shading.max()
    lit = shading > 0.2 * top if top > 0 else np.zeros_like(valid)
    dark = shading <= 1e-6
    bg = np.zeros_like(img)
    if (valid & dark).any():
        # the sky and the night side are smooth: a wide window, so a resolved hotspot
        # (tens of pixels at close range) is not taken for background
        sky = _clipped_local_mean(img, valid & dark, NIGHT_WINDOW_FACTOR * size)
        known = np.isfinite(sky)  # the fill's median only where a window had no weight
        bg = sky if known.all() else np.where(known, sky, imaging.nanmedian(sky))
    if (valid & lit).any():
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(lit, img / np.where(lit, shading, 1.0), 0.0)
        r = _clipped_local_mean(ratio, valid & lit, size)
        # extend the albedo field beyond the well-lit pixels (limb, terminator)
        far = ~np.isfinite(r)
        if far.any() and (~far).any():
            r = _nearest_fill(r, far, shading)
        # lit disc: sky/night level plus albedo field x predicted shading
        bg = bg + np.nan_to_num(r) * shading
    return bg


def fitted_shading(state: FrameState, band: str, img: np.ndarray, valid: np.ndarray, *,
                   psf_sigma_px: float,
                   exponents: tuple[float, ...] = PHOTOMETRY_EXPONENTS):
    """The lit disc's predicted shading on a band strip, with the Minnaert exponent
    that fits this image best: ``(canvas, k)``.

    Io's photometric function is not known a priori (it changes with band, phase
    and terrain; Minnaert k of about 0.5-0.9 is typical of icy and rocky
    surfaces at 3-5 um), and a Lambert model under a limb-brightened disc leaves a
    bright ring at the limb that reads as a chain of false hotspots. Each canvas
    ``mu0^k mu^(k-1)`` (PSF-blurred) is fitted as ``a S_k + c`` to the strip's
    valid pixels (compact hot features masked) within 2 px of the disc; the
    lowest residual wins. ``(None, nan)`` when Io is not on the strip.
    """
    n_l, n_s = img.shape
    canvases, _ = predicted_shading(state, band, line0=0, line1=n_l, samp0=0, samp1=n_s,
                                    psf_sigma_px=psf_sigma_px, exponents=exponents)
    if not any(c.max() > 0 for c in canvases):
        return None, float("nan")
    lit = canvases[0] > 0  # any canvas's lit pixels (no stacked copy of the canvases)
    for c in canvases[1:]:
        lit |= c > 0
    near = imaging.grow(lit, 2)
    use = near & valid & np.isfinite(img) & ~imaging.hot_pixels(
        img, valid, within=imaging.box_of(near, 0))
    if use.sum() < 20:
        return canvases[0], float(exponents[0])
    y = img[use]
    best = linefit.clear_choice(canvases, use, y)  # lstsq's choice, when no tie (stop 28)
    if best is None:
        best = _lstsq_choice(canvases, use, y)
    return canvases[best], float(exponents[best])


def _lstsq_choice(canvases: list[np.ndarray], use: np.ndarray, y: np.ndarray) -> int:
    """The canvas of positive amplitude whose ``lstsq`` fit ``a S + c`` to ``y`` (``img[use]``)
    leaves the smallest residual sum of squares (the first on a tie; 0 when none)."""
    best, best_rss = 0, np.inf
    for i, c in enumerate(canvases):
        a = np.column_stack([c[use], np.ones(use.sum())])
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        rss = float(np.sum((y - a @ coef) ** 2))
        if coef[0] > 0 and rss < best_rss:
            best, best_rss = i, rss
    return best


def limb_model_sigma(bg: np.ndarray, shading: np.ndarray, *, pointing_sigma_px: float,
                     floor_px: float = LIMB_SHIFT_FLOOR_PX) -> np.ndarray:
    """The background model's own uncertainty at the limb, per pixel.

    A sharp edge misplaced by ``d`` px leaves a residual of about ``d x |grad B|``:
    at the limb (a step of the whole disc brightness within a PSF width) a
    fraction of a pixel of pointing error or of PSF/photometry mismatch makes a
    crescent of residuals that reads as a chain of hotspots. Within
    ``ceil(d) + 2`` px of the limb, ``d = max(pointing_sigma_px, floor_px)``
    times the local gradient of the background is added (in quadrature) to the
    noise; elsewhere the smooth albedo field absorbs a small shift and nothing
    is added.
    """
    d = max(float(pointing_sigma_px) if np.isfinite(pointing_sigma_px) else 0.0, floor_px)
    if not shading.max() > 0:
        return np.zeros_like(bg)
    disc = shading > 0.05 * shading.max()  # the blurred canvas is > 0 far beyond the limb
    n_grow = int(np.ceil(d)) + 2
    # Only the zone (within n_grow of the disc's edge) gets a value, and a zone pixel
    # reads the background 2 px away (the 3x3 maximum of central differences): the
    # window of the disc's box widened by n_grow + 3 px (one to spare), where the
    # image has them, gives every zone pixel the bits the whole strip gives it. Where
    # the window meets the image's edge, the erosion's border, the one-sided
    # differences and the filter's reflection are the image's own; elsewhere its
    # margin holds no disc pixel, so nothing it cuts reaches the zone (stop 23). A
    # background with NaN or inf (never the pipeline's) takes the whole strip:
    # scipy's running maximum can carry a NaN from beyond the 3 px it compares.
    win = imaging.box_of(disc, n_grow + 3) if np.isfinite(bg).all() else None
    if win is None:
        win = (slice(None), slice(None))
    disc_w, bg_w = disc[win], bg[win]
    edge = disc_w ^ ndi.binary_erosion(disc_w, border_value=1)
    zone = imaging.grow(edge, n_grow)
    g0, g1 = np.gradient(bg_w)
    grad = ndi.maximum_filter(np.hypot(g0, g1), size=3)
    part = np.where(zone, d * grad, 0.0)
    out = np.zeros(bg.shape, dtype=part.dtype)
    out[win] = part
    return out


def _nearest_fill(r: np.ndarray, far: np.ndarray, shading: np.ndarray) -> np.ndarray:
    """``r`` with each ``far`` pixel given the value of its nearest non-far pixel
    (``ndimage.distance_transform_edt``'s indices), where it can matter.

    The caller multiplies the result by ``shading``, and ``nan_to_num(r) * 0`` adds a
    zero to a background that is never -0.0: a far pixel where ``shading == 0`` keeps
    its NaN. The transform runs on the box of the pixels where ``shading != 0`` (NaN
    too) and of the non-far ones, which holds every pixel a nearest value is taken
    from: the same distances and, the transform's comparisons being of coordinate
    differences, the same choices between equally near pixels (stop 23; the test
    compares with the transform of the whole strip)."""
    win = imaging.box_of(~(shading == 0) | ~far, 0)
    out = r.copy()
    sub = far[win]
    idx = ndi.distance_transform_edt(sub, return_distances=False, return_indices=True)
    out[win] = r[win][tuple(idx)]
    return out


def _local_noise(resid, valid, size):
    """Local robust sigma: MAD in ~size/2 px cells, smoothed over 3x3 cells,
    interpolated back to pixels; floored at 0.8 x the frame's global MAD."""
    block = max(4, size // 2)
    dev = np.abs(resid)
    med = imaging.block_median(dev, valid, block)
    global_ = 1.4826 * imaging.median(dev[valid]) if valid.any() else 0.0
    med = np.where(np.isfinite(med), med, global_ / 1.4826)
    med = imaging.median_filter_nearest(med, 3)  # scipy's median_filter, compiled (stop 36)
    zoom = (resid.shape[0] / med.shape[0], resid.shape[1] / med.shape[1])
    # ndi.zoom(med, zoom, order=1, mode="nearest", grid_mode=True), compiled
    local = 1.4826 * zoom_linear_nearest(med, zoom)
    local = local[:resid.shape[0], :resid.shape[1]]
    return np.maximum(local, 0.8 * global_) + 1e-12


def _label_sums(values: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``ndi.sum_labels(values, labels, 1..n)`` and the pixel count of each label (int),
    as scipy computes them for integer labels within the image's size (its bincounts,
    with the weights in the same order; 0 for a label with no pixel)."""
    lab = np.asarray(labels).ravel()
    if lab.size == 0 or lab.min() < 0 or lab.max() > lab.size or lab.dtype.kind not in "iu":
        idx = np.arange(1, n + 1)
        return (ndi.sum_labels(values, labels, idx),
                ndi.sum_labels(np.ones_like(values), labels, idx).astype(int))
    sums = np.bincount(lab, weights=np.asarray(values).ravel(), minlength=n + 1)
    counts = np.bincount(lab, minlength=n + 1)
    return sums[1:n + 1], counts[1:n + 1].astype(int)


def _centroid(resid, r, s, half=2, *, labels=None, label=0):
    """First-moment centroid in a (2*half+1)^2 window of positive residual; with
    ``labels``, only the pixels of segment ``label`` count (a bright neighbour in the
    window must not pull the centre toward itself)."""
    n_r, n_s = resid.shape
    r0, r1 = max(r - half, 0), min(r + half + 1, n_r)
    s0, s1 = max(s - half, 0), min(s + half + 1, n_s)
    win = np.clip(resid[r0:r1, s0:s1], 0, None)
    if labels is not None:
        win = np.where(labels[r0:r1, s0:s1] == label, win, 0.0)
    tot = win.sum()
    if tot <= 0:
        return float(r), float(s)
    rr, ss = np.mgrid[r0:r1, s0:s1]
    return float((win * rr).sum() / tot), float((win * ss).sum() / tot)


def _window_at(shape, rows, cols, half):
    """The (2*half+1)^2 pixels around each (row, col), offsets row-major (lines slow):
    their clipped indices and whether each lies in an image of ``shape``."""
    off = np.arange(-half, half + 1)
    r = rows[:, None] + np.repeat(off, off.size)[None, :]
    c = cols[:, None] + np.tile(off, off.size)[None, :]
    inside = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    return np.clip(r, 0, shape[0] - 1), np.clip(c, 0, shape[1] - 1), inside


def _gather(a, at):
    """``a`` at :func:`_window_at`'s pixels, 0 outside the image: what the gather from
    ``np.pad(a, half, mode="constant")`` read (stop 29: without the strip's padded copy,
    for a few dozen windows)."""
    r, c, inside = at
    return np.where(inside, a[r, c], a.dtype.type(0))


def _second_moment_sigma(resid, rows, cols, half=2, *, labels=None):
    """RMS width (px) of the positive residual in a window around each peak (with
    ``labels``: of the peak's own segment only, label k + 1 for peak k)."""
    off = np.arange(-half, half + 1)
    dr, ds = np.meshgrid(off, off, indexing="ij")
    at = _window_at(resid.shape, rows, cols, half)
    win = np.clip(_gather(resid, at), 0, None)
    if labels is not None:
        own = _gather(labels, at) == (np.arange(rows.size) + 1)[:, None]
        win = np.where(own, win, 0.0)
    tot = win.sum(1) + 1e-30
    mr = (win * dr.ravel()).sum(1) / tot
    ms = (win * ds.ravel()).sum(1) / tot
    var = (win * ((dr.ravel() - mr[:, None]) ** 2 + (ds.ravel() - ms[:, None]) ** 2)).sum(1) / tot
    return np.sqrt(var / 2.0)


def _psf_fit(resid, rows, cols, *, sigma_px, half=2, n_iter=6):
    """Sub-pixel centres by least-squares fits of the pixel-integrated PSF.

    Vectorised over detections: a Gaussian of fixed width (the instrument
    PSF), free centre and amplitude, on a local background *plane* (offset and
    two slopes: the wing of a brighter neighbour must not pull the centre), on a
    (2*half+1)^2 window around each integer peak. Returns (line, sample, ok);
    ``ok`` is False where the fit did not converge near the peak (use moments).
    """
    n = len(rows)
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, bool)
    off = np.arange(-half, half + 1)
    dr, ds = np.meshgrid(off, off, indexing="ij")
    dr, ds = dr.ravel().astype(float), ds.ravel().astype(float)
    data = _gather(resid, _window_at(resid.shape, rows, cols, half))
    y = np.zeros(n)
    x = np.zeros(n)
    k = 1.0 / (np.sqrt(2.0) * sigma_px)
    g = 1.0 / (np.sqrt(2.0 * np.pi) * sigma_px)
    ok = np.ones(n, bool)
    ones = np.ones((n, dr.size))
    # the window's pixel m is at (off[m // w], off[m % w]): each profile is computed on
    # the w offsets, then repeated (lines) or tiled (samples) over the w x w pixels: the
    # same values, elementwise, for a fifth of the erf and exp calls (stop 34); repeat
    # and tile give C-ordered arrays, so every sum below adds in the same order
    w = off.size
    offf = off.astype(float)
    for _ in range(n_iter):
        ay = offf[None, :] - y[:, None]
        ax = offf[None, :] - x[:, None]
        py = np.repeat(0.5 * (erf((ay + 0.5) * k) - erf((ay - 0.5) * k)), w, axis=1)
        px = np.tile(0.5 * (erf((ax + 0.5) * k) - erf((ax - 0.5) * k)), (1, w))
        dpy = np.repeat(-g * (np.exp(-((ay + 0.5) * k) ** 2) - np.exp(-((ay - 0.5) * k) ** 2)),
                        w, axis=1)
        dpx = np.tile(-g * (np.exp(-((ax + 0.5) * k) ** 2) - np.exp(-((ax - 0.5) * k) ** 2)),
                      (1, w))
        psf = py * px
        # linear: amplitude, offset, slopes along lines and samples (n, m, 4)
        basis = np.stack([psf, ones, np.broadcast_to(dr, psf.shape),
                          np.broadcast_to(ds, psf.shape)], axis=-1)
        ata = np.einsum("nmi,nmj->nij", basis, basis)
        atb = np.einsum("nmi,nm->ni", basis, data)
        good = np.abs(np.linalg.det(ata)) > 1e-12
        coef = np.zeros((n, 4))
        coef[good] = np.linalg.solve(ata[good], atb[good][..., None])[..., 0]
        amp = coef[:, 0]
        res = data - np.einsum("nmi,ni->nm", basis, coef)
        jy = amp[:, None] * dpy * px
        jx = amp[:, None] * py * dpx
        a11 = (jy * jy).sum(1)
        a12 = (jy * jx).sum(1)
        a22 = (jx * jx).sum(1)
        b1 = (jy * res).sum(1)
        b2 = (jx * res).sum(1)
        dd = a11 * a22 - a12 * a12
        good &= (dd > 0) & (amp > 0)
        step_y = np.where(good, (b1 * a22 - b2 * a12) / np.where(good, dd, 1), 0)
        step_x = np.where(good, (a11 * b2 - a12 * b1) / np.where(good, dd, 1), 0)
        y += np.clip(step_y, -0.5, 0.5)
        x += np.clip(step_x, -0.5, 0.5)
        ok &= good
    ok &= (np.abs(y) < 1.0) & (np.abs(x) < 1.0)
    return rows + y, cols + x, ok


#: a local maximum is its own source only if it stands this far above the saddle to a
#: brighter one, in asinh(SNR / 4) units (~1 sigma for faint peaks, ~25 % for bright ones)
PEAK_PROMINENCE = 0.25


def _peaks(resid, snr_map, valid, saturated, *, k_sigma):
    """One marker per source: regional maxima of asinh(SNR/4) with a prominence of at least
    :data:`PEAK_PROMINENCE` (noise bumps on a resolved or saturated source are not
    sources), above ``k_sigma`` and not lone spikes; one pixel per plateau."""
    t = np.arcsinh(np.where(valid, snr_map, 0.0) / 4.0)
    t = np.where(saturated & valid, t.max() + 1.0, t)  # a saturated top is one plateau
    cand = (snr_map > k_sigma) & valid
    maxima = imaging.h_maxima_at(t, PEAK_PROMINENCE, cand) & cand
    # not a lone spike: a PSF-blurred source always lights a neighbour
    maxima &= _lit_neighbour(snr_map, maxima) | saturated
    lab, n = ndi.label(maxima, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros(0, int), np.zeros(0, int)
    # the brightest pixel of each plateau
    pr, ps = imaging.brightest_of_labels(np.where(maxima, resid, -np.inf), lab, n)
    order = np.lexsort((ps, pr))
    return pr[order], ps[order]


#: the 8 neighbours of a pixel (line, sample offsets)
_NEIGHBOURS_8 = np.array([(dl, ds) for dl in (-1, 0, 1) for ds in (-1, 0, 1) if dl or ds])
#: the same 8 neighbours as a footprint
_RING_3X3 = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]])


def _lit_neighbour(snr_map: np.ndarray, maxima: np.ndarray) -> np.ndarray:
    """``ndi.maximum_filter(np.where(maxima, -inf, snr_map), footprint=<the 8
    neighbours>) > 1.5``, where ``maxima`` is True (False elsewhere: the caller reads
    no other pixel). The filter's values are taken at the maxima alone (a few of a
    strip's pixels; stop 34): a neighbour beyond the border is the border pixel
    itself (the filter's "reflect" mode, at one pixel's reach), a neighbour that is
    a maximum is -inf, and a maximum of values without NaN is any order's. With a
    NaN among them, the whole filter decides, as before."""
    if snr_map.ndim != 2 or snr_map.shape != maxima.shape:
        raise ValueError(f"_lit_neighbour: shapes {snr_map.shape} and {maxima.shape}")
    out = np.zeros(maxima.shape, dtype=bool)
    flat = np.flatnonzero(maxima)  # (2-D np.nonzero is ~15x slower here)
    if flat.size == 0:
        return out
    n0, n1 = snr_map.shape
    rows, cols = np.divmod(flat, n1)
    r = np.clip(rows[None, :] + _NEIGHBOURS_8[:, :1], 0, n0 - 1)  # (8, n)
    c = np.clip(cols[None, :] + _NEIGHBOURS_8[:, 1:], 0, n1 - 1)
    vals = np.where(maxima[r, c], -np.inf, snr_map[r, c])
    if np.isnan(vals).any():
        neigh = ndi.maximum_filter(np.where(maxima, -np.inf, snr_map), footprint=_RING_3X3)
        return (neigh > 1.5) & maxima
    out[rows, cols] = vals.max(axis=0) > 1.5
    return out


@dataclass(frozen=True, eq=False)
class _Sources:
    """The sources found in one band strip (pixel units), before any geometry."""

    #: centres (line, sample) in the strip, (n, 2)
    cen: np.ndarray
    flux: np.ndarray
    npix: np.ndarray
    sat: np.ndarray
    cut: np.ndarray
    peak_dn: np.ndarray
    #: SNR and residual radiance at each peak pixel
    snr: np.ndarray
    peak: np.ndarray


#: a strip without a predicted disc gives the same sources whatever the pointing: they
#: are kept (content digest -> _Sources) for a re-extraction on another pointing
_NO_DISC_SOURCES: OrderedDict = OrderedDict()
_NO_DISC_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()


def _strip_sources(img, v, saturated, raw_dn, shading, *, pointing_sigma_px: float,
                   config: ExtractionConfig) -> _Sources | None:
    """Background, noise, peaks, segments and centres of one band strip (None: no source).

    Without a predicted disc (``shading`` None) none of it depends on the
    pointing: the result is kept, keyed by a digest of every input, and a
    re-extraction of the frame on another pointing reuses it.
    """
    if shading is not None:
        return _find_sources(img, v, saturated, raw_dn, shading,
                             pointing_sigma_px=pointing_sigma_px, config=config)
    h = hashlib.blake2b(repr(config).encode(), digest_size=20)
    for a in (img, v, saturated, raw_dn):
        a = np.ascontiguousarray(np.zeros(0) if a is None else a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.view(np.uint8).ravel())
    key = h.digest()
    with _CACHE_LOCK:
        if key in _NO_DISC_SOURCES:
            _NO_DISC_SOURCES.move_to_end(key)
            return _NO_DISC_SOURCES[key]
    out = _find_sources(img, v, saturated, raw_dn, None, pointing_sigma_px=pointing_sigma_px,
                        config=config)
    if out is not None:
        for a in vars(out).values():
            a.setflags(write=False)  # shared by every caller
    with _CACHE_LOCK:
        _NO_DISC_SOURCES[key] = out
        while len(_NO_DISC_SOURCES) > _NO_DISC_CACHE_SIZE:
            _NO_DISC_SOURCES.popitem(last=False)
    return out


def _find_sources(img, v, saturated, raw_dn, sh, *, pointing_sigma_px: float,
                  config: ExtractionConfig) -> _Sources | None:
    """Steps 1-3 and the centres of the module docstring on one band strip."""
    img0 = np.where(v, img, 0.0)
    bg = background_model(img0, sh, valid=v, size=config.background_size_px)
    resid = np.where(v, img - bg, 0.0)
    sigma = _local_noise(resid, v, config.noise_size_px)
    # second pass: the background again without the sources found (grown), so a
    # resolved source does not leak into its own background and fall apart
    sources = imaging.grow((resid / sigma) > 3.0, SOURCE_MASK_GROW_PX)
    if sources.any():
        bg = background_model(img0, sh, valid=v & ~sources, size=config.background_size_px)
        resid = np.where(v, img - bg, 0.0)
        sigma = _local_noise(resid, v & ~sources, config.noise_size_px)
    if sh is not None:
        sigma = np.hypot(sigma, limb_model_sigma(bg, sh, pointing_sigma_px=pointing_sigma_px))
    snr_map = resid / sigma
    pr, ps = _peaks(resid, snr_map, v, saturated, k_sigma=config.k_sigma)
    if pr.size == 0:
        return None
    markers = np.zeros(img.shape, dtype=np.int32)
    markers[pr, ps] = np.arange(1, pr.size + 1)
    disk = imaging.grow(markers > 0, APERTURE_RADIUS_PX)
    mask = (snr_map > 1.0) | disk
    labels = watershed(-resid, markers, mask=mask & v)
    # ndi.sum_labels(resid, labels, 1..n) and of ones (the pixel counts): scipy's own
    # bincount of the labels, each taken once (stop 25)
    flux, npix = _label_sums(resid, labels, pr.size)
    sat = imaging.label_max(saturated, labels, pr.size) > 0
    # a segment that reaches the strip's border is cut by it (resolved sources!)
    border = np.zeros(img.shape, bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    peak_of = np.zeros(pr.size + 1)
    peak_of[1:] = resid[pr, ps]
    bright = resid >= 0.1 * peak_of[labels]  # the source itself, not its noisy skirt
    cut = imaging.label_max(border & bright, labels, pr.size) > 0
    peak_dn = (imaging.label_max(raw_dn, labels, pr.size) if raw_dn is not None
               else np.full(pr.size, np.nan))
    # centres: PSF fit for compact unsaturated sources, moments otherwise
    fit_r, fit_s, fit_ok = _psf_fit(resid, pr, ps, sigma_px=config.psf_sigma_px)
    cen = []
    # resolved sources (bright and wider than the PSF) are centred by moments
    extended = ((_second_moment_sigma(resid, pr, ps, labels=labels)
                 > 1.1 * config.psf_sigma_px + 0.25) & (snr_map[pr, ps] > 20))
    for k, (r, c) in enumerate(zip(pr, ps, strict=True)):
        if fit_ok[k] and not sat[k] and not extended[k]:
            cen.append((fit_r[k], fit_s[k]))
            continue
        # resolved sources get a window wide enough for their whole blob
        half = 4 if extended[k] else 2
        c_r, c_s = _centroid(resid, r, c, half=half, labels=labels, label=k + 1)
        c_r, c_s = _centroid(resid, int(round(c_r)), int(round(c_s)), half=half,
                             labels=labels, label=k + 1)
        cen.append((c_r, c_s))
    cen = np.array(cen)
    return _Sources(cen, flux, npix, sat, cut, peak_dn, snr_map[pr, ps], resid[pr, ps])


def extract_frame(
    radiance: np.ndarray,
    state: FrameState,
    *,
    bands: tuple[str, ...],
    exposure_s: float,
    pointing_method: str,
    pointing_sigma_px: float,
    saturated: np.ndarray | None = None,
    invalid: np.ndarray | None = None,
    raw_dn: np.ndarray | None = None,
    config: ExtractionConfig = ExtractionConfig(),
    leading: dict | None = None,
) -> pd.DataFrame:
    """Detections in one calibrated frame (one row each, DETECTION_COLUMNS).

    ``radiance``: the frame's image (rows of ``bands`` in order, 128 each);
    ``state``: its geometry with the final pointing; ``pointing_method`` /
    ``pointing_sigma_px``: how that pointing was obtained (:mod:`iovolc.pointing`);
    ``raw_dn``: the raw DN (EDR) or its estimate (RDR), for the non-linearity flag.
    ``leading``: columns put before DETECTION_COLUMNS, one scalar value for every row
    (the frame's identity: strings, numbers, None); the table is the one
    ``DataFrame.insert`` of each would give.
    """
    radiance = np.asarray(radiance, dtype=float)
    saturated = np.zeros(radiance.shape, bool) if saturated is None else saturated
    valid = np.isfinite(radiance) & ~(np.zeros(radiance.shape, bool) if invalid is None
                                      else invalid)
    registered = pointing_method != "none"
    rows_out = []
    for band, sl in jiram.band_layout(tuple(bands)).items():
        if disc_pixel_box(state, band) is None:
            # Io's disc cannot reach this strip (its cone, with a margin, projects
            # outside it): no centre found here could be on the disc, so there is
            # nothing to look for (most JIRAM frames are of Jupiter, not Io)
            continue
        cam = state.camera(band)
        img = radiance[sl]
        v = valid[sl]
        sh = None
        if registered:
            sh, _k = fitted_shading(state, band, img, v, psf_sigma_px=config.psf_sigma_px)
        src = _strip_sources(img, v, saturated[sl], None if raw_dn is None else raw_dn[sl], sh,
                             pointing_sigma_px=pointing_sigma_px, config=config)
        if src is None:
            continue
        cen, flux = src.cen, src.flux
        geom = pixel_geometry(state, band, cen[:, 0], cen[:, 1])
        on = geom.on_disc
        if not on.any():
            continue
        # distance to the limb: an off-disc pixel within 2 px of the centroid
        ring = pixel_geometry(
            state, band, cen[:, 0][:, None] + np.array([2, -2, 0, 0, 1.4, -1.4, 1.4, -1.4]),
            cen[:, 1][:, None] + np.array([0, 0, 2, -2, 1.4, 1.4, -1.4, -1.4]))
        near_limb = ~ring.on_disc.all(axis=1)
        power = physics.power_gw_per_um_from_radiance(
            flux, band=band, range_km=geom.range_km, emission_deg=geom.emission_deg,
            ifov_rad=cam.ifov_rad)
        rows_out += detection_rows(
            np.flatnonzero(on & (flux > 0)), band=band, sl=sl, shape=img.shape, src=src,
            geom=geom, near_limb=near_limb, power=power, pointing_method=pointing_method,
            pointing_sigma_px=pointing_sigma_px, config=config)
    return detection_table(rows_out, leading or {})


