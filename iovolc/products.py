"""Calibrated-frame files: FITS with the cleaned radiance, its masks and the frame summary.

Layout (docs/decisions.md, "Calibrated frames"), format ``iovolc-calibrated-3``:

* primary HDU: header only -- the frame's provenance and its own limb fit;
* ``RADIANCE``: band radiance, float32, W m-2 sr-1 (hits and bad pixels
  replaced), rows in band order (L rows first), **tile-compressed losslessly**:
  ``GZIP_1`` on the float32 bytes with no quantisation (``quantize_level=0``:
  ``ZNAME1 = 'NOISEBIT'``, ``ZVAL1 = 0``, no scaled-integer columns), one tile
  per image row -- every value reads back bit for bit, so nothing downstream
  can change (0.19 MB per frame on the simulated PJ57/58 passes, at most
  0.29 MB, instead of 0.43 and 0.57 MB uncompressed: ``bench/storage.py``);
  each tile's gzip write time is zeroed, so the bytes are deterministic;
* ``MASK``: uint8 bits 1 saturated, 2 bad pixel (detector or impossible
  value), 4 radiation hit (replaced), tile-compressed the same way;
* ``SUMMARY``: the frame summary (JSON) as a one-row table.

Format ``iovolc-calibrated-2`` (uncompressed radiance in the primary HDU) is
still read. Geometry backplanes are **not** stored: they depend on the pass's
pointing solution, which is known only after every frame of the pass is
calibrated, and are recomputed on demand from the stored attitude (the
kernels the label names + the pointing correction in ``pointing/``):
:func:`iovolc.pipeline.backplanes`.
"""

from __future__ import annotations

import io
import json

import numpy as np
from astropy.io import fits

from iovolc.pipeline import FrameResult

FORMAT_VERSION = "iovolc-calibrated-3"
#: formats :func:`fits_to_frame` reads
READ_FORMATS = ("iovolc-calibrated-2", FORMAT_VERSION)
MASK_SATURATED, MASK_BAD, MASK_HIT = 1, 2, 4
#: tile compression of the images: lossless (no quantisation of the float radiance)
COMPRESSION = {"compression_type": "GZIP_1", "quantize_level": 0.0}


def frame_to_fits(result: FrameResult, *, kernels: list[str], config_hash: str = "") -> bytes:
    """Serialise one calibrated frame (deterministic bytes)."""
    s = result.summary
    hdr = fits.Header()
    hdr["FORMAT"] = (FORMAT_VERSION, "iovolc calibrated frame format")
    hdr["PRODUCT"] = (result.product_id, "source PDS3 product")
    hdr["BUNIT"] = "W/(m**2*sr)"
    for key, name in (("PERIJOVE", "perijove"), ("ETMID", "et_mid"), ("MODE", "mode"),
                      ("BANDS", "bands"), ("EXPOSURE", "exposure_s"),
                      ("STARTUTC", "start_time_utc"), ("PRODTYPE", "product_type")):
        hdr[key] = s[name]
    hdr["LIMBOK"] = (bool(s.get("limb_ok", False)), "own limb fit accepted")
    for key, name, what in (("LIMBALNG", "limb_along_rad", "limb fit: along-spin rotation (rad)"),
                            ("LIMBCRSS", "limb_cross_rad", "limb fit: cross-spin rotation (rad)")):
        v = float(s.get(name, 0.0))
        hdr[key] = (v if np.isfinite(v) else 0.0, what)
    hdr["CONFIGH"] = (config_hash[:16], "pipeline configuration hash")
    for k, name in enumerate(kernels, start=1):
        hdr[f"KERN{k:03d}"] = name[:68]
    mask = (result.saturated * MASK_SATURATED + result.bad * MASK_BAD
            + result.hits * MASK_HIT).astype(np.uint8)
    rad = fits.CompImageHDU(np.asarray(result.radiance, dtype=np.float32), name="RADIANCE",
                            **COMPRESSION)
    rad.header["BUNIT"] = "W/(m**2*sr)"
    hdus = [fits.PrimaryHDU(header=hdr), rad,
            fits.CompImageHDU(mask, name="MASK", **COMPRESSION)]
    js = json.dumps(_jsonable(s), sort_keys=True)
    hdus.append(fits.BinTableHDU.from_columns(
        [fits.Column(name="SUMMARY", format=f"{len(js)}A", array=np.array([js]))],
        name="SUMMARY"))
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return _without_gzip_times(buf.getvalue())


def _without_gzip_times(blob: bytes) -> bytes:
    """The same FITS with every gzip-compressed tile's write time (MTIME) set to 0.

    astropy gzips each tile with the current time in the gzip header (RFC 1952:
    bytes 4-7 of a member), so the same frame written a second later would
    differ. Each tile is found through the compressed table's heap descriptors
    (``COMPRESSED_DATA``, ``1PB``: count and offset, big-endian int32).
    """
    out = bytearray(blob)
    with fits.open(io.BytesIO(blob), disable_image_compression=True) as hdul:
        for i, hdu in enumerate(hdul):
            h = hdu.header
            if not (h.get("ZIMAGE") and str(h.get("ZCMPTYPE", "")).startswith("GZIP")):
                continue
            if h["TTYPE1"] != "COMPRESSED_DATA" or not h["TFORM1"].startswith("1PB"):
                raise ValueError(f"unexpected compressed-table layout {h['TFORM1']!r}")
            start = hdul.fileinfo(i)["datLoc"]
            heap = start + h.get("THEAP", h["NAXIS1"] * h["NAXIS2"])
            rows = np.frombuffer(blob, dtype=">i4", count=h["NAXIS2"] * h["NAXIS1"] // 4,
                                 offset=start).reshape(h["NAXIS2"], -1)
            for count, offset in rows[:, :2]:
                at = heap + int(offset)
                if count >= 10 and out[at:at + 2] == b"\x1f\x8b":
                    out[at + 4:at + 8] = b"\0\0\0\0"
    return bytes(out)


def fits_to_frame(data: bytes) -> FrameResult:
    """Read a calibrated frame back."""
    with fits.open(io.BytesIO(data)) as hdul:
        hdr = hdul[0].header
        fmt = hdr.get("FORMAT")
        if fmt not in READ_FORMATS:
            raise ValueError(f"not an iovolc calibrated frame ({fmt!r})")
        image = hdul[0] if fmt == "iovolc-calibrated-2" else hdul["RADIANCE"]
        radiance = np.array(image.data, dtype=np.float32)
        mask = np.array(hdul["MASK"].data, dtype=np.uint8)
        summary = json.loads(hdul["SUMMARY"].data["SUMMARY"][0])
    summary = {k: (float("nan") if v is None and k.endswith(("_rad", "_px")) else v)
               for k, v in summary.items()}
    return FrameResult(str(hdr["PRODUCT"]), radiance, (mask & MASK_SATURATED) > 0,
                       (mask & MASK_BAD) > 0, (mask & MASK_HIT) > 0, summary)


def fits_kernels(data: bytes) -> list[str]:
    """The kernels a calibrated frame was made with (in the label's order)."""
    with fits.open(io.BytesIO(data)) as hdul:
        h = hdul[0].header
        return [str(h[k]) for k in sorted(h) if k.startswith("KERN")]


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        out[k] = v
    return out
