"""What every fuzz input must satisfy, shared by the parser and the C hot path harnesses.

An input is one mode byte and a log: bytes, lines separated by b"\\n". The mode byte picks
what a real reader could pick (batch size, read time or log time, how invalid UTF-8 was
decoded, a geo recorder or none), so that libFuzzer mutates those choices too.

Checks, by name (`FUZZ_STRICT` lists soft ones to enforce, comma separated, or `all`):
  raises        nothing raises, for any line, not even inside NodeState's safety net
                (`apply_errors`) (always enforced)
  count         every line gets exactly one answer: sum of lines by level + unparsed ==
                lines fed (always enforced)
  same          batching never changes the result: a batch equals the same lines one by
                one through parse_line + apply; the C hot path equals pure Python (always)
  satellite     a satellite label is a known name, "invalid", "overflow" or a node ID:
                exporter.satellites.SATELLITES.is_label where it exists (then enforced),
                else (soft) the shape of a node ID (base58, 48-52 characters)
  bounds        byte counters and histogram sums are finite and below 2**63; where
                exporter.parser has MAX_PIECE_SIZE and MAX_FIELD (then enforced), no size
                above it and no piece ID above MAX_FIELD characters
  piece         (soft) a piece_id label (top pieces) is a well-formed piece ID (base32)
Soft checks that fail are counted and printed once each when not enforced.

`FUZZ_ALLOW` (comma separated exception names, e.g. `OverflowError,TypeError`) counts those
exceptions like a soft check instead of failing: for fuzzing past a known bug until its fix
lands. When the pure Python path raises an allowed exception, the C result is not compared
(there is no reference); any other C/Python difference is never allowed.
"""

from __future__ import annotations

import math
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_780_000_000.0
BATCH_SIZES = (1, 2, 3, 7, 16, 64, 1000, 1 << 30)
DEMO_DB = ROOT / "exporter" / "data" / "demo-geoip.mmdb"

SOFT = ("satellite", "bounds", "piece")
_strict = os.environ.get("FUZZ_STRICT", "")
STRICT = set(SOFT) if _strict == "all" else {x for x in _strict.split(",") if x}
_defaults_added = False

ALLOW = {x for x in os.environ.get("FUZZ_ALLOW", "").split(",") if x}

_NODE_ID = re.compile(r"[1-9A-HJ-NP-Za-km-z]{48,52}")
_PIECE_ID = re.compile(r"[A-Z2-7]{1,104}")
_seen_soft: set[str] = set()
#: soft check failures per check name, for the driver's summary
soft_failures: dict[str, int] = dict.fromkeys(SOFT, 0)
#: geo recorders: "now" for read_time None, and the cache size (small: generations turn over)
GEO_NOW = T0 + 30.0
GEO_CACHE = 16


class Finding(AssertionError):
    """A broken guarantee: libFuzzer records the input as a crash."""


@dataclass(frozen=True)
class Mode:
    batch: int
    read_time: float | None
    errors: str  # how the text path decodes invalid UTF-8
    geo: bool

    @classmethod
    def of(cls, byte: int) -> Mode:
        return cls(
            batch=BATCH_SIZES[byte & 7],
            read_time=T0 + 30.0 if byte & 8 else None,
            errors="surrogateescape" if byte & 16 else "replace",
            geo=bool(byte & 32),
        )


def split(data: bytes) -> tuple[Mode, bytes]:
    if not data:
        return Mode.of(0), b""
    return Mode.of(data[0]), data[1:]


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _add_default_strict() -> None:
    """Enforce the bounds the exporter has (imported late: exporter modules must be imported
    by the harness, inside atheris.instrument_imports)."""
    global _defaults_added
    from exporter import parser, satellites

    if hasattr(satellites.SATELLITES, "is_label"):
        STRICT.add("satellite")
    if hasattr(parser, "MAX_PIECE_SIZE") and hasattr(parser, "MAX_FIELD"):
        STRICT.add("bounds")
    _defaults_added = True


def soft(name: str, ok: bool, detail: object) -> None:
    if ok:
        return
    if not _defaults_added:
        _add_default_strict()
    if name in STRICT:
        raise Finding(f"{name}: {detail!r}")
    soft_failures[name] = soft_failures.get(name, 0) + 1
    if name not in _seen_soft:
        _seen_soft.add(name)
        print(f"fuzz: soft check {name!r} failed (FUZZ_STRICT={name} enforces it): "
              f"{detail!r}"[:400], file=sys.stderr, flush=True)


def allowed(exc: BaseException) -> bool:
    """True (and counted) when `exc` is a known bug's exception named in FUZZ_ALLOW."""
    name = type(exc).__name__
    if isinstance(exc, Finding) or name not in ALLOW:
        return False
    soft(f"allow:{name}", False, exc)
    return True


def make_geo(mode: Mode):
    """A GeoRecorder on the demo database (fresh per state), or None."""
    if not mode.geo:
        return None
    from exporter.geo.locator import GeoLocator
    from exporter.geo.recorder import GeoRecorder

    locator = GeoLocator(str(DEMO_DB), cache_size=GEO_CACHE)
    return GeoRecorder(locator, clock=lambda: GEO_NOW, node="n")


def geo_view(recorder) -> tuple | None:
    if recorder is None:
        return None
    return recorder.snapshot(GEO_NOW), recorder.overflowed


def check_answers(state, fed: int) -> None:
    # NodeState's safety net counts a line whose application raised as unparsed and logs
    # it: it is still a bug (and an error line in the exporter's log), so it fails here
    caught = getattr(state, "apply_errors", 0)
    if caught:
        raise Finding(f"raises: {caught} lines raised inside NodeState (caught by its "
                      "safety net, counted as unparsed; see the log line above)")
    answered = sum(state.lines.values()) + state.unparsed
    if answered != fed:
        raise Finding(f"count: {fed} lines fed, {answered} answered "
                      f"(lines={state.lines}, unparsed={state.unparsed})")


def _is_satellite_label():
    """The exporter's own rule when it has one (exporter.satellites.SatelliteNames.is_label,
    with the INVALID and OVERFLOW values), else the shape of a node ID."""
    from exporter import satellites

    own = getattr(satellites.SATELLITES, "is_label", None)
    extra = {getattr(satellites, "INVALID", "invalid"), getattr(satellites, "OVERFLOW", "overflow")}
    if own is not None:
        return lambda sat: sat in extra or own(sat)
    return lambda sat: (sat in extra or sat in satellites.KNOWN
                        or _NODE_ID.fullmatch(sat) is not None)


def check_labels(state) -> None:
    from exporter import parser

    is_label = _is_satellite_label()
    largest = getattr(parser, "MAX_PIECE_SIZE", 2**63)
    longest = getattr(parser, "MAX_FIELD", 1 << 30)
    for satellite, _, _ in state.transfers:
        soft("satellite", is_label(satellite), satellite)
    for piece in state.top_pieces.counts:
        soft("piece", _PIECE_ID.fullmatch(piece) is not None, piece)
        soft("bounds", len(piece) <= longest, f"a piece ID of {len(piece)} characters")
    for key, value in state.bytes.items():
        soft("bounds", 0 <= value < 2**63, (key, value))
    for hist in (*state.sizes.values(), *state.durations.values()):
        soft("bounds", math.isfinite(hist.sum) and 0 <= hist.sum < 2**63, hist.sum)
    for action, hist in state.sizes.items():  # every size observed was at most `largest`
        soft("bounds", hist.sum <= largest * sum(hist.counts), (action, hist.sum))


def check_size(line: str, size: int | None) -> None:
    """A size the parser answered is a plausible one."""
    if size is not None:
        from exporter import parser

        soft("bounds", size <= getattr(parser, "MAX_PIECE_SIZE", 2**63), (size, line[:200]))


def same(got: dict, expected: dict, what: str) -> None:
    if got == expected:
        return
    diff = {}
    for key, want in expected.items():
        have = got.get(key)
        if have != want:
            if isinstance(want, dict) and isinstance(have, dict):
                have, want = _differing(have, want), _differing(want, have)
            diff[key] = (have, want)
    raise Finding(f"same: {what}: (got, expected) {diff!r}"[:3000])


def _differing(a: dict, b: dict) -> dict:
    return {k: v for k, v in a.items() if b.get(k, object()) != v}


def guarded(one_input):
    """The Atheris entry point for `one_input`: a finding raises, an allowed exception
    (FUZZ_ALLOW, a known bug being worked on) does not."""
    def test_one_input(data: bytes) -> None:
        try:
            one_input(data)
        except Exception as exc:
            if not allowed(exc):
                raise
    return test_one_input


def run_seeds(test_one_input, folder: str | None) -> int:
    """Every seed, in full (libFuzzer truncates inputs to -max_len: the megabyte line).
    Every failing seed is printed (path and exception), then the first one is raised."""
    if not folder:
        return 0
    failed: list[BaseException] = []
    paths = sorted(Path(folder).iterdir())
    for path in paths:
        try:
            test_one_input(path.read_bytes())
        except Exception as exc:
            failed.append(exc)
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"fuzz: seed {path} fails: {type(exc).__name__}: {exc}"[:600]
                  + f" (at {Path(where.filename).name}:{where.lineno})",
                  file=sys.stderr, flush=True)
    if failed:
        print(f"fuzz: {len(failed)} of {len(paths)} seeds fail", file=sys.stderr, flush=True)
        raise failed[0]
    return len(paths)
