"""JIRAM archive volumes and their ``INDEX/INDEX.TAB`` tables (PDS3).

Volumes are ``JNOJIR_1nnn`` (EDR, JNO-J-JIRAM-2-EDR-V1.0) and ``JNOJIR_2nnn``
(RDR, JNO-J-JIRAM-3-RDR-V1.0) under an archive root, nnn = orbit number.
``INDEX.TAB`` is read **row by row**: a bad row (too short, an unsafe or
missing file name, a product id that is not a plain token) is reported in
:attr:`IndexTable.problems` and skipped, the good rows are kept; a row count
that differs from the label's ``ROWS`` is a problem note, never a lost
volume. Without ``INDEX.LBL`` the table is read as CSV (columns found by
content). Every path stays under the volume: ``FILE_SPECIFICATION_NAME`` may
not be absolute nor contain ``..``, and on a local file system the INDEX
files must not be links leading out of the volume (:func:`index_files` lists
the INDEX files that may be copied).
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pandas as pd

from iovolc.pds3 import (
    ProductError,
    UnsafePath,
    basename,
    confine,
    fs_path,
    get_key,
    is_plain_token,
    list_names,
    parse_label_bytes,
    read_capped,
    resolve_ci,
)

__all__ = ["IndexTable", "read_index", "list_volumes", "volume_kind", "volume_orbit",
           "index_files", "MAX_INDEX_BYTES"]

#: the largest INDEX.TAB read (real JIRAM indexes are well under 10 MB)
MAX_INDEX_BYTES = 512 << 20

_VOLUME_RE = re.compile(r"^JNOJIR_([12])(\d{3})$", flags=re.IGNORECASE)
_NULLS = {"", "N/A", "NULL", "UNK", "UNKNOWN", "NONE"}


def volume_kind(name: str) -> str:
    """``JNOJIR_1nnn`` -> "EDR", ``JNOJIR_2nnn`` -> "RDR" (name or URL, any case)."""
    base = basename(name)
    m = _VOLUME_RE.match(base)
    if not m:
        raise ProductError(base, "not a JIRAM volume name (JNOJIR_1nnn or JNOJIR_2nnn)")
    return {"1": "EDR", "2": "RDR"}[m.group(1)]


def volume_orbit(name: str) -> int:
    """Orbit number of a JIRAM volume: ``JNOJIR_2057`` -> 57."""
    base = basename(name)
    m = _VOLUME_RE.match(base)
    if not m:
        raise ProductError(base, "not a JIRAM volume name (JNOJIR_1nnn or JNOJIR_2nnn)")
    return int(m.group(2))


def _join_url(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts if p)])


def list_volumes(archive_url: Any, *, fs: fsspec.AbstractFileSystem | None = None) -> list[str]:
    """URLs of the JIRAM volumes (``JNOJIR_1nnn`` / ``JNOJIR_2nnn``, any case) under a root.

    Sorted by orbit, EDR before RDR; each URL is ``archive_url`` + "/" + name.
    Raises :class:`ProductError` naming the root if it does not exist.
    """
    fs, path = fs_path(archive_url, fs)
    try:
        entries = fs.ls(path, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        raise ProductError(basename(archive_url), f"archive root {archive_url} not found") from None
    names = []
    for entry in entries:
        name = posixpath.basename(str(entry["name"]).rstrip("/"))
        if entry.get("type") == "directory" and _VOLUME_RE.match(name):
            names.append(name)
    names.sort(key=lambda n: (volume_orbit(n), volume_kind(n), n))
    return [_join_url(str(archive_url), n) for n in names]


@dataclass(frozen=True, eq=False)
class IndexTable:
    """A volume's INDEX rows that can be used, and what was wrong with the others."""

    volume_id: str
    #: lower-case columns; ``label_url`` joins the volume URL and FILE_SPECIFICATION_NAME
    rows: pd.DataFrame
    #: ``{"row": n (1-based line of INDEX.TAB, 0 = the table), "product_id": ..., "reason":
    #: ...}``; the reason names the column and its value, not the volume or the row
    problems: list[dict] = field(default_factory=list)


def _table_object(label: Mapping) -> tuple[str, Mapping] | None:
    """(pointer key, table object) of an index label: the object holding COLUMNs."""
    for key in ("INDEX_TABLE", "TABLE"):
        obj = get_key(label, key)
        if isinstance(obj, Mapping):
            return key, obj
    for key, obj in label.items():
        if isinstance(obj, Mapping) and "COLUMN" in obj:
            return str(key), obj
    return None


def _clean_cell(text: str) -> str:
    return text.strip().strip('"').strip()


def _columns(table: Mapping, who: str) -> list[tuple[str, int, int, str]]:
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
        columns.append((name.lower(), start, width, str(col.get("DATA_TYPE", "CHARACTER")).upper()))
    if not columns:
        raise ProductError(who, "INDEX.LBL describes no COLUMN")
    return columns


def _rows_from_label(tab: bytes, table: Mapping, who: str) -> tuple[list[dict], list[dict]]:
    columns = _columns(table, who)
    lines = [ln.rstrip("\r") for ln in tab.decode("latin-1").split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    problems: list[dict] = []
    n_rows = get_key(table, "ROWS")
    if n_rows is not None and str(n_rows).strip().isdigit() and int(n_rows) != len(lines):
        problems.append({"row": 0, "product_id": "", "reason": (
            f"INDEX.TAB has {len(lines)} rows, INDEX.LBL says ROWS = {int(n_rows)} "
            "(rows read one by one)")})
    need = max(start + width for _, start, width, _ in columns)
    last_start = max(start for _, start, _, _ in columns)
    rows = []
    for i, line in enumerate(lines, start=1):
        if len(line) <= last_start:
            problems.append({"row": i, "product_id": "", "reason": (
                f"the row is {len(line)} bytes, shorter than its columns ({need})")})
            continue
        row = {name: _clean_cell(line[start:start + width]) for name, start, width, _ in columns}
        row["_row"] = i
        rows.append(row)
    return rows, problems


_HEADER_CELL = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TIME_CELL = re.compile(r"^\d{4}-\d{2,3}(-\d{2})?T\d{2}:\d{2}")


def _rows_from_csv(tab: bytes, who: str) -> tuple[list[dict], list[dict]]:
    """INDEX.TAB without its label: comma-separated, optional header; columns found by content."""
    raw = [r for r in csv.reader(io.StringIO(tab.decode("latin-1")), skipinitialspace=True)
           if any(c.strip() for c in r)]
    if not raw:
        raise ProductError(who, "INDEX.TAB is empty")
    rows = [[_clean_cell(c) for c in r] for r in raw]
    head = rows[0]
    if all(_HEADER_CELL.match(c) for c in head) and "FILE_SPECIFICATION_NAME" in head:
        names, body, first = [c.lower() for c in head], rows[1:], 2
    else:
        body, first = rows, 1
        widths = pd.Series([len(r) for r in body]).mode()
        width = int(widths.iloc[0])
        good = [r for r in body if len(r) == width]
        names, n_time = [], 0
        for j in range(width):
            col = [r[j] for r in good]
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
        raise ProductError(who, "INDEX.LBL is missing and no INDEX.TAB column holds label names")
    out, problems = [], []
    for i, r in enumerate(body, start=first):
        if len(r) != len(names):
            problems.append({"row": i, "product_id": "", "reason": (
                f"the row has {len(r)} fields, the table {len(names)}")})
            continue
        out.append({**dict(zip(names, r, strict=True)), "_row": i})
    return out, problems


def read_index(volume_url: Any, *, fs: fsspec.AbstractFileSystem | None = None) -> IndexTable:
    """A volume's INDEX as an :class:`IndexTable` (see the module docstring).

    Raises :class:`ProductError` naming the volume only when the table as a
    whole is unusable (no INDEX folder, no table, no label-name column).
    """
    fs, vol_path = fs_path(volume_url, fs)
    who = basename(volume_url)
    vol_real = resolve_ci(fs, vol_path.rstrip("/"))
    if vol_real is None:
        raise ProductError(who, f"volume not found at {volume_url}")
    index_dir_name = list_names(fs, vol_real).get("index")
    if index_dir_name is None:
        raise ProductError(who, "volume has no INDEX/ folder")
    index_dir = posixpath.join(vol_real, index_dir_name)
    files = list_names(fs, index_dir)

    def index_bytes(name: str, what: str) -> bytes:
        path = confine(fs, posixpath.join(index_dir, name), vol_real, who=who, what=what)
        return read_capped(fs, path, who=who, what=what, limit=MAX_INDEX_BYTES)

    lbl_name = files.get("index.lbl")
    if lbl_name is not None:
        label, _ = parse_label_bytes(index_bytes(lbl_name, "INDEX.LBL"), f"{who} INDEX.LBL")
        found = _table_object(label)
        if found is None:
            raise ProductError(who, "INDEX.LBL has no table object with COLUMNs")
        key, table = found
        ptr = get_key(label, f"^{key}")
        tab_file = (ptr[0] if isinstance(ptr, list | tuple) else ptr) if ptr is not None \
            else "INDEX.TAB"
        tab_name = files.get(posixpath.basename(str(tab_file).strip()).lower())
        if tab_name is None:
            raise ProductError(who, f"INDEX.LBL points at {tab_file}, which is not in INDEX/")
        rows, problems = _rows_from_label(index_bytes(tab_name, "INDEX.TAB"), table, who)
    else:
        tab_name = files.get("index.tab")
        if tab_name is None:
            raise ProductError(who, "INDEX/ holds neither INDEX.LBL nor INDEX.TAB")
        rows, problems = _rows_from_csv(index_bytes(tab_name, "INDEX.TAB"), who)
    if rows and "file_specification_name" not in rows[0]:
        raise ProductError(who, "index has no FILE_SPECIFICATION_NAME column")

    listings: dict[str, dict[str, str]] = {}

    def actual_relpath(spec: str) -> str:
        parts = [p for p in str(spec).replace("\\", "/").split("/") if p and p != "."]
        here, out = vol_real, []
        for part in parts:
            if here not in listings:
                listings[here] = list_names(fs, here)
            name = listings[here].get(part.lower(), part)
            out.append(name)
            here = posixpath.join(here, name)
        return "/".join(out)

    # the volume as given, unless its case had to be corrected on disk
    base = str(volume_url) if vol_real == vol_path.rstrip("/") else fs.unstrip_protocol(vol_real)
    kept = []
    for row in rows:
        spec = str(row.get("file_specification_name", "")).replace("\\", "/")
        pid = str(row.get("product_id", "")).strip()
        reason = None
        if not spec or spec.upper() in _NULLS:
            reason = "FILE_SPECIFICATION_NAME is empty"
        elif spec.startswith("/") or ".." in spec.split("/") or "://" in spec or \
                re.match(r"^[A-Za-z]:", spec):
            reason = f"FILE_SPECIFICATION_NAME {spec!r} leads outside the volume"
        elif not all(is_plain_token(part) for part in spec.split("/") if part not in ("", ".")):
            reason = (f"FILE_SPECIFICATION_NAME {spec!r} holds characters other than letters, "
                      "digits, _.- and /")
        elif pid and not is_plain_token(pid):
            reason = f"PRODUCT_ID {pid!r} is not a plain token (letters, digits, _.-)"
        if reason:
            problems.append({"row": row["_row"], "product_id": pid, "reason": reason})
            continue
        row["label_url"] = _join_url(base, actual_relpath(spec))
        row["relative_path"] = actual_relpath(spec)
        kept.append(row)
    df = pd.DataFrame(kept)
    return IndexTable(volume_id=basename(vol_real), rows=df, problems=problems)


def index_files(volume_url: Any, *, fs: fsspec.AbstractFileSystem | None = None
                ) -> list[tuple[str, str]]:
    """The files of a volume's ``INDEX/`` folder that may be copied: ``[(relative path,
    path in fs)]`` (e.g. ``("INDEX/INDEX.TAB", ...)``), sorted.

    Only regular files directly in ``INDEX/``; on a local file system a link
    that leads out of the volume is left out (never opened). Nothing else of
    the volume is listed.
    """
    fs, vol_path = fs_path(volume_url, fs)
    vol_real = resolve_ci(fs, vol_path.rstrip("/"))
    if vol_real is None:
        return []
    index_dir_name = list_names(fs, vol_real).get("index")
    if index_dir_name is None:
        return []
    index_dir = posixpath.join(vol_real, index_dir_name)
    out = []
    for name in sorted(list_names(fs, index_dir).values()):
        path = posixpath.join(index_dir, name)
        try:
            confine(fs, path, vol_real, who=basename(vol_real), what="INDEX file")
        except UnsafePath:
            continue
        if fs.isfile(path):
            out.append((f"{index_dir_name}/{name}", path))
    return out
