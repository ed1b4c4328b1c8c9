"""JIRAM readers (iovolc.pds3, iovolc.reader, iovolc.pds3_index) on real label forms.

Every variant starts from a **real** JIRAM RDR label
(``tests/data/real_labels/JIR_IMG_RDR_2017033T114006_V02.LBL``: nested
``OBJECT = FILE``, ``GROUP = *_BAND_PARAMETERS``, ``SCI_I2_S1``,
``W/(m^2*sr*micron)``, no EXPOSURE_DURATION, SPICE_FILE_NAME as a PVL set)
and is edited here the way other real labels differ (SIS modes, both units,
OBJECT-form band blocks, EDRs, flat labels). Images are written by plain
numpy; the expected values come from those bytes, not from the reader.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from iovolc.pds3 import MalformedLabel, ProductError, SizeMismatch, UnknownMode, UnsafePath
from iovolc.pds3_index import index_files, list_volumes, read_index, volume_kind, volume_orbit
from iovolc.reader import read_jiram_product

REAL = Path(__file__).parent / "data" / "real_labels" / "JIR_IMG_RDR_2017033T114006_V02.LBL"
PID = "JIR_IMG_RDR_2017033T114006_V02"


def _write(folder: Path, text: str, *, lines: int = 128, dtype: str = "<f4", name: str = PID,
           image_name: str | None = None, seed: int = 0) -> tuple[Path, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = (rng.normal(0.01, 0.002, (lines, 432)) if dtype.endswith("f4")
           else rng.integers(1200, 1600, (lines, 432))).astype(dtype)
    (folder / f"{name}.LBL").write_bytes(text.replace("\n", "\r\n").encode("latin-1"))
    img.tofile(folder / (image_name or f"{name}.IMG"))
    return folder / f"{name}.LBL", img


def _real() -> str:
    return REAL.read_bytes().decode("latin-1").replace("\r\n", "\n")


def _sub(text: str, pattern: str, new: str) -> str:
    out, n = re.subn(pattern, new, text, count=1, flags=re.MULTILINE | re.DOTALL)
    assert n, pattern
    return out


def _i1(text: str) -> str:
    """The real label turned into a 256-line SCI_I1_S1 frame with both band blocks."""
    text = _sub(text, r"SCI_I2_S1", "SCI_I1_S1")
    text = _sub(text, r"(L_BAND_PARAMETERS.*?LINE_FIRST_PIXEL\s+=) \"N/A\"", r"\1 1")
    text = _sub(text, r"FILE_RECORDS(\s+)= 128", r"FILE_RECORDS\1= 256")
    return _sub(text, r"LINES(\s+)= 128", r"LINES\1= 256")


def test_the_real_label_reads(tmp_path):
    lbl, img = _write(tmp_path, _real())
    p = read_jiram_product(lbl)
    assert p.product_id == PID and p.product_type == "RDR"
    assert p.mode == "SCI_I2_S1" and p.bands == ("M",)
    assert p.unit == "W/(m^2*sr*micron)"
    # no EXPOSURE_DURATION: STOP - START (jiram_catalog derives it so)
    # ... from the UTC texts, exact (from ETs ~1e9 s it would carry float noise and 2 ms
    # frames would match no dark frame)
    assert p.exposure_s == 0.012
    assert p.sequence_number == 2 and p.sequence_samples == 13
    assert p.orbit_number == 4 and p.target_name == "JUPITER"
    assert p.data_quality == "1"
    assert p.source_product_id == "JIR_IMG_EDR_2017033T114006_V02.IMG"
    # the kernel list is a PVL set: its textual order is kept
    assert p.spice_file_names[:3] == ("juno_v09.tf", "juno_jiram_v01.ti", "juno_struct_v01.ti")
    assert p.spice_file_names[-1] == "juno_sc_rec_170129_170204_v01.bc"
    assert len(p.spice_file_names) == 11
    # little-endian although IEEE_REAL
    np.testing.assert_array_equal(p.image, img)
    assert p.band_image("M").shape == (128, 432)
    with pytest.raises(KeyError, match="band 'L' not in mode SCI_I2_S1"):
        p.band_image("L")


@pytest.mark.parametrize("edit, bands, lines", [
    (_i1, ("L", "M"), 256),
    (lambda t: _sub(_sub(t, "SCI_I2_S1", "SCI_I3_S0"),
                    r"(L_BAND_PARAMETERS.*?LINE_FIRST_PIXEL\s+=) \"N/A\"", r"\1 1").replace(
        "LINE_FIRST_PIXEL       = 2", 'LINE_FIRST_PIXEL       = "N/A"'), ("L",), 128),
    (lambda t: t.replace("SCI_I2_S1", "I2"), ("M",), 128),
    (lambda t: t.replace("SCI_I2_S1", "SCI_I2_S0"), ("M",), 128),
])
def test_sis_modes(tmp_path, edit, bands, lines):
    lbl, img = _write(tmp_path, edit(_real()), lines=lines)
    p = read_jiram_product(lbl)
    assert p.bands == bands
    for b, sl in p.band_rows.items():
        np.testing.assert_array_equal(p.band_image(b), img[sl])


def test_band_blocks_as_objects_and_both_units(tmp_path):
    text = _real().replace("GROUP = ", "OBJECT = ").replace("END_GROUP = ", "END_OBJECT = ")
    text = text.replace('"W/(m^2*sr*micron)"', '"W/(m^2*sr)"')
    p = read_jiram_product(_write(tmp_path, text)[0])
    assert p.bands == ("M",) and p.unit == "W/(m^2*sr)"


def test_mode_missing_is_inferred_from_band_blocks_and_lines(tmp_path):
    text = _real().replace("INSTRUMENT_MODE_ID             = SCI_I2_S1", "")
    assert read_jiram_product(_write(tmp_path / "a", text)[0]).bands == ("M",)
    i1 = _i1(_real()).replace("INSTRUMENT_MODE_ID             = SCI_I1_S1", "")
    assert read_jiram_product(_write(tmp_path / "b", i1, lines=256)[0]).bands == ("L", "M")


def test_edr_with_exposure_and_flat_label(tmp_path):
    text = _real().replace("RDR", "EDR").replace("JNO-J-JIRAM-3-EDR-V1.0", "JNO-J-JIRAM-2-EDR-V1.0")
    text = text.replace("IEEE_REAL", "LSB_INTEGER").replace("SAMPLE_BITS                = 32",
                                                             "SAMPLE_BITS                = 16")
    text = text.replace('"W/(m^2*sr*micron)"', '"DN"').replace("RECORD_BYTES                = 1728",
                                                                "RECORD_BYTES                = 864")
    text = text.replace("STOP_TIME  ", "EXPOSURE_DURATION = 0.002 <second>\nSTOP_TIME  ")
    # flatten: the FILE object's content at the top level (other writers do)
    text = re.sub(r"^OBJECT\s+= FILE\s*$", "", text, flags=re.M)
    text = re.sub(r"^END_OBJECT\s+= FILE\s*$", "", text, flags=re.M)
    name = PID.replace("RDR", "EDR")
    lbl, img = _write(tmp_path, text, dtype="<i2", name=name)
    p = read_jiram_product(lbl)
    assert p.product_type == "EDR" and p.product_id == name
    assert p.exposure_s == pytest.approx(0.002)
    np.testing.assert_array_equal(p.image, img)
    assert p.image.dtype == np.int16


def test_case_insensitive_image(tmp_path):
    lbl, _ = _write(tmp_path, _real(), image_name=PID.lower() + ".img")
    assert read_jiram_product(lbl).image_name == PID.lower() + ".img"


@pytest.mark.parametrize("edit, error, words", [
    (lambda t: t.replace("SCI_I2_S1", "SCI_I9_S1"), UnknownMode,
     ["INSTRUMENT_MODE_ID", "SCI_I9_S1"]),
    (lambda t: t.replace("SCI_I2_S1", "SCI_I0_S1"), UnknownMode, ["SCI_I0_S1"]),
    # I2 (M only) but the L block says L is present
    (lambda t: _sub(t, r"(L_BAND_PARAMETERS.*?LINE_FIRST_PIXEL\s+=) \"N/A\"", r"\1 1"),
     UnknownMode, ["band blocks", "L"]),
    (lambda t: t.replace("SCI_I2_S1", "SCI_I1_S1"), SizeMismatch, ["LINES 128", "SCI_I1_S1"]),
    (lambda t: t.replace('"W/(m^2*sr*micron)"', '"K"'), MalformedLabel, ["UNIT", "'K'"]),
    (lambda t: t.replace('"JUPITER"', '"JUP\x00ITER"'), MalformedLabel, ["TARGET_NAME"]),
    (lambda t: t.replace(f"PRODUCT_ID                     = {PID}",
                         'PRODUCT_ID                     = "A/../B"'), MalformedLabel,
     ["PRODUCT_ID", "A/../B"]),
    (lambda t: t.replace("START_TIME                     = 2017-02-02T11:40:03.870",
                         "START_TIME                     = 1900-01-01T00:00:00"),
     MalformedLabel, ["START_TIME", "1900"]),
    (lambda t: t.replace("SAMPLE_BITS                = 32", "SAMPLE_BITS                = 64"),
     MalformedLabel, ["SAMPLE_BITS 64"]),
    (lambda t: t.replace("LINE_SAMPLES               = 432", "LINE_SAMPLES               = 400"),
     SizeMismatch, ["LINE_SAMPLES 400"]),
])
def test_bad_labels_name_product_keyword_value(tmp_path, edit, error, words):
    lbl, _ = _write(tmp_path, edit(_real()))
    with pytest.raises(error) as exc:
        read_jiram_product(lbl)
    text = str(exc.value)
    assert "\n" not in text
    assert text.split(":")[0] in (PID, f"{PID}.LBL", "A/../B")
    for w in words:
        assert w in text


@pytest.mark.parametrize("pointer", ['"/etc/passwd"', '"../../outside/X.IMG"',
                                     '"C:/X.IMG"', '"file:///etc/passwd"'])
def test_image_pointer_never_leaves_the_label_folder(tmp_path, pointer):
    text = _real().replace(f'"{PID}.IMG"', pointer)
    lbl, _ = _write(tmp_path / "vol" / "DATA", text)
    with pytest.raises(UnsafePath, match=r"\^IMAGE"):
        read_jiram_product(lbl)


def test_empty_image_pointer(tmp_path):
    lbl, _ = _write(tmp_path, _real().replace(f'"{PID}.IMG"', '""'))
    with pytest.raises(MalformedLabel, match="names no file"):
        read_jiram_product(lbl)


def test_label_outside_the_root_is_refused(tmp_path):
    lbl, _ = _write(tmp_path / "elsewhere", _real())
    with pytest.raises(UnsafePath, match="label .* is outside .*archive"):
        read_jiram_product(lbl, root=str(tmp_path / "archive"))


def test_truncated_image(tmp_path):
    lbl, _ = _write(tmp_path, _real())
    img = tmp_path / f"{PID}.IMG"
    img.write_bytes(img.read_bytes()[:1000])
    with pytest.raises(SizeMismatch, match="needs 221184"):
        read_jiram_product(lbl)


def test_links_leading_out_are_refused(tmp_path):
    """On a local disk the resolved path is confined too: a link is no way out."""
    secret = tmp_path / "outside" / "secret.IMG"
    secret.parent.mkdir()
    np.zeros((128, 432), "<f4").tofile(secret)
    vol = tmp_path / "archive" / "JNOJIR_2004"
    lbl, _ = _write(vol / "DATA", _real())
    img = vol / "DATA" / f"{PID}.IMG"
    img.unlink()
    img.symlink_to(secret)
    with pytest.raises(UnsafePath, match=r"\^IMAGE .* is a link to .*outside/secret.IMG"):
        read_jiram_product(lbl, root=str(vol))
    img.unlink()
    (vol / "DATA" / "real.IMG").write_bytes(secret.read_bytes())
    img.symlink_to(vol / "DATA" / "real.IMG")  # a link beside the label is fine
    assert read_jiram_product(lbl, root=str(vol)).image.shape == (128, 432)
    outside_label = tmp_path / "outside" / f"{PID}.LBL"
    outside_label.write_bytes(lbl.read_bytes())
    lbl.unlink()
    lbl.symlink_to(outside_label)
    with pytest.raises(UnsafePath, match="label .* is a link to .*outside"):
        read_jiram_product(lbl, root=str(vol))


@pytest.mark.parametrize("edit, words", [
    # values of shapes the reader does not expect: a set, a sequence, a date only
    (lambda t: t.replace("FILE_RECORDS                = 128", "FILE_RECORDS = (1, 2)"),
     ["FILE_RECORDS", "[1, 2]"]),
    (lambda t: t.replace(f'^IMAGE                         = "{PID}.IMG"',
                         f'^IMAGE = ("{PID}.IMG", 2)').replace(
        "RECORD_BYTES                = 1728", "RECORD_BYTES = {1728, 1}"),
     ["label not understood", "TypeError"]),
    (lambda t: t.replace("START_TIME                     = 2017-02-02T11:40:03.870",
                         "START_TIME                     = (1, 2)"), ["START_TIME"]),
    (lambda t: t.replace("ORBIT_NUMBER                   = 4", "ORBIT_NUMBER = {4, 5}"),
     ["ORBIT_NUMBER"]),
    (lambda t: t.replace("SCI_I2_S1", "(SCI_I2_S1, SCI_I1_S1)"), ["INSTRUMENT_MODE_ID"]),
    # a stray END_OBJECT: the parser's complaint with its line
    (lambda t: t.replace("PRODUCT_TYPE", "END_OBJECT = NOTHING\nPRODUCT_TYPE", 1),
     ["does not parse", "line", "END_OBJECT"]),
    # an unquoted NUL byte: the line and the keyword that hold it
    (lambda t: t.replace('"JUPITER"', "JUP\x00ITER"), ["TARGET_NAME", "0x00"]),
])
def test_odd_labels_are_one_line_errors(tmp_path, edit, words):
    text = edit(_real())
    lbl, img = _write(tmp_path, text)
    if "FILE_RECORDS = (1, 2)" in text:  # extra bytes make FILE_RECORDS matter
        img.tofile(tmp_path / f"{PID}.IMG")
        with (tmp_path / f"{PID}.IMG").open("ab") as fh:
            fh.write(bytes(1728))
    with pytest.raises(ProductError) as exc:  # MalformedLabel, or UnknownMode for the mode
        read_jiram_product(lbl)
    text = str(exc.value)
    assert "\n" not in text and text.isprintable() and text.startswith(PID)
    for w in words:
        assert w in text


def test_errors_are_one_printable_line():
    err = ProductError("A\x00B", "line one\nline two \xff \u2028 end")
    assert str(err) == "A\\x00B: line one line two \\xff end"
    assert len(str(ProductError("P", "x" * 5000))) < 420


def test_nothing_larger_than_the_cap_is_read(tmp_path):
    import fsspec

    from iovolc.pds3 import read_capped

    big = tmp_path / "big.LBL"
    big.write_bytes(b"x" * 2000)
    fs = fsspec.filesystem("file")
    with pytest.raises(ProductError, match="big.LBL is 2000 bytes, more than the 1000"):
        read_capped(fs, str(big), who="P", what="label", limit=1000)
    assert read_capped(fs, str(big), who="P", what="label", limit=2000) == b"x" * 2000


# --- volumes and indexes ---------------------------------------------------------


def _volume(root: Path, vid: str, rows: list[str], *, rows_declared: int | None = None):
    (root / vid / "INDEX").mkdir(parents=True)
    (root / vid / "DATA").mkdir()
    width = 40
    tab = "".join(f'"{r[0]:<{width}}","{r[1]:<32}"\r\n' for r in rows)
    (root / vid / "INDEX" / "INDEX.TAB").write_bytes(tab.encode())
    lbl = f"""PDS_VERSION_ID = PDS3
^INDEX_TABLE = "INDEX.TAB"
OBJECT = INDEX_TABLE
  ROWS = {rows_declared if rows_declared is not None else len(rows)}
  OBJECT = COLUMN
    NAME = FILE_SPECIFICATION_NAME
    DATA_TYPE = CHARACTER
    START_BYTE = 2
    BYTES = {width}
  END_OBJECT = COLUMN
  OBJECT = COLUMN
    NAME = PRODUCT_ID
    DATA_TYPE = CHARACTER
    START_BYTE = {width + 5}
    BYTES = 32
  END_OBJECT = COLUMN
END_OBJECT = INDEX_TABLE
END
"""
    (root / vid / "INDEX" / "INDEX.LBL").write_text(lbl)


def test_index_row_by_row(tmp_path):
    good = [(f"DATA/JIR_IMG_RDR_2023364T0830{i:02d}_V01.LBL", f"JIR_IMG_RDR_2023364T0830{i:02d}_V01")
            for i in range(5)]
    bad = [("../../outside/P98.LBL", "JIR_IMG_RDR_2023364T083099_V01"),
           ("DATA/X.LBL", "JIR/IMG"), ("/etc/passwd", "ABSOLUTE")]
    _volume(tmp_path, "JNOJIR_2057", good[:3] + bad + good[3:], rows_declared=99)
    with (tmp_path / "JNOJIR_2057" / "INDEX" / "INDEX.TAB").open("ab") as fh:
        fh.write(b'"short"\r\n')
    idx = read_index(tmp_path / "JNOJIR_2057")
    assert list(idx.rows["product_id"]) == [g[1] for g in good]
    reasons = " ".join(p["reason"] for p in idx.problems)
    assert "ROWS = 99" in reasons
    assert "leads outside the volume" in reasons and "'JIR/IMG'" in reasons
    assert "shorter than its columns" in reasons
    assert len(idx.problems) == 5
    assert all(u.endswith(".LBL") for u in idx.rows["label_url"])


def test_index_file_names_and_links(tmp_path):
    good = [(f"DATA/JIR_IMG_RDR_2023364T0830{i:02d}_V01.LBL", f"JIR_IMG_RDR_2023364T0830{i:02d}_V01")
            for i in range(2)]
    bad = [("DATA/JIR IMG.LBL", "JIR_A"), ("C:/DATA/X.LBL", "JIR_B"), ("DATA/X\x01.LBL", "JIR_C")]
    _volume(tmp_path, "JNOJIR_2057", good + bad)
    idx = read_index(tmp_path / "JNOJIR_2057")
    assert list(idx.rows["product_id"]) == [g[1] for g in good]
    assert {p["product_id"] for p in idx.problems} == {"JIR_A", "JIR_B", "JIR_C"}
    # INDEX files that are links out of the volume are neither read nor listed for copying
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0\n")
    extra = tmp_path / "JNOJIR_2057" / "INDEX" / "EXTRA.TAB"
    extra.symlink_to(secret)
    names = [rel for rel, _ in index_files(tmp_path / "JNOJIR_2057")]
    assert names == ["INDEX/INDEX.LBL", "INDEX/INDEX.TAB"]
    tab = tmp_path / "JNOJIR_2057" / "INDEX" / "INDEX.TAB"
    tab.rename(tmp_path / "INDEX.TAB")
    tab.symlink_to(tmp_path / "INDEX.TAB")
    with pytest.raises(UnsafePath, match="INDEX.TAB .* is a link to"):
        read_index(tmp_path / "JNOJIR_2057")


def test_volumes(tmp_path):
    for vid in ("JNOJIR_2058", "jnojir_1057", "JNOJIR_2057", "OTHER"):
        (tmp_path / vid).mkdir()
    names = [Path(v).name for v in list_volumes(tmp_path)]
    assert names == ["jnojir_1057", "JNOJIR_2057", "JNOJIR_2058"]
    assert volume_kind("JNOJIR_1057") == "EDR" and volume_orbit("JNOJIR_2058") == 58
    with pytest.raises(ProductError, match="archive root .* not found"):
        list_volumes(tmp_path / "nope")
