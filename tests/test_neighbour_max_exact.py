"""The lone-spike test of the peak finder, taken at the maxima alone (stop 34), against
the whole-strip ``ndimage.maximum_filter`` it replaced: the same booleans on random
strips, their borders, tiny shapes, adjacent maxima, NaN and infinite values."""

from __future__ import annotations

import numpy as np
import pytest
from _extract_reference import lone_spike_reference as _reference

from iovolc.extract import _lit_neighbour


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (3, 5), (128, 432), (40, 9)])
@pytest.mark.parametrize("seed", range(6))
def test_same_as_the_whole_filter(shape, seed):
    rng = np.random.default_rng(seed)
    snr = rng.normal(0.0, 1.5, shape)
    if seed % 2:  # values at the threshold itself
        snr[rng.random(shape) < 0.2] = 1.5
    maxima = rng.random(shape) < (0.5 if seed == 3 else 0.05)  # dense: adjacent maxima
    maxima[0, 0] = maxima[-1, -1] = True  # the corners (the reflected neighbours)
    got = _lit_neighbour(snr, maxima)
    assert got.dtype == bool and got.shape == shape
    assert np.array_equal(got, _reference(snr, maxima))
    assert not (got & ~maxima).any()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_neighbours(bad):
    rng = np.random.default_rng(7)
    snr = rng.normal(0.0, 2.0, (30, 40))
    maxima = rng.random(snr.shape) < 0.1
    r, c = np.argwhere(maxima)[3]
    snr[max(r - 1, 0), c] = bad  # beside a maximum
    snr[0, :] = bad  # along a border
    assert np.array_equal(_lit_neighbour(snr, maxima), _reference(snr, maxima))


def test_no_maxima_and_shape_mismatch():
    snr = np.ones((5, 6))
    assert not _lit_neighbour(snr, np.zeros((5, 6), bool)).any()
    with pytest.raises(ValueError, match="shapes"):
        _lit_neighbour(snr, np.zeros((6, 5), bool))
