"""The fast ODL reader (iovolc.odl) gives what pvl gives on PDS3 labels, and hands
what it does not understand to pvl (iovolc.pds3.parse_label_bytes)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest

from iovolc import odl
from iovolc.pds3 import MalformedLabel, parse_label_bytes

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import pvl

REAL = Path(__file__).parent / "data" / "real_labels"
_DOY = re.compile(r"^(\d{4})-(\d{3})(T.*)?$")


def _time(text: str):
    s = text.rstrip("Z")
    m = _DOY.match(s)
    try:
        if m:
            day = datetime.strptime(f"{m.group(1)}-{m.group(2)}", "%Y-%j")
            s = f"{day:%Y-%m-%d}{m.group(3) or ''}"
        return datetime.fromisoformat(s)
    except ValueError:
        return text


def _norm(v):
    """Both readers' output in one shape (pvl decodes dates, odl keeps them as text)."""
    if isinstance(v, Mapping):
        return [(k, _norm(x)) for k, x in v.items()]
    if hasattr(v, "units"):
        return ("Q", _norm(v.value), str(v.units))
    if isinstance(v, list | tuple):
        return [_norm(x) for x in v]
    if isinstance(v, set | frozenset):
        return sorted(repr(_norm(x)) for x in v)
    if isinstance(v, datetime):
        return v.replace(tzinfo=None)
    if isinstance(v, str):
        return _time(v)
    return v


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    from iovolc.sim.downlink import simulate
    from iovolc.sim.scenario import scenario_for

    out = tmp_path_factory.mktemp("odl")
    simulate(scenario_for([58], seed=5, frames_per_pass=6), out_dir=out, seed=5)
    found = sorted(out.glob("archive/**/*.LBL")) + sorted(REAL.glob("*.LBL"))
    assert len(found) > 10
    return found


def test_same_as_pvl_on_every_label(labels):
    for path in labels:
        text = path.read_text(encoding="latin-1")
        assert _norm(odl.loads(text)) == _norm(pvl.loads(text)), path.name


@pytest.mark.parametrize("text", [
    'A = 1 <ms>\nB = 2.5E-3 <s>\nC = 16#FF#\nD = (1, (2, 3))\nE = {a, b}\nEND',
    'GROUP = G\n  A = 1\nEND_GROUP = G\nOBJECT = O\n  B = N/A\nEND_OBJECT\nEND',
    '/* c */\nA = 1 /* trailing */\nB = "x  y\n   z"\nC = "hy-\n  phen"\nD = \' s \'\nEND\n\x00pad',
    'PDS_VERSION_ID = PDS3\n^IMAGE = ("X.IMG", 3)\nNS:KEY = -4.5e1\nA = "" \nEND',
])
def test_same_as_pvl_on_constructs(text):
    assert _norm(odl.loads(text)) == _norm(pvl.loads(text))


def test_repeated_keys_are_kept():
    b = odl.loads("OBJECT = T\n COLUMN = 1\n COLUMN = 2\nEND_OBJECT = T\nEND")
    assert b["T"]["COLUMN"] == 1 and b["T"].getall("COLUMN") == [1, 2]
    assert [k for k, _ in b["T"].items()] == ["COLUMN", "COLUMN"]


@pytest.mark.parametrize("text", ["A = (1, 2\nEND", "A = \nEND", "T = I\x00O\nEND",
                                  "A = \"open\nEND", "OBJECT = X\n A = 1\nEND"])
def test_what_it_does_not_understand_is_refused(text):
    with pytest.raises(odl.OdlError):
        odl.loads(text)


def test_malformed_labels_still_get_pvls_one_line_reason():
    with pytest.raises(MalformedLabel, match=r"line 1 \(T\) holds byte 0x00"):
        parse_label_bytes(b"T = I\x00O\nEND\n", "X.LBL")
    with pytest.raises(MalformedLabel, match="does not parse as PVL"):
        parse_label_bytes(b"A = (1, 2\nEND\n", "X.LBL")


def test_one_findall_gives_the_token_by_token_scan(labels):
    """The lexer's one ``findall`` (stop 26) against the token-by-token scan it replaced
    (kept for the error messages), on every label and on seeded fragments and junk:
    the same tokens and lines, the same error where the scan raises."""
    import random

    def tokens(fn, text):
        try:
            return fn(text)
        except odl.OdlError as exc:
            return ("error", str(exc))

    texts = [p.read_text(encoding="latin-1") for p in labels]
    for text in texts:
        assert tokens(odl._tokens, text) == tokens(odl._tokens_one_by_one, text)
    rng = random.Random(26)
    alphabet = list("AB =(){},\"'<>/*\n\t\r 12.5eE#-_:^\x00\xe9\f\v") + ["END", "/*", "*/"]
    seen_error = seen_end = 0
    for _ in range(3000):
        base = rng.choice(texts)
        k = rng.randrange(len(base))
        frag = base[k:k + rng.randint(0, 200)]
        junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        text = rng.choice([frag + junk, junk + frag, junk, frag[:50] + junk + frag[50:],
                           junk + " END " + junk])
        want = tokens(odl._tokens_one_by_one, text)
        assert tokens(odl._tokens, text) == want, repr(text)
        error = isinstance(want, tuple)
        seen_error += error
        seen_end += not error and bool(want) and want[-1][1].upper() == "END"
    assert seen_error > 100 and seen_end > 100  # both paths were exercised
