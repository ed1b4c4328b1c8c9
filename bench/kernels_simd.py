"""The stop-21 to stop-37 kernels against the forms they replaced, side by side in one run.

Each pair runs alternately on the same input in this process, ``--repeats``
rounds; the best round of each is printed with the ratio, and each pair's
outputs are compared bit for bit (a mismatch stops the bench):

* ray tracing (``iovolc.raytrace``: cosines, backplanes, intercepts, pixel
  rays) against the scalar loops it replaced (``tests/_raytrace_scalar.py``),
  on the rays of a 0.25-px grid over a strip with Io's limb across it
  (the synthetic scene of ``tests/test_speed_equivalence.py``, 9,000 km);
* the compact-feature top-hat (``morphology.compact_tophat``) against the
  minimum over four directions of ``x - line_opening(x)``
  (``tests/_speed_reference.py``), on a 128 x 432 strip;
* the PSF blur (``separable.gaussian_blur_constant``) against
  ``scipy.ndimage.gaussian_filter(mode="constant")``, on a 150 x 460 canvas
  window, sigma 0.7 px;
* the noise map's bilinear zoom (``separable.zoom_linear_nearest``) against
  ``scipy.ndimage.zoom(order=1, mode="nearest", grid_mode=True)``, a 16 x 54
  block grid to a 128 x 432 strip;
* the 15 x 15 median filter (``imaging.median_filter_nearest``) against the
  partial sorts of each window's ranks it replaced
  (``tests/_speed_reference.py``), on a 128 x 216 and a 128 x 432 strip;

and from stop 22:

* the cubic spline prefilter (``separable.spline_filter_cubic``) against
  ``scipy.ndimage.spline_filter(order=3, mode="constant")``, on a limb fit's
  canvas window (150 x 460) and a distant disc's (80 x 80);
* the limb fit's spline values (``compiled.spline_points``) against the
  per-point evaluation it replaced, on a fit's points (row by row);
* the NCC (``imaging.ncc``, transforms that skip zero rows and unused output
  rows) against scipy's whole ``rfft2``/``irfft2``, on a fine-fit canvas
  (144 x 448, the disc in 98 rows) and a coarse one (871 x 256, 46 rows);
* the Minnaert factors (``photometry_canvases`` on ``shading._lit_factors``) and the hot-pixel mask
  (``imaging.hot_pixels``) against their numpy forms.

and from stop 23:

* the radiation-hit finder's ring excess (``morphology.ring_excess``) and 3x3
  dilation of the hits found (``morphology.dilate_square3``) against the
  numpy summed-area form and ``ndimage.binary_dilation``, on a 256 x 432 frame;
* the limb's model sigma (``extract.limb_model_sigma``) and the albedo field's
  nearest-neighbour extension (``extract._nearest_fill``) on the disc's window
  against the whole strip, for a distant disc (10 px radius) and a close one (150 px).

and from stop 27:

* the coarse grid's directions (``registration._from_spin`` on an open grid,
  ``raytrace.spin_grid``) against numpy's broadcast, on a distant pass's grid
  (60 x 200) and a close one's (300 x 300);
* the limb fit's spline values on the fit's own positions (one shift for every
  pixel: the column weights once per fraction) against the per-point evaluation;
* the four exponents' limb fits of one fine pass with the zone's spans taken
  by each fit (the stop-26 form, ``fit_shift`` in ``tests/_speed_reference.py``) and
  once (``compiled.zone_spans``, then
  ``fit_shift_spanned``), on a synthetic strip (20,000 km, shift (0.4, -0.7) px);
* the detection table in one construction (``detections.detection_table``, ``extract._detection_table`` before stop 29)
  against the table built and its five leading columns inserted after, 47 rows
  (compared with ``pandas.testing.assert_frame_equal``, dtypes included);

and from stop 28:

* the photometric fit's choice of canvas (``linefit.clear_choice``) against the
  seven ``lstsq`` fits it replaced (``extract._lstsq_choice``), on a close and a
  distant strip of Io's canvases;
* the compact-feature mask (``morphology.compact_hot``) against the threshold of
  the whole top-hat (``compact_tophat``), on a close and a distant disc;
* ``imaging.box_of``'s compiled scan against numpy's ``any`` along each axis
  (``box_of_any`` in ``tests/_speed_reference.py``), a float canvas and a mask;
* the 15 x 15 median filter with its ranks by the stable sort and by the
  quicksort, on a strip 9 % one fill value.

and from stop 29:

* the limb fit's normal equations summed in scalars (``compiled._fit``) against
  the row-array loop it replaced (``limb_fit_rows`` in ``tests/_speed_reference.py``,
  compiled here as it was), on 465 limb pixels (a fit step's median count);
* the constellation's support counts in one compiled pass
  (``compiled.support_counts``) against numpy's blocks (``pointing._support_numpy``),
  60 and 200 candidate shifts;
* the PSF fit's source windows gathered from the strip (``extract._gather``) against
  the gather from its padded copy (``padded_windows``), 40 peaks on a 128 x 432 strip;
* the publish's alerts with each hotspot's rows indexed once (``publish.alerts.alerts_for``)
  against a boolean mask over the known table per new row (``alerts_for_masks`` in
  ``tests/_alerts_reference.py``), a synthetic catalog of 71 perijoves, the last six new.

and from stop 30: the catalog's rows (``catalog._catalog_rows``) and hotspot summary
(``catalog.summarise``) against their pandas forms; from stop 33: ``catalog.merge_detections``
with every cluster's values at once against the per-cluster loop it replaced
(``tests/_merge_reference.py``), ~66,000 detections in ~3,300 clusters over 71 perijoves;
from stop 34: the peak finder's lone-spike test at the maxima alone
(``extract._lit_neighbour``) against the strip's ``ndimage.maximum_filter``, and the
PSF fit's profiles once per window offset against the fit as it was
(``tests/_extract_reference.py``), 40 sources on a 128 x 432 strip; from stop 35: the
ray cosines with their clamps in a second pass against their one loop of stops 21-34
(``cosines_one_loop`` in ``tests/_raytrace_scalar.py``, the rays of the first pair), and
the median of a strip's 55,296 and a frame's 110,592 values by the bracketed selection
against the radix selection on all of them (``median_radix`` in
``tests/_speed_reference.py``); from stop 36: the coarse registration's strip template
(``registration._strip_template``: the float32 strip blurred by
``separable.gaussian_blur_reflect`` and sampled by ``separable.sample_linear_nearest``)
against its scipy form (``strip_template_scipy`` in ``tests/_speed_reference.py``:
``gaussian_filter``, ``map_coordinates``) on a 128 x 432 strip sampled at 66 x 218 grid
points, binning 2; the radiation-hit offsets' smoothing against ``gaussian_filter`` on a
64 x 216 binned frame, sigma 0.5; and the noise map's 3 x 3 median
(``imaging.median_filter_nearest(x, 3)``) against ``median_filter`` on an 18 x 62 grid;
from stop 37: the disc canvas (``shading._shading``, a fine pass's 144 x 448 canvas, the
limb fit's four exponents) with the numpy steps around its ray tracing
(``shading_numpy`` in ``tests/_speed_reference.py``) against the compiled ones
(``iovolc.supersample``, the constants taken once: ``geometry.DiscRays``), discs of
radius 19, 63 and 190 px (400,000, 120,000 and 40,000 km); the PSF blur's kernel
(``separable.symmetric_blur``, sigma 0.7: seven taps summed per value in registers)
against its loop of tap pairs over whole rows (``symmetric_blur_taps_in_turn`` in
``tests/_speed_reference.py``) on a 150 x 460 window; and the sign of a limb step's
amplitude median (``compiled._median_not_positive``) against ``_median(a) <= 0``, 460
values;
from stop 38: the sliding median's jumps by popcount
(``rank_median.window_medians``) against its walk one set bit at a time
(``window_medians_stepwise`` in ``tests/_speed_reference.py``), on the rank images of
a 128 x 432 strip of noise, of the same strip rounded to ~1,000 levels, of a strip
two-thirds one fill value (stable ranks) and of a ramp, 15 x 15 windows; and the whole
``median_filter_nearest(x, 15)`` of the noise with each walk.

Not the whole chain: ``bench/science_chain.py`` measures that.

Run: ``uv run python bench/kernels_simd.py [--repeats 5]`` (~15 s).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _raytrace_scalar as scalar  # noqa: E402
import _speed_reference as ref  # noqa: E402
from _synthetic import _disc_scene, _scene, _state  # noqa: E402
from scipy.ndimage import (
    binary_dilation,  # noqa: E402
    gaussian_filter,  # noqa: E402
    median_filter,  # noqa: E402
    spline_filter,  # noqa: E402
)
from scipy.ndimage import zoom as scipy_zoom  # noqa: E402

from iovolc import compiled, raytrace  # noqa: E402
from iovolc.geometry import _camera_constants, _trace_constants  # noqa: E402
from iovolc.imaging import LINE_DIRECTIONS, Template, hot_pixels, median_filter_nearest, ncc  # noqa: E402,E501
from iovolc.morphology import compact_tophat  # noqa: E402
from iovolc.registration import _strip_levels, _strip_template  # noqa: E402
from iovolc.separable import (  # noqa: E402
    gaussian_blur_constant,
    gaussian_blur_reflect,
    spline_filter_cubic,
    zoom_linear_nearest,
)


def _best(fn, repeats: int, inner: int) -> float:
    """Best mean seconds per call over ``repeats`` rounds of ``inner`` calls."""
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t) / inner)
    return best


def _pair(name: str, old, new, *, repeats: int, inner: int, unit: str, per: float = 1.0):
    a, b = old(), new()  # compile / warm, and the bit-for-bit check
    for x, y in zip(a, b, strict=True):
        x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
        if not (x.shape == y.shape and x.dtype == y.dtype
                and np.array_equal(x.view(np.uint8), y.view(np.uint8))):
            raise SystemExit(f"{name}: outputs differ")
    t_old = t_new = np.inf
    for _ in range(repeats):  # alternate, so both see the same machine
        t_old = min(t_old, _best(old, 1, inner))
        t_new = min(t_new, _best(new, 1, inner))
    scale = {"ns": 1e9, "us": 1e6, "ms": 1e3}[unit] / per
    print(f"{name:34s} {t_old * scale:10.2f} {t_new * scale:10.2f} {unit:>5s} "
          f"{t_old / t_new:7.1f}x   identical")


def _rays():
    state = _state(9000.0, 40.0, 1.0)
    ll, ss = np.mgrid[-2:130:0.25, -3:436:0.25]
    return (state, ll.ravel(), ss.ravel(), _camera_constants(state, "M"),
            state.camera("M").ifov_rad)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    r = args.repeats
    state, line, samp, consts, ifov = _rays()
    n = line.size
    k = _trace_constants(state)
    u = np.empty((n, 3))
    scalar.pixel_rays(line, samp, consts, u)
    uf = u.reshape(-1)

    def cos_old():
        h, ci, ce = np.empty(n, bool), np.empty(n), np.empty(n)
        scalar.cosines(u, k, h, ci, ce)
        return h, ci, ce

    def cos_new():
        h, ci, ce = np.empty(n, bool), np.empty(n), np.empty(n)
        raytrace.cosines(uf, k, h, ci, ce)
        return h, ci, ce

    hit_frac = cos_old()[0].mean()
    print(f"rays: {n:,} ({100 * hit_frac:.0f} % on the disc); "
          f"best of {r} alternating rounds\n")
    print(f"{'kernel':34s} {'before':>10s} {'now':>10s} {'unit':>5s} {'ratio':>8s}")

    def bp(mod, flat):
        def run():
            h, planes = np.empty(n, bool), np.empty((7, n))
            mod.backplanes(uf if flat else u, k, ifov, h, planes)
            return h, planes
        return run

    def sf(mod, flat):
        def run():
            pt, ob, h, dt = np.empty((n, 3)), np.empty((n, 3)), np.empty(n, bool), np.empty(n)
            mod.surface(uf if flat else u, k, pt.reshape(-1) if flat else pt,
                        ob.reshape(-1) if flat else ob, h, dt)
            return pt, ob, h, dt
        return run

    def pr(flat):
        def run():
            out = np.empty(3 * n) if flat else np.empty((n, 3))
            (raytrace if flat else scalar).pixel_rays(line, samp, consts, out)
            return (out.reshape(-1),)
        return run

    _pair("ray cosines (per ray)", cos_old, cos_new, repeats=r, inner=3, unit="ns", per=n)
    _pair("ray backplanes (per ray)", bp(scalar, False), bp(raytrace, True), repeats=r,
          inner=3, unit="ns", per=n)
    _pair("ray intercepts (per ray)", sf(scalar, False), sf(raytrace, True), repeats=r,
          inner=3, unit="ns", per=n)
    _pair("pixel rays (per ray)", pr(False), pr(True), repeats=r, inner=3, unit="ns", per=n)

    rng = np.random.default_rng(21)
    strip = _scene(rng, 128, 432) + rng.normal(size=(128, 432))
    dirs = np.array(LINE_DIRECTIONS, dtype=np.int64)
    _pair("compact top-hat 128x432", lambda: (ref.compact_tophat_numpy(strip, 9),),
          lambda: (compact_tophat(strip, dirs, 9),), repeats=r, inner=20, unit="ms")
    window = np.zeros((150, 460))
    window[4:146, 4:456] = rng.random((142, 452))
    _pair("PSF blur 150x460", lambda: (gaussian_filter(window, 0.7, mode="constant"),),
          lambda: (gaussian_blur_constant(window, 0.7),), repeats=r, inner=50, unit="us")
    grid = rng.random((16, 54))
    factors = (128 / 16, 432 / 54)
    _pair("noise-map zoom 16x54 -> 128x432",
          lambda: (scipy_zoom(grid, factors, order=1, mode="nearest", grid_mode=True),),
          lambda: (zoom_linear_nearest(grid, factors),), repeats=r, inner=50, unit="us")
    for shape in ((128, 216), (128, 432)):
        img = _scene(rng, *shape) + rng.normal(size=shape)
        img[:, : shape[1] // 3] = 0.37  # a strip's invalid pixels hold one fill value
        _pair(f"median filter 15x15 {shape[0]}x{shape[1]}",
              lambda img=img: (ref.median_filter_partition(img, 15),),
              lambda img=img: (median_filter_nearest(img, 15),), repeats=r, inner=5,
              unit="ms")
    _stop_22(rng, r, state)
    _stop_23(rng, r)
    _stop_27(rng, r)
    _stop_28(rng, r)
    _stop_29(rng, r)
    _stop_30(rng, r)
    _stop_33(rng, r)
    _stop_34(rng, r)
    _stop_35(rng, r)
    _stop_36(rng, r)
    _stop_37(rng, r)
    _stop_38(rng, r)
    return 0


def _spline_pair(name: str, coeffs, shape, rr, cc, r: int, *, inner: int) -> None:
    """The limb fit's spline values at (rr, cc): the per-point evaluation against
    ``compiled.spline_points``, per point."""
    per_point = ref.spline_points_per_point()

    def points(fn):
        def run():
            out = np.empty((5, rr.size))
            fn(coeffs, shape[0], shape[1], rr, cc, out)
            return (out,)
        return run

    _pair(name, points(per_point), points(compiled.spline_points), repeats=r, inner=inner,
          unit="ns", per=rr.size)


def _stop_22(rng, r: int, state) -> None:
    for shape in ((150, 460), (80, 80)):
        canvas = np.zeros(shape)
        canvas[10:-10, 10:-10] = rng.random((shape[0] - 20, shape[1] - 20))
        _pair(f"spline prefilter {shape[0]}x{shape[1]}",
              lambda c=canvas: (spline_filter(c, order=3, mode="constant"),),
              lambda c=canvas: (spline_filter_cubic(c),), repeats=r, inner=20, unit="us")
    n0, n1 = 144, 448
    coeffs = compiled.padded(rng.random((n0, n1)))
    rr = np.repeat(np.arange(10, 130) + 0.37, 60)  # row by row, as the fit passes them
    cc = np.tile(np.linspace(40, 400, 60), 120) - 0.21
    _spline_pair("limb-fit spline values (per point)", coeffs, (n0, n1), rr, cc, r, inner=20)
    for shape, tshape, box in (((144, 448), (128, 432), (20, 118, 30, 400)),
                               ((871, 256), (66, 218), (400, 446, 100, 146))):
        image = np.zeros(shape)
        image[box[0]:box[1], box[2]:box[3]] = rng.random((box[1] - box[0], box[3] - box[2]))
        t = rng.random(tshape)
        _pair(f"NCC {shape[0]}x{shape[1]}, template {tshape[0]}x{tshape[1]}",
              lambda image=image, t=t: (ref.ncc_full_transform(image, t),),
              lambda image=image, t=t: (ncc(image, Template(t)),), repeats=r, inner=10,
              unit="ms")
    ll, ss = np.mgrid[0:144, 0:213]
    from iovolc.geometry import disc_cosines

    hit, cos_i, cos_e = disc_cosines(state, "M", ll, ss)
    exps = (1.0, 0.8, 0.6, 0.0)
    _pair("Minnaert factors 144x213, 4 k",
          lambda: tuple(ref.photometry_numpy(hit, cos_i, cos_e, exps)),
          lambda: tuple(ref.photometry_canvases(hit, cos_i, cos_e, exps)), repeats=r, inner=20, unit="us")
    strip = (_scene(rng, 128, 432) + rng.normal(size=(128, 432))).astype(np.float32)
    for _ in range(6):
        strip[rng.integers(0, 128), rng.integers(0, 432)] += 200.0
    valid = rng.random(strip.shape) > 0.05
    _pair("hot-pixel mask 128x432", lambda: (ref.hot_pixels_numpy(strip, valid),),
          lambda: (hot_pixels(strip, valid),), repeats=r, inner=20, unit="us")


def _stop_23(rng, r: int) -> None:
    from iovolc.extract import LIMB_SHIFT_FLOOR_PX, _nearest_fill, limb_model_sigma
    from iovolc.hits import _ring_mean_excess
    from iovolc.morphology import dilate_square3

    def limb_model_sigma_whole(b, s):
        return ref.limb_model_sigma_whole(b, s, pointing_sigma_px=0.4,
                                          floor_px=LIMB_SHIFT_FLOOR_PX)

    frame = _scene(rng, 256, 432) + rng.normal(size=(256, 432))
    _pair("hit ring excess 256x432", lambda: (ref.ring_mean_excess_numpy(frame),),
          lambda: (_ring_mean_excess(frame),), repeats=r, inner=20, unit="us")
    found = rng.random(frame.shape) < 0.0005
    _pair("hit 3x3 dilation 256x432",
          lambda: (binary_dilation(found, structure=np.ones((3, 3), bool)),),
          lambda: (dilate_square3(found),), repeats=r, inner=50, unit="us")
    for what, radius in (("distant", 10.0), ("filled", 150.0)):
        shading, bg = _disc_scene(rng, (128, 432), centre=(64.0, 216.0), radius_px=radius)
        _pair(f"limb sigma 128x432, {what}",
              lambda s=shading, b=bg: (limb_model_sigma_whole(b, s),),
              lambda s=shading, b=bg: (limb_model_sigma(b, s, pointing_sigma_px=0.4),),
              repeats=r, inner=20, unit="us")
        lit = shading > 0.2 * shading.max()
        ratio = np.where(lit, rng.normal(1.0, 0.1, shading.shape), np.nan)
        far = ~np.isfinite(ratio)
        _pair(f"albedo fill 128x432, {what}",
              lambda s=shading, x=ratio: (ref.albedo_term_whole(np.zeros(s.shape), x, s),),
              lambda s=shading, x=ratio, f=far: (
                  np.zeros(s.shape) + np.nan_to_num(_nearest_fill(x, f, s)) * s,),
              repeats=r, inner=20, unit="us")


def _stop_27(rng, r: int) -> None:
    import pandas as pd

    from iovolc.detections import DETECTION_COLUMNS
    from iovolc.detections import detection_table as _detection_table
    from iovolc.registration import (
        FIT_EXPONENTS,
        _from_spin,
        _limb_zones,
        _spin_basis,
        _stacked_coefficients,
        _strip_levels,
    )
    from iovolc.shading import predicted_shading

    basis = _spin_basis(np.array([0.05, 0.99, 0.1]))
    for n, m in ((60, 200), (300, 300)):
        phi = (0.01 + 2e-4 * np.arange(n))[:, None]
        psi = (-0.02 + 2e-4 * np.arange(m))[None, :]
        _pair(f"coarse grid directions {n}x{m}",
              lambda phi=phi, psi=psi: (ref.from_spin_numpy(phi, psi, basis),),
              lambda phi=phi, psi=psi: (_from_spin(phi, psi, basis),), repeats=r, inner=20,
              unit="us")
    n0, n1, s_px = 144, 448, 8
    coeffs = compiled.padded(rng.random((n0, n1)))
    rows, cols = np.arange(128), np.arange(432)
    rr = np.repeat((rows + s_px) - 0.37, cols.size)  # the fit's positions: one shift
    cc = np.tile((cols + s_px) - (-0.21), rows.size)
    _spline_pair("spline values, the fit's positions", coeffs, (n0, n1), rr, cc, r, inner=5)
    state = _state(20000.0, 64.0, 0.8)
    stack, limb = predicted_shading(state, "M", line0=-s_px, line1=128 + s_px, samp0=-s_px,
                                    samp1=432 + s_px, psf_sigma_px=0.7,
                                    exponents=FIT_EXPONENTS)
    truth = gaussian_filter(np.roll(stack[1], (0, -1), axis=(0, 1)), 0.3)
    img = 3.0 * truth[s_px:-s_px, s_px:-s_px] + 0.02 + rng.normal(scale=0.01, size=(128, 432))
    ok = np.ones(img.shape, bool)
    fitted = _limb_zones({"M": (img, ok)}, {"M": (stack, limb)},
                         levels={"M": _strip_levels(img, ok)})
    _, shapes, zones, _, _, usable, imgs = fitted
    stacks = [_stacked_coefficients([stack[k]]) for k in range(len(FIT_EXPONENTS))]
    def fits_spans_each():  # stop 26: each exponent's fit took the spans itself
        return tuple(np.array(ref.fit_shift(c, shapes, zones, usable, imgs, s_px, 0.0,
                                                 1.0, 8)) for c in stacks)

    def fits_spans_once():  # stop 27: once per pass, as _limb_zones does
        spans = compiled.zone_spans(shapes, zones, usable)
        return tuple(np.array(compiled.fit_shift_spanned(c, shapes, zones, *spans, usable,
                                                         imgs, s_px, 0.0, 1.0, 8))
                     for c in stacks)

    _pair("limb fits of a pass (4 exponents)", fits_spans_each, fits_spans_once,
          repeats=r, inner=10, unit="us")
    lead = {"product_id": "JIR_IMG_RDR_2023365T120000_V01", "perijove": 57,
            "et_mid": 757166469.18, "utc": "2023-12-30T12:00:00.000", "sequence": "JIR_X"}
    rows_ = [{**{c: float(rng.normal()) for c in DETECTION_COLUMNS}, "band": "M",
              "n_pixels": 9, "flags": 0, "pointing_method": "pass"} for _ in range(47)]
    pd.testing.assert_frame_equal(_detection_table(rows_, lead),
                                  ref.detection_table_inserted(rows_, lead), check_exact=True)
    def timed(build):  # the frames are compared above: the pair only times the builds
        def run():
            build(rows_, lead)
            return ()
        return run

    _pair("detection table, 47 rows (frames equal)", timed(ref.detection_table_inserted),
          timed(_detection_table), repeats=r, inner=20, unit="us")



def _stop_28(rng, r: int) -> None:
    from iovolc import imaging
    from iovolc.extract import PHOTOMETRY_EXPONENTS, _lstsq_choice
    from iovolc.imaging import _DIRECTIONS, LINE_OPENING_PX
    from iovolc.linefit import clear_choice
    from iovolc.morphology import compact_hot, compact_tophat
    from iovolc.shading import predicted_shading

    for range_km, name in ((4000.0, "close"), (40000.0, "distant")):
        state = _state(range_km, 64.0, 0.3)
        canvases, _ = predicted_shading(state, "M", line0=0, line1=128, samp0=0, samp1=432,
                                        psf_sigma_px=0.7, exponents=PHOTOMETRY_EXPONENTS)
        lit = np.logical_or.reduce([c > 0 for c in canvases])
        use = imaging.grow(lit, 2) & (rng.random(lit.shape) > 0.02)
        img = 2.5 * canvases[2] + 0.3 + 0.05 * rng.normal(size=lit.shape)
        y = img[use]
        if clear_choice(canvases, use, y) is None:
            raise SystemExit("canvas choice: the closed form deferred on a plain strip")
        _pair(f"canvas choice, {name} ({y.size} px)",
              lambda c=canvases, u=use, y=y: (np.int64(_lstsq_choice(c, u, y)),),
              lambda c=canvases, u=use, y=y: (np.int64(clear_choice(c, u, y)),),
              repeats=r, inner=10, unit="us")
    for range_km, name in ((4000.0, "close"), (40000.0, "distant")):
        state = _state(range_km, 64.0, 0.3)
        disc = predicted_shading(state, "M", line0=0, line1=128, samp0=0, samp1=432,
                                 psf_sigma_px=0.7)[0]
        x = np.ascontiguousarray(40.0 * disc + _scene(rng, 128, 432, n_src=20))
        valid = rng.random(x.shape) > 0.01
        limit = 6.0 * 1.4826 * float(np.median(np.abs(rng.normal(size=1000))))

        def whole(x=x, valid=valid, limit=limit):
            return (valid & (compact_tophat(x, _DIRECTIONS, LINE_OPENING_PX) > limit),)

        def mask_only(x=x, valid=valid, limit=limit):
            out = np.empty(x.shape, bool)
            compact_hot(x, valid, _DIRECTIONS, LINE_OPENING_PX, limit, out)
            return (out,)

        _pair(f"compact-feature mask, {name} disc", whole, mask_only, repeats=r, inner=20,
              unit="us")
        for img, kind in ((disc, "float"), (disc > 0, "bool")):
            _pair(f"box of a {name} disc ({kind})",
                  lambda img=img: (np.array(_slices(ref.box_of_any(img, 32))),),
                  lambda img=img: (np.array(_slices(imaging.box_of(img, 32))),),
                  repeats=r, inner=200, unit="us")
    strip = _scene(rng, 128, 432, n_src=20) + rng.normal(size=(128, 432))
    strip[:, :40] = 0.37  # a strip's invalid pixels hold one fill value (9 % here)
    _pair("median filter 15x15, quicksort ranks",
          lambda: (median_filter_nearest(strip, 15, plateau=True),),
          lambda: (median_filter_nearest(strip, 15, plateau=False),), repeats=r, inner=5,
          unit="ms")


def _stop_29(rng, r: int) -> None:
    from numba import njit

    from iovolc.extract import _gather, _window_at
    from iovolc.pointing import _support_numpy

    old_fit = njit(cache=False, nogil=True, error_model="numpy")(ref.limb_fit_rows)
    n = 465
    m = np.abs(rng.normal(size=n))
    ln = (rng.uniform(0, 128, n) - 64) / 128.0
    sn = (rng.uniform(0, 432, n) - 216) / 432.0
    data = 3.0 * m * (1 + 0.1 * sn) + 0.02 + rng.normal(scale=0.01, size=n)
    v = rng.random(n) > 0.1
    _pair(f"limb normal equations ({n} px)", lambda: (old_fit(m, ln, sn, data, v),),
          lambda: (compiled._fit(m, ln, sn, data, v),), repeats=r, inner=2000, unit="us")
    for k in (60, 200):
        o = rng.normal(size=(k, 2)) * 5
        tol = rng.uniform(2, 6, k)
        codes = np.unique(rng.integers(0, k // 3, k), return_inverse=True)[1].astype(np.int64)

        def compiled_counts(o=o, tol=tol, codes=codes):
            score, undecided = np.empty(len(o), np.int64), np.empty(len(o), bool)
            compiled.support_counts(o, tol * tol, codes, int(codes.max()) + 1, score, undecided)
            if undecided.any():
                raise SystemExit("support counts: a pair at its tolerance in the bench data")
            return (score,)

        _pair(f"constellation support ({k} shifts)",
              lambda o=o, tol=tol, codes=codes: (_support_numpy(o, tol, codes,
                                                                np.arange(len(o))),),
              compiled_counts, repeats=r, inner=50, unit="us")
    resid = rng.normal(size=(128, 432))
    rows, cols = rng.integers(0, 128, 40), rng.integers(0, 432, 40)
    _pair("source windows (40 peaks)", lambda: (ref.padded_windows(resid, rows, cols, 2),),
          lambda: (_gather(resid, _window_at(resid.shape, rows, cols, 2)),), repeats=r,
          inner=200, unit="us")
    import json

    from _alerts_reference import alerts_for_masks

    from iovolc.publish.alerts import alerts_for
    from iovolc.publish.synthetic import synthetic_catalog

    cat = synthetic_catalog(perijoves=tuple(range(5, 76)), seed=3, outburst=(75, 3000.0)).catalog
    prev = cat[cat["perijove"] < 70]

    def as_bytes(alerts):
        return (np.frombuffer(json.dumps(alerts, sort_keys=True).encode(), np.uint8),)

    _pair(f"publish alerts ({len(cat)} rows)", lambda: as_bytes(alerts_for_masks(prev, cat)),
          lambda: as_bytes(alerts_for(prev, cat)), repeats=max(1, r // 2), inner=1, unit="ms")


def _stop_30(rng, r: int) -> None:
    """link_perijoves' catalog rows: per-row dicts (iterrows) against column takes,
    on a mission-sized cluster table (11,000 clusters of 1,300 hotspots)."""
    import pandas as pd

    from iovolc.catalog import CATALOG_COLUMNS, _catalog_rows, _normalise, summarise

    n, n_hot = 11_000, 1_300
    t0 = rng.uniform(0, 1e8, n)
    cl = pd.DataFrame({
        "hotspot_id": [f"IVC-NEW-{k:04d}" for k in rng.integers(0, n_hot, n)],
        "ref_id": "", "name": rng.choice(["", "Loki Patera", "Pele"], size=n),
        "perijove": rng.integers(5, 76, n), "lat_deg": rng.uniform(-90, 90, n),
        "lon_west_deg": rng.uniform(0, 360, n), "position_weight": rng.uniform(0.1, 9, n),
        "position_uncertainty_km": rng.uniform(1, 40, n), "first_et": t0,
        "last_et": t0 + 10.0, "first_utc": [f"t{k}" for k in range(n)],
        "last_utc": [f"u{k}" for k in range(n)], "bands": "LM", "flags": 0,
        **{c: rng.uniform(1, 9, n) for c in (
            "n_detections", "n_frames", "peak_radiance_w_m2_sr", "power_gw", "power_gw_lo",
            "power_gw_hi", "power_gw_per_um", "power_gw_per_um_l", "temperature_k",
            "temperature_k_lo", "temperature_k_hi", "area_km2", "pixel_scale_km",
            "min_emission_deg", "match_distance_km")}})
    cl[["n_detections", "n_frames"]] = cl[["n_detections", "n_frames"]].astype(np.int64)

    def as_bytes(rows):
        return _normalise(rows, CATALOG_COLUMNS).to_csv().encode()

    if as_bytes(ref.catalog_rows_iterrows(cl)) != as_bytes(_catalog_rows(cl)):
        raise SystemExit("catalog rows: outputs differ")
    # checked above, as link_perijoves normalises them; timed without that common step
    _pair(f"catalog rows ({n} clusters)", lambda: (ref.catalog_rows_iterrows(cl), ())[1:],
          lambda: (_catalog_rows(cl), ())[1:], repeats=max(1, r // 2), inner=1, unit="ms")
    cat = _normalise(_catalog_rows(cl), CATALOG_COLUMNS)
    _pair(f"summarise ({n_hot} hotspots)",
          lambda: (np.frombuffer(ref.summarise_pandas(cat).to_csv().encode(), np.uint8),),
          lambda: (np.frombuffer(summarise(cat).to_csv().encode(), np.uint8),),
          repeats=max(1, r // 2), inner=1, unit="ms")


def _stop_33(rng, r: int) -> None:
    """merge_detections: the loop of numpy calls per cluster against every cluster at
    once, on a mission-sized table (~1,300 sources over 71 perijoves, ~20 detections
    per cluster: the mission's mix at 3,000 frames)."""
    from _merge_reference import merge_detections_loop
    from test_merge_exact import _detections

    from iovolc.catalog import merge_detections

    det = _detections(rng, n_src=1_300, perijoves=tuple(range(5, 76)), per_cluster=20.0)
    n_cl = len(merge_detections(det))

    def columns(table):  # every column as bytes, for _pair's bit-for-bit check
        return tuple(np.frombuffer(table[c].to_numpy().tobytes(), np.uint8)
                     if table[c].dtype.kind in "fib" else
                     np.frombuffer(repr(table[c].tolist()).encode(), np.uint8)
                     for c in table.columns)

    _pair(f"merge_detections ({len(det)} rows, {n_cl} clusters)",
          lambda: columns(merge_detections_loop(det)), lambda: columns(merge_detections(det)),
          repeats=max(1, r // 2), inner=1, unit="ms")


def _stop_34(rng, r: int) -> None:
    """The peak finder's lone-spike test at the maxima alone against the whole strip's
    maximum filter, and the PSF fit with its profiles taken once per window offset
    against the fit as it was (``tests/_extract_reference.py``), 40 sources on a strip."""
    from _extract_reference import lone_spike_reference, psf_fit_reference
    from test_psf_fit_exact import _scene

    from iovolc.extract import _lit_neighbour, _psf_fit

    img, rows, cols = _scene(rng, (128, 432), 40, 0.7)
    maxima = np.zeros(img.shape, bool)
    maxima[rows, cols] = True
    _pair("lone-spike test, 40 maxima 128x432", lambda: (lone_spike_reference(img, maxima),),
          lambda: (_lit_neighbour(img, maxima),), repeats=r, inner=20, unit="us")
    _pair("PSF fit, 40 sources", lambda: psf_fit_reference(img, rows, cols, sigma_px=0.7),
          lambda: _psf_fit(img, rows, cols, sigma_px=0.7), repeats=r, inner=10, unit="us")


def _stop_35(rng, r: int) -> None:
    """The ray cosines' clamps in a second pass against their one loop (stops 21-34), and
    the median by the bracketed selection against the radix selection on every value."""
    state, line, samp, consts, _ = _rays()
    n = line.size
    k = _trace_constants(state)
    u = np.empty(3 * n)
    raytrace.pixel_rays(line, samp, consts, u)

    def cos(fn):
        def run():
            h, ci, ce = np.empty(n, bool), np.empty(n), np.empty(n)
            fn(u, k, h, ci, ce)
            return h, ci, ce
        return run

    _pair("ray cosines, one loop (per ray)", cos(scalar.cosines_one_loop), cos(raytrace.cosines),
          repeats=r, inner=3, unit="ns", per=n)
    for size in (55296, 110592):
        x = np.abs(rng.normal(size=size)) * 3.0  # a strip's |high-pass| values
        _pair(f"median of {size:,} values", lambda x=x: (np.float64(ref.median_radix(x)),),
              lambda x=x: (np.float64(compiled._median(x)),), repeats=r, inner=10, unit="us")


def _stop_36(rng, r: int) -> None:
    """scipy's reflect-mode blur, order-1 sampling and 3 x 3 median against their compiled
    forms, on the shapes the chain gives them."""
    img = (rng.normal(size=(128, 432)) * 0.02 + 0.3).astype(np.float32)
    img[40:80, 100:160] += np.float32(1.0)
    valid = rng.random(img.shape) > 0.05
    levels = _strip_levels(img, valid)
    ll, ss = np.mgrid[-5:127:2.0, -4:432:2.0]  # a coarse template's grid, 66 x 218
    ll, ss = ll + rng.uniform(-0.3, 0.3, ll.shape), ss + rng.uniform(-0.3, 0.3, ss.shape)
    _pair("strip template (coarse NCC)",
          lambda: (ref.strip_template_scipy(img, ll, ss, 2.0, levels),),
          lambda: (_strip_template(img, ll, ss, 2.0, levels),), repeats=r, inner=10, unit="us")
    y = rng.normal(size=(64, 216))
    _pair("hit offsets' blur, sigma 0.5", lambda: (gaussian_filter(y, 0.5),),
          lambda: (gaussian_blur_reflect(y, 0.5),), repeats=r, inner=20, unit="us")
    med = np.abs(rng.normal(size=(18, 62)))
    _pair("noise map's 3x3 median", lambda: (median_filter(med, size=3, mode="nearest"),),
          lambda: (median_filter_nearest(med, 3),), repeats=r, inner=50, unit="us")


def _stop_37(rng, r: int) -> None:
    """The disc canvas (the limb fit's four exponents on a fine pass's canvas) with its
    numpy steps around the ray tracing (``shading_numpy``) against the compiled ones, a
    distant and a close disc; and the sign of a limb step's amplitude median by the
    selection against one pass."""
    from iovolc.geometry import disc_radius_rad
    from iovolc.registration import FIT_EXPONENTS
    from iovolc.shading import _shading

    for range_km in (400000.0, 120000.0, 40000.0):
        state = _state(range_km, 60.0, 0.6)
        name = f"disc radius {np.tan(disc_radius_rad(state)) / state.camera('M').ifov_rad:.0f} px"
        kw = dict(line0=-8, line1=136, samp0=-8, samp1=440, psf_sigma_px=0.7,
                  exponents=FIT_EXPONENTS)
        _pair(f"disc canvas x4, {name}", lambda s=state, kw=kw: _flat(ref.shading_numpy(
            s, "M", **kw)), lambda s=state, kw=kw: _flat(_shading(s, "M", **kw)),
              repeats=r, inner=20, unit="us")
    from iovolc.separable import gaussian_weights, symmetric_blur

    old_blur, w = ref.symmetric_blur_taps_in_turn(), gaussian_weights(0.7)
    window = np.zeros((150, 460))
    window[4:146, 4:456] = rng.random((142, 452))

    def blur(fn):
        def run():
            out = np.empty_like(window)
            fn(window, w, out)
            return (out,)
        return run

    _pair("PSF blur 150x460, 7 taps", blur(old_blur), blur(symmetric_blur), repeats=r,
          inner=50, unit="us")
    amp = rng.normal(size=460) * 0.1 + 1.0  # a limb step's ~460 amplitudes
    _pair("amplitude median <= 0, 460 values",
          lambda: (np.bool_(compiled._median(amp) <= 0),),
          lambda: (np.bool_(compiled._median_not_positive(amp)),), repeats=r, inner=200,
          unit="us")


def _stop_38(rng, r: int) -> None:
    """The sliding median's popcount jumps against its walk one set bit at a time, on the
    rank images of four kinds of strip, and the whole 15 x 15 filter with each."""
    from iovolc import imaging, rank_median

    noise = rng.normal(5.0, 1.0, (128, 432))
    strips = {"noise": noise, "1,000 levels": np.round(noise * 150.0) / 150.0,
              "2/3 fill": np.where(rng.random(noise.shape) < 0.67, 5.0, noise),
              "ramp": np.add.outer(np.arange(128.0), np.arange(432.0)) + noise}
    for name, x in strips.items():
        _, _, rank = imaging.edge_ranks(x, 7, plateau=name == "2/3 fill")

        def walk(fn, rank=rank):
            def run():
                out = np.empty((128, 432), rank.dtype)
                fn(rank, 15, out)
                return (out,)
            return run

        _pair(f"window medians 15x15, {name}", walk(ref.window_medians_stepwise),
              walk(rank_median.window_medians), repeats=r, inner=5, unit="us")
    x = strips["noise"]

    def filter_stepwise():  # median_filter_nearest's steps, with the old walk
        flat, order, rank = imaging.edge_ranks(x, 7, plateau=False)
        out = np.empty(x.shape, rank.dtype)
        ref.window_medians_stepwise(rank, 15, out)
        return (flat[order][out],)

    _pair("median filter 15x15, noise", filter_stepwise,
          lambda: (median_filter_nearest(x, 15, plateau=False),), repeats=r, inner=5,
          unit="us")


def _flat(canvases_limb) -> tuple:
    canvases, limb = canvases_limb
    return (*canvases, limb)


def _slices(box) -> tuple:
    """A box of slices as a tuple of ints, for the bit-for-bit check (None: ())."""
    return () if box is None else tuple(v for sl in box for v in (sl.start, sl.stop))


if __name__ == "__main__":
    sys.exit(main())
