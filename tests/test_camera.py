"""The JIRAM pixel model against SPICE's own view of the kernels (getfov, pxform).

The IK here is written in the test with the real keyword names of
``juno_jiram_v02.ti`` (``INS-6141x_FOCAL_LENGTH`` mm, ``_PIXEL_SIZE`` um,
``_CCD_CENTER``, ``_PIXEL_SAMPLES``, ``_PIXEL_LINES``, ``_FOV_FRAME``) and
FOV corners stated from the readers' convention (sample -> -Y, line -> -X,
1-based CCD_CENTER); the FK is the real Juno FK shipped in the package. The
pipeline's camera must reproduce SPICE's corners and frame tilts.
"""

from __future__ import annotations

import numpy as np
import pytest
import spiceypy

from iovolc import jiram
from iovolc.geometry import axis_rotation, pointing_correction
from iovolc.spice import base_kernels

F_MM, PITCH_UM, CENTER = 159.82, 38.0, (216.5, 64.5)


def _corner(line_edge: float, sample_edge: float) -> list[float]:
    # 0-based pixel-edge coordinates; centre (215.5, 63.5) in 0-based terms
    x = -(line_edge - (CENTER[1] - 1)) * PITCH_UM / 1000
    y = -(sample_edge - (CENTER[0] - 1)) * PITCH_UM / 1000
    v = np.array([x, y, F_MM])
    return list(v / np.linalg.norm(v))


def _ik_text() -> str:
    corners = [_corner(-0.5, -0.5), _corner(-0.5, 431.5), _corner(127.5, 431.5),
               _corner(127.5, -0.5)]
    out = ["KPL/IK", "", "Test JIRAM IK: sample grows toward -Y, line toward -X, CCD_CENTER",
           "1-based.", "", "\\begindata", ""]
    for naif, frame in ((-61411, "JUNO_JIRAM_I_LBAND"), (-61412, "JUNO_JIRAM_I_MBAND")):
        flat = "\n      ".join(" ".join(f"{c:.15f}" for c in v) for v in corners)
        out += [f"INS{naif}_FOCAL_LENGTH = {F_MM}", f"INS{naif}_PIXEL_SIZE = {PITCH_UM}",
                f"INS{naif}_CCD_CENTER = ( {CENTER[0]} {CENTER[1]} )",
                f"INS{naif}_PIXEL_SAMPLES = 432", f"INS{naif}_PIXEL_LINES = 128",
                f"INS{naif}_FOV_FRAME = '{frame}'", f"INS{naif}_FOV_SHAPE = 'RECTANGLE'",
                f"INS{naif}_BORESIGHT = ( 0.0 0.0 1.0 )",
                f"INS{naif}_FOV_CLASS_SPEC = 'CORNERS'",
                f"INS{naif}_FOV_BOUNDARY_CORNERS = ( {flat} )", ""]
    return "\n".join(out + ["\\begintext", ""])


@pytest.fixture()
def pool(tmp_path):
    ik = tmp_path / "juno_jiram_test.ti"
    ik.write_text(_ik_text())
    for p in base_kernels():
        spiceypy.furnsh(str(p))
    spiceypy.furnsh(str(ik))
    yield
    spiceypy.kclear()


@pytest.mark.parametrize("band", ["L", "M"])
def test_pixel_edges_are_the_getfov_corners(pool, band):
    cam = jiram.band_camera(band)
    shape, frame, bsight, n, bounds = spiceypy.getfov(jiram.NAIF_BAND[band], 4)
    assert frame == cam.frame == f"JUNO_JIRAM_I_{band}BAND"
    to_band = np.array(spiceypy.pxform("JUNO_JIRAM_I", frame, 0.0))
    edges = [(-0.5, -0.5), (-0.5, 431.5), (127.5, 431.5), (127.5, -0.5)]
    ours = np.array([to_band @ cam.directions(ln, sm) for ln, sm in edges])
    spice = np.array(bounds[:n]) / np.linalg.norm(bounds[:n], axis=1, keepdims=True)
    np.testing.assert_allclose(ours, spice, atol=1e-12)
    # the boresight is the centre of the strip
    np.testing.assert_allclose(to_band @ cam.directions(63.5, 215.5), bsight, atol=1e-12)
    # and the inverse
    line, sample = cam.pixels(np.array(spice) @ to_band)
    np.testing.assert_allclose(line, [-0.5, -0.5, 127.5, 127.5], atol=1e-9)
    np.testing.assert_allclose(sample, [-0.5, 431.5, 431.5, -0.5], atol=1e-9)


def test_sample_toward_minus_y_line_toward_minus_x(pool):
    cam = jiram.band_camera("M")
    to_band = np.array(spiceypy.pxform("JUNO_JIRAM_I", cam.frame, 0.0))
    d0 = to_band @ cam.directions(63.5, 215.5)
    ds = to_band @ cam.directions(63.5, 315.5) - d0
    dl = to_band @ cam.directions(163.5, 215.5) - d0
    assert ds[1] < 0 and abs(ds[0]) < 1e-12
    assert dl[0] < 0 and abs(dl[1]) < 1e-12


def test_band_strips_are_138_lines_apart_on_the_sky(pool):
    """The FK tilts L and M by -/+0.94012 deg about Y: the strip centres are ~138 px apart."""
    lcam, mcam = jiram.band_camera("L"), jiram.band_camera("M")
    d_l = lcam.directions(63.5, 215.5)
    d_m = mcam.directions(63.5, 215.5)
    sep_px = np.degrees(np.arccos(d_l @ d_m)) / np.degrees(mcam.ifov_rad)
    assert sep_px == pytest.approx(138.0, abs=0.2)
    # L looks toward +X of JUNO_JIRAM_I, M toward -X (FK text); lines grow toward -X, so
    # the M strip's line 0 continues the L strip's line 127 after a ~10-line gap
    assert d_l[0] > 0 > d_m[0]
    line_in_m, _ = mcam.pixels(lcam.directions(127.5, 215.5))
    assert line_in_m == pytest.approx(-10.5, abs=0.3)
    rot = np.array(spiceypy.pxform("JUNO_JIRAM_I_MBAND", "JUNO_JIRAM_I", 0.0))
    np.testing.assert_allclose(mcam.to_instrument, rot, atol=1e-15)


def test_spin_axis_and_correction_convention(pool):
    s = jiram.spin_axis_instrument()
    sc = np.array(spiceypy.pxform("JUNO_SPACECRAFT", "JUNO_JIRAM_I", 0.0)) @ [0, 0, 1.0]
    np.testing.assert_allclose(s, sc, atol=1e-15)
    assert abs(s[1]) > 0.9999  # the spin axis is the camera's Y axis: spin moves lines
    a, c = 0.12, -0.003
    cvec = np.cross(s, [0, 0, 1.0])
    expected = np.array(spiceypy.axisar(s, a)) @ np.array(spiceypy.axisar(cvec, c))
    np.testing.assert_allclose(pointing_correction(s, a, c), expected, atol=1e-14)
    np.testing.assert_allclose(axis_rotation([0, 0, 1.0], 0.3), spiceypy.axisar([0, 0, 1.0], 0.3),
                               atol=1e-15)


def test_missing_keyword_is_named(tmp_path):
    ik = tmp_path / "bad.ti"
    ik.write_text(_ik_text().replace("INS-61412_PIXEL_SIZE = 38.0", ""))
    for p in base_kernels():
        spiceypy.furnsh(str(p))
    spiceypy.furnsh(str(ik))
    try:
        with pytest.raises(jiram.CameraKernelError, match="INS-61412_PIXEL_SIZE"):
            jiram.band_camera("M")
        assert jiram.band_camera("L").band == "L"
    finally:
        spiceypy.kclear()
