"""SPICE kernel sets built from the kernels a product's label lists.

JIRAM labels name the kernels their geometry used (``SPICE_FILE_NAME``,
bare names or ``spk/x.bsp`` / ``$KERNELS/ck/x.bc`` paths). Here each name is
found in a kernel tree laid out like NAIF's (``<kernel_root>/<subdir>/<name>``,
subdir by extension: :func:`iovolc.spice.kernel_subdir`), copied into a
local cache (atomically: temp file + ``os.replace``, so concurrent processes
never see a partial kernel), checked (non-empty; text kernels start with
``KPL/``, binary DAF kernels with ``DAF/`` or ``NAIF/DAF``; the size equals
the remote size when that is known) and returned in the label's order.
:func:`kernel_set_for` turns them into an :class:`iovolc.spice.KernelSet`
(loaded LSK, PCK, FK, IK, SCLK, SPK, CK).

``kernel_root`` is a local path or any fsspec URL (``file://``, ``s3://``,
``https://naif.jpl.nasa.gov/pub/naif/JUNO/kernels`` ...). Names are looked
up under the root only: an entry with ``..`` inside is refused, and on a
local file system a link leading out of the kernel root is not followed.

**Verified by SPICE before use** (:class:`KernelVerifier`): a header check
cannot see a truncated SPK or CK (CSPICE loads one happily and fails later,
mid-geometry). So each kernel is loaded by SPICE itself in a check process
of its own, never in a worker's kernel pool (:mod:`iovolc.spicecheck`: one
long-lived process per worker, replaced if a kernel kills it): ``furnsh``;
for DAF kernels the file record's free address and every
segment's end address must lie inside the file, SPK segments are evaluated
at their ends and middle, and ``spkcov``/``ckcov`` give the coverage. And a
product's time must be covered by the kernels it names: the CKs for
JUNO_SPACECRAFT (CK id -61000, converted to TDB with the product's own SCLK
and LSK), the SPKs for Juno (-61) and Io (501). Results are cached per
kernel content (sha256) under ``<cache_dir>/kernel-checks/``, so a kernel
is verified once, and one run of the check process verifies everything a
batch needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import fsspec

from iovolc.spice import KernelSet, kernel_subdir
from iovolc.spicecheck import run_checks as _run_checks

__all__ = [
    "MissingKernelError",
    "CorruptKernelError",
    "KernelCoverageError",
    "KernelVerifier",
    "KernelHashes",
    "file_sha256",
    "resolve_kernels",
    "kernel_set_for",
    "kernel_manifest",
    "check_kernel_file",
    "TEXT_KERNEL_EXTENSIONS",
    "BINARY_KERNEL_EXTENSIONS",
]

TEXT_KERNEL_EXTENSIONS = frozenset({".tls", ".tpc", ".tf", ".ti", ".tsc", ".tm"})
BINARY_KERNEL_EXTENSIONS = frozenset({".bsp", ".bc", ".bpc"})
_BINARY_MAGIC = (b"DAF/", b"NAIF/DAF")
_NAIF_JUNO = "https://naif.jpl.nasa.gov/pub/naif/JUNO/kernels"
_NAIF_GENERIC = "https://naif.jpl.nasa.gov/pub/naif/generic_kernels"
_CHUNK_BYTES = 1 << 20


class MissingKernelError(FileNotFoundError):
    """A kernel named by a label is in neither the kernel tree nor the cache."""

    def __init__(self, kernel_name: str, urls: Sequence[str], kernel_root: str) -> None:
        self.kernel_name = kernel_name
        self.urls = tuple(urls)
        self.kernel_root = str(kernel_root)
        try:
            subdir = kernel_subdir(kernel_name)
        except ValueError:
            subdir = "<subdir>"
        generic = subdir == "lsk" or kernel_name.lower().startswith(("pck0", "de4"))
        source = _NAIF_GENERIC if generic else _NAIF_JUNO
        self.hint = (
            f"download it from NAIF's {'generic' if generic else 'JUNO'} kernels "
            f"({source}/{subdir}/) to {self.kernel_root.rstrip('/')}/{subdir}/"
        )
        super().__init__(
            f"SPICE kernel {kernel_name} not found; looked at {', '.join(self.urls)}; {self.hint}"
        )

    def __reduce__(self):
        return (self.__class__, (self.kernel_name, self.urls, self.kernel_root))


class CorruptKernelError(ValueError):
    """A kernel file that is empty, truncated, or not the kind its name says."""

    def __init__(self, kernel_name: str, source: str, reason: str) -> None:
        self.kernel_name = kernel_name
        self.source = str(source)
        self.reason = reason
        super().__init__(f"SPICE kernel {kernel_name} ({self.source}): {reason}")

    def __reduce__(self):
        return (self.__class__, (self.kernel_name, self.source, self.reason))


class KernelCoverageError(ValueError):
    """A product's time that the kernels it names do not cover (or they hold no such data)."""

    def __init__(self, kernel_names: Sequence[str], reason: str) -> None:
        self.kernel_names = tuple(kernel_names)
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self):
        return (self.__class__, (self.kernel_names, self.reason))


# --- names ---------------------------------------------------------------------------


def _split_name(name: str) -> tuple[str, str]:
    """Label entry -> (relative path as given, bare file name).

    ``"$KERNELS/ck/x.bc"`` -> ``("ck/x.bc", "x.bc")``; ``"x.bc"`` -> ``("x.bc", "x.bc")``.
    """
    text = str(name).strip().strip('"').replace("\\", "/")
    parts = [p for p in text.split("/") if p and p != "."]
    while parts and (parts[0].startswith("$") or parts[0] == ".."):
        parts.pop(0)
    if not parts:
        raise ValueError(f"SPICE_FILE_NAME entry {name!r} holds no file name")
    bare = parts[-1]
    if bare == ".." or any(not (32 < ord(c) < 127) for c in bare):
        raise ValueError(f"SPICE_FILE_NAME entry {name!r} is not a kernel file name")
    if ".." in parts or ":" in text:  # never looked up outside the kernel root
        return bare, bare
    return "/".join(parts), bare


def _candidates(root: str, relpath: str, bare: str, subdir: str) -> list[str]:
    """Places to look, best first: NAIF tree, the label's own sub-path, flat root."""
    base = root.rstrip("/")
    out = [f"{base}/{subdir}/{bare}"]
    if relpath != bare:
        out.append(f"{base}/{relpath}")
    out.append(f"{base}/{bare}")
    return list(dict.fromkeys(out))


# --- checks --------------------------------------------------------------------------


def check_kernel_file(
    path: Path, *, name: str | None = None, expected_bytes: int | None = None
) -> None:
    """Raise :class:`CorruptKernelError` unless ``path`` looks like the kernel its name says.

    Non-empty; text kernels start with ``KPL/``; DAF kernels (.bsp .bc .bpc)
    with ``DAF/`` or ``NAIF/DAF``; size equals ``expected_bytes`` when given.
    """
    path = Path(path)
    name = name or path.name
    size = path.stat().st_size
    if size == 0:
        raise CorruptKernelError(name, str(path), "file is empty")
    if expected_bytes is not None and size != expected_bytes:
        raise CorruptKernelError(
            name, str(path), f"file has {size} bytes, the source has {expected_bytes}"
        )
    suffix = Path(name).suffix.lower()
    with path.open("rb") as fh:
        head = fh.read(8)
    if suffix in TEXT_KERNEL_EXTENSIONS and not head.startswith(b"KPL/"):
        raise CorruptKernelError(
            name, str(path), f"text kernel does not start with 'KPL/' (starts {head!r})"
        )
    if suffix in BINARY_KERNEL_EXTENSIONS and not head.startswith(_BINARY_MAGIC):
        raise CorruptKernelError(
            name,
            str(path),
            f"binary kernel does not start with 'DAF/' or 'NAIF/DAF' (starts {head!r}); "
            "a transfer-format or text file?",
        )


def _source_stamp(info: dict | None) -> str:
    """Size and modification time of the source, as the file system reports them."""
    if not info:
        return ""
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or ""
    return f"{info.get('size')}|{mtime}"


def _read_stamp(dest: Path) -> str | None:
    side = dest.with_name(dest.name + ".src")
    return side.read_text() if side.is_file() else None


def replace_atomically(dest: Path, fill, *, mode: str = "wb", suffix: str = ".tmp") -> None:
    """Write ``dest`` through a unique temp file in its folder, then ``os.replace``.

    ``fill(fh)`` writes the content. The temp name is unique per call (``mkstemp``):
    threads of one process fetch concurrently, so a per-process name would race.
    The temp file is removed if anything fails.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            fill(fh)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_stamp(dest: Path, stamp: str) -> None:
    """Write the source stamp beside a cached kernel."""
    replace_atomically(dest.with_name(dest.name + ".src"), lambda fh: fh.write(stamp),
                        mode="w")


def _fetch(fs: fsspec.AbstractFileSystem, src: str, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temp file in the same folder + ``os.replace``."""
    def copy(out) -> None:
        with fs.open(src, "rb") as inp:
            while chunk := inp.read(_CHUNK_BYTES):
                out.write(chunk)

    replace_atomically(dest, copy, suffix=".part")


def _inside_root(fs: fsspec.AbstractFileSystem, path: str, root: str) -> bool:
    """``path`` under ``root`` (normalised); on the local disk also once links are resolved."""
    norm, nroot = posixpath.normpath(path), posixpath.normpath(root)
    if not (norm == nroot or norm.startswith(nroot.rstrip("/") + "/")):
        return False
    proto = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    if "file" in proto or "local" in proto:
        real, real_root = os.path.realpath(path), os.path.realpath(root)
        return real == real_root or real.startswith(real_root.rstrip("/") + os.sep)
    return True


def _remote_info(fs: fsspec.AbstractFileSystem, path: str) -> dict | None:
    try:
        info = fs.info(path)
    except OSError:  # not there, or the source is unreachable: the cache may still do
        return None
    if info.get("type") == "directory":
        return None
    return info


# --- public API ------------------------------------------------------------------------


def resolve_kernels(
    spice_file_names: Iterable[str],
    *,
    kernel_root: str,
    cache_dir: Path,
    fs: fsspec.AbstractFileSystem | None = None,
) -> list[Path]:
    """Local, verified copies of the kernels a label lists, in the label's order.

    Each name is looked for at ``<kernel_root>/<subdir>/<name>``, then at the
    sub-path the label gave (``spk/x.bsp``), then at ``<kernel_root>/<name>``,
    and cached as ``cache_dir/<subdir>/<name>``. A cached file is re-fetched
    when its size differs from the source's or its header is wrong; if the
    source is unreachable a valid cached copy is used. Duplicate names are
    returned once.

    Raises :class:`MissingKernelError` (source and cache both lack it),
    :class:`CorruptKernelError` (the fetched file fails the checks),
    ``ValueError`` (an extension that is not a SPICE kernel's).
    """
    if isinstance(spice_file_names, str):
        spice_file_names = [spice_file_names]
    root = str(kernel_root)
    if fs is None:
        fs, root_path = fsspec.core.url_to_fs(root)
    else:
        root_path = fs._strip_protocol(root)
    # one cache per kernel root: two roots may hold different files of one name
    root_id = hashlib.sha256(fs.unstrip_protocol(root_path).encode()).hexdigest()[:16]
    cache_dir = Path(cache_dir) / f"root-{root_id}"
    out: list[Path] = []
    for name in spice_file_names:
        relpath, bare = _split_name(name)
        subdir = kernel_subdir(bare)
        dest = cache_dir / subdir / bare
        if dest in out:
            continue
        looked: list[str] = []
        src, info = None, None
        for cand_url, cand_path in zip(
            _candidates(root, relpath, bare, subdir),
            _candidates(root_path, relpath, bare, subdir),
            strict=True,
        ):
            looked.append(cand_url)
            if not _inside_root(fs, cand_path, root_path):
                continue
            info = _remote_info(fs, cand_path)
            if info is not None:
                src = cand_path
                break
        remote_size = None if info is None or info.get("size") is None else int(info["size"])
        stamp = _source_stamp(info)
        # the source changed since it was cached: fetched again over it (atomically),
        # never unlinked first -- another worker may be reading, or have just fetched,
        # the same file (a re-run on a re-made downlink quarantined 2 products so)
        cached = dest.is_file()
        stale = cached and bool(stamp) and _read_stamp(dest) not in (None, stamp)
        if cached and not stale:
            try:
                check_kernel_file(dest, name=bare, expected_bytes=remote_size)
            except CorruptKernelError:
                if src is None:
                    raise
            else:
                out.append(dest)
                continue
        if src is None:
            raise MissingKernelError(bare, looked, root)
        _fetch(fs, src, dest)
        try:
            check_kernel_file(dest, name=bare, expected_bytes=remote_size)
        except CorruptKernelError as exc:
            dest.unlink(missing_ok=True)
            raise CorruptKernelError(bare, fs.unstrip_protocol(src), exc.reason) from None
        if stamp:
            _write_stamp(dest, stamp)
        out.append(dest)
    return out


def kernel_set_for(
    product_or_names: Any,
    *,
    kernel_root: str,
    cache_dir: Path,
    extra: Iterable[Path | str] = (),
    fs: fsspec.AbstractFileSystem | None = None,
) -> KernelSet:
    """The :class:`KernelSet` of a product (anything with ``spice_file_names``) or a name list.

    ``extra`` local kernels are added (e.g. a reconstructed CK that the label
    predates); the set is sorted by kind (LSK, PCK, FK, IK, SCLK, SPK, CK).
    """
    names = getattr(product_or_names, "spice_file_names", product_or_names)
    if isinstance(names, str):
        names = [names]
    names = list(names)
    extra_paths = [Path(p) for p in extra]
    if not names and not extra_paths:
        who = getattr(product_or_names, "product_id", "kernel set")
        raise ValueError(f"{who}: no SPICE_FILE_NAME kernels and no extra kernels to load")
    paths = resolve_kernels(names, kernel_root=kernel_root, cache_dir=cache_dir, fs=fs)
    for p in extra_paths:
        if p not in paths:
            paths.append(p)
    return KernelSet.from_paths(paths)


def kernel_manifest(paths: Iterable[Path | str]) -> list[dict]:
    """Provenance of loaded kernels: ``[{"name", "sha256", "bytes"}, ...]`` in order."""
    out = []
    for p in paths:
        p = Path(p)
        digest = hashlib.sha256()
        size = 0
        with p.open("rb") as fh:
            while chunk := fh.read(_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
        out.append({"name": p.name, "sha256": digest.hexdigest(), "bytes": size})
    return out


# --- verification by SPICE, in a check process -----------------------------------------

#: what the pipeline's geometry needs from a product's kernels (NAIF ids, real Juno FK):
#: the CK of the JUNO_SPACECRAFT frame, and the SPK states of Juno and Io
JUNO_SPACECRAFT_CK = -61000
SPK_BODIES = {-61: "JUNO", 501: "IO"}
_CHECK_DIR = "kernel-checks"
_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path | str) -> str:
    """sha256 of a file, remembered per (absolute path, size, mtime) within the process
    (no symlink resolution: another spelling of the same file is hashed once more)."""
    p = Path(path)
    st = p.stat()
    key = (os.path.abspath(p), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with p.open("rb") as fh:
            while chunk := fh.read(_CHUNK_BYTES):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


class KernelHashes(dict):
    """:func:`file_sha256` of each kernel path asked for, taken once while this lives (one
    ingest batch: stop 29, each product's checks stat'ed every kernel of its set some
    thirty times). Keys are :class:`~pathlib.Path`."""

    def __missing__(self, path: Path) -> str:
        self[path] = digest = file_sha256(path)
        return digest


class KernelVerifier:
    """Kernels verified by SPICE in a check process of their own, cached by content (see the module
    docstring); then a product's time checked against the coverage of the kernels it names.

    ``prepare(sets)`` verifies, in one process, every kernel of ``sets`` (lists of local
    kernel paths, one per product) not verified yet and each set's CK coverage in TDB;
    ``check(paths, et, ...)`` then raises :class:`CorruptKernelError` or
    :class:`KernelCoverageError` (pure Python on the cached results; it prepares first if
    needed). ``n_runs`` counts the runs of the check process (batches of jobs),
    ``n_processes`` the check processes started for them (0 when this process's
    check process was already running).
    """

    def __init__(self, cache_dir: Path | str, *, timeout_s: float = 600.0) -> None:
        self.dir = Path(cache_dir) / _CHECK_DIR
        self.timeout_s = timeout_s
        self.n_processes = 0
        self.n_runs = 0
        self._memo: dict[str, dict] = {}

    # cache -----------------------------------------------------------------------
    def _get(self, key: str) -> dict | None:
        if key not in self._memo:
            f = self.dir / f"{key}.json"
            try:
                self._memo[key] = json.loads(f.read_text())
            except (OSError, ValueError):
                return None
        return self._memo[key]

    def _put(self, key: str, res: dict) -> None:
        self._memo[key] = res
        if res.get("transient"):
            return  # a timeout says nothing about the kernel: try again next time
        replace_atomically(self.dir / f"{key}.json", lambda fh: fh.write(json.dumps(res)),
                            mode="w")

    @staticmethod
    def _ck_jobs(paths: Sequence[Path], sha: KernelHashes) -> list[tuple[str, Path, list[Path]]]:
        """(cache key, CK, [LSKs + SCLKs in label order]) for each CK of a kernel set."""
        text = [p for p in paths if p.suffix.lower() in (".tls", ".tsc")]
        tag = "-".join(sha[p][:16] for p in text)
        return [(f"ck-{sha[ck][:32]}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}",
                 ck, text) for ck in paths if ck.suffix.lower() == ".bc"]

    def prepare(self, kernel_sets: Iterable[Sequence[Path | str]], *,
                hashes: KernelHashes | None = None) -> int:
        """Verify what is not cached yet, in one run of the check process; returns the
        jobs run.

        A kernel's failure is a verdict (cached, raised by :meth:`check`); an exception
        from here is the machine's (no process could start ...), not the kernels'.
        """
        sha = KernelHashes() if hashes is None else hashes
        jobs: dict[str, dict] = {}
        for paths in kernel_sets:
            paths = [Path(p) for p in paths]
            for p in paths:
                key = sha[p]
                if p.suffix.lower() == ".tm":  # never loaded: it would load files it names
                    self._memo[key] = {"error": "a meta-kernel (.tm) loads the files it names; "
                                                "labels must name the kernels themselves"}
                elif key not in jobs and self._get(key) is None:
                    jobs[key] = {"id": key, "op": "kernel", "path": str(p)}
            if any(p.suffix.lower() == ".tsc" for p in paths):
                for key, ck, text in self._ck_jobs(paths, sha):
                    if key not in jobs and self._get(key) is None:
                        jobs[key] = {"id": key, "op": "ck_tdb", "ck": str(ck),
                                     "inst": JUNO_SPACECRAFT_CK, "text": [str(t) for t in text]}
        if not jobs:
            return 0
        # kernels first: a CK's TDB job is only read once the CK itself passed
        ordered = sorted(jobs.values(), key=lambda j: j["op"] != "kernel")
        results, n = _run_checks(ordered, timeout_s=self.timeout_s)
        self.n_processes += n
        self.n_runs += 1
        for key, res in results.items():
            self._put(key, res)
        return len(ordered)

    def check(self, paths: Sequence[Path | str], et: float, *, when: str = "",
              hashes: KernelHashes | None = None) -> None:
        """Raise unless every kernel passed and ``et`` is covered (see the class docstring).

        ``when`` describes the time in messages (e.g. ``"START_TIME 2024-04-09T02:57:55"``);
        ``hashes``: the kernels' sha256 taken so far (a batch's), else this call's own.
        """
        paths = [Path(p) for p in paths]
        sha = KernelHashes() if hashes is None else hashes
        self.prepare([paths], hashes=sha)
        when = when or f"ET {et:.3f}"
        for p in paths:
            res = self._get(sha[p]) or {"error": "not verified"}
            if res.get("error"):
                raise CorruptKernelError(p.name, str(p), res["error"])
        cks = [p for p in paths if p.suffix.lower() == ".bc"]
        ck_names = [p.name for p in cks]
        holding = [p for p in cks
                   if str(JUNO_SPACECRAFT_CK) in (self._get(sha[p]) or {}).get("ck", {})]
        if not holding:
            raise KernelCoverageError(ck_names, (
                f"SPICE_FILE_NAME names no CK holding JUNO_SPACECRAFT ({JUNO_SPACECRAFT_CK})"
                + (f" (CKs: {', '.join(ck_names)})" if ck_names else "")))
        if not any(p.suffix.lower() == ".tsc" for p in paths):
            raise KernelCoverageError(ck_names, "SPICE_FILE_NAME names no SCLK kernel (.tsc): "
                                                f"the CK times of {', '.join(ck_names)} cannot "
                                                "be read")
        windows: list[list[float]] = []
        for key, ck, text in self._ck_jobs(paths, sha):
            res = self._get(key) or {"error": "not verified"}
            if res.get("error"):
                raise CorruptKernelError(ck.name, str(ck), f"with {', '.join(t.name for t in text)}"
                                                           f": {res['error']}")
            windows += res.get("windows", [])
        if not _covered(windows, et):
            raise KernelCoverageError(ck_names, (
                f"{when} is not covered by CK {', '.join(ck_names)} for JUNO_SPACECRAFT "
                f"({JUNO_SPACECRAFT_CK}){_nearest(windows, et)}"))
        spks = [p for p in paths if p.suffix.lower() == ".bsp"]
        for body, body_name in SPK_BODIES.items():
            wins: list[list[float]] = []
            for p in spks:
                wins += (self._get(sha[p]) or {}).get("spk", {}).get(str(body), [])
            if not _covered(wins, et):
                names = ", ".join(p.name for p in spks) or "(none)"
                raise KernelCoverageError([p.name for p in spks], (
                    f"{when} is not covered by SPK {names} for {body_name} ({body})"
                    f"{_nearest(wins, et)}"))


def _covered(windows: list[list[float]], et: float) -> bool:
    return any(a <= et <= b for a, b in windows)


def _nearest(windows: list[list[float]], et: float) -> str:
    if not windows:
        return " (no data for it)"
    a, b = min(windows, key=lambda w: 0.0 if w[0] <= et <= w[1] else min(abs(et - w[0]),
                                                                          abs(et - w[1])))
    off = a - et if et < a else et - b
    return f" (nearest coverage {_utc(a)} .. {_utc(b)} UTC, {off:.1f} s away)"


def _utc(et: float) -> str:
    """ET (TDB seconds past J2000) -> ISO UTC, for messages (astropy; no kernel pool)."""
    from astropy.time import Time, TimeDelta

    t = Time("2000-01-01T12:00:00", scale="tdb") + TimeDelta(float(et), format="sec")
    t.precision = 3
    return t.utc.isot
