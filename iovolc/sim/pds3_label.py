"""Detached PDS3 labels of JIRAM imager products, modelled on a real one.

Model: ``JIR_IMG_RDR_2017033T114006_V02.LBL`` (PDS3 volume JNOJIR_2004, as kept
in ksr-ocean/jiram_catalog ``docs/samples``): keyword order and spelling,
``PRODUCT_ID`` unquoted, ``INSTRUMENT_ID = "JIR"``, clock counts
``"1/sssssssss:ttttt"``, the per-band ``GROUP = L_BAND_PARAMETERS`` /
``M_BAND_PARAMETERS`` (geometry keywords, ``LINE_FIRST_PIXEL``,
``SAMPLE_FIRST_PIXEL``), ``INSTRUMENT_MODE_ID = SCI_I2_S1`` unquoted with its
description, and the nested ``OBJECT = FILE`` holding the record keywords,
``UNIT``, ``^IMAGE``, ``OBJECT = IMAGE``, ``OBJECT = HISTORY`` and the
``SPICE_FILE_NAME`` PVL set (one name a line). Lines are padded to 78
characters + CR-LF (80-byte records), as in the real file.

Variations the real archive shows and a reader must survive (seeded per
product by the caller): RDR ``UNIT`` either "W/(m^2*sr)" or
"W/(m^2*sr*micron)" (the pixels are band radiance either way);
``EXPOSURE_DURATION`` absent (then STOP_TIME - START_TIME is the exposure);
band parameters written as ``OBJECT`` instead of ``GROUP``.
The band geometry keywords are written "N/A" (our labels carry no geometry).
"""

from __future__ import annotations

import textwrap

import numpy as np

from iovolc import jiram
from iovolc.sim import instrument as ins

WIDTH = 78
_KEY = 31
DATA_SET_NAME = {"EDR": "JUNO JUPITER JIRAM EXPERIMENT DATA RECORD V1.0",
                 "RDR": "JUNO JUPITER JIRAM REDUCED DATA RECORD V1.0"}
DATA_SET_ID = {"EDR": jiram.EDR_DATA_SET_ID, "RDR": jiram.RDR_DATA_SET_ID}
PROCESSING_LEVEL = {"EDR": "2", "RDR": "3"}
RDR_UNITS = ("W/(m^2*sr)", "W/(m^2*sr*micron)")
#: (LINE_FIRST_PIXEL, SAMPLE_FIRST_PIXEL) of each band: M from the real label (2, 139);
#: L assumed to start on the detector's first row (jiram_catalog: L on detector lines
#: 1-128, M on 139-266)
FIRST_PIXEL = {"L": (2, 1), "M": (2, 139)}
_BAND_GEOMETRY = ("INCIDENCE_ANGLE", "EMISSION_ANGLE", "PHASE_ANGLE", None, "SLANT_DISTANCE",
                  "MINIMUM_LATITUDE", "CENTER_LATITUDE", "MAXIMUM_LATITUDE",
                  "WESTERNMOST_LONGITUDE", "CENTER_LONGITUDE", "EASTERNMOST_LONGITUDE",
                  "HORIZONTAL_PIXEL_SCALE", "VERTICAL_PIXEL_SCALE", "NORTH_AZIMUTH")


def kv(key: str, value: object, indent: int = 0, width: int = _KEY) -> str:
    return f"{' ' * indent}{key:<{width - indent}}= {value}"


def q(value: object) -> str:
    return f'"{value}"'


def real(x: float) -> str:
    return np.format_float_positional(float(x), trim="0")


def _band_block(band: str, present: bool, as_object: bool) -> list[str]:
    word = "OBJECT" if as_object else "GROUP"
    name = f"{band}_BAND_PARAMETERS"
    out = [f"{word} = {name}", f"   /* Illumination Filter {band} */"]
    for key in _BAND_GEOMETRY:
        if key is None:
            out += ["", f"   /* Image filter {band} parameters*/"]
        else:
            out.append(kv(key, q("N/A"), 3, 26))
    first = FIRST_PIXEL[band]
    out.append(kv("LINE_FIRST_PIXEL", first[0] if present else q("N/A"), 3, 26))
    out.append(kv("SAMPLE_FIRST_PIXEL", first[1] if present else q("N/A"), 3, 26))
    out.append(f"END_{word} = {name}")
    return out


def _mode_desc(mode: str) -> list[str]:
    text = ins.MODE_DESC[mode]
    return [kv("INSTRUMENT_MODE_DESC", "")] + textwrap.wrap(q(text), WIDTH)


def label_lines(meta, *, product_id: str, lines: int, sample_bits: int, md5: str) -> list[str]:
    """The label of one product as text lines (without padding or CR-LF)."""
    ptype = meta.product_type
    bands = ins.MODES[meta.instrument_mode_id]
    out = [
        kv("PDS_VERSION_ID", "PDS3"), "",
        "/* Dataset and Product Information */",
        kv("DATA_SET_NAME", q(DATA_SET_NAME[ptype])),
        kv("DATA_SET_ID", q(DATA_SET_ID[ptype])),
        kv("PRODUCT_ID", product_id),
        kv("PRODUCT_TYPE", ptype),
        kv("PROCESSING_LEVEL_ID", q(PROCESSING_LEVEL[ptype])),
        kv("START_TIME", meta.start_time_utc),
        kv("STOP_TIME", meta.stop_time_utc),
        kv("SPACECRAFT_CLOCK_START_COUNT", q(meta.sclk_start)),
        kv("SPACECRAFT_CLOCK_STOP_COUNT", q(meta.sclk_stop)),
        kv("STANDARD_DATA_PRODUCT_ID", q("IMAGE")),
        kv("PRODUCER_FULL_NAME", q("IOVOLC SIMULATOR")),
        kv("INSTITUTION_NAME", q("SIMULATED DATA, NOT A JIRAM PRODUCT")),
        kv("PRODUCT_CREATION_TIME", meta.product_creation_time),
        kv("PRODUCT_VERSION_ID", q("01")),
        kv("SEQUENCE_NUMBER", int(meta.sequence_number)),
        kv("SEQUENCE_SAMPLES", int(meta.sequence_samples)),
        kv("MD5_CHECKSUM", q(md5)), "",
        "/* Mission description parameters */",
        kv("INSTRUMENT_HOST_NAME", q("JUNO")),
        kv("INSTRUMENT_HOST_ID", q("JNO")),
        kv("MISSION_PHASE_NAME", q("EXTENDED MISSION" if meta.orbit_number > 34
                                   else "SCIENCE ORBITS")), "",
        "/* Instrument description parameters */",
        kv("INSTRUMENT_NAME", q("JOVIAN INFRARED AURORAL MAPPER")),
        kv("INSTRUMENT_ID", q("JIR")),
        kv("INSTRUMENT_TYPE", q("INFRARED IMAGING SPECTROMETER")), "",
        kv("ORBIT_NUMBER", int(meta.orbit_number)),
        kv("TARGET_NAME", q(meta.target_name)),
    ]
    if meta.write_exposure:
        out.append(kv("EXPOSURE_DURATION", f"{real(meta.exposure_duration_s)} <second>"))
    for band in ("L", "M"):
        out += [""] + _band_block(band, band in bands, meta.band_block_as_object)
    out += ["", "/* Instrument status */",
            kv("CHANNEL_ID", q("1")) + "       /* 0:SPECTRUM IR; 1:IMAGE */",
            kv("INSTRUMENT_MODE_ID", meta.instrument_mode_id), *_mode_desc(meta.instrument_mode_id),
            ""]
    out += _file_object(meta, product_id=product_id, lines=lines, sample_bits=sample_bits)
    out.append("END")
    return out


def _file_object(meta, *, product_id: str, lines: int, sample_bits: int) -> list[str]:
    ptype = meta.product_type
    sample_type = "IEEE_REAL" if ptype == "RDR" else "LSB_INTEGER"
    out = [
        kv("OBJECT", "FILE"),
        kv("RECORD_TYPE", "FIXED_LENGTH", 3),
        kv("FILE_RECORDS", lines, 3),
        kv("RECORD_BYTES", jiram.N_SAMPLES * sample_bits // 8, 3),
        kv("FRAME_TYPE", q("SCIENCE"), 3),
        kv("DATA_QUALITY_ID", q("1"), 3),
        kv("DATA_QUALITY_DESC", q("0:INCOMPLETE; 1:COMPLETE"), 3),
        kv("UNIT", q(meta.unit), 3),
        kv("^IMAGE", q(f"{product_id}.IMG")), "",
        "/* Data Object pointers */",
        kv("OBJECT", "IMAGE", 0, 30),
        kv("LINES", lines, 3, 30),
        kv("LINE_SAMPLES", jiram.N_SAMPLES, 3, 30),
        kv("SAMPLE_TYPE", sample_type, 3, 30),
        kv("SAMPLE_BITS", sample_bits, 3, 30),
        kv("END_OBJECT", "IMAGE", 0, 30), "",
    ]
    if ptype == "RDR":
        band = "M" if "M" in ins.MODES[meta.instrument_mode_id] else "L"
        out += [
            kv("OBJECT", "HISTORY", 0, 30),
            kv("CALIBRATION_SOURCE_ID", q(f"JIR_IMG_{band}_RESPONSIVITY_V02.DAT"), 3, 30),
            kv("SOURCE_PRODUCT_ID", q(f"{meta.source_product_id}.IMG"), 3, 30),
            kv("NOTE", q(" SUBTRACTION BACKGROUND ON BOARD ENABLED "), 3, 30),
            kv("END_OBJECT", "HISTORY", 0, 30), "",
        ]
    names = [q(n) for n in meta.spice_file_names]
    out += [kv("SPICE_FILE_NAME", ""), "{" + names[0] + ("," if len(names) > 1 else "")]
    out += [n + "," for n in names[1:-1]]
    if len(names) > 1:
        out.append(names[-1])
    out += ["}", kv("END_OBJECT", "FILE")]
    return out


def pad(lines: list[str]) -> list[str]:
    """Lines padded to 78 characters (80-byte records with CR-LF); a value that does not
    fit goes to the next line, as INSTRUMENT_MODE_DESC does in the real label."""
    out = []
    for ln in lines:
        if len(ln) > WIDTH and "= " in ln:
            key, value = ln.split("= ", 1)
            out += [(key + "=").ljust(WIDTH), value.ljust(WIDTH)]
        else:
            out.append(ln.ljust(WIDTH))
    return out
