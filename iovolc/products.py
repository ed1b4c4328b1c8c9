"""Calibrated-frame files: FITS with geometry backplanes as extensions.

Layout (docs/decisions.md, "Calibrated frames"):

* primary HDU: band radiance, float32, W m-2 sr-1 (hits and bad pixels
  replaced), with the frame's provenance and registration in the header;
* ``LAT`` (deg N, planetocentric), ``LON_WEST`` (deg W), ``EMISSION``,
  ``INCIDENCE``, ``PHASE`` (deg), ``PIXSCALE`` (km): float32, NaN off the disc;
* ``MASK``: uint8 bits 1 saturated, 2 bad pixel, 4 radiation hit (replaced).

The header keeps what the extraction stage needs to recompute geometry
exactly (``ETMID`` and the corrected camera-to-J2000 rotation ``C2J_ij``)
and the provenance: kernels used, calibration version, config hash.
"""

from __future__ import annotations

import io
import json

import numpy as np
from astropy.io import fits

from iovolc import jiram
from iovolc.geometry import PixelGeometry
from iovolc.pipeline import FrameResult
from iovolc.registration import Registration

FORMAT_VERSION = "iovolc-calibrated-1"
BACKPLANES = (
    ("LAT", "lat_deg", "deg"), ("LON_WEST", "lon_west_deg", "deg"),
    ("EMISSION", "emission_deg", "deg"), ("INCIDENCE", "incidence_deg", "deg"),
    ("PHASE", "phase_deg", "deg"), ("PIXSCALE", "pixel_scale_km", "km"),
)
MASK_SATURATED, MASK_BAD, MASK_HIT = 1, 2, 4


def frame_to_fits(result: FrameResult, *, kernels: list[str], config_hash: str = "") -> bytes:
    """Serialise one calibrated frame (deterministic bytes)."""
    s = result.summary
    hdr = fits.Header()
    hdr["FORMAT"] = (FORMAT_VERSION, "iovolc calibrated frame format")
    hdr["PRODUCT"] = (result.product_id, "source PDS3 product")
    hdr["BUNIT"] = "W/(m**2*sr)"
    for key, name in (("PERIJOVE", "perijove"), ("ETMID", "et_mid"), ("MODE", "mode"),
                      ("EXPOSURE", "exposure_s"), ("STARTUTC", "start_time_utc"),
                      ("TARGET", "target_name"), ("PRODTYPE", "product_type")):
        hdr[key] = s[name]
    reg = result.registration
    hdr["REGOK"] = (bool(reg.ok), "pointing registered on Io's limb")
    hdr["REGDL"] = (float(reg.d_line_px), "fitted offset, lines (observed - predicted)")
    hdr["REGDS"] = (float(reg.d_sample_px), "fitted offset, samples")
    sig = float(reg.sigma_px)
    hdr["REGSIG"] = (sig if np.isfinite(sig) else -1.0, "formal offset error (px), -1 none")
    hdr["REGWHY"] = (reg.reason[:60], "why not registered")
    cam = result.cam_to_j2000 if result.cam_to_j2000 is not None else np.eye(3)
    for i in range(3):
        for j in range(3):
            hdr[f"C2J_{i}{j}"] = float(cam[i, j])
    hdr["CONFIGH"] = (config_hash[:16], "pipeline configuration hash")
    for k, name in enumerate(kernels, start=1):
        hdr[f"KERN{k:03d}"] = name[:68]
    hdus = [fits.PrimaryHDU(result.radiance.astype(np.float32), header=hdr)]
    g = result.geometry
    for extname, attr, unit in BACKPLANES:
        data = np.asarray(getattr(g, attr), dtype=np.float32)
        if data.shape != result.radiance.shape:
            data = np.full(result.radiance.shape, np.nan, np.float32)
        h = fits.ImageHDU(data, name=extname)
        h.header["BUNIT"] = unit
        hdus.append(h)
    mask = (result.saturated * MASK_SATURATED + result.bad * MASK_BAD
            + result.hits * MASK_HIT).astype(np.uint8)
    hdus.append(fits.ImageHDU(mask, name="MASK"))
    # the per-frame summary (JSON) rides along as a one-row table
    js = json.dumps(_jsonable(s), sort_keys=True)
    hdus.append(fits.BinTableHDU.from_columns(
        [fits.Column(name="SUMMARY", format=f"{len(js)}A", array=np.array([js]))],
        name="SUMMARY"))
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


def fits_to_frame(data: bytes) -> FrameResult:
    """Read a calibrated frame back."""
    with fits.open(io.BytesIO(data)) as hdul:
        hdr = hdul[0].header
        if hdr.get("FORMAT") != FORMAT_VERSION:
            raise ValueError(f"not an iovolc calibrated frame ({hdr.get('FORMAT')!r})")
        radiance = np.array(hdul[0].data, dtype=np.float32)
        planes = {attr: np.array(hdul[ext].data, dtype=float) for ext, attr, _ in BACKPLANES}
        mask = np.array(hdul["MASK"].data)
        summary = json.loads(hdul["SUMMARY"].data["SUMMARY"][0])
        cam = np.array([[hdr[f"C2J_{i}{j}"] for j in range(3)] for i in range(3)])
        reg = Registration(float(hdr["REGDL"]), float(hdr["REGDS"]), bool(hdr["REGOK"]), 0.0, 0,
                           str(hdr.get("REGWHY", "")),
                           sigma_px=float(hdr["REGSIG"]) if hdr["REGSIG"] >= 0 else float("nan"))
    geom = PixelGeometry(on_disc=np.isfinite(planes["lat_deg"]),
                         range_km=planes["pixel_scale_km"] / jiram.IFOV_RAD, **planes)
    return FrameResult(str(hdr["PRODUCT"]), radiance, (mask & MASK_SATURATED) > 0,
                       (mask & MASK_BAD) > 0, (mask & MASK_HIT) > 0, geom, reg, summary, cam)


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        out[k] = v
    return out
