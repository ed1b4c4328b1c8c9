"""The simulator's own model of the JIRAM imager: optics, pixel grid, band frames, modes.

Facts and where they come from:

* Optics -- focal length 159.82 mm, pixel 38 um, IFOV 237.767 urad/pixel
  (= 38 um / 159.82 mm), f/3.7: JIRAM SIS v7.5 and NAIF's ``juno_jiram_v02.ti``
  (as quoted by ksr-ocean/jiram_catalog ``docs/reports/jiram_pds_research.md``),
  Adriani et al. (2017), Space Sci. Rev. 213:393.
* Band frames -- JUNO_JIRAM_I_LBAND (-61411) and JUNO_JIRAM_I_MBAND (-61412)
  are JUNO_JIRAM_I (-61410) turned by -/+0.94012 deg about its +Y axis (real FK
  ``juno_v12_mod2.tf``): the L band looks toward +X of JUNO_JIRAM_I, the M band
  toward -X, so on the sky the two 128-line strips are ~138 lines apart.
* Pixel axes -- in a band frame, sample number grows toward -Y and line number
  toward -X (SETI rms-oops JIRAM host module turns (u, v) into (-Y, -X);
  css.earth recipes "column -Y, row -X"). The FK says +X is the along-track
  (spin) direction, so lines run along the spin.
* Image rows -- SCI_I1 (256 lines): rows 0-127 = L strip, rows 128-255 = M
  strip; SCI_I2 = M strip only, SCI_I3 = L strip only (JIRAM SIS; pdr
  ``formats/juno.py``).

Pixel model (what the simulator's IK states): for the 0-based pixel centre
(line ``l``, sample ``s``) of a band's 128 x 432 strip::

    direction = normalise( -(l - cl) * p, -(s - cs) * p, f )

with f the focal length (mm), p the pixel size (mm) and ``(cs, cl) =
CCD_CENTER - 1`` = (215.5, 63.5). It is written out again, independently, in
the tests; the simulator renders with it and the IK carries it.
"""

from __future__ import annotations

import numpy as np

from iovolc.jiram import N_LINES_BAND, N_SAMPLES

# --- optics (JIRAM SIS v7.5; juno_jiram_v02.ti; Adriani et al. 2017) -------------------
FOCAL_LENGTH_MM = 159.82
PIXEL_SIZE_UM = 38.0
IFOV_RAD = 237.767e-6
F_NUMBER = 3.7
#: 1-based (sample, line) of the optical centre of a band strip (css.earth `origin: 1`)
CCD_CENTER = (216.5, 64.5)
CENTER_SAMPLE = CCD_CENTER[0] - 1.0
CENTER_LINE = CCD_CENTER[1] - 1.0

# --- NAIF ids and frames (juno_v12_mod2.tf) ---------------------------------------------
NAIF_JUNO = -61
NAIF_SPACECRAFT_FRAME = -61000
FRAME_SPACECRAFT = "JUNO_SPACECRAFT"
FRAME_JIRAM_I = "JUNO_JIRAM_I"
NAIF_JIRAM_I = -61410
BAND_FRAME = {"L": "JUNO_JIRAM_I_LBAND", "M": "JUNO_JIRAM_I_MBAND"}
BAND_NAIF = {"L": -61411, "M": -61412}
#: rotation of each band's boresight toward +X of JUNO_JIRAM_I (deg) -- FK TKFRAME angles
BAND_TILT_DEG = {"L": 0.94012, "M": -0.94012}

# --- modes (JIRAM SIS; real labels: INSTRUMENT_MODE_ID = SCI_I2_S1) ----------------------
MODES: dict[str, tuple[str, ...]] = {
    "SCI_I1_S1": ("L", "M"),
    "SCI_I2_S1": ("M",),
    "SCI_I3_S1": ("L",),
}
MODE_DESC = {
    "SCI_I1_S1": " SCI_I1_S1: Science, IMAGE(256x432) full acquisition, SPECTRUM (256x336) "
                 "High Spatial and High Spectral ",
    "SCI_I2_S1": " SCI_I2_S1: Science, IMAGE(128x432) M-Band, SPECTRUM (256x336) "
                 "High Spatial and High Spectral ",
    "SCI_I3_S1": " SCI_I3_S1: Science, IMAGE(128x432) L-Band, SPECTRUM (256x336) "
                 "High Spatial and High Spectral ",
}


def mode_lines(mode: str) -> int:
    """Image lines of an INSTRUMENT_MODE_ID (256 for SCI_I1, else 128)."""
    if mode not in MODES:
        raise ValueError(f"unknown JIRAM imager mode {mode!r} (known: {sorted(MODES)})")
    return N_LINES_BAND * len(MODES[mode])


def band_row0(mode: str, band: str) -> int:
    """Image row of line 0 of ``band``'s strip in a frame of ``mode``."""
    bands = MODES[mode]
    if band not in bands:
        raise ValueError(f"mode {mode} has no {band} band")
    return N_LINES_BAND * bands.index(band)


def band_to_jiram_i(band: str) -> np.ndarray:
    """Rotation taking band-frame vectors into JUNO_JIRAM_I (boresight tilted toward +X)."""
    t = np.radians(BAND_TILT_DEG[band])
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def pixel_to_band(line, sample) -> np.ndarray:
    """Unit directions (..., 3) in the band frame of 0-based strip pixels (line, sample)."""
    p = PIXEL_SIZE_UM / 1000.0
    line = np.asarray(line, dtype=float)
    sample = np.asarray(sample, dtype=float)
    v = np.stack(np.broadcast_arrays(-(line - CENTER_LINE) * p, -(sample - CENTER_SAMPLE) * p,
                                     np.full(np.broadcast(line, sample).shape, FOCAL_LENGTH_MM)),
                 axis=-1)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def band_to_pixel(vectors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, sample, in_front) of band-frame vectors (..., 3) on the strip's pixel grid."""
    v = np.asarray(vectors, dtype=float)
    z = v[..., 2]
    front = z > 0
    zz = np.where(front, z, np.nan)
    k = FOCAL_LENGTH_MM / (PIXEL_SIZE_UM / 1000.0)
    return CENTER_LINE - k * v[..., 0] / zz, CENTER_SAMPLE - k * v[..., 1] / zz, front


def band_corners(band: str | None = None) -> np.ndarray:
    """The 4 outer pixel-edge corner directions of a strip (band frame), or of the
    combined field in JUNO_JIRAM_I (``band=None``: L strip's +X edge, M strip's -X edge)."""
    lo_l, hi_l = -0.5, N_LINES_BAND - 0.5
    lo_s, hi_s = -0.5, N_SAMPLES - 0.5
    if band is not None:
        return pixel_to_band([lo_l, lo_l, hi_l, hi_l], [lo_s, hi_s, hi_s, lo_s])
    top = pixel_to_band([lo_l, lo_l], [lo_s, hi_s]) @ band_to_jiram_i("L").T
    bottom = pixel_to_band([hi_l, hi_l], [hi_s, lo_s]) @ band_to_jiram_i("M").T
    return np.vstack([top, bottom])
