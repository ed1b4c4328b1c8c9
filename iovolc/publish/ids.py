"""Plain identifiers and per-row version columns of published catalogs.

* :func:`plain_id` -- a hotspot id as a plain token (letters, digits, ``-``,
  ``_``): ``IVC-Tawhaki P.`` and ``IVC-"Tawhaki P."`` -> ``IVC-Tawhaki_P``.
  Deterministic, idempotent (``plain_id(plain_id(x)) == plain_id(x)``), so an
  old catalog with raw ids and a new one with plain ids still join on it.
* :func:`plain_ids` -- the same over a column, refusing two different ids that
  would become one token.
* :func:`add_version_columns` -- ``catalog_version``, ``pipeline_version``,
  ``config_hash`` on every row (:data:`VERSION_COLUMNS`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import pandas as pd

__all__ = ["plain_id", "plain_ids", "VERSION_COLUMNS", "add_version_columns"]

#: characters treated as quotes and dropped (ASCII and typographic)
_QUOTES = "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb"
_NOT_TOKEN = re.compile(r"[^A-Za-z0-9_-]+")
_UNDERSCORES = re.compile(r"_+")
_SEP_RUN = re.compile(r"[-_]*-[-_]*")  # any run of separators holding a '-' -> '-'
_PLAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$")

#: per-row version columns: column -> (unit, description)
VERSION_COLUMNS: dict[str, tuple[str | None, str]] = {
    "catalog_version": (None, "Version of the published catalog this row belongs to"),
    "pipeline_version": (None, "Version of the iovolc software that built the row"),
    "config_hash": (None, "Hash of the pipeline configuration (parameters) that built the row"),
}


def plain_id(hotspot_id: str) -> str:
    """Return ``hotspot_id`` as a plain token of ``[A-Za-z0-9_-]``.

    Rules, in order: Unicode is folded to ASCII (NFKD, accents dropped); quote
    characters are removed; every run of other characters outside
    ``[A-Za-z0-9_-]`` (spaces, dots, slashes, ...) becomes ``_``; repeated
    ``_`` collapse; a run of separators containing ``-`` becomes ``-``;
    leading/trailing separators are stripped. Case is kept.

    >>> plain_id('IVC-Tawhaki P.'), plain_id('IVC-"Tawhaki P."'), plain_id('IVC-JRM044')
    ('IVC-Tawhaki_P', 'IVC-Tawhaki_P', 'IVC-JRM044')

    Raises ``ValueError`` if nothing is left (e.g. ``'...'``).
    """
    if not isinstance(hotspot_id, str):
        raise TypeError(f"hotspot_id must be a str, not {type(hotspot_id).__name__}")
    s = unicodedata.normalize("NFKD", hotspot_id)
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = s.encode("ascii", "ignore").decode("ascii")
    s = s.translate({ord(q): None for q in _QUOTES})
    s = _NOT_TOKEN.sub("_", s)
    s = _UNDERSCORES.sub("_", s)
    s = _SEP_RUN.sub("-", s)
    s = s.strip("-_")
    if not s:
        raise ValueError(f"hotspot id {hotspot_id!r} has no letter or digit")
    assert _PLAIN.match(s), s
    return s


def plain_ids(ids: Iterable[str]) -> list[str]:
    """:func:`plain_id` of each id; ``ValueError`` if two different ids collide."""
    ids = [str(i) for i in ids]
    out = [plain_id(i) for i in ids]
    seen: dict[str, str] = {}
    for raw, p in zip(ids, out, strict=True):
        if seen.setdefault(p, raw) != raw:
            raise ValueError(f"hotspot ids {seen[p]!r} and {raw!r} both become {p!r}")
    return out


def add_version_columns(
    df: pd.DataFrame,
    *,
    catalog_version: str,
    pipeline_version: str,
    config_hash: str,
) -> pd.DataFrame:
    """A copy of ``df`` with :data:`VERSION_COLUMNS` set on every row (strings)."""
    for name, value in (("catalog_version", catalog_version),
                        ("pipeline_version", pipeline_version), ("config_hash", config_hash)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    out = df.copy()
    out["catalog_version"] = catalog_version
    out["pipeline_version"] = pipeline_version
    out["config_hash"] = config_hash
    return out
