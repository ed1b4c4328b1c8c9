"""JIRAM imager frames -> cleaned band radiance: dark, factor, bad pixels, hits.

Pure numpy/scipy, no I/O beyond the shipped dark frames (:mod:`iovolc.jiram`).

* **EDR -> radiance** (:func:`edr_to_radiance`): ``(DN - dark) / (2000 * ms)``
  with the real dark frame of the same exposure (rows of the frame's bands).
* **Impossible values** (:func:`invalid_values`): NaN/inf or absurd radiances,
  EDR DN outside 0..16383: masked as bad pixels (the caller refuses frames
  with more than 1 % of them).
* **Bad pixels** (:func:`bad_pixel_mask`): from the real dark of the exposure.
  Rule: a pixel is *hot* if its dark exceeds the dark's median by more than
  50 median absolute deviations (``dark > median + 50 * MAD`` over the whole
  256-line dark, ~1400 + 50 * 170 DN: 50-60 pixels per dark),
  *near full scale* if its dark is >= 90 % of the ADC full scale (no headroom
  left for any signal), *dead* if its dark is <= 0 or not finite.
* **Saturation** (:func:`saturation_mask`): radiance >= 92 % of the published
  saturation radiance (the full well through the non-linear response), or raw
  DN at the ADC full scale.
* **Radiation hits** (:func:`detect_radiation_hits`): a pixel is a hit when
  it is sharper than the optics allow, optionally confirmed by its absence
  at the same sky position in the other frames of the sequence (below).
* **Cleaning** (:func:`clean_frame`): hits and bad pixels are replaced by the
  median of their valid 3x3 neighbours (grown outward for clusters).

Radiation hits: :mod:`iovolc.hits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from iovolc import jiram
from iovolc.hits import detect_radiation_hits, fill_invalid

#: bad pixels: dark above median + this many (raw) MADs of the dark
HOT_DARK_N_MAD = 50.0
#: bad pixels: dark at or above this fraction of the ADC full scale
HOT_DARK_FULL_SCALE_FRACTION = 0.9
#: saturation: radiance at or above this fraction of the published level. The full well
#: seen through the non-linear response (> 10,000 raw DN) reads a few per cent below
#: the published 0.0073/exposure_s; anything above ~0.7 of it is non-linear anyway
SATURATION_FRACTION = 0.92

@dataclass(frozen=True, eq=False)
class CalibratedFrame:
    """One calibrated frame: cleaned radiance (W m-2 sr-1) and pixel masks."""

    #: band radiance, float32, hits and bad pixels replaced
    radiance: np.ndarray
    #: pixels at the saturation level (kept as measured, not replaced)
    saturated: np.ndarray
    #: hot/dead pixels of the detector (replaced)
    bad: np.ndarray
    #: radiation hits (replaced)
    hits: np.ndarray
    #: pixels whose value was replaced by a local median (``hits | bad``)
    replaced: np.ndarray


# --- EDR -> radiance ------------------------------------------------------------


def _exposure_ms(exposure_s: float) -> int:
    ms = float(exposure_s) * 1000.0
    ms_int = int(round(ms))
    if abs(ms - ms_int) > 1e-6 or ms_int not in jiram.DARK_EXPOSURES_MS:
        raise ValueError(
            f"no JIRAM dark frame for exposure {exposure_s!r} s ({ms:g} ms); "
            f"darks exist for {jiram.DARK_EXPOSURES_MS} ms only"
        )
    return ms_int


@lru_cache(maxsize=len(jiram.DARK_EXPOSURES_MS))
def _dark_full(exposure_ms: int) -> np.ndarray:
    dark = jiram.load_dark_dn(exposure_ms)
    dark.setflags(write=False)
    return dark


def dark_for_bands(*, bands: tuple[str, ...], exposure_s: float) -> np.ndarray:
    """Real dark frame (DN, archive orientation) rows of an image of ``bands``, read-only."""
    return _dark_full(_exposure_ms(exposure_s))[jiram.dark_rows(tuple(bands))]


def _shape(bands: tuple[str, ...]) -> tuple[int, int]:
    return (jiram.N_LINES_BAND * len(bands), jiram.N_SAMPLES)


def edr_to_radiance(dn: np.ndarray, *, bands: tuple[str, ...], exposure_s: float,
                    dark_dn: np.ndarray | None = None) -> np.ndarray:
    """Raw EDR DN -> band radiance (W m-2 sr-1, float32).

    ``(dn - dark) / jiram.dn_per_radiance(exposure_s)``. ``dark_dn`` defaults to
    the real dark of the exposure (ValueError if none exists); a full 256-line
    dark is cut to the rows of ``bands`` (M only: dark lines 128-255, L only: 0-127).
    """
    dn = np.asarray(dn)
    if dn.shape != _shape(bands):
        raise ValueError(f"a {'+'.join(bands)} frame must be {_shape(bands)}, got {dn.shape}")
    if dark_dn is None:
        dark = dark_for_bands(bands=bands, exposure_s=exposure_s)
    else:
        dark = np.asarray(dark_dn)
        if dark.shape == (2 * jiram.N_LINES_BAND, jiram.N_SAMPLES) and dark.shape != dn.shape:
            dark = dark[jiram.dark_rows(tuple(bands))]
        if dark.shape != dn.shape:
            raise ValueError(f"dark shape {dark.shape} does not match frame shape {dn.shape}")
    factor = jiram.dn_per_radiance(exposure_s)
    return ((dn.astype(np.float64) - dark) / factor).astype(np.float32)


def raw_dn_estimate(radiance: np.ndarray, *, bands: tuple[str, ...], exposure_s: float
                    ) -> np.ndarray:
    """Raw DN a frame's radiance came from: radiance x factor + the real dark (its median
    if no dark exists for the exposure) -- exact for an EDR calibrated here, the
    estimate for an RDR. For the non-linearity flag."""
    factor = jiram.dn_per_radiance(exposure_s)
    try:
        dark = dark_for_bands(bands=bands, exposure_s=exposure_s)
    except ValueError:
        dark = float(np.median(_dark_full(jiram.DARK_EXPOSURES_MS[0])))
    return (np.asarray(radiance, dtype=np.float64) * factor + dark).astype(np.float32)


def bad_pixel_mask(*, bands: tuple[str, ...], exposure_s: float) -> np.ndarray:
    """Hot/dead pixels of the real dark of this exposure (rows of ``bands``).

    Hot: ``dark > median + 50 * MAD`` (over the whole 256-line dark) or
    ``dark >= 0.9 * ADC full scale``; dead: ``dark <= 0`` or not finite.
    """
    return _bad_full(_exposure_ms(exposure_s))[jiram.dark_rows(tuple(bands))].copy()


@lru_cache(maxsize=len(jiram.DARK_EXPOSURES_MS))
def _bad_full(exposure_ms: int) -> np.ndarray:
    """:func:`bad_pixel_mask` of the whole 256-line dark, once per exposure and process
    (stop 29: its two medians were taken again for each sequence), read-only."""
    full = _dark_full(exposure_ms).astype(np.float64)
    med = np.median(full)
    mad = np.median(np.abs(full - med))
    bad = ((full > med + HOT_DARK_N_MAD * mad)
           | (full >= HOT_DARK_FULL_SCALE_FRACTION * jiram.ADC_FULL_SCALE_DN)
           | ~(full > 0))
    bad.setflags(write=False)
    return bad


def saturation_mask(radiance: np.ndarray, *, exposure_s: float,
                    dn: np.ndarray | None = None) -> np.ndarray:
    """Pixels at the saturation level: radiance at >= :data:`SATURATION_FRACTION` of
    the published level, or raw DN at the ADC full scale."""
    sat = np.asarray(radiance) >= SATURATION_FRACTION * jiram.saturation_radiance(exposure_s)
    if dn is not None:
        sat |= np.asarray(dn) >= jiram.ADC_FULL_SCALE_DN
    return sat


#: an image with more than this fraction of impossible values is refused, not masked
MAX_INVALID_FRACTION = 0.01
#: radiance beyond this many times the saturation level is impossible (not a measurement)
ABSURD_SATURATION_FACTOR = 20.0


def invalid_values(image: np.ndarray, *, product_type: str, exposure_s: float
                   ) -> tuple[np.ndarray, str]:
    """Pixels whose values cannot be measurements, and why (``""`` if none).

    RDR: not finite, or beyond +-20 x the saturation radiance (e.g. 3e38);
    EDR: DN outside the 14-bit ADC range 0..16383. Such pixels are masked as
    bad (replaced, never detected); a frame with more than 1 % of them is
    refused by the caller (quarantined) -- a damaged product, not a few bad pixels.
    """
    x = np.asarray(image)
    if product_type == "EDR":
        bad = (x < 0) | (x > jiram.ADC_FULL_SCALE_DN)
        what = "DN outside 0..16383"
    else:
        xf = x.astype(np.float64)
        limit = ABSURD_SATURATION_FACTOR * jiram.saturation_radiance(exposure_s)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(xf) | (np.abs(xf) > limit)
        what = f"values not finite or beyond +-{limit:g} W m-2 sr-1"
    n = int(bad.sum())
    if not n:
        return bad, ""
    examples = np.unique(x[bad])[:3]
    return bad, f"{n} pixels with {what} (e.g. {', '.join(f'{v:g}' for v in examples)})"


# --- cleaning and the whole sequence ---------------------------------------------


def clean_frame(radiance: np.ndarray, hits_mask: np.ndarray, *,
                bad_mask: np.ndarray | None = None) -> np.ndarray:
    """Replace hit and bad pixels by the median of their valid 3x3 neighbours.

    Clusters are filled from the outside in (a pixel with no valid neighbour
    waits for its neighbours to be filled), so every flagged pixel is
    replaced: the replaced mask is ``hits_mask | bad_mask``. Returns float32.
    """
    x = np.asarray(radiance)
    mask = np.asarray(hits_mask, dtype=bool)
    if bad_mask is not None:
        mask = mask | np.asarray(bad_mask, dtype=bool)
    filled, _ = fill_invalid(x, mask)
    return filled.astype(np.float32)


def check_sequence(frames: list[np.ndarray], *, bands: tuple[str, ...], exposure_s: float,
                   kinds: list[str]) -> None:
    """The checks that refuse a sequence before calibration (ValueError naming the
    value): a product type per frame, frame shapes that match the bands, a real dark
    for the exposure of an EDR. Also run on sequences left uncalibrated, so that a bad
    product is refused whatever it looks at."""
    if len(kinds) != len(frames) or any(k not in ("EDR", "RDR") for k in kinds):
        raise ValueError(f"kinds must give 'EDR' or 'RDR' for each frame, got {kinds!r}")
    shape = _shape(bands)
    for f in frames:
        if np.shape(f) != shape:
            raise ValueError(f"{'+'.join(bands)} frames must be {shape}, got {np.shape(f)}")
    if "EDR" in kinds:
        _exposure_ms(exposure_s)


def calibrate_sequence(
    frames: list[np.ndarray],
    *,
    bands: tuple[str, ...],
    exposure_s: float,
    kinds: list[str],
    dark_dn: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
    psf_sigma_px: float = 0.7,
    detect_hits: bool = True,
) -> list[CalibratedFrame]:
    """Calibrate the frames of one sequence (same bands and exposure).

    ``kinds[i]`` says how frame i is calibrated -- per product, never per
    group: ``"EDR"``: raw DN -> radiance with the dark of the exposure;
    ``"RDR"``: already radiance, passed through. Then impossible values,
    saturation and bad pixel masks, radiation hits over the whole sequence, and
    cleaning (hits and bad pixels replaced; saturated pixels kept and never
    called hits). For an RDR whose exposure has no dark, the bad pixels of all
    shipped darks are used.
    """
    if not frames:
        return []
    check_sequence(frames, bands=bands, exposure_s=exposure_s, kinds=kinds)
    shape = _shape(bands)
    rad, sat, invalid = [], [], []
    for f, kind in zip(frames, kinds, strict=True):
        inv, _ = invalid_values(f, product_type=kind, exposure_s=exposure_s)
        invalid.append(inv)
        if kind == "EDR":
            dn = np.where(inv, 0, f)
            r = edr_to_radiance(dn, bands=bands, exposure_s=exposure_s, dark_dn=dark_dn)
            sat.append(saturation_mask(r, exposure_s=exposure_s, dn=dn) & ~inv)
        else:
            with np.errstate(invalid="ignore"):
                r = np.where(inv, 0.0, np.asarray(f, dtype=np.float32)).astype(np.float32)
            sat.append(saturation_mask(r, exposure_s=exposure_s) & ~inv)
        rad.append(r)
    try:
        bad0 = bad_pixel_mask(bands=bands, exposure_s=exposure_s)
    except ValueError:
        if "EDR" in kinds:
            raise
        bad0 = np.zeros(shape, dtype=bool)
        for ms in jiram.DARK_EXPOSURES_MS:
            bad0 |= bad_pixel_mask(bands=bands, exposure_s=ms / 1000.0)
    bad = [bad0 | ~np.isfinite(r) | inv for r, inv in zip(rad, invalid, strict=True)]
    if detect_hits:
        stack = np.stack(rad)
        valid = ~np.stack(bad)
        hits = detect_radiation_hits(stack, valid=valid, offsets=offsets,
                                     psf_sigma_px=psf_sigma_px) & ~np.stack(sat)
    else:
        hits = np.zeros((len(rad), *shape), dtype=bool)
    out = []
    for k, r in enumerate(rad):
        replaced = hits[k] | bad[k]
        out.append(CalibratedFrame(
            radiance=clean_frame(r, hits[k], bad_mask=bad[k]),
            saturated=sat[k], bad=bad[k], hits=hits[k], replaced=replaced,
        ))
    return out
