"""Calibrated-frame files: FITS with the cleaned radiance, its masks and the frame summary.

Layout (docs/decisions.md, "Calibrated frames"), format ``iovolc-calibrated-4``,
written and read by :mod:`iovolc.tiled_fits` (standard FITS; astropy reads it):

* primary HDU: header only -- the frame's provenance and its own limb fit;
* ``RADIANCE``: band radiance, float32, W m-2 sr-1 (hits and bad pixels
  replaced), rows in band order (L rows first), **tile-compressed losslessly**:
  ``GZIP_1`` on the big-endian float32 bytes with no quantisation
  (``ZNAME1 = 'NOISEBIT'``, ``ZVAL1 = 0``, no scaled-integer columns), one
  tile per 16 image rows -- every value reads back bit for bit, so nothing
  downstream can change (``bench/storage.py`` prints the size per frame);
  each tile's gzip write time is 0, so the bytes are deterministic for one deflate
  build (ISA-L's or zlib's, :mod:`iovolc.tiled_fits`; :func:`same_frame` compares
  what they decode to);
* ``MASK``: uint8 bits 1 saturated, 2 bad pixel (detector or impossible
  value), 4 radiation hit (replaced), tile-compressed the same way;
* ``SUMMARY``: the frame summary (JSON) as a one-row table.

Format 3 (the same layout, one tile per row, written by astropy) and format 2
(uncompressed radiance in the primary HDU) are still read. Geometry backplanes
are **not** stored: they depend on the pass's pointing solution, which is
known only after every frame of the pass is calibrated, and are recomputed on
demand from the stored attitude (the kernels the label names + the pointing
correction in ``pointing/``): :func:`iovolc.pipeline.backplanes`.
"""

from __future__ import annotations

import io
import json

import numpy as np
from astropy.io import fits

from iovolc import tiled_fits as tf
from iovolc.pipeline import FrameResult

FORMAT_VERSION = "iovolc-calibrated-4"
#: formats :func:`fits_to_frame` reads
READ_FORMATS = ("iovolc-calibrated-2", "iovolc-calibrated-3", FORMAT_VERSION)
MASK_SATURATED, MASK_BAD, MASK_HIT = 1, 2, 4


def frame_to_fits(result: FrameResult, *, kernels: list[str], config_hash: str = "") -> bytes:
    """Serialise one calibrated frame (deterministic bytes for one deflate build;
    :mod:`iovolc.tiled_fits`)."""
    s = result.summary
    cards = [tf.card("FORMAT", FORMAT_VERSION, "iovolc calibrated frame format"),
             tf.card("PRODUCT", result.product_id, "source PDS3 product"),
             tf.card("BUNIT", "W/(m**2*sr)")]
    for key, name in (("PERIJOVE", "perijove"), ("ETMID", "et_mid"), ("MODE", "mode"),
                      ("BANDS", "bands"), ("EXPOSURE", "exposure_s"),
                      ("STARTUTC", "start_time_utc"), ("PRODTYPE", "product_type")):
        cards.append(tf.card(key, s[name]))
    cards.append(tf.card("LIMBOK", bool(s.get("limb_ok", False)), "own limb fit accepted"))
    for key, name, what in (("LIMBALNG", "limb_along_rad", "limb fit: along-spin rotation (rad)"),
                            ("LIMBCRSS", "limb_cross_rad", "limb fit: cross-spin rotation (rad)")):
        v = float(s.get(name, 0.0))
        cards.append(tf.card(key, v if np.isfinite(v) else 0.0, what))
    cards.append(tf.card("CONFIGH", config_hash[:16], "pipeline configuration hash"))
    cards += [tf.card(f"KERN{k:03d}", name[:68]) for k, name in enumerate(kernels, start=1)]
    mask = (result.saturated * MASK_SATURATED + result.bad * MASK_BAD
            + result.hits * MASK_HIT).astype(np.uint8)
    js = summary_json(s)
    return b"".join([
        tf.primary_hdu(cards),
        tf.compressed_image_hdu(np.asarray(result.radiance, dtype=np.float32), name="RADIANCE",
                                cards=[tf.card("BUNIT", "W/(m**2*sr)")]),
        tf.compressed_image_hdu(mask, name="MASK"),
        tf.text_table_hdu("SUMMARY", js, name="SUMMARY")])


def fits_to_frame(data: bytes) -> FrameResult:
    """Read a calibrated frame back (any of :data:`READ_FORMATS`)."""
    hdus = tf.read_hdus(data)
    if hdus is not None and len(hdus) == 4 and hdus[0].header.get("FORMAT") in READ_FORMATS \
            and [h.header.get("EXTNAME") for h in hdus[1:]] == ["RADIANCE", "MASK", "SUMMARY"] \
            and hdus[1].image is not None and hdus[2].image is not None \
            and hdus[3].text is not None:
        product = str(hdus[0].header["PRODUCT"])
        radiance = hdus[1].image.astype(np.float32, copy=False)
        mask = hdus[2].image.astype(np.uint8, copy=False)
        summary = json.loads(hdus[3].text)
    else:  # another layout (format 2: the radiance in the primary HDU): astropy
        with fits.open(io.BytesIO(data)) as hdul:
            hdr = hdul[0].header
            fmt = hdr.get("FORMAT")
            if fmt not in READ_FORMATS:
                raise ValueError(f"not an iovolc calibrated frame ({fmt!r})")
            image = hdul[0] if fmt == "iovolc-calibrated-2" else hdul["RADIANCE"]
            radiance = np.array(image.data, dtype=np.float32)
            mask = np.array(hdul["MASK"].data, dtype=np.uint8)
            summary = json.loads(hdul["SUMMARY"].data["SUMMARY"][0])
            product = str(hdr["PRODUCT"])
    summary = {k: (float("nan") if v is None and k.endswith(("_rad", "_px")) else v)
               for k, v in summary.items()}
    return FrameResult(product, radiance, (mask & MASK_SATURATED) > 0,
                       (mask & MASK_BAD) > 0, (mask & MASK_HIT) > 0, summary)


def fits_header(data: bytes) -> dict:
    """The primary header's values of a calibrated frame."""
    parsed = tf.read_primary_header(data)
    if parsed is None:
        with fits.open(io.BytesIO(data)) as hdul:
            parsed = dict(hdul[0].header)
    return parsed


def fits_kernels(data: bytes) -> list[str]:
    """The kernels a calibrated frame was made with (in the label's order)."""
    return _kernels_in(fits_header(data))


def _kernels_in(header: dict) -> list[str]:
    return [str(header[k]) for k in sorted(header) if k.startswith("KERN")]


def summary_json(summary: dict) -> str:
    """A frame summary as stored (JSON, keys sorted, NaN as null)."""
    return json.dumps(_jsonable(summary), sort_keys=True)


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        out[k] = v
    return out


def same_frame(stored: bytes, new: FrameResult, *, kernels: list[str], config_hash: str
               ) -> bool:
    """Whether stored FITS bytes hold this very frame: the same pixels, masks, summary,
    kernels and configuration, in another writer's (or zlib build's) bytes. A retry
    after an upgrade is then not a conflict; anything else that differs still is."""
    try:
        old = fits_to_frame(stored)
        header = fits_header(stored)
    except Exception:  # noqa: BLE001 - unreadable: not the same
        return False
    return (old.product_id == new.product_id
            and np.array_equal(np.asarray(old.radiance, np.float32).view(np.uint32),
                               np.asarray(new.radiance, np.float32).view(np.uint32))
            and all(np.array_equal(getattr(old, k), getattr(new, k))
                    for k in ("saturated", "bad", "hits"))
            and summary_json(old.summary) == summary_json(new.summary)
            and _kernels_in(header) == [k[:68] for k in kernels]
            and str(header.get("CONFIGH", "")) == config_hash[:16])
