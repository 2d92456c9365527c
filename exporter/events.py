"""Log messages other than piece transfers, mapped to bounded `event` label values.

Keys are the message text exactly as zap writes it (some messages end in a space, so both
spellings are listed where that happens). Logger names are not part of the key: the messages
are distinct enough, and lazyfilewalker subprocess loggers have many spellings.
"""

from __future__ import annotations

EVENTS: dict[str, str] = {
    # contact / ping
    "ping satellite failed ": "ping_satellite_failed",
    "ping satellite failed": "ping_satellite_failed",
    "Your node is still considered to be online but encountered an error.": "quic_misconfigured",
    "failed PingMe request to satellite": "pingme_failed",
    # orders
    "finished": "orders_settled",
    "failed to settle orders for satellite": "orders_settle_failed",
    # garbage collection
    "New bloomfilter is received": "bloomfilter_received",
    "Prepared to run a Retain request.": "retain_started",
    "Moved pieces to trash during retain": "retain_finished",
    "retain pieces failed": "retain_failed",
    # trash
    "emptying trash started": "trash_empty_started",
    "emptying trash finished": "trash_empty_finished",
    "emptying trash failed": "trash_empty_failed",
    # filewalkers
    "used-space-filewalker started": "used_space_filewalker_started",
    "used-space-filewalker completed": "used_space_filewalker_completed",
    "used-space-filewalker failed": "used_space_filewalker_failed",
    "gc-filewalker started": "gc_filewalker_started",
    "gc-filewalker completed": "gc_filewalker_completed",
    "trash-filewalker started": "trash_filewalker_started",
    "trash-filewalker completed": "trash_filewalker_completed",
    "subprocess exited with error": "lazyfilewalker_failed",
    "failed to start subprocess": "lazyfilewalker_failed",
    "gc-filewalker did not complete": "lazyfilewalker_failed",
    # expired pieces
    "expired pieces collection completed": "expired_pieces_collected",
    "collect": "expired_pieces_collected",
    # versions
    "Version is up to date": "version_up_to_date",
    "Running on allowed version.": "version_up_to_date",
    "version not allowed/outdated": "version_outdated",
    "outdated software version": "version_outdated",
    "Version is below minimum allowed": "version_outdated",
    "Download finished.": "update_downloaded",
    "Service restarted successfully.": "service_restarted",
    # process
    "Unrecoverable error": "fatal_error",
    # piecestore, not transfers
    "upload rejected, too many requests": "upload_rejected",
    "upload internal error": "upload_internal_error",
    "file found in trash": "file_found_in_trash",
    # disk
    "Disk space is less than requested. Allocated space is": "disk_space_warning",
    "Used more space than allocated. Allocated space is": "disk_space_warning",
    "Total disk space is less than required minimum": "disk_space_warning",
    "timed out while verifying readability of storage directory": "storage_dir_check_failed",
    "timed out while verifying writability of storage directory": "storage_dir_check_failed",
    "error verifying location and/or readability of storage directory": (
        "storage_dir_check_failed"
    ),
    "system clock is out of sync with satellite": "clock_out_of_sync",
    # graceful exit, hashstore, reputation
    "graceful exit completed.": "graceful_exit_completed",
    "graceful exit failed.": "graceful_exit_failed",
    "finished compaction": "compaction_finished",
    "compaction failed": "compaction_failed",
    # hashstore opening a store after a crash (storagenode/hashstore/store.go): pieces may be
    # lost (they are reported to the satellite: storagenode_lost_pieces_reported_total)
    "unclean shutdown detected: reconciling logs": "hashstore_unclean_shutdown",
    "mismatched log tail": "hashstore_log_tail_mismatch",
    "reconciled log with invalid records": "hashstore_invalid_records",
    "node scores worsened": "scores_worsened",
}

# Text inside the error field of any WARN/ERROR line (SQLite problems have no message of their own).
ERROR_TEXT_EVENTS: tuple[tuple[str, str], ...] = (
    ("database is locked", "database_locked"),
    ("database disk image is malformed", "database_malformed"),
    ("file is not a database", "database_malformed"),
)

#: Every value of the `event` label, for zero-initialised series.
EVENT_NAMES: tuple[str, ...] = tuple(
    sorted({*EVENTS.values(), *(name for _, name in ERROR_TEXT_EVENTS), "node_started"})
)


def classify_message(message: str) -> str | None:
    """Event name for a non-transfer message, or None when it is not one we count."""
    event = EVENTS.get(message)
    if event is None and message.startswith("Node ") and message.endswith(" started"):
        return "node_started"
    return event


def classify_error_text(text: str) -> str | None:
    """Event name for a database problem mentioned anywhere in a WARN/ERROR line."""
    for needle, event in ERROR_TEXT_EVENTS:
        if needle in text:
            return event
    return None
