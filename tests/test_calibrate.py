"""Calibration (iovolc.calibrate) against the simulator's truth.

Each seed simulates its own small PJ57 downlink (module-scoped). Pixel arrays
are read straight from the archive with numpy (RDR '<f4', EDR '<i2').
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi
from scipy.special import erf

from iovolc import calibrate as cal
from iovolc import jiram
from iovolc.sim import render

SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Downlink:
    root: Path
    frames: pd.DataFrame
    hits: pd.DataFrame
    sources: pd.DataFrame

    def _read(self, product_id: str, dtype: str, lines: int) -> np.ndarray:
        (path,) = self.root.glob(f"archive/*/DATA/{product_id}.IMG")
        return np.fromfile(path, dtype=dtype).reshape(lines, jiram.N_SAMPLES)

    def rdr(self, row) -> np.ndarray:
        return self._read(row.product_id, "<f4", int(row.lines))

    def edr(self, row) -> np.ndarray:
        return self._read(row.edr_product_id, "<i2", int(row.lines))

    def sequences(self):
        """(frames of one sequence in time order, RDR stack)."""
        for _, g in self.frames.groupby(["perijove", "sequence"]):
            g = g.sort_values("et_mid")
            yield g, np.stack([self.rdr(r) for r in g.itertuples()])


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed{s}" for s in SEEDS])
def downlink(request, tmp_path_factory) -> Downlink:
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    seed = request.param
    out = tmp_path_factory.mktemp(f"cal57_seed{seed}")
    simulate(scenario_for([57], seed=seed, frames_per_pass=24), out_dir=out, seed=seed)
    truth = out / "truth"
    return Downlink(
        root=out,
        frames=pd.read_csv(truth / "frames.csv"),
        hits=pd.read_csv(truth / "radiation_hits.csv"),
        sources=pd.read_csv(truth / "source_pixels.csv"),
    )


# --- EDR -> radiance ----------------------------------------------------------------


def test_edr_to_radiance_equals_rdr_in_the_downlink(downlink):
    seen = set()
    for row in downlink.frames.itertuples():
        rad = cal.edr_to_radiance(downlink.edr(row), mode=row.mode,
                                  exposure_s=row.exposure_ms / 1000.0)
        assert rad.dtype == np.float32
        np.testing.assert_array_equal(rad, downlink.rdr(row))
        seen.add((row.mode, row.exposure_ms))
    assert {m for m, _ in seen} == {"I1", "I2"}


@pytest.mark.parametrize("mode", ["I1", "I2", "I3"])
@pytest.mark.parametrize("exposure_ms", [1, 2, 3])
def test_edr_to_radiance_equals_simulator_rdr(mode, exposure_ms):
    """The simulator's detector (with hits, saturation, ADC) for every dark."""
    rng = np.random.default_rng([exposure_ms, len(mode)])
    lines = jiram.mode_lines(mode)
    sat = jiram.saturation_radiance(exposure_ms / 1000.0)
    scene = rng.uniform(0.0, 1.2 * sat, (lines, jiram.N_SAMPLES))
    hits = render.radiation_hits(rng, n_rows=lines, mean_count=30)
    edr, rdr = render.expose(scene, mode=mode, exposure_ms=exposure_ms, rng=rng,
                             dark_full=jiram.load_dark_dn(exposure_ms), hits=hits)
    rad = cal.edr_to_radiance(edr, mode=mode, exposure_s=exposure_ms / 1000.0)
    np.testing.assert_array_equal(rad, rdr)
    # an explicit full-frame dark gives the same
    rad2 = cal.edr_to_radiance(edr, mode=mode, exposure_s=exposure_ms / 1000.0,
                               dark_dn=jiram.load_dark_dn(exposure_ms))
    np.testing.assert_array_equal(rad2, rdr)


def test_dark_rows_follow_the_mode():
    full = jiram.load_dark_dn(2)
    np.testing.assert_array_equal(cal.dark_for_mode(mode="I1", exposure_s=0.002), full)
    np.testing.assert_array_equal(cal.dark_for_mode(mode="I2", exposure_s=0.002), full[128:])
    np.testing.assert_array_equal(cal.dark_for_mode(mode="I3", exposure_s=0.002), full[:128])


def test_unknown_exposure_raises():
    dn = np.zeros((128, 432), dtype="<i2")
    with pytest.raises(ValueError, match=r"0\.005 s \(5 ms\)"):
        cal.edr_to_radiance(dn, mode="I2", exposure_s=0.005)
    with pytest.raises(ValueError, match="no JIRAM dark"):
        cal.bad_pixel_mask(mode="I2", exposure_s=0.005)
    with pytest.raises(ValueError, match="unknown JIRAM imager mode"):
        cal.edr_to_radiance(dn, mode="I9", exposure_s=0.001)
    with pytest.raises(ValueError, match="128 x 432"):
        cal.edr_to_radiance(np.zeros((256, 432)), mode="I2", exposure_s=0.001)


# --- bad pixels and saturation ------------------------------------------------------------


@pytest.mark.parametrize("exposure_ms", [1, 2, 3])
def test_bad_pixel_mask_from_the_real_dark(exposure_ms):
    dark = jiram.load_dark_dn(exposure_ms)
    full = cal.bad_pixel_mask(mode="I1", exposure_s=exposure_ms / 1000.0)
    assert full.shape == (256, 432) and full.dtype == bool
    assert 10 <= full.sum() <= 200  # a few dozen hot pixels, not a pattern
    assert full[dark >= 0.9 * jiram.ADC_FULL_SCALE_DN].all()  # no headroom left
    med = np.median(dark)
    assert not full[np.abs(dark - med) < 10 * np.median(np.abs(dark - med))].any()
    np.testing.assert_array_equal(cal.bad_pixel_mask(mode="I2", exposure_s=exposure_ms / 1e3),
                                  full[128:])
    np.testing.assert_array_equal(cal.bad_pixel_mask(mode="I3", exposure_s=exposure_ms / 1e3),
                                  full[:128])


@pytest.mark.parametrize("exposure_ms", [1, 2, 3])
def test_saturation_mask_catches_the_full_well(exposure_ms):
    exposure_s = exposure_ms / 1000.0
    rng = np.random.default_rng(exposure_ms)
    sat = jiram.saturation_radiance(exposure_s)
    scene = rng.uniform(0.0, 2.0 * sat, (128, jiram.N_SAMPLES))
    edr, rdr = render.expose(scene, mode="I2", exposure_ms=exposure_ms, rng=rng,
                             dark_full=jiram.load_dark_dn(exposure_ms), hits=[])
    mask = cal.saturation_mask(rdr, exposure_s=exposure_s, dn=edr)
    bad = cal.bad_pixel_mask(mode="I2", exposure_s=exposure_s)
    ok = ~bad
    assert mask[(scene >= 1.001 * sat) & ok].all()  # every pixel clipped at the full well
    # nothing clearly below it, unless a high dark took the raw DN to the ADC ceiling first
    below = (scene < 0.95 * sat) & ok
    assert not mask[below & (edr < jiram.ADC_FULL_SCALE_DN)].any()
    # the ADC ceiling alone also counts (e.g. a hot pixel with no headroom)
    dn = np.zeros_like(edr)
    dn[3, 4] = jiram.ADC_FULL_SCALE_DN
    m2 = cal.saturation_mask(np.zeros(edr.shape, np.float32), exposure_s=exposure_s, dn=dn)
    assert m2.sum() == 1 and m2[3, 4]


def test_saturated_sources_are_flagged_saturated(downlink):
    src = downlink.sources[downlink.sources["saturated"]]
    src = src.merge(downlink.frames[["product_id", "lines", "exposure_ms"]], on="product_id")
    for s in src.itertuples():
        mask = cal.saturation_mask(downlink.rdr(s), exposure_s=s.exposure_ms / 1000.0)
        r, c = int(round(s.line)), int(round(s.sample))
        assert mask[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].any()


# --- radiation hits against the truth --------------------------------------------------


def _pixel_fraction(offset, sigma):
    k = 1.0 / (np.sqrt(2.0) * sigma)
    return 0.5 * (erf((0.5 - offset) * k) - erf((-0.5 - offset) * k))


@dataclass(frozen=True)
class HitScore:
    n_hits: int
    n_hits_found: int
    n_sources: int
    n_sources_flagged: int
    n_saturated_sources: int
    n_saturated_flagged: int
    n_false: int
    n_pixels: int

    @property
    def recall(self) -> float:
        return self.n_hits_found / self.n_hits

    @property
    def source_flag_rate(self) -> float:
        return self.n_sources_flagged / self.n_sources

    @property
    def false_rate(self) -> float:
        return self.n_false / self.n_pixels


def score_hits(downlink: Downlink, *, frames_per_call: int = 99) -> HitScore:
    """Detect hits sequence by sequence (in chunks of ``frames_per_call``)."""
    n = dict(hits=0, found=0, src=0, src_flag=0, sat=0, sat_flag=0, false=0, pix=0)
    for g, stack in downlink.sequences():
        masks = np.concatenate([
            cal.detect_radiation_hits(stack[a:a + frames_per_call]).reshape(-1, *stack.shape[1:])
            for a in range(0, len(stack), frames_per_call)
        ])
        for k, row in enumerate(g.itertuples()):
            mask, x = masks[k], stack[k].astype(np.float64)
            lines = x.shape[0]
            factor = jiram.dn_per_radiance(row.exposure_ms / 1000.0)
            hits = downlink.hits[downlink.hits.product_id == row.product_id]
            truth = np.zeros(mask.shape, bool)
            truth[hits.line, hits["sample"]] = True
            near_hit = ndi.binary_dilation(truth, np.ones((3, 3), bool))
            big = hits[hits.dn >= 150]
            n["hits"] += len(big)
            n["found"] += int(mask[big.line, big["sample"]].sum())
            n["false"] += int((mask & ~near_hit).sum())
            n["pix"] += mask.size
            # sources clearly detectable: expected peak SNR > 10
            src = downlink.sources[downlink.sources.product_id == row.product_id]
            r = np.round(src.line.to_numpy())
            c = np.round(src["sample"].to_numpy())
            sig_px = src.psf_sigma_px.to_numpy()
            peak_dn = (src.radiance_sum_w_m2_sr.to_numpy() * factor
                       * _pixel_fraction(src.line.to_numpy() - r, sig_px)
                       * _pixel_fraction(src["sample"].to_numpy() - c, sig_px))
            peak_dn = np.minimum(peak_dn, jiram.saturation_radiance(row.exposure_ms / 1e3) * factor)
            hp = x - 0.25 * (np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1)
                             + np.roll(x, -1, 1))
            noise_dn = 1.4826 * np.median(np.abs(hp)) / np.sqrt(1.25) * factor
            snr = peak_dn / np.sqrt(noise_dn**2 + peak_dn / render.GAIN_E_PER_DN)
            inside = (r >= 0) & (r < lines) & (c >= 0) & (c < jiram.N_SAMPLES)
            keep = inside & (snr > 10)
            r, c = r[keep].astype(int), c[keep].astype(int)
            clean = ~near_hit[r, c]  # a hit on the source itself is a hit
            flagged = mask[r, c] & clean
            satd = src["saturated"].to_numpy()[keep] & clean
            n["src"] += int(clean.sum())
            n["src_flag"] += int(flagged.sum())
            n["sat"] += int(satd.sum())
            n["sat_flag"] += int((flagged & satd).sum())
    return HitScore(n["hits"], n["found"], n["src"], n["src_flag"], n["sat"], n["sat_flag"],
                    n["false"], n["pix"])


def test_radiation_hits_in_sequences(downlink):
    s = score_hits(downlink)
    print(f"sequences: {s}")
    assert s.n_hits > 300 and s.n_sources > 300 and s.n_saturated_sources > 0
    assert s.recall >= 0.90, s
    assert s.source_flag_rate <= 0.01, s
    assert s.n_saturated_flagged == 0, s
    assert s.false_rate < 5e-4, s


def test_radiation_hits_single_frames(downlink):
    """Criterion (a) alone: every frame on its own."""
    s = score_hits(downlink, frames_per_call=1)
    print(f"single frames: {s}")
    assert s.recall >= 0.90, s
    assert s.source_flag_rate <= 0.01, s
    assert s.n_saturated_flagged == 0, s
    assert s.false_rate < 5e-4, s


def test_radiation_hits_pairs_of_frames(downlink):
    s = score_hits(downlink, frames_per_call=2)
    assert s.recall >= 0.90, s
    assert s.source_flag_rate <= 0.01, s
    assert s.false_rate < 5e-4, s


def test_offsets_given_or_estimated(downlink):
    g, stack = next(iter(downlink.sequences()))
    est = cal.estimate_offsets(stack)
    assert est.shape == (len(stack), 2) and (est[0] == 0).all()
    assert np.abs(est).max() <= 12
    a = cal.detect_radiation_hits(stack)
    b = cal.detect_radiation_hits(stack, offsets=est.astype(float) + 0.2)
    np.testing.assert_array_equal(a, b)


# --- synthetic scenes ---------------------------------------------------------------


def _gaussian(shape, line, sample, total, sigma=0.7):
    img = np.zeros(shape)
    render._add_gaussian(img, line, sample, total, sigma)
    return img


#: (line, sample, pixel-summed signal): bright, saturated, on the limb, faint on the disc
_SOURCES = ((30.3, 120.6, 400.0), (90.5, 150.5, 3000.0), (64.2, 88.7, 800.0),
            (100.0, 60.0, 150.0))
_HITS = ((10, 20), (20, 180), (60, 30), (110, 100), (75, 130), (45, 60))
_STREAK = ((40, 160), (41, 161), (41, 162), (42, 163), (43, 164))


def _synthetic(seed=0, n=4, shift=(0, 0)):
    """A lit disc with a limb, point sources (one saturated), hits and a
    streak; read noise 1 plus shot noise. Frame k is shifted by k * shift."""
    rng = np.random.default_rng(seed)
    shape = (128, 200)
    yy, xx = np.indices(shape, dtype=float)
    frames, hit_masks = [], []
    for k in range(n):
        dl, ds = k * shift[0], k * shift[1]
        img = ndi.gaussian_filter(200.0 * (np.hypot(yy - 64 - dl, xx - 40 - ds) < 50), 0.7)
        for line, sample, total in _SOURCES:
            img += _gaussian(shape, line + dl, sample + ds, total)
        img = np.minimum(img, 600.0)  # the 3000 source saturates
        img += rng.normal(0, 1, shape) * np.sqrt(1 + np.maximum(img, 0) / 10)
        hits = np.zeros(shape, bool)
        for r, c in _HITS:
            r, c = r + 3 * k, c - 2 * k  # hits never repeat
            img[r, c] += 300.0
            hits[r, c] = True
        for j, (r, c) in enumerate(_STREAK):
            img[r - 5 * k, c] += 250.0 * (1 - 0.1 * j)
            hits[r - 5 * k, c] = True
        frames.append(img)
        hit_masks.append(hits)
    return np.stack(frames), np.stack(hit_masks)


def _source_pixels(k=0, shift=(0, 0)):
    dl, ds = k * shift[0], k * shift[1]
    return [(int(round(line + dl)), int(round(sample + ds))) for line, sample, _ in _SOURCES]


@pytest.mark.parametrize("n_frames", [1, 2, 4])
def test_synthetic_hits_streaks_and_sources(n_frames):
    stack, truth = _synthetic(n=n_frames, shift=(1, 2))
    mask = cal.detect_radiation_hits(stack)
    assert mask.shape == stack.shape
    assert mask[truth].mean() >= 0.9
    # sources (bright, saturated, on the limb) are never flagged around their centre
    for k in range(n_frames):
        for r, c in _source_pixels(k, shift=(1, 2)):
            assert not mask[k, r - 1:r + 2, c - 1:c + 2].any()
    near = ndi.binary_dilation(truth, np.ones((1, 3, 3), bool))
    assert (mask & ~near).sum() <= 2


def test_single_frame_api_and_valid_mask():
    stack, truth = _synthetic(n=1)
    frame = stack[0]
    m2d = cal.detect_radiation_hits(frame)
    assert m2d.shape == frame.shape
    np.testing.assert_array_equal(m2d, cal.detect_radiation_hits(stack)[0])
    # pixels declared invalid are never flagged
    valid = ~truth[0]
    m = cal.detect_radiation_hits(frame, valid=valid)
    assert not m[truth[0]].any()
    with pytest.raises(ValueError):
        cal.detect_radiation_hits(np.zeros(5))


def test_psf_bounds():
    s2, m48 = cal.psf_sharpness_bounds(0.7)
    assert 0.15 < s2 < 0.2 and 0.09 < m48 < 0.13
    wide = cal.psf_sharpness_bounds(1.2)
    assert wide[0] > s2 and wide[1] > m48


def test_noise_sigma_map_follows_shot_noise():
    rng = np.random.default_rng(3)
    level = np.where(np.arange(200)[None, :] < 100, 0.0, 400.0) * np.ones((128, 1))
    sigma_true = np.sqrt(9.0 + level / 4.0)
    img = level + rng.normal(0, 1, level.shape) * sigma_true
    sig = cal.noise_sigma_map(img)
    assert np.allclose(np.median(sig[:, 10:90]), 3.0, rtol=0.15)
    assert np.allclose(np.median(sig[:, 110:190]), np.sqrt(109.0), rtol=0.15)


# --- cleaning and the whole sequence ------------------------------------------------------


def test_clean_frame_replaces_only_flagged_pixels():
    stack, truth = _synthetic(n=1)
    frame = stack[0].astype(np.float32)
    bad = np.zeros(frame.shape, bool)
    bad[50:53, 10:13] = True  # a 3x3 cluster: filled from outside in
    out = cal.clean_frame(frame, truth[0], bad_mask=bad)
    assert out.dtype == np.float32
    keep = ~(truth[0] | bad)
    np.testing.assert_array_equal(out[keep], frame[keep])
    assert np.isfinite(out).all()
    # a cleaned hit pixel is back near its neighbours' median
    r, c = np.argwhere(truth[0])[0]
    neigh = np.delete(frame[r - 1:r + 2, c - 1:c + 2].ravel(), 4)
    assert abs(out[r, c] - np.median(neigh)) < 1.0 + 0.5 * np.ptp(neigh)
    assert out[r, c] < frame[r, c] - 100


def test_calibrate_sequence_edr_and_rdr(downlink):
    g, stack = next(iter(downlink.sequences()))
    row = g.iloc[0]
    exposure_s = row.exposure_ms / 1000.0
    edrs = [downlink.edr(r) for r in g.itertuples()]
    from_edr = cal.calibrate_sequence(edrs, mode=row["mode"], exposure_s=exposure_s, kind="EDR")
    from_rdr = cal.calibrate_sequence(list(stack), mode=row["mode"], exposure_s=exposure_s,
                                      kind="RDR")
    assert len(from_edr) == len(from_rdr) == len(g)
    bad = cal.bad_pixel_mask(mode=row["mode"], exposure_s=exposure_s)
    for a, b, raw in zip(from_edr, from_rdr, stack, strict=True):
        assert isinstance(a, cal.CalibratedFrame)
        assert a.radiance.dtype == np.float32 and a.radiance.shape == raw.shape
        np.testing.assert_array_equal(a.bad, bad)
        np.testing.assert_array_equal(a.replaced, a.hits | a.bad)
        assert not (a.hits & a.saturated).any()
        np.testing.assert_array_equal(a.radiance[~a.replaced], raw[~a.replaced])
        np.testing.assert_array_equal(a.hits & ~b.saturated, b.hits & ~a.saturated)
        np.testing.assert_allclose(a.radiance[~a.saturated], b.radiance[~a.saturated])
    truth = downlink.hits[downlink.hits.product_id.isin(g.product_id) & (downlink.hits.dn >= 150)]
    pid_index = {p: k for k, p in enumerate(g.product_id)}
    found = [from_rdr[pid_index[h.product_id]].replaced[h.line, h.sample]
             for h in truth.itertuples()]
    if found:
        assert np.mean(found) >= 0.9
    with pytest.raises(ValueError, match="kind"):
        cal.calibrate_sequence(edrs, mode=row["mode"], exposure_s=exposure_s, kind="XDR")
