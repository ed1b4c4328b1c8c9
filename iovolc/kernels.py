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
``https://naif.jpl.nasa.gov/pub/naif/JUNO/kernels`` ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import fsspec

from iovolc.spice import KernelSet, kernel_subdir

__all__ = [
    "MissingKernelError",
    "CorruptKernelError",
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
    return "/".join(parts), parts[-1]


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


def _write_stamp(dest: Path, stamp: str) -> None:
    side = dest.with_name(dest.name + ".src")
    tmp = side.with_name(side.name + f".{os.getpid()}")
    tmp.write_text(stamp)
    os.replace(tmp, side)


def _fetch(fs: fsspec.AbstractFileSystem, src: str, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temp file in the same folder + ``os.replace``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, fs.open(src, "rb") as inp:
            while chunk := inp.read(_CHUNK_BYTES):
                out.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
            info = _remote_info(fs, cand_path)
            if info is not None:
                src = cand_path
                break
        remote_size = None if info is None or info.get("size") is None else int(info["size"])
        stamp = _source_stamp(info)
        if dest.is_file() and stamp and _read_stamp(dest) not in (None, stamp):
            dest.unlink()  # the source changed since it was cached
        if dest.is_file():
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
