"""Write the simulated downlink's SPICE kernels with spiceypy.

The real generic kernels (LSK naif0012, PCK pck00010, Juno FK v1.2 with the
JIRAM band frames) are copied from the package; on top of them, in NAIF's
tree layout:

* ``ik/juno_jiram_sim_v02.ti`` -- the JIRAM imager IK of :mod:`iovolc.sim.instrument`
  (INS-61411 L band, INS-61412 M band, INS-61410 combined field);
* ``sclk/jno_sclkscet_sim_00002.tsc`` -- a Juno (-61) type-1 SCLK, linear
  through two real label pairs (START_TIME <-> SPACECRAFT_CLOCK_START_COUNT);
* ``spk/de_sim_v01.bsp`` -- Sun, Jupiter barycentre and Jupiter (conic);
* ``spk/juno_rec_sim_pjNNN_v01.bsp`` -- Io (circular, synchronous with the
  PCK's IAU_IO) and Juno (Jupiter-centric conic through the designed state);
* ``ck/juno_sc_rec_sim_pjNNN_v01.bc`` -- JUNO_SPACECRAFT attitude during each
  exposure as *reconstructed* (with the pointing error); the error-free CK
  goes to ``truth/kernels/ck/juno_sc_true_sim_pjNNN_v01.bc``.

Kernel names carry ``sim`` so that nobody mistakes them for NAIF's.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import spiceypy

from iovolc.jiram import N_LINES_BAND, N_SAMPLES
from iovolc.sim import instrument as ins
from iovolc.spice import base_kernels

GM_SUN_KM3_S2 = 1.32712440041e11
GM_JUPITER_SYS_KM3_S2 = 1.267127648e8
IO_ORBIT_RADIUS_KM = 421_700.0
AU_KM = 149_597_870.7
#: Jupiter mean elements at J2000 (Standish, ecliptic J2000), deg / AU
JUPITER_ELEMENTS = {"a_au": 5.20288700, "e": 0.04838624, "i_deg": 1.30439695,
                    "L_deg": 34.39644051, "varpi_deg": 14.72847983, "node_deg": 100.47390909}

IK_NAME = "juno_jiram_sim_v02.ti"
SCLK_NAME = "jno_sclkscet_sim_00002.tsc"
SOLAR_SPK_NAME = "de_sim_v01.bsp"

#: SCLK fit: real labels JIR_IMG_RDR_2017033T114006_V02 (2017-02-02T11:40:03.870 ->
#: 539307798:00786) and the SIS example (2022-01-12T09:22:01.269 -> 695251710:43909);
#: clock seconds per TDB second, and TDB at clock zero
SCLK_RATE = 1.0000012521157562
SCLK_ZERO_TDB_S = 550.3177835941315
TICKS_PER_SECOND = 65536


def pass_spk_name(perijove: int) -> str:
    return f"juno_rec_sim_pj{perijove:03d}_v01.bsp"


def pass_ck_name(perijove: int, *, true: bool = False) -> str:
    return f"juno_sc_{'true' if true else 'rec'}_sim_pj{perijove:03d}_v01.bc"


def copy_base_kernels(kernel_root: Path) -> list[str]:
    """Copy the real generic kernels into ``kernel_root`` (NAIF layout)."""
    names = []
    for src in base_kernels():
        dst = kernel_root / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            shutil.copyfile(src, dst)
        names.append(src.name)
    return names


def _text_kernel(path: Path, kind: str, comment: str, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"KPL/{kind}\n\n{comment.strip()}\n\n\\begindata\n\n{data.strip()}\n\n"
                    "\\begintext\n")


def _vec(v, indent: int = 30) -> str:
    """A kernel-pool vector, three numbers a line (text kernel lines must stay short)."""
    rows = [" ".join(f"{x: .15E}" for x in r) for r in np.reshape(v, (-1, 3))]
    return "( " + ("\n" + " " * indent).join(rows) + " )"


_IK_COMMENT = """
JIRAM imager instrument kernel -- SIMULATED (iovolc), not a NAIF product.

Optics (JIRAM SIS v7.5; NAIF juno_jiram_v02.ti; Adriani et al. 2017):
focal length 159.82 mm, pixel 38 micrometres, IFOV 237.767 microradian,
f/3.7. Frames from the real FK juno_v12_mod2.tf: JUNO_JIRAM_I_LBAND (-61411)
and JUNO_JIRAM_I_MBAND (-61412) are JUNO_JIRAM_I (-61410) turned -/+0.94012
deg about +Y; the L band looks toward +X of JUNO_JIRAM_I, the M band toward -X.

Pixel convention (INS-61411 and INS-61412, each a 128-line x 432-sample
strip): for the 0-based pixel centre (line l, sample s) of the strip,

    direction (band frame) = normalise( -(l - cl)*p, -(s - cs)*p, f )

with f = FOCAL_LENGTH (mm), p = PIXEL_SIZE / 1000 (mm) and
(cs, cl) = CCD_CENTER - 1 (CCD_CENTER is 1-based, sample first): sample
number grows toward -Y and line number toward -X of the band frame (the
spin direction is +X). FOV_BOUNDARY_CORNERS are the outer pixel-edge
corners (l, s) = (-0.5, -0.5), (-0.5, 431.5), (127.5, 431.5), (127.5, -0.5).

Image rows: SCI_I1 frames (256 lines) hold the L strip in rows 0-127 and
the M strip in rows 128-255; SCI_I2 (128 lines) the M strip, SCI_I3
(128 lines) the L strip. On the sky the two strip centres are ~138 lines
apart (the FK tilt), not 128.

INS-61410 (JUNO_JIRAM_I) is the combined field: its corners are the L
strip's +X edge and the M strip's -X edge. Its pixel grid is a virtual
266-line detector (1-based lines 1-128 = L strip, 139-266 = M strip, 10
unused lines between, as the FK tilt implies to 0.01 pixel); the image
rows of SCI_I1 frames skip the 10 unused lines. Use the band instruments
for pixel geometry.
"""


def write_ik(path: Path) -> None:
    """JIRAM imager IK: the pixel convention of :mod:`iovolc.sim.instrument`."""
    rows = []
    for band in ("L", "M"):
        rows += _ik_block(ins.BAND_NAIF[band], ins.BAND_FRAME[band], N_LINES_BAND,
                          ins.CCD_CENTER, ins.band_corners(band))
    rows += _ik_block(ins.NAIF_JIRAM_I, ins.FRAME_JIRAM_I, 266,
                      (ins.CCD_CENTER[0], 133.5), ins.band_corners(None))
    _text_kernel(path, "IK", _IK_COMMENT, "\n".join(rows))


def _ik_block(naif: int, frame: str, lines: int, center, corners) -> list[str]:
    k = f"INS{naif}"
    return [
        f"{k}_FOCAL_LENGTH          = {ins.FOCAL_LENGTH_MM}",
        f"{k}_PIXEL_SIZE            = {ins.PIXEL_SIZE_UM}",
        f"{k}_IFOV                  = {ins.IFOV_RAD:.6E}",
        f"{k}_F_NUMBER              = {ins.F_NUMBER}",
        f"{k}_CCD_CENTER            = ( {center[0]} {center[1]} )",
        f"{k}_PIXEL_SAMPLES         = {N_SAMPLES}",
        f"{k}_PIXEL_LINES           = {lines}",
        f"{k}_FOV_FRAME             = '{frame}'",
        f"{k}_FOV_SHAPE             = 'RECTANGLE'",
        f"{k}_BORESIGHT             = ( 0.0 0.0 1.0 )",
        f"{k}_FOV_CLASS_SPEC        = 'CORNERS'",
        f"{k}_FOV_BOUNDARY_CORNERS  = {_vec(corners)}",
        "",
    ]


def write_sclk(path: Path) -> None:
    """Juno type-1 SCLK, one partition, 'SSSSSSSSSS:TTTTT' (65536 ticks per second)."""
    comment = """
Juno spacecraft clock kernel -- SIMULATED (iovolc), not a NAIF product.
One partition, one linear segment against TDB fitted to two real JIRAM label
pairs: 2017-02-02T11:40:03.870 UTC <-> 539307798:00786 and
2022-01-12T09:22:01.269 UTC <-> 695251710:43909 (the real clock is in
partition 5 by 2022; this kernel has a single partition, labels write "1/").
"""
    data = f"""
SCLK_KERNEL_ID           = ( @2026-11-24T00:00:00 )
SCLK_DATA_TYPE_61        = ( 1 )
SCLK01_TIME_SYSTEM_61    = ( 1 )
SCLK01_N_FIELDS_61       = ( 2 )
SCLK01_MODULI_61         = ( 4294967296 {TICKS_PER_SECOND} )
SCLK01_OFFSETS_61        = ( 0 0 )
SCLK01_OUTPUT_DELIM_61   = ( 2 )
SCLK_PARTITION_START_61  = ( 0.0000000000000E+00 )
SCLK_PARTITION_END_61    = ( 2.8147497671065E+14 )
SCLK01_COEFFICIENTS_61   = ( 0.0000000000000E+00 {SCLK_ZERO_TDB_S:.9f} {1.0 / SCLK_RATE:.16f} )
"""
    _text_kernel(path, "SCLK", comment, data)


def sclk_string(et: float) -> str:
    """Label clock string '1/SSSSSSSSS:TTTTT' for an ET (SCLK loaded)."""
    ticks = spiceypy.sce2c(ins.NAIF_JUNO, et)
    sec = int(ticks // TICKS_PER_SECOND)
    tick = int(round(ticks - sec * TICKS_PER_SECOND))
    if tick == TICKS_PER_SECOND:
        sec, tick = sec + 1, 0
    return f"1/{sec}:{tick:05d}"


def _open_spk(path: Path, ifname: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    return spiceypy.spkopn(str(path), ifname, 4096)


def jupiter_state_ssb(et: float) -> np.ndarray:
    """Approximate heliocentric J2000 state of Jupiter (two-body, mean elements)."""
    el = JUPITER_ELEMENTS
    a, e = el["a_au"] * AU_KM, el["e"]
    elts = [a * (1 - e), e, np.radians(el["i_deg"]), np.radians(el["node_deg"]),
            np.radians(el["varpi_deg"] - el["node_deg"]),
            np.radians(el["L_deg"] - el["varpi_deg"]), 0.0, GM_SUN_KM3_S2]
    st = np.array(spiceypy.conics(elts, et))
    rot = np.array(spiceypy.pxform("ECLIPJ2000", "J2000", 0.0))
    return np.concatenate([rot @ st[:3], rot @ st[3:]])


def write_solar_spk(path: Path, *, et_start: float, et_stop: float) -> None:
    """Sun (at the SSB), Jupiter barycentre (conic), Jupiter (at its barycentre)."""
    handle = _open_spk(path, "iovolc simulated solar system")
    try:
        zeros = np.zeros((2, 6))
        step = et_stop - et_start
        spiceypy.spkw08(handle, 10, 0, "J2000", et_start, et_stop, "SUN AT SSB (SIM)",
                        1, 2, zeros, et_start, step)
        spiceypy.spkw08(handle, 599, 5, "J2000", et_start, et_stop, "JUPITER AT BARY (SIM)",
                        1, 2, zeros, et_start, step)
        et_mid = 0.5 * (et_start + et_stop)
        spiceypy.spkw05(handle, 5, 0, "J2000", et_start, et_stop, "JUPITER BARY CONIC (SIM)",
                        GM_SUN_KM3_S2, 1, [jupiter_state_ssb(et_mid)], [et_mid])
    finally:
        spiceypy.spkcls(handle)


def io_state_wrt_jupiter(et) -> np.ndarray:
    """Io's J2000 state wrt Jupiter: circular and synchronous with IAU_IO (PCK loaded).

    Jupiter stays at Io's 0 deg meridian; the radius is Io's mean orbital radius.
    """
    et = np.atleast_1d(np.asarray(et, dtype=float))
    out = np.empty((et.size, 6))
    for i, t in enumerate(et):
        xf = np.array(spiceypy.sxform("IAU_IO", "J2000", t))
        out[i] = -IO_ORBIT_RADIUS_KM * (xf @ np.array([1.0, 0, 0, 0, 0, 0]))
    return out


def write_pass_spk(path: Path, *, perijove: int, et_start: float, et_stop: float,
                   juno_state_wrt_jupiter: np.ndarray, juno_epoch: float,
                   io_step_s: float = 120.0) -> None:
    """Io (Hermite samples) and Juno (conic) over one pass window."""
    handle = _open_spk(path, f"iovolc simulated pass PJ{perijove}")
    try:
        n = int(np.ceil((et_stop - et_start) / io_step_s)) + 1
        epochs = et_start + io_step_s * np.arange(n)
        io = io_state_wrt_jupiter(epochs)
        spiceypy.spkw13(handle, 501, 599, "J2000", et_start, epochs[-1],
                        f"IO PJ{perijove} (SIM)", 7, n, io, epochs)
        spiceypy.spkw05(handle, ins.NAIF_JUNO, 599, "J2000", et_start, epochs[-1],
                        f"JUNO PJ{perijove} (SIM)", GM_JUPITER_SYS_KM3_S2, 1,
                        [np.asarray(juno_state_wrt_jupiter, dtype=float)], [juno_epoch])
    finally:
        spiceypy.spkcls(handle)


def write_ck(path: Path, *, segment_id: str, intervals_et: Sequence[tuple[float, float]],
             c_matrices: np.ndarray) -> None:
    """Type-2 CK for JUNO_SPACECRAFT: constant attitude over each interval (SCLK loaded).

    ``c_matrices[i]`` rotates J2000 vectors into JUNO_SPACECRAFT.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    start = np.array([spiceypy.sce2c(ins.NAIF_JUNO, a) for a, _ in intervals_et])
    stop = np.array([spiceypy.sce2c(ins.NAIF_JUNO, b) for _, b in intervals_et])
    quats = np.array([spiceypy.m2q(np.asarray(m)) for m in c_matrices])
    handle = spiceypy.ckopn(str(path), "iovolc simulated CK", 0)
    try:
        spiceypy.ckw02(handle, start[0], stop[-1], ins.NAIF_SPACECRAFT_FRAME, "J2000",
                       segment_id[:40], len(start), start, stop, quats, np.zeros((len(start), 3)),
                       np.full(len(start), 1.0 / TICKS_PER_SECOND))
    finally:
        spiceypy.ckcls(handle)
