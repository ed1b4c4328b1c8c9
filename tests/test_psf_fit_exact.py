"""The PSF fit's profiles taken once per window offset (stop 34) against the fit as it
was (kept below verbatim, renamed): the same centres and flags bit for bit, on random
sources, their neighbours' wings, borders and noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from iovolc.extract import _gather, _psf_fit, _window_at


def psf_fit_reference(resid, rows, cols, *, sigma_px, half=2, n_iter=6):
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
    for _ in range(n_iter):
        ay = dr[None, :] - y[:, None]
        ax = ds[None, :] - x[:, None]
        py = 0.5 * (erf((ay + 0.5) * k) - erf((ay - 0.5) * k))
        px = 0.5 * (erf((ax + 0.5) * k) - erf((ax - 0.5) * k))
        dpy = -g * (np.exp(-((ay + 0.5) * k) ** 2) - np.exp(-((ay - 0.5) * k) ** 2))
        dpx = -g * (np.exp(-((ax + 0.5) * k) ** 2) - np.exp(-((ax - 0.5) * k) ** 2))
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
