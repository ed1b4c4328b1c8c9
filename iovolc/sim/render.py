"""Noise-free band radiance of one JIRAM frame: Io's disc and its hotspots.

Disc (W m-2 sr-1), from the simulator's own ray caster (:mod:`iovolc.sim.raycast`):

* reflected sunlight, Minnaert law ``A F/pi mu0^k mu^(k-1)`` with k = 0.7
  (deliberately not Lambert), albedo 0.55 (L) / 0.35 (M) times a smooth seeded
  pattern, Sun = 5772 K blackbody (:func:`iovolc.physics.solar_band_irradiance`);
* surface thermal emission: blackbody at ``max(95, 125 mu0^0.25)`` K;
* the limb anti-aliased: pixels whose 3 x 3 neighbourhood straddles it are
  averaged over 4 x 4 sub-rays;
* the PSF: 85 % Gaussian sigma 0.65 px + 15 % Gaussian sigma 1.6 px (core +
  halo, our choice), applied to a frame rendered 6 px wider on every side.

Hotspots: pixel-summed radiance ``B_band(T) A cos(e) / (d IFOV)^2`` -- the
published ``P[GW/um] = L / dlambda pi (d IFOV)^2 / cos(e) / 1e9`` inverted
with ``P = pi B_mean A`` -- spread by the same PSF, pixel-integrated (erf) for
point sources; a source of radius ``r`` (from its area) adds an ellipse of
per-axis variance ``(r/2)^2`` foreshortened by ``cos(e)`` along its tilt,
sampled 5 x 5 per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import erf, erfinv

from iovolc import physics
from iovolc.jiram import N_LINES_BAND, N_SAMPLES
from iovolc.sim import instrument as ins
from iovolc.sim.raycast import IoView

PSF = ((0.85, 0.65), (0.15, 1.6))
MINNAERT_K = 0.7
ALBEDO = {"L": 0.55, "M": 0.35}
PAD = 6
#: a source whose own sky variance stays below this (px^2; radius < ~0.45 px) is drawn
#: as a point with its variance added to the PSF's
RESOLVED_VARIANCE_PX2 = 0.05
_T_GRID = np.linspace(90.0, 140.0, 501)


@lru_cache(maxsize=2)
def _thermal_table(band: str) -> np.ndarray:
    return np.asarray(physics.band_radiance(band, _T_GRID))


@dataclass(frozen=True)
class AlbedoPattern:
    """Smooth seeded albedo multiplier (around 1, +-~35 %) over Io."""

    terms: tuple[tuple[float, float, float, float], ...]

    @classmethod
    def seeded(cls, seed: int) -> AlbedoPattern:
        rng = np.random.default_rng([seed, 11])
        terms = tuple((float(rng.uniform(0.03, 0.1)), float(rng.integers(1, 7)),
                       float(rng.integers(-4, 5)), float(rng.uniform(0, 2 * np.pi)))
                      for _ in range(8))
        return cls(terms)

    def __call__(self, lat_deg, lon_west_deg):
        lat, lon = np.radians(lat_deg), np.radians(lon_west_deg)
        out = np.ones(np.shape(lat))
        for amp, m, n, ph in self.terms:
            out = out + amp * np.sin(m * lon + n * lat + ph) * np.cos(lat)
        return out


@dataclass(frozen=True)
class SourceSet:
    """Active hotspots of one perijove with body-fixed positions."""

    source_id: np.ndarray
    ref_id: np.ndarray
    points_bf: np.ndarray
    normals_bf: np.ndarray
    temperature_k: np.ndarray
    area_km2: np.ndarray


def _surface_radiance(hit, band: str, irradiance: float, albedo: AlbedoPattern) -> np.ndarray:
    mu0 = np.clip(np.cos(np.radians(np.nan_to_num(hit.incidence_deg, nan=180.0))), 0.0, None)
    mu = np.clip(np.cos(np.radians(np.nan_to_num(hit.emission_deg, nan=90.0))), 0.05, None)
    a = ALBEDO[band] * albedo(np.nan_to_num(hit.lat_deg), np.nan_to_num(hit.lon_west_deg))
    refl = a * irradiance / np.pi * mu0**MINNAERT_K * mu ** (MINNAERT_K - 1.0)
    therm = np.interp(np.maximum(95.0, 125.0 * mu0**0.25), _T_GRID, _thermal_table(band))
    return np.where(hit.hit, refl + therm, 0.0)


def _psf(image: np.ndarray) -> np.ndarray:
    return sum(w * gaussian_filter(image, s, mode="nearest") for w, s in PSF)


@dataclass
class StripRender:
    radiance: np.ndarray  # (128, 432)
    disc_pixels: int
    lit_pixels: int

    @property
    def limb(self) -> bool:
        """Both disc and sky in the strip."""
        return 0 < self.disc_pixels < N_LINES_BAND * N_SAMPLES


def render_strip(view: IoView, band: str, band_to_j2000: np.ndarray, *, albedo: AlbedoPattern,
                 irradiance: float) -> StripRender:
    """Disc radiance of one band strip (PSF applied), and its disc statistics."""
    n_l, n_s = N_LINES_BAND + 2 * PAD, N_SAMPLES + 2 * PAD
    out = np.zeros((n_l, n_s))
    box = _disc_box(view, band_to_j2000)
    if box is None:
        return StripRender(np.zeros((N_LINES_BAND, N_SAMPLES)), 0, 0)
    l0, l1, s0, s1 = box
    ll, ss = np.mgrid[l0:l1, s0:s1]
    rays = ins.pixel_to_band(ll - PAD, ss - PAD).reshape(-1, 3) @ band_to_j2000.T
    hit = view.intercept(rays)
    bg = _surface_radiance(hit, band, irradiance, albedo).reshape(ll.shape)
    on = hit.hit.reshape(ll.shape)
    lit = (on & (np.nan_to_num(hit.incidence_deg, nan=180.0).reshape(ll.shape) < 90.0))
    edge = _edges(on)
    if edge.any():
        k = 4
        off = (np.arange(k) + 0.5) / k - 0.5
        dl, ds = (g.ravel() for g in np.meshgrid(off, off, indexing="ij"))
        sub_l = (ll[edge] - PAD)[:, None] + dl[None, :]
        sub_s = (ss[edge] - PAD)[:, None] + ds[None, :]
        sub = view.intercept(ins.pixel_to_band(sub_l, sub_s).reshape(-1, 3) @ band_to_j2000.T)
        bg[edge] = _surface_radiance(sub, band, irradiance, albedo).reshape(sub_l.shape).mean(1)
    out[l0:l1, s0:s1] = bg
    inner = np.zeros((n_l, n_s), dtype=bool)
    inner[PAD:PAD + N_LINES_BAND, PAD:PAD + N_SAMPLES] = True
    inner_box = inner[l0:l1, s0:s1]
    return StripRender(_psf(out)[PAD:PAD + N_LINES_BAND, PAD:PAD + N_SAMPLES],
                       int((on & inner_box).sum()), int((lit & inner_box).sum()))


def _edges(on: np.ndarray) -> np.ndarray:
    pad = np.pad(on, 1, mode="edge")
    any_, all_ = np.zeros_like(on), np.ones_like(on)
    for dr in range(3):
        for dc in range(3):
            win = pad[dr:dr + on.shape[0], dc:dc + on.shape[1]]
            any_ |= win
            all_ &= win
    return any_ & ~all_


def _disc_box(view: IoView, band_to_j2000: np.ndarray):
    """Padded-grid bounding box (l0, l1, s0, s1) of Io's disc, or None if off the strip."""
    n_l, n_s = N_LINES_BAND + 2 * PAD, N_SAMPLES + 2 * PAD
    ang = view.sky_radius_rad()
    if ang > 0.2:
        return 0, n_l, 0, n_s
    line, sample, front = ins.band_to_pixel(band_to_j2000.T @ view.centre_direction())
    if not front:
        return None
    r = np.tan(ang) / ins.IFOV_RAD + 3.0
    l0, l1 = int(np.floor(line + PAD - r)), int(np.ceil(line + PAD + r)) + 1
    s0, s1 = int(np.floor(sample + PAD - r)), int(np.ceil(sample + PAD + r)) + 1
    l0, l1, s0, s1 = max(l0, 0), min(l1, n_l), max(s0, 0), min(s1, n_s)
    return (l0, l1, s0, s1) if (l1 > l0 and s1 > s0) else None


# --- hotspots ---------------------------------------------------------------------------
def _isotropic(cov_src: np.ndarray) -> float | None:
    """Extra per-axis variance of a nearly point-like source (None if clearly resolved)."""
    ev = np.linalg.eigvalsh(cov_src)
    return float(ev.mean()) if ev.max() < RESOLVED_VARIANCE_PX2 else None


def centred_peak_fraction(cov_src: np.ndarray) -> float:
    """Flux fraction in the brightest pixel for a source centred on a pixel."""
    extra = _isotropic(cov_src)
    if extra is not None:
        return float(sum(w * erf(0.5 / (np.sqrt(2.0 * (s * s + extra)))) ** 2 for w, s in PSF))
    k = 9
    off = (np.arange(k) + 0.5) / k - 0.5
    g = np.stack(np.meshgrid(off, off, indexing="ij"), -1).reshape(-1, 2)
    return float(np.mean(_mixture_density(g, cov_src)))


def equivalent_sigma(peak_fraction: float) -> float:
    """Sigma of the Gaussian with the same centred peak-pixel fraction."""
    return float(0.5 / (np.sqrt(2.0) * erfinv(np.sqrt(np.clip(peak_fraction, 1e-12, 1.0)))))


def _mixture_density(xy: np.ndarray, cov_src: np.ndarray) -> np.ndarray:
    out = np.zeros(xy.shape[0])
    for w, s in PSF:
        cov = cov_src + s * s * np.eye(2)
        det = cov[0, 0] * cov[1, 1] - cov[0, 1] * cov[1, 0]
        x, y = xy[:, 0], xy[:, 1]
        q = (cov[1, 1] * x * x - 2.0 * cov[0, 1] * x * y + cov[0, 0] * y * y) / det
        out += w * np.exp(-0.5 * q) / (2 * np.pi * np.sqrt(det))
    return out


def source_stamp(line: float, sample: float, total: float, cov_src: np.ndarray):
    """(r0, s0, stamp) of a source's pixel-integrated image on the strip grid."""
    spread = np.sqrt(max(np.linalg.eigvalsh(cov_src).max(), 0.0) + PSF[-1][1] ** 2)
    half = int(np.ceil(4.0 * spread)) + 1
    r0, s0 = int(np.floor(line)) - half, int(np.floor(sample)) - half
    n = 2 * half + 2
    extra = _isotropic(cov_src)
    if extra is not None:
        re = np.arange(r0, r0 + n + 1) - 0.5
        se = np.arange(s0, s0 + n + 1) - 0.5
        stamp = np.zeros((n, n))
        for w, s in PSF:
            k = 1.0 / np.sqrt(2.0 * (s * s + extra))
            stamp += w * np.outer(np.diff(0.5 * erf((re - line) * k)),
                                  np.diff(0.5 * erf((se - sample) * k)))
        return r0, s0, total * stamp
    k = 5
    off = (np.arange(k) + 0.5) / k - 0.5
    rr = (np.arange(r0, r0 + n)[:, None] + off[None, :]).ravel() - line
    sc = (np.arange(s0, s0 + n)[:, None] + off[None, :]).ravel() - sample
    g = np.stack(np.meshgrid(rr, sc, indexing="ij"), -1).reshape(-1, 2)
    dens = _mixture_density(g, cov_src).reshape(n, k, n, k).mean(axis=(1, 3))
    return r0, s0, total * dens


def add_stamp(image: np.ndarray, r0: int, s0: int, stamp: np.ndarray) -> float:
    """Add a stamp (clipped to the image); return its largest pixel."""
    n_r, n_s = stamp.shape
    a0, b0 = max(r0, 0), max(s0, 0)
    a1, b1 = min(r0 + n_r, image.shape[0]), min(s0 + n_s, image.shape[1])
    if a1 > a0 and b1 > b0:
        image[a0:a1, b0:b1] += stamp[a0 - r0:a1 - r0, b0 - s0:b1 - s0]
    return float(stamp.max())


def source_covariance(r_px: float, emission_deg: float, tilt_dir: np.ndarray) -> np.ndarray:
    """Sky covariance (line, sample; px^2) of a uniform disc source of radius r_px."""
    if r_px < 0.01:
        return np.zeros((2, 2))
    sin2 = np.sin(np.radians(emission_deg)) ** 2
    t = tilt_dir / max(np.linalg.norm(tilt_dir), 1e-12)
    return (0.5 * r_px) ** 2 * (np.eye(2) - sin2 * np.outer(t, t))
