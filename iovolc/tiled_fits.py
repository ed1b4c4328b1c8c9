"""A small writer and reader of the FITS files iovolc writes: header-only primary HDU,
tile-compressed images (GZIP_1, lossless), a one-row text table.

Why not astropy here: for a 432 x 256 frame astropy's general machinery (a
``Card`` object per keyword, configuration lookups per tile, the compressed
HDU's header translation) spent ~38 ms writing and ~14 ms reading
(``bench/storage.py``), most of it outside zlib; in the orchestrated run
that was a large part of a frame's cost. This module writes the same standard
layout directly (FITS 4.0 section 10, "Representations of compressed
data"; the tiled image convention of Pence et al. 2010 / CFITSIO):

* each compressed image is a ``BINTABLE`` with ``ZIMAGE = T``, one row per
  tile, the column ``COMPRESSED_DATA`` a variable-length byte array
  (``1PB``: big-endian int32 count and heap offset), the tiles in the heap;
* a tile is ``ZTILE2`` whole image rows; its pixels are big-endian (``>f4``
  for ``ZBITPIX = -32``, bytes for 8), gzip-compressed (``GZIP_1``) with a
  zero write time, so the same frame gives the same bytes; floats are not
  quantised (``ZNAME1 = 'NOISEBIT'``, ``ZVAL1 = 0.0``, no ``ZSCALE``).

The deflate streams come from ISA-L (``isal.isal_zlib``, stop 23) where it imports,
else from zlib: the same standard gzip members (RFC 1952), read by zlib, cfitsio and
astropy alike; a frame's whole write is 2.4x faster than with zlib's level 1 and about
as small (``bench/storage.py`` prints both). Only the bytes differ, not what they
decode to: ISA-L's header says "unknown OS" and no "fastest" flag, and its bytes are
the same for one library build on one class of processor (as zlib's are for one zlib
build). The frames read back are the same pixels, so nothing downstream changes; a
frame written by either is "the same frame" to :func:`iovolc.products.same_frame`, so a
store written by one build stays valid for another. A damaged tile raises the codec's
error (``zlib.error`` or ISA-L's), never returns wrong pixels.

Files written here are read by astropy (tested: the same arrays and header
values, and ``verify`` finds nothing); :func:`read_hdus` reads them and the
astropy-written files of the same layout, and returns None for anything else
so that the caller can fall back to astropy.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

try:  # ISA-L's deflate: the same streams as zlib's, faster (see the module docstring)
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - a platform without its wheel
    _fast_zlib = zlib

#: the deflate module the tiles are written and read with (``zlib``'s interface)
CODEC = _fast_zlib

BLOCK = 2880
#: image rows per compressed tile
TILE_ROWS = 16
_ZBITPIX = {np.dtype(np.float32): -32, np.dtype(np.uint8): 8}
_DTYPE = {-32: ">f4", 8: "u1"}


# --- writing ---------------------------------------------------------------------------


def _value(v) -> str:
    if isinstance(v, bool | np.bool_):
        return ("T" if v else "F").rjust(20)
    if isinstance(v, int | np.integer):
        return str(int(v)).rjust(20)
    if isinstance(v, float | np.floating):
        v = float(v)
        if not np.isfinite(v):
            raise ValueError(f"a FITS header value must be finite, not {v}")
        s = repr(v).upper()
        if "." not in s and "E" not in s:
            s += ".0"
        digits = 15
        while len(s) > 20 or not np.isfinite(float(s)):  # fixed format: 20 characters
            s = f"{v:.{digits}E}"
            digits -= 1
        return s.rjust(20)
    s = str(v)
    _printable(s)
    return "'" + s.replace("'", "''").ljust(8) + "'"


def _printable(s: str) -> None:
    # every character 0x20-0x7E: ASCII's printable ones (stop 33: was a generator over
    # the characters, ~1 us a card; tests/test_tiled_fits.py checks every code point)
    if not (s.isascii() and s.isprintable()):
        raise ValueError(f"FITS header text must be printable ASCII (0x20-0x7E), not {s!r}")


def card(key: str, value, comment: str = "") -> bytes:
    """One 80-byte header card ``KEY = value / comment`` (fixed format)."""
    if len(key) > 8 or not key.replace("_", "").replace("-", "").isalnum() or key != key.upper():
        raise ValueError(f"not a FITS keyword: {key!r}")
    text = f"{key:<8}= {_value(value):<20}"
    _printable(comment)
    if comment:
        text += f" / {comment}"
    if len(text) > 80:
        if len(text) - len(comment) > 77:  # the value itself does not fit
            raise ValueError(f"FITS card {key} is longer than 80 characters")
        text = text[:80]
    return text.ljust(80).encode("ascii")


def header(cards: list[bytes]) -> bytes:
    """Cards + END, padded with blanks to whole 2880-byte blocks."""
    raw = b"".join(cards) + b"END".ljust(80)
    return raw + b" " * (-len(raw) % BLOCK)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def primary_hdu(cards: list[bytes]) -> bytes:
    """A header-only primary HDU with ``cards`` after the mandatory keywords."""
    return header([card("SIMPLE", True, "conforms to FITS standard"),
                   card("BITPIX", 8, "array data type"),
                   card("NAXIS", 0, "number of array dimensions"),
                   card("EXTEND", True), *cards])


def compressed_image_hdu(image: np.ndarray, *, name: str, cards: list[bytes] = (),
                         tile_rows: int = TILE_ROWS) -> bytes:
    """A 2-D float32 or uint8 image as a GZIP_1 tile-compressed BINTABLE HDU."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype not in _ZBITPIX:
        raise ValueError(f"a 2-D float32 or uint8 image is needed, not {image.dtype} "
                         f"{image.shape}")
    zbitpix = _ZBITPIX[image.dtype]
    big = np.ascontiguousarray(image, dtype=_DTYPE[zbitpix])
    tiles = []
    for r0 in range(0, image.shape[0], tile_rows):
        c = CODEC.compressobj(1, CODEC.DEFLATED, 31)  # gzip member, write time 0
        tiles.append(c.compress(big[r0:r0 + tile_rows].tobytes()) + c.flush())
    counts = np.array([len(t) for t in tiles], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    table = np.column_stack([counts, offsets]).astype(">i4").tobytes()
    heap = b"".join(tiles)
    hdr = [card("XTENSION", "BINTABLE", "binary table extension"),
           card("BITPIX", 8, "array data type"),
           card("NAXIS", 2, "number of array dimensions"),
           card("NAXIS1", 8, "width of table in bytes"),
           card("NAXIS2", len(tiles), "number of rows in table"),
           card("PCOUNT", len(heap), "number of group parameters"),
           card("GCOUNT", 1, "number of groups"),
           card("TFIELDS", 1, "number of fields in each row"),
           card("TTYPE1", "COMPRESSED_DATA"),
           card("TFORM1", f"1PB({int(counts.max())})"),
           card("ZIMAGE", True, "extension contains compressed image"),
           card("ZTENSION", "IMAGE", "Image extension"),
           card("ZBITPIX", zbitpix, "array data type"),
           card("ZNAXIS", 2, "number of array dimensions"),
           card("ZNAXIS1", image.shape[1]),
           card("ZNAXIS2", image.shape[0]),
           card("ZPCOUNT", 0, "number of parameters"),
           card("ZGCOUNT", 1, "number of groups"),
           card("ZTILE1", image.shape[1], "size of tiles to be compressed"),
           card("ZTILE2", tile_rows, "size of tiles to be compressed"),
           card("ZCMPTYPE", "GZIP_1", "compression algorithm")]
    if zbitpix < 0:
        hdr += [card("ZNAME1", "NOISEBIT", "floating point quantization level"),
                card("ZVAL1", 0.0, "floating point quantization level")]
    hdr += [card("EXTNAME", name, "name of this binary table extension"), *cards]
    return header(hdr) + _pad(table + heap)


def text_table_hdu(column: str, text: str, *, name: str) -> bytes:
    """A one-row BINTABLE whose one column holds ``text`` (ASCII)."""
    raw = text.encode("ascii")
    n = max(len(raw), 1)
    return header([card("XTENSION", "BINTABLE", "binary table extension"),
                   card("BITPIX", 8, "array data type"),
                   card("NAXIS", 2, "number of array dimensions"),
                   card("NAXIS1", n, "length of dimension 1"),
                   card("NAXIS2", 1, "length of dimension 2"),
                   card("PCOUNT", 0, "number of group parameters"),
                   card("GCOUNT", 1, "number of groups"),
                   card("TFIELDS", 1, "number of table fields"),
                   card("TTYPE1", column), card("TFORM1", f"{n}A"),
                   card("EXTNAME", name, "extension name")]) + _pad(raw.ljust(n, b" "))


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hdu:
    """One HDU: its header values and, for a compressed image, the image; for a
    one-column character table, its first row's text."""

    header: dict
    image: np.ndarray | None = None
    text: str | None = None


def _parse_value(raw: str):
    raw = raw.strip()
    if raw.startswith("'"):
        out, i = [], 1
        while i < len(raw):
            if raw[i] == "'":
                if i + 1 < len(raw) and raw[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(raw[i])
            i += 1
        return "".join(out).rstrip()
    raw = raw.split("/", 1)[0].strip()
    if raw in ("T", "F"):
        return raw == "T"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw.replace("D", "E"))
    except ValueError:
        return raw


def _read_header(blob: bytes, at: int) -> tuple[dict, int] | None:
    """Header values from ``at``; and where the data start. None: not a header."""
    out: dict = {}
    pos = at
    while pos + 80 <= len(blob):
        line = blob[pos:pos + 80].decode("ascii", errors="replace")
        pos += 80
        key = line[:8].rstrip()
        if key == "END":
            return out, at + -(-(pos - at) // BLOCK) * BLOCK
        if line[8:10] == "= " and key not in out:
            out[key] = _parse_value(line[10:])
    return None


def _data_size(h: dict) -> int:
    if h.get("NAXIS", 0) == 0:
        return 0
    n = abs(int(h.get("BITPIX", 8))) // 8
    for k in range(1, int(h["NAXIS"]) + 1):
        n *= int(h[f"NAXIS{k}"])
    return (n + int(h.get("PCOUNT", 0))) * int(h.get("GCOUNT", 1))


def _image(blob: bytes, h: dict, start: int) -> np.ndarray | None:
    """The tile-compressed image of a ZIMAGE table, or None if it is not of the kind
    written here (GZIP_1, no quantisation or scaling, whole-row tiles, 1PB/1QB)."""
    form = str(h.get("TFORM1", ""))
    width = 8 if form.startswith("1PB") else 16
    # anything that changes the pixel values on reading (scaling, blank values,
    # quantisation, dithering, other columns) is left to astropy
    if (h.get("XTENSION") != "BINTABLE" or h.get("GCOUNT", 1) != 1
            or h.get("TFIELDS") != 1 or h.get("TTYPE1") != "COMPRESSED_DATA"
            or h.get("ZCMPTYPE") != "GZIP_1" or h.get("ZNAXIS") != 2
            or h.get("ZBITPIX") not in _DTYPE or h.get("ZTILE1") != h.get("ZNAXIS1")
            or not form.startswith(("1PB", "1QB")) or h.get("NAXIS1") != width
            or h.get("ZNAME1") not in (None, "NOISEBIT")
            or any(k in h for k in ("ZSCALE", "ZZERO", "ZQUANTIZ", "ZDITHER0", "ZBLANK",
                                    "BLANK", "BSCALE", "BZERO", "ZSIMPLE", "ZEXTEND"))):
        return None
    n_rows, n_cols = int(h["ZNAXIS2"]), int(h["ZNAXIS1"])
    tile_rows = int(h.get("ZTILE2", 1))
    n_tiles = int(h["NAXIS2"])
    if tile_rows < 1 or -(-n_rows // tile_rows) != n_tiles:
        return None
    desc = np.frombuffer(blob, dtype=">i4" if width == 8 else ">i8",
                         count=2 * n_tiles, offset=start).reshape(n_tiles, 2)
    theap = int(h.get("THEAP", width * n_tiles))
    heap_bytes = width * n_tiles + int(h.get("PCOUNT", 0)) - theap
    if theap < width * n_tiles or heap_bytes < 0 or (desc < 0).any() \
            or (desc[:, 0] + desc[:, 1] > heap_bytes).any():
        return None
    heap = start + theap
    dtype = np.dtype(_DTYPE[int(h["ZBITPIX"])])
    out = np.empty((n_rows, n_cols), dtype=dtype.newbyteorder("="))
    for t, (count, offset) in enumerate(desc):
        rows = out[t * tile_rows:(t + 1) * tile_rows]
        d = CODEC.decompressobj(47)
        raw = d.decompress(blob[heap + int(offset):heap + int(offset) + int(count)])
        if not d.eof or d.unused_data:  # a tile must be exactly one whole gzip member
            return None
        if len(raw) != rows.size * dtype.itemsize:
            return None
        rows[...] = np.frombuffer(raw, dtype=dtype).reshape(rows.shape)
    return out


def read_primary_header(blob: bytes) -> dict | None:
    """The primary header's values (None: not a FITS header)."""
    parsed = _read_header(blob, 0)
    return None if parsed is None or parsed[0].get("SIMPLE") is not True else parsed[0]


def read_hdus(blob: bytes) -> list[Hdu] | None:
    """Every HDU of a file of the layout written here; None if the file holds anything
    else (the caller reads it with astropy)."""
    out, at = [], 0
    while at < len(blob):
        parsed = _read_header(blob, at)
        if parsed is None:  # only padding may follow the last HDU
            return out if out and not blob[at:].strip(b"\0 ") else None
        h, start = parsed
        size = _data_size(h)
        if start + size > len(blob):
            return None
        image = text = None
        if h.get("ZIMAGE") is True:
            image = _image(blob, h, start)
            if image is None:
                return None
        elif h.get("XTENSION") == "BINTABLE" and h.get("TFIELDS") == 1 \
                and str(h.get("TFORM1", "")).endswith("A") and h.get("NAXIS2") == 1:
            try:
                text = blob[start:start + int(h["NAXIS1"])].decode("ascii").rstrip(" \0")
            except UnicodeDecodeError:
                return None
        elif out:  # an extension of another kind
            return None
        out.append(Hdu(h, image, text))
        at = start + -(-size // BLOCK) * BLOCK
    return out
