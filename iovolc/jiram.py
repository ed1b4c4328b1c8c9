"""Juno JIRAM imager: constants and every instrument quirk, in one place.

Products affected and sources (see docs/decisions.md):

* JIRAM SIS v7.5 / pdr ``formats/juno.py``: imager frames are 432 samples;
  mode I1 = 256 lines (lines 0-127 L band 3.32-3.60 um, lines 128-255 M band
  4.54-5.04 um), I2 = 128 lines M band only, I3 = 128 lines L band only.
* RDR (JNO-J-JIRAM-3-RDR-V1.0) pixels are 32-bit floats labelled
  ``IEEE_REAL`` (big-endian by the PDS3 standard) but written **little-endian**.
  We never trust the label's byte order for RDRs (:data:`RDR_DTYPE`).
* EDR (JNO-J-JIRAM-2-EDR-V1.0) pixels are 16-bit LSB integers, raw DN from a
  14-bit ADC (full scale 16383).
* EDR -> band radiance after dark subtraction: ``DN / (2000 * exposure_ms)``
  W m-2 sr-1 (published factor, :data:`DN_PER_RADIANCE_PER_MS`).
* M-band saturation ~ 0.0073 / exposure_s W m-2 sr-1; it equals the ADC full
  scale minus a typical dark (~1400 DN), so we model saturation in DN.
* Real dark frames (``iovolc/data/jiram/dark_*ms.cub``, from volcanopele/juno)
  are ISIS cubes **left-right mirrored** relative to the archive: flip samples.
* IFOV 237.767 urad/pixel, focal length 159.82 mm, f/3.7, pixel pitch 38 um.
* Frames (juno_v12_mod2.tf): +Z boresight, +X along CCD columns = along the
  spin = the line direction (the L and M halves sit on +X and -X), +Y along
  the samples.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np

# --- optics -------------------------------------------------------------
IFOV_RAD = 237.767e-6
FOCAL_LENGTH_MM = 159.82
F_NUMBER = 3.7
PIXEL_PITCH_UM = 38.0

# --- detector -----------------------------------------------------------
N_SAMPLES = 432
N_LINES_FULL = 256
N_LINES_BAND = 128
#: detector centre (0-based pixel-centre coordinates, full 256-line frame)
CENTER_LINE = 127.5
CENTER_SAMPLE = 215.5
ADC_FULL_SCALE_DN = 16383
#: raw DN above which the detector response is non-linear (Mura et al. 2024, sec. 2.1,
#: as applied by css.earth's Io README: samples >= 10,000 DN withheld)
NONLINEAR_DN = 10000

# --- bands ----------------------------------------------------------------
#: published band widths used by the radiance -> power relation (um)
DLAMBDA_UM = {"L": 0.29, "M": 0.4975}
#: nominal band edges (um) from the SIS
BAND_EDGES_UM = {"L": (3.32, 3.60), "M": (4.54, 5.04)}
#: band centres (um)
BAND_CENTER_UM = {b: 0.5 * (lo + hi) for b, (lo, hi) in BAND_EDGES_UM.items()}
#: first full-frame line of each band's half of the detector
BAND_FIRST_LINE = {"L": 0, "M": 128}

#: INSTRUMENT_MODE_ID -> bands present, in line order
MODES: dict[str, tuple[str, ...]] = {"I1": ("L", "M"), "I2": ("M",), "I3": ("L",)}

# --- calibration --------------------------------------------------------
#: raw DN per (W m-2 sr-1) per millisecond of exposure
DN_PER_RADIANCE_PER_MS = 2000.0
#: published M-band saturation, W m-2 sr-1 times exposure in seconds
SATURATION_RADIANCE_TIMES_S = 0.0073
#: exposures for which real dark frames exist (ms)
DARK_EXPOSURES_MS = (1, 2, 3)

# --- NAIF ---------------------------------------------------------------
NAIF_JUNO = -61
NAIF_JUNO_SPACECRAFT_FRAME = -61000
NAIF_JIRAM_I = -61410
NAIF_JIRAM_I_LBAND = -61411
NAIF_JIRAM_I_MBAND = -61412
NAIF_IO = 501
FRAME_JIRAM_I = "JUNO_JIRAM_I"
FRAME_SPACECRAFT = "JUNO_SPACECRAFT"

# --- PDS3 -----------------------------------------------------------------
EDR_DATA_SET_ID = "JNO-J-JIRAM-2-EDR-V1.0"
RDR_DATA_SET_ID = "JNO-J-JIRAM-3-RDR-V1.0"
#: the RDR byte-order quirk: labelled IEEE_REAL, written little-endian
RDR_DTYPE = np.dtype("<f4")
EDR_DTYPE = np.dtype("<i2")


def mode_lines(mode: str) -> int:
    """Number of image lines of an INSTRUMENT_MODE_ID."""
    try:
        return N_LINES_BAND * len(MODES[mode])
    except KeyError:
        raise ValueError(f"unknown JIRAM imager mode {mode!r} (known: {sorted(MODES)})") from None


def band_rows(mode: str) -> dict[str, slice]:
    """Row slice of each band inside a frame of ``mode`` (frame-local lines)."""
    bands = MODES.get(mode)
    if bands is None:
        raise ValueError(f"unknown JIRAM imager mode {mode!r} (known: {sorted(MODES)})")
    return {b: slice(i * N_LINES_BAND, (i + 1) * N_LINES_BAND) for i, b in enumerate(bands)}


def frame_to_detector_line(mode: str, line: np.ndarray | float) -> np.ndarray | float:
    """Frame-local line -> full-detector line (0..255), for any mode."""
    bands = MODES[mode]
    if len(bands) == 2:
        return line
    return line + BAND_FIRST_LINE[bands[0]]


def saturation_radiance(exposure_s: float) -> float:
    """Published M-band saturation radiance (W m-2 sr-1) for an exposure."""
    return SATURATION_RADIANCE_TIMES_S / exposure_s


def dn_per_radiance(exposure_s: float) -> float:
    """Raw DN per W m-2 sr-1 at this exposure (published factor)."""
    return DN_PER_RADIANCE_PER_MS * exposure_s * 1e3


def dark_path(exposure_ms: int) -> Path:
    """Shipped real dark frame for an exposure (ms)."""
    if exposure_ms not in DARK_EXPOSURES_MS:
        raise ValueError(
            f"no JIRAM dark frame for exposure {exposure_ms} ms (have {DARK_EXPOSURES_MS})"
        )
    return Path(str(resources.files("iovolc") / "data" / "jiram" / f"dark_{exposure_ms}ms.cub"))


def read_isis_cube_f32(path: Path | str) -> np.ndarray:
    """Read a single-band 432x256 float32 LSB ISIS cube (tile format, one tile).

    The cube's own PVL header gives the start byte and dimensions.
    """
    import pvl

    raw = Path(path).read_bytes()
    header = raw[:65536].split(b"\0")[0].decode("latin-1")
    # the PVL label ends at the first line that is exactly "End"
    m = re.search(r"^End\s*$", header, flags=re.MULTILINE)
    label = pvl.loads(header[: m.end()] if m else header)
    core = label["IsisCube"]["Core"]
    dims = core["Dimensions"]
    pix = core["Pixels"]
    if pix["Type"] != "Real" or pix["ByteOrder"] != "Lsb":
        raise ValueError(f"{path}: unsupported ISIS pixel type {pix['Type']}/{pix['ByteOrder']}")
    ns, nl = int(dims["Samples"]), int(dims["Lines"])
    if core.get("Format", "Tile") == "Tile" and (
        int(core["TileSamples"]) != ns or int(core["TileLines"]) != nl
    ):
        raise ValueError(f"{path}: multi-tile ISIS cubes are not supported")
    start = int(core["StartByte"]) - 1
    return np.frombuffer(raw, dtype="<f4", count=ns * nl, offset=start).reshape(nl, ns).copy()


def load_dark_dn(exposure_ms: int) -> np.ndarray:
    """Real JIRAM dark frame (DN, 256 x 432) in **archive** orientation."""
    return read_isis_cube_f32(dark_path(exposure_ms))[:, ::-1].copy()
