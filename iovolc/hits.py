"""Radiation hits: pixels sharper than the optics allow, absent from the other frames.

Hit detection (sharpness), per candidate pixel ``c`` with a local background
``B`` (median of the 16-pixel ring at distance 2) and excess ``e = c - B``:

* ``s2``: over the four 2x2 blocks containing the pixel, the largest of the
  smallest excess among the block's three other pixels. A PSF-blurred source
  always has a 2x2 block around any of its bright pixels whose three other
  pixels are all bright (>= 0.167 e for a Gaussian PSF of sigma 0.7 px); a
  hit pixel or a one-pixel-wide streak never fills a 2x2 block.
* ``m48``: the mean excess of the 4th..8th brightest of the 8 neighbours. A
  PSF source lights >= 4 neighbours (>= 0.108 e for sigma 0.7 px); a hit
  lights none, a streak at most 2-3 (along the streak).

The PSF lower bounds are computed from ``psf_sigma_px`` (pixel-integrated
Gaussian, every sub-pixel position, every pixel >= 30 % of the peak). With
``sigma`` the local noise (read + shot noise model fitted to a high-pass
image, see :func:`noise_sigma_map`), a candidate with ``e > k_detect * sigma``
is

* a *strong* hit if ``e > k_strong * sigma`` and both statistics fall below
  ``(1 - psf_margin)`` times their PSF bound by ``k_sharp`` noise sigmas of
  the statistic: a hit whatever the other frames say;
* a *weak* hit if both merely fall below ``(1 - psf_margin)`` times the bound:
  a hit only if absent from the other frames of the sequence (at the same sky
  position, after registration, the excess over ``+-jitter_px`` stays below
  ``presence_fraction * e`` in every other frame that covers it). A single
  frame has no weak hits.

On the frame border (first/last line or sample) a source cut by the edge
looks like a streak along it: a strong hit there must also be isolated along
the edge, else only the other frames decide. Two passes: the hits found are
filled in and their neighbours re-examined (streak pixels next to brighter
ones).

Real sources (bright, saturated, resolved, on the limb) light their
neighbours and fail both tests. Measured on simulated PJ57 downlinks (seeds
0-2): recall of hits >= 150 DN ~99.5 %, no source centre with peak SNR > 10
flagged, < 1e-5 of pixels falsely flagged; ~10-15 ms per 256x432 frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import fft as sp_fft
from scipy.special import erf

from iovolc import imaging, morphology
from iovolc.separable import gaussian_blur_reflect

#: noise map block size (px)
NOISE_BLOCK_PX = 32

_MAD_TO_SIGMA = 1.4826
#: std of (x - mean of 4 neighbours) for white noise, in units of sigma
_HP_GAIN = float(np.sqrt(1.25))
#: noise std of the s2 / m48 statistics for white noise (Monte-Carlo), in sigma
_S2_NOISE = 0.7
_M48_NOISE = 0.5
#: frame border: a strong hit's along-edge neighbours stay below this fraction
_EDGE_ALONG_FRACTION = 0.25

_RING = np.array([(i, j) for i in range(5) for j in range(5) if max(abs(i - 2), abs(j - 2)) == 2])
_NEIGH = np.array([(i, j) for i in (1, 2, 3) for j in (1, 2, 3) if (i, j) != (2, 2)])
#: the four 2x2 blocks containing the centre (2, 2): their three other pixels
_BLOCKS = tuple(
    np.array([(i, j) for i in (a, a + 1) for j in (b, b + 1) if (i, j) != (2, 2)])
    for a in (1, 2) for b in (1, 2)
)



# --- noise, background, sharpness -----------------------------------------------


def _mean4_highpass(x: np.ndarray) -> np.ndarray:
    """``x`` less the mean of its 4 neighbours (reflected at the edges): compiled
    (:func:`iovolc.morphology.mean4_highpass`, stop 26) for a float64 image of 2 x 2 or
    more, else the numpy form (``tests/_speed_reference.py``), the same bits."""
    if x.ndim == 2 and min(x.shape) >= 2 and x.dtype == np.float64:
        return morphology.mean4_highpass(np.ascontiguousarray(x))
    p = np.pad(x, 1, mode="reflect")
    return x - 0.25 * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])


def noise_sigma_map(image: np.ndarray, *, block_px: int = NOISE_BLOCK_PX,
                    n_bins: int = 12) -> np.ndarray:
    """Local white-noise sigma of a frame (same units as ``image``).

    The larger of two robust estimates from a high-pass image ``hp = x - mean
    of the 4 neighbours`` (sigma = 1.4826 * median|hp| / sqrt(1.25)):

    * a signal-dependent model ``sigma^2 = s0^2 + a * max(level, 0)`` (read and
      shot noise), fitted over ``n_bins`` quantile bins of the local level
      (mean of the 16-pixel ring at distance 2);
    * the value in ``block_px`` squares (local anomalies),

    floored at half the 10th percentile of the block values (and above zero).
    """
    x = np.asarray(image, dtype=np.float64)
    level = x - _ring_mean_excess(x)
    noise = _NoiseModel.fit(x, level, block_px=block_px, n_bins=n_bins)
    rr, cc = np.indices(x.shape)
    return noise.at(rr, cc, level)


@dataclass(frozen=True, eq=False)
class _NoiseModel:
    """sigma = max(sqrt(var0 + slope * max(level, 0)), block sigma (floored))."""

    var0: float
    slope: float
    block: np.ndarray
    block_px: int

    @classmethod
    def fit(cls, x: np.ndarray, level: np.ndarray, *, block_px: int = NOISE_BLOCK_PX,
            n_bins: int = 12) -> _NoiseModel:
        hp = np.abs(_mean4_highpass(x))
        scale = _MAD_TO_SIGMA / _HP_GAIN
        h, w = hp.shape
        # blocks (every other row and column)
        nby, nbx = -(-h // block_px), -(-w // block_px)
        pad = np.pad(hp, ((0, nby * block_px - h), (0, nbx * block_px - w)), mode="symmetric")
        blocks = pad.reshape(nby, block_px, nbx, block_px)[:, ::2, :, ::2]
        blocks = blocks.transpose(0, 2, 1, 3).reshape(nby, nbx, -1)
        sig_block = imaging.row_medians(blocks.reshape(nby * nbx, -1)).reshape(nby, nbx) * scale
        floor = max(0.5 * float(np.percentile(sig_block, 10)),
                    1e-6 * float(np.max(np.abs(x), initial=0.0)), 1e-30)
        # level-dependent model over quantile bins of the level
        lv, hv = level[::3, ::3].ravel(), hp[::3, ::3].ravel()
        n_bins = max(1, min(int(n_bins), lv.size // 16))
        # stable: the quantised levels tie often, and numpy's default sort is a SIMD one
        # whose tie order depends on the host (stop 30); ties go in pixel order
        order = np.argsort(lv, kind="stable")
        m = (lv.size // n_bins) * n_bins
        lb = np.maximum(imaging.row_medians(lv[order[:m]].reshape(n_bins, -1)), 0.0)
        vb = (imaging.row_medians(hv[order[:m]].reshape(n_bins, -1)) * scale) ** 2
        var0, slope = _fit_variance(lb, vb)
        return cls(var0=var0, slope=slope, block=np.maximum(sig_block, floor),
                   block_px=int(block_px))

    def block_map(self, shape: tuple[int, int]) -> np.ndarray:
        """The block sigma (a lower bound of :meth:`at`) as a full map."""
        b = self.block_px
        return np.repeat(np.repeat(self.block, b, axis=0), b, axis=1)[:shape[0], :shape[1]]

    def at(self, rr: np.ndarray, cc: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Sigma at pixels (rr, cc) whose local level is ``level`` (same shape)."""
        model = np.sqrt(self.var0 + self.slope * np.maximum(level, 0.0))
        return np.maximum(model, self.block[rr // self.block_px, cc // self.block_px])


def _fit_variance(level: np.ndarray, var: np.ndarray) -> tuple[float, float]:
    """Least squares ``var = v0 + a * level`` with v0, a >= 0."""
    if np.ptp(level) > 0:
        a, v0 = np.polyfit(level, var, 1)
    else:
        a, v0 = 0.0, float(np.mean(var))
    if a < 0:
        a, v0 = 0.0, float(np.mean(var))
    if v0 < 0:
        v0 = 0.0
        a = float(np.sum(var * level) / np.sum(level * level))
    return float(v0), float(a)


def _ring_mean_excess(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Excess over the mean of the 16-pixel ring at distance 2, from box sums of the
    reflect-padded image in float64 (:func:`iovolc.morphology.ring_excess`, stop 23; the
    numpy form it replaced is ``tests/_speed_reference.py``'s); into ``out`` if given
    (C-contiguous float64 of ``x``'s shape)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x) if out is None else out
    morphology.ring_excess(x, np.pad(x, 2, mode="reflect"), out)
    return out


@lru_cache(maxsize=16)
def psf_sharpness_bounds(psf_sigma_px: float) -> tuple[float, float]:
    """Lower bounds of (s2/e, m48/e) over a PSF-blurred point source.

    Pixel-integrated Gaussian of ``psf_sigma_px``, every sub-pixel position
    (21 x 21 grid), every pixel holding >= 30 % of the peak.
    """
    sig = float(psf_sigma_px)
    half = 7
    edges = np.arange(-half - 0.5, half + 1.5)
    offs = np.linspace(-0.5, 0.5, 21)
    prof = np.diff(0.5 * erf((edges[None, :] - offs[:, None]) / (np.sqrt(2.0) * sig)), axis=1)
    imgs = prof[:, None, :, None] * prof[None, :, None, :]
    imgs = imgs.reshape(-1, prof.shape[1], prof.shape[1])
    patches = []
    for img in imgs:
        rr, cc = np.nonzero(img >= 0.3 * img.max())
        for r, c in zip(rr, cc, strict=True):
            if 2 <= r < img.shape[0] - 2 and 2 <= c < img.shape[1] - 2:
                patches.append(img[r - 2:r + 3, c - 2:c + 3])
    e, s2, m48 = _patch_stats(np.array(patches).reshape(len(patches), 25))
    return float(np.min(s2 / e)), float(np.min(m48 / e))


def _patch_stats(p: np.ndarray):
    """(excess, s2, m48) of flattened 5x5 patches (N, 25)."""
    p = p.reshape(-1, 5, 5)
    ring = p[:, _RING[:, 0], _RING[:, 1]]
    bg = imaging.row_medians(ring)
    q = p - bg[:, None, None]
    e = q[:, 2, 2]
    neigh = np.sort(q[:, _NEIGH[:, 0], _NEIGH[:, 1]], axis=1)  # ascending
    m48 = neigh[:, :5].mean(axis=1)  # 4th..8th brightest = 5 faintest
    s2 = np.max(np.stack([q[:, b[:, 0], b[:, 1]].min(axis=1) for b in _BLOCKS]), axis=0)
    return e, s2, m48


def _gather(x_pad: np.ndarray, rr: np.ndarray, cc: np.ndarray, half: int) -> np.ndarray:
    oy, ox = np.mgrid[-half:half + 1, -half:half + 1]
    return x_pad[rr[:, None] + half + oy.ravel()[None, :], cc[:, None] + half + ox.ravel()[None, :]]


def _patches(x: np.ndarray, rr: np.ndarray, cc: np.ndarray, half: int) -> np.ndarray:
    """The ``(2 half + 1)**2`` values around each pixel, the image reflect-padded: compiled
    for a float64 or bool image wider than ``half`` (:func:`iovolc.morphology.gather_reflect`,
    stop 23), else ``np.pad`` and a gather."""
    if x.dtype in (np.float64, np.bool_) and x.ndim == 2 and min(x.shape) > half:
        return morphology.gather_reflect(x, rr.astype(np.int64), cc.astype(np.int64), half)
    return _gather(np.pad(x, half, mode="reflect"), rr, cc, half)


def _masked_median(vals: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise median of ``vals`` where ``ok``; (median, any_ok)."""
    v = np.where(ok, vals, np.inf)
    v.sort(axis=1)
    k = ok.sum(axis=1)
    has = k > 0
    lo = np.clip((k - 1) // 2, 0, vals.shape[1] - 1)
    hi = np.clip(k // 2, 0, vals.shape[1] - 1)
    rows = np.arange(vals.shape[0])
    med = np.where(has, 0.5 * (v[rows, lo] + np.where(has, v[rows, hi], 0.0)), np.nan)
    return med, has


def fill_invalid(x: np.ndarray, invalid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace invalid pixels by the median of valid 3x3 neighbours, growing
    inward through clusters. Returns (filled, filled_mask)."""
    out = np.array(x, dtype=np.float64, copy=True)
    todo = np.array(invalid, dtype=bool, copy=True)
    done = np.zeros_like(todo)
    if not todo.any() or todo.all():
        return out, done
    if out.ndim == 2 and min(out.shape) > 1 and np.isfinite(np.where(todo, 0.0, out)).all():
        # the loop below, compiled (stop 25), on copies: where a fill would not be finite
        # it gives up, and the loop starts from these
        filled, left, was_filled = out.copy(), todo.copy(), done.copy()
        if morphology.fill_median3(filled, left, was_filled):
            return filled, was_filled
    while todo.any():
        rr, cc = np.nonzero(todo)
        vals = _patches(out, rr, cc, 1)
        ok = _patches(~todo, rr, cc, 1)
        med, has = _masked_median(vals, ok)
        if not has.any():  # cannot happen while a valid pixel exists; guard anyway
            break
        out[rr[has], cc[has]] = med[has]
        todo[rr[has], cc[has]] = False
        done[rr[has], cc[has]] = True
    return out, done


# --- registration ---------------------------------------------------------------


def estimate_offsets(stack: np.ndarray, *, max_shift_px: int = 12,
                     min_correlation: float = 0.1) -> np.ndarray:
    """Integer (line, sample) offset of each frame relative to frame 0.

    A sky feature at ``(l, s)`` in frame 0 is at ``(l, s) + offsets[i]`` in
    frame i (to +-1 px). Cross-correlation, zero-padded and searched within
    ``+-max_shift_px``, of frames opened by a 2x2 grey opening (removes hits,
    keeps PSF-wide sources), binned 2x2, asinh-stretched and smoothed. A shift
    is kept only if the frames' Pearson correlation there reaches
    ``min_correlation`` (else 0: nothing to register on, e.g. a dark night side).
    """
    st = np.asarray(stack, dtype=np.float64)
    n, h, w = st.shape
    offs = np.zeros((n, 2), dtype=int)
    if n < 2 or h < 4 or w < 4:
        return offs
    m = max(1, int(max_shift_px) // 2)
    hb, wb = h // 2, w // 2
    shape = (sp_fft.next_fast_len(hb + m, real=True), sp_fft.next_fast_len(wb + m, real=True))
    prepared, spectra = [], []
    for x in st:
        # the 2x2 grey opening, compiled (stop 26; the numpy form in tests/_speed_reference.py)
        x = morphology.open2x2(np.where(np.isfinite(x), x, 0.0))
        # binned 2x2: numpy's mean in its own order, compiled (stop 26); numpy keeps that
        # order for two binned columns or more, which w >= 4 (above) ensures
        y = morphology.bin2x2_mean(x)
        sig = imaging.median(np.abs(_mean4_highpass(y))) * _MAD_TO_SIGMA + 1e-30
        # scipy's gaussian_filter (mode "reflect"), compiled: the same bits (stop 36)
        y = gaussian_blur_reflect(np.arcsinh((y - imaging.median(y)) / (5.0 * sig)), 0.5)
        y -= y.mean()
        prepared.append(y)
        spectra.append(sp_fft.rfft2(y, s=shape))
    dl = np.fft.fftfreq(shape[0], 1.0 / shape[0]).astype(int)
    ds = np.fft.fftfreq(shape[1], 1.0 / shape[1]).astype(int)
    win = (np.abs(dl)[:, None] <= m) & (np.abs(ds)[None, :] <= m)
    for i in range(1, n):
        cc = sp_fft.irfft2(spectra[i] * np.conj(spectra[0]), s=shape)
        k = np.unravel_index(int(np.argmax(np.where(win, cc, -np.inf))), cc.shape)
        shift = (int(dl[k[0]]), int(ds[k[1]]))
        if _overlap_correlation(prepared[0], prepared[i], shift) >= min_correlation:
            offs[i] = (2 * shift[0], 2 * shift[1])
    return offs


def _overlap_correlation(a: np.ndarray, b: np.ndarray, shift: tuple[int, int]) -> float:
    """Pearson correlation of a(l, s) and b(l + dl, s + ds) over their overlap."""
    dl, ds = shift
    h, w = a.shape
    a_ = a[max(0, -dl):h - max(0, dl), max(0, -ds):w - max(0, ds)]
    b_ = b[max(0, dl):h - max(0, -dl), max(0, ds):w - max(0, -ds)]
    if a_.size < 16:
        return 0.0
    a_ = a_ - a_.mean()
    b_ = b_ - b_.mean()
    den = float(np.sqrt(np.sum(a_ * a_) * np.sum(b_ * b_)))
    return float(np.sum(a_ * b_) / den) if den > 0 else 0.0


# --- radiation hits -------------------------------------------------------------


def detect_radiation_hits(
    stack: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
    psf_sigma_px: float = 0.7,
    k_detect: float = 5.0,
    k_strong: float = 10.0,
    k_sharp: float = 2.0,
    psf_margin: float = 0.2,
    jitter_px: int = 3,
    presence_fraction: float = 0.3,
    max_shift_px: int = 12,
    n_passes: int = 2,
) -> np.ndarray:
    """Radiation-hit mask for the frames of ONE sequence (see module doc).

    ``stack``: (n_frames, lines, samples) radiance of one sequence, or one
    frame (lines, samples); frames may be shifted by a few pixels.
    ``valid``: pixels to trust (same shape, or one frame's shape); invalid
    pixels are filled from their neighbours first and never flagged.
    ``offsets``: (n, 2) known (line, sample) shift of each frame relative to
    frame 0 -- a sky feature at ``p`` in frame 0 is at ``p + offsets[i]`` in
    frame i -- rounded to pixels; estimated by :func:`estimate_offsets` if None.
    ``psf_sigma_px``: Gaussian PSF sigma that sets the sharpness bounds.
    ``k_detect`` / ``k_strong``: minimum excess (noise sigmas) of a weak /
    strong hit; ``k_sharp``: significance of the sharpness; ``psf_margin``:
    fraction below the PSF bounds; ``jitter_px``, ``presence_fraction``: the
    other-frame test; ``n_passes``: detection passes (hits filled in between).
    Returns a bool mask of the stack's shape.
    """
    arr = np.asarray(stack, dtype=np.float64)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"stack must be (n, lines, samples) or (lines, samples), got {arr.shape}")
    n, h, w = arr.shape
    ok = np.isfinite(arr)
    if valid is not None:
        ok &= np.broadcast_to(np.asarray(valid, dtype=bool), arr.shape)
    # the frames with their invalid pixels filled, written in place (stop 26: a frame
    # without one as it is; no stacked copy of the sequence)
    x_all = np.where(ok, arr, 0.0)
    for i in range(n):
        if not ok[i].all():
            x_all[i] = fill_invalid(x_all[i], ~ok[i])[0]
    if n == 1:
        offs = np.zeros((1, 2), dtype=int)
    elif offsets is None:
        offs = estimate_offsets(x_all, max_shift_px=max_shift_px)
    else:
        offs = np.rint(np.asarray(offsets, dtype=float)).astype(int).reshape(n, 2)
    b_s2, b_m48 = psf_sharpness_bounds(float(psf_sigma_px))
    crit = _Criteria(b_s2=b_s2 * (1.0 - psf_margin), b_m48=b_m48 * (1.0 - psf_margin),
                     k_detect=float(k_detect), k_strong=float(k_strong),
                     k_sharp=float(k_sharp),
                     presence_fraction=float(presence_fraction), jitter_px=int(jitter_px))
    excess = np.empty((n, h, w))  # each frame's excess written in place (stop 29)
    for i in range(n):
        _ring_mean_excess(x_all[i], out=excess[i])

    hits = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        x = x_all[i]
        noise = _NoiseModel.fit(x, x - excess[i])
        # loose preselection (block sigma <= local sigma); exact test per candidate
        cand = ok[i] & (excess[i] > crit.k_detect * noise.block_map((h, w)))
        for _ in range(max(1, int(n_passes))):
            found = _sharp_hits(x, noise, cand, i=i, offs=offs,
                                others=excess if n > 1 else None, crit=crit)
            if not found.any():
                break
            hits[i] |= found
            x = fill_invalid(x, hits[i])[0]
            cand = morphology.dilate_square3(found) & ~hits[i] & ok[i]
    return hits[0] if single else hits


@dataclass(frozen=True)
class _Criteria:
    b_s2: float
    b_m48: float
    k_detect: float
    k_strong: float
    k_sharp: float
    presence_fraction: float
    jitter_px: int


def _sharp_hits(x, noise: _NoiseModel, cand, *, i, offs, others, crit: _Criteria):
    """The sharp hits among the candidate pixels ``cand`` of frame ``i`` (``x``);
    ``others``: every frame's ring excess (None for a single frame)."""
    h, w = x.shape
    out = np.zeros((h, w), dtype=bool)
    rr, cc = np.nonzero(cand)
    if rr.size == 0:
        return out
    patches = _patches(x, rr, cc, 2)
    e, s2, m48 = _patch_stats(patches)
    sg = noise.at(rr, cc, patches[:, 12] - e)
    weak = (e > crit.k_detect * sg) & (s2 < crit.b_s2 * e) & (m48 < crit.b_m48 * e)
    strong = (weak & (e > crit.k_strong * sg)
              & (s2 < crit.b_s2 * e - crit.k_sharp * _S2_NOISE * sg)
              & (m48 < crit.b_m48 * e - crit.k_sharp * _M48_NOISE * sg))
    # on the frame border a source cut by the edge looks like a streak along
    # it: a strong hit there must also be isolated along the edge (a PSF lights
    # an along-edge neighbour to >= 0.42 of its peak), else only the other
    # frames decide
    row_edge = (rr == 0) | (rr == h - 1)
    col_edge = (cc == 0) | (cc == w - 1)
    if row_edge.any() or col_edge.any():
        p = _patches(x, rr, cc, 1).reshape(-1, 3, 3)
        bg = p[:, 1, 1] - e
        along = np.full(rr.size, -np.inf)
        along = np.where(row_edge, np.maximum(along, np.maximum(p[:, 1, 0], p[:, 1, 2])), along)
        along = np.where(col_edge, np.maximum(along, np.maximum(p[:, 0, 1], p[:, 2, 1])), along)
        isolated = along - bg < _EDGE_ALONG_FRACTION * e - crit.k_sharp * sg
        strong = strong & ((~row_edge & ~col_edge) | isolated)
    flag = strong
    idx = np.flatnonzero(weak & ~strong)
    if others is not None and idx.size:
        # same sky position in the other frames: max excess within the jitter radius
        j_px = crit.jitter_px
        absent = np.ones(idx.size, dtype=bool)
        seen = np.zeros(idx.size, dtype=bool)
        for j in range(others.shape[0]):
            if j == i:
                continue
            lj = rr[idx] - offs[i, 0] + offs[j, 0]
            sj = cc[idx] - offs[i, 1] + offs[j, 1]
            inside = (lj >= 0) & (lj < h) & (sj >= 0) & (sj < w)
            if not inside.any():
                continue
            # the largest excess within j_px (-inf beyond the frame: the padding it had)
            peak = morphology.window_max(others[j], lj[inside].astype(np.int64),
                                         sj[inside].astype(np.int64), j_px)
            present = np.zeros(idx.size, dtype=bool)
            present[inside] = peak >= crit.presence_fraction * e[idx[inside]]
            seen |= inside
            absent &= ~present
        flag = flag.copy()
        flag[idx] = absent & seen
    out[rr[flag], cc[flag]] = True
    return out


