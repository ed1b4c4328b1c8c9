"""Two extraction steps as they were before stop 34, kept verbatim as references
(``tests/test_psf_fit_exact.py``, ``tests/test_neighbour_max_exact.py``,
``bench/kernels_simd.py``): the PSF fit with its profiles on every window pixel
(``extract._psf_fit``, renamed), and the peak finder's lone-spike test on the whole
strip (``extract._lit_neighbour``'s former form in ``extract._peaks``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.special import erf

from iovolc.extract import _gather, _window_at


def lone_spike_reference(snr, maxima):
    """``_peaks``' test before stop 34: the 3 x 3 ring maximum over the whole strip."""
    neigh = ndi.maximum_filter(np.where(maxima, -np.inf, snr), footprint=np.array(
        [[1, 1, 1], [1, 0, 1], [1, 1, 1]]))
    return (neigh > 1.5) & maxima


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
