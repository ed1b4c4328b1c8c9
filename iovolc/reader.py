"""Read JIRAM imager products: label keywords -> a :class:`JiramProduct` with its pixels.

See :mod:`iovolc.pds3` for what the reader tolerates (nested FILE objects,
real mode ids, band blocks, both radiance units, missing EXPOSURE_DURATION,
PVL-set kernel lists) and for path confinement; the instrument facts are in
:mod:`iovolc.jiram`.
"""

from __future__ import annotations

import posixpath
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsspec
import numpy as np

from iovolc import jiram
from iovolc.pds3 import (
    SAMPLE_TYPES,
    MalformedLabel,
    MissingImage,
    ProductError,
    SizeMismatch,
    UnknownMode,
    UnsafePath,
    basename,
    confine,
    find_keyword,
    fs_path,
    get_key,
    image_file_name,
    int_key,
    is_inside,
    is_null,
    is_plain_token,
    label_text,
    parse_label_bytes,
    pvl_value,
    read_capped,
    resolve_ci,
    utc_text,
)
from iovolc.reference import utc_to_et

__all__ = ["JiramProduct", "read_jiram_product"]


#: the largest label file read (a detached label is ~8 KB; an attached one holds its image)
MAX_LABEL_BYTES = 4 << 20

_SECONDS = {"S", "SEC", "SECS", "SECOND", "SECONDS"}
_MILLISECONDS = {"MS", "MSEC", "MSECS", "MILLISECOND", "MILLISECONDS"}


def _exposure_s(label: Mapping, pid: str, start: str, stop: str) -> float:
    raw = find_keyword(label, "EXPOSURE_DURATION")
    if is_null(raw):
        # real labels may lack it (jiram_catalog: exposure = stop - start); taken from the
        # UTC texts (exact to the microsecond), not from ETs ~1e9 s whose difference carries
        # float noise (2 ms would read 1.99997 ms and match no dark frame)
        seconds = (datetime.fromisoformat(stop) - datetime.fromisoformat(start)
                   ).total_seconds() if stop else 0.0
        if not seconds > 0:
            raise MalformedLabel(pid, "EXPOSURE_DURATION is missing and STOP_TIME does not "
                                      "follow START_TIME")
        return seconds
    units = str(getattr(raw, "units", "") or "").strip().strip("<>").upper()
    try:
        value = float(pvl_value(raw))
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
    if not (np.isfinite(seconds) and 0 < seconds < 10.0):
        shown = f"{value:g}" + (f" <{units.lower()}>" if units else "")
        raise MalformedLabel(pid, f"EXPOSURE_DURATION {shown} is not a JIRAM exposure (0 < "
                                  "exposure < 10 s)")
    return seconds


_SPICE_TEXT = re.compile(r"SPICE_FILE_NAME\s*=\s*([\{\(])(.*?)([\}\)])", re.S | re.I)


def _spice_names(label: Mapping, text: str, pid: str) -> tuple[str, ...]:
    raw = find_keyword(label, "SPICE_FILE_NAME")
    if raw is None:
        return ()
    if isinstance(raw, str):
        items = [raw]
    elif isinstance(raw, set | frozenset):  # a PVL set loses order: take the label's text
        m = _SPICE_TEXT.search(text)
        items = re.findall(r'"([^"]*)"|([^\s,"]+)', m.group(2)) if m else sorted(raw)
        items = [a or b for a, b in items] if m else items
    else:
        items = list(raw)
    names = []
    for item in items:
        s = label_text(item, "SPICE_FILE_NAME", pid).strip('"').replace("\\", "/")
        if is_null(s):
            continue
        names.append(posixpath.basename(s.rstrip("/")))
    return tuple(dict.fromkeys(n for n in names if n))


def _orbit(label: Mapping, pid: str) -> int | None:
    raw = find_keyword(label, "ORBIT_NUMBER")
    if is_null(raw):
        return None
    try:
        return int(str(pvl_value(raw)).strip())
    except ValueError:
        raise MalformedLabel(pid, f"ORBIT_NUMBER {raw!r} is not an integer") from None


def _optional_int(label: Mapping, key: str, pid: str) -> int | None:
    raw = find_keyword(label, key)
    if is_null(raw):
        return None
    try:
        return int(str(pvl_value(raw)).strip().strip('"'))
    except ValueError:
        raise MalformedLabel(pid, f"{key} {raw!r} is not an integer") from None


def _product_type(label: Mapping, pid: str, sample_type: str) -> str:
    ptype = str(find_keyword(label, "PRODUCT_TYPE", "")).strip().upper()
    if ptype in ("EDR", "RDR"):
        return ptype
    dsid = str(find_keyword(label, "DATA_SET_ID", "")).upper()
    for candidate in ("EDR", "RDR"):
        if f"-{candidate}" in dsid or f"_{candidate}_" in pid.upper():
            return candidate
    kind = SAMPLE_TYPES.get(sample_type, ("", ""))[1]
    if kind == "f":
        return "RDR"
    if kind in ("i", "u"):
        return "EDR"
    raise MalformedLabel(pid, "cannot tell EDR from RDR (no PRODUCT_TYPE, DATA_SET_ID or id)")


def _band_blocks(label: Mapping) -> tuple[str, ...] | None:
    """Bands whose L/M_BAND_PARAMETERS block has an integer LINE_FIRST_PIXEL (None: no blocks)."""
    present, seen = [], False
    for band in jiram.BAND_ORDER:
        block = find_keyword(label, f"{band}_BAND_PARAMETERS")
        if not isinstance(block, Mapping):
            continue
        seen = True
        first = get_key(block, "LINE_FIRST_PIXEL")
        if isinstance(pvl_value(first), int | np.integer) and not isinstance(first, bool):
            present.append(band)
    return tuple(present) if seen else None


def _bands(label: Mapping, lines: int, pid: str) -> tuple[str, tuple[str, ...]]:
    """(mode id, bands in row order) from INSTRUMENT_MODE_ID and the band blocks."""
    raw = find_keyword(label, "INSTRUMENT_MODE_ID")
    blocks = _band_blocks(label)
    if not is_null(raw):
        mode = label_text(pvl_value(raw), "INSTRUMENT_MODE_ID", pid).strip('"').upper()
        bands = jiram.mode_bands(mode)
        if bands is None:
            raise UnknownMode(pid, f"INSTRUMENT_MODE_ID {mode!r} is not a JIRAM imager mode "
                                   "(SCI_I1_*: L+M, SCI_I2_*: M, SCI_I3_*: L)")
        if blocks and not set(blocks) <= set(bands):
            raise UnknownMode(pid, f"INSTRUMENT_MODE_ID {mode} holds {'+'.join(bands)} but the "
                                   f"band blocks say {'+'.join(blocks)} (LINE_FIRST_PIXEL)")
    else:
        if lines == 2 * jiram.N_LINES_BAND:
            bands = jiram.BAND_ORDER
        elif lines == jiram.N_LINES_BAND and blocks and len(blocks) == 1:
            bands = blocks
        else:
            raise UnknownMode(pid, f"INSTRUMENT_MODE_ID is missing and {lines} lines with band "
                                   f"blocks {blocks} say no imager mode")
        mode = {("L", "M"): "I1", ("M",): "I2", ("L",): "I3"}[tuple(bands)]
    if lines != jiram.N_LINES_BAND * len(bands):
        raise SizeMismatch(pid, f"LINES {lines} does not fit INSTRUMENT_MODE_ID {mode} "
                                f"({jiram.N_LINES_BAND * len(bands)} lines of {'+'.join(bands)})")
    return mode, tuple(bands)


def _unit(label: Mapping, product_type: str, pid: str) -> str:
    raw = find_keyword(label, "UNIT")
    if is_null(raw):
        return ""
    unit = label_text(pvl_value(raw), "UNIT", pid).strip('"')
    norm = jiram.normalise_unit(unit)
    allowed = jiram.RADIANCE_UNITS if product_type == "RDR" else jiram.EDR_UNITS
    if norm not in allowed:
        raise MalformedLabel(pid, f"UNIT {unit!r} is not a JIRAM {product_type} unit "
                                  f"({'band radiance W/(m^2*sr)' if product_type == 'RDR' else 'DN'})")
    return unit


def _dtype(product_type: str, sample_type: str, bits: int, pid: str) -> np.dtype:
    family = SAMPLE_TYPES.get(sample_type)
    if family is None or bits not in (8, 16, 32, 64):
        raise MalformedLabel(pid, f"unsupported SAMPLE_TYPE {sample_type!r} / SAMPLE_BITS {bits}")
    order, kind = family
    if kind == "f":
        if product_type == "RDR":
            if bits != 32:
                raise MalformedLabel(pid, f"RDR SAMPLE_BITS {bits}: JIRAM RDRs are 32-bit floats")
            # archive quirk: labelled IEEE_REAL (big-endian) but written little-endian
            return jiram.RDR_DTYPE
        if bits not in (32, 64):
            raise MalformedLabel(pid, f"{bits}-bit {sample_type} samples are not supported")
    return np.dtype(f"{order}{kind}{bits // 8}")


# --- products ---------------------------------------------------------------------


@dataclass(frozen=True)
class JiramProduct:
    """One JIRAM imager frame read from the archive.

    ``image`` is native-endian, read-only: float32 band radiance W/(m^2 sr)
    for an RDR, raw DN (int16 for the LSB_INTEGER EDRs) for an EDR, shape
    ``(lines, 432)`` with the bands' 128-line strips in ``bands`` order (L
    first). Equality and hashing ignore the pixels.
    """

    product_id: str
    product_type: str  # "EDR" | "RDR"
    start_time_utc: str  # ISO calendar, no zone
    stop_time_utc: str
    et_mid: float  # TDB seconds past J2000, mid-exposure
    sclk_start: str
    orbit_number: int | None
    target_name: str
    mode: str  # INSTRUMENT_MODE_ID as labelled, e.g. "SCI_I1_S1"
    bands: tuple[str, ...]  # ("L", "M"), ("M",) or ("L",)
    exposure_s: float
    spice_file_names: tuple[str, ...]
    image: np.ndarray = field(repr=False, compare=False)
    label_url: str = ""
    sequence_id: str = ""
    sequence_number: int | None = None
    sequence_samples: int | None = None
    unit: str = ""
    data_quality: str = ""
    source_product_id: str = ""
    #: the image file's name as found beside the label (its case may differ from ^IMAGE)
    image_name: str = ""
    #: with ``keep_bytes=True``: the bytes read, ``{file name: bytes}`` (label first); what
    #: was checked is what gets landed, even if the archive file changes meanwhile
    raw_files: Mapping[str, bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def band_rows(self) -> dict[str, slice]:
        """Image rows of each band present (L rows first)."""
        return jiram.band_layout(self.bands)

    def band_image(self, band: str) -> np.ndarray:
        """The rows of ``band`` ("L" or "M"); KeyError naming the mode if absent."""
        rows = self.band_rows
        if band not in rows:
            raise KeyError(f"{self.product_id}: band {band!r} not in mode {self.mode} "
                           f"({'+'.join(self.bands)})")
        return self.image[rows[band]]

    @property
    def lines(self) -> int:
        return int(self.image.shape[0])


def _et(*utc: str):
    """UTC -> ET (one time: a float; several: a tuple of floats, from one conversion);
    ERFA's "dubious year" warning (years past its leap-second table) is not the
    reader's business: the year was already checked against the mission."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dubious year.*")
        if len(utc) == 1:
            return float(utc_to_et(utc[0]))
        return tuple(float(e) for e in utc_to_et(list(utc)))


def _image_object(label: Mapping, pid: str) -> Mapping:
    image = find_keyword(label, "IMAGE")
    if not isinstance(image, Mapping):
        raise MalformedLabel(pid, "label has no OBJECT = IMAGE")
    return image


def read_jiram_product(label_url: Any, *, fs: fsspec.AbstractFileSystem | None = None,
                       root: str | None = None, keep_bytes: bool = False) -> JiramProduct:
    """Read one JIRAM imager product (detached or attached label).

    ``root``: the folder (a path of ``fs``: the archive root or the volume) the
    label must lie under; nothing outside it, nor outside the label's folder
    for the image, is opened -- on a local file system symbolic links are
    resolved first (:func:`iovolc.pds3.confine`). ``keep_bytes``: the product
    also carries the label and image bytes it was read from (``raw_files``).
    Errors (all :class:`ProductError`, one line naming the product, the
    keyword or file and the value): :class:`MalformedLabel`,
    :class:`MissingImage`, :class:`SizeMismatch`, :class:`UnknownMode`,
    :class:`UnsafePath`. A label value of an unexpected shape (a list where a
    number belongs ...) is a :class:`MalformedLabel` too, never another error.
    """
    fs, path = fs_path(label_url, fs)
    who = basename(label_url)
    state = {"pid": who}
    try:
        return _read(fs, path, label_url, who, root, keep_bytes, state)
    except ProductError:
        raise
    except (TypeError, KeyError, IndexError, AttributeError, OverflowError, ValueError,
            UnicodeError, ArithmeticError) as exc:
        raise MalformedLabel(state["pid"], f"label not understood ({type(exc).__name__}: "
                                           f"{exc})") from None


def _read(fs: fsspec.AbstractFileSystem, path: str, label_url: Any, who: str, root: str | None,
          keep_bytes: bool, state: dict) -> JiramProduct:
    if root is not None:
        confine(fs, path, fs._strip_protocol(str(root)), who=who, what="label")
    real_label = resolve_ci(fs, path)
    if real_label is None:
        raise ProductError(who, f"label not found at {label_url}")
    if root is not None:
        confine(fs, real_label, fs._strip_protocol(str(root)), who=who, what="label")
    label_bytes = read_capped(fs, real_label, who=who, what="label", limit=MAX_LABEL_BYTES)
    label, text = parse_label_bytes(label_bytes, who)
    pid = label_text(pvl_value(find_keyword(label, "PRODUCT_ID") or posixpath.splitext(who)[0]),
                     "PRODUCT_ID", who).strip('"')
    if not is_plain_token(pid):
        raise MalformedLabel(who, f"PRODUCT_ID {pid!r} is not a plain token (letters, digits, _.-)")
    state["pid"] = pid

    image_obj = _image_object(label, pid)
    lines = int_key(image_obj, "LINES", pid)
    samples = int_key(image_obj, "LINE_SAMPLES", pid)
    bands_n = int_key(image_obj, "BANDS", pid, default=1)
    bits = int_key(image_obj, "SAMPLE_BITS", pid)
    prefix = int_key(image_obj, "LINE_PREFIX_BYTES", pid, default=0)
    suffix = int_key(image_obj, "LINE_SUFFIX_BYTES", pid, default=0)
    sample_type = str(get_key(image_obj, "SAMPLE_TYPE", "")).strip().upper()
    if bands_n != 1:
        raise SizeMismatch(pid, f"IMAGE BANDS = {bands_n}; JIRAM imager frames have 1")
    if samples != jiram.N_SAMPLES:
        raise SizeMismatch(pid, f"LINE_SAMPLES {samples}: JIRAM imager frames have "
                                f"{jiram.N_SAMPLES}")
    if not (0 <= prefix <= 4096 and 0 <= suffix <= 4096):
        raise SizeMismatch(pid, f"LINE_PREFIX_BYTES {prefix} / LINE_SUFFIX_BYTES {suffix} are "
                                "not 0..4096")
    ptype = _product_type(label, pid, sample_type)
    dtype = _dtype(ptype, sample_type, bits, pid)
    mode, bands = _bands(label, lines, pid)
    unit = _unit(label, ptype, pid)

    # --- pixels (only beside the label)
    label_dir, _ = posixpath.split(real_label)
    file_name, offset = image_file_name(label, pid)
    if file_name is None:
        img_path = real_label
    else:
        wanted = posixpath.normpath(posixpath.join(label_dir, file_name))
        if not is_inside(wanted, label_dir):
            raise UnsafePath(pid, f"^IMAGE {file_name!r} leads outside the label's folder")
        img_path = resolve_ci(fs, wanted)
        if img_path is None:
            raise MissingImage(pid, f"^IMAGE file {file_name} is not beside the label ({wanted})")
        confine(fs, img_path, label_dir, who=pid, what=f"^IMAGE {file_name!r}:")
    size = int(fs.size(img_path))
    row_bytes = prefix + samples * dtype.itemsize + suffix
    expected = lines * row_bytes
    available = size - offset
    if available < expected:
        raise SizeMismatch(pid, f"{posixpath.basename(img_path)} holds {max(available, 0)} image "
                                f"bytes from offset {offset}, the label needs {expected} "
                                f"({lines} x {samples} x {dtype.itemsize})")
    if available > expected and file_name is not None:
        records = find_keyword(label, "FILE_RECORDS")
        rec_bytes = find_keyword(label, "RECORD_BYTES")
        try:
            described = (records is not None and rec_bytes is not None
                         and int(pvl_value(records)) * int(pvl_value(rec_bytes)) == size)
        except (TypeError, ValueError):
            raise MalformedLabel(pid, f"FILE_RECORDS {records!r} x RECORD_BYTES {rec_bytes!r} "
                                      "is not a number of bytes") from None
        if not described:
            raise SizeMismatch(pid, f"{posixpath.basename(img_path)} has {available - expected} "
                                    f"bytes more than the {expected} the image needs, and "
                                    "FILE_RECORDS x RECORD_BYTES does not account for them")
    if img_path == real_label:
        whole = label_bytes
    else:
        whole = read_capped(fs, img_path, who=pid, what="^IMAGE file")
    raw = whole[offset: offset + expected]
    if len(whole) != size or len(raw) != expected:
        raise SizeMismatch(pid, f"read {len(raw)} bytes of {posixpath.basename(img_path)}, "
                                f"expected {expected} (the file changed while read?)")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(lines, row_bytes)
    body = np.ascontiguousarray(rows[:, prefix: prefix + samples * dtype.itemsize])
    image = body.view(dtype).reshape(lines, samples).astype(dtype.newbyteorder("="), copy=True)
    image.flags.writeable = False

    # --- metadata
    start_raw = find_keyword(label, "START_TIME")
    if is_null(start_raw):
        raise MalformedLabel(pid, "START_TIME is missing")
    start = utc_text(start_raw, "START_TIME", pid)
    stop_raw = find_keyword(label, "STOP_TIME")
    stop, et_stop = "", None
    if is_null(stop_raw):
        et_start = _et(start)
    else:
        stop = utc_text(stop_raw, "STOP_TIME", pid)
        et_start, et_stop = _et(start, stop)  # one conversion of the two (stop 26)
        if et_stop < et_start:
            raise MalformedLabel(pid, f"STOP_TIME {stop} precedes START_TIME {start}")
        if et_stop - et_start > 10.0:
            raise MalformedLabel(pid, f"STOP_TIME {stop} is {et_stop - et_start:.1f} s after "
                                      f"START_TIME {start}; a JIRAM exposure is milliseconds")
    exposure_s = _exposure_s(label, pid, start, stop)
    et_mid = 0.5 * (et_start + et_stop) if et_stop is not None else et_start + 0.5 * exposure_s
    target = find_keyword(label, "TARGET_NAME", "")
    sclk = find_keyword(label, "SPACECRAFT_CLOCK_START_COUNT", "")
    seq = find_keyword(label, "SEQUENCE_ID", "")
    quality = find_keyword(label, "DATA_QUALITY_ID", "")
    source = find_keyword(label, "SOURCE_PRODUCT_ID", "")
    raw_files = None
    if keep_bytes:
        raw_files = {posixpath.basename(real_label): label_bytes}
        if img_path != real_label:
            raw_files[posixpath.basename(img_path)] = whole
    return JiramProduct(
        product_id=pid, product_type=ptype, start_time_utc=start, stop_time_utc=stop,
        et_mid=et_mid, sclk_start="" if is_null(sclk) else label_text(sclk, "SPACECRAFT_CLOCK", pid),
        orbit_number=_orbit(label, pid),
        target_name=label_text(pvl_value(target), "TARGET_NAME", pid).strip('"'),
        mode=mode, bands=bands, exposure_s=exposure_s,
        spice_file_names=_spice_names(label, text, pid), image=image, label_url=str(label_url),
        sequence_id="" if is_null(seq) else label_text(seq, "SEQUENCE_ID", pid),
        sequence_number=_optional_int(label, "SEQUENCE_NUMBER", pid),
        sequence_samples=_optional_int(label, "SEQUENCE_SAMPLES", pid), unit=unit,
        data_quality="" if is_null(quality) else label_text(quality, "DATA_QUALITY_ID", pid),
        source_product_id="" if is_null(source) else label_text(source, "SOURCE_PRODUCT_ID", pid),
        image_name=posixpath.basename(img_path), raw_files=raw_files,
    )
