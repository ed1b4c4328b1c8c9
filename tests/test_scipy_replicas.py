"""Stop 36's compiled forms of three scipy.ndimage calls give scipy's bits.

Issue 11 ("Mission-scale speed"): the coarse registration's strip template
(``gaussian_filter`` in mode "reflect" on a float32 strip, then
``map_coordinates`` of order 1 in mode "nearest"), the radiation-hit offsets'
smoothing (``gaussian_filter`` on float64) and the noise map's 3 x 3
``median_filter`` now run compiled (``iovolc.separable``,
``iovolc.rank_median``). Each is compared here bit for bit (every byte, the
dtype too) with scipy's own call on inputs with the awkward cases: the edges'
outer half pixels, integer and out-of-range positions, NaN and inf positions,
plateaus, ties, axes shorter than the kernel. No timing: ``bench/kernels_simd.py``
prints the pairs side by side.
"""

from __future__ import annotations

import numpy as np
import pytest
from _speed_reference import strip_template_scipy
from scipy import ndimage as ndi

from iovolc.imaging import median_filter_nearest
from iovolc.registration import _strip_levels, _strip_template
from iovolc.separable import gaussian_blur_reflect, sample_linear_nearest


def _same_bits(a, b) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and \
        np.array_equal(a.view(np.uint8), b.view(np.uint8))


def _image(rng, shape, dtype):
    x = rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 4)
    x[rng.random(shape) < 0.25] = 1.5  # a plateau of one value
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(128, 432), (64, 216), (17, 9), (9, 17), (3, 40), (40, 2)])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.3])
def test_reflect_blur_is_scipys_gaussian_filter(dtype, shape, sigma):
    """The float32 strip is rounded to float32 between the axes, as scipy's output is;
    kernels longer than an axis go to scipy (its reflection repeats)."""
    rng = np.random.default_rng(int(sigma * 10) + shape[0])
    x = _image(rng, shape, dtype)
    got = gaussian_blur_reflect(x, sigma)
    assert _same_bits(got, ndi.gaussian_filter(x, sigma))
    assert _same_bits(x, _image(np.random.default_rng(int(sigma * 10) + shape[0]), shape,
                                dtype))  # the input is left alone


def test_reflect_blur_other_inputs_are_scipys():
    """A tiny sigma (a copy), integers and a byte-swapped array give scipy's answer."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 30))
    assert _same_bits(gaussian_blur_reflect(x, 1e-16), ndi.gaussian_filter(x, 1e-16))
    xi = (x * 100).astype(np.int32)
    assert _same_bits(gaussian_blur_reflect(xi, 1.5), ndi.gaussian_filter(xi, 1.5))
    xs = x.astype(">f8")
    assert np.array_equal(gaussian_blur_reflect(xs, 1.5), ndi.gaussian_filter(x, 1.5))


def _positions(rng, n0, n1, m):
    line = rng.uniform(-3.0, n0 + 2.0, m)
    samp = rng.uniform(-3.0, n1 + 2.0, m)
    line[::7] = np.round(line[::7])  # whole pixels
    samp[::5] = np.round(samp[::5])
    line[::11] = rng.uniform(-0.5, 0.0, line[::11].size)  # the first pixel's outer half
    samp[::13] = rng.uniform(n1 - 1.0, n1 - 0.5, samp[::13].size)  # the last one's
    line[::17] = np.nan
    samp[::19] = -0.5  # exactly on the edge: outside
    line[::23] = n0 - 0.5
    samp[::29] = np.inf
    line[::31] = n0 - 1.0
    return line, samp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(128, 432), (5, 7), (2, 2), (2, 30)])
def test_linear_sampling_is_scipys_map_coordinates(dtype, shape):
    """Inside the strip scipy's interpolation bit for bit (the edge pixels' outer halves
    weigh the edge value twice: the coordinate is not clamped), outside the fill."""
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    x = _image(rng, shape, dtype)
    line, samp = _positions(rng, *shape, 5000)
    fill = float(rng.normal())
    inside = (line > -0.5) & (line < shape[0] - 0.5) & (samp > -0.5) & (samp < shape[1] - 0.5)
    want = np.where(inside, ndi.map_coordinates(
        x, [np.nan_to_num(line), np.nan_to_num(samp)], order=1, mode="nearest"), fill)
    got = sample_linear_nearest(x, line.reshape(50, 100), samp.reshape(50, 100), fill)
    assert got.shape == (50, 100)
    assert _same_bits(got.reshape(-1), want)
    assert inside.sum() > 300 and (~inside).sum() > 300  # both branches are exercised


def test_linear_sampling_of_a_single_row_is_scipys():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(1, 12))
    line, samp = np.zeros(40), rng.uniform(-1.0, 12.0, 40)
    want = np.where((samp > -0.5) & (samp < 11.5), ndi.map_coordinates(
        x, [line, samp], order=1, mode="nearest"), 0.25)
    assert _same_bits(sample_linear_nearest(x, line, samp, 0.25), want)


def test_strip_template_is_the_scipy_form_bit_for_bit():
    """The coarse registration's template of a float32 strip with hot pixels and
    unusable ones, sampled over positions around and beyond it, at a binning that
    blurs and one that does not."""
    rng = np.random.default_rng(36)
    img = (rng.normal(size=(128, 432)) * 0.02 + 0.3).astype(np.float32)
    img[40:80, 100:160] += np.float32(1.0)  # a lit patch
    img[rng.random(img.shape) < 0.002] = np.float32(50.0)  # spikes, tamed by p99.5
    img[3, :] = np.nan
    valid = rng.random(img.shape) > 0.05
    levels = _strip_levels(img, valid)
    ll, ss = np.mgrid[-10:140:0.7, -12:445:2.1]
    ll[::9] = np.nan
    for binning in (2.0, 1.0, 4.3):
        got = _strip_template(img, ll, ss, binning, levels)
        want = strip_template_scipy(img, ll, ss, binning, levels)
        assert got.dtype == np.float32
        assert _same_bits(got, want)


@pytest.mark.parametrize("shape", [(18, 62), (1, 9), (9, 1), (2, 2), (3, 3), (40, 5)])
def test_three_by_three_median_is_scipys(shape):
    """Values, ties and plateaus: the network's median is scipy's selection's value."""
    rng = np.random.default_rng(shape[0] * 3 + shape[1])
    x = np.round(rng.random(shape) * 8.0) / 4.0  # many ties
    x[rng.random(shape) < 0.2] = 0.75
    assert _same_bits(median_filter_nearest(x, 3), ndi.median_filter(x, size=3, mode="nearest"))
    y = rng.normal(size=shape)
    assert _same_bits(median_filter_nearest(y, 3), ndi.median_filter(y, size=3, mode="nearest"))
    y[0, 0] = np.nan  # not finite: scipy's own call
    assert _same_bits(median_filter_nearest(y, 3), ndi.median_filter(y, size=3, mode="nearest"))


@pytest.mark.parametrize("sigma", [0.3, 0.5, 0.625, 0.7, 0.8, 0.874, 0.875, 1.1, 1.3])
def test_both_blurs_at_every_radius_are_scipys(sigma):
    """Stop 37: a kernel of radius 3 (sigma 0.625-0.874: the PSF's 0.7) sums its seven
    taps in registers, the others as before; both modes against scipy, byte for byte,
    every axis length from 1 (constant mode; zeros beyond each edge) or from the radius
    + 1 (reflect), values of every scale."""
    from iovolc.separable import gaussian_blur_constant

    rng = np.random.default_rng(int(sigma * 1000))
    r = int(4.0 * sigma + 0.5)
    for _ in range(40):
        shape = (int(rng.integers(1, 24)), int(rng.integers(1, 50)))
        x = rng.normal(size=shape) * 10.0 ** rng.integers(-6, 6, shape)
        assert _same_bits(gaussian_blur_constant(x, sigma),
                          ndi.gaussian_filter(x, sigma, mode="constant"))
        if min(shape) > r:
            for dtype in (np.float32, np.float64):
                y = x.astype(dtype)
                assert _same_bits(gaussian_blur_reflect(y, sigma), ndi.gaussian_filter(y, sigma))
