"""Physically modelled JIRAM frames: Io's disc, hotspots, detector.

Radiance model (band radiance, W m-2 sr-1):

* lit disc: Lambertian reflection of a 5772 K blackbody Sun,
  ``albedo * F_band * cos(i) / pi``, albedo varying smoothly over the surface;
* surface thermal emission: blackbody at ``max(95, 125 cos(i)^0.25)`` K;
* hotspots: single-temperature sources of the catalog, pixel-summed radiance
  ``B_band(T) * A * cos(e) / (range * IFOV)^2`` (the published radiance ->
  power relation inverted), spread by a Gaussian PSF (sigma 0.7 px, widened
  by the source's own size when it is resolved);
* the limb is anti-aliased by 4x4 super-sampling of the pixels it crosses;
  the whole scene is blurred by the same PSF.

Detector: radiance -> DN with the published 2000 DN per (W m-2 sr-1) per ms,
saturation (full well) at the published 0.0073/exposure_s W m-2 sr-1, read
and shot noise, a per-frame bias drift, radiation hits (single pixels and
short streaks, not blurred: sharper than the PSF), the real dark frame of
the same exposure, a 14-bit ADC. RDR = (EDR - dark) / factor, float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import erf

from iovolc import jiram, physics
from iovolc.geometry import FrameState, pixel_geometry

PSF_SIGMA_PX = 0.7
ALBEDO = {"L": 0.55, "M": 0.35}
READ_NOISE_DN = 3.0
GAIN_E_PER_DN = 4.0
BIAS_DRIFT_DN = 2.0


@dataclass(frozen=True)
class Sources:
    """Hotspots of one perijove (truth), with body-fixed positions."""

    ref_id: np.ndarray
    name: np.ndarray
    lat_deg: np.ndarray
    lon_west_deg: np.ndarray
    temperature_k: np.ndarray
    area_km2: np.ndarray
    power_gw: np.ndarray
    points_bf: np.ndarray


@dataclass(frozen=True)
class AlbedoPattern:
    """Smooth seeded albedo variation over Io (multiplier around 1)."""

    phases: tuple[float, float, float]

    @classmethod
    def seeded(cls, seed: int) -> AlbedoPattern:
        rng = np.random.default_rng([seed, 11])
        return cls(tuple(float(x) for x in rng.uniform(0, 2 * np.pi, 3)))

    def __call__(self, lat_deg, lon_west_deg):
        lat = np.radians(lat_deg)
        lon = np.radians(lon_west_deg)
        p1, p2, p3 = self.phases
        return (1.0 + 0.2 * np.sin(2 * lon + p1) * np.cos(lat)
                + 0.12 * np.sin(3 * lat + p2) + 0.08 * np.cos(5 * lon + 2 * lat + p3))


_T_GRID = np.linspace(90.0, 130.0, 401)


@lru_cache(maxsize=2)
def _thermal_table(band: str) -> np.ndarray:
    return np.asarray(physics.band_radiance(band, _T_GRID))


def _background(geom, band: str, *, solar_irradiance: float, albedo: AlbedoPattern):
    """Band radiance of Io's surface for a PixelGeometry (0 off the disc)."""
    mu0 = np.cos(np.radians(np.nan_to_num(geom.incidence_deg, nan=180.0)))
    lit = np.clip(mu0, 0.0, None)
    refl = ALBEDO[band] * albedo(geom.lat_deg, geom.lon_west_deg) * solar_irradiance * lit / np.pi
    t_surf = np.maximum(95.0, 125.0 * lit**0.25)
    therm = np.interp(t_surf, _T_GRID, _thermal_table(band))
    out = np.where(geom.on_disc, np.nan_to_num(refl) + therm, 0.0)
    return out


def _band_of_rows(mode: str, n_rows: int) -> np.ndarray:
    bands = np.empty(n_rows, dtype="<U1")
    for band, sl in jiram.band_rows(mode).items():
        bands[sl] = band
    return bands


def render_radiance(
    state: FrameState,
    *,
    mode: str,
    sources: Sources,
    sun_distance_km: float,
    albedo: AlbedoPattern,
    psf_sigma_px: float = PSF_SIGMA_PX,
):
    """Noise-free band radiance image of one frame and the sources drawn in it.

    Returns ``(image, drawn)`` with ``image`` shaped (lines, 432) and
    ``drawn`` a list of dicts (frame-local line/sample of the source centre,
    band, pixel-summed radiance, emission angle, range, pixel scale).
    """
    n_rows = jiram.mode_lines(mode)
    rows_band = _band_of_rows(mode, n_rows)
    image = np.zeros((n_rows, jiram.N_SAMPLES))
    irr = {b: physics.solar_band_irradiance(b, sun_distance_km=sun_distance_km) for b in "LM"}

    # Io's apparent disc: bounding box around the projected centre
    cl, cs, _ = state.project_points(np.zeros((1, 3)))
    rng_km = float(np.linalg.norm(state.io_pos))
    ang_r = np.arcsin(min(1.0, state.radii_km.max() / rng_km))
    r_px = np.tan(ang_r) / jiram.IFOV_RAD + 4
    row0 = float(jiram.frame_to_detector_line(mode, 0))
    if np.isfinite(cl[0]):
        lo_r = int(max(0, np.floor(cl[0] - row0 - r_px)))
        hi_r = int(min(n_rows, np.ceil(cl[0] - row0 + r_px) + 1))
        lo_s = int(max(0, np.floor(cs[0] - r_px)))
        hi_s = int(min(jiram.N_SAMPLES, np.ceil(cs[0] + r_px) + 1))
    else:
        lo_r = hi_r = lo_s = hi_s = 0
    if ang_r > 0.2:  # very close: the disc may fill the frame; compute all
        lo_r, hi_r, lo_s, hi_s = 0, n_rows, 0, jiram.N_SAMPLES

    if hi_r > lo_r and hi_s > lo_s:
        rr, ss = np.mgrid[lo_r:hi_r, lo_s:hi_s]
        geom = pixel_geometry(state, rr + row0, ss)
        bands = rows_band[rr]
        bg = np.zeros(rr.shape)
        for b in "LM":
            sel = bands == b
            if sel.any():
                bg[sel] = _background(_sub(geom, sel), b, solar_irradiance=irr[b],
                                      albedo=albedo)
        # anti-alias the limb: super-sample pixels whose 3x3 neighbourhood straddles it
        hit = geom.on_disc
        pad = np.pad(hit, 1, mode="edge")
        neigh_any = np.zeros_like(hit)
        neigh_all = np.ones_like(hit)
        for dr in (0, 1, 2):
            for dc in (0, 1, 2):
                win = pad[dr:dr + hit.shape[0], dc:dc + hit.shape[1]]
                neigh_any |= win
                neigh_all &= win
        edge = neigh_any & ~neigh_all
        if edge.any():
            er, es = rr[edge], ss[edge]
            k = 4
            off = (np.arange(k) + 0.5) / k - 0.5
            dr, ds = np.meshgrid(off, off, indexing="ij")
            sub_r = er[:, None] + dr.ravel()[None, :]
            sub_s = es[:, None] + ds.ravel()[None, :]
            g2 = pixel_geometry(state, sub_r + row0, sub_s)
            sub_bg = np.zeros(sub_r.shape)
            eb = rows_band[er]
            for b in "LM":
                sel = np.broadcast_to((eb == b)[:, None], sub_r.shape)
                if sel.any():
                    sub_bg[sel] = _background(_sub(g2, sel), b, solar_irradiance=irr[b],
                                              albedo=albedo)
            bg[edge] = sub_bg.mean(axis=1)
        image[lo_r:hi_r, lo_s:hi_s] = bg
    if psf_sigma_px > 0:
        image = gaussian_filter(image, psf_sigma_px, mode="constant")

    drawn = _draw_sources(image, state, mode=mode, rows_band=rows_band, row0=row0,
                          sources=sources, psf_sigma_px=psf_sigma_px)
    return image, drawn


def _sub(geom, sel):
    return type(geom)(**{k: getattr(geom, k)[sel] for k in geom.__dataclass_fields__})


def _draw_sources(image, state, *, mode, rows_band, row0, sources, psf_sigma_px):
    n_rows = image.shape[0]
    if sources.points_bf.shape[0] == 0:
        return []
    proj = state.project_points_full(sources.points_bf)
    line = proj["line_det"] - row0
    sample = proj["sample"]
    inside = (proj["visible"] & (line > -4) & (line < n_rows + 3) & (sample > -4)
              & (sample < jiram.N_SAMPLES + 3))
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return []
    rows = np.clip(np.round(line[idx]), 0, n_rows - 1).astype(int)
    band = rows_band[rows]
    e = proj["emission_deg"][idx]
    rng_km = proj["range_km"][idx]
    pix_km = rng_km * jiram.IFOV_RAD
    t_k = sources.temperature_k[idx]
    b_rad = np.where(band == "L", physics.band_radiance("L", t_k), physics.band_radiance("M", t_k))
    l_sum = b_rad * sources.area_km2[idx] * np.cos(np.radians(e)) / pix_km**2
    # resolved sources: widen the PSF by the source's own extent
    r_src_px = np.sqrt(sources.area_km2[idx] / np.pi) / pix_km
    sigma = np.hypot(psf_sigma_px, 0.5 * r_src_px)
    drawn = []
    for k, i in enumerate(idx):
        _add_gaussian(image, line[i], sample[i], l_sum[k], sigma[k])
        drawn.append({
            "ref_id": str(sources.ref_id[i]), "band": str(band[k]),
            "line": float(line[i]), "sample": float(sample[i]),
            "radiance_sum_w_m2_sr": float(l_sum[k]), "emission_deg": float(e[k]),
            "range_km": float(rng_km[k]), "pixel_scale_km": float(pix_km[k]),
            "psf_sigma_px": float(sigma[k]),
        })
    return drawn


def _add_gaussian(image, line, sample, total, sigma):
    """Add a pixel-integrated 2-D Gaussian of integral ``total``."""
    half = int(np.ceil(4 * sigma)) + 1
    r0, r1 = int(np.floor(line)) - half, int(np.floor(line)) + half + 1
    s0, s1 = int(np.floor(sample)) - half, int(np.floor(sample)) + half + 1
    r0c, r1c = max(r0, 0), min(r1, image.shape[0])
    s0c, s1c = max(s0, 0), min(s1, image.shape[1])
    if r1c <= r0c or s1c <= s0c:
        return
    k = 1.0 / (np.sqrt(2) * sigma)
    re = np.arange(r0c, r1c + 1) - 0.5
    se = np.arange(s0c, s1c + 1) - 0.5
    fr = np.diff(0.5 * erf((re - line) * k))
    fs = np.diff(0.5 * erf((se - sample) * k))
    image[r0c:r1c, s0c:s1c] += total * np.outer(fr, fs)


def radiation_hits(rng: np.random.Generator, *, n_rows: int, mean_count: float):
    """Random radiation hits: list of (line, sample, dn) pixels and hit ids."""
    n = rng.poisson(mean_count)
    pixels = []
    for h in range(n):
        amp = float(rng.lognormal(np.log(400.0), 0.9))
        r = int(rng.integers(0, n_rows))
        s = int(rng.integers(0, jiram.N_SAMPLES))
        if rng.random() < 0.7:
            pixels.append((h, r, s, amp))
            continue
        length = int(rng.integers(2, 7))
        ang = rng.uniform(0, np.pi)
        seen = set()
        for k in range(length):
            rr = int(round(r + k * np.sin(ang)))
            sc = int(round(s + k * np.cos(ang)))
            if 0 <= rr < n_rows and 0 <= sc < jiram.N_SAMPLES and (rr, sc) not in seen:
                seen.add((rr, sc))
                pixels.append((h, rr, sc, amp * float(rng.uniform(0.5, 1.0))))
    return pixels


def expose(radiance, *, mode: str, exposure_ms: int, rng: np.random.Generator,
           dark_full: np.ndarray, hits: list):
    """Detector: radiance -> raw EDR DN (int16) and RDR radiance (float32)."""
    exposure_s = exposure_ms / 1000.0
    factor = jiram.dn_per_radiance(exposure_s)
    bands = jiram.MODES[mode]
    if len(bands) == 2:
        dark = dark_full
    else:
        first = jiram.BAND_FIRST_LINE[bands[0]]
        dark = dark_full[first:first + jiram.N_LINES_BAND]
    signal = radiance * factor
    noise_sigma = np.sqrt(READ_NOISE_DN**2 + np.clip(signal, 0, None) / GAIN_E_PER_DN)
    signal = signal + rng.normal(0.0, 1.0, signal.shape) * noise_sigma
    for _, r, s, dn in hits:
        signal[r, s] += dn
    full_well = jiram.saturation_radiance(exposure_s) * factor
    signal = np.minimum(signal, full_well)
    raw = dark + rng.normal(0.0, BIAS_DRIFT_DN) + signal
    edr = np.clip(np.round(raw), 0, jiram.ADC_FULL_SCALE_DN).astype(jiram.EDR_DTYPE)
    rdr = ((edr.astype(np.float64) - dark) / factor).astype(jiram.RDR_DTYPE)
    return edr, rdr
