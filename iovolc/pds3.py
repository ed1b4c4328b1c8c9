"""Read JIRAM imager products, volume indexes and archive layouts (PDS3).

Readers for the Atmospheres-node JIRAM volumes (``JNOJIR_1nnn`` EDR,
``JNOJIR_2nnn`` RDR): detached ``.LBL`` + ``.IMG`` products, and
``INDEX/INDEX.TAB`` described by ``INDEX/INDEX.LBL``. They read any archive
in that layout, not only the simulator's, so they tolerate what real
volumes do:

* extra keywords and any key order; ``^IMAGE`` as a file name, a
  ``(file, record)`` pair, a ``(file, n <BYTES>)`` pair, or an attached
  record/byte offset;
* file names whose case differs between label, index and disk;
* ``SPICE_FILE_NAME`` as one string or a sequence, entries with folders
  (``spk/x.bsp``, ``$KERNELS/ck/x.bc``) -> bare names;
* ``EXPOSURE_DURATION`` with a unit (``<s>``, ``<ms>``, ``<SECOND>`` ...)
  or without one (then a value > 0.5 is milliseconds: JIRAM exposures are
  a few ms, never half a second);
* ``TARGET_NAME = "N/A"`` (Io labels from 2022 on); ``ORBIT_NUMBER`` absent
  or ``N/A`` (-> ``None``);
* RDR pixels labelled ``IEEE_REAL`` are read **little-endian**
  (:data:`iovolc.jiram.RDR_DTYPE`), the archive quirk.

Every function takes local paths or fsspec URLs (``file://``,
``memory://``, ``s3://`` ...), or a path plus an explicit ``fs``.
Every failure about a product is a :class:`ProductError` naming the product
(or its file when the id is not known yet) and the reason.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsspec
import numpy as np
import pandas as pd

from iovolc import jiram
from iovolc.reference import utc_to_et

with warnings.catch_warnings():  # pvl 1.3 warns about its own Units class on import
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import pvl

__all__ = [
    "ProductError",
    "MalformedLabel",
    "SizeMismatch",
    "MissingImage",
    "UnknownMode",
    "JiramProduct",
    "read_label",
    "read_jiram_product",
    "read_index",
    "list_volumes",
    "volume_kind",
    "volume_orbit",
]


# --- errors -----------------------------------------------------------------------


class ProductError(ValueError):
    """A product (or volume) that cannot be read: ``str() == f"{product_id}: {reason}"``."""

    def __init__(self, product_id: str, reason: str) -> None:
        super().__init__(product_id, reason)
        self.product_id = product_id
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.product_id}: {self.reason}"

    def __reduce__(self):  # picklable across processes (orchestration layer)
        return (self.__class__, (self.product_id, self.reason))


class MalformedLabel(ProductError):
    """The label does not parse, or lacks / garbles a keyword we need."""


class SizeMismatch(ProductError):
    """Image bytes or dimensions disagree with the label or the mode."""


class MissingImage(ProductError):
    """The data file the label points to is not there."""


class UnknownMode(ProductError):
    """INSTRUMENT_MODE_ID is not a JIRAM imager mode (and cannot be inferred)."""


# --- filesystem helpers -----------------------------------------------------------


def _fs_path(
    url: Any, fs: fsspec.AbstractFileSystem | None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for a local path, an fsspec URL, or a path + ``fs``."""
    text = str(url)
    if fs is None:
        return fsspec.core.url_to_fs(text)
    return fs, fs._strip_protocol(text)


def _basename(url: Any) -> str:
    return posixpath.basename(str(url).rstrip("/")) or str(url)


def _list_names(fs: fsspec.AbstractFileSystem, dir_path: str) -> dict[str, str]:
    """Children of ``dir_path``: lower-case name -> actual name."""
    try:
        entries = fs.ls(dir_path, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out: dict[str, str] = {}
    for entry in entries:
        name = posixpath.basename(str(entry).rstrip("/"))
        out.setdefault(name.lower(), name)
    return out


def _resolve_ci(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    """``path`` if it exists, else the same path matched case-insensitively, else None."""
    if fs.exists(path):
        return path
    parent, name = posixpath.split(path.rstrip("/"))
    if not name or parent == path:
        return None
    real_parent = _resolve_ci(fs, parent) if parent else parent
    if real_parent is None:
        return None
    actual = _list_names(fs, real_parent).get(name.lower())
    return None if actual is None else posixpath.join(real_parent, actual)


# --- labels -----------------------------------------------------------------------

_END_LINE = re.compile(rb"^[ \t]*END[ \t]*\r?$", flags=re.MULTILINE)


def _parse_label_bytes(raw: bytes, who: str) -> dict:
    if not raw.strip():
        raise MalformedLabel(who, "label is empty")
    m = _END_LINE.search(raw)  # attached labels / padding: parse up to the END line
    text = raw[: m.end()].decode("latin-1") if m else raw.decode("latin-1")
    try:
        label = pvl.loads(text)
    except Exception as exc:  # pvl raises LexerError, ParseError, QuantityError ...
        raise MalformedLabel(who, f"label does not parse as PVL ({exc})") from exc
    if not isinstance(label, Mapping) or not len(label):
        raise MalformedLabel(who, "label has no keywords")
    return label


def read_label(path_or_url: Any, *, fs: fsspec.AbstractFileSystem | None = None) -> dict:
    """Parse a PDS3 label (detached ``.LBL`` or attached) into a ``pvl.PVLModule``.

    The result is a ``dict`` subclass that keeps repeated keys (``getall``).
    Raises :class:`MalformedLabel` (naming the file) if it does not parse,
    :class:`ProductError` if the file is missing.
    """
    fs, path = _fs_path(path_or_url, fs)
    who = _basename(path_or_url)
    real = _resolve_ci(fs, path)
    if real is None:
        raise ProductError(who, f"label not found at {path_or_url}")
    raw = fs.cat_file(real)
    return _parse_label_bytes(raw, who)


# --- products ---------------------------------------------------------------------


@dataclass(frozen=True)
class JiramProduct:
    """One JIRAM imager frame read from the archive.

    ``image`` is native-endian, read-only: float32 radiance W/(m^2 sr) for an
    RDR, raw DN (int16 for the LSB_INTEGER EDRs) for an EDR, shape
    ``(lines, 432)``. Equality and hashing ignore the pixels.
    """

    product_id: str
    product_type: str  # "EDR" | "RDR"
    start_time_utc: str  # ISO calendar, no zone
    stop_time_utc: str
    et_mid: float  # TDB seconds past J2000, mid-exposure
    sclk_start: str
    orbit_number: int | None
    target_name: str
    mode: str  # "I1" | "I2" | "I3"
    exposure_s: float
    spice_file_names: tuple[str, ...]
    image: np.ndarray = field(repr=False, compare=False)
    label_url: str = ""
    sequence_id: str = ""

    @property
    def bands(self) -> dict[str, slice]:
        """Row slice of each band present in :attr:`image` (``jiram.band_rows``)."""
        return jiram.band_rows(self.mode)

    def band_image(self, band: str) -> np.ndarray:
        """The rows of ``band`` ("L" or "M"); KeyError naming the mode if absent."""
        rows = self.bands
        if band not in rows:
            raise KeyError(
                f"{self.product_id}: band {band!r} not in mode {self.mode} ({sorted(rows)})"
            )
        return self.image[rows[band]]

    @property
    def lines(self) -> int:
        return int(self.image.shape[0])


#: label SAMPLE_TYPE families -> numpy byte order and kind
_SAMPLE_TYPES: dict[str, tuple[str, str]] = {
    **{t: ("<", "i") for t in ("LSB_INTEGER", "PC_INTEGER", "VAX_INTEGER")},
    **{
        t: ("<", "u")
        for t in ("LSB_UNSIGNED_INTEGER", "PC_UNSIGNED_INTEGER", "VAX_UNSIGNED_INTEGER")
    },
    **{t: (">", "i") for t in ("MSB_INTEGER", "INTEGER", "SUN_INTEGER", "MAC_INTEGER")},
    **{
        t: (">", "u")
        for t in (
            "MSB_UNSIGNED_INTEGER",
            "UNSIGNED_INTEGER",
            "SUN_UNSIGNED_INTEGER",
            "MAC_UNSIGNED_INTEGER",
        )
    },
    **{t: (">", "f") for t in ("IEEE_REAL", "REAL", "FLOAT", "SUN_REAL", "MAC_REAL", "MSB_REAL")},
    **{t: ("<", "f") for t in ("PC_REAL", "LSB_REAL")},
}

_SECONDS = {"S", "SEC", "SECS", "SECOND", "SECONDS"}
_MILLISECONDS = {"MS", "MSEC", "MSECS", "MILLISECOND", "MILLISECONDS"}
_NULLS = {"", "N/A", "NULL", "UNK", "UNKNOWN", "NONE"}
_DOY_TIME = re.compile(r"^(\d{4})-(\d{3})(T.*)?$")


def _value(v: Any) -> Any:
    """Strip a pvl Quantity down to its value."""
    return v.value if hasattr(v, "value") and hasattr(v, "units") else v


def _get(label: Mapping, key: str, default: Any = None) -> Any:
    """Case-insensitive top-level keyword lookup."""
    if key in label:
        return label[key]
    upper = key.upper()
    for k, v in label.items():
        if str(k).upper() == upper:
            return v
    return default


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip().upper() in _NULLS)


def _utc_text(v: Any, key: str, pid: str) -> str:
    """A label time (pvl datetime, ISO or day-of-year string) -> ISO calendar string."""
    if isinstance(v, datetime):
        dt = v.replace(tzinfo=None)
    else:
        s = str(v).strip().strip('"').rstrip("Z")
        m = _DOY_TIME.match(s)
        try:
            if m:
                year, doy, rest = m.groups()
                day = datetime.strptime(f"{year}-{doy}", "%Y-%j")
                s = f"{day:%Y-%m-%d}{rest or ''}"
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise MalformedLabel(pid, f"{key} {v!r} is not a UTC time") from None
    if dt.tzinfo is not None:
        dt = dt.replace(tzinfo=None)
    spec = "milliseconds" if dt.microsecond % 1000 == 0 else "microseconds"
    return dt.isoformat(timespec=spec)


def _exposure_s(label: Mapping, pid: str) -> float:
    raw = _get(label, "EXPOSURE_DURATION")
    if raw is None:
        raise MalformedLabel(pid, "EXPOSURE_DURATION is missing")
    units = str(getattr(raw, "units", "") or "").strip().strip("<>").upper()
    try:
        value = float(_value(raw))
    except (TypeError, ValueError):
        raise MalformedLabel(pid, f"EXPOSURE_DURATION {raw!r} is not a number") from None
    if units in _SECONDS:
        seconds = value
    elif units in _MILLISECONDS:
        seconds = value / 1e3
    elif not units:
        # JIRAM exposures are milliseconds long: a bare value > 0.5 is in ms
        seconds = value / 1e3 if value > 0.5 else value
    else:
        raise MalformedLabel(pid, f"EXPOSURE_DURATION unit <{units}> is not seconds or ms")
    if not (np.isfinite(seconds) and seconds > 0):
        raise MalformedLabel(pid, f"EXPOSURE_DURATION {raw!r} is not positive")
    return seconds


def _spice_names(label: Mapping) -> tuple[str, ...]:
    raw = _get(label, "SPICE_FILE_NAME")
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else list(raw)
    names = []
    for item in items:
        s = str(item).strip().strip('"').replace("\\", "/")
        if _is_null(s):
            continue
        names.append(posixpath.basename(s.rstrip("/")))
    return tuple(n for n in names if n)


def _orbit(label: Mapping, pid: str) -> int | None:
    raw = _get(label, "ORBIT_NUMBER")
    if _is_null(raw):
        return None
    try:
        return int(str(_value(raw)).strip())
    except ValueError:
        raise MalformedLabel(pid, f"ORBIT_NUMBER {raw!r} is not an integer") from None


def _product_type(label: Mapping, pid: str, sample_type: str) -> str:
    ptype = str(_get(label, "PRODUCT_TYPE", "")).strip().upper()
    if ptype in ("EDR", "RDR"):
        return ptype
    dsid = str(_get(label, "DATA_SET_ID", "")).upper()
    for candidate in ("EDR", "RDR"):
        if f"-{candidate}" in dsid or f"_{candidate}_" in pid.upper():
            return candidate
    kind = _SAMPLE_TYPES.get(sample_type, ("", ""))[1]
    if kind == "f":
        return "RDR"
    if kind in ("i", "u"):
        return "EDR"
    raise MalformedLabel(pid, "cannot tell EDR from RDR (no PRODUCT_TYPE, DATA_SET_ID or id)")


def _band_hint(label: Mapping, image: Mapping) -> str | None:
    """'M' or 'L' from filter / band keywords of a label without INSTRUMENT_MODE_ID."""
    hints: list[str] = []
    for block in (label, image):
        for k, v in block.items():
            key = str(k).upper()
            if "FILTER" in key or key in ("BAND_NAME", "BAND_ID", "CHANNEL_ID", "DETECTOR_ID"):
                hints.append(str(_value(v)).upper())
            elif key in ("BAND_BIN_CENTER", "CENTER_FILTER_WAVELENGTH", "WAVELENGTH"):
                try:
                    um = float(_value(v))
                except (TypeError, ValueError):
                    continue
                hints.append("M" if 4.3 < um < 5.3 else "L" if 3.1 < um < 3.8 else "")
    found = set()
    for h in hints:
        tokens = set(re.split(r"[^A-Z0-9]+", h))
        if tokens & {"M", "MBAND", "M_BAND"} or "M BAND" in h or "M-BAND" in h or "M_BAND" in h:
            found.add("M")
        if tokens & {"L", "LBAND", "L_BAND"} or "L BAND" in h or "L-BAND" in h or "L_BAND" in h:
            found.add("L")
    return found.pop() if len(found) == 1 else None


def _mode(label: Mapping, image: Mapping, lines: int, pid: str) -> str:
    raw = _get(label, "INSTRUMENT_MODE_ID")
    if raw is None:
        raw = _get(image, "INSTRUMENT_MODE_ID")
    if raw is not None and not _is_null(raw):
        mode = str(raw).strip().upper()
        if mode not in jiram.MODES:
            raise UnknownMode(
                pid,
                f"INSTRUMENT_MODE_ID {raw!r} is not a JIRAM imager mode ({sorted(jiram.MODES)})",
            )
        return mode
    if lines == jiram.N_LINES_FULL:
        return "I1"
    if lines == jiram.N_LINES_BAND:
        band = _band_hint(label, image)
        if band is not None:
            return {"M": "I2", "L": "I3"}[band]
        raise UnknownMode(
            pid, "INSTRUMENT_MODE_ID is missing and a 128-line frame does not say M (I2) or L (I3)"
        )
    raise UnknownMode(pid, f"INSTRUMENT_MODE_ID is missing and {lines} lines match no imager mode")


def _image_object(label: Mapping, pid: str) -> Mapping:
    image = _get(label, "IMAGE")
    if not isinstance(image, Mapping):
        raise MalformedLabel(pid, "label has no OBJECT = IMAGE")
    return image


def _int_key(block: Mapping, key: str, pid: str, *, default: int | None = None) -> int:
    raw = _get(block, key)
    if raw is None:
        if default is not None:
            return default
        raise MalformedLabel(pid, f"IMAGE {key} is missing")
    try:
        return int(_value(raw))
    except (TypeError, ValueError):
        raise MalformedLabel(pid, f"{key} {raw!r} is not an integer") from None


def _pointer(label: Mapping, label_name: str, pid: str) -> tuple[str, int]:
    """^IMAGE -> (file name, byte offset); an attached image points into the label file."""
    ptr = _get(label, "^IMAGE")
    if ptr is None:
        raise MalformedLabel(pid, "label has no ^IMAGE pointer")
    record_bytes = _get(label, "RECORD_BYTES")

    def offset_of(loc: Any) -> int:
        units = str(getattr(loc, "units", "") or "").strip().upper()
        try:
            n = int(_value(loc))
        except (TypeError, ValueError):
            raise MalformedLabel(pid, f"^IMAGE location {loc!r} is not an integer") from None
        if n < 1:
            raise MalformedLabel(pid, f"^IMAGE location {n} must be >= 1")
        if units == "BYTES":
            return n - 1
        if n == 1:
            return 0
        if record_bytes is None:
            raise MalformedLabel(pid, f"^IMAGE points at record {n} but RECORD_BYTES is missing")
        return (n - 1) * int(_value(record_bytes))

    if isinstance(ptr, str):
        return ptr.strip(), 0
    if isinstance(ptr, list | tuple):
        if len(ptr) == 1:
            return str(ptr[0]).strip(), 0
        if len(ptr) == 2:
            return str(ptr[0]).strip(), offset_of(ptr[1])
        raise MalformedLabel(pid, f"^IMAGE {ptr!r} is not (file, record)")
    return label_name, offset_of(ptr)


def _dtype(product_type: str, sample_type: str, bits: int, pid: str) -> np.dtype:
    family = _SAMPLE_TYPES.get(sample_type)
    if family is None or bits not in (8, 16, 32, 64):
        raise MalformedLabel(pid, f"unsupported SAMPLE_TYPE {sample_type} / SAMPLE_BITS {bits}")
    order, kind = family
    if kind == "f":
        if bits not in (32, 64):
            raise MalformedLabel(pid, f"{bits}-bit {sample_type} samples are not supported")
        if product_type == "RDR":
            if bits != 32:
                raise MalformedLabel(pid, f"RDR samples must be 32-bit floats, label says {bits}")
            # archive quirk: labelled IEEE_REAL (big-endian) but written little-endian
            return jiram.RDR_DTYPE
    return np.dtype(f"{order}{kind}{bits // 8}")


def read_jiram_product(
    label_url: Any, *, fs: fsspec.AbstractFileSystem | None = None
) -> JiramProduct:
    """Read one JIRAM imager product (detached or attached label) into a :class:`JiramProduct`.

    Errors (all :class:`ProductError`): :class:`MalformedLabel`,
    :class:`MissingImage`, :class:`SizeMismatch` (too few bytes; too many
    unless ``FILE_RECORDS * RECORD_BYTES`` accounts for them; lines/samples
    not those of the mode), :class:`UnknownMode`.
    """
    fs, path = _fs_path(label_url, fs)
    who = _basename(label_url)
    real_label = _resolve_ci(fs, path)
    if real_label is None:
        raise ProductError(who, f"label not found at {label_url}")
    label = _parse_label_bytes(fs.cat_file(real_label), who)
    pid = str(_get(label, "PRODUCT_ID") or posixpath.splitext(who)[0]).strip()

    image_obj = _image_object(label, pid)
    lines = _int_key(image_obj, "LINES", pid)
    samples = _int_key(image_obj, "LINE_SAMPLES", pid)
    bands = _int_key(image_obj, "BANDS", pid, default=1)
    bits = _int_key(image_obj, "SAMPLE_BITS", pid)
    prefix = _int_key(image_obj, "LINE_PREFIX_BYTES", pid, default=0)
    suffix = _int_key(image_obj, "LINE_SUFFIX_BYTES", pid, default=0)
    sample_type = str(_get(image_obj, "SAMPLE_TYPE", "")).strip().upper()
    if bands != 1:
        raise SizeMismatch(pid, f"IMAGE has {bands} bands; JIRAM imager frames have 1")
    ptype = _product_type(label, pid, sample_type)
    dtype = _dtype(ptype, sample_type, bits, pid)
    mode = _mode(label, image_obj, lines, pid)
    if lines != jiram.mode_lines(mode) or samples != jiram.N_SAMPLES:
        raise SizeMismatch(
            pid,
            f"image is {lines} lines x {samples} samples; mode {mode} needs "
            f"{jiram.mode_lines(mode)} x {jiram.N_SAMPLES}",
        )

    # --- pixels
    label_dir, label_name = posixpath.split(real_label)
    file_name, offset = _pointer(label, label_name, pid)
    wanted = posixpath.normpath(posixpath.join(label_dir, file_name.replace("\\", "/")))
    img_path = _resolve_ci(fs, wanted)
    if img_path is None:
        raise MissingImage(pid, f"image file {file_name} not found next to the label ({wanted})")
    size = int(fs.size(img_path))
    row_bytes = prefix + samples * dtype.itemsize + suffix
    expected = lines * row_bytes
    available = size - offset
    if available < expected:
        raise SizeMismatch(
            pid,
            f"{posixpath.basename(img_path)} holds {max(available, 0)} image bytes from offset "
            f"{offset}, label needs {expected} ({lines} x {samples} x {dtype.itemsize})",
        )
    if available > expected:
        file_records = _get(label, "FILE_RECORDS")
        record_bytes = _get(label, "RECORD_BYTES")
        described = (
            file_records is not None
            and record_bytes is not None
            and int(_value(file_records)) * int(_value(record_bytes)) == size
        )
        if not described:
            raise SizeMismatch(
                pid,
                f"{posixpath.basename(img_path)} has {available - expected} bytes more than the "
                f"{expected} the image needs, and FILE_RECORDS x RECORD_BYTES does not account for them",
            )
    raw = fs.cat_file(img_path, start=offset, end=offset + expected)
    if len(raw) != expected:
        raise SizeMismatch(
            pid, f"read {len(raw)} bytes of {posixpath.basename(img_path)}, expected {expected}"
        )
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(lines, row_bytes)
    body = np.ascontiguousarray(rows[:, prefix : prefix + samples * dtype.itemsize])
    image = body.view(dtype).reshape(lines, samples).astype(dtype.newbyteorder("="), copy=True)
    image.flags.writeable = False

    # --- metadata
    start_raw = _get(label, "START_TIME")
    if _is_null(start_raw):
        raise MalformedLabel(pid, "START_TIME is missing")
    start = _utc_text(start_raw, "START_TIME", pid)
    exposure_s = _exposure_s(label, pid)
    stop_raw = _get(label, "STOP_TIME")
    if _is_null(stop_raw):
        stop = ""
        et_mid = float(utc_to_et(start)) + 0.5 * exposure_s
    else:
        stop = _utc_text(stop_raw, "STOP_TIME", pid)
        et_start, et_stop = utc_to_et([start, stop])
        if et_stop < et_start:
            raise MalformedLabel(pid, f"STOP_TIME {stop} precedes START_TIME {start}")
        et_mid = 0.5 * (float(et_start) + float(et_stop))
    target = _get(label, "TARGET_NAME", "")
    sclk = _get(label, "SPACECRAFT_CLOCK_START_COUNT", "")
    seq = _get(label, "SEQUENCE_ID", "")
    return JiramProduct(
        product_id=pid,
        product_type=ptype,
        start_time_utc=start,
        stop_time_utc=stop,
        et_mid=et_mid,
        sclk_start="" if _is_null(sclk) else str(sclk).strip(),
        orbit_number=_orbit(label, pid),
        target_name=str(target).strip(),
        mode=mode,
        exposure_s=exposure_s,
        spice_file_names=_spice_names(label),
        image=image,
        label_url=str(label_url),
        sequence_id="" if _is_null(seq) else str(seq).strip(),
    )


# --- volumes and indexes ----------------------------------------------------------

_VOLUME_RE = re.compile(r"^JNOJIR_([12])(\d{3})$", flags=re.IGNORECASE)


def volume_kind(name: str) -> str:
    """``JNOJIR_1nnn`` -> "EDR", ``JNOJIR_2nnn`` -> "RDR" (name or URL, any case)."""
    base = _basename(name)
    m = _VOLUME_RE.match(base)
    if not m:
        raise ProductError(base, "not a JIRAM volume name (JNOJIR_1nnn or JNOJIR_2nnn)")
    return {"1": "EDR", "2": "RDR"}[m.group(1)]


def volume_orbit(name: str) -> int:
    """Orbit number of a JIRAM volume: ``JNOJIR_2057`` -> 57."""
    base = _basename(name)
    m = _VOLUME_RE.match(base)
    if not m:
        raise ProductError(base, "not a JIRAM volume name (JNOJIR_1nnn or JNOJIR_2nnn)")
    return int(m.group(2))


def _join_url(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts if p)])


def list_volumes(archive_url: Any, *, fs: fsspec.AbstractFileSystem | None = None) -> list[str]:
    """URLs of the JIRAM volumes (``JNOJIR_1nnn`` / ``JNOJIR_2nnn``, any case) under a root.

    Sorted by orbit, EDR before RDR; each URL is ``archive_url`` + "/" + name.
    """
    fs, path = _fs_path(archive_url, fs)
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        raise ProductError(
            _basename(archive_url), f"archive root {archive_url} not found"
        ) from None
    names = []
    for entry in entries:
        name = posixpath.basename(str(entry["name"]).rstrip("/"))
        if entry.get("type") == "directory" and _VOLUME_RE.match(name):
            names.append(name)
    names.sort(key=lambda n: (volume_orbit(n), volume_kind(n), n))
    return [_join_url(str(archive_url), n) for n in names]


def _table_object(label: Mapping) -> tuple[str, Mapping] | None:
    """(pointer key, table object) of an index label: the object holding COLUMNs."""
    for key in ("INDEX_TABLE", "TABLE"):
        obj = _get(label, key)
        if isinstance(obj, Mapping):
            return key, obj
    for key, obj in label.items():
        if isinstance(obj, Mapping) and "COLUMN" in obj:
            return str(key), obj
    return None


def _clean_cell(text: str) -> str:
    return text.strip().strip('"').strip()


def _numeric(values: list[str], dtype: str) -> pd.Series:
    series = pd.to_numeric(
        pd.Series(values, dtype=object).replace(dict.fromkeys(_NULLS, None)), errors="coerce"
    )
    if dtype == "ASCII_INTEGER":
        return series.astype("int64") if series.notna().all() else series.astype("Int64")
    return series.astype("float64")


def _index_from_label(tab: bytes, table: Mapping, who: str) -> pd.DataFrame:
    columns = []
    for col in table.getall("COLUMN") if hasattr(table, "getall") else [table["COLUMN"]]:
        try:
            name = str(col["NAME"]).strip()
            start = int(col["START_BYTE"]) - 1
            width = int(col["BYTES"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProductError(
                who, f"INDEX.LBL column {dict(col)!r} lacks NAME/START_BYTE/BYTES ({exc})"
            ) from None
        columns.append((name, start, width, str(col.get("DATA_TYPE", "CHARACTER")).upper()))
    if not columns:
        raise ProductError(who, "INDEX.LBL describes no COLUMN")
    lines = [ln.rstrip("\r") for ln in tab.decode("latin-1").split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    n_rows = _get(table, "ROWS")
    if n_rows is not None and int(n_rows) != len(lines):
        raise ProductError(
            who, f"INDEX.TAB has {len(lines)} rows, INDEX.LBL says ROWS = {int(n_rows)}"
        )
    last_start = max(c[1] for c in columns)
    cells: dict[str, list[str]] = {c[0]: [] for c in columns}
    for i, line in enumerate(lines, start=1):
        if len(line) <= last_start:
            raise ProductError(
                who, f"INDEX.TAB row {i} is {len(line)} bytes, shorter than its columns"
            )
        for name, start, width, _ in columns:
            cells[name].append(_clean_cell(line[start : start + width]))
    out = {}
    for name, _, _, dtype in columns:
        values = cells[name]
        if dtype in ("ASCII_INTEGER", "ASCII_REAL"):
            out[name.lower()] = _numeric(values, dtype)
        else:
            out[name.lower()] = pd.Series(values, dtype=object)
    return pd.DataFrame(out)


_HEADER_CELL = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TIME_CELL = re.compile(r"^\d{4}-\d{2,3}(-\d{2})?T\d{2}:\d{2}")


def _index_from_csv(tab: bytes, who: str) -> pd.DataFrame:
    """INDEX.TAB without its label: comma-separated, optional header; columns found by content."""
    rows = [
        r
        for r in csv.reader(io.StringIO(tab.decode("latin-1")), skipinitialspace=True)
        if any(c.strip() for c in r)
    ]
    if not rows:
        raise ProductError(who, "INDEX.TAB is empty")
    rows = [[_clean_cell(c) for c in r] for r in rows]
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ProductError(
            who, "INDEX.TAB rows have different numbers of fields (and INDEX.LBL is missing)"
        )
    head = rows[0]
    if all(_HEADER_CELL.match(c) for c in head) and any(
        c == "FILE_SPECIFICATION_NAME" for c in head
    ):
        names = [c.lower() for c in head]
        body = rows[1:]
    else:
        body = rows
        names = []
        n_time = 0
        for j in range(width):
            col = [r[j] for r in body]
            if all(c.upper().endswith(".LBL") for c in col):
                name = "file_specification_name"
            elif all(_VOLUME_RE.match(c) for c in col):
                name = "volume_id"
            elif all(re.match(r"^JIR_", c, flags=re.IGNORECASE) and "." not in c for c in col):
                name = "product_id"
            elif all(_TIME_CELL.match(c) for c in col) and n_time < 2:
                name = ("start_time", "stop_time")[n_time]
                n_time += 1
            else:
                name = f"column_{j + 1}"
            names.append(name if name not in names else f"column_{j + 1}")
    if "file_specification_name" not in names:
        raise ProductError(
            who, "INDEX.LBL is missing and no INDEX.TAB column holds label file names"
        )
    return pd.DataFrame(body, columns=names)


def read_index(volume_url: Any, *, fs: fsspec.AbstractFileSystem | None = None) -> pd.DataFrame:
    """A volume's ``INDEX/INDEX.TAB`` as a DataFrame (lower-case column names).

    Columns come from INDEX.LBL's COLUMN objects (START_BYTE/BYTES; quotes
    and padding stripped; ASCII_INTEGER/ASCII_REAL made numeric). Without an
    INDEX.LBL the table is read as CSV. A ``label_url`` column joins
    ``volume_url`` with FILE_SPECIFICATION_NAME, matched case-insensitively
    against the files on disk. Raises :class:`ProductError` naming the volume.
    """
    fs, vol_path = _fs_path(volume_url, fs)
    who = _basename(volume_url)
    vol_real = _resolve_ci(fs, vol_path.rstrip("/"))
    if vol_real is None:
        raise ProductError(who, f"volume not found at {volume_url}")
    index_dir_name = _list_names(fs, vol_real).get("index")
    if index_dir_name is None:
        raise ProductError(who, "volume has no INDEX/ folder")
    index_dir = posixpath.join(vol_real, index_dir_name)
    files = _list_names(fs, index_dir)
    lbl_name = files.get("index.lbl")
    if lbl_name is not None:
        label = _parse_label_bytes(
            fs.cat_file(posixpath.join(index_dir, lbl_name)), f"{who} INDEX.LBL"
        )
        found = _table_object(label)
        if found is None:
            raise ProductError(who, "INDEX.LBL has no table object with COLUMNs")
        key, table = found
        ptr = _get(label, f"^{key}")
        tab_file = (
            (ptr[0] if isinstance(ptr, list | tuple) else ptr) if ptr is not None else "INDEX.TAB"
        )
        tab_name = files.get(posixpath.basename(str(tab_file).strip()).lower())
        if tab_name is None:
            raise ProductError(who, f"INDEX.LBL points at {tab_file}, which is not in INDEX/")
        df = _index_from_label(fs.cat_file(posixpath.join(index_dir, tab_name)), table, who)
    else:
        tab_name = files.get("index.tab")
        if tab_name is None:
            raise ProductError(who, "INDEX/ holds neither INDEX.LBL nor INDEX.TAB")
        df = _index_from_csv(fs.cat_file(posixpath.join(index_dir, tab_name)), who)
    if "file_specification_name" not in df.columns:
        raise ProductError(who, "index has no FILE_SPECIFICATION_NAME column")

    listings: dict[str, dict[str, str]] = {}

    def actual_relpath(spec: str) -> str:
        parts = [p for p in str(spec).replace("\\", "/").split("/") if p and p != "."]
        here, out = vol_real, []
        for part in parts:
            if here not in listings:
                listings[here] = _list_names(fs, here)
            name = listings[here].get(part.lower(), part)
            out.append(name)
            here = posixpath.join(here, name)
        return "/".join(out)

    # the volume as given, unless its case had to be corrected on disk
    base = str(volume_url) if vol_real == vol_path.rstrip("/") else fs.unstrip_protocol(vol_real)
    df["label_url"] = [_join_url(base, actual_relpath(s)) for s in df["file_specification_name"]]
    return df
