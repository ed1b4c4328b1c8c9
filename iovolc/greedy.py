"""Compiled greedy clustering of one perijove's detections (stop 24): the loop of
:func:`iovolc.catalog._greedy_labels`, with the labels the numpy form gave.

The numpy form visited ~10,000 detections a perijove in order and, for each,
took the great-circle distance to every cluster centre so far with a dozen small
array calls: ~10 us each, ~7 s for the 750,000 detections of the simulated
mission, all of it in the catalog's publish (serial, at the end of a backfill).

The kernel makes the same decisions with the same arithmetic, but one step
differs: numpy's ``arcsin`` may be a SIMD one (SVML on AVX-512: it differs from
libm's ``asin`` by one ulp for 4 % of arguments in [0, 1], measured here), and a
compiled loop has only libm's. Every other operation is the same (the chord's
difference, squares, sum in order and square root; the centre's sums and
division), except that the centre's norm is summed in order where numpy calls
BLAS's dot product, which some builds add in another order or fuse (~21 % of
vectors, at most 2 ulp, on one host): the centres may differ by an ulp or two,
covered by the floor below. So a distance is decided by the libm value only where
no value within ``MARGIN`` (relative) of it could decide otherwise:

* in or out of the tolerance: ``|d - tol| > MARGIN tol + floor``;
* which cluster: the nearest one in is nearer than the second by more than
  ``MARGIN best + floor``,

with ``floor = 1e-3 MARGIN 2R`` (~4e-11 km for Io): an absolute margin for
distances near zero, where a relative one would not cover an ulp of the
centres' coordinates should another machine's dot product round them
differently.

Both functions are within a few ulp (~1e-15 relative) of the exact value, so
the margin (1e-11) leaves four orders of magnitude. A detection where either
test is not decided is handed back; :func:`greedy_labels` then takes that one
step with numpy, as the old form did, and the kernel goes on after it. Chords
beyond the tolerance by more than 1e-9 (relative) are refused without the
arcsine: ``asin`` only grows faster than its argument.

Checked against the numpy form (``tests/_speed_reference.py``) on random
perijoves and on ties and distances placed on the tolerance
(``tests/test_greedy_exact.py``).
"""

from __future__ import annotations

import math

import numpy as np

from iovolc.jitcache import njit

#: relative distance within which the libm arcsine does not decide (see the module)
MARGIN = 1e-11


@njit(cache=True, nogil=True, error_model="numpy")
def _run(xyz, scale, weight, order, start, k, labels, csum, centres, tol_px, min_tol_km,
         two_r):
    """Steps ``order[start:]`` until one is not decided; returns ``(position, k)``
    (position ``len(order)`` when every step was taken)."""
    n = order.size
    # an absolute floor under the relative margins: ulp-level differences of the
    # centres (another BLAS's dot product) stay covered near a distance of zero
    floor = MARGIN * 1e-3 * two_r
    for pos in range(start, n):
        i = order[pos]
        xi0, xi1, xi2 = xyz[i, 0], xyz[i, 1], xyz[i, 2]
        if k:
            tol = tol_px * scale[i]
            if tol < min_tol_km:  # np.maximum (a NaN stays NaN, as there)
                tol = min_tol_km
            a = tol / two_r
            # x beyond sin(a) (1 + 1e-9): asin(x) > a (1 + 1e-9), out whatever the rounding
            x_out = math.sin(a) * (1.0 + 1e-9) if a < 1.5 else 2.0
            best, second, j = np.inf, np.inf, -1
            ambiguous = False
            for c in range(k):
                d0 = centres[c, 0] - xi0
                d1 = centres[c, 1] - xi1
                d2 = centres[c, 2] - xi2
                chord = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
                x = 0.5 * chord
                if x > 1.0:
                    x = 1.0
                if x > x_out:
                    continue
                d = two_r * math.asin(x)
                if abs(d - tol) <= MARGIN * tol + floor:
                    ambiguous = True
                    break
                if not d <= tol:
                    continue
                if d < best:
                    second = best
                    best, j = d, c
                elif d < second:
                    second = d
            if ambiguous or (j >= 0 and second - best <= MARGIN * best + floor):
                return pos, k
            if j >= 0:
                labels[i] = j
                w = weight[i]
                csum[j, 0] += w * xi0
                csum[j, 1] += w * xi1
                csum[j, 2] += w * xi2
                norm = math.sqrt(csum[j, 0] * csum[j, 0] + csum[j, 1] * csum[j, 1]
                                 + csum[j, 2] * csum[j, 2])
                centres[j, 0] = csum[j, 0] / norm
                centres[j, 1] = csum[j, 1] / norm
                centres[j, 2] = csum[j, 2] / norm
                continue
        labels[i] = k
        w = weight[i]
        csum[k, 0] = w * xi0
        csum[k, 1] = w * xi1
        csum[k, 2] = w * xi2
        centres[k, 0], centres[k, 1], centres[k, 2] = xi0, xi1, xi2
        k += 1
    return n, k


def greedy_labels(xyz: np.ndarray, pixel_scale_km: np.ndarray, weight: np.ndarray,
                  order: np.ndarray, *, tol_px: float, min_tol_km: float,
                  radius_km: float) -> np.ndarray:
    """Cluster labels of :func:`iovolc.catalog._greedy_labels` for detections visited in
    ``order``: the compiled loop, and numpy's step where it does not decide."""
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    scale = np.ascontiguousarray(pixel_scale_km, dtype=np.float64)
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    order = np.ascontiguousarray(order, dtype=np.int64)
    n = len(xyz)
    labels = np.full(n, -1, dtype=np.int64)
    csum = np.zeros((n, 3))
    centres = np.zeros((n, 3))
    two_r = 2.0 * radius_km
    pos, k = 0, 0
    while True:
        pos, k = _run(xyz, scale, weight, order, pos, k, labels, csum, centres,
                      float(tol_px), float(min_tol_km), two_r)
        if pos >= n:
            return labels
        k = _numpy_step(int(order[pos]), xyz, scale, weight, k, labels, csum, centres,
                        tol_px=tol_px, min_tol_km=min_tol_km, radius_km=radius_km)
        pos += 1


def _numpy_step(i: int, xyz, scale, weight, k: int, labels, csum, centres, *, tol_px: float,
                min_tol_km: float, radius_km: float) -> int:
    """One step of the numpy form, as it was written (k > 0: the kernel seeds the first
    cluster itself); returns the new cluster count."""
    from iovolc.catalog import _angle_km  # the catalog's distance (it imports this module)

    d = _angle_km(centres[:k], xyz[i], radius_km)
    tol = np.maximum(tol_px * scale[i], min_tol_km)
    d = np.where(d <= tol, d, np.inf)
    j = int(np.argmin(d))
    if np.isfinite(d[j]):
        labels[i] = j
        csum[j] += weight[i] * xyz[i]
        centres[j] = csum[j] / np.sqrt(csum[j] @ csum[j])
        return k
    labels[i] = k
    csum[k] = weight[i] * xyz[i]
    centres[k] = xyz[i]
    return k + 1


def warm_up() -> None:
    """Compile (or load from the cache) the loop (:func:`iovolc.compiled.warm_up`)."""
    greedy_labels(np.eye(3), np.ones(3), np.ones(3), np.arange(3), tol_px=2.5, min_tol_km=8.0,
                  radius_km=1821.6)
