"""Checks of a run request, before any work: URLs that cannot work, perijoves with no data.

Used by the CLI and by the flows (the discover task), so that a bad request
fails at once with one line -- never retried, never a green run that did
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from iovolc.store import check_store_url

__all__ = ["NoDataError", "check_source_url", "check_urls", "archive_orbits", "check_perijoves",
           "ranges"]

#: schemes the archive and the kernel tree may be read from (a PDS mirror is http)
SOURCE_SCHEMES = ("file", "memory", "s3", "s3a", "http", "https")


class NoDataError(ValueError):
    """The archive holds nothing for the requested perijoves (not transient)."""


def check_source_url(name: str, url: str) -> str:
    """Refuse an archive or kernel URL that cannot work (ValueError, one line)."""
    if not url:
        raise ValueError(f"no {name} given: set it as an argument, IOVOLC_{name.upper()}_URL "
                         f"or {name}_url in iovolc.toml")
    parts = urlsplit(str(url))
    scheme = parts.scheme or "file"
    if scheme not in SOURCE_SCHEMES:
        raise ValueError(f"{name} URL {url!r}: scheme {scheme!r} is not supported "
                         f"({', '.join(s + '://' for s in SOURCE_SCHEMES)})")
    if any(s == ".." for s in (parts.netloc + parts.path).split("/")):
        raise ValueError(f"{name} URL {url!r}: '..' path segments are not allowed")
    return url


def check_urls(*, archive_url: str, kernels_url: str, store_url: str) -> None:
    """All three URLs of a run (ValueError naming the first that cannot work)."""
    check_source_url("archive", archive_url)
    check_source_url("kernels", kernels_url)
    check_store_url(store_url)


def ranges(nums: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3,7"``."""
    nums = sorted(set(int(n) for n in nums))
    out, start = [], None
    for i, n in enumerate(nums):
        if start is None:
            start = n
        if i + 1 == len(nums) or nums[i + 1] != n + 1:
            out.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ",".join(out)


def archive_orbits(archive_url: str, *, fs=None) -> list[int]:
    """Orbits (perijoves) of the JIRAM volumes the archive holds."""
    from iovolc.pds3_index import list_volumes, volume_orbit

    return sorted({volume_orbit(v) for v in list_volumes(archive_url, fs=fs)})


def check_perijoves(archive_url: str, perijoves: Sequence[int] | None, *, fs=None) -> list[int]:
    """The requested perijoves the archive has volumes for.

    ``None`` (everything new) always passes. When none of the requested
    perijoves has a volume, NoDataError says what the archive holds.
    """
    if perijoves is None:
        return []
    orbits = archive_orbits(archive_url, fs=fs)
    have = [p for p in perijoves if p in orbits]
    if not have:
        held = f"orbits {ranges(orbits)}" if orbits else \
            "no JIRAM volume (JNOJIR_1nnn / JNOJIR_2nnn)"
        raise NoDataError(f"the archive {archive_url} holds no volume for PJ "
                          f"{ranges(perijoves)}; it holds {held}")
    return have
