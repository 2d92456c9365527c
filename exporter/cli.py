"""Command line: `storagenode-exporter [serve]`, `report`, `demo`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from exporter import __version__
from exporter.config import (
    DEFAULT_LISTEN,
    Config,
    ConfigError,
    load_file,
    parse_api_flag,
    parse_node_flag,
)
from exporter.logsetup import setup as setup_logging

log = logging.getLogger("exporter")

COMMANDS = ("serve", "report", "demo", "backfill")


def _common_web(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--web.listen-address", dest="listen_address", default=default, metavar="HOST:PORT",
        help=f"address for /metrics, / and /healthz (default {DEFAULT_LISTEN}; a non-loopback "
        "address serves without auth unless --web.config.file sets it up)",
    )
    parser.add_argument(
        "--web.config.file", dest="web_config_file", metavar="FILE",
        help="exporter-toolkit web config (TLS, basic auth)",
    )
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warn", "error"])


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="storagenode-exporter",
        description="Prometheus exporter for Storj storagenodes (logs and node API). "
        "Other commands: report, demo, backfill (see `storagenode-exporter COMMAND --help`).",
    )
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("--config", metavar="FILE", help="YAML config file (see docs/config.md)")
    p.add_argument(
        "--node", action="append", default=[], metavar="NAME:SOURCE",
        help="a node's log: a file path, docker:PATH (json-file log), tcp://HOST:PORT "
        "(forwarder) or - (stdin); repeatable",
    )
    p.add_argument("--api", action="append", default=[], metavar="NAME=URL",
                   help="a node's dashboard API, e.g. node1=http://127.0.0.1:14002; repeatable")
    p.add_argument("--from-start", action="store_true",
                   help="read existing log files from their start (default: from the end)")
    p.add_argument("--geoip-db", metavar="FILE", help="GeoIP2/GeoLite2/DB-IP city .mmdb")
    p.add_argument("--state-file", metavar="FILE",
                   default=os.environ.get("STORAGENODE_EXPORTER_STATE_FILE") or None,
                   help="keep read positions and counters here across restarts (default: "
                   "$STORAGENODE_EXPORTER_STATE_FILE, which the Docker image sets)")
    p.add_argument("--forwarder-token-file", metavar="FILE",
                   help="shared token for tcp:// forwarder sources")
    p.add_argument("--include-wallet", action="store_true",
                   help="add the payout wallet address to storagenode_info")
    _common_web(p, None)
    return p


def build_config(args: argparse.Namespace) -> Config:
    config = load_file(args.config) if args.config else Config()
    for value in args.node:
        name, source = parse_node_flag(value)
        node = config.node(name)
        node.log = source
    for value in args.api:
        name, url = parse_api_flag(value)
        config.node(name).api = url
    if args.from_start:
        for node in config.nodes:
            node.from_start = True
    for attr in ("geoip_db", "state_file", "forwarder_token_file", "web_config_file",
                 "listen_address"):
        value = getattr(args, attr, None)
        if value:
            setattr(config, attr, value)
    if getattr(args, "include_wallet", False):
        config.include_wallet = True
    return config


def run_exporter(config: Config, ready: threading.Event | None = None) -> int:
    """Build and run until SIGTERM/SIGINT."""
    from exporter.app import Exporter

    exporter = Exporter(config)
    exporter.build()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    exporter.start()
    if ready is not None:
        ready.set()
    stop.wait()
    log.info("shutting down")
    exporter.stop()
    return 0


def cmd_serve(argv: list[str]) -> int:
    args = serve_parser().parse_args(argv)
    setup_logging(args.log_level)
    return run_exporter(build_config(args))


def cmd_report(argv: list[str]) -> int:
    from exporter import report

    p = argparse.ArgumentParser(
        prog="storagenode-exporter report",
        description="Read whole logs (plain, .gz, or docker:PATH) and print a success-rate "
        "table, or the Prometheus exposition with --format prometheus.",
    )
    p.add_argument("--node", action="append", required=True, metavar="NAME:PATH",
                   help="a node's log file; repeat the same NAME for rotated files, oldest first")
    p.add_argument("--format", choices=["table", "prometheus"], default="table")
    p.add_argument("--geoip-db", metavar="FILE")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    args = p.parse_args(argv)
    setup_logging("warn")
    nodes = [parse_node_flag(v) for v in args.node]
    for name, path in nodes:
        if path.startswith("tcp://") or path == "-":
            raise ConfigError(f"--node {name}:{path}: report reads files only")
    geo, extra = None, []
    if args.geoip_db:
        from exporter.geo import GeoCollector, GeoDatabaseError, GeoLocator, GeoRecorder

        try:
            locator = GeoLocator(args.geoip_db)
        except GeoDatabaseError as exc:
            raise ConfigError(str(exc)) from exc
        recorders: dict = {}

        def geo(name):
            return recorders.setdefault(name, GeoRecorder(locator, node=name))

        extra.append(GeoCollector(recorders))
    show = sys.stderr.isatty() and not args.no_progress
    try:
        runners = report.build_states(nodes, show, geo)
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    if args.format == "prometheus":
        sys.stdout.buffer.write(report.exposition(runners, extra))
    else:
        sys.stdout.write(report.table(runners))
    return 0


def cmd_demo(argv: list[str]) -> int:
    from exporter import demo

    p = argparse.ArgumentParser(
        prog="storagenode-exporter demo",
        description="Run the exporter against an embedded simulated node: a live synthetic "
        "log and a simulated dashboard API. Nothing to configure.",
    )
    p.add_argument("--rate", type=float, default=40.0, help="log lines per second (default 40)")
    p.add_argument("--dir", metavar="DIR", help="where the demo log is written (default: temp)")
    p.add_argument("--geoip-db", metavar="FILE",
                   help="your own GeoIP database instead of the bundled demo one")
    _common_web(p, DEFAULT_LISTEN)
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    return demo.run(args)


def cmd_backfill(argv: list[str]) -> int:
    """Old logs -> Prometheus TSDB blocks (exporter/backfill.py)."""
    from exporter import backfill

    setup_logging("warn")
    return backfill.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else "serve"
    if argv and argv[0] in COMMANDS:
        argv = argv[1:]
    handler = {"serve": cmd_serve, "report": cmd_report, "demo": cmd_demo,
               "backfill": cmd_backfill}[command]
    try:
        return handler(argv)
    except ConfigError as exc:
        print(f"storagenode-exporter: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
