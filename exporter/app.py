"""Assembles the running exporter from a Config: sources, states, collectors, HTTP."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

from exporter import __version__
from exporter.collector import LogCollector
from exporter.config import Config, ConfigError, NodeConfig
from exporter.http import load_web_config, make_app, serve
from exporter.revision import revision
from exporter.runner import NodeRunner
from exporter.sources.stdin import StdinSource
from exporter.state import NATIVE_SCAN, NodeState
from logstream.docker import DockerJsonSource
from logstream.file import FileSource
from logstream.source import Source

log = logging.getLogger("exporter")


class BuildInfoCollector:
    def __init__(self) -> None:
        revision()  # looked up now (it may run git), not during the first scrape

    def describe(self):
        return []

    def collect(self):
        info = GaugeMetricFamily(
            "storagenode_exporter_build_info",
            "Version and git revision of storagenode-exporter; hotpath is c when the compiled "
            "log reader is in use, python when it was not built.",
            labels=["version", "revision", "hotpath"],
        )
        info.add_metric([__version__, revision(), "python" if NATIVE_SCAN is None else "c"], 1)
        yield info


def make_source(node: NodeConfig, config: Config, resume: dict | None = None) -> Source:
    spec = node.log or ""
    if spec == "-":
        return StdinSource()
    if spec == "otlp":
        from exporter.sources.otlp import OtlpSource

        return OtlpSource(node.name)
    if spec.startswith("tcp://"):
        try:
            from exporter.sources.forwarder import ForwarderSource
        except ImportError as exc:
            raise ConfigError(f"node {node.name}: forwarder sources are not available") from exc
        return ForwarderSource.from_config(node, config, resume)
    common = dict(from_start=node.from_start, resume=resume,
                  poll_interval=config.poll_interval)
    if spec.startswith("docker:"):
        return DockerJsonSource(spec[len("docker:"):], **common)
    if spec.startswith("docker-name:"):
        from exporter.sources.dockername import DockerNameSource

        return DockerNameSource(spec[len("docker-name:"):], config.docker_data_root, **common)
    return FileSource(spec, **common)


def _log_key(node: NodeConfig, config: Config) -> tuple:
    """What a node's log runner is built from: a change restarts it."""
    return (node.log, node.from_start, tuple(sorted(node.forwarder.items())),
            config.poll_interval, config.forwarder_token_file)


def _api_key(node: NodeConfig, config: Config) -> tuple:
    """What a node's API poller is built from: a change restarts it."""
    return (node.api, tuple(sorted(node.api_intervals.items())),
            tuple(sorted(node.api_timeouts.items())), config.include_wallet)


#: settings a reload cannot change in a running process (the log line says so)
RESTART_ONLY = ("listen_address", "geoip_db", "geohash_precision", "geo_window", "state_file",
                "metrics_path", "web_max_connections", "web_read_header_timeout",
                "otlp_listen_address", "otlp_node_attribute", "otlp_web_config_file",
                "docker_data_root")


@dataclass
class Exporter:
    """Everything one serving process runs; `start()`, `reload()` on SIGHUP, then `stop()`."""

    config: Config
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry())
    runners: list[NodeRunner] = field(default_factory=list)
    pollers: list = field(default_factory=list)
    geo: dict = field(default_factory=dict)
    httpd: object = None
    stopped: threading.Event = field(default_factory=threading.Event)

    def build(self) -> None:
        config = self.config
        if not config.nodes:
            raise ConfigError(
                "no nodes configured: give --node NAME:SOURCE and/or --api NAME=URL, "
                "or --config FILE"
            )
        self.web = load_web_config(config.web_config_file) if config.web_config_file else None
        self.geo = self._build_geo()
        resume = self._load_checkpoint()
        self.runners = [self._runner(node, config, resume.get(node.name))
                        for node in config.nodes if node.log]
        self.log_collector = LogCollector(self.runners)
        self.registry.register(self.log_collector)
        self.registry.register(BuildInfoCollector())
        ProcessCollector(registry=self.registry)
        self.api_collector = None
        self.pollers = [self._poller(n, config) for n in config.nodes if n.api]
        if self.pollers:
            self._register_api()
        if self.geo:
            from exporter.geo import GeoCollector

            self.registry.register(GeoCollector(self.geo))
        from exporter.status import Status

        self.status = Status(self)

    def _runner(self, node: NodeConfig, config: Config, resume: dict | None,
                state: NodeState | None = None) -> NodeRunner:
        if state is None:
            state = NodeState(node.name, pairing_timeout=config.pairing_timeout,
                              geo=self.geo.get(node.name))
        return NodeRunner(node.name, make_source(node, config, resume), state)

    def _poller(self, node: NodeConfig, config: Config):
        from exporter.nodeapi import NodeApiPoller

        return NodeApiPoller(node.name, node.api, intervals=node.api_intervals,
                             timeouts=node.api_timeouts, include_wallet=config.include_wallet)

    def _register_api(self) -> None:
        from exporter.nodeapi import NodeApiCollector

        self.api_collector = NodeApiCollector(self.pollers)
        self.registry.register(self.api_collector)

    def _build_geo(self) -> dict:
        self.locator = None
        if not self.config.geoip_db:
            log.info("no GeoIP database given (--geoip-db); geo metrics are off")
            return {}
        from exporter.geo import GeoDatabaseError, GeoLocator

        try:
            self.locator = GeoLocator(self.config.geoip_db,
                                      precision=self.config.geohash_precision)
        except GeoDatabaseError as exc:
            raise ConfigError(str(exc)) from exc
        return {node.name: self._recorder(node.name) for node in self.config.nodes if node.log}

    def _recorder(self, name: str):
        from exporter.geo import GeoRecorder

        return GeoRecorder(self.locator, window_seconds=self.config.geo_window, node=name)

    def _load_checkpoint(self) -> dict:
        """Saved read positions by node (exporter/checkpoint.py); {} without --state-file."""
        self.checkpointer = None
        if not self.config.state_file:
            return {}
        from exporter.checkpoint import Checkpointer

        self.checkpointer = Checkpointer(
            self.config.state_file, {n.name: n.log for n in self.config.nodes if n.log}
        )
        return self.checkpointer.load()

    def _make_app(self, web):
        return make_app(self.registry, self.status, web, metrics_path=self.config.metrics_path,
                        log_collector=self.log_collector)

    def start(self) -> None:
        if getattr(self, "checkpointer", None) is not None:  # saved counters in before serving
            self.checkpointer.start(self.runners, self.registry)
        self.status.start()
        from exporter import otlp

        self.otlp = otlp.start(self.config, self.registry)  # before the runners: none missed
        self.httpd, _ = serve(self._make_app(self.web), self.config.listen_address, self.web,
                              max_connections=self.config.web_max_connections,
                              read_header_timeout=self.config.web_read_header_timeout)
        log.info("listening on %s", self.config.listen_address)
        if NATIVE_SCAN is None:
            log.info("the compiled log reader (exporter._hotpath) is not in use: reading "
                     "logs in pure Python, about 4x slower on big backlogs")
        for runner in self.runners:
            log.info("node %s: reading %s", runner.name, runner.source.description)
            runner.start()
        for poller in self.pollers:
            poller.start()

    def reload(self, new: Config) -> list[str]:
        """Apply a re-read config (SIGHUP): start new nodes, stop removed ones, restart
        changed ones, reload the web config. Everything that can fail (the web config, the
        new sources) is built first, so a ConfigError leaves the running setup untouched.
        Returns one line per change, already logged."""
        from exporter.reload import plan_reload

        return plan_reload(self, new)

    def stop(self) -> None:
        self.status.stop()
        if getattr(self, "otlp", None) is not None:
            self.otlp.shutdown()
        for poller in self.pollers:
            poller.stop()
        for runner in self.runners:
            runner.stop()
        if getattr(self, "checkpointer", None) is not None:  # final save after the last batch
            self.checkpointer.stop()
        if self.httpd is not None:
            self.httpd.shutdown()
        self.stopped.set()
