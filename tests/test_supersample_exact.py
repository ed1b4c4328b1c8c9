"""Stop 37: the disc canvas's steps around the ray tracing compiled
(:mod:`iovolc.supersample`) and its ray constants taken once
(:class:`iovolc.geometry.DiscRays`), against the numpy steps they replaced, byte
for byte: each kernel on its own (numpy's ``mean(axis=1)``, ``np.pad`` edges,
``mgrid`` and broadcasting), then the whole canvas (``shading_numpy`` in
``tests/_speed_reference.py``) at every range, place and tilt, canvases cut by the
disc, and ``disc_cosines`` against the constants taken per call. No timing here."""

from __future__ import annotations

import numpy as np
import pytest
from _speed_reference import shading_numpy
from _synthetic import _state, _tilted

from iovolc import supersample
from iovolc.geometry import DiscRays, _cosines, _pixel_rays, disc_cosines
from iovolc.shading import _shading


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("m", [1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 24, 31, 64, 100, 128])
def test_put_means_are_numpys_pairwise_row_means(m):
    """The sub-pixel means from the lit rays' values, into a canvas view, against
    ``view[edge] = v.mean(axis=1)`` of the dense values (0 where unlit)."""
    rng = np.random.default_rng(m)
    for trial in range(20):
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 40)))
        edge = rng.random(shape) < rng.choice([0.05, 0.5, 1.0])
        n = int(edge.sum())
        # every scale at once, so that the order of the additions shows in the bits
        vals = rng.standard_normal((n, m)) * 10.0 ** rng.integers(-8, 8, (n, m))
        lit = rng.random(vals.shape) < rng.choice([0.0, 0.6, 1.0])
        if trial % 4 == 1:  # lit rows of zeros of either sign: numpy's sum starts at +0.0
            rows = rng.random(n) < 0.5
            lit[rows] = True
            vals[rows] = rng.choice([-0.0, 0.0], size=(int(rows.sum()), 1))
        vals[~lit] = 0.0
        canvas = rng.random((shape[0] + 3, shape[1] + 5))
        want = canvas.copy()
        want[2:2 + shape[0], 1:1 + shape[1]][edge] = vals.mean(axis=1)
        supersample.put_means(lit.ravel(), vals[lit], edge,
                              canvas[2:2 + shape[0], 1:1 + shape[1]])
        assert _same(canvas, want), (m, trial)
    with pytest.raises(ValueError, match="rows of one length"):
        supersample.put_means(np.ones(7, bool), np.ones(7), np.ones((2, 1), bool),
                              np.zeros((2, 1)))
    with pytest.raises(ValueError, match="one value per lit ray"):
        supersample.put_means(np.ones(8, bool), np.ones(7), np.ones((2, 1), bool),
                              np.zeros((2, 1)))


def test_scatter_lit_is_the_masked_assignment_into_a_view():
    rng = np.random.default_rng(36)
    for _ in range(100):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 60)))
        lit = rng.random(shape) < rng.choice([0.0, 0.3, 1.0])
        vals = rng.standard_normal(int(lit.sum()))
        canvas = rng.random((shape[0] + 4, shape[1] + 2))
        want = canvas.copy()
        c = want[1:1 + shape[0], 2:2 + shape[1]]
        c[lit] = vals
        supersample.scatter_lit(lit, vals, canvas[1:1 + shape[0], 2:2 + shape[1]])
        assert _same(canvas, want)
    with pytest.raises(ValueError, match="one value per lit pixel"):
        supersample.scatter_lit(np.ones((2, 2), bool), np.ones(3), np.zeros((2, 2)))


def test_limb_crossings_are_the_edge_padded_comparisons():
    rng = np.random.default_rng(37)
    yy, xx = np.mgrid[:60, :90]
    masks = [np.hypot(yy - 30.2, xx - 44.9) < 20, np.hypot(yy + 3.0, xx - 88.0) < 25,
             np.ones((60, 90), bool), np.zeros((60, 90), bool), np.ones((1, 1), bool),
             np.array([[True, False, True]]), np.array([[True], [False]])]
    masks += [rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40))))
              < rng.random() for _ in range(200)]
    for hit in masks:
        pad = np.pad(hit, 1, mode="edge")
        want = np.zeros_like(hit)
        for d in (0, 2):
            want |= pad[d:d + hit.shape[0], 1:-1] != hit
            want |= pad[1:-1, d:d + hit.shape[1]] != hit
        edge = np.empty_like(hit)
        n = supersample.limb_crossings(hit, edge)
        assert np.array_equal(edge, want) and n == int(want.sum())


def test_positions_are_mgrid_and_the_broadcast_sub_pixels():
    rng = np.random.default_rng(38)
    for _ in range(50):
        lo_l, lo_s = int(rng.integers(-20, 140)), int(rng.integers(-20, 440))
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        ll, ss = np.mgrid[lo_l:lo_l + shape[0], lo_s:lo_s + shape[1]]
        line, sample = np.empty(ll.size), np.empty(ll.size)
        supersample.box_positions(lo_l, lo_l + shape[0], lo_s, lo_s + shape[1], line, sample)
        assert _same(line, np.asarray(ll, float).ravel())
        assert _same(sample, np.asarray(ss, float).ravel())
        edge = rng.random(shape) < 0.3
        for k in (1, 3, 4):
            off = (np.arange(k) + 0.5) / k - 0.5
            dl, ds = np.meshgrid(off, off, indexing="ij")
            want_l = (ll[edge][:, None] + dl.ravel()).ravel()
            want_s = (ss[edge][:, None] + ds.ravel()).ravel()
            line, sample = np.empty(want_l.size), np.empty(want_l.size)
            supersample.subpixel_positions(edge, lo_l, lo_s, off, line, sample)
            assert _same(line, want_l) and _same(sample, want_s)


def _states():
    for range_km in (2500.0, 9000.0, 30000.0, 120000.0, 4e5):
        for line, off in ((40.0, 1.0), (60.0, 0.3), (127.0, 1.0), (-10.0, 0.9), (10.0, 0.0)):
            state = _state(range_km, line, off)
            yield state
            yield _tilted(state)


def test_disc_cosines_with_constants_taken_once_are_the_per_call_ones():
    rng = np.random.default_rng(39)
    for state in _states():
        ll = rng.uniform(-30, 160, (37, 5))
        ss = rng.uniform(-30, 460, (37, 5))
        want = _cosines(state, *_pixel_rays(state, "M", ll, ss))
        got = disc_cosines(state, "M", ll, ss)
        assert all(_same(g, w) for g, w in zip(got, want, strict=True))
        flat = DiscRays.of(state, "M").cosines(ll.ravel(), ss.ravel())
        assert all(_same(g, w.ravel()) for g, w in zip(flat, want, strict=True))
    with pytest.raises(ValueError, match="flat coordinates"):
        DiscRays.of(state, "M").cosines(ll, ss)


@pytest.mark.parametrize("exponents, psf", [((1.0, 0.8, 0.6, 0.0), 0.7), ((1.0,), 0.7),
                                            ((0.6, 1.0), 0.0), ((0.9, 0.5), 1.3)])
def test_the_canvas_is_the_numpy_steps_one(exponents, psf):
    n_limb = 0
    for state in _states():
        for box in ((0, 128, 0, 432), (-8, 136, -8, 440), (30, 70, 200, 260), (0, 1, 0, 3)):
            kw = dict(line0=box[0], line1=box[1], samp0=box[2], samp1=box[3],
                      psf_sigma_px=psf, exponents=exponents)
            got, limb = _shading(state, "M", **kw)
            want, want_limb = shading_numpy(state, "M", **kw)
            assert np.array_equal(limb, want_limb)
            assert all(_same(g, w) for g, w in zip(got, want, strict=True))
            n_limb += int(limb.sum())
    assert n_limb > 1000  # the limbs were drawn, not only empty canvases
