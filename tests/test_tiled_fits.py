"""iovolc's own FITS writer/reader (iovolc.tiled_fits) against astropy, the reference.

Files written here must be standard FITS that astropy reads to the same
arrays and header values (and finds nothing to fix); files astropy writes in
the same layout must be read to the same arrays; anything else must fall back
to astropy.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from astropy.io import fits

from iovolc import tiled_fits as tf
from iovolc.pipeline import FrameResult
from iovolc.products import fits_kernels, fits_to_frame, frame_to_fits


def _frame(rng, n_lines=256, summary_extra=None) -> FrameResult:
    rad = rng.normal(1e-3, 2e-4, (n_lines, 432)).astype(np.float32)
    rad[0, :5] = [0.0, -0.0, np.float32(1e-38), np.float32(3.4e38), np.float32(1.4e-45)]
    z = np.zeros(rad.shape, bool)
    sat, bad, hits = z.copy(), z.copy(), z.copy()
    sat[rng.random(rad.shape) < 0.01] = True
    bad[rng.random(rad.shape) < 0.01] = True
    hits[rng.random(rad.shape) < 0.02] = True
    summary = {"perijove": 57, "et_mid": 757226233.6129489, "mode": "SCI_I1_S1", "bands": "LM",
               "exposure_s": 0.004, "start_time_utc": "2023-12-30T08:00:00.123",
               "product_type": "RDR", "limb_ok": True, "limb_along_rad": -0.00039122386906722,
               "limb_cross_rad": float("nan"), "note": "it's \"quoted\"", **(summary_extra or {})}
    return FrameResult("JIR_IMG_RDR_2023364T080207_V01", rad, sat, bad, hits, summary)


@pytest.mark.parametrize("n_lines", [128, 256, 100])
def test_astropy_reads_what_we_write(n_lines):
    fr = _frame(np.random.default_rng(n_lines), n_lines)
    kernels = ["juno_v12.tf", "juno_jiram_v03.ti", "naif0012.tls", "o'dd name.bsp"]
    blob = frame_to_fits(fr, kernels=kernels, config_hash="abcdef0123456789xyz")
    assert len(blob) % 2880 == 0 and blob == frame_to_fits(fr, kernels=kernels,
                                                          config_hash="abcdef0123456789xyz")
    with fits.open(io.BytesIO(blob)) as h:
        h.verify("exception")  # nothing astropy would fix or warn about
        hdr = h[0].header
        assert hdr["PRODUCT"] == fr.product_id and hdr["FORMAT"] == "iovolc-calibrated-4"
        assert hdr["ETMID"] == fr.summary["et_mid"] and hdr["EXPOSURE"] == 0.004
        assert hdr["LIMBALNG"] == fr.summary["limb_along_rad"] and hdr["LIMBCRSS"] == 0.0
        assert hdr["LIMBOK"] is True and hdr["PERIJOVE"] == 57 and hdr["CONFIGH"] == \
            "abcdef0123456789"
        assert [hdr[f"KERN{k:03d}"] for k in range(1, 5)] == kernels
        rad = np.asarray(h["RADIANCE"].data)
        assert rad.dtype.kind == "f" and rad.dtype.itemsize == 4
        assert np.array_equal(rad.astype(np.float32).view(np.uint32), fr.radiance.view(np.uint32))
        mask = np.asarray(h["MASK"].data)
        assert np.array_equal(mask & 1 > 0, fr.saturated) and np.array_equal(mask & 4 > 0,
                                                                              fr.hits)
        assert h["RADIANCE"].header["BUNIT"] == "W/(m**2*sr)"
        summary = json.loads(h["SUMMARY"].data["SUMMARY"][0])
        assert summary["note"] == fr.summary["note"] and summary["limb_cross_rad"] is None
    back = fits_to_frame(blob)
    assert back.radiance.dtype == np.float32
    assert np.array_equal(back.radiance.view(np.uint32), fr.radiance.view(np.uint32))
    for k in ("saturated", "bad", "hits"):
        assert np.array_equal(getattr(back, k), getattr(fr, k))
    assert fits_kernels(blob) == kernels and back.product_id == fr.product_id
    assert np.isnan(back.summary["limb_cross_rad"])


def _astropy_format3(fr: FrameResult, **compression) -> bytes:
    """The layout as astropy writes it (format 3 was written so: one tile per row)."""
    hdr = fits.Header()
    hdr["FORMAT"] = "iovolc-calibrated-3"
    hdr["PRODUCT"] = fr.product_id
    hdr["KERN001"] = "naif0012.tls"
    mask = (fr.saturated * 1 + fr.bad * 2 + fr.hits * 4).astype(np.uint8)
    js = json.dumps({"perijove": 57, "limb_along_rad": None})
    buf = io.BytesIO()
    fits.HDUList([
        fits.PrimaryHDU(header=hdr),
        fits.CompImageHDU(fr.radiance, name="RADIANCE", **compression),
        fits.CompImageHDU(mask, name="MASK", **{**compression, "quantize_level": 0.0}),
        fits.BinTableHDU.from_columns([fits.Column(name="SUMMARY", format=f"{len(js)}A",
                                                   array=np.array([js]))], name="SUMMARY"),
    ]).writeto(buf)
    return buf.getvalue()


@pytest.mark.parametrize("compression, ours", [
    ({"compression_type": "GZIP_1", "quantize_level": 0.0}, True),  # format 3 as written
    ({"compression_type": "GZIP_1", "quantize_level": 0.0, "tile_shape": (16, 432)}, True),
    ({"compression_type": "RICE_1"}, False),  # quantised: not ours, astropy reads it
    ({"compression_type": "GZIP_2", "quantize_level": 0.0}, False),
])
def test_we_read_what_astropy_writes(compression, ours):
    fr = _frame(np.random.default_rng(3), 128)
    blob = _astropy_format3(fr, **compression)
    assert (tf.read_hdus(blob) is not None) == ours
    back = fits_to_frame(blob)
    with fits.open(io.BytesIO(blob)) as h:
        ref = np.asarray(h["RADIANCE"].data, dtype=np.float32)
    assert np.array_equal(back.radiance.view(np.uint32), ref.view(np.uint32))
    assert np.array_equal(back.hits, fr.hits) and np.array_equal(back.bad, fr.bad)
    assert back.product_id == fr.product_id and np.isnan(back.summary["limb_along_rad"])
    assert fits_kernels(blob) == ["naif0012.tls"]


def test_cards_are_standard_and_round_trip_through_astropy():
    vals = [("A", 621509233.6129489), ("B", -1e-300), ("C", 5e-324), ("D", 1.0),
            ("E", -0.00039122386906722), ("F", 123456789.12345679), ("G", "x'y"), ("H", ""),
            ("I", False), ("J", -7), ("K", 1.7976931348623157e308)]
    blob = tf.primary_hdu([tf.card(k, v, "a comment") for k, v in vals])
    with fits.open(io.BytesIO(blob)) as h:
        h.verify("exception")
        for k, v in vals:
            got = h[0].header[k]
            assert got == v or (isinstance(v, float) and got == pytest.approx(v, rel=1e-12))
    assert tf.read_primary_header(blob)["G"] == "x'y"
    for bad in ([("lower", 1)], [("X", float("nan"))], [("X", "é")], [("X", "a\nb")]):
        with pytest.raises(ValueError):
            tf.card(*bad[0])


def test_a_damaged_file_is_refused_not_misread():
    blob = frame_to_fits(_frame(np.random.default_rng(1), 128), kernels=["a.tls"])
    assert tf.read_hdus(blob[:-3000]) is None  # truncated: the data do not fit
    damaged = bytearray(blob)
    at = blob.index(b"\x1f\x8b")  # the first tile
    damaged[at + 20:at + 40] = b"\xff" * 20
    with pytest.raises(Exception):  # noqa: B017 - the codec's or astropy's error, never wrong data
        fits_to_frame(bytes(damaged))


def _ours_with(extra: list[bytes], image=None) -> bytes:
    image = np.array([[1.0, 0.0, 0.0]], np.float32) if image is None else image
    return tf.primary_hdu([]) + tf.compressed_image_hdu(image, name="X", cards=extra)


@pytest.mark.parametrize("extra", [[tf.card("ZBLANK", 0)], [tf.card("BLANK", 0)],
                                   [tf.card("BSCALE", 2.0)], [tf.card("BZERO", 1.0)],
                                   [tf.card("ZQUANTIZ", "NO_DITHER")]])
def test_keywords_that_change_pixels_on_reading_fall_back_to_astropy(extra):
    """Scaling, blank values or quantisation keywords: never read here (astropy would
    apply them, so a fast read could return other pixels than astropy's)."""
    assert tf.read_hdus(_ours_with(extra)) is None
    assert tf.read_hdus(_ours_with([])) is not None


def test_signed_bytes_written_by_astropy_fall_back():
    """int8 is stored as ZBITPIX 8 with BZERO -128: the pixels astropy returns."""
    buf = io.BytesIO()
    data = np.array([[-64, -63, -62, -61]], np.int8)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, compression_type="GZIP_1")]
                 ).writeto(buf)
    assert tf.read_hdus(buf.getvalue()) is None


def test_truncated_or_inconsistent_files_are_not_read_here():
    blob = frame_to_fits(_frame(np.random.default_rng(2), 128), kernels=["a.tls"])
    hdus = tf.read_hdus(blob)
    assert hdus is not None and len(hdus) == 4
    starts = [i for i in range(0, len(blob), 2880) if blob[i:i + 8] == b"XTENSION"]
    for cut in (starts[-1], starts[-1] + 1600, starts[1] + 2880 - 80):
        part = blob[:cut]  # at an HDU boundary, inside a header, inside the data
        assert tf.read_hdus(part) is None or len(tf.read_hdus(part)) < 4
        with pytest.raises(Exception):  # noqa: B017 - astropy's error; never a frame
            fits_to_frame(part)
    # a tile descriptor pointing past the heap
    h, start = tf._read_header(blob, starts[0])
    bad = bytearray(blob)
    bad[start:start + 4] = (10 ** 6).to_bytes(4, "big")
    assert tf._image(bytes(bad), h, start) is None


def test_nan_pixels_and_every_header_value_read_like_astropy():
    fr = _frame(np.random.default_rng(4), 128)
    fr.radiance[5, 7] = np.nan
    fr.radiance[6, 8] = np.float32(np.inf)
    blob = frame_to_fits(fr, kernels=["k1.bsp", "k2.bc"], config_hash="c")
    back = fits_to_frame(blob)
    assert np.array_equal(back.radiance.view(np.uint32), fr.radiance.view(np.uint32))
    ours = tf.read_hdus(blob)
    with fits.open(io.BytesIO(blob), disable_image_compression=True) as h:
        for mine, theirs in zip(ours, h, strict=True):
            for k, v in theirs.header.items():
                if k in ("COMMENT", "HISTORY", ""):
                    continue
                assert mine.header[k] == v, (k, mine.header[k], v)


def test_a_retry_finds_the_same_frame_in_another_format():
    """A FITS left by an interrupted run of the previous writer (astropy, format 3)
    holds the same frame: the retry keeps it (no conflict). Other pixels, another
    summary, other kernels or another configuration under that key: a conflict."""
    from iovolc.products import same_frame

    def _same_frame(r, **kw):
        return lambda stored: same_frame(stored, r, **kw)

    fr = _frame(np.random.default_rng(5), 128)
    kern = ["naif0012.tls", "juno_v12.tf"]
    with fits.open(io.BytesIO(frame_to_fits(fr, kernels=kern, config_hash="cfg1"))) as h:
        hdr = h[0].header.copy()
        hdr["FORMAT"] = "iovolc-calibrated-3"
        comp = {"compression_type": "GZIP_1", "quantize_level": 0.0}
        buf = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(header=hdr),
                      fits.CompImageHDU(np.array(h["RADIANCE"].data), name="RADIANCE", **comp),
                      fits.CompImageHDU(np.array(h["MASK"].data), name="MASK", **comp),
                      fits.BinTableHDU(h["SUMMARY"].data, name="SUMMARY")]).writeto(buf)
    old = buf.getvalue()
    assert _same_frame(fr, kernels=kern, config_hash="cfg1")(old)
    assert not _same_frame(fr, kernels=kern, config_hash="cfg2")(old)
    assert not _same_frame(fr, kernels=kern[:1], config_hash="cfg1")(old)
    moved = FrameResult(fr.product_id, fr.radiance, fr.saturated, fr.bad, fr.hits,
                        {**fr.summary, "limb_along_rad": 0.25})
    assert not _same_frame(moved, kernels=kern, config_hash="cfg1")(old)
    other = _frame(np.random.default_rng(6), 128)
    assert not _same_frame(other, kernels=kern, config_hash="cfg1")(old)
    assert not _same_frame(fr, kernels=kern, config_hash="cfg1")(b"not fits")


def test_isal_and_zlib_tiles_are_the_same_frame(monkeypatch):
    """The tiles deflated by ISA-L (the writer's codec where installed) and by zlib
    inflate to the same pixels with either codec and with astropy, and each file is
    "the same frame" as the other's (a store written before stop 23 stays valid)."""
    import zlib

    pytest.importorskip("isal")
    from iovolc.products import same_frame

    r = _frame(np.random.default_rng(23), 128)
    assert tf.CODEC is not zlib
    by_isal = frame_to_fits(r, kernels=["a.tls"], config_hash="abc")
    monkeypatch.setattr(tf, "CODEC", zlib)
    by_zlib = frame_to_fits(r, kernels=["a.tls"], config_hash="abc")
    assert by_isal != by_zlib  # other bytes ...
    for codec in (zlib, tf._fast_zlib):
        monkeypatch.setattr(tf, "CODEC", codec)
        for blob in (by_isal, by_zlib):  # ... the same frame, read by either codec
            back = fits_to_frame(blob)
            assert np.array_equal(np.asarray(back.radiance, np.float32).view(np.uint32),
                                  np.asarray(r.radiance, np.float32).view(np.uint32))
            assert same_frame(blob, r, kernels=["a.tls"], config_hash="abc")
    with fits.open(io.BytesIO(by_isal)) as hdul:  # astropy (cfitsio's inflate) agrees
        assert np.array_equal(hdul["RADIANCE"].data, np.asarray(r.radiance, np.float32))


@pytest.mark.parametrize("codec", ["zlib", "isal"])
def test_a_tile_cut_short_or_followed_by_bytes_is_not_read(codec, monkeypatch):
    """Under either codec, a tile that is not exactly one whole gzip member (cut short,
    or with bytes after it inside its heap slot) makes the reader hand the file to
    astropy (``_image`` gives None) rather than return pixels."""
    import zlib

    if codec == "isal":
        pytest.importorskip("isal")
        monkeypatch.setattr(tf, "CODEC", tf._fast_zlib)
    else:
        monkeypatch.setattr(tf, "CODEC", zlib)
    img = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    member = tf.CODEC.compressobj(1, tf.CODEC.DEFLATED, 31)
    tile = member.compress(img.astype(">f4").tobytes()) + member.flush()
    hdr = {"XTENSION": "BINTABLE", "GCOUNT": 1, "TFIELDS": 1, "TTYPE1": "COMPRESSED_DATA",
           "ZCMPTYPE": "GZIP_1", "ZNAXIS": 2, "ZBITPIX": -32, "ZNAXIS1": 4, "ZTILE1": 4,
           "ZNAXIS2": 3, "ZTILE2": 3, "NAXIS2": 1, "NAXIS1": 8, "TFORM1": "1PB(100)"}

    def image(payload: bytes):
        table = np.array([[len(payload), 0]], dtype=">i4").tobytes()
        return tf._image(table + payload, dict(hdr, PCOUNT=len(payload)), 0)

    assert np.array_equal(image(tile), img)  # the whole member reads back
    assert image(tile[:-5]) is None  # cut short
    assert image(tile + b"\0\0\0") is None  # bytes after the member



def test_header_text_is_refused_exactly_outside_printable_ascii():
    """Every code point alone, and inside a text: refused unless 0x20-0x7E."""
    from iovolc.tiled_fits import _printable

    for cp in range(0x110000):
        c = chr(cp)
        for text in (c, f"ab{c}cd"):
            ok = 32 <= cp <= 126
            try:
                _printable(text)
                assert ok, hex(cp)
            except ValueError:
                assert not ok, hex(cp)
    _printable("")
