"""`storagenode-exporter demo`: the real exporter against an embedded simulated node.

A writer thread appends a live synthetic log (current log format, DEBUG `… started` lines,
all actions and outcomes, four satellites, remote addresses all over the world) to a file,
which the exporter reads through its normal file source; the simulated dashboard API serves
disk, scores and payouts; the bundled demo GeoIP database places the remote addresses. So
`/metrics`, Prometheus and the dashboards fill with live numbers without a node.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import tempfile
import threading
import time

from exporter.config import Config, ConfigError, NodeConfig, check_telemetry_path
from exporter.signals import SignalWaiter

log = logging.getLogger("exporter.demo")


class LiveLogWriter(threading.Thread):
    """Appends the lines a busy node would write, once a second."""

    def __init__(self, path: str, rate: float, stop: threading.Event, networks=None) -> None:
        super().__init__(name="demo-log", daemon=True)
        from exporter.simulate.loggen import LogGenerator

        self.path, self.rate, self.stop_event = path, rate, stop
        self.generator = LogGenerator(era="v1.146", seed=int(time.time()), started=True,
                                      remote_networks=networks)

    def run(self) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            while not self.stop_event.is_set():
                fh.writelines(self.generator.tick(time.time(), self.rate))
                fh.flush()
                self.stop_event.wait(1.0)


def next_steps(config: Config, tls: bool) -> list[str]:
    """The demo's last lines: what to open next."""
    from exporter.config import parse_listen_address

    host, port = parse_listen_address(config.listen_address)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    base = f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"
    return [
        f"open the status page: {base}/",
        f"the metrics Prometheus scrapes: {base}{config.metrics_path}",
        "Grafana with the dashboards, Prometheus and the alerts: docker compose --profile "
        "demo up -d, then http://127.0.0.1:3000 (admin/admin without .env; it runs its own "
        "demo exporter on 127.0.0.1:9184, so stop this one first)",
    ]


def run(args: argparse.Namespace) -> int:
    from exporter.app import Exporter
    from exporter.geo.demo import DEMO_NETWORKS, demo_database_path
    from exporter.simulate.nodeapi import SimulatedNodeApi

    directory = args.dir or tempfile.mkdtemp(prefix="storagenode-demo-")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "node.log")
    open(path, "a").close()
    stop = threading.Event()
    try:
        api = SimulatedNodeApi(version="v1.146", port=args.api_port)
    except OSError as exc:
        raise ConfigError(f"--api.port {args.api_port}: {exc.strerror}") from exc
    api.start()
    writer = LiveLogWriter(path, args.rate, stop, [n[0] for n in DEMO_NETWORKS])
    config = Config(
        nodes=[NodeConfig("demo", log=path, api=api.url, from_start=True)],
        listen_address=args.listen_address,
        web_config_file=args.web_config_file,
        geoip_db=args.geoip_db or demo_database_path(),
        metrics_path=check_telemetry_path(args.telemetry_path or "/metrics"),
        web_max_connections=args.web_max_connections,
        web_read_header_timeout=args.web_read_header_timeout,
    )
    exporter = Exporter(config)
    try:
        exporter.build()
    except ConfigError:
        api.stop()
        raise
    signals = SignalWaiter((signal.SIGTERM, signal.SIGINT))
    exporter.start()
    writer.start()
    log.info("demo node writes %s at %.0f lines/s; simulated node API at %s",
             path, args.rate, api.url)
    for line in next_steps(config, exporter.web is not None and exporter.web.tls is not None):
        log.info("%s", line)
    signals.wait()
    stop.set()
    log.info("shutting down")
    exporter.stop()
    api.stop()
    signals.close()
    return 0
