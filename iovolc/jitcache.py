"""The compiled kernels' cache, keyed by the content of the package's source (stop 39).

numba caches a ``cache=True`` function beside its source file (``__pycache__``), under
the file's path, and checks the file's own content. So every new checkout of the same
source -- a fresh clone, a CI clone, a benchmark's baseline worktree, another install --
compiles every kernel again: ~57 s of CPU on this 2-core machine (stop 39), most of
the first ``iovolc demo`` of a fresh clone.

Here the kernels of the package's own modules are cached in one folder per *source
digest* (the SHA-256 of every ``.py`` file of the package, by relative path and
bytes), under a user-wide root (``IOVOLC_JIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/iovolc/numba``, else ``~/.cache/iovolc/numba``). Any checkout of the
same source, at any path, loads what another compiled. A change to *any* file of the
package gives a new digest, so a kernel is never loaded stale after an edit to
another file (numba's own check reads only the kernel's own file; the kernel modules
still keep kernels that call each other in one file). numba's index still keys each entry by its
signature, the CPU's name and features, numba's version and Python's, as in its own
cache.

Precedence: ``NUMBA_CACHE_DIR`` (an image's prebuilt cache, ``infra/docker``) or
``NUMBA_CACHE_LOCATOR_CLASSES`` set by the user keep numba's own behaviour; an
unwritable root falls back to numba's locators. Digest folders unused for
:data:`PRUNE_AFTER_DAYS` are removed (the current one is touched at each start).

The locator goes into numba's list of them, ``numba.core.caching.CacheImpl.
_locator_classes`` (``_CacheImpl`` in older numba; numba 0.68's
``NUMBA_CACHE_LOCATOR_CLASSES`` picks from the same classes); without that list (another
numba), the kernels keep numba's default cache. Kernel modules import
:func:`njit` from here, so that the locator is in place before they are decorated.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from functools import lru_cache
from pathlib import Path

from numba import njit
from numba.core import caching

__all__ = ["njit", "cache_root", "source_digest", "SourceDigestLocator"]

PACKAGE_DIR = Path(__file__).resolve().parent
PRUNE_AFTER_DAYS = 30.0


def cache_root() -> Path:
    """The user-wide root of the digest folders (see the module docstring)."""
    if os.environ.get("IOVOLC_JIT_CACHE_DIR"):
        return Path(os.environ["IOVOLC_JIT_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "iovolc" / "numba"


@lru_cache(maxsize=4)
def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 (32 hex digits) of every ``.py`` file under ``package_dir``: each file's
    relative POSIX path and bytes, length-prefixed, in sorted path order."""
    h = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py"), key=lambda p: p.relative_to(package_dir)
                       .as_posix()):
        rel = path.relative_to(package_dir).as_posix().encode()
        body = path.read_bytes()
        h.update(len(rel).to_bytes(8, "little") + rel + len(body).to_bytes(8, "little") + body)
    return h.hexdigest()[:32]


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
        try:
            if Path(py_file).resolve().parent != PACKAGE_DIR:
                return None  # not a module of this package: numba's own locators
            self = cls(py_func, py_file)
            self.ensure_cache_path()
        except OSError:
            return None  # an unwritable root: numba's own locators
        return self


def prune(root: Path, *, keep: str, older_than_days: float = PRUNE_AFTER_DAYS,
          now: float | None = None) -> list[str]:
    """Remove the digest folders of ``root`` other than ``keep`` whose modification time
    is older than ``older_than_days``; the names removed. Errors are ignored (another
    process may prune or use the same root)."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        try:
            if (entry.name == keep or not entry.is_dir(follow_symlinks=False)
                    or len(entry.name) != 32
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
        except OSError:
            pass
    return True


install()
