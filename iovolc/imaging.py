"""Image helpers of the limb fit and the extraction: exact, faster forms of library calls.

Each computes what the library function it replaces computes (named in its
docstring), checked against it in ``tests/test_speed_equivalence.py``:
normalised cross-correlation (skimage ``match_template``, valid offsets),
line openings (``ndimage.grey_opening`` with a line footprint), the
compact-feature mask built on them, the 2-D median filter
(``ndimage.median_filter``, mode "nearest"), block medians (``nanmedian``),
h-maxima at given pixels (skimage ``h_maxima``) and per-label maxima and
their positions (``ndimage.maximum``/``maximum_position``). Compiled (numba,
checked in ``tests/test_speed_kernels.py``): the NCC's window sums, the
median (``np.median``), box means (``ndimage.uniform_filter1d``) and the
background's sigma-clipped local mean, the cross dilation
(``ndimage.binary_dilation``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sp_fft
from scipy import ndimage as ndi


class Template:
    """An NCC template and what the correlation needs of it, computed once: its mean and
    sum of squared deviations in its own precision, its spectrum per FFT grid."""

    def __init__(self, t: np.ndarray):
        self.t = t
        self.shape = t.shape
        self.mean = t.mean()
        self.ssd = np.sum((t - self.mean) ** 2)
        self._spectra: dict = {}

    def spectrum(self, shape: tuple[int, int]) -> np.ndarray:
        if shape not in self._spectra:
            self._spectra[shape] = np.conj(sp_fft.rfft2(self.t.astype(float), shape))
        return self._spectra[shape]


def ncc(image: np.ndarray, template, *, spectrum=None) -> np.ndarray:
    """Normalised cross-correlation of ``template`` (an array or a :class:`Template`) with
    ``image`` at every offset where it lies wholly inside: ``out[i, j]`` for the
    template's first pixel at image ``(i, j)``, shape ``image - template + 1``; 0
    where the image window is flat (skimage's ``match_template``, valid offsets only).

    The products come from one FFT grid the size of the image (circular
    correlation: the offsets kept never wrap), the image window sums from
    running sums (compiled). ``spectrum``: :func:`image_spectrum` of ``image``, when
    several templates of one shape are matched to it.
    """
    tp = template if isinstance(template, Template) else Template(template)
    m, n = tp.shape
    n_i, n_j = image.shape[0] - m + 1, image.shape[1] - n + 1
    shape = (sp_fft.next_fast_len(image.shape[0], real=True),
             sp_fft.next_fast_len(image.shape[1], real=True))
    if spectrum is None or spectrum[0] != shape:
        spectrum = (shape, sp_fft.rfft2(image, shape))
    xcorr = sp_fft.irfft2(spectrum[1] * tp.spectrum(shape), shape)[:n_i, :n_j]
    image = np.ascontiguousarray(image, dtype=float)
    out = np.empty((n_i, n_j))
    _ncc_normalise(np.ascontiguousarray(xcorr), image, m, n, float(tp.mean), float(tp.ssd), out)
    return out


def image_spectrum(image: np.ndarray):
    """The FFT of ``image`` that :func:`ncc` computes, kept for several templates (pass it
    as ``spectrum=``)."""
    shape = (sp_fft.next_fast_len(image.shape[0], real=True),
             sp_fft.next_fast_len(image.shape[1], real=True))
    return shape, sp_fft.rfft2(image, shape)


@njit(cache=True, nogil=True, error_model="numpy")
def _window_sums(x, m, n):
    """Sums of ``x`` over every m x n window lying wholly inside: running sums down the
    columns, then along the rows of window-row sums, differenced (the order of
    ``np.cumsum`` on each axis: the same bits as that numpy form; a window of zeros sums
    to exactly zero)."""
    n0, n1 = x.shape
    r0 = n0 - m + 1
    col = np.empty((n0 + 1, n1))  # running sums down the columns, 0 first
    col[0] = 0.0
    col[1] = x[0]
    for i in range(1, n0):
        for j in range(n1):
            col[i + 1, j] = col[i, j] + x[i, j]
    out = np.empty((r0, n1 - n + 1))
    run = np.empty(n1 + 1)  # running sums along a row of window-row sums, 0 first
    run[0] = 0.0
    for i in range(r0):
        run[1] = col[i + m, 0] - col[i, 0]
        for j in range(1, n1):
            run[j + 1] = run[j] + (col[i + m, j] - col[i, j])
        for j in range(n1 - n + 1):
            out[i, j] = run[j + n] - run[j]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _ncc_normalise(xcorr, image, m, n, t_mean, t_ssd, out):
    """The NCC from the correlation and the image's window sums (as :func:`ncc` did in
    numpy, operation for operation)."""
    s1 = _window_sums(image, m, n)
    s2 = _window_sums(image * image, m, n)
    eps = np.finfo(np.float64).eps
    mn = m * n
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            num = xcorr[i, j] - s1[i, j] * t_mean
            den = math.sqrt(max((s2[i, j] - s1[i, j] * s1[i, j] / mn) * t_ssd, 0.0))
            out[i, j] = num / den if den > eps else 0.0


#: the compact-feature test's line openings: 9 px along rows, columns and both diagonals
LINE_OPENING_PX = 9
LINE_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def line_extreme(x: np.ndarray, direction: tuple[int, int], length: int, op) -> np.ndarray:
    """Running ``op`` (np.minimum / np.maximum) over a centred line of ``length`` pixels
    along ``direction``, edges extended by their nearest pixel (a grey erosion or
    dilation with a line footprint; exact)."""
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
    return line_extreme(line_extreme(x, direction, length, np.minimum), direction, length,
                         np.maximum)


def hot_pixels(img: np.ndarray, valid: np.ndarray, *, k_sigma: float = 6.0,
                grow_px: int = 3) -> np.ndarray:
    """Hotspots and other compact bright features, grown by ``grow_px``: they must not
    steer the limb (a hotspot on the limb pulls the fitted edge by a pixel).

    Compact = removed by a grey opening with a 9-px line in *every* direction
    (0, 45, 90, 135 deg): the smallest of the four top-hats is large on a
    PSF-sized hotspot, small on the disc, its limb and a limb-brightened rim
    (elongated features survive the opening along their own direction).
    """
    x = np.where(valid & np.isfinite(img), img, np.nan)
    fill = nanmedian(x) if np.isfinite(x).any() else 0.0
    x = np.where(np.isfinite(x), x, fill).astype(float)
    tophat = np.min([x - line_opening(x, d, LINE_OPENING_PX) for d in LINE_DIRECTIONS],
                    axis=0)
    hp = x - 0.25 * (np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 1))
    sigma = 1.4826 * median(np.abs(hp[valid])) / np.sqrt(1.25) if valid.any() else 0.0
    hot = valid & (tophat > k_sigma * sigma) if sigma > 0 else np.zeros_like(valid)
    return grow(hot, grow_px) if hot.any() else hot


def median_filter_nearest(x: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.median_filter(x, size, mode="nearest")``, exactly, faster.

    For an odd ``size`` the median of a window is one of its values: each value
    is replaced by its rank in the (edge-padded) image, 16-bit for a band strip,
    a partial sort of each window's ranks (a few rows at a time) picks the
    middle one, and its rank gives the value back (~2x faster than partial
    sorts of the values, ~8x than scipy's rank filter here). An even ``size``
    or a non-finite value goes to scipy.
    """
    x = np.asarray(x, dtype=float)
    if size % 2 == 0 or not np.isfinite(x).all():
        return ndi.median_filter(x, size=size, mode="nearest")
    h = size // 2
    flat = np.pad(x, h, mode="edge").ravel()
    order = np.argsort(flat, kind="stable")
    dtype = np.uint16 if flat.size <= 1 << 16 else np.uint32
    rank = np.empty(flat.size, dtype)
    rank[order] = np.arange(flat.size, dtype=dtype)
    rank = rank.reshape(x.shape[0] + 2 * h, x.shape[1] + 2 * h)
    out = np.empty(x.shape, dtype)
    k = size * size // 2
    n0, n1 = x.shape
    for r0 in range(0, n0, 8):
        r1 = min(r0 + 8, n0)
        win = sliding_window_view(rank[r0:r1 + 2 * h], (size, size))
        out[r0:r1] = np.partition(win.reshape(r1 - r0, n1, size * size), k, axis=-1)[..., k]
    return flat[order][out]


def block_median(x: np.ndarray, valid: np.ndarray, block: int) -> np.ndarray:
    """Median of valid pixels in ``block`` x ``block`` cells (NaN where none)."""
    n0, n1 = x.shape
    p0, p1 = -n0 % block, -n1 % block
    xp = np.pad(np.where(valid, x, np.nan), ((0, p0), (0, p1)), constant_values=np.nan)
    cells = xp.reshape((n0 + p0) // block, block, (n1 + p1) // block, block)
    cells = cells.transpose(0, 2, 1, 3).reshape((n0 + p0) // block, (n1 + p1) // block, -1)
    # the median of each cell's non-NaN values (np.nanmedian's, without its slow path for
    # short rows): sorted, NaN last; the middle one, or the mean of the middle two
    srt = np.sort(cells, axis=-1)
    k = np.sum(~np.isnan(cells), axis=-1)
    lo = np.take_along_axis(srt, np.maximum((k - 1) // 2, 0)[..., None], -1)[..., 0]
    hi = np.take_along_axis(srt, (k // 2)[..., None], -1)[..., 0]
    return np.where(k > 0, (lo + hi) / 2, np.nan)


def h_maxima_at(t: np.ndarray, h: float, at: np.ndarray) -> np.ndarray:
    """``skimage.morphology.h_maxima(t, h)`` at the pixels ``at`` (False elsewhere), exactly.

    Whether p is an h-maximum depends only on pixels joined to p through values
    above ``t(p) - h``: the reconstruction is run on the pieces of the image above
    ``min t(at) - h`` that hold a pixel of ``at`` (each in its own box, the rest
    of the box lowered to that level), not on the whole image.
    """
    from skimage.morphology import h_maxima

    out = np.zeros(t.shape, bool)
    if not at.any():
        return out
    low = float(t[at].min()) - h - 1e-6
    lab, _ = ndi.label(t > low, structure=np.ones((3, 3), bool))
    boxes = ndi.find_objects(lab)
    for k in np.unique(lab[at]):
        sl = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in boxes[k - 1])
        piece = lab[sl] == k
        out[sl] |= h_maxima(np.where(piece, t[sl], low), h).astype(bool) & piece
    return out & at


def brightest_of_labels(values: np.ndarray, labels: np.ndarray, n: int):
    """(row, col) of the largest value of each label 1..n (``ndi.maximum_position``)."""
    rr, cc = np.nonzero(labels)
    lab, val = labels[rr, cc], values[rr, cc]
    order = np.lexsort((-val, lab))  # by label, largest first
    lab_s, val_s = lab[order], val[order]
    first = np.r_[True, lab_s[1:] != lab_s[:-1]]
    tie = first[:-1] & (lab_s[1:] == lab_s[:-1]) & (val_s[1:] == val_s[:-1])
    if tie.any() or first.sum() != n:  # scipy's choice among equals is its sort's: use it
        idx = ndi.maximum_position(values, labels, np.arange(1, n + 1))
        return np.array([int(i[0]) for i in idx]), np.array([int(i[1]) for i in idx])
    return rr[order[first]], cc[order[first]]


def label_max(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Largest value of each label 1..n (``ndi.maximum``; 0 for a label with no pixel)."""
    sel = labels > 0
    out = np.full(n + 1, -np.inf)
    np.maximum.at(out, labels[sel], np.asarray(values, dtype=float)[sel])
    out[np.bincount(labels[sel], minlength=n + 1) == 0] = 0.0
    return out[1:]


@njit(cache=True, nogil=True, error_model="numpy")
def _box_mean_1d(src, dst, size, axis):
    """``ndimage.uniform_filter1d(src, size, axis, mode="nearest")`` into ``dst``: a
    running sum that each step adds (entering - leaving) to, over size (the order scipy
    adds in: the same bits); the window is ``size // 2`` before the pixel and the rest
    after (scipy's, for an even size too)."""
    n0, n1 = src.shape
    h = size // 2
    h_hi = size - 1 - h
    if axis == 0:  # a running sum per column, a whole row at a time
        acc = np.zeros(n1)
        for k in range(size):
            r = min(max(k - h, 0), n0 - 1)
            for j in range(n1):
                acc[j] += src[r, j]
        for i in range(n0):
            if i:
                r_in = min(i + h_hi, n0 - 1)
                r_out = max(i - h - 1, 0)
                for j in range(n1):
                    acc[j] += src[r_in, j] - src[r_out, j]
            for j in range(n1):
                dst[i, j] = acc[j] / size
        return
    for i in range(n0):
        acc = 0.0
        for k in range(size):
            acc += src[i, min(max(k - h, 0), n1 - 1)]
        for j in range(n1):
            if j:
                acc += src[i, min(j + h_hi, n1 - 1)] - src[i, max(j - h - 1, 0)]
            dst[i, j] = acc / size


_SIGN = np.uint64(1 << 63)


@njit(cache=True, nogil=True, error_model="numpy")
def _order_key(bits):
    """An IEEE double's bits as an unsigned key in the order of the values."""
    return ~bits if bits & _SIGN else bits | _SIGN


@njit(cache=True, nogil=True, error_model="numpy")
def _kth(a, k):
    """The k-th smallest (0-based) of ``a`` (no NaN), by radix selection on the values'
    order keys: 12 bits at a time, from the highest bit in which the remaining keys
    differ, only the members of the bin that holds rank k are kept."""
    vals = np.ascontiguousarray(a)
    bits = vals.view(np.uint64)
    rank = k
    k_min, k_max = _order_key(bits[0]), _order_key(bits[0])
    for i in range(vals.size):
        key = _order_key(bits[i])
        k_min = min(k_min, key)
        k_max = max(k_max, key)
    while k_min != k_max and vals.size > 32:
        top = 63
        while not (k_min ^ k_max) >> np.uint64(top) & np.uint64(1):
            top -= 1
        shift = np.uint64(max(top - 11, 0))
        counts = np.zeros(4096, np.int64)
        for i in range(vals.size):
            counts[(_order_key(bits[i]) >> shift) & np.uint64(4095)] += 1
        pick = 0
        for b in range(4096):
            if counts[b] > rank:
                pick = b
                break
            rank -= counts[b]
        kept = np.empty(counts[pick])
        m = 0
        k_min, k_max = ~np.uint64(0), np.uint64(0)
        for i in range(vals.size):
            key = _order_key(bits[i])
            if (key >> shift) & np.uint64(4095) == pick:
                kept[m] = vals[i]
                m += 1
                k_min = min(k_min, key)
                k_max = max(k_max, key)
        vals = kept
        bits = vals.view(np.uint64)
    if k_min == k_max:
        return vals[0]
    return np.sort(vals)[rank]


@njit(cache=True, nogil=True, error_model="numpy")
def _median(a):
    n = a.size
    for i in range(n):
        if math.isnan(a[i]):
            return np.nan
    if n == 0:
        return np.nan
    if n % 2:
        return _kth(a, n // 2)
    lo = _kth(a, n // 2 - 1)
    # the next one up: lo again if it fills rank n / 2 too, else the least value above it
    n_le = 0
    above = np.inf
    for i in range(n):  # without branches: the comparisons are unpredictable
        x = a[i]
        n_le += x <= lo
        above = min(above, x if x > lo else np.inf)
    return (lo + (lo if n_le > n // 2 else above)) / 2.0


def median(a) -> float:
    """``np.median`` of all the values of ``a`` (as float64): the middle value, or the
    mean of the middle two (their sum over 2, as numpy); NaN when any is NaN or none is
    there. The same number as numpy's (a median of zeros may come back as -0.0 where
    numpy's is 0.0, or the reverse; numpy averages float32 input in float32). A radix
    selection, ~3x numpy's on 50k values."""
    return float(_median(np.ascontiguousarray(a, dtype=float).ravel()))


def nanmedian(a) -> float:
    """``np.nanmedian`` of all the values of ``a``, as :func:`median` (NaN when all are
    NaN)."""
    a = np.asarray(a, dtype=float).ravel()
    return median(a[~np.isnan(a)])


@njit(cache=True, nogil=True, error_model="numpy")
def clipped_local_mean(img, weight, size, n_iter, clip):
    """Local mean of ``img`` over the pixels of ``weight`` in ``size`` x ``size`` windows
    (edges extended), sigma-clipped ``n_iter`` times at ``clip`` x 1.4826 MAD of the
    weighted pixels' deviations; NaN where no weight reaches (see
    :func:`iovolc.extract.background_model`)."""
    n0, n1 = img.shape
    big = np.finfo(np.float64).max
    w = np.empty((n0, n1))
    for i in range(n0):
        for j in range(n1):
            w[i, j] = 1.0 if weight[i, j] else 0.0
    prod = np.empty((n0, n1))
    tmp = np.empty((n0, n1))
    num = np.empty((n0, n1))
    den = np.empty((n0, n1))
    mean = np.zeros((n0, n1))
    ad = np.empty(n0 * n1)
    for _ in range(n_iter):
        for i in range(n0):
            for j in range(n1):
                prod[i, j] = img[i, j] * w[i, j]
        _box_mean_1d(prod, tmp, size, 0)
        _box_mean_1d(tmp, num, size, 1)
        _box_mean_1d(w, tmp, size, 0)
        _box_mean_1d(tmp, den, size, 1)
        n_ad = 0
        any_w = False
        for i in range(n0):
            for j in range(n1):
                mean[i, j] = num[i, j] / den[i, j] if den[i, j] > 1e-6 else np.nan
                if w[i, j] > 0:
                    any_w = True
                    d = abs(img[i, j] - mean[i, j])
                    if not math.isnan(d):
                        ad[n_ad] = d
                        n_ad += 1
        if n_ad:
            scatter = 1.4826 * _median(ad[:n_ad])
        else:
            scatter = np.nan if any_w else 0.0
        limit = clip * scatter + 1e-12
        same = True
        for i in range(n0):
            for j in range(n1):
                d = img[i, j] - mean[i, j]
                if math.isnan(d):
                    d = 0.0
                elif math.isinf(d):
                    d = big if d > 0 else -big
                keep = weight[i, j] and abs(d) < limit
                if keep != (w[i, j] > 0):
                    same = False
                tmp[i, j] = 1.0 if keep else 0.0
        if same:
            break
        w, tmp = tmp, w
    return mean


@njit(cache=True, nogil=True, error_model="numpy")
def _grow(mask, n):
    n0, n1 = mask.shape
    cap = n + 1
    d = np.empty((n0, n1), np.int64)
    for i in range(n0):  # city-block distance to the mask: down and right ...
        for j in range(n1):
            if mask[i, j]:
                d[i, j] = 0
            else:
                v = cap
                if i:
                    v = min(v, d[i - 1, j] + 1)
                if j:
                    v = min(v, d[i, j - 1] + 1)
                d[i, j] = v
    out = np.empty((n0, n1), np.bool_)
    for i in range(n0 - 1, -1, -1):  # ... then up and left
        for j in range(n1 - 1, -1, -1):
            v = d[i, j]
            if i < n0 - 1:
                v = min(v, d[i + 1, j] + 1)
            if j < n1 - 1:
                v = min(v, d[i, j + 1] + 1)
            d[i, j] = v
            out[i, j] = v <= n
    return out


def grow(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``ndimage.binary_dilation(mask, iterations=n)`` (the 4-connected cross, n >= 1) of a
    2-D mask, exactly: the pixels within city-block distance n of the mask, from two
    passes of a distance transform instead of n dilations."""
    if iterations < 1:
        raise ValueError(f"grow: iterations {iterations} < 1")
    return _grow(np.ascontiguousarray(mask, dtype=bool), int(iterations))


def warm_up() -> None:
    """Compile (or load from the cache) this module's loops: an image build step, as
    :func:`iovolc.raytrace.warm_up`."""
    x = np.arange(12.0).reshape(3, 4)
    ncc(x, x[:2, :2])
    median(x)
    clipped_local_mean(x, x > 2, 3, 1, 3.0)
    grow(x > 5, 1)
