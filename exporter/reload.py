"""SIGHUP: apply a re-read config to a running app.Exporter.

New nodes start, removed nodes stop, nodes whose log or API settings changed restart that
part (a restarted log keeps its counters and, when the source is the same, its read
position), and the web config is re-read so new TLS certificates and users take effect for
new connections. Settings the process cannot change while running (RESTART_ONLY) are kept
and named in the log.

State file: a removed node's saved state leaves the state file at the next save, exactly as
when the exporter is restarted without it (Checkpointer.load drops unconfigured nodes); a
node added by a reload starts with fresh counters.
"""

from __future__ import annotations

import logging

from exporter.app import RESTART_ONLY, Exporter, _api_key, _log_key
from exporter.config import Config, ConfigError
from exporter.webconfig import load_web_config

log = logging.getLogger("exporter.reload")


def plan_reload(exp: Exporter, new: Config) -> list[str]:
    old = exp.config
    if not new.nodes:
        raise ConfigError("no nodes configured")
    changes: list[str] = []
    for key in RESTART_ONLY:
        if getattr(new, key) != getattr(old, key):
            changes.append(f"{key} changed from {getattr(old, key)!r} to "
                           f"{getattr(new, key)!r}: takes a restart, keeping the old value")
            setattr(new, key, getattr(old, key))
    web = load_web_config(new.web_config_file) if new.web_config_file else None

    old_nodes = {n.name: n for n in old.nodes}
    new_nodes = {n.name: n for n in new.nodes}
    runners = {r.name: r for r in exp.runners}
    pollers = {p.node: p for p in exp.pollers}

    # build every new log runner before anything is stopped: make_source may refuse
    start_runners, stop_runners = [], []
    carried = []  # new runners that continue the old one's log: their position is taken again
    for name, node in new_nodes.items():
        was = old_nodes.get(name)
        current = runners.get(name)
        if node.log and (current is None or _log_key(node, new) != _log_key(was, old)):
            state = current.state if current is not None else None
            resume = None
            if current is not None and was is not None and was.log == node.log:
                with current.state.lock:
                    resume = current.state.position
            if state is None and exp.locator is not None:
                exp.geo[name] = exp._recorder(name)
            start_runners.append(exp._runner(node, new, resume, state))
            if resume is not None:
                carried.append(start_runners[-1])
            if current is not None:
                stop_runners.append(current)
                changes.append(f"node {name}: log source restarted ({node.log})")
            else:
                changes.append(f"node {name}: log source started ({node.log})")
        elif current is not None and not node.log:
            stop_runners.append(current)
            changes.append(f"node {name}: log source stopped")
        if current is not None and node.log:
            current.state.pairing_timeout = new.pairing_timeout
    for name, current in runners.items():
        if name not in new_nodes:
            stop_runners.append(current)
            changes.append(f"node {name}: removed, log source stopped")

    start_pollers, stop_pollers = [], []
    for name, node in new_nodes.items():
        was, current = old_nodes.get(name), pollers.get(name)
        if node.api and (current is None or _api_key(node, new) != _api_key(was, old)):
            start_pollers.append(exp._poller(node, new))
            if current is not None:
                stop_pollers.append(current)
            changes.append(f"node {name}: node API {'restarted' if current else 'started'} "
                           f"({node.api})")
        elif current is not None and not node.api:
            stop_pollers.append(current)
            changes.append(f"node {name}: node API stopped")
    for name, current in pollers.items():
        if name not in new_nodes:
            stop_pollers.append(current)
            changes.append(f"node {name}: removed, node API stopped")

    # apply: nothing below raises ConfigError
    for item in (*stop_runners, *stop_pollers):
        item.stop()
    for runner in carried:
        # the old runner may have applied batches after `resume` was read: resume after the
        # last one it applied, or those lines would count twice
        with runner.state.lock:
            if runner.state.position is not None and hasattr(runner.source, "resume"):
                runner.source.resume = runner.state.position
    stopped = {id(x) for x in (*stop_runners, *stop_pollers)}
    order = list(new_nodes)
    exp.runners = sorted([r for r in exp.runners if id(r) not in stopped] + start_runners,
                         key=lambda r: order.index(r.name))
    exp.pollers = sorted([p for p in exp.pollers if id(p) not in stopped] + start_pollers,
                         key=lambda p: order.index(p.node))
    for name in [n for n in exp.geo if n not in {r.name for r in exp.runners}]:
        del exp.geo[name]
    exp.log_collector.runners = exp.runners
    if exp.pollers and exp.api_collector is None:
        exp._register_api()
    elif exp.api_collector is not None:
        exp.api_collector.pollers = exp.pollers
    if exp.checkpointer is not None:
        exp.checkpointer.set_nodes(exp.runners, {n.name: n.log for n in new.nodes if n.log})
    exp.config, exp.web = new, web
    exp.httpd.reconfigure(exp._make_app(web), web)
    if new.web_config_file:
        changes.append(f"web config {new.web_config_file} re-read (TLS certificates, users)")
    elif old.web_config_file:
        changes.append("web config removed: plain HTTP without auth")
    for runner in start_runners:
        runner.start()
    for poller in start_pollers:
        poller.start()
    for line in changes:
        log.info("reload: %s", line)
    if not changes:
        log.info("reload: no change")
    return changes
