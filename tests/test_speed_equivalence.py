"""The faster science-chain pieces compute what the library functions they replace compute.

Issue 11 ("Mission-scale speed"): each replacement is exact (the same values,
bit for bit) or equal to rounding, on synthetic inputs covering the awkward
cases (image borders, plateaus, ties, NaN). No timing here: speed is measured
side by side by ``bench/science_chain.py``.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from _speed_reference import brightest_raster_first, window_medians_stepwise
from _synthetic import _scene, _state, _tilted
from astropy.io import fits
from scipy import ndimage as ndi
from skimage.feature import match_template
from skimage.morphology import h_maxima

from iovolc import rank_median
from iovolc.geometry import disc_cosines, disc_pixel_box, pixel_geometry
from iovolc.imaging import (
    LINE_DIRECTIONS,
    block_median,
    brightest_of_labels,
    edge_ranks,
    h_maxima_at,
    label_max,
    median_filter_nearest,
    ncc,
)
from iovolc.pipeline import FrameResult
from iovolc.products import fits_to_frame, frame_to_fits


@pytest.mark.parametrize("size", [1, 3, 5, 14, 15, 31])
def test_median_filter_is_scipys(size):
    """Odd sizes run the sliding bit-set median (size 1 a copy), even ones scipy's."""
    rng = np.random.default_rng(size)
    x = _scene(rng, 37, 70)
    x[rng.random(x.shape) < 0.05] = 3.0  # ties
    for plateau in (True, False):  # the ranks by the stable sort or the quicksort
        assert np.array_equal(median_filter_nearest(x, size, plateau=plateau),
                              ndi.median_filter(x, size=size, mode="nearest"))


@pytest.mark.parametrize("shape, size", [((128, 216), 15), ((260, 300), 15), ((5, 3), 15),
                                         ((40, 50), 7)])
def test_sliding_rank_median_is_scipys(shape, size):
    """The bit-set sliding median (iovolc.rank_median) on a band strip's shape, on a
    padded image past 65536 pixels (32-bit ranks), on an image smaller than the
    window, on plateaus (many equal values: ranks broken by position) and on a
    constant image."""
    rng = np.random.default_rng(shape[0])
    x = _scene(rng, *shape) * 100
    x[rng.random(x.shape) < 0.3] = 7.0
    x[: shape[0] // 3] = np.round(x[: shape[0] // 3])
    for img in (x, np.full(shape, 2.5), -x.T.copy(), np.zeros((0, shape[1])), x[:1, :3]):
        for plateau in (True, False):
            assert np.array_equal(median_filter_nearest(img, size, plateau=plateau),
                                  ndi.median_filter(img, size=size, mode="nearest"))
        assert np.array_equal(median_filter_nearest(img, 1), img)


@pytest.mark.parametrize("size", [3, 5, 7, 15, 21, 45])
def test_popcount_jumps_give_the_stepwise_walks_ranks(size):
    """Stop 38: the sliding median jumps to its new rank by counting set bits; the walk
    one set bit at a time it replaced (tests/_speed_reference.py) gives every output
    rank the same, on rank images of noise (ranks far apart), of a ramp and of plateaus
    broken by position (ranks in runs: the median moves by many ranks a step; these two
    edge-padded and ranked by ``imaging.edge_ranks``, as the filter ranks them), of ranks
    in column-major order (every step moves the median by ``size`` ranks: the widest
    jump), in 16 and 32 bits, windows wider than the image included, and every rank of
    a 16-bit image (its largest rank, 65535, in the bit set's last word)."""
    rng = np.random.default_rng(size)
    h = size // 2
    cases = []
    for n0, n1 in ((24, 61), (3, 9), (40, 8), (1, 1)):
        shape = (n0 + 2 * h, n1 + 2 * h)
        noise = rng.permutation(shape[0] * shape[1]).reshape(shape)
        ramp = np.add.outer(np.arange(n0) * 7.0, np.arange(n1) * 1.0)
        ramp += rng.normal(0, 2.0, (n0, n1))
        plateau = np.where(rng.random((n0, n1)) < 0.7, 5.0, rng.normal(5, 1, (n0, n1)))
        # the rank images median_filter_nearest passes: edge-padded, by either sort
        for img, stable in ((ramp, False), (plateau, True), (plateau, False)):
            cases.append((edge_ranks(img, h, plateau=stable)[2], (n0, n1)))
        cases.append((noise, (n0, n1)))
        cases.append((np.arange(noise.size).reshape(shape, order="F"), (n0, n1)))
    full = (256 - 2 * h, 256 - 2 * h)  # 65,536 ranks
    cases.append((rng.permutation(1 << 16).reshape(256, 256), full))
    cases.append((np.arange(1 << 16).reshape(256, 256, order="F"), full))
    n_moves = 0
    for rank, out_shape in cases:
        for dtype in (np.uint16, np.uint32):
            if rank.size > np.iinfo(dtype).max + 1:
                continue
            r = rank.astype(dtype)
            ref, out = np.empty(out_shape, dtype), np.empty(out_shape, dtype)
            window_medians_stepwise(r, size, ref)
            rank_median.window_medians(r, size, out)
            assert np.array_equal(out, ref)
            n_moves += int(np.count_nonzero(np.diff(ref.astype(np.int64), axis=1)))
    assert n_moves > 1000  # the medians did move: the jumps were exercised


def test_the_quicksort_ranks_give_the_stable_ones_medians_bit_for_bit():
    """Stop 28: equal values may take their ranks in any order, so the quicksort's ranks
    give the same medians; a -0.0 (equal to 0.0, another bit pattern) keeps the stable
    sort, so a zero median keeps its sign."""
    rng = np.random.default_rng(28)
    for trial in range(12):
        x = np.round(_scene(rng, 60, 90) * (1 + trial)) + 0.0  # (+ 0.0: no -0.0 left)
        x[rng.random(x.shape) < 0.2] = 0.0
        if trial % 2:  # the guard's case: the stable sort both ways
            x[rng.random(x.shape) < 0.2] = -0.0
        else:  # the quicksort's case (a review found every trial held a -0.0 at first)
            assert not ((x == 0) & np.signbit(x)).any()
        for size in (3, 7, 15):
            a = median_filter_nearest(x, size, plateau=True)
            b = median_filter_nearest(x, size, plateau=False)
            assert a.tobytes() == b.tobytes(), (trial, size)
            assert np.array_equal(a, ndi.median_filter(x, size=size, mode="nearest"))


def test_h_maxima_on_pieces_is_skimages():
    rng = np.random.default_rng(1)
    for trial in range(60):
        snr = _scene(rng)
        t = np.arcsinh(snr / 4.0)
        if trial % 3 == 0:  # a saturated plateau touching the border
            t[0:4, 10:16] = t.max() + 1.0
        at = snr > 5.0
        assert np.array_equal(h_maxima_at(t, 0.25, at),
                              h_maxima(t, 0.25).astype(bool) & at), trial


def test_label_maxima_and_positions_are_scipys():
    """Where a label's largest value is unique, scipy's position; among equal values the
    first in raster order (scipy's choice follows its unstable, host-dependent sort)."""
    rng = np.random.default_rng(2)
    n_tied = 0
    for trial in range(60):
        x = _scene(rng)
        if trial % 4 == 0:
            x = np.round(x)  # ties for the largest value
        lab, n = ndi.label(x > 2.0, structure=np.ones((3, 3), bool))
        if n == 0:
            continue
        idx = np.arange(1, n + 1)
        values = np.where(lab > 0, x, -np.inf)  # as the extraction calls it
        pos = [(int(a), int(b)) for a, b in ndi.maximum_position(values, lab, idx)]
        pr, ps = brightest_of_labels(values, lab, n)
        got = list(zip(pr.tolist(), ps.tolist(), strict=True))
        assert got == brightest_raster_first(values, lab, n)
        top = ndi.maximum(values, lab, idx)
        unique = [np.count_nonzero(values[lab == k] == top[k - 1]) == 1 for k in idx]
        assert [g for g, u in zip(got, unique, strict=True) if u] == \
            [p for p, u in zip(pos, unique, strict=True) if u]
        n_tied += unique.count(False)
        assert np.array_equal(label_max(x, lab, n), ndi.maximum(x, lab, idx))
    assert n_tied > 5


def test_brightest_of_labels_with_missing_and_extra_labels():
    values = np.arange(20.0).reshape(4, 5)
    lab = np.zeros((4, 5), int)
    lab[0, 1] = 1
    lab[2, 2] = lab[2, 3] = 3
    lab[3, 4] = 7  # beyond n: ignored
    values[2, 3] = values[2, 2]  # a tie: the first in raster order
    pr, ps = brightest_of_labels(values, lab, 4)
    assert list(zip(pr.tolist(), ps.tolist(), strict=True)) == [(0, 1), (0, 0), (2, 2), (0, 0)]
    pos = ndi.maximum_position(values, lab, [1, 2, 4])  # scipy's (0, 0) for no pixel
    assert [(int(a), int(b)) for a, b in pos] == [(0, 1), (0, 0), (0, 0)]


def test_block_medians_are_nanmedians():
    rng = np.random.default_rng(3)
    for _ in range(30):
        x = np.abs(_scene(rng, 45, 77))
        valid = rng.random(x.shape) < rng.uniform(0.0, 1.0)
        n0, n1 = x.shape
        b = 7
        xp = np.pad(np.where(valid, x, np.nan), ((0, -n0 % b), (0, -n1 % b)),
                    constant_values=np.nan)
        cells = xp.reshape(xp.shape[0] // b, b, xp.shape[1] // b, b).transpose(0, 2, 1, 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells
            ref = np.nanmedian(cells.reshape(*cells.shape[:2], -1), axis=-1)
        assert np.array_equal(block_median(x, valid, b), ref, equal_nan=True)


def test_compiled_zoom_is_scipys_bit_for_bit():
    """separable.zoom_linear_nearest (the noise map's interpolation) against
    scipy.ndimage.zoom(order=1, mode="nearest", grid_mode=True): 400 random grids from
    1 x 1, zoomed by factors from 0.3 to 13 (the pipeline's: strip / block grid),
    values from 1e-3 to 1e4 with zeros, the same output shape and bits; zoom 1 a copy."""
    from iovolc.separable import zoom_linear_nearest

    rng = np.random.default_rng(17)
    for trial in range(400):
        shape = (int(rng.integers(1, 40)), int(rng.integers(1, 90)))
        if trial % 4 == 0:
            zoom = tuple(float(z) for z in rng.uniform(0.3, 13.0, 2))
        else:  # the pipeline's: an integer-ish output over a block grid
            out = [n * int(rng.integers(1, 12)) + int(rng.integers(0, 5)) for n in shape]
            zoom = (out[0] / shape[0], out[1] / shape[1])
        x = rng.random(shape) * rng.choice([1.0, 1e-3, 1e4])
        x[rng.random(shape) < 0.1] = 0.0
        want = ndi.zoom(x, zoom, order=1, mode="nearest", grid_mode=True)
        got = zoom_linear_nearest(x, zoom)
        assert got.shape == want.shape, (shape, zoom)
        assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), (shape, zoom)
    x = rng.random((5, 7))
    assert np.array_equal(zoom_linear_nearest(x, (1.0, 1.0)), x)


def test_compiled_gaussian_blur_is_scipys_bit_for_bit():
    """iovolc.separable (the predicted disc's PSF blur) against
    scipy.ndimage.gaussian_filter(mode="constant"): 300 random shapes from 1 x 1 up,
    sigmas from 0.1 to 2.2 px (kernels from 1 to 19 taps, wider than some images),
    scales from 1e-3 to 1e5, zeros as the canvases have them, and NaN/inf; compared
    bit for bit (NaN where scipy has NaN)."""
    from scipy.ndimage import gaussian_filter

    from iovolc.separable import gaussian_blur_constant

    rng = np.random.default_rng(7)
    for trial in range(300):
        shape = (int(rng.integers(1, 60)), int(rng.integers(1, 80)))
        sigma = float(rng.choice([0.7, 0.5, 0.35, 1.0, 1.3, 2.2, 0.1]))
        x = rng.normal(size=shape) * rng.choice([1.0, 1e-3, 1e5])
        x[rng.random(shape) < 0.3] = 0.0
        if trial % 10 == 0:
            x[rng.random(shape) < 0.02] = rng.choice([np.nan, np.inf, -np.inf])
        got = gaussian_blur_constant(x, sigma)
        want = gaussian_filter(x, sigma, mode="constant")
        same = got.view(np.uint64) == want.view(np.uint64)
        assert (same | (np.isnan(got) & np.isnan(want))).all(), (shape, sigma)
    # a window of a canvas (a view), as the shading passes it
    canvas = np.zeros((40, 90))
    canvas[5:30, 10:70] = rng.random((25, 60))
    view = canvas[2:35, 4:80]
    assert np.array_equal(gaussian_blur_constant(view, 0.7).view(np.uint64),
                          gaussian_filter(view, 0.7, mode="constant").view(np.uint64))


@pytest.mark.parametrize("shape", [(128, 432), (50, 64), (3, 2), (1, 12), (20, 1), (9, 9)])
def test_compact_tophat_is_the_numpy_form_bit_for_bit(shape):
    """morphology.compact_tophat (hot_pixels' top-hat from stop 21; since stop 28 the
    reference of its mask, morphology.compact_hot) against the min over
    the four directions of x - line_opening(x) from shifted numpy views: finite images
    with plateaus and zeros of both signs (numpy's choice between equal values decides
    the sign), shapes smaller than the 9-pixel line, compared bit for bit."""
    from _speed_reference import compact_tophat_numpy

    from iovolc.morphology import compact_tophat

    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    dirs = np.array(LINE_DIRECTIONS, dtype=np.int64)
    for trial in range(6):
        x = np.round(rng.normal(size=shape) * 3, 1) + (_scene(rng, *shape) if trial % 2 else 0)
        x[rng.random(shape) < 0.2] = 0.0
        x[rng.random(shape) < 0.2] = -0.0
        for n in (9,) if trial else (1, 3, 5, 9, 21):
            want = compact_tophat_numpy(x, n)
            got = compact_tophat(x, dirs, n)
            assert np.array_equal(got, want), (trial, n)
            if _NUMPY_TIES_SECOND:  # numpy's SIMD minimum picks between +0.0 and -0.0 as x86's does
                assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), (trial, n)


def test_line_openings_are_grey_openings():
    """The numpy line openings (the reference of compact_tophat) are scipy's grey
    openings with a line footprint."""
    from _speed_reference import line_opening

    rng = np.random.default_rng(4)
    x = _scene(rng, 50, 64)
    n = 9
    eye = np.eye(n, dtype=bool)
    row = np.zeros((n, n), bool)
    row[n // 2] = True
    for fp, d in zip([row, row.T, eye, eye[::-1]], LINE_DIRECTIONS, strict=True):
        assert np.array_equal(line_opening(x, d, n), ndi.grey_opening(x, footprint=fp,
                                                                       mode="nearest"))


def test_ncc_is_skimages_match_template():
    rng = np.random.default_rng(5)
    canvas = np.zeros((300, 120))
    canvas[80:230, 20:100] = rng.random((150, 80))
    tmpl = canvas[100:160, 30:90] + 0.05 * rng.normal(size=(60, 60))
    for t in (tmpl, tmpl.astype(np.float32)):  # strip templates are float32
        ref = match_template(canvas, t)
        got = ncc(canvas, t)
        assert got.shape == ref.shape
        assert np.unravel_index(got.argmax(), got.shape) == (100, 30)
        # skimage transforms a float32 template in single precision
        assert np.abs(got - ref).max() < (1e-6 if t.dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("range_km, line, off", [
    (9000.0, 40.0, 1.0), (9000.0, 40.0, 0.0), (2500.0, 60.0, 0.3), (4e5, 10.0, 0.0),
    (4e5, -3.0, 0.0), (4e5, 150.0, 0.0), (60000.0, 127.0, 1.0), (60000.0, 64.0, 40.0)])
def test_the_disc_box_holds_every_pixel_on_the_disc(range_km, line, off):
    state = _state(range_km, line, off)
    ll, ss = np.mgrid[0:128, 0:432]
    on = pixel_geometry(state, "M", ll, ss).on_disc
    box = disc_pixel_box(state, "M")
    inside = np.zeros(on.shape, bool)
    if box is not None:
        inside[box] = True
    assert not (on & ~inside).any()
    if on.any() and on.mean() < 0.2:  # small discs: the box is small too
        assert inside.sum() < 4 * on.sum() + 40 * (on.any(0).sum() + on.any(1).sum())


def test_disc_cosines_are_pixel_geometrys_angles():
    state = _state()
    ll, ss = np.mgrid[0:128:3, 0:432:3]
    g = pixel_geometry(state, "M", ll, ss)
    on, cos_i, cos_e = disc_cosines(state, "M", ll, ss)
    assert 0.1 < g.on_disc.mean() < 0.9  # limb in the strip
    assert np.array_equal(on, g.on_disc)
    assert np.isnan(cos_i[~on]).all() and np.isnan(cos_e[~on]).all()
    assert np.abs(cos_i[on] - np.cos(np.radians(g.incidence_deg[on]))).max() < 1e-12
    assert np.abs(cos_e[on] - np.cos(np.radians(g.emission_deg[on]))).max() < 1e-12
    # the same rays through the public intercept
    point, obs_bf, hit, _ = state.intercept("M", ll, ss)
    assert np.array_equal(hit, on) and point.shape == (*ll.shape, 3)
    assert np.isnan(point[~hit]).all() and np.isfinite(obs_bf[hit]).all()


def _frame(rng, n_lines=256) -> FrameResult:
    rad = (rng.normal(size=(n_lines, 432)) * 1e-3).astype(np.float32)
    rad[0, :5] = [np.nan, -0.0, 1e-42, np.inf, 3e38]  # every float32 oddity
    z = np.zeros(rad.shape, bool)
    sat, bad, hits = z.copy(), z.copy(), z.copy()
    sat[3, 4] = bad[5, 6] = hits[7, 8] = hits[3, 4] = True
    summary = {"perijove": 57, "et_mid": 7.5e8, "mode": "I1", "bands": "LM",
               "exposure_s": 0.004, "start_time_utc": "2023-12-30T08:00:00",
               "product_type": "RDR", "limb_ok": False, "limb_along_rad": float("nan"),
               "limb_cross_rad": 0.001}
    return FrameResult("JIR_IMG_RDR_X", rad, sat, bad, hits, summary)


def test_compressed_frames_read_back_bit_for_bit(monkeypatch):
    import gzip

    fr = _frame(np.random.default_rng(6))
    monkeypatch.setattr(gzip.time, "time", lambda: 1.0e9)
    blob = frame_to_fits(fr, kernels=["naif0012.tls", "juno_v12.tf"])
    monkeypatch.setattr(gzip.time, "time", lambda: 2.0e9)  # gzip headers hold a write time
    assert blob == frame_to_fits(fr, kernels=["naif0012.tls", "juno_v12.tf"])  # deterministic
    back = fits_to_frame(blob)
    assert back.radiance.dtype == np.float32
    assert np.array_equal(back.radiance.view(np.uint32), fr.radiance.view(np.uint32))
    for k in ("saturated", "bad", "hits"):
        assert np.array_equal(getattr(back, k), getattr(fr, k))
    with fits.open(io.BytesIO(blob), disable_image_compression=True) as h:
        assert h["RADIANCE"].header["ZCMPTYPE"] == "GZIP_1"
        assert h["RADIANCE"].header["ZNAME1"] == "NOISEBIT"
        assert h["RADIANCE"].header["ZVAL1"] == 0  # no quantisation


def test_previous_uncompressed_format_is_still_read():
    fr = _frame(np.random.default_rng(7), n_lines=128)
    with fits.open(io.BytesIO(frame_to_fits(fr, kernels=["a.tls"]))) as h:
        hdr = h[0].header.copy()
        hdr["FORMAT"] = "iovolc-calibrated-2"
        buf = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(np.array(h["RADIANCE"].data), header=hdr),
                      fits.ImageHDU(np.array(h["MASK"].data), name="MASK"),
                      fits.BinTableHDU(h["SUMMARY"].data, name="SUMMARY")]).writeto(buf)
    back = fits_to_frame(buf.getvalue())
    assert np.array_equal(back.radiance.view(np.uint32), fr.radiance.view(np.uint32))
    assert np.array_equal(back.hits, fr.hits)


@pytest.mark.parametrize("range_km, line, off", [
    (9000.0, 40.0, 1.0), (2500.0, 60.0, 0.3), (4e5, 10.0, 0.0), (60000.0, 127.0, 1.0)])
@pytest.mark.parametrize("tilt", [False, True])
def test_compiled_ray_tracing_equals_the_numpy_it_replaced(range_km, line, off, tilt):
    """iovolc.raytrace (numba) against the numpy formulation (tests/_geometry_numpy.py).

    Rays: the compiled pixel rays equal the camera's ``directions`` to rounding.
    Then, on the *same* rays, the compiled intercepts and backplanes equal the
    numpy ones to 1e-12 (a ray's last-bit difference moves a grazing-limb
    intercept by far more than that, so the two stages are compared apart).
    """
    import _geometry_numpy as ref

    from iovolc.geometry import PixelGeometry, _cosines, _geometry, _pixel_rays

    state = _state(range_km, line, off)
    state = _tilted(state) if tilt else state
    ll, ss = np.mgrid[-2:130:1, -3:436:2].astype(float)
    ll += 0.25  # sub-pixel positions, as the centroids are
    u_ref = ref.rays(state, "M", ll, ss)
    u, shape = _pixel_rays(state, "M", ll, ss)
    assert shape == ll.shape and np.abs(u - u_ref.reshape(-1, 3)).max() < 4e-16
    u = np.ascontiguousarray(u_ref.reshape(-1, 3))
    cam = state.camera("M")
    fast = _geometry(state, u, shape, ifov_rad=cam.ifov_rad)
    slow = ref._backplanes_of(state, ref._intercept(state, ref._components(u_ref)), shape,
                              ifov_rad=cam.ifov_rad)
    on = slow.on_disc
    assert 0 < on.sum() and np.array_equal(fast.on_disc, on)
    for key in PixelGeometry.__dataclass_fields__:
        if key == "on_disc":
            continue
        a, b = getattr(fast, key), getattr(slow, key)
        assert a.shape == ll.shape and np.isnan(a[~on]).all()
        scale = 1.0 if key.endswith("_deg") else np.abs(b[on]).max()
        assert np.abs(a[on] - b[on]).max() <= 1e-12 * scale, key
    got, want = _cosines(state, u, shape), ref.disc_cosines_directions(state, u_ref)
    assert np.array_equal(got[0], want[0])
    for a, b in zip(got[1:], want[1:], strict=True):
        assert np.abs(a[on] - b[on]).max() <= 1e-14 and np.isnan(a[~on]).all()
    got = state.intercept_directions(u_ref)
    s = ref._intercept(state, ref._components(u_ref))
    want = (ref._stack(s.point, shape), ref._stack(s.obs_bf, shape), s.hit.reshape(shape),
            s.dt.reshape(shape))
    assert np.array_equal(got[2], want[2])
    for a, b in (got[0], want[0]), (got[1], want[1]), (got[3], want[3]):
        assert np.abs(a[on] - b[on]).max() <= 1e-12 * np.abs(b[on]).max()
        assert np.isnan(a[~on]).all() == np.isnan(b[~on]).all()


def _numpy_ties_take_the_second() -> bool:
    """Whether numpy's minimum and maximum (their SIMD loops: long arrays) return the
    second operand between +0.0 and -0.0, as the compiled loops do (x86's
    min/max instructions do; another machine's may not)."""
    pos, neg = np.zeros(64), -np.zeros(64)
    return bool(np.signbit(np.minimum(pos, neg)).all() and not np.signbit(np.minimum(neg, pos)).any()
                and np.signbit(np.maximum(pos, neg)).all()
                and not np.signbit(np.maximum(neg, pos)).any())


#: where numpy's min/max choose between equal zeros as the compiled loops do
_NUMPY_TIES_SECOND = _numpy_ties_take_the_second()


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """The same bits everywhere, a NaN's sign and payload aside (NaN where the other is NaN)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.dtype.kind != "f":
        return np.array_equal(a, b)
    ua, ub = a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")
    return bool(((ua == ub) | (np.isnan(a) & np.isnan(b))).all())


@pytest.mark.parametrize("range_km, line, off", [
    (9000.0, 40.0, 1.0), (2500.0, 60.0, 0.3), (4e5, 10.0, 0.0), (60000.0, 127.0, 1.0),
    (1900.0, 64.0, 0.0)])
@pytest.mark.parametrize("tilt", [False, True])
@pytest.mark.parametrize("io_speed", [17.0, 3000.0])
def test_vectorised_ray_loops_equal_the_scalar_loops_bit_for_bit(range_km, line, off, tilt,
                                                                 io_speed):
    """Stop 21 made the loops vectorisable (branch-free light-time iterations,
    constants in a tuple, flat rays). Against the scalar loops they replaced
    (tests/_raytrace_scalar.py), every output is identical bit for bit: on a
    sub-pixel grid over and beyond the strip, a 0.002-px grid across the limb
    and degenerate rays (zero, NaN, inf); bits compared, except that a NaN may
    differ in its sign bit (which NaN operand an instruction passes on; only the
    degenerate rays have NaN in a hit's place). An unphysical 3000 km/s Io makes
    the light-time iterations move the limb by tens of metres, so that grazing
    rays hit in the first iteration and miss in a later one (the ``break`` of the
    scalar loop; asserted in every case with a limb in the grid). The cosines are
    also those of their one loop of stops 21-34 (stop 35's second pass)."""
    from dataclasses import replace

    import _raytrace_scalar as old

    from iovolc import raytrace
    from iovolc.geometry import _camera_constants, _pixel_rays, _trace_constants

    state = replace(_state(range_km, line, off), io_vel=np.array([io_speed, 2.0, 0.5]))
    state = _tilted(state) if tilt else state
    ll, ss = np.mgrid[-2:130:0.75, -3:436:1.3]
    u, _ = _pixel_rays(state, "M", ll, ss)
    hit = np.empty(u.shape[0], bool)
    raytrace.cosines(u.reshape(-1), _trace_constants(state), hit, np.empty(len(u)),
                     np.empty(len(u)))
    on = hit.reshape(ll.shape)
    edge = on & ~ndi.binary_erosion(on, border_value=1)  # the limb's pixels, not the strip's
    step = max(1, int(edge.sum()) // 300)
    el, es = ll[edge][::step], ss[edge][::step]
    d = np.arange(-1.0, 1.0, 0.002)
    fine_l = (el[:, None] + d).ravel()
    fine_s = (es[:, None] + d[::-1]).ravel()
    line_all = np.concatenate([ll.ravel(), fine_l])
    samp_all = np.concatenate([ss.ravel(), fine_s])
    cam = state.camera("M")
    consts = _camera_constants(state, "M")
    n = line_all.size
    u_new, u_old = np.empty(3 * n), np.empty((n, 3))
    raytrace.pixel_rays(line_all, samp_all, consts, u_new)
    old.pixel_rays(line_all, samp_all, consts, u_old)
    assert np.array_equal(u_new, u_old.ravel())
    u = np.concatenate([u_old, [[0.0, 0.0, 0.0], [np.nan, 1.0, 0.0], [np.inf, 0.0, 1.0],
                                [0.0, 0.0, -1.0]]])
    n = len(u)
    k = _trace_constants(state)

    def outputs(mod, flat):
        uu = u.reshape(-1) if flat else u
        pt, ob = np.empty((n, 3)), np.empty((n, 3))
        h1, dt = np.empty(n, bool), np.empty(n)
        mod.surface(uu, k, pt.reshape(-1) if flat else pt, ob.reshape(-1) if flat else ob, h1, dt)
        h2, ci, ce = np.empty(n, bool), np.empty(n), np.empty(n)
        mod.cosines(uu, k, h2, ci, ce)
        h3, planes = np.empty(n, bool), np.empty((7, n))
        mod.backplanes(uu, k, cam.ifov_rad, h3, planes)
        return pt, ob, h1, dt, h2, ci, ce, h3, planes

    got, want = outputs(raytrace, True), outputs(old, False)
    assert got[2].sum() > 1000 and not got[2].all()
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and _same_bits(a, b)
    # the cosines' one loop of stops 21-34 (stop 35 moved the clamps and NaN to a pass)
    h, ci, ce = np.empty(n, bool), np.empty(n), np.empty(n)
    old.cosines_one_loop(u.reshape(-1), k, h, ci, ce)
    for a, b in zip(got[4:7], (h, ci, ce), strict=True):
        assert a.dtype == b.dtype and _same_bits(a, b)
    # the grazing grid really holds rays that hit in the first light-time
    # iteration and miss in a later one, or only just hit (the branch-free path)
    near = got[2][-4 - fine_l.size:-4]
    assert (0 < near.sum() < near.size) if on.any() and not on.all() else near.size == 0
    # the first light-time iteration's hit, in numpy from the same constants
    w = u_old[-fine_l.size:] - k[0:3]
    ru = (w / np.linalg.norm(w, axis=1)[:, None]) @ k[3:12].reshape(3, 3).T
    qa, qb = (ru * ru * k[27:30]).sum(1), 2 * (ru * k[27:30]) @ k[21:24]
    disc = qb * qb - 4 * qa * (k[31] - 1.0)
    first = (disc >= 0) & ((-qb - np.sqrt(np.maximum(disc, 0.0))) / (2 * qa) > 0)
    if io_speed == 3000.0 and near.size:
        assert (first & ~near).sum() > 0  # 1 to 41,584 rays, depending on the case


def test_compiled_loops_follow_numpys_error_model():
    """A zero-length ray divides by zero: NaN and a miss, as in numpy, never an exception
    (numba's default would raise ZeroDivisionError); warm_up (the image build) runs."""
    from iovolc import raytrace
    from iovolc.geometry import _cosines, _geometry

    raytrace.warm_up()
    state = _state()
    u = np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 0.0]])
    hit, cos_i, cos_e = _cosines(state, u, (2,))
    assert not hit.any() and np.isnan(cos_i).all() and np.isnan(cos_e).all()
    g = _geometry(state, u, (2,), ifov_rad=1e-4)
    assert not g.on_disc.any() and np.isnan(g.lat_deg).all()
