"""Write simulated JIRAM imager products in the real PDS3 archive layout.

The layout follows the Atmospheres node volumes: ``JNOJIR_1nnn`` (EDR,
JNO-J-JIRAM-2-EDR-V1.0) and ``JNOJIR_2nnn`` (RDR, JNO-J-JIRAM-3-RDR-V1.0),
nnn = orbit number. Each volume holds ``DATA/`` (detached ``.LBL`` + ``.IMG``),
``INDEX/INDEX.TAB`` + ``INDEX.LBL``, ``CALIB/``, ``DOCUMENT/`` and the usual
``AAREADME.TXT``, ``VOLDESC.CAT`` and ``ERRATA.TXT``. All text is ASCII, CR-LF,
at most 80 characters a line. RDR pixels are labelled ``IEEE_REAL`` (big-endian
in PDS3) but written little-endian, like the real archive
(:data:`iovolc.jiram.RDR_DTYPE`).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from iovolc import jiram

_CRLF = "\r\n"
_MAX_LINE = 80
_KEY_WIDTH = 28
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?")
_SCLK_RE = re.compile(r"(\d+/)?\d+[:.]\d+")
_DATA_SET_ID = {"EDR": jiram.EDR_DATA_SET_ID, "RDR": jiram.RDR_DATA_SET_ID}
_DATA_SET_NAME = {
    "EDR": "JUNO JUPITER JIRAM EXPERIMENT DATA RECORD V1.0",
    "RDR": "JUNO JUPITER JIRAM REDUCED DATA RECORD V1.0",
}
_VOLUME_DIGIT = {"EDR": "1", "RDR": "2"}
#: product type -> (on-disk dtype, label SAMPLE_TYPE, label UNIT)
_PIXELS = {
    "EDR": (jiram.EDR_DTYPE, "LSB_INTEGER", "DN"),
    "RDR": (jiram.RDR_DTYPE, "IEEE_REAL", "W/(m**2*sr)"),
}
#: INDEX.TAB columns: name, PDS3 DATA_TYPE, minimum width, description
_COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("VOLUME_ID", "CHARACTER", 11, "Volume holding the product"),
    ("FILE_SPECIFICATION_NAME", "CHARACTER", 38, "Label path relative to the volume root"),
    ("PRODUCT_ID", "CHARACTER", 30, "Product identifier"),
    ("PRODUCT_TYPE", "CHARACTER", 3, "EDR (raw DN) or RDR (radiance)"),
    ("START_TIME", "CHARACTER", 23, "UTC start of the exposure"),
    ("STOP_TIME", "CHARACTER", 23, "UTC stop of the exposure"),
    ("SPACECRAFT_CLOCK_START_COUNT", "CHARACTER", 16, "Spacecraft clock at start"),
    ("SPACECRAFT_CLOCK_STOP_COUNT", "CHARACTER", 16, "Spacecraft clock at stop"),
    ("ORBIT_NUMBER", "ASCII_INTEGER", 3, "Juno orbit (apojove to apojove)"),
    ("TARGET_NAME", "CHARACTER", 3, "Target of the observation"),
    ("INSTRUMENT_MODE_ID", "CHARACTER", 2, "Imager mode: I1 (L+M), I2 (M), I3 (L)"),
    ("EXPOSURE_DURATION", "ASCII_REAL", 8, "Exposure duration (s)"),
    ("SEQUENCE_ID", "CHARACTER", 1, "Observation sequence"),
)
_COLUMN_NAMES = tuple(c[0] for c in _COLUMNS)


def _parse_time(value: str, what: str) -> datetime:
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not 'YYYY-MM-DDThh:mm:ss[.fff]' (UTC, no zone)")
    return datetime.fromisoformat(value)


def _product_type(ptype: str) -> str:
    if ptype not in _DATA_SET_ID:
        raise ValueError(f"PRODUCT_TYPE {ptype!r} must be 'EDR' or 'RDR'")
    return ptype


@dataclass(frozen=True)
class JiramImageMeta:
    """Label metadata of one JIRAM imager frame."""

    product_type: str
    start_time_utc: str
    stop_time_utc: str
    sclk_start: str
    sclk_stop: str
    orbit_number: int
    target_name: str
    instrument_mode_id: str
    exposure_duration_s: float
    spice_file_names: tuple[str, ...]
    sequence_id: str = ""
    product_creation_time: str = ""

    @property
    def product_id(self) -> str:
        start = _parse_time(self.start_time_utc, "START_TIME")
        return f"JIR_IMG_{_product_type(self.product_type)}_{start:%Y%jT%H%M%S}_V01"

    @property
    def data_set_id(self) -> str:
        return _DATA_SET_ID[_product_type(self.product_type)]

    @property
    def volume_id(self) -> str:
        orbit = self.orbit_number
        if (
            isinstance(orbit, bool)
            or not isinstance(orbit, int | np.integer)
            or not 0 <= orbit <= 999
        ):
            raise ValueError(f"ORBIT_NUMBER {orbit!r} must be an integer 0..999")
        return f"JNOJIR_{_VOLUME_DIGIT[_product_type(self.product_type)]}{int(orbit):03d}"


# --- text helpers ---------------------------------------------------------------


def _text(value: object, what: str) -> str:
    """A string safe inside PDS3 double quotes and CSV fields."""
    s = str(value)
    if not all(32 <= ord(c) < 127 for c in s) or '"' in s:
        raise ValueError(f"{what} {s!r} must be printable ASCII without double quotes")
    return s


def _real(x: float) -> str:
    return np.format_float_positional(float(x), trim="0")


def _kv(key: str, value: object, indent: int = 0) -> str:
    return f"{' ' * indent}{key:<{_KEY_WIDTH - indent}} = {value}"


def _sequence(key: str, items: tuple[str, ...]) -> list[str]:
    """``KEY = ("a", "b", ...)`` wrapped to 80 columns."""
    head = _kv(key, "(")
    tokens = [f'"{s}"' + (", " if i < len(items) - 1 else ")") for i, s in enumerate(items)]
    fits = all(len(head) + len(t.rstrip()) <= _MAX_LINE for t in tokens)
    cont = " " * (len(head) if fits else 4)
    lines, cur = [], head
    for tok in tokens:
        if len(cur) + len(tok.rstrip()) > _MAX_LINE and cur.strip() not in ("", head.strip()):
            lines.append(cur.rstrip())
            cur = cont
        cur += tok
    lines.append(cur.rstrip())
    return lines


def _write_text(path: Path, lines: list[str], who: str) -> None:
    for line in lines:
        if len(line) > _MAX_LINE:
            raise ValueError(f"{who}: line longer than {_MAX_LINE} characters: {line!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((_CRLF.join(lines) + _CRLF).encode("ascii"))


# --- products -------------------------------------------------------------------


def _checked(meta: JiramImageMeta, image: np.ndarray) -> tuple[str, np.ndarray]:
    """Validate ``meta`` and ``image``; return the product id and on-disk pixels."""
    try:
        pid = meta.product_id
    except ValueError as exc:
        raise ValueError(f"JIRAM product starting {meta.start_time_utc!r}: {exc}") from None
    try:
        meta.volume_id  # noqa: B018 - validates orbit number
        lines = jiram.mode_lines(meta.instrument_mode_id)
        stop = _parse_time(meta.stop_time_utc, "STOP_TIME")
        if stop < _parse_time(meta.start_time_utc, "START_TIME"):
            raise ValueError("STOP_TIME precedes START_TIME")
        for what, sclk in (("SCLK start", meta.sclk_start), ("SCLK stop", meta.sclk_stop)):
            if not isinstance(sclk, str) or not _SCLK_RE.fullmatch(sclk):
                raise ValueError(f"{what} {sclk!r} is not 'seconds:ticks'")
        for what, s in (("TARGET_NAME", meta.target_name), ("SEQUENCE_ID", meta.sequence_id)):
            _text(s, what)
        if not meta.target_name:
            raise ValueError("TARGET_NAME is empty")
        if meta.product_creation_time:
            _parse_time(meta.product_creation_time, "PRODUCT_CREATION_TIME")
        exp = float(meta.exposure_duration_s)
        if not (np.isfinite(exp) and exp > 0):
            raise ValueError(f"EXPOSURE_DURATION {exp!r} must be positive")
        if isinstance(meta.spice_file_names, str) or not meta.spice_file_names:
            raise ValueError("SPICE_FILE_NAME needs a non-empty tuple of kernel names")
        for name in meta.spice_file_names:
            _text(name, "SPICE file name")
        arr = np.asarray(image)
        if arr.shape != (lines, jiram.N_SAMPLES):
            raise ValueError(
                f"image shape {arr.shape} != ({lines}, {jiram.N_SAMPLES}) for mode "
                f"{meta.instrument_mode_id}"
            )
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"image dtype {arr.dtype} is not real-valued")
        dtype = _PIXELS[meta.product_type][0]
        if meta.product_type == "EDR":
            info = np.iinfo(dtype)
            if arr.dtype.kind == "f" and not (
                np.isfinite(arr).all() and (arr == np.round(arr)).all()
            ):
                raise ValueError("EDR image must be integer-valued DN")
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise ValueError(f"EDR image values outside the int16 range {info.min}..{info.max}")
    except ValueError as exc:
        raise ValueError(f"{pid}: {exc}") from None
    return pid, np.ascontiguousarray(arr, dtype=dtype)


def _image_label(meta: JiramImageMeta, pid: str, pixels: np.ndarray) -> list[str]:
    _, sample_type, unit = _PIXELS[meta.product_type]
    created = meta.product_creation_time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    lines = [
        _kv("PDS_VERSION_ID", "PDS3"),
        _kv("RECORD_TYPE", "FIXED_LENGTH"),
        _kv("RECORD_BYTES", pixels.shape[1] * pixels.itemsize),
        _kv("FILE_RECORDS", pixels.shape[0]),
        _kv("^IMAGE", f'("{pid}.IMG", 1)'),
        _kv("DATA_SET_ID", f'"{meta.data_set_id}"'),
        _kv("DATA_SET_NAME", f'"{_DATA_SET_NAME[meta.product_type]}"'),
        _kv("PRODUCT_ID", f'"{pid}"'),
        _kv("PRODUCT_TYPE", meta.product_type),
        _kv("PRODUCT_CREATION_TIME", created),
        _kv("PRODUCER_ID", '"JIRAM TEAM"'),
        _kv("MISSION_NAME", '"JUNO"'),
        _kv("INSTRUMENT_HOST_NAME", '"JUNO"'),
        _kv("INSTRUMENT_HOST_ID", "JNO"),
        _kv("INSTRUMENT_NAME", '"JOVIAN INFRARED AURORAL MAPPER"'),
        _kv("INSTRUMENT_ID", "JIRAM"),
        _kv("TARGET_NAME", f'"{meta.target_name}"'),
        _kv("START_TIME", meta.start_time_utc),
        _kv("STOP_TIME", meta.stop_time_utc),
        _kv("SPACECRAFT_CLOCK_START_COUNT", f'"{meta.sclk_start}"'),
        _kv("SPACECRAFT_CLOCK_STOP_COUNT", f'"{meta.sclk_stop}"'),
        _kv("ORBIT_NUMBER", int(meta.orbit_number)),
        _kv("INSTRUMENT_MODE_ID", f'"{meta.instrument_mode_id}"'),
        _kv("EXPOSURE_DURATION", f"{_real(meta.exposure_duration_s)} <s>"),
        *_sequence("SPICE_FILE_NAME", tuple(meta.spice_file_names)),
    ]
    if meta.sequence_id:
        lines.append(_kv("SEQUENCE_ID", f'"{meta.sequence_id}"'))
    lines += [
        "",
        _kv("OBJECT", "IMAGE"),
        _kv("LINES", pixels.shape[0], 2),
        _kv("LINE_SAMPLES", pixels.shape[1], 2),
        _kv("SAMPLE_TYPE", sample_type, 2),
        _kv("SAMPLE_BITS", pixels.itemsize * 8, 2),
        _kv("BANDS", 1, 2),
        _kv("BAND_STORAGE_TYPE", "BAND_SEQUENTIAL", 2),
        _kv("UNIT", f'"{unit}"', 2),
        _kv("END_OBJECT", "IMAGE"),
        "END",
    ]
    return lines


def write_product(volume_dir: Path, meta: JiramImageMeta, image: np.ndarray) -> dict:
    """Write ``DATA/<product_id>.IMG`` and ``.LBL``; return the INDEX row (dict)."""
    pid, pixels = _checked(meta, image)
    label = _image_label(meta, pid, pixels)
    data = Path(volume_dir) / "DATA"
    _write_text(data / f"{pid}.LBL", label, pid)
    (data / f"{pid}.IMG").write_bytes(pixels.tobytes())
    return {
        "VOLUME_ID": meta.volume_id,
        "FILE_SPECIFICATION_NAME": f"DATA/{pid}.LBL",
        "PRODUCT_ID": pid,
        "PRODUCT_TYPE": meta.product_type,
        "START_TIME": meta.start_time_utc,
        "STOP_TIME": meta.stop_time_utc,
        "SPACECRAFT_CLOCK_START_COUNT": meta.sclk_start,
        "SPACECRAFT_CLOCK_STOP_COUNT": meta.sclk_stop,
        "ORBIT_NUMBER": int(meta.orbit_number),
        "TARGET_NAME": meta.target_name,
        "INSTRUMENT_MODE_ID": meta.instrument_mode_id,
        "EXPOSURE_DURATION": float(meta.exposure_duration_s),
        "SEQUENCE_ID": meta.sequence_id,
    }


#: volume-level text files, formatted with the fields of :func:`write_volume`
_VOLUME_TEXTS = {
    "AAREADME.TXT": """\
Volume {vol}: {name}
Data set {dsid}, {n} JIRAM imager products.

This volume follows the PDS3 standard. Its directories are:
  INDEX/     INDEX.TAB lists every product; INDEX.LBL describes its columns.
  DATA/      detached PDS3 labels (.LBL) and images (.IMG). Locate products
             through FILE_SPECIFICATION_NAME in INDEX.TAB.
  CALIB/     calibration notes (CALINFO.TXT).
  DOCUMENT/  documentation notes (DOCINFO.TXT).

Images are 432 samples wide: mode I1 has 256 lines (L band lines 0-127,
M band lines 128-255), I2 128 lines (M band), I3 128 lines (L band).
RDR pixels are labelled IEEE_REAL but stored LITTLE-ENDIAN (see ERRATA.TXT).""",
    "ERRATA.TXT": """\
ERRATA for volume {vol}

1. RDR images are labelled SAMPLE_TYPE = IEEE_REAL (big-endian in PDS3) but
   their 32-bit floats are stored little-endian. Read them as such.
2. Io observations from 2022 on may carry TARGET_NAME = "N/A".""",
    "VOLDESC.CAT": """\
PDS_VERSION_ID               = PDS3

OBJECT                       = VOLUME
  VOLUME_SERIES_NAME         = "MISSION TO JUPITER"
  VOLUME_SET_NAME            = "{name}"
  VOLUME_SET_ID              = "USA_NASA_PDS_{vol}"
  VOLUMES                    = 1
  VOLUME_NAME                = "JUNO JIRAM {ptype} VOLUME {vol}"
  VOLUME_ID                  = {vol}
  VOLUME_VERSION_ID          = "VERSION 1"
  PUBLICATION_DATE           = {today}
  DATA_SET_ID                = "{dsid}"
  MEDIUM_TYPE                = "ONLINE"
  VOLUME_FORMAT              = "DIRECTORY"
  DESCRIPTION                = "JIRAM imager {ptype} products of one orbit."
END_OBJECT                   = VOLUME
END""",
    "CALIB/CALINFO.TXT": """\
JIRAM imager calibration (DN -> band radiance)

After dark subtraction, EDR DN convert to band radiance in W/(m**2*sr) as
    radiance = (DN - dark) / ({factor:g} * exposure_ms)
with exposure_ms the label EXPOSURE_DURATION in milliseconds.
The 14-bit ADC saturates at {adc} DN; M-band saturation is about
{sat} / exposure_s W/(m**2*sr).""",
    "DOCUMENT/DOCINFO.TXT": """\
Documentation for this volume

The format of the products is described in the JIRAM Software Interface
Specification (SIS). Labels list the SPICE kernels used (SPICE_FILE_NAME)
but no footprint geometry.""",
}


# --- index and volume -----------------------------------------------------------


def _normalise_row(row: dict, volume_id: str) -> dict:
    pid = row.get("PRODUCT_ID", "?")
    missing = [c for c in _COLUMN_NAMES if c not in row]
    if missing:
        raise ValueError(f"{pid}: index row lacks {missing}")
    if row["VOLUME_ID"] != volume_id:
        raise ValueError(f"{pid}: index row is for {row['VOLUME_ID']}, not {volume_id}")
    out = {}
    for name, dtype, _, _ in _COLUMNS:
        conv = {"ASCII_INTEGER": int, "ASCII_REAL": float}.get(dtype)
        out[name] = conv(row[name]) if conv else _text(row[name], f"{pid}: {name}")
    _parse_time(out["START_TIME"], f"{pid}: START_TIME")
    return out


def _read_index(volume_dir: Path) -> list[dict]:
    """Rows of an existing INDEX.TAB, sliced with its INDEX.LBL (for merging)."""
    with warnings.catch_warnings():  # pvl 1.3 warns about its own Units class
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import pvl

    tab, lbl = volume_dir / "INDEX" / "INDEX.TAB", volume_dir / "INDEX" / "INDEX.LBL"
    if not tab.exists():
        return []
    table = pvl.load(str(lbl))["INDEX_TABLE"]
    columns = [c for c in table.getall("COLUMN") if c["NAME"] in _COLUMN_NAMES]
    conv = {"ASCII_INTEGER": int, "ASCII_REAL": float, "CHARACTER": str}
    rows = []
    for raw in tab.read_bytes().decode("ascii").split(_CRLF):
        if raw.strip():
            rows.append(
                {
                    c["NAME"]: conv[c["DATA_TYPE"]](
                        raw[c["START_BYTE"] - 1 : c["START_BYTE"] - 1 + c["BYTES"]].strip()
                    )
                    for c in columns
                }
            )
    return rows


def _index_files(rows: list[dict], volume_id: str, data_set_id: str) -> tuple[list[str], list[str]]:
    """INDEX.TAB rows (without CR-LF) and the INDEX.LBL lines."""
    cells = [
        [_real(r[n]) if t == "ASCII_REAL" else str(r[n]) for n, t, _, _ in _COLUMNS] for r in rows
    ]
    widths = [max([w] + [len(c[i]) for c in cells]) for i, (_, _, w, _) in enumerate(_COLUMNS)]
    table = [
        ",".join(
            f'"{v:<{w}}"' if t == "CHARACTER" else f"{v:>{w}}"
            for v, w, (_, t, _, _) in zip(c, widths, _COLUMNS, strict=True)
        )
        for c in cells
    ]
    row_bytes = sum(
        w + (2 if t == "CHARACTER" else 0) for w, (_, t, _, _) in zip(widths, _COLUMNS, strict=True)
    )
    row_bytes += len(_COLUMNS) - 1 + len(_CRLF)
    label = [
        _kv("PDS_VERSION_ID", "PDS3"),
        _kv("RECORD_TYPE", "FIXED_LENGTH"),
        _kv("RECORD_BYTES", row_bytes),
        _kv("FILE_RECORDS", len(rows)),
        _kv("^INDEX_TABLE", '"INDEX.TAB"'),
        _kv("VOLUME_ID", f'"{volume_id}"'),
        _kv("DATA_SET_ID", f'"{data_set_id}"'),
        _kv("INSTRUMENT_HOST_NAME", '"JUNO"'),
        _kv("INSTRUMENT_NAME", '"JOVIAN INFRARED AURORAL MAPPER"'),
        "",
        _kv("OBJECT", "INDEX_TABLE"),
        _kv("INTERCHANGE_FORMAT", "ASCII", 2),
        _kv("ROWS", len(rows), 2),
        _kv("ROW_BYTES", row_bytes, 2),
        _kv("COLUMNS", len(_COLUMNS), 2),
        _kv("INDEX_TYPE", "SINGLE", 2),
    ]
    start = 1
    for i, ((name, dtype, _, desc), w) in enumerate(zip(_COLUMNS, widths, strict=True)):
        quoted = dtype == "CHARACTER"
        label += [
            "",
            _kv("OBJECT", "COLUMN", 2),
            _kv("COLUMN_NUMBER", i + 1, 4),
            _kv("NAME", name, 4),
            _kv("DATA_TYPE", dtype, 4),
            _kv("START_BYTE", start + quoted, 4),
            _kv("BYTES", w, 4),
            _kv("DESCRIPTION", f'"{desc}"', 4),
            _kv("END_OBJECT", "COLUMN", 2),
        ]
        start += w + 2 * quoted + 1
    label += ["", _kv("END_OBJECT", "INDEX_TABLE"), "END"]
    return table, label


def write_volume(
    volume_dir: Path, *, volume_id: str, data_set_id: str, index_rows: list[dict]
) -> None:
    """Write INDEX/INDEX.TAB(+LBL), AAREADME.TXT, VOLDESC.CAT, ERRATA.TXT, CALIB/, DOCUMENT/.

    Rows already in an existing INDEX.TAB are kept (union by PRODUCT_ID, the
    new row wins), so repeated calls are idempotent.
    """
    ptype = {v: k for k, v in _DATA_SET_ID.items()}.get(data_set_id, "")
    if not ptype:
        raise ValueError(f"{volume_id}: unknown DATA_SET_ID {data_set_id!r}")
    if not re.fullmatch(rf"JNOJIR_{_VOLUME_DIGIT[ptype]}\d{{3}}", volume_id):
        raise ValueError(f"{volume_id}: not a {ptype} volume id (JNOJIR_{_VOLUME_DIGIT[ptype]}nnn)")
    vol = Path(volume_dir)
    merged = {r["PRODUCT_ID"]: _normalise_row(r, volume_id) for r in _read_index(vol)}
    for r in index_rows:
        row = _normalise_row(r, volume_id)
        merged[row["PRODUCT_ID"]] = row
    rows = sorted(
        merged.values(), key=lambda r: (datetime.fromisoformat(r["START_TIME"]), r["PRODUCT_ID"])
    )
    table, label = _index_files(rows, volume_id, data_set_id)
    _write_text(vol / "INDEX" / "INDEX.LBL", label, volume_id)
    (vol / "INDEX" / "INDEX.TAB").write_bytes("".join(t + _CRLF for t in table).encode("ascii"))

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    fields = dict(
        vol=volume_id, dsid=data_set_id, name=_DATA_SET_NAME[ptype], ptype=ptype, n=len(rows),
        today=today, factor=jiram.DN_PER_RADIANCE_PER_MS, adc=jiram.ADC_FULL_SCALE_DN,
        sat=jiram.SATURATION_RADIANCE_TIMES_S,
    )  # fmt: skip
    for rel, template in _VOLUME_TEXTS.items():
        _write_text(vol / rel, template.format(**fields).splitlines(), volume_id)
