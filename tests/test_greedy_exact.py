"""Stop 24's compiled greedy clustering gives the labels of the numpy loop it replaced.

``iovolc.greedy`` decides with libm's arcsine, which differs in the last bit from
numpy's SIMD one for some arguments; where a distance lies within its margin of
the tolerance, or two clusters are as near, it takes that step with numpy. These
tests compare with the numpy form (``tests/_speed_reference.py``) on random
perijoves, and place distances exactly on the tolerance and exact ties, checking
that the numpy step is then taken and gives the old answer.
"""

from __future__ import annotations

import numpy as np
import pytest
from _speed_reference import greedy_labels_numpy

from iovolc import greedy
from iovolc.catalog import IO_RADIUS_KM, _angle_km, _greedy_labels, _unit_xyz


def _perijove(rng, n_sources: int, n_det: int):
    """Detections scattered around random sources (tens of km, as a pass's frames
    place them), pixel scales 2-300 km, weights spanning orders of magnitude."""
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n_sources)))
    lon = rng.uniform(0, 360, n_sources)
    src = rng.integers(0, n_sources, n_det)
    scale = np.exp(rng.uniform(np.log(2.0), np.log(300.0), n_det))
    jitter_deg = np.degrees(rng.normal(0, 1, (n_det, 2)) * scale[:, None] / IO_RADIUS_KM)
    xyz = _unit_xyz(np.clip(lat[src] + jitter_deg[:, 0], -90, 90), lon[src] + jitter_deg[:, 1])
    snr = np.exp(rng.uniform(np.log(3.0), np.log(500.0), n_det))
    weight = snr**2 / scale**2
    return xyz, scale, snr, weight


class _Counter:
    def __init__(self, monkeypatch):
        self.n = 0
        real = greedy._numpy_step

        def counted(*a, **k):
            self.n += 1
            return real(*a, **k)

        monkeypatch.setattr(greedy, "_numpy_step", counted)


@pytest.mark.parametrize("seed", range(12))
def test_random_perijoves_get_the_numpy_labels(seed):
    rng = np.random.default_rng(seed)
    xyz, scale, snr, weight = _perijove(rng, int(rng.integers(5, 400)),
                                        int(rng.integers(50, 3000)))
    if seed % 3 == 0:  # equal weights: the order falls back on the index
        weight = np.ones_like(weight)
    want = greedy_labels_numpy(xyz, scale, snr, weight, tol_px=2.5, min_tol_km=8.0)
    got = _greedy_labels(xyz, scale, snr, weight, tol_px=2.5, min_tol_km=8.0)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert len(np.unique(got)) > 1


def test_a_distance_on_the_tolerance_takes_the_numpy_step(monkeypatch):
    """Detection 1 lies exactly at the tolerance from detection 0's cluster (the
    tolerance is the distance numpy computes): numpy's ``<=`` joins it."""
    calls = _Counter(monkeypatch)
    rng = np.random.default_rng(7)
    n_joined = 0
    for _ in range(200):
        xyz = _unit_xyz(rng.uniform(-60, 60, 2), rng.uniform(0, 360, 2))
        xyz[1] = xyz[0] + rng.normal(0, 3e-3, 3)
        xyz[1] /= np.linalg.norm(xyz[1])
        d = float(_angle_km(xyz[:1], xyz[1])[0])
        scale = np.array([1e-3, 1e-3])
        weight = np.array([2.0, 1.0])  # 0 seeds, 1 is tested
        for tol_km in (d, np.nextafter(d, 0.0), np.nextafter(d, np.inf)):
            want = greedy_labels_numpy(xyz, scale, weight, weight, tol_px=2.5,
                                       min_tol_km=tol_km)
            got = _greedy_labels(xyz, scale, weight, weight, tol_px=2.5, min_tol_km=tol_km)
            assert np.array_equal(got, want)
            n_joined += int(want[1] == 0)
    assert calls.n == 600  # every one was a step the kernel left to numpy
    assert n_joined == 400  # on the line: in; one ulp inside: in; one ulp outside: out


def test_an_exact_tie_takes_the_first_cluster_as_numpy_did(monkeypatch):
    """Two clusters at the same distance (mirror images about the detection's
    meridian): ``np.argmin`` takes the first; a tie is left to numpy."""
    calls = _Counter(monkeypatch)
    t = 6.0 / IO_RADIUS_KM  # 6 km either side of the detection at (1, 0, 0)
    xyz = np.array([[np.cos(t), np.sin(t), 0.0], [np.cos(t), -np.sin(t), 0.0],
                    [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    d0 = _angle_km(xyz[:1], xyz[2])[0]
    d1 = _angle_km(xyz[1:2], xyz[2])[0]
    assert d0 == d1
    scale = np.array([1.0, 1.0, 10.0, 1.0])
    weight = np.array([4.0, 3.0, 2.0, 1.0])  # 0 and 1 seed (12 km apart > 2.5 px), 2 joins
    want = greedy_labels_numpy(xyz, scale, weight, weight, tol_px=2.5, min_tol_km=0.0)
    got = _greedy_labels(xyz, scale, weight, weight, tol_px=2.5, min_tol_km=0.0)
    assert np.array_equal(got, want) and list(want) == [0, 1, 0, 2]
    assert calls.n == 1


def test_nothing_is_left_to_numpy_away_from_the_margins(monkeypatch):
    calls = _Counter(monkeypatch)
    rng = np.random.default_rng(99)
    xyz, scale, snr, weight = _perijove(rng, 100, 2000)
    want = greedy_labels_numpy(xyz, scale, snr, weight, tol_px=2.5, min_tol_km=8.0)
    assert np.array_equal(_greedy_labels(xyz, scale, snr, weight, tol_px=2.5,
                                         min_tol_km=8.0), want)
    assert calls.n == 0


def _check_pairs_where_the_arcsines_differ(monkeypatch, *, skip_if_none: bool) -> None:
    """Pairs whose half chord is an argument where ``np.arcsin`` and libm's ``asin``
    differ (by an ulp), with the tolerance set to numpy's distance: where libm's is the
    larger, libm's alone would put the detection one ulp outside and seed a cluster;
    each step must be left to numpy, which joins. The differing arguments are found in
    one vectorised batch of candidate pairs, so the search ends on every host."""
    import math

    rng = np.random.default_rng(11)
    n = 200_000
    a = _unit_xyz(rng.uniform(-60, 60, n), rng.uniform(0, 360, n))
    b = a + rng.normal(0, 5e-3, (n, 3))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    x_all = np.minimum(0.5 * np.sqrt(np.sum((a - b) ** 2, axis=-1)), 1.0)
    differ = np.flatnonzero(np.arcsin(x_all) != np.array([math.asin(v) for v in x_all]))
    if differ.size == 0 and skip_if_none:
        pytest.skip(f"numpy's arcsine is libm's on this host: 0 of {n} arguments differ")
    calls = _Counter(monkeypatch)
    n_cases = n_libm_larger = 0
    for i in differ[:100]:
        xyz = np.stack([a[i], b[i]])
        diff = xyz[:1] - xyz[1]
        x = float(np.minimum(0.5 * np.sqrt(np.sum(diff * diff, axis=-1)), 1.0)[0])
        if math.asin(x) == float(np.arcsin(x)):
            continue  # the batch's argument was not this pair's bits
        n_cases += 1
        n_libm_larger += math.asin(x) > float(np.arcsin(x))
        d_np = float(_angle_km(xyz[:1], xyz[1])[0])
        scale, weight = np.array([1e-3, 1e-3]), np.array([2.0, 1.0])
        want = greedy_labels_numpy(xyz, scale, weight, weight, tol_px=2.5, min_tol_km=d_np)
        got = _greedy_labels(xyz, scale, weight, weight, tol_px=2.5, min_tol_km=d_np)
        assert list(want) == [0, 0] and np.array_equal(got, want)
    assert n_cases > 0 and calls.n == n_cases
    assert n_libm_larger > 0  # cases libm's value alone would have decided wrongly


def test_where_the_two_arcsines_differ_on_the_tolerance_numpy_decides(monkeypatch):
    """On this host's own numpy. Whether its arcsine ever differs from libm's depends on
    the host: numpy's SIMD arcsine (SVML) is linked only under AVX-512; on an AVX2 host
    both give libm's bits and this is skipped, saying so (the emulated test below
    checks the same on every host). Stop 30: a search until 100 differing arguments
    were found never ended on an AVX2 host."""
    _check_pairs_where_the_arcsines_differ(monkeypatch, skip_if_none=True)


def test_an_arcsine_one_ulp_off_libms_on_the_tolerance_numpy_decides(monkeypatch):
    """The same with numpy's arcsine made one ulp off libm's (up or down) for about 1 %
    of arguments, as SVML's is on an AVX-512 host: the numpy steps (``_angle_km``, the
    frozen numpy loop) see it, the compiled kernel keeps libm's. Deciding with libm's
    value alone (``MARGIN = 0``) fails this test."""
    real = np.arcsin

    def svml_like(x):
        y = real(x)
        bits = np.asarray(x, dtype=np.float64).view(np.int64)
        off = np.where(bits % 2 == 0, np.nextafter(y, np.inf), np.nextafter(y, -np.inf))
        return np.where(bits % 97 == 0, off, y)[()]

    monkeypatch.setattr(np, "arcsin", svml_like)
    _check_pairs_where_the_arcsines_differ(monkeypatch, skip_if_none=False)


def test_the_kernels_sums_are_numpys_or_within_the_floor():
    """What the kernel takes as numpy's arithmetic: the chord's length-3 sum along the
    last axis adds in order (numpy's own loop, any host); the centre's norm is a BLAS
    dot product, which may add in another order or fuse (OpenBLAS on the 2026-12-02
    host: ~21 % of vectors differ from the in-order sum, by at most 2 ulp; on the
    stop-24 host none did), so the kernel's centres may differ from numpy's by an ulp
    or two. That moves a distance by far less than the margins' absolute floor."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((20000, 3)) * np.exp(rng.uniform(-20, 5, (20000, 1)))
    q = a * a
    in_order = (q[:, 0] + q[:, 1]) + q[:, 2]
    assert np.array_equal(np.sum(q, axis=-1), in_order)
    dots = np.array([r @ r for r in a[:5000]])
    eps = np.finfo(float).eps
    # three non-negative terms: any order or fusion is within 2 eps of the exact sum
    assert np.all(np.abs(dots - in_order[:5000]) <= 4 * eps * in_order[:5000])
    centre_np = a[:5000] / np.sqrt(dots)[:, None]
    centre_kernel = a[:5000] / np.sqrt(in_order[:5000])[:, None]
    shift = float(np.max(np.linalg.norm(centre_np - centre_kernel, axis=1)))
    assert shift <= 4 * eps
    # d = 2R asin(chord / 2): a chord moved by `shift` moves d by at most
    # R shift / sqrt(1 - 1/4) for chords up to 1 (~60 deg; tolerances are a few km)
    floor = greedy.MARGIN * 1e-3 * 2 * IO_RADIUS_KM
    assert IO_RADIUS_KM * shift / np.sqrt(0.75) < floor / 10
