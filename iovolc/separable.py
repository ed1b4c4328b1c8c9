"""The predicted disc's PSF blur, compiled (numba): ``scipy.ndimage.gaussian_filter``
with ``mode="constant"`` (zeros beyond the edges), the same bits.

scipy builds the 1-D kernel in numpy (``exp(-0.5 / sigma**2 * x**2)`` over
``x = -r..r``, ``r = int(truncate * sigma + 0.5)``, divided by its sum) and
correlates each axis in turn, axis 0 first. For a symmetric kernel its C loop
(``NI_Correlate1D``) takes, per output value, the centre tap times the centre
weight, then adds ``(left + right) * weight`` for the outermost pair first and
the innermost last; values beyond the edge are the constant 0.0. This module
builds the kernel with the same numpy calls and sums in that order, over whole
rows at a time (LLVM vectorises the rows: every shifted read is a slice, so no
index can be negative), instead of scipy's copy of every line into a padded
buffer. ``tests/test_speed_equivalence.py`` compares the
bits with scipy's. Cached beside the module (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit


def gaussian_weights(sigma: float, *, truncate: float = 4.0) -> np.ndarray:
    """scipy's Gaussian kernel for ``sigma`` (its own numpy steps; reversed as scipy
    correlates with it, a no-op on these exactly symmetric weights)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return (phi / phi.sum())[::-1].copy()


def gaussian_blur_constant(x: np.ndarray, sigma: float, *, truncate: float = 4.0
                           ) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(x, sigma, mode="constant")`` of a 2-D float
    array, exactly (a copy for ``sigma <= 1e-15``, as scipy's)."""
    x = np.ascontiguousarray(x, dtype=float)
    if not sigma > 1e-15:  # scipy filters no axis then: a copy
        return x.copy()
    w = gaussian_weights(sigma, truncate=truncate)
    out = np.empty_like(x)
    symmetric_blur(x, w, out)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def symmetric_blur(x, w, out):
    """Correlate ``x`` with the symmetric odd kernel ``w`` along axis 0, then axis 1,
    zeros beyond the edges, into ``out`` (scipy's order of operations, see above)."""
    n0, n1 = x.shape
    r = (w.size - 1) // 2
    tmp = np.empty((n0, n1))
    zero = np.zeros(n1)
    for i in range(n0):
        t = tmp[i]
        src = x[i]
        wc = w[r]
        for j in range(n1):
            t[j] = src[j] * wc
        for jj in range(-r, 0):
            a = x[i + jj] if i + jj >= 0 else zero
            b = x[i - jj] if i - jj < n0 else zero
            wj = w[r + jj]
            for j in range(n1):
                t[j] += (a[j] + b[j]) * wj
    buf = np.zeros(n1 + 2 * r)
    for i in range(n0):
        o = out[i]
        mid = buf[r:r + n1]
        mid[:] = tmp[i]
        wc = w[r]
        for j in range(n1):
            o[j] = mid[j] * wc
        for jj in range(-r, 0):
            # slices, not buf[r + j + jj]: numba would add its negative-index
            # wraparound to a shifted index, and LLVM would not vectorise the loop
            left = buf[r + jj:r + jj + n1]
            right = buf[r - jj:r - jj + n1]
            wj = w[r + jj]
            for j in range(n1):
                o[j] += (left[j] + right[j]) * wj


def warm_up() -> None:
    """Compile (or load from the cache) the loop."""
    symmetric_blur(np.zeros((2, 3)), np.array([0.25, 0.5, 0.25]), np.empty((2, 3)))
