"""Settings from the command line and the YAML config file, validated in one place.

Every problem becomes one `ConfigError` whose message names the file and the key (or the
flag), e.g. `exporter.yml: nodes[1].lgo: unknown key (known: api, from_start, log, name)`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import yaml

DEFAULT_LISTEN = "127.0.0.1:9184"


class ConfigError(Exception):
    """A setting is wrong; the message says which and where."""


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

    def node(self, name: str) -> NodeConfig:
        """The node called `name`, created if it is not configured yet."""
        for node in self.nodes:
            if node.name == name:
                return node
        node = NodeConfig(name)
        self.nodes.append(node)
        return node


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what and where (PyYAML's own text spans lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem


def _check_keys(where: str, data: Any, known: set[str]) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
    return data


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
    """A YAML file's data; ConfigError with one line naming the file if it cannot be had."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from exc


def load_file(path: str, config: Config | None = None) -> Config:
    """Read a YAML config file into `config` (a fresh Config by default)."""
    config = config or Config()
    data = load_yaml(path, "config file")
    top = _check_keys(path, data, {"web", "nodes", "geoip", "state_file", "forwarder",
                                    "include_wallet", "pairing_timeout", "poll_interval"})
    if "web" in top:
        web = _check_keys(f"{path}: web", top["web"], {"listen_address", "config_file"})
        if "listen_address" in web:
            config.listen_address = _typed(f"{path}: web.listen_address", web["listen_address"],
                                           str, "HOST:PORT")
        if "config_file" in web:
            config.web_config_file = _typed(f"{path}: web.config_file", web["config_file"],
                                            str, "a file path")
    if "geoip" in top:
        geo = _check_keys(f"{path}: geoip", top["geoip"], {"database", "precision", "window"})
        if "database" in geo:
            config.geoip_db = _typed(f"{path}: geoip.database", geo["database"], str, "a path")
        if "precision" in geo:
            precision = _typed(f"{path}: geoip.precision", geo["precision"], int, "1 to 4")
            if not 1 <= precision <= 4:
                raise ConfigError(f"{path}: geoip.precision: expected 1 to 4, got {precision}")
            config.geohash_precision = precision
        if "window" in geo:
            config.geo_window = float(_typed(f"{path}: geoip.window", geo["window"],
                                             (int, float), "seconds"))
    if "state_file" in top:
        config.state_file = _typed(f"{path}: state_file", top["state_file"], str, "a path")
    if "forwarder" in top:
        fwd = _check_keys(f"{path}: forwarder", top["forwarder"], {"token_file"})
        if "token_file" in fwd:
            config.forwarder_token_file = _typed(f"{path}: forwarder.token_file",
                                                 fwd["token_file"], str, "a path")
    for key in ("pairing_timeout", "poll_interval"):
        if key in top:
            value = _typed(f"{path}: {key}", top[key], (int, float), "seconds")
            if value <= 0:
                raise ConfigError(f"{path}: {key}: must be positive, got {value}")
            setattr(config, key, float(value))
    if "include_wallet" in top:
        config.include_wallet = _typed(f"{path}: include_wallet", top["include_wallet"], bool,
                                       "true or false")
    nodes = top.get("nodes", [])
    if not isinstance(nodes, list):
        raise ConfigError(f"{path}: nodes: expected a list of nodes")
    for i, raw in enumerate(nodes):
        where = f"{path}: nodes[{i}]"
        item = _check_keys(where, raw, {"name", "log", "api", "api_intervals", "api_timeouts",
                                        "from_start", "forwarder"})
        if "name" not in item:
            raise ConfigError(f"{where}.name: missing (every node needs a name)")
        name = validate_node_name(_typed(f"{where}.name", item["name"], str, "a string"),
                                  f"{where}.name")
        if any(n.name == name for n in config.nodes):
            raise ConfigError(f"{where}.name: node {name!r} is configured twice")
        node = config.node(name)
        if "log" in item:
            node.log = _typed(f"{where}.log", item["log"], str, "a log source")
            check_source(node.log, f"{where}.log")
        if "api" in item:
            node.api = _typed(f"{where}.api", item["api"], str, "a URL")
            check_url(node.api, f"{where}.api")
        for key in ("api_intervals", "api_timeouts"):
            if key in item:
                setattr(node, key, _endpoint_seconds(f"{where}.{key}", item[key]))
        if "from_start" in item:
            node.from_start = _typed(f"{where}.from_start", item["from_start"], bool,
                                     "true or false")
        if "forwarder" in item:
            node.forwarder = dict(_check_keys(
                f"{where}.forwarder", item["forwarder"],
                {"token_file", "tls_ca_file", "tls_cert_file", "tls_key_file",
                 "tls_server_name", "tls_insecure_skip_verify"},
            ))
            for key, value in node.forwarder.items():  # strict: 'no' is not false
                flag = key == "tls_insecure_skip_verify"
                _typed(f"{where}.forwarder.{key}", value, bool if flag else str,
                       "true or false" if flag else "a string")
    return config


def _endpoint_seconds(where: str, data: Any) -> dict[str, float]:
    """`{endpoint: seconds}` for the node API poller (exporter/nodeapi/poller.py)."""
    from exporter.nodeapi.poller import ENDPOINTS

    data = _check_keys(where, data, set(ENDPOINTS))
    result = {}
    for key, value in data.items():
        seconds = _typed(f"{where}.{key}", value, (int, float), "seconds")
        if seconds <= 0:
            raise ConfigError(f"{where}.{key}: must be positive, got {seconds}")
        result[key] = float(seconds)
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


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: the only ones served without auth."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
