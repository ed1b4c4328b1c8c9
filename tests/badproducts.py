"""A corpus of bad JIRAM products added to a copy of a clean simulated archive.

:func:`build_corpus` copies a clean archive and its kernel tree, then ADDS
bad products beside the good ones (which stay untouched): labels edited as
text from the simulator's real-layout labels (CR-LF, 78-column padding),
images edited as bytes, INDEX.TAB rows written in the table's own fixed
widths, kernels truncated under new names in the kernel tree. Each added
product gets a new product id (the good id with version ``_Vnn``, nn >= 50,
so it never shares a frame with a good product), except the RDR that breaks
an EDR-alone frame (it reuses the id of the RDR the clean archive lacks).

Every kind says what quarantine record it must produce: the record's name,
how its reason must start, and words the reason must hold (the keyword or
file and the value). Files a confinement bug would read are planted where
the bad paths lead (``<archive>/outside/``, ``<corpus>/outside/``), and
``/etc/passwd`` is named, so that an escape shows up as an open event.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

#: the bytes every planted outside file holds (none may ever reach the store)
PLANTED = b"PLANTED-OUTSIDE-THE-ARCHIVE"


@dataclass(frozen=True)
class Bad:
    """One bad product (or INDEX row) and the quarantine record it must produce."""

    kind: str
    name: str  # quarantine record name (quarantine/ingest/<name>.json); a prefix for "-dup-"
    starts: str  # the reason starts with this (product id, or "<volume> INDEX.TAB")
    words: tuple[str, ...]  # the reason holds each (keyword or file, value)


@dataclass
class Corpus:
    root: Path
    archive: Path
    kernels: Path
    outside: tuple[Path, ...]  # folders no reader may open
    bad: list[Bad] = field(default_factory=list)
    #: the frame whose RDR is broken: its EDR must be calibrated as an EDR
    edr_alone: str = ""


# --- labels as text ------------------------------------------------------------------


class Label:
    """A PDS3 label edited as text, keeping its CR-LF lines."""

    def __init__(self, raw: bytes) -> None:
        self.text = raw.decode("latin-1")

    def bytes(self) -> bytes:
        return self.text.encode("latin-1")

    def value(self, key: str) -> str:
        m = re.search(rf"^\s*{re.escape(key)}\s*=\s*(.*?)\s*$", self.text, flags=re.M)
        assert m, key
        return m.group(1)

    def set(self, key: str, value: str) -> Label:
        """Replace the value of the first ``key = ...`` line (the key must exist)."""
        pat = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)([^\r\n]*?)(\s*)(\r?)$", flags=re.M)
        new, n = pat.subn(lambda m: f"{m.group(1)}{value}{m.group(4)}", self.text, count=1)
        assert n, key
        self.text = new
        return self

    def upsert(self, key: str, value: str, *, after: str) -> Label:
        if re.search(rf"^\s*{re.escape(key)}\s*=", self.text, flags=re.M):
            return self.set(key, value)
        pat = re.compile(rf"^(\s*{re.escape(after)}\s*=[^\r\n]*\r?\n)", flags=re.M)
        self.text, n = pat.subn(lambda m: f"{m.group(1)}{key:<31}= {value}\r\n", self.text,
                                count=1)
        assert n, after
        return self

    def drop(self, key: str) -> Label:
        self.text, n = re.subn(rf"^\s*{re.escape(key)}\s*=[^\n]*\n", "", self.text, count=1,
                               flags=re.M)
        assert n, key
        return self

    def drop_line(self, containing: str) -> Label:
        self.text, n = re.subn(rf"^[^\n]*{re.escape(containing)}[^\n]*\n", "", self.text,
                               count=1, flags=re.M)
        assert n, containing
        return self

    def insert_after(self, key: str, line: str) -> Label:
        pat = re.compile(rf"^(\s*{re.escape(key)}\s*=[^\r\n]*\r?\n)", flags=re.M)
        self.text, n = pat.subn(lambda m: f"{m.group(1)}{line}\r\n", self.text, count=1)
        assert n, key
        return self

    def sub(self, old: str, new: str) -> Label:
        assert old in self.text, old
        self.text = self.text.replace(old, new)
        return self

    def band_present(self, band: str, first: str) -> Label:
        """Set LINE_FIRST_PIXEL of the ``band`` block (GROUP or OBJECT form)."""
        pat = re.compile(rf"(=\s*{band}_BAND_PARAMETERS.*?LINE_FIRST_PIXEL\s*=\s*)"
                         rf"([^\r\n]*?)(\s*\r?\n)", flags=re.S)
        self.text, n = pat.subn(lambda m: f"{m.group(1)}{first}{m.group(3)}", self.text, count=1)
        assert n, band
        return self


# --- the archive ---------------------------------------------------------------------


class Volume:
    """One copied volume: its INDEX rows (fixed width) and DATA folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.id = path.name
        self.tab = path / "INDEX" / "INDEX.TAB"
        self.lbl = path / "INDEX" / "INDEX.LBL"
        self.rows = self.tab.read_bytes().decode("latin-1").split("\r\n")
        self.rows = [r for r in self.rows if r]
        self.keep_rows_count = True

    def row_of(self, pid: str) -> str:
        return next(r for r in self.rows if f'"{pid}"' in r)

    def pids(self) -> list[str]:
        return [re.search(r'"(JIR_IMG_[ER]DR_\w+)"', r).group(1) for r in self.rows]

    def label(self, pid: str) -> Label:
        return Label((self.path / "DATA" / f"{pid}.LBL").read_bytes())

    def image(self, pid: str) -> bytes:
        return (self.path / "DATA" / f"{pid}.IMG").read_bytes()

    def add(self, template_pid: str, new_pid: str, label: Label | bytes | None,
            image: bytes | None, *, row_pid: str | None = None, row_spec: str | None = None,
            position: int | None = None) -> None:
        """Write DATA/<new_pid>.LBL/.IMG and an INDEX row (same widths as the template's)."""
        if label is not None:
            data = label.bytes() if isinstance(label, Label) else label
            (self.path / "DATA" / f"{new_pid}.LBL").write_bytes(data)
        if image is not None:
            (self.path / "DATA" / f"{new_pid}.IMG").write_bytes(image)
        row = self.row_of(template_pid)
        spec = f"DATA/{template_pid}.LBL"
        new_spec = row_spec if row_spec is not None else f"DATA/{new_pid}.LBL"
        row = row.replace(f'"{spec}"', f'"{new_spec:<{len(spec)}}"')
        rpid = row_pid if row_pid is not None else new_pid
        assert len(rpid) == len(template_pid)
        row = row.replace(f'"{template_pid}"', f'"{rpid}"')
        if position is None:
            self.rows.append(row)
        else:
            self.rows.insert(position, row)

    def drop(self, pid: str) -> None:
        """Remove a product and its row (the clean archive's EDR-alone frame)."""
        self.rows.remove(self.row_of(pid))
        for ext in ("LBL", "IMG"):
            (self.path / "DATA" / f"{pid}.{ext}").unlink()

    def write(self) -> None:
        self.tab.write_bytes(("\r\n".join(self.rows) + "\r\n").encode("latin-1"))
        if self.keep_rows_count:
            text = self.lbl.read_bytes().decode("latin-1")
            text = re.sub(r"(^\s*ROWS\s*=\s*)\d+", lambda m: f"{m.group(1)}{len(self.rows)}",
                          text, count=1, flags=re.M)
            text = re.sub(r"(^FILE_RECORDS\s*=\s*)\d+", lambda m: f"{m.group(1)}"
                          f"{len(self.rows)}", text, count=1, flags=re.M)
            self.lbl.write_bytes(text.encode("latin-1"))


def _version(pid: str, n: int) -> str:
    return re.sub(r"_V\d\d$", f"_V{n:02d}", pid)


def make_clean(src_archive: Path, dest: Path) -> tuple[Path, str]:
    """A copy of ``src_archive`` whose third RDR frame has only its EDR: (archive, RDR id)."""
    shutil.copytree(src_archive, dest)
    rdr = Volume(next(dest.glob("JNOJIR_2*")))
    pid = rdr.pids()[2]
    rdr.drop(pid)
    rdr.write()
    return dest, pid


def _mode(label: Label) -> str:
    return label.value("INSTRUMENT_MODE_ID")


def build_corpus(clean_archive: Path, kernels: Path, dest: Path, *, edr_alone_rdr: str
                 ) -> Corpus:
    """Copy ``clean_archive`` and ``kernels`` under ``dest`` and add the bad products."""
    corpus = Corpus(root=dest, archive=dest / "archive", kernels=dest / "kernels",
                    outside=(dest / "archive" / "outside", dest / "outside"),
                    edr_alone=edr_alone_rdr.replace("_RDR_", "_EDR_"))
    shutil.copytree(clean_archive, corpus.archive)
    shutil.copytree(kernels, corpus.kernels)
    for d in corpus.outside:
        d.mkdir(parents=True)
    rdr = Volume(next(corpus.archive.glob("JNOJIR_2*")))
    edr = Volume(next(corpus.archive.glob("JNOJIR_1*")))
    bad = corpus.bad
    pids = rdr.pids()
    t0 = pids[0]  # template RDR (a good product that stays)
    lab0, img0 = rdr.label(t0), rdr.image(t0)
    by_mode: dict[str, str] = {}
    for p in pids:
        by_mode.setdefault(_mode(rdr.label(p)), p)
    n = iter(range(50, 100))

    def new_id(template: str = t0) -> str:
        return _version(template, next(n))

    def fresh(template: str = t0) -> Label:
        return Label(rdr.label(template).bytes())

    def add_label(kind: str, edit, words: tuple[str, ...], *, image: bytes | None = None,
                  template: str = t0, vol: Volume = rdr) -> str:
        pid = new_id(template)
        lab = Label(vol.label(template).bytes()).sub(template, pid)
        edit(lab)
        vol.add(template, pid, lab, vol.image(template) if image is None else image)
        bad.append(Bad(kind, pid, pid, words))
        return pid

    # planted files where bad paths lead (a confinement bug would open them), each marked
    marked_img = PLANTED + img0[len(PLANTED):]
    marked_lab = Label(lab0.bytes()).insert_after("PDS_VERSION_ID", f"/* {PLANTED.decode()} */")
    (corpus.archive / "outside" / "X.IMG").write_bytes(marked_img)
    (dest / "outside" / "X.IMG").write_bytes(marked_img)
    (dest / "outside" / "P98.LBL").write_bytes(marked_lab.bytes())

    start = datetime.fromisoformat(lab0.value("START_TIME"))

    def iso(t: datetime) -> str:
        return t.isoformat(timespec="milliseconds")

    # --- times
    add_label("START_TIME in 1900",
              lambda lb: lb.set("START_TIME", "1900-01-01T00:00:00.000")
              .set("STOP_TIME", "1900-01-01T00:00:00.002"), ("START_TIME", "1900-01-01"))
    add_label("START_TIME after the perijove table's end",
              lambda lb: lb.set("START_TIME", "2035-06-01T00:00:00.000")
              .set("STOP_TIME", "2035-06-01T00:00:00.002"),
              ("START_TIME", "2035-06-01", "perijove table"))
    add_label("START_TIME from another year",
              lambda lb: lb.set("START_TIME", "2019-03-01T12:00:00.000")
              .set("STOP_TIME", "2019-03-01T12:00:00.002"),
              ("START_TIME", "2019-03-01", "orbit", rdr.id))
    before = iso(start - timedelta(seconds=1))
    add_label("STOP_TIME before START_TIME", lambda lb: lb.set("STOP_TIME", before),
              ("STOP_TIME", before, "precedes START_TIME"))
    # a time Juno's CK does not cover (10 s after a frame: the CK holds exposures +-0.5 s)
    shifted = iso(start + timedelta(seconds=10))
    add_label("time not covered by the CK",
              lambda lb: lb.set("START_TIME", shifted)
              .set("STOP_TIME", iso(start + timedelta(seconds=10.002))),
              ("START_TIME", shifted, "not covered by CK", "JUNO_SPACECRAFT"))

    # --- ^IMAGE and paths
    add_label("^IMAGE = /etc/passwd", lambda lb: lb.set("^IMAGE", '"/etc/passwd"'),
              ("^IMAGE", "/etc/passwd"))
    add_label("^IMAGE = ../../outside/X.IMG",
              lambda lb: lb.set("^IMAGE", '"../../outside/X.IMG"'),
              ("^IMAGE", "../../outside/X.IMG"))
    add_label("^IMAGE = ../../../outside/X.IMG (outside the archive root)",
              lambda lb: lb.set("^IMAGE", '"../../../outside/X.IMG"'),
              ("^IMAGE", "../../../outside/X.IMG"))
    add_label('^IMAGE = ""', lambda lb: lb.set("^IMAGE", '""'), ("^IMAGE", "empty"))
    add_label("label without ^IMAGE", lambda lb: lb.drop("^IMAGE"), ("^IMAGE", "no"))
    pid = new_id()
    rdr.add(t0, pid, fresh().sub(t0, pid), None)
    bad.append(Bad("missing image file", pid, pid, ("^IMAGE", f"{pid}.IMG", "not beside")))
    pid = new_id()
    rdr.add(t0, pid, fresh().sub(t0, pid), None)
    os.symlink("/etc/passwd", rdr.path / "DATA" / f"{pid}.IMG")
    bad.append(Bad("image file is a link to /etc/passwd", pid, pid,
                   ("^IMAGE", "link", "/etc/passwd")))
    pid = new_id()
    (dest / "outside" / "evil.LBL").write_bytes(
        fresh().sub(t0, pid).insert_after("PDS_VERSION_ID", f"/* {PLANTED.decode()} */").bytes())
    os.symlink(dest / "outside" / "evil.LBL", rdr.path / "DATA" / f"{pid}.LBL")
    rdr.add(t0, pid, None, img0)
    bad.append(Bad("label file is a link out of the archive", pid, pid,
                   ("label", "link", "outside/evil.LBL")))

    # --- INDEX rows
    pid = new_id()
    rdr.add(t0, pid, None, None, row_spec="../../outside/P98.LBL")
    bad.append(Bad("INDEX FILE_SPECIFICATION_NAME ../../outside/P98.LBL", pid,
                   f"{rdr.id} INDEX.TAB row {len(rdr.rows)}",
                   ("FILE_SPECIFICATION_NAME", "../../outside/P98.LBL", pid)))
    pid = new_id()
    slash = "JIR/" + pid[4:]
    rdr.add(t0, pid, fresh().sub(t0, pid), img0, row_pid=slash)
    bad.append(Bad('INDEX PRODUCT_ID with "/"', f"{rdr.id}-row{len(rdr.rows):05d}",
                   f"{rdr.id} INDEX.TAB row {len(rdr.rows)}", ("PRODUCT_ID", slash)))
    # a second label reusing a good product's PRODUCT_ID, listed under a new id ...
    pid = new_id()
    rdr.add(t0, pid, fresh(), img0)  # the label still says PRODUCT_ID = t0
    bad.append(Bad("label reusing a good PRODUCT_ID", pid, pid, ("PRODUCT_ID", t0, pid)))
    # ... and a duplicate INDEX row (the good product's id again, another file)
    pid = new_id()
    rdr.add(t0, pid, fresh(), img0, row_pid=t0)
    bad.append(Bad("duplicate INDEX row (PRODUCT_ID of a good product)", f"{t0}-dup-", t0,
                   ("duplicate PRODUCT_ID", f"DATA/{pid}.LBL", "is kept")))
    # one bad row among the EDR volume's good rows, and a ROWS count that then differs
    e0 = edr.pids()[0]
    middle = len(edr.rows) // 2
    edr.rows.insert(middle, f'"{edr.id}","DATA/JIR_IMG_EDR_GARBLED')
    edr.keep_rows_count = False
    declared = len(edr.rows) - 1  # INDEX.LBL keeps the clean count
    bad.append(Bad("bad INDEX row among good ones", f"{edr.id}-row{middle + 1:05d}",
                   f"{edr.id} INDEX.TAB row {middle + 1}", ("shorter than its columns",)))

    # --- label keywords
    add_label("unknown INSTRUMENT_MODE_ID", lambda lb: lb.set("INSTRUMENT_MODE_ID", "SCI_I9_S1"),
              ("INSTRUMENT_MODE_ID", "SCI_I9_S1"))
    i2 = by_mode.get("SCI_I2_S1") or by_mode.get("SCI_I3_S1")
    assert i2, f"the corpus needs an I2 or I3 frame; modes: {sorted(by_mode)}"
    absent = "L" if _mode(rdr.label(i2)) == "SCI_I2_S1" else "M"
    add_label("band blocks inconsistent with the mode", lambda lb: lb.band_present(absent, "2"),
              ("INSTRUMENT_MODE_ID", "band blocks", absent), template=i2)
    add_label("LINES not matching the mode",
              lambda lb: lb.set("LINES", "256").set("FILE_RECORDS", "256"),
              ("LINES 256", "INSTRUMENT_MODE_ID"), template=i2,
              image=rdr.image(i2) * 2)
    add_label("unknown UNIT", lambda lb: lb.set("UNIT", '"K"'), ("UNIT", "'K'"))
    add_label("EXPOSURE_DURATION zero",
              lambda lb: lb.upsert("EXPOSURE_DURATION", "0 <second>", after="TARGET_NAME"),
              ("EXPOSURE_DURATION 0 <second>",))
    add_label("EXPOSURE_DURATION negative",
              lambda lb: lb.upsert("EXPOSURE_DURATION", "-0.002 <second>", after="TARGET_NAME"),
              ("EXPOSURE_DURATION -0.002 <second>",))
    add_label("TARGET_NAME with a NUL byte", lambda lb: lb.set("TARGET_NAME", '"I\x00O"'),
              ("TARGET_NAME", "\\x00"))
    add_label("TARGET_NAME with a 0xFF byte", lambda lb: lb.set("TARGET_NAME", '"I\xffO"'),
              ("TARGET_NAME", "\\xff"))
    add_label("TARGET_NAME with an unquoted NUL byte (label does not parse)",
              lambda lb: lb.set("TARGET_NAME", "I\x00O"), ("TARGET_NAME", "0x00", "parse"))
    add_label("label that does not parse",
              lambda lb: lb.insert_after("PRODUCT_TYPE", "END_OBJECT = NOTHING_OPEN"),
              ("does not parse", "END_OBJECT"))
    pid = new_id()
    rdr.add(t0, pid, b"", img0)
    bad.append(Bad("empty label file", pid, pid, (f"{pid}.LBL", "label is empty")))

    # --- images
    add_label("truncated image", lambda lb: None, (".IMG", "needs"), image=img0[:1000])
    add_label("image longer than the label says", lambda lb: None, (".IMG", "bytes more"),
              image=img0 + bytes(4096))
    pix = np.frombuffer(img0, dtype="<f4").copy()
    for kind, value, frac, word in (("NaN RDR image", np.nan, 0.05, "nan"),
                                    ("inf RDR image", np.inf, 1.0, "inf"),
                                    ("3e38 RDR image", 3e38, 0.10, "3e+38")):
        img = pix.copy()
        img[: int(frac * img.size)] = value
        add_label(kind, lambda lb: None, (".IMG", word, "more than 1%"),
                  image=img.astype("<f4").tobytes())
    e_img = np.frombuffer(edr.image(e0), dtype="<i2").copy()
    for kind, value in (("EDR DN 32767", 32767), ("EDR DN -32768", -32768)):
        img = e_img.copy()
        img[: img.size // 20] = value
        add_label(kind, lambda lb: None, ("DN outside 0..16383", str(value), "more than 1%"),
                  image=img.astype("<i2").tobytes(), template=e0, vol=edr)

    # --- kernels
    ck = next((corpus.kernels / "ck").glob("*.bc"))
    spk = next(p for p in (corpus.kernels / "spk").glob("*.bsp") if "_pj" in p.name)
    ck_data, spk_data = ck.read_bytes(), spk.read_bytes()
    ck_trunc = ck.with_name(ck.stem + "_trunc.bc")
    ck_trunc.write_bytes(ck_data[: (len(ck_data) // 2 // 1024) * 1024])
    spk_trunc = spk.with_name(spk.stem + "_trunc.bsp")
    spk_trunc.write_bytes(spk_data[: len(spk_data) // 2 + 100])
    not_daf = ck.with_name(ck.stem + "_text.bc")
    not_daf.write_bytes(b"KPL/CK\nnot a DAF file\n")
    add_label("label naming a truncated CK", lambda lb: lb.sub(f'"{ck.name}"',
                                                               f'"{ck_trunc.name}"'),
              ("SPICE_FILE_NAME", ck_trunc.name, "truncated"))
    add_label("label naming a truncated SPK", lambda lb: lb.sub(f'"{spk.name}"',
                                                                f'"{spk_trunc.name}"'),
              ("SPICE_FILE_NAME", spk_trunc.name, "truncated"))
    add_label("label naming a CK that is not a DAF", lambda lb: lb.sub(f'"{ck.name}"',
                                                                       f'"{not_daf.name}"'),
              ("SPICE_FILE_NAME", not_daf.name, "DAF"))
    missing = ck.stem[:-3] + "v99.bc"
    add_label("kernel named in SPICE_FILE_NAME that does not exist",
              lambda lb: lb.sub(f'"{ck.name}"', f'"{missing}"'),
              ("SPICE_FILE_NAME", missing, "not found"))
    (dest / "outside" / "evil.bc").write_bytes(ck_data[:8] + PLANTED + ck_data[8 + len(PLANTED):])
    add_label("SPICE_FILE_NAME with a path out of the kernel tree",
              lambda lb: lb.sub(f'"{ck.name}"', '"../../outside/evil.bc"'),
              ("SPICE_FILE_NAME", "evil.bc", "not found"))
    (corpus.kernels / "mk").mkdir(exist_ok=True)
    (corpus.kernels / "mk" / "juno_pj060.tm").write_text(
        "KPL/MK\n\\begindata\nKERNELS_TO_LOAD = ( '/etc/passwd' )\n\\begintext\n")
    add_label("SPICE_FILE_NAME naming a meta-kernel (it would load other files)",
              lambda lb: lb.sub(f'"{ck.name}"', f'"{ck.name}",\r\n"juno_pj060.tm"'),
              ("SPICE_FILE_NAME", "juno_pj060.tm", "meta-kernel"))
    add_label("SPKs that hold no Juno state",
              lambda lb: lb.drop_line(f'"{spk.name}",'),
              ("not covered by SPK", "JUNO (-61)"))

    # --- an EDR standing alone: its frame's RDR (the id the clean archive lacks) is broken
    pid = edr_alone_rdr
    lab = Label(rdr.label(t0).bytes()).sub(t0, pid)
    rdr.add(t0, pid, lab, img0[: len(img0) // 3])
    bad.append(Bad("RDR of an EDR-alone frame, broken", pid, pid, (".IMG", "needs")))

    rdr.write()
    edr.write()
    bad.append(Bad("INDEX ROWS differs from the table", f"{edr.id}-index", f"{edr.id} INDEX.TAB",
                   ("ROWS", str(declared), str(len(edr.rows)))))
    return corpus


# --- open events -----------------------------------------------------------------------

_RECORDING: list[list[str]] = []
_HOOKED = False


def _audit(event: str, args: tuple) -> None:
    if _RECORDING and event in ("open", "os.listdir", "os.scandir") and args:
        path = args[0]
        if isinstance(path, str | bytes | os.PathLike):
            _RECORDING[-1].append(os.fsdecode(path))


@contextlib.contextmanager
def record_opens():
    """Paths opened (or listed) by this process meanwhile (``sys.addaudithook``: the
    ``open``, ``os.listdir`` and ``os.scandir`` events; an audit hook cannot be removed,
    so one hook records only while a ``with record_opens()`` block runs)."""
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True
    opened: list[str] = []
    _RECORDING.append(opened)
    try:
        yield opened
    finally:
        _RECORDING.remove(opened)


def escapes(opened: list[str], corpus: Corpus, *roots: Path, test_base: Path) -> list[str]:
    """Opened paths outside the allowed places (each checked as given and link-resolved).

    Allowed: the corpus archive and kernel tree, ``roots`` (store, cache ...), the project
    and the Python installation, /proc /dev /sys, the time-zone database, and temp folders
    other than ``test_base`` (the tests' own tmp tree, where the outside folders are).
    Never allowed: anything under the corpus's ``outside`` folders, any ``passwd``.
    """
    import iovolc

    allowed = [corpus.archive, corpus.kernels, *roots,
               Path(iovolc.__file__).resolve().parent.parent,  # the project (editable install)
               Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
               *(Path(p) for p in sysconfig.get_paths().values()),
               Path("/proc"), Path("/dev"), Path("/sys"),
               Path("/usr/share/zoneinfo")]  # the system time-zone database (zoneinfo)
    allowed = [Path(os.path.realpath(p)) for p in allowed]
    outside = [Path(os.path.realpath(p)) for p in corpus.outside]
    base = Path(os.path.realpath(test_base))
    tmp = Path(os.path.realpath(tempfile.gettempdir()))

    def under(q: Path, r: Path) -> bool:
        return q == r or r in q.parents

    bad = []
    for p in opened:
        real = Path(os.path.realpath(p))
        for q in (Path(os.path.normpath(p)) if os.path.isabs(p) else real, real):
            ok = any(under(q, r) for r in allowed) or (under(q, tmp) and not under(q, base))
            if not ok or "passwd" in q.name or any(under(q, o) for o in outside):
                bad.append(f"{p} -> {real}")
    return sorted(set(bad))
