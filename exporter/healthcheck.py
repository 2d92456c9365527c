"""`python -m exporter.healthcheck`: the Docker image's HEALTHCHECK, on the configured address.

A HEALTHCHECK runs beside the exporter in its container but does not see its command line, so
a fixed `127.0.0.1:9184` breaks as soon as someone sets `--web.listen-address` (or
`web.listen_address` in `--config`). This reads the exporter's own command line from /proc
(PID 1, or the first `storagenode-exporter` process when an init such as `docker run --init`
runs first), resolves the address with the exporter's own parsers, and GETs `/healthz`, which
answers without credentials; https when the web config sets up TLS (certificate not checked:
it is the container's own loopback). Exit status 0 healthy, 1 not.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import urllib.request
from pathlib import Path

from exporter.config import DEFAULT_LISTEN, ConfigError, load_yaml, parse_listen_address

PROGRAM = "storagenode-exporter"


def exporter_argv(pid: int | None = None, proc: Path = Path("/proc")) -> list[str] | None:
    """The exporter's arguments (after the program name), from PID `pid` or the first
    process whose command line runs storagenode-exporter (`python -m exporter` too)."""
    pids = [pid] if pid else sorted(int(p.name) for p in proc.iterdir() if p.name.isdigit())
    for candidate in pids:
        try:
            argv = (proc / str(candidate) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode("utf-8", "surrogateescape") for a in argv if a]
        for i, arg in enumerate(args[:3]):
            if os.path.basename(arg) == PROGRAM:
                return args[i + 1 :]
            if arg == "-m" and i + 1 < len(args) and args[i + 1] == "exporter":
                return args[i + 2 :]
    return None


def listen_and_web_config(args: list[str]) -> tuple[str, str | None]:
    """(--web.listen-address, --web.config.file) as the exporter resolves them."""
    from exporter.cli import COMMANDS, _common_web, build_config, serve_parser

    command = args[0] if args and args[0] in COMMANDS else "serve"
    rest = args[1:] if args and args[0] in COMMANDS else args
    if command == "serve":
        config = build_config(serve_parser().parse_known_args(rest)[0])
        return config.listen_address, config.web_config_file
    parser = argparse.ArgumentParser(add_help=False)
    _common_web(parser, DEFAULT_LISTEN)
    known = parser.parse_known_args(rest)[0]
    return known.listen_address, known.web_config_file


def healthz_url(listen: str, web_config: str | None) -> str:
    host, port = parse_listen_address(listen)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    tls = bool(web_config) and bool(load_yaml(web_config, "web config file").get(
        "tls_server_config"))
    return f"{'https' if tls else 'http'}://{host}:{port}/healthz"


def check(url: str, timeout: float) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status == 200
    except OSError as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exporter.healthcheck", description=__doc__)
    p.add_argument("--pid", type=int, help="the exporter's PID (default: found in /proc)")
    p.add_argument("--timeout", type=float, default=4.0, help="seconds (default 4)")
    args = p.parse_args(argv)
    exporter_args = exporter_argv(args.pid)
    if exporter_args is None:
        print(f"healthcheck: no {PROGRAM} process found", file=sys.stderr)
        return 1
    try:
        url = healthz_url(*listen_and_web_config(exporter_args))
    except (ConfigError, SystemExit) as exc:
        print(f"healthcheck: the exporter's command line: {exc}", file=sys.stderr)
        return 1
    return 0 if check(url, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
