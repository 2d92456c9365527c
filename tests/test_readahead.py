"""logstream/readahead.py: report's reader thread gives the blocks LineSplitter gives."""

from __future__ import annotations

import io
import random
from unittest import mock

import pytest

from logstream import readahead
from logstream.lines import LineSplitter


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("room", [0, 7, 64 << 10])
def test_read_ahead_blocks_equal_lines(seed, room):
    """Partial lines go into the room in front of each buffer or, when longer than the room,
    are joined by a copy; oversized lines are emptied as LineSplitter does."""
    rng = random.Random(seed)
    limit = 50
    stream = b"".join(
        b"x" * rng.choice((0, 3, 49, 50, 51, 120, 400)) + rng.choice((b"\n", b"\xff\n"))
        for _ in range(3000)
    ) + b"unterminated"
    lines = stream.split(b"\n")
    expected = ["" if len(line) > limit else line.decode("utf-8", "replace")
                for line in lines[:-1]]
    splitter, got = LineSplitter(max_line_bytes=limit), []
    with mock.patch.object(readahead, "ROOM", room):
        for _, block in readahead.ReadAhead(io.BytesIO(stream), splitter,
                                            rng.choice((1, 7, 64, 333))):
            if block is not None:
                got.extend(str(block, "utf-8", "replace").split("\n"))
    assert got == expected
    assert splitter.oversized == sum(len(x) > limit for x in lines[:-1])
    assert splitter.flush() == ["unterminated"]


def test_read_ahead_raises_the_readers_error():
    class Failing(io.BytesIO):
        def readinto(self, b):
            if self.tell() > 100:
                raise OSError(5, "Input/output error")
            return super().readinto(b)

    blocks = readahead.ReadAhead(Failing(b"line\n" * 1000), LineSplitter(), 10)
    with pytest.raises(OSError, match="Input/output"):
        for _ in blocks:
            pass
    assert not blocks._thread.is_alive()


def test_read_ahead_stopped_early_leaves_no_thread():
    blocks = readahead.ReadAhead(io.BytesIO(b"line\n" * 100_000), LineSplitter(), 10)
    it = iter(blocks)
    next(it)
    it.close()
    assert not blocks._thread.is_alive()
