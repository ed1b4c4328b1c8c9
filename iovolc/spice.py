"""SPICE kernel sets: an explicit, ordered list of kernels loaded as a context.

CSPICE keeps one global kernel pool per process and is not thread-safe, so
a :class:`KernelSet` is entered by one thread at a time (a process-wide lock
guards it) and SPICE work is run in processes, never threads, by the
orchestration layer. The pool is cleared on exit, whatever happened.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import spiceypy

_POOL_LOCK = threading.RLock()

#: kernel file extension -> NAIF kernel-tree subfolder
KERNEL_SUBDIR = {
    ".tls": "lsk",
    ".tpc": "pck",
    ".bpc": "pck",
    ".tf": "fk",
    ".ti": "ik",
    ".tsc": "sclk",
    ".bsp": "spk",
    ".bc": "ck",
    ".tm": "mk",
}
#: binary kernel extensions: unloading one leaves the text kernel pool as it is
BINARY_KERNELS = frozenset({".bsp", ".bc", ".bpc"})
#: load order by kind (text kernels first, as NAIF meta-kernels do)
LOAD_ORDER = ("lsk", "pck", "fk", "ik", "sclk", "spk", "ck", "mk")


def kernel_subdir(name: str) -> str:
    """NAIF tree subfolder of a kernel file name (by extension)."""
    suffix = Path(name).suffix.lower()
    try:
        return KERNEL_SUBDIR[suffix]
    except KeyError:
        raise ValueError(f"unknown SPICE kernel type for {name!r} (extension {suffix!r})") from None


def shipped_kernel_dir() -> Path:
    """Kernel tree shipped with the package (real generic LSK/PCK, Juno FK)."""
    return Path(str(resources.files("iovolc") / "data" / "kernels"))


def sort_kernels(paths: Iterable[Path | str]) -> list[Path]:
    """Order kernels LSK, PCK, FK, IK, SCLK, SPK, CK; stable within a kind."""
    items = [Path(p) for p in paths]
    return sorted(items, key=lambda p: LOAD_ORDER.index(kernel_subdir(p.name)))


@dataclass(frozen=True)
class KernelSet:
    """An explicit ordered kernel list; ``with kset:`` loads it, clears after."""

    paths: tuple[Path, ...]

    @classmethod
    def from_paths(cls, paths: Iterable[Path | str]) -> KernelSet:
        ordered = sort_kernels(paths)
        missing = [str(p) for p in ordered if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"SPICE kernel(s) not found: {', '.join(missing)}")
        return cls(tuple(ordered))

    def __enter__(self) -> KernelSet:
        _POOL_LOCK.acquire()
        try:
            spiceypy.kclear()
            for p in self.paths:
                spiceypy.furnsh(str(p))
        except BaseException:
            spiceypy.kclear()
            _POOL_LOCK.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            spiceypy.kclear()
        finally:
            _POOL_LOCK.release()


class LoadedKernels:
    """One :class:`KernelSet` kept loaded over consecutive uses (``use``), loaded again
    only when the set differs, cleared on exit: a batch of sequences that name the
    same kernels loads them once, not once per sequence (~20 ms each: the text
    kernels are parsed anew); a set that differs from the loaded one only in binary
    kernels after a common prefix swaps those alone (stop 34: sequences of one pass
    or of the next one share the generic text kernels and differ in their SPK and
    CK). The pool then holds what ``with kset:`` would load:
    the same files in the same order, and the same contents -- a file replaced at
    its path since it was loaded (a cache refresh) counts as another set.

    Like ``with kset:``, it holds the process's kernel-pool lock while a set is
    loaded, so in one process two threads' batches run one after the other.
    """

    def __init__(self) -> None:
        self._current: KernelSet | None = None
        self._stamp: tuple = ()

    @staticmethod
    def _stamp_of(kset: KernelSet) -> tuple:
        stats = [p.stat() for p in kset.paths]
        return tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in stats)

    def use(self, kset: KernelSet) -> KernelSet:
        stamp = self._stamp_of(kset)
        if kset == self._current and stamp == self._stamp:
            return kset
        if self._swap_binary_tail(kset, stamp):
            return kset
        self.close()
        kset.__enter__()
        self._current, self._stamp = kset, stamp
        return kset

    def _swap_binary_tail(self, kset: KernelSet, stamp: tuple) -> bool:
        """Make the pool ``kset``'s by unloading the loaded set's files after the two
        sets' common prefix (the same paths and stamps) and loading ``kset``'s, when
        every file so swapped is a binary kernel (SPK, CK, binary PCK; stop 34). The
        text kernels (LSK, PCK, FK, IK, SCLK: the parsing) then stay as loaded, and
        the pool is the one a fresh load of ``kset`` gives: the same text kernels
        loaded in the same order, and the binary files in ``kset``'s order after the
        prefix's (a binary file's priority is its load order). False (nothing
        changed) when a text kernel or a meta-kernel would be swapped, or a set names a
        file twice."""
        cur = self._current
        if cur is None or len(set(kset.paths)) != len(kset.paths) \
                or len(set(cur.paths)) != len(cur.paths):
            return False
        keep = 0
        for a, b, sa, sb in zip(cur.paths, kset.paths, self._stamp, stamp, strict=False):
            if a != b or sa != sb:
                break
            keep += 1
        old, new = cur.paths[keep:], kset.paths[keep:]
        if not all(p.suffix.lower() in BINARY_KERNELS for p in (*old, *new)):
            return False
        try:
            for p in reversed(old):
                spiceypy.unload(str(p))
            for p in new:
                spiceypy.furnsh(str(p))
        except BaseException:
            self.close()  # a partial swap is no set: cleared, the lock released
            raise
        self._current, self._stamp = kset, stamp
        return True

    def close(self) -> None:
        if self._current is not None:
            current, self._current = self._current, None
            current.__exit__(None, None, None)

    def __enter__(self) -> LoadedKernels:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def base_kernels() -> list[Path]:
    """The shipped real generic kernels: LSK, PCK and the Juno frames kernel."""
    root = shipped_kernel_dir()
    return [
        root / "lsk" / "naif0012.tls",
        root / "pck" / "pck00010.tpc",
        root / "fk" / "juno_v12_mod2.tf",
    ]
