"""A fast reader of PDS3 labels (ODL), for the well-formed labels of an archive.

The general PVL library (``pvl``) lexes character by character and tries
every token as a date in some twenty formats: 45-100 ms per JIRAM label,
more than the whole science chain of a frame. This reader tokenises with one
regular expression and builds the same data model for the subset PDS3 labels
use (PDS3 Standards Reference, chapter 12 "Object Description Language"):

* ``KEY = value`` statements, ``^POINTER`` keys, namespaced ``NS:KEY`` keys;
* ``OBJECT = NAME`` / ``GROUP = NAME`` blocks closed by ``END_OBJECT`` /
  ``END_GROUP`` (optionally ``= NAME``), nested; the block is stored under
  its name, as pvl does;
* values: integers, reals, based integers (``16#FF#``), quoted strings
  (multi-line), symbols (``'...'``), bare words (``N/A``, dates and times,
  kept as text: :func:`iovolc.pds3.utc_text` reads them), sequences
  ``( ... )`` (nested), sets ``{ ... }``, and units ``<...>`` as a
  :class:`Quantity` ``(value, units)`` like pvl's;
* ``/* comments */``; everything after the ``END`` statement is ignored.

Blocks are :class:`Block` dicts that keep repeated keys (``getall``; item
access gives the first), like ``pvl.PVLModule``. Anything this reader does not
understand raises :class:`OdlError`; the caller then falls back to pvl (which
also produces the messages for malformed labels).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = ["Block", "OdlError", "Quantity", "loads"]


class OdlError(ValueError):
    """A label this reader does not understand (``lineno`` where it stopped)."""

    def __init__(self, msg: str, lineno: int):
        super().__init__(f"line {lineno}: {msg}")
        self.msg, self.lineno = msg, lineno


class Quantity(NamedTuple):
    """A value with units (``2.0 <ms>``), the shape of ``pvl.collections.Quantity``."""

    value: Any
    units: str


class Block(dict):
    """An ordered block of a label; repeated keys are kept (``getall``), ``[key]`` is the
    first, and ``items()`` / ``values()`` yield every occurrence in order."""

    def __init__(self) -> None:
        super().__init__()
        self._pairs: list[tuple[str, Any]] = []

    def append(self, key: str, value: Any) -> None:
        self._pairs.append((key, value))
        if key not in self:
            super().__setitem__(key, value)

    def getall(self, key: str) -> list:
        return [v for k, v in self._pairs if k == key]

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        return iter(self._pairs)

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        return (v for _, v in self._pairs)

    def keys(self) -> Iterator[str]:  # type: ignore[override]
        return (k for k, _ in self._pairs)

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def __len__(self) -> int:
        return len(self._pairs)


#: the label's token kinds and their patterns, in the order they are tried
_TOKEN_KINDS = (
    ("nl", r"\n"),
    ("comment", r"/\*.*?\*/"),
    ("quoted", r'"[^"]*"'),
    ("symbol", r"'[^'\n]*'"),
    ("units", r"<[^<>\n]*>"),
    ("punct", r"[=(){},]"),
    ("word", r"""(?:[^\s=(){},"'<>/\x00-\x1f\x7f-\xff]|/(?!\*))+"""),
)
_TOKEN = re.compile("|".join([r"(?P<ws>[ \t\r\f\v]+)",
                              *(f"(?P<{kind}>{pat})" for kind, pat in _TOKEN_KINDS)]),
                    re.DOTALL)
_INT = re.compile(r"[+-]?\d+\Z")
_REAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?\Z")
_BASED = re.compile(r"([+-]?)(\d+)#([0-9A-Fa-f]+)#\Z")
_HYPHEN_BREAK = re.compile(r"-[ \t\r]*\n[ \t\r\n]*")
_KEY = re.compile(r"\^?[A-Za-z][A-Za-z0-9_]*(?::[A-Za-z][A-Za-z0-9_]*)?\Z")


#: :data:`_TOKEN_KINDS` with the blanks before each folded in, and any other character
#: as a last alternative: one ``findall`` lexes a label (stop 26), the groups in order
_TOKENS = re.compile(r"[ \t\r\f\v]*(?:"
                     + "|".join(f"({pat})" for _, pat in _TOKEN_KINDS) + r"|(.))", re.DOTALL)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """The label's tokens ``(kind, text, line)`` up to its END statement.

    One ``findall`` of :data:`_TOKENS` (stop 26; ~3x the token-by-token scan, which
    is kept: :func:`_tokens_one_by_one`). Its matches are contiguous (the last
    alternative takes any character the others refuse), so they are the scan's tokens;
    a label with such a character goes to the scan, which names it, or stops at END
    before it as the scan does."""
    out: list[tuple[str, str, int]] = []
    line = 1
    for nl, comment, quoted, symbol, units, punct, word, _other in _TOKENS.findall(text):
        if word:
            out.append(("word", word, line))
            if word.upper() == "END" and (len(out) < 2 or out[-2][1] != "="):
                return out  # the END statement: the rest is padding or the image
        elif punct:
            out.append(("punct", punct, line))
        elif nl:
            line += 1
        elif quoted:
            out.append(("quoted", quoted, line))
            line += quoted.count("\n")
        elif units:
            out.append(("units", units, line))
        elif symbol:
            out.append(("symbol", symbol, line))
        elif comment:
            out.append(("comment", comment, line))
            line += comment.count("\n")
        else:
            return _tokens_one_by_one(text)
    return out


def _tokens_one_by_one(text: str) -> list[tuple[str, str, int]]:
    """:func:`_tokens`, one :data:`_TOKEN` match at a time: the error names the
    character it does not understand, and its line."""
    out, line, pos, n = [], 1, 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise OdlError(f"unexpected character {text[pos]!r}", line)
        kind = m.lastgroup
        value = m.group()
        if kind == "nl":
            line += 1
        elif kind != "ws":
            out.append((kind, value, line))
            if kind in ("comment", "quoted"):
                line += value.count("\n")
            if kind == "word" and value.upper() == "END" and (not out[:-1]
                                                              or out[-2][1] != "="):
                return out  # the END statement: the rest is padding or the image
        pos = m.end()
    return out


def _scalar(kind: str, text: str) -> Any:
    if kind in ("quoted", "symbol"):
        # as pvl: a hyphen at a line end joins the lines; every run of blanks (line
        # breaks included) is one space; no blank at either end
        inner = text[1:-1]
        if "-" in inner and "\n" in inner:
            inner = _HYPHEN_BREAK.sub("", inner)
        return " ".join(inner.split())
    if _INT.match(text):
        return int(text)
    if _REAL.match(text):
        return float(text)
    m = _BASED.match(text)
    if m:
        value = int(m.group(3), int(m.group(2)))
        return -value if m.group(1) == "-" else value
    return text


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]]):
        self.t, self.i = tokens, 0

    def peek(self) -> tuple[str, str, int] | None:
        while self.i < len(self.t) and self.t[self.i][0] == "comment":
            self.i += 1
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            last = self.t[-1][2] if self.t else 1
            raise OdlError("the label ends before its END statement", last)
        self.i += 1
        return tok

    def value(self) -> Any:
        kind, text, line = self.take()
        if kind == "punct" and text in "({":
            close = ")" if text == "(" else "}"
            items: list[Any] = []
            while True:
                nxt = self.peek()
                if nxt is not None and nxt[0] == "punct" and nxt[1] == close:
                    self.take()
                    break
                items.append(self.value())
                sep = self.take()
                if sep[0] == "punct" and sep[1] == close:
                    break
                if not (sep[0] == "punct" and sep[1] == ","):
                    raise OdlError(f"expected ',' or {close!r}, found {sep[1]!r}", sep[2])
            if close == "}":
                try:
                    return set(items)
                except TypeError:
                    raise OdlError("a set of unhashable values", line) from None
            return items
        if kind not in ("quoted", "symbol", "word"):
            raise OdlError(f"expected a value, found {text!r}", line)
        if kind == "word" and text.upper() == "END" and self.i == len(self.t):
            raise OdlError("a keyword without a value before END", line)
        v = _scalar(kind, text)
        nxt = self.peek()
        if nxt is not None and nxt[0] == "units":
            self.take()
            return Quantity(v, nxt[1][1:-1].strip())
        return v

    def block(self, closer: str | None) -> Block:
        out = Block()
        while True:
            tok = self.peek()
            if tok is None:
                if closer is None:
                    return out  # no END statement: the text ended
                raise OdlError(f"no {closer} before the label ends", self.t[-1][2])
            kind, text, line = self.take()
            key = text.upper()
            if kind != "word":
                raise OdlError(f"expected a keyword, found {text!r}", line)
            if key == "END" and closer is None:
                return out
            if key in ("END_OBJECT", "END_GROUP"):
                if closer != key:
                    raise OdlError(f"{text} without its {key[4:]}", line)
                nxt = self.peek()
                if nxt is not None and nxt[0] == "punct" and nxt[1] == "=":
                    self.take()
                    self.take()
                return out
            if not _KEY.match(text):
                raise OdlError(f"{text!r} is not a keyword", line)
            eq = self.take()
            if not (eq[0] == "punct" and eq[1] == "="):
                raise OdlError(f"expected '=' after {text}, found {eq[1]!r}", eq[2])
            if key in ("OBJECT", "GROUP"):
                name_kind, name, name_line = self.take()
                if name_kind not in ("word", "quoted"):
                    raise OdlError(f"{text} needs a name, found {name!r}", name_line)
                name = name.strip('"')
                out.append(name, self.block("END_" + key))
            else:
                out.append(text, self.value())


def loads(text: str) -> Block:
    """Parse a PDS3 label's text (see the module docstring); OdlError if not understood."""
    return _Parser(_tokens(text)).block(None)
