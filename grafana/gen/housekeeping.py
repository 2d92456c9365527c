"""Storj / Node, row Housekeeping: garbage collection, trash, filewalkers, hashstore compaction,
piece deletes and lost pieces (the log's housekeeping metrics, docs/metrics.md).

These are rare events (retain about daily per satellite, compaction when a store needs it), so
counts cover the dashboard's time range (`$__range`) and durations are averages over it, not
rates over `$__rate_interval`, which would be 0 or NaN nearly everywhere.
"""

from __future__ import annotations

from gen import alerts
from gen.common import NS, RANGE, RI, N, q, steps
from gen.panels import bargauge, row, stat, timeseries
from gen.tables import NONE_IN_RANGE, Column, keyed_table

LOST = "storagenode_lost_pieces_reported_total"
COMPACTIONS = "storagenode_hashstore_compactions_total"


def in_range(metric: str, by: str, matchers: str = NS) -> str:
    """Whole events in the time range (no extrapolated fractions)."""
    return f"round(sum by ({by}) (increase({metric}{{{matchers}}}[{RANGE}])))"


def mean_duration(metric: str, by: str, matchers: str = N) -> str:
    """Average duration of the runs in the time range (NaN, shown as none, without a run)."""

    def part(name: str) -> str:
        return f"sum by ({by}) (increase({metric}_{name}{{{matchers}}}[{RANGE}]))"

    return f"{part('sum')} / {part('count')}"


def lost_pieces_stat(w: int = 12) -> dict:
    """For the Status row: any lost piece fires StoragenodeLostPieces (critical)."""
    return stat(
        "Lost pieces reported",
        "Pieces the node found missing or corrupt and reported to the satellites for amnesty "
        "in the time range (contact:amnesty, v1.146+). Any is bad: the StoragenodeLostPieces "
        "alert fires; see the Housekeeping row.",
        [q(in_range(LOST, "node", N), instant=True)],
        thresholds=alerts.fires_from_one("StoragenodeLostPieces"),
        color_mode="background",
        decimals=0,
        w=w,
    )


def gc_table() -> dict:
    def gc(metric: str) -> str:
        return in_range(f"storagenode_{metric}", "node, satellite")

    return keyed_table(
        "Garbage collection per satellite",
        "Retain runs in the time range per satellite (a bloom filter from the satellite "
        "says which pieces to keep; the rest goes to trash), pieces moved to trash, pieces "
        "that could not be trashed or read, and the average run time (v1.96+). `unknown`: "
        "retain lines up to v1.95 name no satellite.",
        "satellite",
        "Satellite",
        [
            Column("Runs", gc("gc_runs_total"), decimals=0),
            Column("Pieces moved to trash", gc("gc_pieces_trashed_total"), decimals=0),
            Column(
                "Failed pieces",
                gc("gc_pieces_failed_total"),
                decimals=0,
                thresholds=steps((None, "green"), (1, "orange")),
            ),
            Column(
                "Average duration",
                mean_duration("storagenode_gc_duration_seconds", "satellite", NS),
                "s",
                mappings=NONE_IN_RANGE,
            ),
        ],
        w=12,
        h=7,
    )


def compaction_table() -> dict:
    def hs(metric: str) -> str:
        return in_range(f"storagenode_hashstore_{metric}", "satellite, store")

    failed = in_range(COMPACTIONS, "satellite, store", f'{NS}, result="failed"')
    return keyed_table(
        "Hashstore compaction per satellite and store",
        "Compactions in the time range per satellite and store (s0, s1), those that failed, "
        "and the log-file bytes reclaimed and rewritten (from the `stats` of `beginning` and "
        "`finished compaction`).",
        "satellite",
        "Satellite",
        [
            Column("Compactions", hs("compactions_total"), decimals=0),
            Column(
                "Failed",
                # 0, not an empty cell, for a store whose compactions all succeeded
                f"{failed} or 0 * {hs('compactions_total')}",
                decimals=0,
                thresholds=steps((None, "green"), (1, "red")),
            ),
            Column("Reclaimed", hs("reclaimed_bytes_total"), "bytes"),
            Column("Rewritten", hs("rewritten_bytes_total"), "bytes"),
        ],
        also=(("store", "Store"),),
        w=12,
        h=7,
    )


def housekeeping_row() -> list[dict]:
    fw = "walker, lazy"
    return [
        row("Housekeeping"),
        stat(
            "Lost pieces by satellite",
            "Pieces reported lost per satellite in the time range, and amnesty reports that "
            "could not be sent. Lost pieces fail audits: check the disk, the power and the "
            "hashstore events (unclean shutdown, invalid records).",
            [
                q(in_range(LOST, "satellite"), "{{satellite}} reported", instant=True),
                q(
                    in_range("storagenode_lost_pieces_report_failures_total", "satellite"),
                    "{{satellite}} report failed",
                    instant=True,
                ),
            ],
            thresholds=alerts.fires_from_one("StoragenodeLostPieces"),
            color_mode="background",
            text_mode="value_and_name",
            decimals=0,
            w=12,
            h=5,
        ),
        timeseries(
            "Hashstore events",
            "Unclean shutdowns (the node stopped without closing its stores), mismatched log "
            "tails, and logs reconciled with invalid records (their pieces are reported lost).",
            [
                q(
                    "sum by (event) (increase(storagenode_events_total"
                    f'{{{N}, event=~"hashstore_.+"}}[{RI}]))',
                    "{{event}}",
                )
            ],
            bars=True,
            w=12,
            h=5,
        ),
        gc_table(),
        compaction_table(),
        bargauge(
            "Compaction failures by reason",
            "Failed compactions in the time range: `logs_disk_full` / `table_disk_full` "
            "(not enough free space to compact), `canceled`, `other`.",
            [
                q(
                    in_range(
                        "storagenode_hashstore_compaction_errors_total", "satellite, store, reason"
                    ),
                    "{{satellite}} {{store}} {{reason}}",
                    instant=True,
                )
            ],
            color="continuous-YlRd",
            w=6,
            h=6,
        ),
        stat(
            "Retain and trash failures",
            "`retain pieces failed` and `emptying trash failed` in the time range.",
            [
                q(in_range("storagenode_gc_failures_total", "node", N), "retain", instant=True),
                q(
                    in_range("storagenode_trash_empty_failures_total", "node", N),
                    "trash",
                    instant=True,
                ),
            ],
            thresholds=steps((None, "green"), (1, "orange")),
            text_mode="value_and_name",
            decimals=0,
            w=4,
            h=6,
        ),
        stat(
            "Run times (average in range)",
            "Average duration of retain (all satellites), emptying the trash, a used-space "
            "filewalker and a hashstore compaction in the time range (none: no run).",
            [
                q(mean_duration("storagenode_gc_duration_seconds", "node"), "retain", instant=True),
                q(
                    mean_duration("storagenode_trash_empty_duration_seconds", "node"),
                    "trash emptying",
                    instant=True,
                ),
                q(
                    mean_duration("storagenode_filewalker_duration_seconds", "node"),
                    "used-space filewalker",
                    instant=True,
                ),
                q(
                    mean_duration("storagenode_hashstore_compaction_duration_seconds", "node"),
                    "compaction",
                    instant=True,
                ),
            ],
            "s",
            text_mode="value_and_name",
            color_mode="none",
            no_value="none",
            mappings=NONE_IN_RANGE,
            w=7,
            h=6,
        ),
        bargauge(
            "Trash emptied by satellite",
            "`emptying trash finished` per satellite in the time range.",
            [
                q(
                    in_range("storagenode_trash_empty_runs_total", "satellite"),
                    "{{satellite}}",
                    instant=True,
                ),
            ],
            w=7,
            h=6,
        ),
        bargauge(
            "Filewalkers",
            "Completed and failed filewalkers in the time range: `used_space` (at start-up), "
            "`gc` and `trash` (lazyfilewalker subprocesses); lazy says whether it ran in the "
            "low-priority subprocess.",
            [
                q(
                    in_range("storagenode_filewalker_runs_total", fw, N),
                    "{{walker}} (lazy {{lazy}}) completed",
                    instant=True,
                ),
                q(
                    in_range("storagenode_filewalker_failures_total", fw, N),
                    "{{walker}} (lazy {{lazy}}) failed",
                    instant=True,
                ),
            ],
            w=12,
            h=7,
        ),
        bargauge(
            "Piece deletes",
            "Deletes the satellites asked for (up to v1.117; later nodes only learn of "
            "deleted pieces through garbage collection), by result.",
            [
                q(
                    in_range("storagenode_piece_deletes_total", "result", N),
                    "{{result}}",
                    instant=True,
                )
            ],
            w=12,
            h=7,
        ),
    ]
