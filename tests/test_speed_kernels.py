"""The compiled and vectorised pieces of stop 18 (issue 11) against what they replaced.

Exact ones (the same values, bit for bit): the window sums of the NCC, the
box means and sigma-clipped local mean of the background, the median, the
cross dilation, the disc canvas blurred on its lit window, the limb-fit
spline coefficients on the lit window, the constellation fit. The limb fit's
compiled Gauss-Newton differs from the numpy steps only by rounding (normal
equations and loop sums against SVD and BLAS): it is compared to the numpy
steps kept in ``tests/_speed_reference.py`` on synthetic limbs. No timing here.
"""

from __future__ import annotations

import _speed_reference as ref
import numpy as np
import pandas as pd
import pytest
from _synthetic import _scene, _state, _tilted
from scipy import fft as sp_fft
from scipy import ndimage as ndi
from scipy.ndimage import gaussian_filter, map_coordinates, spline_filter

from iovolc import compiled, imaging, morphology
from iovolc.extract import _clipped_local_mean
from iovolc.pointing import _best_shift, fit_constellation
from iovolc.registration import (
    FIT_EXPONENTS,
    _fit_exponent,
    _limb_zones,
    _spline_coefficients,
    _strip_levels,
)
from iovolc.shading import predicted_shading


def _cumsum_window_sums(x, m, n):
    """The numpy form of the NCC's window sums (running sums by np.cumsum) that
    compiled._window_sums replaced."""
    c = np.zeros((x.shape[0] + 1, x.shape[1]))
    np.cumsum(x, axis=0, out=c[1:])
    rows = c[m:] - c[:-m]
    c = np.zeros((rows.shape[0], rows.shape[1] + 1))
    np.cumsum(rows, axis=1, out=c[:, 1:])
    return c[:, n:] - c[:, :-n]


def test_compiled_window_sums_and_a_kept_spectrum_change_no_bit():
    rng = np.random.default_rng(11)
    for shape, (m, n) in [((144, 448), (128, 432)), ((300, 120), (60, 60)), ((7, 9), (7, 9)),
                          ((20, 20), (1, 1))]:
        x = rng.normal(size=shape) * (rng.random(shape) < 0.7)
        assert np.array_equal(compiled._window_sums(x, m, n, False),
                              _cumsum_window_sums(x, m, n))
        assert np.array_equal(compiled._window_sums(x, m, n, True),
                              _cumsum_window_sums(x * x, m, n))
    canvas = _scene(rng, 120, 200)
    for t in (canvas[10:70, 20:90], canvas[50:110, 100:190]):
        got = imaging.ncc(canvas, t)
        kept = imaging.ncc(canvas, t, spectrum=imaging.image_spectrum(canvas))
        assert np.array_equal(kept, got)
        # the numpy normalisation it replaced, on the same correlation
        tp = imaging.Template(t)
        m, n = t.shape
        shape = (sp_fft.next_fast_len(120, real=True), sp_fft.next_fast_len(200, real=True))
        xcorr = sp_fft.irfft2(sp_fft.rfft2(canvas, shape) * tp.spectrum(shape),
                              shape)[:121 - m, :201 - n]
        s1 = _cumsum_window_sums(canvas, m, n)
        num = xcorr - s1 * tp.mean
        den = np.sqrt(np.maximum((_cumsum_window_sums(canvas * canvas, m, n) - s1 * s1 / (m * n))
                                 * tp.ssd, 0.0))
        want = np.zeros(num.shape)
        ok = den > np.finfo(float).eps
        want[ok] = num[ok] / den[ok]
        assert np.array_equal(got, want)


def test_median_is_numpys_bit_for_bit():
    rng = np.random.default_rng(12)
    cases = [rng.normal(size=n) for n in (1, 2, 3, 33, 64, 65, 1000, 50001, 50000)]
    cases += [np.abs(rng.standard_cauchy(5000)), rng.integers(0, 3, 4001).astype(float),
              np.full(999, 0.1), np.r_[np.zeros(3000), rng.random(2000)],
              np.r_[np.full(500, 1e300), -np.abs(rng.normal(size=700))],
              rng.normal(size=4000) * 1e-310, np.array([-0.0, 0.0, 0.0, -0.0]),
              np.array([np.inf, -np.inf, 1.0, 2.0]), np.zeros(0)]
    for a in cases:
        want = np.median(a) if a.size else np.nan
        assert np.array_equal(imaging.median(a), want, equal_nan=True), a[:5]
        a2 = np.r_[a, np.nan, a[:3]]
        assert np.isnan(imaging.median(a2))  # numpy: NaN as soon as one is NaN
        assert np.array_equal(imaging.nanmedian(a2), np.median(np.r_[a, a[:3]])
                              if a.size else np.nan, equal_nan=True)
    assert np.isnan(imaging.nanmedian(np.full(4, np.nan)))
    assert imaging.median(np.array([[3.0, 1.0], [2.0, 5.0]])) == 2.5  # every value


def _order_statistic_cases(rng):
    """Arrays with ties, plateaus, zeros, extremes and subnormals, of many sizes."""
    cases = [rng.normal(size=n) for n in (1, 2, 3, 33, 64, 65, 1000, 55001, 55000)]
    cases += [np.abs(rng.standard_cauchy(5000)), rng.integers(0, 3, 4001).astype(float),
              np.full(999, 0.1), np.r_[np.zeros(3000), rng.random(2000)],
              np.r_[np.full(500, 1e300), -np.abs(rng.normal(size=700))],
              rng.normal(size=4000) * 1e-310, rng.integers(0, 7, 77).astype(float)]
    return cases


def test_percentile_is_numpys_bit_for_bit():
    rng = np.random.default_rng(15)
    qs = (0.0, 10, 50, 99.5, 99.7, 100, 33.3, 1e-9, 100 - 1e-9)  # Python numbers
    cases = _order_statistic_cases(rng)
    # float32 (a band strip as read): numpy interpolates in float32
    cases += [a.astype(np.float32) for a in cases if np.all(np.abs(a) < 1e30)]
    for a in cases:
        for q in qs + tuple(rng.random(5) * 100) + (np.float64(99.5), np.float32(10)):
            want = float(np.percentile(a, q))
            got = imaging.percentile(a, q)
            assert got == want and type(got) is float, (a.dtype, a.size, q, got, want)
    # another dtype, non-finite values, nothing: numpy's own call, its answer
    ints = rng.integers(0, 1000, 501)
    assert imaging.percentile(ints, 99.5) == float(np.percentile(ints, 99.5))
    assert np.isnan(imaging.percentile(np.r_[1.0, np.nan, 2.0], 50))
    with np.errstate(invalid="ignore"):  # numpy's interpolation meets inf - inf
        assert np.array_equal(imaging.percentile(np.r_[1.0, np.inf, 2.0], 99.7),
                              np.percentile(np.r_[1.0, np.inf, 2.0], 99.7), equal_nan=True)
    with pytest.raises(IndexError):
        np.percentile(np.zeros(0), 50)  # numpy's error, passed on
    with pytest.raises(IndexError):
        imaging.percentile(np.zeros(0), 50)


def test_median_and_percentiles_are_the_separate_calls_bit_for_bit():
    """The registration's strip levels in one call (stop 26: each percentile after the
    first selected from the tail above the one before) against the median and each
    percentile alone, on the order-statistic cases (ties, plateaus, signed zeros, huge
    and subnormal values, float32), ascending and unsorted ``qs``, and what goes to
    numpy."""
    rng = np.random.default_rng(26)
    cases = _order_statistic_cases(rng)
    cases += [a.astype(np.float32) for a in cases if np.all(np.abs(a) < 1e30)]
    q_sets = [(99.5, 99.7), (50, 99.5, 99.7, 100), (0.0, 10, 99.7), (99.7, 99.5),
              (1e-9, 100 - 1e-9, 100), (10, np.float64(99.5))]
    for a in cases:
        for qs in q_sets + [tuple(np.sort(rng.random(3) * 100).tolist())]:
            want = (imaging.median(a), *(imaging.percentile(a, q) for q in qs))
            got = imaging.median_and_percentiles(a, qs)
            assert np.array(got).tobytes() == np.array(want).tobytes(), (a.dtype, a.size, qs)
    assert np.isnan(imaging.median_and_percentiles(np.r_[1.0, np.nan], (99.5,))).all()
    # a reviewer's case: the tail above a 99.5th of 0 holds zeros of both signs, which a
    # selection among 32 values or fewer keeps in input order (the whole array's radix
    # selection tells them apart): a tail is only taken above a positive value
    for a in (np.r_[np.full(31, -1.0), 0.0, -0.0], np.r_[np.full(40, -1.0), [0.0, -0.0] * 9]):
        for qs in ((99.5, 99.7), (99.5, 100), (90, 99.5, 99.7)):
            want = (imaging.median(a), *(imaging.percentile(a, q) for q in qs))
            got = imaging.median_and_percentiles(a, qs)
            assert np.array(got).tobytes() == np.array(want).tobytes(), (a.size, qs)


def test_row_medians_are_numpys_axis_medians_bit_for_bit():
    rng = np.random.default_rng(16)
    for a in _order_statistic_cases(rng):
        for width in (1, 2, 7, 16, 256):
            n = a.size // width * width
            if n == 0:
                continue
            rows = a[:n].reshape(-1, width)
            assert np.array_equal(imaging.row_medians(rows), np.median(rows, axis=1))
    x = rng.normal(size=(5, 6))
    x[2, 3] = np.nan
    assert np.array_equal(imaging.row_medians(x), np.median(x, axis=1), equal_nan=True)
    assert imaging.row_medians(np.zeros((0, 4))).shape == (0,)


def test_box_means_and_the_clipped_local_mean_are_the_numpy_ones_bit_for_bit():
    rng = np.random.default_rng(13)
    for k in range(42):
        img = rng.normal(size=(128, 432)) + np.linspace(0, 5, 432)
        img[rng.random(img.shape) < 0.01] += 50  # hotspots and spikes to clip
        weight = rng.random(img.shape) < [0.9, 0.3, 0.01, 0.0005, 0.0][k % 5]
        if k % 7 == 0:
            weight[:, :200] = False  # a side no window reaches: NaN
        size = (15, 45, 16, 1, 2, 3, 4)[k % 7] if k < 35 else (15, 45, 16)[k % 3]
        assert np.array_equal(_clipped_local_mean(img, weight, size),
                              ref._clipped_local_mean(img, weight, size), equal_nan=True)
        if k % 6 == 0:  # other round counts: the last round's clipping is never computed
            for n_iter in (1, 2, 4):  # (stop 26), its mean is the answer
                assert np.array_equal(
                    _clipped_local_mean(img, weight, size, n_iter=n_iter),
                    ref._clipped_local_mean(img, weight, size, n_iter=n_iter), equal_nan=True)


def test_the_clipped_local_mean_on_the_weights_box_is_the_whole_images_bit_for_bit():
    """Stop 25: a compact weight (a distant disc's lit pixels) is computed on its box and
    a window's reach around it; the whole strip's result, NaN beyond, the same bits."""
    rng = np.random.default_rng(17)
    rr, cc = np.mgrid[0:128, 0:432]
    n_cropped = 0
    for k in range(60):
        img = rng.normal(size=(128, 432)) * 0.1 + rng.random() * 3
        img[rng.random(img.shape) < 0.01] += 50 * (k % 3)  # spikes to clip (or none)
        c_r, c_s = rng.uniform(-10, 138), rng.uniform(-10, 442)  # near the edges too
        radius = rng.uniform(1, 40)
        weight = (rr - c_r) ** 2 + (cc - c_s) ** 2 < radius ** 2
        weight &= rng.random(img.shape) < (1.0, 0.9, 0.5)[k % 3]
        size = (15, 16, 45, 3, 1)[k % 5]
        box = imaging.box_of(weight, size // 2 + 1)
        n_cropped += box is not None and (box[0].stop - box[0].start) * (
            box[1].stop - box[1].start) <= 0.8 * img.size
        whole = compiled.clipped_local_mean(img, weight, size, 3, 3.0)
        assert np.array_equal(_clipped_local_mean(img, weight, size), whole, equal_nan=True)
    assert n_cropped >= 40  # the box's path, not only the whole image's
    assert np.array_equal(_clipped_local_mean(img, weight, 15, n_iter=0),
                          compiled.clipped_local_mean(img, weight, 15, 0, 3.0), equal_nan=True)
    img[5, 5] = np.nan  # a non-finite pixel: the whole image, as before
    assert np.array_equal(_clipped_local_mean(img, weight, 15),
                          compiled.clipped_local_mean(img, weight, 15, 3, 3.0), equal_nan=True)


def test_hot_pixels_within_a_box_are_the_whole_images_there():
    """Stop 25: ``within`` gives the whole image's mask inside the box (False outside)."""
    rng = np.random.default_rng(18)
    n_hot = 0
    for k in range(40):
        img = rng.normal(size=(128, 432)) + np.linspace(0, 3, 432)
        for _ in range(30):  # PSF-sized hotspots and single spikes, near the edges too
            r, c = rng.integers(0, 128), rng.integers(0, 432)
            img[max(r - 1, 0):r + 1, max(c - 1, 0):c + 1] += rng.uniform(5, 100)
        valid = rng.random(img.shape) > 0.02
        if k % 2:
            img = img.astype(np.float32)
        r0, c0 = rng.integers(-20, 128), rng.integers(-20, 432)
        within = (slice(max(r0, 0), min(r0 + rng.integers(1, 90), 128)),
                  slice(max(c0, 0), min(c0 + rng.integers(1, 200), 432)))
        whole = imaging.hot_pixels(img, valid)
        boxed = imaging.hot_pixels(img, valid, within=within)
        assert np.array_equal(boxed[within], whole[within])
        outside = np.ones(img.shape, bool)
        outside[within] = False
        assert not boxed[outside].any()
        n_hot += int(whole[within].sum())
    assert n_hot > 100  # the boxes held hot pixels to get right


def test_fill_invalid_compiled_is_the_numpy_rounds_bit_for_bit():
    from iovolc import morphology
    from iovolc.hits import fill_invalid

    rng = np.random.default_rng(19)
    for k in range(60):
        shape = [(128, 432), (2, 2), (3, 7), (40, 2), (64, 64)][k % 5]
        x = rng.normal(size=shape) * [1.0, 1e3, 1e-30][k % 3]
        if k % 4 == 1:
            x = np.round(x)  # ties in the medians
        bad = rng.random(shape) < [0.01, 0.2, 0.6, 0.95][k % 4]
        if k % 6 == 0:  # clusters filled from the outside in
            r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
            bad[max(r - 4, 0):r + 4, max(c - 4, 0):c + 4] = True
        if k % 7 == 0:
            x[bad] = np.nan  # what the pixels to fill hold does not matter
        got = fill_invalid(x, bad)
        want = ref.fill_invalid_numpy(x, bad)
        assert np.array_equal(got[0], want[0], equal_nan=True)
        assert np.array_equal(got[1], want[1])
    # fills past the float range (inf, then inf - inf): the rounds give up, numpy's run
    n_gave_up = 0
    for _ in range(300):
        x = rng.choice([1.2e308, -1.2e308, 1.0, 2.0, 3.0], size=(6, 6))
        bad = rng.random(x.shape) < 0.7
        with np.errstate(over="ignore", invalid="ignore"):
            got, want = fill_invalid(x, bad), ref.fill_invalid_numpy(x, bad)
            n_gave_up += not morphology.fill_median3(x.copy(), bad.copy(), np.zeros_like(bad))
        assert np.array_equal(got[0], want[0], equal_nan=True)
        assert np.array_equal(got[1], want[1])
    assert n_gave_up >= 10
    # a NaN the rounds would read: numpy's rounds, as before
    x = rng.normal(size=(20, 20))
    x[3, 3] = np.nan
    bad = np.zeros(x.shape, bool)
    bad[3, 4] = True
    got, want = fill_invalid(x, bad), ref.fill_invalid_numpy(x, bad)
    assert np.array_equal(got[0], want[0], equal_nan=True)


def test_label_sums_are_scipys():
    from iovolc.extract import _label_sums

    rng = np.random.default_rng(22)
    for k in range(40):
        values = rng.normal(size=(128, 432)) * 10.0 ** rng.integers(-3, 4, size=(128, 432))
        n = int(rng.integers(1, 60))
        labels = rng.integers(0, n + 1 + (k % 3 == 0) * 5, size=values.shape).astype(np.int32)
        labels[rng.random(values.shape) < 0.7] = 0
        if k % 4 == 1:
            labels[labels == n] = 0  # a label with no pixel
        if k % 5 == 2:
            values = values.astype(np.float32)
        idx = np.arange(1, n + 1)
        sums, counts = _label_sums(values, labels, n)
        assert np.array_equal(sums, ndi.sum_labels(values, labels, idx))
        want = ndi.sum_labels(np.ones_like(values), labels, idx).astype(int)
        assert np.array_equal(counts, want) and counts.dtype == want.dtype


def test_grow_is_the_cross_dilation():
    """Both paths of the compiled growth (stop 26: each pixel's diamond for a sparse
    mask, the two distance passes on the mask's box otherwise) are scipy's dilation:
    masks of every density, pixels on the borders, a limb ring cut by the canvas edge
    and a compact disc."""
    rng = np.random.default_rng(14)
    for _ in range(400):
        shape = (int(rng.integers(1, 60)), int(rng.integers(1, 90)))
        mask = rng.random(shape) < rng.choice([0.0, 0.002, 0.01, 0.05, 0.5, 1.0])
        if rng.random() < 0.2:
            mask[rng.choice([0, -1]), :] |= rng.random(shape[1]) < 0.1
        n = int(rng.integers(1, 7))
        want = ndi.binary_dilation(mask, iterations=n)
        assert np.array_equal(imaging.grow(mask, n), want)
    yy, xx = np.mgrid[:144, :448]
    ring = np.abs(np.hypot(yy - 60.3, xx - 400.7) - 36) < 1  # a limb off the canvas edge
    disc = np.hypot(yy - 70.2, xx - 200.9) < 30
    for mask in (ring, disc, disc | ring):
        for n in (1, 2, 3, 7):
            assert np.array_equal(imaging.grow(mask, n), ndi.binary_dilation(mask, iterations=n))
    with pytest.raises(ValueError, match="iterations 0"):
        imaging.grow(mask, 0)


@pytest.mark.parametrize("range_km, line, off", [
    (9000.0, 40.0, 1.0), (2500.0, 60.0, 0.3), (4e5, 10.0, 0.0), (60000.0, 127.0, 1.0)])
def test_the_disc_blurred_on_its_window_is_the_whole_canvas_blurred(range_km, line, off):
    state = _state(range_km, line, off)
    for lo, hi in ((0, 128), (-8, 136)):
        sharp, _ = predicted_shading(state, "M", line0=lo, line1=hi, samp0=lo, samp1=432 - lo,
                                     psf_sigma_px=0.0, exponents=(1.0, 0.6))
        blurred, _ = predicted_shading(state, "M", line0=lo, line1=hi, samp0=lo,
                                       samp1=432 - lo, psf_sigma_px=0.7, exponents=(1.0, 0.6))
        for s, b in zip(sharp, blurred, strict=True):
            assert s.any()
            assert np.array_equal(b, gaussian_filter(s, 0.7, mode="constant"))


def test_spline_coefficients_on_the_lit_window_are_the_whole_canvas_ones_where_read():
    rng = np.random.default_rng(15)
    for _ in range(100):
        c = np.zeros((144, 448))
        a, d = int(rng.integers(0, 140)), int(rng.integers(0, 440))
        c[a:a + int(rng.integers(3, 60)), d:d + int(rng.integers(3, 120))] = rng.random()
        c = gaussian_filter(c, 0.7, mode="constant")
        rows, cols = np.flatnonzero(c.any(1)), np.flatnonzero(c.any(0))
        near = (slice(max(rows[0] - 10, 0), rows[-1] + 11),
                slice(max(cols[0] - 10, 0), cols[-1] + 11))
        # the limb zone is within 3 px of the lit pixels, the spline reads 2.5 px beyond
        assert np.array_equal(_spline_coefficients(c)[near],
                              spline_filter(c, order=3, mode="constant")[near])
    assert not _spline_coefficients(np.zeros((5, 6))).any()


def test_stacked_coefficients_are_the_padded_stack_bit_for_bit():
    """registration._stacked_coefficients (written in place, stop 22) against the form it
    replaced: each canvas's coefficients reflect-padded by np.pad, stacked with zeros;
    one or two bands, canvases from 1 x 1 (np.pad's repeated reflection), empty ones."""
    from iovolc.registration import _spline_coefficients, _stacked, _stacked_coefficients

    rng = np.random.default_rng(29)
    for trial in range(300):
        canvases = []
        for _ in range(int(rng.integers(1, 3))):
            n0, n1 = int(rng.integers(1, 60)), int(rng.integers(1, 90))
            c = np.zeros((n0, n1))
            if trial % 5:
                a0, a1 = sorted(rng.integers(0, n0, 2))
                b0, b1 = sorted(rng.integers(0, n1, 2))
                c[a0:a1 + 1, b0:b1 + 1] = rng.random((a1 - a0 + 1, b1 - b0 + 1))
            canvases.append(c)
        want = _stacked([compiled.padded(_spline_coefficients(c)) for c in canvases], 0.0)
        got = _stacked_coefficients(canvases)
        assert got.shape == want.shape, trial
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), trial


def test_compiled_spline_points_are_scipys_constant_mode():
    rng = np.random.default_rng(16)
    for _ in range(30):
        n0, n1 = int(rng.integers(5, 150)), int(rng.integers(5, 450))
        c = rng.normal(size=(n0, n1))
        rr, cc = rng.uniform(-2, n0 + 1, 3000), rng.uniform(-2, n1 + 1, 3000)
        rr[:200] = rng.integers(0, n0, 200)  # on the grid, and on its edges exactly
        cc[200:400] = rng.choice([0.0, n1 - 1.0], 200)
        rr[400:500], rr[500:600] = n0 - 1.0, -0.5
        got = np.empty((5, rr.size))
        compiled.spline_points(compiled.padded(c), n0, n1, rr, cc, got)
        want = map_coordinates(c, [np.concatenate([rr, rr + .5, rr - .5, rr, rr]),
                                   np.concatenate([cc, cc, cc, cc + .5, cc - .5])],
                               order=3, mode="constant", prefilter=False).reshape(5, -1)
        assert np.abs(got - want).max() < 1e-14
        assert (got[want == 0] == 0).all()  # outside [0, n - 1]: nothing


def test_spline_points_are_the_per_point_spline_bit_for_bit():
    """spline_points (weights once per run of equal lines, stop 22) against the per-point
    evaluation it replaced (``tests/_speed_reference.py``), bit for bit: points row by
    row as the fit passes them (runs of equal lines), scattered points, the grid's edges
    and NaN; and the fit's own positions, ``(c + search) - shift`` along whole rows, whose
    fractions change only between binades (the column weights kept while they do not,
    stop 27), leaving the grid and coming back within a row."""
    from _speed_reference import spline_points_per_point

    per_point = spline_points_per_point()
    rng = np.random.default_rng(41)
    for trial in range(18):
        n0, n1 = int(rng.integers(5, 150)), int(rng.integers(5, 450))
        c = compiled.padded(rng.normal(size=(n0, n1)) * rng.choice([1.0, 1e-4, 1e4]))
        if trial % 3 == 2:
            shift = rng.uniform(-3, 3, 2)
            shift[1] = rng.choice([shift[1], 0.5, -0.5, 0.0, 1e-9])
            cols = np.arange(-12, n1 + 4)  # the strip's columns, from before the grid
            rr = np.repeat((np.arange(-2, n0 + 2) + 8) - shift[0], cols.size)
            cc = np.tile((cols + 8) - shift[1], n0 + 4)
            cc[rng.random(cc.size) < 0.05] = -3.0  # off the grid, between on-grid runs
        elif trial % 3 == 1:
            shift = rng.uniform(-3, 3, 2)
            rr = np.repeat(np.arange(-2, n0 + 2) - shift[0], 7)
            cc = np.tile(rng.uniform(-2, n1 + 1, 7), rr.size // 7) - shift[1]
        else:
            rr, cc = rng.uniform(-2, n0 + 1, 1500), rng.uniform(-2, n1 + 1, 1500)
            rr[:100] = rng.integers(0, n0, 100)
            cc[100:200] = rng.choice([0.0, n1 - 1.0, 0.5, n1 - 1.5], 100)
            rr[200:250], rr[250:300], cc[300:310], rr[310:315] = n0 - 1.0, -0.5, np.nan, np.nan
        got = np.empty((5, rr.size))
        compiled.spline_points(c, n0, n1, rr, cc, got)
        want = np.empty((5, rr.size))
        per_point(c, n0, n1, rr, cc, want)
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), trial


@pytest.mark.parametrize("range_km, line, off, shift", [
    (9000.0, 40.0, 1.0, (0.4, -0.7)), (2500.0, 60.0, 1.0, (-1.3, 0.2)),
    (60000.0, 100.0, 1.0, (0.25, 0.6)), (20000.0, 64.0, 0.8, (2.2, -1.6)),
    (150000.0, 64.0, 0.0, (-0.6, 0.45))])
def test_the_compiled_limb_fit_finds_what_the_numpy_steps_find(range_km, line, off, shift):
    """Strips drawn from the predicted disc shifted by ``shift`` (plus noise, a hotspot on
    the limb, a bad column), fitted from the integer start as the fine fit does."""
    rng = np.random.default_rng(17)
    state = _state(range_km, line, off)
    s_px = 8
    stack, limb = predicted_shading(state, "M", line0=-s_px, line1=128 + s_px, samp0=-s_px,
                                    samp1=432 + s_px, psf_sigma_px=0.7,
                                    exponents=FIT_EXPONENTS)
    assert limb.any()
    truth, _ = predicted_shading(state, "M", line0=-s_px, line1=128 + s_px, samp0=-s_px,
                                 samp1=432 + s_px, psf_sigma_px=0.7, exponents=(0.8,))
    # the scene observed `shift` further than predicted
    img = ndi.shift(truth[0], shift, order=3, mode="constant")[s_px:-s_px, s_px:-s_px]
    img = 3.0 * img * (1 + 0.1 * np.linspace(-1, 1, 432)) + 0.02
    img += rng.normal(scale=0.01, size=img.shape)
    edge = np.argwhere(limb[s_px:-s_px, s_px:-s_px])
    r, c = edge[len(edge) // 2]
    img[r, c] += 5.0  # a hotspot on the limb: clipped by the robust fit
    valid = np.ones(img.shape, bool)
    valid[:, 17] = False
    strips = {"M": (img, valid)}
    canvases = {"M": (stack, limb)}
    levels = {"M": _strip_levels(img, valid)}
    fitted = _limb_zones(strips, canvases, levels=levels)
    start = (float(round(shift[0])), float(round(shift[1])))
    for k in range(len(FIT_EXPONENTS)):
        d_line, d_samp, sigma, red = _fit_exponent(canvases, fitted, k, search_px=s_px,
                                                   start=start)
        w_line, w_samp, w_sigma, w_red = ref.fit_one_exponent(strips, canvases, k,
                                                              search_px=s_px, start=start)
        assert abs(d_line - w_line) < 1e-9 and abs(d_samp - w_samp) < 1e-9, k
        assert np.allclose(sigma, w_sigma, rtol=1e-8) and np.isclose(red, w_red, rtol=1e-8)
        if FIT_EXPONENTS[k] == 0.8:  # the exponent the scene was drawn with
            assert abs(d_line - shift[0]) < 0.05 and abs(d_samp - shift[1]) < 0.05
    # no band with a limb: nothing fitted, as before
    none = _limb_zones(strips, {"M": (stack, np.zeros_like(limb))}, levels=levels)
    assert none is None
    assert _fit_exponent(canvases, none, 0, search_px=s_px, start=start) == \
        (*start, (np.inf, np.inf), np.inf)


def test_the_vectorised_constellation_fit_is_the_loop():
    rng = np.random.default_rng(18)
    for t in range(150):
        n = int(rng.integers(1, 400))
        det = rng.integers(0, max(2, n // 3), n) * int(rng.choice([1, 7, 1000]))
        o = np.round(rng.normal(size=(n, 2)) * rng.choice([0.5, 3, 20]), int(rng.choice([1, 8])))
        tol = rng.uniform(1, 6, n)
        if t % 5 == 0:
            o[: n // 3] = o[0]  # equal shifts: ties in support and in size
        if t % 3 == 0 and n > 1:  # pairs exactly at their tolerance from another
            h = np.hypot(*(o[1:] - o[0]).T)
            tol[1:] = np.where(h > 0, h, 1.0)
        # the choice of shift is the loop's (the rest of the fit is the code it was)
        assert _best_shift(o, tol, det) == ref.best_shift(o, tol, det), t
        pairs = pd.DataFrame({"detection": det, "reference": np.arange(n), "d_line": o[:, 0],
                              "d_sample": o[:, 1], "tol_px": tol})
        for min_matches in (1, 2, 3):
            fit = fit_constellation(pairs, min_matches=min_matches)
            want = ref.fit_constellation_pandas(pairs, ref.best_shift(o, tol, det),
                                                min_matches=min_matches)
            # the pair selection and mean on arrays are the pandas ones, bit for bit
            assert (None if fit is None else (fit.d_line_px, fit.d_sample_px, fit.sigma_px,
                                              fit.n_matched, fit.n_candidates)) == want, t


def _spans(zone: np.ndarray) -> np.ndarray:
    """Each zone row's first and last zone column (first > last where the row has none),
    as compiled.zone_spans gives them to compiled._zone_pixels."""
    cols = np.arange(zone.shape[1])
    lo = np.where(zone, cols, zone.shape[1]).min(axis=1)
    hi = np.where(zone, cols, -1).max(axis=1)
    return np.stack([lo, hi], axis=1).astype(np.int64)


def _numpy_zone_pixels(zone, usable, d_line, d_samp, search_px, strip_shape):
    """The fitted pixels as the numpy form selected them (np.round is half to even)."""
    rows = np.arange(strip_shape[0]) + search_px - d_line
    cols = np.arange(strip_shape[1]) + search_px - d_samp
    ri = np.clip(np.round(rows).astype(int), 0, zone.shape[0] - 1)
    ci = np.clip(np.round(cols).astype(int), 0, zone.shape[1] - 1)
    want = zone[ri[:, None], ci[None, :]] & usable
    want[(rows < 0) | (rows > zone.shape[0] - 1), :] = False
    want[:, (cols < 0) | (cols > zone.shape[1] - 1)] = False
    return np.nonzero(want), rows, cols


def test_the_zone_scan_selects_numpys_pixels_in_numpys_order():
    """compiled._zone_pixels scans each strip row only between the columns that can
    reach its zone row's span (stop 21): on random zones with gaps and several spans per
    row, random usable masks and shifts (ends in .5 included, past the canvas edges),
    the same pixels in the same order as numpy's selection."""
    rng = np.random.default_rng(21)
    for trial in range(300):
        z0, z1 = int(rng.integers(5, 40)), int(rng.integers(5, 60))
        n_r, n_c = z0 - 2 * 2, z1 - 2 * 2
        zone = rng.random((z0, z1)) < rng.choice([0.02, 0.1, 0.5])
        zone[rng.random(z0) < 0.3] = False
        usable = rng.random((n_r, n_c)) < 0.9
        img = rng.normal(size=(n_r, n_c))
        d_line, d_samp = (float(rng.choice([rng.uniform(-4, 4), rng.integers(-4, 4) + 0.5]))
                          for _ in range(2))
        rr, cc, data = (np.empty(n_r * n_c) for _ in range(3))
        n = compiled._zone_pixels(zone, np.array([z0, z1]), _spans(zone), usable, img, 2,
                                  d_line, d_samp, rr, cc, data)
        (pr, pc), rows, cols = _numpy_zone_pixels(zone, usable, d_line, d_samp, 2, (n_r, n_c))
        assert n == pr.size, trial
        assert np.array_equal(data[:n], img[pr, pc])
        assert np.array_equal(rr[:n], rows[pr]) and np.array_equal(cc[:n], cols[pc])
        # a band's zone padded to a larger band's shape, the padding set: never read
        padded = np.ones((z0 + 3, z1 + 5), bool)
        padded[:z0, :z1] = zone
        n2 = compiled._zone_pixels(padded, np.array([z0, z1]), _spans(padded), usable, img,
                                   2, d_line, d_samp, rr, cc, data)
        assert n2 == n and np.array_equal(data[:n], img[pr, pc])


def test_the_fit_has_room_for_two_strip_pixels_on_one_zone_pixel():
    """A shift ending in exactly .5 rounds half to even: two strip columns (rows) can fall
    on one zone pixel, so the fitted pixels can outnumber the zone's (found by review:
    the buffers were sized to the zone). The selection equals numpy's."""
    zone = np.zeros((20, 20), bool)
    zone[6:15:2, 6:15:2] = True  # even pixels: each is hit twice at a .5 shift
    usable = np.ones((20, 20), bool)
    img = np.arange(400.0).reshape(20, 20)
    for d in (0.5, 1.5, -0.5, 0.25):
        rr, cc, data = (np.empty(400) for _ in range(3))
        n = compiled._zone_pixels(zone, np.array([20, 20]), _spans(zone), usable, img, 0,
                                  d, d, rr, cc, data)
        rows = np.arange(20) - d
        ri = np.clip(np.round(rows).astype(int), 0, 19)
        out = (rows < 0) | (rows > 19)
        want = zone[ri[:, None], ri[None, :]] & usable
        want[out, :] = False
        want[:, out] = False
        pr, pc = np.nonzero(want)
        assert n == pr.size and np.array_equal(data[:n], img[pr, pc])
        assert np.array_equal(rr[:n], rows[pr]) and np.array_equal(cc[:n], rows[pc])
        if d == 0.5:
            assert n > zone.sum()
    z3 = zone[None].copy()
    fit = ref.fit_shift(np.stack([compiled.padded(img / 400.0)]), np.array([[20, 20]]),
                        z3, usable[None].copy(), img[None].copy(), 0, 0.5, 0.5, 3)
    # the strip is the model itself (a ramp): the fit stays at the start, exactly fitted
    assert abs(fit[0] - 0.5) < 1e-9 and abs(fit[1] - 0.5) < 1e-8 and fit[4] < 1e-12


def test_the_near_singular_fits_are_numpys_minimum_norm_least_squares():
    """The fit's fallback when the Gram matrix is near singular (compiled._lstsq_svd)
    against np.linalg.lstsq with its default cut: full rank, exactly rank deficient
    (a constant column twice, all pixels on one row) and nearly so."""
    rng = np.random.default_rng(19)
    for t in range(60):
        n = int(rng.integers(20, 400))
        a = np.column_stack([rng.random(n), rng.normal(size=n), rng.normal(size=n),
                             np.ones(n)])
        if t % 3 == 1:
            a[:, 1] = 0.0  # one row: m * ln is 0
        elif t % 3 == 2:
            a[:, 2] = a[:, 0] * (1 + 1e-9 * rng.normal(size=n))  # nearly collinear
        y = a @ rng.normal(size=4) + 0.01 * rng.normal(size=n)
        want = np.linalg.lstsq(a, y, rcond=None)[0]
        got = compiled._lstsq_svd(a, y, np.finfo(float).eps * max(a.shape))
        # the same solution to the conditioning's precision, the same fitted values
        cond = np.linalg.cond(a) if t % 3 != 1 else np.linalg.cond(a[:, [0, 2, 3]])
        assert np.abs(got - want).max() <= 1e-13 * cond * max(1.0, np.abs(want).max()), t
        assert np.abs(a @ got - a @ want).max() <= 1e-15 * cond * max(1.0, np.abs(y).max())


def test_the_demos_background_compile_is_capped_and_quiet():
    """iovolc demo compiles the kernels in two processes beside the simulator: their
    wait is one deadline for all, and what is left is stopped (review)."""
    import subprocess
    import sys
    import time

    from iovolc.cli import _finish_compiling

    slow = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            for _ in range(2)]
    t0 = time.monotonic()
    _finish_compiling(slow, timeout_s=1.0)
    assert time.monotonic() - t0 < 10.0
    assert all(p.returncode is not None for p in slow)  # stopped and reaped
    quick = [subprocess.Popen([sys.executable, "-c", "pass"])]
    _finish_compiling(quick, timeout_s=60.0)
    assert quick[0].returncode == 0


def test_compiled_h_maxima_is_skimages():
    from skimage.morphology import h_maxima as skimage_h_maxima

    from iovolc.morphology import h_maxima

    rng = np.random.default_rng(11)
    for trial in range(600):
        n0, n1 = (int(v) for v in rng.integers(1, 36, 2))
        kind = trial % 4
        if kind == 0:  # noise
            img = rng.normal(size=(n0, n1))
        elif kind == 1:  # few levels: plateaus everywhere
            img = rng.integers(0, 5, (n0, n1)).astype(float)
        elif kind == 2:  # smooth bumps
            img = ndi.gaussian_filter(rng.normal(size=(n0, n1)), 1.5) * 10
        else:  # half steps on a large offset: the seed's resolution term matters
            img = np.round(rng.normal(size=(n0, n1)) * 3) / 2 + 1e3
        h = float(rng.choice([1e-9, 0.1, 0.5, 1.0, 2.0, 50.0]))  # 50: above every range
        assert np.array_equal(h_maxima(img, h), skimage_h_maxima(img, h).astype(bool)), \
            (trial, h)
    # a spiral ridge rising along its length: the reconstruction must carry values
    # around every turn (many propagation steps), both ways along it
    n = 31
    spiral = np.zeros((n, n))
    i, j, di, dj, step = n // 2, n // 2, 0, 1, 1.0
    seen = set()
    for _ in range(n * n):
        if 0 <= i < n and 0 <= j < n and (i, j) not in seen:
            spiral[i, j] = step
            seen.add((i, j))
            step += 0.01
        ni, nj = i + di, j + dj
        if (ni, nj) in seen or not (0 <= ni < n and 0 <= nj < n):
            di, dj = dj, -di
            ni, nj = i + di, j + dj
        i, j = ni, nj
    for img in (spiral, spiral[::-1, ::-1].copy(), spiral.T.copy(), -spiral + 100.0):
        for h in (0.05, 1.0, 5.0):
            assert np.array_equal(h_maxima(img, h), skimage_h_maxima(img, h).astype(bool))
    assert not h_maxima(np.zeros((0, 5)), 1.0).any()


def test_coarse_match_on_the_reachable_rows_is_the_whole_canvas_match():
    """Stop 25: the coarse limb match correlates only the canvas rows a template window
    touching the lit disc reaches. The window sums are the same bits and the rows left
    out are exactly 0 both ways; the shorter FFT rounds differently, so the peak value
    may differ by ~1e-16 of itself and the chosen cell is the same. One band, or two
    of different heights (templates of different heights; in some frames one band has
    no template)."""
    import dataclasses

    from iovolc.registration import (
        COARSE_STEP_PX,
        SEARCH_ALONG_DEG,
        SEARCH_CROSS_DEG,
        _coarse_canvas,
        _coarse_match,
    )
    from iovolc.shading import predicted_shading

    rng = np.random.default_rng(21)
    n_cropped = n_two = 0
    for k in range(36):
        range_km = float(rng.choice([30000.0, 80000.0, 160000.0, 260000.0, 400000.0]))
        state = _state(range_km, float(rng.uniform(-20, 150)), float(rng.uniform(-1.2, 1.2)))
        if k % 2:
            state = _tilted(state)
        bands = {"M": 128}
        if k % 3:  # a shorter strip beside it (its own height, its own template)
            cam = state.camera("M")
            state = dataclasses.replace(state, cameras={
                "M": cam, "L": dataclasses.replace(cam, band="L", n_lines=40,
                                                   center_line=150.0)})
            bands = {"L": 40, "M": 128}
        truth = state.corrected(float(rng.uniform(-0.15, 0.15)),
                                float(rng.uniform(-0.008, 0.008)))
        strips = {}
        for band, n_lines in bands.items():
            shading = predicted_shading(truth, band, line0=0, line1=n_lines, samp0=0,
                                        samp1=432, psf_sigma_px=0.7)[0]
            img = (3.0 * shading + 0.05 * rng.normal(size=shading.shape)).astype(np.float32)
            valid = rng.random(img.shape) > 0.01
            if band == "L" and k % 3 == 2:
                valid[:] = False  # no template for this band
            strips[band] = (img, valid)
        step = COARSE_STEP_PX * state.camera("M").ifov_rad
        a, c = np.radians(SEARCH_ALONG_DEG), np.radians(SEARCH_CROSS_DEG)
        box = dict(along=(-a, a), cross=(-c, c), step_rad=step)
        drawn = _coarse_canvas(tuple(strips), state, **box)
        if drawn is None:
            continue
        levels = {b: _strip_levels(*strips[b]) for b in strips}
        got = _coarse_match(strips, state, drawn, levels=levels, **box)
        want = ref.coarse_match_whole_canvas(strips, state, drawn, **box)
        assert (got is None) == (want is None)
        if got is None:
            continue
        assert got[0] == want[0] and got[1] == want[1] and got[3] == want[3]
        assert abs(got[2] - want[2]) <= 1e-12 * max(abs(want[2]), 1.0)
        lit = np.flatnonzero(drawn[0].any(axis=1))
        n_cropped += lit[-1] - lit[0] + 2 * 70 < drawn[0].shape[0]  # templates <= 70 rows
        n_two += len(strips) == 2
    assert n_cropped >= 10 and n_two >= 10  # the crop's path, with two bands too


def test_the_compiled_2x2_opening_is_numpys_bit_for_bit():
    """The hit finder's 2x2 grey opening (stop 26) against its numpy form
    (``tests/_speed_reference.py``): images of every small shape, plateaus, signed
    zeros, huge and tiny values; the same bits (a signed zero included)."""
    from _speed_reference import open2x2_numpy

    rng = np.random.default_rng(262)
    for trial in range(300):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 60)))
        x = rng.normal(size=shape) * rng.choice([1.0, 1e-300, 1e300])
        if trial % 3 == 0:
            x = rng.choice([0.0, -0.0, 1.0, -1.0, 2.5], size=shape)
        got = morphology.open2x2(np.ascontiguousarray(x))
        want = open2x2_numpy(x)
        assert got.shape == want.shape and got.tobytes() == want.tobytes(), trial


def test_the_compiled_2x2_binning_is_numpys_mean_bit_for_bit():
    """The hit finder's 2x2 binned means (stop 26) against numpy's
    ``reshape(h, 2, w, 2).mean(axis=(1, 3))``, whose order of additions this copies
    where the binned image is 2 columns wide or more: every size up to 41 x 41, odd
    ones, the strip's, values over 12 decades with signed zeros (which tell the order
    of the first addition)."""
    rng = np.random.default_rng(263)
    sizes = [(h, w) for h in range(2, 42) for w in range(4, 42)] + [(256, 432), (257, 433),
                                                                     (128, 432), (512, 864)]
    for h, w in sizes:
        x = rng.normal(size=(h, w)) * 10 ** rng.uniform(-6, 6, size=(h, w))
        x[rng.random(x.shape) < 0.2] = -0.0
        hb, wb = h // 2, w // 2
        want = x[:2 * hb, :2 * wb].reshape(hb, 2, wb, 2).mean(axis=(1, 3))
        got = morphology.bin2x2_mean(x)
        assert got.shape == want.shape and got.tobytes() == want.tobytes(), (h, w)


def test_the_compiled_high_pass_is_the_numpy_form_bit_for_bit():
    """The hit finder's 4-neighbour high-pass (stop 26) against its numpy form: every
    small shape from 2 x 2, the strip's, values over 12 decades and signed zeros; shapes
    it leaves to numpy (a 1-pixel side, float32) give numpy's."""
    from _speed_reference import mean4_highpass_numpy

    from iovolc.hits import _mean4_highpass

    rng = np.random.default_rng(264)
    sizes = [(h, w) for h in range(2, 30) for w in range(2, 30)] + [(256, 432), (128, 216)]
    for h, w in sizes:
        x = rng.normal(size=(h, w)) * 10 ** rng.uniform(-6, 6, size=(h, w))
        x[rng.random(x.shape) < 0.1] = -0.0
        want = mean4_highpass_numpy(x)
        got = _mean4_highpass(x)
        assert got.tobytes() == want.tobytes() and got.shape == want.shape, (h, w)
    for x in (rng.normal(size=(1, 7)), rng.normal(size=(6, 5)).astype(np.float32)):
        assert _mean4_highpass(x).tobytes() == mean4_highpass_numpy(x).tobytes()


def test_the_detection_table_with_leading_columns_is_the_inserted_one():
    """detections.detection_table (one construction) against the table built first and each
    leading column inserted after (what the pipeline did before stop 27): equal values
    and dtypes, with NaNs, ints and strings, with one row, many and none."""
    from iovolc.detections import DETECTION_COLUMNS
    from iovolc.detections import detection_table as _detection_table

    rng = np.random.default_rng(27)
    lead = {"product_id": "JIR_IMG_RDR_2023365T120000_V01", "perijove": 57,
            "et_mid": 757166469.18, "utc": "2023-12-30T12:00:00.000", "sequence": "JIR_X"}
    for n in (0, 1, 2, 47):
        rows = []
        for _ in range(n):
            row = {c: float(rng.normal()) for c in DETECTION_COLUMNS}
            row.update(band=str(rng.choice(["L", "M"])), n_pixels=int(rng.integers(1, 50)),
                       flags=int(rng.integers(0, 1 << 20)), pointing_method="pass")
            if rng.random() < 0.3:
                row["lat_deg"] = float("nan")
            rows.append(row)
        inserted = ref.detection_table_inserted(rows, lead)
        table = _detection_table(rows, lead)
        pd.testing.assert_frame_equal(table, inserted, check_exact=True)
        assert list(table.dtypes) == list(inserted.dtypes), n
        odd = {**lead, "utc": None, "et_mid": float("nan")}  # a value no label gives
        pd.testing.assert_frame_equal(_detection_table(rows, odd),
                                      ref.detection_table_inserted(rows, odd), check_exact=True)
    assert list(_detection_table([], {}).columns) == list(DETECTION_COLUMNS)


def test_spin_grid_directions_are_numpys_broadcast_bit_for_bit():
    """registration._from_spin (the compiled pass over an open grid, stop 27) against the
    numpy broadcast it replaced, bit for bit; anything but an open grid is refused."""
    from iovolc.registration import _from_spin, _spin_basis

    rng = np.random.default_rng(28)
    for trial in range(40):
        basis = _spin_basis(rng.normal(size=3))
        n, m = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        span = rng.choice([0.3, 1.6])  # around the strip's centre, or out to +-pi/2
        phi = (rng.uniform(-span, span) + rng.uniform(1e-5, 1e-3) * np.arange(n))[:, None]
        psi = (rng.uniform(-span, span) + rng.uniform(1e-5, 1e-3) * np.arange(m))[None, :]
        want = ref.from_spin_numpy(phi, psi, basis)
        got = _from_spin(phi, psi, basis)
        assert got.shape == want.shape and got.flags.c_contiguous
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), trial
    full_phi, full_psi = np.meshgrid(phi[:, 0], psi[0], indexing="ij")
    with pytest.raises(ValueError, match="open grid"):
        _from_spin(full_phi, full_psi, basis)


def test_the_closed_form_choice_of_canvas_is_lstsqs_or_defers():
    """Stop 28: :func:`iovolc.linefit.clear_choice` picks the canvas ``lstsq`` picks
    (:func:`iovolc.extract._lstsq_choice`, the loop it replaced) or returns None, and
    ``fitted_shading`` then runs that loop. The strips: Io's canvases at every range and
    place, each exponent's canvas as the truth, noise, an offset, a negative amplitude;
    then ties made on purpose (a canvas twice, one scaled, one a ulp apart), a canvas
    constant over the pixels, no variation in the strip."""
    from iovolc import linefit
    from iovolc.extract import PHOTOMETRY_EXPONENTS, _lstsq_choice

    rng = np.random.default_rng(28)
    n_clear = 0
    for k in range(48):
        range_km = float(rng.choice([3000.0, 9000.0, 30000.0, 120000.0, 400000.0]))
        state = _state(range_km, float(rng.uniform(-20, 150)), float(rng.uniform(-1.2, 1.2)))
        if k % 2:
            state = _tilted(state)
        canvases, _ = predicted_shading(state, "M", line0=0, line1=128, samp0=0, samp1=432,
                                        psf_sigma_px=0.7, exponents=PHOTOMETRY_EXPONENTS)
        lit = np.zeros((128, 432), bool)
        for c in canvases:
            lit |= c > 0
        if lit.sum() < 20:
            continue
        use = imaging.grow(lit, 2) & (rng.random(lit.shape) > 0.02)
        truth = canvases[k % len(canvases)]
        amp = -2.0 if k % 11 == 5 else float(rng.uniform(0.5, 50.0))
        img = amp * truth + rng.uniform(-3, 3) + rng.uniform(0.001, 0.3) * rng.normal(
            size=truth.shape)
        y = img[use]
        got = linefit.clear_choice(canvases, use, y)
        want = _lstsq_choice(canvases, use, y)
        assert got is None or got == want, (k, got, want)
        n_clear += got is not None
        # ties on purpose: the closed form must defer (or agree) whatever the rounding
        best = want
        twice = list(canvases) + [canvases[best].copy()]
        scaled = list(canvases) + [2.0 * canvases[best]]
        ulp = list(canvases) + [np.nextafter(canvases[best], 2.0)]
        for tied in (twice, scaled, ulp, [canvases[best], canvases[best]]):
            g = linefit.clear_choice(tied, use, y)
            assert g is None or g == _lstsq_choice(tied, use, y), (k, g)
        if amp > 0:  # (with no positive amplitude there is no tie to break: 0)
            assert linefit.clear_choice(twice, use, y) is None
        const = list(canvases) + [np.where(use, 0.7, 0.0)]
        assert linefit.clear_choice(const, use, y) is None
        assert linefit.clear_choice(canvases, use, np.full(y.size, 4.0)) is None
        assert linefit.clear_choice(canvases, use, np.where(np.arange(y.size) == 3, np.nan,
                                                            y)) is None
    assert n_clear >= 30  # the closed form decides the pipeline's usual strips


def test_the_closed_form_defers_where_lstsq_would_drop_a_singular_value():
    """The review's two families (stop 28): canvases of values ~1e-14 or ~1e12 (``lstsq``
    drops a singular value of ``[x, 1]`` and fits another model) and strips of values
    ~1e-161 (subnormal squares): the closed form defers; at ordinary scales it decides,
    as ``lstsq`` does."""
    from iovolc import linefit
    from iovolc.extract import _lstsq_choice

    rng = np.random.default_rng(2)
    n = 200
    use = np.ones(n, bool)
    x0, x1 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    y = 3.0 * x1 + 10.0 + 0.01 * rng.normal(size=n)
    for scale in (1e-14, 1e-9, 1e12, 1e14):
        assert linefit.clear_choice([scale * x0, scale * x1], use, y) is None, scale
    assert linefit.clear_choice([x0, x1], use, y) == _lstsq_choice([x0, x1], use, y) == 1
    near = rng.uniform(0.9, 1.0, n)  # a large mean, a small spread: nearly parallel
    assert linefit.clear_choice([1e12 * near, x1], use, y + 0.3 * near) is None
    for trial in range(300):
        tiny = (2 * x0 + 1 + rng.normal(size=n)) * 1e-161
        cs = [x0, x0 + 1e-4 * rng.normal(size=n)]
        assert linefit.clear_choice(cs, use, tiny) is None, trial
    many = linefit.MAX_PIXELS + 1  # beyond the pixels the margins' bounds are shown for
    big = [rng.uniform(0, 1, many), rng.uniform(0, 1, many)]
    assert linefit.clear_choice(big, np.ones(many, bool), 2.0 * big[1] + 1.0) is None


def test_the_compact_feature_mask_is_the_top_hats_threshold():
    """Stop 28: ``morphology.compact_hot`` is ``valid & (compact_tophat(...) > limit)``:
    strips of noise and planted hotspots, lines, steps, plateaus of equal values, signed
    zeros, tiny and one-row or one-column images, every direction order, limits
    negative, zero and positive."""
    from iovolc.imaging import _DIRECTIONS, LINE_OPENING_PX
    from iovolc.morphology import compact_hot, compact_tophat

    rng = np.random.default_rng(280)
    shapes = [(128, 432), (40, 60), (9, 9), (1, 30), (30, 1), (2, 2), (1, 1), (5, 17)]
    n_hot = 0
    for trial in range(120):
        shape = shapes[trial % len(shapes)]
        x = _scene(rng, *shape, n_src=20) if min(shape) > 2 else rng.normal(size=shape)
        if trial % 4 == 1:  # plateaus and signed zeros: ties everywhere
            x = np.round(x)
            x[rng.random(shape) < 0.3] = -0.0
        if trial % 4 == 2 and shape[1] > 8:  # a line and a step survive some openings
            x[:, shape[1] // 2] += 40.0
            x[: shape[0] // 2] += 25.0
        x = np.ascontiguousarray(x, dtype=float)
        valid = rng.random(shape) > 0.1
        dirs = _DIRECTIONS if trial % 3 else _DIRECTIONS[rng.permutation(4)]
        length = LINE_OPENING_PX if trial % 5 else int(rng.choice([1, 3, 5]))
        tophat = compact_tophat(x, dirs, length)
        for limit in (-1.0, 0.0, -0.0, 0.5, 3.0, float(np.quantile(tophat, 0.99))):
            got = np.ones(shape, bool)  # written over
            compact_hot(x, valid, dirs, length, limit, got)
            want = valid & (tophat > limit)
            assert np.array_equal(got, want), (trial, limit)
            n_hot += int(want.sum())
    assert n_hot > 1000


def test_the_compiled_box_is_numpys_any_along_each_axis():
    """Stop 28: ``imaging.box_of`` scans a C-ordered float64 or bool image with a
    compiled loop; the box is the one numpy's ``any`` along each axis gives: sparse and
    dense masks, NaN (non-zero), -0.0 (zero), one pixel, none, every pixel, empty
    shapes, margins; other dtypes and strided views keep numpy's path."""
    rng = np.random.default_rng(2028)
    n_compiled = 0
    for trial in range(400):
        shape = (int(rng.integers(0, 40)), int(rng.integers(0, 60)))
        x = np.where(rng.random(shape) < [0.0, 1e-3, 0.02, 0.5, 1.0][trial % 5],
                     rng.normal(size=shape), 0.0)
        if trial % 3 == 1:
            x[rng.random(shape) < 0.01] = np.nan
        if trial % 3 == 2:
            x[x == 0] = -0.0
        for img in (x, x != 0, x.astype(np.float32), x[:, ::2], (x != 0)[::-1]):
            for margin in (0, 2, 32):
                want = ref.box_of_any(img, margin)
                assert imaging.box_of(img, margin) == want, (trial, margin)
                n_compiled += img.dtype in (np.float64, np.bool_) and img.flags.c_contiguous
    assert n_compiled > 2000  # (the other variants take numpy's path, the reference's)


def test_the_limb_fits_normal_equations_in_scalars_are_the_row_arrays_bit_for_bit():
    """``compiled._fit`` (stop 29: the sums in scalars) against the kernel it replaced,
    compiled as it was: the same coefficients, bit for bit, on limb-like pixels with
    clipped ones, ties, and degenerate bases that take the SVD fallback."""
    from numba import njit

    old = njit(cache=False, nogil=True, error_model="numpy")(ref.limb_fit_rows)
    rng = np.random.default_rng(29)
    n_fallback = 0
    for trial in range(400):
        n = int(rng.integers(20, 1500))
        m = np.abs(rng.normal(size=n)) * 10.0 ** rng.uniform(-3, 3)
        if trial % 7 == 0:
            m = np.round(m, 1)  # ties
        ln = (rng.uniform(0, 128, n) - 64) / 128.0
        sn = (rng.uniform(0, 432, n) - 216) / 432.0
        if trial % 11 == 0:
            ln[:] = 0.0  # a degenerate basis: the minimum-norm fallback
            n_fallback += 1
        data = 3.0 * m * (1 + 0.1 * sn) + 0.02 + rng.normal(scale=0.01, size=n)
        v = rng.random(n) > 0.1
        got, want = compiled._fit(m, ln, sn, data, v), old(m, ln, sn, data, v)
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), trial
    assert n_fallback > 30


def test_the_radix_selection_finds_the_same_value_with_any_bin_width():
    """``compiled._kth`` picks its bins' width by the number of values (stop 29: 8, 10 or
    12 bits); the value it selects is the k-th in the order of the values' keys, across
    each width's threshold, with -0.0 and 0.0, infinities, subnormals, ties and
    plateaus."""
    rng = np.random.default_rng(291)
    sizes = (33, 100, 319, 320, 321, 465, 2000, 8191, 8192, 8193, 55000)
    for trial, n in enumerate(sizes * 6):
        kind = trial % 6
        if kind == 0:
            a = rng.normal(size=n)
        elif kind == 1:
            a = np.abs(rng.normal(size=n)) * 1e-3
        elif kind == 2:
            a = np.round(rng.normal(size=n) * 2)  # ties and -0.0 beside 0.0
        elif kind == 3:
            a = rng.choice([-0.0, 0.0, 1.0, -1.0, np.inf, -np.inf, 5e-324], size=n)
        elif kind == 4:
            a = rng.normal(size=n) * 1e-310
        else:
            a = np.full(n, 2.5)
            a[rng.integers(n, size=3)] = -1.0
        assert (np.signbit(a) & (a == 0)).any() or kind not in (2, 3)
        for k in {0, n // 2, n - 1, int(rng.integers(n))}:
            got = compiled._kth(a, k)
            want = ref.kth_by_order_keys(a, k)
            assert np.float64(got).view(np.uint64) == np.float64(want).view(np.uint64), \
                (n, kind, k)


def test_source_windows_without_the_padded_strip_are_the_padded_gathers():
    """``extract._gather`` of ``_window_at`` (stop 29) reads what the gathers from
    ``np.pad(mode="constant")`` copies read: peaks inside, on and next to every edge and
    corner, float residuals and int32 segment labels; ``_second_moment_sigma`` is the
    padded form's bit for bit."""
    from iovolc.extract import _gather, _second_moment_sigma, _window_at

    rng = np.random.default_rng(2912)
    for trial in range(60):
        shape = (int(rng.integers(5, 140)), int(rng.integers(5, 440)))
        resid = rng.normal(size=shape) * 10.0 ** rng.uniform(-12, 2)
        labels = rng.integers(0, 30, size=shape).astype(np.int32)
        n = int(rng.integers(1, 40))
        rows = rng.integers(0, shape[0], n)
        cols = rng.integers(0, shape[1], n)
        rows[: n // 3] = rng.choice([0, 1, shape[0] - 2, shape[0] - 1], n // 3)
        cols[n // 3: 2 * (n // 3)] = rng.choice([0, 1, shape[1] - 2, shape[1] - 1], n // 3)
        for half in (2, 4):
            at = _window_at(shape, rows, cols, half)
            for a in (resid, labels):
                got, want = _gather(a, at), ref.padded_windows(a, rows, cols, half)
                assert got.dtype == want.dtype and np.array_equal(got, want), (trial, half)
        for lab in (None, labels):
            got = _second_moment_sigma(resid, rows, cols, labels=lab)
            want = ref.second_moment_sigma_padded(resid, rows, cols, labels=lab)
            assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), trial


def test_the_compiled_support_counts_are_numpys_and_defer_at_the_edge():
    """``compiled.support_counts`` (stop 29) gives numpy's block counts
    (``pointing._support_numpy``) for every candidate it decides, and marks those with a
    pair within 1e-9 of its tolerance, which numpy's ``hypot`` decides."""
    from iovolc.pointing import _support_numpy

    rng = np.random.default_rng(2913)
    n_deferred = 0
    for t in range(200):
        n = int(rng.integers(1, 300))
        det = rng.integers(0, max(2, n // 3), n)
        o = np.round(rng.normal(size=(n, 2)) * rng.choice([0.5, 3, 20]), int(rng.choice([1, 8])))
        tol = rng.uniform(1, 6, n)
        if t % 4 == 0:
            o[: n // 3] = o[0]
        if t % 3 == 0 and n > 1:  # pairs exactly at their tolerance from the first
            h = np.hypot(*(o[1:] - o[0]).T)
            tol[1:] = np.where(h > 0, h, 1.0)
        if t % 7 == 0:
            o[rng.integers(n)] = np.nan  # a NaN shift supports nothing, as in numpy
        codes = np.unique(det, return_inverse=True)[1].ravel().astype(np.int64)
        score = np.empty(n, np.int64)
        undecided = np.empty(n, bool)
        compiled.support_counts(o, tol * tol, codes, int(codes.max()) + 1, score, undecided)
        want = _support_numpy(o, tol, codes, np.arange(n))
        assert np.array_equal(score[~undecided], want[~undecided]), t
        n_deferred += int(undecided.sum())
    assert n_deferred > 50


def test_the_detection_records_for_all_sources_at_once_are_the_per_source_ones():
    """detections.detection_rows (flags and position sigma for a band's sources at once)
    against the per-source loop it replaced, bit for bit: sources on every edge, cut,
    saturated, non-linear or NaN peaks, NaN and negative SNRs, emission angles past
    90 deg and NaN, every pointing method."""
    from types import SimpleNamespace

    from iovolc import jiram
    from iovolc.detections import detection_rows
    from iovolc.extract import ExtractionConfig

    rng = np.random.default_rng(29)
    config = ExtractionConfig()
    shape = (128, 432)
    n_checked = 0
    for trial in range(60):
        n = int(rng.integers(1, 40))
        cen = np.column_stack([rng.uniform(-1, shape[0] + 1, n), rng.uniform(-1, shape[1] + 1, n)])
        cen[: n // 4, 0] = rng.choice([1.999, 2.0, shape[0] - 3.0, shape[0] - 2.999], n // 4)
        snr = rng.uniform(-2, 30, n)
        snr[rng.random(n) < 0.1] = np.nan
        snr[rng.random(n) < 0.1] = config.confident_snr
        peak_dn = rng.uniform(0, 1.5 * jiram.NONLINEAR_DN, n)
        peak_dn[rng.random(n) < 0.1] = np.nan
        peak_dn[rng.random(n) < 0.1] = jiram.NONLINEAR_DN
        emission = rng.uniform(0, 100, n)
        emission[rng.random(n) < 0.1] = np.nan
        emission[rng.random(n) < 0.1] = config.high_emission_deg
        src = SimpleNamespace(cen=cen, flux=rng.uniform(0, 5, n), npix=rng.integers(1, 30, n),
                              sat=rng.random(n) < 0.2, cut=rng.random(n) < 0.1,
                              peak_dn=peak_dn, snr=snr, peak=rng.uniform(0, 3, n))
        geom = SimpleNamespace(emission_deg=emission, lat_deg=rng.uniform(-90, 90, n),
                               lon_west_deg=rng.uniform(0, 360, n),
                               incidence_deg=rng.uniform(0, 180, n),
                               range_km=rng.uniform(1e3, 5e5, n),
                               pixel_scale_km=rng.uniform(0.1, 200, n))
        idx = np.flatnonzero(rng.random(n) < 0.8)
        kw = dict(band="M" if trial % 2 else "L", sl=slice(128 * (trial % 2), None),
                  shape=shape, src=src, geom=geom, near_limb=rng.random(n) < 0.3,
                  power=rng.uniform(0, 100, n),
                  pointing_method=("pass", "constellation", "none", "other")[trial % 4],
                  pointing_sigma_px=float(rng.uniform(0, 2)), config=config)
        got = detection_rows(idx, **kw)
        want = ref.detection_rows_per_source(idx, **kw)
        assert len(got) == len(want) == idx.size
        for g, w in zip(got, want, strict=True):
            assert list(g) == list(w)
            for key in w:
                assert type(g[key]) is type(w[key]), key
                assert (g[key] == w[key] or (g[key] != g[key] and w[key] != w[key])), key
                if isinstance(w[key], float):
                    assert np.float64(g[key]).tobytes() == np.float64(w[key]).tobytes(), key
            n_checked += 1
    assert n_checked > 600
