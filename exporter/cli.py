"""Command line: `storagenode-exporter [serve]`, `report`, `demo`, `backfill`,
`check-config`, with the flag conventions of the Prometheus exporters."""

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
    check_telemetry_path,
    load_file,
    parse_api_flag,
    parse_node_flag,
)
from logstream.logsetup import FORMATS
from logstream.logsetup import setup as setup_logging

log = logging.getLogger("exporter")

COMMANDS = ("serve", "report", "demo", "backfill", "check-config")


class Parser(argparse.ArgumentParser):
    """No prefix abbreviations (`--nod` is not `--node`); a bad flag gets one line and a
    hint to --help instead of the whole usage."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def version_text() -> str:
    """Like node_exporter's --version: version, revision, runtime, platform, hot path."""
    import platform

    from exporter.revision import revision
    from exporter.state import NATIVE_SCAN

    return (f"storagenode-exporter, version {__version__} (revision: {revision()})\n"
            f"  python version:   {platform.python_implementation()} "
            f"{platform.python_version()}\n"
            f"  platform:         {sys.platform}/{platform.machine()}\n"
            f"  hot path:         {'python' if NATIVE_SCAN is None else 'c'}\n")


class _Version(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(version_text())
        parser.exit(0)


def _positive(kind: type):
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    return convert


def _logging_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warn", "error"])
    parser.add_argument("--log.format", dest="log_format", default="logfmt", choices=FORMATS,
                        help="logfmt (default) or json, one object a line")


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
    parser.add_argument("--web.telemetry-path", dest="telemetry_path", metavar="PATH",
                        help="path of the metrics (default /metrics)")
    parser.add_argument("--web.max-connections", dest="web_max_connections", metavar="N",
                        type=_positive(int),
                        help="open HTTP connections at most (default 64, or "
                        "$STORAGENODE_EXPORTER_WEB_MAX_CONNECTIONS)")
    parser.add_argument("--web.read-header-timeout", dest="web_read_header_timeout",
                        metavar="SECONDS", type=_positive(float),
                        help="time for the TLS handshake and request headers (default 10, or "
                        "$STORAGENODE_EXPORTER_WEB_READ_HEADER_TIMEOUT)")
    _logging_flags(parser)


def serve_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="storagenode-exporter",
        description="Prometheus exporter for Storj storagenodes (logs and node API). "
        "Other commands: report, demo, backfill, check-config (see "
        "`storagenode-exporter COMMAND --help`). SIGHUP re-reads --config and "
        "--web.config.file.",
    )
    p.add_argument("--version", action=_Version)
    p.add_argument("--config", metavar="FILE", help="YAML config file (see docs/config.md)")
    p.add_argument(
        "--node", action="append", default=[], metavar="NAME:SOURCE",
        help="a node's log: a file path, docker:PATH (json-file log), docker-name:NAME "
        "(a container followed across recreation), tcp://HOST:PORT (forwarder), otlp "
        "(OTLP/HTTP, see --otlp.listen-address) or - (stdin); repeatable",
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
    p.add_argument("--otlp.listen-address", dest="otlp_listen_address", metavar="HOST:PORT",
                   help="OTLP/HTTP log listener for NAME:otlp nodes (default 127.0.0.1:4318; "
                   "beyond loopback only with --otlp.web.config.file auth)")
    p.add_argument("--otlp.node-attribute", dest="otlp_node_attribute", metavar="KEY",
                   help="resource attribute naming the node (default service.instance.id; "
                   "POST /v1/logs/NAME names it by path instead)")
    p.add_argument("--otlp.web.config.file", dest="otlp_web_config_file", metavar="FILE",
                   help="web config (TLS, basic auth) of the OTLP listener")
    p.add_argument("--docker.data-root", dest="docker_data_root", metavar="DIR",
                   help="Docker data root for docker-name:NAME (default /var/lib/docker)")
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
                 "listen_address", "web_max_connections", "web_read_header_timeout",
                 "otlp_listen_address", "otlp_node_attribute", "otlp_web_config_file",
                 "docker_data_root"):
        value = getattr(args, attr, None)
        if value:
            setattr(config, attr, value)
    if getattr(args, "telemetry_path", None):
        config.metrics_path = check_telemetry_path(args.telemetry_path)
    if getattr(args, "include_wallet", False):
        config.include_wallet = True
    return config


def run_exporter(config: Config, ready: threading.Event | None = None,
                 reread=None) -> int:
    """Build and run until SIGTERM/SIGINT; on SIGHUP apply `reread()` (a fresh Config from
    the same flags and files). A config that does not load keeps the running one."""
    from exporter.app import Exporter
    from exporter.signals import SignalWaiter

    exporter = Exporter(config)
    exporter.build()
    hup = getattr(signal, "SIGHUP", None) if reread is not None else None
    signals = SignalWaiter((signal.SIGTERM, signal.SIGINT, *([hup] if hup else [])))
    exporter.start()
    if ready is not None:
        ready.set()
    while signals.wait() == hup:
        try:
            exporter.reload(reread())
        except ConfigError as exc:
            log.error("reload failed, still running the previous config: %s",
                      "; ".join(exc.problems))
        except Exception as exc:  # never die on a reload
            log.error("reload failed, still running the previous config: %s: %s",
                      type(exc).__name__, exc)
    log.info("shutting down")
    exporter.stop()
    signals.close()
    return 0


def cmd_serve(argv: list[str]) -> int:
    args = serve_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    return run_exporter(build_config(args), reread=lambda: build_config(args))


def _web_of(path: str) -> str | None:
    """web.config_file of a config file that has other problems, so it is checked too."""
    from exporter.config import load_yaml

    try:
        web = load_yaml(path, "config file").get("web")
    except (ConfigError, AttributeError):
        return None
    value = web.get("config_file") if isinstance(web, dict) else None
    return value if isinstance(value, str) else None


def cmd_check_config(argv: list[str]) -> int:
    """Load a config file (and the web config it names) and list every problem: exit 0 or 2."""
    p = Parser(prog="storagenode-exporter check-config",
               description="Check a config file and the web config it names; prints every "
               "problem, exits 0 when there is none and 2 otherwise.")
    p.add_argument("--config", metavar="FILE", required=True)
    p.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                   help="also check this web config (default: web.config_file of --config)")
    args = p.parse_args(argv)
    problems: list[str] = []
    config = None
    try:
        config = load_file(args.config)
    except ConfigError as exc:
        problems += exc.problems
    web = args.web_config_file or (config.web_config_file if config else _web_of(args.config))
    if web:
        from exporter.webconfig import load_web_config

        try:
            load_web_config(web)
        except ConfigError as exc:
            problems += exc.problems
    if config is not None and not config.nodes:
        problems.append(f"{args.config}: nodes: no nodes configured")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{args.config}: {len(problems)} problem(s)", file=sys.stderr)
        return 2
    print(f"{args.config}: OK, {len(config.nodes)} node(s)"
          + (f", web config {web} OK" if web else ""))
    return 0


def cmd_report(argv: list[str]) -> int:
    from exporter import report

    p = Parser(
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

    p = Parser(
        prog="storagenode-exporter demo",
        description="Run the exporter against an embedded simulated node: a live synthetic "
        "log and a simulated dashboard API. Nothing to configure.",
    )
    p.add_argument("--rate", type=float, default=40.0, help="log lines per second (default 40)")
    p.add_argument("--dir", metavar="DIR", help="where the demo log is written (default: temp)")
    p.add_argument("--geoip-db", metavar="FILE",
                   help="your own GeoIP database instead of the bundled demo one")
    p.add_argument("--api.port", dest="api_port", type=int, default=0, metavar="PORT",
                   help="port of the simulated node API on 127.0.0.1 (default: a free one)")
    _common_web(p, DEFAULT_LISTEN)
    args = p.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
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
               "backfill": cmd_backfill, "check-config": cmd_check_config}[command]
    try:
        return handler(argv)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"storagenode-exporter: error: {problem}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
