"""Write the simulated downlink's SPICE kernels with spiceypy.

Real generic kernels (LSK naif0012, PCK pck00010, Juno FK v1.2) are copied
from the package; on top of them we write, in NAIF's tree layout:

* ``ik/juno_jiram_sim_v01.ti`` — JIRAM imager IK from the published optics;
* ``sclk/jno_sclkscet_sim_00001.tsc`` — a Juno (-61) type-1 SCLK;
* ``spk/de_sim_v01.bsp`` — Sun, Jupiter barycentre and Jupiter (conic);
* ``spk/juno_rec_sim_pjNNN_v01.bsp`` — per pass: Io (synchronous circular
  orbit consistent with the PCK's IAU_IO rotation) and Juno (Jupiter-centric
  conic through the designed flyby state);
* ``ck/juno_sc_rec_sim_pjNNN_v01.bc`` — per pass: JUNO_SPACECRAFT attitude
  during each exposure (the *reconstructed* pointing, off by the despinning
  mirror error); the true attitude goes to the truth folder.

Kernel names carry ``sim`` so that nobody mistakes them for NAIF's.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import spiceypy

from iovolc import jiram
from iovolc.spice import base_kernels

GM_SUN_KM3_S2 = 1.32712440041e11
GM_JUPITER_SYS_KM3_S2 = 1.267127648e8
IO_ORBIT_RADIUS_KM = 421_700.0
AU_KM = 149_597_870.7
#: Jupiter mean elements at J2000 (Standish, ecliptic J2000), deg / AU
JUPITER_ELEMENTS = {
    "a_au": 5.20288700,
    "e": 0.04838624,
    "i_deg": 1.30439695,
    "L_deg": 34.39644051,
    "varpi_deg": 14.72847983,
    "node_deg": 100.47390909,
}

IK_NAME = "juno_jiram_sim_v01.ti"
SCLK_NAME = "jno_sclkscet_sim_00001.tsc"
SOLAR_SPK_NAME = "de_sim_v01.bsp"


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


def _text_kernel(path: Path, comment: str, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "KPL/" + ("IK" if path.suffix == ".ti" else "SCLK") + "\n\n" + comment.strip()
        + "\n\n\\begindata\n\n" + data.strip() + "\n\n\\begintext\n"
    )


def write_ik(path: Path) -> None:
    """JIRAM imager IK (published optics; our pinhole camera convention)."""
    ifov = jiram.IFOV_RAD
    half_lines = np.degrees(np.arctan(jiram.N_LINES_FULL / 2 * ifov))
    half_samples = np.degrees(np.arctan(jiram.N_SAMPLES / 2 * ifov))
    half_band = np.degrees(np.arctan(jiram.N_LINES_BAND / 2 * ifov))
    comment = """
JIRAM imager instrument kernel -- SIMULATED (iovolc), not a NAIF product.

Published optics (JIRAM SIS v7.5, Adriani et al. 2017): IFOV 237.767
microradian/pixel, focal length 159.82 mm, f/3.7, 38 micron pixels; 432
samples x 256 lines; lines 0-127 L band (3.32-3.60 um), 128-255 M band
(4.54-5.04 um).

Pinhole camera model in frame JUNO_JIRAM_I (+Z boresight, +X along the
CCD columns = the spin direction, juno_v12_mod2.tf). For a 0-based pixel
centre (line, sample) of the full 256-line detector:
    x = -(line   - CCD_CENTER[1]) * IFOV
    y = +(sample - CCD_CENTER[0]) * IFOV
    direction = normalise( x, y, 1 )
so the M band (lines 128-255) lies on -X, as the FK's M-band frame does.
128-line frames (modes I2, I3) use detector lines 128-255 (M) or 0-127 (L).
"""
    data = f"""
INS{jiram.NAIF_JIRAM_I}_FOCAL_LENGTH       = {jiram.FOCAL_LENGTH_MM}
INS{jiram.NAIF_JIRAM_I}_PIXEL_SIZE         = {jiram.PIXEL_PITCH_UM / 1000.0}
INS{jiram.NAIF_JIRAM_I}_F_NUMBER           = {jiram.F_NUMBER}
INS{jiram.NAIF_JIRAM_I}_IFOV               = {ifov:.6E}
INS{jiram.NAIF_JIRAM_I}_PIXEL_SAMPLES      = {jiram.N_SAMPLES}
INS{jiram.NAIF_JIRAM_I}_PIXEL_LINES        = {jiram.N_LINES_FULL}
INS{jiram.NAIF_JIRAM_I}_CCD_CENTER         = ( {jiram.CENTER_SAMPLE} {jiram.CENTER_LINE} )
INS{jiram.NAIF_JIRAM_I}_LINE_AXIS_SIGN     = -1
INS{jiram.NAIF_JIRAM_I}_SAMPLE_AXIS_SIGN   = 1
INS{jiram.NAIF_JIRAM_I}_FOV_FRAME          = '{jiram.FRAME_JIRAM_I}'
INS{jiram.NAIF_JIRAM_I}_FOV_SHAPE          = 'RECTANGLE'
INS{jiram.NAIF_JIRAM_I}_BORESIGHT          = ( 0.0 0.0 1.0 )
INS{jiram.NAIF_JIRAM_I}_FOV_CLASS_SPEC     = 'ANGLES'
INS{jiram.NAIF_JIRAM_I}_FOV_REF_VECTOR     = ( 1.0 0.0 0.0 )
INS{jiram.NAIF_JIRAM_I}_FOV_REF_ANGLE      = {half_lines:.8f}
INS{jiram.NAIF_JIRAM_I}_FOV_CROSS_ANGLE    = {half_samples:.8f}
INS{jiram.NAIF_JIRAM_I}_FOV_ANGLE_UNITS    = 'DEGREES'

INS{jiram.NAIF_JIRAM_I_LBAND}_FOV_FRAME      = 'JUNO_JIRAM_I_LBAND'
INS{jiram.NAIF_JIRAM_I_LBAND}_FOV_SHAPE      = 'RECTANGLE'
INS{jiram.NAIF_JIRAM_I_LBAND}_BORESIGHT      = ( 0.0 0.0 1.0 )
INS{jiram.NAIF_JIRAM_I_LBAND}_FOV_CLASS_SPEC = 'ANGLES'
INS{jiram.NAIF_JIRAM_I_LBAND}_FOV_REF_VECTOR = ( 1.0 0.0 0.0 )
INS{jiram.NAIF_JIRAM_I_LBAND}_FOV_REF_ANGLE  = {half_band:.8f}
INS{jiram.NAIF_JIRAM_I_LBAND}_FOV_CROSS_ANGLE = {half_samples:.8f}
INS{jiram.NAIF_JIRAM_I_LBAND}_FOV_ANGLE_UNITS = 'DEGREES'

INS{jiram.NAIF_JIRAM_I_MBAND}_FOV_FRAME      = 'JUNO_JIRAM_I_MBAND'
INS{jiram.NAIF_JIRAM_I_MBAND}_FOV_SHAPE      = 'RECTANGLE'
INS{jiram.NAIF_JIRAM_I_MBAND}_BORESIGHT      = ( 0.0 0.0 1.0 )
INS{jiram.NAIF_JIRAM_I_MBAND}_FOV_CLASS_SPEC = 'ANGLES'
INS{jiram.NAIF_JIRAM_I_MBAND}_FOV_REF_VECTOR = ( 1.0 0.0 0.0 )
INS{jiram.NAIF_JIRAM_I_MBAND}_FOV_REF_ANGLE  = {half_band:.8f}
INS{jiram.NAIF_JIRAM_I_MBAND}_FOV_CROSS_ANGLE = {half_samples:.8f}
INS{jiram.NAIF_JIRAM_I_MBAND}_FOV_ANGLE_UNITS = 'DEGREES'
"""
    _text_kernel(path, comment, data)


#: parallel-time (TDB s past J2000) of SCLK 0, and drift (s per s)
SCLK_EPOCH_TDB_S = -43_135.816
SCLK_RATE = 1.0000000125


def write_sclk(path: Path) -> None:
    """Juno type-1 SCLK: 'seconds:ticks', 65536 ticks per second."""
    comment = """
Juno spacecraft clock kernel -- SIMULATED (iovolc), not a NAIF product.
Format 'SSSSSSSSSS:TTTTT' (seconds, 1/65536 ticks), one partition, one
linear segment against TDB; clock string as JIRAM labels show it
(SPACECRAFT_CLOCK_START_COUNT = "771564701:62717").
"""
    data = f"""
SCLK_KERNEL_ID           = ( @2026-11-24T00:00:00 )
SCLK_DATA_TYPE_61        = ( 1 )
SCLK01_TIME_SYSTEM_61    = ( 1 )
SCLK01_N_FIELDS_61       = ( 2 )
SCLK01_MODULI_61         = ( 4294967296 65536 )
SCLK01_OFFSETS_61        = ( 0 0 )
SCLK01_OUTPUT_DELIM_61   = ( 2 )
SCLK_PARTITION_START_61  = ( 0.0000000000000E+00 )
SCLK_PARTITION_END_61    = ( 2.8147497671065E+14 )
SCLK01_COEFFICIENTS_61   = ( 0.0000000000000E+00 {SCLK_EPOCH_TDB_S:.6f} {SCLK_RATE:.10f} )
"""
    _text_kernel(path, comment, data)


def _open_spk(path: Path, ifname: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    return spiceypy.spkopn(str(path), ifname, 4096)


def jupiter_state_ssb(et: float) -> np.ndarray:
    """Approximate heliocentric J2000 state of Jupiter (two-body, mean elements)."""
    el = JUPITER_ELEMENTS
    a = el["a_au"] * AU_KM
    e = el["e"]
    m0 = np.radians(el["L_deg"] - el["varpi_deg"])
    elts = [
        a * (1 - e), e, np.radians(el["i_deg"]), np.radians(el["node_deg"]),
        np.radians(el["varpi_deg"] - el["node_deg"]), m0, 0.0, GM_SUN_KM3_S2,
    ]
    st_ecl = np.array(spiceypy.conics(elts, et))
    rot = np.array(spiceypy.pxform("ECLIPJ2000", "J2000", 0.0))
    return np.concatenate([rot @ st_ecl[:3], rot @ st_ecl[3:]])


def write_solar_spk(path: Path, *, et_start: float, et_stop: float) -> None:
    """Sun (at SSB), Jupiter barycentre (conic), Jupiter (at barycentre)."""
    handle = _open_spk(path, "iovolc simulated solar system")
    try:
        zeros = np.zeros((2, 6))
        step = et_stop - et_start
        spiceypy.spkw08(handle, 10, 0, "J2000", et_start, et_stop, "SUN AT SSB (SIM)",
                        1, 2, zeros, et_start, step)
        spiceypy.spkw08(handle, 599, 5, "J2000", et_start, et_stop, "JUPITER AT BARY (SIM)",
                        1, 2, zeros, et_start, step)
        et_mid = 0.5 * (et_start + et_stop)
        st = jupiter_state_ssb(et_mid)
        spiceypy.spkw05(handle, 5, 0, "J2000", et_start, et_stop, "JUPITER BARY CONIC (SIM)",
                        GM_SUN_KM3_S2, 1, [st], [et_mid])
    finally:
        spiceypy.spkcls(handle)


def io_state_wrt_jupiter(et) -> np.ndarray:
    """Io's J2000 state wrt Jupiter: circular, synchronous with IAU_IO.

    Io is placed so that Jupiter is at its 0 deg longitude at every instant
    (Io's sub-Jupiter meridian), at the Kepler radius of the PCK's spin rate.
    Needs the PCK loaded.
    """
    et = np.atleast_1d(np.asarray(et, dtype=float))
    out = np.empty((et.size, 6))
    for i, t in enumerate(et):
        xf = np.array(spiceypy.sxform("IAU_IO", "J2000", t))
        x = xf @ np.array([1.0, 0, 0, 0, 0, 0])
        out[i] = -IO_ORBIT_RADIUS_KM * x
    return out


def write_pass_spk(
    path: Path,
    *,
    perijove: int,
    et_start: float,
    et_stop: float,
    juno_state_wrt_jupiter: np.ndarray,
    juno_epoch: float,
    io_step_s: float = 120.0,
) -> None:
    """Io (Hermite samples) and Juno (conic) over one pass window."""
    handle = _open_spk(path, f"iovolc simulated pass PJ{perijove}")
    try:
        n = int(np.ceil((et_stop - et_start) / io_step_s)) + 1
        epochs = et_start + io_step_s * np.arange(n)
        epochs[-1] = max(epochs[-1], et_stop)
        io = io_state_wrt_jupiter(epochs)
        spiceypy.spkw13(handle, 501, 599, "J2000", et_start, epochs[-1],
                        f"IO PJ{perijove} (SIM)", 7, n, io, epochs)
        spiceypy.spkw05(handle, -61, 599, "J2000", et_start, epochs[-1],
                        f"JUNO PJ{perijove} (SIM)", GM_JUPITER_SYS_KM3_S2, 1,
                        [np.asarray(juno_state_wrt_jupiter, dtype=float)], [juno_epoch])
    finally:
        spiceypy.spkcls(handle)


def write_ck(
    path: Path,
    *,
    segment_id: str,
    intervals_et: Sequence[tuple[float, float]],
    c_matrices: np.ndarray,
) -> None:
    """Type-2 CK for JUNO_SPACECRAFT: constant attitude over each interval.

    ``c_matrices[i]`` rotates J2000 vectors into JUNO_SPACECRAFT.
    Needs the SCLK loaded.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    sc = jiram.NAIF_JUNO
    start = np.array([spiceypy.sce2c(sc, a) for a, _ in intervals_et])
    stop = np.array([spiceypy.sce2c(sc, b) for _, b in intervals_et])
    quats = np.array([spiceypy.m2q(m) for m in c_matrices])
    avvs = np.zeros((len(start), 3))
    rates = np.full(len(start), 1.0 / 65536.0)
    handle = spiceypy.ckopn(str(path), "iovolc simulated CK", 0)
    try:
        spiceypy.ckw02(handle, start[0], stop[-1], jiram.NAIF_JUNO_SPACECRAFT_FRAME, "J2000",
                       segment_id[:40], len(start), start, stop, quats, avvs, rates)
    finally:
        spiceypy.ckcls(handle)


def sclk_string(et: float) -> str:
    """Juno clock string 'SSSSSSSSSS:TTTTT' for an ET (SCLK loaded)."""
    ticks = spiceypy.sce2c(jiram.NAIF_JUNO, et)
    sec = int(ticks // 65536)
    tick = int(round(ticks - sec * 65536))
    if tick == 65536:
        sec, tick = sec + 1, 0
    return f"{sec:010d}:{tick:05d}"
