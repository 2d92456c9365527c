"""Node dashboard API (`:14002`): background pollers and the collector that renders them.

`NodeApiPoller` polls one node per endpoint on its own interval and timeout and caches plain
data; `NodeApiCollector` turns the caches into metrics at scrape time without any I/O, so a
slow or dead node never delays `/metrics`.
"""

from exporter.nodeapi.collector import NodeApiCollector
from exporter.nodeapi.poller import (
    DEFAULT_INTERVALS,
    DEFAULT_TIMEOUTS,
    ENDPOINTS,
    PATHS,
    NodeApiPoller,
)

__all__ = [
    "DEFAULT_INTERVALS",
    "DEFAULT_TIMEOUTS",
    "ENDPOINTS",
    "PATHS",
    "NodeApiCollector",
    "NodeApiPoller",
]
