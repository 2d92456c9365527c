"""Atheris harness: exporter.parser.parse_line and NodeState.feed, pure Python path.

Run through fuzz/run.py (it passes the seed corpus and the libFuzzer options), or directly:
`.venv/bin/python fuzz/fuzz_parser.py -max_total_time=60 fuzz/build/corpus/parser`.
See fuzz/checks.py for what an input must satisfy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports(include=["exporter"]):
    from exporter import parser, prefixes
    from exporter.parser import ACTIONS, FINISH, LEVELS, OTHER, START, TRANSFER, parse_line
    from exporter.reasons import classify  # noqa: F401  (instrumented: reasons are labels)
    from exporter.state import RESULTS, NodeState

from fuzz import checks
from tests.test_hotpath import everything

LEVEL_NAMES = frozenset(LEVELS.values())


def check_event(line: str, event: tuple | None) -> None:
    """The tuple shapes parser.py documents, with values from the known sets."""
    if event is None:
        return
    ok = isinstance(event, tuple) and event[1] in LEVEL_NAMES and isinstance(event[2], str)
    if ok and event[0] == OTHER:
        ok = len(event) == 4 and (event[3] is None or isinstance(event[3], str))
    elif ok and event[0] == getattr(parser, "HOUSE", None):  # housekeeping (issue 13)
        ok = (len(event) == 5 and (event[3] is None or isinstance(event[3], str))
              and isinstance(event[4], tuple) and all(
                  op in ("c", "h", "b", "d") and isinstance(key, tuple)
                  and isinstance(value, int | float) and 0 <= value < 2**63
                  for op, key, value in event[4]))
    elif ok and event[0] == TRANSFER:
        _, _, _, phase, result, action, satellite, size, piece, remote, reason, _, sent = event
        ok = (
            phase in (START, FINISH) and (result in RESULTS if phase == FINISH else True)
            and (action in ACTIONS or action == getattr(parser, "UNKNOWN", None))
            and isinstance(satellite, str) and isinstance(piece, str)
            and isinstance(remote, str) and (size is None or (type(size) is int and size >= 0))
            and (reason is None or isinstance(reason, str))
            and (sent is None or (type(sent) is int and sent >= 0))
        )
    else:
        ok = False
    if not ok:
        raise checks.Finding(f"parse_line({line!r}) = {event!r}")
    if event[0] == TRANSFER and event[3] == FINISH:  # a start's slot: its Available Space
        checks.check_size(line, event[7])
    elif event[0] == TRANSFER and event[7] is not None and not 0 <= event[7] < 10**18:
        raise checks.Finding(f"bounds: Available Space {event[7]!r} in {line[:200]!r}")


def one_input(data: bytes) -> None:
    mode, raw = checks.split(data)
    lines = raw.decode("utf-8", mode.errors).split("\n")
    reference = NodeState("n", native=False, geo=checks.make_geo(mode))
    for line in lines:
        event = parse_line(line)
        check_event(line, event)
        if event is None:  # NodeState's fallback: a prefix, tabs turned into spaces (issue 13)
            event = prefixes.parse_prefixed(line, parse_line)
            check_event(line, event)
        if event is None:
            reference.unparsed += 1
        else:
            reference.apply(event, mode.read_time)
    state = NodeState("n", native=False, geo=checks.make_geo(mode))
    for batch in checks.batches(lines, mode.batch):
        state.feed(batch, mode.read_time)
    checks.check_answers(state, len(lines))
    what = f"feed() in batches of {mode.batch}"
    checks.same(everything(state), everything(reference), what)
    if checks.geo_view(state.geo) != checks.geo_view(reference.geo):
        raise checks.Finding(f"same: geo window differs, {what}")
    checks.check_labels(state)


test_one_input = checks.guarded(one_input)


def main() -> None:
    ran = checks.run_seeds(test_one_input, os.environ.get("FUZZ_FULL_SEEDS"))
    print(f"fuzz_parser: {ran} seeds ran in full", file=sys.stderr, flush=True)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
