"""PDS3 readers (iovolc.pds3) against independent references.

References: the simulator's truth table (``truth/frames.csv``), the files on
disk (``DATA/*.LBL``), plain ``numpy.frombuffer`` reads of the ``.IMG`` bytes,
and a generic PVL parse (pvl) of the labels. Label variants imitate what real
JIRAM volumes do (other key orders, extra keywords, units, "N/A", case).
"""

from __future__ import annotations

import pickle
import re
import shutil
import uuid
import warnings
from dataclasses import replace
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():  # pvl warns about its own Units class on import
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import pvl

from iovolc import pds3
from iovolc.pds3 import (
    MalformedLabel,
    MissingImage,
    ProductError,
    SizeMismatch,
    UnknownMode,
    list_volumes,
    read_index,
    read_jiram_product,
    read_label,
    volume_kind,
    volume_orbit,
)


@pytest.fixture(scope="module")
def sim(pj57_tiny) -> Path:
    return pj57_tiny


@pytest.fixture(scope="module")
def truth(sim) -> pd.DataFrame:
    return pd.read_csv(sim / "truth" / "frames.csv", keep_default_na=False)


def _labels(sim: Path, kind: str) -> list[Path]:
    digit = {"EDR": "1", "RDR": "2"}[kind]
    return sorted((sim / "archive" / f"JNOJIR_{digit}057" / "DATA").glob("*.LBL"))


def _copy_product(label: Path, dest_dir: Path) -> Path:
    """Copy a label and its image into ``dest_dir``; return the new label path."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(label, dest_dir / label.name)
    shutil.copy(label.with_suffix(".IMG"), dest_dir / label.with_suffix(".IMG").name)
    return dest_dir / label.name


def _edit(label: Path, pattern: str, new: str, *, count: int = 1) -> None:
    """Regex-replace in a label (multi-line, dot-all); fail if nothing matched."""
    text = label.read_bytes().decode("ascii")
    out, n = re.subn(pattern, new, text, count=count, flags=re.MULTILINE | re.DOTALL)
    assert n, f"{pattern!r} not in {label.name}"
    label.write_bytes(out.encode("ascii"))


def _first(sim: Path, kind: str, mode: str, truth: pd.DataFrame) -> Path:
    col = "product_id" if kind == "RDR" else "edr_product_id"
    pid = truth.loc[truth["mode"] == mode, col].iloc[0]
    return next(p for p in _labels(sim, kind) if p.stem == pid)


# --- volumes and index -----------------------------------------------------------------


def test_list_volumes_and_names(sim, tmp_path):
    vols = list_volumes(sim / "archive")
    assert [Path(v).name for v in vols] == ["JNOJIR_1057", "JNOJIR_2057"]
    assert [volume_kind(v) for v in vols] == ["EDR", "RDR"]
    assert [volume_orbit(v) for v in vols] == [57, 57]
    # any case, non-volume folders and files ignored, sorted by orbit then kind
    for name in ("jnojir_2058", "JNOJIR_1058", "JNOJIR_3001", "CATALOG", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "JNOJIR_2059").write_text("a file, not a volume")
    got = list_volumes(f"file://{tmp_path}")
    assert got == [f"file://{tmp_path}/JNOJIR_1058", f"file://{tmp_path}/jnojir_2058"]
    with pytest.raises(ProductError, match="JNOJIR_3001: not a JIRAM volume"):
        volume_kind("JNOJIR_3001")


@pytest.mark.parametrize("kind", ["EDR", "RDR"])
def test_index_rows_are_the_data_labels(sim, truth, kind):
    digit = {"EDR": "1", "RDR": "2"}[kind]
    vol = sim / "archive" / f"JNOJIR_{digit}057"
    df = read_index(vol)
    on_disk = {f"DATA/{p.name}" for p in _labels(sim, kind)}
    assert len(df) == len(on_disk)
    assert set(df["file_specification_name"]) == on_disk
    assert all(Path(u).is_file() for u in df["label_url"])
    # a volume URL in the wrong case is matched on disk
    other = read_index(vol.parent / vol.name.lower())
    assert [u.removeprefix("file://") for u in other["label_url"]] == list(df["label_url"])
    col = "product_id" if kind == "RDR" else "edr_product_id"
    assert set(df["product_id"]) == set(truth[col])
    assert (df["product_type"] == kind).all()
    assert (df["volume_id"] == vol.name).all()
    assert df["orbit_number"].dtype.kind == "i" and (df["orbit_number"] == 57).all()
    by_id = truth.set_index(col)
    assert np.allclose(
        df["exposure_duration"].to_numpy(), by_id.loc[df["product_id"], "exposure_ms"] * 1e-3
    )
    assert list(df["target_name"]) == list(by_id.loc[df["product_id"], "target_name"])


def test_index_lower_case_names_and_csv_fallback(sim, tmp_path):
    vol = tmp_path / "jnojir_2057"
    shutil.copytree(sim / "archive" / "JNOJIR_2057", vol)
    ref = read_index(sim / "archive" / "JNOJIR_2057")
    # lower-case FILE_SPECIFICATION_NAME (same width, so byte positions hold)
    tab = vol / "INDEX" / "INDEX.TAB"
    text = tab.read_bytes().decode("ascii")
    tab.write_bytes(re.sub(r'"(DATA/[^"]+)"', lambda m: f'"{m[1].lower()}"', text).encode())
    # lower-case index folder and label file name too
    (vol / "INDEX").rename(vol / "index")
    (vol / "index" / "INDEX.LBL").rename(vol / "index" / "index.lbl")
    df = read_index(vol)
    assert list(df["file_specification_name"]) == [
        s.lower() for s in ref["file_specification_name"]
    ]
    # label_url follows the case on disk
    assert [Path(u).name for u in df["label_url"]] == [Path(u).name for u in ref["label_url"]]
    assert all(Path(u).is_file() for u in df["label_url"])
    product = read_jiram_product(df["label_url"].iloc[0])
    assert product.product_id == ref["product_id"].iloc[0]
    # without INDEX.LBL: comma-separated fallback, columns found by content
    (vol / "index" / "index.lbl").unlink()
    csv_df = read_index(vol)
    assert list(csv_df["product_id"]) == list(ref["product_id"])
    assert [Path(u).name for u in csv_df["label_url"]] == [Path(u).name for u in ref["label_url"]]
    assert list(csv_df["start_time"]) == list(ref["start_time"])


def test_index_errors_name_the_volume(sim, tmp_path):
    vol = tmp_path / "JNOJIR_2057"
    shutil.copytree(sim / "archive" / "JNOJIR_2057", vol)
    lbl, tab = vol / "INDEX" / "INDEX.LBL", vol / "INDEX" / "INDEX.TAB"
    good = tab.read_bytes()
    # a truncated row
    rows = good.split(b"\r\n")
    tab.write_bytes(b"\r\n".join([*rows[:2], rows[2][:40], *rows[3:]]))
    with pytest.raises(ProductError, match=r"^JNOJIR_2057: INDEX.TAB row 3 is 40 bytes") as e:
        read_index(vol)
    assert e.value.product_id == "JNOJIR_2057"
    # a missing row (ROWS disagrees)
    tab.write_bytes(b"\r\n".join(rows[1:]))
    with pytest.raises(ProductError, match=r"^JNOJIR_2057: INDEX.TAB has \d+ rows, INDEX.LBL says"):
        read_index(vol)
    tab.write_bytes(good)
    # a label that does not parse
    lbl.write_bytes(b'PDS_VERSION_ID = PDS3\r\nVOLUME_ID = "JNOJIR_2057\r\nEND\r\n')
    with pytest.raises(MalformedLabel, match=r"^JNOJIR_2057 INDEX.LBL: label does not parse"):
        read_index(vol)
    shutil.rmtree(vol / "INDEX")
    with pytest.raises(ProductError, match="^JNOJIR_2057: volume has no INDEX/ folder"):
        read_index(vol)


# --- products ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["EDR", "RDR"])
def test_products_match_truth(sim, truth, kind):
    col = "product_id" if kind == "RDR" else "edr_product_id"
    by_id = truth.set_index(col)
    labels = _labels(sim, kind)
    assert len(labels) == len(truth)
    for label in labels:
        p = read_jiram_product(label)
        t = by_id.loc[p.product_id]
        assert p.product_type == kind
        assert p.mode == t["mode"]
        assert p.exposure_s == pytest.approx(t["exposure_ms"] * 1e-3, rel=1e-12)
        assert p.target_name == t["target_name"]
        assert p.orbit_number == t["orbit_number"]
        assert p.start_time_utc == t["start_time_utc"]
        assert p.et_mid == pytest.approx(t["et_mid"], abs=1e-3)
        assert p.image.shape == (t["lines"], 432)
        assert p.label_url == str(label)
        # SPICE_FILE_NAME as a generic PVL parser sees it, order kept
        ref = pvl.load(str(label))
        assert p.spice_file_names == tuple(ref["SPICE_FILE_NAME"])
        assert p.sclk_start == ref["SPACECRAFT_CLOCK_START_COUNT"]
        assert all(any((sim / "kernels").rglob(name)) for name in p.spice_file_names), (
            p.spice_file_names
        )


def test_image_dtypes_and_rdr_byte_order(sim, truth):
    for mode, bands in (
        ("I1", {"L": slice(0, 128), "M": slice(128, 256)}),
        ("I2", {"M": slice(0, 128)}),
    ):
        rdr_label = _first(sim, "RDR", mode, truth)
        rdr = read_jiram_product(rdr_label)
        assert rdr.mode == mode and rdr.bands == bands
        assert rdr.image.dtype == np.float32 and rdr.image.dtype.isnative
        assert not rdr.image.flags.writeable
        assert np.isfinite(rdr.image).all() and np.abs(rdr.image).max() < 100
        raw = rdr_label.with_suffix(".IMG").read_bytes()
        assert np.array_equal(rdr.image.ravel(), np.frombuffer(raw, "<f4"))
        # believing the label (IEEE_REAL = big-endian) gives garbage
        with np.errstate(all="ignore"):
            wrong = np.frombuffer(raw, ">f4")
            assert (~np.isfinite(wrong)).any() or np.nanmax(np.abs(wrong)) > 1e6
        assert np.array_equal(rdr.band_image("M"), rdr.image[bands["M"]])
        if "L" not in bands:
            with pytest.raises(KeyError, match="band 'L' not in mode I2"):
                rdr.band_image("L")

        edr_label = _first(sim, "EDR", mode, truth)
        edr = read_jiram_product(edr_label)
        assert edr.image.dtype == np.int16
        raw = edr_label.with_suffix(".IMG").read_bytes()
        assert np.array_equal(edr.image.ravel(), np.frombuffer(raw, "<i2"))
        assert 0 <= edr.image.min() and edr.image.max() <= 16383
        assert edr.image.shape == rdr.image.shape


def test_memory_copy_reads_identically(sim):
    local_vol = sim / "archive" / "JNOJIR_2057"
    root = f"memory://iovolc-test-{uuid.uuid4().hex}"
    mem = fsspec.filesystem("memory")
    try:
        keep = {p.stem for p in _labels(sim, "RDR")[:2]}
        for path in sorted(local_vol.rglob("*")):
            if path.is_file() and (path.parent.name != "DATA" or path.stem in keep):
                rel = path.relative_to(sim / "archive").as_posix()
                with mem.open(f"{root}/archive/{rel}", "wb") as fh:
                    fh.write(path.read_bytes())
        assert list_volumes(f"{root}/archive") == [f"{root}/archive/JNOJIR_2057"]
        local_index = read_index(local_vol)
        mem_index = read_index(f"{root}/archive/JNOJIR_2057")
        pd.testing.assert_frame_equal(
            mem_index.drop(columns="label_url"), local_index.drop(columns="label_url")
        )
        copied = [u for u in mem_index["label_url"] if mem.exists(u)]
        assert len(copied) == 2
        for url in copied:
            local = read_jiram_product(local_vol / "DATA" / url.rsplit("/", 1)[1])
            for p in (
                read_jiram_product(url),
                read_jiram_product(url.removeprefix("memory://"), fs=mem),
            ):
                assert p == replace(local, label_url=p.label_url)
                assert np.array_equal(p.image, local.image)
            lab = read_label(url)
            assert lab["PRODUCT_ID"] == local.product_id
    finally:
        mem.rm(root, recursive=True)


def _variant_checks():
    """(name, [(pattern, replacement)], expected field values) for real-archive label forms."""
    return [
        (
            "reordered keys, extra keywords and groups, LF line ends",
            [
                (r"^(SPICE_FILE_NAME\s*=\s*\(.*?\))\r\n(.*?)(\r\nOBJECT)", r"\2\r\n\1\3"),
                (r"^PRODUCT_TYPE.*?\r\n", ""),
                (
                    r"^(PDS_VERSION_ID.*?\r\n)",
                    '\\1LABEL_REVISION_NOTE = "2024-01-01 v2"\r\nSOFTWARE_VERSION_ID = "JIRAM 5.1"\r\n'
                    "GROUP = JIRAM_INFO\r\n  DARK_SUBTRACTED = TRUE\r\nEND_GROUP = JIRAM_INFO\r\n",
                ),
                (r"\r\n", "\n"),
            ],
            {},
        ),
        (
            "SPICE_FILE_NAME as one string with a folder",
            [
                (
                    r"^SPICE_FILE_NAME\s*=\s*\(.*?\)",
                    'SPICE_FILE_NAME = "spk/juno_rec_sim_pj057_v01.bsp"',
                )
            ],
            {"spice_file_names": ("juno_rec_sim_pj057_v01.bsp",)},
        ),
        (
            "SPICE_FILE_NAME with $KERNELS paths",
            [
                (
                    r"^SPICE_FILE_NAME\s*=\s*\(.*?\)",
                    'SPICE_FILE_NAME = ("$KERNELS/lsk/naif0012.tls",\r\n  "ck/juno_sc_rec_sim_pj057_v01.bc",'
                    ' "N/A")',
                )
            ],
            {"spice_file_names": ("naif0012.tls", "juno_sc_rec_sim_pj057_v01.bc")},
        ),
        (
            "exposure in <ms>",
            [(r"^EXPOSURE_DURATION .*?\r\n", "EXPOSURE_DURATION = 2 <ms>\r\n")],
            {"exposure_s": 0.002},
        ),
        (
            "exposure <SECOND>",
            [(r"^EXPOSURE_DURATION .*?\r\n", "EXPOSURE_DURATION = 0.003 <SECOND>\r\n")],
            {"exposure_s": 0.003},
        ),
        (
            "bare exposure > 0.5 is ms",
            [(r"^EXPOSURE_DURATION .*?\r\n", "EXPOSURE_DURATION = 2.0\r\n")],
            {"exposure_s": 0.002},
        ),
        (
            "bare exposure <= 0.5 is s",
            [(r"^EXPOSURE_DURATION .*?\r\n", "EXPOSURE_DURATION = 0.001\r\n")],
            {"exposure_s": 0.001},
        ),
        (
            "N/A target and orbit, day-of-year times",
            [
                (r"^TARGET_NAME .*?\r\n", 'TARGET_NAME = "N/A"\r\n'),
                (r"^ORBIT_NUMBER .*?\r\n", 'ORBIT_NUMBER = "N/A"\r\n'),
                (r"^START_TIME .*?\r\n", "START_TIME = 2023-364T06:35:59.999\r\n"),
                (r"^STOP_TIME .*?\r\n", 'STOP_TIME = "2023-364T06:36:00.001Z"\r\n'),
            ],
            {
                "target_name": "N/A",
                "orbit_number": None,
                "start_time_utc": "2023-12-30T06:35:59.999",
                "stop_time_utc": "2023-12-30T06:36:00.001",
            },
        ),
        (
            "^IMAGE as a bare string, no mode, M filter keyword",
            [
                (r"^\^IMAGE .*?\r\n", '^IMAGE = "JIR_IMG_RDR_2023364T063559_V01.IMG"\r\n'),
                (r"^INSTRUMENT_MODE_ID .*?\r\n", 'FILTER_NAME = "M"\r\n'),
            ],
            {"mode": "I2"},
        ),
        (
            "^IMAGE as a byte offset",
            [
                (
                    r"^\^IMAGE .*?\r\n",
                    '^IMAGE = ("JIR_IMG_RDR_2023364T063559_V01.IMG", 1 <BYTES>)\r\n',
                )
            ],
            {},
        ),
    ]


@pytest.mark.parametrize(
    "edits,expected", [v[1:] for v in _variant_checks()], ids=[v[0] for v in _variant_checks()]
)
def test_real_archive_label_forms(sim, truth, tmp_path, edits, expected):
    src = next(p for p in _labels(sim, "RDR") if p.stem == "JIR_IMG_RDR_2023364T063559_V01")
    ref = read_jiram_product(src)
    label = _copy_product(src, tmp_path / "DATA")
    for pattern, new in edits:
        _edit(label, pattern, new, count=0 if pattern == r"\r\n" else 1)
    p = read_jiram_product(label)
    want = {
        name: getattr(ref, name)
        for name in (
            "product_id",
            "product_type",
            "mode",
            "exposure_s",
            "target_name",
            "orbit_number",
            "start_time_utc",
            "stop_time_utc",
            "spice_file_names",
            "sclk_start",
        )
    } | expected
    assert {k: getattr(p, k) for k in want} == want
    assert p.et_mid == pytest.approx(ref.et_mid, abs=1e-3)
    assert np.array_equal(p.image, ref.image)


def test_case_insensitive_image_and_inferred_full_frame_mode(sim, truth, tmp_path):
    src = _first(sim, "RDR", "I1", truth)
    label = _copy_product(src, tmp_path / "DATA")
    img = label.with_suffix(".IMG")
    img.rename(img.with_name(img.name.lower()))
    _edit(label, r"^INSTRUMENT_MODE_ID .*?\r\n", "")
    p = read_jiram_product(label)
    assert p.mode == "I1" and p.image.shape == (256, 432)
    # an extra record the label accounts for (FILE_RECORDS) is fine ...
    lower = img.with_name(img.name.lower())
    lower.write_bytes(lower.read_bytes() + bytes(1728))
    _edit(label, r"^FILE_RECORDS .*?\r\n", "FILE_RECORDS = 257\r\n")
    assert np.array_equal(read_jiram_product(label).image, p.image)
    # ... one it does not is a size mismatch
    _edit(label, r"^FILE_RECORDS .*?\r\n", "FILE_RECORDS = 256\r\n")
    with pytest.raises(SizeMismatch, match=f"^{src.stem}: .* 1728 bytes more"):
        read_jiram_product(label)


# --- bad input ------------------------------------------------------------------------


def _assert_names(err: ProductError, pid: str, *words: str) -> None:
    msg = str(err)
    assert err.product_id == pid and msg.startswith(f"{pid}: ")
    assert msg == f"{pid}: {err.reason}"
    for w in words:
        assert w in err.reason, (w, msg)
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err) and str(again) == msg


@pytest.mark.parametrize(
    "content,word",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe garbage", "does not parse"),
        (b'PDS_VERSION_ID = PDS3\r\nPRODUCT_ID = "JIR_IMG_RDR_X\r\nEND\r\n', "does not parse"),
        (b"", "empty"),
    ],
    ids=["garbage", "unterminated-quote", "empty"],
)
def test_malformed_label(sim, tmp_path, content, word):
    src = _labels(sim, "RDR")[0]
    label = _copy_product(src, tmp_path)
    label.write_bytes(content)
    with pytest.raises(MalformedLabel) as e:
        read_jiram_product(label)
    _assert_names(e.value, label.name, word)
    with pytest.raises(MalformedLabel):
        read_label(f"file://{label}")


def test_label_missing_keywords(sim, tmp_path):
    src = _labels(sim, "RDR")[0]
    label = _copy_product(src, tmp_path)
    _edit(label, r"^EXPOSURE_DURATION .*?\r\n", "")
    with pytest.raises(MalformedLabel) as e:
        read_jiram_product(label)
    _assert_names(e.value, src.stem, "EXPOSURE_DURATION is missing")
    _edit(label, r"^\^IMAGE .*?\r\n", "")
    with pytest.raises(MalformedLabel) as e:
        read_jiram_product(label)
    _assert_names(e.value, src.stem, "no ^IMAGE pointer")


def test_truncated_image(sim, tmp_path):
    src = _labels(sim, "RDR")[0]
    label = _copy_product(src, tmp_path)
    img = label.with_suffix(".IMG")
    img.write_bytes(img.read_bytes()[:-1000])
    with pytest.raises(SizeMismatch) as e:
        read_jiram_product(label)
    _assert_names(e.value, src.stem, img.name, "bytes", "label needs")


def test_missing_image(sim, tmp_path):
    src = _labels(sim, "EDR")[0]
    label = _copy_product(src, tmp_path)
    label.with_suffix(".IMG").unlink()
    with pytest.raises(MissingImage) as e:
        read_jiram_product(label)
    _assert_names(e.value, src.stem, f"{src.stem}.IMG", "not found")


def test_unknown_mode(sim, truth, tmp_path):
    src = _first(sim, "RDR", "I1", truth)
    label = _copy_product(src, tmp_path)
    _edit(label, r"^INSTRUMENT_MODE_ID .*?\r\n", 'INSTRUMENT_MODE_ID = "X9"\r\n')
    with pytest.raises(UnknownMode) as e:
        read_jiram_product(label)
    _assert_names(e.value, src.stem, "INSTRUMENT_MODE_ID", "X9", "not a JIRAM imager mode")


def test_mode_and_lines_disagree(sim, truth, tmp_path):
    src = _first(sim, "RDR", "I2", truth)
    label = _copy_product(src, tmp_path)
    _edit(label, r"^INSTRUMENT_MODE_ID .*?\r\n", 'INSTRUMENT_MODE_ID = "I1"\r\n')
    with pytest.raises(SizeMismatch) as e:
        read_jiram_product(label)
    _assert_names(e.value, src.stem, "128 lines", "mode I1 needs 256")
    # no mode and nothing that tells M from L in a 128-line frame
    _edit(label, r"^INSTRUMENT_MODE_ID .*?\r\n", "")
    with pytest.raises(UnknownMode) as e:
        read_jiram_product(label)
    _assert_names(e.value, src.stem, "INSTRUMENT_MODE_ID is missing")


def test_missing_label_and_volume(tmp_path):
    with pytest.raises(ProductError, match=r"^NOPE.LBL: label not found"):
        read_jiram_product(tmp_path / "NOPE.LBL")
    with pytest.raises(ProductError, match=r"^JNOJIR_2099: volume not found"):
        read_index(tmp_path / "JNOJIR_2099")
    assert issubclass(pds3.UnknownMode, ProductError)
