"""The compiled kernels' cache, keyed by the content of the package's source (stop 39).

numba caches a ``cache=True`` function beside its source file (``__pycache__``), under
the file's path, and checks the file's own content. So every new checkout of the same
source -- a fresh clone, a CI clone, a benchmark's baseline worktree, another install --
compiled every kernel again: ~40 s of CPU on this 2-core machine (103 signatures,
stop 39), most of the first ``iovolc demo`` of a fresh clone.

Here the kernels of the package's own top-level modules are cached in one folder per
*source digest*, under a user-wide root (``IOVOLC_JIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/iovolc/numba``, else ``~/.cache/iovolc/numba``). The digest is the
SHA-256 of every ``.py`` file of the package (relative path and bytes) and of
:func:`environment_tag`: the versions of numba, llvmlite, numpy and Python, the
platform, and numba's code-generation settings (``NUMBA_OPT``, ``NUMBA_BOUNDSCHECK``,
...), which numba's own keys leave out. numba still keys each entry by its signature
and the CPU's name and features. So any checkout of the same source, in the same
environment, loads what another compiled, and an edit to *any* file of the package
gives a new folder (numba's own check reads only the kernel's own file).

Not cached here (numba's own locators then): a function not in a real file of the
package (``python -c``, a notebook); the kernels of a module imported after the
package's files changed under the running process (their digest would be stale); no
home folder, or an unwritable root. ``NUMBA_CACHE_DIR`` (an image's prebuilt cache,
``infra/docker``) keeps numba's own locator first. A user's
``NUMBA_CACHE_LOCATOR_CLASSES`` replaces numba's list of locators, this one with it
unless named there (``iovolc.jitcache.SourceDigestLocator``). Digest folders unused for
:data:`PRUNE_AFTER_DAYS` are removed (the current one is touched at each start).

Left as numba has it: two processes that compile *different* signatures of one kernel
at the same moment can leave its index and data files from different writers
(numba/numba#4807, #10128; numba's in-tree cache has the same race). The shared root
widens it from one checkout's processes to all checkouts of a source run at once.

The locator goes into numba's list of them, ``numba.core.caching.CacheImpl.
_locator_classes`` (``_CacheImpl`` in older numba); without that list (another numba),
the kernels keep numba's default cache. Kernel modules import :func:`njit` from here,
so that the locator is in place before they are decorated.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import sys
import time
from functools import lru_cache
from pathlib import Path

import llvmlite
import numba
import numpy
from numba import njit
from numba.core import caching, config

__all__ = ["njit", "cache_root", "environment_tag", "source_digest", "SourceDigestLocator"]

PACKAGE_DIR = Path(__file__).resolve().parent
PRUNE_AFTER_DAYS = 30.0
_DIGEST_NAME = re.compile(r"[0-9a-f]{32}")
#: numba's settings that change the code it makes but not its cache's keys
_NUMBA_SETTINGS = ("OPT", "BOUNDSCHECK", "DEBUGINFO_DEFAULT", "LOOP_VECTORIZE",
                   "SLP_VECTORIZE", "ENABLE_AVX", "DISABLE_INTEL_SVML")
_SNAPSHOTS: dict[Path, tuple] = {}  # each digest's files as stat saw them when it was taken


def cache_root() -> Path:
    """The user-wide root of the digest folders (see the module docstring); OSError when
    there is no home folder to put it in."""
    if os.environ.get("IOVOLC_JIT_CACHE_DIR"):
        return Path(os.environ["IOVOLC_JIT_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "iovolc" / "numba"
    home = os.path.expanduser("~")
    if home.startswith("~"):
        raise OSError("no home folder for the compiled kernels' cache")
    return Path(home) / ".cache" / "iovolc" / "numba"


def environment_tag() -> str:
    """What else makes the compiled code and numba's cache keys do not hold: the versions
    of numba, llvmlite, numpy and Python, the platform, and numba's code-generation
    settings (``NUMBA_OPT``, ``NUMBA_BOUNDSCHECK``, ...). numba's keys hold the
    signature, the CPU's name and features, and numba's and Python's minor versions."""
    settings = tuple((name, repr(getattr(config, name, None))) for name in _NUMBA_SETTINGS)
    return repr((numba.__version__, llvmlite.__version__, numpy.__version__, sys.version,
                 sys.platform, platform.machine(), settings))


def _files(package_dir: Path) -> list[tuple[str, Path]]:
    return sorted((p.relative_to(package_dir).as_posix(), p) for p in package_dir.rglob("*.py"))


def _snapshot(package_dir: Path) -> tuple:
    """Each ``.py`` file's relative path, modification time (ns) and size."""
    out = []
    for rel, path in _files(package_dir):
        st = path.stat()
        out.append((rel, st.st_mtime_ns, st.st_size))
    return tuple(out)


@lru_cache(maxsize=8)
def source_digest(package_dir: Path = PACKAGE_DIR, *, tag: str | None = None) -> str:
    """SHA-256 (32 hex digits) of :func:`environment_tag` (or ``tag``) and every ``.py``
    file under ``package_dir``: each file's relative POSIX path and bytes,
    length-prefixed, in sorted path order. OSError when there is no ``.py`` file, or
    when the files changed while they were read."""
    before = _snapshot(package_dir)
    if not before:
        raise OSError(f"no Python source under {package_dir}")
    tag = environment_tag() if tag is None else tag
    h = hashlib.sha256()
    for part in (tag.encode(), *(x for rel, path in _files(package_dir)
                                 for x in (rel.encode(), path.read_bytes()))):
        h.update(len(part).to_bytes(8, "little") + part)
    if _snapshot(package_dir) != before:
        raise OSError(f"the source under {package_dir} changed while it was read")
    _SNAPSHOTS[package_dir] = before
    return h.hexdigest()[:32]


def source_unchanged(package_dir: Path = PACKAGE_DIR) -> bool:
    """Whether the package's files are still as they were when its digest was taken (a
    checkout changed under a running process must not file new code under the old
    digest: its kernels then go to numba's own cache)."""
    try:
        return _SNAPSHOTS.get(package_dir) == _snapshot(package_dir)
    except OSError:
        return False


@lru_cache(maxsize=64)
def _unchanged_at_import(py_file: str) -> bool:
    """:func:`source_unchanged`, once per kernel module (its kernels are decorated
    together, as it is imported; the check stats every file of the package, ~1 ms)."""
    return source_unchanged()


class SourceDigestLocator(caching._CacheLocator):
    """numba cache locator for the kernels of the package's top-level modules: the
    folder ``cache_root() / source_digest()``, stamped with the digest."""

    def __init__(self, py_func, py_file):
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(cache_root() / source_digest())

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return source_digest()

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        """The locator of a kernel of a file of the package, else None (numba's own
        locators then): not a real file of it (``python -c``, a notebook), a source
        changed since the digest was taken, no home folder or an unwritable root."""
        try:
            if not os.path.isfile(py_file) or Path(py_file).resolve().parent != PACKAGE_DIR:
                return None
            self = cls(py_func, py_file)
            if not _unchanged_at_import(str(py_file)):
                return None
            self.ensure_cache_path()
        except (OSError, RuntimeError):
            return None
        return self


def prune(root: Path, *, keep: str, older_than_days: float = PRUNE_AFTER_DAYS,
          now: float | None = None) -> list[str]:
    """Remove the digest folders (32 lowercase hex digits) of ``root`` other than ``keep``
    whose modification time is older than ``older_than_days``; the names removed.
    Errors are ignored (another process may prune or use the same root)."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        try:
            if (entry.name == keep or not entry.is_dir(follow_symlinks=False)
                    or not _DIGEST_NAME.fullmatch(entry.name)
                    or now - entry.stat().st_mtime < older_than_days * 86400.0):
                continue
            shutil.rmtree(entry.path)
            removed.append(entry.name)
        except OSError:
            continue
    return removed


def install() -> bool:
    """Put :class:`SourceDigestLocator` after numba's ``NUMBA_CACHE_DIR`` locator (once);
    touch the current digest folder and prune old ones. False when numba offers no
    such list (its default cache stays)."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list):
        return False
    if SourceDigestLocator not in classes:
        user = getattr(caching, "UserProvidedCacheLocator", None)
        classes.insert(classes.index(user) + 1 if user in classes else 0, SourceDigestLocator)
        try:
            here = cache_root() / source_digest()
            here.mkdir(parents=True, exist_ok=True)
            os.utime(here)
            prune(cache_root(), keep=here.name)
        except (OSError, RuntimeError):
            pass
    return True


install()
