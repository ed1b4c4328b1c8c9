"""PDS3 labels and archive paths: parsing, keyword lookup, confinement, errors.

Generic helpers for :mod:`iovolc.reader` (JIRAM imager products) and
:mod:`iovolc.pds3_index` (volumes and their INDEX tables). The JIRAM reader
follows the real archive (a real RDR label is kept in
``tests/data/real_labels/``) and tolerates what real volumes do:

* keywords at the top level **or nested** in ``OBJECT = FILE`` (the real
  layout: ``UNIT``, ``^IMAGE``, ``OBJECT = IMAGE``, ``OBJECT = HISTORY`` and
  ``SPICE_FILE_NAME`` live inside FILE), in any order and case;
* ``INSTRUMENT_MODE_ID = SCI_I1_S1`` (or ``I1``...), cross-checked with the
  ``L_BAND_PARAMETERS``/``M_BAND_PARAMETERS`` blocks (GROUP or OBJECT; an
  integer ``LINE_FIRST_PIXEL`` means the band is present) and with LINES;
* ``UNIT = "W/(m^2*sr)"`` or ``"W/(m^2*sr*micron)"`` (the same band radiance);
* ``EXPOSURE_DURATION`` with a unit, without one, or absent (then
  STOP_TIME - START_TIME, as jiram_catalog derives it);
* ``SPICE_FILE_NAME`` as a string, a sequence or a PVL set ``{...}`` (the
  real form; its textual order is kept), entries with folders -> bare names;
* ``TARGET_NAME = "N/A"`` (Io labels from 2022 on), ``ORBIT_NUMBER`` absent;
* ``^IMAGE`` as a name, ``(name, record)``, ``(name, n <BYTES>)`` or an
  attached offset; the file found case-insensitively next to the label;
* RDR pixels labelled ``IEEE_REAL`` read **little-endian** (the archive quirk).

Paths are confined: a label must lie under ``root`` when one is given, and
``^IMAGE`` must name a file beside the label (no absolute path, no ``..``);
on a local file system the check is repeated on the resolved path
(:func:`confine`), so a symbolic link inside a volume that leads out of it is
refused too. Nothing outside is ever opened, and no file larger than
:data:`MAX_FILE_BYTES` is read. Every failure is a :class:`ProductError`
whose text -- one printable line -- names the product, the keyword or file,
and the value.
"""

from __future__ import annotations

import os
import posixpath
import re
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import fsspec

from iovolc import odl

with warnings.catch_warnings():  # pvl 1.3 warns about its own Units class on import
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import pvl

__all__ = [
    "ProductError", "MalformedLabel", "SizeMismatch", "MissingImage", "UnknownMode",
    "UnsafePath", "read_label", "find_keyword", "image_file_name", "is_plain_token",
    "is_inside", "resolve_ci", "list_names", "fs_path", "basename", "confine", "is_local",
    "one_line", "read_capped", "MAX_FILE_BYTES",
]

#: no label, image or index file larger than this is read (a JIRAM image is 432 KiB at most)
MAX_FILE_BYTES = 64 << 20


def one_line(text: str, limit: int = 400) -> str:
    """``text`` as one printable ASCII line (control and non-ASCII characters escaped)."""
    flat = " ".join(str(text).split())
    out = "".join(c if 32 <= ord(c) < 127 else
                  (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}") for c in flat)
    return out if len(out) <= limit else out[: limit - 3] + "..."


# --- errors -----------------------------------------------------------------------


class ProductError(ValueError):
    """A product (or volume) that cannot be used: ``str() == f"{product_id}: {reason}"``."""

    def __init__(self, product_id: str, reason: str) -> None:
        product_id, reason = one_line(product_id, 120), one_line(reason)
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
    """INSTRUMENT_MODE_ID is not a JIRAM imager mode, or disagrees with the band blocks."""


class UnsafePath(ProductError):
    """A label, image or index path that would lead outside the archive root."""


# --- filesystem helpers -----------------------------------------------------------


def fs_path(url: Any, fs: fsspec.AbstractFileSystem | None
            ) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for a local path, an fsspec URL, or a path + ``fs``."""
    text = str(url)
    if fs is None:
        return fsspec.core.url_to_fs(text)
    return fs, fs._strip_protocol(text)


def basename(url: Any) -> str:
    return posixpath.basename(str(url).rstrip("/")) or str(url)


def list_names(fs: fsspec.AbstractFileSystem, dir_path: str) -> dict[str, str]:
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


def resolve_ci(fs: fsspec.AbstractFileSystem, path: str) -> str | None:
    """``path`` if it exists, else the same path matched case-insensitively, else None."""
    if fs.exists(path):
        return path
    parent, name = posixpath.split(path.rstrip("/"))
    if not name or parent == path:
        return None
    real_parent = resolve_ci(fs, parent) if parent else parent
    if real_parent is None:
        return None
    actual = list_names(fs, real_parent).get(name.lower())
    return None if actual is None else posixpath.join(real_parent, actual)


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """True for the local file system (where symbolic links can lead anywhere)."""
    proto = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return "file" in proto or "local" in proto


def confine(fs: fsspec.AbstractFileSystem, path: str, root: str, *, who: str, what: str) -> str:
    """``path`` if it lies under ``root``, else :class:`UnsafePath` naming ``what``.

    The normalised path must be under the normalised root (string check, any
    file system); on the local file system the resolved path (symbolic links
    followed) must also be under the resolved root. Nothing is opened.
    """
    if not is_inside(path, root):
        raise UnsafePath(who, f"{what} {path} is outside {root}")
    if is_local(fs):
        real, real_root = os.path.realpath(path), os.path.realpath(root)
        if not is_inside(real, real_root):
            raise UnsafePath(who, f"{what} {path} is a link to {real}, outside {root}")
    return path


def read_capped(fs: fsspec.AbstractFileSystem, path: str, *, who: str, what: str,
                limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``, refused (:class:`ProductError`) if larger than ``limit``."""
    size = fs.size(path)
    if size is not None and int(size) > limit:
        raise ProductError(who, f"{what} {posixpath.basename(path)} is {int(size)} bytes, "
                                f"more than the {limit} read at most")
    data = fs.cat_file(path)
    if len(data) > limit:
        raise ProductError(who, f"{what} {posixpath.basename(path)} is more than {limit} bytes")
    return data


def is_inside(path: str, root: str) -> bool:
    """True if normalised ``path`` is ``root`` or below it (pure string check)."""
    p = posixpath.normpath("/" + path.lstrip("/")) if not path.startswith("/") else \
        posixpath.normpath(path)
    r = posixpath.normpath("/" + root.lstrip("/")) if not root.startswith("/") else \
        posixpath.normpath(root)
    return p == r or p.startswith(r.rstrip("/") + "/")


_TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def is_plain_token(text: str) -> bool:
    """A product id usable as an object-store key segment (letters, digits, ``_.-``)."""
    return bool(_TOKEN_RE.match(text)) and ".." not in text


# --- labels -----------------------------------------------------------------------

_END_LINE = re.compile(rb"^[ \t]*END[ \t]*\r?$", flags=re.MULTILINE)


def parse_label_bytes(raw: bytes, who: str) -> tuple[Mapping, str]:
    if not raw.strip():
        raise MalformedLabel(who, "label is empty")
    m = _END_LINE.search(raw)  # attached labels / padding: parse up to the END line
    text = raw[: m.end()].decode("latin-1") if m else raw.decode("latin-1")
    try:
        # the fast ODL reader first (equal to pvl on well-formed PDS3 labels, 60x faster);
        # anything it does not understand goes to pvl, which also words the errors
        label = odl.loads(text)
    except odl.OdlError:
        label = None
    try:
        if label is None:
            label = pvl.loads(text)
    except Exception as exc:  # pvl raises LexerError, ParseError, QuantityError ...
        bad = _bad_byte(text)
        if bad:
            raise MalformedLabel(who, f"label does not parse as PVL: {bad}") from None
        msg = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        line = getattr(exc, "lineno", None)
        where = f"line {line}: " if isinstance(line, int) else ""
        raise MalformedLabel(who, f"label does not parse as PVL ({where}"
                                  f"{one_line(str(msg), 160)})") from None
    if not isinstance(label, Mapping) or not len(label):
        raise MalformedLabel(who, "label has no keywords")
    return label, text


_KEYWORD_AT = re.compile(r"^\s*(\^?[A-Za-z][A-Za-z0-9_:]*)\s*=")


def _bad_byte(text: str) -> str:
    """The first byte a PDS3 label may not hold (control or non-ASCII), named by its keyword."""
    for n, line in enumerate(text.split("\n"), start=1):
        for c in line.rstrip("\r"):
            if not (32 <= ord(c) < 127 or c == "\t"):
                m = _KEYWORD_AT.match(line)
                key = m.group(1) if m else "a line without a keyword"
                return f"line {n} ({key}) holds byte 0x{ord(c):02X}"
    return ""


def read_label(path_or_url: Any, *, fs: fsspec.AbstractFileSystem | None = None) -> Mapping:
    """Parse a PDS3 label into a ``pvl.PVLModule`` (a dict keeping repeated keys).

    Raises :class:`MalformedLabel` (naming the file) if it does not parse,
    :class:`ProductError` if the file is missing.
    """
    fs, path = fs_path(path_or_url, fs)
    who = basename(path_or_url)
    real = resolve_ci(fs, path)
    if real is None:
        raise ProductError(who, f"label not found at {path_or_url}")
    return parse_label_bytes(read_capped(fs, real, who=who, what="label"), who)[0]


_NULLS = {"", "N/A", "NULL", "UNK", "UNKNOWN", "NONE"}


def pvl_value(v: Any) -> Any:
    """Strip a pvl Quantity down to its value."""
    return v.value if hasattr(v, "value") and hasattr(v, "units") else v


def get_key(block: Mapping, key: str, default: Any = None) -> Any:
    """Case-insensitive keyword lookup in one block."""
    if key in block:
        return block[key]
    upper = key.upper()
    for k, v in block.items():
        if str(k).upper() == upper:
            return v
    return default


def find_keyword(label: Mapping, key: str, default: Any = None) -> Any:
    """``key`` at the top level, else in the nested objects (FILE, IMAGE, ...), breadth first."""
    queue: list[Mapping] = [label]
    while queue:
        block = queue.pop(0)
        found = get_key(block, key)
        if found is not None:
            return found
        queue.extend(v for v in block.values() if isinstance(v, Mapping))
    return default


def is_null(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip().upper() in _NULLS)


def label_text(v: Any, key: str, pid: str) -> str:
    """A label string: printable ASCII only, or MalformedLabel naming it."""
    s = str(v).strip()
    if any(not (32 <= ord(c) < 127) for c in s):
        raise MalformedLabel(pid, f"{key} {s!r} holds non-printable or non-ASCII characters")
    return s


_DOY_TIME = re.compile(r"^(\d{4})-(\d{3})(T.*)?$")


def utc_text(v: Any, key: str, pid: str) -> str:
    """A label time (pvl datetime, ISO or day-of-year string) -> ISO calendar string."""
    if isinstance(v, datetime):
        dt = v.replace(tzinfo=None)
    else:
        s = label_text(v, key, pid).strip('"').rstrip("Z")
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
    if not 2011 <= dt.year <= 2040:  # Juno launched 2011; beyond 2040 is not a Juno time
        raise MalformedLabel(pid, f"{key} {dt.isoformat()} is outside the Juno mission")
    spec = "milliseconds" if dt.microsecond % 1000 == 0 else "microseconds"
    return dt.isoformat(timespec=spec)


#: label SAMPLE_TYPE families -> numpy byte order and kind
SAMPLE_TYPES: dict[str, tuple[str, str]] = {
    **{t: ("<", "i") for t in ("LSB_INTEGER", "PC_INTEGER", "VAX_INTEGER")},
    **{t: ("<", "u") for t in ("LSB_UNSIGNED_INTEGER", "PC_UNSIGNED_INTEGER",
                               "VAX_UNSIGNED_INTEGER")},
    **{t: (">", "i") for t in ("MSB_INTEGER", "INTEGER", "SUN_INTEGER", "MAC_INTEGER")},
    **{t: (">", "u") for t in ("MSB_UNSIGNED_INTEGER", "UNSIGNED_INTEGER",
                               "SUN_UNSIGNED_INTEGER", "MAC_UNSIGNED_INTEGER")},
    **{t: (">", "f") for t in ("IEEE_REAL", "REAL", "FLOAT", "SUN_REAL", "MAC_REAL", "MSB_REAL")},
    **{t: ("<", "f") for t in ("PC_REAL", "LSB_REAL")},
}


def int_key(block: Mapping, key: str, pid: str, *, default: int | None = None) -> int:
    raw = get_key(block, key)
    if raw is None:
        if default is not None:
            return default
        raise MalformedLabel(pid, f"IMAGE {key} is missing")
    try:
        return int(pvl_value(raw))
    except (TypeError, ValueError):
        raise MalformedLabel(pid, f"{key} {raw!r} is not an integer") from None


def image_file_name(label: Mapping, pid: str) -> tuple[str | None, int]:
    """``^IMAGE`` -> (file name, byte offset); file name None for an attached image.

    The name must stay beside the label: not empty, not absolute, no ``..``.
    """
    ptr = find_keyword(label, "^IMAGE")
    if ptr is None:
        raise MalformedLabel(pid, "label has no ^IMAGE pointer")
    record_bytes = find_keyword(label, "RECORD_BYTES")

    def offset_of(loc: Any) -> int:
        units = str(getattr(loc, "units", "") or "").strip().upper()
        try:
            n = int(pvl_value(loc))
        except (TypeError, ValueError):
            raise MalformedLabel(pid, f"^IMAGE location {loc!r} is not an integer") from None
        if n < 1:
            raise MalformedLabel(pid, f"^IMAGE location {n} must be >= 1")
        if units == "BYTES" or n == 1:
            return n - 1
        if record_bytes is None:
            raise MalformedLabel(pid, f"^IMAGE points at record {n} but RECORD_BYTES is missing")
        return (n - 1) * int(pvl_value(record_bytes))

    if isinstance(ptr, str):
        name, offset = ptr, 0
    elif isinstance(ptr, list | tuple) and len(ptr) in (1, 2):
        name = str(ptr[0])
        offset = offset_of(ptr[1]) if len(ptr) == 2 else 0
    elif isinstance(ptr, list | tuple):
        raise MalformedLabel(pid, f"^IMAGE {ptr!r} is not (file, record)")
    else:
        return None, offset_of(ptr)
    name = label_text(name, "^IMAGE", pid).strip('"').replace("\\", "/")
    if not name:
        raise MalformedLabel(pid, "^IMAGE names no file (empty string)")
    parts = name.split("/")
    if name.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", name) or "://" in name:
        raise UnsafePath(pid, f"^IMAGE {name!r} leads outside the label's folder")
    return name, offset
