"""The PSF fit's profiles taken once per window offset (stop 34) against the fit as it
was (``tests/_extract_reference.py``): the same centres and flags bit for bit, on random
sources, their neighbours' wings, borders and noise."""

from __future__ import annotations

import numpy as np
import pytest
from _extract_reference import psf_fit_reference

from iovolc.extract import _psf_fit


def _scene(rng, shape, n, sigma):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = rng.normal(0.0, 1.0, shape)
    rows = rng.integers(0, shape[0], n)
    cols = rng.integers(0, shape[1], n)
    for r, c in zip(rows, cols, strict=True):
        dy, dx = rng.uniform(-0.6, 0.6, 2)
        amp = rng.choice([3.0, 30.0, 3e3])
        img += amp * np.exp(-((yy - r - dy) ** 2 + (xx - c - dx) ** 2) / (2 * sigma ** 2))
    return img, rows, cols


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("sigma_px", [0.7, 0.45, 1.3])
def test_same_bits_as_the_fit_it_replaced(seed, sigma_px):
    rng = np.random.default_rng(seed)
    shape = (128, 216) if seed % 2 else (9, 40)
    img, rows, cols = _scene(rng, shape, 60, sigma_px)
    rows[:4] = [0, shape[0] - 1, 1, 0]  # windows cut by the borders
    cols[:4] = [0, shape[1] - 1, 0, 1]
    if seed == 5:
        img[rows[5], cols[5]] = -50.0  # a negative peak: no fit
    for half in (2, 3):
        got = _psf_fit(img, rows, cols, sigma_px=sigma_px, half=half)
        want = psf_fit_reference(img, rows, cols, sigma_px=sigma_px, half=half)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert want[2].any() and not want[2].all()  # fits that converged and some that did not


def test_no_peak():
    got = _psf_fit(np.zeros((5, 5)), np.zeros(0, int), np.zeros(0, int), sigma_px=0.7)
    assert [a.size for a in got] == [0, 0, 0]
