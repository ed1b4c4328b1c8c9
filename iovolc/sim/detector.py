"""JIRAM detector: band radiance -> raw EDR DN and RDR radiance.

* DN factor: 2000 DN per (W m-2 sr-1) per ms of exposure (published; Mura et
  al. 2024 / Davies et al. 2024 via css.earth, ``iovolc.jiram``).
* Full well: the published saturation radiance 0.0073 / exposure_s W m-2 sr-1
  (M band) -- 14,600 signal DN above the dark at any exposure.
* Noise: read noise 3 DN, shot noise with 4 e-/DN, a per-frame bias drift
  N(0, 2 DN). Our choices (no published JIRAM noise model offline).
* Radiation hits: charge added to single pixels (70 %) or short streaks of
  2-6 pixels, amplitude log-normal around 400 DN (sharper than the PSF).
* Non-linearity (Mura et al. 2024 sec 2.1 as css.earth applies it: samples
  >= 10,000 DN withheld): the raw response is linear up to
  :data:`iovolc.jiram.NONLINEAR_DN` and compresses the excess by 0.85 above
  it, before the 14-bit ADC. The real dark frames are raw DN (already through
  that response), so a pixel reads ``R(R^-1(dark) + drift + signal)``.
* EDR: the raw DN (int16); RDR = (EDR - dark) / factor, float32 -- exactly
  the published relation with the real dark of the same exposure, so the
  RDR is *not* corrected for the non-linearity (as the archive's is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iovolc import jiram
from iovolc.sim import instrument as ins

READ_NOISE_DN = 3.0
GAIN_E_PER_DN = 4.0
BIAS_DRIFT_DN = 2.0
NONLINEAR_SLOPE = 0.85
HIT_MEDIAN_DN = 400.0


def dn_factor(exposure_ms: float) -> float:
    """Raw DN per W m-2 sr-1 at this exposure."""
    return jiram.DN_PER_RADIANCE_PER_MS * exposure_ms


def full_well_dn(exposure_ms: float) -> float:
    """Signal DN at the published saturation radiance (the same at every exposure)."""
    return jiram.SATURATION_RADIANCE_TIMES_S / (exposure_ms / 1000.0) * dn_factor(exposure_ms)


def response(x: np.ndarray) -> np.ndarray:
    """Raw DN read for a linear DN ``x`` (compressed above NONLINEAR_DN)."""
    knee = float(jiram.NONLINEAR_DN)
    return np.where(x > knee, knee + NONLINEAR_SLOPE * (x - knee), x)


def inverse_response(raw: np.ndarray) -> np.ndarray:
    knee = float(jiram.NONLINEAR_DN)
    return np.where(raw > knee, knee + (raw - knee) / NONLINEAR_SLOPE, raw)


def frame_dark(dark_full: np.ndarray, mode: str) -> np.ndarray:
    """The rows of a 256-line real dark that a mode reads (L rows 0-127, M rows 128-255)."""
    bands = ins.MODES[mode]
    if len(bands) == 2:
        return dark_full
    first = 0 if bands[0] == "L" else jiram.N_LINES_BAND
    return dark_full[first:first + jiram.N_LINES_BAND]


def radiation_hits(rng: np.random.Generator, *, n_rows: int, mean_count: float) -> list:
    """Random hits: (hit id, line, sample, DN) per pixel."""
    pixels = []
    for h in range(int(rng.poisson(mean_count))):
        amp = float(rng.lognormal(np.log(HIT_MEDIAN_DN), 0.9))
        r, s = int(rng.integers(0, n_rows)), int(rng.integers(0, jiram.N_SAMPLES))
        if rng.random() < 0.7:
            pixels.append((h, r, s, amp))
            continue
        ang = rng.uniform(0, np.pi)
        seen = set()
        for k in range(int(rng.integers(2, 7))):
            rr, ss = int(round(r + k * np.sin(ang))), int(round(s + k * np.cos(ang)))
            if 0 <= rr < n_rows and 0 <= ss < jiram.N_SAMPLES and (rr, ss) not in seen:
                seen.add((rr, ss))
                pixels.append((h, rr, ss, amp * float(rng.uniform(0.5, 1.0))))
    return pixels


@dataclass(frozen=True)
class Exposure:
    edr: np.ndarray
    rdr: np.ndarray
    n_saturated: int
    n_nonlinear: int


def expose(radiance: np.ndarray, *, mode: str, exposure_ms: int, rng: np.random.Generator,
           dark_full: np.ndarray, hits: list) -> Exposure:
    """Noise, hits, full well, non-linearity, ADC: the EDR and RDR of one frame."""
    factor = dn_factor(exposure_ms)
    dark = frame_dark(dark_full, mode)
    signal = radiance * factor
    sigma = np.sqrt(READ_NOISE_DN**2 + np.clip(signal, 0.0, None) / GAIN_E_PER_DN)
    signal = signal + rng.normal(0.0, 1.0, signal.shape) * sigma
    for _, r, s, dn in hits:
        signal[r, s] += dn
    well = full_well_dn(exposure_ms)
    saturated = signal >= well
    linear = inverse_response(dark) + rng.normal(0.0, BIAS_DRIFT_DN) + np.minimum(signal, well)
    nonlinear = linear > jiram.NONLINEAR_DN
    edr = np.clip(np.round(response(linear)), 0, jiram.ADC_FULL_SCALE_DN).astype(jiram.EDR_DTYPE)
    rdr = ((edr.astype(np.float64) - dark) / factor).astype(jiram.RDR_DTYPE)
    return Exposure(edr, rdr, int(saturated.sum()), int(nonlinear.sum()))


def noise_free_flags(radiance: np.ndarray, *, mode: str, exposure_ms: int,
                     dark_full: np.ndarray, line: float, sample: float) -> tuple[bool, bool]:
    """(saturated, non-linear) of the noise-free frame within 1 px of (line, sample)."""
    r, s = int(round(line)), int(round(sample))
    r0, s0 = max(r - 1, 0), max(s - 1, 0)
    win = radiance[r0:r + 2, s0:s + 2]
    if win.size == 0:
        return False, False
    signal = win * dn_factor(exposure_ms)
    dark = frame_dark(dark_full, mode)[r0:r + 2, s0:s + 2]
    linear = inverse_response(dark) + np.minimum(signal, full_well_dn(exposure_ms))
    return bool((signal >= full_well_dn(exposure_ms)).any()), \
        bool((linear > jiram.NONLINEAR_DN).any())
