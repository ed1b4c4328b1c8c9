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

Saves into the folders this locator hands out are serialised between processes (stop
40). numba's own save reads a kernel's index, takes the first data-file number it leaves free, writes the
index, then the data, with no lock: two processes saving *different* signatures of one
kernel at once take the same number, and the index can end up naming one signature's
file holding the other's code (numba then runs that code for the wrong types: a silently
wrong answer), or losing an entry. The shared root widened that from one checkout's
processes to every checkout of a source. :func:`_locked_save` holds an exclusive
``flock`` on ``<index>.lock`` beside the index for the whole save, so each writer reads
the index the one before it wrote. Loads take no lock: numba writes each file by an
atomic rename, so a reader sees a whole index and whole data files, and an entry whose
data file is not written yet reads as absent (numba compiles) -- unless a file of that
number was left by an earlier index (numba's ``flush``, which ``recompile`` calls and
this package does not, or an unlocked writer). The save is numba's own, unlocked, where
``fcntl`` is missing, the lock file cannot be opened, ``flock`` is refused (some
network file systems), or the lock is not had within :data:`LOCK_WAIT_S` (a stopped
holder, or a forked copy of a holder's descriptor: a wait, never a hang).

The locator goes into numba's list of them, ``numba.core.caching.CacheImpl.
_locator_classes`` (``_CacheImpl`` in older numba); without that list (another numba),
the kernels keep numba's default cache. Kernel modules import :func:`njit` from here,
so that the locator is in place before they are decorated.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shutil
import sys
import time
from functools import lru_cache
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: numba's own, unlocked save
    fcntl = None

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
_FOLDERS: set[str] = set()  # the folders the locator handed out (absolute): locked saves
#: how long a save waits for another process's lock before it saves as numba has it
LOCK_WAIT_S = 60.0


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
        _FOLDERS.add(os.path.abspath(self._cache_path))

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


def _acquire(fd: int) -> bool:
    """An exclusive ``flock`` on ``fd``, waiting up to :data:`LOCK_WAIT_S`; False when it
    was not had (refused, or held all that time: a holder stopped, or a forked copy of
    a holder's descriptor)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    delay = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(2.0 * delay, 0.1)
        except OSError:  # e.g. a file system without flock
            return False


def _locked_save(save):
    """numba's ``IndexDataCacheFile.save``, holding an exclusive ``flock`` on
    ``<index>.lock`` for the whole save in a folder of this module's locator (see the
    module docstring); as numba has it elsewhere, without ``fcntl``, or where the lock
    cannot be had (:func:`_acquire`)."""

    @functools.wraps(save)
    def locked(self, key, data):
        path = getattr(self, "_cache_path", None)
        name = getattr(self, "_index_name", None)
        if (fcntl is None or path is None or name is None
                or os.path.abspath(path) not in _FOLDERS):
            return save(self, key, data)
        try:  # read-only is enough for flock (a lock file another user created)
            fd = os.open(os.path.join(path, name + ".lock"), os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:
            return save(self, key, data)
        try:
            _acquire(fd)  # not had: the save as numba has it
            return save(self, key, data)
        finally:
            os.close(fd)  # releases the lock

    locked.iovolc_locked = True
    return locked


def _lock_saves() -> bool:
    """Wrap numba's ``IndexDataCacheFile.save`` with :func:`_locked_save` (once); False
    when that numba has no such class."""
    cls = getattr(caching, "IndexDataCacheFile", None)
    save = getattr(cls, "save", None)
    if save is None:
        return False
    if not getattr(save, "iovolc_locked", False):
        cls.save = _locked_save(save)
    return True


def install() -> bool:
    """Put :class:`SourceDigestLocator` after numba's ``NUMBA_CACHE_DIR`` locator (once),
    lock numba's saves into the folders it hands out (:func:`_lock_saves`); touch the current
    digest folder and prune old ones. False when numba offers no
    such list (its default cache stays)."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list):
        return False
    _lock_saves()
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
