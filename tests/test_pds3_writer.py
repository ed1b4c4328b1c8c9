"""PDS3 writer and the simulated archive: checked with generic readers (pvl, numpy, pandas,
spiceypy), not the writer.

The reference for the label structure is a real JIRAM RDR label,
``JIR_IMG_RDR_2017033T114006_V02.LBL`` (ksr-ocean/jiram_catalog docs/samples):
nested ``OBJECT = FILE`` with UNIT, ^IMAGE, IMAGE, HISTORY and the
SPICE_FILE_NAME set; ``GROUP = L_BAND_PARAMETERS`` / ``M_BAND_PARAMETERS``;
unquoted PRODUCT_ID and INSTRUMENT_MODE_ID; ``INSTRUMENT_ID = "JIR"``.
"""

from __future__ import annotations

import csv
import hashlib
import re
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import spiceypy

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


# --- the simulated archive (a small PJ57 downlink), read with generic readers ---------------
_PERIJOVES = [Path(__file__).resolve().parents[2] / "shared" / "reference" / "perijoves.csv",
              Path(__file__).resolve().parents[1] / "iovolc" / "data" / "reference" /
              "perijoves.csv"]
MODE_BANDS = {"SCI_I1_S1": "LM", "SCI_I2_S1": "M", "SCI_I3_S1": "L"}


def _labels(root: Path, kind: str) -> list[Path]:
    return sorted(root.glob(f"archive/JNOJIR_{ {'EDR': '1', 'RDR': '2'}[kind]}*/DATA/*.LBL"))


def _read(label_path: Path):
    """Label (pvl) and pixels (numpy, as the label's FILE object describes them)."""
    lab = pvl.load(str(label_path))
    img = lab["FILE"]["IMAGE"]
    dtype = {"IEEE_REAL": "<f4", "LSB_INTEGER": "<i2"}[img["SAMPLE_TYPE"]]  # RDRs: LSB
    raw = (label_path.parent / lab["FILE"]["^IMAGE"]).read_bytes()
    shape = (int(img["LINES"]), int(img["LINE_SAMPLES"]))
    assert len(raw) == shape[0] * shape[1] * int(img["SAMPLE_BITS"]) // 8
    return lab, np.frombuffer(raw, dtype=dtype).reshape(shape)


def _truth(root: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(root / "truth" / name, keep_default_na=False, na_values=[""])


def test_layout_archive_kernels_truth(pj57_small):
    root, summary = pj57_small
    assert {p.name for p in (root / "archive").iterdir()} == {"JNOJIR_1057", "JNOJIR_2057"}
    for vol in (root / "archive").iterdir():
        for part in ("INDEX/INDEX.TAB", "INDEX/INDEX.LBL", "AAREADME.TXT", "VOLDESC.CAT"):
            assert (vol / part).is_file(), part
    assert {p.name for p in (root / "kernels").iterdir()} == {
        "lsk", "pck", "fk", "ik", "sclk", "spk", "ck"}
    assert not list((root / "archive").rglob("*.csv"))
    assert not list((root / "kernels").rglob("*true*"))
    assert list((root / "truth" / "kernels" / "ck").glob("*true*.bc"))
    assert summary.n_frames == len(_labels(root, "RDR")) == len(_labels(root, "EDR")) >= 28


def test_labels_parse_and_follow_the_real_label(pj57_small):
    root, _ = pj57_small
    frames = _truth(root, "frames.csv").set_index("product_id")
    kernel_names = {p.name for p in (root / "kernels").rglob("*") if p.is_file()}
    units, exposures_missing, groups_as_objects = set(), 0, 0
    for lbl in _labels(root, "RDR") + _labels(root, "EDR"):
        raw = lbl.read_bytes()
        lines = raw.split(b"\r\n")
        assert lines[-1] == b"" and b"\n" not in raw.replace(b"\r\n", b"")  # CR-LF only
        assert max(len(x) for x in lines) <= 80
        text = raw.decode("ascii")
        assert re.search(rf"^PRODUCT_ID\s+= {lbl.stem}\s*$", text, re.M)  # unquoted
        lab, arr = _read(lbl)
        assert lab["PRODUCT_ID"] == lbl.stem
        assert lab["INSTRUMENT_ID"] == "JIR" and lab["CHANNEL_ID"] == "1"
        mode = lab["INSTRUMENT_MODE_ID"]
        assert arr.shape == (128 * len(MODE_BANDS[mode]), 432)
        assert set(lab["FILE"]["SPICE_FILE_NAME"]) == kernel_names  # one pass: every kernel
        assert re.fullmatch(r"1/\d{9,10}:\d{5}", lab["SPACECRAFT_CLOCK_START_COUNT"])
        assert lab["TARGET_NAME"] in ("IO", "N/A")
        for band in "LM":
            first = lab[f"{band}_BAND_PARAMETERS"]["LINE_FIRST_PIXEL"]
            assert (first != "N/A") == (band in MODE_BANDS[mode])
        groups_as_objects += "OBJECT = L_BAND_PARAMETERS" in text
        row = frames.loc[frames.rdr_product_id == lbl.stem] if "RDR" in lbl.stem else \
            frames.loc[frames.edr_product_id == lbl.stem]
        exp_ms = float(row.exposure_ms.iloc[0])
        if "EXPOSURE_DURATION" in lab:
            assert lab["EXPOSURE_DURATION"].value * 1000 == pytest.approx(exp_ms)
            assert lab["EXPOSURE_DURATION"].units == "second"
        else:
            exposures_missing += 1
            dt = (lab["STOP_TIME"] - lab["START_TIME"]).total_seconds()
            assert dt * 1000 == pytest.approx(exp_ms, abs=1e-6)
        if lab["PRODUCT_TYPE"] == "RDR":
            units.add(lab["FILE"]["UNIT"])
            assert lab["FILE"]["HISTORY"]["SOURCE_PRODUCT_ID"] == row.edr_product_id.iloc[0] \
                + ".IMG"
        else:
            assert lab["FILE"]["UNIT"] == "DN"
    assert units == {"W/(m^2*sr)", "W/(m^2*sr*micron)"}
    assert exposures_missing > 0 and groups_as_objects > 0
    targets = {pvl.load(str(p))["TARGET_NAME"] for p in _labels(root, "RDR")}
    assert targets == {"IO", "N/A"}  # 2022+ Io labels may say N/A


def test_rdr_bytes_are_little_endian_despite_ieee_real(pj57_small):
    root, _ = pj57_small
    lbl = _labels(root, "RDR")[0]
    lab, arr = _read(lbl)
    assert lab["FILE"]["IMAGE"]["SAMPLE_TYPE"] == "IEEE_REAL"
    big = np.frombuffer((lbl.parent / lab["FILE"]["^IMAGE"]).read_bytes(), ">f4")
    assert np.nanmax(np.abs(arr)) < 100
    with np.errstate(all="ignore"):
        assert not (np.isfinite(big).all() and np.nanmax(np.abs(big)) < 100)


def test_index_lists_every_product(pj57_small):
    root, _ = pj57_small
    for vol in (root / "archive").iterdir():
        table = pvl.load(str(vol / "INDEX" / "INDEX.LBL"))["INDEX_TABLE"]
        rows = (vol / "INDEX" / "INDEX.TAB").read_bytes().split(b"\r\n")[:-1]
        assert len(rows) == int(table["ROWS"])
        col = next(c for c in table.getall("COLUMN") if c["NAME"] == "FILE_SPECIFICATION_NAME")
        a = int(col["START_BYTE"]) - 1
        listed = {r[a:a + int(col["BYTES"])].decode().strip() for r in rows}
        assert listed == {str(p.relative_to(vol)) for p in (vol / "DATA").glob("*.LBL")}


def test_orbit_number_from_apojove_bounded_orbits(pj57_small):
    root, _ = pj57_small
    table = pd.read_csv(next(p for p in _PERIJOVES if p.exists()), dtype=str)
    t_pj = datetime.fromisoformat(table.set_index("pj").loc["57", "perijove_utc"])
    for lbl in _labels(root, "RDR"):
        lab = pvl.load(str(lbl))
        hours = (t_pj - lab["START_TIME"].replace(tzinfo=None)).total_seconds() / 3600
        assert 0 < hours < 8 and lab["ORBIT_NUMBER"] == 57  # a pass before PJ57 is orbit 57
        assert lbl.parent.parent.name == "JNOJIR_2057"


def test_sequences_lack_their_first_frame_and_keep_the_spin_cadence(pj57_small):
    root, _ = pj57_small
    rows = []
    for lbl in _labels(root, "RDR"):
        lab = pvl.load(str(lbl))
        rows.append((lab["START_TIME"].replace(tzinfo=None), lab["SEQUENCE_NUMBER"],
                     lab["SEQUENCE_SAMPLES"]))
    df = pd.DataFrame(rows, columns=["t", "n", "size"]).sort_values("t", ignore_index=True)
    assert (df.n >= 2).all()  # frame 1 of a sequence is never delivered
    seq = (df.n <= df.n.shift(1, fill_value=99)).cumsum()
    for _, g in df.groupby(seq):
        assert list(g.n) == list(range(2, int(g["size"].iloc[0]) + 1))
        assert (g["size"] == g["size"].iloc[0]).all()
        dt = g.t.diff().dt.total_seconds().dropna()
        assert np.allclose(dt, 30.5, atol=0.0011)  # one frame per spin
        t1 = g.t.iloc[0] - pd.Timedelta(seconds=30.5)  # where frame 1 would be
        assert not ((df.t - t1).abs().dt.total_seconds() < 1).any()
    assert seq.max() >= 3


def test_clock_counts_follow_the_sclk(pj57_small):
    root, _ = pj57_small
    for p in sorted((root / "kernels").rglob("*")):
        if p.suffix in (".tls", ".tsc"):
            spiceypy.furnsh(str(p))
    for lbl in _labels(root, "EDR")[::5]:
        lab = pvl.load(str(lbl))
        et = spiceypy.str2et(lab["START_TIME"].strftime("%Y-%m-%dT%H:%M:%S.%f"))
        assert spiceypy.scs2e(-61, lab["SPACECRAFT_CLOCK_START_COUNT"]) == pytest.approx(
            et, abs=2e-5)
