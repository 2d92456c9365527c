"""A simulated storagenode dashboard API (`:14002`) over real HTTP, for tests and the demo.

Each version serves the response shapes recorded in `data/nodeapi_<version>.json` (field sets
and order as the Go structs of that release marshal them); the numbers come from a small
deterministic model of one node, so for a given clock and seed every answer is the same, and
with the real clock the disk fills and the month's bandwidth grows so dashboards move.

Versions: `v1.142` (diskSpace before v1.143: `used` = pieces, `available` = allocation),
`v1.144` (v1.143 meanings: `used` incl. trash, `available` = free, `allocated`,
`reclaimable` always 0, `available` may go negative), `v1.146` (used/available fixed in
v1.145) and `v1.162` (`reclaimable` reported, `calculated` in storageDaily: the newest
completed day and today are the node's projections, flagged `calculated: true`).

Endpoints: `/api/sno/`, `/api/sno/satellites`, `/api/sno/satellite/{id}`,
`/api/sno/satellites/{id}/pricing`, `/api/sno/estimated-payout[?id=]`,
`/api/heldamount/held-history`, `/api/heldamount/paystubs/{start}/{end}[?id=]` (see
nodeapi_payouts.py). Any other path answers the dashboard's HTML page (HTTP 200), as the real
console server does.

Scenario keys (a plain dict, `SimulatedNodeApi.scenario`; read on every request, so a test
may change it while the server runs; the CLI re-reads `--scenario FILE` when it changes).
Satellites are named by short name (`us1`, `eu1`, `ap1`, `saltlake`, or the first label of
an extra satellite's host):

  audit_score, suspension_score, online_score
      float 0-1 for every satellite, or {short name: float}; others keep the recorded score.
  disk_used_ratio
      float: used / allocated, where used includes trash (e.g. 0.97; above 1 = overused).
      Without it the disk grows from the recorded 4.21 TB of 6 TB by 1.5 MB/s.
  disqualified, suspended
      [short name, ...]: those satellites report a disqualification / suspension time.
  quic_status
      "OK" or "Misconfigured" (any string is passed through).
  up_to_date
      bool; false also raises allowedVersion above the node's version.
  last_pinged_ago_seconds
      float seconds before now for lastPinged (default 15); null = never pinged (zero time).
  extra_satellites
      [{"id": ..., "url": "host:port"}, ...]: satellites beyond the production four.
  slow_seconds
      float delay before every answer, or {endpoint: float}.
  fail
      true (every endpoint answers HTTP 500 {"error": ...}), [endpoint, ...] or
      {endpoint: bool}.
  malformed
      "html" (HTTP 200 with an HTML page) or "truncated" (HTTP 200, first half of the JSON
      document), or {endpoint: "html" | "truncated"}.

Endpoint names for the fault switches (the same as the exporter's `endpoint` label): `node`,
`satellites`, `satellite`, `payout`, `held`, `pricing`, `satellite_payout` (estimated-payout
with `?id=`), `paystubs`; in a dict, `"*"` means every endpoint.

Modules: this one is the HTTP server, its fault switches and the CLI; the documents it serves
are built in `nodeapi_documents.py` from the numbers of `nodeapi_model.py` (paystubs in
`nodeapi_payouts.py`).

CLI: `python -m exporter.simulate.nodeapi --listen 127.0.0.1:PORT --version v1.146
[--scenario FILE.json] [--seed N] [--fixed-time 2026-08-20T10:15:00Z]`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from exporter.signals import SignalWaiter
from exporter.simulate.nodeapi_documents import NodeApiDocuments, validate_scenario
from exporter.simulate.nodeapi_model import DATA_DIR, VERSIONS, parse_time, rfc3339

__all__ = ["DATA_DIR", "ENDPOINTS", "VERSIONS", "SimulatedNodeApi", "go_json",
           "main", "rfc3339", "validate_scenario"]

ENDPOINTS = ("node", "satellites", "satellite", "payout", "held", "pricing",
             "satellite_payout", "paystubs")

HTML_PAGE = (b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             b'<title>Storage Node Dashboard</title></head><body><div id="app"></div>'
             b'<script type="module" src="/static/assets/index.js"></script></body></html>\n')


def _for_endpoint(value: Any, endpoint: str) -> Any:
    """A fault switch is a scalar for every endpoint, a list of endpoints or a dict."""
    if isinstance(value, dict):
        return value.get(endpoint, value.get("*"))
    if isinstance(value, list):
        return endpoint in value
    return value


def go_json(doc: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, integral floats without ".0"."""

    def fix(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
            return int(value)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    return (json.dumps(fix(doc), separators=(",", ":")) + "\n").encode()


class SimulatedNodeApi(NodeApiDocuments):
    """The dashboard API of one simulated node on a real ThreadingHTTPServer."""

    def __init__(self, version: str = "v1.146", host: str = "127.0.0.1", port: int = 0,
                 scenario: dict[str, Any] | None = None, *, seed: int = 0,
                 clock: Callable[[], float] | None = None, start: float | None = None) -> None:
        super().__init__(version, scenario, seed=seed, clock=clock, start=start)
        self.requests: dict[str, int] = {}  # endpoint -> count, for tests
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.sim = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SimulatedNodeApi:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name=f"sim-nodeapi-{self.version}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; answers sleeping in `slow_seconds` are cut short."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatedNodeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the Go server
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests and the demo do not want a line per request

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) while we slept
            self.close_connection = True

    def do_GET(self) -> None:
        sim: SimulatedNodeApi = self.server.sim  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        if path == "/api/sno":  # gorilla/mux StrictSlash
            self.send_response(301)
            self.send_header("Location", "/api/sno/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        endpoint, render = sim.route(path, query)
        if endpoint is None:
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
            return
        sim.requests[endpoint] = sim.requests.get(endpoint, 0) + 1
        sc = sim.scenario
        slow = _for_endpoint(sc.get("slow_seconds"), endpoint)
        if slow and sim._stopping.wait(float(slow)):
            self.close_connection = True
            return
        if _for_endpoint(sc.get("fail"), endpoint):
            self._send(500, b'{"error":"storagenode console web error: simulated failure"}\n',
                       "application/json")
            return
        malformed = _for_endpoint(sc.get("malformed"), endpoint)
        if malformed == "html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
            return
        try:
            status, doc = render()
        except Exception as exc:  # a model bug: answer like the node does on errors
            status, doc = 500, {"error": f"simulator: {type(exc).__name__}: {exc}"}
        body = go_json(doc)
        if malformed == "truncated":
            body = body[: len(body) // 2]
        self._send(status, body, "application/json")


# -- CLI -------------------------------------------------------------------------------------

def _load_scenario(path: str) -> dict[str, Any]:
    scenario = json.loads(Path(path).read_text())
    if not isinstance(scenario, dict):
        raise ValueError(f"{path}: a JSON object expected")
    validate_scenario(scenario)
    return scenario


def _watch(path: str, sim: SimulatedNodeApi, stop: threading.Event) -> None:
    """Re-read the scenario file when it changes, so a running test can switch faults."""
    seen = os.stat(path).st_mtime_ns
    while not stop.wait(0.2):
        try:
            mtime = os.stat(path).st_mtime_ns
            if mtime == seen:
                continue
            seen = mtime
            scenario = _load_scenario(path)
        except (OSError, ValueError) as exc:
            print(f"scenario {path} not applied: {exc}", file=sys.stderr, flush=True)
            continue
        sim.scenario.clear()
        sim.scenario.update(scenario)
        print(f"scenario reloaded from {path}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exporter.simulate.nodeapi",
                                description="Serve a simulated storagenode dashboard API.")
    p.add_argument("--listen", default="127.0.0.1:14002", metavar="HOST:PORT",
                   help="address to serve on (port 0 = any free port; default %(default)s)")
    p.add_argument("--version", default="v1.146", choices=VERSIONS,
                   help="node version whose answers to serve (default %(default)s)")
    p.add_argument("--scenario", metavar="FILE.json",
                   help="scenario (see the module docstring); re-read when the file changes")
    p.add_argument("--seed", type=int, default=0, help="seed of the day-to-day variation")
    p.add_argument("--fixed-time", metavar="RFC3339",
                   help="answer as if it were always this time (default: the real clock)")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        scenario = _load_scenario(args.scenario) if args.scenario else {}
        clock = None
        if args.fixed_time:
            fixed = parse_time(args.fixed_time)
            clock = lambda: fixed  # noqa: E731
        sim = SimulatedNodeApi(args.version, host.strip("[]") or "127.0.0.1", int(port),
                               scenario, seed=args.seed, clock=clock)
    except (OSError, ValueError) as exc:
        print(f"simulated node API: error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signals = SignalWaiter((signal.SIGTERM, signal.SIGINT))
    sim.start()
    print(f"simulated storagenode {sim.version} dashboard API on {sim.url}", flush=True)
    if args.scenario:
        threading.Thread(target=_watch, args=(args.scenario, sim, stop), daemon=True).start()
    signals.wait()
    stop.set()
    sim.stop()
    signals.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
