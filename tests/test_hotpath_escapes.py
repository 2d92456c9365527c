"""Escapes in a failed line's `error` and `errorVerbose` (scan.c json_string, which jumps to
the next quote, backslash, tab or byte >= 0x80 16 bytes at a time): the C path reads each
value as parser._ERROR_RE does, or hands the line to Python, never another value."""

from __future__ import annotations

import itertools

import pytest

from exporter.state import NodeState
from tests.test_hotpath import KINDS, batched, everything, native, reference, via

HEAD = ('2024-03-13T09:00:{:02d}Z\tERROR\tpiecestore\t{} failed\t{{"process": "storagenode", '
        '"Piece ID": "S6MAQ2JTFUVVUHVPEI7LTLQARDED52HQQTQCOBGI6GMTES5OTW6Q", "Satellite ID": '
        '"12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S", "Action": "{}", {}')
#: the fields between the action and the error, as v1.99 writes them
AFTER_ACTION = {"GET": '"Offset": 62464, "Size": 1792, "Remote Address": "6.240.40.255:12550", ',
                "PUT": '"Remote Address": "6.240.40.255:12550", "Size": 1933312, '}
#: texts around the escapes: a known reason, and a long run that crosses 16-byte blocks
TEXTS = ["write: broken pipe", "use of closed network connection", "x" * 37]
ESCAPES = ["\t", '\\"', "\\\\", '\\\\"', "\\n\\t", "\\", "\\u00e9", "\\\t", '"', "\\é", "é", ""]


def failed_lines() -> list[str]:
    out = []
    n = 0
    for text, escape, offset in itertools.product(TEXTS, ESCAPES, (0, 5, 15, 16, 17, 40)):
        value = (text * 2)[:offset] + escape + text
        for action, verbose in (("GET", False), ("PUT", True), ("GET_AUDIT", True)):
            fields = f'"error": "{value}"'
            if verbose:
                fields += f', "errorVerbose": "{value}\\n\\tstorj.io/drpc{escape}:409"'
            kind = "upload" if action == "PUT" else "download"
            after = AFTER_ACTION["PUT" if action == "PUT" else "GET"]
            out.append(HEAD.format(n % 60, kind, action, after) + fields + "}")
            n += 1
    return out


@native
def test_most_escaped_error_texts_stay_in_c():
    """Else the test below would compare Python with itself."""
    state = NodeState("n", native=True)
    seen = []
    real = state._line
    state._line = lambda text, read_time: (seen.append(text), real(text, read_time))
    lines = failed_lines()
    state.feed(lines, None)
    assert len(lines) - len(seen) > 200, (len(seen), len(lines))


@pytest.mark.parametrize("kind", KINDS)
def test_escaped_error_texts_agree_with_the_reference(kind):
    lines = failed_lines()
    expected = everything(reference(lines, None))
    assert sum(expected["errors"].values()) > 500 and expected["unparsed"] > 0
    for size in (1, 9, 1000):
        assert everything(via(kind, batched(lines, size), None)) == expected, size
