"""PDS3 writer: checked with generic readers (pvl, numpy, pandas), not the writer."""

from __future__ import annotations

import csv
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
    "naif0012.tls",
    "pck00010.tpc",
    "juno_v12_mod2.tf",
    "spk_pre_220614_221109_220810_jm0450.bsp",
    "juno_sc_rec_231225_231231_v01.bc",
    "jiram_sim_ik_v01.ti",
    "juno_sclk_sim_v01.tsc",
)


def make_meta(ptype="RDR", start="2023-12-30T08:12:34.567", mode="I1", **kw) -> JiramImageMeta:
    args = dict(
        product_type=ptype,
        start_time_utc=start,
        stop_time_utc=start[:-3] + "999" if "." in start else start,
        sclk_start="757265620:31240",
        sclk_stop="757265620:31306",
        orbit_number=57,
        target_name="IO",
        instrument_mode_id=mode,
        exposure_duration_s=0.001,
        spice_file_names=KERNELS,
        sequence_id="PJ57 IO NORTH POLAR",
        product_creation_time="2024-01-15T12:00:00",
    )
    args.update(kw)
    return JiramImageMeta(**args)


def test_ids():
    m = make_meta()
    # 2023-12-30 is day 364; seconds truncated
    assert m.product_id == "JIR_IMG_RDR_2023364T081234_V01"
    assert m.data_set_id == "JNO-J-JIRAM-3-RDR-V1.0"
    assert m.volume_id == "JNOJIR_2057"
    e = make_meta("EDR", start="2024-02-03T17:48:25.120", orbit_number=58)
    assert (e.product_id, e.data_set_id, e.volume_id) == (
        "JIR_IMG_EDR_2024034T174825_V01",
        "JNO-J-JIRAM-2-EDR-V1.0",
        "JNOJIR_1058",
    )


def _label_lines(path):
    raw = path.read_bytes()
    assert raw.endswith(b"\r\nEND\r\n")
    body = raw.split(b"\r\n")[:-1]
    assert all(b"\r" not in ln and b"\n" not in ln for ln in body), "bare CR or LF"
    assert all(len(ln) <= 80 for ln in body)
    raw.decode("ascii")
    return body


@pytest.mark.parametrize("ptype", ["RDR", "EDR"])
def test_label_keywords(tmp_path, ptype):
    m = make_meta(ptype)
    img = np.zeros((256, 432), dtype=np.int16 if ptype == "EDR" else np.float32)
    write_product(tmp_path, m, img)
    lbl_path = tmp_path / "DATA" / f"{m.product_id}.LBL"
    lines = _label_lines(lbl_path)
    assert any(ln.startswith(b"SPICE_FILE_NAME") for ln in lines)
    lbl = pvl.load(str(lbl_path))
    assert lbl["PDS_VERSION_ID"] == "PDS3"
    assert lbl["RECORD_TYPE"] == "FIXED_LENGTH"
    assert lbl["^IMAGE"] == [f"{m.product_id}.IMG", 1]
    assert lbl["PRODUCT_ID"] == m.product_id
    assert lbl["PRODUCT_TYPE"] == ptype
    assert (
        lbl["DATA_SET_ID"]
        == {"EDR": "JNO-J-JIRAM-2-EDR-V1.0", "RDR": "JNO-J-JIRAM-3-RDR-V1.0"}[ptype]
    )
    assert lbl["INSTRUMENT_HOST_NAME"] == "JUNO"
    assert lbl["INSTRUMENT_HOST_ID"] == "JNO"
    assert lbl["INSTRUMENT_NAME"] == "JOVIAN INFRARED AURORAL MAPPER"
    assert lbl["INSTRUMENT_ID"] == "JIRAM"
    assert lbl["TARGET_NAME"] == "IO"
    assert lbl["START_TIME"] == datetime(2023, 12, 30, 8, 12, 34, 567000, tzinfo=UTC)
    assert lbl["STOP_TIME"] == datetime(2023, 12, 30, 8, 12, 34, 999000, tzinfo=UTC)
    assert lbl["PRODUCT_CREATION_TIME"] == datetime(2024, 1, 15, 12, tzinfo=UTC)
    assert lbl["SPACECRAFT_CLOCK_START_COUNT"] == "757265620:31240"
    assert lbl["SPACECRAFT_CLOCK_STOP_COUNT"] == "757265620:31306"
    assert lbl["ORBIT_NUMBER"] == 57
    assert lbl["INSTRUMENT_MODE_ID"] == "I1"
    assert lbl["EXPOSURE_DURATION"].value == 0.001
    assert lbl["EXPOSURE_DURATION"].units == "s"
    assert lbl["SPICE_FILE_NAME"] == list(KERNELS)
    assert lbl["SEQUENCE_ID"] == "PJ57 IO NORTH POLAR"
    im = lbl["IMAGE"]
    assert (im["LINES"], im["LINE_SAMPLES"], im["BANDS"]) == (256, 432, 1)
    if ptype == "RDR":
        assert (im["SAMPLE_TYPE"], im["SAMPLE_BITS"], im["UNIT"]) == (
            "IEEE_REAL",
            32,
            "W/(m**2*sr)",
        )
    else:
        assert (im["SAMPLE_TYPE"], im["SAMPLE_BITS"], im["UNIT"]) == ("LSB_INTEGER", 16, "DN")
    assert lbl["RECORD_BYTES"] == 432 * im["SAMPLE_BITS"] // 8
    assert lbl["FILE_RECORDS"] == 256


def test_no_sequence_id_and_na_target(tmp_path):
    m = make_meta(sequence_id="", target_name="N/A")
    write_product(tmp_path, m, np.zeros((256, 432), np.float32))
    lbl = pvl.load(str(tmp_path / "DATA" / f"{m.product_id}.LBL"))
    assert "SEQUENCE_ID" not in lbl
    assert lbl["TARGET_NAME"] == "N/A"


def _read_img(lbl_path, dtype_char):
    """Read with numpy from the label's dimensions only; dtype_char 'f'/'i'."""
    lbl = pvl.load(str(lbl_path))
    im = lbl["IMAGE"]
    fname = lbl["^IMAGE"][0]
    nbytes = im["SAMPLE_BITS"] // 8
    raw = (lbl_path.parent / fname).read_bytes()
    assert len(raw) == im["LINES"] * im["LINE_SAMPLES"] * nbytes
    return raw, (im["LINES"], im["LINE_SAMPLES"]), nbytes


@pytest.mark.parametrize(("mode", "lines"), [("I1", 256), ("I2", 128), ("I3", 128)])
def test_rdr_bytes_little_endian_quirk(tmp_path, mode, lines):
    rng = np.random.default_rng(1)
    img = rng.normal(0.01, 0.003, (lines, 432)).astype(np.float32)
    m = make_meta("RDR", mode=mode)
    write_product(tmp_path, m, img)
    raw, shape, nbytes = _read_img(tmp_path / "DATA" / f"{m.product_id}.LBL", "f")
    back = np.frombuffer(raw, dtype=f"<f{nbytes}").reshape(shape)
    assert back.tobytes() == img.astype("<f4").tobytes()
    np.testing.assert_array_equal(back, img)
    # what the label claims (IEEE_REAL = big-endian) does not give it back
    claimed = np.frombuffer(raw, dtype=f">f{nbytes}").reshape(shape)
    assert not np.array_equal(claimed, img)


@pytest.mark.parametrize(("mode", "lines"), [("I1", 256), ("I2", 128)])
def test_edr_bytes(tmp_path, mode, lines):
    rng = np.random.default_rng(2)
    img = rng.integers(0, 16384, (lines, 432)).astype(np.float64)  # integer-valued floats ok
    m = make_meta("EDR", mode=mode)
    write_product(tmp_path, m, img)
    raw, shape, nbytes = _read_img(tmp_path / "DATA" / f"{m.product_id}.LBL", "i")
    back = np.frombuffer(raw, dtype=f"<i{nbytes}").reshape(shape)
    np.testing.assert_array_equal(back, img.astype(np.int64))


def _rows(tmp_path, starts, ptype="RDR"):
    rows = []
    for i, s in enumerate(starts):
        m = make_meta(ptype, start=s, exposure_duration_s=0.001 * (i + 1), sequence_id=f"SEQ{i}")
        rows.append(write_product(tmp_path, m, np.zeros((256, 432), np.float32)))
    return rows


def _index_by_bytes(vol):
    lbl = pvl.load(str(vol / "INDEX" / "INDEX.LBL"))
    table = lbl["INDEX_TABLE"]
    raw = (vol / "INDEX" / "INDEX.TAB").read_bytes()
    records = raw.split(b"\r\n")
    assert records[-1] == b""
    records = records[:-1]
    assert table["ROWS"] == len(records) == lbl["FILE_RECORDS"]
    assert table["INTERCHANGE_FORMAT"] == "ASCII"
    assert {len(r) + 2 for r in records} == {table["ROW_BYTES"]}
    cols = table.getall("COLUMN")
    assert table["COLUMNS"] == len(cols)
    out = []
    for rec in records:
        row = {}
        for c in cols:
            s0 = c["START_BYTE"] - 1
            cell = rec[s0 : s0 + c["BYTES"]].decode("ascii")
            if c["DATA_TYPE"] == "CHARACTER":
                # START_BYTE points inside the quotes
                assert (
                    rec[s0 - 1 : s0] == b'"' and rec[s0 + c["BYTES"] : s0 + c["BYTES"] + 1] == b'"'
                )
                row[c["NAME"]] = cell.strip()
            elif c["DATA_TYPE"] == "ASCII_INTEGER":
                row[c["NAME"]] = int(cell)
            else:
                assert c["DATA_TYPE"] == "ASCII_REAL"
                row[c["NAME"]] = float(cell)
        out.append(row)
    return out


def _index_by_pandas(vol):
    df = pd.read_csv(
        vol / "INDEX" / "INDEX.TAB",
        header=None,
        quotechar='"',
        quoting=csv.QUOTE_MINIMAL,
        keep_default_na=False,
        skipinitialspace=True,
    )
    return df.map(lambda v: v.strip() if isinstance(v, str) else v)


def _check_index(vol, expected):
    by_bytes = _index_by_bytes(vol)
    names = list(by_bytes[0])
    for col in ("VOLUME_ID", "FILE_SPECIFICATION_NAME", "PRODUCT_ID", "PRODUCT_TYPE",
                "START_TIME", "STOP_TIME", "SPACECRAFT_CLOCK_START_COUNT", "ORBIT_NUMBER",
                "TARGET_NAME", "INSTRUMENT_MODE_ID", "EXPOSURE_DURATION"):  # fmt: skip
        assert col in names
    want = sorted(expected, key=lambda r: r["START_TIME"])
    assert [r["PRODUCT_ID"] for r in by_bytes] == [r["PRODUCT_ID"] for r in want]
    for got, w in zip(by_bytes, want, strict=True):
        for k in names:
            assert got[k] == w[k], k
    df = _index_by_pandas(vol)
    df.columns = names
    assert df.to_dict("records") == by_bytes


def test_index_table(tmp_path):
    vol = tmp_path / "JNOJIR_2057"
    rows = _rows(
        vol, ["2023-12-30T08:14:00.000", "2023-12-30T08:12:34.567", "2023-12-30T08:13:10.250"]
    )
    write_volume(
        vol, volume_id="JNOJIR_2057", data_set_id="JNO-J-JIRAM-3-RDR-V1.0", index_rows=rows
    )
    _check_index(vol, rows)
    by_bytes = _index_by_bytes(vol)
    assert by_bytes[0]["FILE_SPECIFICATION_NAME"] == "DATA/JIR_IMG_RDR_2023364T081234_V01.LBL"
    assert by_bytes[0]["EXPOSURE_DURATION"] == 0.002
    for r in by_bytes:  # the index, not flatness, locates products
        assert (vol / r["FILE_SPECIFICATION_NAME"]).exists()
    _label_lines(vol / "INDEX" / "INDEX.LBL")
    for name in (
        "AAREADME.TXT",
        "VOLDESC.CAT",
        "ERRATA.TXT",
        "CALIB/CALINFO.TXT",
        "DOCUMENT/DOCINFO.TXT",
    ):
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
    second.append(dict(first[0], SEQUENCE_ID="A MUCH LONGER SEQUENCE NAME THAN BEFORE"))
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
    with pytest.raises(ValueError, match="JIR_IMG_EDR_2023364T081234_V01"):
        write_volume(
            tmp_path, volume_id="JNOJIR_2057", data_set_id="JNO-J-JIRAM-3-RDR-V1.0", index_rows=rows
        )
    with pytest.raises(ValueError, match="JNOJIR_2057"):
        write_volume(
            tmp_path, volume_id="JNOJIR_2057", data_set_id="JNO-J-JIRAM-2-EDR-V1.0", index_rows=[]
        )


PID = "JIR_IMG_RDR_2023364T081234_V01"
EPID = "JIR_IMG_EDR_2023364T081234_V01"


@pytest.mark.parametrize(
    ("meta", "image", "pid"),
    [
        (make_meta(), np.zeros((128, 432), np.float32), PID),  # I1 needs 256 lines
        (make_meta(mode="I2"), np.zeros((256, 432), np.float32), PID),
        (make_meta(), np.zeros((256, 431), np.float32), PID),
        (make_meta(mode="I4"), np.zeros((256, 432), np.float32), PID),
        (make_meta("EDR"), np.full((256, 432), 1.5), EPID),
        (make_meta("EDR"), np.full((256, 432), 40000), EPID),
        (make_meta("EDR"), np.full((256, 432), np.nan), EPID),
        (make_meta(exposure_duration_s=0.0), np.zeros((256, 432), np.float32), PID),
        (make_meta(spice_file_names=()), np.zeros((256, 432), np.float32), PID),
        (make_meta(target_name='I"O'), np.zeros((256, 432), np.float32), PID),
        (make_meta(orbit_number=1000), np.zeros((256, 432), np.float32), PID),
        (make_meta(sequence_id="X" * 60), np.zeros((256, 432), np.float32), PID),
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


def test_long_kernel_list_wraps(tmp_path):
    names = tuple(f"juno_sc_rec_{i:06d}_{i + 6:06d}_v01.bc" for i in range(12))
    m = make_meta(spice_file_names=names)
    write_product(tmp_path, m, np.zeros((256, 432), np.float32))
    path = tmp_path / "DATA" / f"{m.product_id}.LBL"
    lines = _label_lines(path)
    assert sum(b".bc" in ln for ln in lines) >= 6  # wrapped over several lines
    assert pvl.load(str(path))["SPICE_FILE_NAME"] == list(names)
