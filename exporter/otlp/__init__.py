"""The OTLP/HTTP log listener (`--otlp.listen-address`) for nodes given as `NAME:otlp`.

`start(config, registry)` serves it on its own port; see docs/otlp.md for what it accepts
and what it guarantees.
"""

from __future__ import annotations

import logging

from prometheus_client.core import CounterMetricFamily

from exporter.config import Config, ConfigError, parse_listen_address
from logstream.listen import is_loopback

log = logging.getLogger("exporter.otlp")

DEFAULT_LISTEN = "127.0.0.1:4318"


class OtlpCollector:
    """storagenode_otlp_requests_total{result}, _log_records_total{node},
    _rejected_log_records_total{reason}."""

    def __init__(self, stats) -> None:
        self.stats = stats

    def describe(self):
        return []

    def collect(self):
        from exporter.otlp.server import RESULTS

        with self.stats.lock:
            requests = dict(self.stats.requests)
            records = dict(self.stats.records)
            rejected = dict(self.stats.rejected)
        family = CounterMetricFamily(
            "storagenode_otlp_requests", "OTLP/HTTP log export requests by outcome.",
            labels=["result"])
        for result in RESULTS:
            family.add_metric([result], requests.get(result, 0))
        yield family
        family = CounterMetricFamily(
            "storagenode_otlp_log_records", "OTLP log records applied, by node.",
            labels=["node"])
        for node, count in sorted(records.items()):
            family.add_metric([node], count)
        yield family
        family = CounterMetricFamily(
            "storagenode_otlp_rejected_log_records",
            "OTLP log records refused: no_node (no node attribute or path), unknown_node.",
            labels=["reason"])
        for reason in ("no_node", "unknown_node"):
            family.add_metric([reason], rejected.get(reason, 0))
        yield family


def wanted(config: Config) -> bool:
    return bool(config.otlp_listen_address) or any(n.log == "otlp" for n in config.nodes)


def start(config: Config, registry):
    """Serve the listener (when a node reads `otlp`); returns the server, or None."""
    if not wanted(config):
        return None
    from exporter.http import serve
    from exporter.otlp.server import OtlpApp, Stats
    from exporter.webconfig import load_web_config

    address = config.otlp_listen_address or DEFAULT_LISTEN
    where = "--otlp.listen-address"
    host, _ = parse_listen_address(address, where)
    if not any(n.log == "otlp" for n in config.nodes):
        raise ConfigError(f"{where} {address}: no node reads otlp (give --node NAME:otlp)")
    web = load_web_config(config.otlp_web_config_file) if config.otlp_web_config_file else None
    if not is_loopback(host) and not (web and web.authenticated):
        raise ConfigError(
            f"{where} {address} is not a loopback address: give --otlp.web.config.file with "
            "basic_auth_users (or client certificates) to accept logs from other hosts")
    stats = Stats()
    app = OtlpApp(config.otlp_node_attribute, web, stats=stats)
    try:
        httpd, _ = serve(app, address, web, max_connections=config.web_max_connections,
                         read_header_timeout=config.web_read_header_timeout)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("--web.listen-address", where)) from exc
    registry.register(OtlpCollector(stats))
    log.info("OTLP/HTTP logs: listening on %s (POST /v1/logs, node by resource attribute "
             "%s or /v1/logs/NODE)", address, config.otlp_node_attribute)
    return httpd
