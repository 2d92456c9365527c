"""A `Size` the C grammar must leave to Python: more than parser._SIZE_DIGITS digits, even
when leading zeros keep its value small (a fuzz finding: the scan took
`"Size": 000000000000000000` as 0 and observed it, parse_line keeps no size)."""

from __future__ import annotations

import pytest

from tests.test_hotpath import KINDS, US1, everything, reference, via

DOWN = ('2026-08-20T10:15:03Z\tINFO\tpiecestore\t{msg}\t{{"Process": "storagenode", "Piece ID": '
        f'"P{{i}}", "Satellite ID": "{US1}", "Action": "GET", "Offset": 0, "Size": {{size}}, '
        '"Remote Address": "203.0.113.9:4000"{tail}}}')
UP = ('2026-08-20T10:15:03Z\tINFO\tpiecestore\t{msg}\t{{"process": "storagenode", "piece_id": '
      f'"P{{i}}", "satellite_id": "{US1}", "action": "PUT", "remote_address": "172.17.0.1:5", '
      '"size": {size}{tail}}}')


@pytest.mark.parametrize("kind", KINDS)
def test_sizes_of_more_than_eight_digits_agree(kind):
    sizes = ["0", "00000000", "000000000", "000000000000000000", "0000000000000000000",
             "00000000042", "067108864", "67108864", "67108865", "99999999", "012345678"]
    lines = []
    for i, size in enumerate(sizes):
        for shape in (DOWN, UP):
            for msg, tail in (("downloaded" if shape is DOWN else "uploaded", ""),
                              ("download canceled" if shape is DOWN else "upload canceled",
                               ', "reason": "context canceled"'),
                              ("download failed" if shape is DOWN else "upload failed",
                               ', "error": "unexpected EOF"')):
                lines.append(shape.format(msg=msg, i=i, size=size, tail=tail))
    expected = everything(reference(lines, None))
    for size in (1, 64):
        assert everything(via(kind, [lines[i : i + size] for i in range(0, len(lines), size)],
                              None)) == expected
