"""Juno JIRAM imager: every instrument quirk, in one place; the camera from the kernel pool.

Products affected and sources (docs/decisions.md, "Real JIRAM"):

* **Modes** (real labels, e.g. ksr-ocean/jiram_catalog
  ``docs/samples/JIR_IMG_RDR_2017033T114006_V02.LBL``; the JIRAM SIS v7.5):
  ``INSTRUMENT_MODE_ID = SCI_I1_S0|S1`` -> 256 lines, L band rows 0-127 and
  M band rows 128-255; ``SCI_I2_*`` -> 128 lines of M; ``SCI_I3_*`` -> 128
  lines of L (``S0``/``S1`` is the spectrometer setting, irrelevant here).
  Bare ``I1``/``I2``/``I3`` are accepted too. Labels also carry
  ``L_BAND_PARAMETERS`` / ``M_BAND_PARAMETERS`` blocks whose
  ``LINE_FIRST_PIXEL`` is an integer when that band is present (SETI/rms-oops
  ``oops/hosts/juno/jiram/img.py``).
* **Units**: RDR labels state ``W/(m^2*sr)`` or ``W/(m^2*sr*micron)`` for
  the same calibrated band radiance (css.earth's JIRAM recipe maps both to 1).
* **Byte order**: RDR floats are labelled ``IEEE_REAL`` but written
  little-endian (pdr ``formats/juno.py``, jiram_catalog decisions); EDRs are
  16-bit LSB integers from a 14-bit ADC.
* **Camera**: read from the kernel pool, never from constants here. Each band
  has its own IK entry (``INS-6141x_FOCAL_LENGTH`` mm, ``_PIXEL_SIZE`` um,
  ``_CCD_CENTER``, ``_PIXEL_SAMPLES``, ``_PIXEL_LINES``, ``_FOV_FRAME``) and its
  own FK frame (``JUNO_JIRAM_I_LBAND``/``_MBAND``, tilted -/+0.94012 deg about
  Y from ``JUNO_JIRAM_I``). What the kernels do not say is how stored rows and
  columns map on the frame axes; readers of the real kernels agree that the
  sample number grows toward **-Y** and the line number toward **-X** of the
  band frame (rms-oops maps (u, v) to (-Y, -X); css.earth's recipe says
  "column -Y, row -X"), and that ``CCD_CENTER`` is in 1-based pixel
  coordinates (css.earth ``origin: 1``).
* **Detector**: EDR -> band radiance after dark subtraction is
  ``DN / (2000 * exposure_ms)`` W m-2 sr-1; M-band saturation ~
  0.0073 / exposure_s W m-2 sr-1; the response is non-linear above ~10,000
  raw DN (Mura et al. 2024, sec. 2.1). Real dark frames
  (``iovolc/data/jiram/dark_*ms.cub``, volcanopele/juno) are ISIS cubes
  mirrored left-right relative to the archive.
* **Delivery**: one frame per spin (~30.5 s); frame 1 of every sequence is
  never delivered (jiram_catalog build log), so sequences are not complete
  or evenly numbered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

# --- image format (SIS) ---------------------------------------------------
N_SAMPLES = 432
N_LINES_BAND = 128
ADC_FULL_SCALE_DN = 16383
#: raw DN above which the detector response is non-linear (Mura et al. 2024, sec. 2.1,
#: as applied by css.earth's Io README: samples >= 10,000 DN withheld)
NONLINEAR_DN = 10000

# --- published optics -------------------------------------------------------
#: the published IFOV (JIRAM IK juno_jiram_v02.ti: 38 um / 159.82 mm). The pipeline
#: never uses it for geometry -- it reads each band's camera from the kernel pool
#: (:func:`band_camera`) and passes that ``ifov_rad`` to iovolc.physics; this is
#: only physics' default for quick calculations.
IFOV_RAD = 237.767e-6

# --- bands ----------------------------------------------------------------
#: published band widths used by the radiance -> power relation (um)
DLAMBDA_UM = {"L": 0.29, "M": 0.4975}
#: nominal band edges (um) from the SIS
BAND_EDGES_UM = {"L": (3.32, 3.60), "M": (4.54, 5.04)}
#: band centres (um)
BAND_CENTER_UM = {b: 0.5 * (lo + hi) for b, (lo, hi) in BAND_EDGES_UM.items()}
#: image band order of a dual-band frame (L rows first)
BAND_ORDER = ("L", "M")

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
NAIF_BAND = {"L": -61411, "M": -61412}
NAIF_JIRAM_I_LBAND = NAIF_BAND["L"]
NAIF_JIRAM_I_MBAND = NAIF_BAND["M"]
NAIF_IO = 501
FRAME_JIRAM_I = "JUNO_JIRAM_I"
FRAME_SPACECRAFT = "JUNO_SPACECRAFT"

# --- camera reading conventions (see module docstring) -----------------------
#: instrument-frame axis along which the stored sample (column) index grows
SAMPLE_AXIS = np.array([0.0, -1.0, 0.0])
#: instrument-frame axis along which the stored line (row) index grows
LINE_AXIS = np.array([-1.0, 0.0, 0.0])
#: index of the first pixel in CCD_CENTER's coordinates (1-based)
CCD_CENTER_ORIGIN = 1.0

# --- PDS3 -----------------------------------------------------------------
EDR_DATA_SET_ID = "JNO-J-JIRAM-2-EDR-V1.0"
RDR_DATA_SET_ID = "JNO-J-JIRAM-3-RDR-V1.0"
#: the RDR byte-order quirk: labelled IEEE_REAL, written little-endian
RDR_DTYPE = np.dtype("<f4")
EDR_DTYPE = np.dtype("<i2")

_MODE_RE = re.compile(r"^(?:SCI_)?I([0-9])(?:_S[0-9A-Z]+)?$")
_MODE_BANDS = {"1": ("L", "M"), "2": ("M",), "3": ("L",)}

#: RDR units that mean band radiance W m-2 sr-1 (spellings normalised: upper case, no
#: spaces, '**' -> '^'); both real spellings are the same calibrated quantity
RADIANCE_UNITS = frozenset({"W/(M^2*SR)", "W/(M^2*SR*MICRON)", "W/(M^2*SR*UM)",
                            "W/M^2/SR", "W.M-2.SR-1", "WM-2SR-1"})
EDR_UNITS = frozenset({"DN", "COUNTS", "COUNT"})


def normalise_unit(unit: str) -> str:
    """Unit text as compared with :data:`RADIANCE_UNITS` / :data:`EDR_UNITS`."""
    return re.sub(r"\s+", "", str(unit)).upper().replace("**", "^").replace("MICRONS", "MICRON")


def mode_bands(mode_id: str) -> tuple[str, ...] | None:
    """Bands of an INSTRUMENT_MODE_ID in image row order, or None if not an imager mode.

    ``SCI_I1_S1`` -> ("L", "M"); ``SCI_I2_S0`` -> ("M",); ``SCI_I3_S1`` -> ("L",);
    bare ``I1``/``I2``/``I3`` likewise; ``SCI_I0_*`` (no image) and anything else -> None.
    """
    m = _MODE_RE.match(str(mode_id).strip().upper())
    return _MODE_BANDS.get(m.group(1)) if m else None


def band_layout(bands: tuple[str, ...]) -> dict[str, slice]:
    """Image rows of each band: L first, each band a 128-line strip."""
    bands = check_bands(bands)
    return {b: slice(i * N_LINES_BAND, (i + 1) * N_LINES_BAND) for i, b in enumerate(bands)}


def saturation_radiance(exposure_s: float) -> float:
    """Published M-band saturation radiance (W m-2 sr-1) for an exposure."""
    return SATURATION_RADIANCE_TIMES_S / exposure_s


def dn_per_radiance(exposure_s: float) -> float:
    """Raw DN per W m-2 sr-1 at this exposure (published factor)."""
    return DN_PER_RADIANCE_PER_MS * exposure_s * 1e3


# --- the camera, from the kernel pool ---------------------------------------------


class CameraKernelError(ValueError):
    """The loaded kernels do not describe a JIRAM band camera (names the keyword)."""


@dataclass(frozen=True)
class BandCamera:
    """One JIRAM band's pinhole camera, as the loaded IK and FK state it.

    Pixel coordinates are 0-based pixel centres of the band's own strip
    (``line`` 0..n_lines-1, ``sample`` 0..n_samples-1). ``to_instrument``
    rotates band-frame vectors into ``JUNO_JIRAM_I``, the frame the pointing
    correction is applied in.
    """

    band: str
    naif_id: int
    frame: str
    focal_length_mm: float
    pixel_size_mm: float
    center_sample: float
    center_line: float
    n_samples: int
    n_lines: int
    to_instrument: np.ndarray

    @property
    def ifov_rad(self) -> float:
        """Angular size of one pixel at the centre (pixel size / focal length)."""
        return self.pixel_size_mm / self.focal_length_mm

    def directions(self, line, sample) -> np.ndarray:
        """Unit vectors in ``JUNO_JIRAM_I`` for pixel coordinates (..., 3)."""
        line = np.asarray(line, dtype=float)
        sample = np.asarray(sample, dtype=float)
        dl = (line - self.center_line) * self.pixel_size_mm
        ds = (sample - self.center_sample) * self.pixel_size_mm
        v = (dl[..., None] * LINE_AXIS + ds[..., None] * SAMPLE_AXIS
             + self.focal_length_mm * np.array([0.0, 0.0, 1.0]))
        v = v / np.linalg.norm(v, axis=-1, keepdims=True)
        return v @ self.to_instrument.T

    def pixels(self, vec_inst) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`directions`: (line, sample); NaN behind the camera."""
        v = np.asarray(vec_inst, dtype=float) @ self.to_instrument
        z = v[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(z > 0, self.focal_length_mm / z, np.nan) / self.pixel_size_mm
        line = self.center_line + (v @ LINE_AXIS) * scale
        sample = self.center_sample + (v @ SAMPLE_AXIS) * scale
        return line, sample


def _pool_numbers(name: str, n: int | None = None) -> np.ndarray:
    import spiceypy

    found, size, kind = _pool_info(name)
    if not found or kind != "N":
        raise CameraKernelError(f"instrument kernel keyword {name} is missing (or not numeric)")
    if n is not None and size != n:
        raise CameraKernelError(f"instrument kernel keyword {name} has {size} values, expected {n}")
    return np.atleast_1d(np.asarray(spiceypy.gdpool(name, 0, size), dtype=float))


def _pool_text(name: str) -> str:
    import spiceypy

    found, size, kind = _pool_info(name)
    if not found or kind != "C":
        raise CameraKernelError(f"instrument kernel keyword {name} is missing (or not text)")
    return str(spiceypy.gcpool(name, 0, 1)[0]).strip()


def _pool_info(name: str) -> tuple[bool, int, str]:
    import spiceypy

    try:
        size, kind = spiceypy.dtpool(name)
    except spiceypy.utils.exceptions.NotFoundError:
        return False, 0, ""
    return True, int(size), str(kind)


def band_camera(band: str) -> BandCamera:
    """The band's camera from the loaded kernel pool (IK keywords + FK frames).

    Needs the IK and FK loaded (the caller holds a KernelSet). Raises
    :class:`CameraKernelError` naming the first missing or unusable keyword.
    """
    import spiceypy

    naif = NAIF_BAND.get(band)
    if naif is None:
        raise ValueError(f"unknown JIRAM band {band!r} (known: {sorted(NAIF_BAND)})")
    prefix = f"INS{naif}_"
    focal = float(_pool_numbers(prefix + "FOCAL_LENGTH", 1)[0])
    pitch = _pool_numbers(prefix + "PIXEL_SIZE")
    if pitch.size == 2 and pitch[0] != pitch[1]:
        raise CameraKernelError(f"{prefix}PIXEL_SIZE {tuple(pitch)} is not square")
    pitch_mm = float(pitch[0]) / 1000.0  # micrometres (css.earth recipe, rms-oops px/1000)
    center = _pool_numbers(prefix + "CCD_CENTER", 2)
    n_samples = int(_pool_numbers(prefix + "PIXEL_SAMPLES", 1)[0])
    n_lines = int(_pool_numbers(prefix + "PIXEL_LINES", 1)[0])
    frame = _pool_text(prefix + "FOV_FRAME")
    if not (focal > 0 and pitch_mm > 0 and n_samples > 0 and n_lines > 0):
        raise CameraKernelError(
            f"{prefix}FOCAL_LENGTH {focal}, PIXEL_SIZE {pitch_mm * 1000}, PIXEL_SAMPLES "
            f"{n_samples} and PIXEL_LINES {n_lines} must be positive")
    if n_samples != N_SAMPLES or n_lines != N_LINES_BAND:
        raise CameraKernelError(
            f"{prefix}PIXEL_SAMPLES x PIXEL_LINES is {n_samples} x {n_lines}, but JIRAM band "
            f"strips are {N_SAMPLES} x {N_LINES_BAND}")
    try:
        rot = np.array(spiceypy.pxform(frame, FRAME_JIRAM_I, 0.0))
    except spiceypy.utils.exceptions.SpiceyError as exc:
        raise CameraKernelError(
            f"{prefix}FOV_FRAME {frame!r} does not connect to {FRAME_JIRAM_I} in the loaded FK "
            f"({exc.short if hasattr(exc, 'short') else exc})") from None
    return BandCamera(band=band, naif_id=naif, frame=frame, focal_length_mm=focal,
                      pixel_size_mm=pitch_mm, center_sample=float(center[0]) - CCD_CENTER_ORIGIN,
                      center_line=float(center[1]) - CCD_CENTER_ORIGIN, n_samples=n_samples,
                      n_lines=n_lines, to_instrument=rot)


def spin_axis_instrument() -> np.ndarray:
    """Juno's spin axis (JUNO_SPACECRAFT +Z) in JUNO_JIRAM_I, from the loaded FK.

    Composes the fixed (TK) frames from JUNO_JIRAM_I up to JUNO_SPACECRAFT
    (``tkfram``), so no CK is needed: JUNO_SPACECRAFT is a CK frame, and
    ``pxform`` between it and JUNO_JIRAM_I would evaluate the CK.
    """
    import spiceypy

    try:
        fid = spiceypy.namfrm(FRAME_JIRAM_I)
        target = spiceypy.namfrm(FRAME_SPACECRAFT)
        rot = np.eye(3)  # vectors in JUNO_JIRAM_I -> the current frame
        for _ in range(12):
            if fid == target:
                break
            r, base = spiceypy.tkfram(fid)
            rot = np.array(r) @ rot
            fid = base
        else:
            raise CameraKernelError(f"frames kernel: {FRAME_JIRAM_I} does not reach "
                                    f"{FRAME_SPACECRAFT} through fixed frames")
    except spiceypy.utils.exceptions.SpiceyError as exc:
        raise CameraKernelError(
            f"frames kernel: {FRAME_JIRAM_I} does not connect to {FRAME_SPACECRAFT} "
            f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc})") from None
    v = rot.T @ np.array([0.0, 0.0, 1.0])
    return v / np.linalg.norm(v)


# --- dark frames ------------------------------------------------------------------


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


@lru_cache(maxsize=len(DARK_EXPOSURES_MS))
def _dark_cached(exposure_ms: int) -> np.ndarray:
    dark = read_isis_cube_f32(dark_path(exposure_ms))[:, ::-1].copy()
    dark.setflags(write=False)
    return dark


def load_dark_dn(exposure_ms: int) -> np.ndarray:
    """Real JIRAM dark frame (DN, 256 x 432: L rows then M rows) in **archive** orientation."""
    return _dark_cached(exposure_ms).copy()


def check_bands(bands: tuple[str, ...]) -> tuple[str, ...]:
    """``bands`` if it is ("L", "M"), ("L",) or ("M",); ValueError naming it otherwise."""
    bands = tuple(bands)
    if bands not in (("L", "M"), ("L",), ("M",)):
        raise ValueError(f"bands {bands!r} are not a JIRAM imager layout (('L', 'M'), ('L',) "
                         "or ('M',), L rows first)")
    return bands


def dark_rows(bands: tuple[str, ...]) -> np.ndarray:
    """Rows of a 256-line dark for an image holding ``bands`` (L: 0-127, M: 128-255)."""
    bands = check_bands(bands)
    return np.concatenate([np.arange(N_LINES_BAND) + N_LINES_BAND * BAND_ORDER.index(b)
                           for b in bands])
