r"""Deterministic synthetic storagenode log, for the benchmark and the `demo` node.

Why: the exporter needs realistic input without a real node — a benchmark log of a million
lines, a live stream for `storagenode-exporter demo`, and test data with known counts. The
lines follow reference/storagenode-logs-and-api.md §1-§3 byte for byte (one TAB between
columns, the fields as JSON with ", " and ": ", keys in the order zap writes them).

API (small on purpose):

    gen = LogGenerator(era="v1.146", seed=42, started=True, remote_networks=None,
                       lines_per_second=50.0, peers=4096)
    for line in gen.lines(1000, start=1710320400.0): ...   # each line ends in "\n"
    batch = gen.tick(now=time.time(), rate=500)            # ~rate lines stamped `now`
    gen.line_counts()      # {"info": n, "debug": n, ...} of the lines handed out so far
    gen.transfer_counts()  # {(action, result): n} of finished transfers handed out
    gen.transfer_counts(by_satellite=True)  # {(satellite short name, action, result): n}
    gen.event_counts()     # {event name (exporter.events naming): n}
    gen.hashstore_counts() # {("compactions", satellite, store, result) | ("lost_pieces", satellite)
                           #  | ("lost_pieces_failures", satellite): n}
    write_file(path, count, era=..., seed=..., started=True, start=None) -> LogGenerator

    python -m exporter.simulate.loggen --era v1.99 --lines 1000000 --seed 42 [--no-started]
        [--start EPOCH] [--remote-network CIDR ...] [--peers N] [--counts FILE.json] OUT|-

Eras (`ERAS`): "v1.76" (ISO8601 with ms and a +0200 offset, `Process`, Title Case, started
lines at INFO, `upload failed` with error before Size, download Size = bytes sent), "v1.80"
(`process`, ISO8601 ms in UTC), "v1.99" (RFC3339 seconds, Title Case, started INFO, fields
from `log.With`; its process key is `process` as the reference table says for v1.84-v1.99),
"v1.120" (`Process`, started lines at DEBUG, `download canceled` has `reason`), "v1.146"
(snake_case keys, `process`, started DEBUG, client disconnects as WARN `upload failed`).

When the era's started lines are DEBUG and `started=True`, the simulated node runs at
`log.level: debug`, so other DEBUG lines (quiet upload failures) appear as well; at INFO
level they do not, and their started lines stay unmatched, as on a real node.

Mix (performance-anchors.md B.1): actions GET 45 %, PUT 38 %, GET_REPAIR 8 %,
PUT_REPAIR 5 %, GET_AUDIT 4 %; satellites us1/eu1/ap1/saltlake 45/30/15/10 %; ~3 % of the
lines are other events; from v1.146 also hashstore compactions, their failures, recovery after
an unclean shutdown and amnesty reports (loggen/hashstore.py, ~0.1 % of the lines, their own
random stream so the transfer lines stay the same). Transfers overlap: arrivals are a Poisson
process and each transfer finishes after its own duration, so several are in flight and lines
interleave.
"""
from exporter.simulate.loggen.cli import counts_json, main, write_file
from exporter.simulate.loggen.eras import ACTIONS, ERAS, SATELLITES, Era
from exporter.simulate.loggen.generator import LogGenerator

__all__ = ["ACTIONS", "ERAS", "SATELLITES", "Era", "LogGenerator", "counts_json", "main",
           "write_file"]
