"""`python -m exporter.simulate.loggen`: write a synthetic log (and its counts) to a file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from exporter.simulate.loggen.eras import ERAS
from exporter.simulate.loggen.generator import LogGenerator


def write_file(
    path: str,
    count: int,
    era: str = "v1.146",
    seed: int = 42,
    started: bool = True,
    start: float | None = None,
    remote_networks: Sequence[str] | None = None,
    peers: int = 4096,
) -> LogGenerator:
    """Write `count` lines to `path` ("-" for stdout); returns the generator (its counts)."""
    gen = LogGenerator(era=era, seed=seed, started=started, remote_networks=remote_networks,
                       peers=peers)
    it = gen.lines(count, start)
    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        chunk: list[str] = []
        for line in it:
            chunk.append(line)
            if len(chunk) >= 8192:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    return gen


def counts_json(gen: LogGenerator) -> dict:
    """The generator's counts in a JSON-friendly shape (used by bench/run.py)."""
    return {
        "lines": gen.line_counts(),
        "transfers": {f"{a}/{r}": n for (a, r), n in sorted(gen.transfer_counts().items())},
        "transfers_by_satellite": {
            f"{s}/{a}/{r}": n
            for (s, a, r), n in sorted(gen.transfer_counts(by_satellite=True).items())
        },
        "started": gen.started_counts(),
        "events": gen.event_counts(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m exporter.simulate.loggen",
                                 description="Write a synthetic storagenode log.")
    ap.add_argument("out", help='output file, "-" for stdout')
    ap.add_argument("--era", default="v1.146", choices=sorted(ERAS))
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-started", dest="started", action="store_false",
                    help="leave out the `upload started` / `download started` lines")
    ap.add_argument("--start", type=float, default=None,
                    help="unix time of the first line (default: a date typical of the era)")
    ap.add_argument("--remote-network", action="append", default=None, metavar="CIDR",
                    help="draw remote addresses from this IPv4 network (repeatable)")
    ap.add_argument("--peers", type=int, default=4096, metavar="N",
                    help="distinct client addresses to draw from (default 4096; the many-peer "
                         "GeoIP benchmark uses 1,000,000 and more)")
    ap.add_argument("--counts", metavar="FILE", help="also write the line counts as JSON")
    args = ap.parse_args(argv)
    gen = write_file(args.out, args.lines, era=args.era, seed=args.seed, started=args.started,
                     start=args.start, remote_networks=args.remote_network, peers=args.peers)
    if args.counts:
        with open(args.counts, "w", encoding="utf-8") as f:
            json.dump(counts_json(gen), f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
