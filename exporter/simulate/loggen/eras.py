"""What the simulated node writes per storagenode version (reference §1.3), and its mix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SATELLITES: tuple[tuple[str, str], ...] = (
    ("us1", "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"),
    ("eu1", "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs"),
    ("ap1", "121RTSDpyNZVcEU84Ticf2L1ntiuUimbWgfATz21tuvgk3vzoA6"),
    ("saltlake", "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE"),
)
SATELLITE_WEIGHTS = (45, 30, 15, 10)
ACTIONS = ("GET", "PUT", "GET_REPAIR", "PUT_REPAIR", "GET_AUDIT")
ACTION_WEIGHTS = (45, 38, 8, 5, 4)
UPLOADS = frozenset({"PUT", "PUT_REPAIR"})
# (success, canceled) probabilities per action; the rest fails.
RESULT_MIX: dict[str, tuple[float, float]] = {
    "GET": (0.900, 0.075),
    "PUT": (0.860, 0.125),
    "GET_REPAIR": (0.930, 0.015),
    "PUT_REPAIR": (0.880, 0.090),
    "GET_AUDIT": (0.990, 0.002),
}
# action -> (is upload, P(success), P(success or canceled), P(full piece))
_ACTION_INFO: dict[str, tuple[bool, float, float, float]] = {
    a: (a in UPLOADS, ok, ok + cancel, 0.7 if a in ("PUT_REPAIR", "GET_REPAIR") else 0.4)
    for a, (ok, cancel) in RESULT_MIX.items()
}
OTHER_SHARE = 0.03  # share of all lines that are not piece transfers
FULL_PIECE = 2_319_360  # ~64 MiB segment / 29, rounded to 256 bytes
LOCAL_ADDR = "172.17.0.3:28967"


@dataclass(frozen=True)
class Era:
    """What changes between storagenode versions (reference §1.3)."""

    name: str
    version: str  # what the updater reports as the running version
    iso_ms: bool  # ISO8601 with ms (before v1.84) instead of RFC3339 seconds
    tz_minutes: int  # local offset written in the timestamps
    process_key: str
    snake: bool  # v1.146 homogenised snake_case field names
    started_level: str
    upload_error_first: bool  # before v1.99: error/errorVerbose before Size/Remote Address
    download_sent_size: bool  # before v1.99: Size on finished downloads = bytes sent
    cancel_reason: bool  # since v1.113: `download canceled` carries `reason`
    quiet_upload_eof: bool  # since v1.99: unexpected-EOF upload failures logged at DEBUG
    disconnect_warn: bool  # since v1.147: client-disconnect upload failures are WARN
    race_lost: bool  # `download canceled (race lost or node shutdown)` exists
    rejected_level: str  # `upload rejected, too many requests`: ERROR before v1.122
    old_verification: bool  # download order-limit failures still logged (<= v1.121)
    retain_fields: str  # "old" (<= v1.95), "title", "snake"
    filewalker: str  # "none", "lazy" (subprocess lines, <= v1.106), "pieces"
    default_start: float  # a plausible date for the era (unix seconds)


ERAS: dict[str, Era] = {
    "v1.76": Era("v1.76", "v1.76.2", True, 120, "Process", False, "INFO", True, True, False,
                 False, False, False, "ERROR", True, "old", "none", 1681171200.0),
    "v1.80": Era("v1.80", "v1.80.10", True, 0, "process", False, "INFO", True, True, False,
                 False, False, False, "ERROR", True, "old", "lazy", 1686787200.0),
    "v1.99": Era("v1.99", "v1.99.3", False, 0, "process", False, "INFO", False, False, False,
                 True, False, True, "ERROR", True, "title", "lazy", 1710320400.0),
    "v1.120": Era("v1.120", "v1.120.4", False, 0, "Process", False, "DEBUG", False, False,
                  True, True, False, True, "ERROR", True, "title", "pieces", 1737370800.0),
    "v1.146": Era("v1.146", "v1.146.5", False, 0, "process", True, "DEBUG", False, False,
                  True, True, True, True, "INFO", False, "snake", "pieces", 1768471200.0),
}


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [c / total for c in out]
