"""Image helpers of the limb fit and the extraction: exact, faster forms of library calls.

Each computes what the library function it replaces computes (named in its
docstring), checked against it in ``tests/test_speed_equivalence.py``:
normalised cross-correlation (skimage ``match_template``, valid offsets),
line openings (``ndimage.grey_opening`` with a line footprint), the
compact-feature mask built on them, the 2-D median filter
(``ndimage.median_filter``, mode "nearest"), block medians (``nanmedian``),
h-maxima at given pixels (skimage ``h_maxima``) and per-label maxima and
their positions (``ndimage.maximum``/``maximum_position``; among equal values
the first in raster order, where scipy's choice depends on the host). The NCC's window
sums, the median (``np.median``) and the cross dilation
(``ndimage.binary_dilation``) run compiled (:mod:`iovolc.compiled`), and so
does the h-maxima (:mod:`iovolc.morphology`); both checked in
``tests/test_speed_kernels.py``.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage as ndi

from iovolc import compiled, rank_median
from iovolc.morphology import compact_hot, fill_and_highpass, usable_values
from iovolc.morphology import h_maxima as _compiled_h_maxima


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
            self._spectra[shape] = np.conj(rfft2(self.t.astype(float), shape))
        return self._spectra[shape]


def rfft2(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``scipy.fft.rfft2(x, shape)``, the same bits (stop 22).

    scipy transforms the last axis, each row on its own, then the first. A row of
    zeros (every bit 0, as the padding up to ``shape``) always transforms to the same
    values (a few of them -0.0), so only the rows from the first to the last that hold
    a non-zero bit are transformed here; the others take that zero row's transform.
    A predicted disc fills a few rows of its canvas; a template, the top of its padded
    grid."""
    x = np.asarray(x)
    if x.dtype != np.float64 or x.ndim != 2 or x.shape[0] > shape[0]:
        return sp_fft.rfft2(x, shape)  # another precision, or rows to crop: scipy's own way
    x = np.ascontiguousarray(x)
    rows = np.flatnonzero(x.view(np.uint64).any(axis=1))
    half = np.empty((shape[0], shape[1] // 2 + 1), dtype=complex)
    half[...] = _zero_row_spectrum(shape[1])
    if rows.size:
        half[rows[0]:rows[-1] + 1] = sp_fft.rfft(x[rows[0]:rows[-1] + 1], n=shape[1], axis=1)
    return sp_fft.fft(half, axis=0, overwrite_x=True)


@functools.lru_cache(maxsize=32)
def _zero_row_spectrum(n: int) -> np.ndarray:
    out = sp_fft.rfft(np.zeros(n))
    out.setflags(write=False)
    return out


def irfft2_rows(spectrum: np.ndarray, shape: tuple[int, int], n_rows: int, *,
                overwrite: bool = False) -> np.ndarray:
    """``scipy.fft.irfft2(spectrum, shape)[:n_rows]``, the same bits (stop 22): scipy
    transforms the first axis (unscaled), then the last, scaling by ``1 / (n0 n1)`` in
    that last pass; only the rows kept take the last pass here. The scale is scipy's
    (``1 / N`` in long double on some builds, in double on others): where the two
    differ, the whole transform runs as scipy's, as it does for a spectrum that is not
    complex128 of shape ``(n0, n1 // 2 + 1)``. ``overwrite``: ``spectrum`` may be
    overwritten (a temporary)."""
    n = shape[0] * shape[1]
    scale = 1.0 / n
    if (spectrum.dtype != np.complex128 or spectrum.shape != (shape[0], shape[1] // 2 + 1)
            or scale != float(np.longdouble(1) / np.longdouble(n))):
        return sp_fft.irfft2(spectrum, shape)[:n_rows]
    cols = sp_fft.ifft(spectrum, axis=0, norm="forward", overwrite_x=overwrite)
    out = sp_fft.irfft(cols[:n_rows], n=shape[1], axis=1, norm="forward")
    out *= scale
    return out


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
        spectrum = (shape, rfft2(image, shape))
    xcorr = irfft2_rows(spectrum[1] * tp.spectrum(shape), shape, n_i, overwrite=True)[:, :n_j]
    image = np.ascontiguousarray(image, dtype=float)
    out = np.empty((n_i, n_j))
    compiled._ncc_normalise(np.ascontiguousarray(xcorr), image, m, n, float(tp.mean),
                            float(tp.ssd), out)
    return out


def image_spectrum(image: np.ndarray):
    """The FFT of ``image`` that :func:`ncc` computes, kept for several templates (pass it
    as ``spectrum=``)."""
    shape = (sp_fft.next_fast_len(image.shape[0], real=True),
             sp_fft.next_fast_len(image.shape[1], real=True))
    return shape, rfft2(image, shape)


#: the compact-feature test's line openings: 9 px along rows, columns and both diagonals
LINE_OPENING_PX = 9
LINE_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
_DIRECTIONS = np.array(LINE_DIRECTIONS, dtype=np.int64)


def hot_pixels(img: np.ndarray, valid: np.ndarray, *, k_sigma: float = 6.0,
                grow_px: int = 3, within: tuple[slice, slice] | None = None) -> np.ndarray:
    """Hotspots and other compact bright features, grown by ``grow_px``: they must not
    steer the limb (a hotspot on the limb pulls the fitted edge by a pixel).

    Compact = removed by a grey opening with a 9-px line in *every* direction
    (0, 45, 90, 135 deg): the smallest of the four top-hats is large on a
    PSF-sized hotspot, small on the disc, its limb and a limb-brightened rim
    (elongated features survive the opening along their own direction).

    ``within``: a box (slices) of the only pixels the caller reads; the mask is then
    exact there and False elsewhere (stop 25). The fill and the noise stay the whole
    image's; the top-hat is taken on the box and the reach of the openings and the
    growth around it (an opening reads 2 x 4 px along its line, edges extended as
    the image's where the box meets them), so inside the box it is the same bits.
    """
    # the unusable pixels filled with the usable ones' median (in the image's dtype, as
    # np.where fills them), the 4-neighbour high-pass and its |values| at the valid
    # pixels: one compiled pass each (stop 22; the numpy form in tests/_speed_reference.py)
    img = np.asarray(img)
    # np.where(..., img, np.nan) keeps a float image's dtype (the fill is rounded to it)
    # and makes any other float64; the kernels read a native float32 or float64 copy
    # that holds the same values (a long double's rounded, as .astype(float) did)
    fill_type = img.dtype.newbyteorder("=").type if img.dtype.kind == "f" else np.float64
    work = np.ascontiguousarray(
        img, dtype=np.float32 if img.dtype.kind == "f" and img.dtype.itemsize <= 4 else float)
    valid = np.ascontiguousarray(valid, dtype=bool)
    buf = np.empty(img.size)
    n = usable_values(work, valid, buf)
    fill = float(fill_type(float(compiled._median(buf[:n])) if n else 0.0))
    x, hp = np.empty(img.shape), np.empty(img.shape)
    n = fill_and_highpass(work, valid, fill, x, hp, buf)
    box = None
    if within is not None:  # the box, the growth and the openings' reach around it
        reach = grow_px + 2 * (LINE_OPENING_PX // 2) + 1
        box = tuple(slice(max(sl.start - reach, 0), min(sl.stop + reach, size))
                    for sl, size in zip(within, img.shape, strict=True))
        x, valid_box = np.ascontiguousarray(x[box]), valid[box]
    sigma = 1.4826 * float(compiled._median(buf[:n])) / np.sqrt(1.25) if n else 0.0
    v = valid if box is None else valid_box
    hot = np.zeros(v.shape, dtype=bool)
    if sigma > 0:  # v & (compact_tophat(x, ...) > k sigma): the mask alone (stop 28)
        compact_hot(x, np.ascontiguousarray(v), _DIRECTIONS, LINE_OPENING_PX,
                    k_sigma * sigma, hot)
    hot = grow(hot, grow_px) if hot.any() else hot
    if box is None:
        return hot
    out = np.zeros(img.shape, dtype=bool)
    inner = tuple(slice(w.start - b.start, w.stop - b.start) for w, b in zip(within, box,
                                                                           strict=True))
    out[within] = hot[inner]
    return out


def median_filter_nearest(x: np.ndarray, size: int, *, plateau: bool = True) -> np.ndarray:
    """``scipy.ndimage.median_filter(x, size, mode="nearest")``, exactly, faster.

    For an odd ``size`` the median of a window is one of its values: each value
    is replaced by its rank in the (edge-padded) image, 16-bit for a band strip,
    the window's middle rank is found by sliding the window along each row over
    a bit set of the ranks (:func:`iovolc.rank_median.window_medians`; stop 21,
    ~4x the partial sorts of each window's ranks it replaced), and its rank
    gives the value back. An even ``size`` or a non-finite value goes to scipy.
    ``plateau``: whether most of ``x`` may be one value (see :func:`edge_ranks`).
    """
    x = np.asarray(x, dtype=float)
    if size % 2 == 0 or x.size == 0 or not np.isfinite(x).all():
        return ndi.median_filter(x, size=size, mode="nearest")
    if size == 3 and x.ndim == 2:  # a network per window (stop 36)
        out = np.empty(x.shape)
        rank_median.median3_nearest(np.ascontiguousarray(x), out)
        return out
    flat, order, rank = edge_ranks(x, size // 2, plateau=plateau)
    out = np.empty(x.shape, rank.dtype)
    rank_median.window_medians(rank, size, out)
    return flat[order][out]


def edge_ranks(x: np.ndarray, h: int, *, plateau: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x`` edge-padded by ``h``: its values flat, their sort order, and each value's
    rank as an image (16-bit while it fits); ``flat[order][r]`` is the value of rank r.

    Equal values may take their ranks in any order: the value of a rank is the same.
    The sort is numpy's stable one where most of ``x`` may be one value (``plateau``,
    or any -0.0: +-0.0 are equal, and the order between them would choose the sign
    of a zero median), else its default quicksort: faster where few values repeat,
    slower on large plateaus (stop 28; the figures are in ``docs/decisions.md``,
    "Decisions taken from their margins", and ``bench/kernels_simd.py``)."""
    flat = np.pad(x, h, mode="edge").ravel()
    stable = plateau or bool(np.any((flat == 0.0) & np.signbit(flat)))
    order = np.argsort(flat, kind="stable" if stable else "quicksort")
    dtype = np.uint16 if flat.size <= 1 << 16 else np.uint32
    rank = np.empty(flat.size, dtype)
    rank[order] = np.arange(flat.size, dtype=dtype)
    return flat, order, rank.reshape(x.shape[0] + 2 * h, x.shape[1] + 2 * h)


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
    out = np.zeros(t.shape, bool)
    if not at.any():
        return out
    low = float(t[at].min()) - h - 1e-6
    lab, _ = ndi.label(t > low, structure=np.ones((3, 3), bool))
    boxes = ndi.find_objects(lab)
    for k in np.unique(lab[at]):
        sl = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in boxes[k - 1])
        piece = lab[sl] == k
        out[sl] |= _h_maxima(np.where(piece, t[sl], low), h) & piece
    return out & at


def _h_maxima(img: np.ndarray, h: float) -> np.ndarray:
    """``skimage.morphology.h_maxima(img, h)`` as a bool array: compiled for float64 and
    h > 0 (:func:`iovolc.morphology.h_maxima`, the same answer), else scikit-image."""
    if img.dtype == np.float64 and h > 0:
        return _compiled_h_maxima(np.ascontiguousarray(img), float(h))
    from skimage.morphology import h_maxima

    return h_maxima(img, h).astype(bool)


def brightest_of_labels(values: np.ndarray, labels: np.ndarray, n: int):
    """(row, col) of the largest value of each label 1..n, as ``ndi.maximum_position``
    except among equal values: the first in raster order (scipy's choice follows its
    unstable sort, so it depends on the host's SIMD; stop 30). (0, 0) for a label
    with no pixel, as scipy gives."""
    rr, cc = np.nonzero(labels)
    lab, val = labels[rr, cc], values[rr, cc]
    order = np.lexsort((-val, lab))  # by label, largest first, then raster order (stable)
    lab_s = lab[order]
    first = np.ones(lab_s.size, bool)
    first[1:] = lab_s[1:] != lab_s[:-1]
    pick = order[first]  # each present label's brightest pixel
    at = lab[pick] - 1
    inside = (at >= 0) & (at < n)  # labels beyond 1..n are not asked for
    out_r, out_c = np.zeros(n, dtype=rr.dtype), np.zeros(n, dtype=cc.dtype)
    out_r[at[inside]], out_c[at[inside]] = rr[pick[inside]], cc[pick[inside]]
    return out_r, out_c


def label_max(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Largest value of each label 1..n (``ndi.maximum``; 0 for a label with no pixel)."""
    sel = labels > 0
    out = np.full(n + 1, -np.inf)
    np.maximum.at(out, labels[sel], np.asarray(values, dtype=float)[sel])
    out[np.bincount(labels[sel], minlength=n + 1) == 0] = 0.0
    return out[1:]


def median(a) -> float:
    """``np.median`` of all the values of ``a`` (as float64): the middle value, or the
    mean of the middle two (their sum over 2, as numpy); NaN when any is NaN or none is
    there. The same number as numpy's (a median of zeros may come back as -0.0 where
    numpy's is 0.0, or the reverse; numpy averages float32 input in float32). A radix
    selection, ~3x numpy's on 50k values."""
    return float(compiled._median(np.ascontiguousarray(a, dtype=float).ravel()))


def row_medians(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=-1)`` of a 2-D array, one :func:`median` per row (stop 25)."""
    a = np.ascontiguousarray(a, dtype=float)
    if a.ndim != 2 or a.shape[1] == 0:
        return np.median(a, axis=-1)
    out = np.empty(a.shape[0])
    compiled._row_medians(a, out)
    return out


def percentile(a, q: float) -> float:
    """``float(np.percentile(a, q))`` of all the values of a float64 or float32 array
    (method "linear"), the same number: numpy's virtual index ``(n - 1) q / 100``, the
    two order statistics around it (radix selection, :func:`iovolc.compiled._kth_and_next`;
    ~4x numpy's partition on a band strip's 55,000 values) and numpy's interpolation
    (``_lerp``, in the array's precision: from the upper one when the fraction is >=
    0.5). ``q`` a Python number; another type of ``q``, another dtype, a NaN, an infinity
    or no value: numpy's own call (stop 25). As :func:`median`, an order statistic of
    zeros may be -0.0 where numpy's is 0.0, or the reverse."""
    x = np.ascontiguousarray(a).ravel()
    if not _selectable(x, (q,)):
        return float(np.percentile(x, q))
    # numpy's arithmetic is in the array's precision; float32 values are exact as float64
    return _percentile64(x.dtype.type, x.astype(np.float64, copy=False), q)[0]


def median_and_percentiles(a, qs: tuple[float, ...]) -> tuple[float, ...]:
    """``(median(a), *(percentile(a, q) for q in qs))``, the same bits, for ascending
    ``qs``: each percentile after the first is selected among the values from the lower
    order statistic of the one before when that is > 0 (stop 26: a band strip's 99.7th
    percentile from the few hundred values above its 99.5th). What :func:`percentile`
    gives to numpy, or ``qs`` not ascending: one call each."""
    x = np.ascontiguousarray(a).ravel()
    if not _selectable(x, qs) or list(qs) != sorted(qs):
        return (median(x), *(percentile(x, q) for q in qs))
    x64 = x.astype(np.float64, copy=False)
    out = [median(x64)]
    found = None
    for q in qs:
        value, found = _percentile64(x.dtype.type, x64, q, found)
        out.append(value)
    return tuple(out)


def _percentile64(kind, x: np.ndarray, q: float, found: tuple | None = None):
    """:func:`percentile` of float64 values (no NaN, not empty), interpolated in the
    precision ``kind``, and ``(value, rank)`` of its lower order statistic (``found``
    unchanged when the answer is the largest value). ``found``: such a pair of rank <=
    this one's, to select among the values from it only -- when that value is > 0. A
    tail holding zeros could order -0.0 and 0.0 otherwise than the whole array does
    (the radix selection tells them apart on more than 32 values, the insertion sort
    on fewer keeps their order: a reviewer's finding), so it is not used there."""
    n = x.size
    virtual = (n - 1) * float(np.true_divide(q, 100))
    tail = found is not None and found[0] > 0
    if virtual >= n - 1:  # numpy takes the largest value (and a gamma that multiplies 0)
        top = compiled._tail_kth(x, found[0], n - 1) if tail else compiled._kth(x, n - 1)
        return float(kind(top)), found
    prev = int(np.floor(virtual))
    if not tail:  # (with a tail, prev >= found's rank: the qs ascend)
        lo, hi = compiled._kth_and_next(x, prev)
    else:
        lo, hi = compiled._tail_kth_and_next(x, found[0], prev)
    return _lerp(kind, lo, hi, virtual - prev), (lo, prev)


def _selectable(x: np.ndarray, qs) -> bool:
    """Whether :func:`percentile` selects the ``qs`` of ``x`` itself (not numpy)."""
    # a q of numpy's own type changes numpy's precision (it is not "weak"): numpy's call
    return (all(type(q) in (int, float) and 0.0 <= q <= 100.0 for q in qs)
            and x.dtype in (np.float64, np.float32) and x.size > 0
            and bool(np.isfinite(np.add.reduce(x, dtype=np.float64))))


def _lerp(kind, lo: float, hi: float, gamma: float) -> float:
    """numpy's linear interpolation between two order statistics, in the precision
    ``kind`` (from the upper one when ``gamma`` >= 0.5)."""
    lo, hi = kind(lo), kind(hi)
    diff = hi - lo
    return float(hi - diff * (1 - gamma)) if gamma >= 0.5 else float(lo + diff * gamma)


def nanmedian(a) -> float:
    """``np.nanmedian`` of all the values of ``a``, as :func:`median` (NaN when all are
    NaN)."""
    a = np.asarray(a, dtype=float).ravel()
    return median(a[~np.isnan(a)])


def box_of(x: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The bounding box of ``x``'s non-zero (True, NaN) pixels widened by ``margin`` px
    within the image, as slices; None when every pixel is zero. A C-ordered float64 or
    bool image is scanned by a compiled loop (:func:`iovolc.compiled.nonzero_box`, stop
    28), any other by numpy's ``any`` along each axis."""
    n0, n1 = x.shape
    if x.dtype in (np.float64, np.bool_) and x.flags.c_contiguous:
        r0, r1, c0, c1 = compiled.nonzero_box(x)
        if r0 < 0:
            return None
    else:
        rows = np.flatnonzero(x.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(x.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    return (slice(max(r0 - margin, 0), min(r1 + 1 + margin, n0)),
            slice(max(c0 - margin, 0), min(c1 + 1 + margin, n1)))


def grow(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``ndimage.binary_dilation(mask, iterations=n)`` (the 4-connected cross, n >= 1) of a
    2-D mask, exactly: the pixels within city-block distance n of the mask, each set
    pixel's diamond for a sparse mask, else two passes of a distance transform on the
    mask's box (:func:`iovolc.compiled._grow`), instead of n dilations."""
    if iterations < 1:
        raise ValueError(f"grow: iterations {iterations} < 1")
    return compiled._grow(np.ascontiguousarray(mask, dtype=bool), int(iterations))

