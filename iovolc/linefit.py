"""The photometric fit's choice of canvas without an SVD per canvas (stop 28).

:func:`iovolc.extract.fitted_shading` fits each Minnaert canvas ``S_k`` as
``a S_k + c`` to a strip's pixels ``y`` with numpy's ``lstsq`` (an SVD,
LAPACK's ``gelsd``) and keeps the canvas of positive amplitude ``a`` with the
smallest residual sum of squares. Only that choice leaves the function: the
canvas itself, never the coefficients. So the choice may come from another
least-squares solution, provided it is the one ``lstsq`` makes.

:func:`clear_choice` fits each canvas in closed form (the centred sums of one
compiled pass per canvas, :func:`line_fit`: ``a = sxy / sxx``, residual sum
``syy - a sxy``) and returns the canvas only when no rounding can change the
choice:

* every canvas's design matrix ``[x, 1]`` (``n`` pixels) has a condition
  number below 100: its Gram matrix ``[[sum x^2, sum x], [sum x, n]]`` has
  determinant ``n sxx`` and trace ``sum x^2 + n``, and ``cond^2 <= trace^2 /
  det``, so ``(sum x^2 + n)^2 <= 1e4 n sxx`` is required. This bounds the
  canvas's scale as well as its spread: a canvas of values ~1e-14 or ~1e14
  makes ``lstsq`` (``rcond`` = eps max(M, N)) drop a singular value and fit
  another model (found in review);
* ``sum y^2 / n`` lies between 1e-200 and 1e200 (no square or margin
  underflows: with ``y`` ~1e-160 the squares are subnormal, found in review),
  and there are at most a million pixels;
* every amplitude is clearly signed: ``|a| sqrt(sxx) > 1e-5 sqrt(sum y^2)``;
* the smallest residual sum among the canvases of positive amplitude is
  below every other one by more than ``1e-8 (rss + sum y^2)``.

The margins bound rounding, not the data (``n`` pixels, at most 1e6). Sums
of ``n`` terms round at ``n eps`` of the sum of their terms' magnitudes, and
centring rounds at ``eps |y_i|``: the closed form's residual sum ``syy - a
sxy`` lies within ~``4 n eps sum y^2`` of the exact least one (4.9e-11 of
``sum y^2`` for a strip's 55,296 pixels, 8.9e-10 for a million) and its
``|a| sqrt(sxx)`` within ~``2 n eps sqrt(sum y^2)``. ``lstsq`` is backward
stable: with a condition number ``k <= 100`` and a backward error of ~``2 n
eps`` (2 columns), its solution ``c`` has ``|A (c - c*)| <~ k^2 2 n eps |y|``,
4.4e-6 ``|y|`` at a million pixels. Its amplitude's error is at most that
(``|a - a*| sqrt(sxx) <= |A (c - c*)|``), below the sign margin 1e-5; its
residual sum, the least one being stationary, exceeds the least by that
squared (2e-11 ``sum y^2``), and its residuals ``y - A c`` round at ``eps (|y|
+ |A c|)``, with ``|c|`` bounded through ``k``: both below the residual
margin 1e-8. Otherwise (a near tie, an ill-conditioned canvas, an amplitude
near zero, a value not finite or out of range, more pixels) :func:`clear_choice`
returns None and the caller runs ``lstsq`` as before. A second review
(~140,000 cases tuned to each bound) found no disagreement; on realistic
strips ~1 % defer, mostly canvases of little spread (the condition bound).
``tests/test_speed_kernels.py`` compares the choice with ``lstsq``'s on the
pipeline's canvases, on ties made on purpose and on the review's scales.
"""

from __future__ import annotations

import math

import numpy as np

from iovolc.jitcache import njit

#: the relative margin between residual sums of a clear choice (see the module docstring)
MARGIN = 1e-8
#: the relative margin of a clearly signed amplitude
SIGN_MARGIN = 1e-5
#: the most pixels the closed form decides for (the margins' bounds hold up to here)
MAX_PIXELS = 1_000_000
#: the largest squared condition number of a canvas's design matrix ``[x, 1]`` the closed
#: form decides for (see the module docstring)
MAX_CONDITION_SQ = 1e4
#: the range of ``sum y^2 / n`` the closed form decides for (no underflow, no overflow)
Y2_PER_PIXEL = (1e-200, 1e200)


@njit(cache=True, nogil=True, error_model="numpy")
def line_fit(x, idx, yc):
    """The centred sums of ``y ~ a x[idx] + c`` over the values ``x[idx]`` (``x`` flat):
    ``(sxx, sxy, sum x^2)``; ``yc``: ``y`` minus its mean (the same length as ``idx``)."""
    n = idx.size
    sx = 0.0
    for i in range(n):
        sx += x[idx[i]]
    x_mean = sx / n
    sxx = sxy = sx2 = 0.0
    for i in range(n):
        xi = x[idx[i]]
        dx = xi - x_mean
        sxx += dx * dx
        sxy += dx * yc[i]
        sx2 += xi * xi
    return sxx, sxy, sx2


@njit(cache=True, nogil=True, error_model="numpy")
def centred(y, yc):
    """``y`` minus its mean into ``yc``; returns ``(sum y^2, sum yc^2)`` (loop sums, no
    BLAS: a threaded ``dot`` costs more than the sum on a loaded machine)."""
    n = y.size
    s = y2 = 0.0
    for i in range(n):
        s += y[i]
        y2 += y[i] * y[i]
    mean = s / n
    syy = 0.0
    for i in range(n):
        d = y[i] - mean
        yc[i] = d
        syy += d * d
    return y2, syy


def clear_choice(canvases: list[np.ndarray], use: np.ndarray, y: np.ndarray) -> int | None:
    """The index of the canvas ``lstsq`` picks (see the module docstring) when no rounding
    can change it; None otherwise. ``y``: ``img[use]``; with no canvas of positive
    amplitude, 0 (the loop's default)."""
    if not 0 < y.size <= MAX_PIXELS or y.dtype != np.float64:
        return None
    idx = np.flatnonzero(use)
    if idx.size != y.size:  # not img[use]: the loop's lstsq says what it makes of it
        return None
    n = y.size
    yc = np.empty(n)
    y2, syy = centred(np.ascontiguousarray(y), yc)
    if not (Y2_PER_PIXEL[0] < y2 / n < Y2_PER_PIXEL[1] and math.isfinite(syy)):
        return None
    fits = []
    for k, c in enumerate(canvases):
        if c.dtype != np.float64 or c.shape != use.shape:
            return None
        sxx, sxy, sx2 = line_fit(np.ascontiguousarray(c).reshape(-1), idx, yc)
        a = sxy / sxx if sxx > 0.0 else math.nan
        if not (math.isfinite(a) and math.isfinite(sx2)
                and (sx2 + n) ** 2 <= MAX_CONDITION_SQ * n * sxx
                and abs(a) * math.sqrt(sxx) > SIGN_MARGIN * math.sqrt(y2)):
            return None
        if a > 0.0:
            fits.append((syy - a * sxy, k))
    if not fits:
        return 0
    fits.sort()
    best_rss, best = fits[0]
    if len(fits) > 1 and fits[1][0] - best_rss <= MARGIN * (best_rss + y2):
        return None
    return best


def warm_up() -> None:
    """Compile (or load from the cache) the kernels."""
    line_fit(np.arange(4.0), np.arange(3), np.ones(3))
    centred(np.ones(3), np.empty(3))
