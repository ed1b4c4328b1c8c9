"""Stop 22's faster forms give the same bits as what they replaced (issue 11).

The cubic spline prefilter and the row-skipping transforms against scipy; the
NCC, the Minnaert factors and the hot-pixel mask against the forms they
replaced (``tests/_speed_reference.py``). The limb fit's spline values and its
stacked coefficients are checked in ``tests/test_speed_kernels.py``, the limb
audit's arrays in ``tests/test_limb_audit.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from _speed_reference import (
    hot_pixels_numpy,
    ncc_full_transform,
    photometry_canvases,
    photometry_numpy,
)
from _synthetic import _disc_scene
from scipy import fft as sp_fft
from scipy.ndimage import spline_filter

from iovolc import compiled, imaging
from iovolc.imaging import hot_pixels, irfft2_rows, nanmedian, rfft2
from iovolc.morphology import fill_and_highpass, usable_values
from iovolc.separable import spline_filter_cubic
from iovolc.shading import _lit_factors

_NON_FINITE = np.array([np.nan, np.inf, -np.inf])


def _same_bits(got: np.ndarray, want: np.ndarray) -> bool:
    """The same shape and bits, NaN where the other has NaN (any NaN's bits)."""
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape or g.dtype != w.dtype:
        return False
    if np.iscomplexobj(g):
        g, w = g.view(g.real.dtype), w.view(w.real.dtype)
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[g.dtype.itemsize]
    return bool(((g.view(uint) == w.view(uint)) | (np.isnan(g) & np.isnan(w))).all())


def _sprinkle(rng, x: np.ndarray, fraction: float) -> None:
    """Set a fraction of ``x`` to NaN, +inf and -inf, mixed."""
    pick = rng.random(x.shape) < fraction
    x[pick] = rng.choice(_NON_FINITE, int(pick.sum()))


def test_compiled_spline_prefilter_is_scipys_bit_for_bit():
    """separable.spline_filter_cubic (the limb fit's canvas coefficients) against
    scipy.ndimage.spline_filter(order=3, mode="constant"): 400 random shapes, 1 x 1,
    one row and one column among them (an axis of one value is left alone), past the
    8-row blocks of axis 1; scales from 1e-3 to 1e5, the canvases' zeros, NaN/inf
    mixed, float32 input and a window view; bit for bit (NaN where scipy has NaN)."""
    rng = np.random.default_rng(23)
    shapes = [(1, 1), (1, 7), (9, 1), (2, 2)]
    for trial in range(400):
        shape = shapes[trial] if trial < len(shapes) else \
            (int(rng.integers(1, 70)), int(rng.integers(1, 90)))
        x = rng.normal(size=shape) * rng.choice([1.0, 1e-3, 1e5])
        x[rng.random(shape) < 0.3] = 0.0
        if trial % 10 == 0:
            _sprinkle(rng, x, 0.03)
        if trial % 7 == 0:
            x = x.astype(np.float32)
        got = spline_filter_cubic(x)
        want = spline_filter(x, order=3, mode="constant")
        assert got.dtype == want.dtype == np.float64
        assert _same_bits(got, want), (shape, trial)
    canvas = np.zeros((160, 470))
    canvas[20:140, 30:400] = rng.random((120, 370))
    view = canvas[3:150, 12:460]
    assert _same_bits(spline_filter_cubic(view), spline_filter(view, order=3, mode="constant"))
    with pytest.raises(TypeError):
        spline_filter_cubic(np.ones((3, 3), complex))


def test_row_skipping_transforms_are_scipys_bit_for_bit():
    """imaging.rfft2 (only the rows holding a non-zero bit transformed along the last
    axis) and imaging.irfft2_rows (the last axis only for the rows kept) against
    scipy.fft.rfft2 / irfft2 (stop 22): 400 images of a non-zero block in zeros, 1 x 1,
    one row and one column among them, grids padded beyond the next fast length on
    both axes, all-zero images, rows of -0.0, every number of rows kept; and the
    inputs each hands to scipy whole (float32, more rows than the grid, a spectrum
    of another shape or precision). Bit for bit (NaN where scipy has NaN)."""
    rng = np.random.default_rng(31)
    shapes = [(1, 1), (1, 9), (7, 1), (2, 2)]
    for trial in range(400):
        n0, n1 = shapes[trial] if trial < len(shapes) else \
            (int(rng.integers(1, 200)), int(rng.integers(1, 300)))
        x = np.zeros((n0, n1))
        r0, r1 = sorted(rng.integers(0, n0, 2))
        c0, c1 = sorted(rng.integers(0, n1, 2))
        x[r0:r1 + 1, c0:c1 + 1] = rng.normal(size=(r1 - r0 + 1, c1 - c0 + 1))
        if trial % 9 == 0:
            x[:] = 0.0
        if trial % 11 == 0:
            x[r0] = -0.0
        if trial % 13 == 0:
            x[r1, c0] = np.nan
        shape = (sp_fft.next_fast_len(n0, real=True) + int(rng.integers(0, 3)),
                 sp_fft.next_fast_len(n1, real=True) + int(rng.integers(0, 3)))
        want = sp_fft.rfft2(x, shape)
        assert _same_bits(rfft2(x, shape), want), trial
        product = want * np.conj(want[::-1])
        k = int(rng.integers(1, shape[0] + 1))
        want_rows = sp_fft.irfft2(product, shape)[:k]
        for overwrite in (False, True):
            got_rows = irfft2_rows(product.copy(), shape, k, overwrite=overwrite)
            assert _same_bits(got_rows, want_rows), trial
    # what goes to scipy whole: the same as scipy's, whatever it is
    x = rng.random((12, 10))
    for img, shape in ((x.astype(np.float32), (12, 10)), (x, (8, 10)), (x, (12, 7))):
        assert _same_bits(rfft2(img, shape), sp_fft.rfft2(img, shape))
    spec = sp_fft.rfft2(x, (12, 10))
    for s, shape in ((spec, (9, 10)), (spec.astype(np.complex64), (12, 10))):
        assert _same_bits(irfft2_rows(s, shape, 5), sp_fft.irfft2(s, shape)[:5])


def test_ncc_is_the_full_transform_ncc_bit_for_bit():
    """imaging.ncc on the row-skipping transforms against the same correlation on
    scipy's whole rfft2/irfft2 (stop 22), on a limb fit's canvas (a disc in a few rows
    of a padded grid) and a coarse one (a small disc in a tall grid)."""
    rng = np.random.default_rng(37)
    for shape, tshape, box in (((144, 448), (128, 432), (20, 118, 30, 400)),
                               ((871, 256), (66, 218), (400, 446, 100, 146))):
        for _ in range(4):
            image = np.zeros(shape)
            image[box[0]:box[1], box[2]:box[3]] = rng.random((box[1] - box[0], box[3] - box[2]))
            t = rng.random(tshape)
            assert _same_bits(imaging.ncc(image, imaging.Template(t)),
                              ncc_full_transform(image, t))


def test_photometry_is_the_numpy_form_bit_for_bit():
    """The Minnaert canvases on shading._lit_factors (lit pixels from one compiled pass, stop 22) against its numpy
    form: canvases and 4x4 sub-pixel blocks, cosines with NaN, +-inf, -0.0, exact zeros
    and values at the 0.02 floor, the exponents of the fits; bit for bit. Cosines of
    another shape or precision are refused (the numpy form computed them otherwise)."""
    rng = np.random.default_rng(43)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 0.02, 0.0199, 1.0, 1e-300])
    for trial in range(200):
        shape = (int(rng.integers(1, 60)), 16) if trial % 3 == 0 else \
            (int(rng.integers(1, 80)), int(rng.integers(1, 120)))
        hit = rng.random(shape) < 0.7
        cos_i = rng.uniform(-0.4, 1.0, shape)
        cos_e = rng.uniform(-0.1, 1.0, shape)
        for a in (cos_i, cos_e):
            pick = rng.random(shape) < 0.1
            a[pick] = rng.choice(specials, int(pick.sum()))
        cos_i[~hit & (rng.random(shape) < 0.5)] = np.nan  # off the disc: NaN, as traced
        for exps in ((1.0,), (1.0, 0.8, 0.6, 0.0), (0.7, 1.0, 0.5)):
            got = photometry_canvases(hit, cos_i, cos_e, exps)
            want = photometry_numpy(hit, cos_i, cos_e, exps)
            for g, w in zip(got, want, strict=True):
                assert _same_bits(g, w), (trial, exps)
    hit = np.ones((3, 4), bool)
    with pytest.raises(ValueError):
        _lit_factors(hit, np.ones((3, 4)), np.ones((3, 3)))
    with pytest.raises(TypeError):
        _lit_factors(hit, np.ones((3, 4), np.float32), np.ones((3, 4)))


@pytest.mark.parametrize("dtype", ["<f8", "<f4", ">f4", "<f2", "<i2"])
def test_hot_pixels_are_the_numpy_form(dtype):
    """imaging.hot_pixels (fill and high-pass compiled, stop 22) against its numpy form:
    strips with hotspots, NaN/inf mixed, invalid pixels, all or none valid, one-row
    and one-column strips, in float64, float32 (either byte order), float16 and int16;
    the same mask. The fill (rounded to the image's dtype, as np.where rounded it) and
    the high-pass are compared bit for bit with the numpy steps."""
    rng = np.random.default_rng(47)
    shapes = [(1, 30), (25, 1), (1, 1)]
    for trial in range(60):
        shape = shapes[trial] if trial < len(shapes) else \
            (int(rng.integers(1, 40)), int(rng.integers(1, 90))) if trial % 4 == 0 \
            else (128, 432)
        img = rng.normal(100.0, 3.0, shape)
        for _ in range(int(rng.integers(0, 8))):  # hotspots
            img[rng.integers(0, shape[0]), rng.integers(0, shape[1])] += rng.uniform(30, 500)
        if dtype[1] == "f":
            _sprinkle(rng, img, 0.01)
        valid = rng.random(shape) > (0.0 if trial % 7 == 0 else 0.1)
        if trial % 11 == 0:
            valid[:] = False
        img = img.astype(dtype)
        assert np.array_equal(hot_pixels(img, valid), hot_pixels_numpy(img, valid)), trial
        # the numpy steps the kernels replaced, bit for bit
        x_np = np.where(valid & np.isfinite(img), img, np.nan)
        fill_np = nanmedian(x_np) if np.isfinite(x_np).any() else 0.0
        x_np = np.where(np.isfinite(x_np), x_np, fill_np).astype(float)
        hp_np = x_np - 0.25 * (np.roll(x_np, 1, 0) + np.roll(x_np, -1, 0)
                               + np.roll(x_np, 1, 1) + np.roll(x_np, -1, 1))
        work = np.ascontiguousarray(img, dtype=np.float32 if img.dtype.kind == "f"
                                    and img.dtype.itemsize <= 4 else float)
        fill_type = img.dtype.newbyteorder("=").type if img.dtype.kind == "f" else np.float64
        buf = np.empty(img.size)
        n = usable_values(work, valid, buf)
        fill = float(fill_type(float(compiled._median(buf[:n])) if n else 0.0))
        x, hp = np.empty(shape), np.empty(shape)
        m = fill_and_highpass(work, valid, fill, x, hp, buf)
        assert _same_bits(x, x_np) and _same_bits(hp, hp_np), trial
        assert np.array_equal(np.sort(buf[:m]), np.sort(np.abs(hp_np[valid])))


def test_windowed_limb_sigma_is_the_whole_strips_bit_for_bit():
    """extract.limb_model_sigma on the disc's window against the whole-strip form it
    replaced: 400 random strips (discs inside, across edges and corners, tiny and
    filling the strip; pointing sigmas 0-6 px, NaN; float32 backgrounds; no disc)."""
    from _speed_reference import limb_model_sigma_whole

    from iovolc.extract import LIMB_SHIFT_FLOOR_PX, limb_model_sigma

    rng = np.random.default_rng(2323)
    for trial in range(400):
        shape = (int(rng.integers(2, 140)), int(rng.integers(2, 200)))
        shading, bg = _disc_scene(rng, shape)
        if trial % 25 == 0:
            shading[:] = 0.0
        if trial % 9 == 0:
            bg = bg.astype(np.float32)
        sig = float(rng.choice([0.0, 0.3, 2.5, 6.0, np.nan]))
        got = limb_model_sigma(bg, shading, pointing_sigma_px=sig)
        want = limb_model_sigma_whole(bg, shading, pointing_sigma_px=sig,
                                      floor_px=LIMB_SHIFT_FLOOR_PX)
        assert _same_bits(got, want), (trial, shape)


def test_windowed_albedo_extension_is_the_whole_strips_bit_for_bit():
    """background_model's albedo field extended by nearest neighbours on the window of
    the non-zero shading (extract._nearest_fill) against the distance transform of the
    whole strip: the same background bits on 400 random strips, with the equal
    distances of symmetric, blocky and one-pixel albedo fields."""
    from _speed_reference import albedo_term_whole

    from iovolc.extract import _nearest_fill

    rng = np.random.default_rng(2324)
    for trial in range(400):
        shape = (int(rng.integers(2, 120)), int(rng.integers(2, 160)))
        shading, _ = _disc_scene(rng, shape)
        if not (shading > 0).any():
            continue
        lit = shading > rng.choice([0.2, 0.6, 0.95]) * shading.max()
        r = np.where(lit, rng.normal(1.0, 0.3, shape), np.nan)
        if trial % 3 == 0:  # blocky: many pixels equally near two or four values
            r = np.where(lit, np.repeat(np.repeat(rng.normal(size=(shape[0] // 4 + 1,
                                                                 shape[1] // 4 + 1)), 4, 0),
                                        4, 1)[:shape[0], :shape[1]], np.nan)
        if trial % 5 == 0:  # holes inside the lit part
            r[rng.random(shape) < 0.3] = np.nan
        if trial % 11 == 0:  # one lit pixel
            r[:] = np.nan
            i, j = np.unravel_index(int(np.argmax(shading)), shape)
            r[i, j] = -1.5
        far = ~np.isfinite(r)
        if not (far.any() and (~far).any()):
            continue
        bg = rng.choice([0.0, 2.0]) + np.zeros(shape)
        got = bg + np.nan_to_num(_nearest_fill(r, far, shading)) * shading
        assert _same_bits(got, albedo_term_whole(bg, r, shading)), (trial, shape)


def test_compiled_ring_excess_and_hit_dilation_are_the_numpy_forms():
    """The radiation-hit finder's ring excess (morphology.ring_excess, via
    hits._ring_mean_excess) against the numpy summed-area form it replaced, and its 3x3
    dilation (morphology.dilate_square3) against ndimage.binary_dilation: 300 random
    images from 3 x 3 up, scales 1e-3 to 1e6 (the table's cancellations), -0.0, NaN
    and inf, a non-contiguous view; masks sparse to full, touching every edge."""
    from _speed_reference import ring_mean_excess_numpy
    from scipy.ndimage import binary_dilation

    from iovolc.hits import _ring_mean_excess
    from iovolc.morphology import dilate_square3

    rng = np.random.default_rng(2325)
    for trial in range(300):
        shape = (int(rng.integers(3, 90)), int(rng.integers(3, 120)))
        x = rng.normal(size=shape) * rng.choice([1e-3, 1.0, 1e6]) + rng.choice([0.0, 1e4])
        if trial % 6 == 0:
            x[rng.random(shape) < 0.2] = -0.0
        if trial % 10 == 0:
            _sprinkle(rng, x, 0.02)
        if trial % 7 == 0:
            x = np.asfortranarray(x)[:, ::-1]
        with np.errstate(invalid="ignore"):  # inf - inf in the table
            want = ring_mean_excess_numpy(x)
        assert _same_bits(_ring_mean_excess(x), want), (trial, shape)
        mask = rng.random(shape) < rng.choice([0.0, 0.002, 0.05, 0.6, 1.0])
        mask[0, 0] = mask[-1, -1] = bool(trial % 2)
        want = binary_dilation(mask, structure=np.ones((3, 3), bool))
        assert np.array_equal(dilate_square3(mask), want), (trial, shape)


def test_hit_neighbourhoods_are_the_padded_gathers():
    """The radiation-hit finder's neighbourhoods read from the image itself
    (morphology.gather_reflect, window_max) against np.pad and a gather: 5x5 and 3x3
    patches mirrored at every edge (images from 3 px wide, float and bool), and the
    7x7 maximum with -inf beyond the image, NaN inside some windows."""
    from iovolc.hits import _gather, _patches
    from iovolc.morphology import window_max

    rng = np.random.default_rng(2327)
    for trial in range(300):
        shape = (int(rng.integers(3, 60)), int(rng.integers(3, 80)))
        x = rng.normal(size=shape)
        if trial % 5 == 0:
            x[rng.random(shape) < 0.05] = np.nan
        n = int(rng.integers(1, 200))
        rr = rng.integers(0, shape[0], n)
        cc = rng.integers(0, shape[1], n)
        rr[:2], cc[:2] = (0, shape[0] - 1), (shape[1] - 1, 0)  # corners
        for img in (x, x > 0.3):
            for half in (1, 2):
                if min(shape) <= half:
                    continue
                want = _gather(np.pad(img, half, mode="reflect"), rr, cc, half)
                got = _patches(img, rr, cc, half)
                same = (_same_bits(got, want) if img.dtype != bool else
                        got.dtype == want.dtype and np.array_equal(got, want))
                assert same, (trial, half, img.dtype)
        half = 3
        padded = np.pad(x, half, mode="constant", constant_values=-np.inf)
        want = _gather(padded, rr, cc, half).max(axis=1)
        assert _same_bits(window_max(x, rr.astype(np.int64), cc.astype(np.int64), half),
                          want), trial
