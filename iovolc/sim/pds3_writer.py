"""Write simulated JIRAM imager products in the real PDS3 archive layout.

Volumes as on the Atmospheres node: ``JNOJIR_1nnn`` (EDR,
JNO-J-JIRAM-2-EDR-V1.0) and ``JNOJIR_2nnn`` (RDR, JNO-J-JIRAM-3-RDR-V1.0),
nnn = orbit number, each with ``DATA/`` (detached ``.LBL`` + ``.IMG``),
``INDEX/INDEX.TAB`` + ``INDEX.LBL``, ``CALIB/``, ``DOCUMENT/``,
``AAREADME.TXT``, ``VOLDESC.CAT`` and ``ERRATA.TXT`` (JIRAM SIS v7.5 sec 6).
All text is ASCII, CR-LF, at most 80 characters a line. Labels follow a real
RDR label (:mod:`iovolc.sim.pds3_label`). RDR pixels are labelled
``IEEE_REAL`` (big-endian in PDS3) but written little-endian, like the real
archive (:data:`iovolc.jiram.RDR_DTYPE`).
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from iovolc import jiram
from iovolc.sim import instrument as ins
from iovolc.sim.pds3_label import DATA_SET_ID as _DATA_SET_ID
from iovolc.sim.pds3_label import DATA_SET_NAME as _DATA_SET_NAME
from iovolc.sim.pds3_label import RDR_UNITS, label_lines, pad
from iovolc.sim.pds3_label import real as _real

_CRLF = "\r\n"
_MAX_LINE = 80
_KEY_WIDTH = 28
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?")
_SCLK_RE = re.compile(r"1/\d+:\d{5}")
_VOLUME_DIGIT = {"EDR": "1", "RDR": "2"}
_DTYPE = {"EDR": jiram.EDR_DTYPE, "RDR": jiram.RDR_DTYPE}
#: the one real label we have (JIR_IMG_RDR_2017033T114006_V02) names its product
#: 2.13 s after its START_TIME; ours: START_TIME + 2.2 s, truncated to the second
PRODUCT_ID_OFFSET_S = 2.2
#: fixed, so that the same seed writes the same bytes
PUBLICATION_DATE = "2026-11-24"
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
    ("INSTRUMENT_MODE_ID", "CHARACTER", 9, "SCI_I1_S1 (L+M), SCI_I2_S1 (M), SCI_I3_S1 (L)"),
    ("EXPOSURE_DURATION", "ASCII_REAL", 8, "Exposure duration (s)"),
    ("SEQUENCE_NUMBER", "ASCII_INTEGER", 2, "Frame number in its sequence (1-based)"),
    ("SEQUENCE_SAMPLES", "ASCII_INTEGER", 2, "Frames planned in the sequence"),
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


def product_id_for(ptype: str, start_time_utc: str) -> str:
    """``JIR_IMG_<type>_<yyyydddThhmmss>_V01`` (START_TIME + 2.2 s, truncated)."""
    t = _parse_time(start_time_utc, "START_TIME") + timedelta(seconds=PRODUCT_ID_OFFSET_S)
    return f"JIR_IMG_{_product_type(ptype)}_{t:%Y%jT%H%M%S}_V01"


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
    sequence_number: int
    sequence_samples: int
    product_creation_time: str = "2026-11-24T00:00:00.000"
    #: RDR unit text (one of RDR_UNITS); EDRs are "DN"
    rdr_unit: str = RDR_UNITS[0]
    #: write EXPOSURE_DURATION (else STOP - START is the exposure)
    write_exposure: bool = True
    #: band parameters as OBJECT instead of GROUP
    band_block_as_object: bool = False

    @property
    def product_id(self) -> str:
        return product_id_for(self.product_type, self.start_time_utc)

    @property
    def source_product_id(self) -> str:
        return product_id_for("EDR", self.start_time_utc)

    @property
    def unit(self) -> str:
        return "DN" if self.product_type == "EDR" else self.rdr_unit

    @property
    def data_set_id(self) -> str:
        return _DATA_SET_ID[_product_type(self.product_type)]

    @property
    def volume_id(self) -> str:
        orbit = self.orbit_number
        if isinstance(orbit, bool) or not isinstance(orbit, int | np.integer) or \
                not 0 <= orbit <= 999:
            raise ValueError(f"ORBIT_NUMBER {orbit!r} must be an integer 0..999")
        return f"JNOJIR_{_VOLUME_DIGIT[_product_type(self.product_type)]}{int(orbit):03d}"


def _text(value: object, what: str) -> str:
    """A string safe inside PDS3 double quotes and CSV fields."""
    s = str(value)
    if not all(32 <= ord(c) < 127 for c in s) or '"' in s:
        raise ValueError(f"{what} {s!r} must be printable ASCII without double quotes")
    return s


def _kv(key: str, value: object, indent: int = 0) -> str:
    return f"{' ' * indent}{key:<{_KEY_WIDTH - indent}} = {value}"


def _write_text(path: Path, lines: list[str], who: str) -> None:
    for line in lines:
        if len(line) > _MAX_LINE:
            raise ValueError(f"{who}: line longer than {_MAX_LINE} characters: {line!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((_CRLF.join(lines) + _CRLF).encode("ascii"))


def _checked(meta: JiramImageMeta, image: np.ndarray) -> tuple[str, np.ndarray]:
    """Validate ``meta`` and ``image``; return the product id and on-disk pixels."""
    try:
        pid = meta.product_id
    except ValueError as exc:
        raise ValueError(f"JIRAM product starting {meta.start_time_utc!r}: {exc}") from None
    try:
        meta.volume_id  # noqa: B018 - validates the orbit number
        lines = ins.mode_lines(meta.instrument_mode_id)
        if _parse_time(meta.stop_time_utc, "STOP_TIME") < _parse_time(meta.start_time_utc,
                                                                       "START_TIME"):
            raise ValueError("STOP_TIME precedes START_TIME")
        for what, sclk in (("SCLK start", meta.sclk_start), ("SCLK stop", meta.sclk_stop)):
            if not isinstance(sclk, str) or not _SCLK_RE.fullmatch(sclk):
                raise ValueError(f"{what} {sclk!r} is not '1/seconds:ticks'")
        if not _text(meta.target_name, "TARGET_NAME"):
            raise ValueError("TARGET_NAME is empty")
        _parse_time(meta.product_creation_time, "PRODUCT_CREATION_TIME")
        if meta.product_type == "RDR" and meta.rdr_unit not in RDR_UNITS:
            raise ValueError(f"RDR UNIT {meta.rdr_unit!r} is not one of {RDR_UNITS}")
        if not 1 <= int(meta.sequence_number) <= int(meta.sequence_samples) <= 99:
            raise ValueError(f"SEQUENCE_NUMBER {meta.sequence_number} / SEQUENCE_SAMPLES "
                             f"{meta.sequence_samples} out of range")
        exp = float(meta.exposure_duration_s)
        if not (np.isfinite(exp) and exp > 0):
            raise ValueError(f"EXPOSURE_DURATION {exp!r} must be positive")
        if isinstance(meta.spice_file_names, str) or not meta.spice_file_names:
            raise ValueError("SPICE_FILE_NAME needs a non-empty tuple of kernel names")
        for name in meta.spice_file_names:
            _text(name, "SPICE file name")
        arr = np.asarray(image)
        if arr.shape != (lines, jiram.N_SAMPLES):
            raise ValueError(f"image shape {arr.shape} != ({lines}, {jiram.N_SAMPLES}) for mode "
                             f"{meta.instrument_mode_id}")
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"image dtype {arr.dtype} is not real-valued")
        dtype = _DTYPE[meta.product_type]
        if meta.product_type == "EDR":
            info = np.iinfo(dtype)
            if arr.dtype.kind == "f" and not (np.isfinite(arr).all()
                                              and (arr == np.round(arr)).all()):
                raise ValueError("EDR image must be integer-valued DN")
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise ValueError(f"EDR image values outside the int16 range {info.min}..{info.max}")
    except ValueError as exc:
        raise ValueError(f"{pid}: {exc}") from None
    return pid, np.ascontiguousarray(arr, dtype=dtype)


def write_product(volume_dir: Path, meta: JiramImageMeta, image: np.ndarray) -> dict:
    """Write ``DATA/<product_id>.IMG`` and ``.LBL``; return the INDEX row (dict)."""
    pid, pixels = _checked(meta, image)
    raw = pixels.tobytes()
    label = label_lines(meta, product_id=pid, lines=pixels.shape[0],
                        sample_bits=pixels.itemsize * 8, md5=hashlib.md5(raw).hexdigest())
    data = Path(volume_dir) / "DATA"
    _write_text(data / f"{pid}.LBL", pad(label), pid)
    (data / f"{pid}.IMG").write_bytes(raw)
    return {
        "VOLUME_ID": meta.volume_id, "FILE_SPECIFICATION_NAME": f"DATA/{pid}.LBL",
        "PRODUCT_ID": pid, "PRODUCT_TYPE": meta.product_type,
        "START_TIME": meta.start_time_utc, "STOP_TIME": meta.stop_time_utc,
        "SPACECRAFT_CLOCK_START_COUNT": meta.sclk_start,
        "SPACECRAFT_CLOCK_STOP_COUNT": meta.sclk_stop,
        "ORBIT_NUMBER": int(meta.orbit_number), "TARGET_NAME": meta.target_name,
        "INSTRUMENT_MODE_ID": meta.instrument_mode_id,
        "EXPOSURE_DURATION": float(meta.exposure_duration_s),
        "SEQUENCE_NUMBER": int(meta.sequence_number),
        "SEQUENCE_SAMPLES": int(meta.sequence_samples),
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

Images are 432 samples wide: mode SCI_I1_S1 has 256 lines (L band lines
0-127, M band lines 128-255), SCI_I2_S1 128 lines (M band), SCI_I3_S1 128
lines (L band). SIMULATED DATA (iovolc), not a JIRAM product.
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

    today = PUBLICATION_DATE
    fields = dict(
        vol=volume_id, dsid=data_set_id, name=_DATA_SET_NAME[ptype], ptype=ptype, n=len(rows),
        today=today, factor=jiram.DN_PER_RADIANCE_PER_MS, adc=jiram.ADC_FULL_SCALE_DN,
        sat=jiram.SATURATION_RADIANCE_TIMES_S,
    )  # fmt: skip
    for rel, template in _VOLUME_TEXTS.items():
        _write_text(vol / rel, template.format(**fields).splitlines(), volume_id)
