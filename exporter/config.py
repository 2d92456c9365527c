"""Settings from the command line and the YAML config file, validated in one place.

Every problem becomes one `ConfigError` whose message names the file and the key (or the
flag), e.g. `exporter.yml: nodes[1].lgo: unknown key (known: api, from_start, log, name)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:9184"
DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # Docker's own rule for names


class ConfigError(Exception):
    """A setting is wrong; the message says which and where. `problems` lists every one
    found (check-config prints them all; the message is their lines)."""

    def __init__(self, problem: str | list[str]) -> None:
        self.problems = [problem] if isinstance(problem, str) else list(problem)
        super().__init__("\n".join(self.problems))


@dataclass
class NodeConfig:
    name: str
    log: str | None = None  # path, docker:PATH, tcp://HOST:PORT or -
    api: str | None = None
    api_intervals: dict[str, float] = field(default_factory=dict)  # endpoint -> seconds
    api_timeouts: dict[str, float] = field(default_factory=dict)  # endpoint -> seconds
    from_start: bool = False
    forwarder: dict[str, Any] = field(default_factory=dict)  # token_file, tls options


@dataclass
class Config:
    nodes: list[NodeConfig] = field(default_factory=list)
    listen_address: str = DEFAULT_LISTEN
    web_config_file: str | None = None
    geoip_db: str | None = None
    geohash_precision: int = 3
    geo_window: float = 600.0
    state_file: str | None = None
    forwarder_token_file: str | None = None
    include_wallet: bool = False
    pairing_timeout: float = 3600.0
    poll_interval: float = 0.1
    metrics_path: str = "/metrics"
    web_max_connections: int | None = None  # None: $STORAGENODE_EXPORTER_WEB_MAX_CONNECTIONS
    web_read_header_timeout: float | None = None  # or the environment, see exporter/http.py
    otlp_listen_address: str | None = None  # exporter/otlp (default 127.0.0.1:4318)
    otlp_node_attribute: str = "service.instance.id"
    otlp_web_config_file: str | None = None
    docker_data_root: str = "/var/lib/docker"  # for docker-name:NAME sources

    def node(self, name: str) -> NodeConfig:
        """The node called `name`, created if it is not configured yet."""
        for node in self.nodes:
            if node.name == name:
                return node
        node = NodeConfig(name)
        self.nodes.append(node)
        return node


def child(where: str, key: Any) -> str:
    """`file` + key -> `file: key`; `file: a` + key -> `file: a.key`."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def _check_keys(where: str, data: Any, known: set[str],
                problems: list[str] | None = None) -> dict:
    """`data` as a mapping with only `known` keys. With `problems`, every unknown key is
    appended there (and left out of the result) instead of raising on the first."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = [key for key in data if key not in known]
    for key in unknown:
        problem = f"{child(where, key)}: unknown key (known: {', '.join(sorted(known))})"
        if problems is None:
            raise ConfigError(problem)
        problems.append(problem)
    return {k: v for k, v in data.items() if k in known}


def _typed(where: str, value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(f"{where}: expected {name}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {name}, got {value!r}")
    return value


def validate_node_name(name: str, where: str) -> str:
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(f"{where}: node name {name!r} must be letters, digits, '-', '_' or '.'")
    return name


def load_yaml(path: str, what: str) -> Any:
    """A YAML file's data; ConfigError naming the file (one line per problem) if it cannot
    be had or has duplicate keys (exporter/yamlfile.py)."""
    from exporter import yamlfile  # PyYAML only when a file is read (report reads none)

    return yamlfile.load(path, what)


TOP_KEYS = {"web", "nodes", "geoip", "state_file", "forwarder", "include_wallet",
            "pairing_timeout", "poll_interval", "otlp", "docker"}
WEB_KEYS = {"listen_address", "config_file", "telemetry_path", "max_connections",
            "read_header_timeout"}
GEOIP_KEYS = {"database", "precision", "window"}
FORWARDER_KEYS = {"token_file"}
OTLP_KEYS = {"listen_address", "node_attribute", "web_config_file"}
DOCKER_KEYS = {"data_root"}
NODE_KEYS = {"name", "log", "api", "api_intervals", "api_timeouts", "from_start", "forwarder"}
NODE_FORWARDER_KEYS = {"token_file", "tls_ca_file", "tls_cert_file", "tls_key_file",
                       "tls_server_name", "tls_insecure_skip_verify"}


def _positive(where: str, value: Any, kind: type = float) -> float:
    """A number > 0 (an int when `kind` is int)."""
    if kind is int:
        number = _typed(where, value, int, "a positive whole number")
    else:
        number = _typed(where, value, (int, float), "seconds")
    if not number > 0 or number != number or number == float("inf"):
        raise ConfigError(f"{where}: must be positive, got {number}")
    return kind(number)


def check_telemetry_path(value: str, where: str = "--web.telemetry-path") -> str:
    if not value.startswith("/") or value in ("/", "/healthz", "/api/status") or any(
            c.isspace() or c in "?#" for c in value):
        raise ConfigError(f"{where}: expected a path like /metrics (not /, /healthz or "
                          f"/api/status), got {value!r}")
    return value


def load_file(path: str, config: Config | None = None) -> Config:
    """Read a YAML config file into `config` (a fresh Config by default). Every problem of
    the file is collected; the ConfigError lists them all."""
    config = config or Config()
    problems: list[str] = []

    def attempt(fn, *args):
        try:
            return fn(*args)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return None

    top = _check_keys(path, load_yaml(path, "config file"), TOP_KEYS, problems)
    sections = {
        "web": (WEB_KEYS, _load_web), "geoip": (GEOIP_KEYS, _load_geoip),
        "forwarder": (FORWARDER_KEYS, _load_forwarder),
        "otlp": (OTLP_KEYS, _load_otlp), "docker": (DOCKER_KEYS, _load_docker),
    }
    for name, (known, load) in sections.items():
        if name in top:
            data = attempt(_check_keys, f"{path}: {name}", top[name], known, problems)
            for key, value in (data or {}).items():
                attempt(load, config, f"{path}: {name}.{key}", key, value)
    if "state_file" in top:
        config.state_file = attempt(_typed, f"{path}: state_file", top["state_file"], str,
                                    "a path")
    for key in ("pairing_timeout", "poll_interval"):
        if key in top:
            value = attempt(_positive, f"{path}: {key}", top[key])
            if value is not None:
                setattr(config, key, value)
    if "include_wallet" in top:
        value = attempt(_typed, f"{path}: include_wallet", top["include_wallet"], bool,
                        "true or false")
        config.include_wallet = bool(value)
    nodes = top.get("nodes", [])
    if not isinstance(nodes, list):
        problems.append(f"{path}: nodes: expected a list of nodes")
        nodes = []
    for i, raw in enumerate(nodes):
        attempt(_load_node, config, f"{path}: nodes[{i}]", raw, problems)
    if problems:
        raise ConfigError(problems)
    return config


def _load_web(config: Config, where: str, key: str, value: Any) -> None:
    if key == "listen_address":
        config.listen_address = _typed(where, value, str, "HOST:PORT")
        parse_listen_address(config.listen_address, where)
    elif key == "config_file":
        config.web_config_file = _typed(where, value, str, "a file path")
    elif key == "telemetry_path":
        config.metrics_path = check_telemetry_path(_typed(where, value, str, "a path"), where)
    elif key == "max_connections":
        config.web_max_connections = int(_positive(where, value, int))
    elif key == "read_header_timeout":
        config.web_read_header_timeout = _positive(where, value)


def _load_geoip(config: Config, where: str, key: str, value: Any) -> None:
    if key == "database":
        config.geoip_db = _typed(where, value, str, "a path")
    elif key == "precision":
        precision = _typed(where, value, int, "1 to 4")
        if not 1 <= precision <= 4:
            raise ConfigError(f"{where}: expected 1 to 4, got {precision}")
        config.geohash_precision = precision
    elif key == "window":
        config.geo_window = _positive(where, value)


def _load_forwarder(config: Config, where: str, key: str, value: Any) -> None:
    config.forwarder_token_file = _typed(where, value, str, "a path")


def _load_otlp(config: Config, where: str, key: str, value: Any) -> None:
    value = _typed(where, value, str, "a string")
    if key == "listen_address":
        parse_listen_address(value, where)
    setattr(config, f"otlp_{key}", value)


def _load_docker(config: Config, where: str, key: str, value: Any) -> None:
    config.docker_data_root = _typed(where, value, str, "a path")


def _load_node(config: Config, where: str, raw: Any, problems: list[str]) -> None:
    item = _check_keys(where, raw, NODE_KEYS, problems)
    if "name" not in item:
        problems.append(f"{where}.name: missing (every node needs a name)")
        return
    name = validate_node_name(_typed(f"{where}.name", item["name"], str, "a string"),
                              f"{where}.name")
    if any(n.name == name for n in config.nodes):
        raise ConfigError(f"{where}.name: node {name!r} is configured twice")
    node = config.node(name)
    for key, value in item.items():
        try:
            _load_node_key(node, f"{where}.{key}", key, value, problems)
        except ConfigError as exc:
            problems.extend(exc.problems)


def _load_node_key(node: NodeConfig, where: str, key: str, value: Any,
                   problems: list[str]) -> None:
    if key == "log":
        node.log = check_source(_typed(where, value, str, "a log source"), where)
    elif key == "api":
        node.api = check_url(_typed(where, value, str, "a URL"), where)
    elif key in ("api_intervals", "api_timeouts"):
        setattr(node, key, _endpoint_seconds(where, value, problems))
    elif key == "from_start":
        node.from_start = _typed(where, value, bool, "true or false")
    elif key == "forwarder":
        node.forwarder = dict(_check_keys(where, value, NODE_FORWARDER_KEYS, problems))
        for name, item in node.forwarder.items():  # strict: 'no' is not false
            flag = name == "tls_insecure_skip_verify"
            try:
                _typed(f"{where}.{name}", item, bool if flag else str,
                       "true or false" if flag else "a string")
            except ConfigError as exc:
                problems.extend(exc.problems)


def _endpoint_seconds(where: str, data: Any, problems: list[str]) -> dict[str, float]:
    """`{endpoint: seconds}` for the node API poller (exporter/nodeapi/poller.py)."""
    from exporter.nodeapi.poller import ENDPOINTS

    result = {}
    for key, value in _check_keys(where, data, set(ENDPOINTS), problems).items():
        try:
            result[key] = _positive(f"{where}.{key}", value)
        except ConfigError as exc:
            problems.extend(exc.problems)
    return result


def check_source(spec: str, where: str) -> str:
    if not spec:
        raise ConfigError(f"{where}: empty log source")
    if spec.startswith("tcp://"):
        host, _, port = spec[6:].rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{where}: expected tcp://HOST:PORT, got {spec!r}")
    elif spec.startswith("docker:") and not spec[7:]:
        raise ConfigError(f"{where}: expected docker:PATH, got {spec!r}")
    elif spec.startswith("docker-name:") and not DOCKER_NAME.fullmatch(spec[12:].lstrip("/")):
        raise ConfigError(f"{where}: expected docker-name:NAME (a container name), got {spec!r}")
    return spec


def check_url(url: str, where: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: expected an http:// or https:// URL, got {url!r}")
    return url


def parse_node_flag(value: str) -> tuple[str, str]:
    """`--node NAME:SOURCE` -> (name, source)."""
    name, sep, source = value.partition(":")
    if not sep or not source:
        raise ConfigError(f"--node {value}: expected NAME:SOURCE (e.g. node1:/var/log/node.log)")
    validate_node_name(name, f"--node {value}")
    return name, check_source(source, f"--node {value}")


def parse_api_flag(value: str) -> tuple[str, str]:
    """`--api NAME=URL` -> (name, url)."""
    name, sep, url = value.partition("=")
    if not sep or not url:
        raise ConfigError(f"--api {value}: expected NAME=URL (e.g. node1=http://127.0.0.1:14002)")
    validate_node_name(name, f"--api {value}")
    return name, check_url(url, f"--api {value}")


def parse_listen_address(value: str, where: str = "--web.listen-address") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `[v6]:PORT` -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{where}: expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)
