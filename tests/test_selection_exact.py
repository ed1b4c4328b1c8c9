"""The bracketed order statistics (stop 35) against the radix selection on all the values.

``compiled._kth`` and ``compiled._kth_and_next`` take the values between two bounds
picked from a sample, and select among them, when an array holds at least
``BRACKET_MIN`` values; below that, and whenever the bracket misses a rank sought,
they select among all the values as before stop 35 (``_kth_radix``,
``_kth_and_next_scan``, unchanged). Every case here compares the two, bit for bit
(-0.0 against 0.0 too), on arrays that take the bracket and on arrays built to
defeat it (sorted, periodic with the sample's stride, a plateau at the rank, zeros
of both signs at the rank, infinities, subnormals, a NaN).
"""

from __future__ import annotations

import numpy as np
import pytest
from _speed_reference import kth_by_order_keys

from iovolc import compiled, imaging


def _bits(x) -> int:
    return int(np.float64(x).view(np.uint64))


def _cases(rng, n):
    """(name, array) of ``n`` values."""
    x = rng.normal(size=n)
    zeros = rng.choice([-0.0, 0.0], size=n)  # only zeros, of both signs
    signed_zeros = np.where(rng.random(n) < 0.6, rng.choice([-0.0, 0.0], size=n),
                            rng.normal(size=n))
    stride = np.tile(np.r_[np.full(compiled.BRACKET_SAMPLE // 8, 5.0),
                           rng.normal(size=7 * compiled.BRACKET_SAMPLE // 8)],
                     n // compiled.BRACKET_SAMPLE + 1)[:n]
    plateau = np.r_[rng.normal(size=n // 3) - 10, np.full(n - 2 * (n // 3), 1.25),
                    rng.normal(size=n // 3) + 10]
    rng.shuffle(plateau)
    every_nth = rng.normal(size=n)
    every_nth[:: max(n // compiled.BRACKET_SAMPLE, 1)] = 1e300  # the sample sees only these
    return [
        ("normal", x), ("abs", np.abs(x)), ("float32", x.astype(np.float32).astype(float)),
        ("sorted", np.sort(x)), ("reversed", np.sort(x)[::-1].copy()),
        ("lognormal", np.exp(3 * x)), ("ties", np.round(x * 2)),
        ("signed zeros", signed_zeros), ("zeros", zeros), ("stride", stride),
        ("plateau", plateau), ("every nth", every_nth),
        ("extremes", rng.choice([-0.0, 0.0, 1.0, -1.0, np.inf, -np.inf, 5e-324], size=n)),
        ("subnormal", x * 1e-310), ("cauchy", rng.standard_cauchy(n)),
    ]


@pytest.mark.parametrize("n", [compiled.BRACKET_MIN - 1, compiled.BRACKET_MIN,
                               compiled.BRACKET_MIN + 1, 5000, 55295, 55296, 110592])
def test_bracketed_selection_is_the_radix_selection_bit_for_bit(n):
    rng = np.random.default_rng(n)
    taken = missed = 0
    for name, a in _cases(rng, n):
        a = np.ascontiguousarray(a, dtype=float)
        ranks = {0, 1, n // 2 - 1, n // 2, n - 2, int(rng.integers(n - 1)), n // 10}
        for k in sorted(ranks):
            want = compiled._kth_radix(a, k)
            got = compiled._kth(a, k)
            assert _bits(got) == _bits(want), (name, n, k)
            assert _bits(want) == _bits(kth_by_order_keys(a, k)), (name, n, k)
            lo, hi = compiled._kth_and_next(a, k)
            w_lo, w_hi = compiled._kth_and_next_scan(a, k)
            assert (_bits(lo), _bits(hi)) == (_bits(w_lo), _bits(w_hi)), (name, n, k)
            if n >= compiled.BRACKET_MIN:
                _, n_below = compiled._bracketed(a, k, k + 1)
                taken += n_below >= 0
                missed += n_below < 0
        med = compiled._median(a)
        s = np.sort(a)  # numpy's median, as imaging.median promises (zeros' sign aside)
        want = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0
        assert med == want or (np.isnan(med) and np.isnan(want)), (name, n)
    if n >= compiled.BRACKET_MIN:  # both ways are exercised
        assert taken > 40 and missed > 5, (taken, missed)


def test_the_bracket_keeps_the_values_between_its_bounds_in_order():
    """What ``_bracketed`` returns: the values of ``a`` between two of its values, in
    the order of ``a``, and how many lie below; every rank it holds is a rank of the
    array's sorted order (keys: -0.0 below 0.0) offset by that count."""
    rng = np.random.default_rng(35)
    for trial in range(40):
        n = int(rng.integers(compiled.BRACKET_MIN, 70000))
        a = rng.normal(size=n) * 10.0 ** rng.uniform(-5, 5)
        if trial % 3 == 0:
            a[rng.random(n) < 0.5] = rng.choice([-0.0, 0.0])
        k = int(rng.integers(n - 1))
        within, n_below = compiled._bracketed(a, k, k + 1)
        if n_below < 0:
            continue
        lo, hi = within.min(), within.max()
        inside = (a >= lo) & (a <= hi)
        assert np.array_equal(within.view(np.uint64), a[inside].view(np.uint64))
        assert n_below == int((a < lo).sum()) and n_below <= k < k + 1 < n_below + within.size
        keys = np.sort(_keys(a))
        assert np.array_equal(np.sort(_keys(within)), keys[n_below:n_below + within.size])


def _keys(a):
    bits = np.ascontiguousarray(a, dtype=float).view(np.uint64)
    sign = np.uint64(1 << 63)
    return np.where(bits & sign, ~bits, bits | sign)


def test_a_nan_leaves_the_bracket_and_the_median_is_nan():
    rng = np.random.default_rng(7)
    a = rng.normal(size=20000)
    a[12345] = np.nan
    assert compiled._bracketed(a, 10000, 10001)[1] == -1
    assert np.isnan(compiled._median(a)) and np.isnan(imaging.median(a))
    a[12345] = 0.5
    assert compiled._bracketed(a, 10000, 10001)[1] >= 0


def test_percentiles_and_medians_of_a_strip_are_numpys():
    """The callers on a band strip's size: ``imaging.median``, ``percentile`` and
    ``median_and_percentiles`` give numpy's numbers on values that take the bracket."""
    rng = np.random.default_rng(3535)
    for trial in range(12):
        a = rng.normal(size=55296 - trial) * 3 + 10
        a[rng.random(a.size) < 0.01] = 1e4  # a few hot pixels in the tail
        assert imaging.median(a) == np.median(a)
        for q in (0.5, 50.0, 99.5, 99.9):
            assert imaging.percentile(a, q) == float(np.percentile(a, q)), (trial, q)
        got = imaging.median_and_percentiles(a, (5.0, 95.0, 99.5))
        assert got == (np.median(a), *(float(np.percentile(a, q)) for q in (5.0, 95.0, 99.5)))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 20, 21, 64, 65, 459, 460, 5000])
def test_the_sign_of_the_median_is_the_medians(n):
    """Stop 37: ``_median_not_positive(a)`` is ``_median(a) <= 0`` (the limb fit's
    amplitude test): values around 0 of every kind, counts of values <= 0 at, one
    below and one above half, zeros of both signs, infinities, subnormals (whose
    mean can round to 0), a NaN, and the empty array."""
    rng = np.random.default_rng(n)
    tiny = np.nextafter(0.0, 1.0)
    pools = [rng.normal(size=n), rng.choice([-0.0, 0.0, 1.0, -1.0], size=n),
             rng.choice([tiny, -tiny, 0.0, -0.0], size=n),
             rng.choice([np.inf, -np.inf, 2.0, -3.0, 0.0], size=n),
             rng.choice([tiny, 2 * tiny, 3 * tiny, -tiny, -0.0], size=n)]
    n_cases = 0
    for pool in pools:
        for n_le in {0, n // 2 - 1, n // 2, n // 2 + 1, n}:
            if not 0 <= n_le <= n:
                continue
            for _ in range(8):
                a = np.abs(rng.permutation(pool))
                a[a == 0] = rng.choice([1.0, tiny])  # > 0 unless chosen below
                neg = rng.permutation(n)[:n_le]
                a[neg] = np.where(rng.random(n_le) < 0.7, -np.abs(pool[neg]),
                                  rng.choice([-0.0, 0.0], size=n_le))
                got = compiled._median_not_positive(a)
                assert got == bool(compiled._median(a) <= 0), (pool[:4], n_le, a[:6])
                n_cases += 1
                b = a.copy()
                b[rng.integers(n)] = np.nan
                assert not compiled._median_not_positive(b)
    assert n_cases >= len(pools) * 8 * 2  # at least two counts of values <= 0 per pool
    assert not compiled._median_not_positive(np.empty(0))
