"""PDS3 writer: checked with generic readers (pvl, numpy, pandas), not the writer.

The reference for the label structure is a real JIRAM RDR label,
``JIR_IMG_RDR_2017033T114006_V02.LBL`` (ksr-ocean/jiram_catalog docs/samples):
nested ``OBJECT = FILE`` with UNIT, ^IMAGE, IMAGE, HISTORY and the
SPICE_FILE_NAME set; ``GROUP = L_BAND_PARAMETERS`` / ``M_BAND_PARAMETERS``;
unquoted PRODUCT_ID and INSTRUMENT_MODE_ID; ``INSTRUMENT_ID = "JIR"``.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():  # pvl warns about its own Units class on import
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import pvl

from iovolc.sim.pds3_writer import JiramImageMeta, write_product, write_volume

KERNELS = (
    "juno_v12_mod2.tf",
    "juno_jiram_sim_v02.ti",
    "naif0012.tls",
    "pck00010.tpc",
    "jno_sclkscet_sim_00002.tsc",
    "de_sim_v01.bsp",
    "juno_rec_sim_pj057_v01.bsp",
    "juno_sc_rec_sim_pj057_v01.bc",
)
LINES = {"SCI_I1_S1": 256, "SCI_I2_S1": 128, "SCI_I3_S1": 128}


def make_meta(ptype="RDR", start="2023-12-30T08:12:34.567", mode="SCI_I1_S1", **kw):
    args = dict(
        product_type=ptype,
        start_time_utc=start,
        stop_time_utc=start[:-3] + "569" if "." in start else start,
        sclk_start="1/757195791:63024",
        sclk_stop="1/757195791:63155",
        orbit_number=57,
        target_name="IO",
        instrument_mode_id=mode,
        exposure_duration_s=0.002,
        spice_file_names=KERNELS,
        sequence_number=2,
        sequence_samples=13,
        product_creation_time="2024-01-15T12:00:00",
    )
    args.update(kw)
    return JiramImageMeta(**args)


def _label_lines(path):
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n")
    body = raw.split(b"\r\n")[:-1]
    assert all(b"\r" not in ln and b"\n" not in ln for ln in body), "bare CR or LF"
    assert all(len(ln) <= 80 for ln in body)
    raw.decode("ascii")
    return body


def test_ids():
    m = make_meta()
    # 2023-12-30 is day 364; the id's time is START_TIME + 2.2 s, truncated
    assert m.product_id == "JIR_IMG_RDR_2023364T081236_V01"
    assert m.source_product_id == "JIR_IMG_EDR_2023364T081236_V01"
    assert m.data_set_id == "JNO-J-JIRAM-3-RDR-V1.0"
    assert m.volume_id == "JNOJIR_2057"
    e = make_meta("EDR", start="2024-02-03T17:48:25.120", orbit_number=58)
    assert (e.product_id, e.data_set_id, e.volume_id) == (
        "JIR_IMG_EDR_2024034T174827_V01", "JNO-J-JIRAM-2-EDR-V1.0", "JNOJIR_1058")


@pytest.mark.parametrize("ptype", ["RDR", "EDR"])
def test_label_structure_like_the_real_label(tmp_path, ptype):
    m = make_meta(ptype, mode="SCI_I2_S1", rdr_unit="W/(m^2*sr*micron)")
    img = np.zeros((128, 432), dtype=np.int16 if ptype == "EDR" else np.float32)
    write_product(tmp_path, m, img)
    path = tmp_path / "DATA" / f"{m.product_id}.LBL"
    lines = _label_lines(path)
    assert {len(ln) for ln in lines} == {78}  # 80-byte records, like the real label
    text = path.read_text()
    assert f"PRODUCT_ID                     = {m.product_id} " in text  # unquoted
    assert "INSTRUMENT_MODE_ID             = SCI_I2_S1 " in text
    lab = pvl.load(str(path))
    assert lab["PDS_VERSION_ID"] == "PDS3"
    assert lab["PRODUCT_ID"] == m.product_id
    assert lab["PRODUCT_TYPE"] == ptype
    assert lab["PROCESSING_LEVEL_ID"] == {"EDR": "2", "RDR": "3"}[ptype]
    assert lab["DATA_SET_ID"] == {"EDR": "JNO-J-JIRAM-2-EDR-V1.0",
                                  "RDR": "JNO-J-JIRAM-3-RDR-V1.0"}[ptype]
    assert lab["DATA_SET_NAME"].startswith("JUNO JUPITER JIRAM")
    assert lab["INSTRUMENT_ID"] == "JIR"
    assert lab["INSTRUMENT_NAME"] == "JOVIAN INFRARED AURORAL MAPPER"
    assert lab["INSTRUMENT_HOST_ID"] == "JNO"
    assert lab["START_TIME"] == datetime(2023, 12, 30, 8, 12, 34, 567000, tzinfo=UTC)
    assert lab["STOP_TIME"] == datetime(2023, 12, 30, 8, 12, 34, 569000, tzinfo=UTC)
    assert lab["SPACECRAFT_CLOCK_START_COUNT"] == "1/757195791:63024"
    assert lab["SEQUENCE_NUMBER"] == 2 and lab["SEQUENCE_SAMPLES"] == 13
    assert lab["ORBIT_NUMBER"] == 57
    assert lab["TARGET_NAME"] == "IO"
    assert lab["EXPOSURE_DURATION"].value == 0.002
    assert lab["EXPOSURE_DURATION"].units == "second"
    assert lab["CHANNEL_ID"] == "1"
    assert lab["INSTRUMENT_MODE_ID"] == "SCI_I2_S1"
    assert "IMAGE(128x432) M-Band" in lab["INSTRUMENT_MODE_DESC"]
    # an M-only frame: M band parameters have pixel numbers, L band's are N/A
    assert lab["M_BAND_PARAMETERS"]["LINE_FIRST_PIXEL"] == 2
    assert lab["M_BAND_PARAMETERS"]["SAMPLE_FIRST_PIXEL"] == 139
    assert lab["L_BAND_PARAMETERS"]["LINE_FIRST_PIXEL"] == "N/A"
    assert "GROUP = M_BAND_PARAMETERS" in text
    f = lab["FILE"]  # the nested file object
    assert f["RECORD_TYPE"] == "FIXED_LENGTH"
    assert f["FILE_RECORDS"] == 128
    assert f["DATA_QUALITY_ID"] == "1"
    assert f["^IMAGE"] == f"{m.product_id}.IMG"
    im = f["IMAGE"]
    assert (im["LINES"], im["LINE_SAMPLES"]) == (128, 432)
    assert f["RECORD_BYTES"] == 432 * im["SAMPLE_BITS"] // 8
    assert isinstance(f["SPICE_FILE_NAME"], (set, frozenset))  # a PVL set {...}
    assert set(f["SPICE_FILE_NAME"]) == set(KERNELS)
    # the set is written in load order, one name a line
    text_lines = [ln.decode().rstrip() for ln in lines]
    first = text_lines.index(next(t for t in text_lines if t.startswith("SPICE_FILE_NAME")))
    last = text_lines.index("}", first)
    assert [t.strip('{,"') for t in text_lines[first + 1:last]] == list(KERNELS)
    raw = (tmp_path / "DATA" / f["^IMAGE"]).read_bytes()
    assert lab["MD5_CHECKSUM"] == hashlib.md5(raw).hexdigest()
    if ptype == "RDR":
        assert (im["SAMPLE_TYPE"], im["SAMPLE_BITS"]) == ("IEEE_REAL", 32)
        assert f["UNIT"] == "W/(m^2*sr*micron)"
        assert f["HISTORY"]["SOURCE_PRODUCT_ID"] == f"{m.source_product_id}.IMG"
    else:
        assert (im["SAMPLE_TYPE"], im["SAMPLE_BITS"], f["UNIT"]) == ("LSB_INTEGER", 16, "DN")
        assert "HISTORY" not in f


def test_label_variations(tmp_path):
    """EXPOSURE_DURATION omitted, band parameters as OBJECT, the other RDR unit."""
    m = make_meta(write_exposure=False, band_block_as_object=True, rdr_unit="W/(m^2*sr)",
                  target_name="N/A")
    write_product(tmp_path, m, np.zeros((256, 432), np.float32))
    path = tmp_path / "DATA" / f"{m.product_id}.LBL"
    lab = pvl.load(str(path))
    assert "EXPOSURE_DURATION" not in lab
    assert (lab["STOP_TIME"] - lab["START_TIME"]).total_seconds() == pytest.approx(0.002)
    assert "OBJECT = L_BAND_PARAMETERS" in path.read_text()
    assert lab["L_BAND_PARAMETERS"]["SAMPLE_FIRST_PIXEL"] == 1
    assert lab["M_BAND_PARAMETERS"]["SAMPLE_FIRST_PIXEL"] == 139
    assert lab["FILE"]["UNIT"] == "W/(m^2*sr)"
    assert lab["TARGET_NAME"] == "N/A"


def _read_img(lbl_path):
    lab = pvl.load(str(lbl_path))
    im = lab["FILE"]["IMAGE"]
    nbytes = im["SAMPLE_BITS"] // 8
    raw = (lbl_path.parent / lab["FILE"]["^IMAGE"]).read_bytes()
    assert len(raw) == im["LINES"] * im["LINE_SAMPLES"] * nbytes
    return raw, (im["LINES"], im["LINE_SAMPLES"]), nbytes


@pytest.mark.parametrize("mode", list(LINES))
def test_rdr_bytes_little_endian_quirk(tmp_path, mode):
    rng = np.random.default_rng(1)
    img = rng.normal(0.01, 0.003, (LINES[mode], 432)).astype(np.float32)
    m = make_meta("RDR", mode=mode)
    write_product(tmp_path, m, img)
    raw, shape, nbytes = _read_img(tmp_path / "DATA" / f"{m.product_id}.LBL")
    back = np.frombuffer(raw, dtype=f"<f{nbytes}").reshape(shape)
    np.testing.assert_array_equal(back, img)
    # what the label claims (IEEE_REAL = big-endian) does not give it back
    assert not np.array_equal(np.frombuffer(raw, dtype=f">f{nbytes}").reshape(shape), img)


@pytest.mark.parametrize("mode", ["SCI_I1_S1", "SCI_I3_S1"])
def test_edr_bytes(tmp_path, mode):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 16384, (LINES[mode], 432)).astype(np.float64)  # integer-valued ok
    m = make_meta("EDR", mode=mode)
    write_product(tmp_path, m, img)
    raw, shape, nbytes = _read_img(tmp_path / "DATA" / f"{m.product_id}.LBL")
    np.testing.assert_array_equal(np.frombuffer(raw, dtype=f"<i{nbytes}").reshape(shape),
                                  img.astype(np.int64))


def _rows(tmp_path, starts, ptype="RDR"):
    rows = []
    for i, s in enumerate(starts):
        m = make_meta(ptype, start=s, exposure_duration_s=0.001 * (i + 1), sequence_number=i + 2)
        rows.append(write_product(tmp_path, m, np.zeros((256, 432), np.float32)))
    return rows


def _index_by_bytes(vol):
    lbl = pvl.load(str(vol / "INDEX" / "INDEX.LBL"))
    table = lbl["INDEX_TABLE"]
    records = (vol / "INDEX" / "INDEX.TAB").read_bytes().split(b"\r\n")
    assert records[-1] == b""
    records = records[:-1]
    assert table["ROWS"] == len(records) == lbl["FILE_RECORDS"]
    assert {len(r) + 2 for r in records} == {table["ROW_BYTES"]}
    cols = table.getall("COLUMN")
    assert table["COLUMNS"] == len(cols)
    out = []
    for rec in records:
        row = {}
        for c in cols:
            s0 = c["START_BYTE"] - 1
            cell = rec[s0:s0 + c["BYTES"]].decode("ascii")
            if c["DATA_TYPE"] == "CHARACTER":
                assert rec[s0 - 1:s0] == b'"' and rec[s0 + c["BYTES"]:s0 + c["BYTES"] + 1] == b'"'
                row[c["NAME"]] = cell.strip()
            elif c["DATA_TYPE"] == "ASCII_INTEGER":
                row[c["NAME"]] = int(cell)
            else:
                row[c["NAME"]] = float(cell)
        out.append(row)
    return out


def _check_index(vol, expected):
    by_bytes = _index_by_bytes(vol)
    names = list(by_bytes[0])
    for col in ("VOLUME_ID", "FILE_SPECIFICATION_NAME", "PRODUCT_ID", "PRODUCT_TYPE",
                "START_TIME", "STOP_TIME", "SPACECRAFT_CLOCK_START_COUNT", "ORBIT_NUMBER",
                "TARGET_NAME", "INSTRUMENT_MODE_ID", "EXPOSURE_DURATION", "SEQUENCE_NUMBER",
                "SEQUENCE_SAMPLES"):
        assert col in names
    want = sorted(expected, key=lambda r: r["START_TIME"])
    assert [r["PRODUCT_ID"] for r in by_bytes] == [r["PRODUCT_ID"] for r in want]
    for got, w in zip(by_bytes, want, strict=True):
        for k in names:
            assert got[k] == w[k], k
    df = pd.read_csv(vol / "INDEX" / "INDEX.TAB", header=None, quotechar='"',
                     quoting=csv.QUOTE_MINIMAL, keep_default_na=False, skipinitialspace=True)
    df = df.map(lambda v: v.strip() if isinstance(v, str) else v)
    df.columns = names
    assert df.to_dict("records") == by_bytes


def test_index_table(tmp_path):
    vol = tmp_path / "JNOJIR_2057"
    rows = _rows(vol, ["2023-12-30T08:14:00.000", "2023-12-30T08:12:34.567",
                       "2023-12-30T08:13:10.250"])
    write_volume(vol, volume_id="JNOJIR_2057", data_set_id="JNO-J-JIRAM-3-RDR-V1.0",
                 index_rows=rows)
    _check_index(vol, rows)
    by_bytes = _index_by_bytes(vol)
    assert by_bytes[0]["FILE_SPECIFICATION_NAME"] == "DATA/JIR_IMG_RDR_2023364T081236_V01.LBL"
    assert by_bytes[0]["EXPOSURE_DURATION"] == 0.002
    for r in by_bytes:  # the index, not flatness, locates products
        assert (vol / r["FILE_SPECIFICATION_NAME"]).exists()
    _label_lines(vol / "INDEX" / "INDEX.LBL")
    for name in ("AAREADME.TXT", "VOLDESC.CAT", "ERRATA.TXT", "CALIB/CALINFO.TXT",
                 "DOCUMENT/DOCINFO.TXT"):
        raw = (vol / name).read_bytes()
        assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
        assert all(len(ln) <= 80 for ln in raw.split(b"\r\n"))
    voldesc = pvl.load(str(vol / "VOLDESC.CAT"))["VOLUME"]
    assert voldesc["VOLUME_ID"] == "JNOJIR_2057"
    assert voldesc["DATA_SET_ID"] == "JNO-J-JIRAM-3-RDR-V1.0"
    assert b"2000" in (vol / "CALIB" / "CALINFO.TXT").read_bytes()


def test_index_merge_idempotent(tmp_path):
    vol = tmp_path / "JNOJIR_2057"
    kw = dict(volume_id="JNOJIR_2057", data_set_id="JNO-J-JIRAM-3-RDR-V1.0")
    first = _rows(vol, ["2023-12-30T08:12:34.567", "2023-12-30T08:13:10.250"])
    write_volume(vol, index_rows=first, **kw)
    second = _rows(vol, ["2023-12-30T08:13:10.250", "2023-12-30T07:59:01.000"])
    second.append(dict(first[0], TARGET_NAME="N/A"))
    write_volume(vol, index_rows=second, **kw)
    expected = {r["PRODUCT_ID"]: r for r in first + second}
    assert len(expected) == 3
    _check_index(vol, list(expected.values()))
    before = (vol / "INDEX" / "INDEX.TAB").read_bytes()
    write_volume(vol, index_rows=second, **kw)
    write_volume(vol, index_rows=[], **kw)
    assert (vol / "INDEX" / "INDEX.TAB").read_bytes() == before


def test_volume_rejects_foreign_rows(tmp_path):
    rows = _rows(tmp_path, ["2023-12-30T08:12:34.567"], ptype="EDR")
    with pytest.raises(ValueError, match="JIR_IMG_EDR_2023364T081236_V01"):
        write_volume(tmp_path, volume_id="JNOJIR_2057", data_set_id="JNO-J-JIRAM-3-RDR-V1.0",
                     index_rows=rows)
    with pytest.raises(ValueError, match="JNOJIR_2057"):
        write_volume(tmp_path, volume_id="JNOJIR_2057", data_set_id="JNO-J-JIRAM-2-EDR-V1.0",
                     index_rows=[])


PID = "JIR_IMG_RDR_2023364T081236_V01"
EPID = "JIR_IMG_EDR_2023364T081236_V01"


@pytest.mark.parametrize(
    ("meta", "image", "pid"),
    [
        (make_meta(), np.zeros((128, 432), np.float32), PID),  # SCI_I1 needs 256 lines
        (make_meta(mode="SCI_I2_S1"), np.zeros((256, 432), np.float32), PID),
        (make_meta(), np.zeros((256, 431), np.float32), PID),
        (make_meta(mode="I2"), np.zeros((128, 432), np.float32), PID),  # not a real mode id
        (make_meta("EDR"), np.full((256, 432), 1.5), EPID),
        (make_meta("EDR"), np.full((256, 432), 40000), EPID),
        (make_meta("EDR"), np.full((256, 432), np.nan), EPID),
        (make_meta(exposure_duration_s=0.0), np.zeros((256, 432), np.float32), PID),
        (make_meta(spice_file_names=()), np.zeros((256, 432), np.float32), PID),
        (make_meta(target_name='I"O'), np.zeros((256, 432), np.float32), PID),
        (make_meta(orbit_number=1000), np.zeros((256, 432), np.float32), PID),
        (make_meta(sclk_start="757195791:63024"), np.zeros((256, 432), np.float32), PID),
        (make_meta(rdr_unit="W/m2/sr"), np.zeros((256, 432), np.float32), PID),
        (make_meta(sequence_number=1, sequence_samples=0), np.zeros((256, 432), np.float32),
         PID),
    ],
)
def test_bad_input(tmp_path, meta, image, pid):
    with pytest.raises(ValueError, match=pid):
        write_product(tmp_path, meta, image)
    assert not (tmp_path / "DATA").exists()


def test_bad_product_type_and_time(tmp_path):
    with pytest.raises(ValueError, match="2023-12-30T08:12:34Z"):
        write_product(tmp_path, make_meta(start="2023-12-30T08:12:34Z"), np.zeros((256, 432)))
    with pytest.raises(ValueError, match="XDR"):
        write_product(tmp_path, replace(make_meta(), product_type="XDR"), np.zeros((256, 432)))


def test_long_kernel_list(tmp_path):
    names = tuple(f"juno_sc_rec_{i:06d}_{i + 6:06d}_v01.bc" for i in range(12))
    m = make_meta(spice_file_names=names)
    write_product(tmp_path, m, np.zeros((256, 432), np.float32))
    path = tmp_path / "DATA" / f"{m.product_id}.LBL"
    lines = _label_lines(path)
    assert sum(b".bc" in ln for ln in lines) == 12  # one name a line
    assert set(pvl.load(str(path))["FILE"]["SPICE_FILE_NAME"]) == set(names)
